"""Algorithm 2 of the paper: forward (JVP) and backward (VJP) mode over the frozen pattern.

Both walk the equations of an evaluated Run: forward mode once per input, backward mode once per output
(walking ``eqns`` in reverse).  A nonsmooth equation contributes the linear part of its chosen piece, so
the result is the selection derivative grad f_sigma(x) for the pattern sigma chosen at x (or given).
Lemma 1: in exact arithmetic both modes give the same Jacobian.  A symbolic zero (None) stands for a
tangent or cotangent that is known to be 0, which keeps both passes proportional to the work needed.
For the native number systems both passes walk the run's tape instead (tape.backward, tape.tangents: the
same operations in the same order, tests/test_tape.py).
"""
from dataclasses import dataclass

from flint import fmpq

from ..program import kinks
from .evaluate import compiled, coerce_point, escalate, output_values, run
from .tape import accumulate, backward, linear, piece_vjp, tangents as lean_tangents
from ..errors import InputError
from ..program.prims import jvp_rules, vjp_rules


_acc = accumulate     # the generic passes' accumulation (the mutation self-test patches it; then vjp is generic)


def jvp(r, tangents):
    """Output tangents (None = 0) of the Run ``r`` for input tangents (a list, None = 0)."""
    prog, ns, tape = r.program, r.ns, r.tape
    if tape is not None and r.full is not None and getattr(ns, "native", False) and tape.jvp_ok():
        T = list(tangents) + [None] * (tape.n_slots - prog.n_inputs)
        lean_tangents(tape, r.full, r.pattern, ns, T)
        return [T[a] if a.__class__ is int else None for a in prog.outputs]
    steps = compiled(prog, r.convention)
    T = list(tangents) + [None] * (prog.n_vars - prog.n_inputs)
    pat = iter(r.pattern)
    for st in steps:
        if st.rule is None:
            piece = st.piece(next(pat))
        ts = [T[a] if a.__class__ is int else None for a in st.ins]
        if all(t is None for t in ts):
            continue
        if st.rule is not None:
            T[st.outs[0]] = jvp_rules[st.prim](ns, st.params, r.args[st.k], r.env[st.outs[0]], ts)
        else:
            for o, (terms, _) in zip(st.outs, piece.rows):
                T[o] = linear(ns, terms, ts)
    return [T[a] if a.__class__ is int else None for a in prog.outputs]


def vjp(r, cotangents):
    """Input cotangents (None = 0) of the Run ``r`` for output cotangents (a list, None = 0)."""
    prog, ns, tape = r.program, r.ns, r.tape
    lean = tape is not None and r.full is not None and getattr(ns, "native", False) and _acc is accumulate \
        and tape.vjp_ok()
    CT = [None] * (tape.n_slots if lean else prog.n_vars)
    for a, c in zip(prog.outputs, cotangents):
        if a.__class__ is int and c is not None:
            CT[a] = _acc(ns, CT[a], c)
    if lean:
        backward(tape, r.full, r.pattern, ns, CT)
        return CT[:prog.n_inputs]
    steps = compiled(prog, r.convention)
    pat = r.pattern
    m = len(pat)
    for st in reversed(steps):
        if st.rule is not None:        # smooth, one output: the common case, kept lean
            c = CT[st.outs[0]]
            if c is None:
                continue
            in_cts = vjp_rules[st.prim](ns, st.params, r.args[st.k], r.env[st.outs[0]], c)
            for a, c in zip(st.ins, in_cts):
                if a.__class__ is int and c is not None:
                    CT[a] = c if CT[a] is None else ns.add(CT[a], c)
        else:
            m -= 1
            piece_vjp(ns, st, st.ins, pat[m], CT, _acc)     # a variable's slot is the variable
    return CT[:prog.n_inputs]


def jacobian(r, mode="backward"):
    """The selection Jacobian (rows = outputs, columns = inputs) of an evaluated Run."""
    ns, prog = r.ns, r.program
    zero, one = ns.const(fmpq(0)), ns.const(fmpq(1))
    n, m = prog.n_inputs, prog.n_outputs
    if mode == "forward":
        cols = [jvp(r, [one if j == i else None for j in range(n)]) for i in range(n)]
        return [[zero if cols[i][o] is None else cols[i][o] for i in range(n)] for o in range(m)]
    if mode == "backward":
        rows = [vjp(r, [one if k == o else None for k in range(m)]) for o in range(m)]
        return [[zero if c is None else c for c in row] for row in rows]
    raise InputError(f"mode {mode!r} must be 'forward' or 'backward'")


@dataclass
class GradResult:
    """``values`` (one per output), ``jacobian`` (rows = outputs), ``gradient`` (the single row when there
    is one output, else None), ``pattern``, ``exact`` (values and Jacobian all exact rationals)."""
    values: list
    jacobian: list
    gradient: list
    pattern: tuple
    exact: bool
    number: str
    prec: int
    convention: str
    mode: str


def grad(program, point, mode="backward", number="exact", prec=None, convention=kinks.DEFAULT, pattern=None,
         wrt=None):
    """Selection derivative of ``program`` at ``point`` (Algorithm 2) for the pattern the index rules choose
    there, or for an explicitly given ``pattern``.  Raises like ``evaluate``.  A tensor program (one scalar
    output) gives a TensorGrad: one gradient array per input, or per input listed in ``wrt``."""
    from ..frontends import as_program
    program = as_program(program)
    if not program.is_scalar:
        from . import tensor
        return tensor.grad(program, point, mode, number, prec, convention, pattern, wrt)
    if wrt is not None:
        raise InputError("wrt= selects inputs of tensor programs; a scalar program's gradient has every input")
    kinks.check_convention(convention)
    if mode not in ("forward", "backward"):
        raise InputError(f"mode {mode!r} must be 'forward' or 'backward'")
    xs = coerce_point(program, point)

    def job(ns, p):
        r = run(program, ns, [ns.const(x) for x in xs], convention, pattern, p, inputs=xs)
        vals = output_values(r)
        jac = jacobian(r, mode)
        exact = all(ns.is_exact_value(v) for v in vals) and all(ns.is_exact_value(v) for row in jac for v in row)
        return GradResult(vals, jac, jac[0] if len(jac) == 1 else None, r.pattern, exact, ns.name, r.prec,
                          convention, mode)
    return escalate(number, prec, job)
