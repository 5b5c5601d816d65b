"""Issue 9: ties that hold by a linear identity are exact ties, also in balls; ties that need nonlinear algebra
stay UNDECIDED; escalation re-runs only the undecided equation's cone."""
import pytest
from flint import arb, ctx, fmpq
from hypothesis import given, strategies as st

import verify
from verify.certify import clarke, critical, index_set
from verify.frameworks import available, framework_grad
from verify.fuzz.claims import Example, check
from verify.interpret.evaluate import run
from verify.interpret.forms import Form
from verify.numbers import get_system
from verify.strategies.identities import identity_programs

T = fmpq(1, 3)
CONVENTIONS = ("torch", "jax", "tf")


def _enclose(f):
    with ctx.workprec(300):
        return f(arb(T))


# program, the pattern-independent exact Jacobian as a function of t (balls at 300 bits), which piece ties
MUST = [
    ("lambda t: relu(tanh(t) - tanh(t))", lambda t: [[0]]),
    ("lambda t: max(relu(exp(t)), exp(t))", lambda t: [[t.exp()]]),
    ("lambda t: sort(sin(t), sin(t))", lambda t: [[t.cos()], [t.cos()]]),
    ("lambda x: relu(min(x, x, x) - x)", lambda t: [[0]]),
]


@pytest.mark.parametrize("src, jac", MUST)
@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("point", [T, fmpq(0), fmpq(-2, 7)])
def test_identity_ties_are_exact_in_balls(src, jac, convention, point):
    P = verify.parse(src)
    g = verify.grad(P, [point], number="ball", convention=convention)
    e = verify.grad(P, [point], number="exact", convention=convention)
    assert g.pattern == e.pattern and g.prec == 128                 # decided exactly: no escalation
    with ctx.workprec(300):
        want = [[arb(v) if not isinstance(v, arb) else v for v in row] for row in
                [[c if isinstance(c, arb) else fmpq(c) for c in r] for r in _rows(jac, point)]]
    for row, wrow, erow in zip(g.jacobian, want, e.jacobian):
        for v, w, ev in zip(row, wrow, erow):
            assert v.overlaps(w) and v.rad() < 2 ** -100 and (not isinstance(ev, arb) or ev.overlaps(w))
    fw = {"torch": "torch", "jax": "jax"}.get(convention)
    if fw and available(fw):
        vals, fjac, _ = framework_grad(P, [point], fw, convention)
        for row, frow in zip(g.jacobian, fjac):
            for v, f in zip(row, frow):
                assert abs(float(v.mid()) - f) <= 1e-12 * (1 + abs(f)), (src, fw, g.jacobian, fjac)


def _rows(jac, point):
    with ctx.workprec(300):
        return jac(arb(point))


def test_exact_zero_gradients_are_exact():
    for src in ("lambda t: relu(tanh(t) - tanh(t))", "lambda x: relu(min(x, x, x) - x)"):
        g = verify.grad(src, [T], number="ball")
        assert all(v.is_exact() and v == 0 for v in g.gradient)


def test_nonlinear_identities_stay_undecided():
    for number in ("ball", "exact"):
        with pytest.raises(verify.Undecided, match="still undecided at 4096 bits"):
            verify.grad("lambda t: relu(log(exp(t)) - t)", [T], number=number)
    with pytest.raises(verify.Undecided):
        verify.grad("lambda x, y: relu(exp(x) * exp(y) - exp(x + y))", [T, T], number="ball")
    with pytest.raises(verify.Undecided):      # distributivity over non-constant factors is nonlinear
        verify.grad("lambda x: relu(tanh(x) * (sin(x) + cos(x)) - tanh(x) * sin(x) - tanh(x) * cos(x))", [T],
                    number="ball")


def test_exact_symmetries_and_constants():
    for src in ("lambda t: relu(tanh(-t) + tanh(t))", "lambda t: relu(sigmoid(t) + sigmoid(-t) - 1)",
                "lambda t: relu(cos(-t) - cos(t))", "lambda x, y: relu(x * y - y * x)",
                "lambda x: relu((x + 1) * (x + 1) - (x + 1) ** 2)", "lambda x: relu(exp(2 * x) / exp(x + x) - 1)",
                "lambda x: relu(exp(x - x) - 1)", "lambda x: relu(tanh(x) * 3 - 2 * tanh(x) - tanh(x))"):
        P = verify.parse(src)
        x = [T] * P.n_inputs
        for conv in CONVENTIONS:
            g = verify.grad(P, x, number="ball", convention=conv)
            assert g.pattern == verify.grad(P, x, convention=conv).pattern, src
        # as identities of functions (input atoms, no value read as a constant): zero on a neighbourhood
        c = clarke(f"lambda {', '.join(P.input_names)}: ({src.split(':', 1)[1]}) + {P.input_names[0]}", x)
        assert "identity" in _decisions(c.tree) and len(c.leaves) == 1, src


def test_forms_never_leak_a_ball():
    P = verify.parse("lambda t: relu(exp(t) - exp(t) + 1/3 - t)")
    ns = get_system("ball")
    with ctx.workprec(64):
        r = run(P, ns, [ns.const(T)], inputs=[T])
    assert r.forms is not None
    for F in r.forms.memo.values():
        assert isinstance(F, Form) and isinstance(F.const, fmpq) and all(isinstance(c, fmpq) for c in F.terms.values())


def test_rational_ties_at_rational_points_are_exact_in_balls():
    g = verify.grad("lambda x, y: max(x, y) + relu(x * x - 1/9)", ["1/3", "1/3"], number="ball", convention="tf")
    assert [v == w for v, w in zip(g.gradient, [fmpq(1), fmpq(0)])] == [True, True]
    assert g.pattern == verify.grad("lambda x, y: max(x, y) + relu(x * x - 1/9)", ["1/3", "1/3"],
                                    convention="tf").pattern


def test_index_sets_and_clarke_decide_identity_ties():
    for number in ("ball", "exact"):
        iset = index_set("lambda t: relu(tanh(t) - tanh(t))", [T], number=number)
        assert iset.decided and iset.patterns == [(0,), (1,)]
        c = clarke("lambda t: relu(tanh(t) - tanh(t)) + t", [T], number=number)
        assert [leaf.pattern for leaf in c.leaves] == [(0,)] and "identity" in _decisions(c.tree)


@pytest.mark.parametrize("src, point, gens", [
    ("lambda x: relu(x * x)", [0], [[0]]),                       # a square: the negative side is empty
    ("lambda x, y: relu(x * x) + y", [0, 0], [[0, 1]]),
    ("lambda x, y: relu(x * x + y * y) - x", [0, 0], [[-1, 0]]),   # a definite form
    ("lambda x, y: relu((x - y) * (x - y) * 3)", [1, 1], [[0, 0]]),   # 3 (x - y)^2
    ("lambda x: relu(x * x * x) + x", [0], [[1]]),              # one input, odd order: both sides
    ("lambda x: relu(x) + relu(x + x * x)", [0], [[0], [2]]),   # one input, dependent gradients: the two sides
    ("lambda x, y: relu(x * y) + x", [0, 0], [[1, 0]]),         # indefinite: witness directions
])
def test_clarke_degenerate_polynomial_ties(src, point, gens):
    c = clarke(src, point)
    assert sorted([[str(v) for v in g[0]] for g in c.gradients]) == sorted([[str(v) for v in g] for g in gens])


def test_clarke_degenerate_ties_it_cannot_decide_are_undecided():
    for src, point in (("lambda x, y: relu(x * x - y * y * y)", [0, 0]), ("lambda x: relu(sin(x) * sin(x))", [0])):
        with pytest.raises(verify.Undecided):
            clarke(src, point)
    c = critical("lambda x: relu(x * x)", [0])
    assert c.clarke_critical.truth is verify.TRUE and c.artificial is verify.FALSE


# ------------------------------------------------------------------------- escalation re-runs the cone

NEAR = "lambda x, y: relu(exp(x) - exp(y) - {eps}) + tanh(y) * 3"


def test_escalation_decides_a_near_tie_and_reports_the_precision():
    eps = fmpq(1, 2 ** 400)
    P = verify.parse(NEAR.format(eps=f"1/{2 ** 400}"))
    x = [T + eps, T]           # exp(x) - exp(y) - eps = eps (exp(1/3) - 1) + O(eps^2) > 0, about 2^-401
    g = verify.grad(P, x, number="ball")
    assert g.pattern == (1,) and g.prec == 512
    e = verify.grad(P, x, number="exact")
    assert e.pattern == (1,)
    with ctx.workprec(600):
        want = arb(x[0]).exp()
    assert g.gradient[0].overlaps(want)


def test_escalation_replays_only_the_cone():
    from verify.interpret import evaluate as E
    calls = []
    good = E._Runner.replay_steps

    def counting(self, js):
        calls.extend(js)
        return good(self, js)
    P = verify.parse(NEAR.format(eps=f"1/{2 ** 400}") + " + " + " + ".join(f"sin(y * {k})" for k in range(1, 30)))
    eps = fmpq(1, 2 ** 400)
    E._Runner.replay_steps = counting
    try:
        g = verify.grad(P, [T + eps, T], number="ball")
    finally:
        E._Runner.replay_steps = good
    assert g.pattern == (1,)
    cone = {k for k, e in enumerate(P.eqns) if e.prim in ("exp", "sub")}
    assert set(calls) <= cone and calls


# ----------------------------------------------------------------- properties on identity programs

@given(identity_programs(), st.data())
def test_soundness_on_identity_programs_is_never_undecided(P, data):
    from verify import strategies as S
    x = data.draw(S.points(P))
    conv = data.draw(st.sampled_from(CONVENTIONS))
    prec = data.draw(st.sampled_from([64, 128]))
    assert check(Example("soundness", P, x, conv, {"prec": prec})) == "ok"


@given(identity_programs(), st.data())
def test_lemma1_in_balls_on_identity_programs_is_never_undecided(P, data):
    from verify import strategies as S
    x = data.draw(S.points(P))
    conv = data.draw(st.sampled_from(CONVENTIONS))
    assert check(Example("lemma1", P, x, conv, {"number": "ball"})) == "ok"


def test_a_program_that_needed_more_bits_starts_there_next_time():
    src = "lambda x: relu(sin(x * x + x) ** 2 + cos(x * x + x) ** 2 - 1 - 1/{d}) + x".format(d=2 ** 400)
    P = verify.parse(src)
    for point in ([T], [fmpq(2, 5)], [T]):
        g = verify.grad(P, point, number="ball")
        assert g.pattern == (0,) and g.prec == 512 and g.gradient[0].overlaps(arb(1))
    assert P.__dict__["_tapes"]["torch"].start["ball"] == 512


def test_a_second_near_tie_starts_where_the_first_one_ended():
    tie = "relu(sin({u}) ** 2 + cos({u}) ** 2 - 1 - 1/{d})".format(u="{u}", d=2 ** 400)
    P = verify.parse("lambda x, y: " + tie.format(u="x") + " + " + tie.format(u="y") + " + x * y")
    g = verify.grad(P, [T, fmpq(2, 7)], number="ball")
    assert g.pattern == (0, 0) and g.prec == 512 and g.gradient[0].overlaps(arb(fmpq(2, 7)))


def _decisions(tree):
    """The kinds of decision a Clarke tree states beyond values ("identity", "germ")."""
    if isinstance(tree, int):
        return set()
    out = {k for how in tree.how.values() for k in how}
    for b in tree.branches:
        if b.next is not None:
            out |= _decisions(b.next)
    return out


def test_certificates_carry_every_decision():
    """Issue 21: a result decided by exact forms, germs or exact rational functions of t is written with that
    evidence, which the checker re-derives: the certificate states the library's answer."""
    from verify.certify import segment_partition
    from verify.certify.certs import critical_certificate, index_certificate
    from verify.certify.integral import integral_certificate, integral_identity
    from verify.certify.segment import segment_certificate
    from verify.checker import check as check_certificate
    iset = index_set("lambda x: exp(x)", [1], scope="global")      # f_s(x) = f(x): the same atom exp(1)
    assert iset.decided and iset.count == 1 and iset.outputs
    cert = index_certificate(iset)
    check_certificate(cert)
    assert cert["verdict"] == "PROVED" and cert["result"]["count"] == 1 and cert["evidence"]["outputs"]
    c = critical("lambda x: relu(x * x)", [0])                    # a lowest-order part: x^2 is never < 0
    assert c.clarke_critical.truth is verify.TRUE and "germ" in _decisions(c.clarke_result.tree)
    cert = critical_certificate(c)
    check_certificate(cert)
    assert cert["result"]["clarke"] == [["0"]] and cert["verdict"] == "PROVED"
    part = segment_partition("lambda x0, x1: min(x0, clamp(x0, lo=0, hi=1)) + cos(x1)", [-2, 0], [fmpq(1, 2), 1])
    assert part.complete and any(c.exact for c in part.cells)
    cert = segment_certificate(part)            # the exact decisions travel as evidence: the same answer
    check_certificate(cert)
    assert cert["verdict"] == "PROVED" and cert["result"] == part.json()
    res = integral_identity("lambda x: max(exp(clamp(x, lo=0, hi=1)), cos(tanh(x)))", [-1], [0])
    assert any(e.how == "germ" for c in res.partition.cells for e in c.exact)
    cert = integral_certificate(res)
    check_certificate(cert)
    assert cert["result"] == res.json()
