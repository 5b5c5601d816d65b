"""Number systems for tensor programs: the scalar protocol (numbers/__init__.py) lifted to arrays, plus the
operations networks are made of (matrix products, gathers and scatters, sums).

Every value is a numpy array (0-d for a scalar) of the system's numbers, except exact values, which are
``QT``: integer numerators over one common positive denominator (floats are dyadic rationals, so a network's
weights and data are QT and its pre-activations are computed exactly by integer matrix products on FLINT's
``fmpz_mat``).  Values that stop being rational (exp, log, ...) become arrays of arb balls (the hybrid rule
of the scalar exact system).  Ball arrays multiply on ``arb_mat``.

``signs(x)`` returns an int8 array of decided signs with ``SIGN_UNDECIDED`` (2) where a ball contains 0 without
being 0: no undecided comparison ever becomes a bool here.
"""
import math
from fractions import Fraction

import numpy as np
from flint import arb, arb_mat, ctx, fmpq, fmpz_mat

from ..rational import dyadic_q
from ..truth import SIGN_UNDECIDED
from .ball import arb_lgamma, arb_polygamma, arb_sign, json_number


def _ints(a):
    return np.asarray(a, dtype=object)


class QT:
    """An exact array: ``num`` (object array of Python ints or fmpz), ``den`` (a Python int > 0)."""
    __slots__ = ("num", "den", "_mat", "_ball")

    def __init__(self, num, den=1):
        self.num = num if isinstance(num, np.ndarray) else np.asarray(num, dtype=object)
        self.den = den
        self._mat = None
        self._ball = None        # (precision, arb array): the balls of this exact array, once per precision

    @property
    def shape(self):
        return self.num.shape

    @property
    def size(self):
        return self.num.size

    @property
    def ndim(self):
        return self.num.ndim

    def reduced(self):
        """The same value with gcd(den, numerators) = 1 (keeps products of dyadic data small)."""
        if self.den == 1 or self.num.size == 0:
            return self
        g = math.gcd(self.den, *self.num.ravel().tolist())
        return self if g == 1 else QT(self.num // g, self.den // g)

    def __repr__(self):
        return f"QT(shape={self.shape}, den={self.den})"


def _frompy(fn):
    return np.frompyfunc(fn, 1, 1)


_arb_exp, _arb_log, _arb_sqrt = _frompy(lambda v: v.exp()), _frompy(lambda v: v.log()), _frompy(lambda v: v.sqrt())
_arb_sin, _arb_cos, _arb_tanh = _frompy(lambda v: v.sin()), _frompy(lambda v: v.cos()), _frompy(lambda v: v.tanh())
_arb_erf, _arb_atan = _frompy(lambda v: v.erf()), _frompy(lambda v: v.atan())
_arb_lgamma, _arb_erfinv = _frompy(lambda v: arb_lgamma(v)), _frompy(lambda v: v.erfinv())


def _arb_polygamma(x, n):
    return np.frompyfunc(lambda v: arb_polygamma(v, n), 1, 1)(x)


def _arb_bessel(x, n):
    return np.frompyfunc(lambda v: v.bessel_i(n), 1, 1)(x)


_arb_sign1 = _frompy(lambda v: SIGN_UNDECIDED if (s := arb_sign(v)) is None else s)


def _arb_sign(x):
    return np.asarray(_arb_sign1(x), dtype=object)


def _obj(a):
    """An object array: numpy returns a bare number from arithmetic on 0-d arrays; wrap it back."""
    if isinstance(a, np.ndarray):
        return a if a.dtype == object else a.astype(object)
    out = np.empty((), dtype=object)
    out[()] = a
    return out


def constant_parts(value):
    """(numerators, denominator) of an exact constant, or None when it holds arb balls.

    ``value`` is what a tensor program's inputs and constants are given as: an ExactArray or QT (``num`` over
    ``den``), an fmpq (a scalar input of an imported program), a Python or numpy integer, or a numpy object
    array (any shape, 0-d included) of fmpq / integers, or of arb balls (a value that stopped being rational).
    Numerators come back as an object array of Python ints over one positive denominator.  Raises TypeError for
    anything else (a float is not an exact constant: read it with ExactArray.from_any)."""
    if hasattr(value, "num") and hasattr(value, "den"):
        return _obj(np.asarray(value.num, dtype=object)), int(value.den)
    arr = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    if arr.dtype.kind in "iu":
        return arr.astype(object), 1
    if arr.dtype != object:
        raise TypeError(f"a constant of dtype {arr.dtype} is not an exact array")
    flat = arr.ravel().tolist()
    if flat and all(isinstance(v, arb) for v in flat):
        return None
    qs = []
    for v in flat:
        if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            qs.append(fmpq(int(v)))
        elif isinstance(v, fmpq):
            qs.append(v)
        else:
            raise TypeError(f"{type(v).__name__} {v!r} in a constant is not an exact number")
    den = math.lcm(*(int(q.q) for q in qs)) if qs else 1
    num = np.empty(arr.shape, dtype=object)
    num.ravel()[:] = [int(q.p) * (den // int(q.q)) for q in qs] if qs else []
    return num, den


def _balls_of(value):
    """The object array of arb balls of a constant that holds balls (see constant_parts)."""
    return _obj(np.asarray(value, dtype=object))


def roots_elementwise(cs, k, fn):
    """``fn(list of coefficients, k)`` at every element of the broadcast coefficient arrays ``cs`` (object
    array of the results; the ``root`` and ``expm`` primitives of tensor programs)."""
    arrs = np.broadcast_arrays(*[np.asarray(c, dtype=object) for c in cs])
    out = np.empty(arrs[0].shape if arrs else (), dtype=object)
    for i in np.ndindex(out.shape):
        out[i] = fn([a[i] for a in arrs], k)
    return out


def lists_elementwise(xs, fn):
    """``fn(list of inputs)`` -> list of m values at every element of the broadcast arrays ``xs``: m object
    arrays (the gradient of the ``expm`` primitive)."""
    arrs = np.broadcast_arrays(*[np.asarray(x, dtype=object) for x in xs])
    shape = arrs[0].shape if arrs else ()
    outs = None
    for i in np.ndindex(shape):
        vals = fn([a[i] for a in arrs])
        if outs is None:
            outs = [np.empty(shape, dtype=object) for _ in vals]
        for o, v in zip(outs, vals):
            o[i] = v
    if outs is None:            # no element: the count of outputs is the count of inputs (n^2 entries)
        outs = [np.empty(shape, dtype=object) for _ in xs]
    return outs


class _Base:
    """Shared structure: every system stores arrays; structural operations (reshape, transpose, gather,
    scatter, broadcast, concatenation) act on the underlying numpy arrays."""
    tensor = True

    # hooks a subclass overrides: how to reach the array(s) of a value and rebuild one
    def _arr(self, x):
        return x

    def _wrap(self, x, like):
        return x

    def struct(self, x, fn):
        """Apply a structural numpy function (reshape, transpose, indexing) to a value."""
        return self._wrap(fn(self._arr(x)), x)

    def reshape(self, x, shape):
        return self.struct(x, lambda a: a.reshape(shape))

    def transpose(self, x, perm):
        return self.struct(x, lambda a: a.transpose(perm))

    def broadcast_to(self, x, shape):
        return self.struct(x, lambda a: np.broadcast_to(a, shape))

    def take(self, x, idx):
        """x.ravel()[idx] with idx an int array of any shape; -1 entries give 0."""
        def fn(a):
            flat = np.append(np.ravel(a), self._zero_scalar(a))
            return flat[idx]
        return self.struct(x, fn)

    def shape(self, x):
        return np.shape(self._arr(x))


# ------------------------------------------------------------------------------------------------ exact

class ExactTensors(_Base):
    """Exact rationals as QT (integer numerators over a common denominator), falling back to object
    arrays of fmpq for elementwise quotients of arrays, and to arb arrays for transcendental values."""
    name = "exact"
    exact = True

    # -- conversions
    def const(self, q):
        return QT(_obj(int(q.p)), int(q.q))

    def const_array(self, ea):
        """QT of an exact constant (any form constant_parts reads), or the arb array of a constant of balls."""
        parts = constant_parts(ea)
        return _balls_of(ea) if parts is None else QT(*parts)

    def is_qt(self, x):
        return isinstance(x, QT)

    def is_exact_value(self, x):
        return isinstance(x, QT) or (isinstance(x, np.ndarray) and (x.size == 0 or isinstance(x.flat[0], fmpq)))

    def _arr(self, x):
        return x.num if isinstance(x, QT) else x

    def _wrap(self, a, like):
        return QT(a, like.den) if isinstance(like, QT) else a

    def struct(self, x, fn):
        out = self._wrap(fn(self._arr(x)), x)
        if isinstance(x, QT) and x._ball is not None:
            out._ball = (x._ball[0], fn(x._ball[1]))      # a transposed constant keeps its balls
        return out

    def _zero_scalar(self, a):
        return 0 if a.size == 0 or not isinstance(a.flat[0], (fmpq, arb)) else a.flat[0] * 0

    def to_fq(self, x):
        """Object array of fmpq (exact) or the arb array unchanged."""
        if isinstance(x, QT):
            d = x.den
            return _obj(np.frompyfunc(lambda v: fmpq(int(v), d), 1, 1)(x.num)) if x.num.size else \
                np.empty(x.shape, dtype=object)
        return x

    def to_ball(self, x):
        """arb array of x (exact values become radius-0 balls when they fit the precision)."""
        if isinstance(x, QT):
            if x.num.size == 0:
                return np.empty(x.shape, dtype=object)
            prec = ctx.prec
            if x._ball is not None and x._ball[0] == prec:
                return x._ball[1]
            flat = x.num.ravel().tolist()
            m = arb_mat(fmpz_mat(1, len(flat), flat))
            if x.den != 1:
                m = m / x.den
            out = np.array(m.entries(), dtype=object).reshape(x.shape)
            x._ball = (prec, out)
            return out
        if x.size and isinstance(x.flat[0], fmpq):
            return _obj(np.frompyfunc(arb, 1, 1)(x))
        return x

    def to_qt(self, x):
        """QT of an exact value (None when x holds balls)."""
        if isinstance(x, QT):
            return x
        if x.size == 0:
            return QT(np.empty(x.shape, dtype=object), 1)
        if not isinstance(x.flat[0], fmpq):
            return None
        flat = x.ravel().tolist()
        L = math.lcm(*(int(v.q) for v in flat))
        return QT(np.array([int(v.p) * (L // int(v.q)) for v in flat], dtype=object).reshape(x.shape), L).reduced()

    def _kind(self, *xs):
        if all(isinstance(x, QT) for x in xs):
            return "qt"
        if any(isinstance(x, np.ndarray) and x.size and isinstance(x.flat[0], arb) for x in xs):
            return "ball"
        return "fq"

    # -- elementwise arithmetic
    def add(self, a, b):
        k = self._kind(a, b)
        if k == "qt":
            if a.den == b.den:
                return QT(_obj(a.num + b.num), a.den)
            L = math.lcm(a.den, b.den)
            return QT(_obj(a.num * (L // a.den) + b.num * (L // b.den)), L)
        return _obj(self._lift(a, k) + self._lift(b, k))

    def sub(self, a, b):
        return self.add(a, self.neg(b))

    def neg(self, a):
        return QT(_obj(-a.num), a.den) if isinstance(a, QT) else _obj(-a)

    def mul(self, a, b):
        k = self._kind(a, b)
        if k == "qt":
            return QT(_obj(a.num * b.num), a.den * b.den).reduced()
        return _obj(self._lift(a, k) * self._lift(b, k))

    def div(self, a, b):
        if isinstance(a, QT) and isinstance(b, QT) and b.ndim == 0:
            p = int(b.num)
            s = 1 if p > 0 else -1
            return QT(_obj(a.num * (b.den * s)), a.den * abs(p)).reduced()
        k = self._kind(a, b)
        if k == "qt":
            k = "fq"
        return _obj(self._lift(a, k) / self._lift(b, k))

    def pow(self, a, n):
        if isinstance(a, QT) and n >= 0:
            return QT(_obj(a.num ** n) if n else np.ones(a.shape, dtype=object), a.den ** n)
        k = self._kind(a)
        x = self._lift(a, "fq" if k == "qt" else k)
        from .ball import int_power
        if n >= 0:
            return _obj(np.frompyfunc(lambda v: v ** n if isinstance(v, fmpq) else int_power(v, n), 1, 1)(x))
        return _obj(np.frompyfunc(lambda v: v ** n if isinstance(v, fmpq) else 1 / int_power(v, -n), 1, 1)(x))

    def _lift(self, x, kind):
        if kind == "ball":
            return self.to_ball(x)
        if kind == "fq":
            return self.to_fq(x)
        return x

    # -- transcendental: exact at the special points where every element is special, else balls
    def _special(self, x, test, value, fn):
        q = x if isinstance(x, QT) else self.to_qt(x)
        if q is not None and q.num.size and all(test(int(v), q.den) for v in q.num.ravel().tolist()):
            return QT(np.full(q.shape, value, dtype=object), 1) if not callable(value) else value(q)
        return _obj(fn(self.to_ball(x)))

    def exp(self, x):
        return self._special(x, lambda p, d: p == 0, 1, _arb_exp)

    def log(self, x):
        return self._special(x, lambda p, d: p == d, 0, _arb_log)

    def sqrt(self, x):
        def square(p, d):
            return p >= 0 and math.isqrt(p) ** 2 == p and math.isqrt(d) ** 2 == d
        return self._special(x, square, lambda q: QT(np.frompyfunc(math.isqrt, 1, 1)(q.num), math.isqrt(q.den)),
                             _arb_sqrt)

    def sin(self, x):
        return self._special(x, lambda p, d: p == 0, 0, _arb_sin)

    def cos(self, x):
        return self._special(x, lambda p, d: p == 0, 1, _arb_cos)

    def tanh(self, x):
        return self._special(x, lambda p, d: p == 0, 0, _arb_tanh)

    def erf(self, x):
        return self._special(x, lambda p, d: p == 0, 0, _arb_erf)

    def atan(self, x):
        return self._special(x, lambda p, d: p == 0, 0, _arb_atan)

    def lgamma(self, x):
        return self._special(x, lambda p, d: p in (d, 2 * d), 0, _arb_lgamma)

    def erfinv(self, x):
        return self._special(x, lambda p, d: p == 0, 0, _arb_erfinv)

    def polygamma(self, x, n):
        return _obj(_arb_polygamma(self.to_ball(x), n))

    def bessel_i(self, x, n):
        return self._special(x, lambda p, d: p == 0, 1 if n == 0 else 0, lambda b: _arb_bessel(b, n))

    def pi(self):
        return _obj(arb.pi())

    def root(self, cs, k):
        from .roots import real_root
        out = roots_elementwise([self.to_fq(c) for c in cs], k, real_root)
        return self._exact_or_balls(out)

    def _exact_or_balls(self, out):
        """An object array of fmpq and arb as QT when every element is exact, else as an arb array."""
        q = self.to_qt(out) if all(isinstance(v, fmpq) for v in out.ravel().tolist()) else None
        return q if q is not None else _obj(np.frompyfunc(lambda v: v if isinstance(v, arb) else arb(v), 1, 1)(out))

    def expm(self, xs, i, j):
        from .matfun import expm_entry
        return self._exact_or_balls(roots_elementwise([self.to_fq(x) for x in xs], None,
                                                      lambda v, _: expm_entry(v, i, j)))

    def expm_grad(self, xs, i, j):
        from .matfun import expm_gradient
        return [self._exact_or_balls(g) for g in
                lists_elementwise([self.to_fq(x) for x in xs], lambda v: expm_gradient(v, i, j))]

    def sigmoid(self, x):
        q = x if isinstance(x, QT) else self.to_qt(x)
        if q is not None and q.num.size and all(int(v) == 0 for v in q.num.ravel().tolist()):
            return QT(np.ones(q.shape, dtype=object), 2)
        b = self.to_ball(x)
        return _obj(1 / (1 + _arb_exp(-b)))

    # -- decisions
    def signs(self, x):
        if isinstance(x, QT):
            n = x.num
            return ((n > 0).astype(np.int8) - (n < 0).astype(np.int8)).reshape(x.shape)
        if x.size and isinstance(x.flat[0], fmpq):
            return ((x > 0).astype(np.int8) - (x < 0).astype(np.int8)).reshape(x.shape)
        return _arb_sign(x).astype(np.int8).reshape(x.shape) if x.size else np.zeros(x.shape, np.int8)

    # -- structure
    def zeros(self, shape):
        return QT(np.zeros(shape, dtype=object), 1)

    def zeros_like(self, x):
        return self.zeros(np.shape(self._arr(x)))

    def select(self, mask, a, b):
        """Elementwise: a where mask, else b (mask a bool array)."""
        k = self._kind(a, b)
        if k == "qt":
            if a.den != b.den:
                L = math.lcm(a.den, b.den)
                a, b = QT(a.num * (L // a.den), L), QT(b.num * (L // b.den), L)
            return QT(np.where(mask, a.num, b.num).astype(object), a.den)
        return _obj(np.where(mask, self._lift(a, k), self._lift(b, k)))

    def mask(self, m, x):
        """x where the bool array m holds, 0 elsewhere."""
        if isinstance(x, QT):
            return QT(np.where(m, x.num, 0).astype(object), x.den)
        return _obj(np.where(m, x, x.flat[0] * 0 if x.size else 0))

    def sum(self, x, axes, keepdims=False):
        if isinstance(x, QT):
            return QT(_obj(x.num.sum(axis=axes, keepdims=keepdims)) if x.num.size else
                      np.zeros(np.sum(np.zeros(x.shape), axis=axes, keepdims=keepdims).shape, dtype=object), x.den)
        if x.size == 0:
            return self.zeros(np.sum(np.zeros(x.shape), axis=axes, keepdims=keepdims).shape)
        return _obj(x.sum(axis=axes, keepdims=keepdims))

    def scatter(self, v, idx, size):
        """Flat array of ``size`` zeros plus v added at positions idx (entries -1 ignored)."""
        idx = np.asarray(idx).ravel()
        keep = idx >= 0
        if isinstance(v, QT):
            out = np.zeros(size, dtype=object)
            np.add.at(out, idx[keep], np.ravel(v.num)[keep])
            return QT(out, v.den)
        vals = np.ravel(v)[keep]
        out = np.empty(size, dtype=object)
        out[:] = 0 if not vals.size else vals[0] * 0
        np.add.at(out, idx[keep], vals)
        return out

    def concat_flat(self, xs):
        k = self._kind(*xs)
        if k == "qt":
            L = math.lcm(*(x.den for x in xs))
            return QT(np.concatenate([np.ravel(x.num) * (L // x.den) for x in xs]).astype(object), L)
        return _obj(np.concatenate([np.ravel(self._lift(x, k)) for x in xs]))

    def matmul(self, a, b):
        """2-D matrix product."""
        (m, _), (_, n) = self.shape(a), self.shape(b)
        if isinstance(a, QT) and isinstance(b, QT):
            c = numerator_mat(a) * numerator_mat(b)
            return QT(np.array(c.entries(), dtype=object).reshape(m, n), a.den * b.den).reduced()
        if self._kind(a, b) == "fq":
            return self.matmul(self.to_qt(a), self.to_qt(b))
        return ball_matmul(self.to_ball(a), self.to_ball(b))

    def max_value(self, x, axes):
        """A rational near the largest element of every slice (keepdims): the shift of a logsumexp, where any
        value is correct and one near the maximum keeps exp from overflowing."""
        if isinstance(x, QT):
            return QT(_obj(x.num.max(axis=axes, keepdims=True)), x.den)
        return self.to_ball(_obj(np.frompyfunc(_mid_q, 1, 1)(x).max(axis=axes, keepdims=True)))

    def out(self, x):
        """The user-facing array: fmpq for exact values, arb otherwise."""
        return self.to_fq(x)

    def to_json(self, x):
        return json_number(x)


def _mid_q(v):
    if isinstance(v, fmpq):
        return v
    return dyadic_q(v.mid())


def numerator_mat(q):
    """The numerator of a 2-D QT as an fmpz_mat (built once, cached on ``q``)."""
    if q._mat is None:
        m, n = q.shape
        q._mat = fmpz_mat(m, n, q.num.ravel().tolist())
    return q._mat


def ball_matmul(a, b):
    """Product of two 2-D arb arrays on arb_mat (a rigorous enclosure of the exact product)."""
    (m, k), (_, n) = a.shape, b.shape
    if m == 0 or n == 0 or k == 0:
        return np.full((m, n), arb(0), dtype=object)
    c = arb_mat(m, k, a.ravel().tolist()) * arb_mat(k, n, b.ravel().tolist())
    return np.array(c.entries(), dtype=object).reshape(m, n)


# ------------------------------------------------------------------------------------------------- ball

class BallTensors(_Base):
    """Arrays of arb balls at the caller's precision (``flint.ctx.workprec``)."""
    name = "ball"
    exact = False

    def const(self, q):
        return _obj(arb(q))

    def const_array(self, ea):
        """Radius-0 balls of an exact constant (any form constant_parts reads), or the balls of a constant of
        balls."""
        parts = constant_parts(ea)
        return _balls_of(ea) if parts is None else ExactTensors().to_ball(QT(*parts))

    def is_exact_value(self, x):
        return False

    def _zero_scalar(self, a):
        return arb(0)

    def add(self, a, b): return _obj(a + b)
    def sub(self, a, b): return _obj(a - b)
    def mul(self, a, b): return _obj(a * b)
    def div(self, a, b): return _obj(a / b)
    def neg(self, a): return _obj(-a)

    def pow(self, a, n):
        from .ball import int_power
        f = (lambda v: int_power(v, n)) if n >= 0 else (lambda v: 1 / int_power(v, -n))
        return _obj(np.frompyfunc(f, 1, 1)(a))

    def exp(self, x): return _obj(_arb_exp(x))
    def log(self, x): return _obj(_arb_log(x))
    def sqrt(self, x): return _obj(_arb_sqrt(x))
    def sin(self, x): return _obj(_arb_sin(x))
    def cos(self, x): return _obj(_arb_cos(x))
    def tanh(self, x): return _obj(_arb_tanh(x))
    def erf(self, x): return _obj(_arb_erf(x))
    def atan(self, x): return _obj(_arb_atan(x))
    def lgamma(self, x): return _obj(_arb_lgamma(x))
    def erfinv(self, x): return _obj(_arb_erfinv(x))
    def polygamma(self, x, n): return _obj(_arb_polygamma(x, n))
    def bessel_i(self, x, n): return _obj(_arb_bessel(x, n))
    def sigmoid(self, x): return _obj(1 / (1 + _arb_exp(-x)))
    def pi(self): return _obj(arb.pi())

    def root(self, cs, k):
        from .roots import real_root
        return _obj(roots_elementwise(cs, k, real_root))

    def expm(self, xs, i, j):
        from .matfun import expm_entry
        return _obj(roots_elementwise(xs, None, lambda v, _: expm_entry(v, i, j)))

    def expm_grad(self, xs, i, j):
        from .matfun import expm_gradient
        return [_obj(g) for g in lists_elementwise(xs, lambda v: expm_gradient(v, i, j))]

    def signs(self, x):
        # np.asarray: a ufunc from frompyfunc returns a bare Python int for a 0-d array
        return np.asarray(_arb_sign(x)).astype(np.int8).reshape(np.shape(x)) if np.size(x) else \
            np.zeros(np.shape(x), np.int8)

    def zeros(self, shape):
        return np.full(shape, arb(0), dtype=object)

    def zeros_like(self, x):
        return self.zeros(np.shape(x))

    def select(self, mask, a, b):
        return _obj(np.where(mask, a, b))

    def mask(self, m, x):
        return _obj(np.where(m, x, arb(0)))

    def sum(self, x, axes, keepdims=False):
        if x.size == 0:
            return self.zeros(np.sum(np.zeros(x.shape), axis=axes, keepdims=keepdims).shape)
        return _obj(x.sum(axis=axes, keepdims=keepdims))

    def scatter(self, v, idx, size):
        idx = np.asarray(idx).ravel()
        keep = idx >= 0
        out = np.full(size, arb(0), dtype=object)
        np.add.at(out, idx[keep], np.ravel(v)[keep])
        return out

    def concat_flat(self, xs):
        return _obj(np.concatenate([np.ravel(x) for x in xs]))

    def matmul(self, a, b):
        return ball_matmul(a, b)

    def max_value(self, x, axes):
        return _obj(np.frompyfunc(arb, 1, 1)(np.frompyfunc(_mid_q, 1, 1)(x).max(axis=axes, keepdims=True)))

    def out(self, x):
        return x

    def to_json(self, x):
        return json_number(x)


# ------------------------------------------------------------------------------------------------ float

class FloatTensors(_Base):
    """numpy arrays of float64 / float32 / float16: what frameworks compute (unverified by design)."""
    exact = False

    def __init__(self, name="float64"):
        self.name = name
        self.dtype = np.dtype(name)

    def const(self, q):
        return np.asarray(int(q.p) / int(q.q), dtype=np.float64).astype(self.dtype)

    def const_array(self, ea):
        """The nearest float64 numbers of a constant (any form constant_parts reads; a ball's midpoint), in the
        system's dtype (a second rounding for float32 / float16 unless the constant came from such floats)."""
        if hasattr(ea, "to_float"):
            return np.asarray(ea.to_float(np.float64)).astype(self.dtype)
        parts = constant_parts(ea)
        if parts is None:
            vals = [float(v.mid()) for v in np.ravel(_balls_of(ea)).tolist()]
            return np.array(vals, dtype=np.float64).reshape(np.shape(ea)).astype(self.dtype)
        num, den = parts
        vals = [float(Fraction(int(v), den)) for v in num.ravel().tolist()]
        return np.array(vals, dtype=np.float64).reshape(num.shape).astype(self.dtype)

    def is_exact_value(self, x):
        return False

    def _zero_scalar(self, a):
        return 0

    def cast(self, x):
        """``x`` as an array of this system's dtype (every operation rounds its result to it)."""
        return np.asarray(x, dtype=self.dtype)

    def add(self, a, b): return self.cast(a + b)
    def sub(self, a, b): return self.cast(a - b)
    def mul(self, a, b): return self.cast(a * b)
    def div(self, a, b): return self.cast(a / b)
    def neg(self, a): return self.cast(-a)
    def pow(self, a, n): return self.cast(a ** n) if n >= 0 else self.cast(1 / a ** (-n))
    def exp(self, x): return self.cast(np.exp(x))
    def log(self, x): return self.cast(np.log(x))
    def sqrt(self, x): return self.cast(np.sqrt(x))
    def sin(self, x): return self.cast(np.sin(x))
    def cos(self, x): return self.cast(np.cos(x))
    def tanh(self, x): return self.cast(np.tanh(x))

    def erf(self, x):
        from scipy.special import erf
        return self.cast(erf(x))

    def sigmoid(self, x): return self.cast(1 / (1 + np.exp(-x)))
    def atan(self, x): return self.cast(np.arctan(x))
    def pi(self): return self.cast(np.pi)

    def root(self, cs, k):
        from .roots import float_root
        return self.cast(roots_elementwise(cs, k, float_root).astype(np.float64))

    def expm(self, xs, i, j):
        from .matfun import float_expm_entry
        return self.cast(roots_elementwise(xs, None, lambda v, _: float_expm_entry(v, i, j)).astype(np.float64))

    def expm_grad(self, xs, i, j):
        from .matfun import float_expm_gradient
        return [self.cast(g.astype(np.float64)) for g in lists_elementwise(xs, lambda v: float_expm_gradient(v, i, j))]

    def lgamma(self, x):
        from scipy.special import gammaln
        return self.cast(gammaln(x))

    def erfinv(self, x):
        from scipy.special import erfinv
        return self.cast(erfinv(x))

    def polygamma(self, x, n):
        from scipy.special import polygamma
        return self.cast(polygamma(n, x))

    def bessel_i(self, x, n):
        from scipy.special import iv
        return self.cast(iv(n, x))

    def signs(self, x):
        s = np.sign(x).astype(np.int8)
        return np.where(np.isnan(x), SIGN_UNDECIDED, s).astype(np.int8)

    def zeros(self, shape):
        return np.zeros(shape, dtype=self.dtype)

    def zeros_like(self, x):
        return self.zeros(np.shape(x))

    def select(self, mask, a, b):
        return self.cast(np.where(mask, a, b))

    def mask(self, m, x):
        return self.cast(np.where(m, x, 0))

    def sum(self, x, axes, keepdims=False):
        return self.cast(np.sum(x, axis=axes, keepdims=keepdims))

    def scatter(self, v, idx, size):
        idx = np.asarray(idx).ravel()
        keep = idx >= 0
        out = np.zeros(size, dtype=self.dtype)
        np.add.at(out, idx[keep], np.ravel(v)[keep])
        return out

    def concat_flat(self, xs):
        return self.cast(np.concatenate([np.ravel(x) for x in xs]))

    def matmul(self, a, b):
        return self.cast(np.asarray(a) @ np.asarray(b))

    def max_value(self, x, axes):
        return np.max(x, axis=axes, keepdims=True)

    def out(self, x):
        return x

    def to_json(self, x):
        return float(x)


# --------------------------------------------------------------------------------------------- interval

class IntervalTensors(_Base):
    """Arrays of mpmath ``iv`` intervals: an independent cross-check of the ball arrays, for small programs
    (its products are Python loops)."""
    name = "interval"
    exact = False

    def __init__(self):
        from .interval import IntervalSystem
        self.s = IntervalSystem()

    def precision(self, bits):
        return self.s.precision(bits)

    def const(self, q):
        return _obj(self.s.const(q))

    def const_array(self, ea):
        """Intervals around an exact constant (any form constant_parts reads) or around its balls."""
        from mpmath import iv
        parts = constant_parts(ea)
        if parts is None:
            return _obj(np.frompyfunc(_arb_interval, 1, 1)(_balls_of(ea)))
        num, den = parts
        d = iv.mpf(den)
        return _obj(np.frompyfunc(lambda v: iv.mpf(int(v)) / d, 1, 1)(num)) if num.size else \
            np.empty(num.shape, dtype=object)

    def is_exact_value(self, x):
        return False

    def _zero_scalar(self, a):
        return self.s.const(fmpq(0))

    def _map(self, f, x):
        return _obj(np.frompyfunc(f, 1, 1)(x)) if np.size(x) else x

    def add(self, a, b): return _obj(a + b)
    def sub(self, a, b): return _obj(a - b)
    def mul(self, a, b): return _obj(a * b)
    def div(self, a, b): return _obj(a / b)
    def neg(self, a): return _obj(-a)
    def pow(self, a, n): return self._map(lambda v: self.s.pow(v, n), a)
    def exp(self, x): return self._map(self.s.exp, x)
    def log(self, x): return self._map(self.s.log, x)
    def sqrt(self, x): return self._map(self.s.sqrt, x)
    def sin(self, x): return self._map(self.s.sin, x)
    def cos(self, x): return self._map(self.s.cos, x)
    def tanh(self, x): return self._map(self.s.tanh, x)

    def erf(self, x):
        return self._map(self.s.erf, x)

    def atan(self, x):
        return self._map(self.s.atan, x)

    def erfinv(self, x):
        return self._map(self.s.erfinv, x)

    def lgamma(self, x):
        return self._map(self.s.lgamma, x)

    def polygamma(self, x, n):
        return self._map(lambda v: self.s.polygamma(v, n), x)

    def bessel_i(self, x, n):
        return self._map(lambda v: self.s.bessel_i(v, n), x)

    def sigmoid(self, x): return self._map(self.s.sigmoid, x)
    def pi(self): return _obj(self.s.pi())

    def root(self, cs, k):
        return self.s.root(cs, k)

    def expm(self, xs, i, j):
        return self.s.expm(xs, i, j)

    def expm_grad(self, xs, i, j):
        return self.s.expm_grad(xs, i, j)

    def signs(self, x):
        f = np.frompyfunc(lambda v: SIGN_UNDECIDED if (s := self.s.sign(v)) is None else s, 1, 1)
        return np.asarray(f(x), dtype=object).astype(np.int8).reshape(np.shape(x)) if np.size(x) else \
            np.zeros(np.shape(x), np.int8)

    def zeros(self, shape):
        z = self.s.const(fmpq(0))
        out = np.empty(shape, dtype=object)
        out[...] = z
        return out

    def zeros_like(self, x):
        return self.zeros(np.shape(x))

    def select(self, mask, a, b):
        return _obj(np.where(mask, a, b))

    def mask(self, m, x):
        return _obj(np.where(m, x, self.s.const(fmpq(0))))

    def sum(self, x, axes, keepdims=False):
        if np.size(x) == 0:
            return self.zeros(np.sum(np.zeros(np.shape(x)), axis=axes, keepdims=keepdims).shape)
        return _obj(x.sum(axis=axes, keepdims=keepdims))

    def scatter(self, v, idx, size):
        idx = np.asarray(idx).ravel()
        keep = idx >= 0
        out = self.zeros(size)
        np.add.at(out, idx[keep], np.ravel(v)[keep])
        return out

    def concat_flat(self, xs):
        return _obj(np.concatenate([np.ravel(x) for x in xs]))

    def matmul(self, a, b):
        (m, k), (_, n) = a.shape, b.shape
        out = self.zeros((m, n))
        for i in range(m):
            for j in range(n):
                acc = self.s.const(fmpq(0))
                for t in range(k):
                    acc = acc + a[i, t] * b[t, j]
                out[i, j] = acc
        return out

    def max_value(self, x, axes):
        # any shift is correct for a logsumexp: the float midpoint is enough
        f = np.frompyfunc(lambda v: fmpq(*float(v.mid).as_integer_ratio()), 1, 1)
        return _obj(np.frompyfunc(self.s.const, 1, 1)(f(x).max(axis=axes, keepdims=True)))

    def out(self, x):
        return x

    def to_json(self, x):
        return self.s.to_json(x)


def _arb_interval(v):
    """The mpmath interval [lower, upper] of an arb ball (its endpoints are dyadic: read exactly)."""
    from mpmath import iv, mpf

    def exact(b):
        man, exp = (int(t) for t in b.mid().man_exp())
        return mpf((man, exp))
    return iv.mpf([exact(v.lower()), exact(v.upper())])


def get_tensor_system(name):
    """The tensor number system called ``name`` (exact, ball, interval, float, float64/32/16)."""
    if name == "exact":
        return ExactTensors()
    if name == "ball":
        return BallTensors()
    if name == "interval":
        return IntervalTensors()
    if name in ("float", "float64", "float32", "float16"):
        return FloatTensors("float64" if name == "float" else name)
    from ..errors import InputError
    raise InputError(f"number system {name!r} is unknown")


__all__ = ["QT", "constant_parts", "ExactTensors", "BallTensors", "FloatTensors", "IntervalTensors",
           "get_tensor_system", "SIGN_UNDECIDED"]
