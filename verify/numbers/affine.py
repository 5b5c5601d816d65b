"""Exact affine forms over atoms, beside balls: a number system for deciding differences exactly.

A value is (c, terms, ball): c + sum a_i * atom_i with rational c and a_i, where an atom is the result of an
operation that is not affine (a product of two non-constant values, exp, log, ...), numbered by the
operation and its operands' forms, so that the same expression is the same atom in every run that shares one
``AffineSystem``; ``ball`` encloses the value (an fmpq when it is exact).  Balls lose identity (exp(t) -
exp(t) is a ball around 0); forms keep it, as affine arithmetic keeps the dependency between values: the
difference of f_sigma and f_tau computed in one system is decided exactly whenever its atoms cancel, e.g.
(exp(t) + 1/10^40) - exp(t) = 1/10^40 (DESIGN.md section 4: ties that hold by a linear identity are decided
from exact structure carried beside the ball).  Differences that need nonlinear algebra stay balls.
"""
from flint import fmpq

from .exact import ExactSystem

_EXACT = ExactSystem()
Q0, Q1 = fmpq(0), fmpq(1)


class AffineSystem:
    name = "affine"
    exact = False

    def __init__(self):
        self.atoms = {}

    # -- forms
    def const(self, q):
        q = fmpq(q) if not isinstance(q, fmpq) else q
        return (q, (), q)

    def input(self, i, value):
        """Input i with ``value``: a constant when it is an fmpq, else an atom of its own (e.g. a ball over a
        cell: the t-dependence then lives in the atom)."""
        return self.const(value) if isinstance(value, fmpq) else self._atom(("input", i), value)

    def _atom(self, key, ball):
        i = self.atoms.setdefault(key, len(self.atoms))
        return (Q0, ((i, Q1),), ball)

    @staticmethod
    def _combine(a, b, w):
        terms = dict(a[1])
        for i, c in b[1]:
            terms[i] = terms.get(i, Q0) + w * c
        return tuple(sorted((i, c) for i, c in terms.items() if c != 0))

    def _lin(self, a, b, w):
        return (a[0] + w * b[0], self._combine(a, b, w), _EXACT.add(a[2], _EXACT.mul(_EXACT.const(w), b[2])))

    def _scale(self, a, w):
        return (w * a[0], tuple((i, w * c) for i, c in a[1]) if w != 0 else (), _EXACT.mul(_EXACT.const(w), a[2]))

    def _nonlinear(self, name, xs, ball, extra=()):
        if isinstance(ball, fmpq) and all(not x[1] for x in xs):
            return (ball, (), ball)
        keys = [(x[0], x[1]) for x in xs]
        if name == "mul":
            keys.sort(key=repr)
        return self._atom((name, extra, tuple(keys)), ball)

    # -- the number-system protocol (verify.numbers)
    def add(self, a, b): return self._lin(a, b, Q1)
    def sub(self, a, b): return self._lin(a, b, -Q1)
    def neg(self, a): return self._scale(a, -Q1)

    def mul(self, a, b):
        if not a[1]:
            return self._scale(b, a[0])
        if not b[1]:
            return self._scale(a, b[0])
        return self._nonlinear("mul", (a, b), _EXACT.mul(a[2], b[2]))

    def div(self, a, b):
        if not b[1]:
            return self._scale(a, 1 / b[0])
        return self._nonlinear("div", (a, b), _EXACT.div(a[2], b[2]))

    def pow(self, a, n):
        return self._nonlinear("pow", (a,), _EXACT.pow(a[2], n), (n,))

    def _unary(name):
        def op(self, a):
            return self._nonlinear(name, (a,), getattr(_EXACT, name)(a[2]))
        return op

    exp, log, sqrt = _unary("exp"), _unary("log"), _unary("sqrt")
    sin, cos, tanh, sigmoid = _unary("sin"), _unary("cos"), _unary("tanh"), _unary("sigmoid")
    erf, atan = _unary("erf"), _unary("atan")
    lgamma, erfinv = _unary("lgamma"), _unary("erfinv")

    def polygamma(self, a, n):
        return self._nonlinear("polygamma", (a,), _EXACT.polygamma(a[2], n), (n,))

    def bessel_i(self, a, n):
        return self._nonlinear("bessel_i", (a,), _EXACT.bessel_i(a[2], n), (n,))
    del _unary

    def sign(self, x):
        """Exact when the form is a constant, else the sign of its ball (None when undecided)."""
        return _EXACT.sign(x[0]) if not x[1] else _EXACT.sign(x[2])

    def is_exact_value(self, x):
        return not x[1]

    def to_json(self, x):
        return _EXACT.to_json(x[0] if not x[1] else x[2])
