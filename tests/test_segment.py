"""Claim 1 (segment partitions), on polynomial curves too, and Proposition 3 in practice
(grad --certify-differentiable).  Oracles: exact rationals, algebraic facts checked in rationals (lo^2 < 1/2 <
hi^2), arb's own log 2 at 300 bits, and the program's own evaluator on a fine rational grid."""
import json

import pytest
from flint import arb, ctx, fmpq, fmpq_poly
from hypothesis import assume, event, given, settings, strategies as st

import verify
from verify.certify.algebraic import Alg
from verify.certify.differentiable import certify_differentiable
from verify.certify.segment import segment_partition
from verify.cli import main
from verify.errors import DomainError, InputError, Undecided
from verify.strategies.segment import generic_programs, pl_programs, segments
from verify.truth import Verdict

from helpers import arb_q_bounds

TOL = fmpq(1, 2 ** 60)


def Q(*a):
    return fmpq(*a)


def enclosure(b):
    """Exact rational (lo, hi) of a breakpoint: itself, its isolating interval, or its enclosure."""
    if isinstance(b.t, fmpq):
        return b.t, b.t
    if isinstance(b.t, Alg):
        return b.t.lo, b.t.hi
    return b.t


def log2_bounds():
    with ctx.workprec(300):
        return arb_q_bounds(arb(2).log())


# ------------------------------------------------------------------------------------- the must-shows

def test_two_relus_have_exact_breakpoints_one_third_and_two_thirds():
    part = segment_partition("lambda t: relu(t - 1/3) - relu(t - 2/3)", 0, 1)
    assert [b.t for b in part.breakpoints] == [0, Q(1, 3), Q(2, 3), 1]
    assert all(isinstance(b.t, fmpq) for b in part.breakpoints) and part.exact and part.complete
    assert [b.pattern for b in part.breakpoints] == [(0, 0), (0, 0), (1, 0), (1, 1)]
    assert [p.pattern for p in part.pieces] == [(0, 0), (1, 0), (1, 1)]
    out = part.json()
    assert out["breakpoints"] == ["0", "1/3", "2/3", "1"] and out["pieces"][1] == {"interval": ["1/3", "2/3"],
                                                                                   "pattern": [1, 0]}


def test_sqrt2_over_2_is_an_exact_algebraic_breakpoint():
    part = segment_partition("lambda x: relu(x*x - 1/2)", 0, 1)
    assert len(part.breakpoints) == 3
    a = part.breakpoints[1].t
    assert isinstance(a, Alg) and fmpq_poly(a.q) == fmpq_poly([-1, 0, 2])
    assert a.lo ** 2 < Q(1, 2) < a.hi ** 2 and 0 < a.lo < a.hi and a.hi - a.lo < TOL
    j = part.json()["breakpoints"][1]
    assert j["poly"] == ["-1", "0", "2"] and Q(int(j["lo"][2:12]), 10 ** 10) < a.lo
    assert [p.pattern for p in part.pieces] == [(0,), (1,)]


def test_log2_is_enclosed_by_interval_newton():
    part = segment_partition("lambda t: relu(exp(t) - 2)", 0, 1)
    assert part.method == "ball" and part.complete and len(part.breakpoints) == 3
    b = part.breakpoints[1]
    lo, hi = enclosure(b)
    llo, lhi = log2_bounds()
    assert b.status == "simple" and lo < llo and lhi < hi and hi - lo < TOL
    assert b.pattern == (0,) and [p.pattern for p in part.pieces] == [(0,), (1,)]


def test_double_root_one_half_is_exact():
    part = segment_partition("lambda t: relu((t - 1/2)**2)", 0, 1)
    assert [b.t for b in part.breakpoints] == [0, Q(1, 2), 1]
    assert part.breakpoints[1].pattern == (0,) and [p.pattern for p in part.pieces] == [(1,), (1,)]


def test_double_root_at_log2_is_an_enclosure_never_a_constant_pattern():
    try:
        part = segment_partition("lambda t: relu((exp(t) - 2)**2)", 0, 1)
    except Undecided:
        return
    llo, lhi = log2_bounds()
    assert not part.complete
    inside = [b for b in part.breakpoints if enclosure(b)[0] <= llo and lhi <= enclosure(b)[1]]
    assert len(inside) == 1 and inside[0].status == "cluster" and inside[0].pattern is None
    lo, hi = enclosure(inside[0])
    assert hi - lo < TOL
    for p in part.pieces:                    # no piece claims a pattern across log 2
        left, right = enclosure(part.breakpoints[p.lo]), enclosure(part.breakpoints[p.hi])
        assert not (left[1] < llo and lhi < right[0])


def test_polynomial_curve_breakpoint_is_the_cube_root_of_a_quarter():
    part = segment_partition("lambda x, y: relu(x*y - 1/4)", curve="0,0; 1,0; 0,1")   # gamma(t) = (t, t^2)
    a = part.breakpoints[1].t
    assert isinstance(a, Alg) and 4 * a.lo ** 3 < 1 < 4 * a.hi ** 3 and a.hi - a.lo < TOL
    assert part.json()["curve"] == [["0", "0"], ["1", "0"], ["0", "1"]]


def test_curve_with_exp_and_the_segment_as_a_degree_one_curve():
    P = verify.parse("lambda x, y: relu(exp(x) - 1 - y)")
    part = segment_partition(P, curve="0,1/2; 1,0; 0,1/2")       # gamma(t) = (t, 1/2 + t^2/2)
    assert part.complete and len(part.breakpoints) == 3
    seg = segment_partition("lambda t: relu(t - 1/3) - relu(t - 2/3)", curve="0; 1")
    assert [b.t for b in seg.breakpoints] == [0, Q(1, 3), Q(2, 3), 1]


def test_identically_zero_switches_are_exact_ties_in_rational_programs():
    part = segment_partition("lambda t: max(t, t) + relu(t - t)", -1, 1)
    assert [b.t for b in part.breakpoints] == [0, 1] and part.pieces[0].pattern == (2, 0)
    P = verify.parse("def f(t):\n    u = t * 2\n    v = u - t - t\n    return relu(v) + where(v > 0, t, 1)\n")
    assert len(segment_partition(P, -1, 1).breakpoints) == 2


def test_analytic_identically_zero_switch_is_undecided_never_a_guess():
    with pytest.raises(Undecided, match="may vanish identically"):
        segment_partition("lambda t: relu(log(exp(t)) - t)", 0, 1)      # zero by nonlinear algebra only


def test_analytic_switch_zero_by_a_linear_identity_is_an_exact_tie():
    part = segment_partition("lambda t: relu(exp(t) - exp(t)) + sin(t)", 0, 1)
    assert part.complete and [b.t for b in part.breakpoints] == [0, 1] and part.pieces[0].pattern == (0,)
    assert all([(e.pos, e.j, e.sign, e.how, e.data) for e in c.exact] == [(0, 0, 0, "form", (0, ()))]
               for c in part.cells)


def test_mixed_programs_decide_rational_switches_exactly():
    # issue 9: x0 - clamp(x0) is exactly 0 on [0, 1/2], whatever cos does next to it
    part = segment_partition("lambda x0, x1: min(x0, clamp(x0, lo=0, hi=1)) + cos(x1)", [-2, 0], [Q(1, 2), 1])
    assert part.complete and part.method == "ball"
    assert [b.t for b in part.breakpoints] == [0, Q(4, 5), 1] and [b.status for b in part.breakpoints] == ["exact"] * 3
    assert [p.pattern for p in part.pieces] == [(1, 0), (0, 2)]
    # an algebraic root of a rational switch next to transcendental ones: a certified simple cell
    part = segment_partition("lambda x: relu(x * x - 2) + sin(x)", -1, 2)
    assert part.complete and [b.status for b in part.breakpoints] == ["exact", "simple", "exact"]
    lo, hi = part.breakpoints[1].t            # t = (1 + sqrt(2)) / 3: x = -1 + 3t = sqrt(2)
    assert 0 < 3 * lo - 1 and (3 * lo - 1) ** 2 < 2 < (3 * hi - 1) ** 2 and hi - lo < Q(1, 2 ** 60)


@pytest.mark.parametrize("x, y", [(-1, 0), (0, -1)])
def test_a_tangency_at_an_end_of_the_segment_is_decided_by_its_germ(x, y):
    part = segment_partition("lambda x: max(exp(clamp(x, lo=0, hi=1)), cos(tanh(x)))", x, y)
    assert part.complete and [b.t for b in part.breakpoints] == [0, 1] and [p.pattern for p in part.pieces] == [(1, 0)]
    assert any(e.how == "germ" for c in part.cells for e in c.exact)


def test_rational_breakpoint_of_an_analytic_program_found_exactly_when_dyadic():
    part = segment_partition("lambda t: relu(t - 1/2) + exp(t)", 0, 1)
    assert [b.t for b in part.breakpoints] == [0, Q(1, 2), 1] and part.breakpoints[1].status == "exact"


@pytest.mark.parametrize("src, a, b, err", [
    ("lambda x: log(x)", -1, 1, DomainError),
    ("lambda x: 1 / x", -1, 1, DomainError),
    ("lambda x: 1 / relu(x - 1/2)", 0, 1, DomainError),
])
def test_not_defined_on_the_segment(src, a, b, err):
    with pytest.raises(err):
        segment_partition(src, a, b)


@pytest.mark.parametrize("kw, msg", [
    (dict(x="0,1", y="1"), "--from has 2"),
    (dict(x="0"), "both ends"),
    (dict(x="0", y="1", curve="0; 1"), "not both"),
    (dict(curve="0,0; 1,1"), "2 coordinate"),
    (dict(curve="0;;1"), "malformed"),
    (dict(x="0", y="1", tol=0), "tol=0"),
    (dict(x="0", y="1", method="exact", program="lambda t: relu(exp(t))"), "exact method needs"),
    (dict(x="0", y="1", method="newton"), "method 'newton'"),
])
def test_bad_input_is_one_clear_error(kw, msg):
    prog = kw.pop("program", "lambda t: relu(t)")
    with pytest.raises(InputError, match=msg):
        segment_partition(prog, **kw)


# ------------------------------------------------------------------------------------- properties

def grid_pattern(P, x, y, t):
    return verify.evaluate(P, [a + t * (b - a) for a, b in zip(x, y)]).pattern


def locate(part, t):
    """The pattern the partition states at the rational t (exact breakpoints only)."""
    for b in part.breakpoints:
        if b.t == t:
            return b.pattern
    for p in part.pieces:
        if part.breakpoints[p.lo].t < t < part.breakpoints[p.hi].t:
            return p.pattern
    raise AssertionError(f"{t} is not covered")


@given(st.data())
def test_no_missed_breakpoints_on_piecewise_linear_programs(data):
    """The partition agrees with an independent brute-force evaluation on a fine rational grid: the pattern
    the program's evaluator chooses at every grid point is the one the partition states there, and every
    breakpoint is a real change of pattern."""
    P = data.draw(pl_programs(n_inputs=2))
    x, y = data.draw(segments(2))
    part = segment_partition(P, x, y)
    N = 240
    for k in range(N + 1):
        t = Q(k, N)
        assert grid_pattern(P, x, y, t) == locate(part, t), (verify.to_text(P), x, y, t)
    for i, b in enumerate(part.breakpoints[1:-1], 1):
        assert not (part.pieces[i - 1].pattern == b.pattern == part.pieces[i].pattern)
        assert grid_pattern(P, x, y, b.t) == b.pattern


@given(st.data())
def test_ball_method_encloses_the_exact_breakpoints(data):
    """On generic rational programs the ball method (interval Newton) and the exact walk find the same
    breakpoints: each ball holds the exact one, and the patterns agree."""
    P = data.draw(generic_programs(n_inputs=1, smooth=()))
    x, y = data.draw(segments(1))
    exact = segment_partition(P, x, y, method="exact")
    ball = segment_partition(P, x, y, method="ball")
    assume(ball.complete)
    assert len(exact.breakpoints) == len(ball.breakpoints)
    for e, b in zip(exact.breakpoints, ball.breakpoints):
        (elo, ehi), (blo, bhi) = enclosure(e), enclosure(b)
        assert blo <= elo and ehi <= bhi and e.pattern == b.pattern
    assert [p.pattern for p in exact.pieces] == [p.pattern for p in ball.pieces]


@settings(max_examples=80)
@given(st.data())
def test_analytic_partitions_agree_with_the_evaluator_between_breakpoints(data):
    """Where the partition is complete (a rare honest cluster is not), the evaluator agrees with it."""
    P = data.draw(generic_programs(n_inputs=2))
    x, y = data.draw(segments(2))
    part = segment_partition(P, x, y)
    event(f"complete {part.complete}")
    assume(part.complete)
    for p in part.pieces:
        lo, hi = enclosure(part.breakpoints[p.lo])[1], enclosure(part.breakpoints[p.hi])[0]
        for t in (lo + (hi - lo) / 3, (lo + hi) / 2):
            assert grid_pattern(P, x, y, t) == p.pattern
    for b in part.breakpoints:
        if b.status == "exact":
            assert grid_pattern(P, x, y, b.t) == b.pattern


# ------------------------------------------------------------------------------------------- the CLI

def test_cli_segment_json_and_exit_codes(capsys):
    assert main(["segment", "lambda t: relu(t - 1/3) - relu(t - 2/3)", "--from", "0", "--to", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["breakpoints"] == ["0", "1/3", "2/3", "1"] and {"pieces", "breakpoint_patterns"} <= set(out)
    assert main(["segment", "lambda t: relu((exp(t) - 2)**2)", "--from", "0", "--to", "1"]) == 3
    assert "UNDECIDED" in capsys.readouterr().out
    assert main(["segment", "lambda x, y: relu(x*y - 1/4)", "--curve", "0,0; 1,0; 0,1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["breakpoints"][1]["poly"] == ["-1", "0", "0", "4"]
    assert main(["segment", "lambda x: log(x)", "--from", "-1", "--to", "1"]) == 2
    assert main(["segment", "lambda x: relu(x)", "--from", "0"]) == 2
    assert main(["segment", "lambda t: relu(log(exp(t)) - t)", "--from", "0", "--to", "1"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "Traceback" not in err and "got 0" in err


# ------------------------------------------------------------------------- Proposition 3 in practice

def test_differentiability_is_proved_where_every_switch_is_nonzero():
    d = certify_differentiable("lambda x, y: max(x, y) + relu(x - y) + x * y", "1,2")
    assert d.verdict is Verdict.PROVED and d.gradient == [2, 2]
    assert d.gradient == verify.grad("lambda x, y: max(x, y) + relu(x - y) + x * y", "1,2").gradient
    d = certify_differentiable("lambda t: relu(exp(t) - 2)", "1")
    assert d.verdict is Verdict.PROVED and d.signs == [[1]]


def test_a_zero_switch_is_named_not_called_nondifferentiable():
    d = certify_differentiable("lambda x, y: max(x, y) + relu(x - y)", "1,1")
    assert d.verdict is Verdict.UNDECIDED and d.blocking == (0, 0, 0) and "x - y is 0" in d.reason
    d = certify_differentiable("lambda t: relu(t) * relu(t)", "0")       # differentiable, but not provable here
    assert d.verdict is Verdict.UNDECIDED and "may or may not" in d.reason
    d = certify_differentiable("lambda t: relu(log(exp(t)) - t)", "1/3")
    assert d.verdict is Verdict.UNDECIDED and "4096 bits" in d.reason


def test_cli_certify_differentiable(capsys, tmp_path):
    assert main(["grad", "lambda x, y: max(x, y) + relu(x - y)", "--at", "1,2", "--certify-differentiable"]) == 0
    assert "PROVED" in capsys.readouterr().out
    assert main(["grad", "lambda x, y: max(x, y) + relu(x - y)", "--at", "1,1", "--certify-differentiable",
                 "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["gradient"] == ["1/2", "1/2"] and out["differentiable"]["verdict"] == "UNDECIDED"
    assert "x - y" in out["differentiable"]["reason"]
    cert = tmp_path / "d.json"
    assert main(["grad", "lambda t: relu(exp(t) - 2)", "--at", "1", "--certify-differentiable",
                 "--certificate", str(cert)]) == 0
    assert main(["check", str(cert)]) == 0
