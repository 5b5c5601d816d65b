"""Issue 21: certificates carry every decision the library makes, so ``--certificate`` never changes an answer;
the spurious UNDECIDEDs of shared switching functions and coinciding simple roots are decided."""
import json

import pytest
from flint import arb, ctx, fmpq
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import verify
from verify import strategies as S
from verify.certify import segment_partition
from verify.certify.integral import integral_certificate, integral_identity
from verify.certify.segment import segment_certificate
from verify.checker import check
from verify.cli import main
from verify.strategies.mixed import mixed_programs

Q = fmpq


def _enclosing(b, value):
    """The simple breakpoint b's enclosure holds the real number value() (computed at 300 bits)."""
    lo, hi = b.t
    with ctx.workprec(300):
        return arb(lo) < value() < arb(hi) and hi - lo < Q(1, 2 ** 60)


def _t(x0, x1, x):
    return (x - x0) / (x1 - x0)


def _pi():
    with ctx.workprec(300):
        return arb.pi()


def _dottie():
    """The root of x = cos(x), by interval Newton from a ball around it (arb at the caller's precision)."""
    d = arb("0.7390851332151606416553120876738734040134", "1e-30")
    for _ in range(8):
        m = arb(d.mid())
        d = (m - (m - m.cos()) / (1 + d.sin())).intersection(d)
    return d


# program, segment, expected breakpoints (a rational, or the real number inside a simple cell), piece patterns
DECIDED = [
    ("lambda x: relu(x) + relu(tanh(x))", "-1", "2", [Q(0), Q(1, 3), Q(1)], [(0, 0), (1, 1)]),
    ("lambda x: relu(sin(x)) + relu(x)", "-1", "1/2", [Q(0), Q(2, 3), Q(1)], [(0, 0), (1, 1)]),
    ("lambda x: min(tanh(x), 1/2) + max(tanh(x), 1/2)", "-2", "1",
     [Q(0), lambda: _t(-2, 1, arb(3).sqrt().log()), Q(1)], [(0, 1), (1, 0)]),        # atanh(1/2) = log(3) / 2
    ("lambda x: max(cos(x), relu(cos(x)))", "1", "3", [Q(0), lambda: _t(1, 3, _pi() / 2), Q(1)], [(1, 2), (0, 1)]),
    ("lambda x: relu(leaky_relu(cos(x)))", "1", "2", [Q(0), lambda: _t(1, 2, _pi() / 2), Q(1)], [(1, 1), (0, 0)]),
    ("lambda x: max(max(x, cos(x)), cos(x))", "-2", "2", [Q(0), lambda: _t(-2, 2, _dottie()), Q(1)],
     [(1, 2), (0, 0)]),
    ("lambda x: leaky_relu(sin(clamp(x, lo=0, hi=1)))", "-1", "2", [Q(0), Q(1, 3), Q(2, 3), Q(1)],
     [(1, 0), (0, 1), (2, 1)]),
]


@pytest.mark.parametrize("src, a, b, bps, pats", DECIDED)
def test_coinciding_roots_and_shared_switching_functions_are_decided(src, a, b, bps, pats):
    part = segment_partition(src, a, b)
    assert part.complete and part.method == "ball"
    assert len(part.breakpoints) == len(bps) and [p.pattern for p in part.pieces] == pats
    for got, want in zip(part.breakpoints, bps):
        if isinstance(want, fmpq):
            assert got.status == "exact" and got.t == want
        else:
            assert got.status == "simple" and _enclosing(got, want)
    cert = json.loads(json.dumps(segment_certificate(part)))
    check(cert)
    assert cert["verdict"] == "PROVED" and cert["result"] == part.json()
    res = integral_identity(src, a, b)
    assert res.verdict is verify.Verdict.PROVED
    check(json.loads(json.dumps(integral_certificate(res))))


@pytest.mark.parametrize("args", [
    ["segment", "lambda x: min(x, clamp(x, lo=0, hi=1)) + cos(x)", "--from=-2", "--to=1/2"],
    ["segment", "lambda x: max(cos(x), relu(cos(x)))", "--from", "0", "--to", "1"],
    ["integral", "lambda x: max(cos(x), relu(cos(x)))", "--from", "0", "--to", "1"],
    ["segment", "lambda x: relu(x) + relu(tanh(x))", "--from=-1", "--to=2", "--json"],
])
def test_the_certificate_flag_never_changes_the_answer(args, tmp_path, capsys):
    assert main(args) == 0
    plain = capsys.readouterr().out
    path = tmp_path / "c.json"
    assert main(args + ["--certificate", str(path)]) == 0
    assert capsys.readouterr().out == plain
    assert main(["check", str(path)]) == 0


def test_a_genuine_double_root_stays_undecided_with_its_reason(capsys):
    part = segment_partition("lambda t: relu((exp(t) - 2)**2)", 0, 1)        # a double root at log 2
    assert not part.complete and [b.status for b in part.breakpoints] == ["exact", "cluster", "exact"]
    lo, hi = part.breakpoints[1].t
    with ctx.workprec(200):
        assert arb(lo) < arb(2).log() < arb(hi)
    check(json.loads(json.dumps(segment_certificate(part))))
    assert main(["segment", "lambda t: relu((exp(t) - 2)**2)", "--from", "0", "--to", "1"]) == 3
    assert "may have a multiple root there" in capsys.readouterr().out


# ------------------------------------------------------------- random mixed programs (a fixed sample)

SAMPLE = 150
seen = {"complete": 0, "incomplete": 0}


@settings(max_examples=SAMPLE, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(mixed_programs(), st.data())
def _mixed_segment(P, data):
    x, y = data.draw(S.segments(P))
    if x == y:
        return
    try:
        part = segment_partition(P, x, y, method="ball")
    except verify.DomainError:
        return
    except verify.Undecided:
        seen["incomplete"] += 1
        return
    if not part.complete:
        seen["incomplete"] += 1
        return
    seen["complete"] += 1
    cert = json.loads(json.dumps(segment_certificate(part)))      # every complete one is written and checks
    check(cert)
    assert cert["verdict"] == "PROVED" and cert["result"] == part.json()


def test_mixed_ball_segments_are_undecided_at_most_three_percent_and_every_complete_one_checks():
    _mixed_segment()
    total = seen["complete"] + seen["incomplete"]
    assert total > SAMPLE // 2 and seen["incomplete"] <= 0.03 * total, seen


# ----------------------------------------------- the certificate flag never changes an answer (a property)

from verify.certify import critical, index_set  # noqa: E402
from verify.certify.certs import critical_certificate, index_certificate  # noqa: E402
from verify.certify.differentiable import certify_differentiable, differentiable_certificate  # noqa: E402
from verify.strategies.identities import identity_programs  # noqa: E402
from verify.truth import FALSE, TRUE  # noqa: E402

PROGRAMS = st.one_of(mixed_programs(max_eqns=8), identity_programs())
GIVE_UP = (verify.Undecided, verify.DomainError, verify.InputError)


def _checked(cert):
    cert = json.loads(json.dumps(cert))
    check(cert)
    return cert


@given(PROGRAMS, st.data())
def test_certificates_at_a_point_state_the_answer_and_check(P, data):
    x = data.draw(S.points(P))
    conv = data.draw(st.sampled_from(["torch", "jax", "tf"]))
    for scope in ("local", "global"):
        try:
            iset = index_set(P, x, scope=scope, convention=conv, max_patterns=256)
        except GIVE_UP:
            continue
        cert = _checked(index_certificate(iset))
        assert cert["verdict"] == ("PROVED" if iset.decided else "UNDECIDED")
        assert cert["result"]["count"] == iset.count and len(cert["result"]["patterns"]) == len(iset.patterns)
    try:
        c = critical(P, x, convention=conv)
    except GIVE_UP:
        c = None
    if c is not None:
        cert = _checked(critical_certificate(c))
        truth = {TRUE: True, FALSE: False}
        assert cert["result"]["selection_critical"] == truth.get(c.selection.truth)
        assert cert["result"]["clarke_critical"] == truth.get(c.clarke_critical.truth)
        assert (cert["result"]["clarke"] is None) == (c.clarke is None)
    try:
        d = certify_differentiable(P, x, convention=conv)
    except GIVE_UP:
        return
    assert _checked(differentiable_certificate(d))["verdict"] == d.verdict.name


@given(PROGRAMS, st.data())
def test_certificates_of_segments_and_integrals_state_the_answer_and_check(P, data):
    x, y = data.draw(S.segments(P))
    if x == y:
        return
    conv = data.draw(st.sampled_from(["torch", "jax", "tf"]))
    try:
        part = segment_partition(P, x, y, convention=conv)
    except GIVE_UP:
        return
    assert _checked(segment_certificate(part))["result"] == part.json()
    if P.n_outputs != 1:
        return
    try:
        res = integral_identity(P, x, y, convention=conv)
    except GIVE_UP:
        return
    assert _checked(integral_certificate(res))["result"] == res.json()


def test_index_sets_above_4096_patterns_are_certified(tmp_path):
    """I(x) of 2^13 patterns: a scalar certificate states the per-equation candidates, the count and the first
    cap patterns (capped); a tensor certificate the multi sites (the product of their pieces is I(x))."""
    import numpy as np

    from verify.certify.certs_tensor import tensor_index_certificate
    names = [f"x{i}" for i in range(13)]
    iset = index_set(f"lambda {', '.join(names)}: " + " + ".join(f"relu({n})" for n in names), [0] * 13)
    cert = _checked(index_certificate(iset))
    assert cert["result"]["count"] == 8192 and cert["result"]["capped"] and len(cert["result"]["patterns"]) == 4096
    P = verify.parse("def f(x: [13]):\n    return sum(relu(x), axes=(0,))\n")
    tc = tensor_index_certificate(P, [np.zeros(13, dtype=np.int64)])
    tc.write(str(tmp_path / "t.json"))
    cert = json.loads((tmp_path / "t.json").read_text())
    check(cert, str(tmp_path))
    assert cert["result"]["multi"] == 13                # 13 sites where two pieces agree: 2^13 patterns
