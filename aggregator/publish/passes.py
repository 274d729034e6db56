"""A publish pass: stored observations → one margin status per user, in one transaction.

The steps, each a module of this package and run in this order: read the pass's inputs
(`inputs`), build each user's portfolio (`portfolios`), value it (`value`), render its document
and row (`render`), write them all (`write`). History rows and NOTIFY only on material change.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from aggregator.config import LoadedConfig
from aggregator.publish.inputs import observed_lines, observed_prices, observed_volatilities
from aggregator.publish.portfolios import ObservedChain, ObservedLine, build_portfolios
from aggregator.publish.render import status_document, status_record
from aggregator.publish.value import value_portfolio
from aggregator.publish.write import PUBLISH_LOCK, write_statuses
from aggregator.risk.output import portfolio_to_document, result_to_json
from aggregator.store.database import Database
from aggregator.store.observations import latest_observations
from aggregator.store.users import WalletRow, list_users, wallets_by_chain
from aggregator.valuation.market import Market

__all__ = ["PUBLISH_LOCK", "PublishReport", "publish"]


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
    prices = await observed_prices(database, config, observations)
    volatility = await observed_volatilities(database, config, as_of)
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
    lines = observed_lines(observations)
    user_chains = {uid: [w.chain for w in rows] for uid, rows in wallets.items()}
    batch = build_portfolios(config, as_of, user_chains, chains, lines, prices, volatility)
    lines_by_user: dict[int, list[ObservedLine]] = defaultdict(list)
    for line in lines:
        lines_by_user[line.user_id].append(line)

    records = []
    markets: dict[tuple[str, ...], Market] = {}
    for user_id, portfolio in sorted(batch.portfolios.items()):
        risk = result_to_json(value_portfolio(portfolio, markets))
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

    changed = await write_statuses(database, config, records)
    if changed is None:
        return PublishReport(users=len(records), changed=0, skipped=True, unvalued=unvalued)
    return PublishReport(users=len(records), changed=changed, unvalued=unvalued)
