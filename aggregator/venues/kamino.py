"""Kamino Lend (klend)'s own count of one obligation: its LTV against its liquidation LTV.

Rules (Kamino-Finance/klend at edd5ff5 (2026-03-23): programs/klend/src/state/obligation.rs
`loan_to_value`, `unhealthy_loan_to_value`; lending_market/lending_operations.rs
`refresh_obligation_deposits` / `refresh_obligation_borrows`; state/liquidation_operations.rs
`check_liquidate_obligation`):

- a deposit's market value = liquidity tokens x the reserve's market price;
- a borrow's borrow-factor-adjusted value = tokens x price x borrow_factor (borrow_factor_pct /
  100, at least 1: riskier debts count for more);
- LTV = borrow-factor-adjusted debt value / deposited value (`metric`);
- unhealthy borrow value = sum(deposit value x liquidation_threshold); liquidation ("unhealthy")
  LTV = unhealthy borrow value / deposited value (`extra["liquidation_ltv"]`);
- the obligation can be liquidated once its LTV reaches the liquidation LTV (klend: not while
  LTV < unhealthy LTV), i.e. once the adjusted debt reaches the unhealthy borrow value:
  collateral = unhealthy borrow value, requirement = borrow-factor-adjusted debt value
  (`VenueMeasure.liquidatable` is strict, so exact equality reads as not yet liquidatable).

Parameter ranges (lending_operations.rs `validate_reserve_config_integrity`): liquidation
threshold in [0, 1], LTV in [0, 1) and not above the threshold, borrow factor >= 1; anything
outside is a `VenueParameterError`.

Not modelled: elevation groups (an obligation in one takes the group's LTV, threshold and a
borrow factor of 1; `chains.solana.venues` marks such an obligation with a `problem`), the
market's `min_value_skip_liquidation_ltv_checks` dust rule, and obligation orders.

Keys (exact decimal strings, written by `chains.solana.venues.kamino_venue_account`): per asset
(`market` = the reserve address; amount > 0 a deposit in liquidity base units, < 0 a debt)
`loan_to_value`, `liquidation_threshold`, `borrow_factor` (ratios, 1 = 100 %). The account's
`reported` holds the obligation's own figures at its last refresh (`deposited_value`,
`borrow_factor_adjusted_debt_value`, `unhealthy_borrow_value`, `allowed_borrow_value`, USD).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from aggregator.venues.model import (
    VenueMeasure,
    VenueParameterError,
    decimal_param,
    price_of,
    ratio_param,
    units,
)
from chains.base import VenueAccount, VenueAsset

_ZERO = Decimal(0)


def _where(account: VenueAccount, asset: VenueAsset) -> str:
    return f"kamino {account.subaccount or account.account} reserve {asset.market or asset.asset}"


def _parameters(asset: VenueAsset, where: str) -> tuple[Decimal, Decimal, Decimal]:
    """(loan_to_value, liquidation_threshold, borrow_factor). May raise: VenueParameterError."""
    threshold = ratio_param(asset.params, "liquidation_threshold", where)
    ltv = ratio_param(asset.params, "loan_to_value", where)
    if ltv >= 1 or ltv > threshold:
        raise VenueParameterError(
            f"{where}: loan_to_value = {ltv} is not below 1 and at most the liquidation "
            f"threshold {threshold}"
        )
    borrow_factor = decimal_param(asset.params, "borrow_factor", where)
    if borrow_factor < 1:
        raise VenueParameterError(f"{where}: borrow_factor = {borrow_factor} is below 1")
    return ltv, threshold, borrow_factor


class KaminoRules:
    """`aggregator.venues.model.VenueRules` for Kamino Lend (see the module docstring)."""

    name = "kamino"
    metric = "ltv"
    units = "ratio; Kamino liquidates once it reaches extra['liquidation_ltv']"

    def check(self, account: VenueAccount) -> None:
        if account.problem is not None:
            raise VenueParameterError(account.problem)
        for asset in account.assets:
            _parameters(asset, _where(account, asset))

    def measure(self, account: VenueAccount, prices: Mapping[str, Decimal]) -> VenueMeasure:
        self.check(account)
        deposited = _ZERO
        unhealthy = _ZERO
        adjusted_debt = _ZERO
        for asset in account.assets:
            where = _where(account, asset)
            _ltv, threshold, borrow_factor = _parameters(asset, where)
            value = units(asset) * price_of(asset, prices, where)
            if asset.amount_raw > 0:
                deposited += value
                unhealthy += value * threshold
            elif asset.amount_raw < 0:
                adjusted_debt += -value * borrow_factor
        if deposited == 0:
            return VenueMeasure(
                collateral=unhealthy,
                requirement=adjusted_debt,
                metric=None,
                metric_reason="no deposits: Kamino's LTV is not defined",
            )
        return VenueMeasure(
            collateral=unhealthy,
            requirement=adjusted_debt,
            metric=adjusted_debt / deposited,
            extra={
                "liquidation_ltv": str(unhealthy / deposited),
                "deposited_value": str(deposited),
            },
        )


RULES = KaminoRules()
