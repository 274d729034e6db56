"""Root finding for liquidation prices, shocks and limits.

Standard-mode health is piecewise linear in one asset's price (kinks where the confidence cap
starts binding and at perp entry prices), so its roots are solved exactly segment by segment.
Portfolio-mode health is not (expected shortfall re-sorts scenarios), so it is bracketed and
bisected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

_ZERO = Decimal(0)
_TWO = Decimal(2)


def nearest_root_piecewise_linear(
    f: Callable[[Decimal], Decimal],
    origin: Decimal,
    lower: Decimal,
    breakpoints: Iterable[Decimal],
) -> Decimal | None:
    """The root of `f` on `(lower, inf)` nearest to `origin`, or None when `f` has none.

    `f` must be continuous and linear between consecutive `breakpoints` (and beyond the
    last); points at or below `lower` are ignored. Two evaluations per segment, no iteration.
    """
    points = sorted({x for x in (*breakpoints, origin) if x > lower})
    top = (points[-1] if points else abs(lower)) * _TWO + 1
    grid = [lower, *points, top]
    values = [f(x) for x in grid]
    roots: list[Decimal] = []
    for i in range(len(grid) - 1):
        x1, x2, f1, f2 = grid[i], grid[i + 1], values[i], values[i + 1]
        if f1 == 0 and x1 > lower:
            roots.append(x1)
        elif (f1 < 0 < f2) or (f2 < 0 < f1):
            roots.append(x1 - f1 * (x2 - x1) / (f2 - f1))
    # Beyond `top` the last segment's line continues.
    x1, x2, f1, f2 = grid[-2], grid[-1], values[-2], values[-1]
    if f2 == 0:
        roots.append(x2)
    elif f1 != f2:
        beyond = x2 - f2 * (x2 - x1) / (f2 - f1)
        if beyond > x2:
            roots.append(beyond)
    if not roots:
        return None
    return min(roots, key=lambda x: abs(x - origin))


def nearest_root_bracketing(
    f: Callable[[Decimal], Decimal],
    origin: Decimal,
    lower: Decimal,
    *,
    span: Decimal = Decimal(1_000_000),
    steps: int = 96,
    iterations: int = 80,
) -> Decimal | None:
    """The root of a continuous `f` nearest to `origin` on `(lower, origin*span]`, found by
    scanning outward geometrically from `origin` for a sign change, then bisecting.

    Roots closer together than the scan step may be missed; the scan covers factors of
    `span` either way (down to `lower`).
    """
    f0 = f(origin)
    if f0 == 0:
        return origin
    candidates: list[Decimal] = []
    ratio = span ** (Decimal(1) / steps)
    for direction in (1, -1):
        prev_x, prev_f = origin, f0
        x = origin
        for _ in range(steps):
            if direction > 0:
                x = x * ratio if x > 0 else x + 1
            else:
                gap = x - lower
                x = lower + gap / ratio
            fx = f(x)
            if fx == 0:
                candidates.append(x)
                break
            if (fx < 0) != (prev_f < 0):
                candidates.append(_bisect(f, prev_x, prev_f, x, iterations))
                break
            prev_x, prev_f = x, fx
    if not candidates:
        return None
    return min(candidates, key=lambda x: abs(x - origin))


def _bisect(
    f: Callable[[Decimal], Decimal], a: Decimal, fa: Decimal, b: Decimal, iterations: int
) -> Decimal:
    """Bisect `[a, b]` (signs of `f` differ at the ends), then interpolate the last bracket."""
    fb = f(b)
    for _ in range(iterations):
        mid = (a + b) / 2
        fm = f(mid)
        if fm == 0:
            return mid
        if (fm < 0) == (fa < 0):
            a, fa = mid, fm
        else:
            b, fb = mid, fm
    if fb == fa:
        return a
    return a - fa * (b - a) / (fb - fa)


def largest_satisfying(
    ok: Callable[[Decimal], bool], high: Decimal, iterations: int = 100
) -> Decimal:
    """The largest `x` in `[0, high]` with `ok(x)`, assuming `ok` holds up to a point and
    fails beyond it; the result is on the safe side (`ok` holds there). 0 if `ok(0)` fails."""
    if high <= 0 or not ok(_ZERO):
        return _ZERO
    if ok(high):
        return high
    good, bad = _ZERO, high
    for _ in range(iterations):
        mid = (good + bad) / 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good
