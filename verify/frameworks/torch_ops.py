"""More ATen ops for the torch importer (issue 17): trigonometric and hyperbolic functions, rounding, fmod and
remainder, clamp with tensor bounds, cumulative ops and products, order statistics (topk, kthvalue, median),
norms and distances, index ops with constant indices (embedding, scatter, index_put, ...), pooling of any
shape (1-d, 3-d, ceil mode, adaptive, count_include_pad=False), losses, covariance, grid sampling.  The linear
algebra (elimination, LU, QR, the spectral family) is frameworks/torch_linalg.py, registered in the same table.

One entry per op in ``OPS`` (the format of frameworks/torch.py's ``ATEN``, which merges it), each lowering the
op to verify's primitives with the op's own backward at its kinks, measured live in
tests/test_import_torch_ops.py.  ``KEEP`` lists the ops that torch.export must keep whole (they are mapped
here, their default decomposition would change kinks); ``DECOMPOSED`` the ops whose default decomposition has
kinks that reproduce the op's own backward (checked in the same tests); ``BOOL_OPS`` the ops with boolean
results.

Index ops with constant indices are linear maps.  When every output element is a copy of one input element
(gather, scatter without duplicates, index_copy, masked_scatter, ...) the importer runs the op itself on the
*positions* of the input elements and reads which element lands where; when outputs are sums (scatter_add,
index_add, index_put with accumulate=True, ...) it reads the op's matrix from its values on the unit vectors
(exact: the entries are integers or the op's own float coefficients).  Either way the map is what torch
computes, by construction.
"""
import math
from dataclasses import dataclass

import numpy as np
from flint import fmpq

from ..program.arrays import ExactArray
from ..program.ir import Arr, Lit
from .lowering import Const, Cond, NonReal, Tensor, Unavailable, exact_q

OPS = {}
KEEP = []             # "name.overload" of ops torch.export must not decompose
DECOMPOSED = []       # op names whose decompositions' kinks are checked against the op's own backward
BOOL_OPS = set()
DECOMPOSED_KINKS = {}  # op name: {primitive: params} given to its decomposition's equations of that primitive

# the double constants of the CPU kernels (the importer uses a kernel's own constants, as for GELU)
PI = 3.141592653589793
# the most elements an order statistic (kth, median, mode) ranges over: its site lists n (n - 1) / 2 switching
# functions.  Sorts (and topk, a sorted slice) have no cap: beyond interpret/orders.py's LISTED elements their
# order is certified by the n - 1 comparisons of the sorted values.
SELECTION_CAP = 256


def check_selection_size(lo, n, what):
    if n > SELECTION_CAP:
        lo.fail(f"{what} over {n} > {SELECTION_CAP} elements: its elementary selection (n! pieces, n(n-1)/2 "
                "switching functions) is beyond what verify enumerates")


def op(*names, note="", keep=False, bool_out=False):
    """Register a handler for ATen ops ``names`` (``op.overload``); ``note`` states its kink semantics; ``keep``:
    torch.export keeps the op whole (its decomposition is not used)."""
    def deco(fn):
        for n in names:
            OPS[n] = (fn, note)
        if keep:
            KEEP.extend(names)
        if bool_out:
            BOOL_OPS.update(names)
        return fn
    return deco


def checked_decomposition(*names):
    """Ops whose default decomposition is used: its kinks are checked against the op's own backward in
    tests/test_import_torch_ops.py."""
    DECOMPOSED.extend(names)


checked_decomposition(
    "max", "min",                 # max.other / min.other become maximum / minimum: ties split, as their backward
    "aminmax",                    # amin and amax: ties split (measured)
    "frac", "sgn",                # x - trunc(x): derivative 1; sign: 0
    "lerp",                       # two formulas that agree as polynomials where they switch
    "logit",                      # clamp(x, eps, 1 - eps): derivative passes at the bounds, as logit_backward
    "max_pool1d_with_indices", "max_pool1d", "max_pool3d",    # the same kernels (max_pool2d, max_pool3d)
    "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss", "triplet_margin_loss",
    "triplet_margin_with_distance_loss", "cosine_embedding_loss", "poisson_nll_loss",
    "binary_cross_entropy_with_logits",
    # norms and distances: linalg_vector_norm, mapped here with the norm backward's 0 at 0
    "pairwise_distance", "cosine_similarity", "renorm", "linalg_norm", "linalg_matrix_norm", "msort",
    "cdist", "pdist",             # _cdist_forward / _pdist_forward, mapped here with their backward's 0 at 0
    "adaptive_max_pool1d",        # adaptive_max_pool2d over a height of 1: the same kernel
    "linalg_slogdet", "slogdet",  # _linalg_slogdet: the sign of det has derivative 0, as its backward
    "rrelu", "rrelu_with_noise",  # rrelu_with_noise_functional, mapped here (eval mode: leaky with the mean slope)
    "linalg_lu_factor", "_lu_with_info",   # linalg_lu_factor_ex, the same kernel: its pivot ties measured
)


def decomposed_kinks(name, **prims):
    """The default decomposition of op ``name`` is used with the kink params of its own backward: every
    equation of primitive ``prim`` that the decomposition yields gets ``prims[prim]`` (measured in
    tests/test_import_torch_misc1.py); any other nonsmooth equation in it is refused."""
    DECOMPOSED_KINKS[name] = prims


def _dims(t, dim):
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return tuple(range(len(t.shape)))
    nd = max(len(t.shape), 1)
    return tuple(sorted({d % nd for d in (dim if isinstance(dim, (list, tuple)) else (dim,))}))


def _unary(lo, a):
    return lo.real(a)


def _log_const(lo, q):
    """log(q) of a rational constant (a ball: an equation on a literal)."""
    return lo.ew("log", [lo.lit(q)])


# ------------------------------------------------------------------------------------ smooth elementwise

@op("tan.default")
def _tan(lo, a):
    x = _unary(lo, a)
    return lo.div(lo.ew("sin", [x]), lo.ew("cos", [x]))


@op("sinh.default")
def _sinh(lo, a):
    x = _unary(lo, a)
    return lo.mul(lo.sub(lo.ew("exp", [x]), lo.ew("exp", [lo.neg(x)])), fmpq(1, 2))


@op("cosh.default")
def _cosh(lo, a):
    x = _unary(lo, a)
    return lo.mul(lo.add(lo.ew("exp", [x]), lo.ew("exp", [lo.neg(x)])), fmpq(1, 2))


@op("asinh.default")
def _asinh(lo, a):
    x = _unary(lo, a)
    return lo.ew("log", [lo.add(x, lo.ew("sqrt", [lo.add(lo.mul(x, x), 1)]))])


@op("acosh.default", note="defined for x > 1 (at 1 torch's derivative is infinite)")
def _acosh(lo, a):
    x = _unary(lo, a)
    return lo.ew("log", [lo.add(x, lo.ew("sqrt", [lo.sub(lo.mul(x, x), 1)]))])


@op("atanh.default", note="defined for |x| < 1")
def _atanh(lo, a):
    x = _unary(lo, a)
    return lo.mul(lo.sub(lo.ew("log", [lo.add(1, x)]), lo.ew("log", [lo.sub(1, x)])), fmpq(1, 2))


@op("atan.default")
def _atan(lo, a):
    return lo.ew("atan", [_unary(lo, a)])


@op("asin.default", note="defined for |x| < 1: atan(x / sqrt(1 - x^2))")
def _asin(lo, a):
    x = _unary(lo, a)
    return lo.ew("atan", [lo.div(x, lo.ew("sqrt", [lo.sub(1, lo.mul(x, x))]))])


@op("acos.default", note="defined for |x| < 1: 2 atan(sqrt((1 - x) / (1 + x)))")
def _acos(lo, a):
    x = _unary(lo, a)
    return lo.mul(2, lo.ew("atan", [lo.ew("sqrt", [lo.div(lo.sub(1, x), lo.add(1, x))])]))


def _safe(lo, cond, x, fill=1):
    """x where the Cond holds, else ``fill``: an argument that stays in a primitive's domain on the branch
    that is not taken (where evaluates both)."""
    return lo.select(cond, x, fill)


@op("atan2.default", note="atan2 backward is (x, -y) / (x^2 + y^2) off the origin and 0 there: atan(y / x) "
                          "(+-pi) off the y axis, 2 atan((r - x) / y) on it, 0 at the origin; the jump across "
                          "y = 0, x < 0 takes the y >= 0 side (pi), as atan2(0, -1) = pi")
def _atan2(lo, y, x):
    y, x = lo.real(y), lo.real(x)
    shape = lo.bshape(y.shape, x.shape)
    y, x = lo.broadcast(y, shape), lo.broadcast(x, shape)
    pi = lo.lit(exact_q(PI))
    x_nz = lo.compare("!=", x, 0)
    base = lo.ew("atan", [lo.div(y, _safe(lo, x_nz, x))])
    left = lo.select(lo.compare(">=", y, 0), lo.add(base, pi), lo.sub(base, pi))
    off_axis = lo.select(lo.compare(">", x, 0), base, left)
    y_nz = lo.compare("!=", y, 0)
    r2 = lo.add(lo.mul(x, x), lo.mul(y, y))
    r = lo.ew("sqrt", [_safe(lo, y_nz, r2)])
    on_axis = lo.select(y_nz, lo.mul(2, lo.ew("atan", [lo.div(lo.sub(r, x), _safe(lo, y_nz, y))])), 0)
    return lo.broadcast(lo.select(x_nz, off_axis, on_axis), shape)


@op("log2.default")
def _log2(lo, a):
    return lo.div(lo.ew("log", [_unary(lo, a)]), _log_const(lo, 2))


@op("log10.default")
def _log10(lo, a):
    return lo.div(lo.ew("log", [_unary(lo, a)]), _log_const(lo, 10))


@op("exp2.default")
def _exp2(lo, a):
    return lo.ew("exp", [lo.mul(_unary(lo, a), _log_const(lo, 2))])


@op("erfc.default")
def _erfc(lo, a):
    return lo.sub(1, lo.ew("erf", [_unary(lo, a)]))


@op("xlogy.Tensor", "xlogy.Scalar_Self", "xlogy.Scalar_Other", keep=True,
    note="x log y, defined for y > 0: xlogy backward is log y in x (also at x = 0) and x / y in y")
def _xlogy(lo, x, y):
    return lo.mul(x, lo.ew("log", [lo.real(y)]))


@op("special_xlog1py.default", "special_xlog1py.self_scalar", "special_xlog1py.other_scalar", keep=True,
    note="x log(1 + y), defined for y > -1: the backward is log(1 + y) in x (also at x = 0) and x / (1 + y) in y")
def _xlog1py(lo, x, y):
    return lo.mul(x, lo.ew("log", [lo.add(1, y)]))


@op("special_entr.default", keep=True, note="-x log x, defined for x > 0 (at 0 torch's derivative is infinite, "
                                            "below 0 its value is -inf)")
def _entr(lo, a):
    x = _unary(lo, a)
    return lo.neg(lo.mul(x, lo.ew("log", [x])))


@op("lgamma.default")
def _lgamma(lo, a):
    return lo.ew("lgamma", [_unary(lo, a)])


@op("digamma.default")
def _digamma(lo, a):
    return lo.ew("polygamma", [_unary(lo, a)], {"n": 0})


@op("polygamma.default", "special_polygamma.default")
def _polygamma_op(lo, n, a):
    return lo.ew("polygamma", [_unary(lo, a)], {"n": int(n)})


@op("erfinv.default", note="defined for |x| < 1")
def _erfinv_op(lo, a):
    return lo.ew("erfinv", [_unary(lo, a)])


@op("special_ndtri.default", note="sqrt(2) erfinv(2 p - 1), defined for 0 < p < 1")
def _ndtri(lo, a):
    return lo.mul(lo.ew("sqrt", [lo.lit(2)]), lo.ew("erfinv", [lo.sub(lo.mul(_unary(lo, a), 2), 1)]))


@op("special_log_ndtr.default", keep=True, note="log((1 + erf(x / sqrt 2)) / 2): smooth (its decomposition switches "
                                                "between two forms of the same function)")
def _log_ndtr(lo, a):
    x = _unary(lo, a)
    return lo.ew("log", [lo.mul(lo.add(1, lo.ew("erf", [lo.div(x, lo.ew("sqrt", [lo.lit(2)]))])), fmpq(1, 2))])


@op("special_erfcx.default", note="exp(x^2) erfc(x)")
def _erfcx(lo, a):
    x = _unary(lo, a)
    return lo.mul(lo.ew("exp", [lo.mul(x, x)]), lo.sub(1, lo.ew("erf", [x])))


@op("i0.default", "special_i0.default")
def _i0(lo, a):
    return lo.ew("bessel_i", [_unary(lo, a)], {"n": 0})


@op("special_i1.default")
def _i1(lo, a):
    return lo.ew("bessel_i", [_unary(lo, a)], {"n": 1})


def _scaled_bessel(n):
    def fn(lo, a):
        x = _unary(lo, a)
        return lo.mul(lo.ew("exp", [lo.neg(abs_of(lo, x))]), lo.ew("bessel_i", [x], {"n": n}))
    return fn


op("special_i0e.default", note="exp(-|x|) I0(x): i0e backward is i1e(x) - sgn(x) i0e(x), 0 at 0 (abs at_zero=0)")(
    _scaled_bessel(0))
op("special_i1e.default", note="exp(-|x|) I1(x): i1e backward uses sgn(x), 0 at 0 (abs at_zero=0)")(_scaled_bessel(1))


@op("hypot.default", note="defined off (0, 0), where torch's derivative is nan")
def _hypot(lo, a, b):
    a, b = lo.real(a), lo.real(b)
    return lo.ew("sqrt", [lo.add(lo.mul(a, a), lo.mul(b, b))])


def stack_last(lo, ts):
    shape = lo.bshape(*(t.shape for t in ts))
    return lo.concat([lo.reshape(lo.broadcast(lo.real(t), shape), shape + (1,)) for t in ts], len(shape))


@op("logaddexp.default", keep=True, note="smooth: log(exp(a) + exp(b)) as a logsumexp of the pair")
def _logaddexp(lo, a, b):
    s = stack_last(lo, [a, b])
    return lo.logsumexp(s, (len(s.shape) - 1,))


@op("logaddexp2.default", keep=True, note="smooth: logaddexp(a ln 2, b ln 2) / ln 2")
def _logaddexp2(lo, a, b):
    ln2 = _log_const(lo, 2)
    return lo.div(_logaddexp(lo, lo.mul(a, ln2), lo.mul(b, ln2)), ln2)


@op("sinc.default", keep=True, note="sinc backward is 0 at 0 (the constant piece 1 there)")
def _sinc(lo, a):
    x = _unary(lo, a)
    nz = lo.compare("!=", x, 0)
    px = lo.mul(x, exact_q(PI))
    return lo.broadcast(lo.select(nz, lo.div(lo.ew("sin", [px]), _safe(lo, nz, px)), 1), x.shape)


@op("copysign.Tensor", "copysign.Scalar", note="copysign backward for self: result / self, 0 where self = 0 "
                                               "(abs at_zero=0); 0 for other")
def _copysign(lo, a, b):
    t = lo.real(a)
    shape = lo.bshape(t.shape, lo.real(b).shape)
    mag = abs_of(lo, t)
    return lo.broadcast(lo.select(lo.compare(">=", b, 0), mag, lo.neg(mag)), shape)


@op("angle.default", note="angle of a real number: 0 for x >= 0, pi for x < 0; derivative 0")
def _angle(lo, a):
    x = _unary(lo, a)
    return lo.broadcast(lo.select(lo.compare("<", x, 0), lo.lit(exact_q(PI)), 0), x.shape)


@op("ldexp.Tensor", note="x * 2^e: exact for integer exponents known at import time, x * exp(e ln 2) for real e")
def _ldexp(lo, a, e):
    if not isinstance(e, Const) or np.asarray(e.value).dtype.kind not in "iub":
        return lo.mul(a, lo.ew("exp", [lo.mul(lo.real(e), _log_const(lo, 2))]))
    ex = np.asarray(e.value)
    big = int(np.abs(ex.astype(object)).max()) if ex.size else 0
    if big > 1 << 16:                   # 2^k would be a k-bit rational
        lo.fail(f"ldexp by 2^{big}: an exponent beyond 2^16 takes every float to 0 or inf, and its exact power "
                "of 2 is not formed")
    scale = np.vectorize(lambda k: fmpq(2) ** int(k), otypes=[object])(ex)
    from fractions import Fraction
    arr = np.vectorize(lambda q: Fraction(int(q.p), int(q.q)), otypes=[object])(scale)
    return lo.mul(a, lo.constant(ExactArray.from_any(arr), f"const.{lo.hint}"))


def _integer_powers(lo, x, ex):
    """x ** e elementwise for a constant integer array e: one pow per distinct exponent, blended by masks."""
    x = lo.real(x)
    shape = lo.bshape(x.shape, ex.shape)
    ex = np.broadcast_to(ex, shape)
    out = None
    for n in sorted(set(int(v) for v in ex.ravel().tolist())):
        p = lo.ew("pow", [x], {"n": n})
        mask = (ex == n)
        part = p if mask.all() else lo.mul(p, lo.constant(mask.astype(np.int64), f"mask.{lo.hint}"))
        out = part if out is None else lo.add(out, part)
    return lo.broadcast(out, shape)


@op("pow.Tensor_Tensor", "float_power.Tensor_Tensor", note="x ** y = exp(y log x), defined for x > 0; integer "
                                                          "exponents known at import time are integer powers")
def _pow_tt(lo, a, b):
    if isinstance(b, Const) and np.asarray(b.value).dtype.kind in "iub":
        return _integer_powers(lo, a, np.asarray(b.value))
    a, b = lo.real(a), lo.real(b)
    if isinstance(b.atom, Lit) and b.atom.value.q == 1:
        return lo.ew("pow", [a], {"n": int(b.atom.value.p)})
    return lo.ew("exp", [lo.mul(b, lo.ew("log", [a]))])


@op("pow.Scalar", "float_power.Scalar", note="c ** x = exp(x log c), defined for c > 0")
def _pow_scalar(lo, c, x):
    q = exact_q(c, "base")
    if q <= 0:
        lo.fail(f"{c!r} ** x with a non-positive base")
    return lo.ew("exp", [lo.mul(lo.real(x), _log_const(lo, q))])


# ------------------------------------------------------------------------------------------------ rounding

def _step(kind):
    def fn(lo, a):
        x = _unary(lo, a)
        (o,) = lo.emit(kind, [lo.full(x)])
        return Tensor(o, x.shape)
    return fn


for _k in ("floor", "ceil", "round", "trunc"):
    op(f"{_k}.default", note=f"{_k} backward is 0 everywhere (a step: discontinuous)")(_step(_k))


@op("round.decimals", note="round(x * 10^d) / 10^d; derivative 0")
def _round_decimals(lo, a, decimals=0):
    s = fmpq(10) ** decimals
    return lo.div(_step("round")(lo, lo.mul(a, s)), s)


def _divmod(kind):
    def fn(lo, a, b):
        q = _step(kind)(lo, lo.div(a, b))
        return lo.sub(a, lo.mul(b, q))
    return fn


op("fmod.Tensor", "fmod.Scalar", note="fmod(a, b) = a - b trunc(a / b): backward 1 for a, -trunc(a / b) for b "
                                      "(measured)")(_divmod("trunc"))
op("remainder.Tensor", "remainder.Scalar", note="remainder(a, b) = a - b floor(a / b): backward 1 for a, "
                                                "-floor(a / b) for b (measured)")(_divmod("floor"))


@op("div.Tensor_mode", "div.Scalar_mode", note="div with rounding_mode trunc / floor: a step of a / b, derivative 0")
def _div_mode(lo, a, b, rounding_mode=None):
    q = lo.div(a, b)
    return q if rounding_mode is None else _step(rounding_mode)(lo, q)


# --------------------------------------------------------------------------------- max, min, clamp (tensor)

@op("fmax.default", note="fmax backward: the whole gradient to self at a tie (self >= other): tie=first")
def _fmax(lo, a, b):
    return lo.ew("max", [a, b], {"tie": "first"})


@op("fmin.default", note="fmin backward: the whole gradient to self at a tie (self <= other): tie=first")
def _fmin(lo, a, b):
    return lo.ew("min", [a, b], {"tie": "first"})


def _clamp_t(lo, a, lo_b, hi_b):
    """clamp with tensor (or number) bounds, as clamp_backward and clamp_backward_min_max: x gets the gradient
    where lo <= x <= hi, lo where x < lo < hi, hi where x > hi or hi < lo.  (At x < lo = hi torch gives no
    gradient to anything, which no piece of a selection can: there the bound lo gets it.)"""
    x = lo.real(a)
    shape = lo.bshape(x.shape, *(lo.real(b).shape for b in (lo_b, hi_b) if b is not None))
    y = x
    if hi_b is not None:
        y = lo.select(lo.compare(">", x, hi_b), hi_b, y)
    if lo_b is not None:
        y = lo.select(lo.compare("<", x, lo_b), lo_b, y)
    if lo_b is not None and hi_b is not None:
        y = lo.select(lo.compare("<", hi_b, lo_b), hi_b, y)
    return lo.broadcast(y, shape)


@op("clamp.Tensor", note="clamp_backward with tensor bounds: 1 to x at both bounds; the bound itself outside")
def _clamp_tensor(lo, a, min=None, max=None):
    return _clamp_t(lo, a, min, max)


@op("clamp_min.Tensor", note="1 to x at the bound")
def _clamp_min_t(lo, a, min):
    return _clamp_t(lo, a, min, None)


@op("clamp_max.Tensor", note="1 to x at the bound")
def _clamp_max_t(lo, a, max):
    return _clamp_t(lo, a, None, max)


@op("rrelu_with_noise_functional.default", note="rrelu in eval mode: leaky_relu with the mean slope (lower + upper) "
                                                "/ 2, that slope at 0 too (measured)")
def _rrelu(lo, a, noise, lower=0.125, upper=1.0 / 3.0, training=False, generator=None):
    if training:
        lo.fail("rrelu in training mode draws random slopes: not a function (call model.eval())")
    t = lo.real(a)
    s = (exact_q(lower) + exact_q(upper)) / 2
    (o,) = lo.emit("leaky_relu", [lo.full(t)], {"slope": s, "at_zero": s})
    return Tensor(o, t.shape), Unavailable("rrelu's noise is not a value of the function")


# --------------------------------------------------------------------------------------- real predicates

@op("isnan.default", "isinf.default", "isposinf.default", "isneginf.default", bool_out=True,
    note="false for every real number")
def _never(lo, a):
    return Const(np.zeros(_shape_of(lo, a), dtype=bool))


def _shape_of(lo, a):
    """The shape of any value (a detached one included: isnan of it needs no derivative)."""
    return np.shape(a.value) if isinstance(a, Const) else (a.shape if isinstance(a, Unavailable) else lo.real(a).shape)


@op("isfinite.default", bool_out=True, keep=True, note="true for every real number")
def _always(lo, a):
    return Const(np.ones(_shape_of(lo, a), dtype=bool))


# ---------------------------------------------------------------------------------- cumulative, products

def _axis_last(lo, t, ax):
    perm = [i for i in range(len(t.shape)) if i != ax] + [ax]
    return lo.transpose(t, perm), perm


def _axis_back(lo, t, perm):
    return lo.transpose(t, tuple(int(i) for i in np.argsort(perm)))


@op("cumsum.default", note="linear: a product with a triangular matrix of ones")
def _cumsum(lo, a, dim, dtype=None):
    t = lo.real(a)
    if not t.shape:
        return t
    ax = dim % len(t.shape)
    n = t.shape[ax]
    if n == 1:
        return t
    u, perm = _axis_last(lo, t, ax)
    tri = lo.constant(np.triu(np.ones((n, n), dtype=np.int64)), f"triu.{lo.hint}", fold=False)
    return _axis_back(lo, lo.dot(u, tri, (len(u.shape) - 1,), (0,)), perm)


def _slices(lo, t, ax):
    nd = len(t.shape)
    out = []
    for i in range(t.shape[ax]):
        start, stop = [0] * nd, list(t.shape)
        start[ax], stop[ax] = i, i + 1
        out.append(lo.slice(t, start, stop))
    return out


def product_of(lo, parts):
    while len(parts) > 1:
        nxt = [lo.mul(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


@op("cumprod.default", note="smooth: a chain of products (exact derivatives at zeros too)")
def _cumprod(lo, a, dim, dtype=None):
    t = lo.real(a)
    if not t.shape:
        return t
    ax = dim % len(t.shape)
    parts = _slices(lo, t, ax)
    acc, out = None, []
    for p in parts:
        acc = p if acc is None else lo.mul(acc, p)
        out.append(acc)
    return lo.concat(out, ax) if len(out) > 1 else out[0]


@op("prod.default", "prod.dim_int", note="smooth: a tree of products (exact derivatives at zeros too)")
def _prod(lo, a, dim=None, keepdim=False, dtype=None):
    t = lo.real(a)
    if not t.shape:
        return t
    if dim is None:
        t = lo.reshape(t, (math.prod(t.shape),))
        ax = 0
    else:
        ax = dim % len(t.shape)
    if t.shape[ax] == 0:
        shape = tuple(1 if i == ax else d for i, d in enumerate(t.shape))
        out = Tensor(lo.lit(1).atom, shape)
    else:
        out = product_of(lo, _slices(lo, t, ax))
    if dim is None:
        return lo.reshape(out, ())
    return out if keepdim else lo.reshape(out, tuple(d for i, d in enumerate(out.shape) if i != ax))


@op("logcumsumexp.default", note="smooth: log(cumsum(exp(x)))")
def _logcumsumexp(lo, a, dim):
    t = lo.real(a)
    return lo.ew("log", [_cumsum(lo, lo.ew("exp", [t]), dim)])


# ------------------------------------------------------------------------------------------------ windows

def window_reduce(lo, t, windows, prim, tie):
    """max or min (``prim`` window_max / window_min) of ``t`` over ``windows`` (int array: output shape + (k,),
    flat indices into t, -1 for no element; every window nonempty), with the tie rule ``tie``.  Windows of one
    element are takes, the others one window_max / window_min equation."""
    windows = np.asarray(windows, dtype=np.int64)
    out_shape = windows.shape[:-1]
    rows = windows.reshape(-1, windows.shape[-1])
    valid = rows >= 0
    counts = valid.sum(axis=1)
    if (counts == 0).any():
        lo.fail("a pooling window holds no element of the input")
    order = np.argsort(~valid, axis=1, kind="stable")
    rows = np.take_along_axis(rows, order, axis=1)
    single, multi = np.nonzero(counts == 1)[0], np.nonzero(counts >= 2)[0]
    parts, position = [], np.zeros(len(rows), dtype=np.int64)
    if len(single):
        parts.append(lo.take(t, rows[single, 0], "window"))
        position[single] = np.arange(len(single))
    if len(multi):
        k = int(counts[multi].max())
        w = np.where(np.arange(k)[None, :] < counts[multi][:, None], rows[multi, :k], -1)
        arr = lo.add_array(ExactArray(w.astype(object), 1), f"windows.{lo.hint or 'pool'}")
        (o,) = lo.emit(prim, [lo.full(t)], {"windows": arr, "tie": tie})
        parts.append(Tensor(o, (len(multi),)))
        position[multi] = len(single) + np.arange(len(multi))
    flat = parts[0] if len(parts) == 1 else lo.concat(parts, 0)
    return lo.take(flat, position.reshape(out_shape), "window")


def window_mean(lo, t, windows, divisors):
    """sum of ``t`` over ``windows`` (as in window_reduce; -1 entries read 0) divided by ``divisors`` (an int
    array of the output shape): average pooling of any shape, exactly."""
    windows = np.asarray(windows, dtype=np.int64)
    n = math.prod(t.shape)
    flat = lo.pad(lo.reshape(t, (n,)), [0], [1])                  # a zero at position n
    idx = np.where(windows >= 0, windows, n)
    g = lo.take(flat, idx, "window")
    s = lo.reduce("sum", g, (len(idx.shape) - 1,))
    div = np.asarray(divisors, dtype=object)
    from fractions import Fraction
    inv = np.vectorize(lambda d: Fraction(1, int(d)), otypes=[object])(div)
    return lo.mul(s, lo.constant(ExactArray.from_any(inv), f"divisor.{lo.hint or 'pool'}"))


def pool_windows(in_shape, kernel, stride, padding, dilation, ceil_mode):
    """(windows, out spatial shape, divisor sizes with padding counted, divisor sizes without) of a pooling of
    the trailing len(kernel) axes of ``in_shape``, as torch computes output sizes (ceil_mode keeps a last window
    only when it starts inside the input or the left padding)."""
    nd = len(kernel)
    lead = in_shape[:-nd]
    spatial = in_shape[-nd:]
    per_dim, outs, with_pad, without = [], [], [], []
    for L, k, s, p, d in zip(spatial, kernel, stride, padding, dilation):
        eff = d * (k - 1) + 1
        num = L + 2 * p - eff
        o = (-(-num // s) if ceil_mode else num // s) + 1
        if ceil_mode and (o - 1) * s >= L + p:
            o -= 1
        starts = np.arange(o) * s - p
        pos = starts[:, None] + np.arange(k)[None, :] * d                    # (o, k)
        ok = (pos >= 0) & (pos < L)
        per_dim.append(np.where(ok, pos, -1))
        outs.append(o)
        hend = np.minimum(starts + eff, L + p)
        with_pad.append(hend - starts)
        without.append(np.minimum(starts + eff, L) - np.maximum(starts, 0))
    # cartesian product of the per-dimension windows
    grids = np.meshgrid(*[np.arange(o) for o in outs], indexing="ij")
    kgrids = np.meshgrid(*[np.arange(k) for k in kernel], indexing="ij")
    flat_idx = None
    valid = None
    for i in range(nd):
        pos = per_dim[i][grids[i].reshape(-1)[:, None], kgrids[i].reshape(-1)[None, :]]   # (prod(outs), prod(k))
        v = pos >= 0
        valid = v if valid is None else valid & v
        stride_i = math.prod(spatial[i + 1:])
        term = np.where(v, pos, 0) * stride_i
        flat_idx = term if flat_idx is None else flat_idx + term
    flat_idx = np.where(valid, flat_idx, -1)
    base = np.arange(math.prod(lead)) * math.prod(spatial)
    windows = np.where(flat_idx[None] >= 0, base[:, None, None] + flat_idx[None], -1)
    windows = windows.reshape(tuple(lead) + tuple(outs) + (flat_idx.shape[-1],))
    div_pad = math.prod(1 for _ in ()) * np.ones(tuple(outs), dtype=np.int64)
    div_nopad = np.ones(tuple(outs), dtype=np.int64)
    for i in range(nd):
        shape = [1] * nd
        shape[i] = outs[i]
        div_pad = div_pad * with_pad[i].reshape(shape)
        div_nopad = div_nopad * without[i].reshape(shape)
    return windows, tuple(outs), np.broadcast_to(div_pad, tuple(lead) + tuple(outs)), \
        np.broadcast_to(div_nopad, tuple(lead) + tuple(outs))


def adaptive_windows(in_shape, out_size):
    """(windows, divisors) of adaptive pooling of the trailing axes to ``out_size``: window i of an axis of
    length L covers floor(i L / o) .. ceil((i + 1) L / o) - 1."""
    nd = len(out_size)
    lead, spatial = in_shape[:-nd], in_shape[-nd:]
    per_dim, sizes = [], []
    for L, o in zip(spatial, out_size):
        starts = (np.arange(o) * L) // o
        ends = -((-(np.arange(1, o + 1) * L)) // o)
        k = int((ends - starts).max())
        pos = starts[:, None] + np.arange(k)[None, :]
        per_dim.append(np.where(pos < ends[:, None], pos, -1))
        sizes.append(ends - starts)
    grids = np.meshgrid(*[np.arange(o) for o in out_size], indexing="ij")
    kgrids = np.meshgrid(*[np.arange(p.shape[1]) for p in per_dim], indexing="ij")
    flat_idx, valid = None, None
    for i in range(nd):
        pos = per_dim[i][grids[i].reshape(-1)[:, None], kgrids[i].reshape(-1)[None, :]]
        v = pos >= 0
        valid = v if valid is None else valid & v
        term = np.where(v, pos, 0) * math.prod(spatial[i + 1:])
        flat_idx = term if flat_idx is None else flat_idx + term
    flat_idx = np.where(valid, flat_idx, -1)
    base = np.arange(math.prod(lead)) * math.prod(spatial)
    windows = np.where(flat_idx[None] >= 0, base[:, None, None] + flat_idx[None], -1)
    windows = windows.reshape(tuple(lead) + tuple(out_size) + (flat_idx.shape[-1],))
    div = np.ones(tuple(out_size), dtype=np.int64)
    for i in range(nd):
        shape = [1] * nd
        shape[i] = out_size[i]
        div = div * sizes[i].reshape(shape)
    return windows, np.broadcast_to(div, tuple(lead) + tuple(out_size))


def _tuple(v, n):
    if isinstance(v, (list, tuple)):
        v = tuple(v)
        return v * n if len(v) == 1 else v
    return (v,) * n


def _pool_params(kernel, stride, padding, dilation, nd):
    kernel = _tuple(kernel, nd)
    stride = _tuple(stride, nd) if stride not in (None, [], ()) else kernel
    return kernel, stride, _tuple(padding, nd), _tuple(dilation, nd)


def max_pool(lo, a, kernel, stride, padding, dilation, ceil_mode, nd):
    t = lo.real(a)
    kernel, stride, padding, dilation = _pool_params(kernel, stride, padding, dilation, nd)
    windows, _, _, _ = pool_windows(t.shape, kernel, stride, padding, dilation, ceil_mode)
    return window_reduce(lo, t, windows, "window_max", "first")


@op("max_pool3d_with_indices.default", note="max_pool3d backward goes through the kernel's index, the first "
                                            "maximal element of the window (tie=first), measured")
def _max_pool3d(lo, a, kernel, stride=(), padding=0, dilation=1, ceil_mode=False):
    return (max_pool(lo, a, kernel, stride, padding, dilation, ceil_mode, 3),
            Unavailable("max-pool indices are integers computed from real values"))


def max_pool2d_windows(lo, a, kernel, stride, padding, dilation, ceil_mode):
    """max_pool2d through window_max (for what the max_pool2d primitive does not cover: ceil mode, padding
    beyond half the kernel)."""
    return max_pool(lo, a, kernel, stride, padding, dilation, ceil_mode, 2)


@op("adaptive_max_pool2d.default", "adaptive_max_pool3d.default",
    note="adaptive max-pool backward goes through the kernel's index, the first maximal element (tie=first)")
def _adaptive_max(lo, a, output_size):
    t = lo.real(a)
    windows, _ = adaptive_windows(t.shape, tuple(output_size))
    return (window_reduce(lo, t, windows, "window_max", "first"),
            Unavailable("max-pool indices are integers computed from real values"))


def avg_pool(lo, a, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, nd):
    t = lo.real(a)
    kernel, stride, padding, _ = _pool_params(kernel, stride, padding, 1, nd)
    windows, _, with_pad, without = pool_windows(t.shape, kernel, stride, padding, (1,) * nd, ceil_mode)
    div = with_pad if count_include_pad else without
    if divisor_override:
        div = np.full(div.shape, int(divisor_override))
    return window_mean(lo, t, windows, div)


@op("avg_pool3d.default", note="linear: window sums over the window's divisor")
def _avg_pool3d(lo, a, kernel, stride=(), padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    return avg_pool(lo, a, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, 3)


@op("_adaptive_avg_pool3d.default", note="linear: window means")
def _adaptive_avg3d(lo, a, output_size):
    t = lo.real(a)
    windows, div = adaptive_windows(t.shape, tuple(output_size))
    return window_mean(lo, t, windows, div)


def adaptive_avg(lo, t, output_size):
    windows, div = adaptive_windows(t.shape, tuple(output_size))
    return window_mean(lo, t, windows, div)


@op("cummax.default", note="cummax backward goes through the returned index, the last maximal element so far "
                           "(tie=last), measured")
def _cummax(lo, a, dim):
    return _cum_extremum(lo, a, dim, "window_max"), Unavailable("cummax indices are integers computed from reals")


@op("cummin.default", note="cummin backward goes through the returned index, the last minimal element so far "
                           "(tie=last), measured")
def _cummin(lo, a, dim):
    return _cum_extremum(lo, a, dim, "window_min"), Unavailable("cummin indices are integers computed from reals")


def _cum_extremum(lo, a, dim, prim):
    t = lo.real(a)
    if not t.shape:
        return t
    ax = dim % len(t.shape)
    n = t.shape[ax]
    pos = np.arange(math.prod(t.shape)).reshape(t.shape)
    pos = np.moveaxis(pos, ax, -1)                                     # (..., n)
    prefix = np.where(np.arange(n)[None, :] <= np.arange(n)[:, None], np.arange(n)[None, :], -1)   # (n, n)
    w = np.where(prefix[None] >= 0, np.take(pos, np.maximum(prefix, 0), axis=-1), -1)
    w = np.moveaxis(w.reshape(pos.shape[:-1] + (n, n)), -2, ax)
    return window_reduce(lo, t, w, prim, "last")


# ----------------------------------------------------------------------------------------- order statistics

def _kth(lo, t, axes, k, keepdim, tie):
    n = math.prod(t.shape[a] for a in axes) if t.shape else 1
    check_selection_size(lo, n, "an order statistic")
    if n == 1:
        return lo.reshape(t, tuple(1 if i in axes else d for i, d in enumerate(t.shape)) if keepdim else
                          tuple(d for i, d in enumerate(t.shape) if i not in axes))
    (o,) = lo.emit("kth_axis", [lo.full(t)], {"axes": tuple(axes), "k": int(k), "keepdims": bool(keepdim), "tie": tie})
    return Tensor(o, lo.shape_of(o))


@op("median.default", "nanmedian.default", note="median() backward shares the gradient evenly among the elements "
                                                "equal to the median (evenly_distribute_backward: tie=split)")
def _median_all(lo, a):
    t = lo.real(a)
    n = math.prod(t.shape)
    return _kth(lo, t, tuple(range(len(t.shape))), (n - 1) // 2, False, "split")


@op("median.dim", "nanmedian.dim", note="median(dim) backward goes through the returned index, chosen among tied "
                                        "elements by the selection algorithm (no fixed rule): unspecified")
def _median_dim(lo, a, dim, keepdim=False):
    t = lo.real(a)
    if not t.shape:
        return t, Unavailable("median indices are integers computed from real values")
    ax = dim % len(t.shape)
    return (_kth(lo, t, (ax,), (t.shape[ax] - 1) // 2, keepdim, "unspecified"),
            Unavailable("median indices are integers computed from real values"))


@op("kthvalue.default", note="kthvalue backward goes through the returned index, chosen among tied elements by "
                             "the selection algorithm (no fixed rule): unspecified")
def _kthvalue(lo, a, k, dim=-1, keepdim=False):
    t = lo.real(a)
    if not t.shape:
        return t, Unavailable("kthvalue indices are integers computed from real values")
    ax = dim % len(t.shape)
    return (_kth(lo, t, (ax,), k - 1, keepdim, "unspecified"),
            Unavailable("kthvalue indices are integers computed from real values"))


@op("mode.default", note="mode backward goes through the returned index: of the smallest most frequent value, its "
                         "last occurrence up to 16 elements, an occurrence chosen by an unstable sort beyond "
                         "(measured: tie unspecified); discontinuous")
def _mode(lo, a, dim=-1, keepdim=False):
    t = lo.real(a)
    idx = Unavailable("mode indices are integers computed from real values")
    if not t.shape:
        return t, idx
    ax = dim % len(t.shape)
    n = t.shape[ax]
    check_selection_size(lo, n, "mode")
    if n < 2:
        return (t if keepdim else lo.reshape(t, tuple(d for i, d in enumerate(t.shape) if i != ax))), idx
    tie = "last" if n <= 16 else "unspecified"
    (o,) = lo.emit("mode_axis", [lo.full(t)], {"axis": ax, "keepdims": bool(keepdim), "tie": tie})
    return Tensor(o, lo.shape_of(o)), idx


@op("topk.default", note="topk backward goes through the returned indices, which order tied elements by the "
                         "partial-sort algorithm (measured: no fixed rule): sort ties unspecified")
def _topk(lo, a, k, dim=-1, largest=True, sorted=True):
    t = lo.real(a)
    idx = Unavailable("topk indices are integers computed from real values")
    if not t.shape:
        return t, idx
    ax = dim % len(t.shape)
    if not sorted and k > 1:
        lo.fail("topk(sorted=False) returns the k elements in an order that is not specified")
    if t.shape[ax] < 2:
        s = t
    else:
        (o,) = lo.emit("sort_axis", [lo.full(t)], {"axis": ax, "descending": bool(largest), "ties": "unspecified"})
        s = Tensor(o, t.shape)
    start, stop = [0] * len(t.shape), list(t.shape)
    stop[ax] = k
    return lo.slice(s, start, stop), idx


# ------------------------------------------------- margin losses, quantiles, chunked losses, pool backward
#
# Ops whose integer arguments (labels, the index arithmetic of a constant q, max-pool indices) are constants
# of the sample: each lowers to smooth equations and named selections, with the op's own backward at kinks.

# the real predicates have one value at every real point (isnan is false): what torch computes from them and
# from constants only (a quantile's ranks from a constant q after its NaN check) is a constant of the sample
CONSTANT_ON_REALS = ("isnan.default", "isinf.default", "isposinf.default", "isneginf.default", "isfinite.default")


def _hinge_pairs(lo, x2, pairs):
    """The rows of sum over ``pairs`` of max(0, 1 - x2[n, k] + x2[n, j]), as a Tensor of shape (N,).  ``pairs``:
    an int array of rows (n, k, j).  The hinge is relu with derivative 0 at 0: the backward counts a term only
    where z > 0."""
    N, C = x2.shape
    if not len(pairs):
        return Tensor(lo.lit(0).atom, (N,))
    flat = lo.reshape(x2, (N * C,))
    z = lo.add(lo.sub(lo.lit(1), lo.take(flat, pairs[:, 0] * C + pairs[:, 1], "hinge")),
               lo.take(flat, pairs[:, 0] * C + pairs[:, 2], "hinge"))
    h = lo.ew("relu", [z], {"alpha": fmpq(0)})
    rows = np.zeros((N, len(pairs)), dtype=np.int64)
    rows[pairs[:, 0], np.arange(len(pairs))] = 1
    return lo.dot(lo.constant(rows, "rows.hinge", fold=False), h, (1,), (0,))


def _reduce_rows(lo, rows, C, reduction, out_shape):
    """torch's reduction of per-sample sums ``rows`` (each to be divided by the class count ``C``): 0 none
    (shaped ``out_shape``), 1 mean over samples, 2 sum."""
    per = lo.div(rows, lo.lit(C))
    if reduction == 0:
        return lo.reshape(per, out_shape)
    total = lo.reduce("sum", per, (0,))
    return lo.div(total, lo.lit(rows.shape[0])) if reduction == 1 else total


def _as_rows(lo, a):
    x = lo.real(a)
    return x, lo.reshape(x, (1, max(1, math.prod(x.shape))) if len(x.shape) < 2 else x.shape)


@op("multilabel_margin_loss.default", keep=True,
    note="multilabel_margin_loss_backward counts the pair (target k, non-target j) only where z = 1 - x[k] + x[j] "
         "> 0: a relu with derivative 0 at z = 0 (measured); torch's default decomposition is not used: it "
         "does not stop at the -1 that ends a target row (measured: a wrong value)")
def _multilabel_margin_loss(lo, a, target, reduction=1):
    x, x2 = _as_rows(lo, a)
    N, C = x2.shape
    t = _idx(lo, target, "multilabel_margin_loss target").reshape(N, C).numpy()
    pairs = []
    for n in range(N):
        row = t[n].tolist()
        ks = row[:row.index(-1)] if -1 in row else row
        if any(not 0 <= k < C for k in ks):
            lo.fail(f"multilabel_margin_loss target {ks} outside 0..{C - 1}")
        pairs += [(n, k, j) for k in ks for j in range(C) if j not in ks]
    pairs = np.array(pairs, dtype=np.int64).reshape(-1, 3)
    # the exported node's shape (torch.export's meta says (1,) for a 1-d input with reduction none, eager ())
    out_shape = tuple(lo.node.meta["val"].shape) if reduction == 0 else ()
    return _reduce_rows(lo, _hinge_pairs(lo, x2, pairs), C, reduction, out_shape)


def _chunked_ce_rows(lo, x, w, target, bias, weight, ignore_index):
    """(per-sample losses -w[t] log_softmax(x W^T + b)[n, t] (0 where t is ignore_index), the per-sample class
    weights as exact rationals): the loss F.linear_cross_entropy's chunked ops compute chunk by chunk."""
    x, w = lo.real(x, "input"), lo.real(w, "linear weight")
    t = _idx(lo, target, "linear_cross_entropy target").reshape(-1).numpy()
    N, C = x.shape[0], w.shape[0]
    keep = t != ignore_index
    if len(t) != N or bool(((t[keep] < 0) | (t[keep] >= C)).any()):
        lo.fail(f"linear_cross_entropy targets {t.tolist()} outside 0..{C - 1} for {N} samples")
    logits = lo.dot(x, w, (1,), (1,))
    if bias is not None:
        logits = lo.add(logits, lo.real(bias, "linear bias"))
    lsm = lo.sub(logits, lo.logsumexp(logits, (1,), True))
    picked = lo.take(lo.reshape(lsm, (N * C,)), np.arange(N) * C + np.where(keep, t, 0), "target")
    if weight is None:
        cw = [fmpq(int(k)) for k in keep]
    else:
        wt = lo.real(weight, "class weight")
        if isinstance(wt.atom, Lit):
            vals = [wt.atom.value] * C
        elif isinstance(wt.atom, Arr):
            ea = lo.arrays.arrays[wt.atom.name]
            vals = [fmpq(int(v), int(ea.den)) for v in np.asarray(ea.num).reshape(-1).tolist()]
        else:
            lo.fail("linear_cross_entropy's chunked backward gives the class weight no gradient: a class weight "
                    "that is not a constant would get a gradient torch does not compute")
        cw = [vals[int(k)] if ok else fmpq(0) for k, ok in zip(t, keep)]
    scale = lo.constant(ExactArray.from_any(np.array(cw, dtype=object), "weights"), "weights")
    return lo.neg(lo.mul(picked, scale)), cw


@op("torch_nn._linear_cross_entropy_batch_chunked.default",
    note="cross_entropy(linear(input, W, b), target) computed in batch chunks, its gradient precomputed in the "
         "forward: smooth (reduction mean or sum; mean divides by the sum of the targets' class weights)")
def _lce_chunked(lo, x, w, target, bias, weight, reduction, ignore_index, label_smoothing, *options):
    if label_smoothing:
        lo.fail("linear_cross_entropy's chunked op with label_smoothing (torch refuses it)")
    rows, cw = _chunked_ce_rows(lo, x, w, target, bias, weight, ignore_index)
    total = lo.reduce("sum", rows, (0,))
    if reduction == "mean":
        d = sum(cw, fmpq(0))
        if d == 0:
            lo.fail("linear_cross_entropy's mean over targets whose class weights sum to 0 is nan")
        total = lo.div(total, lo.lit(d))
    grads = Unavailable("the gradients linear_cross_entropy's chunked op precomputes are not values verify "
                        "imports (its derivative is the program's own)")
    return total, grads, grads, grads


@op("torch_nn._linear_cross_entropy_batch_chunked_no_reduction.default",
    note="cross_entropy(linear(input, W, b), target, reduction='none') computed in batch chunks: smooth")
def _lce_chunked_none(lo, x, w, target, bias, weight, ignore_index, *options):
    return _chunked_ce_rows(lo, x, w, target, bias, weight, ignore_index)[0]


@op("max_pool2d_with_indices_backward.default", keep=True,
    note="linear in grad_output given the indices (a scatter-add of grad_output at them); self only gives the "
         "shape: derivative 0 in it, as its backward.  Indices of a max-pool of self itself: each window's "
         "first maximal element, chosen in the program by comparisons (piecewise constant in self)")
def _max_pool2d_backward(lo, grad_output, a, kernel_size, stride, padding, dilation, ceil_mode, indices):
    import torch
    if isinstance(indices, Unavailable):
        params = _pool_of_self(lo, (kernel_size, stride, padding, dilation, ceil_mode))
        if params is not None:
            return _first_max_scatter(lo, lo.real(grad_output), lo.real(a), params)
    idx = _idx(lo, indices, "max_pool2d_with_indices_backward indices")
    zeros = torch.zeros(_shape_of(lo, a), dtype=torch.float64)
    return linear_map(lo, [grad_output], lambda g: torch.ops.aten.max_pool2d_with_indices_backward(
        g, zeros, kernel_size, stride, padding, dilation, ceil_mode, idx))


def _pool_args(kernel, stride, padding, dilation, ceil_mode):
    kernel = _tuple(kernel, 2)
    return kernel, _tuple(stride, 2) if stride else kernel, _tuple(padding, 2), _tuple(dilation, 2), bool(ceil_mode)


def _pool_of_self(lo, params):
    """The pooling params when the node's indices are those of aten.max_pool2d_with_indices of its own self
    argument with the same params (read from the graph), else None."""
    import operator

    import torch
    node = lo.node
    idx, src = node.args[7], node.args[1]
    if getattr(idx, "target", None) is not operator.getitem or idx.args[1] != 1:
        return None
    pool = idx.args[0]
    if getattr(pool, "target", None) is not torch.ops.aten.max_pool2d_with_indices.default or pool.args[0] is not src:
        return None
    names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
    given = dict(zip(names, ((), (), 0, 1, False)))
    given.update(zip(names, pool.args[1:]))
    given.update({k: v for k, v in pool.kwargs.items() if k in given})
    theirs = _pool_args(*(given[k] for k in names))
    return theirs if theirs == _pool_args(*params) else None


def _first_max_scatter(lo, g, x, params):
    """sum over the windows of g[w] at the window's first maximal element of ``x`` (row-major, the padding never
    wins): for each slot a, g where x[a] > x[b] for the earlier slots b and x[a] >= x[b] for the later ones."""
    win = pool_windows(x.shape, *params)[0]
    k = win.shape[-1]
    win = win.reshape(-1, k)
    n_in, n_win = math.prod(x.shape), win.shape[0]
    xf, gf = lo.reshape(x, (n_in,)), lo.reshape(g, (n_win,))
    valid = win >= 0
    slot = [lo.take(xf, np.where(valid[:, b], win[:, b], 0), "window") for b in range(k)]
    parts = []
    for a in range(k):
        cond = Const(valid[:, a])
        for b in range(k):
            if b != a:
                beats = lo.compare(">" if b < a else ">=", slot[a], slot[b])
                cond = lo.logical("and", cond, lo.logical("or", Const(~valid[:, b]), beats))
        parts.append(lo.broadcast(lo.select(cond, gf, 0), (n_win,)))
    allp = lo.concat(parts + [Tensor(lo.lit(0).atom, (1,))], 0)          # slot-major, then a zero
    # the input element of each (slot, window), grouped by input element: one gather per layer of windows
    dest = np.where(valid.T, win.T, -1).reshape(-1)
    order = np.argsort(dest, kind="stable")
    order = order[dest[order] >= 0]
    layer = np.zeros(len(order), dtype=np.int64)
    for i in range(1, len(order)):
        layer[i] = layer[i - 1] + 1 if dest[order[i]] == dest[order[i - 1]] else 0
    total = None
    for j in range(int(layer.max()) + 1 if len(layer) else 0):
        idx = np.full(n_in, k * n_win, dtype=np.int64)
        idx[dest[order[layer == j]]] = order[layer == j]
        part = lo.take(allp, idx, "scatter")
        total = part if total is None else lo.add(total, part)
    out = total if total is not None else Tensor(lo.lit(0).atom, (n_in,))
    return lo.reshape(lo.broadcast(out, (n_in,)), x.shape)


checked_decomposition(
    "binary_cross_entropy",       # maximum(log x, -100): a tie needs log x = -100, never at a rational x
    # sort, then gather and lerp at ranks computed from q: the ATen composite is the same ops, so its backward
    # goes through the same sort (ties as sort.default's); the ranks are constants when q is (else refused)
    "quantile", "nanquantile",
)
decomposed_kinks(
    # clamp_min(margin - x[y] + x[j], 0): multi_margin_loss_backward counts a term only where it is > 0
    "multi_margin_loss", clamp={"at_lo": fmpq(0)},
)


# ------------------------------------------------------------------------------------------- variance, norms

@op("var_mean.correction")
def _var_mean(lo, a, dim=None, correction=None, keepdim=False):
    t = lo.real(a)
    axes = _dims(t, dim)
    n = math.prod(t.shape[d] for d in axes) if t.shape else 1
    c = 1 if correction is None else correction
    if n - c <= 0:
        lo.fail(f"variance of {n} element(s) with correction {c}")
    m = lo.reduce("mean", t, axes, True)
    d = lo.sub(t, m)
    var = lo.div(lo.reduce("sum", lo.mul(d, d), axes, keepdim), exact_q(n - c))
    return var, (m if keepdim else lo.reshape(m, tuple(s for i, s in enumerate(t.shape) if i not in axes)))


def _root(lo, s, p):
    """s ** (1 / p) for s >= 0 with the value 0 and derivative 0 at s = 0 (torch's norms at 0)."""
    pos = lo.compare(">", s, 0)
    safe = _safe(lo, pos, s)
    if p == 2:
        r = lo.ew("sqrt", [safe])
    elif p == 1:
        r = safe
    else:
        r = lo.ew("exp", [lo.div(lo.ew("log", [safe]), p)])
    return lo.broadcast(lo.select(pos, r, 0), s.shape)


def abs_of(lo, t):
    (o,) = lo.emit("abs", [lo.full(t)], {"at_zero": fmpq(0)})
    return Tensor(o, t.shape)


def _powers(lo, a, p):
    """|x| ** p elementwise for p > 0: an integer power when p is an integer (exact), else exp(p log|x|) with 0 and
    derivative 0 at x = 0."""
    if p.q == 1 and p > 0:
        n = int(p.p)
        return lo.ew("pow", [a if n % 2 == 0 else abs_of(lo, a)], {"n": n})
    m = abs_of(lo, a)
    pos = lo.compare(">", m, 0)
    return lo.broadcast(lo.select(pos, lo.ew("exp", [lo.mul(lo.ew("log", [_safe(lo, pos, m)]), p)]), 0), a.shape)


def vector_norm(lo, t, ord, axes, keepdim):
    """torch.linalg.vector_norm: ord 2 and p: (sum |x|^p)^(1/p) with 0 and derivative 0 at 0; 1: sum |x| (abs'(0)
    = 0); inf / -inf: max / min of |x| (ties split); 0: the count of nonzero elements (derivative 0)."""
    t = lo.real(t)
    ordv = float(ord)
    if not t.shape:
        axes = ()
    if ordv == math.inf or ordv == -math.inf:
        m = abs_of(lo, t)
        if not axes:
            return m
        return lo.reduce("amax" if ordv > 0 else "amin", m, axes, keepdim, tie="split")
    if ordv == 0:
        nz = lo.as_real(lo.compare("!=", t, 0), t.shape)
        return lo.reduce("sum", nz, axes, keepdim)
    p = exact_q(ord, "norm order")
    if p == 1:
        return lo.reduce("sum", abs_of(lo, t), axes, keepdim)
    if p < 0:
        lo.fail(f"a vector norm of negative order {ord}")
    s = lo.reduce("sum", _powers(lo, t, p), axes, keepdim)
    return _root(lo, s, p)


@op("linalg_vector_norm.default", note="norm backward at 0 is 0 (masked), ties of the inf-norm split evenly")
def _vector_norm(lo, a, ord=2, dim=None, keepdim=False, dtype=None):
    t = lo.real(a)
    return vector_norm(lo, t, ord, _dims(t, dim) if t.shape else (), keepdim)


@op("dist.default", note="the p-norm of a - b (0 and derivative 0 at a = b)")
def _dist(lo, a, b, p=2):
    d = lo.sub(a, b)
    return vector_norm(lo, d, p, tuple(range(len(d.shape))), False)


@op("_cdist_forward.default", note="the p-norm of every difference of rows (0 and derivative 0 at equal rows)")
def _cdist(lo, x1, x2, p, compute_mode=None):
    a, b = lo.real(x1), lo.real(x2)
    nd = len(a.shape)
    # (..., P, M) and (..., R, M) -> (..., P, R, M)
    d = lo.sub(lo.reshape(a, a.shape[:-1] + (1, a.shape[-1])), lo.reshape(b, b.shape[:-2] + (1,) + b.shape[-2:]))
    return vector_norm(lo, d, p, (nd,), False)


@op("_pdist_forward.default", note="the p-norm of the difference of every pair of rows i < j")
def _pdist(lo, x, p=2):
    t = lo.real(x)
    n = t.shape[0]
    i, j = np.triu_indices(n, 1)
    a = lo.index_map(t, lambda pos: pos[i])
    b = lo.index_map(t, lambda pos: pos[j])
    return vector_norm(lo, lo.sub(a, b), p, (1,), False)


# --------------------------------------------------------------------------------------- index ops (constant)

def const_array(lo, v, what):
    if isinstance(v, Cond) and lo.origin.op in ("aten.masked_select.default", "aten.nonzero.default"):
        lo.fail(f"{what} computed from real values: the output's shape depends on real values (a data-dependent "
                "shape), which no program of fixed shapes has")
    if isinstance(v, (Tensor, Cond, NonReal, Unavailable)):
        lo.fail(f"{what} computed from real values: not a real-number function")
    return np.asarray(v.value) if isinstance(v, Const) else v


def move(lo, reals, fn, fill=None):
    """The data movement ``fn`` applied to the real arrays ``reals``: ``fn`` gets one int64 tensor of positions
    per real array (positions numbered across all of them, from 0) and returns an int64 tensor whose every
    element is a position, or -1 for the constant ``fill``.  The result takes each element from where the op
    put it."""
    import torch
    reals = [lo.real(r) for r in reals]
    pos, off = [], 0
    for r in reals:
        n = math.prod(r.shape)
        pos.append(torch.arange(off, off + n, dtype=torch.int64).reshape(r.shape))
        off += n
    out = fn(*pos).numpy()
    flat = [lo.reshape(r, (math.prod(r.shape),)) for r in reals]
    if (out < 0).any():
        if fill is None:
            lo.fail("internal error: a moved element comes from nowhere")
        flat.append(lo.broadcast(lo.real(fill, "fill value"), (1,)))
    src = flat[0] if len(flat) == 1 else lo.concat(flat, 0)
    return lo.take(src, np.where(out < 0, off, out), "move")


def linear_map(lo, reals, fn):
    """The linear map ``fn`` (of float64 tensors shaped like ``reals``, with constant indices) applied to
    ``reals``: its matrix is read column by column from its values on the unit vectors (exact: sums and copies
    give integer coefficients), and the result is a product with that constant matrix."""
    import torch
    reals = [lo.real(r) for r in reals]
    zeros = [torch.zeros(r.shape, dtype=torch.float64) for r in reals]
    out_shape = tuple(fn(*zeros).shape)
    m = math.prod(out_shape)
    total = None
    for k, r in enumerate(reals):
        n = math.prod(r.shape)
        cols = np.zeros((m, n))
        for i in range(n):
            ins = [z.clone() for z in zeros]
            ins[k].view(-1)[i] = 1.0
            cols[:, i] = fn(*ins).reshape(-1).numpy()
        if not cols.any():
            continue
        mat = lo.constant(cols, f"map.{lo.hint or 'index'}", fold=False)
        part = lo.dot(mat, lo.reshape(r, (n,)), (1,), (0,))
        total = part if total is None else lo.add(total, part)
    if total is None:
        return Tensor(lo.lit(0).atom, out_shape)
    return lo.reshape(total, out_shape)


def _idx(lo, i, what="index"):
    import torch
    return torch.from_numpy(np.asarray(const_array(lo, i, what)))


def _no_duplicates(lo, targets, what):
    t = np.asarray(targets).ravel()
    if len(set(t.tolist())) != len(t):
        lo.fail(f"{what} writes one element twice: torch keeps one of them by an unspecified rule")


@op("embedding.default", note="a gather of rows; padding_idx only changes the backward (that row gets no gradient)")
def _embedding(lo, weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    import torch
    idx = _idx(lo, indices, "embedding indices")
    if scale_grad_by_freq:
        lo.fail("embedding with scale_grad_by_freq=True: its backward is not the derivative of its forward")
    if padding_idx is not None and padding_idx >= 0 and bool((idx == padding_idx).any()):
        lo.fail("embedding reads its padding_idx row, whose gradient torch leaves at 0 (a stop-gradient)")
    return lo.index_map(lo.real(weight), lambda pos: torch.embedding(pos, idx))


@op("take.default")
def _take(lo, a, index):
    import torch
    return lo.index_map(lo.real(a), lambda pos: torch.take(pos, _idx(lo, index)))


@op("as_strided.default", "as_strided_copy.default")
def _as_strided(lo, a, size, stride, storage_offset=None):
    import torch
    return lo.index_map(lo.real(a), lambda pos: torch.as_strided(pos.contiguous(), size, stride, storage_offset))


@op("diagonal.default", "diagonal_copy.default")
def _diagonal(lo, a, offset=0, dim1=0, dim2=1):
    import torch
    return lo.index_map(lo.real(a), lambda pos: torch.diagonal(pos, offset, dim1, dim2).contiguous())


@op("unfold.default", "unfold_copy.default")
def _unfold(lo, a, dimension, size, step):
    return lo.index_map(lo.real(a), lambda pos: pos.unfold(dimension, size, step).contiguous())


@op("masked_select.default", note="with a mask known at import time: a gather")
def _masked_select(lo, a, mask):
    import torch
    m = _idx(lo, mask, "the mask of masked_select")
    return move(lo, [a], lambda p: torch.masked_select(p, m))


def _scatter_like(fn_name):
    """Ops that write src into a copy of self at constant places: positions (no element written twice)."""
    def handler(lo, self_, *args, **kw):
        import torch
        fn = getattr(torch.ops.aten, fn_name)
        x = lo.real(self_)
        if any(isinstance(v, (Cond, Unavailable, NonReal)) for v in args):
            lo.fail(f"{fn_name} with a mask or indices computed from real values: not a real-number function")
        src_pos = [i for i, v in enumerate(args) if isinstance(v, Tensor)]
        reals = [x] + [args[i] for i in src_pos]

        def run(px, *ps):
            a = list(args)
            for i, p in zip(src_pos, ps):
                a[i] = p
            a = [_idx(lo, v) if isinstance(v, Const) else v for v in a]
            return fn(px, *a, **kw)
        return move(lo, reals, run)
    return handler


for _n, _f in (("slice_scatter.default", "slice_scatter"), ("select_scatter.default", "select_scatter"),
               ("diagonal_scatter.default", "diagonal_scatter"), ("as_strided_scatter.default", "as_strided_scatter"),
               ("index_copy.default", "index_copy"), ("masked_scatter.default", "masked_scatter")):
    op(_n)(_scatter_like(_f))


@op("scatter.src", note="with constant indices: each output element is a copy (an index written twice is refused)")
def _scatter_src(lo, a, dim, index, src):
    import torch
    idx = _idx(lo, index)
    _check_scatter_duplicates(lo, a, dim, idx)
    return move(lo, [a, src], lambda px, ps: torch.scatter(px, dim, idx, ps[tuple(slice(0, s) for s in idx.shape)]))


def _check_scatter_duplicates(lo, a, dim, idx):
    import torch
    counts = torch.zeros(lo.real(a).shape, dtype=torch.int64).scatter_add(dim, idx, torch.ones_like(idx))
    if bool((counts > 1).any()):
        lo.fail("scatter writes one element twice: torch keeps one of them by an unspecified rule")


@op("scatter.value", note="with constant indices: the value at the scattered places")
def _scatter_value(lo, a, dim, index, value):
    import torch
    idx = _idx(lo, index)
    return move(lo, [a], lambda px: torch.scatter(px, dim, idx, -1), fill=value)


@op("index_fill.int_Scalar", "index_fill.int_Tensor")
def _index_fill(lo, a, dim, index, value):
    import torch
    idx = _idx(lo, index)
    return move(lo, [a], lambda px: torch.index_fill(px, dim, idx, -1), fill=value)


@op("scatter_add.default", note="linear (sums) with constant indices")
def _scatter_add(lo, a, dim, index, src):
    import torch
    idx = _idx(lo, index)
    return linear_map(lo, [a, src], lambda x, s: torch.scatter_add(x, dim, idx, s))


@op("index_add.default", note="linear (sums) with constant indices")
def _index_add(lo, a, dim, index, source, alpha=1):
    import torch
    idx = _idx(lo, index)
    return linear_map(lo, [a, source], lambda x, s: torch.index_add(x, dim, idx, s, alpha=alpha))


@op("index_put.default", note="with constant indices: copies (accumulate=False, an element written twice is "
                              "refused) or sums (accumulate=True)")
def _index_put(lo, a, indices, values, accumulate=False):
    import torch
    idx = [None if i is None else _idx(lo, i) for i in indices]
    x = lo.real(a)
    if accumulate:
        return linear_map(lo, [x, values], lambda u, v: torch.ops.aten.index_put.default(u, idx, v, True))
    counts = torch.ops.aten.index_put.default(torch.zeros(x.shape, dtype=torch.int64), idx,
                                              torch.ones((), dtype=torch.int64), True)
    if bool((counts > 1).any()):
        lo.fail("index_put writes one element twice: torch keeps one of them by an unspecified rule")
    v = lo.real(values)
    return move(lo, [x, v], lambda px, pv: torch.ops.aten.index_put.default(px, idx, pv))


@op("put.default", note="with constant indices: copies (an element written twice is refused) or sums")
def _put(lo, a, index, source, accumulate=False):
    import torch
    idx = _idx(lo, index)
    x = lo.real(a)
    if accumulate:
        return linear_map(lo, [x, source], lambda u, v: torch.put(u, idx, v, True))
    _no_duplicates(lo, (idx % max(1, math.prod(x.shape))).numpy(), "put")
    return move(lo, [x, source], lambda px, pv: torch.put(px, idx, pv))


def _group_windows(lo, x_shape, src_shape, fn_sum, include_self):
    """Windows (flat indices into concat(self, src)) of a scatter/index reduction: every output element with
    the src elements the op sends to it, read from the op's own sum version on the unit vectors."""
    import torch
    n_x, n_s = math.prod(x_shape), math.prod(src_shape)
    members = [[i] if include_self else [] for i in range(n_x)]
    zx = torch.zeros(x_shape, dtype=torch.float64)
    for j in range(n_s):
        e = torch.zeros(n_s, dtype=torch.float64)
        e[j] = 1.0
        out = fn_sum(zx, e.reshape(src_shape)).reshape(-1)
        for i in torch.nonzero(out).reshape(-1).tolist():
            members[i].append(n_x + j)
    k = max(1, max(len(m) for m in members))
    return np.array([m + [-1] * (k - len(m)) for m in members], dtype=np.int64), members


def _reduce_into(lo, a, src, fn_sum, reduce, include_self, what):
    x, s = lo.real(a), lo.real(src)
    windows, members = _group_windows(lo, x.shape, s.shape, fn_sum, include_self)
    flat = lo.concat([lo.reshape(x, (math.prod(x.shape),)), lo.reshape(s, (math.prod(s.shape),))], 0)
    empty = [i for i, m in enumerate(members) if not m]
    if empty:       # no self and nothing scattered: torch keeps self there
        for i in empty:
            windows[i, 0] = i
    windows = windows.reshape(tuple(x.shape) + (windows.shape[-1],))
    if reduce in ("sum", "mean"):
        counts = (windows >= 0).sum(axis=-1)
        out = window_mean(lo, flat, windows, counts if reduce == "mean" else np.ones_like(counts))
    elif reduce in ("amax", "amin"):
        out = window_reduce(lo, flat, windows, "window_max" if reduce == "amax" else "window_min", "split")
    elif reduce == "prod":
        n = math.prod(flat.shape)
        ones = lo.pad(flat, [0], [1], value=1)
        g = lo.take(ones, np.where(windows >= 0, windows, n), "window")
        out = product_of(lo, _slices(lo, g, len(g.shape) - 1))
        out = lo.reshape(out, tuple(x.shape))
    else:
        lo.fail(f"{what} with reduce={reduce!r}")
    return out


@op("scatter_reduce.two", note="with constant indices: sums, means (exact counts), products, or amax / amin whose "
                               "backward shares the gradient evenly among tied elements (tie=split)")
def _scatter_reduce(lo, a, dim, index, src, reduce, include_self=True):
    import torch
    idx = _idx(lo, index)
    return _reduce_into(lo, a, src, lambda x, s: torch.scatter_add(x, dim, idx, s), reduce, include_self,
                        "scatter_reduce")


@op("index_reduce.default", note="with constant indices: means (exact counts), products, or amax / amin (ties "
                                 "split, as scatter_reduce)")
def _index_reduce(lo, a, dim, index, source, reduce, include_self=True):
    import torch
    idx = _idx(lo, index)
    return _reduce_into(lo, a, source, lambda x, s: torch.index_add(x, dim, idx, s), reduce, include_self,
                        "index_reduce")


@op("_embedding_bag_forward_only.default", "_embedding_bag.default",
    note="bags of gathered rows: sums and means are linear; max bags through window_max (tie=first)")
def _embedding_bag(lo, weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False,
                   per_sample_weights=None, include_last_offset=False, padding_idx=-1):
    w = lo.real(weight)
    idx, off = _idx(lo, indices), _idx(lo, offsets)
    if per_sample_weights is not None:
        if mode != 0:
            lo.fail("embedding_bag with per_sample_weights and a mode other than sum")
        return _weighted_bags(lo, w, idx, off, per_sample_weights, include_last_offset)
    if padding_idx is not None and padding_idx >= 0 and bool((idx == padding_idx).any()):
        lo.fail("embedding_bag reads its padding_idx row, which torch leaves out of bags and gradients")
    bounds = off.tolist() + ([] if include_last_offset else [idx.numel()])
    rows = [idx[bounds[b]:bounds[b + 1]].tolist() for b in range(len(bounds) - 1)]
    D = w.shape[1]
    k = max(1, max((len(r) for r in rows), default=1))
    win = np.full((len(rows), D, k), -1, dtype=np.int64)
    for b, r in enumerate(rows):
        for j, i in enumerate(r):
            win[b, :, j] = i * D + np.arange(D)
    rest = tuple(Unavailable("embedding_bag's offsets and counts are integers") for _ in range(3))
    if mode == 2:
        return (window_reduce(lo, w, win, "window_max", "first"),) + rest
    counts = np.array([[max(1, len(r))] * D for r in rows], dtype=np.int64).reshape(len(rows), D)
    out = window_mean(lo, w, win, counts if mode == 1 else np.ones_like(counts))
    return (out,) + rest


def _weighted_bags(lo, w, idx, off, psw, include_last_offset):
    """Bags of rows weighted by per_sample_weights (a real array): the gathered rows times the weights, summed
    per bag."""
    D = w.shape[1]
    rows = lo.index_map(w, lambda pos: pos[idx])                                  # (n, D)
    g = lo.mul(rows, lo.reshape(lo.real(psw), (idx.numel(), 1)))
    bounds = off.tolist() + ([] if include_last_offset else [idx.numel()])
    sizes = [bounds[b + 1] - bounds[b] for b in range(len(bounds) - 1)]
    k = max(1, max(sizes, default=1))
    win = np.full((len(sizes), D, k), -1, dtype=np.int64)
    for b in range(len(sizes)):
        for j in range(sizes[b]):
            win[b, :, j] = (bounds[b] + j) * D + np.arange(D)
    out = window_mean(lo, g, win, np.ones((len(sizes), D), dtype=np.int64))
    return (out,) + tuple(Unavailable("embedding_bag's offsets and counts are integers") for _ in range(3))


@op("segment_reduce.default", note="segments of constant lengths; the initial value (when given) joins every "
                                   "segment's sum, product or extremum (the mean divides by the data count); max / "
                                   "min backward shares a tie among the data evenly and gives the initial value "
                                   "nothing, measured")
def _segment_reduce(lo, data, reduce, lengths=None, indices=None, offsets=None, axis=0, unsafe=False, initial=None):
    x = lo.real(data)
    if axis != 0 or indices is not None:
        lo.fail("segment_reduce along an axis other than 0, or with indices")
    if lengths is not None:
        ln = np.asarray(const_array(lo, lengths, "segment lengths")).reshape(-1)
        starts = np.concatenate([[0], np.cumsum(ln)[:-1]]).astype(np.int64)
    else:
        off = np.asarray(const_array(lo, offsets, "segment offsets")).reshape(-1)
        starts, ln = off[:-1], np.diff(off)
    rest = tuple(x.shape[1:])
    width = math.prod(rest)
    k = max(int(ln.max(initial=0)), 1)
    win = np.full((len(ln), width, k), -1, dtype=np.int64)
    for s_, (a_, m) in enumerate(zip(starts.tolist(), ln.tolist())):
        for j in range(m):
            win[s_, :, j] = (a_ + j) * width + np.arange(width)
    win = win.reshape((len(ln),) + rest + (k,))
    counts = (win >= 0).sum(axis=-1)
    empty = counts == 0
    if empty.any() and initial is None:
        lo.fail("segment_reduce with an empty segment and no initial value")
    init = None if initial is None else lo.real(initial, "initial value")
    if reduce in ("sum", "mean"):
        out = window_mean(lo, x, win, np.ones_like(counts))
        if init is not None:
            out = lo.add(out, init)
        if reduce == "mean":
            out = window_mean(lo, lo.reshape(out, (math.prod(out.shape),)),
                              np.arange(math.prod(out.shape)).reshape(out.shape + (1,)), np.maximum(counts, 1))
        return out
    if reduce == "prod":
        ones = lo.pad(lo.reshape(x, (math.prod(x.shape),)), [0], [1], value=1)
        g = lo.take(ones, np.where(win >= 0, win, math.prod(x.shape)), "window")
        out = lo.reshape(product_of(lo, _slices(lo, g, len(g.shape) - 1)), win.shape[:-1])
        return out if init is None else lo.mul(out, init)
    if reduce not in ("max", "min"):
        lo.fail(f"segment_reduce with reduce={reduce!r}")
    n = math.prod(x.shape)
    flat = lo.reshape(x, (n,))
    if empty.any():        # an empty segment reads the initial value (appended after the data)
        flat = lo.concat([flat, lo.broadcast(init, (1,))], 0)
        win = np.where(empty[..., None] & (np.arange(k) == 0), n, win)
    out = window_reduce(lo, flat, win, "window_max" if reduce == "max" else "window_min", "split")
    return out if init is None else lo.ew(reduce, [out, init], {"tie": "first"})


@op("_trilinear.default", note="a sum of products (smooth)")
def _trilinear(lo, i1, i2, i3, expand1, expand2, expand3, sumdim, unroll_dim=1):
    ts = []
    for t, ex in ((i1, expand1), (i2, expand2), (i3, expand3)):
        t = lo.real(t)
        shape = list(t.shape)
        for d in sorted(ex):
            shape.insert(d, 1)
        ts.append(lo.reshape(t, shape))
    out = lo.mul(lo.mul(ts[0], ts[1]), ts[2])
    return lo.reduce("sum", out, tuple(sumdim)) if sumdim else out


# ------------------------------------------------------------------------------------------------ resampling

def _resample(name):
    def handler(lo, a, *args, **kw):
        import torch
        base, overload = name.split(".")
        fn = getattr(getattr(torch.ops.aten, base), overload)
        return linear_map(lo, [a], lambda x: fn(x, *args, **kw))
    return handler


for _n in ("upsample_bilinear2d.vec", "_upsample_bilinear2d_aa.default", "_upsample_bicubic2d_aa.default"):
    op(_n, note="linear with constant coefficients: the kernel's own float weights (computed from the shapes), "
                "read from its values on the unit vectors")(_resample(_n))


# ----------------------------------------------------------------------------------------------- convolution

def _patch_index(in_shape, kernel, stride, padding, dilation):
    """(int array (N * prod(out), C * prod(k)) of flat indices into x, -1 in the padding; the output spatial
    shape) of a convolution's patches."""
    N, C, *L = in_shape
    nd = len(L)
    outs = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in zip(L, kernel, stride, padding, dilation)]
    if any(o <= 0 for o in outs):
        return None, outs
    spatial = np.zeros(tuple(outs) + tuple(kernel), dtype=np.int64)
    valid = np.ones(tuple(outs) + tuple(kernel), dtype=bool)
    for i in range(nd):
        pos = np.arange(outs[i])[:, None] * stride[i] - padding[i] + np.arange(kernel[i])[None, :] * dilation[i]
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = outs[i], kernel[i]
        pos = pos.reshape(shape)
        valid = valid & (pos >= 0) & (pos < L[i])
        spatial = spatial + pos * math.prod(L[i + 1:])
    P = math.prod(L)
    n = np.arange(N).reshape((N,) + (1,) * (2 * nd + 1))
    c = np.arange(C).reshape((1,) + (1,) * nd + (C,) + (1,) * nd)
    sp = spatial.reshape((1,) + tuple(outs) + (1,) + tuple(kernel))
    ok = valid.reshape(sp.shape)
    idx = np.where(ok, (n * C + c) * P + sp, -1)
    return idx.reshape(N * math.prod(outs), C * math.prod(kernel)), outs


def convolution(lo, x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    """Any convolution (1-, 2-, 3-d, transposed) as patches of x (a take with zeros in the padding) times the
    weights: a product with the input's own elements, exact.  A transposed convolution is the convolution of
    the input spread out by the stride (zeros between) and padded by dilation * (k - 1) - padding (plus
    output_padding at the end), with the kernel flipped and its channel axes swapped."""
    x, w = lo.real(x), lo.real(w)
    nd = len(x.shape) - 2
    stride, padding, dilation = _tuple(stride, nd), _tuple(padding, nd), _tuple(dilation, nd)
    g = int(groups)
    if transposed:
        N, C, *L = x.shape
        k = w.shape[2:]
        op_ = _tuple(output_padding, nd)
        q = [d * (kk - 1) - p for kk, d, p in zip(k, dilation, padding)]
        newL = [(n - 1) * s + 1 + 2 * qq + o for n, s, qq, o in zip(L, stride, q, op_)]
        src = np.zeros(tuple(newL), dtype=np.int64)
        ok = np.ones(tuple(newL), dtype=bool)
        for i in range(nd):
            t = np.arange(newL[i]) - q[i]
            good = (t >= 0) & (t % stride[i] == 0) & (t // stride[i] < L[i])
            shape = [1] * nd
            shape[i] = newL[i]
            ok = ok & good.reshape(shape)
            src = src + np.where(good, t // stride[i], 0).reshape(shape) * math.prod(L[i + 1:])
        base = (np.arange(N * C) * math.prod(L)).reshape((N, C) + (1,) * nd)
        idx = np.where(ok[None, None], base + src[None, None], -1)
        n = math.prod(x.shape)
        xs = lo.take(lo.pad(lo.reshape(x, (n,)), [0], [1]), np.where(idx >= 0, idx, n), "spread")
        cin_g, cout_g = w.shape[0] // g, w.shape[1]

        def swap(pos):
            v = pos.reshape((g, cin_g, cout_g) + tuple(k)).transpose(1, 2).reshape((g * cout_g, cin_g) + tuple(k))
            return v.flip(list(range(2, 2 + nd))).contiguous()
        wt = lo.index_map(w, swap)
        return convolution(lo, xs, wt, bias, (1,) * nd, (0,) * nd, dilation, False, None, g)
    N, C, *L = x.shape
    Cout, Cg, *k = w.shape
    idx, outs = _patch_index(tuple(x.shape), k, stride, padding, dilation)
    if idx is None:
        lo.fail(f"the convolution window does not fit the input ({list(L)})")
    n = math.prod(x.shape)
    patches = lo.take(lo.pad(lo.reshape(x, (n,)), [0], [1]), np.where(idx >= 0, idx, n), "patches")
    kk = math.prod(k)
    og = Cout // g
    parts = []
    for gi in range(g):
        pg = patches if g == 1 else lo.slice(patches, (0, gi * Cg * kk), (patches.shape[0], (gi + 1) * Cg * kk))
        wg = lo.reshape(w if g == 1 else lo.slice(w, (gi * og,) + (0,) * (nd + 1), ((gi + 1) * og, Cg) + tuple(k)),
                        (og, Cg * kk))
        parts.append(lo.dot(pg, wg, (1,), (1,)))                    # (N * prod(out), og)
    y = parts[0] if g == 1 else lo.concat(parts, 1)
    y = lo.reshape(y, (N,) + tuple(outs) + (Cout,))
    y = lo.transpose(y, (0, nd + 1) + tuple(range(1, nd + 1)))
    if bias is not None:
        b = lo.real(bias)
        y = lo.add(y, lo.reshape(b, (b.shape[0],) + (1,) * nd))
    return y


# ----------------------------------------------------------------------------------------- memory, copies

EMPTY = "the values of torch.empty are undefined"


@dataclass(frozen=True, eq=False)
class Partial(Unavailable):
    """An array whose elements are defined only where ``defined`` (a numpy bool array of its shape) holds:
    torch.empty, and what copy_ / slice_scatter wrote into it.  ``values`` is a real Tensor of its shape (any
    value where undefined).  Data movement keeps track of both (frameworks/torch.py); any other use is refused
    with ``reason``, as an Unavailable."""
    values: object = None
    defined: object = None


def partial(values, defined):
    """``values`` where every element is defined, else a Partial."""
    defined = np.asarray(defined, dtype=bool)
    if defined.all():
        return values
    return Partial(f"{EMPTY}: an element never written is read here", tuple(values.shape), values, defined)


@op("empty.memory_format", "empty_permuted.default", "empty_strided.default",
    note="uninitialised memory: defined element by element where written (copy_, slice_scatter), refused where read "
         "before")
def _empty(lo, size, *args, **kw):
    shape = tuple(size)
    return partial(Tensor(Lit(fmpq(0)), shape), np.zeros(shape, dtype=bool))


@op("copy.default", note="self takes the values of src (broadcast)")
def _copy(lo, self_, src, non_blocking=False):
    return lo.broadcast(lo.real(src, "copied value"), tuple(self_.shape))


COPIES = {"view_copy.default": "view.default", "permute_copy.default": "permute.default",
          "unbind_copy.int": "unbind.int", "t_copy.default": "t.default", "transpose_copy.int": "transpose.int",
          "expand_copy.default": "expand.default", "squeeze_copy.dims": "squeeze.dims",
          "unsqueeze_copy.default": "unsqueeze.default", "alias_copy.default": "alias.default",
          "select_copy.int": "select.int", "slice_copy.Tensor": "slice.Tensor",
          "split_with_sizes_copy.default": "split_with_sizes.default"}     # *_copy ops: the op's value, copied


@op("narrow_copy.default")
def _narrow(lo, a, dim, start, length):
    t = lo.real(a)
    nd = len(t.shape)
    dim %= nd
    s0, s1 = [0] * nd, list(t.shape)
    start = start % t.shape[dim] if start < 0 else start
    s0[dim], s1[dim] = start, start + length
    return lo.slice(t, s0, s1)


@op("native_group_norm.default")
def _group_norm(lo, a, weight, bias, N, C, HxW, group, eps):
    t = lo.real(a)
    shape = t.shape
    g = lo.reshape(t, (N, group, (C // group) * HxW))
    m = lo.reduce("mean", g, (2,), True)
    d = lo.sub(g, m)
    var = lo.reduce("mean", lo.mul(d, d), (2,), True)
    rstd = lo.div(1, lo.ew("sqrt", [lo.add(var, eps)]))
    y = lo.reshape(lo.mul(d, rstd), shape)
    ch = (1, C) + (1,) * (len(shape) - 2)
    if weight is not None:
        y = lo.mul(y, lo.reshape(lo.real(weight), ch))
    if bias is not None:
        y = lo.add(y, lo.reshape(lo.real(bias), ch))
    # unlike layer and batch norm, torch differentiates the saved mean and rstd of group norm (their grad_fn is
    # NativeGroupNormBackward0), but only jointly: measured, the gradient of one of them alone is dropped (None
    # when the output is unused too), with both it is the derivative.  So they are real outputs, and the
    # importer checks that the loss reaches both or neither (torch.py, ``TorchLowering.joint``)
    m, rstd = lo.reshape(m, (N, group)), lo.reshape(rstd, (N, group))
    lo.joint.append(((m.atom, rstd.atom), lo.origin, "torch's group norm backward uses the gradients of its saved "
                     "mean and rstd only when both are defined (measured: one of them alone is dropped), and "
                     "the loss here is differentiated through one of them only: use both, or compute the "
                     "statistic with differentiable ops (x.mean, x.var)"))
    return y, m, rstd


# ------------------------------------------------------------------------------------- covariance (misc2)
# aten.cov and aten.corrcoef are CompositeImplicitAutograd: torch's autograd differentiates their own C++
# implementation (Correlation.cpp), so their gradient is the derivative of that formula.  torch.export cannot
# trace that implementation (it checks its weights with data-dependent branches: aten.equal on fake tensors),
# so both ops are kept whole (``FAKE`` gives torch.export their output shapes, installed while exporting) and
# lowered here to the same formula with torch's correction / fweights / aweights semantics.

FAKE = {}       # "name.overload" -> a function of fake tensors with the op's output shape (torch.py, export)


def _fake_or_real(name, shape_of):
    """A kernel that gives fake tensors an output of the op's shape, and real tensors (torch.export folding
    constants) the op's own value."""
    def kernel(self, *args, **kwargs):
        import torch
        from torch._subclasses.fake_tensor import is_fake
        if not is_fake(self):
            base, overload = name.split(".")
            return getattr(getattr(torch.ops.aten, base), overload).decompose(self, *args, **kwargs)
        v = shape_of(self)
        return self.new_empty((v, v)).squeeze()
    return kernel


FAKE["cov.default"] = _fake_or_real("cov.default", lambda t: 1 if t.dim() < 2 else t.shape[0])
FAKE["corrcoef.default"] = _fake_or_real("corrcoef.default", lambda t: 1 if t.dim() < 2 else t.shape[0])


def _nonnegative_weights(lo, w, what):
    """Refuse constant weights with a negative entry (torch raises); weights that are program inputs are
    used where they are as torch's check passed at the example point: the program is defined there."""
    if isinstance(w.atom, int):
        return
    if np.asarray(lo.compare("<", w, 0).value).any():
        lo.fail(f"cov(): {what} cannot be negative (torch raises)")


def cov(lo, a, correction=1, fweights=None, aweights=None):
    """torch.cov as Correlation.cpp computes it: w = fweights * aweights (either, or none), the weighted mean
    sum(w x) / sum(w) per variable (row), (x - mean) (w (x - mean))^T over the normalisation sum(w) - correction
    (sum(w) - correction * sum(w aweights) / sum(w) with aweights); torch zeroes a normalisation <= 0, and the
    division by it is then not defined (refused)."""
    x = lo.real(a)
    if len(x.shape) > 2:
        lo.fail("cov(): the input has more than 2 dimensions")
    x2 = x if len(x.shape) == 2 else lo.reshape(x, (1, math.prod(x.shape)))
    v, n = x2.shape
    w = aw = None
    if fweights is not None:
        if not isinstance(fweights, Const):
            lo.fail("cov(): fweights must be integer constants")
        fw = np.asarray(fweights.value).reshape(-1)
        if fw.size != n:
            lo.fail(f"cov(): {fw.size} fweights for {n} observations")
        w = lo.constant(fw.astype(np.int64), f"fweights.{lo.hint or 'cov'}")
        _nonnegative_weights(lo, w, "fweights")
    if aweights is not None:
        aw = lo.reshape(lo.real(aweights, "aweights"), (n,))
        _nonnegative_weights(lo, aw, "aweights")
        w = aw if w is None else lo.mul(w, aw)
    w_sum = lo.lit(n) if w is None else lo.reduce("sum", w, (0,))
    if isinstance(w_sum.atom, Lit) and w_sum.atom.value == 0:
        lo.fail("cov(): weights sum to zero, can't be normalized (torch raises)")
    avg = lo.div(lo.reduce("sum", x2 if w is None else lo.mul(x2, w), (1,), True), w_sum)
    if aw is not None and correction != 0:
        norm = lo.sub(w_sum, lo.div(lo.mul(correction, lo.reduce("sum", lo.mul(w, aw), (0,))), w_sum))
    else:
        norm = lo.sub(w_sum, correction)
    if isinstance(norm.atom, Lit):
        if norm.atom.value <= 0:
            lo.fail(f"cov(): degrees of freedom {norm.atom.value} <= 0: torch divides by zero (inf / nan)")
    else:           # torch's norm_factor.zero_() where it is <= 0: the division is then not defined
        norm = lo.select(lo.compare(">", norm, 0), norm, 0)
    d = lo.sub(x2, avg)
    c = lo.div(lo.dot(d, d if w is None else lo.mul(d, w), (1,), (1,)), norm)
    return lo.reshape(c, ()) if v == 1 else c


@op("cov.default", keep=True, note="Correlation.cpp's formula (smooth); a normalisation <= 0 is not defined")
def _cov(lo, a, correction=1, fweights=None, aweights=None):
    return cov(lo, a, correction, fweights, aweights)


@op("corrcoef.default", keep=True,
    note="cov / (s_i s_j) clipped to [-1, 1] as Correlation.cpp (clip's backward passes at the bounds, as clamp: 1), "
         "written c_ij / sqrt(c_ii c_jj); the diagonal is c_ii / c_ii (the same function, exactly 1); a scalar cov "
         "is c / c")
def _corrcoef(lo, a):
    c = cov(lo, a)
    if not c.shape:
        return lo.div(c, c)
    v = c.shape[0]
    d = lo.take(c, np.arange(v) * (v + 1), "diag")                     # c_ii
    # c_ij / s_i / s_j as c_ij / sqrt(c_ii c_jj): the same function, and at perfect correlation (|r| = 1, a tie
    # at the clip's bound) sqrt of the rational square c_ij^2 is exact, so the tie is decided
    dd = lo.mul(lo.reshape(d, (v, 1)), lo.reshape(d, (1, v)))
    r = lo.div(c, lo.ew("sqrt", [dd]))
    eye = np.eye(v, dtype=bool)
    r = lo.select(Const(eye), lo.div(c, lo.broadcast(lo.reshape(d, (v, 1)), (v, v))), r)
    (o,) = lo.emit("clamp", [lo.full(r)], {"lo": fmpq(-1), "hi": fmpq(1), "at_lo": fmpq(1), "at_hi": fmpq(1)})
    return Tensor(o, (v, v))


# ------------------------------------------------------------------------------------------- grid sampling
# grid_sampler_2d / 3d (nn.functional.grid_sample).  A grid coordinate g in [-1, 1] becomes a pixel coordinate
# i = (g + 1) (size - 1) / 2 (align_corners) or ((g + 1) size - 1) / 2, affine.  Bilinear: the output is
# sum over pixels of x[..., j, i] tent(ix - i) tent(iy - j), tent(t) = max(0, 1 - |t|), which is what the CPU
# kernel computes from the corner floor(ix) and the two weights ix - floor(ix), 1 - (ix - floor(ix)) (pixels
# outside the image weigh nothing: the zeros padding).  Its backward differentiates the weights of the cell
# [floor(ix), floor(ix) + 1]: the right derivative of the tent at its three kinks (measured at integers, at
# the image border and outside it).  The program writes the tent as relu(t + 1) - 2 relu(t) + relu(t - 1)
# with relu's derivative 1 at 0, which is that right derivative at each kink, and contracts the per-axis
# weights with the input (a dot per axis).  Border padding clamps i to [0, size - 1] with derivative 0 at both
# bounds (torch counts the bounds as outside: measured), as relu(i) (derivative 0 at 0) minus relu(. - (size -
# 1)) (derivative 1 at 0); reflection padding reflects i at the edges first (a triangle wave, see
# reflect_coordinate), then clamps the same way.  Nearest reads the pixel round(i) (half to even, torch's
# nearbyint): a step, grid derivative 0.  Bicubic (zeros padding) weighs pixel i by Keys' cubic kernel of
# ix - i (C^1: no convention at its kinks); with border or reflection padding torch pads each tap, refused.

checked_decomposition("grid_sampler")    # grid_sampler_2d / 3d: the same kernels

_GRID_MODES = {0: "bilinear", 1: "nearest", 2: "bicubic"}
_GRID_PADDING = {0: "zeros", 1: "border", 2: "reflection"}


def _relu(lo, t, alpha):
    (o,) = lo.emit("relu", [lo.full(t)], {"alpha": fmpq(alpha)})
    return Tensor(o, tuple(t.shape))


def grid_coordinate(lo, g, size, align_corners, padding):
    """The pixel coordinate (a real Tensor shaped as g) of the normalised grid coordinate g along an axis of
    ``size`` pixels: unnormalised (affine), then clamped to [0, size - 1] for border padding with derivative 0
    at both bounds, as torch's clip_coordinates."""
    if align_corners:
        c = lo.mul(lo.add(g, 1), fmpq(size - 1, 2))
    else:
        c = lo.div(lo.sub(lo.mul(lo.add(g, 1), size), 1), 2)
    if padding == "reflection":
        c = reflect_coordinate(lo, c, size, align_corners)
    if padding in ("border", "reflection"):
        c = _relu(lo, c, 0)
        c = lo.sub(c, _relu(lo, lo.sub(c, size - 1), 1))
    return c


def reflect_coordinate(lo, c, size, align_corners):
    """The pixel coordinate c reflected at the image's edges (the pixel centres 0 and size - 1 with
    align_corners, the edges -1/2 and size - 1/2 without), as torch's reflect_coordinates: a triangle wave
    span - |(|u| mod 2 span) - span| of u = c (+ 1/2), span = size - 1 (size).  Its folds all land on or beyond
    the clamp's bounds, where torch's gradient is 0 whatever the fold's (measured); the mod is written with
    floor (a step: the program is then not continuous as written, though the wave is)."""
    span = size - 1 if align_corners else size
    if span == 0:
        return Tensor(Lit(fmpq(0)), tuple(c.shape))
    u = c if align_corners else lo.add(c, fmpq(1, 2))
    a = abs_of(lo, u)
    e = lo.sub(a, lo.mul(_step("floor")(lo, lo.div(a, 2 * span)), 2 * span))
    r = lo.sub(span, abs_of(lo, lo.sub(e, span)))
    return r if align_corners else lo.sub(r, fmpq(1, 2))


def grid_weights(lo, c, size, mode):
    """(..., size) weights of the pixels 0..size-1 along one axis for the pixel coordinates c (..., 1):
    bilinear, the tent of c - i (its right derivative at each kink); nearest, 1 at round(c) (half to even)."""
    pixels = lo.constant(np.arange(size, dtype=np.int64).reshape((1,) * (len(c.shape) - 1) + (size,)),
                         f"pixels.{lo.hint}", fold=False)
    shape = tuple(c.shape[:-1]) + (size,)
    if mode == "nearest":
        (r,) = lo.emit("round", [lo.full(c)])
        return lo.as_real(lo.compare("==", Tensor(r, tuple(c.shape)), pixels), shape)
    t = lo.sub(lo.broadcast(c, shape), pixels)
    if mode == "bicubic":
        return cubic_weight(lo, t)
    return lo.add(lo.sub(_relu(lo, lo.add(t, 1), 1), lo.mul(_relu(lo, t, 1), 2)), _relu(lo, lo.sub(t, 1), 1))


# the cubic convolution kernel's A of torch's bicubic sampling (a double constant of the kernel)
CUBIC_A = fmpq(-3, 4)


def cubic_weight(lo, t):
    """Keys' cubic convolution kernel W(t) with A = -3/4, torch's bicubic weights: (A + 2)|t|^3 - (A + 3)|t|^2
    + 1 on |t| <= 1, A|t|^3 - 5A|t|^2 + 8A|t| - 4A on 1 < |t| < 2, 0 beyond.  W is C^1 (values and slopes of
    the pieces agree at |t| = 0, 1, 2), so every piece gives the same derivative at a kink: torch's."""
    a = abs_of(lo, t)
    a2 = lo.mul(a, a)
    A = CUBIC_A
    inner = lo.add(lo.mul(lo.sub(lo.mul(a, A + 2), A + 3), a2), 1)
    outer = lo.sub(lo.mul(lo.add(lo.mul(lo.sub(lo.mul(a, A), 5 * A), a), 8 * A), a), 4 * A)
    return lo.select(lo.compare("<=", a, 1), inner, lo.select(lo.compare("<", a, 2), outer, 0))


def grid_sample(lo, x, grid, mode, padding, align_corners):
    """grid_sampler_{2,3}d of x (N, C, *S) at grid (N, *O, nd): (N, C, *O), the sum over pixels of x times the
    product of the per-axis weights (the grid's last axis lists the coordinates from the last spatial axis)."""
    x, g = lo.real(x), lo.real(grid)
    N, C, *S = x.shape
    nd = len(S)
    out = tuple(g.shape[1:-1])
    P = math.prod(out)
    g = lo.reshape(g, (N, P, nd))
    w = [None] * nd
    for a in range(nd):
        axis = nd - 1 - a
        c = grid_coordinate(lo, lo.slice(g, [0, 0, a], [N, P, a + 1]), S[axis], align_corners, padding)
        w[axis] = grid_weights(lo, c, S[axis], mode)                     # (N, P, S[axis])
    z = lo.dot(x, w[nd - 1], (nd + 1,), (2,), (0,), (0,))               # (N, C, S0..S_{nd-2}, P)
    z = lo.dot(z, w[nd - 2], (nd,), (2,), (0, nd + 1), (0, 1))          # (N, P, C, S0..S_{nd-3})
    for axis in range(nd - 3, -1, -1):
        z = lo.dot(z, w[axis], (len(z.shape) - 1,), (2,), (0, 1), (0, 1))
    return lo.reshape(lo.transpose(z, (0, 2, 1)), (N, C) + out)


@op("grid_sampler_2d.default", "grid_sampler_3d.default", keep=True,
    note="bilinear: tent weights with the right derivative at integer coordinates (the cell of floor(i)); "
         "nearest: round half to even; zeros, border or reflection padding (derivative 0 on the border); "
         "bicubic with zeros padding (Keys' kernel, C^1)")
def _grid_sampler(lo, x, grid, interpolation_mode, padding_mode, align_corners):
    mode, padding = _GRID_MODES.get(interpolation_mode), _GRID_PADDING.get(padding_mode)
    if mode is None or padding is None:
        lo.fail(f"grid_sample with interpolation_mode={interpolation_mode!r}, padding_mode={padding_mode!r}")
    if mode == "bicubic" and padding != "zeros":
        # torch pads each of the 4 taps floor(i) - 1 .. floor(i) + 2 separately, pixels chosen by the value of i
        lo.fail(f"grid_sample with mode='bicubic' and padding_mode={padding!r} is not supported: torch clamps or "
                "reflects each of the four taps around floor(i), pixels chosen by the coordinate's value (zeros "
                "padding is)")
    if min(lo.real(x).shape[2:], default=1) == 0 or min(lo.real(grid).shape, default=1) == 0:
        lo.fail("grid_sample of an empty input or grid")
    return grid_sample(lo, x, grid, mode, padding, align_corners)
