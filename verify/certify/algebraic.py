"""Exact real numbers for segment breakpoints: rationals (fmpq) and real algebraic numbers (``Alg``).

An ``Alg`` is the unique real root of an irreducible integer polynomial q of degree >= 2 in an open interval
(lo, hi) with rational endpoints where q changes sign (q has no rational root, so q(lo), q(hi) are never 0).
Isolating intervals come from ``fmpz_poly.complex_roots()``: a real root is returned with an exactly zero
imaginary part and its disc holds no other root.  Comparisons are exact: two different numbers are told
apart by refining intervals until they separate; two roots of the same q are equal exactly when q changes
sign on the intersection of their intervals (each interval holds one root).  Nothing is ever decided from a
rounded value: ``sign_at`` evaluates in balls and refines until the ball excludes 0, after an exact test for 0.
"""
import functools

from flint import arb, arb_poly, ctx, fmpq, fmpq_poly, fmpz_poly

from ..rational import dyadic_q


_ROOT_CACHE = {}


def _qsign(x):
    return (x > 0) - (x < 0)


def arf_q(a):
    """An arf (exact midpoint or radius of an arb) as an fmpq, without rounding."""
    return dyadic_q(a)


def arb_q(x):
    """Exact rational (lo, hi) with lo <= x <= hi for every point of the finite ball x."""
    m, r = arf_q(x.mid()), arf_q(x.rad())
    return m - r, m + r


def interval_ball(lo, hi):
    """An arb ball containing the rational interval [lo, hi] (at the current precision)."""
    return arb(lo) if lo == hi else arb(lo).union(arb(hi))


def primitive(P):
    """The fmpq_poly P as a primitive integer polynomial with a positive leading coefficient."""
    Z = P.numer() if isinstance(P, fmpq_poly) else P
    c = Z.content()
    Z = fmpz_poly([a // c for a in Z.coeffs()])
    return -Z if Z.leading_coefficient() < 0 else Z


class Alg:
    """The real root of the irreducible integer polynomial ``q`` (degree >= 2) in the open interval (lo, hi)."""
    __slots__ = ("q", "lo", "hi", "_slo", "_Q")

    def __init__(self, q, lo, hi):
        self.q, self.lo, self.hi = q, lo, hi
        self._Q = fmpq_poly(q)
        self._slo = _qsign(self._Q(lo))
        if self._slo * _qsign(self._Q(hi)) >= 0:
            raise ValueError(f"({lo}, {hi}) does not isolate a root of {q}")

    def __repr__(self):
        return f"Alg({self.q}, {self.lo}, {self.hi})"

    def refine(self):
        """Halve the isolating interval (exactly)."""
        m = (self.lo + self.hi) / 2
        s = _qsign(self._Q(m))
        if s == self._slo:
            self.lo = m
        else:
            self.hi = m

    def refine_to(self, width):
        while self.hi - self.lo > width:
            self.refine()
        return self

    def ball(self):
        return interval_ball(self.lo, self.hi)

    def json(self):
        """{"lo", "hi"} outward decimal bounds, the defining polynomial (integer coefficients, constant term
        first) and the exact isolating interval."""
        enc = interval_json(self.lo, self.hi)
        return {"lo": enc["lo"], "hi": enc["hi"], "poly": [str(c) for c in self.q.coeffs()],
                "interval": [_fmt(self.lo), _fmt(self.hi)]}


def _fmt(x):
    return str(x.p) if x.q == 1 else f"{x.p}/{x.q}"


from ..numbers.ball import interval_json, q_decimal  # noqa: E402,F401  (one number format for every command)


def same_root(a, b):
    """For two Alg with the same q: equal exactly when q changes sign on the intersection of their intervals."""
    lo, hi = max(a.lo, b.lo), min(a.hi, b.hi)
    if lo >= hi:
        return False
    return _qsign(a._Q(lo)) * _qsign(a._Q(hi)) < 0


def cmp(a, b):
    """-1, 0, 1 as a <, =, > b for a, b rational (fmpq) or Alg.  Exact."""
    if isinstance(a, fmpq) and isinstance(b, fmpq):
        return _qsign(a - b)
    if isinstance(a, fmpq):
        return -cmp(b, a)
    if isinstance(b, fmpq):                 # an Alg is never rational: refine until b is outside (lo, hi)
        while a.lo < b < a.hi:
            a.refine()
        return 1 if b <= a.lo else -1
    if a.q == b.q and same_root(a, b):
        return 0
    while not (a.hi <= b.lo or b.hi <= a.lo):
        a.refine()
        b.refine()
    return -1 if a.hi <= b.lo else 1


def key(x):
    return functools.cmp_to_key(cmp)(x)


def sign_at(P, a):
    """The exact sign of the fmpq_poly P at a (fmpq or Alg)."""
    if P.is_zero():
        return 0
    if isinstance(a, fmpq):
        return _qsign(P(a))
    if (P % a._Q).is_zero():               # q is irreducible: P(a) = 0 exactly when q divides P
        return 0
    prec = 64
    while True:
        with ctx.workprec(prec):
            v = arb_poly(P)(a.ball())
            if v > 0:
                return 1
            if v < 0:
                return -1
        a.refine()
        prec = min(prec + 16, 4096)


def right_sign(P, a):
    """The sign of P on (a, a + eps) for small eps: the sign of its first nonzero derivative at a."""
    if P.is_zero():
        return 0
    while True:
        s = sign_at(P, a)
        if s:
            return s
        P = P.derivative()


def _factors(P):
    k = str(P)
    f = _ROOT_CACHE.get(k)
    if f is None:
        f = [g for g, _ in primitive(P).factor()[1]]
        if len(_ROOT_CACHE) > 20000:
            _ROOT_CACHE.clear()
        _ROOT_CACHE[k] = f
    return f


@functools.lru_cache(maxsize=20000)
def _real_roots_irreducible(coeffs):
    """The real roots of an irreducible integer polynomial of degree >= 2, sorted, as Alg."""
    q = fmpz_poly(list(coeffs))
    prec = 64
    while True:
        with ctx.workprec(prec):
            out = []
            try:
                for z, _ in q.complex_roots():
                    if z.imag.is_zero():
                        lo, hi = arb_q(z.real)
                        out.append(Alg(q, lo, hi))
                return sorted(out, key=lambda r: r.lo)
            except ValueError:
                prec *= 2


def real_roots(P, a=None, b=None):
    """The distinct real roots of the nonzero fmpq_poly P in (a, b] (a, b fmpq or Alg; None = unbounded),
    sorted, as fmpq (rational roots) or fresh Alg."""
    out = []
    if P.degree() <= 0:
        return []
    if P.degree() == 1:
        c0, c1 = P.coeffs()
        out = [-c0 / c1]
    else:
        for g in _factors(P):
            if g.degree() == 1:
                c0, c1 = g.coeffs()
                out.append(fmpq(-c0, c1))
            else:
                out.extend(Alg(r.q, r.lo, r.hi) for r in _real_roots_irreducible(tuple(int(c) for c in g.coeffs())))
    out = [r for r in out if (a is None or cmp(r, a) > 0) and (b is None or cmp(r, b) <= 0)]
    return sorted(out, key=key)


def ball_of(a):
    """An arb ball containing a (fmpq or Alg)."""
    return arb(a) if isinstance(a, fmpq) else a.ball()


def between(a, b):
    """A rational strictly between a < b (fmpq or Alg)."""
    while True:
        lo = a if isinstance(a, fmpq) else a.hi
        hi = b if isinstance(b, fmpq) else b.lo
        if lo < hi:
            return (lo + hi) / 2
        for x in (a, b):
            if isinstance(x, Alg):
                x.refine()


def simplest_between(a, b):
    """The simplest rational (smallest denominator, then smallest magnitude) in the open interval (a, b), a < b
    rational: where a transcendental switching function can vanish exactly, its argument being 0 there
    (sin(x) on a segment through x = 0 reaches 0 at a rational t with a small denominator)."""
    if a < 0 < b:
        return fmpq(0)
    if b <= 0:
        return -simplest_between(-b, -a)
    fl = a.p // a.q                         # 0 <= fl <= a < fl + 1: continued fractions (Stern-Brocot)
    if fl + 1 < b:
        return fmpq(fl + 1)
    if a == fl:                             # (fl, b), b <= fl + 1: fl + 1/n with the smallest n
        w = 1 / (b - fl)
        return fl + fmpq(1, w.p // w.q + 1)
    return fl + 1 / simplest_between(1 / (b - fl), 1 / (a - fl))


def number_json(a):
    """JSON form: "p/q" for a rational, Alg.json() for an algebraic number."""
    return _fmt(a) if isinstance(a, fmpq) else a.json()
