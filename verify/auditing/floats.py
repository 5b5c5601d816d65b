"""The float side of an audit: what the framework computed, set beside the exact evaluation.

- ``var_values``: the framework's own float values of program variables (from its run of the imported graph);
- ``float_kinks``: the sites where the float computation decides a switching function otherwise than the
  exact evaluation (0 in floats and not exactly, the reverse, or the opposite sign), from the framework's own
  values where it has them, else from a replay of the program in the model's precision;
- ``agreement``: the framework's float gradient against the exact selection gradient, element by element:
  PROVED where it lies within the proved bound of any IEEE evaluation of the program in the model's format
  (numbers/rounding.py) of the exact value, REFUTED where it provably lies outside (no such evaluation can
  return it), SIGN_UNDECIDED otherwise.

The framework's floats are what it did, unverified by definition; the decisions about them are proved.
"""
import math
from collections.abc import Sequence

import numpy as np
from flint import arb

from ..errors import Undecided
from ..interpret import tensor as T
from ..numbers.tensor import SIGN_UNDECIDED, FloatTensors
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
            arr = host_array(val)
            if arr.dtype.kind == "f" and tuple(arr.shape) == tuple(P.shapes[o]):
                out[o] = arr
    return out


def host_array(v):
    """A numpy array of a framework's array (a torch tensor, a JAX array, numpy): bfloat16, which numpy lacks,
    as float32 (every bfloat16 number is one)."""
    if hasattr(v, "detach"):
        v = v.detach().cpu()
        if str(v.dtype) == "torch.bfloat16":
            v = v.float()
        return v.numpy()
    return np.asarray(v)


SIGN_TEXT = {-1: "<0", 0: "0", 1: ">0"}


class SiteList(Sequence):
    """Sites of nonsmooth equations as arrays, each ``Site`` made when it is read (a max-pool layer has
    hundreds of thousands of exact kinks; aggregating them needs the arrays, not the objects): ``eqns`` (index
    in the program), ``flat`` (the flat index in the equation's site grid), ``switches``, ``exact`` and ``fl``
    (sign codes: -1, 0, 1, or 2 when unknown), ``source`` (per site: 0 the framework's own values, 1 a replay),
    ``grids`` ({eqn: its site grid}) and ``origins`` (the program's origins, for the text of a site)."""

    def __init__(self, eqns, flat, switches, exact, fl, source, grids, origins):
        self.eqns, self.flat, self.switches = eqns, flat, switches
        self.exact, self.fl, self.source = exact, fl, source
        self.grids, self.origins = grids, origins

    @classmethod
    def from_parts(cls, parts, grids, origins):
        """From a list of (eqn, flat sites, switch, exact codes, float codes, source) array parts."""
        if not parts:
            z = np.zeros(0, np.int64)
            return cls(z, z, z, z.astype(np.int8), z.astype(np.int8), z.astype(np.int8), grids, origins)
        cat = [np.concatenate([np.broadcast_to(np.asarray(p[i]), (len(p[1]),)) for p in parts]) for i in range(6)]
        return cls(cat[0].astype(np.int64), cat[1].astype(np.int64), cat[2].astype(np.int64),
                   cat[3].astype(np.int8), cat[4].astype(np.int8), cat[5].astype(np.int8), grids, origins)

    def __len__(self):
        return int(self.eqns.size)

    def index(self, i):
        """The multi-index (in its equation's site grid) of site i."""
        grid = self.grids[int(self.eqns[i])]
        return tuple(int(v) for v in np.unravel_index(int(self.flat[i]), grid)) if grid else ()

    def site(self, i):
        k = int(self.eqns[i])
        src = "framework" if self.source[i] == 0 else "replay"
        fl = SIGN_TEXT.get(int(self.fl[i]), "?")
        return Site(k, self.index(i), int(self.switches[i]), str(self.origins[k]),
                    exact=SIGN_TEXT.get(int(self.exact[i]), "?"), float=f"{fl} ({src})" if fl != "?" else "?")

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.site(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.site(i)

    def __iter__(self):
        return (self.site(i) for i in range(len(self)))

    def __eq__(self, other):
        return list(self) == list(other)

    def __repr__(self):
        return f"<{len(self)} site(s)>"


def float_kinks(P, point, r, dtype, origins, fvars):
    """(float kinks, exact kinks): SiteLists of the sites where floats decide a switching function otherwise
    than the run ``r`` (proved signs: 0 in floats and not exactly, the reverse, or the opposite sign), and of
    every switching function exactly 0 in ``r`` with its float sign beside.  The float arguments of a site are
    the framework's own values where ``fvars`` has them, else those of a replay in the model's precision (when
    the replay itself fails, the float signs are unknown: code 2)."""
    ns = FloatTensors(dtype.name)
    steps = T.nonsmooth_steps(P, r.convention)
    fr = None
    if any(isinstance(a, int) and a >= P.n_inputs and a not in fvars for st in steps for a in st.ins):
        try:                                   # some site reads a value the framework did not report: replay
            with np.errstate(all="ignore"):
                fr = T.run(P, ns, [ns.const_array(x) for x in point], r.convention)
        except (Undecided, ArithmeticError, ValueError):
            fr = False
    xs = [ns.const_array(x) for x in T.coerce_inputs(P, point)]
    grids = {st.k: tuple(st.sites.grid) for st in steps}
    flips, kinks = [], []
    for st in steps:
        if fr:
            given = fr.args[st.k]
        else:
            given = [xs[a] if isinstance(a, int) and a < P.n_inputs else None if isinstance(a, int) else
                     T.read_atom(P, ns, a) for a in st.ins]
        args = [ns.cast(fvars[a]) if isinstance(a, int) and a in fvars else v for a, v in zip(st.ins, given)]
        known = all(v is not None for v in args)
        source = 0 if any(isinstance(a, int) and a in fvars for a in st.ins) else 1
        for gi, g in enumerate(st.sites.groups):
            ex = r.switch_signs(st, gi)
            if known:
                with np.errstate(all="ignore"):
                    fa = T.group_args(ns, st, g, args)
                    fl = [T.switch_signs(ns, t, c, fa, len(g.sites)) for t, c in st.switches[gi]]
            else:
                fl = [np.full(len(g.sites), SIGN_UNDECIDED, np.int8) for _ in ex]
            for j, (se, sf) in enumerate(zip(ex, fl)):
                at = np.nonzero(se == 0)[0]
                if at.size:
                    kinks.append((st.k, g.sites[at], j, 0, sf[at], source))
                differ = np.nonzero((se != sf) & (se != SIGN_UNDECIDED))[0] if known else ()
                if len(differ):
                    flips.append((st.k, g.sites[differ], j, se[differ], sf[differ], source))
    return SiteList.from_parts(flips, grids, origins), SiteList.from_parts(kinks, grids, origins)


def site_index(st, g, loc):
    """The multi-index, in its equation's site grid, of site ``loc`` of group ``g`` of step ``st``."""
    return tuple(int(i) for i in np.unravel_index(int(g.sites[loc]), st.sites.grid)) if st.sites.grid else ()


def sign_text(s):
    return SIGN_TEXT.get(int(s), "?")


# ------------------------------------------------------------------------------------------- the agreement

_UP = 1 + 2.0 ** -51
_DOWN = 1 - 2.0 ** -51


def decide_elements(fg, enc, overflow=False):
    """(proved, refuted, |fg - mid|) for the float gradient ``fg`` against the enclosure ``enc`` (an MR with
    ``dev``): PROVED where |fg - exact| + (the exact side's radius) <= dev for every exact value in the
    enclosure, REFUTED where |fg - exact| > dev for all of them (no IEEE evaluation of the program in the model's
    format can return fg).  Computed in float64 with the rounding of every step accounted for: |fl(a - b)| is
    within a factor (1 +- 2**-51) of |a - b|.  A non-finite fg is REFUTED when the exact side is finite and no
    IEEE evaluation can overflow (``overflow`` False); with ``overflow`` True nothing is REFUTED."""
    from ..numbers.rounding import inflation
    f = np.asarray(fg, dtype=np.float64).reshape(enc.mid.shape)
    dev = enc.deviation()
    with np.errstate(all="ignore"):
        d = np.abs(f - enc.mid)
        if enc.rad is None:
            proved = d * (_UP * inflation(1)) <= dev
            refuted = d * (_DOWN * _DOWN) > dev
        else:
            rad = np.broadcast_to(enc.rad, d.shape)
            hi = d * _UP
            hi += rad
            hi *= inflation(1)
            proved = hi <= dev
            t = d * _DOWN
            t -= rad
            t *= _DOWN
            refuted = t > dev
        finite = bool(np.isfinite(f).all())
        if not bool(np.isfinite(dev).all()):
            proved &= np.isfinite(dev)
        if not finite:
            proved &= np.isfinite(f)
            if not overflow:
                refuted |= ~np.isfinite(f) & np.isfinite(enc.mid) & np.isfinite(enc.radius())
        if overflow:
            refuted = np.zeros(d.shape, dtype=bool)
    # arrays also for a 0-d gradient (numpy's comparisons of 0-d arrays return scalars)
    return np.array(proved, dtype=bool), np.array(refuted, dtype=bool), d


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
    proved, refuted, err = decide_elements(f, enc, overflow)
    # arrays, also for a 0-d gradient (numpy gives scalars there, which take no item assignment)
    proved, refuted = np.array(proved, dtype=bool), np.array(refuted, dtype=bool)
    undecided = np.array(~(proved | refuted), dtype=bool)
    n_und = int(np.count_nonzero(undecided))
    escalated = 0
    ex_arr = None
    dev = enc.deviation()
    if n_und and exact is not None:
        ex_arr = exact()
        for idx in map(tuple, np.argwhere(undecided)):
            t = decide_exact(float(f[idx]), ex_arr[idx], float(dev[idx]))
            escalated += 1
            if t is TRUE:
                proved[idx], undecided[idx] = True, False
            elif t is FALSE and not overflow:
                refuted[idx], undecided[idx] = True, False
        n_und = int(np.count_nonzero(undecided))
    n_out = int(np.count_nonzero(refuted))
    with np.errstate(all="ignore"):
        worst = float(np.nanmax(err / dev)) if err.size and np.any(err) else 0.0      # 0/0 is nan: ignored
        max_err = float(np.nanmax(err)) if err.size else 0.0
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
                     ": no proved rounding bound there (an infinite bound proves nothing)"
                     if np.isinf(dev[undecided]).all() else
                     ": the exact side is not narrow enough there" if exact is None else
                     ": the exact value is a ball straddling the bound even at the precision cap"))
    return FloatAgreement(name, max_err, worst, n_out, int(f.size), exs, undecided=n_und,
                          bound=float(np.nanmax(dev)) if dev.size else 0.0, rule=rule,
                          exact_radius=float(np.max(enc.rad)) if enc.rad is not None and enc.mid.size else 0.0,
                          escalated=escalated, truth=truth, reason=reason, errors=err, bounds=dev)
