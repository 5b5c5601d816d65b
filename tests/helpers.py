"""Shared test helpers: exact bounds of enclosures, so containment is checked in rationals, never floats."""
import fractions

from flint import arb, fmpq
from mpmath import mpf


def arb_q_bounds(x):
    """Exact rational (lo, hi) with lo <= every point of the arb ball <= hi."""
    m, r, e = (int(v) for v in x.mid_rad_10exp(30))
    s = fmpq(10) ** e if e >= 0 else 1 / fmpq(10) ** (-e)
    return fmpq(m - r) * s, fmpq(m + r) * s


def mpf_q(v):
    """An mpf as an exact fmpq."""
    f = fractions.Fraction(*mpf(v).as_integer_ratio()) if hasattr(mpf(v), "as_integer_ratio") else None
    if f is None:
        man, exp = mpf(v).man_exp
        f = fractions.Fraction(int(man)) * fractions.Fraction(2) ** int(exp)
    return fmpq(f.numerator, f.denominator)


def iv_q_bounds(x):
    return mpf_q(x.a), mpf_q(x.b)


def q_bounds(x):
    """Exact bounds of an fmpq (itself), an arb ball or an mpmath interval."""
    if isinstance(x, fmpq):
        return x, x
    if isinstance(x, arb):
        return arb_q_bounds(x)
    return iv_q_bounds(x)


def meets(a, b):
    (alo, ahi), (blo, bhi) = q_bounds(a), q_bounds(b)
    return alo <= bhi and blo <= ahi


def contains(ball, q):
    lo, hi = q_bounds(ball)
    return lo <= q <= hi


def width(x):
    lo, hi = q_bounds(x)
    return hi - lo
