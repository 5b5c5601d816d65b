"""Algorithm 2 of the paper: forward (JVP) and backward (VJP) mode over the frozen pattern.

Both walk the equations of an evaluated Run: forward mode once per input, backward mode once per output
(walking ``eqns`` in reverse).  A nonsmooth equation contributes the linear part of its chosen piece, so
the result is the selection derivative grad f_sigma(x) for the pattern sigma chosen at x (or given).
Lemma 1: in exact arithmetic both modes give the same Jacobian.  A symbolic zero (None) stands for a
tangent or cotangent that is known to be 0, which keeps both passes proportional to the work needed.
"""
from dataclasses import dataclass

from flint import fmpq

from ..program import kinks
from .evaluate import compiled, coerce_point, escalate, output_values, run
from .tape import (V_ADD, V_ADD1, V_EXP, V_EXT2, V_MUL, V_MULA, V_MULB, V_NEG, V_NONS, V_SIGMOID, V_SKIP, V_SLOPE,
                   V_SUB, V_SUBA, V_SUBB, V_TANH)
from ..errors import InputError
from ..program.prims import jvp_rules, vjp_rules


def _acc(ns, a, b):
    if a is None:
        return b
    return a if b is None else ns.add(a, b)


_plain_acc = _acc      # the lean pass inlines this accumulation; a patched _acc sends vjp to the generic pass


def _linear(ns, terms, ts):
    acc = None
    for j, c in terms:
        t = ts[j]
        if t is None:
            continue
        t = t if c == 1 else (ns.neg(t) if c == -1 else ns.mul(ns.const(c), t))
        acc = t if acc is None else ns.add(acc, t)
    return acc


def jvp(r, tangents):
    """Output tangents (None = 0) of the Run ``r`` for input tangents (a list, None = 0)."""
    tape = r.tape
    if tape is not None and r.full is not None and getattr(r.ns, "native", False) and tape.jvp_ok():
        return _lean_jvp(r, tape, tangents)
    prog, ns = r.program, r.ns
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
                T[o] = _linear(ns, terms, ts)
    return [T[a] if a.__class__ is int else None for a in prog.outputs]


def vjp(r, cotangents):
    """Input cotangents (None = 0) of the Run ``r`` for output cotangents (a list, None = 0)."""
    tape = r.tape
    if tape is not None and r.full is not None and getattr(r.ns, "native", False) and _acc is _plain_acc \
            and tape.vjp_ok():
        return _lean_vjp(r, tape, cotangents)
    prog, ns = r.program, r.ns
    steps = compiled(prog, r.convention)
    CT = [None] * prog.n_vars
    for a, c in zip(prog.outputs, cotangents):
        if a.__class__ is int and c is not None:
            CT[a] = _acc(ns, CT[a], c)
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
            continue
        m -= 1
        cts = [CT[o] for o in st.outs]
        if all(c is None for c in cts):
            continue
        in_cts = [None] * len(st.ins)
        for (terms, _), c in zip(st.piece(pat[m]).rows, cts):
            if c is None:
                continue
            for j, coef in terms:
                t = c if coef == 1 else (ns.neg(c) if coef == -1 else ns.mul(ns.const(coef), c))
                in_cts[j] = _acc(ns, in_cts[j], t)
        for a, c in zip(st.ins, in_cts):
            if a.__class__ is int and c is not None:
                CT[a] = _acc(ns, CT[a], c)
    return CT[:prog.n_inputs]


def _lean_vjp(r, tape, cotangents):
    """The backward pass over the tape (see tape.py): the rules of prims/smooth.py inlined, in the same order
    of operations, for native number systems."""
    prog, ns = r.program, r.ns
    full, pat, steps = r.full, r.pattern, tape.steps
    add, sub, mul, neg = ns.add, ns.sub, ns.mul, ns.neg
    one, half = ns.const(fmpq(1)), ns.const(fmpq(1, 2))
    CT = [None] * tape.n_slots
    for a, c in zip(prog.outputs, cotangents):
        if a.__class__ is int and c is not None:
            CT[a] = c if CT[a] is None else add(CT[a], c)
    for vk, a, b, o, x, k in tape.vcode_rev:
        c = CT[o]
        if c is None and vk != V_NONS:
            continue
        if vk == V_MULA:
            g = mul(c, full[b])
            t = CT[a]
            CT[a] = g if t is None else add(t, g)
        elif vk == V_ADD:
            t = CT[a]
            CT[a] = c if t is None else add(t, c)
            t = CT[b]
            CT[b] = c if t is None else add(t, c)
        elif vk == V_SUB:
            t = CT[a]
            CT[a] = c if t is None else add(t, c)
            g = neg(c)
            t = CT[b]
            CT[b] = g if t is None else add(t, g)
        elif vk == V_SLOPE:
            mode, cs = x[1][pat[x[0]]]
            if mode == 0:
                continue
            g = c if mode == 1 else (neg(c) if mode == -1 else mul(full[cs], c))
            t = CT[a]
            CT[a] = g if t is None else add(t, g)
        elif vk == V_EXT2:
            i = pat[x]
            if i > 1:                   # the mean of both (a split tie): 1/2 to each, as the piece says
                g = mul(half, c)
                t = CT[a]
                CT[a] = g if t is None else add(t, g)
                t = CT[b]
                CT[b] = g if t is None else add(t, g)
                continue
            j = b if i else a
            t = CT[j]
            CT[j] = c if t is None else add(t, c)
        elif vk == V_MUL:
            ga, gb = mul(c, full[b]), mul(full[a], c)
            t = CT[a]
            CT[a] = ga if t is None else add(t, ga)
            t = CT[b]
            CT[b] = gb if t is None else add(t, gb)
        elif vk == V_TANH:
            y = full[o]
            g = mul(sub(one, mul(y, y)), c)
            t = CT[a]
            CT[a] = g if t is None else add(t, g)
        elif vk == V_SIGMOID:
            y = full[o]
            g = mul(mul(y, sub(one, y)), c)
            t = CT[a]
            CT[a] = g if t is None else add(t, g)
        elif vk == V_EXP:
            g = mul(full[o], c)
            t = CT[a]
            CT[a] = g if t is None else add(t, g)
        elif vk == V_ADD1:
            t = CT[a]
            CT[a] = c if t is None else add(t, c)
        elif vk == V_SUBA:
            t = CT[a]
            CT[a] = c if t is None else add(t, c)
        elif vk == V_SUBB:
            g = neg(c)
            t = CT[b]
            CT[b] = g if t is None else add(t, g)
        elif vk == V_MULB:
            g = mul(full[a], c)
            t = CT[b]
            CT[b] = g if t is None else add(t, g)
        elif vk == V_NEG:
            g = neg(c)
            t = CT[a]
            CT[a] = g if t is None else add(t, g)
        elif vk == V_NONS:
            _nonsmooth_vjp(ns, steps[k], tape.slots[k], pat[x], CT)
        elif vk == V_SKIP:
            continue
        else:
            st = steps[k]
            args = [full[s] for s in tape.slots[k]]
            in_cts = vjp_rules[st.prim](ns, st.params, args, full[o], c)
            for s, (a_, g) in zip(tape.slots[k], zip(st.ins, in_cts)):
                if a_.__class__ is int and g is not None:
                    t = CT[s]
                    CT[s] = g if t is None else add(t, g)
    return CT[:prog.n_inputs]


def _lean_jvp(r, tape, tangents):
    """The forward pass over the tape (the rules of prims/smooth.py inlined, in the same order of
    operations; tangents of literals are symbolic zeros)."""
    prog, ns = r.program, r.ns
    full, pat, steps = r.full, r.pattern, tape.steps
    add, sub, mul, neg = ns.add, ns.sub, ns.mul, ns.neg
    one, half = ns.const(fmpq(1)), ns.const(fmpq(1, 2))
    T = list(tangents) + [None] * (tape.n_slots - prog.n_inputs)
    for vk, a, b, o, x, k in tape.vcode:
        if vk == V_MULA:
            t = T[a]
            T[o] = None if t is None else mul(t, full[b])
        elif vk == V_ADD:
            ta, tb = T[a], T[b]
            T[o] = tb if ta is None else (ta if tb is None else add(ta, tb))
        elif vk == V_SUB:
            ta, tb = T[a], T[b]
            T[o] = (None if tb is None else neg(tb)) if ta is None else (ta if tb is None else add(ta, neg(tb)))
        elif vk == V_SLOPE:
            t = T[a]
            if t is None:
                T[o] = None
                continue
            mode, cs = x[1][pat[x[0]]]
            T[o] = t if mode == 1 else (None if mode == 0 else (neg(t) if mode == -1 else mul(full[cs], t)))
        elif vk == V_EXT2:
            i = pat[x]
            if i < 2:
                T[o] = T[b] if i else T[a]
                continue
            ta, tb = T[a], T[b]         # the mean: 1/2 * ta + 1/2 * tb, as the piece's affine map computes it
            ga = None if ta is None else mul(half, ta)
            gb = None if tb is None else mul(half, tb)
            T[o] = gb if ga is None else (ga if gb is None else add(ga, gb))
        elif vk == V_MUL:
            ta, tb = T[a], T[b]
            ga = None if ta is None else mul(ta, full[b])
            gb = None if tb is None else mul(full[a], tb)
            T[o] = gb if ga is None else (ga if gb is None else add(ga, gb))
        elif vk == V_TANH:
            t = T[a]
            y = full[o]
            T[o] = None if t is None else mul(sub(one, mul(y, y)), t)
        elif vk == V_SIGMOID:
            t = T[a]
            y = full[o]
            T[o] = None if t is None else mul(mul(y, sub(one, y)), t)
        elif vk == V_EXP:
            t = T[a]
            T[o] = None if t is None else mul(full[o], t)
        elif vk == V_ADD1 or vk == V_SUBA:
            T[o] = T[a]
        elif vk == V_SUBB:
            t = T[b]
            T[o] = None if t is None else neg(t)
        elif vk == V_MULB:
            t = T[b]
            T[o] = None if t is None else mul(full[a], t)
        elif vk == V_NEG:
            t = T[a]
            T[o] = None if t is None else neg(t)
        elif vk == V_SKIP:
            T[o] = None
        else:
            st = steps[k]
            ts = [T[s] if a_.__class__ is int else None for a_, s in zip(st.ins, tape.slots[k])]
            if all(t is None for t in ts):
                for out in st.outs:
                    T[out] = None
                continue
            if st.sel is None:
                T[o] = jvp_rules[st.prim](ns, st.params, [full[s] for s in tape.slots[k]], full[o], ts)
            else:
                for out, (terms, _) in zip(st.outs, st.piece(pat[x]).rows):
                    T[out] = _linear(ns, terms, ts)
    return [T[a] if a.__class__ is int else None for a in prog.outputs]


def _nonsmooth_vjp(ns, st, slots, i, CT):
    """Cotangents through the chosen piece of a nonsmooth step (its linear part, transposed)."""
    cts = [CT[o] for o in st.outs]
    if all(c is None for c in cts):
        return
    in_cts = [None] * len(st.ins)
    for (terms, _), c in zip(st.piece(i).rows, cts):
        if c is None:
            continue
        for j, coef in terms:
            t = c if coef == 1 else (ns.neg(c) if coef == -1 else ns.mul(ns.const(coef), c))
            in_cts[j] = _acc(ns, in_cts[j], t)
    for a, s, c in zip(st.ins, slots, in_cts):
        if a.__class__ is int and c is not None:
            CT[s] = _acc(ns, CT[s], c)


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
