"""Normalisation kernels' saved statistics, torch.empty written through slices (circular padding), and
cov / corrcoef, imported from PyTorch and compared with torch live (float64, CPU).

- A statistic torch gives no grad_fn (native_layer_norm's mean and rstd, batch norm's saved mean and rstd) is
  a value when it is returned (``Imported.no_gradient`` names it; its value is torch's), and refused as soon
  as a computation uses it; an audit of such an output is refused.  Group norm's mean and rstd do have a
  gradient in torch, but only jointly (measured here): the loss must reach both or neither.
- torch.empty: an element is defined once written; reading only written elements imports, reading an
  unwritten one is refused.
- cov with torch's correction / fweights / aweights, corrcoef clipped to [-1, 1]: values and gradients at
  random points and at perfect correlation (the clip's bound), exact identities in rationals.
"""
import numpy as np
import pytest
from flint import fmpq

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")

import verify  # noqa: E402
from verify.frameworks import opinfo  # noqa: E402
from verify.interpret.tensor import evaluate  # noqa: E402
from import_helpers import close, exact_equal  # noqa: E402

D = torch.float64
aten = torch.ops.aten
F = torch.nn.functional


def t(x):
    return torch.tensor(x, dtype=D)


def torch_grads(f, args):
    """torch's gradient of the first output of ``f`` with respect to every argument (zeros where unused)."""
    args = [a.detach().clone().requires_grad_(True) for a in args]
    out = f(*args)
    loss = out[0] if isinstance(out, tuple) else out
    gs = torch.autograd.grad(loss, args, allow_unused=True)
    return [np.zeros(tuple(a.shape)) if g is None else g.numpy() for a, g in zip(args, gs)]


def ours(f, *args):
    """(verify's values of every output, verify's gradient of output 0, the Imported)."""
    imp = verify.from_torch(f, *args)
    vals, grads = opinfo.ours_run(imp)
    return vals, grads, imp


def check_against_torch(f, *args):
    vals, grads, imp = ours(f, *args)
    out = f(*args)
    out = out if isinstance(out, tuple) else (out,)
    for k, (v, o) in enumerate(zip(vals, out)):
        close(v, o.detach().numpy(), f"output {k}")
    for k, (g, tg) in enumerate(zip(grads, torch_grads(f, args))):
        close(g, tg, f"gradient {k}")
    return vals, grads, imp


# ------------------------------------------------------------------------------ saved statistics

def test_layer_norm_statistics_are_returned_as_values_torch_gives_no_gradient():
    x = t([[1.0, 2.0, 4.0], [-0.5, 0.25, 3.0]])
    w = t([0.5, -1.5, 2.0])

    def f(x, w):
        y, mean, rstd = torch.native_layer_norm(x, (3,), w, None, 0.5)
        return (y * t([[1, 2, 3], [4, 5, 6]])).sum(), mean, rstd
    vals, grads, imp = check_against_torch(f, x, w)
    assert set(imp.no_gradient) == {1, 2} and "no gradient in torch" in imp.no_gradient[1]
    # exact identity: the mean is the rational mean of each row
    assert [v for v in np.asarray(vals[1]).ravel()] == [fmpq(7, 3), fmpq(11, 12)]
    _, mean, rstd = torch.native_layer_norm(x.requires_grad_(True), (3,), w, None, 0.5)
    assert mean.grad_fn is None and rstd.grad_fn is None       # what makes them stop-gradients in torch


@pytest.mark.parametrize("use", ["mean", "rstd", "both"])
def test_a_computation_that_uses_a_statistic_is_refused(use):
    x = t([[1.0, 2.0, 4.0]])

    def f(x):
        y, mean, rstd = torch.native_layer_norm(x, (3,), None, None, 0.5)
        extra = {"mean": mean.sum(), "rstd": rstd.sum(), "both": (mean * rstd).sum()}[use]
        return y.sum() + extra
    with pytest.raises(verify.InputError, match="has no gradient in torch"):
        verify.from_torch(f, x)


def test_batch_norm_statistics_used_in_training_are_refused():
    x = torch.linspace(-1.0, 2.0, 12, dtype=D).reshape(3, 2, 2) ** 2

    def f(x):
        y, m, r = torch.native_batch_norm(x, None, None, torch.zeros(2, dtype=D), torch.ones(2, dtype=D), True,
                                          0.1, 1e-5)
        return (y * m.reshape(1, 2, 1)).sum()
    with pytest.raises(verify.InputError, match="saved mean output has no gradient in torch"):
        verify.from_torch(f, x)


def test_a_returned_statistic_is_neither_differentiated_nor_audited():
    x = t([[0.75]])

    def f(x):
        return torch.native_layer_norm(x, (1,), None, None, 0.5)[1]
    imp = verify.from_torch(f, x)
    assert set(imp.no_gradient) == {0}
    with pytest.raises(verify.InputError, match="no gradient in torch"):
        imp.grad()
    with pytest.raises(verify.InputError, match="no gradient"):
        verify.audit(f, x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_norm_training_statistics_and_gradient_equal_torch(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, 2, generator=g, dtype=D)
    w, b = torch.randn(3, generator=g, dtype=D), torch.randn(3, generator=g, dtype=D)
    weights = torch.randn(4, 3, 2, generator=g, dtype=D)

    class BN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("rm", torch.zeros(3, dtype=D))
            self.register_buffer("rv", torch.ones(3, dtype=D))

        def forward(self, x, w, b):
            y, m, r = torch.native_batch_norm(x, w, b, self.rm, self.rv, True, 0.1, 1e-5)
            return (weights * y).sum(), m, r
    vals, grads, imp = ours(BN(), x, w, b)
    xs = [a.clone().requires_grad_(True) for a in (x, w, b)]
    out = BN()(*xs)
    assert set(imp.no_gradient) == {1, 2} and out[1].grad_fn is None
    for k in range(3):
        close(vals[k], out[k].detach().numpy(), f"output {k}")
    for k, (ga, gb) in enumerate(zip(grads, torch.autograd.grad(out[0], xs))):
        close(ga, gb.numpy(), f"gradient {k}")


@pytest.mark.parametrize("name", ["native_layer_norm", "native_batch_norm", "_native_batch_norm_legit",
                                  "native_group_norm", "_batch_norm_with_update"])
def test_opinfo_normalisation_samples_import(name):
    op = next(o for o in opinfo.float64_autograd_ops() if opinfo.op_name(o) == name)
    for k, sample in enumerate(op.sample_inputs("cpu", D, requires_grad=False)):
        if k == 3:
            break
        res = opinfo.check(op, sample)
        assert res.status == "imported", (name, k, res.status, res.detail)


def test_the_opinfo_loss_leaves_out_the_outputs_torch_does_not_differentiate():
    op = next(o for o in opinfo.float64_autograd_ops() if opinfo.op_name(o) == "native_layer_norm")
    case = opinfo.Case(op, next(iter(op.sample_inputs("cpu", D, requires_grad=False))))
    opinfo.torch_run(case)
    assert case.stopped == {1, 2}
    # the loss is the weighted output 0 alone
    args = [a.clone().requires_grad_(True) for a in case.inputs()]
    loss, y, _, _ = case.fn(*args)
    inp, a, kw = case.rebuild(args)
    y2 = op.op(inp, *a, **kw)[0]
    assert torch.equal(loss, (case.weights[0] * y2).sum())


# ----------------------------------------------------------------------------------- group norm

def _group(x, w, b):
    return torch.native_group_norm(x, w, b, 2, 4, 3, 2, 0.5)


GX = torch.linspace(-1.3, 2.1, 24, dtype=D).reshape(2, 4, 3) ** 3
GW, GB = t([0.5, -1.0, 1.5, 0.25]), t([0.1, 0.2, -0.3, 0.4])
W1, W2 = t([[1.0, -2.0], [0.5, 3.0]]), t([[-1.5, 0.75], [2.0, 1.0]])


def test_group_norm_statistics_have_torch_s_gradient_when_the_loss_reaches_both():
    def with_y(x, w, b):
        y, m, r = _group(x, w, b)
        return (y * GX).sum() + (W1 * m).sum() + (W2 * r).sum()

    def without_y(x, w, b):
        _, m, r = _group(x, w, b)
        return (W1 * m).sum() + (W2 * r).sum()
    check_against_torch(with_y, GX, GW, GB)
    check_against_torch(without_y, GX, GW, GB)
    # the mean's derivative is 1 / (group size) per element: torch's gradient is that, not a stop-gradient
    def mean_only(x, w, b):
        _, m, r = _group(x, w, b)
        return m[0, 0] + 0 * r.sum()       # 0 * rstd: torch then takes the mean's gradient (both defined)
    _, grads, _ = check_against_torch(mean_only, GX, GW, GB)
    g = np.asarray(grads[0])[0, 0, 0]
    assert (g - fmpq(1, 6)).contains(0) and float(g.rad()) < 1e-14     # a ball (the rstd's sqrt) holding 1/6


@pytest.mark.parametrize("which", [1, 2])
def test_group_norm_one_statistic_alone_is_refused_as_torch_drops_it(which):
    def f(x, w, b):
        out = _group(x, w, b)
        return (out[0] * GX).sum() + (W1 * out[which]).sum()
    # measured: torch's gradient leaves that statistic out
    xs = [a.clone().requires_grad_(True) for a in (GX, GW, GB)]
    out = _group(*xs)
    only_y = torch.autograd.grad((out[0] * GX).sum(), xs[0], retain_graph=True)[0]
    full = torch.autograd.grad(f(*xs), xs[0])[0]
    assert torch.allclose(full, only_y, rtol=1e-12, atol=1e-12)
    with pytest.raises(verify.InputError, match="only when both are defined"):
        verify.from_torch(f, GX, GW, GB)


# ------------------------------------------------------------------------------- torch.empty, pad

@pytest.mark.parametrize("shape,pad", [((2, 5), (1, 2)), ((2, 3, 4), (2, 1)), ((1, 2, 3, 4), (1, 2, 2, 1)),
                                       ((1, 1, 2, 3, 3), (1, 1, 0, 2, 1, 0))])
def test_circular_pad_equals_torch(shape, pad):
    g = torch.Generator().manual_seed(len(shape))
    x = torch.randn(*shape, generator=g, dtype=D)
    wshape = F.pad(x, pad, mode="circular").shape
    w = torch.arange(float(np.prod(wshape)), dtype=D).reshape(wshape) % 7 - 3

    def f(x):
        return (w * F.pad(x, pad, mode="circular")).sum()
    vals, grads, _ = check_against_torch(f, x)
    # each input element is read once plus once per wrapped copy: the gradient is a sum of integer weights
    exact_equal(grads[0], torch_grads(f, [x])[0], "circular pad gradient")


def test_reading_only_written_elements_of_empty_imports():
    x = t([[0.5, -1.25, 2.0], [3.0, 0.75, -0.5]])

    def f(x):
        e = torch.empty(2, 4, dtype=D)
        e[:, 1:] = x
        e[:, :1] = x[:, 2:] * 2
        return (e.t() * t([1, 2, 3, 4]).reshape(4, 1)).sum()
    check_against_torch(f, x)

    def part(x):
        e = torch.empty(2, 4, dtype=D)
        e[:, :3] = x
        return e[:, 1:3].sum()
    check_against_torch(part, x)


def test_reading_an_unwritten_element_of_empty_is_refused():
    x = t([[0.5, -1.25, 2.0], [3.0, 0.75, -0.5]])

    def f(x):
        e = torch.empty(2, 4, dtype=D)
        e[:, :3] = x
        return e[:, 2:].sum()          # column 3 was never written
    with pytest.raises(verify.InputError, match="torch.empty are undefined"):
        verify.from_torch(f, x)

    def g(x):
        return torch.empty(2, 3, dtype=D).mul(x).sum()
    with pytest.raises(verify.InputError, match="torch.empty are undefined"):
        verify.from_torch(g, x)


# ------------------------------------------------------------------------------------ cov, corrcoef

@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("weights", ["none", "f", "a", "fa"])
@pytest.mark.parametrize("seed", [0, 1])
def test_cov_equals_torch(correction, weights, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, generator=g, dtype=D)
    fw = torch.tensor([1, 3, 2, 1, 2]) if "f" in weights else None
    aw = torch.rand(5, generator=g, dtype=D) + 0.25 if "a" in weights else None
    args = [x] + ([aw] if aw is not None else [])

    def f(x, *a):
        return (torch.cov(x, correction=correction, fweights=fw, aweights=a[0] if a else None) *
                t([[1, 2, 3], [4, 5, 6], [7, 8, 9]])).sum()
    check_against_torch(f, *args)


def test_cov_of_a_vector_is_the_exact_variance():
    x = t([0.5, -1.25, 2.0, 3.0])
    vals, _, _ = ours(lambda x: torch.cov(x, correction=0), x)
    q = [fmpq(1, 2), fmpq(-5, 4), fmpq(2), fmpq(3)]
    m = sum(q) / 4
    assert vals[0] == sum((v - m) ** 2 for v in q) / 4


def test_cov_refuses_what_torch_cannot_normalise():
    x = t([[0.5, -1.25]])
    with pytest.raises(verify.InputError, match="degrees of freedom"):
        verify.from_torch(lambda x: torch.cov(x, correction=2), x)
    with pytest.raises(verify.InputError, match="fweights cannot be negative"):
        verify.from_torch(lambda x: torch.cov(x, fweights=torch.tensor([2, -1])), t([[0.5, -1.25, 2.0]])[:, :2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_corrcoef_equals_torch(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 6, generator=g, dtype=D)
    w = torch.randn(3, 3, generator=g, dtype=D)
    vals, _, _ = check_against_torch(lambda x: (w * torch.corrcoef(x)).sum(), x)
    corr = verify.from_torch(lambda x: torch.corrcoef(x), x)
    diag = np.diagonal(np.asarray(evaluate(corr.program, corr.point).values[0], dtype=object))
    assert all(v == 1 and v.rad() == 0 for v in diag)     # exactly 1 (the clip's bound), not a ball around it


def test_corrcoef_at_perfect_correlation_clips_as_torch():
    # two observations: every pair of rows is perfectly correlated (+-1, the clip's bounds); the clip passes
    # the derivative there (clamp's convention), and r is locally constant, so the gradient is 0
    x = t([[0.5, 2.0], [-1.0, 3.0], [2.0, -0.25]])
    w = t([[1.0, 2.0, -1.0], [0.5, 3.0, 1.5], [-2.0, 0.25, 1.0]])
    vals, grads, imp = ours(lambda x: (w * torch.corrcoef(x)).sum(), x)
    assert all(g == 0 for g in np.asarray(grads[0]).ravel())
    r = verify.from_torch(lambda x: torch.corrcoef(x), x)
    exact_equal(evaluate(r.program, r.point).values[0], t([[1, 1, -1], [1, 1, -1], [-1, -1, 1]]).numpy(),
                "corrcoef at +-1")     # exact: sqrt(c_ii c_jj) of the rational square c_ij^2
    close(grads[0], torch_grads(lambda x: (w * torch.corrcoef(x)).sum(), [x])[0])


def test_corrcoef_of_a_vector_is_c_over_c():
    vals, grads, _ = ours(lambda x: torch.corrcoef(x) * 3, t([0.5, -1.0, 2.0]))
    assert vals[0] == 3 and all(g == 0 for g in np.asarray(grads[0]).ravel())


def test_export_leaves_torch_s_cov_kernels_as_they_were():
    import torch._decomp
    before = dict(aten.cov.default.py_kernels)
    verify.from_torch(lambda x: torch.cov(x).sum(), t([[0.5, -1.0, 2.0]]))
    assert dict(aten.cov.default.py_kernels) == before and aten.cov.default not in torch._decomp.meta_table
    x = t([[0.5, -1.0, 2.0], [1.0, 0.25, -3.0]])
    assert torch.allclose(torch.cov(x), t(np.cov(x.numpy())))
