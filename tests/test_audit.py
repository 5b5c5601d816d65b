"""verify audit: real PyTorch and JAX models at points built to sit on kinks exactly, in float32 only, or both;
the audit names exactly those elements, says whether the framework's gradient is a selection gradient at the
exact point, and finds an artificial critical point of a real model."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from verify.truth import FALSE, TRUE, UNKNOWN

torch = pytest.importorskip("torch")
from verify import audit  # noqa: E402

HERE = os.path.dirname(__file__)
EXAMPLES = os.path.join(HERE, "..", "examples")


def _sites(sites):
    return sorted((s.eqn, tuple(s.index)) for s in sites)


def _linear_relu(w_rows, b, x):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(len(w_rows[0]), len(w_rows))
            self.out = torch.nn.Linear(len(w_rows), 2)

        def forward(self, x, labels):
            return torch.nn.functional.cross_entropy(self.out(torch.relu(self.hidden(x))), labels, reduction="sum")
    torch.manual_seed(1)
    net = Net()
    with torch.no_grad():
        net.hidden.weight[:] = torch.tensor(w_rows)
        net.hidden.bias[:] = torch.tensor(b)
    return net, (torch.tensor(x), torch.tensor([0, 1][:len(x)]))


def test_torch_float_kink_and_exact_kink_are_named():
    import importlib.util
    spec = importlib.util.spec_from_file_location("audit_torch_example", os.path.join(EXAMPLES, "audit_torch.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net, args = mod.make()
    rep = audit(net, *args)
    relu = next(k for k, o in rep.imported.nonsmooth())
    assert _sites(rep.exact_kinks) == [(relu, (1, 1))]          # 1/2 - 1/2 = 0 exactly
    assert _sites(rep.float_kinks) == [(relu, (0, 0))]          # 2**-30 + 1 - 1: 0 in float32 only
    assert rep.float_kinks[0].exact == ">0" and rep.float_kinks[0].float.startswith("0")
    assert rep.differentiable is UNKNOWN
    assert rep.selection_gradient is FALSE                      # torch differentiated relu'(0) = 0 there
    bad = {a.name: a.outside for a in rep.agreement}
    assert bad["hidden_weight"] > 0 and bad["out_weight"] == 0


def test_an_exact_kink_that_float32_misses():
    # 1 + 2**-30 - 1 - 2**-30 = 0 exactly; summed left to right in float32 it is -2**-30
    net, args = _linear_relu([[1.0, 1.0, -1.0, -1.0], [0.5, 0.25, 0.0, 0.0]], [0.0, 0.125],
                             [[1.0, 2.0 ** -30, 1.0, 2.0 ** -30], [0.5, 0.5, 0.5, 0.5]])
    rep = audit(net, *args)
    relu = next(k for k, o in rep.imported.nonsmooth())
    assert (relu, (0, 0)) in _sites(rep.exact_kinks)
    k = next(s for s in rep.exact_kinks if tuple(s.index) == (0, 0))
    assert k.float.split()[0] in ("<0", "0")        # the framework's own float value, whatever its order
    if k.float.startswith("<0"):
        assert (relu, (0, 0)) in _sites(rep.float_kinks)


def test_off_the_kinks_torch_returns_the_gradient():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 1))
    x = torch.randn(4, 5)
    rep = audit(lambda x: net(x).sum(), x)
    assert rep.exact_kinks == [] and rep.float_kinks == []
    assert rep.differentiable is TRUE and rep.selection_gradient is TRUE
    assert all(a.agrees for a in rep.agreement)


def test_an_artificial_critical_point_of_a_real_model():
    def f(x):                      # t - zero(t) with zero(t) = relu(-t) + t - relu(t): the identity, yet AD says 0
        return (x - (torch.relu(-x) + x - torch.relu(x))).sum()
    rep = audit(f, torch.zeros(3, dtype=torch.float64))
    assert np.all(rep.float_gradient[0] == 0)
    assert rep.critical == {"selection": TRUE, "clarke": FALSE, "artificial": TRUE}
    assert rep.selection_gradient is TRUE            # 0 is a selection gradient here: it is AD's answer
    assert "artificial critical point" in rep.verdict


def test_audit_certificates_check(tmp_path):
    import verify
    from verify.auditing import audit_certificates
    from verify.certificates import load

    def f(x):
        return (x - (torch.relu(-x) + x - torch.relu(x))).sum()
    rep = audit(f, torch.zeros(3, dtype=torch.float64))
    certs = audit_certificates(rep)
    assert [s for s, _ in certs] == ["", ".critical"]
    for suffix, tc in certs:
        path = tmp_path / f"a{suffix}.json"
        tc.write(str(path))
        verify.check(str(path))                      # the independent checker re-derives every claim
    d = load(str(tmp_path / "a.json"))
    assert d["kind"] == "tensor_differentiable" and d["result"]["kinks"] == 6 and not d["result"]["differentiable"]


def test_jax_example_names_the_same_elements():
    pytest.importorskip("jax")
    import importlib.util
    spec = importlib.util.spec_from_file_location("audit_jax_example", os.path.join(EXAMPLES, "audit_jax.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    f, args = mod.make()
    rep = audit(f, *args)
    relu = next(k for k, o in rep.imported.nonsmooth())
    assert _sites(rep.exact_kinks) == [(relu, (1, 1))]
    assert _sites(rep.float_kinks) == [(relu, (0, 0))]
    assert rep.selection_gradient is FALSE


def test_cli_audit_json(tmp_path):
    out = subprocess.run([sys.executable, "-m", "verify", "audit", os.path.join(EXAMPLES, "audit_torch.py") + ":make",
                          "--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 1, out.stderr
    obj = json.loads(out.stdout)
    import jsonschema
    from importlib import resources
    schema = json.loads(resources.files("verify.commands").joinpath("output.schema.json").read_text())
    jsonschema.validate(obj, schema)
    assert obj["verdict"] == "REFUTED" and obj["exact_kinks"]["count"] == 1 and len(obj["float_kinks"]) == 1
    assert obj["exact_kinks"]["classes"] == {"zero": 1} and obj["float_kinks"][0]["site"] == [0, 0]
    cert = tmp_path / "audit.json"
    out = subprocess.run([sys.executable, "-m", "verify", "audit", os.path.join(EXAMPLES, "audit_torch.py") + ":make",
                          "--certificate", str(cert)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 1 and cert.exists()
    chk = subprocess.run([sys.executable, "-m", "verify", "check", str(cert)], capture_output=True, text=True,
                         timeout=600)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    bad = subprocess.run([sys.executable, "-m", "verify", "audit", "nosuch.py:make"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "no such script" in bad.stderr and "Traceback" not in bad.stderr
