"""Dynamic volatility: exponentially weighted estimates from observed prices.

Prices arrive at irregular times (blocks, slots, oracle heartbeats), so each log return is
weighted by its age and the variance is estimated per second of elapsed time:
`var_rate = sum(w_k * r_k^2) / sum(w_k * dt_k)` with `w_k = 2^(-age_k / half_life)`.
For a Brownian log price `E[r_k^2] = var_rate * dt_k`, so the estimate is unbiased whatever
the spacing; it is annualized by 31,536,000 seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, localcontext
from itertools import pairwise

from aggregator.valuation.market import seconds_between
from aggregator.valuation.model import SECONDS_PER_YEAR

Observation = tuple[datetime, Decimal]
DEFAULT_HALF_LIFE_SECONDS = Decimal(7 * 86_400)
_LN2 = Decimal(2).ln()


def _decay(age_seconds: Decimal, half_life_seconds: Decimal) -> Decimal:
    """`2^(-age / half_life)`."""
    return (-_LN2 * age_seconds / half_life_seconds).exp()


def _clean(observations: Sequence[Observation]) -> list[Observation]:
    """Sorted by time, positive prices only, the last price kept for a repeated time."""
    by_time: dict[datetime, Decimal] = {}
    for when, price in sorted(observations, key=lambda o: o[0]):
        if price > 0:
            by_time[when] = price
    return sorted(by_time.items())


def ewma_volatility(
    observations: Sequence[Observation],
    *,
    half_life_seconds: Decimal = DEFAULT_HALF_LIFE_SECONDS,
    as_of: datetime | None = None,
) -> Decimal | None:
    """Annualized EWMA volatility of one asset from `(time, price)` observations.

    Returns None when fewer than two usable observations (distinct times, positive prices)
    exist, so the caller keeps the configured volatility. Ages are measured from `as_of`
    (default: the last observation). Times must be timezone-aware.
    May raise: ValueError if `half_life_seconds` is not positive.
    """
    if half_life_seconds <= 0:
        raise ValueError("half_life_seconds must be positive")
    points = _clean(observations)
    if len(points) < 2:
        return None
    end = as_of or points[-1][0]
    with localcontext() as ctx:
        ctx.prec = 34
        weighted_square = Decimal(0)
        weighted_time = Decimal(0)
        for (t0, p0), (t1, p1) in pairwise(points):
            dt = seconds_between(t1, t0)
            weight = _decay(max(Decimal(0), seconds_between(end, t1)), half_life_seconds)
            log_return = (p1 / p0).ln()
            weighted_square += weight * log_return * log_return
            weighted_time += weight * dt
        if weighted_time <= 0:
            return None
        return +(weighted_square / weighted_time * SECONDS_PER_YEAR).sqrt()


def ewma_covariance(
    series: Mapping[str, Sequence[Observation]],
    *,
    half_life_seconds: Decimal = DEFAULT_HALF_LIFE_SECONDS,
    as_of: datetime | None = None,
) -> dict[tuple[str, str], Decimal]:
    """Annualized EWMA covariance of several price series (keys: both orders of each pair).

    Series are aligned on the union of their observation times from the moment all have
    started, each carrying its last price forward; then each interval's log returns are
    weighted as in `ewma_volatility`. Series with fewer than two usable observations are left
    out. The result can feed `FactorModel.covariance` (one representative asset per family).
    May raise: ValueError if `half_life_seconds` is not positive.
    """
    if half_life_seconds <= 0:
        raise ValueError("half_life_seconds must be positive")
    cleaned = {name: _clean(obs) for name, obs in series.items()}
    cleaned = {name: pts for name, pts in cleaned.items() if len(pts) >= 2}
    names = sorted(cleaned)
    if not names:
        return {}
    start = max(pts[0][0] for pts in cleaned.values())
    times = sorted({t for pts in cleaned.values() for t, _ in pts if t >= start})
    end = as_of or times[-1]
    with localcontext() as ctx:
        ctx.prec = 34
        cursors = dict.fromkeys(names, 0)
        last: dict[str, Decimal] = {}

        def price_at(name: str, when: datetime) -> Decimal:
            pts = cleaned[name]
            i = cursors[name]
            while i + 1 < len(pts) and pts[i + 1][0] <= when:
                i += 1
            cursors[name] = i
            return pts[i][1]

        sums = {(a, b): Decimal(0) for a in names for b in names if a <= b}
        weighted_time = Decimal(0)
        previous = start
        for name in names:
            last[name] = price_at(name, start)
        for when in times:
            if when <= previous:
                continue
            returns = {}
            for name in names:
                price = price_at(name, when)
                returns[name] = (price / last[name]).ln()
                last[name] = price
            weight = _decay(max(Decimal(0), seconds_between(end, when)), half_life_seconds)
            weighted_time += weight * seconds_between(when, previous)
            for a, b in sums:
                sums[(a, b)] += weight * returns[a] * returns[b]
            previous = when
        if weighted_time <= 0:
            return {}
        out: dict[tuple[str, str], Decimal] = {}
        for (a, b), total in sums.items():
            value = +(total / weighted_time * SECONDS_PER_YEAR)
            out[(a, b)] = value
            out[(b, a)] = value
        return out
