"""Every claim on random tensor programs (small shapes, batches, matrix products, convolutions, pooling,
kink-biased points): the tensor interpreter means what the scalarised program means (values, patterns,
gradients), Lemma 1 (forward = backward, exactly), soundness (exact values inside the balls, balls meeting
mpmath's intervals), the site-level index sets, fields, Clarke generators, differentiability and critical
points agree with the scalar certifiers on the scalarisation (Theorem 2, Proposition 3, the criticality
notions of Section 5), Theorem 1 (the same function with AD's gradient shifted at a point) and Proposition 4
(the chain rule of AD).  Proposition 2 on tensor programs is in tests/test_segment_net.py."""
import numpy as np
from hypothesis import assume, given, settings, strategies as st

from verify.certify import clarke, conservative_field, critical, index_set
from verify.certify import sites as S
from verify.errors import DomainError, InputError, Undecidable, Undecided
from verify.interpret import ad as scalar_ad
from verify.interpret import tensor as T
from verify.program.scalarize import scalarize
from verify.strategies.tensor import tensor_points, tensor_programs


def _flat(arr):
    return np.ravel(np.asarray(arr, dtype=object)).tolist() if np.ndim(arr) else [arr]


def _same(a, b):
    """Equal rationals, or balls that meet (two enclosures of one real number)."""
    if hasattr(a, "overlaps") or hasattr(b, "overlaps"):
        from flint import arb
        a, b = (v if hasattr(v, "overlaps") else arb(v) for v in (a, b))
        return a.overlaps(b)
    return a == b


def _inside(e, b):
    """The exact rational e (or, for a hybrid value, a ball) lies in the ball b."""
    from flint import arb, ctx
    if hasattr(e, "rad"):
        return b.overlaps(e)
    with ctx.workprec(4000):          # e as a ball far narrower than b
        return b.contains(arb(e))


def _scalar_gradient(Sc, grads):
    out = [None] * Sc.program.n_inputs
    for i, g in enumerate(grads):
        for idx, v in zip(Sc.inputs[i].ravel().tolist(), _flat(g)):
            out[idx] = v
    return out


@given(st.data())
def test_tensor_programs_mean_their_scalarisation(data):
    P = data.draw(tensor_programs())
    x = data.draw(tensor_points(P))
    conv = data.draw(st.sampled_from(["torch", "jax", "tf"]))
    Sc = scalarize(P, conv)
    try:
        tg = T.grad(P, x, convention=conv)
    except (DomainError, Undecided):     # (tanh(a) - tanh(b) at a = b is undecided in balls, also scalarised)
        return
    try:
        sg = scalar_ad.grad(Sc.program, Sc.flat_point(x), convention=conv)
    except Undecided:                    # the tensor interpreter may decide more (exact shifts); never less
        return
    assert Sc.to_scalar_pattern(tg.pattern) == tuple(sg.pattern)
    assert all(_same(a, b) for a, b in zip(_flat(tg.values[0]), sg.values))
    assert all(_same(a, b) for a, b in zip(_scalar_gradient(Sc, tg.gradient), sg.gradient))


@given(st.data())
def test_lemma1_forward_equals_backward_on_tensor_programs(data):
    P = data.draw(tensor_programs(rational_only=True))
    x = data.draw(tensor_points(P))
    try:
        back = T.grad(P, x)
    except DomainError:
        return
    fwd = T.grad(P, x, mode="forward")
    assert [p.tolist() for p in back.pattern] == [p.tolist() for p in fwd.pattern]
    assert back.exact
    for a, b in zip(back.gradient, fwd.gradient):
        assert _flat(a) == _flat(b)


@settings(max_examples=25)
@given(st.data())
def test_soundness_exact_inside_balls_and_balls_meet_intervals(data):
    P = data.draw(tensor_programs(conv=False))
    x = data.draw(tensor_points(P, kink_bias=data.draw(st.booleans())))
    try:
        ex = T.grad(P, x)
        ball = T.grad(P, x, number="ball", prec=200)
    except (DomainError, Undecided):
        return
    assert [p.tolist() for p in ex.pattern] == [p.tolist() for p in ball.pattern]
    for e, b in zip(_flat(ex.values[0]) + sum((_flat(g) for g in ex.gradient), []),
                    _flat(ball.values[0]) + sum((_flat(g) for g in ball.gradient), [])):
        assert _inside(e, b)
        assert b.rad() < 2 ** -90 * (1 + abs(b.mid()))
    try:
        iv = T.evaluate(P, x, number="interval", prec=200)
    except (DomainError, Undecided):
        return
    lo, hi = (float(t) for t in (iv.values[0].a, iv.values[0].b))
    mid = float(ball.values[0].mid())
    assert lo - 1e-9 <= mid <= hi + 1e-9


@settings(max_examples=25)
@given(st.data())
def test_site_certifiers_agree_with_the_scalar_ones(data):
    P = data.draw(tensor_programs(max_eqns=4, rational_only=True))
    x = data.draw(tensor_points(P))
    Sc = scalarize(P)
    sp = Sc.flat_point(x)
    try:
        si = S.site_index_set(P, x)
    except DomainError:
        return
    assume(si.count <= 64)
    ci = index_set(Sc.program, sp)
    assert si.count == ci.count
    assert {Sc.to_scalar_pattern(p) for p in si.patterns} == set(ci.patterns)
    sf, cf = S.site_field(si), conservative_field(Sc.program, sp)
    key = lambda g: tuple(str(v) for v in g)  # noqa: E731
    assert {key(_scalar_gradient(Sc, [T.get_tensor_system("exact").to_fq(c) for c in g])) for g in sf.gradients} == \
        {key(g[0]) for g in cf.gradients}
    d = S.site_differentiable(P, x)
    assert (d.differentiable.value == "true") == (not si.kinks)
    try:
        cl, _ = S.site_clarke(P, x)
        cc = clarke(Sc.program, sp)
    except (Undecidable, DomainError, InputError):
        return
    assert {key(_scalar_gradient(Sc, [T.get_tensor_system("exact").to_fq(c) for c in g])) for g in cl.gradients} == \
        {key(g[0]) for g in cc.gradients}
    scr, ccr = S.site_critical(P, x), critical(Sc.program, sp)
    assert (scr.selection.truth, scr.clarke_critical.truth) == (ccr.selection.truth, ccr.clarke_critical.truth)


def _copy(P, b):
    """Re-emit P's equations into the builder b (same variable numbers)."""
    for e in P.eqns:
        b.emit(e.prim, list(e.ins), dict(e.params), n_out=len(e.outs))
    return P.outputs[0]


def _builder(P):
    from verify.program.builder import Builder
    return Builder(P.name, list(P.input_names), list(P.input_shapes or [()] * P.n_inputs), P.arrays)


@settings(max_examples=25)
@given(st.data())
def test_theorem1_on_tensor_programs(data):
    """P + sum(r * zero(x - a)) is the same function as P, and its AD gradient at x = a is P's plus r (with
    zero(u) = relu(-u) + u - relu(u), relu'(0) = 0 written out: the shift is convention-independent)."""
    from flint import fmpq

    from verify.program.arrays import Arrays
    from verify.program.ir import Arr
    P = data.draw(tensor_programs(rational_only=True, conv=False))
    a = data.draw(tensor_points(P))
    r = data.draw(tensor_points(P, kink_bias=False))[0]
    arrays = dict(P.arrays.arrays) if P.arrays else {}
    arrays.update({"shift_a": a[0], "shift_r": r})
    b = _builder(P)
    b.arrays = Arrays(arrays)
    out = _copy(P, b)
    u = b.emit("sub", [0, Arr("shift_a")])[0]
    nu = b.emit("neg", [u])[0]
    z = b.emit("sub", [b.emit("add", [b.emit("relu", [nu], {"alpha": fmpq(0)})[0], u])[0],
                       b.emit("relu", [u], {"alpha": fmpq(0)})[0]])[0]
    sh = P.input_shapes[0]
    s = b.emit("sum", [b.emit("mul", [z, Arr("shift_r")])[0]], {"axes": tuple(range(len(sh)))})[0]
    Q = b.finish([b.emit("add", [out, s])[0]])
    y = data.draw(tensor_points(P))
    try:
        assert T.evaluate(Q, y).values == T.evaluate(P, y).values
        gp, gq = T.grad(P, a), T.grad(Q, a)
    except DomainError:
        return
    shifted = np.asarray(gp.gradient[0], dtype=object) + r.to_fmpq()
    assert _flat(gq.gradient[0]) == _flat(shifted)
    assert [_flat(g) for g in gq.gradient[1:]] == [_flat(g) for g in gp.gradient[1:]]


@settings(max_examples=25)
@given(st.data())
def test_proposition4_chain_rule_on_tensor_programs(data):
    """AD of a composition is the product of the AD derivatives: for C(x) = q(P(x)) with q(s) = 3 relu(s - 1/2)
    + s * s, grad C(x) = q'(P(x)) grad P(x) exactly, q' being AD's derivative of q at P(x)."""
    from flint import fmpq
    P = data.draw(tensor_programs(rational_only=True))
    x = data.draw(tensor_points(P))
    b = _builder(P)
    y = _copy(P, b)
    rl = b.emit("relu", [b.emit("sub", [y, fmpq(1, 2)])[0]], {"alpha": fmpq(0)})[0]
    C = b.finish([b.emit("add", [b.emit("mul", [rl, fmpq(3)])[0], b.emit("mul", [y, y])[0]])[0]])
    try:
        gp, gc = T.grad(P, x), T.grad(C, x)
    except DomainError:
        return
    dq = scalar_ad.grad("lambda s: 3 * relu(s - 1/2, alpha=0) + s * s", [gp.values[0]]).gradient[0]
    for a, c in zip(gp.gradient, gc.gradient):
        assert _flat(c) == [dq * v for v in _flat(a)]
