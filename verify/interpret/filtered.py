"""The float filter: a tensor program evaluated in midpoint-radius floats, exact only where floats cannot decide.

``filtered_run`` evaluates a program at an exact point in ``MidRadTensors`` (numbers/midrad.py): float64
midpoints and proved radii on numpy / BLAS.  Every switching function whose enclosure excludes 0 is decided
there, and one whose midpoint and radius are both exactly 0 is exactly 0; the others (exact ties the floats
cannot see as exact, near ties) are decided in exact arithmetic through their dependency cone only
(cone.py), escalating the precision of the cone's balls when a value stopped being rational.  The result is
a ``TRun`` like any other: the pattern is the exact one (every decision is proved), its values are
enclosures, and the backward pass over it (``gradient``) encloses the exact selection gradient.

With a ``model`` (a ``rounding.Rounding``), every value also carries the bound of what any IEEE evaluation of
the same program in the model's format can return, forward and backward: what an audit compares a
framework's float gradient against.

CGAL's filtered predicates are the pattern (decide in floats with a proved error bound, fall back to exact
arithmetic only when the bound cannot decide); Rump's midpoint-radius products make the bound cheap.
"""
from dataclasses import dataclass, field

import numpy as np
from flint import fmpq

from ..errors import InputError
from ..numbers.midrad import MidRadTensors
from ..numbers.tensor import SIGN_UNDECIDED
from ..program import kinks
from ..program.prims import PRIMITIVES
from . import tensor as T
from .cone import BUDGET, Cone, ConeTooLarge
from .precision import DEFAULT_PREC, PREC_CAP


@dataclass
class FilterStats:
    """What the filter did: ``sites`` decided exactly through a cone (``tied`` of them by labels alone: equal
    arguments), how many cone ``elements`` were read, the highest ``prec`` the cones used."""
    sites: int = 0
    tied: int = 0
    elements: int = 0
    prec: int = 0
    equations: list = field(default_factory=list)


# elementwise functions whose filtered rule is a method of the same name of the midpoint-radius system
ELEMENTARY_METHODS = {name: name for name in ("exp", "log", "sqrt", "sin", "cos", "tanh", "erf", "sigmoid", "atan",
                                                "lgamma", "polygamma", "erfinv", "bessel_i",
                                                "root", "expm")}     # root, expm: no proved rounding bound (no method)


def filter_gaps(program):
    """The primitives of ``program`` the float filter has no proved rounding bound for (elementary functions
    outside the ulp table of numbers/rounding.py, piecewise constant steps): sorted names, empty when none.
    ``filtered_run`` refuses such a program; the audit then works exactly (auditing/engine.py)."""
    gaps = set()
    for e in program.eqns:
        prim = PRIMITIVES[e.prim]
        if not getattr(prim, "continuous", True):
            gaps.add(e.prim)
        elif prim.smooth and e.prim in ELEMENTARY_METHODS and not hasattr(MidRadTensors, ELEMENTARY_METHODS[e.prim]):
            gaps.add(e.prim)
    return sorted(gaps)


def filtered_run(program, xs, convention=kinks.DEFAULT, model=None, prec=None, budget=BUDGET, pattern=None):
    """Evaluate ``program`` at the exact point ``xs`` (ExactArrays, one per input) with the float filter:
    returns (TRun in MidRadTensors, FilterStats).  ``pattern`` freezes the pieces instead of deciding them (the
    enclosures of f_sigma, for a pattern found otherwise).  Raises Undecided when a domain check (a divisor,
    a log's argument) is undecided in floats, ConeTooLarge when an undecided site's cone exceeds ``budget``:
    the caller then evaluates exactly.  Raises InputError for a program with ``filter_gaps``."""
    gaps = filter_gaps(program)
    if gaps:
        raise InputError(f"the float filter has no proved rounding bound for {', '.join(gaps)}: evaluate exactly")
    ns = MidRadTensors(model)
    stats = FilterStats()
    steps = [st.k for st in T.nonsmooth_steps(program, convention)]
    cones = {}

    def cone_at(p, chosen):
        cone = cones.get(p)
        if cone is None:
            cone = cones[p] = Cone(program, xs, convention, p, budget, values=p is not None)
        cone.patterns = dict(zip(steps, chosen))
        return cone

    def resolve(st, gi, signs, chosen):
        und = [s == SIGN_UNDECIDED for s in signs]
        locs = np.flatnonzero(np.logical_or.reduce(und))
        which = [u[locs] for u in und]
        out = [np.array(s, copy=True) for s in signs]
        # equal labels first (a window of equal values: no arithmetic), then exact values for what is left
        ties = cone_at(None, chosen).switch_ties(st, gi, locs, which)
        for s, w, t in zip(out, which, ties):
            s[locs[t]] = 0
            w &= ~t
        stats.tied += int(np.count_nonzero(np.logical_or.reduce(ties))) if ties else 0
        rest = np.logical_or.reduce(which) if which else np.zeros(0, bool)
        if rest.any():
            at, sub = locs[rest], [w[rest] for w in which]
            p = prec or DEFAULT_PREC
            while True:
                exact = cone_at(p, chosen).switch_signs(st, gi, at, sub)
                stats.prec = max(stats.prec, p)
                left = [w & (e == SIGN_UNDECIDED) for w, e in zip(sub, exact)]
                for s, w, e in zip(out, sub, exact):
                    s[at[w]] = e[w]
                if p >= PREC_CAP or not any(bool(x.any()) for x in left):
                    break
                sub = left
                p = min(2 * p, PREC_CAP)
        stats.sites += len(locs)
        stats.elements = sum(c.gathered for c in cones.values())
        if st.k not in stats.equations:
            stats.equations.append(st.k)
        return out

    with np.errstate(all="ignore"):          # inf and nan are enclosures too: they decide nothing
        r = T.run(program, ns, [ns.const_array(x) for x in xs], convention, pattern=pattern,
                  resolve=None if pattern is not None else resolve, release=releasable(program, convention),
                  keep_site_args=False)
    return r, stats


# what the backward rules read besides shapes: the inputs of these primitives, the outputs of those
VJP_READS_INPUTS = {"mul", "div", "pow", "log", "sin", "cos", "erf", "dot", "conv2d", "logsumexp"}
VJP_READS_OUTPUT = {"div", "exp", "sqrt", "tanh", "sigmoid", "logsumexp"}


def releasable(program, convention):
    """The variables whose values the backward pass never reads (only their shapes), so that a filtered run
    can drop them once the forward pass is past them: neither an input of a primitive whose backward rule
    reads its inputs, nor the output of one that reads its output, nor a program output.  Nonsmooth
    equations' backward rules read only the pieces chosen."""
    keep = {a for a in program.outputs if a.__class__ is int}
    for st in T.compiled(program, convention):
        if st.prim in VJP_READS_INPUTS:
            keep.update(a for a in st.ins if a.__class__ is int)
        if st.prim in VJP_READS_OUTPUT:
            keep.update(st.outs)
    return {v for v in range(program.n_inputs, program.n_vars) if v not in keep}


def gradient(r, wrt, consume=False):
    """The backward pass of the one scalar output over the run's pattern: one MR per program input (None for
    inputs not in ``wrt``): enclosures of the exact selection gradient (and, with a model, the bound of any
    IEEE evaluation of it).  ``consume``: free the run's values as the pass goes (then they are gone: its
    pattern and signs remain)."""
    ns = r.ns
    with np.errstate(all="ignore"):
        cts = T.vjp(r, [ns.const(fmpq(1))], wrt, consume=consume)
    return [None if i not in wrt else (ns.zeros(r.program.shapes[i]) if c is None else c) for i, c in enumerate(cts)]


__all__ = ["filtered_run", "gradient", "FilterStats", "ConeTooLarge"]
