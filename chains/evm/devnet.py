"""The local EVM world of the demo, the tests and the benchmark.

On a fresh anvil node, `deploy_demo_world` deploys (from anvil's default account 0, in a fixed
order, so the addresses are always `DEMO_ADDRESSES`): the USDC (6), WETH (18) and WBTC (8)
tokens, the ETH/USD, BTC/USD and USDC/USD price feeds (8 decimals) and a lending pool exposing
the Aave v3 reads. `install_multicall3` puts the real Multicall3 code at its canonical address.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from chains.base import EndpointPolicy
from chains.evm.abi import encode_call, selector
from chains.evm.address import to_checksum
from chains.evm.anvil import DEFAULT_ACCOUNT, AnvilNode, DevnetError, DevnetRpc, find_anvil
from chains.evm.spec import MULTICALL3_ADDRESS, AavePool, ChainlinkFeed, EvmChainSpec, EvmToken
from chains.evm.vyper_build import compile_contract

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEMO_ADDRESSES",
    "AnvilNode",
    "DevnetError",
    "EvmDeployment",
    "create_address",
    "deploy_demo_world",
    "find_anvil",
    "install_multicall3",
    "mine",
    "mint_many",
    "seed_wallet",
    "set_price",
]

MULTICALL3_RUNTIME_PATH = Path(__file__).with_name("data") / "multicall3_runtime.hex"
MULTICALL3_CODE_HASH = "0xd5c15df687b16f2ff992fc8d767b4216323184a2bbc6ee2f9c398c318e770891"

# (symbol, name, decimals) in deployment order: nonces 0, 1, 2.
DEMO_TOKENS: tuple[tuple[str, str, int], ...] = (
    ("USDC", "USD Coin (devnet)", 6),
    ("WETH", "Wrapped Ether (devnet)", 18),
    ("WBTC", "Wrapped BTC (devnet)", 8),
)
# (feed key, description, initial answer at 8 decimals) in deployment order: nonces 3, 4, 5.
DEMO_FEEDS: tuple[tuple[str, str, int], ...] = (
    ("ETH", "ETH / USD", 3_000_00000000),
    ("BTC", "BTC / USD", 60_000_00000000),
    ("USDC", "USDC / USD", 1_00000000),
)
FEED_DECIMALS = 8
# The feed each token is priced by, and its Aave-style (ltv, liquidation threshold) in bps.
DEMO_RESERVES: tuple[tuple[str, str, int, int], ...] = (
    ("USDC", "USDC", 7500, 7800),
    ("WETH", "ETH", 8000, 8250),
    ("WBTC", "BTC", 7300, 7800),
)

# CREATE addresses of deployer 0xf39F…2266 at nonces 0-6 (checked by a unit test and by
# deploy_demo_world itself); copy these into config/devnet.toml.
DEMO_ADDRESSES: Mapping[str, str] = {
    "deployer": DEFAULT_ACCOUNT,
    "multicall3": MULTICALL3_ADDRESS,
    "USDC": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "WETH": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
    "WBTC": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
    "feed:ETH": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
    "feed:BTC": "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9",
    "feed:USDC": "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707",
    "pool": "0x0165878A594ca255338adfa4d48449f69242Eb8F",
}
DEMO_NONCES: Mapping[str, int] = {
    "USDC": 0,
    "WETH": 1,
    "WBTC": 2,
    "feed:ETH": 3,
    "feed:BTC": 4,
    "feed:USDC": 5,
    "pool": 6,
}
_TOKEN_PRICE_FEED = {"USDC": "USDC", "WETH": "ETH", "WBTC": "BTC", "ETH": "ETH", "BTC": "BTC"}


def _rlp_uint(value: int) -> bytes:
    if value == 0:
        return b"\x80"
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return raw if len(raw) == 1 and raw[0] < 0x80 else bytes([0x80 + len(raw)]) + raw


def create_address(deployer: str, nonce: int) -> str:
    """The address a CREATE from `deployer` at `nonce` lands on: keccak(rlp([sender, nonce]))."""
    body = b"\x94" + bytes.fromhex(deployer[2:]) + _rlp_uint(nonce)
    return to_checksum(keccak(bytes([0xC0 + len(body)]) + body)[12:].hex())


@dataclass(frozen=True, slots=True)
class EvmDeployment:
    """Where the demo world lives on a devnet."""

    deployer: str
    tokens: Mapping[str, EvmToken]  # by symbol: USDC, WETH, WBTC
    feeds: Mapping[str, str]  # feed key (ETH, BTC, USDC) -> aggregator address
    pool: str  # getUserAccountData
    data_provider: str  # getUserReserveData (the same contract on the devnet)
    native: EvmToken = field(default_factory=lambda: EvmToken("ETH", None, 18))

    def feed_for(self, asset: str) -> str:
        """The aggregator pricing `asset` (a token symbol, ETH, BTC, or a feed key).

        May raise: KeyError.
        """
        return self.feeds[_TOKEN_PRICE_FEED.get(asset, asset)]

    def aave_pool(self, name: str = "main") -> AavePool:
        return AavePool(
            name=name,
            pool=self.pool,
            data_provider=self.data_provider,
            reserves=tuple(self.tokens[symbol] for symbol, *_ in DEMO_RESERVES),
            oracle=self.pool,  # the devnet pool serves getAssetPrice itself
            revision="v3-core",  # DevLendingPool rounds as aave-v3-core
        )

    def chain_feeds(self) -> tuple[ChainlinkFeed, ...]:
        """One feed per priced asset: ETH and WETH share ETH/USD, WBTC uses BTC/USD."""
        return tuple(
            ChainlinkFeed(asset, self.feed_for(asset)) for asset in ("ETH", "USDC", "WETH", "WBTC")
        )

    def chain_spec(
        self,
        urls: Sequence[str],
        *,
        chain: str = "devnet",
        chain_id: int = 31337,
        finality: str = "latest",
        with_aave: bool = True,
        with_feeds: bool = True,
        calls_per_batch: int = 1000,
        policy: EndpointPolicy | None = None,
    ) -> EvmChainSpec:
        """An adapter spec reading everything this deployment holds."""
        endpoints = policy or EndpointPolicy(urls=tuple(urls), timeout_seconds=10.0)
        return EvmChainSpec(
            chain=chain,
            chain_id=chain_id,
            endpoints=endpoints,
            finality=finality,
            tokens=(self.native, *self.tokens.values()),
            feeds=self.chain_feeds() if with_feeds else (),
            aave_pools=(self.aave_pool(),) if with_aave else (),
            calls_per_batch=calls_per_batch,
        )


def demo_deployment() -> EvmDeployment:
    """The deployment `deploy_demo_world` produces, without touching a node."""
    return EvmDeployment(
        deployer=DEMO_ADDRESSES["deployer"],
        tokens={
            symbol: EvmToken(symbol, DEMO_ADDRESSES[symbol], decimals)
            for symbol, _, decimals in DEMO_TOKENS
        },
        feeds={key: DEMO_ADDRESSES[f"feed:{key}"] for key, *_ in DEMO_FEEDS},
        pool=DEMO_ADDRESSES["pool"],
        data_provider=DEMO_ADDRESSES["pool"],
    )


async def install_multicall3(url: str) -> None:
    """Put Multicall3's real runtime code at its canonical address and check its code hash.

    May raise: DevnetError.
    """
    runtime = MULTICALL3_RUNTIME_PATH.read_text().strip()
    async with DevnetRpc(url) as rpc:
        await rpc.call("anvil_setCode", [MULTICALL3_ADDRESS, runtime])
        code = await rpc.call("eth_getCode", [MULTICALL3_ADDRESS, "latest"])
    digest = "0x" + keccak(bytes.fromhex(str(code)[2:])).hex()
    if digest != MULTICALL3_CODE_HASH:
        raise DevnetError(
            f"Multicall3 code hash on {url} is {digest}, expected {MULTICALL3_CODE_HASH}"
        )


async def _deploy(rpc: DevnetRpc, name: str, types: list[str], args: list[Any]) -> str:
    from eth_abi.abi import encode

    init_code = compile_contract(name).bytecode + encode(types, args)
    receipt = await rpc.send(None, init_code)
    return to_checksum(str(receipt["contractAddress"])[2:])


async def deploy_demo_world(url: str) -> EvmDeployment:
    """Deploy the demo tokens, feeds and lending pool on a fresh node (see module docstring) and
    install Multicall3. Addresses equal `DEMO_ADDRESSES`.

    May raise: DevnetError (node not fresh, a deployment failed).
    """
    await install_multicall3(url)
    async with DevnetRpc(url) as rpc:
        nonce = int(await rpc.call("eth_getTransactionCount", [DEFAULT_ACCOUNT, "latest"]), 16)
        if nonce != 0:
            raise DevnetError(
                f"deploy_demo_world needs a fresh node: {DEFAULT_ACCOUNT} already sent {nonce} txs"
            )
        deployed: dict[str, str] = {}
        for symbol, name, decimals in DEMO_TOKENS:
            deployed[symbol] = await _deploy(
                rpc, "DevToken", ["string", "string", "uint8"], [name, symbol, decimals]
            )
        for key, description, answer in DEMO_FEEDS:
            deployed[f"feed:{key}"] = await _deploy(
                rpc,
                "DevAggregator",
                ["uint8", "string", "int256"],
                [FEED_DECIMALS, description, answer],
            )
        deployed["pool"] = await _deploy(rpc, "DevLendingPool", [], [])
        for key, address in deployed.items():
            if address != DEMO_ADDRESSES[key]:
                raise DevnetError(f"{key} deployed at {address}, expected {DEMO_ADDRESSES[key]}")
        world = demo_deployment()
        add_reserve = selector("add_reserve(address,address,uint8,uint256,uint256)")
        for symbol, feed_key, ltv, threshold in DEMO_RESERVES:
            token = world.tokens[symbol]
            await rpc.send(
                world.pool,
                encode_call(
                    add_reserve,
                    ["address", "address", "uint8", "uint256", "uint256"],
                    [token.address, world.feeds[feed_key], token.decimals, ltv, threshold],
                ),
            )
    return world


async def seed_wallet(
    url: str,
    deployment: EvmDeployment,
    wallet: str,
    *,
    native_wei: int = 0,
    tokens: Mapping[str, int] | None = None,
    aave_supply: Mapping[str, int] | None = None,
    aave_borrow: Mapping[str, int] | None = None,
) -> None:
    """Give `wallet` native coin (sent from the deployer) and tokens (minted), both added to what
    it has, and set its lending-pool supply and borrow per token (absolute amounts, base units).
    Every change is a mined transaction.

    May raise: DevnetError, KeyError (unknown token symbol).
    """
    mint = selector("mint(address,uint256)")
    set_supply = selector("set_supply(address,address,uint256)")
    set_borrow = selector("set_borrow(address,address,uint256)")
    async with DevnetRpc(url) as rpc:
        if native_wei:
            await rpc.send(wallet, value=native_wei)
        for symbol, amount in (tokens or {}).items():
            token = deployment.tokens[symbol]
            await rpc.send(
                token.address, encode_call(mint, ["address", "uint256"], [wallet, amount])
            )
        for fn, amounts in ((set_supply, aave_supply), (set_borrow, aave_borrow)):
            for symbol, amount in (amounts or {}).items():
                token = deployment.tokens[symbol]
                await rpc.send(
                    deployment.pool,
                    encode_call(
                        fn, ["address", "address", "uint256"], [token.address, wallet, amount]
                    ),
                )


async def mint_many(
    url: str, deployment: EvmDeployment, symbol: str, holders: Sequence[str], amounts: Sequence[int]
) -> None:
    """Mint `amounts[i]` of `symbol` to `holders[i]`, 500 holders per transaction.

    May raise: DevnetError, KeyError.
    """
    fn = selector("mint_many(address[],uint256[])")
    token = deployment.tokens[symbol]
    async with DevnetRpc(url) as rpc:
        for start in range(0, len(holders), 500):
            await rpc.send(
                token.address,
                encode_call(
                    fn,
                    ["address[]", "uint256[]"],
                    [list(holders[start : start + 500]), list(amounts[start : start + 500])],
                ),
            )


async def set_price(
    url: str, deployment: EvmDeployment, asset: str, answer: int, *, updated_at: int | None = None
) -> None:
    """Start a new round on the feed pricing `asset` with `answer` (8 decimals), updated now or
    at `updated_at` (0 = a round that never completed).

    May raise: DevnetError, KeyError.
    """
    feed = deployment.feed_for(asset)
    async with DevnetRpc(url) as rpc:
        if updated_at is None:
            data = encode_call(selector("set_answer(int256)"), ["int256"], [answer])
        else:
            data = encode_call(
                selector("set_round(int256,uint256)"), ["int256", "uint256"], [answer, updated_at]
            )
        await rpc.send(feed, data)


async def mine(url: str, blocks: int = 1) -> int:
    """Mine `blocks` empty blocks; returns the new head height.

    May raise: DevnetError.
    """
    async with DevnetRpc(url) as rpc:
        await rpc.call("anvil_mine", [hex(blocks)])
        return int(await rpc.call("eth_blockNumber"), 16)
