"""Reference data mirrored from config: chains, assets, deployments, price sources."""

from __future__ import annotations

from collections.abc import Sequence

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
    # Delete stale children first so removed chains/assets are free to go.
    await _delete_missing(
        session,
        m.PriceSource,
        (m.PriceSource.asset, m.PriceSource.chain, m.PriceSource.kind, m.PriceSource.address),
        [(p.asset, p.chain, p.kind, p.address) for p in price_sources],
    )
    await _delete_missing(
        session,
        m.AssetDeployment,
        (m.AssetDeployment.asset, m.AssetDeployment.chain),
        [(d.asset, d.chain) for d in deployments],
    )
    await _delete_missing(session, m.Asset, (m.Asset.symbol,), [(a.symbol,) for a in assets])
    await _delete_missing(session, m.Chain, (m.Chain.key,), [(c.key,) for c in chains])

    if chains:
        chain_rows = [{"key": c.key, "caip2": c.caip2, "family": c.family} for c in chains]
        chain_insert = insert(m.Chain).values(chain_rows)
        await session.execute(
            chain_insert.on_conflict_do_update(
                index_elements=[m.Chain.key],
                set_={"caip2": chain_insert.excluded.caip2, "family": chain_insert.excluded.family},
            )
        )
    if assets:
        asset_rows = [{"symbol": a.symbol, "stable": a.stable, "family": a.family} for a in assets]
        asset_insert = insert(m.Asset).values(asset_rows)
        await session.execute(
            asset_insert.on_conflict_do_update(
                index_elements=[m.Asset.symbol],
                set_={
                    "stable": asset_insert.excluded.stable,
                    "family": asset_insert.excluded.family,
                },
            )
        )
    if deployments:
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
        deployment_insert = insert(m.AssetDeployment).values(deployment_rows)
        excluded = deployment_insert.excluded
        await session.execute(
            deployment_insert.on_conflict_do_update(
                index_elements=[m.AssetDeployment.asset, m.AssetDeployment.chain],
                set_={
                    "address": excluded.address,
                    "decimals": excluded.decimals,
                    "token_program": excluded.token_program,
                },
            )
        )
    if price_sources:
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
        source_insert = insert(m.PriceSource).values(source_rows)
        await session.execute(
            source_insert.on_conflict_do_update(
                index_elements=[
                    m.PriceSource.asset,
                    m.PriceSource.chain,
                    m.PriceSource.kind,
                    m.PriceSource.address,
                ],
                set_={"feed_id": source_insert.excluded.feed_id},
            )
        )


async def _delete_missing(
    session: AsyncSession,
    model: type[m.Base],
    key_columns: tuple[object, ...],
    keep: list[tuple[object, ...]],
) -> None:
    statement = delete(model)
    if keep:
        statement = statement.where(tuple_(*key_columns).not_in(keep))
    await session.execute(statement)
