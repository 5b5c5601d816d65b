"""Tensor primitives: what networks are made of.

Linear and bilinear (smooth): ``dot`` (lax.dot_general: contraction and batch axes), ``conv2d`` (NCHW input,
OIHW weights), ``sum``, ``mean``, ``avg_pool2d``, and the structural ``reshape``, ``transpose``,
``broadcast_to``, ``slice``, ``pad``, ``concat``, ``take_along`` (gather with constant indices).  Smooth and
nonlinear: ``logsumexp``.  Their rules act on the tensor number systems (numbers/tensor.py).

Nonsmooth: ``amax`` / ``amin`` over axes, ``max_pool2d``, ``sort_axis``, ``kth_axis`` (order statistics:
median, kthvalue) and ``window_max`` / ``window_min`` (max or min over windows given by a constant index
array: pooling of any dimension, padding and ceil mode, adaptive pooling, cumulative max) are arrays of the
paper's scalar elementary selections.  Each has a *site table* (``site_rules``): which scalar primitive every site is
(max, min, sort), with which params, and which input elements are its arguments and which output elements
its values.  Every elementwise nonsmooth primitive (relu, abs, max of arrays, where, ...) has the default
elementwise site table: one site per element of the broadcast shape.  The interpreter evaluates and
differentiates every site by its scalar selection, so a tensor program means, element by element, what its
scalarisation (program/scalarize.py) means.
"""
import functools
import math
from dataclasses import dataclass

import numpy as np
from flint import fmpq

from ...errors import ProgramError
from . import (ARRAY, BOOL, INT, INTS, OPT_INTS, PRIMITIVES, Primitive, broadcast_shapes, eval_rules, jvp_rules,
               register, selection_rules, vjp_rules)
from .nonsmooth import KTH_TIES, SORT_TIES

site_rules = {}


# ----------------------------------------------------------------------------------------------- helpers

def norm_axes(axes, ndim, what="axes"):
    """The axes as indices 0..ndim-1 (negative ones count from the end); ProgramError when one is out of
    range."""
    out = []
    for a in axes:
        b = a + ndim if a < 0 else a
        if not 0 <= b < ndim:
            raise ProgramError(f"axis {a} is out of range for {ndim} dimension(s)")
        out.append(b)
    if len(set(out)) != len(out):
        raise ProgramError(f"{what} {tuple(axes)} repeat an axis")
    return tuple(out)


def reduced_shape(shape, axes, keepdims):
    """The shape of a reduction of ``shape`` over ``axes`` (kept as 1 with ``keepdims``)."""
    return tuple(1 if i in axes else d for i, d in enumerate(shape)) if keepdims else \
        tuple(d for i, d in enumerate(shape) if i not in axes)


def _one(shapes, n=1):
    if len(shapes) != n:
        raise ProgramError(f"takes {n} argument(s), got {len(shapes)}")
    return shapes[0] if n == 1 else shapes


def tensor_prim(name, arity, params=None, shape_rule=None, smooth=True, doc="", n_out=None):
    return register(Primitive(name, (arity, arity) if isinstance(arity, int) else arity, smooth, params or {},
                              doc=doc, shape_rule=shape_rule, tensor=True, n_out=n_out))


def _zero_if_none(ns, t, x):
    return ns.zeros(ns.shape(x)) if t is None else t


def unbroadcast(ns, ct, shape):
    """Sum a cotangent of a broadcast value back to ``shape`` (numpy broadcasting, reversed)."""
    cs = ns.shape(ct)
    if tuple(cs) == tuple(shape):
        return ct
    lead = len(cs) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape) if d == 1 and cs[lead + i] != 1)
    out = ns.sum(ct, axes, keepdims=False) if axes else ct
    return ns.reshape(out, shape)


# -------------------------------------------------------------------------------------------------- dot

def _dot_shape(shapes, p):
    a, b = _one(shapes, 2)
    ca, cb = norm_axes(p["ca"], len(a), "ca"), norm_axes(p["cb"], len(b), "cb")
    ba, bb = norm_axes(p["ba"], len(a), "ba"), norm_axes(p["bb"], len(b), "bb")
    if len(ca) != len(cb) or len(ba) != len(bb):
        raise ProgramError("dot needs as many contraction (batch) axes on both sides")
    if set(ca) & set(ba) or set(cb) & set(bb):
        raise ProgramError("an axis of dot cannot be both contracted and batched")
    for i, j in zip(ca + ba, cb + bb):
        if a[i] != b[j]:
            raise ProgramError(f"dot pairs axis {i} of size {a[i]} with axis {j} of size {b[j]}")
    fa = [i for i in range(len(a)) if i not in ca + ba]
    fb = [j for j in range(len(b)) if j not in cb + bb]
    return [tuple(a[i] for i in ba) + tuple(a[i] for i in fa) + tuple(b[j] for j in fb)]


def dot_plan(sa, sb, p):
    """How dot_general of shapes ``sa`` and ``sb`` (params ``p``: contracting ca/cb, batch ba/bb) becomes a
    batched matmul: (axis order of a, axis order of b, (B, M, K), (B, K, N), output shape)."""
    ca, cb = norm_axes(p["ca"], len(sa)), norm_axes(p["cb"], len(sb))
    ba, bb = norm_axes(p["ba"], len(sa)), norm_axes(p["bb"], len(sb))
    fa = tuple(i for i in range(len(sa)) if i not in ca + ba)
    fb = tuple(j for j in range(len(sb)) if j not in cb + bb)
    B = math.prod(sa[i] for i in ba)
    M = math.prod(sa[i] for i in fa)
    K = math.prod(sa[i] for i in ca)
    N = math.prod(sb[j] for j in fb)
    return ba + fa + ca, bb + cb + fb, (B, M, K), (B, K, N), \
        tuple(sa[i] for i in ba) + tuple(sa[i] for i in fa) + tuple(sb[j] for j in fb)


def _bmm(ns, a3, b3):
    """Batched product of (B, M, K) and (B, K, N) values."""
    B = ns.shape(a3)[0]
    if B == 0:                      # an empty batch (torch's (0, n, n) samples): nothing to multiply
        return ns.zeros((0,) + tuple(ns.shape(a3)[1:2]) + tuple(ns.shape(b3)[2:]))
    if B == 1:
        return ns.reshape(ns.matmul(ns.struct(a3, lambda x: x[0]), ns.struct(b3, lambda x: x[0])),
                          (1,) + tuple(ns.shape(a3)[1:2]) + tuple(ns.shape(b3)[2:]))
    parts = [ns.matmul(ns.struct(a3, lambda x, i=i: x[i]), ns.struct(b3, lambda x, i=i: x[i])) for i in range(B)]
    M, N = ns.shape(a3)[1], ns.shape(b3)[2]
    return ns.reshape(ns.concat_flat(parts), (B, M, N))


def dot_eval(ns, p, a, b):
    sa, sb = ns.shape(a), ns.shape(b)
    pa, pb, s3a, s3b, out = dot_plan(sa, sb, p)
    a3 = ns.reshape(ns.transpose(a, pa), s3a)
    b3 = ns.reshape(ns.transpose(b, pb), s3b)
    return ns.reshape(_bmm(ns, a3, b3), out)


def _dot_vjp(ns, p, xs, y, ct, needs=(True, True)):
    a, b = xs
    sa, sb = ns.shape(a), ns.shape(b)
    pa, pb, s3a, s3b, out = dot_plan(sa, sb, p)
    B, M, K = s3a
    N = s3b[2]
    a3 = ns.reshape(ns.transpose(a, pa), s3a)
    b3 = ns.reshape(ns.transpose(b, pb), s3b)
    c3 = ns.reshape(ct, (B, M, N))
    ca = cb = None
    if needs[0]:
        ca3 = _bmm(ns, c3, ns.transpose(b3, (0, 2, 1)))        # (B, M, K)
        ca = ns.transpose(ns.reshape(ca3, tuple(sa[i] for i in pa)), tuple(np.argsort(pa)))
    if needs[1]:
        cb3 = _bmm(ns, ns.transpose(a3, (0, 2, 1)), c3)        # (B, K, N)
        cb = ns.transpose(ns.reshape(cb3, tuple(sb[j] for j in pb)), tuple(np.argsort(pb)))
    return ca, cb


def _bilinear_jvp(fn):
    def jvp(ns, p, xs, y, ts):
        a, b = xs
        out = None
        if ts[0] is not None:
            out = fn(ns, p, ts[0], b)
        if ts[1] is not None:
            t = fn(ns, p, a, ts[1])
            out = t if out is None else ns.add(out, t)
        return out
    return jvp


_DOT_PARAMS = {"ca": ((1,), INTS), "cb": ((0,), INTS), "ba": ((), INTS), "bb": ((), INTS)}
tensor_prim("dot", 2, _DOT_PARAMS, _dot_shape,
            doc="dot(a, b, ca=, cb=, ba=, bb=): contract axes ca of a with cb of b, batch ba with bb (lax.dot_general)")
eval_rules["dot"] = dot_eval
jvp_rules["dot"] = _bilinear_jvp(dot_eval)
vjp_rules["dot"] = _dot_vjp
SELECTIVE_VJP = {"dot", "conv2d"}        # their vjp rules take needs=(bool, bool): skip unneeded products


# ----------------------------------------------------------------------------------------------- conv2d

def conv_pads(p):
    """The padding of conv / pool params as (top, bottom, left, right)."""
    pad = p["padding"]
    if len(pad) == 2:
        return pad[0], pad[0], pad[1], pad[1]
    if len(pad) == 4:
        return pad
    raise ProgramError("padding must be (ph, pw) or (top, bottom, left, right)")


def _conv_out(H, W, kh, kw, p):
    (sh, sw), (dh, dw) = p["stride"], p["dilation"]
    t, b, left, r = conv_pads(p)
    Ho = (H + t + b - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + left + r - dw * (kw - 1) - 1) // sw + 1
    if Ho <= 0 or Wo <= 0:
        raise ProgramError(f"the window does not fit the input ({H}x{W})")
    return Ho, Wo


def _check_2(p, *names):
    for k in names:
        if len(p[k]) != 2 or any(v <= 0 for v in p[k]):
            raise ProgramError(f"{k} must be two positive ints")
    if any(v < 0 for v in conv_pads(p)):
        raise ProgramError("padding must be non-negative")


def _conv_shape(shapes, p):
    x, w = _one(shapes, 2)
    if len(x) != 4 or len(w) != 4:
        raise ProgramError("conv2d takes an NCHW input and OIHW weights")
    _check_2(p, "stride", "dilation")
    g = p["groups"]
    if g <= 0 or x[1] != w[1] * g or w[0] % g:
        raise ProgramError(f"conv2d: {x[1]} input channels do not fit weights {list(w)} with groups={g}")
    Ho, Wo = _conv_out(x[2], x[3], w[2], w[3], p)
    return [(x[0], w[0], Ho, Wo)]


@functools.lru_cache(maxsize=64)
def conv_patches(xshape, kh, kw, stride, dilation, pads, ordered=True):
    """int array (N*Ho*Wo, C*kh*kw): the flat input index of every window element (-1 in the padding); int32
    when the input has fewer than 2**31 elements."""
    N, C, H, W = xshape
    (sh, sw), (dh, dw) = stride, dilation
    t, b, left, r = pads
    Ho = (H + t + b - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + left + r - dw * (kw - 1) - 1) // sw + 1
    hi = (np.arange(Ho) * sh - t)[:, None] + np.arange(kh)[None, :] * dh        # (Ho, kh)
    wi = (np.arange(Wo) * sw - left)[:, None] + np.arange(kw)[None, :] * dw     # (Wo, kw)
    n, c = np.arange(N), np.arange(C)
    H_ = hi[None, None, :, None, :, None]                                        # N C Ho Wo kh kw
    W_ = wi[None, None, None, :, None, :]
    idx = ((n[:, None, None, None, None, None] * C + c[None, :, None, None, None, None]) * H + H_) * W + W_
    valid = (H_ >= 0) & (H_ < H) & (W_ >= 0) & (W_ < W)
    # int32 when every index fits (half the memory of the cached table: a layer's patches)
    idx = np.where(valid, idx, -1).astype(np.int32 if N * C * H * W < 2 ** 31 else np.int64)
    # rows (n, ho, wo), columns (c, kh, kw)
    return idx.transpose(0, 2, 3, 1, 4, 5).reshape(N * Ho * Wo, C * kh * kw), (Ho, Wo)


def _conv_parts(ns, p, x, w):
    N, C, H, W = ns.shape(x)
    Co, Cg, kh, kw = ns.shape(w)
    g = p["groups"]
    idx, (Ho, Wo) = conv_patches((N, C, H, W), kh, kw, tuple(p["stride"]), tuple(p["dilation"]), conv_pads(p))
    return N, C, Co, Cg, kh, kw, g, idx, Ho, Wo


def windowed(ns, p):
    """Does the number system build a convolution's window matrices by strided copies (``ns.windows`` and
    ``ns.place_windows``: the float filter), for these params (one group)?  Else the rules gather by index."""
    return p["groups"] == 1 and hasattr(ns, "windows")


def _window_params(ns, p, x, w):
    """(N, C, Co, kh, kw, Ho, Wo, the window arguments of ``ns.windows`` after x)."""
    N, C, H, W = ns.shape(x)
    Co, _, kh, kw = ns.shape(w)
    Ho, Wo = _conv_out(H, W, kh, kw, p)
    return N, C, Co, kh, kw, Ho, Wo, (kh, kw, tuple(p["stride"]), tuple(p["dilation"]), conv_pads(p))


def _weights_ijc(ns, w):
    """The (O, kh*kw*C) matrix of OIHW weights with columns (i, j, c), the column order of ``ns.windows``."""
    Co, Cg, kh, kw = ns.shape(w)
    return ns.reshape(ns.transpose(w, (0, 2, 3, 1)), (Co, kh * kw * Cg))


def _conv_windowed(ns, p, x, w):
    """conv_eval by one product of the window matrix (columns (i, j, c)) and the weights in that order: the
    same dot products as the gathered patches, their terms in another order."""
    N, C, Co, kh, kw, Ho, Wo, wargs = _window_params(ns, p, x, w)
    Y = ns.matmul(ns.windows(x, *wargs), ns.transpose(_weights_ijc(ns, w), (1, 0)))       # (N*Ho*Wo, Co)
    return ns.transpose(ns.reshape(Y, (N, Ho, Wo, Co)), (0, 3, 1, 2))


def _conv_vjp_windowed(ns, p, x, w, ct, needs):
    """_conv_vjp for ``windowed`` number systems: the weights' cotangent from the window matrix, the input's
    by placing the window-shaped cotangent (``ns.place_windows``) a few images at a time.  ``ns.matmul`` of a
    matrix and a stack of matrices is numpy's batched product, every output entry one dot product of length O."""
    N, C, Co, kh, kw, Ho, Wo, wargs = _window_params(ns, p, x, w)
    CT = ns.reshape(ns.transpose(ct, (0, 2, 3, 1)), (N * Ho * Wo, Co))
    cw = None
    if needs[1]:
        cW = ns.matmul(ns.transpose(CT, (1, 0)), ns.windows(x, *wargs))              # (Co, kh*kw*C)
        cw = ns.transpose(ns.reshape(cW, (Co, kh, kw, C)), (0, 3, 1, 2))
    if not needs[0]:
        return None, cw
    # the weights as kh*kw blocks (O, C): one batched product gives the cotangent of the window matrix laid out
    # by window element, so that placing each block adds contiguous rows
    Wb = ns.reshape(ns.transpose(w, (2, 3, 0, 1)), (kh * kw, Co, C))
    H, W = ns.shape(x)[2:]
    per = max(1, WINDOW_CHUNK // max(1, Ho * Wo * C * kh * kw))
    parts = []
    for n0 in range(0, N, per):
        n1 = min(N, n0 + per)
        cP = ns.matmul(ns.struct(CT, lambda a: a[n0 * Ho * Wo:n1 * Ho * Wo]), Wb)       # (kh*kw, rows, C)
        parts.append(ns.place_windows(cP, (n1 - n0, C, H, W), *wargs))
        del cP
    cx = ns.reshape(parts[0] if len(parts) == 1 else ns.concat_flat(parts), ns.shape(x))
    return cx, cw


def conv_eval(ns, p, x, w):
    if windowed(ns, p):
        return _conv_windowed(ns, p, x, w)
    N, C, Co, Cg, kh, kw, g, idx, Ho, Wo = _conv_parts(ns, p, x, w)
    P = ns.take(x, idx)                                            # (N*Ho*Wo, C*kh*kw)
    Og, kk = Co // g, Cg * kh * kw
    ys = []
    for gi in range(g):
        Pg = ns.struct(P, lambda a, gi=gi: a[:, gi * kk:(gi + 1) * kk]) if g > 1 else P
        Wg = ns.reshape(ns.struct(w, lambda a, gi=gi: a[gi * Og:(gi + 1) * Og]), (Og, kk))
        ys.append(ns.matmul(Pg, ns.transpose(Wg, (1, 0))))         # (N*Ho*Wo, Og)
    if g == 1:
        Y = ys[0]
    else:
        Y = ns.reshape(ns.concat_flat([ns.transpose(y, (1, 0)) for y in ys]), (Co, N * Ho * Wo))
        Y = ns.transpose(Y, (1, 0))
    return ns.transpose(ns.reshape(Y, (N, Ho, Wo, Co)), (0, 3, 1, 2))


# images per chunk of a convolution's input cotangent: its patch-sized intermediate (one row per output
# position, one column per window element) is built for this many images at a time, about 2**21 elements
CONV_CHUNK = 1 << 21
# the same for number systems with window matrices (the float filter): about 2**18 elements, so that the several
# elementwise passes over each chunk of the window-shaped cotangent (its bounds, then its placement) stay in cache
WINDOW_CHUNK = 1 << 18


def _conv_vjp(ns, p, xs, y, ct, needs=(True, True)):
    x, w = xs
    if windowed(ns, p):
        return _conv_vjp_windowed(ns, p, x, w, ct, needs)
    N, C, Co, Cg, kh, kw, g, idx, Ho, Wo = _conv_parts(ns, p, x, w)
    Og, kk = Co // g, Cg * kh * kw
    CT = ns.reshape(ns.transpose(ct, (0, 2, 3, 1)), (N * Ho * Wo, Co))
    cw = None
    if needs[1]:
        P = ns.take(x, idx)
        cW_parts = []
        for gi in range(g):
            Cg_ = ns.struct(CT, lambda a, gi=gi: a[:, gi * Og:(gi + 1) * Og]) if g > 1 else CT
            Pg = ns.struct(P, lambda a, gi=gi: a[:, gi * kk:(gi + 1) * kk]) if g > 1 else P
            cW_parts.append(ns.matmul(ns.transpose(Cg_, (1, 0)), Pg))      # (Og, kk)
        del P
        cw = ns.reshape(ns.concat_flat(cW_parts), ns.shape(w))
    if not needs[0]:
        return None, cw
    # the input cotangent image by image (images never share an input element): the patch-sized cotangent of
    # a few images at a time, scattered into their input elements
    H, W = ns.shape(x)[2], ns.shape(x)[3]
    per = max(1, CONV_CHUNK // max(1, Ho * Wo * C * kh * kw))
    parts = []
    for n0 in range(0, N, per):
        n1 = min(N, n0 + per)
        rows = slice(n0 * Ho * Wo, n1 * Ho * Wo)
        CTc = ns.struct(CT, lambda a: a[rows])
        cP_parts = []
        for gi in range(g):
            Cg_ = ns.struct(CTc, lambda a, gi=gi: a[:, gi * Og:(gi + 1) * Og]) if g > 1 else CTc
            Wg = ns.reshape(ns.struct(w, lambda a, gi=gi: a[gi * Og:(gi + 1) * Og]), (Og, kk))
            cP_parts.append(ns.matmul(Cg_, Wg))                    # (rows, kk)
        if g == 1:
            cP = cP_parts[0]
        else:
            cP = ns.transpose(ns.reshape(ns.concat_flat([ns.transpose(c, (1, 0)) for c in cP_parts]),
                                         (C * kh * kw, (n1 - n0) * Ho * Wo)), (1, 0))
        local = idx[rows]
        local = np.where(local >= 0, local - n0 * C * H * W, -1)
        parts.append(ns.scatter(cP, local, (n1 - n0) * C * H * W))
        del cP, cP_parts
    cx = ns.reshape(parts[0] if len(parts) == 1 else ns.concat_flat(parts), ns.shape(x))
    return cx, cw


_CONV_PARAMS = {"stride": ((1, 1), INTS), "padding": ((0, 0), INTS), "dilation": ((1, 1), INTS),
                "groups": (1, INT)}
tensor_prim("conv2d", 2, _CONV_PARAMS, _conv_shape,
            doc="conv2d(x, w, stride=, padding=, dilation=, groups=): cross-correlation, NCHW x, OIHW w (no bias)")
eval_rules["conv2d"] = conv_eval
jvp_rules["conv2d"] = _bilinear_jvp(conv_eval)
vjp_rules["conv2d"] = _conv_vjp


# ----------------------------------------------------------------------------------- sums and structure

def _linear(name, params, shape_rule, fwd, bwd, arity=1, doc=""):
    """Register a linear primitive: eval = fwd, jvp = fwd on the tangents, vjp = bwd."""
    tensor_prim(name, arity, params, shape_rule, doc=doc)
    eval_rules[name] = fwd

    def jvp(ns, p, xs, y, ts):
        if all(t is None for t in ts):
            return None
        return fwd(ns, p, *(_zero_if_none(ns, t, x) for t, x in zip(ts, xs)))
    jvp_rules[name] = jvp
    vjp_rules[name] = bwd


def _red_shape(shapes, p):
    x = _one(shapes)
    return [reduced_shape(x, norm_axes(p["axes"], len(x)), p["keepdims"])]


_RED = {"axes": (None, INTS), "keepdims": (False, BOOL)}


def _sum(ns, p, x):
    return ns.sum(x, norm_axes(p["axes"], len(ns.shape(x))), p["keepdims"])


def _sum_vjp(ns, p, xs, y, ct):
    shape = ns.shape(xs[0])
    axes = norm_axes(p["axes"], len(shape))
    return (ns.broadcast_to(ns.reshape(ct, reduced_shape(shape, axes, True)), shape),)


_linear("sum", _RED, _red_shape, _sum, _sum_vjp, doc="sum(x, axes=(...), keepdims=False)")
PRIMITIVES["sum"].required = ("axes",)


def _count(ns, p, x):
    shape = ns.shape(x)
    return math.prod(shape[a] for a in norm_axes(p["axes"], len(shape)))


def _mean(ns, p, x):
    return ns.div(_sum(ns, p, x), ns.const(fmpq(_count(ns, p, x))))


def _mean_vjp(ns, p, xs, y, ct):
    (s,) = _sum_vjp(ns, p, xs, y, ct)
    return (ns.div(s, ns.const(fmpq(_count(ns, p, xs[0])))),)


def _mean_shape(shapes, p):
    out = _red_shape(shapes, p)
    if math.prod(shapes[0][a] for a in norm_axes(p["axes"], len(shapes[0]))) == 0:
        raise ProgramError("mean over an empty axis")
    return out


_linear("mean", _RED, _mean_shape, _mean, _mean_vjp, doc="mean(x, axes=(...), keepdims=False), exact division")
PRIMITIVES["mean"].required = ("axes",)


def _reshape_shape(shapes, p):
    x = _one(shapes)
    if any(d < 0 for d in p["shape"]) or math.prod(p["shape"]) != math.prod(x):
        raise ProgramError(f"cannot reshape {list(x)} to {list(p['shape'])}")
    return [tuple(p["shape"])]


_linear("reshape", {"shape": (None, INTS)}, _reshape_shape,
        lambda ns, p, x: ns.reshape(x, p["shape"]),
        lambda ns, p, xs, y, ct: (ns.reshape(ct, ns.shape(xs[0])),), doc="reshape(x, shape=(...))")
PRIMITIVES["reshape"].required = ("shape",)


def _transpose_shape(shapes, p):
    x = _one(shapes)
    if sorted(p["perm"]) != list(range(len(x))):
        raise ProgramError(f"perm {p['perm']} is not a permutation of {len(x)} axes")
    return [tuple(x[i] for i in p["perm"])]


_linear("transpose", {"perm": (None, INTS)}, _transpose_shape,
        lambda ns, p, x: ns.transpose(x, p["perm"]),
        lambda ns, p, xs, y, ct: (ns.transpose(ct, tuple(np.argsort(p["perm"]))),), doc="transpose(x, perm=(...))")
PRIMITIVES["transpose"].required = ("perm",)


def _bcast_shape(shapes, p):
    x = _one(shapes)
    try:
        ok = tuple(np.broadcast_shapes(x, tuple(p["shape"]))) == tuple(p["shape"])
    except ValueError:
        ok = False
    if not ok:
        raise ProgramError(f"cannot broadcast {list(x)} to {list(p['shape'])}")
    return [tuple(p["shape"])]


_linear("broadcast_to", {"shape": (None, INTS)}, _bcast_shape,
        lambda ns, p, x: ns.broadcast_to(x, tuple(p["shape"])),
        lambda ns, p, xs, y, ct: (unbroadcast(ns, ct, ns.shape(xs[0])),), doc="broadcast_to(x, shape=(...))")
PRIMITIVES["broadcast_to"].required = ("shape",)


@functools.lru_cache(maxsize=256)
def structure_map(kind, shapes, key):
    """int array: for every output element, the flat index into the concatenated flattened inputs (-1 for
    padding)."""
    if kind == "slice":
        (x,), (start, stop, step) = shapes, key
        return np.arange(math.prod(x)).reshape(x)[tuple(slice(a, b, c) for a, b, c in zip(start, stop, step))]
    if kind == "pad":
        (x,), (lo, hi) = shapes, key
        out = np.full(tuple(d + a + b for d, a, b in zip(x, lo, hi)), -1, dtype=np.int64)
        out[tuple(slice(a, a + d) for a, d in zip(lo, x))] = np.arange(math.prod(x)).reshape(x)
        return out
    if kind == "concat":
        axis, off, parts = key, 0, []
        for s in shapes:
            parts.append(np.arange(off, off + math.prod(s)).reshape(s))
            off += math.prod(s)
        return np.concatenate(parts, axis=axis)
    raise AssertionError(kind)


def _index_op(kind, key_of):
    def fwd(ns, p, *xs):
        shapes = tuple(tuple(ns.shape(x)) for x in xs)
        idx = structure_map(kind, shapes, key_of(p, shapes))
        flat = xs[0] if len(xs) == 1 else ns.concat_flat(list(xs))
        return ns.take(flat, idx)

    def bwd(ns, p, xs, y, ct):
        shapes = tuple(tuple(ns.shape(x)) for x in xs)
        idx = structure_map(kind, shapes, key_of(p, shapes))
        flat = ns.scatter(ct, idx, sum(math.prod(s) for s in shapes))
        out, off = [], 0
        for s in shapes:
            n = math.prod(s)
            out.append(ns.reshape(ns.struct(flat, lambda a, off=off, n=n: a[off:off + n]), s))
            off += n
        return tuple(out)
    return fwd, bwd


def slice_bounds(shape, p):
    """The slice params normalised against ``shape``: (start, stop, step) per axis; ProgramError when
    they do not fit."""
    start, stop, step = p["start"], p["stop"], p["step"] or (1,) * len(shape)
    if not (len(start) == len(stop) == len(step) == len(shape)):
        raise ProgramError(f"slice needs start, stop (and step) for each of the {len(shape)} axes")
    if any(s <= 0 for s in step):
        raise ProgramError("slice steps must be positive")
    norm = [slice(a, b, c).indices(d) for a, b, c, d in zip(start, stop, step, shape)]
    return tuple(n[0] for n in norm), tuple(n[1] for n in norm), tuple(n[2] for n in norm)


def _slice_shape(shapes, p):
    x = _one(shapes)
    start, stop, step = slice_bounds(x, p)
    return [tuple(len(range(a, b, c)) for a, b, c in zip(start, stop, step))]


_f, _b = _index_op("slice", lambda p, shapes: slice_bounds(shapes[0], p))
_linear("slice", {"start": (None, INTS), "stop": (None, INTS), "step": (None, INTS)}, _slice_shape, _f, _b,
        doc="slice(x, start=(...), stop=(...), step=(...)): x[start:stop:step] on every axis")
PRIMITIVES["slice"].required = ("start", "stop")


def _pad_shape(shapes, p):
    x = _one(shapes)
    if len(p["lo"]) != len(x) or len(p["hi"]) != len(x) or any(v < 0 for v in p["lo"] + p["hi"]):
        raise ProgramError(f"pad needs non-negative lo and hi for each of the {len(x)} axes")
    return [tuple(d + a + b for d, a, b in zip(x, p["lo"], p["hi"]))]


_f, _b = _index_op("pad", lambda p, shapes: (tuple(p["lo"]), tuple(p["hi"])))
_linear("pad", {"lo": (None, INTS), "hi": (None, INTS)}, _pad_shape, _f, _b,
        doc="pad(x, lo=(...), hi=(...)): zeros before and after every axis")
PRIMITIVES["pad"].required = ("lo", "hi")


def _concat_shape(shapes, p):
    nd = len(shapes[0])
    ax = norm_axes((p["axis"],), nd)[0]
    for s in shapes:
        if len(s) != nd or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != ax):
            raise ProgramError("concat needs arrays of one shape except along the axis: "
                               + ", ".join(str(list(s)) for s in shapes))
    return [tuple(sum(s[ax] for s in shapes) if i == ax else d for i, d in enumerate(shapes[0]))]


_f, _b = _index_op("concat", lambda p, shapes: norm_axes((p["axis"],), len(shapes[0]))[0])
_linear("concat", {"axis": (0, INT)}, _concat_shape, _f, _b, arity=(1, None),
        doc="concat(x1, x2, ..., axis=0)")


def _take_shape(shapes, p):
    x = _one(shapes)
    idx = p["indices"]
    ax = norm_axes((p["axis"],), len(x))[0]
    if idx is None or not hasattr(idx, "num"):
        raise ProgramError("take_along needs indices=const(\"name\"), an array constant of integers")
    if idx.den != 1 or idx.ndim != len(x):
        raise ProgramError("take_along's indices must be integers with as many axes as x")
    vals = idx.num
    if vals.size and (min(vals.ravel()) < 0 or max(vals.ravel()) >= x[ax]):
        raise ProgramError(f"take_along's indices must lie in 0..{x[ax] - 1}")
    try:
        np.broadcast_shapes(tuple(d for i, d in enumerate(idx.shape) if i != ax),
                            tuple(d for i, d in enumerate(x) if i != ax))
    except ValueError:
        raise ProgramError("take_along's indices do not fit x") from None
    out = list(np.broadcast_shapes(idx.shape, tuple(1 if i == ax else d for i, d in enumerate(x))))
    out[ax] = idx.shape[ax]
    return [tuple(out)]


def take_map(shape, p):
    """int array: for every output element of take_along, the flat index into the input of ``shape``."""
    ax = norm_axes((p["axis"],), len(shape))[0]
    base = np.arange(math.prod(shape)).reshape(shape)
    ind = p["indices"].num.astype(np.int64)
    tgt = list(np.broadcast_shapes(ind.shape, tuple(1 if i == ax else d for i, d in enumerate(shape))))
    tgt[ax] = ind.shape[ax]
    ind = np.broadcast_to(ind, tuple(tgt))
    bshape = list(tgt)
    bshape[ax] = shape[ax]
    return np.take_along_axis(np.broadcast_to(base, tuple(bshape)), ind, axis=ax)


def _take(ns, p, x):
    return ns.take(x, take_map(tuple(ns.shape(x)), p))


def _take_vjp(ns, p, xs, y, ct):
    shape = tuple(ns.shape(xs[0]))
    return (ns.reshape(ns.scatter(ct, take_map(shape, p), math.prod(shape)), shape),)


_linear("take_along", {"indices": (None, ARRAY), "axis": (-1, INT)}, _take_shape, _take, _take_vjp,
        doc="take_along(x, indices=const(\"idx\"), axis=-1): numpy.take_along_axis with constant integer indices")
PRIMITIVES["take_along"].required = ("indices",)


# ---------------------------------------------------------------------------------------------- pooling

_POOL = {"kernel": ((2, 2), INTS), "stride": (None, OPT_INTS), "padding": ((0, 0), INTS), "dilation": ((1, 1), INTS)}


def _pool_params(p):
    return {**p, "stride": p["stride"] or p["kernel"]}


def _pool_shape(shapes, p):
    x = _one(shapes)
    if len(x) != 4:
        raise ProgramError("pooling takes an NCHW input")
    q = _pool_params(p)
    _check_2(q, "kernel", "stride", "dilation")
    kh, kw = q["kernel"]
    t, b, left, r = conv_pads(q)
    if 2 * max(t, b) > kh or 2 * max(left, r) > kw:
        raise ProgramError("pooling padding must be at most half the kernel")
    Ho, Wo = _conv_out(x[2], x[3], kh, kw, q)
    return [(x[0], x[1], Ho, Wo)]


def pool_windows(shape, p):
    """(flat input index of every window element, one row per (n*c, ho, wo), Ho, Wo) of a max pool over an
    NCHW ``shape`` (-1 in the padding)."""
    q = _pool_params(p)
    N, C, H, W = shape
    kh, kw = q["kernel"]
    idx, (Ho, Wo) = conv_patches((N * C, 1, H, W), kh, kw, tuple(q["stride"]), tuple(q["dilation"]), conv_pads(q))
    # rows (n*c, ho, wo), columns (kh, kw): flat indices into x viewed as (N*C, 1, H, W), the same flat order
    return idx, Ho, Wo


def _avg(ns, p, x):
    N, C, H, W = ns.shape(x)
    idx, Ho, Wo = pool_windows((N, C, H, W), p)
    kk = idx.shape[1]
    s = ns.sum(ns.take(x, idx), (1,))
    return ns.reshape(ns.div(s, ns.const(fmpq(kk))), (N, C, Ho, Wo))


def _avg_vjp(ns, p, xs, y, ct):
    shape = tuple(ns.shape(xs[0]))
    idx, Ho, Wo = pool_windows(shape, p)
    kk = idx.shape[1]
    c = ns.div(ns.broadcast_to(ns.reshape(ct, (idx.shape[0], 1)), idx.shape), ns.const(fmpq(kk)))
    return (ns.reshape(ns.scatter(c, idx, math.prod(shape)), shape),)


_linear("avg_pool2d", _POOL, _pool_shape, _avg, _avg_vjp,
        doc="avg_pool2d(x, kernel=, stride=, padding=): window means, padding counted as zeros (NCHW)")


# ------------------------------------------------------------------------------------------- logsumexp

def _lse(ns, p, x):
    axes = norm_axes(p["axes"], len(ns.shape(x)))
    m = ns.max_value(x, axes)                               # any shift is exact here; this one avoids overflow
    s = ns.sum(ns.exp(ns.sub(x, m)), axes, keepdims=True)
    out = ns.add(ns.log(s), m)
    return out if p["keepdims"] else ns.reshape(out, reduced_shape(ns.shape(x), axes, False))


def _softmax(ns, p, x, y):
    axes = norm_axes(p["axes"], len(ns.shape(x)))
    yk = ns.reshape(y, reduced_shape(ns.shape(x), axes, True))
    return ns.exp(ns.sub(x, yk)), axes


def _lse_jvp(ns, p, xs, y, ts):
    if ts[0] is None:
        return None
    sm, axes = _softmax(ns, p, xs[0], y)
    return ns.sum(ns.mul(sm, ts[0]), axes, p["keepdims"])


def _lse_vjp(ns, p, xs, y, ct):
    sm, axes = _softmax(ns, p, xs[0], y)
    return (ns.mul(sm, ns.reshape(ct, reduced_shape(ns.shape(xs[0]), axes, True))),)


tensor_prim("logsumexp", 1, _RED, _red_shape, doc="log(sum(exp(x), axes)), smooth")
PRIMITIVES["logsumexp"].required = ("axes",)
eval_rules["logsumexp"] = _lse
jvp_rules["logsumexp"] = _lse_jvp
vjp_rules["logsumexp"] = _lse_vjp


# ----------------------------------------------------------------------------------------- site tables

@dataclass
class SiteGroup:
    """Sites with the same number of arguments: ``sites`` (their ids in the equation's flat site array),
    ``args`` (one int array per argument: the flat index of that argument in the inputs, all inputs
    flattened and concatenated) and ``outs`` (one int array per output row: the flat index in the outputs,
    all outputs flattened and concatenated).  ``args`` and ``outs`` are None for elementwise sites."""
    n: int
    sites: np.ndarray
    args: list
    outs: list


@dataclass
class SiteTable:
    """The sites of a nonsmooth equation: the pattern array has shape ``grid``; every site is the scalar
    primitive ``prim`` with ``params``; ``elementwise`` sites take the inputs broadcast to the grid."""
    grid: tuple
    prim: str
    params: dict
    groups: list
    elementwise: bool

    @property
    def n_sites(self):
        return math.prod(self.grid)


def elementwise_sites(prim, in_shapes, params):
    grid = broadcast_shapes(in_shapes)
    n = math.prod(grid)
    return SiteTable(grid, prim, params, [SiteGroup(len(in_shapes), np.arange(n), None, None)], True)


def sites_of(prim, in_shapes, params):
    """The SiteTable of a nonsmooth primitive applied to inputs of these shapes (params resolved)."""
    rule = site_rules.get(prim)
    return elementwise_sites(prim, in_shapes, params) if rule is None else rule(tuple(in_shapes), params)


def _reduce_sites(scalar):
    def rule(in_shapes, p):
        (x,) = in_shapes
        axes = norm_axes(p["axes"], len(x))
        rest = tuple(i for i in range(len(x)) if i not in axes)
        n = math.prod(x[a] for a in axes)
        idx = np.arange(math.prod(x)).reshape(x).transpose(rest + axes).reshape(-1, n)
        grid = tuple(x[i] for i in rest)
        sites = np.arange(math.prod(grid))
        return SiteTable(grid, scalar, {"tie": p["tie"]}, [SiteGroup(n, sites, list(idx.T), [sites])], False)
    return rule


def _red_nonsmooth_shape(shapes, p):
    x = _one(shapes)
    axes = norm_axes(p["axes"], len(x))
    if math.prod(x[a] for a in axes) < 2:
        raise ProgramError("a max or min over fewer than two elements: use reshape")
    return [reduced_shape(x, axes, p["keepdims"])]


_TIES = ("split", "first", "last")
for _name, _scalar in (("amax", "max"), ("amin", "min")):
    tensor_prim(_name, 1, {"axes": (None, INTS), "keepdims": (False, BOOL), "tie": ("split", _TIES)},
                _red_nonsmooth_shape, smooth=False,
                doc=f"{_scalar} over axes; tie = split | first | last (each output element is a {_scalar} site)")
    PRIMITIVES[_name].required = ("axes",)
    site_rules[_name] = _reduce_sites(_scalar)
    selection_rules[_name] = selection_rules[_scalar]


def _pool_sites(in_shapes, p):
    (x,) = in_shapes
    N, C, H, W = x
    idx, Ho, Wo = pool_windows(x, p)
    grid = (N, C, Ho, Wo)
    valid = idx >= 0
    counts = valid.sum(axis=1)
    groups = []
    for n in sorted(set(counts.tolist())):
        sites = np.nonzero(counts == n)[0]
        rows = idx[sites]
        # the window's elements in row-major order, the padding left out (it never wins a max)
        order = np.argsort(~valid[sites], axis=1, kind="stable")[:, :n]
        args = np.take_along_axis(rows, order, axis=1)
        # one contiguous intp array per argument: every run gathers by them (numpy converts any other index
        # array, a strided int32 column, on every gather)
        groups.append(SiteGroup(n, sites, [np.ascontiguousarray(a, dtype=np.intp) for a in args.T], [sites]))
    return SiteTable(grid, "max", {"tie": p["tie"]}, groups, False)


def _pool_ns_shape(shapes, p):
    out = _pool_shape(shapes, p)
    if math.prod(_pool_params(p)["kernel"]) < 2:
        raise ProgramError("max_pool2d needs a window of at least two elements")
    return out


tensor_prim("max_pool2d", 1, {**_POOL, "tie": ("first", _TIES)}, _pool_ns_shape, smooth=False,
            doc="max over windows (NCHW); tie = first (PyTorch and JAX) | split | last; padding never wins")
site_rules["max_pool2d"] = _pool_sites
selection_rules["max_pool2d"] = selection_rules["max"]


def _sort_sites(in_shapes, p):
    (x,) = in_shapes
    ax = norm_axes((p["axis"],), len(x))[0]
    rest = tuple(i for i in range(len(x)) if i != ax)
    n = x[ax]
    idx = np.arange(math.prod(x)).reshape(x).transpose(rest + (ax,)).reshape(-1, n)
    grid = tuple(x[i] for i in rest)
    return SiteTable(grid, "sort", {"descending": p["descending"], "ties": p["ties"]},
                     [SiteGroup(n, np.arange(math.prod(grid)), list(idx.T), list(idx.T))], False)


def _sort_shape(shapes, p):
    x = _one(shapes)
    ax = norm_axes((p["axis"],), len(x))[0]
    if x[ax] < 2:
        raise ProgramError("sort_axis needs at least two elements along the axis")
    return [x]


tensor_prim("sort_axis", 1, {"axis": (-1, INT), "descending": (False, BOOL), "ties": ("stable", SORT_TIES)},
            _sort_shape, smooth=False, doc="sort along an axis; each slice is a sort site")
site_rules["sort_axis"] = _sort_sites
selection_rules["sort_axis"] = selection_rules["sort"]


def _kth_shape(shapes, p):
    x = _one(shapes)
    axes = norm_axes(p["axes"], len(x))
    n = math.prod(x[a] for a in axes)
    if n < 2:
        raise ProgramError("kth_axis needs at least two elements over its axes")
    if not 0 <= p["k"] < n:
        raise ProgramError(f"kth_axis needs 0 <= k < {n}, got k={p['k']}")
    return [reduced_shape(x, axes, p["keepdims"])]


def _kth_sites(in_shapes, p):
    t = _reduce_sites("kth")(in_shapes, {**p, "tie": p["tie"]})
    t.params = {"k": p["k"], "tie": p["tie"]}
    return t


tensor_prim("kth_axis", 1, {"axes": (None, INTS), "k": (None, INT), "keepdims": (False, BOOL),
                            "tie": ("split", KTH_TIES)}, _kth_shape, smooth=False,
            doc="the k-th smallest (from 0) over axes (row-major order of the reduced elements); tie = split | "
                "first | last | unspecified")
PRIMITIVES["kth_axis"].required = ("axes", "k")
site_rules["kth_axis"] = _kth_sites
selection_rules["kth_axis"] = selection_rules["kth"]


def _mode_shape(shapes, p):
    x = _one(shapes)
    ax = norm_axes((p["axis"],), len(x))[0]
    if x[ax] < 2:
        raise ProgramError("mode_axis needs at least two elements along the axis")
    return [reduced_shape(x, (ax,), p["keepdims"])]


def _mode_sites(in_shapes, p):
    t = _reduce_sites("mode")(in_shapes, {"axes": (p["axis"],), "tie": p["tie"]})
    t.params = {"tie": p["tie"]}
    return t


tensor_prim("mode_axis", 1, {"axis": (-1, INT), "keepdims": (False, BOOL), "tie": ("last", ("last", "unspecified"))},
            _mode_shape, smooth=False,
            doc="the most frequent element along an axis (torch.mode: the smallest such value, its last occurrence); "
                "discontinuous")
PRIMITIVES["mode_axis"].continuous = False
site_rules["mode_axis"] = _mode_sites
selection_rules["mode_axis"] = selection_rules["mode"]


def _windows(p, x):
    w = p["windows"]
    if w is None or not hasattr(w, "num"):
        raise ProgramError("window_max needs windows=const(\"name\"), an array constant of integers")
    if w.den != 1 or w.ndim < 1:
        raise ProgramError("the windows of window_max must be integers, the last axis listing each window")
    vals = w.num
    n = math.prod(x)
    if vals.size and (min(vals.ravel()) < -1 or max(vals.ravel()) >= n):
        raise ProgramError(f"window indices must lie in 0..{n - 1} (or be -1: no element)")
    return vals


def _window_shape(shapes, p):
    x = _one(shapes)
    vals = _windows(p, x)
    if vals.shape[-1] < 2 or (vals.size and ((vals >= 0).sum(axis=-1) < 2).any()):
        raise ProgramError("every window of window_max must hold at least two elements (one element is a take)")
    if vals.size and any(len(set(r)) != len(r) for r in (v[v >= 0].tolist() for v in vals.reshape(-1, vals.shape[-1]))):
        raise ProgramError("a window of window_max lists an element twice")
    return [tuple(vals.shape[:-1])]


def _window_sites(scalar):
    def rule(in_shapes, p):
        (x,) = in_shapes
        vals = np.asarray(_windows(p, x).astype(np.int64))
        grid = tuple(vals.shape[:-1])
        rows = vals.reshape(-1, vals.shape[-1])
        valid = rows >= 0
        counts = valid.sum(axis=1)
        groups = []
        for n in sorted(set(counts.tolist())):
            sites = np.nonzero(counts == n)[0]
            order = np.argsort(~valid[sites], axis=1, kind="stable")[:, :n]   # the window's elements in order
            args = np.take_along_axis(rows[sites], order, axis=1)
            groups.append(SiteGroup(n, sites, list(args.T), [sites]))
        return SiteTable(grid, scalar, {"tie": p["tie"]}, groups, False)
    return rule


for _name, _scalar in (("window_max", "max"), ("window_min", "min")):
    tensor_prim(_name, 1, {"windows": (None, ARRAY), "tie": ("first", _TIES)}, _window_shape, smooth=False,
                doc=f"{_scalar} over windows of x: windows=const(\"w\") holds, for every output element (its leading "
                    "axes), the flat indices of x in the window along its last axis (-1: no element; at least two "
                    "distinct elements per window); tie = first | last | split, in the order listed")
    PRIMITIVES[_name].required = ("windows",)
    site_rules[_name] = _window_sites(_scalar)
    selection_rules[_name] = selection_rules[_scalar]


# ------------------------------------------------------------------------------ declarative index maps
# What the independent checker (verify/checker/tensor.py) reuses besides the site tables, defined above beside
# their primitives (conv_patches, conv_pads, pool_windows, structure_map, slice_bounds, take_map): which input
# element every output element of a structural, pooling or convolution primitive reads.  They define what
# the primitives mean (and are tested against PyTorch); the arithmetic over them is the checker's own.

