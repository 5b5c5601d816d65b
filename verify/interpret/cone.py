"""Exact values of a few elements of a tensor program, computed through their dependency cone only.

The float filter (filtered.py) decides most switching functions from midpoint-radius enclosures; the few it
cannot decide (exact ties, near ties) need the exact values of their arguments.  Those depend on a small part
of the program: the rows and columns that feed them.  ``Cone`` walks the equations backwards from the
requested elements, asking each equation's *plan* which input elements its needed output elements read (a
row of a matrix product reads a row and a column; a chosen max-pool piece reads one element of its window;
a relu frozen to its zero piece reads nothing), then forwards, computing exactly (rationals, or balls where
a value stops being rational) only the needed elements.

Every computed element carries a *label*: elements of a variable with the same label have the same exact
value (the converse need not hold).  Labels start from the exact data (equal numbers, equal labels) and
follow the operations (the same operation on equally labelled operands gives equally labelled results), so
each plan computes once per distinct combination of operand labels: the windows of a constant image
background, which tie exactly in every layer, cost one exact evaluation, not one per window.  Matrix
products and convolutions run as one exact integer matrix product (fmpz_mat) of the distinct rows by the
distinct columns.

Upstream nonsmooth equations are evaluated with the pieces already chosen (proved) at their sites, so the
cone follows the pattern, never re-deciding it.  Every primitive of the interpreter has a plan (PLANS), and
tests/test_filter.py walks them all.
"""
import math

import numpy as np
from flint import arb, fmpq

from ..errors import InputError
from ..numbers.tensor import QT, SIGN_UNDECIDED, ExactTensors
from ..program.ir import Arr, Lit
from ..program.prims import PRIMITIVES
from ..program.prims.tensor import conv_pads, conv_patches, pool_windows
from . import tensor as T

BUDGET = 50_000_000        # labels gathered per cone: beyond it the caller evaluates everything exactly


class ConeTooLarge(Exception):
    """The cone of the requested elements is too large to be worth evaluating element by element."""


def norm_axes(axes, ndim):
    return tuple(a + ndim if a < 0 else a for a in axes)


def unique_rows(cols):
    """(inverse, first) for rows made of the int64 arrays ``cols`` (equal lengths): every row's index among
    the distinct rows, and the position of the first row of each distinct one."""
    if len(cols) == 1:
        _, first, inv = np.unique(cols[0], return_index=True, return_inverse=True)
        return np.ravel(inv), first
    return unique_matrix(np.stack(cols, axis=1))


_MULT = np.random.default_rng(20261205).integers(1, 2 ** 63, 4096, dtype=np.uint64) | np.uint64(1)


def unique_matrix(L):
    """(inverse, first) for the rows of a 2-D int64 array: rows grouped by a 64-bit hash (wrapping
    arithmetic), then every row compared with its group's first row; a collision (never seen) falls back to
    numpy's exact row sort.  Exact either way: the hash only proposes, the comparison decides."""
    R, K = L.shape
    if R == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if K == 0:
        return np.zeros(R, np.int64), np.zeros(1, np.int64)
    if K == 1:
        _, first, inv = np.unique(L[:, 0], return_index=True, return_inverse=True)
        return np.ravel(inv), first
    w = _MULT[np.arange(K) % len(_MULT)] + np.uint64(2) * np.arange(K, dtype=np.uint64) // np.uint64(len(_MULT))
    with np.errstate(over="ignore"):
        h = (L.astype(np.uint64) * w).sum(axis=1, dtype=np.uint64)
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = np.ravel(inv)
    if np.array_equal(L, L[first[inv]]):
        return inv, first
    _, first, inv = np.unique(np.ascontiguousarray(L), axis=0, return_index=True, return_inverse=True)
    return np.ravel(inv), first


# ------------------------------------------------------------------------------------------------- plans
# A plan answers two questions about one equation for a set of needed output elements (``needs``: {output
# position: flat indices}): ``deps`` -> {input position: flat indices it reads (-1 = a zero)}, and
# ``compute(needs, rd, ns)`` -> {output position: (labels, values)}: for every needed element the index of
# its value in ``values`` (a flat exact array, one entry per distinct result).  ``rd`` reads the inputs:
# ``rd.labels(j, idx)`` (labels of input j at flat indices of any shape, -1 for a zero) and
# ``rd.values(j, labels)`` (the exact values of those labels, as a QT or an object array of that shape).

class Plan:
    def __init__(self, st, program):
        self.st = st
        self.program = program


def homogeneous(a):
    """The object array ``a`` of fmpq / arb values with every entry a ball when any entry is one: the exact number
    system reads an object array's kind from its first entry, so a mixed array must not reach it."""
    flat = a.ravel().tolist()
    if any(isinstance(v, arb) for v in flat) and not all(isinstance(v, arb) for v in flat):
        return np.array([v if isinstance(v, arb) else arb(v) for v in flat], dtype=object).reshape(a.shape)
    return a


def _flat(ns, v, n):
    """An exact value as a flat array of n entries: a QT when rational, else an object array of fmpq / arb."""
    if isinstance(v, QT):
        num = np.ravel(v.num)
        return QT(np.broadcast_to(num, (n,)).astype(object) if num.size != n else num, v.den)
    flat = np.ravel(np.asarray(ns.to_fq(v), dtype=object))
    if flat.size != n:
        flat = np.broadcast_to(flat, (n,)).astype(object)
    if flat.size and all(isinstance(e, fmpq) for e in flat.tolist()):
        q = ns.to_qt(flat)
        return QT(np.ravel(q.num), q.den)
    return homogeneous(flat)


class Elementwise(Plan):
    """A smooth elementwise primitive: output element e reads input j at its broadcast position."""

    def reads(self, e):
        """Per input, the flat indices its broadcast value has at the flat output indices ``e``."""
        st = self.st
        return [broadcast_index(e, tuple(st.out_shapes[0]), tuple(s)) for s in st.in_shapes]

    def deps(self, needs):
        return dict(enumerate(self.reads(needs[0])))

    def compute(self, needs, rd, ns):
        labs = [rd.labels(j, m) for j, m in enumerate(self.reads(needs[0]))]
        inv, first = unique_rows(labs)
        if not rd.want_values:
            return {0: (inv, len(first))}
        args = [rd.values(j, lab[first]) for j, lab in enumerate(labs)]
        return {0: (inv, _flat(ns, self.st.rule(ns, self.st.params, *args), len(first)))}


def broadcast_index(e, grid, shape):
    """The flat indices, in an array of ``shape`` broadcast (numpy's rules) to ``grid``, of the flat grid indices
    ``e``: computed for the elements asked for only."""
    e = np.asarray(e, dtype=np.int64)
    if tuple(shape) == tuple(grid):
        return e
    if math.prod(shape) == 1:
        return np.zeros(e.shape, np.int64)
    coords = np.unravel_index(e, grid)
    lead = len(grid) - len(shape)
    own = [np.zeros(e.shape, np.int64) if d == 1 else c for c, d in zip(coords[lead:], shape)]
    return np.ravel_multi_index(own, shape).astype(np.int64)


class _IndexNS:
    """Flat indices through structural primitives: values are int arrays of positions, -1 a zero."""
    name = "index"

    def shape(self, x):
        return np.shape(x)

    def struct(self, x, fn):
        return fn(x)

    def reshape(self, x, shape):
        return np.reshape(x, shape)

    def transpose(self, x, perm):
        return np.transpose(x, perm)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def take(self, x, idx):
        return np.append(np.ravel(x), -1)[np.asarray(idx)]

    def concat_flat(self, xs):
        return np.concatenate([np.ravel(x) for x in xs])


class Index(Plan):
    """A structural primitive (reshape, transpose, broadcast_to, slice, pad, concat, take_along): output
    element e is element idx[e] of the inputs flattened and concatenated (or 0)."""

    def table(self):
        if getattr(self, "_table", None) is None:
            st = self.st
            sizes = [math.prod(s) for s in st.in_shapes]
            offs = np.cumsum([0] + sizes[:-1])
            xs = [np.arange(o, o + n).reshape(s) for o, n, s in zip(offs, sizes, st.in_shapes)]
            self._table = np.ravel(st.rule(_IndexNS(), st.params, *xs)), offs, sizes
        return self._table

    def _split(self, flat):
        _, offs, sizes = self.table()
        out = {}
        for j, (o, n) in enumerate(zip(offs, sizes)):
            sel = (flat >= o) & (flat < o + n)
            out[j] = np.where(sel, flat - o, -1)
        return out

    def deps(self, needs):
        idx, _, _ = self.table()
        return self._split(idx[needs[0]])

    def compute(self, needs, rd, ns):
        idx, _, _ = self.table()
        parts = self._split(idx[needs[0]])
        which = np.full(needs[0].size, -1, np.int64)            # the input each element comes from
        lab = np.full(needs[0].size, -1, np.int64)
        for j, ij in parts.items():
            sel = ij >= 0
            which[sel] = j
            lab[sel] = rd.labels(j, ij[sel])
        inv, first = unique_rows([which, lab])
        if not rd.want_values:
            return {0: (inv, len(first))}
        vals = np.empty(len(first), dtype=object)
        qt = True
        got = {}
        for j in set(which[first].tolist()):
            sel = which[first] == j
            v = rd.values(j, lab[first][sel]) if j >= 0 else QT(np.zeros(int(sel.sum()), dtype=object), 1)
            got[j] = (sel, v)
            qt &= isinstance(v, QT)
        if qt:
            L = math.lcm(*(v.den for _, v in got.values())) if got else 1
            num = np.zeros(len(first), dtype=object)
            for sel, v in got.values():
                num[sel] = np.ravel(v.num) * (L // v.den)
            return {0: (inv, QT(num, L))}
        for sel, v in got.values():
            vals[sel] = np.ravel(np.asarray(ns.to_fq(v), dtype=object))
        return {0: (inv, homogeneous(vals))}


class Rows(Plan):
    """A plan whose output element e reads one row of its input (``rows(e)``, flat indices) and ``combine``s
    the row's values; equal rows (by labels) are computed once."""

    def deps(self, needs):
        return {0: self.rows(needs[0])}

    def compute(self, needs, rd, ns):
        L = rd.labels(0, self.rows(needs[0]))
        inv, first = unique_matrix(L)
        if not rd.want_values:
            return {0: (inv, len(first))}
        return {0: (inv, _flat(ns, self.combine(ns, rd.values(0, L[first]), L.shape[1]), len(first)))}


class Reduce(Rows):
    """sum, mean, logsumexp over axes: output element e reads its slice; computed by the primitive's own rule
    over the gathered (distinct slices, slice) array."""

    def rows(self, e):
        st = self.st
        shape = tuple(st.in_shapes[0])
        axes = norm_axes(st.params["axes"], len(shape))
        rest = tuple(i for i in range(len(shape)) if i not in axes)
        n = math.prod(shape[a] for a in axes)
        base = np.arange(math.prod(shape)).reshape(shape).transpose(rest + axes).reshape(-1, n)
        return base[e]

    def combine(self, ns, g, n):
        return self.st.rule(ns, {**self.st.params, "axes": (1,), "keepdims": False}, g)


class AvgPool(Rows):
    """avg_pool2d: output element e reads its window; the window's sum over its size."""

    def rows(self, e):
        idx, _, _ = pool_windows(tuple(self.st.in_shapes[0]), self.st.params)
        return idx[e]

    def combine(self, ns, g, n):
        return ns.div(ns.sum(g, (1,)), ns.const(fmpq(n)))


def block_products(ns, rd, rows, cols, row_of, col_of):
    """sum_k a[rows[r, k]] * b[cols[c, k]] for every needed element (row_of[e], col_of[e]): distinct rows and
    columns by their labels, then one exact matrix product of the distinct rows by the distinct columns
    (fmpz_mat on rationals, arb_mat on balls) when that block is not much larger than the need, else one dot
    product per distinct (row, column) pair.  Returns (labels, values), or (labels, how many distinct) when the
    reader wants no values."""
    LA, LB = rd.labels(0, rows), rd.labels(1, cols)
    ia, fa = unique_matrix(LA)
    ib, fb = unique_matrix(LB)
    pr, pc = ia[row_of], ib[col_of]
    inv, first = unique_rows([pr, pc])
    if not rd.want_values:
        return inv, len(first)
    ua, ub = len(fa), len(fb)
    if ua * ub <= 4 * len(first) + 256:
        A = rd.values(0, LA[fa])                                  # (distinct rows, K)
        B = ns.transpose(rd.values(1, LB[fb]), (1, 0))            # (K, distinct columns)
        if ns._kind(A, B) == "fq":
            A, B = ns.to_qt(ns.to_fq(A)), ns.to_qt(ns.to_fq(B))
        P = ns.matmul(A, B)
        vals = ns.take(ns.reshape(P, (ua * ub,)), pr[first] * ub + pc[first])
        return inv, _flat(ns, vals, len(first))
    A = rd.values(0, LA[fa][pr[first]])
    B = rd.values(1, LB[fb][pc[first]])
    return inv, _flat(ns, ns.sum(ns.mul(A, B), (1,)), len(first))


class Dot(Plan):
    """dot (dot_general): output (b, m, n) reads row (b, m, :) of a and column (b, :, n) of b."""

    def maps(self):
        st = self.st
        sa, sb = tuple(st.in_shapes[0]), tuple(st.in_shapes[1])
        p = st.params
        ca, cb = norm_axes(p["ca"], len(sa)), norm_axes(p["cb"], len(sb))
        ba, bb = norm_axes(p["ba"], len(sa)), norm_axes(p["bb"], len(sb))
        fa = tuple(i for i in range(len(sa)) if i not in ca + ba)
        fb = tuple(j for j in range(len(sb)) if j not in cb + bb)
        B, M = math.prod(sa[i] for i in ba), math.prod(sa[i] for i in fa)
        K, N = math.prod(sa[i] for i in ca), math.prod(sb[j] for j in fb)
        ia = np.arange(math.prod(sa)).reshape(sa).transpose(ba + fa + ca).reshape(B * M, K)
        ib = np.arange(math.prod(sb)).reshape(sb).transpose(bb + cb + fb).reshape(B, K, N)
        ib = ib.transpose(0, 2, 1).reshape(B * N, K)
        return ia, ib, (B, M, N)

    def _keys(self, e):
        ia, ib, (B, M, N) = self.maps()
        b, m, n = np.unravel_index(e, (B, M, N))
        rk, ck = b * M + m, b * N + n
        ur, ri = np.unique(rk, return_inverse=True)
        uc, ci = np.unique(ck, return_inverse=True)
        return ia[ur], ib[uc], np.ravel(ri), np.ravel(ci)

    def deps(self, needs):
        rows, cols, _, _ = self._keys(needs[0])
        return {0: rows, 1: cols}

    def compute(self, needs, rd, ns):
        rows, cols, ri, ci = self._keys(needs[0])
        return {0: block_products(ns, rd, rows, cols, ri, ci)}


class Conv(Plan):
    """conv2d: output (n, o, h, w) reads its input window (the channels of its group) and filter o."""

    def _keys(self, e):
        st = self.st
        xshape, wshape = tuple(st.in_shapes[0]), tuple(st.in_shapes[1])
        p = st.params
        N, C, H, W = xshape
        Co, Cg, kh, kw = wshape
        idx, (Ho, Wo) = conv_patches(xshape, kh, kw, tuple(p["stride"]), tuple(p["dilation"]), conv_pads(p))
        n, o, h, w = np.unravel_index(e, (N, Co, Ho, Wo))
        kk = Cg * kh * kw
        G = p["groups"]
        grp = o // (Co // G)
        rk = ((n * Ho + h) * Wo + w) * G + grp
        ur, ri = np.unique(rk, return_inverse=True)
        pos, g = ur // G, ur % G
        rows = idx[pos[:, None], g[:, None] * kk + np.arange(kk)[None, :]]
        uo, ci = np.unique(o, return_inverse=True)
        cols = uo[:, None] * kk + np.arange(kk)[None, :]
        return rows, cols, np.ravel(ri), np.ravel(ci)

    def deps(self, needs):
        rows, cols, _, _ = self._keys(needs[0])
        return {0: rows, 1: cols}

    def compute(self, needs, rd, ns):
        rows, cols, ri, ci = self._keys(needs[0])
        return {0: block_products(ns, rd, rows, cols, ri, ci)}


class Sites(Plan):
    """A nonsmooth equation frozen to its chosen pieces: output element (site, row) reads the arguments of
    its site that the chosen piece's row has a nonzero coefficient on."""

    def __init__(self, st, program, pattern):
        super().__init__(st, program)
        self.pattern = pattern          # flat piece indices over the site grid

    def owners(self, r, e):
        """(group, location in the group, row) of the flat indices ``e`` of output r."""
        st = self.st
        if st.sites.elementwise:
            return np.zeros(e.size, np.int64), e, np.full(e.size, r)
        sizes = [math.prod(s) for s in st.out_shapes]
        total = sum(sizes)
        off = sum(sizes[:r])
        grp = np.full(total, -1, np.int64)
        loc = np.full(total, -1, np.int64)
        row = np.full(total, -1, np.int64)
        for gi, g in enumerate(st.sites.groups):
            for rr, o in enumerate(g.outs):
                grp[o] = gi
                loc[o] = np.arange(len(o))
                row[o] = rr
        f = e + off
        return grp[f], loc[f], row[f]

    def arg_index(self, gi, j, locs):
        """(input position, flat index in it) arrays of argument j at the sites ``locs`` of group gi."""
        st = self.st
        g = st.sites.groups[gi]
        if st.sites.elementwise:
            return np.full(len(locs), j), broadcast_index(g.sites[locs], tuple(st.sites.grid), tuple(st.in_shapes[j]))
        flat = np.asarray(g.args[j])[locs]
        sizes = [math.prod(s) for s in st.in_shapes]
        offs = np.cumsum([0] + sizes)
        p = np.searchsorted(offs, flat, side="right") - 1
        return p, flat - offs[p]

    def _terms(self, needs):
        """Batches of needed output elements with one piece row: (output, positions in needs, group, sites,
        terms, constant)."""
        st = self.st
        batches = []
        for r, e in needs.items():
            gis, locs, rows = self.owners(r, e)
            for gi in np.unique(gis).tolist():
                sel = np.nonzero(gis == gi)[0]
                g = st.sites.groups[gi]
                pieces = self.pattern[g.sites[locs[sel]]]
                rs = rows[sel]
                if pieces.dtype == object:
                    keys = sorted(set(zip(pieces.tolist(), rs.tolist())))
                    groups = [sel[(pieces == kp) & (rs == kr)] for kp, kr in keys]
                else:                       # integer pieces: one sort instead of a Python set over the sites
                    code = pieces.astype(np.int64) * (int(rs.max()) + 1 if rs.size else 1) + rs
                    order = np.argsort(code, kind="stable")
                    cuts = np.flatnonzero(np.diff(code[order])) + 1
                    groups = [sel[o] for o in np.split(order, cuts)] if order.size else []
                    keys = [(int(pieces[o[0]]), int(rs[o[0]])) for o in np.split(order, cuts)] if order.size else []
                for (kp, kr), m in zip(keys, groups):
                    terms, const = st.piece(g.n, kp).rows[kr]
                    batches.append((r, m, gi, locs[m], [(j, c) for j, c in terms if c != 0], const))
        return batches

    def deps(self, needs):
        out = {}
        for r, m, gi, locs, terms, const in self._terms(needs):
            for j, c in terms:
                p, idx = self.arg_index(gi, j, locs)
                for pj in np.unique(p).tolist():
                    out.setdefault(pj, []).append(idx[p == pj])
        return {j: np.concatenate(v) for j, v in out.items()}

    def compute(self, needs, rd, ns):
        parts = {r: [] for r in needs}
        for r, m, gi, locs, terms, const in self._terms(needs):
            inv, vals = affine_at(self, rd, ns, gi, locs, terms, const)
            parts[r].append((m, inv, vals))
        return {r: _assemble(ns, parts[r], needs[r].size) for r in needs}


def affine_at(plan, rd, ns, gi, locs, terms, const):
    """(labels, values) of sum c_j * arg_j + const at the sites ``locs`` of group gi: computed once per
    distinct combination of the arguments' labels ((labels, how many distinct) when the reader wants no
    values)."""
    cols, reads = [], []
    for j, c in terms:
        p, idx = plan.arg_index(gi, j, locs)
        lab = np.full(len(locs), -1, np.int64)
        for pj in np.unique(p).tolist():
            sel = p == pj
            lab[sel] = rd.labels(pj, idx[sel])
        cols += [p.astype(np.int64), lab]
        reads.append((p, lab, c))
    if not cols:
        if not rd.want_values:
            return np.zeros(len(locs), np.int64), 1
        k = ns.const(fmpq(const))
        return np.zeros(len(locs), np.int64), _flat(ns, k, 1)
    inv, first = unique_rows(cols)
    if not rd.want_values:
        return inv, len(first)
    acc = None
    for p, lab, c in reads:
        pf, lf = p[first], lab[first]
        ps = np.unique(pf).tolist()
        if len(ps) == 1:
            a = rd.values(ps[0], lf)
        else:
            a = np.empty(len(first), dtype=object)
            for pj in ps:
                sel = pf == pj
                a[sel] = np.ravel(np.asarray(ns.to_fq(rd.values(pj, lf[sel])), dtype=object))
            a = homogeneous(a)
        t = a if c == 1 else (ns.neg(a) if c == -1 else ns.mul(ns.const(c), a))
        acc = t if acc is None else ns.add(acc, t)
    if const != 0:
        acc = ns.add(acc, ns.const(fmpq(const)))
    return inv, _flat(ns, acc, len(first))


def _assemble(ns, parts, n):
    """(labels, values) over n needed elements from batches (positions, labels, values): the batches'
    tables laid end to end."""
    labels = np.zeros(n, np.int64)
    tables, off = [], 0
    for m, inv, vals in parts:
        labels[m] = inv + off
        off += table_size(vals)
        tables.append(vals)
    if all(isinstance(t, int) for t in tables):
        return labels, off
    return labels, concat_values(ns, tables)


def table_size(vals):
    """How many distinct values a table holds (an int stands for a table of labels without values)."""
    if isinstance(vals, int):
        return vals
    return len(vals.num) if isinstance(vals, QT) else len(vals)


def concat_values(ns, tables):
    """Flat exact arrays end to end: a QT when all are rational."""
    if not tables:
        return QT(np.zeros(0, dtype=object), 1)
    if all(isinstance(t, QT) for t in tables):
        L = math.lcm(*(t.den for t in tables))
        return QT(np.concatenate([np.ravel(t.num) * (L // t.den) for t in tables]).astype(object), L)
    return homogeneous(np.concatenate([np.ravel(np.asarray(ns.to_fq(t), dtype=object)) for t in tables]))


def take_values(table, labels):
    """The values of a flat exact table at ``labels`` (any shape; -1 gives 0)."""
    labels = np.asarray(labels)
    if isinstance(table, QT):
        num = np.append(table.num, 0)[labels] if labels.size else np.zeros(labels.shape, dtype=object)
        return QT(np.asarray(num, dtype=object), table.den)
    zero = arb(0) if table.size and isinstance(table[0], arb) else fmpq(0)
    out = np.append(table, zero)[labels] if labels.size else np.empty(labels.shape, dtype=object)
    return np.asarray(out, dtype=object)


ELEMENTWISE = ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "sin", "cos", "tanh", "erf",
               "sigmoid", "atan", "lgamma", "polygamma", "erfinv", "bessel_i", "root", "expm",
               "floor", "ceil", "round", "trunc")       # the steps: elementwise too (constant between jumps)
INDEX = ("reshape", "transpose", "broadcast_to", "slice", "pad", "concat", "take_along")
PLANS = {**{p: Elementwise for p in ELEMENTWISE}, **{p: Index for p in INDEX},
         "sum": Reduce, "mean": Reduce, "logsumexp": Reduce, "avg_pool2d": AvgPool, "dot": Dot, "conv2d": Conv}
NONSMOOTH = Sites                # every nonsmooth primitive: its site table


def plan_missing():
    """The smooth primitives without a plan (a test asserts there are none)."""
    return sorted(p for p, prim in PRIMITIVES.items() if prim.smooth and p not in PLANS)


# -------------------------------------------------------------------------------------------------- cone

class _Known:
    """The computed elements of one variable: ``pos`` (per flat element, its label, -1 when not computed) and
    ``table`` (the values of the labels)."""
    __slots__ = ("pos", "table", "n")

    def __init__(self, size):
        self.pos = np.full(size, -1, np.int64)
        self.table = None
        self.n = 0


class _Source:
    """An input, an array constant or a literal: labels from its exact values (equal numbers, equal labels)."""
    __slots__ = ("labels", "table")

    def __init__(self, labels, table):
        self.labels, self.table = labels, table


class Reader:
    """What a plan reads of one equation's inputs (see the plans' comment)."""

    def __init__(self, cone, st):
        self.cone, self.st = cone, st
        self.want_values = cone.want_values

    def labels(self, j, idx):
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size == 0:           # nothing read of this input (a pad's fill only): it need not be known
            return np.zeros(idx.shape, np.int64)
        atom = self.st.ins[j]
        self.cone.gathered += idx.size
        if self.cone.gathered > self.cone.budget:
            raise ConeTooLarge(f"the cone reads more than {self.cone.budget} elements")
        src = self.cone.source(atom)
        out = _labels_at(src, idx)
        if not isinstance(src, _Source) and bool(np.any((out < 0) & (idx >= 0))):
            raise AssertionError(f"the cone did not compute every element of variable {atom} it reads")
        return out

    def values(self, j, labels):
        src = self.cone.source(self.st.ins[j])
        return take_values(src.table, labels)


class Cone:
    """Exact values of chosen elements of the variables of ``program`` at the exact point ``xs`` (ExactArrays,
    one per input), under ``convention``, with the nonsmooth equations before the requested ones frozen to
    ``patterns`` ({equation index: flat piece array}).  Values are computed at ``prec`` bits where they are
    balls; ``budget`` bounds the labels gathered (ConeTooLarge beyond it).  ``values=False``: labels only
    (``switch_ties``), no arithmetic at all."""

    def __init__(self, program, xs, convention, prec, budget=BUDGET, values=True):
        self.program, self.xs, self.convention, self.prec = program, xs, convention, prec
        self.steps = T.compiled(program, convention)
        self.defined_by = {o: k for k, st in enumerate(self.steps) for o in st.outs}
        self.known = {}                 # var -> _Known
        self.sources = {}
        self.patterns = {}
        self.budget = budget
        self.gathered = 0
        self.ns = ExactTensors()
        self.want_values = values

    def plan(self, st):
        if st.sites is not None:
            pat = self.patterns.get(st.k)
            if pat is None:
                raise InputError(f"equation {st.k + 1}: its pattern is not known yet")
            return Sites(st, self.program, np.ravel(pat))
        cls = PLANS.get(st.prim)
        if cls is None:
            raise InputError(f"no cone plan for primitive {st.prim!r}")
        return cls(st, self.program)

    def source(self, atom):
        """The _Known of a computed variable, or the _Source of an input, array constant or literal."""
        if isinstance(atom, int) and atom >= self.program.n_inputs:
            return self.known[atom]
        key = ("l", id(atom)) if isinstance(atom, Lit) else ("a", atom.name) if isinstance(atom, Arr) else \
            ("i", atom)
        src = self.sources.get(key)
        if src is None:
            if isinstance(atom, Lit):
                q = self.ns.const(atom.value)
                src = _Source(np.zeros(1, np.int64), QT(np.ravel(q.num), q.den))
            else:
                ea = self.program.arrays[atom.name] if isinstance(atom, Arr) else self.xs[atom]
                src = _Source(*_labelled(ea))
            self.sources[key] = src
        return src

    def _var_size(self, v):
        return math.prod(self.program.shapes[v])

    def _missing(self, var, idx):
        """The distinct flat indices of ``idx`` (>= 0) not computed yet for ``var``."""
        idx = np.asarray(idx, dtype=np.int64).ravel()
        idx = idx[idx >= 0]
        k = self.known.get(var)
        mask = np.zeros(self._var_size(var), dtype=bool)
        mask[idx] = True
        if k is not None:
            mask &= k.pos < 0
        return np.flatnonzero(mask)

    def ensure(self, needs):
        """Compute the exact values of every needed element ({var: flat indices}) and of its cone."""
        pending = {}
        for v, idx in needs.items():
            miss = self._missing(v, idx)
            if miss.size:
                pending[v] = miss
        if not pending:
            return
        todo = []
        for k in range(max(self.defined_by[v] for v in pending), -1, -1):
            st = self.steps[k]
            out_needs = {r: pending.pop(o) for r, o in enumerate(st.outs) if o in pending}
            if not out_needs:
                continue
            plan = self.plan(st)
            for j, idx in plan.deps(out_needs).items():
                a = st.ins[j]
                if isinstance(a, int) and a >= self.program.n_inputs:
                    self.gathered += int(np.size(idx))
                    if self.gathered > self.budget:
                        raise ConeTooLarge(f"the cone reads more than {self.budget} elements")
                    both = idx if a not in pending else np.concatenate([np.ravel(idx), pending[a]])
                    miss = self._missing(a, both)
                    if miss.size:
                        pending[a] = miss
            todo.append((st, plan, out_needs))
        with T.working_precision(self.ns, self.prec):
            for st, plan, out_needs in reversed(todo):
                for r, (labels, vals) in plan.compute(out_needs, Reader(self, st), self.ns).items():
                    self._store(st.outs[r], out_needs[r], labels, vals)

    def _store(self, var, idx, labels, vals):
        k = self.known.get(var)
        if k is None:
            k = self.known[var] = _Known(self._var_size(var))
        k.pos[idx] = labels + k.n
        if not isinstance(vals, int):
            k.table = vals if k.table is None else concat_values(self.ns, [k.table, vals])
        k.n += table_size(vals)

    def values(self, atom, idx):
        """Exact values (a QT or an object array of fmpq / arb) of ``atom`` at the flat indices ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        if isinstance(atom, int) and atom >= self.program.n_inputs:
            self.ensure({atom: idx})
        src = self.source(atom)
        with T.working_precision(self.ns, self.prec):
            return take_values(src.table, _labels_at(src, idx))

    # -- the questions the filter asks
    def _switch_needs(self, plan, st, gi, locs, which):
        """{variable: flat indices} of the arguments the switching functions read at their sites ``locs[w]``."""
        needs = {}
        for (terms, const), w in zip(st.switches[gi], which):
            at = locs[w]
            if not at.size:
                continue
            for j, c in terms:
                p, idx = plan.arg_index(gi, j, at)
                for pj in np.unique(p).tolist():
                    a = st.ins[pj]
                    if isinstance(a, int) and a >= self.program.n_inputs:
                        needs[a] = np.concatenate([needs.get(a, np.zeros(0, np.int64)), idx[p == pj]])
        return needs

    def switch_signs(self, st, gi, locs, which=None):
        """The exact signs (int8 arrays over ``locs``, SIGN_UNDECIDED where a ball still contains 0) of every
        switching function of group ``gi`` of nonsmooth step ``st`` at its sites ``locs``; ``which`` (one bool
        array over locs per switching function) limits the work to those sites (SIGN_UNDECIDED elsewhere)."""
        locs = np.asarray(locs, dtype=np.int64)
        which = which or [np.ones(len(locs), bool) for _ in st.switches[gi]]
        plan = Sites(st, self.program, np.zeros(st.sites.n_sites, np.int64))
        self.ensure(self._switch_needs(plan, st, gi, locs, which))
        out = []
        rd = Reader(self, st)
        with T.working_precision(self.ns, self.prec):
            for (terms, const), w in zip(st.switches[gi], which):
                s = np.full(len(locs), SIGN_UNDECIDED, np.int8)
                at = locs[w]
                if at.size:
                    inv, vals = affine_at(plan, rd, self.ns, gi, at, [(j, c) for j, c in terms if c != 0], const)
                    e = np.asarray(self.ns.signs(vals), dtype=np.int8).ravel()
                    s[w] = e[inv] if e.size > 1 else np.broadcast_to(e, (at.size,))
                out.append(s)
        return out

    def switch_ties(self, st, gi, locs, which):
        """Per switching function of group ``gi`` of step ``st``, the bool array over ``locs`` (among ``which``)
        of the sites where it is exactly 0 by its arguments' labels alone: its constant is 0 and the
        coefficients of equally labelled arguments of the same input cancel (max(a, b) switches on a - b: a
        and b equally labelled).  Labels only: no arithmetic (a labels cone, ``values=False``, suffices)."""
        locs = np.asarray(locs, dtype=np.int64)
        plan = Sites(st, self.program, np.zeros(st.sites.n_sites, np.int64))
        self.ensure(self._switch_needs(plan, st, gi, locs, which))
        rd = Reader(self, st)
        out = []
        for (terms, const), w in zip(st.switches[gi], which):
            tie = np.zeros(len(locs), bool)
            terms = [(j, c) for j, c in terms if c != 0]
            at = locs[w]
            if at.size and const == 0:
                keys = []
                for j, c in terms:
                    p, idx = plan.arg_index(gi, j, at)
                    lab = np.full(at.size, -2, np.int64)
                    for pj in np.unique(p).tolist():
                        sel = p == pj
                        lab[sel] = rd.labels(pj, idx[sel])
                    keys.append((p, lab, c))
                den = math.lcm(*(int(fmpq(c).q) for _, _, c in keys)) if keys else 1
                ok = np.ones(at.size, bool)
                for p, lab, c in keys:       # the coefficients of the arguments equal to this one sum to 0
                    total = 0
                    for q, lq, d in keys:
                        total = total + np.where((q == p) & (lq == lab), int(fmpq(d) * den), 0)
                    ok &= np.asarray(total) == 0
                tie[np.flatnonzero(w)[ok]] = True
            out.append(tie)
        return out


def _labels_at(src, idx):
    """The labels of a source or known variable at flat indices (any shape; -1 stays -1, a zero)."""
    if isinstance(src, _Source):
        if src.labels.size == 1:                                  # a literal: one value everywhere
            return np.where(idx < 0, -1, 0)
        lab = src.labels
    else:
        lab = src.pos
    out = lab[np.maximum(idx, 0)]
    neg = idx < 0
    if neg.any():
        out = np.where(neg, -1, out)
    return out


def _labelled(ea):
    """(labels, table) of an ExactArray: equal entries, equal labels (from its floats when it has them)."""
    fl = getattr(ea, "_float", None)
    flat_num = np.ravel(ea.num)
    if fl is not None:
        _, first, inv = np.unique(np.ravel(np.asarray(fl, dtype=np.float64)), return_index=True, return_inverse=True)
    else:
        _, first, inv = np.unique(flat_num, return_index=True, return_inverse=True)
    return np.ravel(inv).astype(np.int64), QT(np.asarray(flat_num[first], dtype=object), ea.den)


__all__ = ["Cone", "ConeTooLarge", "PLANS", "plan_missing", "BUDGET"]
