"""Claim 1 and Proposition 2 on tensor programs (networks): the segment partition and the integral identity
along z(t) = x + t (y - x), t in [0, 1], where x and y give one array per input.

Piecewise-linear programs (``sites.is_piecewise_linear``: every smooth equation linear in the input-dependent
values) get a native exact walk.  On a frozen pattern every value is exactly A + B t (affine_t.py), so one
pass of the program over (value, slope) pairs (per layer one integer matrix product with the two parts
stacked) gives every site's switching functions as exact affine functions of t.  From a point t0:

1. the pattern just right of t0: each site's index rule on the germ signs (the sign of A + B t0, then of B;
   A + B t = 0 with B = 0 is identically zero on the piece, decided exactly);
2. the next point t1: the smallest root -A/B > t0 (B != 0) of any switching function of any site on that
   pattern (exact rationals; capped at 1).  On (t0, t1) no switching function changes sign, so by induction
   over the equations the pattern is constant there and equals the germ's;
3. the pattern at t1 itself, from the values at t1 (a pass in mode "at": discontinuous ``where`` included).

A pass re-evaluates only what changed: an equation whose inputs are the previous pass's values is reused as
is, and a nonsmooth equation whose inputs are unchanged and whose decided pattern is the same keeps its
outputs, so after a switch deep in a network only the layers downstream of it are recomputed.  Points where
the pattern does not change are merged away (partition.merge).  The integral identity is then exact: on each
piece the directional derivative is the output's slope B, so the right side is sum (t_{i+1} - t_i) B_i and the
left side f(y) - f(x); at every point the value there and the limits of the two adjacent pieces are compared
exactly, and a jump (a ``where`` whose branches differ) is REFUTED with its breakpoint.

Polynomial programs (``is_polynomial``: products and contractions of two t-dependent values too, as along a
segment between two parameter vectors of a network) get the same walk on exact polynomials in t
(poly_t.py): breakpoints are rational or real algebraic numbers (``algebraic.Alg``, compared exactly), the
patterns at an algebraic point and just right of it are decided exactly, and on each piece the integral of the
directional derivative is P(b) - P(a) for the output polynomial P (exact between rational breakpoints, an
enclosure narrower than 2^-tol otherwise; continuity is decided exactly).

Other tensor programs go through their scalarisation (program/scalarize.py) and the scalar walkers
(segment.py, cells.py, integral.py); patterns are converted back.  Scalarisation is refused above
``MAX_SCALAR`` scalar equations (InputError naming the limit).

Patterns of tensor programs are ``SitePattern`` objects (one piece array per nonsmooth equation, shaped like
its sites).  In JSON (``TensorPartition.json``) the first breakpoint's pattern is written in full (one nested
list per nonsmooth equation) and every later pattern, in the order breakpoint 0, piece 0, breakpoint 1, ...,
as the sites that differ from the previous one written: {"changes": [[e, [i, ...], piece], ...]} with e the
position of the nonsmooth equation in the pattern and [i, ...] the site's index in its grid (``expand``
rebuilds the full patterns).  A network's segment changes a few sites per breakpoint; full arrays would
repeat every site at every breakpoint.
"""
import math
from dataclasses import dataclass, field

import numpy as np
from flint import arb_poly, ctx, fmpq

from ..errors import DomainError, InputError, ProgramError, Undecided
from ..interpret import tensor as T
from ..program import kinks
from ..program.arrays import ExactArray
from ..program.prims import PRIMITIVES
from ..program.scalarize import scalarize
from ..rational import fmt_q
from ..truth import Verdict
from . import algebraic as A
from .affine_t import AffineT, NotAffine
from .poly_t import PolyT
from .integral import Integral, IntegralResult, iv_json, iv_of, iv_sub, iv_sum, json_digits, num_json
from .integral import integral_identity as scalar_integral_identity
from .partition import Breakpoint, Partition, Piece, bp_json, merge
from .segment import DEFAULT_TOL
from .segment import segment_partition as scalar_segment_partition
from .sites import is_piecewise_linear

MAX_SCALAR = 20_000      # scalar equations: above this the scalar walkers are refused (1-64-64-1 has ~8,500)


# ------------------------------------------------------------------------------------------------ patterns

class SitePattern(tuple):
    """The pattern of a tensor program: one read-only piece-index array per nonsmooth equation, shaped like
    its site grid.  Two patterns are equal when every array is equal (a tuple of numpy arrays would compare
    elementwise)."""

    def __new__(cls, arrays):
        out = []
        for a in arrays:
            a = np.asarray(a)
            if a.flags.writeable:
                a = a.copy()
                a.flags.writeable = False
            out.append(a)
        return super().__new__(cls, out)

    def __eq__(self, other):
        if not isinstance(other, tuple) or len(other) != len(self):
            return False
        return all(a is b or (np.shape(a) == np.shape(b) and np.array_equal(a, b)) for a, b in zip(self, other))

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        h = self.__dict__.get("_hash")
        if h is None:
            h = self.__dict__["_hash"] = hash(tuple(tuple(a.ravel().tolist()) for a in self))
        return h

    def __repr__(self):
        return f"SitePattern({[a.tolist() for a in self]})"

    def full_json(self):
        """One nested list per nonsmooth equation."""
        return [np.asarray(a).tolist() for a in self]

    def changes(self, prev):
        """[[e, [i, ...], piece], ...]: the sites whose piece differs from ``prev`` (e = position of the
        nonsmooth equation, [i, ...] = the site's index in its grid)."""
        out = []
        for e, (a, b) in enumerate(zip(self, prev)):
            if a is b:
                continue
            for idx in np.argwhere(np.asarray(a) != np.asarray(b)).tolist():
                out.append([e, [int(i) for i in idx], int(a[tuple(idx)])])
        return out


def expand(part_json):
    """The full patterns of a tensor partition's JSON (``TensorPartition.json``): (breakpoint patterns,
    piece patterns), each a list of nested lists per nonsmooth equation (None for a cluster)."""
    seq = []
    for i, b in enumerate(part_json["breakpoint_patterns"]):
        seq.append(b)
        if i < len(part_json["pieces"]):
            seq.append(part_json["pieces"][i]["pattern"])
    out, last = [], None
    for j in seq:
        if j is None:
            out.append(None)
            continue
        if isinstance(j, dict):
            cur = [np.array(a, dtype=object) for a in last]
            for e, idx, piece in j["changes"]:
                cur[e][tuple(idx)] = piece
            j = [a.tolist() for a in cur]
        out.append(j)
        last = j
    return out[0::2], out[1::2]


# -------------------------------------------------------------------------------------------------- segments

class TensorSegment:
    """z(t) = x + t (y - x) for a tensor program: ``segment`` = (x, y), one ExactArray per input."""

    def __init__(self, program, x, y):
        self.program, self.segment = program, (x, y)
        self.n = program.n_inputs
        self.names = program.input_names
        self.direction = [_sub(b, a) for a, b in zip(x, y)]

    def at(self, t):
        """z(t) as one ExactArray per input (t rational)."""
        t = fmpq(t)
        p, q = int(t.p), int(t.q)
        out = []
        for a, d in zip(self.segment[0], self.direction):
            L = math.lcm(a.den, d.den)
            num = a.num * (L // a.den) * q + d.num * (L // d.den) * p
            out.append(ExactArray(np.asarray(num, dtype=object), L * q))
        return out

    def json(self):
        """[[x per input], [y - x per input]] (nested lists of exact numbers): the coefficient vectors of the
        curve, as for scalar programs."""
        return [[_nested(a) for a in self.segment[0]], [_nested(d) for d in self.direction]]

    def describe(self):
        def show(arrs):
            return ", ".join(f"{n}={_short_array(a)}" for n, a in zip(self.names, arrs))
        x, y = self.segment
        return f"from ({show(x)}) to ({show(y)})"


def _sub(b, a):
    L = math.lcm(a.den, b.den)
    return ExactArray(np.asarray(b.num * (L // b.den) - a.num * (L // a.den), dtype=object), L)


def _nested(a):
    f = a.to_fmpq()
    out = np.frompyfunc(fmt_q, 1, 1)(f) if f.size else f
    return out.tolist() if isinstance(out, np.ndarray) else out


def _short_array(a):
    if a.size <= 4:
        vals = [fmt_q(v) for v in a.to_fmpq().ravel().tolist()]
        return ("[" + ", ".join(vals) + "]") if a.shape != () else vals[0]
    return f"<{'x'.join(map(str, a.shape))} array>"


def endpoints(program, value, what="the segment's end"):
    """One ExactArray per input (see ``interpret.tensor.coerce_inputs`` for the accepted forms)."""
    return T.coerce_inputs(program, value, what)


# ------------------------------------------------------------------------------------------------ the walk

@dataclass
class _State:
    """One pass: every variable's value (Lin), each nonsmooth equation's flat pattern, each site group's
    argument values, switching functions and their decided signs, and the sorted roots of each group's
    switching functions (computed when asked)."""
    env: list
    pattern: list = field(default_factory=list)
    sargs: dict = field(default_factory=dict)
    switch: dict = field(default_factory=dict)
    signs: dict = field(default_factory=dict)
    roots: dict = field(default_factory=dict)


class _Walker:
    def __init__(self, program, convention, seg, system=AffineT):
        self.program, self.convention, self.seg = program, convention, seg
        self.steps = T.compiled(program, convention)
        self.ns = system(constants=[a.num for a in (program.arrays.arrays.values() if program.arrays else ())])
        E = self.ns.E
        self.inputs = []
        for a, d in zip(*[seg.segment[0], seg.direction]):
            b = None if not any(v != 0 for v in d.num.ravel().tolist()) else E.const_array(d)
            self.inputs.append(self.ns.line(E.const_array(a), b))
        self.passes = 0
        self.evaluations = [0] * len(self.steps)     # how many passes (re)computed each equation

    def run(self, mode, t, ref):
        """One pass in ``mode`` ("at" or "right") at ``t``, reusing ``ref`` (a previous pass) where nothing
        changed."""
        prog, ns = self.program, self.ns
        ns.mode, ns.t = mode, t
        self.passes += 1
        env = list(self.inputs) + [None] * (prog.n_vars - prog.n_inputs)
        new = _State(env)
        changed = [ref is None] * prog.n_vars
        read = T.reader(prog, ns, env, None)
        pos = 0
        for st in self.steps:
            dirty = ref is None or any(a.__class__ is int and changed[a] for a in st.ins)
            try:
                if st.rule is not None:
                    if dirty:
                        env[st.outs[0]] = st.rule(ns, st.params, *[read(a) for a in st.ins])
                        changed[st.outs[0]] = True
                        self.evaluations[st.k] += 1
                    else:
                        env[st.outs[0]] = ref.env[st.outs[0]]
                    continue
                self._nonsmooth(st, pos, dirty, read, ref, new, changed)
            except (DomainError, Undecided) as err:
                where = "at" if mode == "at" else "just right of"
                raise type(err)(f"{prog.name} {where} t = {_tstr(t)}: {T.eqn_where(prog, st.k)}: {err}") from None
            pos += 1
        new.outputs = [read(a) for a in prog.outputs]
        return new

    def _nonsmooth(self, st, pos, dirty, read, ref, new, changed):
        ns, table = self.ns, st.sites
        args = [read(a) for a in st.ins] if dirty else None
        flat = np.zeros(table.n_sites, dtype=T.pattern_dtype(st))
        for gi, g in enumerate(table.groups):
            key = (st.k, gi)
            if dirty:
                sa = T.group_args(ns, st, g, args)
                sw = [T.switch_values(ns, terms, const, sa) for terms, const in st.switches[gi]]
            else:
                sa, sw = ref.sargs[key], ref.switch[key]
                if key in ref.roots:
                    new.roots[key] = ref.roots[key]
            new.sargs[key], new.switch[key] = sa, sw
            m = len(g.sites)
            signs = new.signs[key] = [np.broadcast_to(ns.signs(s), (m,)) for s in sw]
            before = None if ref is None else ref.signs.get(key)
            if before is None:
                piece = self._choose(st, g, signs)
            else:
                # the index rule is a function of the signs: re-decide only the sites whose signs changed
                piece = ref.pattern[pos][g.sites]
                moved = np.zeros(m, dtype=bool)
                for a, b in zip(signs, before):
                    moved |= a != b
                if moved.any():
                    piece[moved] = self._choose(st, g, [a[moved] for a in signs])
            flat[g.sites] = piece
        old = None if ref is None else ref.pattern[pos]
        if old is not None and np.array_equal(flat, old):
            flat = old
            if not dirty:
                for o in st.outs:
                    new.env[o] = ref.env[o]
                new.pattern.append(flat)
                return
        flat_outs = [(g, T.piece_values(ns, st, g, flat[g.sites], new.sargs[(st.k, gi)]))
                     for gi, g in enumerate(table.groups)]
        outs = [None] * len(st.outs)
        T.scatter_outputs(ns, st, flat_outs, outs)
        for o, v in zip(st.outs, outs):
            new.env[o] = v
            changed[o] = True
        self.evaluations[st.k] += 1
        flat.flags.writeable = False          # shared by every later pass and pattern that keeps it
        new.pattern.append(flat)

    def _choose(self, st, g, signs):
        piece, und = T.choose_pieces(st, g, signs)
        if und.any():         # exact signs are never undecided
            raise Undecided("an exact sign was undecided")
        return piece

    def next_root(self, state, t):
        """The smallest root > t of any switching function of the pass (None when there is none)."""
        best = None
        for key, sw in state.switch.items():
            roots = state.roots.get(key)
            if roots is None:
                roots = state.roots[key] = self.ns.roots(sw)
            r = self.ns.first_after(roots, t)
            if r is not None and (best is None or A.cmp(r, best) < 0):
                best = r
        return best

    def pattern(self, state):
        grids = [st.sites.grid for st in self.steps if st.sites is not None]
        return SitePattern([p.reshape(g) for p, g in zip(state.pattern, grids)])

    def output(self, state):
        """The (single, scalar) output on the pass's pattern as an fmpq_poly in t."""
        return self.ns.poly(state.outputs[0])


def _tstr(t):
    j = A.number_json(t)
    return j if isinstance(j, str) else f"[{j['lo']}, {j['hi']}] (root of {t.q})"


def native_walk(program, convention, seg, system=AffineT):
    """The fine partition of a piecewise-linear (system AffineT) or polynomial (PolyT) tensor program along
    ``seg``: (atoms as in ``merge``, the output as an fmpq_poly in t on every open atom and at every point atom
    (None when the program has no single scalar output), the walker).  Raises NotAffine when a value leaves the
    system."""
    w = _Walker(program, convention, seg, system)
    scalar_out = program.n_outputs == 1 and program.atom_shape(program.outputs[0]) == ()
    t, one = fmpq(0), fmpq(1)
    at = w.run("at", t, None)
    atoms = [("P", t, w.pattern(at))]
    opens, points = [], [w.output(at) if scalar_out else None]
    ref = at
    while True:
        right = w.run("right", t, ref)
        nxt = w.next_root(right, t)
        nxt = one if nxt is None or A.cmp(nxt, one) > 0 else nxt
        if isinstance(nxt, A.Alg):
            nxt.refine_to(fmpq(1, 2 ** 64))
        atoms.append(("O", w.pattern(right)))
        opens.append(w.output(right) if scalar_out else None)
        at = w.run("at", nxt, right)
        atoms.append(("P", nxt, w.pattern(at)))
        points.append(w.output(at) if scalar_out else None)
        if isinstance(nxt, fmpq) and nxt == one:
            return atoms, opens, points, w
        t, ref = nxt, right


# ------------------------------------------------------------------------------------------ partitions

@dataclass
class TensorPartition(Partition):
    """A Partition of a tensor program: patterns are SitePatterns; ``route`` is "native" (the exact walk on
    affine functions of t) or "scalarised" (the scalar walkers on the scalarised program, ``scalar`` its
    Partition).  ``json`` writes patterns as changes (module docstring)."""
    route: str = "native"
    values: str = None        # native route: "affine" or "polynomial" (in t, on each piece)
    scalar: object = field(default=None, repr=False)
    stats: dict = field(default_factory=dict, repr=False)
    _opens: list = field(default=None, repr=False)
    _points: list = field(default=None, repr=False)

    def sites_json(self):
        steps = T.nonsmooth_steps(self.program, self.convention)
        return [{"equation": st.k, "primitive": self.program.eqns[st.k].prim, "grid": list(st.sites.grid)}
                for st in steps]

    def json(self):
        seq, last = [], None
        for i, b in enumerate(self.breakpoints):
            seq.append(b.pattern)
            if i < len(self.pieces):
                seq.append(self.pieces[i].pattern)
        enc = []
        for p in seq:
            if p is None:
                enc.append(None)
                continue
            enc.append(p.full_json() if last is None else {"changes": p.changes(last)})
            last = p
        bps, pcs = enc[0::2], enc[1::2]
        return {"breakpoints": [bp_json(b) for b in self.breakpoints],
                "breakpoint_patterns": bps,
                "breakpoint_status": [b.status for b in self.breakpoints],
                "pieces": [{"interval": [bp_json(self.breakpoints[p.lo]), bp_json(self.breakpoints[p.hi])],
                            "pattern": j} for p, j in zip(self.pieces, pcs)],
                "method": self.method, "exact": self.exact, "complete": self.complete, "tol": self.tol,
                "curve": self.curve.json(), "convention": self.convention,
                "route": self.route, "values": self.values, "pattern_encoding": "changes",
                "sites": self.sites_json()}


def _site_names(program, convention):
    steps = T.nonsmooth_steps(program, convention)
    return [f"{program.eqns[st.k].prim}@{st.k + 1}" for st in steps]


def _changes_text(names, new, old, limit=4):
    ch = new.changes(old)
    if not ch:
        return "-"
    shown = [f"{names[e]}{idx} -> {piece}" for e, idx, piece in ch[:limit]]
    more = f" (+{len(ch) - limit} more)" if len(ch) > limit else ""
    return ", ".join(shown) + more


def partition_text(part):
    """Human-readable lines for a tensor partition: each breakpoint with the sites that change there (from the
    piece on its left to the point, and from the point to the piece on its right), named prim@equation."""
    P = part.program
    names = _site_names(P, part.convention)
    sites = part.sites_json()
    total = sum(math.prod(s["grid"]) for s in sites)
    args = ", ".join(f"{n}: {list(s)}" for n, s in zip(P.input_names, P.input_shapes or [()] * P.n_inputs))
    route = part.route + (f" ({part.values} in t)" if part.values else "")
    lines = [f"program   {P.name}({args})   {part.curve.describe()}   method={part.method}   route={route}   "
             f"convention={part.convention}",
             f"sites     {total} in {len(sites)} nonsmooth equation(s): "
             + ", ".join(f"{n} {s['grid']}" for n, s in zip(names, sites)),
             f"breakpoints ({len(part.breakpoints)}), with the sites that change (left piece -> point -> right "
             "piece):"]
    pieces_at = {p.lo: p for p in part.pieces}
    left = None
    for i, b in enumerate(part.breakpoints):
        j = bp_json(b)
        num = j if isinstance(j, str) else (f"[{j['lo']}, {j['hi']}]" if "poly" not in j else
                                            f"{j['lo'][:14]}.. (root of {b.t.q})")
        right = pieces_at.get(i)
        if b.pattern is None:
            desc = "pattern unknown (cluster)"
        elif i == 0 and total <= 16:
            desc = f"pattern {b.pattern.full_json()}"
        elif i == 0:
            on = sum(int(np.count_nonzero(np.asarray(a))) for a in b.pattern)
            desc = f"{on} of {total} sites on a piece other than 0"
        else:
            desc = "at: " + (_changes_text(names, b.pattern, left.pattern) if left else "?")
        if right is not None and b.pattern is not None:
            desc += "   right: " + _changes_text(names, right.pattern, b.pattern)
        lines.append(f"  t = {num}   {b.status}   {desc}")
        left = right
    lines.append(f"pieces ({len(part.pieces)})")
    if not part.complete:
        lines.append("UNDECIDED: the pattern inside the cluster enclosure(s) is not determined")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- the scalarised route

def _scalarised(program, convention, max_scalar, why):
    try:
        return scalarize(program, convention, cap=max_scalar)
    except ProgramError as e:
        if "more than" not in str(e):
            raise
        raise InputError(f"{program.name} is {why}, so its segment goes through its scalarisation, which has more "
                         f"than {max_scalar} scalar equations (the limit of the scalar walkers: max_scalar="
                         f"{max_scalar})") from None


def _convert_atoms(atoms, sp):
    def c(p):
        return SitePattern(sp.from_scalar_pattern(p))
    out = []
    for a in atoms:
        if a[0] == "O":
            out.append(("O", c(a[1])))
        elif a[0] == "X":
            out.append(("X", a[1], [c(p) for p in a[2]]))
        else:
            out.append((a[0], a[1], c(a[2])))
    return out


def _from_scalar(program, seg, part, sp):
    def c(p):
        return None if p is None else SitePattern(sp.from_scalar_pattern(p))
    bps = [Breakpoint(b.t, c(b.pattern), b.status) for b in part.breakpoints]
    pieces = [Piece(p.lo, p.hi, c(p.pattern)) for p in part.pieces]
    return TensorPartition(program, part.convention, seg, part.method, part.tol, part.prec, bps, pieces,
                           _convert_atoms(part.atoms, sp), route="scalarised", scalar=part,
                           stats={"scalar_equations": len(sp.program.eqns)})


def _why(program):
    if _system(program) is None:
        return "neither piecewise linear nor polynomial in its inputs"
    return "not exact in affine or polynomial arithmetic (a constant that is not rational)"


_LINEAR = {"add", "sub", "neg", "sum", "mean", "reshape", "transpose", "broadcast_to", "slice", "pad", "concat",
           "take_along", "avg_pool2d"}


def is_polynomial(program):
    """Every smooth equation is polynomial in the values that depend on the inputs (sums, structure,
    products and contractions of any two values, division by a value that does not depend on the inputs,
    non-negative integer powers): then every switching function is a polynomial along a segment."""
    dep = [True] * program.n_inputs + [False] * (program.n_vars - program.n_inputs)
    for e in program.eqns:
        d = [isinstance(a, int) and dep[a] for a in e.ins]
        if any(d):
            for o in e.outs:
                dep[o] = True
        if not any(d) or not PRIMITIVES[e.prim].smooth or e.prim in _LINEAR or e.prim in ("mul", "dot", "conv2d"):
            continue
        if e.prim == "div" and not d[1]:
            continue
        if e.prim == "pow" and dict(e.params)["n"] >= 0:
            continue
        return False
    return True


def _system(program):
    """The number system of the native walk: AffineT (piecewise linear), PolyT (polynomial), or None."""
    if is_piecewise_linear(program):
        return AffineT
    return PolyT if is_polynomial(program) else None


# ------------------------------------------------------------------------------------------ entry points

def _prepare(program, x, y, curve, convention, tol):
    kinks.check_convention(convention)
    if type(tol) is not int or not 1 <= tol <= 2000:
        raise InputError(f"tol={tol!r} must be a number of bits between 1 and 2000")
    if curve is not None:
        raise InputError(f"{program.name} is a tensor program: it takes a segment (its two ends, one array per "
                         "input), not a polynomial curve")
    if x is None or y is None:
        raise InputError("a segment needs both ends (--from X --to Y)")
    return TensorSegment(program, endpoints(program, x, "the segment's start"),
                         endpoints(program, y, "the segment's end"))


def tensor_segment_partition(program, x=None, y=None, curve=None, convention=kinks.DEFAULT, tol=DEFAULT_TOL,
                             method="auto", prec=None, max_scalar=MAX_SCALAR):
    """The partition of Claim 1 for a tensor program along the segment from ``x`` to ``y`` (each: one array
    per input, a dict by input name, or an .npz path; see ``endpoints``).  ``method``: "auto" or "exact" (the
    native exact walk for piecewise-linear and polynomial programs, else the scalarised program with the
    scalar walkers' own choice, "exact" forcing theirs), or "ball" (the scalarised program, ball method).
    Returns a TensorPartition."""
    seg = _prepare(program, x, y, curve, convention, tol)
    if method not in ("auto", "exact", "ball"):
        raise InputError(f"method {method!r} must be 'auto', 'exact' or 'ball'")
    system = _system(program) if method != "ball" else None
    if system is not None:
        try:
            return _native(program, convention, seg, tol, system)
        except NotAffine:
            pass
    sp = _scalarised(program, convention, max_scalar, _why(program))
    part = scalar_segment_partition(sp.program, sp.flat_point(seg.segment[0]), sp.flat_point(seg.segment[1]),
                                    None, convention, tol, method, prec)
    return _from_scalar(program, seg, part, sp)


def _native(program, convention, seg, tol, system=AffineT):
    atoms, opens, points, w = native_walk(program, convention, seg, system)
    bps, pieces = merge(atoms)
    return TensorPartition(program, convention, seg, "exact", tol, None, bps, pieces, atoms, route="native",
                           values="affine" if system is AffineT else "polynomial",
                           stats={"passes": w.passes, "evaluations": w.evaluations, "atoms": len(atoms)},
                           _opens=opens, _points=points)


def tensor_integral_identity(program, x=None, y=None, curve=None, convention=kinks.DEFAULT, tol=DEFAULT_TOL,
                             method="auto", prec=None, max_scalar=MAX_SCALAR):
    """Both sides of Proposition 2 for a tensor program with one scalar output, along the segment from ``x``
    to ``y``: over the native walk for piecewise-linear and polynomial programs (module docstring), else the
    scalar integral identity of the scalarised program.  Returns an IntegralResult whose partition is a
    TensorPartition."""
    if program.n_outputs != 1 or program.atom_shape(program.outputs[0]) != ():
        raise InputError(f"the integral identity needs a program with one scalar output; {program.name} has outputs "
                         f"of shapes {[list(program.atom_shape(a)) for a in program.outputs]}")
    seg = _prepare(program, x, y, curve, convention, tol)
    if method not in ("auto", "exact", "ball"):
        raise InputError(f"method {method!r} must be 'auto', 'exact' or 'ball'")
    system = _system(program) if method != "ball" else None
    if system is not None:
        try:
            return _native_integral(_native(program, convention, seg, tol, system), tol)
        except NotAffine:
            pass
    sp = _scalarised(program, convention, max_scalar, _why(program))
    res = scalar_integral_identity(sp.program, sp.flat_point(seg.segment[0]), sp.flat_point(seg.segment[1]),
                                   None, convention, tol, method, prec)
    res.partition = _from_scalar(program, seg, res.partition, sp)
    for tm in res.terms:
        if tm.pattern is not None:
            tm.pattern = SitePattern(sp.from_scalar_pattern(tm.pattern))
        if tm.patterns is not None:
            tm.patterns = tuple(SitePattern(sp.from_scalar_pattern(p)) for p in tm.patterns)
    if res.discontinuity is not None and res.discontinuity.get("pattern") is not None:
        res.discontinuity["pattern"] = SitePattern(sp.from_scalar_pattern(res.discontinuity["pattern"])).full_json()
    return res


def _native_integral(part, tol):
    """The integral identity over a native partition (module docstring).  On a piece with output polynomial
    P the integral of the directional derivative is P(b) - P(a): exact between rational breakpoints, an
    enclosure narrower than the budget at an algebraic one; continuity is decided exactly (the sign of the
    difference of two polynomials at the point)."""
    atoms, opens, points = part.atoms, part._opens, part._points
    ts = [a[1] for a in atoms if a[0] == "P"]
    pats = [a[1] for a in atoms if a[0] == "O"]
    disc = None
    for j, (t, P) in enumerate(zip(ts, points)):
        for side in (j - 1, j):                      # the open atoms left and right of point j
            if 0 <= side < len(opens) and disc is None and A.sign_at(opens[side] - P, t) != 0:
                disc = {"t": A.number_json(t), "reason": "the value of the adjacent piece differs from the value at "
                        "the point", "pattern": pats[side].full_json()}
    lhs = points[-1](fmpq(1)) - points[0](fmpq(0))
    digits = json_digits(tol)
    budget = fmpq(1, 2 ** (tol + 4)) / max(1, len(part.pieces))
    index = {id(t): k for k, t in enumerate(ts)}
    terms = []
    for pc in part.pieces:
        lo, hi = part.breakpoints[pc.lo].t, part.breakpoints[pc.hi].t
        v = _difference(opens[index[id(lo)]], lo, hi, budget, tol)
        terms.append(Integral(lo, hi, v, pattern=pc.pattern, json=num_json(v, digits)))
    lhs_j = fmt_q(lhs)
    rhs = iv_sum(iv_of(tm.json) for tm in terms)
    diff = iv_sub(iv_of(lhs_j), rhs)
    res = IntegralResult(Verdict.UNDECIDED, lhs_j, iv_json(rhs, digits), iv_json(diff, digits), part, terms, disc,
                         tol=tol)
    if disc is not None:
        res.verdict = Verdict.REFUTED
        res.reason = f"f is discontinuous at t = {_show(disc['t'])}: it is not in the class S"
    elif diff[0] > 0 or diff[1] < 0:
        res.verdict, res.reason = Verdict.REFUTED, "the two sides certainly differ: f is not in the class S"
    elif diff[1] - diff[0] < fmpq(1, 2 ** tol):
        res.verdict = Verdict.PROVED
    else:
        res.reason = f"the difference encloses 0 but is not narrower than 2^-{tol}"
    return res


def _show(t):
    return t if isinstance(t, str) else f"[{t['lo']}, {t['hi']}]"


def _difference(P, lo, hi, budget, tol):
    """P(hi) - P(lo): an fmpq between rationals, else an arb ball of radius <= budget."""
    if isinstance(lo, fmpq) and isinstance(hi, fmpq):
        return P(hi) - P(lo)
    width, prec = budget / (1 + sum(abs(c) for c in P.coeffs()) * max(1, P.degree()) * 4), tol + 64
    while True:
        for e in (lo, hi):
            if isinstance(e, A.Alg):
                e.refine_to(width)
        with ctx.workprec(prec):
            Q = arb_poly(P)
            v = Q(A.ball_of(hi)) - Q(A.ball_of(lo))
            if v.is_finite() and A.arf_q(v.rad()) <= budget:
                return v
        width, prec = width / 2 ** 32, prec + 64


# ------------------------------------------------------------------------------- dispatch (verify.segment_*)

def _is_tensor(program):
    from ..frontends import as_program
    program = as_program(program)
    return program, not program.is_scalar


def segment_partition(program, x=None, y=None, curve=None, convention=kinks.DEFAULT, tol=DEFAULT_TOL,
                      method="auto", prec=None, max_scalar=MAX_SCALAR):
    """Claim 1's partition: ``verify.certify.segment.segment_partition`` for scalar programs (x, y points or a
    curve), ``tensor_segment_partition`` for tensor programs (x, y: one array per input)."""
    program, tensor = _is_tensor(program)
    if tensor:
        return tensor_segment_partition(program, x, y, curve, convention, tol, method, prec, max_scalar)
    return scalar_segment_partition(program, x, y, curve, convention, tol, method, prec)


def integral_identity(program, x=None, y=None, curve=None, convention=kinks.DEFAULT, tol=DEFAULT_TOL,
                      method="auto", prec=None, max_scalar=MAX_SCALAR):
    """Proposition 2: ``verify.certify.integral.integral_identity`` for scalar programs,
    ``tensor_integral_identity`` for tensor programs."""
    program, tensor = _is_tensor(program)
    if tensor:
        return tensor_integral_identity(program, x, y, curve, convention, tol, method, prec, max_scalar)
    return scalar_integral_identity(program, x, y, curve, convention, tol, method, prec)


def no_certificates(program):
    """InputError for a tensor program: its certificates need a checker that reads tensor programs."""
    raise InputError(f"certificates for tensor programs are not available yet ({program.name} has array inputs or "
                     "tensor primitives): the independent checker does not read tensor programs")


__all__ = ["segment_partition", "integral_identity", "tensor_segment_partition", "tensor_integral_identity",
           "TensorPartition", "TensorSegment", "SitePattern", "endpoints", "expand", "partition_text",
           "native_walk", "no_certificates", "MAX_SCALAR"]
