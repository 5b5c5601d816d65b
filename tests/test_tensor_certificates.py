"""Certificates for tensor programs (tensor_index_set, tensor_differentiable, tensor_critical): every one that
the certifiers write passes the independent checker (random tensor programs and the cases networks meet:
tied neurons, max-pool ties, the artificial critical point of t - zero(t)), a changed side file (a weight, the
point, a claimed list) is rejected through its digest, and the checker's own tensor kernel agrees with the
interpreter on values, patterns and gradients (it is also an independent oracle for the interpreter)."""
import json

import numpy as np
import pytest
from flint import arb, ctx, fmpq
from hypothesis import given, strategies as st

import verify
from verify.certify.certs_tensor import (tensor_critical_certificate, tensor_differentiable_certificate,
                                         tensor_index_certificate)
from verify.checker import Invalid
from verify.checker import common as C
from verify.checker import tensor as CT
from verify.cli import main
from verify.errors import DomainError, InputError, Undecided
from verify.interpret import tensor as T
from verify.program.arrays import Arrays, ExactArray, read_npz, save_entries
from verify.program.builder import Builder
from verify.program.ir import Arr
from verify.strategies.tensor import tensor_points, tensor_programs
from verify.program.models import mlp_loss

ZERO = "def f(x: [1]):\n    a = relu(-x)\n    b = relu(x)\n    return sum(x - (a + x - b), axes=(0,))\n"


def written(tc, folder, name="c.json"):
    path = str(folder / name)
    tc.write(path)
    return path


# ------------------------------------------------------------------------------------------ every one checks

@given(data=st.data())
def test_certificates_of_random_tensor_programs_always_check(tmp_path_factory, data):
    P = data.draw(tensor_programs())
    x = data.draw(tensor_points(P))
    conv = data.draw(st.sampled_from(["torch", "jax", "tf"]))
    folder = tmp_path_factory.mktemp("cert")
    for make, kw in ((tensor_index_certificate, {"gradient": True}), (tensor_differentiable_certificate, {}),
                     (tensor_critical_certificate, {})):
        try:
            tc = make(P, x, conv, **kw)
        except (DomainError, Undecided, InputError):      # not defined here, undecided pattern, I(x) too large
            continue
        verify.check(written(tc, folder, f"{make.__name__}.json"))


MODE = ("def f(x: [3, 1], w: [1, 2]):\n    v = dot(x, w)\n    m = mode_axis(v, axis=0)\n"
        "    return sum({}, axes={})\n")


@pytest.mark.parametrize("out", [("relu(x)", "(0, 1)"), ("m", "(0,)")])
def test_a_jumping_equation_is_walked_only_when_it_reaches_f(tmp_path, out):
    """mode of a column with a tie jumps at x ((1, 1, 1/2) has mode 1, its neighbours mode 1/2).  When the mode
    reaches no output (f = sum(relu(x))) its ties are no branches of f: Clarke is decided ({0}, one leaf).  When
    it does (f = sum(mode)), the tensor walk does not follow the jump: Clarke is UNDECIDED, never "not
    continuous", and the checker's own walk confirms it without calling the certificate invalid (found by CI's
    random programs: the checker met the jump on a branch it had not shown realizable)."""
    P = verify.parse(MODE.format(*out))
    x = [np.array([[-1], [-1], [-0.5]]), np.array([[-1, 0.5]])]
    tc = tensor_critical_certificate(P, x)
    res, ev = tc.cert["result"], tc.cert["evidence"]
    assert res["count"] == 4
    if out[0] == "relu(x)":
        assert tc.cert["verdict"] == "PROVED" and res["essential"] == 1
        assert (res["selection_critical"], res["clarke_critical"], res["artificial"]) == (True, True, False)
    else:
        assert tc.cert["verdict"] == "UNDECIDED" and ev["clarke"] == {"undecided": True}
        assert res["selection_critical"] is False and res["clarke_critical"] is None
    verify.check(written(tc, tmp_path))


def test_a_piecewise_linear_program_that_jumps_may_leave_clarke_undecided(tmp_path):
    """sum(mode(x)) is piecewise linear and jumps at (1, 1, 1/2): its Clarke part is UNDECIDED, and the checker
    accepts that for piecewise-linear programs too once its own walk meets the jump (it used to demand a decision
    from every piecewise-linear program: found by CI's random programs)."""
    P = verify.parse("def f(x: [3, 1]):\n    m = mode_axis(x, axis=0)\n    return sum(m, axes=(0,))\n")
    tc = tensor_critical_certificate(P, [np.array([[1], [1], [0.5]])])
    assert tc.cert["verdict"] == "UNDECIDED" and tc.cert["evidence"]["clarke"] == {"undecided": True}
    assert tc.cert["result"]["count"] == 2 and tc.cert["result"]["selection_critical"] is False
    verify.check(written(tc, tmp_path))


@pytest.mark.parametrize("conv", ["torch", "jax", "tf"])
def test_gradients_that_are_exact_balls_are_decided_exactly(tmp_path, conv):
    """sum(atan(abs(x))) at 0: atan'(0) = 1 comes out of ball arithmetic as a ball of radius 0, so the gradients
    +-1 are exact and the checker demands a decided hull; the certifier now reads such a Gram matrix exactly
    (it said UNDECIDED and the checker rejected the certificate: found by a CI-profile seed)."""
    P = verify.parse("def f(x: [1, 1]):\n    return sum(atan(abs(x)), axes=(0, 1))\n")
    tc = tensor_critical_certificate(P, [np.array([[0]])], conv)
    res = tc.cert["result"]
    assert tc.cert["verdict"] == "PROVED" and res["essential"] == 2
    assert (res["selection_critical"], res["clarke_critical"], res["artificial"]) == (True, True, False)
    verify.check(written(tc, tmp_path))


def test_the_artificial_critical_point_of_t_minus_zero(tmp_path):
    """sum(x - (relu(-x) + x - relu(x))) at 0: 0 is in D_f (pattern (0, 0)), not in Clarke (every essential
    pattern has gradient 1): an artificial critical point, with weights, Gordan certificates, directions."""
    P = verify.parse(ZERO)
    tc = tensor_critical_certificate(P, [np.array([0])])
    res, ev = tc.cert["result"], tc.cert["evidence"]
    assert (res["selection_critical"], res["clarke_critical"], res["artificial"]) == (True, False, True)
    assert res["count"] == 4 and res["essential"] == 2 and "weights" in ev["selection"]
    assert "separator" in ev["clarke_membership"] and ev["clarke"]["piecewise_linear"] is True
    assert json.dumps(ev["clarke"]["tree"]).count("gordan") == 2
    verify.check(written(tc, tmp_path))
    d = tensor_differentiable_certificate(P, [np.array([0])], gradient=True)
    assert d.cert["verdict"] == "UNDECIDED" and d.cert["result"]["kinks"] == 2
    verify.check(written(d, tmp_path, "d.json"))


def test_mlp_with_tied_neurons(tmp_path):
    """A 3-4-2 MLP (parameters are the inputs, softmax cross-entropy): neurons 0 and 1 of sample 0 sit exactly
    at 0.  Index set (4 patterns), exact kinks, the ball gradient in float64 bounds, and criticality (the
    tied gradients are independent: the linearised cone decides Clarke) all check."""
    rng = np.random.default_rng(1)
    X = (rng.integers(0, 8, (2, 3)) / 8).astype(np.float32)
    X[0, 0] = 0.5
    Y = np.eye(2, dtype=np.float32)[[0, 1]]
    W1 = (rng.standard_normal((3, 4)) / 2).astype(np.float32)
    W1[:, :2] = 0
    W1[0, :2] = 1                                    # neurons 0 and 1 read x_0 ...
    b1 = np.array([-0.5, -0.5, 0.25, 0.125], dtype=np.float32)      # ... and are 0 at sample 0
    W2 = (rng.standard_normal((4, 2)) / 2).astype(np.float32)
    b2 = np.zeros(2, dtype=np.float32)
    P = mlp_loss(X, Y, [3, 4, 2])
    params = [W1, b1, W2, b2]
    tc = tensor_index_certificate(P, params, gradient=True)
    assert tc.cert["verdict"] == "PROVED" and tc.cert["result"]["kinks"] >= 2 and tc.cert["result"]["multi"] >= 2
    assert tc.cert["prec"] == 128 and isinstance(tc.cert["result"]["gradient"]["value"], dict)
    verify.check(written(tc, tmp_path, "i.json"))
    cr = tensor_critical_certificate(P, params)
    assert cr.cert["result"]["count"] >= 4 and cr.cert["result"]["selection_critical"] is False
    assert cr.cert["evidence"]["clarke"]["piecewise_linear"] is False
    verify.check(written(cr, tmp_path, "c.json"))
    assert {f.name for f in tmp_path.iterdir()} >= {"i.json", "c.json", tc.cert["claim"]["point"]["file"]}


def _cnn(X):
    bld = Builder("cnn", ["w1", "b1", "W"], [(2, 1, 3, 3), (1, 2, 1, 1), (2 * 3 * 3, 2)],
                  Arrays({"x": ExactArray.from_any(X)}))
    c1 = bld.emit("relu", [bld.emit("add", [bld.emit("conv2d", [Arr("x"), 0], {})[0], 1])[0]])[0]
    p = bld.emit("max_pool2d", [c1], {"kernel": (2, 2)})[0]
    f = bld.emit("reshape", [p], {"shape": (X.shape[0], 2 * 3 * 3)})[0]
    z = bld.emit("dot", [f, 2], {})[0]
    return bld.finish([bld.emit("sum", [bld.emit("logsumexp", [z], {"axes": (1,)})[0]], {"axes": (0,)})[0]])


def test_cnn_with_max_pool_ties(tmp_path):
    """conv 3x3 -> relu -> max-pool 2 -> linear -> logsumexp on 8x8 inputs: relu's zeros tie in max-pool
    windows (the first maximal element takes the gradient); the index set, the differentiability verdict and
    the ball gradient check."""
    rng = np.random.default_rng(2)
    X = (rng.integers(0, 4, (2, 1, 8, 8)) / 4).astype(np.float32)
    params = [(rng.standard_normal(s) / 2).astype(np.float32) for s in [(2, 1, 3, 3), (1, 2, 1, 1), (18, 2)]]
    params[1][:] = -2                                # most pre-activations negative: windows of zeros tie
    P = _cnn(X)
    tc = tensor_index_certificate(P, params, gradient=True)
    assert tc.cert["result"]["multi"] > 0 and tc.cert["result"]["kinks"] > 0
    verify.check(written(tc, tmp_path, "i.json"))
    d = tensor_differentiable_certificate(P, params, gradient=True)
    assert d.cert["result"]["differentiable"] is False
    verify.check(written(d, tmp_path, "d.json"))


# ------------------------------------------------------------------------------------ side files and digests

def _changed(path, key, fn):
    raw = read_npz(path)
    raw[key] = fn(np.array(raw[key], copy=True))
    save_entries(path, raw)


def test_a_changed_weight_point_or_claimed_list_is_rejected(tmp_path):
    X = np.array([[0.5, -0.25]], dtype=np.float32)
    P = mlp_loss(X, np.array([[1.0, 0.0]], dtype=np.float32), [2, 2, 2])
    params = [np.array([[1, 0], [0, 1]], dtype=np.float32), np.array([-0.5, 0.25], dtype=np.float32),
              np.eye(2, dtype=np.float32), np.zeros(2, dtype=np.float32)]
    tc = tensor_index_certificate(P, params, gradient=True)
    path = written(tc, tmp_path)
    verify.check(path)
    files = {role: str(tmp_path / tc.cert[part][role]["file"]) for part, role in (("claim", "point"),
                                                                                  ("result", "arrays"))}
    weights = str(tmp_path / P.name) + ".arrays-" + P.arrays.digest[:16] + ".npz"
    keys = set(read_npz(files["arrays"]))
    assert {"grad.b2.lo", "grad.b2.hi", "grad.b1.num", "grad.b1.den"} <= keys      # b1's gradient is exactly 0
    cases = [(weights, "x", lambda a: a * 2), (files["point"], "W1", lambda a: a + 1),
             (files["arrays"], "kinks.2", lambda a: a[:0]), (files["arrays"], "grad.b2.lo", lambda a: a - 1),
             (files["arrays"], "grad.b1.num", lambda a: a + 1)]
    for f, key, fn in cases:
        original = read_npz(f)
        _changed(f, key, fn)
        with pytest.raises(Invalid, match="digest|does not match|changed"):
            verify.check(path)
        save_entries(f, original)
        verify.check(path)
    (tmp_path / tc.cert["claim"]["point"]["file"]).unlink()
    with pytest.raises(Invalid, match="not found"):
        verify.check(path)


def test_side_files_are_plain_names_beside_the_certificate(tmp_path):
    from verify.certificates import sign
    from verify.checker import check
    tc = tensor_index_certificate(verify.parse(ZERO), [np.array([0])])
    written(tc, tmp_path)
    cert = json.loads(json.dumps(tc.cert))
    cert["claim"]["point"]["file"] = "../" + cert["claim"]["point"]["file"]
    with pytest.raises(Invalid):
        check(sign(cert), str(tmp_path))


def test_the_command_line_writes_and_checks_tensor_certificates(tmp_path, capsys):
    prog = tmp_path / "p.prog"
    prog.write_text("def f(x: [3], w: [3]):\n    return sum(relu(x * w) + max(x, 1/2), axes=(0,))\n")
    np.savez(tmp_path / "pt.npz", x=np.array([0.5, 0.0, -1.0]), w=np.array([1.0, 0.0, 1.0]))
    for i, argv in enumerate((["index-set"], ["critical"], ["grad", "--certify-differentiable"])):
        c = str(tmp_path / f"c{i}.json")
        code = main(argv[:1] + [str(prog), "--at", str(tmp_path / "pt.npz"), "--certificate", c] + argv[1:])
        assert code in (0, 3)
        assert main(["check", c]) == 0
    capsys.readouterr()


# ----------------------------------------------------------------------- the checker's kernel as an oracle

def _same(a, b):
    if isinstance(a, arb) or isinstance(b, arb):
        a, b = (v if isinstance(v, arb) else arb(v) for v in (a, b))
        return a.overlaps(b)
    return a == b


@given(st.data())
def test_the_checkers_tensor_kernel_agrees_with_the_interpreter(data):
    """Values, the piece chosen at every site and the selection gradient: the checker's own kernel (its
    arithmetic, its index rules, its reverse mode) against verify.interpret.tensor."""
    P = data.draw(tensor_programs())
    x = data.draw(tensor_points(P))
    conv = data.draw(st.sampled_from(["torch", "jax", "tf"]))
    try:
        g = T.grad(P, x, convention=conv)
    except (DomainError, Undecided):
        return
    R = C.resolve(P, conv)
    with ctx.workprec(g.prec):
        run = CT.Run(R, [CT.exact(a) for a in x])
        assert _same(CT.flat_values(run.outputs()[0])[0], g.values[0])
        for mine, theirs in zip(run.gradient(list(range(P.n_inputs))), g.gradient):
            flat = np.ravel(np.asarray(theirs, dtype=object)).tolist()
            assert all(_same(u, v) for u, v in zip(CT.flat_values(mine), flat))
    for st_, pat in zip(T.nonsmooth_steps(P, conv), g.pattern):
        S = run.sites[st_.k]
        for G in S.groups:
            for loc, s in enumerate(G.sites.tolist()):
                theirs = st_.piece(G.n, int(np.ravel(pat)[s]))
                dense = []
                for terms, const in theirs.rows:
                    c = [fmpq(0)] * G.n
                    for j, v in terms:
                        c[j] += v
                    dense.append((tuple(c), const))
                assert G.pieces[G.ids[loc]] == tuple(dense)


def test_a_given_gradient_is_checked_and_a_wrong_one_rejected(tmp_path):
    """What an audit does: the builder takes the selection gradient already computed (balls: stated as float64
    bounds; exact: stated exactly), the checker recomputes it; a doubled element is rejected."""
    P = verify.parse("def m(x: [2], w: [2, 2]):\n    h = relu(dot(w, x))\n    return logsumexp(h, axes=(0,))\n")
    Q = verify.parse("def q(x: [2], w: [2, 2]):\n    return sum(relu(dot(w, x)), axes=(0,))\n")
    pt = [np.array([1, 2]), np.array([[1, 1], [2, 1]])]
    for prog in (P, Q):
        g = T.grad(prog, pt, wrt=[1])
        good = tensor_differentiable_certificate(prog, pt, gradient=[g.gradient[1]], wrt=["w"], value=g.values[0],
                                                 prec=g.prec)
        verify.check(written(good, tmp_path, f"{prog.name}-good.json"))
        bad = np.array(g.gradient[1], dtype=object)
        bad[0, 0] = bad[0, 0] * 2
        tc = tensor_differentiable_certificate(prog, pt, gradient=[bad], wrt=["w"], value=g.values[0], prec=g.prec)
        with pytest.raises(Invalid, match="gradient"):
            verify.check(written(tc, tmp_path, f"{prog.name}-bad.json"))


def test_degenerate_ties_of_tensor_programs_are_decided_through_their_elementwise_cones(tmp_path):
    """Issue 21: zero-gradient ties in tensor programs that are not piecewise linear: relu(x * x) is never
    negative near 0 (a generic sign), relu(|x|^2 - x^2) is zero there; each as the scalarised program decides
    it, with its lowest-order part in the certificate, re-derived by the checker.  An indefinite part (x * y)
    stays UNDECIDED."""
    from verify import scalarize
    from verify.certify import clarke
    from verify.certify.sites import site_clarke
    for src, x, want in (("def s(x: [2]):\n    return sum(relu(x * x) + x, axes=(0,))\n", [np.array([0, 0])],
                          "generic"),
                         ("def s(x: [2]):\n    return sum(relu(abs(x) * abs(x) - x * x) + x, axes=(0,))\n",
                          [np.array([0, 1])], "zero")):
        P = verify.parse(src)
        cl, _ = site_clarke(P, x)
        Sc = scalarize(P)
        from verify.interpret.tensor import coerce_inputs
        cc = clarke(Sc.program, Sc.flat_point(coerce_inputs(P, x)))
        assert len(cl.gradients) == len(cc.gradients) == 1
        tc = tensor_critical_certificate(P, x)
        tc.write(str(tmp_path / "c.json"))
        cert = json.loads((tmp_path / "c.json").read_text())
        from verify.checker import check
        check(cert, str(tmp_path))
        kinds = {g["germ"]["kind"] for n in _nodes(cert["evidence"]["clarke"]["tree"]) for g in n.get("degenerate", [])}
        assert kinds == {want} and cert["result"]["clarke_critical"] is False
    P = verify.parse("def s(x: [1], y: [1]):\n    return sum(relu(x * y) + x, axes=(0,))\n")
    from verify.errors import Undecided
    with pytest.raises(Undecided):
        site_clarke(P, [np.array([0]), np.array([0])])


def _nodes(tree):
    if "leaf" in tree:
        return []
    out = [tree]
    for b in tree["branches"]:
        if "next" in b:
            out += _nodes(b["next"])
    return out
