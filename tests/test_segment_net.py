"""Claim 1 and Proposition 2 on tensor programs (verify/certify/segment_net.py).  Oracles: the scalarised
program's exact walk (the reference semantics of a tensor program), the tensor interpreter's own pattern on a
fine rational grid, and exact rationals."""
import numpy as np
from flint import fmpq

import verify

from verify.interpret import tensor as T
from verify.program.arrays import ExactArray
from verify.program.builder import Builder


def Q(*a):
    return fmpq(*a)


# ------------------------------------------------------------------------------- regressions found on the way

def test_a_zero_dimensional_float_array_is_exact():
    a = ExactArray.from_any(np.float32(0.75))
    assert a.shape == () and a.item(()) == Q(3, 4)


def test_a_structurally_zero_switching_function_is_decided_at_every_site():
    b = Builder("f", ["x"], [(3,)])
    m = b.emit("max", [0, 0])[0]
    P = b.finish([b.emit("sum", [b.emit("relu", [m])[0]], {"axes": (0,)})[0]])
    r = T.evaluate(P, [np.array([1.0, -1.0, 0.0])])
    assert r.pattern[0].tolist() == [2, 2, 2] and r.values[0] == 1       # max(x, x): a tie everywhere, split


def test_a_zero_dimensional_array_constant_scalarises_to_one_literal():
    from verify.program.arrays import Arrays
    from verify.program.ir import Arr
    from verify.program.scalarize import scalarize
    b = Builder("f", ["x"], [(2,)], Arrays({"c": ExactArray.from_any(np.float32(0.5))}))
    P = b.finish([b.emit("add", [b.emit("sum", [0], {"axes": (0,)})[0], Arr("c")])[0]])
    sp = scalarize(P)
    assert verify.evaluate(sp.program, [1, 2]).values == [Q(7, 2)] == [T.evaluate(P, [[1, 2]]).values[0]]


# ------------------------------------------------------------------------------------------------- helpers

import json  # noqa: E402

import pytest  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

from verify.certify import algebraic as A  # noqa: E402
from verify.certify import segment_net as N  # noqa: E402
from verify.certify.sites import is_piecewise_linear  # noqa: E402
from verify.cli import main  # noqa: E402
from verify.errors import InputError  # noqa: E402
from verify.program.arrays import Arrays  # noqa: E402
from verify.program.ir import Arr, Lit  # noqa: E402
from verify.strategies.tensor import segment_programs, tensor_segments  # noqa: E402
from verify.truth import Verdict  # noqa: E402


def arr(*vals, shape=None):
    a = np.array([str(v) for v in vals], dtype=object)
    return ExactArray.from_any(a.reshape(shape) if shape else a)


def _scalar_exact(P, x, y, convention="torch"):
    """The reference: the scalarised program's own exact walk, patterns converted back."""
    seg = N.TensorSegment(P, N.endpoints(P, x), N.endpoints(P, y))
    sp = N._scalarised(P, convention, 10 ** 6, "checked")
    part = N.scalar_segment_partition(sp.program, sp.flat_point(seg.segment[0]), sp.flat_point(seg.segment[1]),
                                      method="exact", convention=convention)
    return N._from_scalar(P, seg, part, sp)


def pattern_at(P, seg, t, convention="torch"):
    return N.SitePattern(T.evaluate(P, seg.at(t), convention=convention).pattern)


def expected_pattern(part, t):
    """The partition's pattern at t: a breakpoint's own, or the piece's that contains t."""
    for b in part.breakpoints:
        if b.t == t:
            return b.pattern
    for p in part.pieces:
        if part.breakpoints[p.lo].t < t < part.breakpoints[p.hi].t:
            return p.pattern
    raise AssertionError(f"t = {t} is in no piece")


def net(widths, seed=0):
    """A ReLU network as a tensor program with small dyadic float32 weights: input x of shape [widths[0]]."""
    rng = np.random.default_rng(seed)
    arrays, b = {}, None
    for i, (m, n) in enumerate(zip(widths[1:], widths[:-1])):
        arrays[f"W{i}"] = (rng.integers(-16, 17, size=(m, n)) / (8 * n)).astype(np.float32)
        arrays[f"b{i}"] = (rng.integers(-16, 17, size=(m,)) / 16).astype(np.float32)
    A = Arrays({k: ExactArray.from_any(v) for k, v in arrays.items()})
    b = Builder("net", ["x"], [(widths[0],)], A)
    h = 0
    for i in range(len(widths) - 1):
        h = b.emit("add", [b.emit("dot", [Arr(f"W{i}"), h], {"ca": (1,), "cb": (0,)})[0], Arr(f"b{i}")])[0]
        if i < len(widths) - 2:
            h = b.emit("relu", [h])[0]
    return b.finish([b.emit("sum", [h], {"axes": (0,)})[0]])


# -------------------------------------------------------------------------------------------- the walk

def test_two_relus_on_an_array_have_exact_breakpoints():
    b = Builder("f", ["x"], [(2,)])
    h = b.emit("relu", [b.emit("sub", [0, Lit(fmpq(1, 3))])[0]])[0]
    P = b.finish([b.emit("sum", [h], {"axes": (0,)})[0]])
    part = verify.segment_partition(P, [arr(0, 0)], [arr(1, 2)])
    assert part.route == "native" and part.exact and part.complete
    assert [bp.t for bp in part.breakpoints] == [0, Q(1, 6), Q(1, 3), 1]
    assert [p.pattern.full_json() for p in part.pieces] == [[[0, 0]], [[0, 1]], [[1, 1]]]
    assert [bp.pattern.full_json() for bp in part.breakpoints] == [[[0, 0]], [[0, 0]], [[0, 1]], [[1, 1]]]


def test_a_network_agrees_with_its_scalarisation():
    P = net([1, 8, 8, 1], seed=3)
    x, y = [arr(-4)], [arr(4)]
    part = verify.segment_partition(P, x, y)
    ref = _scalar_exact(P, x, y)
    assert part.route == "native" and ref.route == "scalarised" and len(part.breakpoints) > 4
    assert [b.t for b in part.breakpoints] == [b.t for b in ref.breakpoints]
    assert [b.pattern for b in part.breakpoints] == [b.pattern for b in ref.breakpoints]
    assert [p.pattern for p in part.pieces] == [p.pattern for p in ref.pieces]
    res = verify.integral_identity(P, x, y)
    f = [T.evaluate(P, e).values[0] for e in (x, y)]
    assert res.verdict is Verdict.PROVED and res.lhs_value == res.rhs_value == f[1] - f[0]


def test_a_pass_recomputes_only_downstream_of_a_switch():
    P = net([1, 16, 16, 1], seed=1)
    part = verify.segment_partition(P, [arr(-4)], [arr(4)])
    ev, passes = part.stats["evaluations"], part.stats["passes"]
    assert passes == part.stats["atoms"] > 20 and ev[:2] == [1, 1]        # the first layer's product: once
    assert ev[2] < passes / 2 and all(0 < e < passes for e in ev[2:])   # the rest: where a switch reaches it


def test_an_input_that_does_not_move_and_a_point_segment():
    b = Builder("f", ["x", "w"], [(2,), (2,)])
    h = b.emit("relu", [b.emit("sub", [0, 1])[0]])[0]
    P = b.finish([b.emit("sum", [h], {"axes": (0,)})[0]])
    part = verify.segment_partition(P, {"x": arr(0, 0), "w": arr(1, -1)}, {"x": arr(2, 2), "w": arr(1, -1)})
    assert [bp.t for bp in part.breakpoints] == [0, Q(1, 2), 1]
    one = verify.segment_partition(P, [arr(1, 1), arr(1, 1)], [arr(1, 1), arr(1, 1)])
    assert [bp.t for bp in one.breakpoints] == [0, 1] and one.pieces[0].pattern.full_json() == [[2 and 0, 0]]


def test_identically_zero_switching_functions_are_decided_exactly():
    b = Builder("f", ["x"], [(2,)])
    d = b.emit("sub", [0, 0])[0]                                   # x - x: 0 everywhere, not structurally
    m = b.emit("max", [0, b.emit("add", [0, d])[0]], {"tie": "first"})[0]
    P = b.finish([b.emit("sum", [b.emit("relu", [m])[0]], {"axes": (0,)})[0]])
    part = verify.segment_partition(P, [arr(-1, 1)], [arr(1, -1)])
    assert [bp.t for bp in part.breakpoints] == [0, Q(1, 2), 1]
    assert all(p.pattern[0].tolist() == [0, 0] for p in part.pieces)    # the tie holds on every piece


def test_where_with_equality_is_decided_on_a_tie_interval():
    b = Builder("f", ["x"], [(1,)])
    z = b.emit("mul", [0, Lit(fmpq(0))])[0]
    w = b.emit("where", [z, Lit(fmpq(0)), 0, b.emit("neg", [0])[0]], {"op": "=="})[0]
    P = b.finish([b.emit("sum", [w], {"axes": (0,)})[0]])
    part = verify.segment_partition(P, [arr(-1)], [arr(1)])
    assert [bp.t for bp in part.breakpoints] == [0, 1] and part.pieces[0].pattern.full_json() == [[0]]


def test_max_pool_amax_and_sort_sites():
    b = Builder("f", ["x"], [(1, 1, 2, 2)])
    mp = b.emit("max_pool2d", [0], {"kernel": (2, 2)})[0]
    s = b.emit("sort_axis", [b.emit("reshape", [0], {"shape": (4,)})[0]], {"axis": 0})[0]
    out = b.emit("add", [b.emit("sum", [mp], {"axes": (0, 1, 2, 3)})[0],
                         b.emit("dot", [Arr("w"), s], {"ca": (0,), "cb": (0,)})[0]])[0]
    b.arrays = Arrays({"w": arr(1, 2, 3, 4)})
    P = b.finish([out])
    x, y = [arr(0, 1, 2, 3, shape=(1, 1, 2, 2))], [arr(2, 3, 0, 1, shape=(1, 1, 2, 2))]
    part = verify.segment_partition(P, x, y)
    ref = _scalar_exact(P, x, y)
    assert [bp.t for bp in part.breakpoints] == [bp.t for bp in ref.breakpoints] == [0, Q(1, 4), Q(1, 2), Q(3, 4), 1]
    assert [p.pattern for p in part.pieces] == [p.pattern for p in ref.pieces]
    assert verify.integral_identity(P, x, y).verdict is Verdict.PROVED


# ----------------------------------------------------------------------------------------- the integral

def test_a_where_jump_is_refuted_at_its_breakpoint():
    b = Builder("f", ["x"], [(2,)])
    w = b.emit("where", [0, Lit(fmpq(1, 2)), b.emit("add", [0, Lit(fmpq(1))])[0], 0], {"op": ">"})[0]
    P = b.finish([b.emit("sum", [w], {"axes": (0,)})[0]])
    res = verify.integral_identity(P, [arr(0, -1)], [arr(1, -1)])
    assert res.verdict is Verdict.REFUTED and res.discontinuity["t"] == "1/2"
    assert "discontinuous at t = 1/2" in res.reason and res.lhs == "2" and res.rhs == "1"   # the jump: 1
    assert res.json()["discontinuity"]["pattern"] == [[0, 1]]       # the piece right of 1/2 jumps


def test_the_integral_needs_one_scalar_output():
    b = Builder("f", ["x"], [(2,)])
    P = b.finish([b.emit("relu", [0])[0]])
    with pytest.raises(InputError, match="one scalar output"):
        verify.integral_identity(P, [arr(0, 0)], [arr(1, 1)])
    assert len(verify.segment_partition(P, [arr(-1, -1)], [arr(1, 2)]).breakpoints) == 4


# ---------------------------------------------------------------------------------- the scalarised route

def encloses_zero(v):
    return v == 0 if isinstance(v, fmpq) else v.contains(0)


def same_numbers(a, b):
    return len(a) == len(b) and all(type(x) is type(y) and A.cmp(x, y) == 0 for x, y in zip(a, b))


def test_a_polynomial_program_walks_natively_with_algebraic_breakpoints():
    b = Builder("f", ["x"], [(2,)])
    sq = b.emit("mul", [0, 0])[0]
    h = b.emit("relu", [b.emit("sub", [sq, Lit(fmpq(1, 2))])[0]])[0]
    P = b.finish([b.emit("sum", [h], {"axes": (0,)})[0]])
    assert not is_piecewise_linear(P) and N.is_polynomial(P)
    x, y = [arr(0, 0)], [arr(1, 2)]
    part = verify.segment_partition(P, x, y)
    assert part.route == "native" and part.values == "polynomial" and part.exact and len(part.breakpoints) == 4
    assert part.pieces[-1].pattern.full_json() == [[1, 1]]
    t1 = part.breakpoints[1].t                                       # (2t)^2 = 1/2: t = sqrt(2)/4, algebraic
    assert isinstance(t1, A.Alg) and t1.lo ** 2 < Q(1, 8) < t1.hi ** 2
    ref = _scalar_exact(P, x, y)
    assert same_numbers([bp.t for bp in part.breakpoints], [bp.t for bp in ref.breakpoints])
    assert [p.pattern for p in part.pieces] == [p.pattern for p in ref.pieces]
    res = verify.integral_identity(P, x, y)
    assert res.verdict is Verdict.PROVED and res.lhs == "4" and res.partition.values == "polynomial"
    assert not res.exact and encloses_zero(res.difference_value)     # algebraic ends: enclosures, width < 2^-60
    # three algebraic breakpoints of degree 2 and 3, ordered exactly, with the scalar walk as the oracle
    b = Builder("g", ["x"], [(3,)], Arrays({"c": arr(Q(1, 2), Q(1, 3), Q(2, 3))}))
    cube = b.emit("mul", [b.emit("mul", [0, 0])[0], 0])[0]
    h = b.emit("relu", [b.emit("sub", [b.emit("add", [cube, 0])[0], Arr("c")])[0]])[0]
    P = b.finish([b.emit("sum", [h], {"axes": (0,)})[0]])
    x, y = [arr(0, 0, 0)], [arr(1, 1, 1)]
    part = verify.segment_partition(P, x, y)
    ref = _scalar_exact(P, x, y)
    assert sum(isinstance(bp.t, A.Alg) for bp in part.breakpoints) == 3
    assert same_numbers([bp.t for bp in part.breakpoints], [bp.t for bp in ref.breakpoints])
    assert [p.pattern for p in part.pieces] == [p.pattern for p in ref.pieces] and len(part.pieces) == 4
    assert verify.integral_identity(P, x, y).verdict is Verdict.PROVED


def test_a_program_that_is_not_polynomial_goes_through_its_scalarisation():
    b = Builder("f", ["x"], [(2,)])
    h = b.emit("relu", [b.emit("sub", [b.emit("exp", [0])[0], Lit(fmpq(2))])[0]])[0]
    P = b.finish([b.emit("sum", [h], {"axes": (0,)})[0]])
    assert not N.is_polynomial(P)
    part = verify.segment_partition(P, [arr(0, 0)], [arr(1, 2)])
    assert part.route == "scalarised" and part.method == "ball" and part.complete and len(part.breakpoints) == 4
    assert [bp.status for bp in part.breakpoints] == ["exact", "simple", "simple", "exact"]   # log(2)/2, log 2
    assert part.pieces[-1].pattern.full_json() == [[1, 1]]
    assert verify.integral_identity(P, [arr(0, 0)], [arr(1, 2)]).verdict is Verdict.PROVED
    with pytest.raises(InputError, match="more than 3 scalar equations"):
        verify.segment_partition(P, [arr(0, 0)], [arr(1, 2)], max_scalar=3)


def test_tensor_segments_refuse_curves():
    P = net([1, 2, 1])
    with pytest.raises(InputError, match="not a polynomial curve"):
        verify.segment_partition(P, curve="0; 1")


def _certified(res, tmp_path, name):
    """The tensor certificate of ``res`` (a partition or an integral identity), written and checked."""
    from verify.certify.certs_tensor import tensor_integral_certificate, tensor_segment_certificate
    from verify.checker import check
    make = tensor_segment_certificate if hasattr(res, "breakpoints") else tensor_integral_certificate
    path = tmp_path / f"{name}.json"
    make(res).write(str(path))
    cert = json.loads(path.read_text())
    check(cert, str(tmp_path))
    return cert


def test_tensor_segment_and_integral_certificates(tmp_path):
    """Issue 21: a piecewise-linear network's segment and integral identity are certified and checked; a
    jump is REFUTED in the certificate too; a segment along which values are polynomial in t is refused with
    the reason."""
    P = net([2, 4, 4, 1], seed=3)
    x, y = [arr(-2, 1)], [arr(3, -1)]
    part = verify.segment_partition(P, x, y)
    cert = _certified(part, tmp_path, "s")
    assert cert["result"] == {k: v for k, v in part.json().items() if k != "curve"} and len(part.breakpoints) > 2
    res = verify.integral_identity(P, x, y)
    cert = _certified(res, tmp_path, "i")
    assert cert["verdict"] == "PROVED" and cert["result"]["lhs"] == cert["result"]["rhs"]
    b = Builder("g", ["x"], [(3,)])
    jump = b.finish([b.emit("sum", [b.emit("where", [0, Lit(Q(0)), 0, b.emit("sub", [0, Lit(Q(1))])[0]],
                                            {"op": ">"})[0]], {"axes": (0,)})[0]])
    res = verify.integral_identity(jump, [arr(-1, -1, 2)], [arr(1, 1, 3)])
    cert = _certified(res, tmp_path, "j")
    assert cert["verdict"] == "REFUTED" and cert["result"]["discontinuity"]["t"] == "1/2"
    b = Builder("h", ["x", "w"], [(2,), (2,)])
    poly = b.finish([b.emit("sum", [b.emit("relu", [b.emit("mul", [0, 1])[0]])[0]], {"axes": (0,)})[0]])
    from verify.certify.certs_tensor import tensor_segment_certificate
    with pytest.raises(InputError, match="piecewise-linear tensor programs along the segment"):
        tensor_segment_certificate(verify.segment_partition(poly, [arr(-1, 1), arr(1, 2)], [arr(1, -1), arr(2, 1)]))
    part = verify.segment_partition(poly, [arr(-1, 1), arr(1, 2)], [arr(1, -1), arr(1, 2)])   # w fixed: affine
    assert part.values == "affine"
    _certified(part, tmp_path, "w")


@settings(max_examples=min(settings.default.max_examples, 30))
@given(st.data())
def test_certificates_of_random_piecewise_linear_segments_check(data):
    import tempfile
    from pathlib import Path
    P = data.draw(segment_programs())
    x, y = data.draw(tensor_segments(P))
    conv = data.draw(st.sampled_from(["torch", "jax", "tf"]))
    part = verify.segment_partition(P, x, y, convention=conv)
    with tempfile.TemporaryDirectory() as d:
        cert = _certified(part, Path(d), "s")
        assert cert["result"] == {k: v for k, v in part.json().items() if k != "curve"}
        if P.n_outputs == 1 and P.atom_shape(P.outputs[0]) == ():
            res = verify.integral_identity(P, x, y, convention=conv)
            assert _certified(res, Path(d), "i")["result"] == {k: v for k, v in res.json().items() if k != "curve"}


def test_scalar_programs_keep_their_path():
    part = verify.segment_partition("lambda t: relu(t - 1/3) - relu(t - 2/3)", 0, 1)
    assert type(part).__name__ == "Partition" and [p.pattern for p in part.pieces] == [(0, 0), (1, 0), (1, 1)]
    assert verify.integral_identity("lambda t: relu(t - 1/3) - relu(t - 2/3)", 0, 1).rhs == "1/3"


# ---------------------------------------------------------------------------------------- JSON and CLI

def test_json_writes_the_first_pattern_and_then_changes():
    P = net([1, 4, 4, 1], seed=2)
    part = verify.segment_partition(P, [arr(-4)], [arr(4)])
    j = json.loads(json.dumps(part.json()))
    assert j["pattern_encoding"] == "changes" and j["route"] == "native"
    assert [s["grid"] for s in j["sites"]] == [[4], [4]] and isinstance(j["breakpoint_patterns"][0], list)
    bps, pcs = N.expand(j)
    assert bps == [b.pattern.full_json() for b in part.breakpoints]
    assert pcs == [p.pattern.full_json() for p in part.pieces]


def _write_tiny(tmp_path):
    A = Arrays({"W": arr(1, -1, Q(1, 2), 2, -1, 1, shape=(3, 2)), "v": arr(1, -2, 1)})
    A.save(tmp_path / "tiny.npz")
    (tmp_path / "tiny.prog").write_text(f'arrays("tiny.npz", digest="{A.digest}")\n\ndef tiny(x: [2]):\n'
                                        '    h = relu(const("W") @ x - 1/2)\n'
                                        '    return sum(h * const("v"), axes=(0,))\n')
    np.savez(tmp_path / "a.npz", x=np.array([-1.0, -1.0]))
    np.savez(tmp_path / "b.npz", x=np.array([2.0, 1.0]))
    np.savez(tmp_path / "bad.npz", y=np.array([2.0, 1.0]))
    return str(tmp_path / "tiny.prog"), str(tmp_path / "a.npz"), str(tmp_path / "b.npz")


def test_cli_with_npz_ends(tmp_path, capsys):
    prog, a, b = _write_tiny(tmp_path)
    assert main(["segment", prog, "--from", a, "--to", b, "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["breakpoints"] == ["0", "1/2", "6/11", "1"] and j["route"] == "native"
    assert N.expand(j)[1] == [[[0, 0, 0]], [[1, 0, 0]], [[1, 1, 0]]]
    assert main(["segment", prog, "--from=-1,-1", "--to", "2,1"]) == 0
    out = capsys.readouterr().out
    assert "t = 1/2" in out and "relu@3[0] -> 1" in out
    assert main(["integral", prog, "--from", a, "--to", b, "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["verdict"] == "PROVED" and j["lhs"] == j["rhs"] == "-9/2" and j["difference"] == "0"
    assert main(["integral", prog, "--from", a, "--to", b, "--json", "--certificate", str(tmp_path / "c.json")]) == 0
    assert json.loads(capsys.readouterr().out) == j          # the certificate flag changes nothing
    assert main(["check", str(tmp_path / "c.json")]) == 0 and "valid" in capsys.readouterr().out
    assert main(["segment", prog, "--from", a, "--to", str(tmp_path / "bad.npz")]) == 2
    assert "missing x; unknown y" in capsys.readouterr().err
    assert main(["segment", prog, "--from", a, "--to", "1,2,3"]) == 2
    assert "has 3 number(s)" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- random programs

def _check_against_oracles(P, x, y, convention="torch"):
    part = verify.segment_partition(P, x, y, convention=convention)
    assert part.route == "native" and part.exact and part.complete
    ref = _scalar_exact(P, x, y, convention)
    assert [b.t for b in part.breakpoints] == [b.t for b in ref.breakpoints]
    assert [b.pattern for b in part.breakpoints] == [b.pattern for b in ref.breakpoints]
    assert [p.pattern for p in part.pieces] == [p.pattern for p in ref.pieces]
    # no missed breakpoint: the program's own pattern on a fine grid and inside every piece
    seg = part.curve
    ts = [Q(k, 40) for k in range(41)] + [(part.breakpoints[p.lo].t + part.breakpoints[p.hi].t) / 2
                                         for p in part.pieces]
    for t in ts:
        assert pattern_at(P, seg, t, convention) == expected_pattern(part, t), t
    return part


@given(st.data())
def test_random_piecewise_linear_programs(data):
    P = data.draw(segment_programs())
    assert is_piecewise_linear(P)
    x, y = data.draw(tensor_segments(P))
    conv = data.draw(st.sampled_from(["torch", "jax", "tf"]))
    _check_against_oracles(P, x, y, conv)
    res = verify.integral_identity(P, x, y, convention=conv)
    f = [T.evaluate(P, e, convention=conv).values[0] for e in (x, y)]
    assert res.lhs_value == f[1] - f[0]
    if not any(e.prim == "where" for e in P.eqns):
        assert res.verdict is Verdict.PROVED and res.rhs_value == res.lhs_value
    else:
        seg = res.partition.curve
        sp = N._scalarised(P, conv, 10 ** 6, "checked")
        ref = N.scalar_integral_identity(sp.program, sp.flat_point(seg.segment[0]), sp.flat_point(seg.segment[1]),
                                         convention=conv)
        assert res.verdict is ref.verdict and res.rhs == ref.rhs
        assert (res.discontinuity is None) == (ref.discontinuity is None)


@settings(max_examples=min(settings.default.max_examples, 30))     # algebraic roots on both sides
@given(st.data())
def test_random_polynomial_programs_agree_with_their_scalarisation(data):
    P = data.draw(segment_programs(pl=False, max_eqns=5))
    x, y = data.draw(tensor_segments(P))
    part = verify.segment_partition(P, x, y)
    assert part.route == "native" and part.complete and part.exact
    moving = [bool(np.any(a.to_fmpq() != b.to_fmpq())) for a, b in zip(*part.curve.segment)]
    assert part.values == ("affine" if is_piecewise_linear(P, moving) else "polynomial")
    ref = _scalar_exact(P, x, y)
    assert same_numbers([bp.t for bp in part.breakpoints], [bp.t for bp in ref.breakpoints])
    assert [bp.pattern for bp in part.breakpoints] == [bp.pattern for bp in ref.breakpoints]
    assert [p.pattern for p in part.pieces] == [p.pattern for p in ref.pieces]
    for p in part.pieces:
        assert pattern_at(P, part.curve, A.between(part.breakpoints[p.lo].t, part.breakpoints[p.hi].t)) == p.pattern
    res = verify.integral_identity(P, x, y)
    f = [T.evaluate(P, e).values[0] for e in (x, y)]
    assert res.lhs_value == f[1] - f[0]
    if not any(e.prim == "where" for e in P.eqns):
        assert res.verdict is Verdict.PROVED and encloses_zero(res.difference_value)
    else:
        seg = res.partition.curve
        sp = N._scalarised(P, "torch", 10 ** 6, "checked")
        ref = N.scalar_integral_identity(sp.program, sp.flat_point(seg.segment[0]), sp.flat_point(seg.segment[1]))
        assert res.verdict is ref.verdict and (res.discontinuity is None) == (ref.discontinuity is None)



def test_a_program_not_defined_on_the_segment_says_where():
    from verify.errors import DomainError
    b = Builder("f", ["x"], [(2,)], Arrays({"d": arr(1, 0)}))
    P = b.finish([b.emit("sum", [b.emit("div", [0, Arr("d")])[0]], {"axes": (0,)})[0]])
    with pytest.raises(DomainError, match=r"f at t = 0: equation 1 .*nonzero divisor, got 0 at index \[1\]"):
        verify.segment_partition(P, [arr(0, 0)], [arr(1, 1)])
    b = Builder("g", ["x"], [(2,)])
    P = b.finish([b.emit("sum", [0], {"axes": (0,)})[0]])                # no nonsmooth equation at all
    part = verify.segment_partition(P, [arr(0, 0)], [arr(1, 1)])
    assert [bp.t for bp in part.breakpoints] == [0, 1] and part.json()["breakpoint_patterns"][0] == []
    assert verify.integral_identity(P, [arr(0, 0)], [arr(1, 1)]).rhs == "2"


def test_conventions_and_the_ball_route_on_a_tensor_program():
    b = Builder("f", ["x"], [(2,)])
    P = b.finish([b.emit("sum", [b.emit("abs", [0])[0]], {"axes": (0,)})[0]])
    x, y = [arr(-1, -1)], [arr(1, 3)]
    for conv, kink in (("torch", 2), ("jax", 1)):          # abs'(0): torch 0 (a kink piece), jax 1 (piece 1)
        part = verify.segment_partition(P, x, y, convention=conv)
        assert [bp.t for bp in part.breakpoints] == [0, Q(1, 4), Q(1, 2), 1]
        assert part.breakpoints[2].pattern.full_json() == [[kink, 1]]
    ball = verify.segment_partition(P, x, y, method="ball")
    assert ball.route == "scalarised" and ball.method == "ball" and ball.complete and len(ball.breakpoints) == 4
    assert [p.pattern.full_json() for p in ball.pieces] == [[[0, 0]], [[0, 1]], [[1, 1]]]
