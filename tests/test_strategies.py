"""The public hypothesis strategies: programs valid by construction (no filtering, defined everywhere), points
biased toward kinks (and constructed exactly on them), segments and curves; and shrinking to small programs,
checked in the style of hypothesis's own ``minimal(...)`` tests."""
from flint import fmpq
from hypothesis import HealthCheck, find, given, settings, strategies as st

import verify
from verify.interpret.evaluate import compiled, run
from verify.numbers import get_system
from verify.program.prims import affine
from verify.strategies import (ALL, NONSMOOTH, RATIONAL_SMOOTH, curves, kink_points, on_kink, points, programs,
                               segments)

EXACT = get_system("exact")


def minimal(strategy, condition=lambda x: True, max_examples=2000):
    """The example hypothesis shrinks to, as in hypothesis's tests/common/debug.py (deterministic here)."""
    return find(strategy, condition, settings=settings(database=None, max_examples=max_examples, derandomize=True,
                                                       suppress_health_check=list(HealthCheck)))


def tied_switches(P, x, convention="torch"):
    """The number of switching functions (that depend on their inputs) exactly zero at x."""
    r = run(P, EXACT, x, convention)
    return sum(1 for s in compiled(P, convention) if s.sel is not None for t, c in s.switches
               if t and EXACT.sign(affine(EXACT, t, c, r.args[s.k])) == 0)


def has(prim):
    return lambda P: any(e.prim == prim for e in P.eqns)


# ------------------------------------------------------------------------------- valid by construction

@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=100)   # filter_too_much stays armed
@given(st.data())
def test_programs_are_valid_and_defined_everywhere(data):
    n = data.draw(st.integers(1, 3))
    P = data.draw(programs(n_inputs=n, max_eqns=10, max_outputs=3))
    assert verify.parse(verify.to_text(P)) == P
    assert 1 <= len([e for e in P.eqns]) and 1 <= P.n_outputs <= 3 and P.n_inputs == n
    x = data.draw(points(P))
    try:
        verify.evaluate(P, x)                 # never a DomainError: domains hold by construction
    except verify.Undecided:
        pass


@given(programs(primitives=("relu", "add"), rational_only=True, kink_params=False))
def test_primitives_rational_only_and_kink_params_are_honoured(P):
    assert {e.prim for e in P.eqns} <= {"relu", "add", "mul"}   # mul: only from 1 + u*u (not drawn here)
    assert all(not e.params for e in P.eqns if e.prim == "relu")


@given(programs(rational_only=True, max_eqns=12))
def test_rational_only_stays_exact(P):
    assert all(e.prim in RATIONAL_SMOOTH or e.prim in NONSMOOTH for e in P.eqns)
    assert verify.evaluate(P, [fmpq(1, 3), fmpq(-2)]).exact


# ------------------------------------------------------------------------------- kinks

def test_kink_points_sit_exactly_on_a_kink_of_a_piecewise_linear_program():
    P = verify.parse("lambda x, y: relu(3 * x + 5 * y - 1/7) + max(x, 2 * y + 1/11)")

    @settings(max_examples=60)
    @given(kink_points(P))
    def check(x):
        assert tied_switches(P, x) >= 1
    check()


def test_on_kink_is_exact_or_says_no():
    P = verify.parse("lambda x: relu(x * x - 4)")      # curved: Newton's iterates never land exactly on 2
    assert on_kink(P, [fmpq(3, 2)], 2, 0, steps=8) is None
    Q = verify.parse("lambda x: relu(abs(x) - 1/3) + x")   # affine on each side: lands in one step
    assert on_kink(Q, [fmpq(-2)], 2, 0) == [fmpq(-1, 3)]


def test_points_are_biased_toward_kinks():
    hits = []

    @settings(max_examples=150, derandomize=True, database=None)
    @given(st.data())
    def count(data):
        P = data.draw(programs(n_inputs=2, primitives=NONSMOOTH + ("add", "sub", "mul"), rational_only=True))
        hits.append(tied_switches(P, data.draw(points(P))) > 0)
    count()
    assert sum(hits) >= 0.4 * len(hits), f"only {sum(hits)} of {len(hits)} points sit on a kink"


@given(st.data())
def test_segments_and_curves(data):
    P = data.draw(programs(n_inputs=2, max_eqns=4, rational_only=True))
    x, y = data.draw(segments(P))
    assert len(x) == len(y) == 2 and all(isinstance(q, fmpq) for q in x + y)
    c = data.draw(curves(P))
    assert 2 <= len(c) <= 4 and all(len(v) == 2 for v in c)


def test_some_segments_cross_a_kink_at_their_midpoint():
    P = verify.parse("lambda x, y: abs(x - y) + relu(x + 3 * y - 1/3)")
    x, y = minimal(segments(P), lambda s: tied_switches(P, [(a + b) / 2 for a, b in zip(*s)]) > 0
                   and s[0] != s[1])
    assert tied_switches(P, [(a + b) / 2 for a, b in zip(x, y)]) > 0


# ------------------------------------------------------------------------------- shrinking

def test_shrinks_to_one_relu():
    P = minimal(programs(), has("relu"))
    assert verify.to_text(P) == "def f(x0, x1):\n    v1 = relu(x0)\n    return v1\n"


def test_shrinks_to_one_sort_of_two():
    P = minimal(programs(), has("sort"))
    assert [e.prim for e in P.eqns] == ["sort"] and len(P.eqns[0].ins) == 2


def test_shrinks_to_the_primitive_whose_convention_differs():
    """The smallest program where torch and jax disagree at 0 is abs (abs'(0) = 0 against 1)."""
    def differs(P):
        g = [verify.grad(P, [0, 0], convention=c).jacobian for c in ("torch", "jax")]
        return g[0] != g[1]
    P = minimal(programs(), differs)
    assert [e.prim for e in P.eqns] == ["abs"]


def test_shrinks_compound_conditions_to_one_equation_each():
    P = minimal(programs(), lambda P: has("max")(P) and has("exp")(P))
    assert sorted(e.prim for e in P.eqns) == ["exp", "max"]
    P = minimal(programs(max_outputs=2), lambda P: has("where")(P) and P.n_outputs == 2)
    assert [e.prim for e in P.eqns] == ["where"]


def test_shrinks_programs_with_three_equations_to_three():
    assert len(minimal(programs(), lambda P: len(P.eqns) >= 3).eqns) == 3


@given(st.data())
def test_every_primitive_can_be_drawn_alone(data):
    prim = data.draw(st.sampled_from(ALL))
    P = data.draw(programs(primitives=(prim,), max_eqns=3))
    assert prim in {e.prim for e in P.eqns} <= {prim, "mul", "add"}   # mul, add: the 1 + u*u of domains
