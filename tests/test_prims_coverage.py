"""The primitives added for PyTorch's operator set: steps (floor, ceil, round, trunc), atan, order statistics
(kth, kth_axis), sorts whose tie order is unspecified, and window_max / window_min.

Oracles: exact values written by hand (rationals), the scalar interpreter on the scalarisation (the reference
semantics of tensor programs, exactly), the checker's own tensor kernel (values and reverse mode, exactly),
and live PyTorch where the primitive stands for a torch op's backward at a tie."""
import numpy as np
import pytest
from flint import arb, ctx, fmpq

import verify
from verify.checker import kernel as K
from verify.checker import tensor as TK
from verify.errors import ProgramError, Undecidable, Undecided
from verify.interpret import tensor as T
from verify.program.arrays import Arrays, ExactArray
from verify.program.builder import Builder
from verify.program.ir import Arr
from verify.program.prims.steps import discontinuous_eqns
from verify.program.scalarize import scalarize

Q = fmpq


@pytest.mark.parametrize("at, want", [
    ("5/2", (2, 3, 2, 2)), ("-5/2", (-3, -2, -2, -2)), ("3", (3, 3, 3, 3)), ("-1/3", (-1, 0, 0, 0)),
    ("7/2", (3, 4, 4, 3)), ("-7/2", (-4, -3, -4, -3)), ("1/2", (0, 1, 0, 0)), ("-3/2", (-2, -1, -2, -1)),
    ("0", (0, 0, 0, 0)), ("10000000001/10", (1000000000, 1000000001, 1000000000, 1000000000))])
def test_steps_exactly_and_their_derivative_is_zero(at, want):
    for prim, w in zip(("floor", "ceil", "round", "trunc"), want):
        for number in ("exact", "ball", "float", "interval"):
            g = verify.grad(f"lambda x: {prim}(x) + 2 * x", [at], number=number)
            v = verify.evaluate(f"lambda x: {prim}(x)", [at], number=number).values[0]
            if number == "exact":
                assert v == w and g.gradient == [2], (prim, at)
            elif number == "ball":
                assert v.contains(w) and v.rad() == 0 and g.gradient[0] == 2
            else:
                assert float(v.mid if number == "interval" else v) == w
        assert K.step(prim, Q(at)) == w


def test_steps_decide_balls_by_escalation_or_say_undecided():
    # floor(exp(1)) = 2 from a ball; floor(exp(0) + 1) = 2 exactly; a ball on the jump stays undecided
    assert verify.evaluate("lambda x: floor(exp(x))", ["1"], number="ball").values[0].contains(2)
    with pytest.raises(Undecided):
        verify.evaluate("lambda x: floor(log(exp(x)))", ["1"], number="ball")
    with pytest.raises(K.CannotDecide):
        K.step("floor", arb(1, 0.5))


def test_steps_are_discontinuous_and_continuity_claims_refuse_them():
    P = verify.parse("lambda x: floor(x) + relu(x)")
    assert discontinuous_eqns(P) == [(0, "floor")]
    assert not verify.program.prims.PRIMITIVES["floor"].continuous
    for claim in (lambda: verify.clarke(P, [0]), lambda: verify.segment_partition(P, [0], [1]),
                  lambda: verify.integral_identity(P, [0], [1]), lambda: verify.certify_differentiable(P, [1])):
        with pytest.raises(verify.InputError, match="floor.*discontinuous"):
            claim()


def test_atan_values_and_derivative():
    g = verify.grad("lambda x: atan(x)", ["1/2"], number="ball")
    with ctx.workprec(300):
        assert g.values[0].contains(arb(Q(1, 2)).atan()) and g.gradient[0].contains(arb(Q(4, 5)))
    assert g.values[0].rad() < 1e-30 and g.gradient[0].rad() < 1e-30
    assert verify.grad("lambda x: atan(x) * x", [0]).values == [0]          # atan(0) = 0 exactly
    assert verify.grad("lambda x: atan(x)", [0]).gradient == [1]


@pytest.mark.parametrize("k, tie, at, want", [
    (1, "split", [1, 1, 0], [Q(1, 2), Q(1, 2), 0]), (1, "first", [1, 1, 0], [1, 0, 0]),
    (1, "last", [1, 1, 0], [0, 1, 0]), (0, "split", [1, 1, 0], [0, 0, 1]), (2, "split", [1, 1, 1], [Q(1, 3)] * 3),
    (1, "unspecified", [3, 1, 2], [0, 0, 1]), (0, "first", [2, 2, 5], [1, 0, 0])])
def test_kth_tie_rules(k, tie, at, want):
    src = f"lambda a, b, c: kth(a, b, c, k={k}, tie='{tie}')"
    for mode in ("forward", "backward"):
        assert verify.grad(src, at, mode=mode).gradient == want
    P = verify.parse(src)
    sel = K.choose("kth", dict(P.eqns[0].params), 3,
                   [int(np.sign(a - b)) for i, a in enumerate(at) for b in at[i + 1:]])
    assert list(sel[0][0]) == [Q(w) for w in want]


def test_unspecified_ties_refuse_at_a_tie_only():
    with pytest.raises(Undecidable, match="not determined"):
        verify.grad("lambda a, b, c: kth(a, b, c, k=1, tie='unspecified')", [1, 1, 0])
    with pytest.raises(Undecidable, match="not determined"):
        verify.grad("def f(a, b):\n    x, y = sort(a, b, ties='unspecified')\n    return x + 2 * y\n", [1, 1])
    assert verify.grad("def f(a, b):\n    x, y = sort(a, b, ties='unspecified')\n    return x + 2 * y\n",
                       [2, 1]).gradient == [2, 1]
    with pytest.raises(verify.ParseError, match="0 <= k < 3"):
        verify.parse("lambda a, b, c: kth(a, b, c, k=3)")


def _program(prim, x_shape, params, arrays=None):
    b = Builder("f", ["x"], [x_shape], Arrays(arrays or {}))
    (o,) = b.emit(prim, [0], params)
    s = b.emit("sum", [o], {"axes": tuple(range(len(b.shape_of(o))))})[0]
    return b.finish([s])


def _tensor_checks(P, x):
    """Interpreter = scalarisation (values, patterns, gradients), interpreter = checker kernel; returns the
    gradient."""
    Sc = scalarize(P)
    xs = T.coerce_inputs(P, [x])
    tg = T.grad(P, [x])
    sg = verify.grad(Sc.program, Sc.flat_point(xs))
    assert Sc.to_scalar_pattern(tg.pattern) == tuple(sg.pattern)
    assert [tg.values[0]] == list(sg.values)
    assert np.ravel(tg.gradient[0]).tolist() == list(sg.gradient)
    run = TK.Run(P, [TK.exact(a) for a in xs])
    assert TK.flat_values(run.outputs()[0]) == [tg.values[0]]
    (ck,) = run.gradient([0])
    assert TK.flat_values(ck) == np.ravel(tg.gradient[0]).tolist()
    return np.ravel(tg.gradient[0]).tolist()


def test_kth_axis_is_median_with_torch_ties():
    x = ExactArray.from_any([[1, 0, 1, 2, 1], [3, 1, 2, 5, 4]])
    P = _program("kth_axis", (2, 5), {"axes": (1,), "k": 2, "tie": "split"})
    g = _tensor_checks(P, x)
    assert g == [Q(1, 3), 0, Q(1, 3), 0, Q(1, 3), 1, 0, 0, 0, 0]       # torch.median: 1/3 to each tied 1


def test_window_max_pools_any_window_and_agrees_with_the_checker():
    x = ExactArray.from_any([[2, 1, 2, 0, 2, 3]])
    win = ExactArray(np.array([[0, 1, -1], [0, 1, 2], [2, 3, 4], [3, 4, 5]], dtype=object), 1)
    for tie, want in (("first", [2, 0, 1, 0, 0, 1]), ("last", [1, 0, 1, 0, 1, 1]),
                      ("split", [Q(3, 2), 0, 1, 0, Q(1, 2), 1])):
        P = _program("window_max", (1, 6), {"windows": Arr("w"), "tie": tie}, {"w": win})
        assert _tensor_checks(P, x) == want, tie
    P = _program("window_min", (1, 6), {"windows": Arr("w"), "tie": "first"}, {"w": win})
    assert _tensor_checks(P, x) == [0, 2, 0, 2, 0, 0]
    bad = ExactArray(np.array([[0, -1], [1, 2]], dtype=object), 1)
    with pytest.raises(ProgramError, match="at least two"):
        _program("window_max", (1, 6), {"windows": Arr("w")}, {"w": bad})


@pytest.mark.parametrize("at, want", [([1, 0, 1, 2, 1], 4), ([3, 1, 3, 1, 2], 3), ([2, -1, 5, 0], 1),
                                      ([2, 2, 7, 7], 1)])
def test_mode_is_the_last_occurrence_of_the_smallest_most_frequent_value(at, want):
    """torch.mode's rule (measured in tests/test_import_torch_ops.py): the interpreter and the checker's kernel."""
    src = "lambda " + ", ".join(f"x{i}" for i in range(len(at))) + ": mode(" + \
        ", ".join(f"x{i}" for i in range(len(at))) + ")"
    g = verify.grad(src, at)
    assert g.gradient == [1 if i == want else 0 for i in range(len(at))]
    signs = [int(np.sign(a - b)) for i, a in enumerate(at) for b in at[i + 1:]]
    assert list(K.choose("mode", {"tie": "last"}, len(at), signs)[0][0]) == [Q(int(i == want)) for i in range(len(at))]
    assert K.nonsmooth_value("mode", [Q(v) for v in at], {}) == [Q(at[want])]
    x = ExactArray.from_any([at, at[::-1]])
    _tensor_checks(_program("mode_axis", (2, len(at)), {"axis": 1}), x)
    if len(set(at)) < len(at):
        with pytest.raises(Undecidable):
            verify.grad(src[:-1] + ", tie='unspecified')", at)


def test_steps_on_tensors_agree_with_the_checker():
    x = ExactArray.from_any([[Q(5, 2), Q(-5, 2), 3, Q(-1, 3)]])
    for prim, want in (("floor", [2, -3, 3, -1]), ("ceil", [3, -2, 3, 0]), ("round", [2, -2, 3, 0]),
                       ("trunc", [2, -2, 3, 0])):
        b = Builder("f", ["x"], [(1, 4)], Arrays({}))
        (o,) = b.emit(prim, [0], {})
        (m,) = b.emit("mul", [o, 0], {})
        s = b.emit("sum", [m], {"axes": (0, 1)})[0]
        P = b.finish([s])
        g = _tensor_checks(P, x)
        assert g == want, prim                   # d/dx sum(step(x) * x) = step(x): the step's own derivative is 0
