"""What every venue's rules module provides: the venue's own count of one account at given prices.

A rules module (`aggregator.venues.aave_rules`, `drift`, `kamino`, `marginfi`,
`hyperliquid_rules`) turns a `chains.base.VenueAccount` (the venue's parameters, amounts and
prices, read at one read point) into a `VenueMeasure`: the collateral and the requirement as
that venue counts them, in USD, and its native metric in its own units. The venue liquidates
when the collateral falls below the requirement (`VenueMeasure.liquidatable`); that common
margin is what liquidation prices and the uniform shock are solved on (`aggregator.venues.assess`).

Pure: no I/O. A parameter that is missing or out of range raises `VenueParameterError`, and the
venue line says so instead of a health.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Protocol

from chains.base import VenueAccount, VenueAsset

_ONE = Decimal(1)


class VenueParameterError(ValueError):
    """A venue parameter is missing, unreadable or out of range (a weight above 1, a
    liquidation threshold above 100%): no venue-native health can be computed."""


@dataclass(frozen=True, slots=True)
class VenueMeasure:
    """One venue account at one set of prices, as the venue counts it.

    `collateral` is what the venue weighs against `requirement` (USD, both >= 0): the venue
    liquidates when collateral < requirement. `metric` is the venue's native number (Aave health
    factor, Drift health 0-100, Kamino LTV, MarginFi maintenance health, Hyperliquid account
    value / maintenance margin); None when it does not exist, with `metric_reason` saying why.
    `extra` carries other figures the venue names (decimal strings), e.g. Kamino's liquidation
    LTV beside its LTV.
    """

    collateral: Decimal
    requirement: Decimal
    metric: Decimal | None
    metric_reason: str | None = None
    extra: Mapping[str, str] | None = None

    @property
    def margin(self) -> Decimal:
        return self.collateral - self.requirement

    @property
    def liquidatable(self) -> bool:
        return self.collateral < self.requirement


class VenueRules(Protocol):
    """One venue's margin rules."""

    @property
    def name(self) -> str:
        """The `VenueAccount.rules` it applies to: "aave_v3", "drift", ..."""
        ...

    @property
    def metric(self) -> str:
        """The native metric's name, e.g. "health_factor"."""
        ...

    @property
    def units(self) -> str:
        """What the metric means, e.g. "ratio; the venue liquidates below 1"."""
        ...

    def check(self, account: VenueAccount) -> None:
        """Raise `VenueParameterError` naming the parameter when one is missing or out of
        range; return None when the account can be measured."""
        ...

    def measure(self, account: VenueAccount, prices: Mapping[str, Decimal]) -> VenueMeasure:
        """The account at `prices` (asset symbol -> USD per unit; the venue's own price where
        an asset is absent). May raise: VenueParameterError."""
        ...


def decimal_param(params: Mapping[str, str], key: str, where: str) -> Decimal:
    """`params[key]` as a finite Decimal. May raise: VenueParameterError (missing or not a
    number), naming `where` and the key."""
    text = params.get(key)
    if text is None:
        raise VenueParameterError(f"{where}: {key} was not read")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise VenueParameterError(f"{where}: {key} is not a number: {text!r}") from None
    if not value.is_finite():
        raise VenueParameterError(f"{where}: {key} is not finite: {text!r}")
    return value


def ratio_param(
    params: Mapping[str, str], key: str, where: str, *, high: Decimal = _ONE
) -> Decimal:
    """A ratio parameter in [0, `high`]. May raise: VenueParameterError (missing, or out of
    range: "a weight above 1")."""
    value = decimal_param(params, key, where)
    if value < 0 or value > high:
        raise VenueParameterError(f"{where}: {key} = {value} is outside [0, {high}]")
    return value


def units(asset: VenueAsset) -> Decimal:
    """The asset's signed amount in whole tokens (exact)."""
    return Decimal(asset.amount_raw).scaleb(-asset.decimals)


def price_of(asset: VenueAsset, prices: Mapping[str, Decimal], where: str) -> Decimal:
    """The price to count `asset` at: `prices` when it names the asset, else the venue's own.
    May raise: VenueParameterError (the venue has no price for it)."""
    price = prices.get(asset.asset, asset.price)
    if price is None:
        raise VenueParameterError(f"{where}: no venue price for {asset.asset}")
    if price < 0:
        raise VenueParameterError(f"{where}: negative price for {asset.asset}")
    return price
