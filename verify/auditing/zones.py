"""The zones of a training step (Boustany, "On the numerical reliability of nonsmooth autodiff: a MaxPool case
study", TMLR 2024), decided at the exact point of an audit instead of by a float threshold.

- The **bifurcation zone**: the exact selection gradient depends on the kink convention.  At an exact kink
  (relu exactly at 0, a max-pool window with tied maxima) the framework's convention picks one piece; another
  convention (relu'(0) = 1 as in Bertoin et al. 2021, a max-pool Jacobian that splits a tie as Boustany's
  beta = 1 does, the other frameworks' choices) picks another.  A step is in the zone when, for some
  alternative, the exact gradient differs from the framework's exact selection gradient.
- The **compensation zone**: AD is wrong in floats and right over the reals: the float computation decided a
  switching function otherwise than the exact point (a float kink: 0 in floats and not exactly, the
  reverse, or the opposite sign).

The difference of two selection gradients is computed, not the second gradient: with J_k the Jacobians of
the program's equations under the framework's pattern and J'_k under the alternative's (they differ only at
the kinked sites whose piece changes), the gradients' difference telescopes into
sum_k (J'_1 ... J'_{k-1})^T (J'_k - J_k)^T c_k, c_k the framework's cotangent at equation k's outputs.  One
backward pass gives every c_k; one backward pass over the alternative pattern, seeded at the inputs of the
changed equations with (J'_k - J_k)^T c_k, gives the difference.  Elements that no changed site reaches stay
exactly 0; an element whose enclosure excludes 0 provably differs.  An element whose enclosure holds 0
without being exactly 0 (cotangents are balls once the loss has an exp) is decided exactly by one forward
pass: its contribution is sum over changed sites of c_s * w_s with w_s exact, and it is 0 when every w_s is.
What stays open after ``REFINE`` such passes is UNDECIDED, with the count.
"""
import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from flint import fmpq

from ..errors import Undecided
from ..interpret import tensor as T
from ..numbers.tensor import get_tensor_system
from ..program import kinks
from ..program.arrays import ExactArray
from ..truth import FALSE, SIGN_UNDECIDED, TRUE, UNKNOWN

# Alternatives to the framework's own convention, beside the named conventions of program/kinks.py: the two
# the numerical studies compare (kink params written over the framework's, on kinked equations only).
STUDIES = {
    "relu'(0)=1": {"relu": {"alpha": fmpq(1)}},               # Bertoin, Bolte, Gerchinovitz & Pauwels 2021
    "max-pool split": {"max_pool2d": {"tie": "split"}},       # Boustany 2024: beta = 1, a tie shared evenly
}
REFINE = 128          # exact forward passes per alternative for elements the balls leave undecided (~0.05 s each on
                      # a small CNN: a window of equal values feeding a bias leaves a dozen or two per step)


def alternatives(framework):
    """{name: {primitive: {param: value}}}: the named conventions other than ``framework``'s, then STUDIES."""
    out = {name: table for name, table in kinks.CONVENTIONS.items() if name != framework}
    out.update(STUDIES)
    return out


@dataclass
class ConventionChange:
    """The exact selection gradient under one alternative convention against the framework's: ``outcome``
    "differs" (some element proved different), "same" (every element proved equal) or "undecided";
    ``sites``: kinked sites whose piece changes (its linear part); ``elements``: gradient elements proved
    different; ``undecided``: elements neither proved equal nor different; ``reason`` when undecided."""
    name: str
    outcome: str
    sites: int = 0
    elements: int = 0
    undecided: int = 0
    reason: str = ""

    def json(self):
        out = {"convention": self.name, "outcome": self.outcome, "sites": self.sites, "elements": self.elements,
               "undecided": self.undecided}
        if self.reason:
            out["reason"] = self.reason
        return out


FLOAT_KINDS = ("float_tie", "missed_tie", "flip")


@dataclass
class Zones:
    """The zones of one audited step: ``bifurcation`` (TRUE: the gradient provably depends on the kink
    convention; FALSE: provably not; UNKNOWN), ``compensation`` (floats decided some kink otherwise than the
    exact point), ``changes`` (a ConventionChange per alternative) and ``float_kinds``: the float kinks by kind
    (float_tie: exactly nonzero, 0 in floats; missed_tie: exactly 0, nonzero in floats; flip: opposite
    signs)."""
    bifurcation: object
    compensation: bool
    changes: list = field(default_factory=list)
    float_kinds: dict = field(default_factory=dict)

    def json(self):
        return {"bifurcation": True if self.bifurcation is TRUE else (False if self.bifurcation is FALSE else None),
                "compensation": self.compensation, "conventions": [c.json() for c in self.changes],
                "float_kinks": {k: self.float_kinds.get(k, 0) for k in FLOAT_KINDS}}


def float_kind(site):
    """float_tie, missed_tie or flip for a float kink (a report's Site), "" when the float sign is unknown."""
    f = site.float_sign
    if f == "?" or site.exact == "?":
        return ""
    if f == "0":
        return "float_tie"
    return "missed_tie" if site.exact == "0" else "flip"


def zones(report, table=None, refine=REFINE):
    """The Zones of an AuditReport.  ``table``: the alternatives (default ``alternatives(report.framework)``).
    The audit's pattern and signs are reused; the values come from its exact run, or (after the float filter,
    whose run keeps only signs and enclosures) from one exact evaluation with the pattern frozen, made only
    when an alternative changes a kinked equation's params, and shared by the alternatives."""
    kinds = {}
    for s in report.float_kinks:
        k = float_kind(s)
        if k:
            kinds[k] = kinds.get(k, 0) + 1
    table = alternatives(report.framework) if table is None else table
    source = ExactSource(report)
    changes = [convention_change(report, name, t, refine, source) for name, t in table.items()] \
        if len(report.exact_kinks) else [ConventionChange(name, "same") for name in table]
    outcomes = {c.outcome for c in changes}
    bif = TRUE if "differs" in outcomes else (UNKNOWN if "undecided" in outcomes else FALSE)
    return Zones(bif, bool(report.float_kinks), changes, kinds)


# ------------------------------------------------------------------------------- one alternative convention

def rewritten(eqn, overrides):
    """``eqn`` with the kink params of ``overrides`` ({primitive: {param: value or f(n, params)}}) written over
    its own; None when the overrides do not name its primitive."""
    table = overrides.get(eqn.prim)
    if not table:
        return None
    params = dict(eqn.params)
    for k, v in table.items():
        params[k] = v(len(eqn.ins), params) if callable(v) else v
    return dataclasses.replace(eqn, params=tuple(sorted(params.items())))


@dataclass
class _Changed:
    """The changed sites of one equation: per site group, the sites' positions in the group and the
    coefficient differences dC[r][j] (alternative minus framework, object arrays of fmpq over those sites)."""
    k: int
    step: object
    groups: list


class ExactSource:
    """The exact run the zones differentiate again: the audit's own when it is exact (its values intact),
    else one exact evaluation at the audit's pattern (computed once, when first asked for)."""

    def __init__(self, report):
        self.report, self._run = report, None

    def run(self):
        if self._run is None:
            r = self.report.iset.run
            if r.ns.name == "exact" and all(v is not None for v in r.env[:r.program.n_inputs]):
                self._run = r
            else:
                P = self.report.imported.program
                ns = get_tensor_system("exact")
                xs = T.coerce_inputs(P, self.report.imported.point)
                with T.working_precision(ns, T.DEFAULT_PREC):
                    self._run = T.run(P, ns, [ns.const_array(x) for x in xs], r.convention, pattern=r.pattern,
                                      prec=T.DEFAULT_PREC)
        return self._run


def kinked_equations(report):
    """The equations (indices) with an exact kink, from the report's kink arrays when it has them."""
    eqns = getattr(report.exact_kinks, "eqns", None)
    if eqns is not None:
        return sorted(int(k) for k in np.unique(eqns))
    return sorted({s.eqn for s in report.exact_kinks})


def convention_change(report, name, overrides, refine=REFINE, source=None):
    """The ConventionChange of the alternative ``overrides`` at the report's exact point (``source``: the
    ExactSource of the report, shared between alternatives)."""
    P = report.imported.program
    conv = report.iset.run.convention
    kinked = kinked_equations(report)
    eqns = list(P.eqns)
    for k in kinked:
        e = rewritten(P.eqns[k], overrides)
        if e is not None and kinks.resolve(e, conv) != kinks.resolve(P.eqns[k], conv):
            eqns[k] = e
    touched = [k for k in kinked if eqns[k] is not P.eqns[k]]
    if not touched:
        return ConventionChange(name, "same")
    alt_program = dataclasses.replace(P, eqns=tuple(eqns))
    r = (source or ExactSource(report)).run()
    try:
        changed, pattern = changed_sites(r, alt_program, touched)
    except Undecided as e:
        return ConventionChange(name, "undecided", reason=str(e))
    n_sites = sum(len(locs) for c in changed for _, locs, _ in c.groups)
    if not n_sites:
        return ConventionChange(name, "same")
    alt = T.TRun(alt_program, r.ns, r.env, r.args, pattern, r.prec, conv, r.site_args)
    with T.working_precision(r.ns, r.prec):
        diff = Difference(report, r, alt, changed)
        proved, undecided = diff.decide(refine)
    outcome = "differs" if proved else ("undecided" if undecided else "same")
    reason = (f"{undecided} gradient element(s) differ by less than the enclosures can tell" if outcome == "undecided"
              else "")
    return ConventionChange(name, outcome, n_sites, proved, undecided, reason)


def changed_sites(r, alt_program, touched):
    """([_Changed per equation in ``touched``], the alternative's pattern): the pieces the alternative's index
    rules choose from the run's own signs (the values do not depend on kink params), and the kinked sites whose
    piece's linear part changes.  Undecided when a sign is undecided or the switching functions differ."""
    conv = r.convention
    fw_steps = T.nonsmooth_steps(r.program, conv)
    alt_steps = {st.k: st for st in T.nonsmooth_steps(alt_program, conv)}
    pattern = list(r.pattern)
    out = []
    for pos, st in enumerate(fw_steps):
        if st.k not in touched:
            continue
        st2 = alt_steps[st.k]
        fw = np.asarray(r.pattern[pos]).ravel()
        alt = np.array(fw, dtype=T.pattern_dtype(st2))
        groups = []
        for gi, g in enumerate(st.sites.groups):
            if st.switches[gi] != st2.switches[gi]:
                raise Undecided(f"equation {st.k + 1}: the alternative changes the switching functions")
            signs = r.switch_signs(st, gi)
            if not signs:
                continue
            at_kink = np.nonzero(np.any(np.stack([s == 0 for s in signs]), axis=0))[0]
            # every site is chosen again: piece indices name different pieces under other params
            piece, und = T.choose_pieces(st2, g, signs)
            if und.any():
                raise Undecided(f"equation {st.k + 1}: a sign is undecided")
            alt[g.sites] = piece
            dC = coefficient_change(st, st2, g, fw[g.sites[at_kink]], piece[at_kink])
            moved = np.zeros(len(at_kink), dtype=bool)
            for row in dC:
                for col in row:
                    moved |= np.array([v != 0 for v in col], dtype=bool)
            if moved.any():
                groups.append((g, at_kink[moved], [[col[moved] for col in row] for row in dC]))
        pattern[pos] = alt.reshape(st.sites.grid)
        out.append(_Changed(st.k, st, groups))
    return out, tuple(pattern)


def coefficient_change(st, st2, g, fw_piece, alt_piece):
    """dC[r][j]: the alternative's coefficient of argument j in output row r minus the framework's, at the
    given sites (object arrays of fmpq)."""
    C1, _ = T.coef_arrays(st, g, np.asarray(fw_piece))
    C2, _ = T.coef_arrays(st2, g, np.asarray(alt_piece))
    m = len(fw_piece)
    return [[dense(b, m) - dense(a, m) for a, b in zip(r1, r2)] for r1, r2 in zip(C1, C2)]


def dense(c, m):
    """A coefficient (fmpq, or an ExactArray over m sites) as an object array of m fmpq."""
    if isinstance(c, ExactArray):
        return np.array([fmpq(int(v), c.den) for v in np.ravel(c.num).tolist()], dtype=object)
    return np.array([fmpq(c)] * m, dtype=object)


# ------------------------------------------------------------------------------------- the difference

def upstream_inputs(P, variables, wrt):
    """The program inputs the backward pass for the cotangents of ``variables`` should reach: the inputs
    outside ``wrt`` (the data) when every one of ``variables`` depends on them, so that no parameter gradient
    is computed on the way; else ``wrt``."""
    data = [i for i in range(P.n_inputs) if i not in wrt]
    if not data:
        return wrt
    reach = [False] * P.n_vars
    for i in data:
        reach[i] = True
    for e in P.eqns:
        if any(a.__class__ is int and reach[a] for a in e.ins):
            for o in e.outs:
                reach[o] = True
    return data if all(reach[v] for v in variables) else wrt


class Difference:
    """The difference of the alternative's selection gradient and the framework's (see the module
    docstring), element by element for the inputs the audit differentiates."""

    def __init__(self, report, run, alt, changed):
        self.report, self.run, self.alt, self.changed = report, run, alt, changed
        self.ns = run.ns
        self.wrt = list(report.wrt)
        self.stop = max(c.k for c in changed)
        outs = {o: None for c in changed for o in c.step.outs}
        T.vjp(run, [self.ns.const(fmpq(1))], upstream_inputs(run.program, outs, self.wrt), keep=outs)
        self.cotangents = outs
        self.entries = [self.site_entries(c) for c in changed]

    def site_entries(self, c):
        """(the equation's output cotangents, flat; then per term of (J'_k - J_k)^T c_k, dC[r][j] * ct[out_r] at
        argument j of a changed site: the flat output positions, the exact coefficients dC, the flat argument
        positions) of one changed equation, or None when no cotangent reaches its outputs."""
        ns, st = self.ns, c.step
        cts = [self.cotangents[o] for o in st.outs]
        if all(x is None for x in cts):
            return None
        cts = [ns.zeros(s) if x is None else x for x, s in zip(cts, st.out_shapes)]
        flat_ct = ns.concat_flat([ns.reshape(x, (-1,)) for x in cts]) if len(cts) > 1 else ns.reshape(cts[0], (-1,))
        n = st.sites.n_sites
        outs, coefs, args = [], [], []
        for g, locs, dC in c.groups:
            sites = g.sites[locs]
            for r, row in enumerate(dC):
                out_idx = r * n + sites if st.sites.elementwise else np.asarray(g.outs[r])[locs]
                for j, col in enumerate(row):
                    arg_idx = j * n + sites if st.sites.elementwise else np.asarray(g.args[j])[locs]
                    nz = np.array([v != 0 for v in col], dtype=bool) & (np.asarray(arg_idx) >= 0)
                    if nz.any():
                        outs.append(np.asarray(out_idx)[nz])
                        coefs.extend(col[nz].tolist())
                        args.append(np.asarray(arg_idx)[nz])
        if not coefs:
            return None
        den = math.lcm(*(int(q.q) for q in coefs))
        exact = ExactArray(np.array([int(q.p) * (den // int(q.q)) for q in coefs], dtype=object), den)
        return flat_ct, np.concatenate(outs), ns.const_array(exact), np.concatenate(args)

    def arg_layout(self, st):
        """[(input atom, offset, shape)] of the flat argument positions of step ``st``: its inputs one after
        the other (elementwise steps: each broadcast to the site grid)."""
        out, off = [], 0
        for a, s in zip(st.ins, st.in_shapes):
            shape = tuple(st.sites.grid) if st.sites.elementwise else tuple(s)
            out.append((a, off, shape))
            off += int(np.prod(shape, dtype=np.int64))
        return out, off

    def seeds(self):
        """{input variable of a changed equation: (J'_k - J_k)^T c_k} for the alternative's backward pass."""
        ns = self.ns
        seeds = {}
        for c, ent in zip(self.changed, self.entries):
            if ent is None:
                continue
            ct, outs, coef, args = ent
            layout, size = self.arg_layout(c.step)
            flat = ns.scatter(ns.mul(coef, ns.take(ct, outs)), args, size)
            for a, off, shape in layout:
                if a.__class__ is not int:
                    continue
                part = ns.reshape(ns.struct(flat, lambda x, off=off, n=int(np.prod(shape, dtype=np.int64)):
                                            x[off:off + n]), shape)
                seeds[a] = part if a not in seeds else ns.add(seeds[a], part)
        return seeds

    def values(self):
        """The difference, one array per program input (None: exactly 0, or not in wrt)."""
        seeds = self.seeds()
        if not seeds:
            return [None] * self.run.program.n_inputs
        return T.vjp(self.alt, [None] * self.run.program.n_outputs, self.wrt, seeds=seeds, stop=self.stop)

    def decide(self, refine):
        """(elements proved different, elements undecided) over the inputs in wrt."""
        ns = self.ns
        D = self.values()
        proved, open_ = 0, []
        for i in self.wrt:
            if D[i] is None:
                continue
            s = np.ravel(ns.signs(D[i]))
            proved += int(np.count_nonzero((s == 1) | (s == -1)))
            open_ += [(i, int(e)) for e in np.nonzero(s == SIGN_UNDECIDED)[0].tolist()]
        if proved or not open_:
            return proved, len(open_)
        undecided = len(open_)
        for i, e in open_[:refine]:
            sign = self.element_sign(i, e)
            if sign != SIGN_UNDECIDED:
                undecided -= 1
                proved += sign != 0
        return proved, undecided

    def element_sign(self, i, e):
        """The sign of the difference at element ``e`` of input ``i`` from the exact weights w_s of its changed
        sites (one forward pass over the alternative's pattern): 0 when every w_s is exactly 0, else the sign
        of sum c_s w_s (SIGN_UNDECIDED when the enclosure holds 0)."""
        ns, P = self.ns, self.run.program
        onehot = np.zeros(int(np.prod(P.shapes[i], dtype=np.int64)), dtype=object)
        onehot[e] = 1
        tangents = [None] * P.n_inputs
        tangents[i] = ns.const_array(ExactArray(onehot.reshape(P.shapes[i]), 1))
        keep = {a: None for c in self.changed for a in c.step.ins if a.__class__ is int}
        T.jvp(self.alt, tangents, keep=keep, stop=self.stop)
        total, exact_zero = None, True
        for c, ent in zip(self.changed, self.entries):
            if ent is None:
                continue
            ct, outs, coef, args = ent
            layout, _ = self.arg_layout(c.step)
            parts = []
            for a, off, shape in layout:
                t = keep.get(a) if a.__class__ is int else None
                parts.append(ns.zeros(shape) if t is None else
                             (ns.broadcast_to(t, shape) if tuple(ns.shape(t)) != shape else t))
            tan = ns.concat_flat(parts)
            # w per output position: a site's terms share its cotangent, and cancel there exactly
            w = ns.scatter(ns.mul(coef, ns.take(tan, args)), outs, int(ns.shape(ct)[0]))
            if np.any(ns.signs(w) != 0):
                exact_zero = False
                term = ns.sum(ns.mul(ct, w), (0,))
                total = term if total is None else ns.add(total, term)
        if exact_zero:
            return 0
        return int(np.ravel(ns.signs(total))[0])
