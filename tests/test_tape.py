"""The lean tape interpreter (verify/interpret/tape.py) against the generic rule-table interpreter: on random
programs both choose the same pattern and compute the same values, backward and forward derivatives, bit for
bit (same operations in the same order), in exact rationals, balls and floats; a patched rule reaches the lean
path too."""
import pytest
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


SYSTEMS = ((get_system("exact"), GenericExact(), 128), (get_system("ball"), GenericBall(), 96),
           (get_system("float32"), GenericFloat("float32"), None))


def _agree(P, x, conv, pattern=None, cap=None):
    """The lean and the generic interpreter on ``P`` (each on its own copy: the tape's precision hints are
    per program) give the same outcome in every native system; returns the lean outcomes."""
    from verify.program.ir import to_text
    outs = []
    for lean, generic, prec in SYSTEMS:
        got = []
        for ns in (lean, generic):
            Q = verify.parse(to_text(P))
            inputs = x if ns.name != "float32" else None
            with ctx.workprec(prec or 53):
                try:
                    kw = {} if cap is None else {"cap": cap}
                    r = run(Q, ns, [ns.const(q) for q in x], conv, pattern=pattern, inputs=inputs, **kw)
                except (DomainError, Undecided) as e:
                    got.append((type(e).__name__, str(e)))
                    continue
                one = [ns.const(fmpq(1)) if k == 0 else None for k in range(Q.n_outputs)]
                fwd = [t for i in range(Q.n_inputs)
                       for t in jvp(r, [ns.const(fmpq(1)) if j == i else None for j in range(Q.n_inputs)])]
                got.append((r.pattern, r.env, vjp(r, one) + fwd, r.prec))
        a, b = got
        assert type(a[0]) is type(b[0]), (lean.name, a, b)
        if isinstance(a[0], str):
            assert a == b
        else:
            assert a[0] == b[0] and a[3] == b[3], (lean.name, a, b)
            assert all(_same(u, v) for u, v in zip(a[1], b[1])), (lean.name, a[1], b[1])
            assert all(_same(u, v) for u, v in zip(a[2], b[2])), (lean.name, a[2], b[2])
        outs.append(a)
    return outs


@given(st.data())
def test_lean_and_generic_interpreters_agree_on_a_given_pattern(data):
    from verify.interpret.evaluate import compiled
    P = data.draw(S.programs(n_inputs=2, max_eqns=10))
    x = data.draw(S.points(P))
    conv = data.draw(st.sampled_from(("torch", "jax", "tf")))
    pattern = [data.draw(st.integers(0, s.sel.n_pieces(s.params, len(s.ins)) - 1))
               for s in compiled(P, conv) if s.sel is not None]
    _agree(P, x, conv, pattern)


EVERY_KIND = """def f(x, y):
    a = x + y
    b = x - y
    c = a * b
    d = c * (1/3)
    e = (2/5) * d
    g = e + 1
    h = g - 2
    i = 3 - h
    j = -i
    k = tanh(j) + sigmoid(j) + exp(j) + sin(j) + cos(j)
    l = relu(k - 2) + abs(k - 2) + leaky_relu(k - 2, slope=1/5) + max(k, x) + min(k, y) + max(k, x, y)
    m = l / (1 + y * y) + log(1 + x * x) + sqrt(1 + x * x) + (1 + x * x) ** -2 + relu(2) * x
    return m * 3"""


@pytest.mark.parametrize("x", [["1/2", "-1/3"], ["0", "0"], ["2", "1"], ["-7/5", "3/2"]])
def test_every_inlined_kind_alike(x):
    # each kind of the tape's evaluation and backward code at least once, cotangents and tangents not 1
    _agree(verify.parse(EVERY_KIND), [fmpq(q) for q in x], "torch")


def _below(v, bits):
    """A rational below the real number ``v`` (a narrow arb) by at most 2**-(bits - 1)."""
    from flint import fmpz
    with ctx.workprec(bits + 64):
        lo = (v * fmpz(2) ** bits - v.rad() * fmpz(2) ** bits).floor().unique_fmpz()
    return fmpq(lo - 1, 2 ** bits)


def test_escalation_replays_the_cone_alike():
    # with t = tanh(1/3): t - c1 > 0 by less than 2**-299, so max(a, c1) is undecided at 96 bits and decided by
    # re-evaluating its cone at 384 bits; e - K < 0 by less than 2**-1199, so the last relu is decided at 1536
    # bits by replaying its cone: every kind of step (tanh, max of two, relu, max of three, a power, sums)
    with ctx.workprec(3000):
        t = arb(fmpq(1, 3)).tanh()
        c1 = _below(t, 300)
        K = _below((2 * t - c1) ** 2, 1200) + fmpq(2, 2 ** 1200)
    P = verify.parse(f"def f(x):\n    a = tanh(x)\n    b = max(a, {c1})\n    c = relu(b - {c1})\n"
                     f"    d = max(a, {c1}, 0)\n    e = (c + d) ** 2\n"
                     f"    return relu(e - {K}) + log(1 + x * x) / (2 + x)")
    exact, ball, _ = _agree(P, [fmpq(1, 3)], "torch")
    assert exact[0] == ball[0] == (0, 1, 0, 0)
    assert ball[3] >= 1536 and exact[3] >= 1536


def test_errors_name_the_equation_alike():
    P = verify.parse("def f(x):\n    u = x - 1\n    return log(u)")
    outs = _agree(P, [fmpq(1)], "torch")
    assert all(o[0] == "DomainError" and "equation 2" in o[1] and "log needs a positive argument" in o[1]
               for o in outs[:2])
    with ctx.workprec(800):
        t = arb(fmpq(1, 3)).tanh()
    P = verify.parse(f"lambda x: relu(tanh(x) - {_below(t, 300)})")
    outs = _agree(P, [fmpq(1, 3)], "torch", cap=200)
    assert outs[1][0] == "Undecided" and "equation 3" in outs[1][1], outs[1]


def test_a_patched_evaluation_rule_is_honoured_by_the_lean_path():
    from verify.program.prims import eval_rules
    P = verify.parse("lambda x: exp(x) + relu(x)")
    good = eval_rules["exp"]
    try:
        eval_rules["exp"] = lambda ns, p, a: ns.add(a, ns.const(fmpq(1)))       # exp = 1 + x (a bug)
        assert verify.evaluate(verify.parse("lambda x: exp(x) + relu(x)"), ["1/2"]).values == [2]
    finally:
        eval_rules["exp"] = good
    v = verify.evaluate(P, ["1/2"], number="ball").values[0]                # restored: e^(1/2) + 1/2
    with ctx.workprec(300):
        assert v.overlaps(arb(fmpq(1, 2)).exp() + fmpq(1, 2)) and not v.contains(2) and v.rad() < 2 ** -120
