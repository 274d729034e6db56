"""`xmargin demo`: the whole service on local chains, with no set-up.

Starts one anvil node per EVM chain of the config (on the port its first RPC URL names), installs
Multicall3 and deploys the demo contracts, starts the local Solana RPC for Solana chains and the
local Hyperliquid info server for Hyperliquid chains, seeds
demo users (one healthy, one near liquidation, one leveraged on Solana), links their wallets in
the (embedded) database, and runs cycles, printing the status table each time. Prices move a
little every cycle so statuses change. `--once`: one cycle, the table, stop, exit 0.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlparse

from eth_utils.crypto import keccak
from rich.console import Console

from aggregator.bootstrap import (
    Services,
    cycle_once,
    open_services,
    prepare_database,
    running_api,
)
from aggregator.commands.presenters import make_console, status_table, venue_table
from aggregator.config import LoadedConfig
from aggregator.errors import UserInputError, XmarginError
from aggregator.publish.documents import published_status
from aggregator.store.accounts import users as user_repo
from chains.evm.address import to_checksum
from chains.evm.devnet import (
    AnvilNode,
    DevnetError,
    EvmDeployment,
    deploy_demo_world,
    mine,
    seed_wallet,
    set_price,
)
from chains.solana.localnet.demo import DEMO_SOLANA

ETH = 10**18
USDC = 10**6
WBTC = 10**8


def demo_evm_wallet(name: str) -> str:
    """A deterministic address for a demo user: nobody holds its key, it only receives."""
    return to_checksum(keccak(f"xmargin-demo:{name}".encode())[12:].hex())


@dataclass(frozen=True)
class EvmSeed:
    native_wei: int = 0
    tokens: dict[str, int] | None = None
    aave_supply: dict[str, int] | None = None
    aave_borrow: dict[str, int] | None = None


# user → chain position in the config's EVM chain list (0: first, 1: second) → holdings.
DEMO_EVM_BOOKS: dict[str, dict[int, EvmSeed]] = {
    # Healthy: cash and ETH, a small loan against WETH.
    "alice": {
        0: EvmSeed(
            native_wei=5 * ETH,
            tokens={"USDC": 20_000 * USDC},
            aave_supply={"WETH": 4 * ETH},
            aave_borrow={"USDC": 3_000 * USDC},
        ),
        1: EvmSeed(tokens={"WBTC": WBTC // 2}),
    },
    # Near liquidation: a large USDC loan against WETH on one chain, a little ETH on another.
    "bob": {
        0: EvmSeed(aave_supply={"WETH": 10 * ETH}, aave_borrow={"USDC": 32_000 * USDC}),
        1: EvmSeed(native_wei=ETH // 2),
    },
}


async def _start_local_server(
    module: str, args: list[str], what: str, processes: list[asyncio.subprocess.Process]
) -> None:
    """`python -m module args...` in a process of its own (added to `processes` at once, so
    the caller stops it), waited for until it prints that it is listening.

    May raise: XmarginError (it did not start within a minute).
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    processes.append(process)
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    except TimeoutError:
        line = b""
    if b"listening" not in line:
        rest = line + (await process.stdout.read() if process.returncode else b"")
        raise XmarginError(
            f"demo: {what} did not start: {rest.decode(errors='replace').strip()[-300:]}"
        )


async def _stop_local_servers(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.terminate()
            await process.wait()


@asynccontextmanager
async def _solana_nodes(config: LoadedConfig, console: Console) -> AsyncIterator[list[str]]:
    """One local Solana RPC (LiteSVM, demo world seeded, a slot every 400 ms) per Solana chain,
    each in a process of its own; yields the chain keys."""
    processes: list[asyncio.subprocess.Process] = []
    keys = []
    try:
        for key, chain in config.chains.items():
            if chain.family != "solana":
                continue
            port = urlparse(chain.rpc_urls[0]).port or 8899
            await _start_local_server(
                "chains.solana.localnet",
                ["--port", str(port), "--seed-demo", "--slot-ms", "400"],
                f"the local Solana RPC for {key}",
                processes,
            )
            console.print(f"[dim]{key}: local Solana RPC (LiteSVM) at {chain.rpc_urls[0]}[/]")
            keys.append(key)
        yield keys
    finally:
        await _stop_local_servers(processes)


@asynccontextmanager
async def _hyperliquid_nodes(
    config: LoadedConfig, console: Console
) -> AsyncIterator[list[tuple[str, str, str]]]:
    """One local Hyperliquid info server (demo books, marks walking every 2 s) per Hyperliquid
    chain, each in a process of its own; yields (user, chain key, address) of the seeded books."""
    processes: list[asyncio.subprocess.Process] = []
    seeded: list[tuple[str, str, str]] = []
    try:
        for key, chain in config.chains.items():
            if chain.family != "hyperliquid":
                continue
            port = urlparse(chain.rpc_urls[0]).port or 18960
            await _start_local_server(
                "chains.hyperliquid.localnet",
                ["--port", str(port), "--seed-demo", "--move-marks-ms", "2000"],
                f"the local Hyperliquid info server for {key}",
                processes,
            )
            console.print(f"[dim]{key}: local Hyperliquid info server at {chain.rpc_urls[0]}[/]")
            seeded += [(user, key, demo_evm_wallet(user)) for user in ("alice", "bob")]
        yield seeded
    finally:
        await _stop_local_servers(processes)


@asynccontextmanager
async def _evm_nodes(
    config: LoadedConfig, console: Console
) -> AsyncIterator[dict[str, tuple[str, EvmDeployment]]]:
    """One fresh anvil per EVM chain, with the demo world deployed; chain → (url, deployment)."""
    async with AsyncExitStack() as stack:
        out: dict[str, tuple[str, EvmDeployment]] = {}
        for key, chain in config.chains.items():
            if chain.family != "evm":
                continue
            port = urlparse(chain.rpc_urls[0]).port
            assert chain.chain_id is not None
            node = AnvilNode(chain_id=chain.chain_id, port=port)
            try:
                await node.start()
            except DevnetError as exc:
                raise XmarginError(f"demo: cannot start anvil for {key}: {exc}") from exc
            stack.callback(node.stop)
            deployment = await deploy_demo_world(node.url)
            console.print(f"[dim]{key}: anvil chain {chain.chain_id} at {node.url}[/]")
            out[key] = (node.url, deployment)
        yield out


async def _seed_evm(
    config: LoadedConfig, nodes: dict[str, tuple[str, EvmDeployment]]
) -> dict[str, list[tuple[str, str]]]:
    """Seed the demo books; user → [(chain, address)]."""
    evm_chains = [key for key, c in config.chains.items() if c.family == "evm"]
    wallets: dict[str, list[tuple[str, str]]] = {}
    for user, books in DEMO_EVM_BOOKS.items():
        address = demo_evm_wallet(user)
        for index, seed in books.items():
            if index >= len(evm_chains):
                continue
            chain = evm_chains[index]
            url, deployment = nodes[chain]
            await seed_wallet(
                url,
                deployment,
                address,
                native_wei=seed.native_wei,
                tokens=seed.tokens,
                aave_supply=seed.aave_supply,
                aave_borrow=seed.aave_borrow,
            )
            wallets.setdefault(user, []).append((chain, address))
    for chain in evm_chains:
        # Past the deepest `latest-N` read point, so the seeded state is what the demo reads.
        await mine(nodes[chain][0], 4)
    return wallets


async def _link(services: Services, wallets: dict[str, list[tuple[str, str]]]) -> list[int]:
    """Create the demo users (or reuse them) and link their wallets; their ids."""
    ids = []
    async with services.database.session() as session:
        for user, links in wallets.items():
            row = await user_repo.get_user(session, user)
            user_id = row.id if row else await user_repo.add_user(session, user)
            for chain, address in links:
                try:
                    await user_repo.link_wallet(session, user_id, chain, address)
                except UserInputError as exc:
                    raise XmarginError(f"demo: {exc}") from exc
            ids.append(user_id)
    return ids


async def _print_statuses(services: Services, user_ids: list[int], console: Console) -> None:
    docs = []
    async with services.database.session() as session:
        for user_id in user_ids:
            record = await published_status(session, services.config, user_id)
            if record is not None:
                docs.append(record.document)
    status_table(docs, console)
    venue_table(docs, console)


async def _move_prices(
    nodes: dict[str, tuple[str, EvmDeployment]], rng: random.Random, eth_price: list[int]
) -> None:
    """A random walk of ETH/USD (±2% a step) on every node, then one block so reads see it."""
    eth_price[0] = max(1, round(eth_price[0] * (1 + rng.uniform(-0.02, 0.02))))
    for url, deployment in nodes.values():
        await set_price(url, deployment, "ETH", eth_price[0])
        await mine(url, 3)


async def run_demo(
    config: LoadedConfig,
    *,
    once: bool = False,
    console: Console | None = None,
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Run the demo until cancelled (Ctrl-C), or one cycle with `once`, serving the HTTP API
    (and its page) meanwhile.

    May raise: XmarginError.
    """
    console = console or make_console()
    url = await prepare_database()
    async with (
        _evm_nodes(config, console) as nodes,
        _solana_nodes(config, console) as solana,
        _hyperliquid_nodes(config, console) as hyperliquid,
    ):
        wallets = await _seed_evm(config, nodes)
        for key in solana:
            # Seeded by the local RPC itself (chains/solana/localnet/demo.py).
            wallets.setdefault("alice", []).append((key, DEMO_SOLANA.alice))
            wallets.setdefault("bob", []).append((key, DEMO_SOLANA.bob))
        for user, key, address in hyperliquid:  # seeded by the local info server itself
            wallets.setdefault(user, []).append((key, address))
        async with (
            open_services(config, database_url=url) as services,
            running_api(services, host, port) as api,
        ):
            console.print(f"[bold]status page and API at {api.url}[/] (OpenAPI at {api.url}/docs)")
            user_ids = await _link(services, wallets)
            rng = random.Random(7)
            eth_price = [3_000_00000000]
            while True:
                report = await cycle_once(services)
                for line in report.lines():
                    console.print(f"[dim]{line}[/]")
                await _print_statuses(services, user_ids, console)
                if once:
                    return
                await asyncio.sleep(config.service.publish_interval_seconds)
                await _move_prices(nodes, rng, eth_price)
