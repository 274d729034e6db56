"""Reference data mirrored from config: chains, assets, deployments, price sources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import delete, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.store import models as m
from aggregator.store.refs import AssetRef, ChainRef, DeploymentRef, PriceSourceRef


async def sync_reference_data(
    session: AsyncSession,
    chains: Sequence[ChainRef],
    assets: Sequence[AssetRef],
    deployments: Sequence[DeploymentRef],
    price_sources: Sequence[PriceSourceRef],
) -> None:
    """Make the reference tables equal to the arguments: upsert every row given, delete rows
    that are no longer given (config is the source of truth). Observations and wallets are not
    touched: they name chains and assets by key, without foreign keys to these tables.

    May raise: sqlalchemy.exc.IntegrityError (a deployment or price source naming an asset or
    chain not given).
    """
    chain_rows = [{"key": c.key, "caip2": c.caip2, "family": c.family} for c in chains]
    asset_rows = [{"symbol": a.symbol, "stable": a.stable, "family": a.family} for a in assets]
    deployment_rows = [
        {
            "asset": d.asset,
            "chain": d.chain,
            "address": d.address,
            "decimals": d.decimals,
            "token_program": d.token_program,
        }
        for d in deployments
    ]
    source_rows = [
        {
            "asset": p.asset,
            "chain": p.chain,
            "kind": p.kind,
            "address": p.address,
            "feed_id": p.feed_id,
        }
        for p in price_sources
    ]
    parents_first: tuple[tuple[type[m.Base], Sequence[Mapping[str, object]]], ...] = (
        (m.Chain, chain_rows),
        (m.Asset, asset_rows),
        (m.AssetDeployment, deployment_rows),
        (m.PriceSource, source_rows),
    )
    # Delete stale children first so removed chains/assets are free to go; upsert parents first
    # so new deployments and price sources find theirs.
    for model, rows in reversed(parents_first):
        await _delete_missing(session, model, rows)
    for model, rows in parents_first:
        await _upsert(session, model, rows)


async def _delete_missing(
    session: AsyncSession, model: type[m.Base], keep: Sequence[Mapping[str, object]]
) -> None:
    """Delete the rows of `model` whose primary key is not among the rows in `keep`."""
    key = m.table_of(model).primary_key.columns
    statement = delete(model)
    if keep:
        statement = statement.where(
            tuple_(*key).not_in([tuple(row[column.name] for column in key) for row in keep])
        )
    await session.execute(statement)


async def _upsert(
    session: AsyncSession, model: type[m.Base], rows: Sequence[Mapping[str, object]]
) -> None:
    """Insert `rows`; where a row's primary key exists, overwrite every other column."""
    if not rows:
        return
    table = m.table_of(model)
    statement = insert(table).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=list(table.primary_key.columns),
            set_={
                column.name: statement.excluded[column.name]
                for column in table.columns
                if not column.primary_key
            },
        )
    )
