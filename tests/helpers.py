"""Shared test helpers: exact bounds of enclosures, so containment is checked in rationals, never floats."""
from flint import arb, fmpq


def _arf_q(a):
    m, e = (int(v) for v in a.man_exp())
    return fmpq(m) * fmpq(2) ** e if e >= 0 else fmpq(m, 2 ** (-e))


def arb_q_bounds(x):
    """Exact rational (lo, hi) = mid -/+ rad, from the exact midpoint and radius (no rounding at all:
    ``arb.lower()`` would round to the ambient precision)."""
    assert x.is_finite(), x
    m, r = _arf_q(x.mid()), _arf_q(x.rad())
    return m - r, m + r


def mpf_tuple_q(t):
    """A raw mpmath mpf tuple (sign, man, exp, bc) as an exact fmpq (no rounding: never via mpf())."""
    sign, man, exp, _ = t
    assert man != 0 or t == (0, 0, 0, 0), f"non-finite interval endpoint {t}"
    man, exp = (-1) ** sign * int(man), int(exp)
    return fmpq(man) * fmpq(2) ** exp if exp >= 0 else fmpq(man, 2 ** (-exp))


def iv_q_bounds(x):
    a, b = x._mpi_
    return mpf_tuple_q(a), mpf_tuple_q(b)


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
