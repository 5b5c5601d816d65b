"""The audit's kinks, aggregated: per layer and op, per class, with the first sites of each class, and every
kink into an ``.npz`` on request.

An exact kink is a switching function exactly 0 at the exact point; a site (one scalar selection of a
nonsmooth equation: a relu element, a max-pool window) can have several.  Each kinked *site* gets one class:

- ``plateau``: a window or reduction (max-pool, amax, amin, an n-ary max) whose arguments are all identical,
  such as a max-pool window of relu's zeros;
- ``zero``: relu, leaky_relu or abs exactly at 0;
- ``bound``: clamp, hardtanh or relu6 exactly at a bound;
- ``tie``: a max or min whose extremum is reached by several arguments, not all of them equal (or a binary
  maximum / minimum of two equal values);
- ``below``: arguments tied below the max (or above the min): a kink of the switching functions that does not
  change the piece the index rule picks;
- ``sort``: tied elements of a sort;
- ``compare``: a ``where`` whose comparison holds with equality;
- ``jump``: a piecewise constant step (floor, ceil, round, trunc) whose argument sits on a jump (or may: a ball).

A *layer* is where the framework's op came from: the module, the op and its node (``Origin``).  Everything
here reads the report's lists of kinks and, to tell the kinds of max/min ties apart, the signs of the
exact evaluation the audit ran; nothing is decided here.
"""
from dataclasses import dataclass, field

import numpy as np

from ..interpret import tensor as T

CLASSES = ("plateau", "zero", "bound", "tie", "below", "sort", "compare", "jump")
CLASS_TEXT = {
    "plateau": "a window of identical values",
    "zero": "relu / leaky_relu / abs exactly at 0",
    "bound": "clamp / hardtanh / relu6 exactly at a bound",
    "tie": "a max/min tie among distinct inputs",
    "below": "a tie below the max/min (the piece does not change)",
    "sort": "tied elements of a sort",
    "compare": "a where comparison that holds with equality",
    "jump": "a step (floor, ceil, round, trunc) on a jump",
}
FAMILY = {"relu": "zero", "leaky_relu": "zero", "abs": "zero", "clamp": "bound", "hardtanh": "bound",
          "relu6": "bound", "sort": "sort", "where": "compare", "max": "max", "min": "min"}
FIRST = 3             # sites listed per class and layer


@dataclass
class Layer:
    """The kinks of one layer (a framework op at one place of the model): its ``origin`` (an Origin), its
    ``family`` (zero, bound, max, min, sort, compare: what kind of kink its sites have), ``equations``
    (indices of its nonsmooth equations), ``sites`` (how many sites they have), the exact kinks (``kinked``
    sites, ``switches`` vanishing switching functions, ``classes``: class -> kinked sites, ``first``: class ->
    the first few site indices) and ``float_kinks``."""
    origin: object
    family: str = ""
    equations: list = field(default_factory=list)
    sites: int = 0
    kinked: int = 0
    switches: int = 0
    classes: dict = field(default_factory=dict)
    first: dict = field(default_factory=dict)
    float_kinks: int = 0

    @property
    def label(self):
        o = self.origin
        where = f" ({short_source(o.source)})" if o.source else ""
        return (f"{o.module} " if o.module else "") + short_op(o.op) + where

    def json(self):
        o = self.origin
        return {"module": o.module, "op": o.op, "node": o.node, "source": o.source, "kind": self.family,
                "equations": [k + 1 for k in self.equations], "sites": self.sites, "kinked_sites": self.kinked,
                "kinks": self.switches,
                "classes": {c: {"sites": self.classes[c], "first": [list(s) for s in self.first[c]]}
                            for c in CLASSES if c in self.classes},
                "float_kinks": self.float_kinks}


@dataclass
class Kinks:
    """The kinks of an audit report, aggregated: ``layers`` (a Layer per layer with a nonsmooth equation, in
    program order), ``exact_class`` (the class of every exact kink, in the order of ``report.exact_kinks``),
    ``site_classes`` (class -> kinked sites over the whole model) and ``layer_of`` (equation index -> index
    in ``layers``)."""
    layers: list
    exact_class: list
    site_classes: dict
    layer_of: dict

    @property
    def kinked_sites(self):
        return sum(self.site_classes.values())


def short_op(op):
    """``aten.max_pool2d_with_indices.default`` -> ``max_pool2d_with_indices``."""
    op = op[len("aten."):] if op.startswith("aten.") else op
    return op.rsplit(".", 1)[0] if op.endswith((".default", ".Tensor", ".Scalar", ".self", ".int")) else op


def short_source(src):
    """The file's name and the line of a source location: ``model.py:35 `x = F.max_pool2d(x, 2)``` (torch)
    and ``/home/me/model.py:35:8 (loss)`` (JAX) are ``model.py:35`` (the JSON has the whole location)."""
    import os
    where = src.split(" `")[0].split(" (")[0]
    path, _, rest = where.rpartition(".py:")
    if not path:
        return where
    return os.path.basename(path) + ".py:" + rest.split(":")[0]


def aggregate(report):
    """The Kinks of an AuditReport (computed once and kept on the report)."""
    cached = report.__dict__.get("_kinks")
    if cached is not None:
        return cached
    imp = report.imported
    P = imp.program
    convention = report.iset.convention if report.iset is not None else imp.framework
    steps = {st.k: st for st in T.nonsmooth_steps(P, convention)}
    layers, layer_of, by_key = [], {}, {}
    for k, st in steps.items():
        o = imp.origins[k]
        key = (o.module, o.op, o.node, o.source)
        if key not in by_key:
            by_key[key] = len(layers)
            layers.append(Layer(o, FAMILY.get(st.sites.prim, "other")))
        lay = layers[by_key[key]]
        lay.equations.append(k)
        lay.sites += st.sites.n_sites
        layer_of[k] = by_key[key]
    run = report.iset.run if report.iset is not None else None
    exact_class = [None] * len(report.exact_kinks)
    by_eqn = {}
    for i, s in enumerate(report.exact_kinks):
        by_eqn.setdefault(s.eqn, []).append(i)
    site_classes = {}
    for k, idx in by_eqn.items():
        if k not in steps:          # a step's jump: no switching function, the element itself is the site
            _jumps(report, P, k, idx, layers, layer_of, by_key, exact_class, site_classes)
            continue
        st = steps[k]
        lay = layers[layer_of[k]]
        flat = _flat_sites(st, [report.exact_kinks[i].index for i in idx])
        sites = np.unique(flat)
        classes = _classify(st, sites, run)
        for s, c in zip(sites.tolist(), classes):
            lay.classes[c] = lay.classes.get(c, 0) + 1
            site_classes[c] = site_classes.get(c, 0) + 1
            shown = lay.first.setdefault(c, [])
            if len(shown) < FIRST:
                shown.append(_multi(st, s))
        cls_of = dict(zip(sites.tolist(), classes))
        for i, f in zip(idx, flat.tolist()):
            exact_class[i] = cls_of[f]
        lay.kinked += len(sites)
        lay.switches += len(idx)
    for s in report.float_kinks:
        if s.eqn in layer_of:
            layers[layer_of[s.eqn]].float_kinks += 1
    out = Kinks(layers, exact_class, site_classes, layer_of)
    report.__dict__["_kinks"] = out
    return out


def _jumps(report, P, k, idx, layers, layer_of, by_key, exact_class, site_classes):
    """Class ``jump`` for the exact kinks ``idx`` of the step equation k, in the layer of its origin."""
    o = report.imported.origins[k]
    key = (o.module, o.op, o.node, o.source)
    if key not in by_key:
        by_key[key] = len(layers)
        layers.append(Layer(o, "jump"))
    lay = layers[by_key[key]]
    if k not in lay.equations:
        lay.equations.append(k)
        lay.sites += int(np.prod(P.shapes[P.eqns[k].outs[0]], dtype=np.int64))
    layer_of[k] = by_key[key]
    sites = sorted({tuple(report.exact_kinks[i].index) for i in idx})
    for i in idx:
        exact_class[i] = "jump"
    lay.classes["jump"] = lay.classes.get("jump", 0) + len(sites)
    site_classes["jump"] = site_classes.get("jump", 0) + len(sites)
    shown = lay.first.setdefault("jump", [])
    shown.extend(sites[:FIRST - len(shown)])
    lay.kinked += len(sites)
    lay.switches += len(idx)


def _flat_sites(st, indices):
    grid = st.sites.grid
    if not grid:
        return np.zeros(len(indices), dtype=np.int64)
    return np.ravel_multi_index(np.asarray(indices, dtype=np.int64).T, grid).astype(np.int64)


def _multi(st, s):
    return tuple(int(i) for i in np.unravel_index(int(s), st.sites.grid)) if st.sites.grid else ()


def _classify(st, sites, run):
    """The class of each kinked site (flat ids ``sites``) of step ``st``."""
    family = FAMILY.get(st.sites.prim, "other")
    if family not in ("max", "min"):
        return [family if family in CLASSES else "compare"] * len(sites)
    out = ["tie"] * len(sites)
    if run is None:
        return out
    direction = 1 if family == "max" else -1
    group_of, loc_of = _site_positions(st)
    for gi, g in enumerate(st.sites.groups):
        mine = np.nonzero(group_of[sites] == gi)[0]
        if not len(mine):
            continue
        signs = np.stack([np.asarray(s) for s in run.switch_signs(st, gi)])[:, loc_of[sites[mine]]]
        n = g.n
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        # cmp[i, j] = sign(x_i - x_j) * direction over the kinked sites of this group
        cmp = np.zeros((n, n, len(mine)), dtype=np.int64)
        for p, (i, j) in enumerate(pairs):
            cmp[i, j] = signs[p] * direction
            cmp[j, i] = -signs[p] * direction
        extremal = np.all(cmp >= 0, axis=1)            # x_i is a max (a min): no x_j beats it
        tied = extremal.sum(axis=0) >= 2
        flat_plateau = np.all(signs == 0, axis=0) & (not st.sites.elementwise)
        for m, loc in enumerate(mine.tolist()):
            out[loc] = "plateau" if flat_plateau[m] else ("tie" if tied[m] else "below")
    return out


def _site_positions(st):
    """(group index, position in the group) of every flat site of step ``st``."""
    n = st.sites.n_sites
    group_of = np.full(n, -1, dtype=np.int64)
    loc_of = np.zeros(n, dtype=np.int64)
    for gi, g in enumerate(st.sites.groups):
        group_of[g.sites] = gi
        loc_of[g.sites] = np.arange(len(g.sites))
    return group_of, loc_of


# --------------------------------------------------------------------------------------------- the .npz

SIGNS = {"<0": -1, "0": 0, ">0": 1}


def save_kinks(report, path):
    """Write every exact and float kink of ``report`` to ``path`` (.npz, read with numpy.load; no pickles):

    - ``layers`` (one label per layer), ``layer_of_equation`` (the layer of every equation, -1 for smooth
      ones), ``classes`` (the class names);
    - ``exact_equation``, ``exact_site`` (one row per kink, padded with -1), ``exact_switch``,
      ``exact_class`` (an index into ``classes``), ``exact_float`` (the float sign of the switching function:
      -1, 0, 1, or 2 when unknown);
    - ``float_equation``, ``float_site``, ``float_switch``, ``float_exact`` and ``float_float`` (signs),
      ``float_source`` (framework: the framework's own values; replay: verify's float replay).
    Equations are counted from 1, as everywhere in verify."""
    agg = aggregate(report)
    n_eqns = len(report.imported.program.eqns)
    layer_of = np.full(n_eqns, -1, dtype=np.int32)
    for k, i in agg.layer_of.items():
        layer_of[k] = i
    arrays = {"layers": np.array([lay.label for lay in agg.layers], dtype=str),
              "layer_of_equation": layer_of, "classes": np.array(CLASSES, dtype=str)}
    arrays.update(_site_arrays("exact", report.exact_kinks))
    arrays["exact_class"] = np.array([CLASSES.index(c) for c in agg.exact_class], dtype=np.int8)
    arrays["exact_float"] = np.array([_sign(s.float) for s in report.exact_kinks], dtype=np.int8)
    arrays.update(_site_arrays("float", report.float_kinks))
    arrays["float_exact"] = np.array([_sign(s.exact) for s in report.float_kinks], dtype=np.int8)
    arrays["float_float"] = np.array([_sign(s.float) for s in report.float_kinks], dtype=np.int8)
    arrays["float_source"] = np.array([_source(s.float) for s in report.float_kinks], dtype=str)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def _site_arrays(prefix, sites):
    width = max((len(s.index) for s in sites), default=0)
    grid = np.full((len(sites), width), -1, dtype=np.int64)
    for r, s in enumerate(sites):
        grid[r, :len(s.index)] = s.index
    return {f"{prefix}_equation": np.array([s.equation for s in sites], dtype=np.int32),
            f"{prefix}_site": grid, f"{prefix}_switch": np.array([s.switch for s in sites], dtype=np.int32)}


def _sign(text):
    return SIGNS.get((text or "").split(" ")[0], 2)


def _source(text):
    parts = (text or "").split("(")
    return parts[1].rstrip(")") if len(parts) > 1 else ""
