"""The zones of a training step (verify.auditing.zones): the telescoped difference of two selection gradients
against a full recomputation under the other convention (exactly, in rationals) and against torch with the
other kink choice written as its own backward (relu'(0) = 1; Boustany's max-pool that splits a tie); a plateau
whose alternatives cancel is decided "same", not undecided; float kinks by kind."""
import dataclasses

import numpy as np
import pytest
from flint import fmpq

torch = pytest.importorskip("torch")
F = torch.nn.functional

import verify  # noqa: E402
from verify.auditing import zones as Z  # noqa: E402
from verify.auditing.report import Site  # noqa: E402
from verify.interpret import tensor as T  # noqa: E402
from verify.truth import FALSE, TRUE  # noqa: E402


def _audit(model, *args):
    model.zero_grad()
    model(*args).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    return verify.Auditor(model, *args).audit(*args, gradient=grads), grads


def full_difference(rep, overrides):
    """The alternative's exact selection gradient minus the framework's, each from its own exact run, its own
    index rules choosing the pieces (the oracle): one array per input in wrt."""
    P, r = rep.imported.program, Z.ExactSource(rep).run()
    kinked = Z.kinked_equations(rep)
    eqns = list(P.eqns)
    for k in kinked:
        e = Z.rewritten(P.eqns[k], overrides)
        if e is not None:
            eqns[k] = e
    alt = dataclasses.replace(P, eqns=tuple(eqns))
    ns = r.ns
    xs = T.coerce_inputs(P, rep.imported.point)
    with T.working_precision(ns, r.prec):
        r2 = T.run(alt, ns, [ns.const_array(x) for x in xs], r.convention)       # its own index rules choose
        g2 = T.vjp(r2, [ns.const(fmpq(1))], rep.wrt)
        g1 = T.vjp(r, [ns.const(fmpq(1))], rep.wrt)
        return {i: ns.to_fq(ns.sub(g2[i], g1[i])) for i in rep.wrt}


def telescoped(rep, overrides):
    P, r = rep.imported.program, Z.ExactSource(rep).run()
    kinked = Z.kinked_equations(rep)
    eqns = [Z.rewritten(e, overrides) if k in kinked and Z.rewritten(e, overrides) is not None else e
            for k, e in enumerate(P.eqns)]
    alt = dataclasses.replace(P, eqns=tuple(eqns))
    changed, pattern = Z.changed_sites(r, alt, [k for k in kinked if eqns[k] is not P.eqns[k]])
    run = T.TRun(alt, r.ns, r.env, r.args, pattern, r.prec, r.convention, r.site_args)
    with T.working_precision(r.ns, r.prec):
        D = Z.Difference(rep, r, run, changed).values() if changed else [None] * P.n_inputs
        return {i: (np.full(P.shapes[i], fmpq(0), dtype=object) if D[i] is None else r.ns.to_fq(D[i])) for i in rep.wrt}


def _same_exactly(a, b):
    for i in a:
        fa, fb = np.ravel(a[i]), np.ravel(b[i])
        assert all(isinstance(v, fmpq) for v in fa) and [fmpq(v) for v in fa] == [fmpq(v) for v in fb], i


class ReluOne(torch.autograd.Function):
    """relu with relu'(0) = 1 (torch.relu has 0)."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return torch.relu(z)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * (z >= 0).to(g.dtype)


class SplitPool(torch.autograd.Function):
    """2x2 max-pool whose backward shares a tie evenly (Boustany's beta = 1 Jacobian)."""

    @staticmethod
    def forward(ctx, x):
        n, c, h, w = x.shape
        r = x.reshape(n, c, h // 2, 2, w // 2, 2)
        out = r.amax(dim=(3, 5))
        ctx.save_for_backward(r, out)
        return out

    @staticmethod
    def backward(ctx, g):
        r, out = ctx.saved_tensors
        mask = (r == out[:, :, :, None, :, None]).to(g.dtype)
        share = mask / mask.sum(dim=(3, 5), keepdim=True)
        return (share * g[:, :, :, None, :, None]).reshape(r.shape[0], r.shape[1], r.shape[2] * 2, r.shape[4] * 2)


class Mlp(torch.nn.Module):
    def __init__(self, relu=torch.relu):
        super().__init__()
        self.hidden = torch.nn.Linear(3, 4)
        self.out = torch.nn.Linear(4, 2)
        self.relu = relu

    def forward(self, x):
        return (self.out(self.relu(self.hidden(x))) ** 2).sum()


def _kinked_mlp():
    torch.manual_seed(0)
    net = Mlp().double()
    with torch.no_grad():
        net.hidden.weight[1] = torch.tensor([1.0, -1.0, 0.0])
        net.hidden.bias[1] = 0.0
    x = torch.tensor([[0.5, 0.5, 1.0], [0.25, -1.0, 2.0]], dtype=torch.float64)
    return net, x


def test_relu_at_zero_differs_under_relu_one_as_torch_says():
    net, x = _kinked_mlp()
    rep, grads = _audit(net, x)
    assert rep.verdict_word == "PROVED" and len(rep.exact_kinks) == 1
    z = Z.zones(rep)
    change = {c.name: c for c in z.changes}
    assert change["relu'(0)=1"].outcome == "differs" and change["relu'(0)=1"].sites == 1
    assert change["jax"].outcome == change["tf"].outcome == "same"       # relu'(0) = 0 there too
    assert z.bifurcation is TRUE and not z.compensation
    diff = telescoped(rep, Z.STUDIES["relu'(0)=1"])
    _same_exactly(diff, full_difference(rep, Z.STUDIES["relu'(0)=1"]))
    net.relu = ReluOne.apply                                             # torch with relu'(0) = 1: the oracle
    net.zero_grad()
    net(x).backward()
    for i in rep.wrt:
        name = rep.inputs[i].source
        theirs = (net.get_parameter(name).grad - grads[name]).numpy()
        ours = np.array([float(v) for v in np.ravel(diff[i])]).reshape(theirs.shape)
        assert np.array_equal(ours != 0, theirs != 0) and np.allclose(ours, theirs, rtol=1e-12, atol=0), name
    assert change["relu'(0)=1"].elements == sum(int(np.count_nonzero(np.ravel(diff[i]) != 0)) for i in rep.wrt)


class Pool(torch.nn.Module):
    def __init__(self, pool=F.max_pool2d):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 1, 1, bias=False)
        self.fc = torch.nn.Linear(1, 1)
        self.pool = pool

    def forward(self, x):
        y = self.pool(self.conv(x), 2) if self.pool is F.max_pool2d else self.pool(self.conv(x))
        return (self.fc(y.flatten(1)) ** 2).sum()


def test_a_max_pool_tie_among_distinct_inputs_differs_when_split_as_torch_says():
    net = Pool().double()
    with torch.no_grad():
        net.conv.weight.copy_(torch.tensor([1.0, 1.0]).reshape(1, 2, 1, 1))
        net.fc.weight.fill_(0.75)
        net.fc.bias.fill_(0.5)
    # conv output [[1, 1], [0, -1]]: a tie between (0, 0) and (0, 1), whose inputs differ
    x = torch.tensor([[[[1.0, 0.0], [0.0, -1.0]], [[0.0, 1.0], [0.0, 0.0]]]], dtype=torch.float64)
    rep, grads = _audit(net, x)
    z = Z.zones(rep)
    change = {c.name: c for c in z.changes}
    assert change["max-pool split"].outcome == "differs" and z.bifurcation is TRUE
    diff = telescoped(rep, Z.STUDIES["max-pool split"])
    _same_exactly(diff, full_difference(rep, Z.STUDIES["max-pool split"]))
    net.pool = SplitPool.apply
    net.zero_grad()
    net(x).backward()
    theirs = (net.conv.weight.grad - grads["conv.weight"]).numpy().ravel()
    i = [rep.inputs[k].source for k in rep.wrt].index("conv.weight")
    assert [float(v) for v in np.ravel(diff[rep.wrt[i]])] == theirs.tolist() == [-0.5 * 2 * 0.75 * 1.25, 0.5 * 2 *
                                                                               0.75 * 1.25]


class LeNet(torch.nn.Module):
    def __init__(self, loss):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 3, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(16, 10)
        self.loss = loss

    def forward(self, x, t):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        z = self.fc(x.flatten(1))
        if self.loss == "square":
            return (z ** 2).sum() / 8 - z.gather(1, t[:, None]).sum()
        return F.cross_entropy(z, t)


def _digits(n=4):
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return torch.tensor(X[:n] / 16.0).reshape(n, 1, 8, 8), torch.tensor(y[:n])


@pytest.mark.parametrize("seed", range(4))
def test_the_telescoped_difference_is_the_full_recomputation_exactly(seed):
    pytest.importorskip("sklearn")
    torch.manual_seed(seed)
    net = LeNet("square").double()
    with torch.no_grad():           # small dyadic weights: plateaus over the background and ties between them
        for p in net.parameters():
            p.copy_(torch.round(p * 8) / 8)
        net.conv1.bias.copy_(torch.tensor([0.25, -0.5, 0.125]))
    rep, _ = _audit(net, *_digits())
    assert rep.exact_kinks
    for name, table in Z.alternatives("torch").items():
        full = full_difference(rep, table)
        _same_exactly(telescoped(rep, table), full)
        change = Z.convention_change(rep, name, table)
        nonzero = sum(int(np.count_nonzero(np.ravel(full[i]) != 0)) for i in full)
        assert change.outcome == ("differs" if nonzero else "same") and change.elements == nonzero, name


def test_a_plateau_whose_alternatives_cancel_is_same_not_undecided():
    pytest.importorskip("sklearn")
    torch.manual_seed(0)
    net = LeNet("cross_entropy").double()
    with torch.no_grad():
        net.conv1.bias.copy_(torch.tensor([0.25, -0.5, 0.125]))    # positive plateaus over the zero background
    rep, _ = _audit(net, *_digits())
    change = Z.convention_change(rep, "max-pool split", Z.STUDIES["max-pool split"])
    # the cross-entropy makes every cotangent a ball: the bias differences cancel inside each window and only the
    # exact forward pass sees it
    assert change.sites > 0 and change.outcome == "same" and change.undecided == 0
    for i, d in full_difference(rep, Z.STUDIES["max-pool split"]).items():
        assert all(not (v > 0 or v < 0) for v in np.ravel(d)), i         # the oracle's balls all hold 0


def test_no_exact_kink_means_no_bifurcation_and_float_kinks_are_sorted_by_kind():
    class Rep:
        framework = "torch"
        exact_kinks = []
        float_kinks = [Site(0, (0,), 0, "", exact=">0", float="0 (replay)"),
                       Site(0, (1,), 0, "", exact="0", float=">0 (framework)"),
                       Site(0, (2,), 0, "", exact="<0", float=">0 (framework)"),
                       Site(0, (3,), 0, "", exact=">0", float="? (replay)")]
    z = Z.zones(Rep())
    assert z.bifurcation is FALSE and z.compensation
    assert z.json()["float_kinks"] == {"float_tie": 1, "missed_tie": 1, "flip": 1}
    assert [c.outcome for c in z.changes] == ["same"] * len(Z.alternatives("torch"))


class Binary(torch.nn.Module):
    """Elementwise kinks with broadcasting: maximum (tf gives a tie to the first argument, torch splits it) and
    clamp (jax's clip takes 1/2 at a bound, torch 1)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.tensor([1.5], dtype=torch.float64))

    def forward(self, x):
        m = torch.maximum(x * self.w, self.b)                    # (3, 2) against (1,): broadcast
        return (torch.clamp(m, max=4.0) ** 2).sum()


def test_elementwise_kinks_with_broadcasting_match_the_full_recomputation():
    net = Binary()
    # x * w ties b at [0, 0] (3/2 * 1) and [1, 1] (3/4 * 2); clamp sits at its bound at [2, 0] (4 * 1)
    x = torch.tensor([[1.5, 0.5], [0.25, 0.75], [4.0, 0.125]], dtype=torch.float64)
    rep, _ = _audit(net, x)
    assert len(rep.exact_kinks) >= 3
    outcomes = {}
    for name, table in Z.alternatives("torch").items():
        full = full_difference(rep, table)
        _same_exactly(telescoped(rep, table), full)
        outcomes[name] = Z.convention_change(rep, name, table).outcome
        assert outcomes[name] == ("differs" if any(np.count_nonzero(np.ravel(d) != 0) for d in full.values())
                                  else "same"), name
    assert outcomes["tf"] == "differs" and outcomes["jax"] == "differs"
