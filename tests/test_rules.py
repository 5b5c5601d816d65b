"""Rule tables are complete, every kink has its own explicit case, and the number-system protocol never turns
an undecided comparison into a bool."""
import pytest
from flint import arb, ctx, fmpq

import verify
from verify.errors import UnknownTruth
from verify.numbers import SYSTEMS, get_system
from verify.program.prims import PRIMITIVES, RULE_TABLES, selection_rules
from verify.truth import FALSE, TRUE, UNKNOWN, Truth

Q = fmpq


def test_every_primitive_has_every_rule_it_needs():
    for name, prim in PRIMITIVES.items():
        needed = ("eval", "jvp", "vjp") if prim.smooth else ("selection",)
        for table in needed:
            assert name in RULE_TABLES[table], f"{name} has no {table} rule"
        for table in set(RULE_TABLES) - set(needed):
            assert name not in RULE_TABLES[table], f"{name} should not have a {table} rule"
    assert set(selection_rules) | set(RULE_TABLES["eval"]) == set(PRIMITIVES)


def g(src, at, **kw):
    r = verify.grad(src, at, **kw)
    assert r.exact
    return r.gradient


@pytest.mark.parametrize("src, at, conv, want", [
    ("lambda u: relu(u)", [0], "torch", [0]),
    ("lambda u: relu(u, alpha=1)", [0], "torch", [1]),
    ("lambda u: relu(u, alpha=3/7)", [0], "torch", [Q(3, 7)]),
    ("lambda u: relu(u, alpha=3/7)", [Q(-1, 9)], "torch", [0]),
    ("lambda u: abs(u)", [0], "jax", [1]),
    ("lambda u: abs(u, at_zero=-1)", [0], "jax", [-1]),
    ("lambda u: abs(u)", [Q(-1, 3)], "jax", [-1]),
    ("lambda u: leaky_relu(u, slope=1/5)", [0], "torch", [Q(1, 5)]),
    ("lambda u: leaky_relu(u, slope=1/5)", [0], "jax", [1]),
    ("lambda u: leaky_relu(u, slope=1/5, at_zero=1/2)", [0], "jax", [Q(1, 2)]),
    ("lambda u: leaky_relu(u, slope=1/5)", [-1], "jax", [Q(1, 5)]),
    ("lambda u: clamp(u, lo=0, hi=1, at_lo=1/4, at_hi=3/4)", [0], "torch", [Q(1, 4)]),
    ("lambda u: clamp(u, lo=0, hi=1, at_lo=1/4, at_hi=3/4)", [1], "torch", [Q(3, 4)]),
    ("lambda u: clamp(u, lo=0, hi=1)", [2], "torch", [0]),
    ("lambda u: clamp(u, hi=1)", [1], "jax", [Q(1, 2)]),
    ("lambda u: hardtanh(u, lo=-2, hi=3)", [3], "jax", [1]),
    ("lambda u: hardtanh(u, lo=-2, hi=3)", [3], "torch", [0]),
    ("lambda u: relu6(u, at_hi=1)", [6], "torch", [1]),
    ("lambda a, b, c: max(a, b, c)", [1, 1, 1], "torch", [Q(1, 3)] * 3),
    ("lambda a, b, c: max(a, b, c, tie='first')", [1, 1, 0], "torch", [1, 0, 0]),
    ("lambda a, b, c: max(a, b, c, tie='last')", [1, 1, 0], "torch", [0, 1, 0]),
    ("lambda a, b, c: max(a, b, c)", [0, 2, 2], "tf", [0, Q(1, 2), Q(1, 2)]),
    ("lambda a, b: max(a, b)", [2, 2], "tf", [1, 0]),
    ("lambda a, b: min(a, b, tie='last')", [2, 2], "tf", [0, 1]),
    ("lambda a, b, c: min(a, b, c)", [0, 0, 5], "jax", [Q(1, 2), Q(1, 2), 0]),
    ("def f(a, b, c):\n    x, y, z = sort(a, b, c, ties='reverse')\n    return x + 10*y + 100*z",
     [2, 1, 2], "torch", [100, 1, 10]),
    ("def f(a, b, c):\n    x, y, z = sort(a, b, c, descending=True)\n    return x + 10*y + 100*z",
     [2, 1, 2], "jax", [10, 100, 1]),
    ("lambda u, a, b: where(u == 0, a, b)", [0, 5, 6], "torch", [0, 1, 0]),
    ("lambda u, a, b: where(u != 0, a, b)", [0, 5, 6], "torch", [0, 0, 1]),
    ("lambda u, a, b: where(u < 0, a, b)", [0, 5, 6], "torch", [0, 0, 1]),
    ("lambda u, a, b: where(u <= 0, a, b)", [0, 5, 6], "torch", [0, 1, 0]),
])
def test_every_kink_explicitly(src, at, conv, want):
    for mode in ("forward", "backward"):
        assert g(src, at, convention=conv, mode=mode) == want


def test_given_pattern_freezes_pieces():
    P = verify.parse("lambda t: relu(t) + abs(t)")
    assert verify.grad(P, [5], pattern=(0, 0)).gradient == [-1]
    assert verify.grad(P, [5], pattern=(0, 0)).values == [-5]   # f_sigma(5) for sigma = (0, 0)
    assert verify.grad(P, [0], pattern=(1, 1)).gradient == [2]
    with pytest.raises(verify.InputError, match="pattern has 1 entries"):
        verify.grad(P, [0], pattern=(1,))
    with pytest.raises(verify.InputError, match="piece index 0..2"):
        verify.grad(P, [0], pattern=(1, 3))


def test_truth_never_becomes_a_bool_when_unknown():
    assert bool(TRUE) and not bool(FALSE)
    with pytest.raises(UnknownTruth):
        bool(UNKNOWN)
    with pytest.raises(UnknownTruth):
        if UNKNOWN:
            pass
    assert (TRUE & UNKNOWN) is UNKNOWN and (FALSE & UNKNOWN) is FALSE and (TRUE | UNKNOWN) is TRUE
    assert ~UNKNOWN is UNKNOWN and Truth.of(None) is UNKNOWN


def test_signs_are_decided_or_none():
    ball = get_system("ball")
    assert ball.sign(arb(0, 1)) is None and ball.sign(arb(0)) == 0 and ball.sign(arb(Q(-1, 3))) == -1
    assert ball.sign(arb.pi() - arb.pi()) is None       # arb.pi() == arb.pi() is False in python-flint
    assert ball.sign(arb("nan")) is None
    ex = get_system("exact")
    assert ex.sign(Q(0)) == 0 and ex.sign(Q(-1, 10**30)) == -1
    iv = get_system("interval")
    from mpmath import iv as mpiv
    assert iv.sign(mpiv.mpf([-1, 1])) is None and iv.sign(mpiv.mpf(2)) == 1


def test_exact_special_values_and_hybrid():
    ex = get_system("exact")
    assert ex.exp(Q(0)) == 1 and ex.log(Q(1)) == 0 and ex.sqrt(Q(9, 4)) == Q(3, 2)
    assert ex.sigmoid(Q(0)) == Q(1, 2) and ex.cos(Q(0)) == 1 and ex.tanh(Q(0)) == 0 and ex.sin(Q(0)) == 0
    assert isinstance(ex.sqrt(Q(2)), arb) and isinstance(ex.exp(Q(1)), arb)
    r = verify.evaluate("lambda x: exp(x - x) + log(x) * x", [1])
    assert r.exact and r.values == [1]
    r = verify.evaluate("lambda x: exp(x)", [1])
    assert not r.exact and isinstance(r.values[0], arb)


def test_precision_never_leaks():
    before = ctx.prec
    verify.grad("lambda x: exp(x)", ["1/3"], number="ball", prec=300)
    with pytest.raises(verify.Undecided):
        verify.grad("lambda t: relu(log(exp(t)) - t)", ["1/3"], number="ball")
    assert ctx.prec == before
    from mpmath import iv
    p = iv.prec
    verify.evaluate("lambda x: exp(x)", ["1/3"], number="interval", prec=200)
    assert iv.prec == p


def test_undecided_names_the_equation_and_escalates():
    with pytest.raises(verify.Undecided) as e:
        verify.evaluate("lambda t: relu(log(exp(t)) - t)", ["1/3"])
    assert "relu" in str(e.value) and "4096 bits" in str(e.value) and e.value.prec == 4096


def test_escalation_decides_what_low_precision_cannot():
    # exp(1/3) * exp(-1/3) - 1 + 2**-100: positive, but needs > 100 bits to see
    r = verify.evaluate("lambda t: relu(exp(t) * exp(-t) - 1 + 1/1267650600228229401496703205376)", ["1/3"],
                        number="ball", prec=64)
    assert r.prec >= 128 and r.pattern == (1,)


def test_all_number_systems_are_constructible():
    for name in SYSTEMS:
        assert get_system(name).name in (name, "float64")
    with pytest.raises(verify.InputError, match="unknown"):
        get_system("decimal")


def test_a_switch_on_one_variable_twice_is_an_exact_tie_in_balls():
    P = verify.parse("def f(v):\n    u = exp(v)\n    a, b = sort(u, u)\n    return max(u, u) + a - b\n")
    g = verify.grad(P, ["1/3"], number="ball")
    assert g.prec == 128 and g.pattern == (0, 2)      # sort keeps the order, max splits the tie
    assert verify.grad(P, ["1/3"]).pattern == g.pattern


def test_integer_powers_of_balls_around_zero_are_sound():
    # python-flint 0.9 returns nan for arb ** int when the ball contains 0 without being 0
    for n in (1, 2, 3):
        r = verify.evaluate(f"lambda x, y: (y - y) ** {n} + x", [0, "1/3"], number="ball")
        assert r.values[0].contains(0) and r.values[0].is_finite() and r.values[0].rad() < 1e-30
    g = verify.grad("lambda x: (x - x) ** 3 + x ** 2", ["1/3"], number="ball").gradient[0]
    from helpers import contains
    assert contains(g, fmpq(2, 3)) and g.rad() < 1e-30


@pytest.mark.parametrize("src", [
    "lambda u: leaky_relu(u, slope=1)", "lambda u: leaky_relu(u, slope=1, at_zero=1)",
    "lambda u: leaky_relu(u, slope=0)", "lambda u: relu(u, alpha=1)", "lambda u: relu(u, alpha=0)",
    "lambda u: abs(u, at_zero=1)", "lambda u: abs(u, at_zero=-1)", "lambda u: abs(u, at_zero=1/2)",
    "lambda u: clamp(u, lo=0, hi=1, at_lo=0, at_hi=1)", "lambda u: clamp(u, lo=0, at_lo=1/2)",
    "lambda u: hardtanh(u)", "lambda u: relu6(u, at_lo=1, at_hi=1/3)",
    "lambda a, b, c: max(a, b, c)", "lambda a, b: min(a, b, tie='first')", "lambda a, b, c: sort(a, b, c)",
    "lambda u, v, a, b: where(u > v, a, b)"])
def test_a_pattern_is_a_choice_of_distinct_affine_maps(src):
    """Pieces that coincide as affine maps are one piece, for the certifier (prims) and the checker (kernel)
    alike: leaky_relu(u, slope=1) has the single piece u, so I(0) has one pattern, not two."""
    from verify.checker import kernel as K
    from verify.program.kinks import resolve
    P = verify.parse(src)
    for conv in ("torch", "jax", "tf"):
        e = P.eqns[-1]
        params = resolve(e, conv)
        sel = selection_rules[e.prim]
        maps = [tuple((tuple(dict(terms).get(j, Q(0)) for j in range(len(e.ins))), const)
                      for terms, const in sel.piece(params, len(e.ins), i).rows)
                for i in range(sel.n_pieces(params, len(e.ins)))]
        assert len(set(maps)) == len(maps), (src, conv, maps)
        assert sorted(maps) == sorted(K.pieces(e.prim, params, len(e.ins))), (src, conv)
    from verify.certify import index_set
    assert index_set("lambda x: leaky_relu(x, slope=1)", [0]).patterns == [(0,)]


def test_affine_forms_decide_rational_differences_exactly():
    """verify.numbers.affine (certifier) and the checker's forms (checker/forms.py) keep the identity of atoms: a
    difference whose atoms cancel is an exact rational, whatever the balls say."""
    from verify.checker import kernel as K
    from verify.numbers.affine import AffineSystem
    ns = AffineSystem()
    t = ns.input(0, arb(Q(1, 2)))
    e1, e2 = ns.exp(t), ns.exp(t)
    d = ns.sub(ns.add(e1, ns.const(Q(1, 10 ** 40))), e2)
    assert ns.is_exact_value(d) and d[0] == Q(1, 10 ** 40) and ns.sign(d) == 1
    assert ns.sign(ns.sub(ns.mul(e1, t), ns.mul(t, e2))) == 0                 # a * b - b * a
    assert ns.sign(ns.sub(ns.log(e1), t)) is None                              # log(exp(t)) - t: nonlinear, a ball
    from verify.checker.forms import Forms
    P = verify.parse("lambda t: exp(t) + 1/10**40 - exp(t) + relu(exp(t) * t - t * exp(t)) + relu(log(exp(t)) - t)")
    zero = K.pieces("relu", {"alpha": Q(0)}, 1)[0]            # the relus' pieces do not matter below them
    F = K.Frozen(P, [arb(Q(1, 2))], [zero, zero], want_grad=False)
    f = Forms(P, F.val, [zero, zero], symbolic=True)
    v = P.names.index
    d = f.of(v("v4"))                                           # exp(t) + 1/10^40 - exp(t)
    assert not d.terms and d.const == Q(1, 10 ** 40)
    assert f.of(v("v9")).is_zero()                              # exp(t) * t - t * exp(t)
    assert f.of(v("v14")).terms                                 # log(exp(t)) - t: nonlinear, never claimed 0
