"""verify.Auditor: import once, audit many.  After an optimizer step (weights changed in place), new
batches, new labels and new batch-norm statistics, an audit equals a fresh ``verify.audit`` of the same model
at the same point, and the framework exports (traces) the model once; a given gradient (what the optimizer
uses) is audited instead of the framework's own, and a corrupted one is REFUTED."""
import json

import numpy as np
import pytest

import verify
from verify.truth import FALSE, TRUE

torch = pytest.importorskip("torch")


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(3, 4)
        self.norm = torch.nn.BatchNorm1d(4)
        self.out = torch.nn.Linear(4, 2)

    def forward(self, x, labels):
        logits = self.out(torch.relu(self.norm(self.hidden(x))))
        return torch.nn.functional.cross_entropy(logits, labels)


def _net():
    torch.manual_seed(3)
    net = Net().eval()
    with torch.no_grad():
        net.norm.running_mean.copy_(torch.tensor([0.25, -0.5, 0.0, 0.125]))
        net.norm.running_var.copy_(torch.tensor([1.0, 2.0, 0.5, 4.0]))
    return net


def _batch(seed, n=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g), torch.randint(0, 2, (n,), generator=g)


def _same(a, b):
    assert json.dumps(a.json(), sort_keys=True) == json.dumps(b.json(), sort_keys=True)


@pytest.fixture
def exports(monkeypatch):
    """Counts the calls of torch.export.export made by verify."""
    calls = []
    real = torch.export.export

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)
    monkeypatch.setattr(torch.export, "export", counting)
    return calls


def test_an_optimizer_step_and_new_batches_are_audited_without_exporting_again(exports):
    net = _net()
    x, y = _batch(0)
    auditor = verify.Auditor(net, x, y)
    assert len(exports) == 1 and auditor.exports == 1
    first = auditor.audit(x, y)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    opt.zero_grad()
    net(x, y).backward()
    opt.step()                                              # the weights change in place
    with torch.no_grad():
        net.norm.running_var.mul_(1.5)                      # and a buffer
    again = auditor.audit(x, y)
    assert len(exports) == 1 and auditor.exports == 1
    fresh = verify.audit(net, x, y)
    assert len(exports) == 2                                # (the fresh audit exports, the auditor did not)
    _same(again, fresh)
    w0 = first.float_gradient[[i.source for i in first.inputs].index("hidden.weight")]
    w1 = again.float_gradient[[i.source for i in again.inputs].index("hidden.weight")]
    assert not np.array_equal(w0, w1)                       # the audit saw the new weights
    x2, y2 = _batch(1)                                      # a new batch with new labels: lowered, not exported
    _same(auditor.audit(x2, y2), verify.audit(net, x2, y2))
    assert auditor.exports == 1 and len(exports) == 3


def test_new_shapes_export_again():
    net = _net()
    auditor = verify.Auditor(net, *_batch(0))
    rep = auditor.audit(*_batch(1, n=3))
    assert auditor.exports == 2
    _same(rep, verify.audit(net, *_batch(1, n=3)))


def test_the_program_is_reused_when_only_weights_change():
    net = _net()
    x, y = _batch(0)
    auditor = verify.Auditor(net, x, y)
    a = auditor.imported(x, y)
    b = auditor.imported(*_batch(0))
    assert b.program is a.program                           # same data, same weights: nothing rebuilt
    with torch.no_grad():
        net.hidden.weight.add_(0.25)
    c = auditor.imported(x, y)
    assert c.program is a.program and c.point[0] != a.point[0]      # a parameter is an input: a new point
    with torch.no_grad():
        net.norm.running_mean.add_(1.0)
    d = auditor.imported(x, y)                              # a buffer is an array constant: new arrays
    assert d.program is not a.program and d.program.eqns == a.program.eqns
    assert d.program.arrays["norm.running_mean"] != a.program.arrays["norm.running_mean"]


def test_a_given_gradient_is_audited_and_a_corrupted_one_is_refuted():
    net = _net()
    x, y = _batch(0)
    auditor = verify.Auditor(net, x, y)
    net.zero_grad()
    net(x, y).backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    rep = auditor.audit(x, y, gradient=grads)
    assert [rep.inputs[i].source for i in rep.wrt] == list(grads)       # the parameters, not x
    assert rep.selection_gradient is TRUE
    _same(rep, verify.audit(net, x, y, wrt=list(grads)))
    grads["out.bias"][1] += 1e-3                                        # a corrupted element
    bad = auditor.audit(x, y, gradient=grads)
    assert bad.selection_gradient is FALSE and bad.verdict_word == "REFUTED"
    outside = {a.name: a.outside for a in bad.agreement}
    assert outside == {"hidden_weight": 0, "hidden_bias": 0, "norm_weight": 0, "norm_bias": 0, "out_weight": 0,
                       "out_bias": 1}


def test_given_gradients_are_checked():
    net = _net()
    x, y = _batch(0)
    auditor = verify.Auditor(net, x, y)
    with pytest.raises(verify.InputError, match="nosuch"):
        auditor.audit(x, y, gradient={"nosuch": torch.zeros(3)})
    with pytest.raises(verify.InputError, match="shape"):
        auditor.audit(x, y, gradient={"out.bias": torch.zeros(3)})
    with pytest.raises(verify.InputError, match="program input"):
        auditor.audit(x, y, gradient=[torch.zeros(2)])
    with pytest.raises(verify.InputError, match="unknown option"):
        auditor.audit(x, y, tolerance=3)


def test_repr_is_short():
    auditor = verify.Auditor(_net(), *_batch(0))
    assert repr(auditor) == "<Auditor of Net (torch), 1 export(s)>"


def test_jax_parameters_are_arguments(monkeypatch):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    traces = []
    real = jax.make_jaxpr

    def counting(fn, *a, **k):
        if fn is loss:                  # (a custom_jvp rule's own jaxpr is traced when a lowering reads its kinks)
            traces.append(1)
        return real(fn, *a, **k)
    monkeypatch.setattr(jax, "make_jaxpr", counting)

    def loss(params, x, labels):
        h = jax.nn.relu(x @ params["w1"] + params["b1"])
        return -jnp.sum(jax.nn.log_softmax(h @ params["w2"])[jnp.arange(labels.shape[0]), labels])
    rng = np.random.default_rng(0)
    params = {"w1": jnp.asarray(rng.standard_normal((3, 4)), jnp.float32), "b1": jnp.zeros(4, jnp.float32),
              "w2": jnp.asarray(rng.standard_normal((4, 2)), jnp.float32)}
    x = jnp.asarray(rng.standard_normal((5, 3)), jnp.float32)
    labels = jnp.array([0, 1, 1, 0, 1])
    auditor = verify.Auditor(loss, params, x, labels)
    assert repr(auditor) == "<Auditor of loss (jax), 1 export(s)>"
    grads = jax.grad(loss)(params, x, labels)
    params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)     # an SGD step
    rep = auditor.audit(params, x, labels[::-1])
    assert auditor.exports == 1 and len(traces) == 1
    _same(rep, verify.audit(loss, params, x, labels[::-1]))
    grads = jax.grad(loss)(params, x, labels[::-1])
    given = auditor.audit(params, x, labels[::-1], gradient={"params": grads})     # the pytree, by argument
    assert [given.inputs[i].source for i in given.wrt] == ["params['b1']", "params['w1']", "params['w2']"]
    assert given.selection_gradient is TRUE
    grads["w2"] = grads["w2"].at[0, 0].add(1e-2)
    assert auditor.audit(params, x, labels[::-1], gradient={"params": grads}).selection_gradient is FALSE
    assert auditor.exports == 1


def test_constant_parameters_are_arrays_read_live():
    net = _net()
    x, y = _batch(0)
    auditor = verify.Auditor(net, x, y, params="constants")
    first = auditor.imported(x, y)
    with torch.no_grad():
        net.out.weight.mul_(-2.0)
    rep = auditor.audit(x, y)
    assert auditor.exports == 1 and auditor.imported(x, y).program is not first.program
    assert [i.source for i in rep.inputs] == ["x"]
    _same(rep, verify.audit(net, x, y, params="constants"))


def test_jax_constant_arguments_are_arrays_read_live():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    def f(w, x):
        return jnp.sum(jax.nn.relu(x @ w))
    w = jnp.asarray([[1.0, -1.0], [0.5, 2.0]], jnp.float32)
    x = jnp.asarray([[1.0, 0.5], [-1.0, 0.25]], jnp.float32)
    auditor = verify.Auditor(f, w, x, constant_args=(0,))
    rep = auditor.audit(w * -1.5, x)
    assert auditor.exports == 1 and [i.source for i in rep.inputs] == ["x"]
    _same(rep, verify.audit(f, w * -1.5, x, constant_args=(0,)))
