"""The float side of an audit: what the framework computed, set beside the exact evaluation.

- ``var_values``: the framework's own float values of program variables (from its run of the imported graph);
- ``float_kinks``: the sites where the float computation decides a switching function otherwise than the
  exact evaluation (0 in floats and not exactly, the reverse, or the opposite sign), from the framework's own
  values where it has them, else from a replay of the program in the model's precision;
- ``agreement``: the framework's float gradient against the exact one, element by element.

Nothing here is certified: floats are what the framework did, unverified by definition.
"""
import numpy as np
from flint import arb

from ..errors import Undecided
from ..interpret import tensor as T
from ..numbers.tensor import SIGN_UNDECIDED, FloatTensors
from .report import FloatAgreement, Site

SLACK = 2 ** 10           # float agreement: |float - exact| <= SLACK * u * (|exact| + max |exact| of the array)


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
        args = [ns.cast(fvars[a]) if isinstance(a, int) and a in fvars else v for a, v in zip(st.ins, fr.args[st.k])]
        source = "framework" if any(isinstance(a, int) and a in fvars for a in st.ins) else "replay"
        for gi, g in enumerate(st.sites.groups):
            fa = T.group_args(ns, st, g, args)
            ex = r.switch_signs(st, gi)
            fl = [T.switch_signs(ns, t, c, fa, len(g.sites)) for t, c in st.switches[gi]]
            for j, (se, sf) in enumerate(zip(ex, fl)):
                for loc in np.nonzero(se == 0)[0].tolist():
                    at_kinks[(st.k, site_index(st, g, loc), j)] = f"{sign_text(sf[loc])} ({source})"
                differ = np.nonzero((se != sf) & (se != SIGN_UNDECIDED))[0]
                for loc in differ.tolist():
                    out.append(Site(st.k, site_index(st, g, loc), j, str(origins[st.k]), exact=sign_text(se[loc]),
                                    float=f"{sign_text(sf[loc])} ({source})"))
    return out, at_kinks


def site_index(st, g, loc):
    """The multi-index, in its equation's site grid, of site ``loc`` of group ``g`` of step ``st``."""
    return tuple(int(i) for i in np.unravel_index(int(g.sites[loc]), st.sites.grid)) if st.sites.grid else ()


def sign_text(s):
    return {-1: "<0", 0: "0", 1: ">0"}.get(int(s), "?")


def agreement(name, fg, ex, dtype):
    """FloatAgreement of the float gradient ``fg`` (None: zeros) with the exact array ``ex`` (fmpq / arb)."""
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
    examples = [(tuple(int(i) for i in b), float(fgv[tuple(b)]), ex_arr[tuple(b)]) for b in bad[:5]]
    return FloatAgreement(name, float(err.max()) if err.size else 0.0, float(ratio.max()) if ratio.size else 0.0,
                          int(len(bad)), int(mids.size), examples)
