"""Properties on random programs: Lemma 1 (forward = backward exactly), soundness of the ball and interval
systems against exact values, and the selection invariant of every nonsmooth primitive."""
from flint import arb, ctx, fmpq
from hypothesis import given, strategies as st

import verify
from verify.interpret.evaluate import compiled, run
from verify.numbers import get_system
from verify.numbers.interval import IntervalSystem
from verify.program.prims import affine
from verify.strategies import points, programs

from helpers import contains, meets, q_bounds, width


@given(st.data())
def test_lemma1_forward_equals_backward_exactly(data):
    P = data.draw(programs(n_inputs=data.draw(st.integers(1, 3)), max_eqns=10, rational_only=True))
    x = data.draw(points(P))
    f, b = verify.grad(P, x, mode="forward"), verify.grad(P, x, mode="backward")
    assert f.exact and b.exact
    assert f.jacobian == b.jacobian and f.pattern == b.pattern and f.values == b.values


@given(st.data())
def test_lemma1_in_hybrid_exact_with_transcendentals(data):
    P = data.draw(programs(n_inputs=2, max_eqns=8))
    x = data.draw(points(P))
    try:
        f, b = verify.grad(P, x, mode="forward"), verify.grad(P, x, mode="backward")
    except verify.Undecided:
        return
    for rf, rb in zip(f.jacobian, b.jacobian):
        for u, v in zip(rf, rb):
            assert meets(u, v)


def _env(P, x, system, prec):
    ns = get_system(system)
    if isinstance(ns, IntervalSystem):
        with ns.precision(prec):
            r = run(P, ns, [ns.const(q) for q in x])
    else:
        with ctx.workprec(prec):
            r = run(P, ns, [ns.const(q) for q in x])
    return r


@given(st.data())
def test_soundness_exact_inside_ball_and_ball_meets_interval(data):
    P = data.draw(programs(n_inputs=2, max_eqns=8))
    x = data.draw(points(P))
    prec = data.draw(st.sampled_from([64, 128, 256]))
    try:
        ex = _env(P, x, "exact", 512)
    except verify.Undecided:
        return
    try:
        ball = _env(P, x, "ball", prec)
    except verify.Undecided:
        ball = None   # undecided is honest; then nothing is claimed
    if ball is not None:
        assert ball.pattern == ex.pattern
        for e, bv in zip(ex.env, ball.env):
            if isinstance(e, fmpq):
                assert contains(bv, e)
                lo, hi = q_bounds(bv)
                assert width(bv) <= fmpq(1, 2 ** (prec // 2)) * (1 + max(abs(lo), abs(hi)))
            else:
                assert meets(e, bv)
    try:
        iv = _env(P, x, "interval", prec)
    except verify.Undecided:
        return
    assert iv.pattern == ex.pattern
    for e, iv_v in zip(ex.env, iv.env):
        assert meets(e, iv_v)
    if ball is not None:
        for bv, iv_v in zip(ball.env, iv.env):
            assert meets(bv, iv_v)


@given(st.data())
def test_ball_gradient_contains_exact_gradient(data):
    P = data.draw(programs(n_inputs=2, max_eqns=8, rational_only=True))
    x = data.draw(points(P))
    ex = verify.grad(P, x)
    try:
        b = verify.grad(P, x, number="ball", prec=96)
    except verify.Undecided:
        return
    assert b.pattern == ex.pattern
    for re_, rb in zip(ex.jacobian, b.jacobian):
        for e, v in zip(re_, rb):
            assert isinstance(v, arb) and contains(v, e)


@given(st.data())
def test_chosen_piece_agrees_with_every_piece_active_there(data):
    """The index rule's piece reproduces the primitive; on the kink every piece agrees in value."""
    P = data.draw(programs(n_inputs=2, max_eqns=6, primitives=verify.strategies.NONSMOOTH + ("add", "sub"),
                           rational_only=True))
    x = data.draw(points(P))
    ns = get_system("exact")
    r = run(P, ns, x)
    pats = iter(r.pattern)
    for st_ in compiled(P, "torch"):
        if st_.sel is None:
            continue
        i = next(pats)
        args = r.args[st_.k]
        got = [r.env[o] for o in st_.outs]
        assert st_.piece(i).apply(ns, args) == got
        signs = [ns.sign(affine(ns, t, c, args)) for t, c in st_.switches]
        # a piece chosen for the same signs by another convention must give the same value
        for conv in ("jax", "tf"):
            other = compiled(P, conv)[st_.k]
            j = other.sel.choose(other.params, len(args), lambda k: signs[k])
            assert other.piece(j).apply(ns, args) == got


def test_float_systems_run_and_differ_from_exact_only_by_rounding():
    P = verify.parse("lambda x: exp(x) * sigmoid(x) - log(1 + x*x)")
    ex = verify.evaluate(P, ["1/3"], number="ball", prec=200).values[0]
    for name, tol in (("float64", fmpq(1, 10**14)), ("float32", fmpq(1, 10**6)), ("float16", fmpq(1, 100))):
        v = verify.evaluate(P, ["1/3"], number=name).values[0]
        assert type(v).__name__ == name
        lo, hi = q_bounds(ex)
        assert abs(verify.rational.to_fmpq(float(v)) - lo) < tol
