"""Exact values of a few elements of a tensor program, computed through their dependency cone only.

The float filter (filtered.py) decides most switching functions from midpoint-radius enclosures; the few it
cannot decide (exact ties, near ties) need the exact values of their arguments.  Those depend on a small part
of the program: the rows and columns that feed them.  ``Cone`` walks the equations backwards from the
requested elements, asking each equation's *plan* which input elements its needed output elements read (a
row of a matrix product reads a row and a column; a chosen max-pool piece reads one element of its window;
a relu frozen to its zero piece reads nothing), then forwards, computing exactly (rationals, or balls where
a value stops being rational) only the needed elements.

Upstream nonsmooth equations are evaluated with the pieces already chosen (proved) at their sites, so the
cone follows the pattern, never re-deciding it.  Every primitive of the interpreter has a plan (PLANS), and
tests/test_filter.py walks them all.
"""
import math

import numpy as np
from flint import fmpq

from ..errors import InputError
from ..numbers.tensor import UNDECIDED, ExactTensors
from ..program.ir import Arr, Lit
from ..program.prims import PRIMITIVES
from ..program.prims.tensor import conv_pads, conv_patches, pool_windows
from . import tensor as T

BUDGET = 20_000_000        # gathered elements per cone: beyond it the caller evaluates everything exactly


class ConeTooLarge(Exception):
    """The cone of the requested elements is too large to be worth evaluating element by element."""


def norm_axes(axes, ndim):
    return tuple(a + ndim if a < 0 else a for a in axes)


# ------------------------------------------------------------------------------------------------- plans
# A plan answers two questions about one equation for a set of needed output elements (``needs``: {output
# position: sorted flat indices}): ``deps`` -> {input position: flat indices it reads (-1 = a zero)}, and
# ``compute(needs, get)`` -> {output position: exact values}, where ``get(j, idx)`` returns the exact values
# of input j at flat indices idx (an array of any shape; -1 gives 0).

class Plan:
    def __init__(self, st, program):
        self.st = st
        self.program = program

    def size(self, needs):
        """How many elements the computation gathers (for the budget)."""
        return sum(v.size for v in self.deps(needs).values())


class Elementwise(Plan):
    """A smooth elementwise primitive: output element e reads input j at its broadcast position."""

    def maps(self):
        st = self.st
        grid = tuple(st.out_shapes[0])
        return [np.broadcast_to(np.arange(math.prod(s)).reshape(s), grid).ravel() for s in st.in_shapes]

    def deps(self, needs):
        e = needs[0]
        return {j: m[e] for j, m in enumerate(self.maps())}

    def compute(self, needs, get, ns):
        e = needs[0]
        args = [get(j, m[e]) for j, m in enumerate(self.maps())]
        return {0: self.st.rule(ns, self.st.params, *args)}


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
        st = self.st
        sizes = [math.prod(s) for s in st.in_shapes]
        offs = np.cumsum([0] + sizes[:-1])
        xs = [np.arange(o, o + n).reshape(s) for o, n, s in zip(offs, sizes, st.in_shapes)]
        return np.ravel(st.rule(_IndexNS(), st.params, *xs)), offs, sizes

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

    def compute(self, needs, get, ns):
        idx, _, _ = self.table()
        parts = self._split(idx[needs[0]])
        acc = None
        for j, ij in parts.items():
            v = get(j, ij)
            acc = v if acc is None else ns.add(acc, v)
        return {0: acc}


class Reduce(Plan):
    """sum, mean, logsumexp over axes: output element e reads its slice; computed by the primitive's own rule
    over the gathered (needed, slice) array."""

    def rows(self, e):
        st = self.st
        shape = tuple(st.in_shapes[0])
        axes = norm_axes(st.params["axes"], len(shape))
        rest = tuple(i for i in range(len(shape)) if i not in axes)
        n = math.prod(shape[a] for a in axes)
        base = np.arange(math.prod(shape)).reshape(shape).transpose(rest + axes).reshape(-1, n)
        return base[e]

    def deps(self, needs):
        return {0: self.rows(needs[0])}

    def compute(self, needs, get, ns):
        g = get(0, self.rows(needs[0]))
        return {0: self.st.rule(ns, {**self.st.params, "axes": (1,), "keepdims": False}, g)}


class AvgPool(Plan):
    def rows(self, e):
        idx, _, _ = pool_windows(tuple(self.st.in_shapes[0]), self.st.params)
        return idx[e]

    def deps(self, needs):
        return {0: self.rows(needs[0])}

    def compute(self, needs, get, ns):
        rows = self.rows(needs[0])
        s = ns.sum(get(0, rows), (1,))
        return {0: ns.div(s, ns.const(fmpq(rows.shape[1])))}


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
        ia = np.arange(math.prod(sa)).reshape(sa).transpose(ba + fa + ca).reshape(B, M, K)
        ib = np.arange(math.prod(sb)).reshape(sb).transpose(bb + cb + fb).reshape(B, K, N)
        return ia, ib, (B, M, N)

    def deps(self, needs):
        ia, ib, shape = self.maps()
        b, m, n = np.unravel_index(needs[0], shape)
        return {0: ia[b, m, :], 1: ib[b, :, n]}

    def compute(self, needs, get, ns):
        d = self.deps(needs)
        return {0: ns.sum(ns.mul(get(0, d[0]), get(1, d[1])), (1,))}


class Conv(Plan):
    """conv2d: output (n, o, h, w) reads its input window (the channels of its group) and filter o."""

    def deps(self, needs):
        st = self.st
        xshape, wshape = tuple(st.in_shapes[0]), tuple(st.in_shapes[1])
        p = st.params
        N, C, H, W = xshape
        Co, Cg, kh, kw = wshape
        idx, (Ho, Wo) = conv_patches(xshape, kh, kw, tuple(p["stride"]), tuple(p["dilation"]), conv_pads(p))
        n, o, h, w = np.unravel_index(needs[0], (N, Co, Ho, Wo))
        kk = Cg * kh * kw
        grp = o // (Co // p["groups"])
        row = (n * Ho + h) * Wo + w
        cols = grp[:, None] * kk + np.arange(kk)[None, :]
        return {0: idx[row[:, None], cols], 1: o[:, None] * kk + np.arange(kk)[None, :]}

    def compute(self, needs, get, ns):
        d = self.deps(needs)
        return {0: ns.sum(ns.mul(get(0, d[0]), get(1, d[1])), (1,))}


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
            grid = tuple(st.sites.grid)
            s = st.in_shapes[j]
            m = np.broadcast_to(np.arange(math.prod(s)).reshape(s), grid).ravel()
            return np.full(len(locs), j), m[g.sites[locs]]
        flat = np.asarray(g.args[j])[locs]
        sizes = [math.prod(s) for s in st.in_shapes]
        offs = np.cumsum([0] + sizes)
        p = np.searchsorted(offs, flat, side="right") - 1
        return p, flat - offs[p]

    def _terms(self, needs):
        """Per needed output element: its (group, loc, row, piece); grouped into batches with one piece row."""
        st = self.st
        batches = []
        for r, e in needs.items():
            gis, locs, rows = self.owners(r, e)
            for gi in np.unique(gis).tolist():
                sel = np.nonzero(gis == gi)[0]
                g = st.sites.groups[gi]
                pieces = self.pattern[g.sites[locs[sel]]]
                for key in sorted(set(zip(pieces.tolist(), rows[sel].tolist()))):
                    m = sel[(pieces == key[0]) & (rows[sel] == key[1])]
                    terms, const = st.piece(g.n, key[0]).rows[key[1]]
                    batches.append((r, m, gi, locs[m], terms, const))
        return batches

    def deps(self, needs):
        out = {}
        for r, m, gi, locs, terms, const in self._terms(needs):
            for j, c in terms:
                if c != 0:
                    p, idx = self.arg_index(gi, j, locs)
                    for pj in np.unique(p).tolist():
                        out.setdefault(pj, []).append(idx[p == pj])
        return {j: np.concatenate(v) for j, v in out.items()}

    def compute(self, needs, get, ns):
        vals = {r: np.empty(e.size, dtype=object) for r, e in needs.items()}
        for r, m, gi, locs, terms, const in self._terms(needs):
            acc = None
            for j, c in terms:
                if c == 0:
                    continue
                p, idx = self.arg_index(gi, j, locs)
                a = _get_mixed(get, p, idx, ns)
                t = a if c == 1 else ns.mul(ns.const(c), a)
                acc = t if acc is None else ns.add(acc, t)
            if const != 0 or acc is None:
                k = ns.const(fmpq(const))
                acc = k if acc is None else ns.add(acc, k)
            vals[r][m] = np.broadcast_to(_objects(ns, acc), (len(m),))
        return vals


def _get_mixed(get, p, idx, ns):
    """Values of arguments that may live in different inputs (p: input position per element)."""
    ps = np.unique(p).tolist()
    if len(ps) == 1:
        return get(ps[0], idx)
    out = np.empty(len(idx), dtype=object)
    for pj in ps:
        sel = p == pj
        out[sel] = _objects(ns, get(pj, idx[sel]))
    return out


def _objects(ns, v):
    """An exact value (QT, object array, 0-d) as a flat object array of fmpq / arb."""
    return np.ravel(np.asarray(ns.to_fq(v), dtype=object))


ELEMENTWISE = ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "sin", "cos", "tanh", "erf",
               "sigmoid")
INDEX = ("reshape", "transpose", "broadcast_to", "slice", "pad", "concat", "take_along")
PLANS = {**{p: Elementwise for p in ELEMENTWISE}, **{p: Index for p in INDEX},
         "sum": Reduce, "mean": Reduce, "logsumexp": Reduce, "avg_pool2d": AvgPool, "dot": Dot, "conv2d": Conv}
NONSMOOTH = Sites                # every nonsmooth primitive: its site table


def plan_missing():
    """The smooth primitives without a plan (a test asserts there are none)."""
    return sorted(p for p, prim in PRIMITIVES.items() if prim.smooth and p not in PLANS)


# -------------------------------------------------------------------------------------------------- cone

class Cone:
    """Exact values of chosen elements of the variables of ``program`` at the exact point ``xs`` (ExactArrays,
    one per input), under ``convention``, with the nonsmooth equations before the requested ones frozen to
    ``patterns`` ({equation index: flat piece array}).  Values are computed at ``prec`` bits where they are
    balls; ``budget`` bounds the gathered elements (ConeTooLarge beyond it)."""

    def __init__(self, program, xs, convention, prec, budget=BUDGET):
        self.program, self.xs, self.convention, self.prec = program, xs, convention, prec
        self.steps = T.compiled(program, convention)
        self.defined_by = {o: k for k, st in enumerate(self.steps) for o in st.outs}
        self.known = {}                 # var -> (sorted flat indices, object array of values)
        self.patterns = {}
        self.budget = budget
        self.gathered = 0
        self.ns = ExactTensors()

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

    # -- reading values
    def _atom_values(self, atom, idx):
        """Exact values of an atom (variable, literal, array constant) at flat indices (any shape; -1: 0)."""
        ns = self.ns
        idx = np.asarray(idx)
        if isinstance(atom, Lit):
            return ns.const(atom.value)
        if isinstance(atom, Arr) or atom < self.program.n_inputs:
            ea = self.program.arrays[atom.name] if isinstance(atom, Arr) else self.xs[atom]
            num = np.append(np.ravel(ea.num), 0)[idx] if idx.size and int(idx.min()) < 0 else np.ravel(ea.num)[idx]
            from ..numbers.tensor import QT
            return QT(np.asarray(num, dtype=object), ea.den)
        have, vals = self.known[atom]
        neg = idx < 0
        pos = np.minimum(np.searchsorted(have, idx), max(have.size - 1, 0))
        pos = np.where(neg, 0, pos)
        if have.size == 0 or not np.array_equal(have[pos][~neg], idx[~neg]):
            raise AssertionError(f"the cone did not compute every element of variable {atom} it reads")
        out = vals[pos]
        if neg.any():
            out = np.where(neg, fmpq(0), out)
        return np.asarray(out, dtype=object)

    def values(self, atom, idx):
        """Exact values (an object array of fmpq / arb, or a QT) of ``atom`` at the flat indices ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        if isinstance(atom, int) and atom >= self.program.n_inputs:
            flat = np.unique(idx[idx >= 0])
            self.ensure({atom: flat})
        return self._atom_values(atom, idx)

    # -- the walk
    def _missing(self, var, idx):
        have = self.known.get(var)
        if have is None:
            return idx
        return np.setdiff1d(idx, have[0], assume_unique=True)

    def ensure(self, needs):
        """Compute the exact values of every needed element ({var: flat indices}) and of its cone."""
        pending = {}
        for v, idx in needs.items():
            miss = self._missing(v, np.unique(idx))
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
            deps = plan.deps(out_needs)
            self.gathered += sum(int(np.size(d)) for d in deps.values())
            if self.gathered > self.budget:
                raise ConeTooLarge(f"the cone reads more than {self.budget} elements")
            for j, idx in deps.items():
                a = st.ins[j]
                if isinstance(a, int) and a >= self.program.n_inputs:
                    idx = np.asarray(idx).ravel()
                    miss = self._missing(a, np.unique(idx[idx >= 0]))
                    if miss.size:
                        pending[a] = miss if a not in pending else np.union1d(pending[a], miss)
            todo.append((st, plan, out_needs))
        with T._precision(self.ns, self.prec):
            for st, plan, out_needs in reversed(todo):
                vals = plan.compute(out_needs, lambda j, idx, st=st: self._atom_values(st.ins[j], idx), self.ns)
                for r, e in out_needs.items():
                    self._store(st.outs[r], e, _objects(self.ns, vals[r]))

    def _store(self, var, idx, vals):
        vals = np.broadcast_to(vals, (idx.size,)) if vals.size != idx.size else vals
        have = self.known.get(var)
        if have is None:
            self.known[var] = (idx, np.asarray(vals, dtype=object))
            return
        allidx = np.concatenate([have[0], idx])
        allv = np.concatenate([have[1], np.asarray(vals, dtype=object)])
        order = np.argsort(allidx, kind="stable")
        self.known[var] = (allidx[order], allv[order])

    # -- the question the filter asks
    def switch_signs(self, st, gi, locs):
        """The exact signs (int8 arrays, UNDECIDED where a ball still contains 0) of every switching function
        of group ``gi`` of nonsmooth step ``st`` at its sites ``locs``."""
        plan = Sites(st, self.program, np.zeros(st.sites.n_sites, np.int64))
        ns = self.ns
        out = []
        cache = {}
        for terms, const in st.switches[gi]:
            acc = None
            for j, c in terms:
                if j not in cache:
                    p, idx = plan.arg_index(gi, j, locs)
                    for pj in np.unique(p).tolist():
                        a = st.ins[pj]
                        sel = idx[p == pj]
                        if isinstance(a, int) and a >= self.program.n_inputs:
                            self.ensure({a: np.unique(sel)})
                    with T._precision(ns, self.prec):
                        cache[j] = _get_mixed(lambda q, ix: self._atom_values(st.ins[q], ix), p, idx, ns)
                a = cache[j]
                with T._precision(ns, self.prec):
                    t = a if c == 1 else (ns.neg(a) if c == -1 else ns.mul(ns.const(c), a))
                    acc = t if acc is None else ns.add(acc, t)
            with T._precision(ns, self.prec):
                if const != 0 or acc is None:
                    k = ns.const(fmpq(const))
                    acc = k if acc is None else ns.add(acc, k)
                s = ns.signs(acc)
            out.append(np.broadcast_to(np.asarray(s, dtype=np.int8).ravel(), (len(locs),)).copy())
        return out


__all__ = ["Cone", "ConeTooLarge", "PLANS", "plan_missing", "BUDGET", "UNDECIDED"]
