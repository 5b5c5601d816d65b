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


# Bounds as exact sums of terms m * 2^e (Python ints m, e) over a common denominator: balls whose exponents are
# astronomically large (exp(exp(exp(x))) has an exponent near 2^41) compare exactly without building 2^e.
_SPREAD = 1 << 14


def _sign_of_sum(terms):
    """The exact sign of sum m * 2^e over ``terms`` [(m, e)], however far apart the exponents."""
    terms = [(m, e) for m, e in terms if m]
    if not terms:
        return 0
    top = max(e + m.bit_length() for m, e in terms)
    cut = top - max(_SPREAD, len(terms).bit_length() + 2)       # a lone high term always outweighs the low ones
    high = [(m, e) for m, e in terms if e + m.bit_length() > cut]
    low = [(m, e) for m, e in terms if e + m.bit_length() <= cut]
    e0 = min(e for _, e in high)
    h = sum(m << (e - e0) for m, e in high)             # exact: the high terms span at most _SPREAD + their bits
    if not low:
        return (h > 0) - (h < 0)
    # every low term is below 2^cut: their sum is below len(low) * 2^cut
    if h and h.bit_length() - 1 + e0 > cut + len(low).bit_length():
        return (h > 0) - (h < 0)
    return _sign_of_sum([(h, e0)] + low)                # two or more high terms became one: the recursion ends


def _arf_terms(a):
    m, e = a.man_exp()
    return int(m), int(e)


def _bounds(x):
    """(lo, hi) of an fmpq, an arb ball or an mpmath interval, each as (terms, den): the bound is sum(terms)/den.
    None for an infinite enclosure (exp(exp(exp(5))) at 64 bits is [+/- inf]): it encloses everything and claims
    nothing.  A NaN is no enclosure at all: an assertion."""
    if isinstance(x, fmpq):
        t = ([(int(x.p), 0)], int(x.q))
        return t, t
    if isinstance(x, arb):
        if not x.is_finite():
            assert not x.is_nan(), x
            return None
        (m, e), (r, f) = _arf_terms(x.mid()), _arf_terms(x.rad())
        return ([(m, e), (-r, f)], 1), ([(m, e), (r, f)], 1)
    from mpmath.libmp import finf, fnan, fninf
    ends = x._mpi_
    assert fnan not in ends, x
    if finf in ends or fninf in ends:
        return None
    out = []
    for sign, man, exp, _ in ends:
        assert man != 0 or (sign, man, exp) == (0, 0, 0), "non-finite interval endpoint"
        out.append(([((-1) ** sign * int(man), int(exp))], 1))
    return tuple(out)


def _le(u, v):
    """u <= v for bounds (terms, den), exactly."""
    (tu, du), (tv, dv) = u, v
    return _sign_of_sum([(m * du, e) for m, e in tv] + [(-m * dv, e) for m, e in tu]) >= 0


def meets(a, b):
    """The enclosures a and b overlap, exactly (True when either is infinite: it claims nothing)."""
    A, B = _bounds(a), _bounds(b)
    if A is None or B is None:
        return True
    (alo, ahi), (blo, bhi) = A, B
    return _le(alo, bhi) and _le(blo, ahi)


def contains(ball, q):
    """The exact rational q lies in the enclosure ``ball`` (True when it is infinite)."""
    B = _bounds(ball)
    if B is None:
        return True
    q = _bounds(fmpq(q))[0]
    return _le(B[0], q) and _le(q, B[1])


def width(x):
    lo, hi = q_bounds(x)
    return hi - lo
