"""Scalarisation: the scalar program that a tensor program means, element by element.

Every element of every array becomes a scalar variable; a smooth tensor equation becomes the scalar
equations it stands for (a matrix product becomes sums of products, a reshape no equation at all); every
site of a nonsmooth tensor equation becomes one scalar equation of the site's primitive (prims/tensor.py).
The result is the paper's setting exactly, so it is the reference semantics of tensor programs: the tensor
interpreter is tested against the scalar interpreter on it, and certifiers that have no tensor version
(global index sets, Clarke on small programs, segments) run on it.  Its size is the number of scalar
operations: meant for small programs.

Patterns correspond one to one: the scalar pattern lists the sites of every nonsmooth tensor equation in
order, each in row-major order of its site grid (``to_scalar_pattern`` / ``from_scalar_pattern``).
"""
import math

import numpy as np
from flint import fmpq

from ..errors import ProgramError
from . import kinks
from .builder import Builder
from .ir import Lit, resolve_arrays
from .prims import PRIMITIVES
from .prims.tensor import (conv_pads, conv_patches, dot_plan, norm_axes, pool_windows, reduced_shape, sites_of,
                           slice_bounds, structure_map, take_map)

SCALAR_CAP = 200_000


class Scalarized:
    """``program``: the scalar program; ``sites``: for every nonsmooth tensor equation (in order) its site
    grid, so that patterns convert both ways; ``inputs``: per tensor input, the array of its scalar input
    indices; ``outputs``: per tensor output, the array of scalar output positions."""

    def __init__(self, program, grids, inputs, outputs):
        self.program, self.grids, self.inputs, self.outputs = program, grids, inputs, outputs

    def to_scalar_pattern(self, pattern):
        out = []
        for grid, p in zip(self.grids, pattern):
            out.extend(int(v) for v in np.asarray(p).ravel().tolist())
        return tuple(out)

    def from_scalar_pattern(self, pattern):
        out, k = [], 0
        for grid in self.grids:
            n = math.prod(grid)
            vals = list(pattern[k:k + n])
            dtype = object if any(v >= 2 ** 62 for v in vals) else np.int64
            out.append(np.array(vals, dtype=dtype).reshape(grid))
            k += n
        return tuple(out)

    def flat_point(self, arrays):
        """The scalar point (list of fmpq) of a tensor point (one ExactArray per input)."""
        pt = [None] * self.program.n_inputs
        for idx, a in zip(self.inputs, arrays):
            for i, q in zip(idx.ravel().tolist(), a.to_fmpq().ravel().tolist()):
                pt[i] = q
        return pt


def scalarize(program, convention=kinks.DEFAULT, cap=SCALAR_CAP):
    """The Scalarized form of ``program`` under ``convention`` (every kink param written out, so the scalar
    program means the same under any convention).  InputError-like ProgramError above ``cap`` equations."""
    shapes = program.input_shapes or [()] * program.n_inputs
    names, inputs = [], []
    for name, sh in zip(program.input_names, shapes):
        n = math.prod(sh)
        idx = np.arange(len(names), len(names) + n).reshape(sh)
        inputs.append(idx)
        names.extend([name] if sh == () else [f"{name}_" + "_".join(map(str, np.unravel_index(i, sh)))
                                              for i in range(n)])
    b = Builder(program.name, names)
    env = [None] * program.n_vars
    for i, idx in enumerate(inputs):
        env[i] = _obj_of(idx.ravel().tolist(), idx.shape)
    consts = {}
    count = [0]

    def emit(prim, ins, params=None, n_out=1):
        count[0] += 1
        if count[0] > cap:
            raise ProgramError(f"the scalarised program would have more than {cap} equations")
        return b.emit(prim, ins, params or {}, n_out=n_out)

    def read(a):
        if isinstance(a, int):
            return env[a]
        if isinstance(a, Lit):
            return _obj_of(a, ())
        if a.name not in consts:
            q = program.arrays[a.name].to_fmpq()
            lits = [Lit(v) for v in q.ravel().tolist()]
            consts[a.name] = _obj_of(lits if q.shape != () else lits[0], q.shape)     # a 0-d constant: one Lit
        return consts[a.name]

    grids = []
    for e in program.eqns:
        params = resolve_arrays(program, kinks.resolve(e, convention))
        prim = PRIMITIVES[e.prim]
        xs = [read(a) for a in e.ins]
        if not prim.smooth:
            outs, grid = _nonsmooth(e, params, xs, emit, program)
            grids.append(grid)
        elif e.prim in _RULES:
            outs = _RULES[e.prim](params, xs, emit)
        else:                                     # a scalar smooth primitive, elementwise
            outs = [_elementwise(e.prim, params, xs, emit)]
        for o, v in zip(e.outs, outs):
            env[o] = v
    flat_out, positions = [], []
    for a in program.outputs:
        v = read(a)
        positions.append(np.arange(len(flat_out), len(flat_out) + v.size).reshape(v.shape))
        flat_out.extend(v.ravel().tolist())
    return Scalarized(b.finish(flat_out), grids, inputs, positions)


def _obj_of(values, shape):
    """An object array of the given shape holding ``values`` (one atom, or a flat list / array of atoms)."""
    out = np.empty(shape, dtype=object)
    flat = values if isinstance(values, list) else (np.ravel(values).tolist() if isinstance(values, np.ndarray)
                                                     else [values])
    out.reshape(-1)[:] = flat
    return out


def _explicit(params, prim):
    return {k: v for k, v in params.items() if k in PRIMITIVES[prim].params}


def _elementwise(prim, params, xs, emit):
    shape = tuple(np.broadcast_shapes(*(x.shape for x in xs)))
    bx = [np.broadcast_to(x, shape) for x in xs]
    out = np.empty(shape, dtype=object)
    p = _explicit(params, prim)
    for idx in np.ndindex(*shape):
        out[idx] = emit(prim, [x[idx] for x in bx], p)[0]
    return out


def _nonsmooth(e, params, xs, emit, program):
    table = sites_of(e.prim, [x.shape for x in xs], params)
    p = _explicit(table.params, table.prim)
    n_out = len(e.outs)
    if table.elementwise:
        bx = [np.broadcast_to(x, table.grid) for x in xs]
        outs = [np.empty(table.grid, dtype=object) for _ in range(n_out)]
        for idx in np.ndindex(*table.grid):
            ys = emit(table.prim, [x[idx] for x in bx], p, n_out=n_out)
            for o, y in zip(outs, ys):
                o[idx] = y
        return outs, table.grid
    flat_in = np.concatenate([x.ravel() for x in xs])
    out_sizes = [math.prod(program.shapes[o]) for o in e.outs]
    flat_out = np.empty(sum(out_sizes), dtype=object)
    where = {}
    for g in table.groups:
        for k, s in enumerate(g.sites.tolist()):
            where[s] = (g, k)
    for s in range(table.n_sites):
        g, k = where[s]
        ys = emit(table.prim, [flat_in[a[k]] for a in g.args], p, n_out=len(g.outs))
        for r, y in enumerate(ys):
            flat_out[g.outs[r][k]] = y
    outs, off = [], 0
    for n, o in zip(out_sizes, e.outs):
        outs.append(flat_out[off:off + n].reshape(program.shapes[o]))
        off += n
    return outs, table.grid


def _sum_of(terms, emit):
    terms = [t for t in terms if not (isinstance(t, Lit) and t.value == 0)]
    if not terms:
        return Lit(fmpq(0))
    acc = terms[0]
    for t in terms[1:]:
        acc = emit("add", [acc, t])[0]
    return acc


def _product(a, b, emit):
    if isinstance(a, Lit) and a.value == 0 or isinstance(b, Lit) and b.value == 0:
        return Lit(fmpq(0))
    return emit("mul", [a, b])[0]


def _dot(p, xs, emit):
    a, b = xs
    pa, pb, (B, M, K), (_, _, N), out = dot_plan(a.shape, b.shape, p)
    a3 = a.transpose(pa).reshape(B, M, K)
    b3 = b.transpose(pb).reshape(B, K, N)
    res = np.empty((B, M, N), dtype=object)
    for i in range(B):
        for m in range(M):
            for n in range(N):
                res[i, m, n] = _sum_of([_product(a3[i, m, k], b3[i, k, n], emit) for k in range(K)], emit)
    return [res.reshape(out)]


def _conv(p, xs, emit):
    x, w = xs
    N, C, H, W = x.shape
    Co, Cg, kh, kw = w.shape
    g = p["groups"]
    idx, (Ho, Wo) = conv_patches(x.shape, kh, kw, tuple(p["stride"]), tuple(p["dilation"]), conv_pads(p))
    flat = np.append(x.ravel(), Lit(fmpq(0)))
    P = flat[idx]
    Og, kk = Co // g, Cg * kh * kw
    out = np.empty((N * Ho * Wo, Co), dtype=object)
    for o in range(Co):
        gi = o // Og
        wrow = w[o].reshape(kk)
        for r in range(N * Ho * Wo):
            out[r, o] = _sum_of([_product(P[r, gi * kk + t], wrow[t], emit) for t in range(kk)], emit)
    return [out.reshape(N, Ho, Wo, Co).transpose(0, 3, 1, 2)]


def _reduce(fn):
    def rule(p, xs, emit):
        (x,) = xs
        axes = norm_axes(p["axes"], x.ndim)
        rest = tuple(i for i in range(x.ndim) if i not in axes)
        n = math.prod(x.shape[a] for a in axes)
        rows = x.transpose(rest + axes).reshape(-1, n)
        vals = np.empty(len(rows), dtype=object)
        for i, row in enumerate(rows):
            vals[i] = fn(list(row), emit)
        return [vals.reshape(reduced_shape(x.shape, axes, p["keepdims"]))]
    return rule


def _mean_of(row, emit):
    s = _sum_of(row, emit)
    return Lit(s.value / len(row)) if isinstance(s, Lit) else emit("div", [s, Lit(fmpq(len(row)))])[0]


def _lse_of(row, emit):
    if len(row) == 1:            # log(exp(v)) = v: the tensor interpreter's shift makes it exact too
        return row[0]
    return emit("log", [_sum_of([emit("exp", [v])[0] for v in row], emit)])[0]


def _indexed(kind, key):
    def rule(p, xs, emit):
        shapes = tuple(x.shape for x in xs)
        idx = structure_map(kind, shapes, key(p, shapes))
        flat = np.append(np.concatenate([x.ravel() for x in xs]), Lit(fmpq(0)))
        return [flat[idx]]
    return rule


def _avg(p, xs, emit):
    (x,) = xs
    N, C, H, W = x.shape
    idx, Ho, Wo = pool_windows(x.shape, p)
    flat = np.append(x.ravel(), Lit(fmpq(0)))
    P = flat[idx]
    out = np.empty(len(P), dtype=object)
    for r in range(len(P)):
        out[r] = _mean_of(list(P[r]), emit)
    return [out.reshape(N, C, Ho, Wo)]


_RULES = {
    "dot": _dot,
    "conv2d": _conv,
    "sum": _reduce(_sum_of),
    "mean": _reduce(_mean_of),
    "logsumexp": _reduce(_lse_of),
    "reshape": lambda p, xs, emit: [xs[0].reshape(p["shape"])],
    "transpose": lambda p, xs, emit: [xs[0].transpose(p["perm"])],
    "broadcast_to": lambda p, xs, emit: [np.broadcast_to(xs[0], tuple(p["shape"]))],
    "slice": _indexed("slice", lambda p, shapes: slice_bounds(shapes[0], p)),
    "pad": _indexed("pad", lambda p, shapes: (tuple(p["lo"]), tuple(p["hi"]))),
    "concat": _indexed("concat", lambda p, shapes: norm_axes((p["axis"],), len(shapes[0]))[0]),
    "take_along": lambda p, xs, emit: [np.append(xs[0].ravel(), Lit(fmpq(0)))[take_map(xs[0].shape, p)]],
    "avg_pool2d": _avg,
}
