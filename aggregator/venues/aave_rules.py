"""Aave v3's rules as a venue-view module: a `VenueAccount` read from a pool, measured by the
pool's own integer math (`aggregator.venues.aave.account`).

Keys read (exact decimal strings), as `chains.evm.aave_v3.venue_account` writes them:
- per asset (`VenueAsset.params`): `ltv_bps`, `liquidation_threshold_bps`,
  `liquidation_bonus_bps`, `usage_as_collateral` ("true"/"false"); a deposit is a positive
  `amount_raw` (aToken balance), a borrow a negative one (debt token balance), both in the
  underlying's units; `price` is the pool oracle's price in USD (its base units / `base_unit`);
- per account (`VenueAccount.params`): `base_unit` (1e8 on USD markets) and `revision`
  ("v3-core" or "v3-origin": the rounding the pool's GenericLogic follows);
- `reported`: the pool's own `getUserAccountData` (`health_factor_wad`, totals in base units).

collateral = the health factor's numerator (v3-origin: sum(collateral value x liquidation
threshold); v3-core: total collateral x the floored average threshold), requirement = debt value,
both in USD, so collateral < requirement exactly when the health factor is below 1. The native
metric is the health factor (the pool liquidates below 1), None when nothing is owed. At the
pool's own prices it is the pool's to the last WAD unit (tested on anvil against
`getUserAccountData`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_FLOOR, Decimal

from aggregator.venues import aave
from aggregator.venues.model import VenueMeasure, VenueParameterError, decimal_param, price_of
from chains.base import VenueAccount

_BPS = Decimal(aave.PERCENTAGE_FACTOR)


class AaveRules:
    name = "aave_v3"
    metric = "health_factor"
    units = "ratio of threshold-weighted collateral to debt; the pool liquidates below 1"

    def check(self, account: VenueAccount) -> None:
        self._reserves(account, {})

    def measure(self, account: VenueAccount, prices: Mapping[str, Decimal]) -> VenueMeasure:
        reserves, base_unit, revision = self._reserves(account, prices)
        result = aave.account(reserves, revision)
        scale = Decimal(base_unit)
        if revision == "v3-core":  # the health factor's numerator: the floored average
            weighted = Decimal(
                aave.percent_mul(result.total_collateral_base, result.avg_liquidation_threshold_bps)
            )
        else:  # v3-origin: the value-weighted sum itself
            weighted = (
                sum(
                    (
                        Decimal(aave.collateral_value_base(r)) * r.liquidation_threshold_bps
                        for r in reserves
                        if r.counts_as_collateral and r.collateral_raw > 0
                    ),
                    Decimal(0),
                )
                / _BPS
            )
        return VenueMeasure(
            collateral=weighted / scale,
            requirement=Decimal(result.total_debt_base) / scale,
            metric=result.health_factor,
            metric_reason=None if result.health_factor is not None else "nothing is owed",
            extra={
                "total_collateral_usd": str(Decimal(result.total_collateral_base) / scale),
                "avg_liquidation_threshold": str(
                    Decimal(result.avg_liquidation_threshold_bps) / _BPS
                ),
                "avg_ltv": str(Decimal(result.avg_ltv_bps) / _BPS),
                "available_borrows_usd": str(Decimal(result.available_borrows_base) / scale),
                "health_factor_wad": str(result.health_factor_wad),
            },
        )

    def _reserves(
        self, account: VenueAccount, prices: Mapping[str, Decimal]
    ) -> tuple[list[aave.AaveReserve], int, aave.AaveRules]:
        where = account.venue
        base_unit = int(decimal_param(account.params, "base_unit", where))
        if base_unit <= 0:
            raise VenueParameterError(f"{where}: base_unit must be positive")
        revision = account.params.get("revision", "v3-core")
        if revision not in ("v3-core", "v3-origin"):
            raise VenueParameterError(f"{where}: unknown revision {revision!r}")
        merged: dict[tuple[str, str | None], aave.AaveReserve] = {}
        for asset in account.assets:
            label = f"{where} {asset.asset}"
            threshold = int(decimal_param(asset.params, "liquidation_threshold_bps", label))
            ltv = int(decimal_param(asset.params, "ltv_bps", label))
            if not 0 <= threshold <= aave.PERCENTAGE_FACTOR:
                raise VenueParameterError(
                    f"{label}: liquidation threshold {threshold} bps is above 100%"
                )
            if not 0 <= ltv <= threshold:
                raise VenueParameterError(f"{label}: ltv {ltv} bps is above its threshold")
            price = price_of(asset, prices, where)
            price_base = int((price * base_unit).to_integral_value(ROUND_FLOOR))
            key = (asset.asset, asset.market)
            prior = merged.get(key)
            collateral = max(asset.amount_raw, 0) + (prior.collateral_raw if prior else 0)
            debt = max(-asset.amount_raw, 0) + (prior.debt_raw if prior else 0)
            merged[key] = aave.AaveReserve(
                asset=asset.asset,
                collateral_raw=collateral,
                debt_raw=debt,
                decimals=asset.decimals,
                price_base=price_base,
                liquidation_threshold_bps=threshold,
                ltv_bps=ltv,
                usage_as_collateral=asset.params.get("usage_as_collateral", "true") == "true",
            )
        return list(merged.values()), base_unit, revision  # type: ignore[return-value]


RULES = AaveRules()
