"""Turn the validated config into the plain chain specs the adapters take."""

from __future__ import annotations

from aggregator.config import LoadedConfig
from aggregator.config_tables import ChainConfig
from chains.base import EndpointPolicy
from chains.evm.spec import AavePool, ChainlinkFeed, EvmChainSpec, EvmToken
from chains.hyperliquid.spec import HyperliquidChainSpec, PerpCoin, PriceCoin, SpotToken
from chains.registry import ChainSpec
from chains.solana.spec import (
    SPL_TOKEN_PROGRAM,
    TOKEN_2022_PROGRAM,
    DriftPerpMarket,
    DriftSpotMarket,
    DriftVenue,
    KaminoReserve,
    KaminoVenue,
    MarginfiBank,
    MarginfiVenue,
    PythFeed,
    SolanaChainSpec,
    SplMint,
)

TOKEN_PROGRAMS = {"spl_token": SPL_TOKEN_PROGRAM, "token_2022": TOKEN_2022_PROGRAM}


def chain_specs(config: LoadedConfig) -> dict[str, ChainSpec]:
    """One spec per configured chain, keyed by the chain's config key."""
    return {key: chain_spec(config, key) for key in config.chains}


def chain_spec(config: LoadedConfig, key: str) -> ChainSpec:
    chain = config.chains[key]
    endpoints = EndpointPolicy(
        urls=tuple(chain.rpc_urls),
        timeout_seconds=chain.timeout_seconds,
        retries=chain.retries,
    )
    if chain.family == "evm":
        return _evm_spec(config, key, chain, endpoints)
    if chain.family == "hyperliquid":
        return _hyperliquid_spec(config, key, chain, endpoints)
    return _solana_spec(config, key, chain, endpoints)


def _decimals(config: LoadedConfig, asset: str, chain: str) -> int:
    dep = config.assets[asset].deployments.get(chain)
    if dep is None:
        raise ValueError(f"asset {asset} has no deployment on {chain}")
    return dep.decimals


def _evm_spec(
    config: LoadedConfig, key: str, chain: ChainConfig, endpoints: EndpointPolicy
) -> EvmChainSpec:
    tokens = tuple(
        EvmToken(
            asset=symbol,
            address=None if dep.address == "native" else dep.address,
            decimals=dep.decimals,
        )
        for symbol, asset in config.assets.items()
        for chain_key, dep in asset.deployments.items()
        if chain_key == key
    )
    feeds = tuple(
        ChainlinkFeed(asset=symbol, address=asset.price.address)
        for symbol, asset in config.assets.items()
        if asset.price is not None and asset.price.chain == key and asset.price.kind == "chainlink"
    )
    reserves = tuple(t for t in tokens if t.address is not None)
    pools = tuple(
        AavePool(
            name=p.name,
            pool=p.pool,
            data_provider=p.data_provider,
            reserves=reserves,
            oracle=p.oracle,
            revision=p.revision,
        )
        for p in chain.aave_pools
    )
    assert chain.chain_id is not None  # validated by ChainConfig
    return EvmChainSpec(
        chain=key,
        chain_id=chain.chain_id,
        endpoints=endpoints,
        finality=chain.finality,
        tokens=tokens,
        feeds=feeds,
        aave_pools=pools,
        calls_per_batch=chain.calls_per_batch,
    )


def _solana_spec(
    config: LoadedConfig, key: str, chain: ChainConfig, endpoints: EndpointPolicy
) -> SolanaChainSpec:
    mints = tuple(
        SplMint(
            asset=symbol,
            mint=dep.address,
            decimals=dep.decimals,
            token_program=TOKEN_PROGRAMS[dep.token_program or "spl_token"],
        )
        for symbol, asset in config.assets.items()
        for chain_key, dep in asset.deployments.items()
        if chain_key == key and dep.address != "native"
    )
    feeds = tuple(
        PythFeed(
            asset=symbol,
            account=asset.price.address,
            feed_id=asset.price.feed_id or "",
            max_conf_ratio=config.risk.max_conf_ratio,
            max_age_seconds=asset.max_price_age_seconds,
        )
        for symbol, asset in config.assets.items()
        if asset.price is not None and asset.price.chain == key and asset.price.kind == "pyth"
    )
    drift = None
    if chain.drift is not None:
        drift = DriftVenue(
            program_id=chain.drift.program_id,
            sub_account_ids=tuple(chain.drift.sub_account_ids),
            spot_markets=tuple(
                DriftSpotMarket(
                    market_index=m.market_index,
                    asset=m.asset,
                    decimals=_decimals(config, m.asset, key),
                    account=m.account,
                )
                for m in chain.drift.spot_markets
            ),
            perp_markets=tuple(
                DriftPerpMarket(market_index=m.market_index, asset=m.asset)
                for m in chain.drift.perp_markets
            ),
        )
    kamino = None
    if chain.kamino is not None:
        kamino = KaminoVenue(
            program_id=chain.kamino.program_id,
            lending_markets=tuple(chain.kamino.lending_markets),
            reserves=tuple(
                KaminoReserve(
                    reserve=r.reserve, asset=r.asset, decimals=_decimals(config, r.asset, key)
                )
                for r in chain.kamino.reserves
            ),
        )
    marginfi = None
    if chain.marginfi is not None:
        marginfi = MarginfiVenue(
            program_id=chain.marginfi.program_id,
            group=chain.marginfi.group,
            banks=tuple(
                MarginfiBank(bank=b.bank, asset=b.asset, decimals=_decimals(config, b.asset, key))
                for b in chain.marginfi.banks
            ),
            account_indexes=tuple(chain.marginfi.account_indexes),
            discover_accounts=chain.marginfi.discover_accounts,
        )
    assert chain.genesis_hash is not None  # validated by the config cross-checks
    return SolanaChainSpec(
        chain=key,
        genesis_hash=chain.genesis_hash,
        endpoints=endpoints,
        commitment=chain.finality,
        native_asset=config.native_asset(key) or "SOL",
        mints=mints,
        feeds=feeds,
        drift=drift,
        kamino=kamino,
        marginfi=marginfi,
        native_balances=chain.native_balances,
    )


def _hyperliquid_spec(
    config: LoadedConfig, key: str, chain: ChainConfig, endpoints: EndpointPolicy
) -> HyperliquidChainSpec:
    """Spot tokens are the assets deployed on the chain (address = the spot coin); USD cash
    counts as the asset deployed as `USDC`; perp coins and oracle prices as configured."""
    spot = tuple(
        SpotToken(coin=dep.address, asset=symbol, decimals=dep.decimals)
        for symbol, asset in config.assets.items()
        for chain_key, dep in asset.deployments.items()
        if chain_key == key
    )
    cash = next((token for token in spot if token.coin == "USDC"), None)
    assert chain.network is not None  # validated by ChainConfig
    return HyperliquidChainSpec(
        chain=key,
        network=chain.network,
        endpoints=endpoints,
        perp_coins=tuple(PerpCoin(coin, asset) for coin, asset in chain.perp_coins.items()),
        spot_tokens=spot,
        price_coins=tuple(
            PriceCoin(coin=asset.price.coin or asset.price.address, asset=symbol)
            for symbol, asset in config.assets.items()
            if asset.price is not None
            and asset.price.chain == key
            and asset.price.kind == "hyperliquid"
        ),
        cash_asset=cash.asset if cash else None,
        cash_decimals=cash.decimals if cash else 8,
        weight_per_minute=chain.weight_per_minute,
        read_abstraction=chain.read_abstraction,
    )
