"""Exact affine functions of t on arrays: the number system of the segment walk on piecewise-linear tensor
programs (segment_net.py).

Along z(t) = x + t (y - x), on a frozen pattern, every value of a piecewise-linear program (every smooth
equation linear in the input-dependent values: sums, structure, products and contractions with a constant
operand) is exactly A + B t with A, B exact arrays.  A value here is ``Lin(a, b)``: ``a`` and ``b`` are ``QT``
(integer numerators over one common denominator, numbers/tensor.py) of the same shape, ``b`` None for a
value that does not depend on t.  Every operation acts on the pair with the exact tensor system's own
operations; a contraction with a constant operand is one FLINT integer matrix product with the two parts
stacked (two columns for a matrix-vector layer).

Decisions are exact.  ``signs`` gives the sign of A + B t at ``t`` itself (mode "at"), or the sign of the germ
just right of ``t`` (mode "right": the sign of A + B t, and where that is 0 the sign of B; A + B t = 0 with
B = 0 is a function identically zero on the piece, sign 0).  An operation that would leave the affine
functions (a product of two t-dependent values, a t-dependent divisor, exp of a t-dependent value) or the
rationals (exp of a constant) raises ``NotAffine``: the walk then goes through the scalarised program.
"""
import bisect
import math

import numpy as np
from flint import fmpq, fmpq_poly

from ..numbers.tensor import QT, ExactTensors, numerator_mat


class NotAffine(Exception):
    """A value is not an exact affine function of t on the pattern (the message says which operation)."""


class Lin:
    """A + B t: ``a`` a QT, ``b`` a QT of the same shape or None (B = 0)."""
    __slots__ = ("a", "b")

    def __init__(self, a, b=None):
        self.a, self.b = a, b

    def __repr__(self):
        return f"Lin(shape={self.a.shape}, t-dependent={self.b is not None})"


def as_qt(x, what):
    if isinstance(x, QT):
        return x
    q = ExactTensors().to_qt(x)
    if q is None:
        raise NotAffine(f"{what} is not rational")
    return q


def fit(q, shape):
    """q broadcast to ``shape`` (the parts of a Lin always have the shape of the value)."""
    return q if q.shape == tuple(shape) else QT(np.broadcast_to(q.num, tuple(shape)), q.den)


def _common(*qs):
    L = math.lcm(*(q.den for q in qs))
    return [q.num if q.den == L else q.num * (L // q.den) for q in qs], L


def scalar_of(q):
    """The single element of a QT as an fmpq."""
    return fmpq(int(np.asarray(q.num).reshape(-1)[0]), q.den)


def _base(a):
    """The array that owns the memory of a numpy view."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


class MatCache:
    """FLINT matrices of the program's constant arrays (``constants``: ExactArray numerators, immutable),
    converted once per walk: every pass multiplies by the same weight matrices, and converting one to
    fmpz_mat costs more than the product.  ``cache(q)`` attaches the matrix to q when q is a 2-D view of one
    of those arrays, identified by the array that owns the memory (kept alive here), offset, shape and
    strides."""

    def __init__(self, constants=()):
        self.bases, self.mats = {}, {}
        for num in constants:
            b = _base(num)
            self.bases[id(b)] = b

    def __call__(self, q):
        num = q.num
        if q._mat is not None or num.ndim != 2 or not self.bases:
            return q
        b = _base(num)
        if id(b) not in self.bases:
            return q
        key = (id(b), num.__array_interface__["data"][0], num.shape, num.strides, q.den)
        hit = self.mats.get(key)
        if hit is None:
            hit = self.mats[key] = numerator_mat(q)
        q._mat = hit
        return q


def signs_of(num):
    num = np.asarray(num, dtype=object)
    return ((num > 0).astype(np.int8) - (num < 0).astype(np.int8)).reshape(num.shape)


class AffineT:
    """The tensor number system of exact affine functions of t (see the module docstring).  ``mode`` ("at" or
    "right") and ``t`` (an fmpq) say where ``signs`` decides."""
    name = "affine-t"
    exact = True
    tensor = True

    def __init__(self, mode="at", t=fmpq(0), constants=()):
        self.E = ExactTensors()
        self.mode, self.t = mode, t
        self._cached = MatCache(constants)

    # ---------------------------------------------------------------------------------------- helpers
    def _parts(self, x, fn):
        return Lin(fn(x.a), None if x.b is None else fn(x.b))

    def _const_only(self, x, what):
        if x.b is not None:
            raise NotAffine(f"{what} of a value that depends on t")
        return x.a

    def value_at(self, x, t):
        """A + B t at the rational t, as a QT."""
        if x.b is None:
            return x.a
        (an, bn), L = _common(x.a, x.b)
        return QT(np.asarray(an * int(t.q) + bn * int(t.p), dtype=object), L * int(t.q)).reduced()

    # ------------------------------------------------------------------------------------ conversions
    def line(self, a, d):
        """The input value a + t d (QT a, d; d None when the input does not move)."""
        return Lin(a, d)

    def poly(self, x):
        """A 0-d value as the fmpq_poly A + B t."""
        return fmpq_poly([scalar_of(x.a), fmpq(0) if x.b is None else scalar_of(x.b)])

    def const(self, q):
        return Lin(self.E.const(q))

    def const_array(self, ea):
        return Lin(self.E.const_array(ea))

    def is_exact_value(self, x):
        return True

    def out(self, x):
        return self.E.to_fq(self.value_at(x, self.t))

    def to_json(self, x):
        return self.E.to_json(x)

    # ------------------------------------------------------------------------------------- arithmetic
    def add(self, x, y):
        a = self.E.add(x.a, y.a)
        if x.b is None and y.b is None:
            return Lin(a)
        if x.b is None or y.b is None:
            return Lin(a, fit(x.b if y.b is None else y.b, a.shape))
        return Lin(a, fit(self.E.add(x.b, y.b), a.shape))

    def neg(self, x):
        return self._parts(x, self.E.neg)

    def sub(self, x, y):
        return self.add(x, self.neg(y))

    def mul(self, x, y):
        if x.b is not None and y.b is not None:
            raise NotAffine("a product of two values that depend on t")
        a = self.E.mul(x.a, y.a)
        if x.b is None and y.b is None:
            return Lin(a)
        b = self.E.mul(x.b, y.a) if x.b is not None else self.E.mul(x.a, y.b)
        return Lin(a, fit(b, a.shape))

    def div(self, x, y):
        d = self._const_only(y, "a division by a value that depends on t: a quotient")
        a = as_qt(self.E.div(x.a, d), "a quotient")
        return Lin(a, None if x.b is None else fit(as_qt(self.E.div(x.b, d), "a quotient"), a.shape))

    def pow(self, x, n):
        if x.b is not None and n == 1:
            return x
        if x.b is not None and n != 0:
            raise NotAffine(f"a power {n} of a value that depends on t")
        return Lin(as_qt(self.E.pow(x.a, n), "a power"))

    def _smooth(self, name):
        def f(x):
            return Lin(as_qt(getattr(self.E, name)(self._const_only(x, name)), f"{name} of a constant"))
        return f

    def __getattr__(self, name):
        if name in ("exp", "log", "sqrt", "sin", "cos", "tanh", "erf", "sigmoid", "atan"):
            return self._smooth(name)
        raise AttributeError(name)

    def pi(self):
        raise NotAffine("pi is not rational")

    # -------------------------------------------------------------------------------------- decisions
    def signs(self, x):
        if x.b is None:
            return self.E.signs(x.a)
        t = self.t
        (an, bn), _ = _common(x.a, x.b)
        s = signs_of(an * int(t.q) + bn * int(t.p))
        if self.mode == "right":
            s = np.where(s == 0, signs_of(x.b.num), s).astype(np.int8)
        return s

    def roots(self, switches):
        """Sorted roots -A/B (B != 0) of a group's switching functions (fmpq)."""
        out = []
        for s in switches:
            if s.b is None:
                continue
            a, b = s.a, s.b
            an = np.broadcast_to(np.asarray(a.num, dtype=object), b.shape).ravel()
            bn = np.asarray(b.num, dtype=object).ravel()
            for i in np.nonzero(bn != 0)[0].tolist():
                out.append(fmpq(-int(an[i]) * b.den, int(bn[i]) * a.den))
        out.sort()
        return out

    def first_after(self, roots, t):
        """The first of the sorted ``roots`` greater than t (None when there is none)."""
        i = bisect.bisect_right(roots, t)
        return roots[i] if i < len(roots) else None

    # -------------------------------------------------------------------------------------- structure
    def struct(self, x, fn):
        return self._parts(x, lambda q: self.E.struct(q, fn))

    def reshape(self, x, shape):
        return self._parts(x, lambda q: self.E.reshape(q, shape))

    def transpose(self, x, perm):
        return self._parts(x, lambda q: self.E.transpose(q, perm))

    def broadcast_to(self, x, shape):
        return self._parts(x, lambda q: self.E.broadcast_to(q, shape))

    def take(self, x, idx):
        return self._parts(x, lambda q: self.E.take(q, idx))

    def shape(self, x):
        return x.a.shape

    def zeros(self, shape):
        return Lin(self.E.zeros(shape))

    def zeros_like(self, x):
        return self.zeros(x.a.shape)

    def sum(self, x, axes, keepdims=False):
        return self._parts(x, lambda q: self.E.sum(q, axes, keepdims))

    def scatter(self, v, idx, size):
        return self._parts(v, lambda q: self.E.scatter(q, idx, size))

    def _slopes(self, xs):
        return [x.b if x.b is not None else self.E.zeros(x.a.shape) for x in xs]

    def concat_flat(self, xs):
        a = self.E.concat_flat([x.a for x in xs])
        if all(x.b is None for x in xs):
            return Lin(a)
        return Lin(a, self.E.concat_flat(self._slopes(xs)))

    def mask(self, m, x):
        return self._parts(x, lambda q: self.E.mask(m, q))

    def select(self, mask, x, y):
        a = self.E.select(mask, x.a, y.a)
        if x.b is None and y.b is None:
            return Lin(a)
        bx, by = self._slopes([x, y])
        return Lin(a, fit(self.E.select(mask, bx, by), a.shape))

    def matmul(self, x, y):
        """2-D product; with one constant operand, one integer matrix product of the other's two parts stacked
        (side by side on the right, one above the other on the left)."""
        if x.b is None and y.b is None:
            return Lin(self.E.matmul(x.a, y.a))
        if x.b is not None and y.b is not None:
            raise NotAffine("a product of two matrices that depend on t")
        if x.b is None:
            n = y.a.shape[1]
            (an, bn), L = _common(y.a, y.b)
            c = self.E.matmul(self._cached(x.a), QT(np.concatenate([an, bn], axis=1), L))
            return Lin(QT(c.num[:, :n], c.den).reduced(), QT(c.num[:, n:], c.den).reduced())
        m = x.a.shape[0]
        (an, bn), L = _common(x.a, x.b)
        c = self.E.matmul(QT(np.concatenate([an, bn], axis=0), L), self._cached(y.a))
        return Lin(QT(c.num[:m], c.den).reduced(), QT(c.num[m:], c.den).reduced())

    def max_value(self, x, axes):
        return Lin(self.E.max_value(self._const_only(x, "logsumexp"), axes))


__all__ = ["AffineT", "Lin", "NotAffine"]
