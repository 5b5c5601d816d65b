"""Exact rationals (fmpq), hybrid with balls.

Rational operations stay fmpq.  A few transcendental values are exact at special points (exp(0) = 1,
log(1) = 0, sin(0) = 0, cos(0) = 1, tanh(0) = 0, atan(0) = 0, sigmoid(0) = 1/2, sqrt of a rational square); any other
transcendental value becomes an arb ball at the current precision and stays a ball from then on.  A result
is exact exactly when it is an fmpq.
"""
import operator

from flint import fmpq, fmpz

from .ball import arb_sign, int_power, to_arb
from ..errors import InputError
from ..rational import MAX_BITS, fmt_q


def _too_big(bits):
    raise InputError(f"an exact rational would need about {bits} bits, more than the limit {MAX_BITS} "
                     "(verify.rational.MAX_BITS): use ball arithmetic (--number ball)")


def rational_sqrt(q):
    """sqrt(q) as an fmpq when q >= 0 is the square of a rational, else None."""
    p, d = fmpz(q.p), fmpz(q.q)
    if p < 0:
        return None
    sp, sd = p.isqrt(), d.isqrt()
    if sp * sp == p and sd * sd == d:
        return fmpq(sp, sd)
    return None


class ExactSystem:
    name = "exact"
    exact = True

    def const(self, q):
        return q

    native = True            # Python's operators (products and quotients guard the size of exact rationals)

    add = staticmethod(operator.add)
    sub = staticmethod(operator.sub)
    neg = staticmethod(operator.neg)

    def mul(self, a, b):
        if a.__class__ is fmpq and b.__class__ is fmpq and a.height_bits() + b.height_bits() > MAX_BITS:
            _too_big(a.height_bits() + b.height_bits())
        return a * b

    def div(self, a, b):
        if a.__class__ is fmpq and b.__class__ is fmpq and a.height_bits() + b.height_bits() > MAX_BITS:
            _too_big(a.height_bits() + b.height_bits())
        return a / b

    def pow(self, a, n):
        if isinstance(a, fmpq):
            if a.height_bits() * abs(n) > MAX_BITS:
                _too_big(a.height_bits() * abs(n))
            return a ** n
        return int_power(a, n) if n >= 0 else 1 / int_power(a, -n)

    def exp(self, a):
        if isinstance(a, fmpq) and a == 0:
            return fmpq(1)
        return to_arb(a).exp()

    def log(self, a):
        if isinstance(a, fmpq) and a == 1:
            return fmpq(0)
        return to_arb(a).log()

    def sqrt(self, a):
        if isinstance(a, fmpq):
            r = rational_sqrt(a)
            if r is not None:
                return r
        return to_arb(a).sqrt()

    def sin(self, a):
        if isinstance(a, fmpq) and a == 0:
            return fmpq(0)
        return to_arb(a).sin()

    def cos(self, a):
        if isinstance(a, fmpq) and a == 0:
            return fmpq(1)
        return to_arb(a).cos()

    def tanh(self, a):
        if isinstance(a, fmpq) and a == 0:
            return fmpq(0)
        return to_arb(a).tanh()

    def erf(self, a):
        if isinstance(a, fmpq) and a == 0:
            return fmpq(0)
        return to_arb(a).erf()

    def atan(self, a):
        if isinstance(a, fmpq) and a == 0:
            return fmpq(0)
        return to_arb(a).atan()

    def lgamma(self, a):
        if isinstance(a, fmpq) and a in (1, 2):
            return fmpq(0)
        from .ball import arb_lgamma
        return arb_lgamma(to_arb(a))

    def polygamma(self, a, n):
        from .ball import arb_polygamma
        return arb_polygamma(to_arb(a), n)

    def erfinv(self, a):
        if isinstance(a, fmpq) and a == 0:
            return fmpq(0)
        return to_arb(a).erfinv()

    def bessel_i(self, a, n):
        if isinstance(a, fmpq) and a == 0:
            return fmpq(1 if n == 0 else 0)
        return to_arb(a).bessel_i(n)

    def pi(self):
        from flint import arb
        return arb.pi()

    def root(self, cs, k):
        from .roots import real_root
        return real_root(list(cs), k)

    def expm(self, xs, i, j):
        from .matfun import expm_entry
        return expm_entry(list(xs), i, j)

    def expm_grad(self, xs, i, j):
        from .matfun import expm_gradient
        return expm_gradient(list(xs), i, j)

    def sigmoid(self, a):
        if isinstance(a, fmpq) and a == 0:
            return fmpq(1, 2)
        return 1 / (1 + (-to_arb(a)).exp())

    @staticmethod
    def sign(x):
        if isinstance(x, fmpq):
            return (x > 0) - (x < 0)
        return arb_sign(x)

    def is_exact_value(self, x):
        return isinstance(x, fmpq)

    def to_json(self, x):
        from .ball import json_number
        return json_number(x) if not isinstance(x, fmpq) else fmt_q(x)
