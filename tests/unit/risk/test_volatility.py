"""EWMA volatility and covariance from irregularly spaced prices."""

from __future__ import annotations

from datetime import timedelta

from aggregator.valuation import ewma_covariance, ewma_volatility

from .builders import AS_OF, D

TENTH_MILLI_YEAR = timedelta(seconds=3153.6)  # 1/10,000 of a 365-day year
LONG_HALF_LIFE = D(10) ** 12  # weights ~1: plain time-weighted variance


def test_single_return_annualizes_by_elapsed_time() -> None:
    # 100 -> 110 over 1/10,000 year: r = ln 1.1 = 0.0953101798..., var rate = r^2 per
    # 1/10,000 year, sigma = r * sqrt(10,000) = 9.53101798...
    obs = [(AS_OF, D(100)), (AS_OF + TENTH_MILLI_YEAR, D(110))]
    sigma = ewma_volatility(obs, half_life_seconds=LONG_HALF_LIFE)
    assert sigma is not None and abs(sigma - D("9.531017980432486")) < D("1e-9")


def test_irregular_spacing_is_weighted_by_elapsed_time() -> None:
    # A move of r over dt then -2r over 4 dt: (r^2 + 4 r^2) / (5 dt) = r^2 / dt, the same
    # sigma as the single regular step above.
    t1 = AS_OF + TENTH_MILLI_YEAR
    t2 = t1 + 4 * TENTH_MILLI_YEAR
    obs = [(AS_OF, D(100)), (t1, D(110)), (t2, D(110) / D("1.21"))]
    sigma = ewma_volatility(obs, half_life_seconds=LONG_HALF_LIFE)
    assert sigma is not None and abs(sigma - D("9.531017980432486")) < D("1e-6")


def test_recent_returns_weigh_more() -> None:
    # A calm old stretch then a jump: with a short half-life the jump dominates.
    step = timedelta(hours=1)
    obs = [(AS_OF + i * step, D(100)) for i in range(48)]
    obs.append((AS_OF + 48 * step, D(105)))
    short = ewma_volatility(obs, half_life_seconds=D(3600))
    long = ewma_volatility(obs, half_life_seconds=LONG_HALF_LIFE)
    assert short is not None and long is not None and short > 3 * long


def test_too_few_observations_give_none() -> None:
    assert ewma_volatility([(AS_OF, D(1))]) is None
    assert ewma_volatility([(AS_OF, D(1)), (AS_OF, D(2))]) is None  # same time twice


def test_covariance_of_identical_and_opposite_series() -> None:
    # B moves exactly like A (cov = var), C inversely (log returns negated).
    times = [AS_OF + i * TENTH_MILLI_YEAR for i in range(3)]
    a = [(times[0], D(100)), (times[1], D(110)), (times[2], D(100))]
    c = [(times[0], D(100)), (times[1], D(100) / D("1.1")), (times[2], D(100))]
    cov = ewma_covariance({"A": a, "B": a, "C": c}, half_life_seconds=LONG_HALF_LIFE)
    var = ewma_volatility(a, half_life_seconds=LONG_HALF_LIFE)
    assert var is not None
    assert abs(cov[("A", "A")] - var * var) < D("1e-9")
    assert cov[("A", "B")] == cov[("A", "A")]
    assert abs(cov[("A", "C")] + cov[("A", "A")]) < D("1e-9")
