"""Audit what a framework's AD returned for a real model at a real point.

``verify.audit(f, *args, framework="torch"|"jax", wrt=None)`` imports the model (frameworks/torch.py,
frameworks/jax.py: the exact real-number program the float code approximates, with the framework's kink
choices written out), then answers, with certainty where certainty is possible:

- the framework's float gradient, and the exact selection gradient that the framework's kink convention
  defines at the exact point (floats read as the dyadic rationals they are), and element by element whether
  the float gradient is within float rounding of it;
- the exact kinks (sites whose switching function is exactly 0 at the exact point) and the float kinks (sites
  where a float evaluation of the same program in the model's precision decides otherwise: 0 in floats and
  not exactly, or the reverse, or the opposite sign), with their locations in the model;
- whether the point is certified differentiable (Proposition 3), and when the gradient is zero or tiny,
  whether it is selection-critical, Clarke-critical, artificial (Section 5);
- a verdict: is the framework's gradient a selection gradient of the exact function at this exact point.

What is certified and what is not: the exact kink set, the exact selection gradient (exact, or balls where exp
and log enter), differentiability and criticality are certified (computed exactly or with rigorous balls).
The float side is the framework's own computation, unverified by definition; "within float rounding" compares
it with a stated tolerance (``FloatAgreement``), and the float kinks come from replaying the imported program
in the model's float precision with numpy, whose summation order can differ from the framework's kernels at a
float tie.  The verdict says which facts it rests on.
"""
import math
from dataclasses import dataclass, field

import numpy as np
from flint import arb, fmpq

from ..errors import InputError, Undecidable, Undecided
from ..interpret import tensor as T
from ..numbers.tensor import UNDECIDED, FloatTensors
from ..truth import FALSE, TRUE, UNKNOWN

TINY = 2.0 ** -20         # a gradient whose entries are all at most this (relative to the loss scale) is "tiny"
SLACK = 2 ** 10           # float agreement: |float - exact| <= SLACK * u * (|exact| + max |exact| of the array)


@dataclass
class Site:
    """A site of a nonsmooth equation: ``eqn`` (index in the program), ``index`` (in its site grid), the
    switching function ``switch``, where it came from in the model (``origin``), and the values involved."""
    eqn: int
    index: tuple
    switch: int
    origin: str
    exact: str = ""
    float: str = ""

    def json(self):
        return {"equation": self.eqn, "site": list(self.index), "switch": self.switch, "origin": self.origin,
                "exact": self.exact, "float": self.float}


@dataclass
class FloatAgreement:
    """Element-by-element comparison of the framework's float gradient with the exact one, per input:
    ``max_error`` (largest |float - exact|), ``worst`` (that error over the tolerance), ``outside`` (how
    many elements exceed the tolerance) and ``examples`` (a few of them: index, float, exact)."""
    name: str
    max_error: float
    worst: float
    outside: int
    size: int
    examples: list

    @property
    def agrees(self):
        return self.outside == 0


@dataclass
class AuditReport:
    framework: str
    model: str
    dtype: str
    inputs: list                   # InputInfo of every program input
    wrt: list                      # indices of the inputs differentiated
    float_gradient: list           # numpy arrays, per input in wrt order (None where the framework gave none)
    exact_gradient: list           # arrays of fmpq / arb, per input
    agreement: list                # FloatAgreement per input
    exact_kinks: list              # Site
    float_kinks: list              # Site: float decisions that differ from the exact ones
    differentiable: object         # TRUE / UNKNOWN
    critical: dict = None          # {"selection": ..., "clarke": ..., "artificial": ...} when the gradient is tiny
    verdict: str = ""
    selection_gradient: object = UNKNOWN    # is the float gradient a selection gradient at x (to rounding)?
    max_gradient: float = 0.0               # the largest |entry| of the exact gradient (its midpoint for a ball)
    imported: object = field(default=None, repr=False)
    iset: object = field(default=None, repr=False)
    notes: list = field(default_factory=list)

    def summary(self):
        lines = [f"audit of {self.model} ({self.framework}, {self.dtype}) at the exact example point",
                 f"exact kinks: {len(self.exact_kinks)}; float kinks: {len(self.float_kinks)}",
                 f"differentiable: {_t(self.differentiable)}; largest |gradient entry|: {self.max_gradient:.6g}"]
        for a in self.agreement:
            lines.append(f"  {a.name}: float vs exact gradient: {a.outside} of {a.size} element(s) outside float "
                         f"rounding (max |diff| {a.max_error:.3g}, worst {a.worst:.3g} x tolerance)")
        if self.critical:
            lines.append("critical: " + ", ".join(f"{k} {_t(v)}" for k, v in self.critical.items()))
        lines.append(self.verdict)
        return "\n".join(lines)


def _t(v):
    return {TRUE: "yes", FALSE: "no", UNKNOWN: "undecided"}.get(v, str(v))


# ----------------------------------------------------------------------------------------- entry points

def audit(f, *args, framework=None, wrt=None, params="inputs", prec=None, tiny=TINY, critical="auto",
          constant_args=()):
    """Audit the framework's gradient of ``f`` (a torch.nn.Module or function of tensors, or a JAX function,
    returning a scalar loss) at ``args``.  ``wrt``: names (or indices) of the program inputs to differentiate
    (default: every float input and, for torch, every parameter).  Returns an AuditReport."""
    framework = framework or _guess(f, args)
    from .. import frameworks
    if framework == "torch":
        imp = frameworks.from_torch(f, *args, params=params)
        _check_auditable(imp)
        fgrad = _torch_gradient(f, args, imp)
    elif framework == "jax":
        imp = frameworks.from_jax(f, *args, constant_args=constant_args)
        _check_auditable(imp)
        fgrad = _jax_gradient(f, args, imp, constant_args)
    else:
        raise InputError(f"framework {framework!r} must be 'torch' or 'jax'")
    try:
        fvals = var_values(imp, frameworks._module(framework).framework_values(imp, *args))
    except Exception as e:      # the framework's own run of its graph: any failure leaves the replay alone
        fvals = {}
        note = f"the framework's own intermediate values are not available ({type(e).__name__}: {e}); float " \
               "decisions come from a replay"
    else:
        note = None
    rep = audit_imported(imp, fgrad, wrt=wrt, prec=prec, tiny=tiny, critical=critical, framework_vars=fvals)
    if note:
        rep.notes.append(note)
    return rep


def var_values(imp, node_values):
    """{program variable: the framework's float array} for the variables that are the output of a framework
    node (the last equation lowered from it; torch: {node name: value}; jax: {path: (ins, outs)})."""
    P = imp.program
    last = {}
    for k, o in enumerate(imp.origins):
        if o.node:
            last[o.node] = k
    out = {}
    for node, k in last.items():
        if node not in node_values:
            continue
        v = node_values[node]
        if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], (list, tuple)):      # jax: (ins, outs)
            v = v[1]
        if isinstance(v, (list, tuple)):
            vals = list(v)
        else:
            vals = [v]
        e = P.eqns[k]
        if len(vals) != len(e.outs):
            continue
        for o, val in zip(e.outs, vals):
            arr = np.asarray(val.detach().cpu().numpy() if hasattr(val, "detach") else val)
            if arr.dtype.kind == "f" and tuple(arr.shape) == tuple(P.shapes[o]):
                out[o] = arr
    return out


def _guess(f, args):
    mod = type(f).__module__ + " " + " ".join(type(a).__module__ for a in args)
    if "torch" in mod:
        return "torch"
    if "jax" in mod:
        return "jax"
    raise InputError("cannot tell the framework from the model and its arguments: pass framework='torch' or 'jax'")


def _check_auditable(imp):
    """InputError unless the imported program returns one scalar and has a float input to differentiate."""
    P = imp.program
    shapes = [P.atom_shape(a) for a in P.outputs]
    if len(shapes) != 1 or math.prod(shapes[0]) != 1:
        raise InputError(f"the audited function must return one scalar (a loss); {P.name} returns "
                         + ", ".join(f"an array of shape {list(s)}" for s in shapes))
    if not imp.inputs:
        raise InputError(f"nothing to differentiate: every input is an integer or a constant in {P.name} (the "
                         "audit needs a float argument or parameter)")


def _torch_gradient(f, args, imp):
    """The framework's gradient with respect to every program input (float parameters and arguments)."""
    import torch
    params = dict(f.named_parameters()) if isinstance(f, torch.nn.Module) else {}
    targs = [a.detach().clone().requires_grad_(a.is_floating_point()) if isinstance(a, torch.Tensor) else a
             for a in args]
    users = iter(a for a in targs if isinstance(a, torch.Tensor) and a.is_floating_point())
    leaves = []
    for info in imp.inputs:
        leaves.append(params[info.source] if info.kind == "parameter" else next(users))
    for p in params.values():
        p.grad = None
    try:        # the export ran on these arguments: a RuntimeError here is autograd refusing an input
        out = f(*targs)
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            raise InputError("the audited function must return one scalar (a loss)")
        grads = torch.autograd.grad(out.reshape(()), leaves, allow_unused=True)
    except RuntimeError as e:
        raise InputError(f"torch's autograd cannot differentiate {imp.program.name} with respect to every float "
                         f"argument ({str(e).splitlines()[0]}): pass such an argument as a constant (a buffer, or "
                         "a tensor the function closes over)") from None
    return [None if g is None else g.detach().cpu().numpy() for g in grads]


def _jax_gradient(f, args, imp, constant_args):
    import jax

    from ..frameworks.jax import float_leaf
    leaves, tree = jax.tree_util.tree_flatten(list(args))
    float_pos = [i for i, v in enumerate(leaves) if float_leaf(v)]          # a PRNG key is not a float leaf

    def g(*xs):
        vals = list(leaves)
        for i, x in zip(float_pos, xs):
            vals[i] = x
        out = f(*jax.tree_util.tree_unflatten(tree, vals))
        return out.reshape(())
    grads = jax.grad(g, argnums=tuple(range(len(float_pos))))(*[leaves[i] for i in float_pos])
    grads = [np.asarray(x) for x in grads]
    if len(grads) != len(imp.inputs):
        # constant arguments are not program inputs; keep the gradients of the inputs in order
        keep = [k for k in range(len(grads)) if k not in set(constant_args)]
        grads = [grads[k] for k in keep][:len(imp.inputs)]
    return grads


def _wrt(imp, wrt):
    names = [i.name for i in imp.inputs]
    if wrt is None:
        return list(range(len(names)))
    out = []
    for w in wrt:
        if isinstance(w, int) and 0 <= w < len(names):
            out.append(w)
        elif w in names:
            out.append(names.index(w))
        else:
            src = [i.source for i in imp.inputs]
            if w in src:
                out.append(src.index(w))
            else:
                raise InputError(f"wrt={w!r} is not an input of the imported program ({', '.join(names)})")
    return out


def audit_imported(imp, float_gradient, wrt=None, prec=None, tiny=TINY, critical="auto", convention="torch",
                   framework_vars=None):
    """The audit of an imported program (``Imported``) at its example point, given the framework's gradient
    (one numpy array per program input) and, when known, the framework's own float values of program
    variables (``framework_vars``: {variable: array}); other float values come from a replay in the model's
    precision."""
    from ..certify.sites import site_critical, site_index_set
    P, point = imp.program, imp.point
    wrt = _wrt(imp, wrt)
    dtype = _dtype(imp)
    # certified side: one exact evaluation, the index set and kinks, one backward pass
    iset = site_index_set(P, point, convention, "exact", prec)
    r = iset.run
    with T._precision(r.ns, r.prec):
        cts = T.vjp(r, [r.ns.const(fmpq(1))], wrt)
        exact = [None if i not in wrt else T.user_value(r.ns, r.ns.zeros(P.shapes[i]) if c is None else c)
                 for i, c in enumerate(cts)]
    origins = imp.origins
    float_kinks, float_sign = _float_kinks(P, point, r, dtype, origins, framework_vars or {})
    exact_kinks = [Site(k.eqn, tuple(k.site), k.switch, str(origins[k.eqn]), exact="0",
                        float=float_sign.get((k.eqn, tuple(k.site), k.switch), "?")) for k in iset.kinks]
    agreement = []
    for i in wrt:
        fg = float_gradient[i] if i < len(float_gradient) else None
        agreement.append(_agreement(imp.inputs[i].name, fg, exact[i], dtype))
    differentiable = TRUE if not iset.kinks else UNKNOWN
    report = AuditReport(imp.framework, P.name, str(dtype), imp.inputs, wrt, [float_gradient[i] for i in wrt],
                         [exact[i] for i in wrt], agreement, exact_kinks, float_kinks, differentiable,
                         imported=imp, iset=iset)
    report.max_gradient = _max_abs(exact, wrt)
    if critical == "always" or (critical == "auto" and report.max_gradient <= tiny):
        try:
            c = site_critical(P, point, convention, "exact", prec, wrt)
            report.critical = {"selection": c.selection.truth, "clarke": c.clarke_critical.truth,
                               "artificial": c.artificial}
            if c.clarke_error:
                report.notes.append(f"Clarke: {c.clarke_error}")
        except (Undecided, Undecidable, InputError) as e:
            report.critical = {"selection": UNKNOWN, "clarke": UNKNOWN, "artificial": UNKNOWN}
            report.notes.append(f"criticality undecided: {e}")
    report.selection_gradient, report.verdict = _verdict(report)
    if report.critical and report.critical.get("artificial") is TRUE:
        report.verdict += ("; the point is an artificial critical point: 0 is in the conservative field but not in "
                           "Clarke's subdifferential, so a zero AD gradient here does not mean the function is "
                           "stationary")
    elif report.critical and report.critical.get("clarke") is TRUE:
        report.verdict += "; the point is Clarke-critical (a genuine stationary point of the nonsmooth function)"
    return report


def _dtype(imp):
    names = {i.dtype.replace("torch.", "") for i in imp.inputs} or {"float32"}
    for d in ("float16", "bfloat16", "float32", "float64"):
        if d in names:
            return np.dtype("float32") if d == "bfloat16" else np.dtype(d)
    return np.dtype("float32")


def _max_abs(exact, wrt):
    m = 0.0
    for i in wrt:
        for v in np.ravel(np.asarray(exact[i], dtype=object)).tolist():
            m = max(m, abs(float(v.mid() if isinstance(v, arb) else v)))
    return m


def _float_kinks(P, point, r, dtype, origins, fvars):
    """Sites where the float computation decides otherwise than the exact evaluation: a float 0 that is not
    exactly 0, an exact 0 that floats miss, or opposite signs.  The float arguments of a site are the
    framework's own values where ``fvars`` has them, else those of a replay in the model's precision."""
    ns = FloatTensors(dtype.name)
    try:
        fr = T.run(P, ns, [ns.const_array(x) for x in point], r.convention)
    except (Undecided, ArithmeticError, ValueError):
        return [], {}
    out, at_kinks = [], {}
    for st in T.nonsmooth_steps(P, r.convention):
        args = [ns._c(fvars[a]) if isinstance(a, int) and a in fvars else v for a, v in zip(st.ins, fr.args[st.k])]
        source = "framework" if any(isinstance(a, int) and a in fvars for a in st.ins) else "replay"
        for gi, g in enumerate(st.sites.groups):
            fa = T._site_args(ns, st, g, args)
            ex = r.switch_signs(st, gi)
            fl = [T.switch_signs(ns, t, c, fa, len(g.sites)) for t, c in st.switches[gi]]
            for j, (se, sf) in enumerate(zip(ex, fl)):
                for loc in np.nonzero(se == 0)[0].tolist():
                    at_kinks[(st.k, _site(st, g, loc), j)] = f"{_sgn(sf[loc])} ({source})"
                differ = np.nonzero((se != sf) & (se != UNDECIDED))[0]
                for loc in differ.tolist():
                    out.append(Site(st.k, _site(st, g, loc), j, str(origins[st.k]), exact=_sgn(se[loc]),
                                    float=f"{_sgn(sf[loc])} ({source})"))
    return out, at_kinks


def _site(st, g, loc):
    return tuple(int(i) for i in np.unravel_index(int(g.sites[loc]), st.sites.grid)) if st.sites.grid else ()


def _sgn(s):
    return {-1: "<0", 0: "0", 1: ">0"}.get(int(s), "?")


def _agreement(name, fg, ex, dtype):
    ex_arr = np.asarray(ex, dtype=object)
    if fg is None:
        fg = np.zeros(ex_arr.shape)
    mids = np.array([float(v.mid()) if isinstance(v, arb) else float(v) for v in ex_arr.ravel().tolist()],
                    dtype=np.float64).reshape(ex_arr.shape)
    fgv = np.asarray(fg, dtype=np.float64).reshape(mids.shape)
    u = float(np.finfo(dtype).eps) / 2
    scale = float(np.max(np.abs(mids))) if mids.size else 0.0
    tol = SLACK * u * (np.abs(mids) + scale) + float(np.finfo(dtype).tiny)
    err = np.abs(fgv - mids)
    ratio = err / tol
    bad = np.argwhere(ratio > 1)
    examples = [(tuple(int(i) for i in b), float(fgv[tuple(b)]), str(ex_arr[tuple(b)])) for b in bad[:5]]
    return FloatAgreement(name, float(err.max()) if err.size else 0.0, float(ratio.max()) if ratio.size else 0.0,
                          int(len(bad)), int(mids.size), examples)


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


def _verdict(rep):
    agree = all(a.agrees for a in rep.agreement)
    flips = [s for s in rep.float_kinks if s.exact != "0"]
    if agree and not rep.exact_kinks and not rep.float_kinks:
        return TRUE, ("verdict: the framework's gradient is, to float rounding, the gradient of the exact function "
                      "at this point (no switching function vanishes: the point is certified differentiable)")
    if agree and not flips:
        return TRUE, (f"verdict: the framework's gradient is, to float rounding, the selection gradient of the exact "
                      f"function at this point under its kink convention; {len(rep.exact_kinks)} site(s) sit exactly "
                      "on a kink, so it is one element of the conservative field, not necessarily a gradient")
    if not agree and flips:
        return FALSE, (f"verdict: the framework's gradient is not the selection gradient at this exact point: "
                       f"{len(flips)} site(s) decided by float rounding on the other side of a kink (float kinks) "
                       "change the pieces it differentiated")
    if not agree:
        return FALSE, ("verdict: the framework's gradient differs from the exact selection gradient by more than "
                       "float rounding at some elements (see the agreement table)")
    return UNKNOWN, (f"verdict: the gradients agree to float rounding, but {len(flips)} float decision(s) differ from "
                     "the exact ones: the agreement may be a coincidence of the pieces")
