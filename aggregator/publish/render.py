"""Step 4 of a pass: the published status document (the risk result plus who, which accounts
and which blocks) and its row form."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aggregator.addresses import caip10
from aggregator.config import LoadedConfig
from aggregator.publish.portfolios import ObservedLine
from aggregator.risk.output import decimal_text
from aggregator.store.observations import ChainObservations
from aggregator.store.statuses import StatusRecord
from aggregator.store.users import UserRow, WalletRow


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
