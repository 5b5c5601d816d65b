"""The certified side of an audit and its verdict.

The float filter (interpret/filtered.py) evaluates the imported program at its exact example point in
midpoint-radius floats: it decides every switching function whose enclosure excludes 0, and the others
(exact ties, near ties) in exact arithmetic through their dependency cone; that gives the exact kinks and the
pattern, and one backward pass over the pattern an enclosure of the exact selection gradient under the
framework's kink convention, together with the bound of what any IEEE evaluation of the program in the
model's format can return (numbers/rounding.py).  ``exact=True`` computes the index set and the gradient in
exact arithmetic throughout instead (``certify.sites.site_index_set``), as does the filter's fallback.  When
the gradient is zero or tiny, ``site_critical`` says whether the point is selection-, Clarke-critical or
artificial.  ``audit_imported`` sets these beside the framework's float gradient and float decisions
(``floats.py``) and gives the verdict: PROVED when every element of the framework's gradient lies within the
bound of the exact selection gradient, REFUTED when one provably lies beyond it, UNDECIDED otherwise, with the
reason.  ``audit_certificates`` writes what it certified as certificates that ``verify check`` re-validates.
"""
from dataclasses import dataclass, field

import numpy as np
from flint import fmpq

from ..errors import InputError, Undecidable, Undecided
from ..interpret import tensor as T
from ..numbers.tensor import SIGN_UNDECIDED
from ..truth import FALSE, TRUE, UNKNOWN
from .floats import agreement, float_kinks, model_dtype
from .report import AuditReport, Site

TINY = 2.0 ** -20         # a gradient whose entries are all at most this (relative to the loss scale) is "tiny"


def wrt_indices(imp, wrt):
    """The indices of the program inputs named by ``wrt`` (program names, framework names or indices; None:
    all).  InputError naming the choices for an unknown name."""
    names = [i.name for i in imp.inputs]
    if wrt is None:
        return list(range(len(names)))
    src = [i.source for i in imp.inputs]
    out = []
    for w in wrt:
        if isinstance(w, int) and 0 <= w < len(names):
            out.append(w)
        elif w in names:
            out.append(names.index(w))
        elif w in src:
            out.append(src.index(w))
        else:
            raise InputError(f"wrt={w!r} is not an input of the imported program ({', '.join(names)})")
    return out


def audit_imported(imp, float_gradient, wrt=None, prec=None, tiny=TINY, critical="auto", convention=None,
                   framework_vars=None, exact=False):
    """The audit of an imported program (``Imported``) at its example point, given the framework's gradient
    (one numpy array per program input) and, when known, the framework's own float values of program
    variables (``framework_vars``: {variable: array}); other float values come from a replay in the model's
    precision.  ``convention`` (default: the framework's own) only matters for kink params the import left
    unwritten.  ``exact``: compute the exact rational (or ball) selection gradient and the index set in exact
    arithmetic throughout (else the float filter decides what floats can decide, and exact arithmetic only
    the rest: interpret/filtered.py).  Returns an AuditReport."""
    P, point = imp.program, imp.point
    wrt = wrt_indices(imp, wrt)
    dtype = model_dtype(imp)
    convention = convention or imp.framework
    model = model_rounding(imp, dtype)
    side = certified_side(P, point, convention, model, prec, wrt, exact)
    fkinks, exact_kinks = float_kinks(P, point, side.run, dtype, imp.origins, framework_vars or {})
    agree = [agreement(imp.inputs[i].name, float_gradient[i] if i < len(float_gradient) else None, enc,
                       bound_rule(model), exact=side.exact_of(i), overflow=side.overflow)
             for i, enc in zip(wrt, side.enclosure)]
    jumps = step_jumps(P, side.run, imp.origins)
    if jumps:              # piecewise constant equations on a jump: kinks too (the function is not continuous)
        exact_kinks = list(exact_kinks) + jumps
    report = AuditReport(imp.framework, P.name, str(dtype), imp.inputs, wrt, [float_gradient[i] for i in wrt],
                         side.gradients(), agree, exact_kinks, fkinks,
                         TRUE if not len(exact_kinks) else UNKNOWN, imported=imp, iset=side.iset)
    report.notes += side.notes
    report.exact = exact
    if exact:
        report.notes.append("exact=True: the index set and the selection gradient in exact arithmetic throughout")
    report.max_gradient = max_abs(side.enclosure)
    if critical == "always" or (critical == "auto" and report.max_gradient <= tiny):
        add_criticality(report, P, point, convention, prec, wrt)
    report.selection_gradient, report.verdict = verdict(report)
    return report


def model_rounding(imp, dtype):
    """The Rounding of the framework that produced ``imp`` computing in ``dtype`` (numbers/rounding.py)."""
    from ..numbers.rounding import rounding_for
    names = {i.dtype.replace("torch.", "") for i in imp.inputs}
    return rounding_for(imp.framework, "bfloat16" if "bfloat16" in names and dtype.name == "float32" and
                        "float32" not in names and "float64" not in names else dtype.name)


def bound_rule(model):
    """The sentence that names the bound an audit compares against."""
    return (f"any IEEE evaluation of the imported program and its backward pass in {model.name}, any summation "
            "order, with or without FMA: gamma_n |A||B| per product of inner dimension n, u per operation, the "
            "stated ulp bound per elementary function, plus underflow (docs/audit-numerics.md)")


@dataclass
class FilteredIndexSet:
    """The kink set and the pattern at the exact point as the float filter proved them (the fields of
    certify.sites.SiteIndexSet that an audit reads): ``chosen`` (the pattern), ``kinks`` (switching functions
    exactly 0, made from ``kink_sites`` when read: (eqn, flat site, switch) arrays), ``undecided_switches``,
    ``run`` (the filtered run, interpret/filtered.py: its pattern and signs; its values are freed by the
    backward pass), ``stats`` (sites decided exactly through their cone).
    ``exact()`` computes the full SiteIndexSet (every agreeing piece, the patterns of I(x)) in exact
    arithmetic, once."""
    program: object
    point: list
    convention: str
    chosen: tuple
    kink_sites: tuple
    run: object = field(repr=False)
    undecided_switches: list = field(default_factory=list)
    stats: object = None
    number: str = "filter"
    prec: int = None
    undecided: list = field(default_factory=list)
    _exact: object = field(default=None, repr=False)
    _kinks: list = field(default=None, repr=False)

    @property
    def decided(self):
        return True

    @property
    def kinks(self):
        from ..certify.sites import Kink
        if self._kinks is None:
            eqns, flat, sw = self.kink_sites
            grids = {st.k: tuple(st.sites.grid) for st in T.nonsmooth_steps(self.program, self.convention)}
            self._kinks = [Kink(int(k), tuple(int(i) for i in np.unravel_index(int(f), grids[int(k)])), int(j))
                           for k, f, j in zip(eqns.tolist(), flat.tolist(), sw.tolist())]
        return self._kinks

    def exact(self):
        from ..certify.sites import site_index_set
        if self._exact is None:
            self._exact = site_index_set(self.program, self.point, self.convention, "exact")
        return self._exact


def kink_sites(r):
    """((eqn, flat site, switch) arrays of every switching function whose sign is 0 in the run ``r``, the
    Kinks whose sign is undecided): what certify.sites.kinks_of finds, without an object per kink."""
    from ..certify.sites import Kink
    parts, und = [], []
    for st in T.nonsmooth_steps(r.program, r.convention):
        for gi, g in enumerate(st.sites.groups):
            for j, s in enumerate(r.switch_signs(st, gi)):
                at = np.nonzero(s == 0)[0]
                if at.size:
                    parts.append((np.full(at.size, st.k), g.sites[at], np.full(at.size, j)))
                for loc in np.nonzero(s == SIGN_UNDECIDED)[0].tolist():
                    site = tuple(int(i) for i in np.unravel_index(int(g.sites[loc]), st.sites.grid))
                    und.append(Kink(st.k, site, j))
    if not parts:
        z = np.zeros(0, np.int64)
        return (z, z, z), und
    return tuple(np.concatenate([p[i] for p in parts]).astype(np.int64) for i in range(3)), und


@dataclass
class CertifiedSide:
    """The certified side of an audit: the index set (exact or filtered), the run whose signs the float kinks
    are compared with, the enclosures of the selection gradient with the IEEE bound (MR, per input in wrt),
    and the exact gradient when computed (``exact``: per input, object arrays of fmpq / arb)."""
    iset: object
    run: object
    enclosure: list
    wrt: list
    exact: list = None
    exact_job: object = None
    overflow: bool = False
    notes: list = field(default_factory=list)

    def exact_of(self, i):
        """A function returning the exact gradient of program input ``i`` (computed once, on first use)."""
        def get():
            if self.exact is None:
                self.exact = self.exact_job()
            return self.exact[self.wrt.index(i)]
        return get

    def gradients(self):
        """The exact selection gradient per input in wrt: exact arrays when computed, else the enclosures (MR:
        ``np.asarray(mr, dtype=object)`` gives arb balls)."""
        return list(self.exact) if self.exact is not None else list(self.enclosure)


def certified_side(P, point, convention, model, prec, wrt, exact=False):
    """The kink set, the pattern and the selection gradient at the exact point: through the float filter
    (exact arithmetic only at the sites floats cannot decide), or in exact arithmetic throughout when
    ``exact``; the filter falls back to exact arithmetic when a domain check is undecided in floats or an
    undecided site's cone is too large.  The IEEE bound comes from a filtered run over the same pattern."""
    from ..certify.sites import site_index_set
    from ..interpret.filtered import ConeTooLarge, filter_gaps, filtered_run, gradient
    xs = T.coerce_inputs(P, point)
    notes = []
    gaps = filter_gaps(P)
    if gaps:
        return unbounded_side(P, xs, convention, prec, wrt, gaps)
    fr = stats = None
    if not exact:
        try:
            fr, stats = filtered_run(P, xs, convention, model, prec)
        except (Undecided, ConeTooLarge) as e:
            notes.append(f"the float filter could not decide ({e}): exact arithmetic throughout")
    if fr is None:
        iset = site_index_set(P, xs, convention, "exact", prec)
        fr, _ = filtered_run(P, xs, convention, model, pattern=iset.chosen)
        grads = exact_gradient(iset.run, P, wrt)
        side = CertifiedSide(iset, iset.run, [], wrt, exact=[np.asarray(g, dtype=object) for g in grads],
                             notes=notes)
    else:
        knk, und = kink_sites(fr)
        iset = FilteredIndexSet(P, xs, convention, fr.pattern, knk, fr, und, stats)
        side = CertifiedSide(iset, fr, [], wrt, notes=notes)
        side.exact_job = lambda: pattern_gradient(P, xs, convention, fr.pattern, wrt, prec)
    enc = gradient(fr, wrt, consume=True)     # the run keeps its pattern and signs
    side.enclosure = [enc[i] for i in wrt]
    side.overflow = fr.ns.peak >= model.storage.max
    if side.overflow:
        notes.append(f"an IEEE evaluation in {model.storage.name} may overflow (a value may reach "
                     f"{fr.ns.peak:.3g}): no gradient is called impossible")
    return side


def unbounded_side(P, xs, convention, prec, wrt, gaps):
    """The certified side in exact arithmetic when the program uses primitives without a proved rounding bound
    (``gaps``): the kinks and the exact gradient are certified, but no bound says what an IEEE evaluation can
    return, so every comparison with the framework's floats is UNDECIDED (an infinite bound proves nothing)."""
    from ..certify.sites import site_index_set
    from ..numbers.midrad import MR
    iset = site_index_set(P, xs, convention, "exact", prec)
    grads = [np.asarray(g, dtype=object) for g in exact_gradient(iset.run, P, wrt)]
    enclosures = []
    for i in wrt:
        mid, rad = float_enclosure(grads[i])
        enclosures.append(MR(mid, rad, np.full(mid.shape, np.inf)))
    note = (f"no proved rounding bound for {', '.join(gaps)} (verify states no ulp bound for the framework's "
            "implementation): the exact gradient is certified, its comparison with the float gradient is undecided")
    return CertifiedSide(iset, iset.run, enclosures, wrt, exact=[grads[i] for i in wrt], notes=[note])


def float_enclosure(arr):
    """(mid, rad) float64 arrays with |v - mid| <= rad for every element v (fmpq or arb) of ``arr``."""
    from flint import arb
    flat = [arb(v) for v in np.ravel(arr).tolist()]
    mid = np.array([float(x.mid()) for x in flat], dtype=np.float64).reshape(np.shape(arr))
    rad = np.array([float(x.rad()) for x in flat], dtype=np.float64).reshape(np.shape(arr))
    # the float of arb's midpoint is within 2^-53 |mid| (+ the smallest subnormal) of it; generous factors up
    rad = (rad * (1 + 2.0 ** -40) + np.abs(mid) * 2.0 ** -52 + 2.0 ** -1074) * (1 + 2.0 ** -40)
    return mid, rad


def pattern_gradient(P, xs, convention, pattern, wrt, prec=None):
    """The exact selection gradient of the pattern ``pattern`` (proved to be the one at x): one exact
    evaluation of f_sigma and one backward pass, escalating the precision of balls as needed.  Object arrays of
    fmpq / arb, one per input in wrt."""
    def job(ns, p):
        r = T.run(P, ns, [ns.const_array(x) for x in xs], convention, pattern=pattern, prec=p)
        return exact_gradient(r, P, wrt)
    grads = T.escalate("exact", prec, job)
    return [np.asarray(grads[i], dtype=object) for i in wrt]


def step_jumps(P, r, origins):
    """Sites of the piecewise constant equations (floor, ...) whose argument sits on a jump at the point (or may:
    a ball): the function is not continuous there, so they count as exact kinks (switch 0) and the point is not
    certified differentiable."""
    from ..program.prims import PRIMITIVES
    from ..program.prims.steps import jump_sites
    out = []
    for k, e in enumerate(P.eqns):
        prim = PRIMITIVES[e.prim]
        if prim.continuous or not prim.smooth:
            continue
        vals = np.asarray(T.user_value(r.ns, r.args[k][0]), dtype=object)
        shape = vals.shape
        for i in jump_sites(e.prim, vals.ravel().tolist()):
            index = tuple(int(j) for j in np.unravel_index(i, shape)) if shape else ()
            out.append(Site(k, index, 0, str(origins[k]), exact="0", float="?"))
    return out


def exact_gradient(r, P, wrt):
    """The exact selection gradient of the run ``r`` (one scalar output) with respect to the inputs ``wrt``:
    one user array (fmpq / arb) per program input, None for the others."""
    with T.working_precision(r.ns, r.prec):
        cts = T.vjp(r, [r.ns.const(fmpq(1))], wrt)
        return [None if i not in wrt else T.user_value(r.ns, r.ns.zeros(P.shapes[i]) if c is None else c)
                for i, c in enumerate(cts)]


def add_criticality(report, P, point, convention, prec, wrt):
    """Whether the point is selection-critical, Clarke-critical, artificial (into ``report.critical``)."""
    from ..certify.sites import site_critical
    try:
        c = site_critical(P, point, convention, "exact", prec, wrt)
        report.critical = {"selection": c.selection.truth, "clarke": c.clarke_critical.truth,
                           "artificial": c.artificial}
        if c.clarke_error:
            report.notes.append(f"Clarke: {c.clarke_error}")
    except (Undecided, Undecidable, InputError) as e:
        report.critical = {"selection": UNKNOWN, "clarke": UNKNOWN, "artificial": UNKNOWN}
        report.notes.append(f"criticality undecided: {e}")


def max_abs(enclosures):
    """The largest |entry| of the selection gradient (an upper bound from its enclosures), as a float."""
    m = 0.0
    for e in enclosures:
        if e.mid.size:
            m = max(m, float(np.max(np.abs(e.mid) + e.radius())))
    return m


def verdict(rep):
    """(TRUE / FALSE / UNKNOWN, the sentence) for: is the float gradient a selection gradient at the point, to
    the proved bound of any IEEE evaluation in the model's format?"""
    agree = all(a.truth is TRUE for a in rep.agreement)
    refuted = any(a.truth is FALSE for a in rep.agreement)
    flips = [s for s in rep.float_kinks if s.exact != "0"]
    bound = "within the proved rounding bound of any IEEE evaluation in " + rep.dtype
    if agree and not rep.exact_kinks and not rep.float_kinks:
        out = TRUE, (f"the framework's gradient is, {bound}, the gradient of the exact function at this point (no "
                     "switching function vanishes: the point is certified differentiable)")
    elif agree and not flips:
        out = TRUE, (f"the framework's gradient is, {bound}, the selection gradient of the exact function at this "
                     f"point under its kink convention; {len(rep.exact_kinks)} site(s) sit exactly on a kink, so it "
                     "is one element of the conservative field, not necessarily a gradient")
    elif refuted and rep.float_kinks:
        out = FALSE, (f"the framework's gradient is not the selection gradient at this exact point: "
                      f"{len(rep.float_kinks)} site(s) decided by float rounding on the other side of a kink (float "
                      "kinks) change the pieces it differentiated, and the gradient differs beyond the proved bound")
    elif refuted:
        out = FALSE, ("the framework's gradient differs from the exact selection gradient beyond the proved bound "
                      f"of any IEEE evaluation in {rep.dtype} at some elements (see the agreement table): no "
                      "evaluation of this program in that format can return it")
    elif agree:
        out = UNKNOWN, (f"the gradients agree {bound}, but {len(flips)} float decision(s) differ from the exact "
                        "ones: the agreement may be a coincidence of the pieces")
    else:
        why = "; ".join(f"{a.name}: {a.reason}" for a in rep.agreement if a.truth is not TRUE and a.reason)
        out = UNKNOWN, ("some elements of the framework's gradient could not be placed inside or outside the proved "
                        f"bound ({why or 'undecided'})")
    truth, sentence = out
    crit = rep.critical or {}
    if crit.get("artificial") is TRUE:
        sentence += ("; the point is an artificial critical point: 0 is in the conservative field but not in "
                     "Clarke's subdifferential, so a zero AD gradient here does not mean the function is stationary")
    elif crit.get("clarke") is TRUE:
        sentence += "; the point is Clarke-critical (a genuine stationary point of the nonsmooth function)"
    return truth, sentence


def audit_certificates(rep):
    """The certificates of an audit, for ``verify check``: [(suffix, TensorCertificate)].  The first
    (kind tensor_differentiable) states, at the exact example point of the imported program, the exact kink
    set, differentiability and the exact selection gradient the audit reports; when criticality was computed,
    a second (kind tensor_critical) states it with its witnesses.  Their arrays go to side files beside them."""
    from ..certify.certs_tensor import tensor_critical_certificate, tensor_differentiable_certificate
    from ..numbers.midrad import MR
    P, iset = rep.imported.program, rep.iset
    if isinstance(iset, FilteredIndexSet):      # certificates state exact values: the exact index set, once
        iset = iset.exact()
    r = iset.run
    with T.working_precision(r.ns, r.prec):
        value = T.user_value(r.ns, T.output_values(r)[0])
    grads = rep.exact_gradient
    if any(isinstance(g, MR) for g in grads):
        grads = exact_gradient(r, P, rep.wrt)
        grads = [grads[i] for i in rep.wrt]
    grads = [T.user_value(r.ns, r.ns.zeros(P.shapes[i])) if g is None else g for i, g in zip(rep.wrt, grads)]
    out = [("", tensor_differentiable_certificate(P, rep.imported.point, iset.convention, gradient=grads,
                                                   wrt=rep.wrt, value=value, prec=iset.prec, iset=iset))]
    if rep.critical is not None and rep.critical.get("selection") is not UNKNOWN:
        try:
            out.append((".critical", tensor_critical_certificate(P, rep.imported.point, iset.convention,
                                                                  wrt=rep.wrt)))
        except (InputError, Undecided) as e:
            rep.notes.append(f"no critical-point certificate: {e}")
    return out
