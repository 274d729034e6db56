"""The publish step: stored observations → one margin status per user, in one transaction.

Reads the latest good head of every chain, values every user's book with the pure risk engine
(the same `evaluate` and serializer as `xmargin risk evaluate`), and writes all statuses of the
pass at once; history rows and NOTIFY only on material change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from aggregator.addresses import caip10
from aggregator.config import LoadedConfig
from aggregator.margin import MarginResult, Portfolio, evaluate_in_market, prepare_market
from aggregator.portfolio_builder import (
    EPOCH,
    ObservedChain,
    ObservedLine,
    ObservedPrice,
    build_portfolios,
)
from aggregator.risk_output import decimal_text, portfolio_to_document, result_to_json
from aggregator.store.database import Database
from aggregator.store.locks import try_advisory_lock
from aggregator.store.observations import ChainObservations, latest_observations, price_history
from aggregator.store.statuses import StatusRecord, publish_statuses
from aggregator.store.users import UserRow, WalletRow, list_users, wallets_by_chain
from aggregator.valuation import ewma_volatility
from aggregator.valuation.market import Market
from aggregator.valuation.model import PRECISION

PUBLISH_LOCK = "publish"


@dataclass(frozen=True)
class PublishReport:
    users: int
    changed: int
    skipped: bool = False
    unvalued: tuple[str, ...] = ()  # "user: why", users who kept their last status

    def describe(self) -> str:
        if self.skipped:
            return "publish: skipped (another process is publishing)"
        line = f"publish: {self.users} users, {self.changed} changed"
        if self.unvalued:
            line += f"; not valued (last status kept): {'; '.join(self.unvalued)}"
        return line


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _lines(observations: Mapping[str, ChainObservations]) -> list[ObservedLine]:
    lines: list[ObservedLine] = []
    for chain, obs in observations.items():
        for owned in obs.balances:
            b = owned.balance
            lines.append(
                ObservedLine(
                    user_id=owned.user_id,
                    chain=chain,
                    account=b.account,
                    asset=b.asset,
                    venue="wallet",
                    kind="balance",
                    amount_raw=b.amount_raw,
                    decimals=b.decimals,
                )
            )
        for owned_position in obs.positions:
            p = owned_position.position
            lines.append(
                ObservedLine(
                    user_id=owned_position.user_id,
                    chain=chain,
                    account=p.account,
                    asset=p.asset,
                    venue=p.venue,
                    kind=p.kind,
                    amount_raw=p.amount_raw,
                    decimals=p.decimals,
                    entry_price=p.entry_price,
                    market=p.market,
                )
            )
    return lines


async def _prices(
    database: Database, config: LoadedConfig, observations: Mapping[str, ChainObservations]
) -> dict[str, ObservedPrice]:
    """Per asset, the newest read of its configured source.

    A read that failed a check is never used as such: the last valid price stands in, dated
    the epoch, so the engine treats it as invalid (assets count 0, liabilities keep it).
    """
    out: dict[str, ObservedPrice] = {}
    for symbol, asset in config.assets.items():
        if asset.price is None or asset.price.chain not in observations:
            continue
        obs = observations[asset.price.chain]
        reads = [p for p in obs.prices if p.asset == symbol]
        if not reads:
            continue
        latest = reads[-1]
        if latest.valid:
            out[symbol] = ObservedPrice(
                symbol, latest.price, latest.conf, datetime.fromtimestamp(latest.publish_time, UTC)
            )
            continue
        async with database.session() as session:
            history = await price_history(session, symbol, EPOCH)
        if history:
            out[symbol] = ObservedPrice(symbol, history[-1][1], Decimal(0), EPOCH)
    return out


async def _volatilities(
    database: Database, config: LoadedConfig, as_of: datetime
) -> dict[str, Decimal]:
    """EWMA volatility per asset from stored prices, when the config asks for it."""
    if config.risk.volatility_source != "ewma":
        return {}
    since = as_of - timedelta(seconds=config.risk.ewma_window_seconds)
    out: dict[str, Decimal] = {}
    async with database.session() as session:
        for symbol in config.assets:
            history = await price_history(session, symbol, since)
            sigma = ewma_volatility(
                history, half_life_seconds=config.risk.ewma_half_life_seconds, as_of=as_of
            )
            if sigma is not None:
                out[symbol] = sigma
    return out


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def status_document(
    config: LoadedConfig,
    user: UserRow,
    wallets: list[WalletRow],
    observations: Mapping[str, ChainObservations],
    risk: dict[str, Any],
    lines: list[ObservedLine],
    as_of: datetime,
    unpriced: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The published JSON: the risk result plus who, which accounts and which blocks."""
    chains: dict[str, dict[str, Any]] = {}
    unread: list[str] = []
    for chain_key in sorted({w.chain for w in wallets}):
        chain = config.chains.get(chain_key)
        if chain is None:
            continue
        obs = observations.get(chain_key)
        if obs is None:
            unread.append(chain.caip2)
            chains[chain.caip2] = {"chain": chain_key, "height": None, "stale": True}
            continue
        chains[chain.caip2] = {
            "chain": chain_key,
            "height": obs.read_point.height,
            "block_hash": obs.read_point.block_hash,
            "block_time": _iso(datetime.fromtimestamp(obs.read_point.timestamp, UTC)),
            "finality": obs.read_point.finality,
            "stale": chain.caip2 in risk.get("stale_chains", []),
            "last_poll_failed": obs.superseded_by_failure,
            "last_poll_error": obs.last_failure_error,
        }
    stale_chains = sorted({*risk.get("stale_chains", []), *unread})
    holdings = [
        {
            "account": caip10(config.chains[line.chain].caip2, line.account),
            "chain": config.chains[line.chain].caip2,
            "asset": line.asset,
            "venue": line.venue,
            "kind": line.kind,
            "amount": decimal_text(line.amount, line.decimals),
            "amount_raw": str(line.amount_raw),
            "decimals": line.decimals,
            "entry_price": None if line.entry_price is None else str(line.entry_price),
        }
        for line in lines
        if line.chain in config.chains and (line.amount_raw != 0 or line.kind != "balance")
    ]
    return {
        "user": user.name,
        "user_id": user.id,
        "as_of": _iso(as_of),
        "accounts": [
            caip10(config.chains[w.chain].caip2, w.address)
            for w in wallets
            if w.chain in config.chains
        ],
        "chains": chains,
        **risk,
        "stale": bool(risk.get("stale")) or bool(unread) or bool(unpriced),
        "stale_chains": stale_chains,
        "unpriced_assets": list(unpriced),
        "holdings": holdings,
    }


def status_record(
    user_id: int, as_of: datetime, document: dict[str, Any], portfolio: dict[str, Any]
) -> StatusRecord:
    """The row form of a document: its headline numbers as exact decimals."""
    hf = document.get("health_factor")
    return StatusRecord(
        user_id=user_id,
        as_of=as_of,
        status=document["status"],
        stale=document["stale"],
        stale_chains=tuple(document["stale_chains"]),
        health_factor=None if hf is None else _decimal(hf),
        equity_usd=_decimal(document["equity"]),
        weighted_collateral_init_usd=_decimal(document["weighted_collateral"]["init"]),
        weighted_collateral_maint_usd=_decimal(document["weighted_collateral"]["maint"]),
        requirement_init_usd=_decimal(document["requirement"]["init"]),
        requirement_maint_usd=_decimal(document["requirement"]["maint"]),
        health_init_usd=_decimal(document["health"]["init"]),
        health_maint_usd=_decimal(document["health"]["maint"]),
        free_collateral_usd=_decimal(document["free_collateral"]),
        document=document,
        inputs={
            "chains": {
                caip2: {"height": info.get("height"), "hash": info.get("block_hash")}
                for caip2, info in document["chains"].items()
            },
            # The exact `risk evaluate` input: the published numbers can be reproduced offline.
            "portfolio": portfolio,
        },
    )


def _evaluate(portfolio: Portfolio, markets: dict[tuple[str, ...], Market]) -> MarginResult:
    """`evaluate(portfolio)`, with the market prepared once per set of chains: users of one
    pass share as_of, params and assets, and differ only in the chains of their wallets."""
    key = tuple(portfolio.chains)
    market = markets.get(key)
    if market is None:
        with localcontext() as ctx:
            ctx.prec = PRECISION
            market = prepare_market(
                portfolio.as_of, portfolio.params, portfolio.chains, portfolio.assets
            )
        markets[key] = market
    return evaluate_in_market(
        market, portfolio.holdings, portfolio.perps, mode=portfolio.mode, factors=portfolio.factors
    )


async def publish(
    database: Database, config: LoadedConfig, as_of: datetime | None = None
) -> PublishReport:
    """Value every user with a wallet and write all statuses in one transaction.

    May raise: DatabaseUnavailable.
    """
    as_of = as_of or datetime.now(UTC)
    async with database.session() as session:
        observations = await latest_observations(session)
        users = {u.id: u for u in await list_users(session)}
        wallets_grouped = await wallets_by_chain(session)
    wallets: dict[int, list[WalletRow]] = defaultdict(list)
    for rows in wallets_grouped.values():
        for wallet in rows:
            wallets[wallet.user_id].append(wallet)
    prices = await _prices(database, config, observations)
    volatility = await _volatilities(database, config, as_of)
    chains = [
        ObservedChain(
            chain=key,
            height=obs.read_point.height,
            block_hash=obs.read_point.block_hash,
            block_time=datetime.fromtimestamp(obs.read_point.timestamp, UTC),
            finality=obs.read_point.finality,
        )
        for key, obs in observations.items()
    ]
    lines = _lines(observations)
    user_chains = {uid: [w.chain for w in rows] for uid, rows in wallets.items()}
    batch = build_portfolios(config, as_of, user_chains, chains, lines, prices, volatility)
    lines_by_user: dict[int, list[ObservedLine]] = defaultdict(list)
    for line in lines:
        lines_by_user[line.user_id].append(line)

    records = []
    markets: dict[tuple[str, ...], Market] = {}
    for user_id, portfolio in sorted(batch.portfolios.items()):
        risk = result_to_json(_evaluate(portfolio, markets))
        document = status_document(
            config,
            users[user_id],
            wallets[user_id],
            observations,
            risk,
            lines_by_user[user_id],
            as_of,
            batch.unpriced.get(user_id, ()),
        )
        records.append(status_record(user_id, as_of, document, portfolio_to_document(portfolio)))
    unvalued = tuple(
        f"{users[user_id].name}: {why}" for user_id, why in sorted(batch.unvalued.items())
    )

    async with database.session() as session:
        if not await try_advisory_lock(session, PUBLISH_LOCK):
            return PublishReport(users=len(records), changed=0, skipped=True, unvalued=unvalued)
        changed = await publish_statuses(
            session,
            records,
            relative_threshold=config.risk.history_material_change,
            webhooks=config.alerts.webhooks,
        )
    return PublishReport(users=len(records), changed=changed, unvalued=unvalued)
