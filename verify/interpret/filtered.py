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

from ..numbers.midrad import MidRadTensors
from ..numbers.tensor import SIGN_UNDECIDED
from ..program import kinks
from . import tensor as T
from .cone import BUDGET, Cone, ConeTooLarge
from .precision import DEFAULT_PREC, PREC_CAP


@dataclass
class FilterStats:
    """What the filter did: ``sites`` decided exactly through a cone, how many cone ``elements`` were read, the
    highest ``prec`` the cones used."""
    sites: int = 0
    elements: int = 0
    prec: int = 0
    equations: list = field(default_factory=list)


def filtered_run(program, xs, convention=kinks.DEFAULT, model=None, prec=None, budget=BUDGET, pattern=None):
    """Evaluate ``program`` at the exact point ``xs`` (ExactArrays, one per input) with the float filter:
    returns (TRun in MidRadTensors, FilterStats).  ``pattern`` freezes the pieces instead of deciding them (the
    enclosures of f_sigma, for a pattern found otherwise).  Raises Undecided when a domain check (a divisor,
    a log's argument) is undecided in floats, ConeTooLarge when an undecided site's cone exceeds ``budget``:
    the caller then evaluates exactly."""
    ns = MidRadTensors(model)
    stats = FilterStats()
    steps = [st.k for st in T.nonsmooth_steps(program, convention)]
    cones = {}

    def resolve(st, gi, signs, chosen):
        und = np.zeros(len(signs[0]), dtype=bool)
        for s in signs:
            und |= s == SIGN_UNDECIDED
        locs = np.nonzero(und)[0]
        p = prec or DEFAULT_PREC
        while True:
            cone = cones.get(p)
            if cone is None:
                cone = cones[p] = Cone(program, xs, convention, p, budget)
            cone.patterns = dict(zip(steps, chosen))
            exact = cone.switch_signs(st, gi, locs)
            stats.prec = max(stats.prec, p)
            if p >= PREC_CAP or not any(bool((e == SIGN_UNDECIDED).any()) for e in exact):
                break
            p = min(2 * p, PREC_CAP)
        stats.sites += len(locs)
        stats.elements = sum(c.gathered for c in cones.values())
        if st.k not in stats.equations:
            stats.equations.append(st.k)
        out = [np.array(s, copy=True) for s in signs]
        for s, e in zip(out, exact):
            s[locs] = e
        return out

    with np.errstate(all="ignore"):          # inf and nan are enclosures too: they decide nothing
        r = T.run(program, ns, [ns.const_array(x) for x in xs], convention, pattern=pattern,
                  resolve=None if pattern is not None else resolve, release=releasable(program, convention))
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
    pattern, signs and site arguments remain)."""
    ns = r.ns
    with np.errstate(all="ignore"):
        cts = T.vjp(r, [ns.const(fmpq(1))], wrt, consume=consume)
    return [None if i not in wrt else (ns.zeros(r.program.shapes[i]) if c is None else c) for i, c in enumerate(cts)]


__all__ = ["filtered_run", "gradient", "FilterStats", "ConeTooLarge"]
