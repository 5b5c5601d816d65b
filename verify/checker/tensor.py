"""The checker's own tensor kernel: a tensor program evaluated at a point with the checker's own arithmetic,
the piece every site's index rule chooses there, the local index set, and reverse mode over chosen pieces.

Independence, and its one trade-off.  Nothing here imports verify.interpret, verify.numbers.tensor or
verify.certify: values, decisions and gradients are computed by this module.  It reuses the declarative part
of verify.program: the IR and parser, the params, the shape rules, the site tables (which input elements are
the arguments of each site, which output elements its values) and the index maps of prims/tensor.py (the flat
input positions read by conv2d patches, pooling windows, slice, pad, concat and take_along).  Those define
what a tensor primitive means and are tested against PyTorch and JAX; a mistake in one of them would be
shared by certifier and checker.  The scalar meaning of every site (its switching functions, index rule and
pieces) is the checker kernel's (kernel.switches / choose / pieces), written independently of the prims.

Numbers.  An exact array is ``Q``: integer numerators (a numpy object array) over one positive denominator;
matrix products are integer products on FLINT's fmpz_mat.  Values that stop being rational (exp, log, ...)
become numpy object arrays of arb balls at the ambient precision (ctx.workprec), multiplied on arb_mat.
Signs are int8 arrays with UNDECIDED (2) where a ball contains 0 without being 0: an undecided comparison
never becomes a bool.  A smooth transcendental primitive is exact on an array only where every element is at
its special point (exp(0) = 1, log(1) = 0, ...), as the interpreter's hybrid rule: the same values are exact
for certifier and checker, so both decide the same signs.
"""
import itertools
import math

import numpy as np
from flint import arb, arb_mat, fmpq, fmpz_mat

from ..program.ir import Arr, Lit
from ..program.prims import PRIMITIVES
from ..program.prims.tensor import (conv_pads, conv_patches, pool_windows, sites_of, slice_bounds, structure_map,
                                    take_map)
from . import Invalid
from . import kernel as K

UNDECIDED = 2
# the primitives whose pieces meet only where a switching function is 0 (not kth: the mean of two arguments on
# either side of the k-th one can equal it)
TIE_ONLY = ("relu", "abs", "leaky_relu", "max", "min", "sort", "mode")
MAX_PIECES = 100_000        # sites with more pieces (sort over long axes) are refused at a tie, as the certifier does


# ------------------------------------------------------------------------------------------------ numbers

def _obj(a):
    """An object array (numpy turns arithmetic on 0-d arrays into bare numbers: wrap them back)."""
    if isinstance(a, np.ndarray):
        return a if a.dtype == object else a.astype(object)
    out = np.empty((), dtype=object)
    out[()] = a
    return out


class Q:
    """An exact array: ``num`` (numpy object array of integers) over ``den`` (a positive integer)."""
    __slots__ = ("num", "den", "_mat")

    def __init__(self, num, den=1):
        self.num, self.den, self._mat = _obj(num), int(den), None

    @property
    def shape(self):
        return self.num.shape

    def mat(self):
        """The numerators as an fmpz_mat (2-D, non-empty), computed once."""
        if self._mat is None:
            m, n = self.num.shape
            self._mat = fmpz_mat(m, n, self.num.ravel().tolist())
        return self._mat

    def reduced(self):
        if self.den == 1 or self.num.size == 0:
            return self
        g = math.gcd(self.den, *self.num.ravel().tolist())
        return self if g == 1 else Q(self.num // g, self.den // g)

    def fmpqs(self):
        d = self.den
        return _obj(np.frompyfunc(lambda v: fmpq(int(v), d), 1, 1)(self.num)) if self.num.size else \
            np.empty(self.shape, dtype=object)


def exact(ea):
    """Q of an ExactArray (a constant of the program or an input at the point)."""
    return Q(ea.num, ea.den)


def literal(q):
    return Q(_obj(int(q.p)), int(q.q))


def zeros(shape):
    return Q(np.zeros(shape, dtype=object), 1)


ZERO = arb(0)


def ball_zeros(shape):
    out = np.empty(shape, dtype=object)
    out[...] = ZERO
    return out


def is_exact(x):
    return isinstance(x, Q)


def shape(x):
    return x.shape


def balls(x):
    """The arb array of x (an exact array becomes balls at the ambient precision)."""
    if not isinstance(x, Q):
        return x
    n = x.num.size
    if n == 0:
        return np.empty(x.shape, dtype=object)
    m = arb_mat(fmpz_mat(1, n, x.num.ravel().tolist()))
    if x.den != 1:
        m = m / x.den
    return np.array(m.entries(), dtype=object).reshape(x.shape)


def _ball_mat(x, rows, cols):
    if isinstance(x, Q):
        m = arb_mat(x.mat())
        return m / x.den if x.den != 1 else m
    return arb_mat(rows, cols, x.ravel().tolist())


def restructure(x, fn):
    """A structural numpy function (reshape, transpose, indexing, broadcasting) applied to a value."""
    return Q(fn(x.num), x.den) if isinstance(x, Q) else _obj(fn(x))


def reshape(x, s):
    return restructure(x, lambda a: a.reshape(s))


def transpose(x, perm):
    return restructure(x, lambda a: a.transpose(perm))


def broadcast(x, s):
    return x if tuple(x.shape) == tuple(s) else restructure(x, lambda a: np.broadcast_to(a, s))


def _common(a, b):
    L = a.den * b.den // math.gcd(a.den, b.den)
    return (a.num if a.den == L else a.num * (L // a.den)), (b.num if b.den == L else b.num * (L // b.den)), L


def add(a, b):
    if isinstance(a, Q) and isinstance(b, Q):
        x, y, L = _common(a, b)
        return Q(x + y, L)
    return _obj(balls(a) + balls(b))


def neg(a):
    return Q(-a.num, a.den) if isinstance(a, Q) else _obj(-a)


def sub(a, b):
    return add(a, neg(b))


def mul(a, b):
    if isinstance(a, Q) and isinstance(b, Q):
        return Q(a.num * b.num, a.den * b.den).reduced()
    return _obj(balls(a) * balls(b))


def signs(x):
    """int8 array of decided signs, UNDECIDED where a ball contains 0 without being 0."""
    if isinstance(x, Q):
        n = x.num
        return (n > 0).astype(np.int8) - (n < 0).astype(np.int8)
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.int8)
    return np.asarray(_ball_sign(x), dtype=np.int8)


_ball_sign = np.frompyfunc(lambda v: 1 if v > 0 else (-1 if v < 0 else (0 if v.is_zero() else UNDECIDED)), 1, 1)


def require(x, allowed, need):
    """Every element's sign in ``allowed``: CannotDecide when one is undecided, Undefined when one is not."""
    s = signs(x)
    if (s == UNDECIDED).any():
        raise K.CannotDecide(f"the checker cannot decide whether {need}")
    if not np.isin(s, list(allowed)).all():
        raise K.Undefined(f"the program is not defined here: {need}")


def div(a, b):
    require(b, (-1, 1), "a divisor is nonzero")
    if isinstance(a, Q) and isinstance(b, Q):
        if b.num.ndim == 0:
            p = int(b.num[()])
            return Q(a.num * (b.den if p > 0 else -b.den), a.den * abs(p)).reduced()
        return from_fmpqs(_obj(a.fmpqs() / b.fmpqs()))
    return _obj(balls(a) / balls(b))


def from_fmpqs(arr):
    """Q of an object array of fmpq."""
    flat = arr.ravel().tolist()
    if not flat:
        return Q(np.zeros(arr.shape, dtype=object), 1)
    L = math.lcm(*(int(v.q) for v in flat))
    return Q(np.array([int(v.p) * (L // int(v.q)) for v in flat], dtype=object).reshape(arr.shape), L)


def power(a, n):
    if n < 0:
        require(a, (-1, 1), "a negative power has a nonzero base")
    if isinstance(a, Q):
        if n >= 0:
            return Q(a.num ** n if n else np.ones(a.shape, dtype=object), a.den ** n)
        return from_fmpqs(_obj(np.frompyfunc(lambda v: v ** n, 1, 1)(a.fmpqs())))
    if n >= 0:
        return _obj(np.frompyfunc(lambda v: K.ipow(v, n), 1, 1)(a))
    return _obj(np.frompyfunc(lambda v: 1 / K.ipow(v, -n), 1, 1)(a))


# value at the special point (numerator, denominator) -> exact value, for the transcendental primitives
_SPECIAL = {"exp": ((0, 1), 1), "sin": ((0, 1), 0), "cos": ((0, 1), 1), "tanh": ((0, 1), 0), "erf": ((0, 1), 0),
            "atan": ((0, 1), 0),
            "sigmoid": ((0, 1), fmpq(1, 2)), "log": ((1, 1), 0)}
_BALL = {"exp": lambda v: v.exp(), "log": lambda v: v.log(), "sqrt": lambda v: v.sqrt(), "sin": lambda v: v.sin(),
         "cos": lambda v: v.cos(), "tanh": lambda v: v.tanh(), "erf": lambda v: v.erf(), "atan": lambda v: v.atan(),
         "sigmoid": lambda v: 1 / (1 + (-v).exp())}
_BALL_UFUNC = {k: np.frompyfunc(f, 1, 1) for k, f in _BALL.items()}


def transcendental(prim, x):
    """exp, log, sqrt, sin, cos, tanh, erf, atan, sigmoid elementwise: exact when every element is at the special
    point (or, for sqrt, every element is the square of a rational), balls otherwise."""
    if prim in ("log", "sqrt"):
        require(x, (1,), f"{prim}'s argument is positive")
    if isinstance(x, Q) and x.num.size:
        flat = x.num.ravel().tolist()
        if prim == "sqrt":
            d = x.den
            roots = [(math.isqrt(int(v)), math.isqrt(d)) for v in flat]
            if all(r * r == int(v) for (r, _), v in zip(roots, flat)) and roots[0][1] ** 2 == d:
                return Q(np.array([r for r, _ in roots], dtype=object).reshape(x.shape), roots[0][1])
        else:
            (p0, q0), val = _SPECIAL[prim]
            if all(int(v) * q0 == p0 * x.den for v in flat):
                v = fmpq(val)
                return Q(np.full(x.shape, int(v.p), dtype=object), int(v.q))
    return _obj(_BALL_UFUNC[prim](balls(x)))


def specials(prim, p, x):
    """lgamma, polygamma, erfinv, bessel_i elementwise with the kernel's domain checks: exact where every element
    is at a special point (lgamma(1) = lgamma(2) = 0, erfinv(0) = 0, I_n(0)), balls otherwise."""
    vals = x.fmpqs() if isinstance(x, Q) else x
    out = _obj(np.frompyfunc(lambda v: K.special(prim, v, p), 1, 1)(vals)) if np.size(vals) else _obj(vals)
    if np.size(out) and all(isinstance(v, fmpq) for v in out.ravel().tolist()):
        return from_fmpqs(out)
    return _obj(np.frompyfunc(lambda v: v if isinstance(v, arb) else arb(v), 1, 1)(out)) if np.size(out) else out


def steps(prim, x):
    """floor / ceil / round / trunc elementwise (the kernel's exact step; CannotDecide where a ball reaches a
    jump)."""
    if isinstance(x, Q):
        return from_fmpqs(_obj(np.frompyfunc(lambda v: K.step(prim, v), 1, 1)(x.fmpqs())))
    out = _obj(np.frompyfunc(lambda v: K.step(prim, v), 1, 1)(x))
    return from_fmpqs(out)


def reduce_sum(x, axes, keepdims=False):
    if isinstance(x, Q):
        s = x.num.sum(axis=axes, keepdims=keepdims) if x.num.size else \
            np.zeros(np.sum(np.zeros(x.shape), axis=axes, keepdims=keepdims).shape, dtype=object)
        return Q(_obj(s), x.den)
    if x.size == 0:
        return ball_zeros(np.sum(np.zeros(x.shape), axis=axes, keepdims=keepdims).shape)
    return _obj(x.sum(axis=axes, keepdims=keepdims))


def unbroadcast(ct, s):
    """Sum a cotangent of a broadcast value back to the shape ``s``."""
    cs = ct.shape
    if tuple(cs) == tuple(s):
        return ct
    lead = len(cs) - len(s)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(s) if d == 1 and cs[lead + i] != 1)
    out = reduce_sum(ct, axes) if axes else ct
    return reshape(out, s)


def matmul(a, b, ta=False, tb=False):
    """The 2-D product a @ b (a, b transposed first when ta, tb): exact on fmpz_mat, else on arb_mat."""
    (m, k) = a.shape[::-1] if ta else a.shape
    (k2, n) = b.shape[::-1] if tb else b.shape
    assert k == k2, "matmul: inner dimensions differ"
    if m == 0 or n == 0 or k == 0:
        return zeros((m, n)) if isinstance(a, Q) and isinstance(b, Q) else ball_zeros((m, n))
    if isinstance(a, Q) and isinstance(b, Q):
        A, B = a.mat(), b.mat()
        C = (A.transpose() if ta else A) * (B.transpose() if tb else B)
        return Q(np.array(C.entries(), dtype=object).reshape(m, n), a.den * b.den).reduced()
    A = _ball_mat(a, *a.shape)
    B = _ball_mat(b, *b.shape)
    C = (A.transpose() if ta else A) * (B.transpose() if tb else B)
    return np.array(C.entries(), dtype=object).reshape(m, n)


def take(x, idx):
    """x.ravel()[idx] for an int array idx of any shape; -1 entries read 0."""
    if isinstance(x, Q):
        return Q(np.append(x.num.ravel(), 0)[idx], x.den)
    return _obj(np.append(x.ravel(), ZERO)[idx])


def scatter(v, idx, size):
    """A flat array of ``size`` zeros with v added at the positions idx (entries -1 ignored)."""
    idx = np.asarray(idx).ravel()
    keep = idx >= 0
    if isinstance(v, Q):
        out = np.zeros(size, dtype=object)
        np.add.at(out, idx[keep], v.num.ravel()[keep])
        return Q(out, v.den)
    out = ball_zeros(size)
    np.add.at(out, idx[keep], v.ravel()[keep])
    return out


def concat_flat(xs):
    if all(isinstance(x, Q) for x in xs):
        L = math.lcm(*(x.den for x in xs))
        return Q(np.concatenate([x.num.ravel() * (L // x.den) for x in xs]).astype(object), L)
    return _obj(np.concatenate([balls(x).ravel() for x in xs]))


def concat(xs, axis):
    if all(isinstance(x, Q) for x in xs):
        L = math.lcm(*(x.den for x in xs))
        return Q(np.concatenate([x.num * (L // x.den) for x in xs], axis=axis).astype(object), L)
    return _obj(np.concatenate([balls(x) for x in xs], axis=axis))


def where(mask, a, b):
    """Elementwise a where mask, else b."""
    if isinstance(a, Q) and isinstance(b, Q):
        x, y, L = _common(a, b)
        return Q(_obj(np.where(mask, x, y)), L)
    return _obj(np.where(mask, balls(a), balls(b)))


def flat_values(x):
    """The elements of x: fmpq when exact, arb otherwise."""
    return (x.fmpqs() if isinstance(x, Q) else x).ravel().tolist()


# ------------------------------------------------------------------------------ tensor primitives (mine)

def _norm_axes(axes, nd):
    return tuple(a + nd if a < 0 else a for a in axes)


def _dot_plan(sa, sb, p):
    ca, cb, ba, bb = (_norm_axes(p[k], n) for k, n in (("ca", len(sa)), ("cb", len(sb)), ("ba", len(sa)),
                                                         ("bb", len(sb))))
    fa = tuple(i for i in range(len(sa)) if i not in ca + ba)
    fb = tuple(j for j in range(len(sb)) if j not in cb + bb)
    B, M, K_, N = (math.prod(s[i] for i in ax) for s, ax in ((sa, ba), (sa, fa), (sa, ca), (sb, fb)))
    out = tuple(sa[i] for i in ba) + tuple(sa[i] for i in fa) + tuple(sb[j] for j in fb)
    return ba + fa + ca, bb + cb + fb, (B, M, K_), (B, K_, N), out


def _as3(x, perm, s3):
    if perm == tuple(range(len(perm))):
        y = x
    else:
        y = transpose(x, perm)
    return y if tuple(y.shape) == s3 else reshape(y, s3)


def _bmm(a3, b3, ta=False, tb=False):
    """Batched product of 3-D values (batch first), each factor transposed when asked."""
    parts = [matmul(restructure(a3, lambda v, i=i: v[i]), restructure(b3, lambda v, i=i: v[i]), ta, tb)
             for i in range(a3.shape[0])]
    if all(isinstance(p, Q) for p in parts):
        L = math.lcm(*(p.den for p in parts))
        return Q(np.stack([p.num * (L // p.den) for p in parts]).astype(object), L)
    return _obj(np.stack([balls(p) for p in parts]))


def dot(p, a, b):
    pa, pb, s3a, s3b, out = _dot_plan(a.shape, b.shape, p)
    if s3a[0] == 1:            # no batch axes: one 2-D product, on the operands themselves when they are 2-D
        a2 = _as3(a, pa, s3a[1:]) if len(pa) else reshape(a, s3a[1:])
        b2 = _as3(b, pb, s3b[1:]) if len(pb) else reshape(b, s3b[1:])
        return reshape(matmul(a2, b2), out)
    return reshape(_bmm(_as3(a, pa, s3a), _as3(b, pb, s3b)), out)


def dot_vjp(p, a, b, ct, need):
    pa, pb, s3a, s3b, out = _dot_plan(a.shape, b.shape, p)
    B, M, K_ = s3a
    N = s3b[2]
    ca = cb = None
    if B == 1:
        a2 = _as3(a, pa, (M, K_))
        b2 = _as3(b, pb, (K_, N))
        c2 = reshape(ct, (M, N))
        if need[0]:
            ca = matmul(c2, b2, tb=True)
            ca = transpose(reshape(ca, tuple(a.shape[i] for i in pa)), tuple(np.argsort(pa)))
        if need[1]:
            cb = matmul(a2, c2, ta=True)
            cb = transpose(reshape(cb, tuple(b.shape[j] for j in pb)), tuple(np.argsort(pb)))
        return ca, cb
    a3, b3, c3 = _as3(a, pa, s3a), _as3(b, pb, s3b), reshape(ct, (B, M, N))
    if need[0]:
        ca = transpose(reshape(_bmm(c3, b3, tb=True), tuple(a.shape[i] for i in pa)), tuple(np.argsort(pa)))
    if need[1]:
        cb = transpose(reshape(_bmm(a3, c3, ta=True), tuple(b.shape[j] for j in pb)), tuple(np.argsort(pb)))
    return ca, cb


def _conv_parts(p, xs, ws):
    N, C, H, W = xs
    Co, Cg, kh, kw = ws
    idx, (Ho, Wo) = conv_patches((N, C, H, W), kh, kw, tuple(p["stride"]), tuple(p["dilation"]), conv_pads(p))
    return N, Co, Cg * kh * kw, p["groups"], idx, Ho, Wo


def conv2d(p, x, w):
    N, Co, kk, g, idx, Ho, Wo = _conv_parts(p, x.shape, w.shape)
    P = take(x, idx)
    Og = Co // g
    ys = []
    for gi in range(g):
        Pg = restructure(P, lambda a, gi=gi: a[:, gi * kk:(gi + 1) * kk]) if g > 1 else P
        Wg = reshape(restructure(w, lambda a, gi=gi: a[gi * Og:(gi + 1) * Og]), (Og, kk))
        ys.append(matmul(Pg, Wg, tb=True))
    Y = ys[0] if g == 1 else concat(ys, 1)
    return transpose(reshape(Y, (N, Ho, Wo, Co)), (0, 3, 1, 2))


def conv2d_vjp(p, x, w, ct, need):
    N, Co, kk, g, idx, Ho, Wo = _conv_parts(p, x.shape, w.shape)
    Og = Co // g
    P = take(x, idx)
    CT = reshape(transpose(ct, (0, 2, 3, 1)), (N * Ho * Wo, Co))
    cps, cws = [], []
    for gi in range(g):
        Cg = restructure(CT, lambda a, gi=gi: a[:, gi * Og:(gi + 1) * Og]) if g > 1 else CT
        Pg = restructure(P, lambda a, gi=gi: a[:, gi * kk:(gi + 1) * kk]) if g > 1 else P
        Wg = reshape(restructure(w, lambda a, gi=gi: a[gi * Og:(gi + 1) * Og]), (Og, kk))
        if need[0]:
            cps.append(matmul(Cg, Wg))
        if need[1]:
            cws.append(matmul(Cg, Pg, ta=True))
    cx = cw = None
    if need[0]:
        cP = cps[0] if g == 1 else concat(cps, 1)
        cx = reshape(scatter(cP, idx, math.prod(x.shape)), x.shape)
    if need[1]:
        cw = reshape(cws[0] if g == 1 else concat(cws, 0), w.shape)
    return cx, cw


def _reduced_shape(s, axes, keepdims):
    return tuple(1 if i in axes else d for i, d in enumerate(s)) if keepdims else \
        tuple(d for i, d in enumerate(s) if i not in axes)


def lse_shift(x, axes):
    """A rational near the largest element of every slice (keepdims): logsumexp's shift (any shift gives the
    same value; the exact maximum keeps a slice of equal elements exact, as the interpreter's shift does)."""
    if isinstance(x, Q):
        return Q(_obj(x.num.max(axis=axes, keepdims=True)), x.den)
    mids = np.frompyfunc(_mid_q, 1, 1)(x)
    return from_fmpqs(_obj(mids.max(axis=axes, keepdims=True)))


def _mid_q(v):
    return K.arf_q(v.mid())


def logsumexp(p, x):
    axes = _norm_axes(p["axes"], len(x.shape))
    m = lse_shift(x, axes)
    s = reduce_sum(transcendental("exp", sub(x, m)), axes, keepdims=True)
    out = add(transcendental("log", s), m)
    return out if p["keepdims"] else reshape(out, _reduced_shape(x.shape, axes, False))


def pool_avg(p, x):
    N, C, H, W = x.shape
    idx, Ho, Wo = pool_windows((N, C, H, W), p)
    s = reduce_sum(take(x, idx), (1,))
    return reshape(mul(s, literal(fmpq(1, idx.shape[1]))), (N, C, Ho, Wo))


def forward(prim, p, xs):
    """The value of a smooth primitive (the checker's own rules)."""
    if prim in ("add", "sub", "mul"):
        return {"add": add, "sub": sub, "mul": mul}[prim](*xs)
    if prim == "div":
        return div(*xs)
    if prim == "neg":
        return neg(xs[0])
    if prim == "pow":
        return power(xs[0], p["n"])
    if prim in _BALL:
        return transcendental(prim, xs[0])
    if prim in K.STEPS:
        return steps(prim, xs[0])
    if prim in K.SPECIAL:
        return specials(prim, p, xs[0])
    x = xs[0]
    if prim == "dot":
        return dot(p, *xs)
    if prim == "conv2d":
        return conv2d(p, *xs)
    if prim in ("sum", "mean"):
        axes = _norm_axes(p["axes"], len(x.shape))
        s = reduce_sum(x, axes, p["keepdims"])
        return s if prim == "sum" else mul(s, literal(fmpq(1, math.prod(x.shape[a] for a in axes))))
    if prim == "reshape":
        return reshape(x, tuple(p["shape"]))
    if prim == "transpose":
        return transpose(x, tuple(p["perm"]))
    if prim == "broadcast_to":
        return broadcast(x, tuple(p["shape"]))
    if prim in ("slice", "pad", "concat"):
        return take(x if len(xs) == 1 else concat_flat(xs), _structure_idx(prim, p, xs))
    if prim == "take_along":
        return take(x, take_map(tuple(x.shape), p))
    if prim == "avg_pool2d":
        return pool_avg(p, x)
    if prim == "logsumexp":
        return logsumexp(p, x)
    raise Invalid(f"the checker has no rule for the primitive {prim!r}")


def _structure_idx(prim, p, xs):
    shapes = tuple(tuple(x.shape) for x in xs)
    if prim == "slice":
        key = slice_bounds(shapes[0], p)
    elif prim == "pad":
        key = (tuple(p["lo"]), tuple(p["hi"]))
    else:
        key = _norm_axes((p["axis"],), len(shapes[0]))[0]
    return structure_map(prim, shapes, key)


def _special_derivative(prim, p, x, y):
    """The derivative of a special function (erfinv, lgamma, polygamma, bessel_i) at ``x`` (with value ``y``)."""
    if prim == "erfinv":
        return mul(_obj(arb.pi().sqrt() / 2), transcendental("exp", mul(y, y)))
    if prim == "lgamma":
        return specials("polygamma", {"n": 0}, x)
    if prim == "polygamma":
        return specials("polygamma", {"n": p["n"] + 1}, x)
    if p["n"] == 0:
        return specials("bessel_i", {"n": 1}, x)
    return mul(add(specials("bessel_i", {"n": p["n"] - 1}, x), specials("bessel_i", {"n": p["n"] + 1}, x)),
               literal(fmpq(1, 2)))


def _ball_derivative(prim, x, y):
    """The derivative of an elementary ball function (exp, log, sqrt, sin, cos, tanh, sigmoid, erf, atan) at
    ``x`` (with value ``y``)."""
    one = literal(K.Q1)
    d = {"exp": lambda: y, "log": lambda: div(one, x), "sqrt": lambda: div(one, add(y, y)),
         "sin": lambda: transcendental("cos", x), "cos": lambda: neg(transcendental("sin", x)),
         "tanh": lambda: sub(literal(fmpq(1)), mul(y, y)),
         "sigmoid": lambda: mul(y, sub(literal(fmpq(1)), y)),
         "erf": lambda: mul(div(literal(fmpq(2)), _obj(arb.pi().sqrt())), transcendental("exp", neg(mul(x, x)))),
         "atan": lambda: div(one, add(one, mul(x, x)))}
    return d[prim]()


def _binary_backward(prim, xs, y, ct, need):
    """The cotangents of add, sub, mul or div's two inputs (None where not needed), unbroadcast to their shapes."""
    def fit(c, x):
        return None if c is None else unbroadcast(c, x.shape)
    if prim == "add":
        return fit(ct, xs[0]), fit(ct, xs[1])
    if prim == "sub":
        return fit(ct, xs[0]), fit(neg(ct), xs[1])
    if prim == "mul":
        return (fit(mul(ct, xs[1]), xs[0]) if need[0] else None), (fit(mul(xs[0], ct), xs[1]) if need[1] else None)
    return (fit(div(ct, xs[1]), xs[0]) if need[0] else None), \
        (fit(neg(div(mul(ct, y), xs[1])), xs[1]) if need[1] else None)


def _scatter_backward(prim, p, xs, ct):
    """The cotangents of slice, pad, concat or take_along's inputs: the cotangent scattered back through the
    structural index map and split per input."""
    x = xs[0]
    idx = take_map(tuple(x.shape), p) if prim == "take_along" else _structure_idx(prim, p, xs)
    sizes = [math.prod(v.shape) for v in xs]
    flat = scatter(ct, idx, sum(sizes))
    out, off = [], 0
    for v, n in zip(xs, sizes):
        out.append(reshape(restructure(flat, lambda a, off=off, n=n: a[off:off + n]), v.shape))
        off += n
    return tuple(out)


def _structural_backward(prim, p, xs, y, ct):
    """The cotangent of a reduction, reshaping, indexing or pooling primitive's input(s), or None when ``prim``
    is none of them."""
    x = xs[0]
    if prim in ("sum", "mean"):
        axes = _norm_axes(p["axes"], len(x.shape))
        c = broadcast(reshape(ct, _reduced_shape(x.shape, axes, True)), x.shape)
        return (c if prim == "sum" else mul(c, literal(fmpq(1, math.prod(x.shape[a] for a in axes)))),)
    if prim in ("reshape",):
        return (reshape(ct, x.shape),)
    if prim == "transpose":
        return (transpose(ct, tuple(np.argsort(p["perm"]))),)
    if prim == "broadcast_to":
        return (unbroadcast(ct, x.shape),)
    if prim in ("slice", "pad", "concat", "take_along"):
        return _scatter_backward(prim, p, xs, ct)
    if prim == "avg_pool2d":
        idx, _, _ = pool_windows(tuple(x.shape), p)
        c = broadcast(reshape(mul(ct, literal(fmpq(1, idx.shape[1]))), (idx.shape[0], 1)), idx.shape)
        return (reshape(scatter(c, idx, math.prod(x.shape)), x.shape),)
    if prim == "logsumexp":
        axes = _norm_axes(p["axes"], len(x.shape))
        yk = reshape(y, _reduced_shape(x.shape, axes, True))
        sm = transcendental("exp", sub(x, yk))
        return (mul(sm, reshape(ct, _reduced_shape(x.shape, axes, True))),)
    return None


def backward(prim, p, xs, y, ct, need):
    """The cotangents of a smooth primitive's inputs (None where not needed), shaped like the inputs."""
    if prim in ("add", "sub", "mul", "div"):
        return _binary_backward(prim, xs, y, ct, need)
    x = xs[0]
    if prim in K.STEPS:
        return (None,)
    if prim in K.SPECIAL:
        return (mul(ct, _special_derivative(prim, p, x, y)),)
    if prim == "neg":
        return (neg(ct),)
    if prim == "pow":
        n = p["n"]
        return (zeros(x.shape) if n == 0 else mul(ct, mul(literal(fmpq(n)), power(x, n - 1))),)
    if prim in _BALL:
        return (mul(ct, _ball_derivative(prim, x, y)),)
    if prim == "dot":
        return dot_vjp(p, xs[0], xs[1], ct, need)
    if prim == "conv2d":
        return conv2d_vjp(p, xs[0], xs[1], ct, need)
    cts = _structural_backward(prim, p, xs, y, ct)
    if cts is None:
        raise Invalid(f"the checker has no rule for the primitive {prim!r}")
    return cts


# ------------------------------------------------------------------------------------------ site kernels

def affine(coefs, const, args):
    """sum c_j * args_j + const over a site group's argument arrays (coefficients fmpq)."""
    acc = None
    for c, a in zip(coefs, args):
        if c == 0:
            continue
        t = a if c == 1 else (neg(a) if c == -1 else mul(literal(c), a))
        acc = t if acc is None else add(acc, t)
    if acc is None or const != 0:
        k = literal(const)
        acc = k if acc is None else add(acc, k)
    return acc


def _scale(c, x):
    """c * x for a per-site coefficient (an fmpq, or a Q array over the sites); None when c is the scalar 0.
    A 0/1 coefficient array selects (relu's pieces) instead of multiplying."""
    if not isinstance(c, Q):
        if c == 0:
            return None
        return x if c == 1 else (neg(x) if c == -1 else mul(literal(c), x))
    if c.den == 1:
        one = c.num == 1
        if bool((one | (c.num == 0)).all()):
            return where(one, x, zeros(()) if isinstance(x, Q) else _obj(ZERO))
    return mul(c, x)


def _sum(terms):
    acc = None
    for t in terms:
        if t is not None:
            acc = t if acc is None else add(acc, t)
    return acc


def choose_decided(prim, params, n, row):
    """The piece the index rule picks for a row of signs (UNDECIDED entries allowed): the same piece for every
    consistent completion of the undecided signs, else None (the choice is undecided)."""
    und = [i for i, s in enumerate(row) if s == UNDECIDED]
    if not und:
        return K.choose(prim, params, n, [int(s) for s in row])
    if len(und) > 8:
        return None
    out = None
    for fill in itertools.product((-1, 0, 1), repeat=len(und)):
        s = [int(v) for v in row]
        for i, v in zip(und, fill):
            s[i] = v
        if not K.consistent(prim, params, n, s):
            continue
        piece = K.choose(prim, params, n, s)
        if out is None:
            out = piece
        elif piece != out:
            return None
    return out


class Group:
    """The sites of one site group of a nonsmooth equation: their argument arrays (one per scalar argument,
    over the sites), switching functions and their signs, and the chosen pieces (``pieces`` distinct, ``ids``
    per site).  ``n_rows``: the number of output rows of every site (a group without sites, on an empty array,
    still has them: its values are empty arrays)."""

    def __init__(self, g, args, forms, prim, params, n_rows):
        self.g, self.n, self.sites, self.args, self.forms = g, g.n, g.sites, args, forms
        self.n_rows = n_rows
        m = len(g.sites)
        self.signs = [np.broadcast_to(signs(affine(c, k, args)), (m,)) for c, k in forms]
        S = np.stack(self.signs, axis=1) if self.signs else np.zeros((m, 0), dtype=np.int8)
        uniq, inv = np.unique(S, axis=0, return_inverse=True) if m else (np.zeros((0, S.shape[1])), np.zeros(0, int))
        chosen = [choose_decided(prim, params, g.n, r) for r in uniq]
        self.undecided = np.array([c is None for c in chosen], dtype=bool)[np.ravel(inv)] if m else np.zeros(0, bool)
        self.pieces = chosen
        self.ids = np.ravel(inv).astype(np.int64)
        self._coefs = None

    def coefs(self, pieces=None, ids=None):
        """(C, Kc): C[r][j] the coefficient of argument j in output row r per site, Kc[r] the constants; each an
        fmpq (the same at every site) or a Q array over the sites."""
        if pieces is None and self._coefs is not None:
            return self._coefs
        pcs, idx = (self.pieces, self.ids) if pieces is None else (pieces, ids)
        n_rows = self.n_rows
        used = sorted(set(idx.tolist()))

        def arr(vals):
            if not used:
                return K.Q0
            if all(v == vals[used[0]] for v in (vals[u] for u in used)):
                return vals[used[0]]
            L = math.lcm(*(int(vals[u].q) for u in used))
            table = np.array([int(v.p) * (L // int(v.q)) if v is not None else 0 for v in vals], dtype=object)
            return Q(table[idx], L)
        C = [[arr([p[r][0][j] if p is not None else None for p in pcs]) for j in range(self.n)] for r in range(n_rows)]
        Kc = [arr([p[r][1] if p is not None else None for p in pcs]) for r in range(n_rows)]
        if pieces is None:
            self._coefs = (C, Kc)
        return C, Kc

    def values(self, C, Kc):
        m = len(self.sites)
        out = []
        for r in range(len(C)):
            v = _sum([_scale(c, a) for c, a in zip(C[r], self.args)] +
                     [None if (not isinstance(Kc[r], Q) and Kc[r] == 0) else
                      (literal(Kc[r]) if not isinstance(Kc[r], Q) else Kc[r])])
            v = zeros(()) if v is None else v
            out.append(broadcast(v, (m,)))
        return out

    def with_changes(self, changes):
        """(pieces, ids) of the pattern at x with the sites in ``changes`` ({loc: piece}) changed."""
        pieces = list(self.pieces)
        ids = self.ids.copy()
        for loc, piece in changes.items():
            if piece not in pieces:
                pieces.append(piece)
            ids[loc] = pieces.index(piece)
        return pieces, ids


def _merge_forms(forms, ins, elementwise):
    """Switching functions with the terms on one input atom added up (elementwise sites: max(v, v) switches
    on v - v, exactly 0), as the interpreter merges them."""
    if not elementwise:
        return forms
    out = []
    for coefs, const in forms:
        c = list(coefs)
        first = {}
        for j, a in enumerate(ins):
            key = ("v", a) if isinstance(a, int) else (("a", a.name) if isinstance(a, Arr) else ("l", j))
            j0 = first.setdefault(key, j)
            if j0 != j:
                c[j0], c[j] = c[j0] + c[j], K.Q0
        out.append((tuple(c), const))
    return out


class SiteEqn:
    """A nonsmooth equation's sites at the point: the site table (declarative, prims/tensor.py), the scalar
    primitive every site is, and its Groups."""

    def __init__(self, k, e, params, in_shapes, out_shapes, xs):
        self.k, self.e = k, e
        self.table = sites_of(e.prim, in_shapes, params)
        self.prim, self.params = self.table.prim, self.table.params
        self.in_shapes, self.out_shapes = in_shapes, out_shapes
        self.groups = []
        for g in self.table.groups:
            if self.table.elementwise:
                grid, m = self.table.grid, self.table.n_sites
                args = [reshape(broadcast(x, grid), (m,)) for x in xs]
            else:
                flat = xs[0] if len(xs) == 1 else concat_flat(xs)
                args = [take(flat, idx) for idx in g.args]
            forms = _merge_forms(K.switches(self.prim, self.params, g.n), e.ins, self.table.elementwise)
            n_rows = len(e.outs) if self.table.elementwise else len(g.outs)
            self.groups.append(Group(g, args, forms, self.prim, self.params, n_rows))

    def site_index(self, s):
        return [int(i) for i in np.unravel_index(int(s), self.table.grid)] if self.table.grid else []

    def outputs(self, changes=None):
        parts = []
        for gi, G in enumerate(self.groups):
            C, Kc = G.coefs() if not changes or gi not in changes else G.coefs(*G.with_changes(changes[gi]))
            parts.append(G.values(C, Kc))
        if self.table.elementwise:
            return [reshape(v, self.table.grid) for v in parts[0]]
        sizes = [math.prod(s) for s in self.out_shapes]
        total = sum(sizes)
        acc = None
        for G, vals in zip(self.groups, parts):
            for r, v in enumerate(vals):
                part = scatter(v, G.g.outs[r], total)
                acc = part if acc is None else add(acc, part)
        if acc is None:             # no site group at all (a max-pool of an empty batch): empty outputs
            acc = zeros((total,))
        out, off = [], 0
        for n, s in zip(sizes, self.out_shapes):
            out.append(reshape(restructure(acc, lambda a, off=off, n=n: a[off:off + n]), s))
            off += n
        return out

    def backward(self, cts, changes=None):
        """Cotangents of the equation's inputs (flat arrays in the order of e.ins, None when zero) from the
        cotangents of its outputs (None = 0), through the chosen pieces' linear parts."""
        cts = [zeros(s) if c is None else c for c, s in zip(cts, self.out_shapes)]
        if self.table.elementwise:
            G = self.groups[0]
            C, _ = G.coefs() if not changes or 0 not in changes else G.coefs(*G.with_changes(changes[0]))
            m = self.table.n_sites
            flat = [reshape(c, (m,)) for c in cts]
            out = []
            for j, s in enumerate(self.in_shapes):
                t = _sum([_scale(row[j], c) for row, c in zip(C, flat)])
                out.append(None if t is None else unbroadcast(reshape(broadcast(t, (m,)), self.table.grid), s))
            return out
        flat_ct = cts[0] if len(cts) == 1 else concat_flat(cts)
        sizes = [math.prod(s) for s in self.in_shapes]
        total = None
        for gi, G in enumerate(self.groups):
            C, _ = G.coefs() if not changes or gi not in changes else G.coefs(*G.with_changes(changes[gi]))
            rows = [take(flat_ct, idx) for idx in G.g.outs]
            for j in range(G.n):
                t = _sum([_scale(row[j], c) for row, c in zip(C, rows)])
                if t is not None:
                    part = scatter(broadcast(t, (len(G.sites),)), G.g.args[j], sum(sizes))
                    total = part if total is None else add(total, part)
        if total is None:
            return [None] * len(self.in_shapes)
        out, off = [], 0
        for n, s in zip(sizes, self.in_shapes):
            out.append(reshape(restructure(total, lambda a, off=off, n=n: a[off:off + n]), s))
            off += n
        return out

    def seeds(self, gi, loc, coefs):
        """Cotangents of the equation's inputs that seed the gradient of sum_j coefs[j] * (argument j of site
        loc of group gi): a switching function of one site."""
        G = self.groups[gi]
        if self.table.elementwise:
            grid, m = self.table.grid, self.table.n_sites
            out = []
            for c, s in zip(coefs, self.in_shapes):
                if c == 0:
                    out.append(None)
                    continue
                onehot = np.zeros(m, dtype=object)
                onehot[int(G.sites[loc])] = int(c.p)
                out.append(unbroadcast(Q(onehot.reshape(grid), int(c.q)), s))
            return out
        sizes = [math.prod(s) for s in self.in_shapes]
        den = math.lcm(*(int(c.q) for c in coefs))
        flat = np.zeros(sum(sizes), dtype=object)
        for j, c in enumerate(coefs):
            if c != 0:
                flat[int(G.g.args[j][loc])] += int(c.p) * (den // int(c.q))
        out, off = [], 0
        for n, s in zip(sizes, self.in_shapes):
            out.append(Q(flat[off:off + n].reshape(s), den))
            off += n
        return out


# ------------------------------------------------------------------------------------------------- runs

class Run:
    """A tensor program evaluated at a point by the checker (at the ambient precision): every variable's value,
    every equation's arguments, and every nonsmooth equation's sites with the pieces chosen there.  Raises
    CannotDecide when an index rule cannot be decided, Undefined outside the program's domain."""

    def __init__(self, P, xs, pattern=None):
        """``pattern``: {equation k: the piece (rows) of every site, flat over its grid} to freeze those
        equations to (f_s, not the index rules' choice; the signs of the switching functions are those of the
        frozen program's arguments)."""
        self.P = P
        self.env = list(xs) + [None] * (P.n_vars - P.n_inputs)
        self.args, self.params, self.sites = [], [], {}
        consts = {}

        def read(a):
            if isinstance(a, int):
                return self.env[a]
            if isinstance(a, Lit):
                return literal(a.value)
            v = consts.get(a.name)
            if v is None:
                v = consts[a.name] = exact(P.arrays[a.name])
            return v
        self.read = read
        for k, e in enumerate(P.eqns):
            xs_k = [read(a) for a in e.ins]
            params = PRIMITIVES[e.prim].check_params(
                {n: (P.arrays[v.name] if isinstance(v, Arr) else v) for n, v in e.params}, len(e.ins), e.prim)
            self.args.append(xs_k)
            self.params.append(params)
            if PRIMITIVES[e.prim].smooth:
                self.env[e.outs[0]] = forward(e.prim, params, xs_k)
                continue
            S = SiteEqn(k, e, params, [tuple(x.shape) for x in xs_k], [P.shapes[o] for o in e.outs], xs_k)
            for G in S.groups:
                if G.undecided.any():
                    loc = int(np.argmax(G.undecided))
                    raise K.CannotDecide(f"the checker cannot decide the index rule at site "
                                         f"{S.site_index(G.sites[loc])} of equation {k + 1} ({e.prim})")
            self.sites[k] = S
            changes = None
            if pattern is not None and k in pattern:
                changes = {}
                for gi, G in enumerate(S.groups):
                    for loc, s in enumerate(G.sites):
                        want = pattern[k][int(s)]
                        if want != G.pieces[G.ids[loc]]:
                            changes.setdefault(gi, {})[loc] = want
            for o, v in zip(e.outs, S.outputs(changes)):
                self.env[o] = v

    def outputs(self):
        return [self.read(a) for a in self.P.outputs]

    def nonsmooth(self):
        return [self.sites[k] for k in sorted(self.sites)]

    def needed(self, wrt):
        need = [False] * self.P.n_vars
        for i in wrt:
            need[i] = True
        for e in self.P.eqns:
            if any(isinstance(a, int) and need[a] for a in e.ins):
                for o in e.outs:
                    need[o] = True
        return need

    def vjp(self, cts, wrt, changes=None, seeds=None, stop=None):
        """Cotangents of the inputs in ``wrt`` (None = 0) for output cotangents ``cts`` (or ``seeds``
        {variable: cotangent} placed before equation ``stop``), with the pieces at x except ``changes``
        ({eqn: {group: {loc: piece}}})."""
        P = self.P
        need = self.needed(wrt)
        CT = [None] * P.n_vars
        changes = changes or {}

        def acc(a, c):
            if isinstance(a, int) and c is not None and need[a]:
                c = unbroadcast(c, P.shapes[a]) if tuple(c.shape) != tuple(P.shapes[a]) else c
                CT[a] = c if CT[a] is None else add(CT[a], c)
        for a, c in zip(P.outputs, cts):
            acc(a, c)
        for a, c in (seeds or {}).items():
            acc(a, c)
        for k in reversed(range(len(P.eqns) if stop is None else stop)):
            e = P.eqns[k]
            out_cts = [CT[o] for o in e.outs]
            ins_need = [isinstance(a, int) and need[a] for a in e.ins]
            if all(c is None for c in out_cts) or not any(ins_need):
                continue
            if k in self.sites:
                in_cts = self.sites[k].backward(out_cts, changes.get(k))
            else:
                in_cts = backward(e.prim, self.params[k], self.args[k], self.env[e.outs[0]], out_cts[0], ins_need)
            for a, c, n in zip(e.ins, in_cts, ins_need):
                if n:
                    acc(a, c)
        return [CT[i] if i in wrt else None for i in range(P.n_inputs)]

    def gradient(self, wrt, changes=None):
        """The selection gradient (one scalar output) for the inputs in wrt, with the pieces at x except
        ``changes``: a list with an array per input in wrt (zeros where nothing reaches it).  Computed once per
        pattern (changes that keep the piece at x are no change)."""
        def at_x(k, gi, loc):
            G = self.sites[k].groups[gi]
            return G.pieces[G.ids[loc]]
        key = (tuple(wrt), tuple(sorted((k, gi, loc, piece) for k, groups in (changes or {}).items()
                                        for gi, locs in groups.items() for loc, piece in locs.items()
                                        if piece != at_x(k, gi, loc))))
        cache = self.__dict__.setdefault("_grads", {})
        if key not in cache:
            cts = self.vjp([literal(K.Q1)], wrt, changes)
            # an empty array is exact (no element of it is a ball), as the interpreter counts it
            cache[key] = [zeros(self.P.shapes[i]) if cts[i] is None or not math.prod(self.P.shapes[i]) else cts[i]
                          for i in wrt]
        return cache[key]

    # -- what the certificates state
    def kinks(self):
        """{eqn: sorted [(flat site, switch)]} of the switching functions exactly 0, and the same for those
        whose sign is undecided."""
        zero, und = {}, {}
        for k, S in self.sites.items():
            z, u = [], []
            for G in S.groups:
                for j, s in enumerate(G.signs):
                    z += [(int(G.sites[i]), j) for i in np.nonzero(s == 0)[0].tolist()]
                    u += [(int(G.sites[i]), j) for i in np.nonzero(s == UNDECIDED)[0].tolist()]
            zero[k], und[k] = sorted(z), sorted(u)
        return zero, und

    def agreeing(self):
        """({eqn: {flat site: [pieces]}} where several pieces agree with the primitive, {eqn: [flat sites]} where
        agreement is undecided).  A piece agrees at a site when its value at the site's arguments equals the
        chosen piece's (the primitive's value).  For the primitives in TIE_ONLY two distinct pieces coincide only
        where a switching function vanishes (c u for distinct c; selections and averages of arguments), so only
        the sites with a switching function 0 or undecided are compared; for where (two branch values) and
        clamp (a kink piece d x + (1 - d) hi can meet lo away from the bounds) every site is."""
        multi, und = {}, {}
        for k, S in self.sites.items():
            mk, uk = {}, []
            for G in S.groups:
                m = len(G.sites)
                if not m:
                    continue
                if S.prim not in TIE_ONLY:
                    cand = np.arange(m)
                else:
                    mask = np.zeros(m, dtype=bool)
                    for s in G.signs:
                        mask |= (s == 0) | (s == UNDECIDED)
                    cand = np.nonzero(mask)[0]
                if not len(cand):
                    continue
                own = _pieces(S.prim, S.params, G.n)
                C, Kc = G.coefs()
                args = [restructure(a, lambda v: v[cand]) if a.shape else a for a in G.args]
                Csub = [[c if not isinstance(c, Q) else Q(c.num[cand], c.den) for c in row] for row in C]
                Ksub = [c if not isinstance(c, Q) else Q(c.num[cand], c.den) for c in Kc]
                agree = np.zeros((len(own), len(cand)), dtype=bool)
                unknown = np.zeros(len(cand), dtype=bool)
                for i, piece in enumerate(own):
                    eq = np.ones(len(cand), dtype=bool)
                    differ = np.zeros(len(cand), dtype=bool)
                    und_i = np.zeros(len(cand), dtype=bool)
                    for (coefs, const), crow, krow in zip(piece, Csub, Ksub):
                        terms = [_scale(_minus(c, cc), a) for c, cc, a in zip(coefs, crow, args)]
                        dk = _minus(const, krow)
                        terms.append(None if (not isinstance(dk, Q) and dk == 0) else
                                     (literal(dk) if not isinstance(dk, Q) else dk))
                        d = _sum(terms)
                        s = np.zeros(len(cand), dtype=np.int8) if d is None else \
                            np.broadcast_to(signs(d), (len(cand),))
                        eq &= s == 0
                        differ |= (s == 1) | (s == -1)
                        und_i |= s == UNDECIDED
                    agree[i] = eq
                    unknown |= und_i & ~differ
                for col in np.nonzero(agree.sum(axis=0) >= 2)[0].tolist():
                    mk[int(G.sites[cand[col]])] = [own[i] for i in np.nonzero(agree[:, col])[0].tolist()]
                uk += [int(G.sites[cand[col]]) for col in np.nonzero(unknown)[0].tolist()]
            multi[k], und[k] = mk, sorted(uk)
        return multi, und


def _minus(a, b):
    """a - b for a piece coefficient a (fmpq) and a per-site coefficient b (fmpq or Q)."""
    return a - b if not isinstance(b, Q) else sub(literal(a), b)


_PIECE_CACHE = {}


def _pieces(prim, params, n):
    key = (prim, tuple(sorted(params.items())), n)
    out = _PIECE_CACHE.get(key)
    if out is None:
        if prim == "sort" and math.factorial(n) > MAX_PIECES:
            raise Invalid(f"a sort site with {n} arguments has {math.factorial(n)} pieces, too many to enumerate "
                          "at a tie")
        out = _PIECE_CACHE[key] = K.pieces(prim, params, n)
    return out


# ------------------------------------------------------------------------------------ gradients as vectors

def flat_vector(grad):
    """One gradient (a list of arrays) as ("q", integer numerators, denominator) when exact, else ("b", arbs)."""
    if all(isinstance(g, Q) for g in grad):
        L = math.lcm(*(g.den for g in grad)) if grad else 1
        return "q", [v for g in grad for v in (g.num * (L // g.den)).ravel().tolist()], L
    return "b", [v for g in grad for v in balls(g).ravel().tolist()], None


def gram(rows, cols):
    """The matrix of inner products <rows[i], cols[j]> of gradients (lists of arrays): fmpq entries when every
    vector is exact, arb otherwise."""
    R, Cc = [flat_vector(g) for g in rows], [flat_vector(g) for g in cols]
    if not R or not Cc:
        return [[] for _ in R]
    n = len(R[0][1])
    if n == 0:
        return [[K.Q0] * len(Cc) for _ in R]
    if all(v[0] == "q" for v in R + Cc):
        M = fmpz_mat([v[1] for v in R]) * fmpz_mat([v[1] for v in Cc]).transpose()
        return [[fmpq(int(M[i, j]), R[i][2] * Cc[j][2]) for j in range(len(Cc))] for i in range(len(R))]

    def mat(vs):
        return arb_mat([[arb(fmpq(int(x), v[2])) for x in v[1]] if v[0] == "q" else v[1] for v in vs])
    M = mat(R) * mat(Cc).transpose()
    return [[M[i, j] for j in range(len(Cc))] for i in range(len(R))]
