"""Proposition 3 in practice: a point where every switching function of every nonsmooth equation is nonzero
is a differentiability point, and there the selection gradient AD returns is the gradient.

Why: each switching function is a continuous function of the input on the frozen upstream pattern, so a
nonzero value keeps its sign on a neighbourhood; by induction over the equations the index rules choose the
same pieces on that neighbourhood, f = f_s there, and f_s is C^1 (it is smooth).  A zero switching function
does not prove that f is not differentiable (relu(t)**2 is differentiable at 0): the answer is then UNDECIDED,
naming the equation and the switch that prevent the argument.
"""
from dataclasses import dataclass

from ..program import kinks
from ..program.prims.steps import require_continuous
from ..interpret.ad import jacobian
from ..errors import InputError, Undecided
from ..interpret.evaluate import coerce_point, compiled, escalate, output_values
from ..frontends import as_program
from ..program.ir import eqn_label, switch_text
from ..truth import Verdict
from .walk import walk


@dataclass
class Differentiability:
    """``verdict``: PROVED (differentiable, gradient = selection gradient) or UNDECIDED; ``signs``: the sign of
    every switching function, per nonsmooth equation (None when undecided); ``blocking``: (nonsmooth position,
    equation index, switch index) of the first zero or undecided switch; ``jacobian``: the selection Jacobian."""
    verdict: Verdict
    program: object
    point: list
    convention: str
    pattern: tuple
    signs: list
    jacobian: list
    values: list
    blocking: tuple = None
    reason: str = ""
    number: str = "exact"
    prec: int = None

    @property
    def gradient(self):
        return self.jacobian[0] if self.jacobian is not None and len(self.jacobian) == 1 else None


def certify_differentiable(program, point, number="exact", prec=None, convention=kinks.DEFAULT):
    """Prove that ``point`` is a differentiability point of ``program`` with gradient equal to the selection
    gradient (every switching function certified nonzero), or say which switching function prevents it."""
    program = as_program(program)
    require_continuous(program, "certifying differentiability")
    if not program.is_scalar:
        from .sites import site_differentiable
        return site_differentiable(program, point, convention, number, prec)
    kinks.check_convention(convention)
    if number not in ("exact", "ball"):
        raise InputError(f"certifying differentiability needs exact or ball arithmetic, not {number!r}")
    xs = coerce_point(program, point)
    steps = compiled(program, convention)

    def job(ns, p):
        signs = []

        def decide(pos, j, v, chosen, env=None):
            s = ns.sign(v)
            if s is None:
                raise Undecided(f"cannot decide the sign of switching function {j + 1} of nonsmooth equation "
                                f"{pos + 1}")
            if j == 0:
                signs.append([])
            signs[pos].append(s)
            return s
        r = walk(program, steps, ns, [ns.const(x) for x in xs], decide)
        r.convention, r.prec = convention, p
        return r, signs, p, jacobian(r, "backward"), output_values(r)
    try:
        r, signs, p, jac, vals = escalate(number, prec, job)
    except Undecided as u:
        return Differentiability(Verdict.UNDECIDED, program, xs, convention, None, None, None, None,
                                 reason=str(u), number=number)
    nonsmooth = [st for st in steps if st.sel is not None]
    for pos, (st, ss) in enumerate(zip(nonsmooth, signs)):
        for j, s in enumerate(ss):
            if s == 0:
                e = program.eqns[st.k]
                sw = switch_text(program, e, *st.switches[j])
                reason = (f"equation {st.k + 1} `{eqn_label(program, st.k)}`: its switching function {sw} is 0 at "
                          f"the point, so Proposition 3 does not apply (f may or may not be differentiable there)")
                return Differentiability(Verdict.UNDECIDED, program, xs, convention, r.pattern, signs, jac, vals,
                                         (pos, st.k, j), reason, number, p)
    return Differentiability(Verdict.PROVED, program, xs, convention, r.pattern, signs, jac, vals,
                             reason="every switching function is nonzero at the point: f = f_s near it, so f is "
                                    "differentiable there and its gradient is the selection gradient",
                             number=number, prec=p)


def differentiable_certificate(d, started=None):
    """The certificate of a Differentiability (kind "differentiable")."""
    from ..certificates import make
    from ..rational import fmt_q
    from .certs import num, pieces_table
    claim = {"point": [fmt_q(x) for x in d.point]}
    result = {"differentiable": d.verdict is Verdict.PROVED,
              "pattern": None if d.pattern is None else list(d.pattern),
              "value": None if d.values is None else [num(v) for v in d.values],
              "jacobian": None if d.jacobian is None else [[num(v) for v in row] for row in d.jacobian],
              "blocking": None if d.blocking is None else {"nonsmooth": d.blocking[0], "equation": d.blocking[1],
                                                          "switch": d.blocking[2]}}
    evidence = {"signs": d.signs,
                "pieces": pieces_table(d.program, d.convention, [d.pattern] if d.pattern else [])}
    from ..certificates import has_balls
    return make("differentiable", d.program, d.convention, claim, d.verdict.name, result, evidence,
                d.prec if has_balls(result) else None, started)
