"""The lean tape interpreter (verify/interpret/tape.py) against the generic rule-table interpreter: on random
programs both choose the same pattern and compute the same values, backward and forward derivatives, bit for
bit (same operations in the same order), in exact rationals, balls and floats; a patched rule reaches the lean
path too."""
from flint import arb, ctx, fmpq
from hypothesis import given, strategies as st

import verify
from verify import strategies as S
from verify.errors import DomainError, Undecided
from verify.interpret.ad import jvp, vjp
from verify.interpret.evaluate import run
from verify.numbers import get_system
from verify.numbers.ball import BallSystem
from verify.numbers.exact import ExactSystem
from verify.numbers.floats import FloatSystem


class GenericBall(BallSystem):
    native = False


class GenericExact(ExactSystem):
    native = False


class GenericFloat(FloatSystem):
    native = False


def _same(u, v):
    if u is None or v is None:
        return u is v
    if isinstance(u, arb) or isinstance(v, arb):
        return isinstance(u, arb) and isinstance(v, arb) and u.mid() == v.mid() and u.rad() == v.rad()
    if isinstance(u, fmpq) or isinstance(v, fmpq):
        return u == v
    return (u != u and v != v) or u == v


def _outcome(P, ns, x, conv, inputs):
    try:
        r = run(P, ns, [ns.const(q) for q in x], conv, inputs=inputs)
    except (DomainError, Undecided) as e:
        return type(e).__name__, str(e)
    one = [ns.const(fmpq(1)) if k == 0 else None for k in range(P.n_outputs)]
    fwd = [t for i in range(P.n_inputs) for t in jvp(r, [ns.const(fmpq(1)) if j == i else None
                                                       for j in range(P.n_inputs)])]
    return r.pattern, r.env, vjp(r, one) + fwd


@given(st.data())
def test_lean_and_generic_interpreters_agree(data):
    P = data.draw(S.programs(n_inputs=2, max_eqns=10))
    x = data.draw(S.points(P))
    conv = data.draw(st.sampled_from(("torch", "jax", "tf")))
    for lean, generic, prec in ((get_system("exact"), GenericExact(), 128), (get_system("ball"), GenericBall(), 96),
                                (get_system("float32"), GenericFloat("float32"), None)):
        with ctx.workprec(prec or 53):
            inputs = x if lean.name != "float32" else None
            a, b = _outcome(P, lean, x, conv, inputs), _outcome(P, generic, x, conv, inputs)
        assert type(a[0]) is type(b[0]), (lean.name, a, b)
        if isinstance(a[0], str):
            assert a == b
            continue
        assert a[0] == b[0], (lean.name, a[0], b[0])
        assert all(_same(u, v) for u, v in zip(a[1], b[1])), (lean.name, a[1], b[1])
        assert all(_same(u, v) for u, v in zip(a[2], b[2])), (lean.name, a[2], b[2])


def test_literals_are_resolved_once_per_precision():
    P = verify.parse("lambda x: relu(x - 1/3) + relu(x - 1/3) * (1/3)")
    ns = get_system("ball")
    with ctx.workprec(64):
        r1 = run(P, ns, [ns.const(fmpq(1))])
        r2 = run(P, ns, [ns.const(fmpq(2))])
    assert r1.full[P.n_vars] is r2.full[P.n_vars]          # the same arb object: converted once
    with ctx.workprec(128):
        r3 = run(P, ns, [ns.const(fmpq(1))])
    assert r3.full[P.n_vars] is not r1.full[P.n_vars]
    assert r3.full[P.n_vars].rad() < r1.full[P.n_vars].rad()


def test_a_patched_rule_is_honoured_by_the_lean_path():
    from verify.program.prims import vjp_rules
    P = verify.parse("lambda x: exp(x)")
    good = vjp_rules["exp"]
    try:
        vjp_rules["exp"] = lambda ns, p, xs, y, ct: (ns.mul(xs[0], ct),)      # exp' = x (a bug)
        assert verify.grad(P, ["1/2"], number="ball").gradient[0].contains(fmpq(1, 2))
    finally:
        vjp_rules["exp"] = good
    g = verify.grad(P, ["1/2"], number="ball").gradient[0]
    with ctx.workprec(200):
        e = arb(fmpq(1, 2)).exp()
    assert not g.contains(fmpq(1, 2)) and g.overlaps(e) and g.rad() < 2 ** -120


def test_coinciding_pieces_in_the_lean_interpreter():
    # leaky_relu with slope 1 has one piece (u): the lean interpreter's sign shortcut must index it
    for at, value, slope in (("1", 1, 1), ("-1/2", fmpq(-1, 2), 1), ("0", 0, 1)):
        g = verify.grad("lambda x: leaky_relu(x, slope=1)", [at])
        assert g.values == [value] and g.gradient == [slope] and g.pattern == (0,)
        b = verify.grad("lambda x: leaky_relu(x, slope=1)", [at], number="ball")
        assert b.pattern == (0,)
