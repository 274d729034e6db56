"""MarginFi v2's own maintenance health of one account.

Rules (mrgnlabs/marginfi-v2 at 3031ba3b (2026-01-28): programs/marginfi/src/state/
marginfi_account.rs `calc_weighted_asset_value`, `calc_weighted_liab_value`, the RiskEngine's
maintenance check; state/price.rs `get_confidence_interval`, `get_price_of_type`;
type-crate/src/constants.rs CONF_INTERVAL_MULTIPLE, MAX_CONF_INTERVAL; marginfi docs "Risk
management: health"):

- a deposit counts for tokens x low price x asset_weight_maint, a debt for tokens x high price x
  liability_weight_maint; the low / high price is the real-time oracle price minus / plus its
  confidence interval (Pyth: 2.12 x conf, capped at 5 % of the price). The interval is read
  with the venue price; at another (shocked) price it is kept in proportion, so that price x
  (1 -/+ interval / venue price) is the low / high price;
- deposits in a bank of the "isolated" risk tier count for nothing;
- the account can be liquidated when weighted assets < weighted liabilities (collateral =
  weighted assets, requirement = weighted liabilities); the maintenance health shown by the
  venue is (weighted assets - weighted liabilities) / weighted assets (`metric`; none without
  weighted assets).

Parameter ranges: an asset weight above 1 or a liability weight below 1 is a
`VenueParameterError` (marginfi's `BankConfig::validate` lets asset_weight_maint reach 2; this
venue view refuses such a weight), as is a confidence interval outside [0, 5 % of the venue
price].

Not modelled: e-mode weights (a bank's e-mode entry can raise an asset weight), price-type
details of oracles other than Pyth pull (Switchboard, staked / Kamino / Drift wrapped setups: the
adapter gives them no price), emissions.

Keys (exact decimal strings, written by `chains.solana.venues.marginfi_venue_account`): per asset
(`market` = the bank address; amount > 0 a deposit, < 0 a debt, base units)
`asset_weight_maint`, `liability_weight_maint` (ratios), `price_conf_interval` (USD, the
confidence interval of the venue price), `isolated` ("1" for a bank of the isolated risk tier,
else "0").
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

MAX_CONF_INTERVAL = Decimal("0.05")
_ZERO, _ONE = Decimal(0), Decimal(1)


def _where(account: VenueAccount, asset: VenueAsset) -> str:
    return f"marginfi {account.subaccount or account.account} bank {asset.market or asset.asset}"


def _parameters(asset: VenueAsset, where: str) -> tuple[Decimal, Decimal, Decimal, bool]:
    """(asset weight, liability weight, confidence interval / venue price, isolated).

    May raise: VenueParameterError."""
    asset_weight = ratio_param(asset.params, "asset_weight_maint", where)
    liability_weight = decimal_param(asset.params, "liability_weight_maint", where)
    if liability_weight < 1:
        raise VenueParameterError(
            f"{where}: liability_weight_maint = {liability_weight} is below 1"
        )
    interval = decimal_param(asset.params, "price_conf_interval", where)
    if interval == 0:
        conf = _ZERO
    elif asset.price is None or asset.price <= 0:
        raise VenueParameterError(f"{where}: price_conf_interval without a venue price")
    else:
        conf = interval / asset.price
    if conf < 0 or conf > MAX_CONF_INTERVAL:
        raise VenueParameterError(
            f"{where}: price_conf_interval = {interval} is outside [0, 5 % of the venue price]"
        )
    isolated = asset.params.get("isolated", "0")
    if isolated not in ("0", "1"):
        raise VenueParameterError(f"{where}: isolated = {isolated!r} is not 0 or 1")
    return asset_weight, liability_weight, conf, isolated == "1"


class MarginfiRules:
    """`aggregator.venues.model.VenueRules` for MarginFi v2 (see the module docstring)."""

    name = "marginfi"
    metric = "maintenance_health"
    units = "ratio (assets - liabilities) / assets, maintenance weights; liquidatable below 0"

    def check(self, account: VenueAccount) -> None:
        if account.problem is not None:
            raise VenueParameterError(account.problem)
        for asset in account.assets:
            _parameters(asset, _where(account, asset))

    def measure(self, account: VenueAccount, prices: Mapping[str, Decimal]) -> VenueMeasure:
        self.check(account)
        assets = _ZERO
        liabilities = _ZERO
        for asset in account.assets:
            where = _where(account, asset)
            asset_weight, liability_weight, conf, isolated = _parameters(asset, where)
            price = price_of(asset, prices, where)
            amount = units(asset)
            if asset.amount_raw > 0 and not isolated:
                assets += amount * price * (_ONE - conf) * asset_weight
            elif asset.amount_raw < 0:
                liabilities += -amount * price * (_ONE + conf) * liability_weight
        if assets == 0:
            return VenueMeasure(
                collateral=assets,
                requirement=liabilities,
                metric=None,
                metric_reason="no weighted assets: MarginFi's health is not defined",
            )
        return VenueMeasure(
            collateral=assets,
            requirement=liabilities,
            metric=(assets - liabilities) / assets,
        )


RULES = MarginfiRules()
