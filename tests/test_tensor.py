"""Tensor programs: the interpreter against its scalarisation (exact), against PyTorch (float64, live),
kinks and ties at exact points, program text with array constants, and the errors a user meets."""
import numpy as np
import pytest
from flint import arb, ctx, fmpq

import verify
from verify.certify import sites as S
from verify.errors import InputError, ParseError, ProgramError
from verify.interpret import tensor as T
from verify.program.arrays import Arrays, ExactArray, load_npz
from verify.program.ir import to_text
from verify.program.scalarize import scalarize
from verify.program.models import mlp_loss

try:
    import torch
except ImportError:          # the second CI pass has no frameworks
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def flat(a):
    return np.ravel(np.asarray(a, dtype=object)).tolist() if np.ndim(a) else [a]


def scalar_agrees(P, point, conv="torch"):
    """The tensor interpreter and the scalar interpreter on the scalarisation: same values, patterns and
    gradients, exactly; forward mode = backward mode."""
    Sc = scalarize(P, conv)
    xs = T.coerce_inputs(P, point)
    tg = T.grad(P, point, convention=conv)
    sg = verify.grad(Sc.program, Sc.flat_point(xs), convention=conv)
    assert Sc.to_scalar_pattern(tg.pattern) == tuple(sg.pattern)
    assert flat(tg.values[0]) == list(sg.values)
    g = [None] * Sc.program.n_inputs
    for i, arr in enumerate(tg.gradient):
        for idx, v in zip(Sc.inputs[i].ravel().tolist(), flat(arr)):
            g[idx] = v
    assert g == list(sg.gradient)
    fg = T.grad(P, point, mode="forward", convention=conv)
    assert [flat(a) for a in fg.gradient] == [flat(a) for a in tg.gradient]
    return tg


CNN = """
def cnn(x: [2, 1, 6, 6], w: [2, 1, 3, 3], v: [8, 3]):
    c = conv2d(x, w, padding=(1, 1))
    r = relu(c)
    m = max_pool2d(r, kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    f = reshape(m, shape=(2, 18))
    g = slice(f, start=(0, 0), stop=(2, 8), step=(1, 1))
    o = g @ v
    top = amax(o, axes=(1,))
    return sum(top, axes=(0,))
"""

ZOO = """
def zoo(x: [3, 4], y: [4]):
    u = max(x, y, 1/2)
    v = where(x >= y, u, x)
    c = clamp(v, lo=0, hi=1)
    a = abs(c)
    s1, s2 = sort(a, y)
    t = sort_axis(s1, axis=0, descending=True)
    p = pad(t, lo=(1, 0), hi=(0, 2))
    k = concat(p, p, axis=1)
    m = mean(k, axes=(0, 1))
    q = transpose(broadcast_to(s2, shape=(2, 3, 4)), perm=(2, 0, 1))
    ap = avg_pool2d(reshape(x, shape=(1, 1, 3, 4)), kernel=(2, 2), stride=(1, 1))
    return m + sum(q * q, axes=(0, 1, 2)) + sum(ap, axes=(0, 1, 2, 3))
"""


@pytest.mark.parametrize("conv", ["torch", "jax", "tf"])
def test_the_tensor_interpreter_means_the_scalarised_program(conv):
    rng = np.random.default_rng(1)
    P = verify.parse(CNN)
    x = rng.integers(-3, 4, (2, 1, 6, 6))
    w = rng.integers(-2, 3, (2, 1, 3, 3))
    v = rng.integers(-2, 3, (8, 3))
    scalar_agrees(P, [x, w, v], conv)
    Z = verify.parse(ZOO)
    X = [[0, 1, 2, "1/2"], ["1/2", "1/2", -1, 3], [1, 0, 0, "1/4"]]
    scalar_agrees(Z, [X, ["1/2", 0, 2, "1/4"]], conv)


def test_ball_and_interval_enclose_the_exact_values():
    P = verify.parse("def f(x: [3]):\n    return logsumexp(relu(x) * x, axes=(0,)) + sum(tanh(x), axes=(0,))\n")
    x = [["1/3", 0, "-2/7"]]
    ex = T.grad(P, x)
    b = T.grad(P, x, number="ball", prec=300)
    iv = T.evaluate(P, x, number="interval", prec=300)
    assert b.values[0].overlaps(ex.values[0]) and b.values[0].rad() < 2 ** -280
    lo, hi = iv.values[0].a, iv.values[0].b
    assert float(lo) <= float(b.values[0].mid()) <= float(hi)
    for e, bb in zip(flat(ex.gradient[0]), flat(b.gradient[0])):
        assert bb.overlaps(e)


# --------------------------------------------------------------------------------------- torch as oracle

def _torch_mlp(params, X, labels, dtype):
    tp = [torch.tensor(np.asarray(p, dtype=np.float64), dtype=dtype, requires_grad=True) for p in params]
    h = torch.tensor(np.asarray(X, dtype=np.float64), dtype=dtype)
    for i in range(len(tp) // 2):
        h = h @ tp[2 * i] + tp[2 * i + 1]
        if i < len(tp) // 2 - 1:
            h = torch.relu(h)
    loss = torch.nn.functional.cross_entropy(h, torch.tensor(labels), reduction="sum")
    loss.backward()
    return float(loss.detach()), [p.grad.numpy() for p in tp]


@needs_torch
def test_mlp_gradient_equals_torch_float64_off_kinks():
    rng = np.random.default_rng(0)
    sizes, B = [6, 5, 4, 3], 7
    X = rng.standard_normal((B, 6)).astype(np.float32)
    labels = rng.integers(0, 3, B)
    params = [(rng.standard_normal(s) * 0.5).astype(np.float32) for a, b_ in zip(sizes[:-1], sizes[1:])
              for s in ((a, b_), (b_,))]
    P = mlp_loss(X, np.eye(3)[labels], sizes)
    g = T.grad(P, params, number="ball")
    assert not S.site_index_set(P, params).kinks       # no pre-activation is exactly 0 here
    loss, tg = _torch_mlp(params, X, labels, torch.float64)
    assert abs(float(g.values[0].mid()) - loss) <= 1e-12 * (1 + abs(loss))
    for ours, theirs in zip(g.gradient, tg):
        mids = np.array([float(v.mid()) for v in np.ravel(ours)]).reshape(theirs.shape)
        assert np.allclose(mids, theirs, rtol=1e-11, atol=1e-12)
        assert all(v.rad() < 2 ** -100 for v in np.ravel(ours))


@needs_torch
def test_neurons_exactly_at_zero_get_the_torch_convention_exactly():
    # first-layer pre-activations x @ W1 + b1 are exactly 0 for two neurons of every sample (b1 cancels them)
    X = np.array([[1, 2], [3, -1], [0.5, 0.25]], dtype=np.float32)
    W1 = np.array([[1, 0, 2], [0, 0, -1]], dtype=np.float32)
    b1 = np.array([0, 0, 0], dtype=np.float32)
    X[:, 1] = 0                                       # x @ W1 column 1 is 0, column 2 is 2*x0
    W2 = np.array([[1, -1], [2, 1], [0.5, 0.5]], dtype=np.float32)
    b2 = np.array([0.25, -0.25], dtype=np.float32)
    labels = np.array([0, 1, 1])
    params = [W1, b1, W2, b2]
    P = mlp_loss(X, np.eye(2)[labels], [2, 3, 2])
    iset = S.site_index_set(P, params)
    assert sorted((k.eqn, tuple(k.site)) for k in iset.kinks) == [(2, (i, 1)) for i in range(3)]
    g = T.grad(P, params, number="ball", prec=200)
    loss, tg = _torch_mlp(params, X, labels, torch.float64)
    for ours, theirs in zip(g.gradient, tg):    # relu'(0) = 0 in torch: the same selection gradient
        mids = np.array([float(v.mid()) for v in np.ravel(ours)]).reshape(theirs.shape)
        assert np.allclose(mids, theirs, rtol=1e-12, atol=1e-14)
    # the neuron's weights get exactly 0 from the tied samples, as torch's threshold_backward gives
    assert all(v.is_zero() for v in np.asarray(g.gradient[0])[:, 1])


@needs_torch
@pytest.mark.parametrize("seed", [0, 1])
def test_cnn_with_maxpool_ties_follows_the_first_element_rule(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (2, 1, 6, 6)).astype(np.float64)       # many ties inside pooling windows
    w = rng.integers(-1, 2, (3, 1, 3, 3)).astype(np.float64)
    P = verify.parse("""
def f(x: [2, 1, 6, 6], w: [3, 1, 3, 3]):
    c = relu(conv2d(x, w, padding=(1, 1)))
    m = max_pool2d(c, kernel=(2, 2))
    return sum(m * m, axes=(0, 1, 2, 3)) + sum(amax(m, axes=(2, 3)), axes=(0, 1))
""")
    g = T.grad(P, [x, w])
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    c = torch.relu(torch.nn.functional.conv2d(xt, wt, padding=1))
    m = torch.nn.functional.max_pool2d(c, 2)
    out = (m * m).sum() + torch.amax(m, dim=(2, 3)).sum()
    out.backward()
    assert float(g.values[0]) == float(out.detach())
    # a wrong tie rule moves whole units of gradient; amax splits ties into thirds (float64 rounding)
    assert np.allclose([float(v) for v in flat(g.gradient[0])], xt.grad.numpy().ravel(), rtol=1e-15, atol=1e-15)
    assert np.allclose([float(v) for v in flat(g.gradient[1])], wt.grad.numpy().ravel(), rtol=1e-15, atol=1e-15)


@needs_torch
def test_tensor_ops_against_torch_at_random_points():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 5))
    w = rng.standard_normal((6, 1, 2, 2))
    P = verify.parse("""
def f(x: [2, 3, 5, 5], w: [6, 1, 2, 2]):
    c = conv2d(x, w, stride=(2, 1), dilation=(1, 2), groups=3, padding=(1, 0, 0, 1))
    a = avg_pool2d(c, kernel=(2, 2), stride=(1, 1))
    s = sort_axis(reshape(a, shape=(2, 6, 6)), axis=2, descending=True)
    return sum(s * s, axes=(0, 1, 2)) + sum(logsumexp(c, axes=(1, 3)), axes=(0, 1))
""")
    g = T.grad(P, [x, w], number="ball", prec=128)
    xt, wt = (torch.tensor(v, requires_grad=True) for v in (x, w))
    c = torch.nn.functional.conv2d(torch.nn.functional.pad(xt, (0, 1, 1, 0)), wt, stride=(2, 1), dilation=(1, 2),
                                   groups=3)
    a = torch.nn.functional.avg_pool2d(c, 2, stride=1)
    s = torch.sort(a.reshape(2, 6, 6), dim=2, descending=True, stable=True).values
    out = (s * s).sum() + torch.logsumexp(c, dim=(1, 3)).sum()
    out.backward()
    assert abs(float(g.values[0].mid()) - float(out.detach())) < 1e-10
    for ours, theirs in ((g.gradient[0], xt.grad), (g.gradient[1], wt.grad)):
        assert np.allclose([float(v.mid()) for v in flat(ours)], theirs.numpy().ravel(), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------ program text

def test_program_text_with_an_arrays_file_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    A = Arrays({"w": ExactArray.from_any(rng.standard_normal((4, 3)).astype(np.float32)),
                "b": ExactArray.from_any([1, "1/3", -2])}, "m.npz")
    A.save(tmp_path / "m.npz")
    src = f'arrays("m.npz", digest="{A.digest}")\n\ndef f(x: [2, 4]):\n    h = relu(x @ const("w") + const("b"))\n' \
          '    return sum(amax(h, axes=(1,)), axes=0)\n'
    (tmp_path / "m.prog").write_text(src)
    P = verify.parse(str(tmp_path / "m.prog"))
    assert P.arrays["b"].to_fmpq().tolist() == [1, fmpq(1, 3), -2]
    (tmp_path / "again.prog").write_text(to_text(P))
    assert verify.parse(str(tmp_path / "again.prog")) == P
    assert load_npz(str(tmp_path / "m.npz"), A.digest) == A
    g = verify.grad(P, [[[1, 2, 3, 4], [0, 0, 0, 0]]])
    assert g.exact and np.shape(g.gradient[0]) == (2, 4)


def test_a_changed_weight_is_a_different_program(tmp_path):
    A = Arrays({"w": ExactArray.from_any([1.5, 2.0])}, "m.npz")
    A.save(tmp_path / "m.npz")
    B = Arrays({"w": ExactArray.from_any([1.5, 2.5])}, "m.npz")
    (tmp_path / "m.prog").write_text(f'arrays("m.npz", digest="{B.digest}")\ndef f(x: [2]):\n'
                                     '    return sum(x * const("w"), axes=(0,))\n')
    with pytest.raises(ParseError, match="does not match the program"):
        verify.parse(str(tmp_path / "m.prog"))


@pytest.mark.parametrize("src, where, msg", [
    ('def f(x: [2, "a"]):\n    return x\n', "1:10", "list of sizes"),
    ("def f(x: [2]):\n    return x @ x @ x\n", "2:12", "@ multiplies"),
    ("def f(x: [2, 3], y: [4]):\n    return x + y\n", "2:12", "do not broadcast"),
    ('def f(x: [2]):\n    return const("w")\n', "2:12", "arrays"),
    ("def f(x: [2, 3]):\n    return sum(x, axes=(2,))\n", "2:12", "out of range"),
    ("def f(x: [2, 3]):\n    return reshape(x, shape=(5,))\n", "2:12", "cannot reshape"),
    ("def f(x: [1, 1, 2, 2], w: [1, 2, 3, 3]):\n    return conv2d(x, w)\n", "2:12", "input channels"),
    ('arrays("../m.npz", digest="0")\ndef f(x):\n    return x\n', "1:1", "beside the program"),
    ('arrays("nosuch.npz", digest="0")\ndef f(x):\n    return x\n', "1:1", "not found"),
])
def test_tensor_program_text_errors_name_the_place(src, where, msg):
    with pytest.raises((ParseError, ProgramError)) as e:
        verify.parse(src)
    assert where in str(e.value) and msg in str(e.value)


def test_points_must_fit_the_declared_shapes():
    P = verify.parse("def f(x: [2]):\n    return sum(x, axes=(0,))\n")
    with pytest.raises(InputError, match=r"shape \[3\]"):
        verify.evaluate(P, [[1, 2, 3]])
    with pytest.raises(InputError, match="not a finite number|only finite"):
        verify.evaluate(P, [np.array([1.0, np.nan])])
    assert verify.evaluate(P, [np.array([0.1, 0.2], dtype=np.float32)]).values[0] == \
        fmpq(*np.float32(0.1).item().as_integer_ratio()) + fmpq(*np.float32(0.2).item().as_integer_ratio())


def test_exact_arrays_are_exact():
    a = ExactArray.from_any(np.array([0.1, -3.0, 1e-30, 2.0 ** 70], dtype=np.float64))
    assert a.to_fmpq().tolist() == [fmpq(*v.as_integer_ratio()) for v in (0.1, -3.0, 1e-30, 2.0 ** 70)]
    assert a.to_float().tolist() == [0.1, -3.0, 1e-30, 2.0 ** 70]
    b = ExactArray.from_any([["1/3", 2], [-1, "0.25"]])
    assert b.den == 12 and b.to_fmpq().tolist() == [[fmpq(1, 3), 2], [-1, fmpq(1, 4)]]
    with ctx.workprec(64):
        assert T.get_tensor_system("ball").const_array(b)[0, 0].contains(arb(1) / 3)


def test_grad_of_a_tensor_program_takes_inputs_by_name_or_position():
    P = verify.parse("def f(x: [2], W1: [2, 2]):\n    return sum(relu(x @ W1), axes=(0,))\n")
    point = [np.array([1., 2.]), np.eye(2)]
    by_name = verify.grad(P, point, wrt=["W1"]).gradient
    by_position = verify.grad(P, point, wrt=[1]).gradient
    assert by_name[0] is None and by_position[0] is None
    assert by_name[1].tolist() == by_position[1].tolist() == [[1, 1], [2, 2]]
    with pytest.raises(verify.InputError, match="wrt='W2' is not an input of f"):
        verify.grad(P, point, wrt=["W2"])
