"""The certified side of an audit and its verdict.

One exact evaluation of the imported program at its example point gives the index set and the exact kinks
(``certify.sites.site_index_set``), one backward pass the exact selection gradient under the framework's
kink convention; when the gradient is zero or tiny, ``site_critical`` says whether the point is selection-,
Clarke-critical or artificial.  ``audit_imported`` sets these beside the framework's float gradient and
float decisions (``floats.py``) and gives the verdict; ``audit_certificates`` writes what it certified as
certificates that ``verify check`` re-validates.
"""
import numpy as np
from flint import arb, fmpq

from ..errors import InputError, Undecidable, Undecided
from ..interpret import tensor as T
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
                   framework_vars=None):
    """The audit of an imported program (``Imported``) at its example point, given the framework's gradient
    (one numpy array per program input) and, when known, the framework's own float values of program
    variables (``framework_vars``: {variable: array}); other float values come from a replay in the model's
    precision.  ``convention`` (default: the framework's own) only matters for kink params the import left
    unwritten.  Returns an AuditReport."""
    from ..certify.sites import site_index_set
    P, point = imp.program, imp.point
    wrt = wrt_indices(imp, wrt)
    dtype = model_dtype(imp)
    convention = convention or imp.framework
    iset = site_index_set(P, point, convention, "exact", prec)
    exact = exact_gradient(iset.run, P, wrt)
    fkinks, float_sign = float_kinks(P, point, iset.run, dtype, imp.origins, framework_vars or {})
    exact_kinks = [Site(k.eqn, tuple(k.site), k.switch, str(imp.origins[k.eqn]), exact="0",
                        float=float_sign.get((k.eqn, tuple(k.site), k.switch), "?")) for k in iset.kinks]
    exact_kinks += step_jumps(P, iset.run, imp.origins)
    agree = [agreement(imp.inputs[i].name, float_gradient[i] if i < len(float_gradient) else None, exact[i], dtype)
             for i in wrt]
    report = AuditReport(imp.framework, P.name, str(dtype), imp.inputs, wrt, [float_gradient[i] for i in wrt],
                         [exact[i] for i in wrt], agree, exact_kinks, fkinks,
                         TRUE if not exact_kinks else UNKNOWN, imported=imp, iset=iset)
    report.max_gradient = max_abs(exact, wrt)
    if critical == "always" or (critical == "auto" and report.max_gradient <= tiny):
        add_criticality(report, P, point, convention, prec, wrt)
    report.selection_gradient, report.verdict = verdict(report)
    return report


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
    with T._precision(r.ns, r.prec):
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


def max_abs(exact, wrt):
    """The largest |entry| of the exact gradient (a ball's midpoint), as a float."""
    m = 0.0
    for i in wrt:
        for v in np.ravel(np.asarray(exact[i], dtype=object)).tolist():
            m = max(m, abs(float(v.mid() if isinstance(v, arb) else v)))
    return m


def verdict(rep):
    """(TRUE / FALSE / UNKNOWN, the sentence) for: is the float gradient a selection gradient at the point?"""
    agree = all(a.agrees for a in rep.agreement)
    flips = [s for s in rep.float_kinks if s.exact != "0"]
    if agree and not rep.exact_kinks and not rep.float_kinks:
        out = TRUE, ("the framework's gradient is, to float rounding, the gradient of the exact function at this "
                     "point (no switching function vanishes: the point is certified differentiable)")
    elif agree and not flips:
        out = TRUE, (f"the framework's gradient is, to float rounding, the selection gradient of the exact function "
                     f"at this point under its kink convention; {len(rep.exact_kinks)} site(s) sit exactly on a "
                     "kink, so it is one element of the conservative field, not necessarily a gradient")
    elif not agree and flips:
        out = FALSE, (f"the framework's gradient is not the selection gradient at this exact point: {len(flips)} "
                      "site(s) decided by float rounding on the other side of a kink (float kinks) change the "
                      "pieces it differentiated")
    elif not agree:
        out = FALSE, ("the framework's gradient differs from the exact selection gradient by more than float "
                      "rounding at some elements (see the agreement table)")
    else:
        out = UNKNOWN, (f"the gradients agree to float rounding, but {len(flips)} float decision(s) differ from the "
                        "exact ones: the agreement may be a coincidence of the pieces")
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
    P, iset = rep.imported.program, rep.iset
    r = iset.run
    with T._precision(r.ns, r.prec):
        value = T.user_value(r.ns, T.output_values(r)[0])
    grads = [T.user_value(r.ns, r.ns.zeros(P.shapes[i])) if g is None else g for i, g in zip(rep.wrt,
                                                                                           rep.exact_gradient)]
    out = [("", tensor_differentiable_certificate(P, rep.imported.point, iset.convention, gradient=grads,
                                                   wrt=rep.wrt, value=value, prec=iset.prec, iset=iset))]
    if rep.critical is not None and rep.critical.get("selection") is not UNKNOWN:
        try:
            out.append((".critical", tensor_critical_certificate(P, rep.imported.point, iset.convention,
                                                                  wrt=rep.wrt)))
        except (InputError, Undecided) as e:
            rep.notes.append(f"no critical-point certificate: {e}")
    return out
