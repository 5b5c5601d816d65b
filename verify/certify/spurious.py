"""Theorem 1 made concrete: for any program P, a point a and a shift r, a program P' that is the same
function as P but whose AD derivative at a is grad P(a) + r.

    P'(x) = P(x) + sum_i r_i * zero(x_i - a_i),   zero(t) = relu(-t) + t - relu(t),

with both relus written as relu(u, alpha=0), so the construction does not depend on the convention:
AD gives zero'(0) = 1 and zero' = 0 elsewhere, hence the derivative of P' is shifted by r exactly where
x_i = a_i (in particular at a), and is AD's derivative of P everywhere else.

The proof that P' = P as functions reduces to zero(t) = 0 for every real t, which ``zero_identity``
establishes exactly: zero is piecewise linear with one switching point t = 0 (both relus switch there and
nowhere else); on t < 0 and on t > 0 the pattern is constant and the frozen program is affine with value
0 and slope 0 (checked at t = -1 and t = 1 in rationals), and zero(0) = 0.
"""
from flint import fmpq

from ..program import kinks
from ..interpret.ad import grad
from ..errors import InputError
from ..interpret.evaluate import coerce_point
from ..frontends import Builder, as_program
from ..program.ir import Lit
from ..rational import parse_point

ZERO_TEXT = "def zero(t):\n    a = relu(-t, alpha=0)\n    b = relu(t, alpha=0)\n    return a + t - b\n"


def zero_identity():
    """Check (exactly) that zero(t) = 0 for all t; return the gadget's text for the certificate, whose
    checker re-derives the same proof on its own."""
    from ..frontends.text import parse
    z = parse(ZERO_TEXT)
    for t in (fmpq(-1), fmpq(1)):
        g = grad(z, [t])
        assert g.exact and g.values == [0] and g.gradient == [0], "zero(t) is not 0: a bug"
    assert grad(z, [0]).values == [0]
    return {"program": ZERO_TEXT}


def spurious(program, at, shift, convention=kinks.DEFAULT):
    """(P', evidence): P' equal to P as a function, with AD derivative at ``at`` shifted by ``shift`` (a
    vector, one entry per input; a number for one input).  Only inputs with a nonzero shift get a zero term."""
    P = as_program(program)
    a = coerce_point(P, at)
    r = parse_point(shift)
    if len(r) != P.n_inputs:
        raise InputError(f"the shift has {len(r)} entries but {P.name} takes {P.n_inputs} input(s)")
    if P.n_outputs != 1:
        raise InputError(f"spurious needs a program with one output, {P.name} has {P.n_outputs}")
    b = Builder(P.name + "_spurious", P.input_names)
    b.reserve(P.names)
    # copy P's equations (variables keep their numbers: inputs first, then P's outputs in order)
    b.names = list(P.names)
    b.eqns = list(P.eqns)
    b.taken = set(P.names)
    acc = P.outputs[0]
    for i, (ai, ri) in enumerate(zip(a, r)):
        if ri == 0:
            continue
        u = b.emit("sub", [i, Lit(ai)])[0] if ai != 0 else i
        m = b.emit("neg", [u])[0]
        ra = b.emit("relu", [m], {"alpha": fmpq(0)})[0]
        rb = b.emit("relu", [u], {"alpha": fmpq(0)})[0]
        s = b.emit("add", [ra, u])[0]
        z = b.emit("sub", [s, rb])[0]
        term = b.emit("mul", [Lit(ri), z])[0]
        acc = b.emit("add", [acc, term])[0]
    Q = b.finish([acc])
    g0, g1 = grad(P, a, convention=convention), grad(Q, a, convention=convention)
    if g0.exact and g1.exact:
        assert [y - x for x, y in zip(g0.gradient, g1.gradient)] == r, "the shift did not land: a bug"
    evidence = {"zero": zero_identity(), "shift": [str(v) for v in r], "at": [str(v) for v in a],
                "construction": "P'(x) = P(x) + sum_i r_i * zero(x_i - a_i)"}
    return Q, evidence
