"""What-if on venue accounts: the changes of a what-if (`aggregator.risk.whatif.Change`) as
each venue would see them, so the venue view can be reported before and after.

- `deposit` / `withdraw` / `borrow` / `repay` on a venue and chain move that venue account's
  amount of the asset (in its base units: amount x 10^decimals, rounded toward zero). An asset
  the account does not hold yet has no venue parameters read: the account's line after says so
  (`problem`) instead of guessing them.
- `price_shock` multiplies the venues' own prices of the asset (or of every non-stable asset).
- perp changes (`open_perp`, `resize_perp`, `close_perp`) on a venue: the venue's own margin
  for a changed perp (its tier, realised pnl) is not modelled here, so that venue account's line
  after says so (`problem`) rather than show a number the venue would not.

Pure: no I/O. Changes that do not name a venue account (a wallet deposit) leave venues as they
are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import ROUND_DOWN, Decimal

from aggregator.risk.whatif import Change
from chains.base import VenueAccount, VenueAsset

_ONE = Decimal(1)


def _scaled(amount: Decimal, decimals: int) -> int:
    return int(amount.scaleb(decimals).to_integral_value(ROUND_DOWN))


def _move(account: VenueAccount, change: Change) -> VenueAccount:
    """`account` with `change.amount` of the change's asset on the deposit (+) or debt
    (-) side."""
    assert change.amount is not None
    side = 1 if change.action in ("deposit", "withdraw") else -1
    delta = change.amount if change.action in ("deposit", "repay") else -change.amount
    assets = list(account.assets)
    for index, asset in enumerate(assets):
        if asset.asset != change.asset or (asset.amount_raw > 0) != (side > 0):
            continue
        raw = asset.amount_raw + _scaled(delta, asset.decimals)
        if raw * side < 0:
            raw = 0
        assets[index] = replace(asset, amount_raw=raw)
        return replace(account, assets=tuple(a for a in assets if a.amount_raw != 0))
    template = next((a for a in assets if a.asset == change.asset), None)
    if template is None:
        return replace(
            account,
            problem=f"what-if: {change.asset} is not held on {account.venue}, so its venue "
            "parameters were not read",
        )
    added = VenueAsset(
        asset=template.asset,
        amount_raw=_scaled(delta, template.decimals),
        decimals=template.decimals,
        price=template.price,
        params=template.params,
        market=template.market,
    )
    return replace(account, assets=(*assets, added))


def _shock(account: VenueAccount, change: Change, stable: frozenset[str]) -> VenueAccount:
    assert change.change is not None
    factor = _ONE + change.change
    assets = []
    for asset in account.assets:
        hit = asset.asset == change.asset if change.asset is not None else asset.asset not in stable
        if hit and asset.price is not None:
            asset = replace(asset, price=asset.price * factor)
        assets.append(asset)
    return replace(account, assets=tuple(assets))


def apply_venue_changes(
    venues: Sequence[tuple[str, VenueAccount]],
    changes: Iterable[Change],
    stable: frozenset[str],
    caip2: Mapping[str, str],
) -> list[tuple[str, VenueAccount]]:
    """`venues` ((chain key, account) pairs) after `changes`. `caip2` maps chain keys to the
    CAIP-2 ids changes name chains by. Changes are assumed valid (the unified what-if checks
    them first)."""
    out = list(venues)
    for change in changes:
        for index, (chain, account) in enumerate(out):
            if account.problem is not None:
                continue
            if change.action == "price_shock":
                out[index] = (chain, _shock(account, change, stable))
                continue
            if change.venue != account.venue or change.chain != caip2.get(chain, chain):
                continue
            if change.action in ("open_perp", "resize_perp", "close_perp"):
                out[index] = (
                    chain,
                    replace(
                        account,
                        problem=f"what-if: {change.action} is not modelled by the venue's own "
                        "rules here",
                    ),
                )
            elif change.amount is not None:
                out[index] = (chain, _move(account, change))
    return out
