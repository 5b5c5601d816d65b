"""Degenerate ties at sites of tensor programs (issue 21): a switching function of an elementwise site that
vanishes at x with a zero gradient, and whose dependency cone is elementwise (every equation it depends on
maps elements to elements, with numpy broadcasting), is the switching function of a small scalar program over
the input elements it reads, with the branch's pieces at the cone's nonsmooth sites.  Its lowest-order part is
read as for scalar programs (germs.py): "zero" (zero on the branch) and "generic" (one sign on an open dense
set near x) decide the tie; "higher" parts of tensor programs stay UNDECIDED (their directions would live in
the space of every input element).

The scalar program's inputs are the input elements the switching function reads, ordered by (input, flat
index): the certificate states them (``variables``) beside the lowest-order part, whose exponents refer to
them; the checker builds its own projection (verify/checker/sites.py) and requires the same statement.
"""
import numpy as np
from flint import fmpq

from ..program.builder import Builder
from ..program.ir import Arr, Lit
from ..program.prims import PRIMITIVES
from . import germs

ELEMENTWISE = ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid",
               "erf", "relu", "abs", "leaky_relu", "clamp", "hardtanh", "relu6", "max", "min", "where")


def _broadcast(idx, shape):
    """The element of an array of ``shape`` that element ``idx`` of a broadcast result reads."""
    off = len(idx) - len(shape)
    return tuple(0 if n == 1 else idx[off + d] for d, n in enumerate(shape))


class Projection:
    """The scalar program of one element of an elementwise cone: ``program`` (its output the switching
    function's arguments' combination is built by the caller), ``point`` (the input elements' values at x),
    ``variables`` ((input, flat index) per scalar input), ``pieces`` (piece index per scalar nonsmooth
    equation, from ``piece_at(k, flat site)``)."""

    def __init__(self, P, point, piece_at):
        self.P, self.point, self.piece_at = P, point, piece_at
        self.eq_of = {o: k for k, e in enumerate(P.eqns) for o in e.outs}
        self.order = []            # (var, idx) of the cone in post-order (operands first)

    def collect(self, k, idx):
        """The cone of equation k's arguments at element ``idx`` of its output; False when it is not
        elementwise."""
        seen, todo = set(), [(a, idx) for a in self.P.eqns[k].ins if isinstance(a, int)]
        stack = []
        while todo:
            v, i = todo.pop()
            key = (v, _broadcast(i, self.P.shapes[v]))
            if key in seen:
                continue
            seen.add(key)
            stack.append(key)
            m = self.eq_of.get(v)
            if m is not None:
                if self.P.eqns[m].prim not in ELEMENTWISE:
                    return False
                todo.extend((a, key[1]) for a in self.P.eqns[m].ins if isinstance(a, int))
        self.order = sorted(stack, key=lambda key: key[0])         # variables are numbered in program order
        return True

    def build(self, k, idx, coefs, const):
        """(scalar Program computing the switching function sum(coefs[j] * arg_j) + const, point, pieces,
        variables), or None when the cone is not elementwise."""
        if not self.collect(k, idx):
            return None
        inputs = sorted({(v, i) for v, i in self.order if v < self.P.n_inputs})
        flat = [(v, int(np.ravel_multi_index(i, self.P.shapes[v])) if i else 0) for v, i in inputs]
        b = Builder("site", [f"e{n}" for n in range(len(inputs))])
        var = {key: n for n, key in enumerate(inputs)}
        pieces = []
        for v, i in self.order:
            m = self.eq_of.get(v)
            if m is None or (v, i) in var:
                continue
            e = self.P.eqns[m]
            ins = [self.scalar(a, i, var) for a in e.ins]
            outs = b.emit(e.prim, ins, dict(e.params), n_out=len(e.outs))
            for o, so in zip(e.outs, outs):
                var[(o, i)] = so
            if not PRIMITIVES[e.prim].smooth:
                grid = self.P.shapes[e.outs[0]]
                pieces.append(self.piece_at(m, int(np.ravel_multi_index(i, grid)) if i else 0))
        args = [self.scalar(a, idx, var) for a in self.P.eqns[k].ins]
        acc = None
        for c, a in zip(coefs, args):
            if c != 0:
                t = b.emit("mul", [Lit(fmpq(c)), a])[0]
                acc = t if acc is None else b.emit("add", [acc, t])[0]
        acc = b.emit("add", [acc if acc is not None else Lit(fmpq(0)), Lit(fmpq(const))])[0]
        point = [fmpq(self.point[v].to_fmpq().ravel()[f]) for v, f in flat]
        return b.finish([acc]), point, pieces, flat

    def scalar(self, a, idx, var):
        if isinstance(a, Lit):
            return a
        if isinstance(a, Arr):
            arr = self.P.arrays[a.name]
            return Lit(fmpq(arr.to_fmpq()[_broadcast(idx, arr.shape)]))
        return var[(a, _broadcast(idx, self.P.shapes[a]))]


def site_germ(P, point, convention, k, site, coefs, const, piece_at):
    """("zero" | "generic", evidence dict) for the tie of switching function (coefs, const) of the elementwise
    site ``site`` (flat) of equation k, or None when its cone is not elementwise or not rational, or its lowest
    part is not definite ("higher")."""
    from ..interpret.evaluate import compiled
    grid = P.shapes[P.eqns[k].outs[0]]
    idx = tuple(int(i) for i in np.unravel_index(site, grid)) if grid else ()
    built = Projection(P, point, piece_at).build(k, idx, coefs, const)
    if built is None:
        return None
    S, xs, pieces, variables = built
    steps = compiled(S, convention)
    last = len(steps) - 1
    frac = germs.switch_fraction(S, steps, xs, pieces, last, ((0, fmpq(1)), (1, fmpq(1))), fmpq(0))
    if frac is None:
        return None
    kind = germs.classify(*frac, S.n_inputs)
    if kind[0] not in ("zero", "generic"):
        return None
    return kind, {"variables": [list(v) for v in variables], "germ": germs.germ_json(*frac, kind, S.n_inputs)}
