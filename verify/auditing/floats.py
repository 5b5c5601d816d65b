"""The float side of an audit: what the framework computed, set beside the exact evaluation.

- ``var_values``: the framework's own float values of program variables (from its run of the imported graph);
- ``float_kinks``: the sites where the float computation decides a switching function otherwise than the
  exact evaluation (0 in floats and not exactly, the reverse, or the opposite sign), from the framework's own
  values where it has them, else from a replay of the program in the model's precision;
- ``agreement``: the framework's float gradient against the exact selection gradient, element by element:
  PROVED where it lies within the proved bound of any IEEE evaluation of the program in the model's format
  (numbers/rounding.py) of the exact value, REFUTED where it provably lies outside (no such evaluation can
  return it), UNDECIDED otherwise.

The framework's floats are what it did, unverified by definition; the decisions about them are proved.
"""
import math

import numpy as np
from flint import arb

from ..errors import Undecided
from ..interpret import tensor as T
from ..numbers.tensor import UNDECIDED, FloatTensors
from ..truth import FALSE, TRUE, UNKNOWN
from .report import FloatAgreement, Site


def model_dtype(imp):
    """The numpy dtype the model computes in (the widest float dtype among its inputs; bfloat16 as float32)."""
    names = {i.dtype.replace("torch.", "") for i in imp.inputs} or {"float32"}
    for d in ("float64", "float32", "bfloat16", "float16"):
        if d in names:
            return np.dtype("float32") if d == "bfloat16" else np.dtype(d)
    return np.dtype("float32")


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
        vals = list(v) if isinstance(v, (list, tuple)) else [v]
        e = P.eqns[k]
        if len(vals) != len(e.outs):
            continue
        for o, val in zip(e.outs, vals):
            arr = np.asarray(val.detach().cpu().numpy() if hasattr(val, "detach") else val)
            if arr.dtype.kind == "f" and tuple(arr.shape) == tuple(P.shapes[o]):
                out[o] = arr
    return out


def float_kinks(P, point, r, dtype, origins, fvars):
    """(sites where floats decide otherwise than the exact evaluation ``r``, {(eqn, site, switch): the float
    sign} at every exact kink).  The float arguments of a site are the framework's own values where ``fvars``
    has them, else those of a replay in the model's precision."""
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
                    at_kinks[(st.k, site_index(st, g, loc), j)] = f"{sign_text(sf[loc])} ({source})"
                differ = np.nonzero((se != sf) & (se != UNDECIDED))[0]
                for loc in differ.tolist():
                    out.append(Site(st.k, site_index(st, g, loc), j, str(origins[st.k]), exact=sign_text(se[loc]),
                                    float=f"{sign_text(sf[loc])} ({source})"))
    return out, at_kinks


def site_index(st, g, loc):
    """The multi-index, in its equation's site grid, of site ``loc`` of group ``g`` of step ``st``."""
    return tuple(int(i) for i in np.unravel_index(int(g.sites[loc]), st.sites.grid)) if st.sites.grid else ()


def sign_text(s):
    return {-1: "<0", 0: "0", 1: ">0"}.get(int(s), "?")


# ------------------------------------------------------------------------------------------- the agreement

_UP = 1 + 2.0 ** -51
_DOWN = 1 - 2.0 ** -51


def decide_elements(fg, enc, overflow=False):
    """(proved, refuted) bool arrays for the float gradient ``fg`` against the enclosure ``enc`` (an MR with
    ``dev``): PROVED where |fg - exact| + (the exact side's radius) <= dev for every exact value in the
    enclosure, REFUTED where |fg - exact| > dev for all of them (no IEEE evaluation of the program in the model's
    format can return fg).  Computed in float64 with the rounding of every step accounted for: |fl(a - b)| is
    within a factor (1 +- 2**-51) of |a - b|.  A non-finite fg is REFUTED when the exact side is finite and no
    IEEE evaluation can overflow (``overflow`` False); with ``overflow`` True nothing is REFUTED."""
    from ..numbers.rounding import inflation
    f = np.asarray(fg, dtype=np.float64).reshape(enc.mid.shape)
    rad, dev = enc.radius(), enc.deviation()
    with np.errstate(all="ignore"):
        d = np.abs(f - enc.mid)
        hi = (d * _UP + rad) * inflation(1)
        proved = np.isfinite(f) & np.isfinite(dev) & (hi <= dev)
        t = d * _DOWN - rad
        refuted = (t - np.abs(t) * 2.0 ** -51) > dev
        if overflow:
            refuted[...] = False
        else:
            refuted |= ~np.isfinite(f) & np.isfinite(enc.mid) & np.isfinite(rad)
    return proved, refuted


def decide_exact(fv, e, dv):
    """TRUE / FALSE / UNKNOWN for one element against its exact value ``e`` (fmpq, or an arb ball): is
    |fv - e| <= dv?  Exact in rationals; a ball that straddles the bound is UNKNOWN."""
    from flint import fmpq
    if not (math.isfinite(fv) and math.isfinite(dv)):
        return UNKNOWN
    if isinstance(e, fmpq):
        return TRUE if abs(fmpq(*fv.as_integer_ratio()) - e) <= fmpq(*dv.as_integer_ratio()) else FALSE
    diff = abs(arb(fv) - e)
    if diff <= arb(dv):
        return TRUE
    if diff > arb(dv):
        return FALSE
    return UNKNOWN


def agreement(name, fg, enc, rule, exact=None, overflow=False, examples=5):
    """FloatAgreement of the framework's float gradient ``fg`` (None: zeros) with the enclosure ``enc`` of the
    exact selection gradient and the bound ``enc.dev`` of every IEEE evaluation (``rule`` says which).
    ``exact``: a function returning the exact gradient of this input (an object array of fmpq / arb), called
    only when some element is undecided from the enclosure (the exact side narrowed); None: no escalation."""
    shape = enc.mid.shape
    f = np.zeros(shape) if fg is None else np.asarray(fg, dtype=np.float64).reshape(shape)
    proved, refuted = decide_elements(f, enc, overflow)
    undecided = ~(proved | refuted)
    escalated = 0
    ex_arr = None
    if undecided.any() and exact is not None:
        ex_arr = exact()
        dev = enc.deviation()
        for idx in map(tuple, np.argwhere(undecided)):
            t = decide_exact(float(f[idx]), ex_arr[idx], float(dev[idx]))
            escalated += 1
            if t is TRUE:
                proved[idx], undecided[idx] = True, False
            elif t is FALSE and not overflow:
                refuted[idx], undecided[idx] = True, False
    with np.errstate(all="ignore"):
        err = np.abs(f - enc.mid)
        dev = enc.deviation()
        ratio = np.where(err == 0, 0.0, err / dev)
    n_out, n_und = int(refuted.sum()), int(undecided.sum())
    picks = np.argwhere(refuted) if n_out else np.argwhere(undecided)
    exs = []
    for b in picks[:examples]:
        idx = tuple(int(i) for i in b)
        exs.append((idx, float(f[idx]), ex_arr[idx] if ex_arr is not None else enc.ball(idx)))
    truth = FALSE if n_out else (TRUE if not n_und else UNKNOWN)
    reason = ""
    if n_und:
        reason = (f"{n_und} element(s) could not be placed inside or outside the bound"
                  + (": an IEEE evaluation may overflow, so nothing beyond the bound is impossible" if overflow else
                     ": the exact side is not narrow enough there" if exact is None else
                     ": the exact value is a ball straddling the bound even at the precision cap"))
    finite = np.isfinite(err)
    return FloatAgreement(name, float(err[finite].max()) if finite.any() else (0.0 if not err.size else math.inf),
                          float(np.nanmax(ratio)) if ratio.size else 0.0, n_out, int(f.size), exs,
                          undecided=n_und, bound=float(np.nanmax(dev)) if dev.size else 0.0, rule=rule,
                          exact_radius=float(np.max(enc.radius())) if enc.mid.size else 0.0, escalated=escalated,
                          truth=truth, reason=reason, errors=err, bounds=dev)
