"""Step 4 of a pass: a user's status, as stored and as served.

A pass stores the *headline* document (status, staleness, the exact totals) with references to
its inputs: the pass's market, the heads its lines were read at, its wallets and a digest of its
lines. The full document (lines, liquidation prices, limits, holdings, chain read points) is
rendered from those on read (`aggregator.publish.documents`), by `status_document` below:
the same function the pass would have called, so it is the same document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aggregator.addresses import caip10
from aggregator.config import LoadedConfig
from aggregator.publish.market import ChainRead
from aggregator.publish.portfolios import ObservedLine
from aggregator.risk.output import decimal_text
from aggregator.store.published.statuses import StatusRecord
from aggregator.valuation.lines import new_instance


def iso_text(moment: datetime) -> str:
    """An instant as the documents write it (UTC, `Z`)."""
    return _iso(moment)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def lines_digest(
    wallets: Sequence[tuple[str, str]],
    lines: Sequence[ObservedLine],
    config: str,
    failing: Sequence[str] = (),
    unpriced: Sequence[str] = (),
) -> str:
    """What a user's status depends on besides prices and time: its wallets, every line read
    for them, the config, which of its chains' polls are failing (`failing`, chain keys) and
    which of its assets never had a price (`unpriced`): the document says both. Equal digests
    and an equal headline mean nothing to rewrite.

    Each line enters as its fields joined by a unit separator, one line per text line (an
    f-string: a pass digests a million lines, and a tuple's repr costs 2.5 times as much).
    The head each line was read at is left out: the same holdings read at a newer block give
    the same digest."""
    text = "\n".join(
        (
            config,
            ",".join(sorted(failing)),
            ",".join(unpriced),
            ";".join([f"{chain}:{address}" for chain, address in wallets]),
            *[
                f"{c}\x1f{a}\x1f{s}\x1f{v}\x1f{k}\x1f{n}\x1f{d}\x1f{e}\x1f{m}"
                for _, c, a, s, v, k, n, d, e, m, _head in lines
            ],
        )
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def unread_chains(
    config: LoadedConfig, wallet_chains: Sequence[str], reads: Mapping[str, ChainRead]
) -> list[str]:
    """CAIP-2 ids of the configured chains a user has wallets on that were never read."""
    return [
        config.chains[key].caip2
        for key in sorted(set(wallet_chains))
        if key in config.chains and key not in reads
    ]


def headline_document(
    user_id: int,
    user_name: str,
    as_of: str,
    risk: Mapping[str, Any],
    unread: Sequence[str] = (),
    unpriced: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The stored form: the headline of `status_document`, key for key. `risk` is a headline
    result (`headline_to_json`), `as_of` the pass's instant as text, `unread` the user's
    chains never read (`unread_chains`)."""
    stale_chains = risk["stale_chains"]
    return {
        "user": user_name,
        "user_id": user_id,
        "as_of": as_of,
        **risk,
        "stale": risk["stale"] or bool(unread) or bool(unpriced),
        "stale_chains": sorted({*stale_chains, *unread}) if unread else sorted(stale_chains),
        "unpriced_assets": list(unpriced),
    }


def status_document(
    config: LoadedConfig,
    user_id: int,
    user_name: str,
    wallets: Sequence[tuple[str, str]],
    reads: Mapping[str, ChainRead],
    risk: dict[str, Any],
    lines: Sequence[ObservedLine],
    as_of: datetime,
    unpriced: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The published JSON: the risk result plus who, which accounts and which blocks."""
    chains: dict[str, dict[str, Any]] = {}
    unread: list[str] = []
    for chain_key in sorted({chain for chain, _ in wallets}):
        chain = config.chains.get(chain_key)
        if chain is None:
            continue
        read = reads.get(chain_key)
        if read is None:
            unread.append(chain.caip2)
            chains[chain.caip2] = {"chain": chain_key, "height": None, "stale": True}
            continue
        chains[chain.caip2] = {
            "chain": chain_key,
            "height": read.height,
            "block_hash": read.block_hash,
            "block_time": _iso(datetime.fromtimestamp(read.timestamp, UTC)),
            "finality": read.finality,
            "stale": chain.caip2 in risk.get("stale_chains", []),
            "last_poll_failed": read.last_poll_failed,
            "last_poll_error": read.last_poll_error,
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
        "user": user_name,
        "user_id": user_id,
        "as_of": _iso(as_of),
        "accounts": [
            caip10(config.chains[chain].caip2, address)
            for chain, address in wallets
            if chain in config.chains
        ],
        "chains": chains,
        **risk,
        "stale": bool(risk.get("stale")) or bool(unread) or bool(unpriced),
        "stale_chains": stale_chains,
        "unpriced_assets": list(unpriced),
        "holdings": holdings,
    }


# A pass builds one record per user: its slots are filled directly (the frozen dataclass's
# `__init__` sets each of 19 fields through `object.__setattr__`); the same object, the same
# values (tested against the constructor).
_RECORD_SLOTS = {f.name: StatusRecord.__dict__[f.name].__set__ for f in fields(StatusRecord)}
_SUMMARY_PATHS = (
    ("equity_usd", "equity", None),
    ("weighted_collateral_init_usd", "weighted_collateral", "init"),
    ("weighted_collateral_maint_usd", "weighted_collateral", "maint"),
    ("requirement_init_usd", "requirement", "init"),
    ("requirement_maint_usd", "requirement", "maint"),
    ("health_init_usd", "health", "init"),
    ("health_maint_usd", "health", "maint"),
    ("free_collateral_usd", "free_collateral", None),
)


def status_record(
    user_id: int, as_of: datetime, document: dict[str, Any], inputs: dict[str, Any]
) -> StatusRecord:
    """The row form of a document: its headline numbers as exact decimals."""
    hf = document.get("health_factor")
    record: StatusRecord = new_instance(StatusRecord)
    slots = _RECORD_SLOTS
    slots["user_id"](record, user_id)
    slots["as_of"](record, as_of)
    slots["status"](record, document["status"])
    slots["stale"](record, document["stale"])
    slots["stale_chains"](record, tuple(document["stale_chains"]))
    slots["health_factor"](record, None if hf is None else Decimal(hf))
    for name, key, side in _SUMMARY_PATHS:
        value = document[key] if side is None else document[key][side]
        slots[name](record, Decimal(value))
    slots["document"](record, document)
    slots["inputs"](record, inputs)
    slots["recorded_at"](record, None)
    slots["seq"](record, 0)
    slots["history_id"](record, None)
    return record
