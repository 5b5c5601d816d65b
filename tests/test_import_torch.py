"""verify.from_torch against live PyTorch (float64, CPU).

Every op mapping is measured against torch's own autograd at a point on its kinks (ties) and off them;
whole models (an MLP, a CNN with max-pool, a model with sort / where / clamp / hardtanh / relu6 / abs /
leaky_relu, softmax cross-entropy, layer norm) round-trip: value and gradient equal torch's at random
points to float64 rounding (tests/import_helpers.py states the bound) and exactly at dyadic points built
to sit on kinks.  Skipped when torch is not installed.
"""
import json
import os
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import verify  # noqa: E402
from verify.frameworks import ImportFailure  # noqa: E402
from verify.rational import to_fmpq  # noqa: E402
from import_helpers import assert_kinks_explicit, close, exact_equal  # noqa: E402

D = torch.float64


def t(x):
    return torch.tensor(x, dtype=D)


def run_torch(f, args, params=()):
    """Value and gradients (w.r.t. the float arguments and ``params``) by torch's autograd."""
    args = [a.detach().clone().requires_grad_(True) if a.is_floating_point() else a for a in args]
    for p in params:
        p.grad = None
    out = f(*args)
    out.backward()
    grads = [a.grad if a.grad is not None else torch.zeros_like(a) for a in args if a.is_floating_point()]
    pgrads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    return out.item(), [g.numpy() for g in pgrads + grads]


def run_ours(imp, number="exact"):
    g = verify.grad(imp.program, imp.point, number=number)
    return g.values[0], g.gradient


# ------------------------------------------------------------------------------------- op by op, at a tie

W6 = t([[1., 2., 3.], [4., 5., 6.]])
X_TIE = t([[-1., 0., 1.], [6., 0., -2.]])
Y_TIE = t([[-1., 1., 1.], [5., 0., -3.]])
# piecewise-linear ops: on these dyadic points float64 is exact, so torch's gradient must equal ours exactly
PL = {
    "relu": lambda x, y: F.relu(x),
    "leaky_relu": lambda x, y: F.leaky_relu(x, 0.25),
    "hardtanh": lambda x, y: F.hardtanh(x),
    "hardtanh(-2, 6)": lambda x, y: F.hardtanh(x, -2., 6.),
    "relu6": lambda x, y: F.relu6(x),
    "clamp": lambda x, y: torch.clamp(x, 0., 1.),
    "clamp min": lambda x, y: torch.clamp(x, min=0.),
    "clamp max": lambda x, y: torch.clamp(x, max=1.),
    "abs": lambda x, y: x.abs(),
    "maximum": lambda x, y: torch.maximum(x, y),
    "minimum": lambda x, y: torch.minimum(x, y),
    "maximum(x, 0)": lambda x, y: torch.maximum(x, torch.zeros_like(x)),
    "where >": lambda x, y: torch.where(x > 0, x, 0.),
    "where >=": lambda x, y: torch.where(x >= y, x, y),
    "where <=": lambda x, y: torch.where(x <= y, 2 * x, y),
    "where and": lambda x, y: torch.where((x > 0) & (x < 1), x, y),
    "where or not": lambda x, y: torch.where((x < 0) | ~(y > 0), x, y),
    "bool cast": lambda x, y: (x > 0).to(D) * x,
    "amax": lambda x, y: torch.cat([x, y]).amax(0),
    "amin": lambda x, y: torch.cat([x, y]).amin(1),
    "max()": lambda x, y: torch.stack([x, y]).max(),
    "min()": lambda x, y: torch.stack([x, y]).min(),
    "max(dim)": lambda x, y: torch.stack([x, y]).max(0).values,
    "min(dim)": lambda x, y: torch.stack([x, y]).min(2).values,
    "sort stable": lambda x, y: torch.sort(torch.cat([x, y], 1), dim=1, stable=True).values[:, :4],
    "sort stable descending": lambda x, y: torch.sort(torch.cat([x, y], 1), dim=1, stable=True,
                                                      descending=True).values[:, 1:4],
    "sort (<= 16 elements)": lambda x, y: torch.sort(torch.cat([x, y, x], 1), dim=1).values[:, 2:5],
    "sort descending (<= 16)": lambda x, y: torch.sort(torch.cat([x, y], 1), dim=1, descending=True).values[:, :3],
    "max_pool2d": lambda x, y: F.max_pool2d(torch.cat([x, y, x], 1)[None, None], 2, stride=1)[0, 0, :, :3],
    "max_pool2d padded": lambda x, y: F.max_pool2d(torch.cat([x, y], 1)[None, None], 3, stride=2,
                                                   padding=1)[0, 0, :, :3].repeat(1, 1),
    "avg_pool2d": lambda x, y: F.avg_pool2d(torch.cat([x, y], 1)[None, None], 2, stride=1,
                                            padding=1)[0, 0, :2, :3],
    "elu at 0": lambda x, y: F.elu(x * (x == 0)),
    "hardswish": lambda x, y: F.hardswish(x * 3),
    "threshold": lambda x, y: F.threshold(x, -1., 0.5),
    "hardshrink": lambda x, y: F.hardshrink(x, 1.),
    "softshrink": lambda x, y: F.softshrink(y, 1.),
    "prelu": lambda x, y: F.prelu(x, torch.tensor([0.25], dtype=D)),
    "l1_loss": lambda x, y: F.l1_loss(x, y, reduction="none"),
    "smooth_l1_loss": lambda x, y: F.smooth_l1_loss(x, y, reduction="none", beta=1.),
    "huber_loss": lambda x, y: F.huber_loss(x, y, reduction="none", delta=2.),
    "mse_loss": lambda x, y: F.mse_loss(x, y, reduction="none"),
    "structure": lambda x, y: (x.flip(1) + y.roll(1, 0) + x.t().reshape(2, 3) + F.pad(x, (1, 1, 1, 1))[1:3, 1:4]
                               + x[:, :1].expand(2, 3) + torch.stack([x, y])[1] + x[torch.tensor([1, 0])]
                               + torch.index_select(y, 1, torch.tensor([2, 0, 1]))
                               + torch.gather(x, 1, torch.tensor([[2, 2, 0], [1, 0, 0]]))
                               + torch.cat(torch.split(y, [1, 2], dim=1), 1) + x.unsqueeze(0).squeeze(0)
                               + F.pad(y, (0, 1), value=2.)[:, 1:] + x.repeat(2, 1)[1:3]),
}
# smooth or transcendental: compared to float64 rounding, at the tie point too
SMOOTH = {
    "elu": lambda x, y: F.elu(x, 0.5),
    "gelu": lambda x, y: F.gelu(x),
    "gelu tanh": lambda x, y: F.gelu(x, approximate="tanh"),
    "silu": lambda x, y: F.silu(x),
    "softplus": lambda x, y: F.softplus(x, threshold=1.),
    "sigmoid tanh": lambda x, y: torch.sigmoid(x) * torch.tanh(y),
    "softmax": lambda x, y: torch.softmax(x, 1),
    "log_softmax": lambda x, y: torch.log_softmax(y, 0),
    "logsumexp": lambda x, y: torch.logsumexp(x, 1, keepdim=True) * y,
    "layer_norm": lambda x, y: F.layer_norm(x, (3,)) + F.layer_norm(y, (2, 3)),
    "var": lambda x, y: x.var(1, keepdim=True) * y,
    "sqrt rsqrt": lambda x, y: torch.sqrt(x * x + 1) + torch.rsqrt(y * y + 2),
    "exp log": lambda x, y: torch.exp(x) + torch.log1p(y * y) + torch.expm1(x / 4),
    "pow": lambda x, y: x ** 3 + (y * y + 1) ** -0.5 + (x * x + 1).reciprocal(),
    "selu celu": lambda x, y: F.selu(x) + F.celu(y, 0.5),
    "mish": lambda x, y: F.mish(x),
    "logsigmoid": lambda x, y: F.logsigmoid(x),
}


def weighted(fn):
    return lambda x, y: (fn(x, y) * torch.arange(1., 1. + fn(X_TIE, Y_TIE).numel(), dtype=D)
                         .reshape(fn(X_TIE, Y_TIE).shape)).sum()


@pytest.mark.parametrize("name", sorted(PL) + sorted(SMOOTH))
def test_op_matches_torch_at_a_tie_and_off_the_kinks(name):
    """One import per op; the program is then run at the tie point (exact equality for piecewise-linear ops,
    float64 rounding for the others) and at a random point (float64 rounding)."""
    f = weighted({**PL, **SMOOTH}[name])
    imp = verify.from_torch(f, X_TIE, Y_TIE)
    assert_kinks_explicit(imp.program)
    exact = name in PL
    value, grads = run_ours(imp, "exact" if exact else "ball")
    tv, tg = run_torch(f, [X_TIE, Y_TIE])
    check = exact_equal if exact else close
    check(np.array(value), np.array(tv), f"{name} value")
    for o, g, what in zip(grads, tg, ("d/dx", "d/dy")):
        check(o, g, f"{name} {what}")
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    x, y = torch.randn(2, 3, generator=gen, dtype=D), torch.randn(2, 3, generator=gen, dtype=D)
    g = verify.grad(imp.program, [x.numpy(), y.numpy()], number="ball")
    tv, tg = run_torch(f, [x, y])
    close(np.array(g.values[0]), np.array(tv), f"{name} value off the kinks")
    for o, t_ in zip(g.gradient, tg):
        close(o, t_, f"{name} gradient off the kinks")


def test_hardsigmoid_kinks():
    """torch's hardsigmoid_backward multiplies by the float32 constant 1.0f / 6.0f (0.1666666716...), so away
    from its kinks its float64 gradient differs from the derivative 1/6 of its own forward by 2^-25 relative;
    at its kinks (-3 and 3) it is exactly 0, as ours."""
    f = weighted(lambda x, y: F.hardsigmoid(y * 3))
    imp = verify.from_torch(f, X_TIE, Y_TIE)
    _, grads = run_ours(imp)
    _, tg = run_torch(f, [X_TIE, Y_TIE])
    assert [[v == 0 for v in row] for row in grads[1].tolist()] == (tg[1] == 0).tolist()
    one_sixth_f32 = float(np.float32(1.0) / np.float32(6.0))
    exact_equal(grads[1] * 0, tg[1] * 0)
    assert np.allclose(np.vectorize(float)(grads[1]) * one_sixth_f32 * 6, tg[1], rtol=0, atol=2.0 ** -48)


def test_kink_params_are_written_explicitly():
    imp = verify.from_torch(weighted(lambda x, y: F.relu(x) + F.hardtanh(y) + torch.clamp(x, 0., 1.)
                                     + torch.maximum(x, y) + x.abs() + F.leaky_relu(y, 0.5)), X_TIE, Y_TIE)
    text = verify.to_text(imp.program)
    for part in ("relu(x, alpha=0)", "at_hi=0, at_lo=0, hi=1, lo=-1", "at_hi=1, at_lo=1, hi=1, lo=0",
                 "tie='split'", "abs(x, at_zero=0)", "at_zero=1/2, slope=1/2"):
        assert part in text, part
    # the same program under every convention: no param is left to a convention
    for conv in ("torch", "jax", "tf"):
        g = verify.grad(imp.program, imp.point, convention=conv)
        assert [a.tolist() for a in g.gradient] == [a.tolist() for a in run_ours(imp)[1]]


# ---------------------------------------------------------------------------------------------- models

class MLP(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b, dtype=D) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x, c):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = torch.relu(x)
        return (x * c).sum()


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1, dtype=D)
        self.fc = nn.Linear(2 * 3 * 3, 3, dtype=D)

    def forward(self, x, c):
        h = F.max_pool2d(torch.relu(self.conv(x)), 2)
        return (self.fc(h.flatten(1)) * c).sum()


class Zoo(nn.Module):
    """sort / where / clamp / hardtanh / relu6 / abs / leaky_relu on one linear layer."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 5, dtype=D)

    def forward(self, x, c):
        h = self.fc(x)
        a = torch.clamp(h, -1., 1.) + F.hardtanh(h, -2., 2.) + F.relu6(h) + h.abs() + F.leaky_relu(h, 0.125)
        a = a + torch.where(h > 0, h, -h / 2) + torch.sort(h, dim=1, stable=True).values * c
        return (a * c).sum() + torch.maximum(h, torch.zeros_like(h)).amax(1).sum()


class CrossEntropy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6, dtype=D)
        self.fc2 = nn.Linear(6, 3, dtype=D)

    def forward(self, x, labels):
        return F.cross_entropy(self.fc2(torch.relu(self.fc1(x))), labels)


class LayerNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3, dtype=D)
        self.ln = nn.LayerNorm(3, dtype=D)
        self.fc2 = nn.Linear(3, 2, dtype=D)

    def forward(self, x, c):
        return (self.fc2(torch.relu(self.ln(self.fc1(x)))) * c).sum()


_IMPORTED = {}


def imported(model, args):
    """One import per model class (weights are program inputs, so the program does not depend on them)."""
    key = type(model).__name__ + str([tuple(a.shape) for a in args])
    if key not in _IMPORTED:
        imp = verify.from_torch(model, *args)
        assert [i.source for i in imp.inputs][:len(list(model.parameters()))] == \
            [n for n, _ in model.named_parameters()]
        assert_kinks_explicit(imp.program)
        _IMPORTED[key] = imp
    return _IMPORTED[key]


def _check_model(model, args, exact):
    """Our value and gradient (w.r.t. every weight and float input) against torch's at the model's current
    weights and ``args``."""
    imp = imported(model, args)
    point = [p.detach().numpy() for p in model.parameters()] + [a.numpy() for a in args if a.is_floating_point()]
    g = verify.grad(imp.program, point, number="exact" if exact else "ball")
    tv, tg = run_torch(model, list(args), list(model.parameters()))
    check = exact_equal if exact else close
    check(np.array(g.values[0]), np.array(tv), "value")
    for o, t_, info in zip(g.gradient, tg, imp.inputs):
        check(o, t_, info.source)
    return imp, g


def _randomize(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=D))
    return gen


def _dyadic(model, seed):
    """Weights that are small dyadic numbers (multiples of 1/4 in [-2, 2]): float64 arithmetic is exact."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randint(-8, 9, p.shape, generator=gen).to(D) / 4)
    return gen


def test_mlp():
    model = MLP([5, 8, 8, 3])
    for seed in (0, 1):
        gen = _randomize(model, seed)
        _check_model(model, (torch.randn(4, 5, generator=gen, dtype=D), torch.randn(4, 3, generator=gen, dtype=D)),
                     exact=False)
    gen = _dyadic(model, 3)
    x = torch.randint(-4, 5, (4, 5), generator=gen).to(D) / 2
    with torch.no_grad():                     # shift biases so that pre-activations are exactly 0 at x
        model.layers[0].bias[::2] -= model.layers[0](x)[0, ::2]
        model.layers[1].bias[1::3] -= model.layers[1](torch.relu(model.layers[0](x)))[1, 1::3]
    imp, g = _check_model(model, (x, torch.randint(-3, 4, (4, 3), generator=gen).to(D)), exact=True)
    pre = model.layers[0](x).detach()
    assert int((pre == 0).sum()) >= 4                               # on kinks, by construction


def test_cnn_with_max_pool():
    model = CNN()
    gen = _randomize(model, 5)
    _check_model(model, (torch.randn(2, 1, 6, 6, generator=gen, dtype=D), torch.randn(2, 3, generator=gen, dtype=D)),
                 exact=False)
    gen = _dyadic(model, 6)
    x = torch.randint(0, 2, (2, 1, 6, 6), generator=gen).to(D)       # 0/1 pixels: tied windows, zeros
    c = torch.randint(-3, 4, (2, 3), generator=gen).to(D)
    _check_model(model, (x, c), exact=True)
    h = torch.relu(model.conv(x)).detach()
    windows = h.unfold(2, 2, 2).unfold(3, 2, 2).reshape(2, 2, 3, 3, 4)
    assert int((windows == windows.amax(-1, keepdim=True)).sum(-1).gt(1).sum()) > 0     # some tied windows


def test_sort_where_clamp_hardtanh_relu6_abs_leaky_relu():
    model = Zoo()
    gen = _randomize(model, 7)
    _check_model(model, (torch.randn(3, 4, generator=gen, dtype=D), torch.randn(3, 5, generator=gen, dtype=D)),
                 exact=False)
    _dyadic(model, 8)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.weight[:, 0] = 1.
        model.fc.bias.copy_(t([-1., 0., 1., -2., 6.]))      # h = x0 + bias: every kink, and ties for sort
    x = t([[0., 1., 2., 3.], [1., 0., 0., 0.], [-1., 0., 0., 0.]])
    _check_model(model, (x, torch.randint(-3, 4, (3, 5), generator=gen).to(D)), exact=True)


def test_softmax_cross_entropy():
    model = CrossEntropy()
    gen = _randomize(model, 9)
    labels = torch.tensor([0, 2, 1, 2])
    imp, _ = _check_model(model, (torch.randn(4, 4, generator=gen, dtype=D), labels), exact=False)
    assert len(imp.inputs) == len(list(model.parameters())) + 1        # labels are constants, not inputs
    _dyadic(model, 10)
    x = torch.randint(-2, 3, (4, 4), generator=gen).to(D)
    with torch.no_grad():
        model.fc1.bias[:3] -= model.fc1(x)[0, :3]                    # relus on their kink
    _check_model(model, (x, labels), exact=False)
    assert int((model.fc1(x) == 0).sum()) >= 3


def test_layer_norm():
    model = LayerNormNet()
    gen = _randomize(model, 11)
    _check_model(model, (torch.randn(3, 4, generator=gen, dtype=D), torch.randn(3, 2, generator=gen, dtype=D)),
                 exact=False)
    with torch.no_grad():
        model.fc1.weight.copy_(t([[1., 0., 0., 0.], [0., 1., 0., 0.], [0., 0., 1., 0.]]))
        model.fc1.bias.zero_()
        model.ln.bias.zero_()
    x = t([[1., 2., 3., 0.], [-1., 5., 2., 1.], [4., 4., 1., 0.]])   # rows 0, 1: an element equal to the mean
    _check_model(model, (x, torch.randn(3, 2, generator=gen, dtype=D)), exact=False)
    assert int((model.ln(model.fc1(x)) == 0).sum()) == 2                # two relus on their kink


class BatchNormCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, dtype=D)
        self.bn = nn.BatchNorm2d(3, dtype=D)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return F.relu(self.pool(self.bn(self.conv(x)))).sum()


def test_batch_norm_eval_and_training_and_adaptive_pool():
    model = BatchNormCNN().eval()
    gen = _randomize(model, 14)
    with torch.no_grad():
        model.bn.running_mean.copy_(torch.randn(3, generator=gen, dtype=D))
        model.bn.running_var.copy_(torch.rand(3, generator=gen, dtype=D) + 0.5)
    x = torch.randn(2, 2, 4, 4, generator=gen, dtype=D)
    imp, _ = _check_model(model, (x,), exact=False)
    assert set(imp.constants) == {"bn.running_mean", "bn.running_var"}
    model.train()                 # the batch's own statistics (the running statistics' update is a side effect)
    _IMPORTED.clear()
    _check_model(model, (x,), exact=False)
    _IMPORTED.clear()


def test_params_as_constants():
    model = MLP([3, 4, 2])
    gen = _randomize(model, 12)
    x, c = torch.randn(2, 3, generator=gen, dtype=D), torch.randn(2, 2, generator=gen, dtype=D)
    imp = verify.from_torch(model, x, c, params="constants")
    assert [i.source for i in imp.inputs] == ["x", "c"]
    assert set(imp.program.arrays) == {n for n, _ in model.named_parameters()}
    assert "const('layers.0.weight')" in verify.to_text(imp.program)
    value, grads = run_ours(imp, "exact")
    tv, tg = run_torch(model, [x, c])
    close(np.array(value), np.array(tv))
    close(grads[0], tg[0])


@pytest.mark.parametrize("params", ["constants", "inputs"])
def test_text_and_arrays_round_trip(tmp_path, params):
    for model, args in ((CNN(), (torch.randn(1, 1, 6, 6, dtype=D), torch.randn(1, 3, dtype=D))),
                        (Zoo(), (torch.randn(3, 4, dtype=D), torch.randn(3, 5, dtype=D)))):
        _randomize(model, 13)
        imp = verify.from_torch(model, *args, params=params)
        P = imp.program
        if P.arrays:
            P.arrays.save(os.path.join(tmp_path, P.arrays.file))
        path = os.path.join(tmp_path, f"{P.name}.prog")
        with open(path, "w") as fh:
            fh.write(verify.to_text(P))
        Q = verify.parse(path)
        assert Q == P
        assert verify.grad(Q, imp.point).gradient[0].tolist() == verify.grad(P, imp.point).gradient[0].tolist()


def test_origins_name_the_module_and_the_source_line():
    model = CNN()
    imp = verify.from_torch(model, torch.randn(1, 1, 6, 6, dtype=D), torch.randn(1, 3, dtype=D))
    kinds = {imp.origins[k].op: imp.origins[k] for k, _ in imp.nonsmooth()}
    assert set(kinds) == {"aten.relu.default", "aten.max_pool2d_with_indices.default"}
    assert "test_import_torch.py" in kinds["aten.relu.default"].source
    assert "0 at 0" in kinds["aten.relu.default"].note
    conv = [o for o in imp.origins if o.op == "aten.convolution.default"]
    assert conv and conv[0].module == "conv"


# ---------------------------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("fn, words", [
    (lambda x: torch.linalg.svd(x)[0].sum(), "singular vectors are defined up to sign"),
    (lambda x: torch.fft.rfft(x).abs().sum(), "complex"),
    (lambda x: x.argmax().to(D) * x.sum(), "integers from real values"),
    (lambda x: (x * x.detach()).sum(), "detach"),
    (lambda x: torch.masked_select(x, x > 0).sum(), "shape depends on real values"),
    (lambda x: (x // 2).sum(), "rounding_mode"),
    (lambda x: F.dropout(x, 0.5, training=True).sum(), "random"),
    (lambda x: torch.where(x > 0, x, torch.tensor(float("nan"), dtype=D)).sum(), "nan"),
])
def test_unsupported_is_a_clear_error(fn, words):
    with pytest.raises(ImportFailure) as err:
        verify.from_torch(fn, t([[1., -2., 3.], [0., 2., 2.]]))
    assert words in str(err.value)
    assert "test_import_torch.py" in str(err.value)


def test_no_grad_and_detach_are_refused_but_a_constant_may_be_detached():
    def f(x):
        with torch.no_grad():
            y = x * 2
        return (x * y).sum()
    with pytest.raises(ImportFailure, match="higher-order"):
        verify.from_torch(f, t([1., 2.]))
    with pytest.raises(ImportFailure, match="detach"):
        verify.from_torch(lambda x: (x * x.detach()).sum(), t([1., 2.]))
    imp = verify.from_torch(lambda x: (x * torch.tensor([1., 2.], dtype=D).detach()).sum(), t([1., 2.]))
    assert verify.grad(imp.program, imp.point).gradient[0].tolist() == [1, 2]


def test_decompositions_that_change_kinks_are_kept_whole():
    """hardswish's core-ATen decomposition has other kinks than torch's hardswish_backward: we import the op."""
    imp = verify.from_torch(lambda x: F.hardswish(x).sum(), t([-3., 3.]))
    ops = {o.op for o in imp.origins}
    assert "aten.hardswish.default" in ops and "aten.clamp.default" not in ops
    assert verify.grad(imp.program, imp.point).gradient[0].tolist() == [0, 1]


# ----------------------------------------------------------------------------- the measured kink table

TABLE = json.loads((pathlib.Path(__file__).parent / "data" / "kink-conventions.json").read_text())
TORCH_CASES = [c for c in TABLE["cases"] if "torch" in c["expressions"]]


@pytest.mark.parametrize("case", TORCH_CASES, ids=[c["name"] for c in TORCH_CASES])
def test_imported_expressions_reproduce_the_measured_kink_table(case):
    """Every torch expression of tests/data/kink-conventions.json (measured in torch 2.13), imported on scalar
    tensors at its point: our exact gradient is the table's, whatever the convention."""
    args = ", ".join(f"x{i}" for i in range(len(case["point"])))
    f = eval(f"lambda {args}: {case['expressions']['torch']}", {"torch": torch})   # the table's own text
    imp = verify.from_torch(f, *[t(v) for v in case["point"]])
    want = [to_fmpq(g) for g in case["gradient"]["torch"]]
    for conv in ("torch", "jax", "tf"):
        g = verify.grad(imp.program, imp.point, convention=conv)
        ours = [np.asarray(v, dtype=object).item() for v in g.gradient]
        # the table writes a float64 measurement within 1e-6 of a simple fraction as that fraction (its note):
        # a split tie is exactly 1/3 in ours, leaky_relu's slope the double 0.01 (the literal, read exactly)
        assert all(o == w or o == to_fmpq(int(w.p) / int(w.q)) for o, w in zip(ours, want)), (ours, want)


def test_framework_values_sit_beside_the_equations():
    """framework_values runs the imported graph in torch's float arithmetic: every nonsmooth equation's
    origin names a node whose input is the float counterpart of the equation's exact input."""
    from verify.frameworks.torch import framework_values
    model = CNN()
    gen = _randomize(model, 15)
    args = (torch.randn(2, 1, 6, 6, generator=gen, dtype=D), torch.randn(2, 3, generator=gen, dtype=D))
    imp = verify.from_torch(model, *args)
    values = framework_values(imp, *args)
    r = verify.evaluate(imp.program, imp.point, number="ball")
    for k, origin in imp.nonsmooth():
        node = next(n for n in imp.source.graph.nodes if n.name == origin.node)
        theirs = values[node.args[0].name]
        ours = r.run.args[k][0]
        close(np.array([[v for v in np.asarray(ours).ravel()]]), theirs.numpy().reshape(1, -1), origin.node)
