"""Exact rationals (fmpq), hybrid with balls.

Rational operations stay fmpq.  A few transcendental values are exact at special points (exp(0) = 1,
log(1) = 0, sin(0) = 0, cos(0) = 1, tanh(0) = 0, sigmoid(0) = 1/2, sqrt of a rational square); any other
transcendental value becomes an arb ball at the current precision and stays a ball from then on.  A result
is exact exactly when it is an fmpq.
"""
import operator

from flint import fmpq, fmpz

from .ball import arb_sign, int_power, to_arb
from ..rational import fmt_q


def _rational_sqrt(q):
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

    native = True            # add/sub/mul/div/neg are Python's operators, comparisons are decided ones

    add = staticmethod(operator.add)
    sub = staticmethod(operator.sub)
    mul = staticmethod(operator.mul)
    div = staticmethod(operator.truediv)
    neg = staticmethod(operator.neg)

    def pow(self, a, n):
        if isinstance(a, fmpq):
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
            r = _rational_sqrt(a)
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
