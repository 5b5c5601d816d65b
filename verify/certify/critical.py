"""Critical points (Section 5 of the paper) with certificates.

x is *selection-critical* when 0 is in D_f(x) = conv{grad f_s(x) : s in I(x)}, *Clarke-critical* when 0 is
in the Clarke subdifferential, and an *artificial* critical point when it is the first and not the second
(t - zero(t) at 0).  Membership is proved by convex weights (lambda >= 0, sum 1, sum lambda_i v_i = 0),
non-membership by a separating vector w with <w, v_i> > 0 for every generator; both are exact for rational
gradients.  With ball gradients only non-membership can be proved (a ball sum containing 0 proves nothing):
membership is then UNDECIDED unless a generator is exactly 0.
"""
from dataclasses import dataclass

from flint import arb, fmpq

from ..program import kinks
from ..errors import InputError, Undecided
from ..frontends import as_program
from ..numbers import get_system
from ..numbers.ball import arb_exact_q
from ..truth import FALSE, TRUE, UNKNOWN
from .clarke import LEAF_CAP, clarke
from .index import GLOBAL_CAP, PATTERN_CAP, conservative_field
from .lp import check_direction, check_weights, separate_or_weights, strict_direction


@dataclass
class Membership:
    """Is 0 in conv(vectors)?  ``truth`` TRUE / FALSE / UNKNOWN; ``weights`` or ``separator`` proves it."""
    truth: object
    weights: list = None
    separator: list = None
    reason: str = None


def _exact(x):
    """An exact ball (radius 0) as the fmpq it is: certificates print it as "p/q", so it is decided exactly."""
    if isinstance(x, arb) and x.is_finite() and x.is_exact():
        return arb_exact_q(x)
    return x


def zero_in_hull(vectors, number="exact"):
    """Decide 0 in conv(vectors); every answer is verified before it is returned."""
    ns = get_system(number)
    vectors = [[_exact(x) for x in v] for v in vectors]
    if all(isinstance(x, fmpq) for v in vectors for x in v):
        kind, cert = separate_or_weights(vectors)
        if kind == "weights":
            assert check_weights(vectors, cert)
            return Membership(TRUE, weights=cert)
        assert check_direction(vectors, cert)
        return Membership(FALSE, separator=cert)
    for i, v in enumerate(vectors):
        if all(isinstance(x, fmpq) and x == 0 for x in v):
            return Membership(TRUE, weights=[fmpq(int(j == i)) for j in range(len(vectors))])
    mids = [[x if isinstance(x, fmpq) else arb_exact_q(x) for x in v] for v in vectors]   # proposals only
    w = strict_direction(mids)
    if w is not None:
        ok = [ns.sign(sum((ns.mul(ns.const(a), x) for a, x in zip(w, v)), ns.const(fmpq(0)))) for v in vectors]
        if all(s == 1 for s in ok):
            return Membership(FALSE, separator=w)
    return Membership(UNKNOWN, reason="the generators are balls, not exact rationals: membership of 0 in their "
                                      "hull cannot be proved, and no separating vector was found")


@dataclass
class Critical:
    """``field`` and ``clarke``: gradient generators; ``selection``, ``clarke_critical``: Membership;
    ``artificial``: TRUE / FALSE / UNKNOWN.  ``field_result`` and ``clarke_result`` carry the details."""
    field: list
    clarke: list
    selection: Membership
    clarke_critical: Membership
    artificial: object
    field_result: object
    clarke_result: object
    clarke_error: str = None


def critical(program, point, convention=kinks.DEFAULT, scope="local", number="exact", prec=None, cap=PATTERN_CAP,
             max_patterns=GLOBAL_CAP, max_leaves=LEAF_CAP):
    """Selection-, Clarke- and artificial-criticality of ``point`` for a program with one output.  ``cap``
    and ``max_patterns`` bound the index set (as in ``index_set``), ``max_leaves`` the essential patterns."""
    program = as_program(program)
    if not program.is_scalar:
        from .sites import site_critical
        return site_critical(program, point, convention, number, prec)
    if program.n_outputs != 1:
        raise InputError(f"critical points need one output, {program.name} has {program.n_outputs}")
    fld = conservative_field(program, point, scope, convention, number, prec, cap, max_patterns)
    try:
        # the field and the Clarke generators at one precision: a certificate states one precision for its balls
        cl = clarke(program, point, convention, number, fld.index.prec, max_leaves)
        if cl.prec != fld.index.prec:
            fld = conservative_field(program, point, scope, convention, number, cl.prec, cap, max_patterns)
        cgrads = [j[0] for j in cl.gradients]
        cc = zero_in_hull(cgrads, number)
        err = None
    except Undecided as u:
        cl, cgrads, err = None, None, str(u)
        cc = Membership(UNKNOWN, reason=str(u))
    grads = [j[0] for j in fld.gradients]
    sel = zero_in_hull(grads, number)
    art = sel.truth & ~cc.truth
    return Critical(grads, cgrads, sel, cc, art, fld, cl, err)
