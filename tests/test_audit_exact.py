"""The exact rational gradient on request (``verify.audit(..., exact=True)``, ``Auditor.audit(..., exact=True)``,
``verify audit --exact``) and bfloat16 models: the same verdict as the float filter, the gradient in exact
rationals equal to the tensor interpreter's exact gradient, and torch's bfloat16 gradient read as the float32
numbers it holds."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from flint import fmpq

import verify
from verify.interpret import tensor as T
from verify.numbers.ball import json_number

torch = pytest.importorskip("torch")

HERE = os.path.dirname(__file__)
EXAMPLES = os.path.join(HERE, "..", "examples")


class Small(torch.nn.Module):
    def __init__(self, dtype=torch.float32):
        super().__init__()
        torch.manual_seed(3)
        self.a = torch.nn.Linear(4, 3).to(dtype)
        self.b = torch.nn.Linear(3, 2).to(dtype)

    def forward(self, x, y):
        return ((self.b(torch.relu(self.a(x))) - y) ** 2).sum()       # rational: an exact rational gradient


def _args(dtype=torch.float32):
    g = torch.Generator().manual_seed(5)
    return torch.randn(6, 4, generator=g).to(dtype), torch.randn(6, 2, generator=g).to(dtype)


def _exact_grad(rep):
    """The tensor interpreter's exact selection gradient of the imported program, per audited input."""
    imp = rep.imported
    g = T.grad(imp.program, imp.point, wrt=rep.wrt)
    return [np.asarray(g.gradient[i], dtype=object) for i in rep.wrt]


def test_exact_true_gives_the_exact_rational_gradient():
    model, args = Small(), _args()
    fast = verify.audit(model, *args)
    rep = verify.audit(model, *args, exact=True)
    assert rep.exact and not fast.exact
    assert rep.verdict_word == fast.verdict_word == "PROVED"
    for got, want in zip(rep.exact_gradient, _exact_grad(rep)):
        assert got.shape == want.shape
        assert all(isinstance(v, fmpq) for v in got.ravel()) and list(got.ravel()) == list(want.ravel())
    # the filter's enclosures contain it
    for enc, want in zip(fast.exact_gradient, _exact_grad(rep)):
        lo, hi = enc.mid - enc.radius(), enc.mid + enc.radius()
        for v, a, b in zip(want.ravel(), lo.ravel(), hi.ravel()):
            assert fmpq(*float(a).as_integer_ratio()) <= v <= fmpq(*float(b).as_integer_ratio())
    assert any("exact=True" in n for n in rep.notes)
    js = rep.json()
    assert [e["input"] for e in js["exact_gradient"]] == [rep.inputs[i].name for i in rep.wrt]
    for e, g in zip(js["exact_gradient"], rep.exact_gradient):
        assert e["shape"] == list(g.shape) and [_q(v) for v in e["values"]] == list(g.ravel())
    assert "exact_gradient" not in fast.json()


def _q(text):
    """The fmpq of a JSON number "p/q" or "n"."""
    p, _, q = text.partition("/")
    return fmpq(int(p), int(q or 1))


def test_the_auditor_takes_exact_as_a_default_and_per_audit():
    model, args = Small(), _args()
    aud = verify.Auditor(model, *args)
    assert not aud.audit().exact
    rep = aud.audit(exact=True)
    assert rep.exact and all(isinstance(v, fmpq) for v in rep.exact_gradient[0].ravel())
    assert verify.Auditor(model, *args, exact=True).audit().exact
    assert aud.exports == 1


def test_cli_exact_prints_every_element_of_the_exact_gradient(tmp_path):
    script = os.path.join(EXAMPLES, "audit_torch.py") + ":make"
    out = subprocess.run([sys.executable, "-m", "verify", "audit", script, "--json", "--exact"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 1, out.stderr          # the example's float kink: REFUTED either way
    obj = json.loads(out.stdout)
    import jsonschema
    from importlib import resources
    schema = json.loads(resources.files("verify.commands").joinpath("output.schema.json").read_text())
    jsonschema.validate(obj, schema)
    sys.path.insert(0, EXAMPLES)
    try:
        import audit_torch
    finally:
        sys.path.pop(0)
    model, args = audit_torch.make()
    rep = verify.audit(model, *args, exact=True)
    # cross-entropy: exact values that are not rational come as balls at the precision that decided them
    want = {rep.inputs[i].name: g for i, g in zip(rep.wrt, rep.exact_gradient)}
    assert {e["input"] for e in obj["exact_gradient"]} == set(want)
    for e in obj["exact_gradient"]:
        assert e["shape"] == list(want[e["input"]].shape)
        assert e["values"] == [json_number(v) for v in want[e["input"]].ravel().tolist()]
    plain = subprocess.run([sys.executable, "-m", "verify", "audit", script, "--json"], capture_output=True,
                           text=True, timeout=600)
    assert "exact_gradient" not in json.loads(plain.stdout)


def test_a_bfloat16_model_is_audited():
    """torch's bfloat16 gradient has no numpy dtype: it is read as the float32 numbers it holds, and the bound is
    the one of bfloat16 storage accumulating in float32."""
    model, args = Small(torch.bfloat16), _args(torch.bfloat16)
    rep = verify.audit(model, *args)
    assert rep.verdict_word == "PROVED", rep.summary()
    assert all(a.truth is verify.truth.TRUE for a in rep.agreement)
    assert "bfloat16" in rep.agreement[0].rule
    assert not any("not available" in n for n in rep.notes)        # torch's own values were read too
    # the float gradient audited is torch's, exactly
    xs = [args[0].detach().clone().requires_grad_(True)]
    loss = model(xs[0], args[1])
    grads = torch.autograd.grad(loss, [model.a.weight, xs[0]])
    names = [i.name for i in rep.inputs]
    fg = dict(zip([names[i] for i in rep.wrt], rep.float_gradient))
    w = next(n for n in names if n.endswith("a_weight"))
    assert np.array_equal(fg[w], grads[0].float().numpy())
    assert np.array_equal(fg["x"], grads[1].float().numpy())
    # a gradient given as bfloat16 tensors (a training step's) is read the same way
    aud = verify.Auditor(model, *args)
    again = aud.audit(gradient={"a.weight": grads[0]})
    assert again.verdict_word == "PROVED" and [rep.inputs[i].name for i in again.wrt] == [w]
