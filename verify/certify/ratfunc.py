"""Rational functions of the curve parameter t, as a number system for ``evaluate.run`` and ``ad.jvp``.

Along a polynomial curve z(t) (a segment x + t (y - x) is one) every value of a rational program (+ - * /,
integer powers, nonsmooth pieces) under a fixed pattern is a rational function of t.  ``RF`` holds it
exactly: a numerator and a denominator ``fmpq_poly`` (``d is None`` for a polynomial), reduced and with a
monic denominator.  ``RFSystem(where)`` decides signs at one place on the curve, exactly:

- ``At(a)``: at t = a (a rational or an ``Alg``);
- ``Right(a)``: on (a, a + eps) for all small eps, by the first nonzero Taylor coefficient.

Evaluating a program in ``RFSystem(Right(a))`` therefore returns the pattern on (a, a + eps) together with
the frozen program's switching functions as exact rational functions.  A denominator never vanishes where a
value is used: every denominator divides a product of divisors, and each divisor's sign is checked by the
smooth rules (``div``, negative ``pow``) at the same place.  Transcendental primitives are not rational:
they raise ``NotRational`` (callers pick the analytic method for such programs).
"""
from flint import fmpq, fmpq_poly

from ..errors import VerifyError
from . import algebraic as A

ONE = fmpq_poly([1])


class NotRational(VerifyError):
    """A transcendental primitive in a computation over rational functions."""


class RF:
    __slots__ = ("n", "d")

    def __init__(self, n, d=None):
        self.n, self.d = n, d

    def __repr__(self):
        return f"RF({self.n})" if self.d is None else f"RF(({self.n}) / ({self.d}))"

    @property
    def den(self):
        return ONE if self.d is None else self.d

    def is_zero(self):
        return self.n.is_zero()

    def __call__(self, t):
        """Exact value at a rational t (the denominator must not vanish there)."""
        return self.n(t) if self.d is None else self.n(t) / self.d(t)

    def derivative(self):
        if self.d is None:
            return RF(self.n.derivative())
        return _make(self.n.derivative() * self.d - self.n * self.d.derivative(), self.d * self.d)


def _make(n, d):
    """n / d reduced, with a monic denominator (None when it is 1)."""
    if d.degree() == 0:
        return RF(n / d.coeffs()[0])
    if n.is_zero():
        return RF(n)
    g = n.gcd(d)
    if g.degree() > 0:
        n, d = n // g, d // g
    lc = d.leading_coefficient()
    if lc != 1:
        n, d = n / lc, d / lc
    return RF(n, None if d.degree() == 0 else d)


def const(q):
    return RF(fmpq_poly([q]))


def add(a, b):
    if a.d is None and b.d is None:
        return RF(a.n + b.n)
    if a.d is not None and b.d is not None and a.d == b.d:
        return _make(a.n + b.n, a.d)
    return _make(a.n * b.den + b.n * a.den, a.den * b.den)


def neg(a):
    return RF(-a.n, a.d)


def mul(a, b):
    if a.d is None and b.d is None:
        return RF(a.n * b.n)
    return _make(a.n * b.n, a.den * b.den)


def div(a, b):
    if b.d is None and b.n.degree() == 0:
        c = b.n.coeffs()[0]
        return RF(a.n / c, a.d)
    return _make(a.n * b.den, a.den * b.n)


def power(a, n):
    if n >= 0:
        return RF(a.n ** n, None if a.d is None else a.d ** n)
    return div(const(fmpq(1)), power(a, -n))


def describe(a):
    """A short human form of a rational or algebraic number."""
    if isinstance(a, fmpq):
        return A.number_json(a)
    j = a.json()
    return f"root of {a.q} in [{j['lo']}, {j['hi']}]"


class At:
    """Signs at t = a."""

    def __init__(self, a):
        self.a = a

    def sign(self, x):
        return A.sign_at(x.n, self.a) * (1 if x.d is None else A.sign_at(x.d, self.a))

    def __str__(self):
        return f"t = {describe(self.a)}"


class Right:
    """Signs on (a, a + eps): the pattern just right of a."""

    def __init__(self, a):
        self.a = a

    def sign(self, x):
        return A.right_sign(x.n, self.a) * (1 if x.d is None else A.right_sign(x.d, self.a))

    def __str__(self):
        return f"t just right of {describe(self.a)}"


class RFSystem:
    """The number system of exact rational functions of t, deciding signs at ``where`` (At or Right)."""
    name = "ratfunc"
    exact = True

    def __init__(self, where):
        self.where = where
        self._consts = {}

    def const(self, q):
        return const(q)

    add = staticmethod(add)
    neg = staticmethod(neg)
    mul = staticmethod(mul)
    div = staticmethod(div)

    def sub(self, a, b):
        return add(a, neg(b))

    def pow(self, a, n):
        return power(a, n)

    def _no(self, *a):
        raise NotRational("a transcendental primitive has no rational-function value")

    exp = log = sqrt = sin = cos = tanh = sigmoid = erf = atan = lgamma = polygamma = erfinv = bessel_i = pi = _no

    def sign(self, x):
        return self.where.sign(x)

    def is_exact_value(self, x):
        return True

    def to_json(self, x):
        return f"{x.n}" if x.d is None else f"({x.n}) / ({x.d})"


def curve_values(curve):
    """The curve's coordinates as RF values (curve: list of fmpq_poly, one per input)."""
    return [RF(c) for c in curve]
