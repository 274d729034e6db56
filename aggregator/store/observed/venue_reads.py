"""Venue accounts as stored: one `venue_reads` row per (head, user, venue account).

The document is the `VenueAccount` with every number as an exact decimal string (amounts in
base units as integer strings), so what the venue math reads back is what the adapter read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, any_, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.store import models as m
from chains.base import Address, VenueAccount, VenueAsset


def venue_document(account: VenueAccount) -> dict[str, Any]:
    """`account` as JSON (decimal strings): the `venue_reads.document` column."""
    return {
        "account": account.account,
        "venue": account.venue,
        "rules": account.rules,
        "subaccount": account.subaccount,
        "problem": account.problem,
        "params": dict(account.params),
        "reported": dict(account.reported),
        "assets": [
            {
                "asset": a.asset,
                "amount_raw": str(a.amount_raw),
                "decimals": a.decimals,
                "price": None if a.price is None else str(a.price),
                "params": dict(a.params),
                "market": a.market,
            }
            for a in account.assets
        ],
    }


def venue_from_document(document: Mapping[str, Any]) -> VenueAccount:
    """The inverse of `venue_document`. May raise: KeyError, ValueError (a malformed row)."""
    return VenueAccount(
        account=Address(str(document["account"])),
        venue=str(document["venue"]),
        rules=str(document["rules"]),
        subaccount=document.get("subaccount"),
        problem=document.get("problem"),
        params={str(k): str(v) for k, v in (document.get("params") or {}).items()},
        reported={str(k): str(v) for k, v in (document.get("reported") or {}).items()},
        assets=tuple(
            VenueAsset(
                asset=str(a["asset"]),
                amount_raw=int(a["amount_raw"]),
                decimals=int(a["decimals"]),
                price=None if a.get("price") is None else Decimal(str(a["price"])),
                params={str(k): str(v) for k, v in (a.get("params") or {}).items()},
                market=a.get("market"),
            )
            for a in document.get("assets") or []
        ),
    )


def venue_rows(
    accounts: Sequence[VenueAccount], wallet_owner: Mapping[str, int]
) -> list[dict[str, Any]]:
    """Insert rows (without head and chain) of the venue accounts whose wallet has an owner."""
    rows = []
    for account in accounts:
        user_id = wallet_owner.get(account.account)
        if user_id is None:
            continue
        rows.append(
            {
                "user_id": user_id,
                "account": account.account,
                "venue": account.venue,
                "rules": account.rules,
                "subaccount": account.subaccount,
                "document": venue_document(account),
                "problem": account.problem,
            }
        )
    return rows


@dataclass(frozen=True, slots=True)
class StoredVenue:
    """A venue account as read at one head for one user."""

    user_id: int
    head_id: int
    chain: str  # config key
    account: VenueAccount


async def venues_at_heads(
    session: AsyncSession, head_ids: Sequence[int], *, user_ids: Sequence[int] | None = None
) -> list[StoredVenue]:
    """The venue accounts read at `head_ids` (of `user_ids`, when given), in stored order.
    The users travel as one array parameter (a publish shard names thousands)."""
    if not head_ids:
        return []
    query = select(
        m.VenueRead.user_id, m.VenueRead.chain_head_id, m.VenueRead.chain, m.VenueRead.document
    ).where(m.VenueRead.chain_head_id.in_(list(head_ids)))
    if user_ids is not None:
        users = literal(list(user_ids), type_=ARRAY(BigInteger))
        query = query.where(m.VenueRead.user_id == any_(users))
    rows = (await session.execute(query.order_by(m.VenueRead.id))).all()
    return [
        StoredVenue(user_id, head_id, chain, venue_from_document(document))
        for user_id, head_id, chain, document in rows
    ]
