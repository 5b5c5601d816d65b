"""The audit's report on one screen: kinks aggregated per layer and class (each class built on purpose, counted
exactly), every float kink listed with its place in the model, the JSON valid against the schema, every kink
into an .npz, the figure; and the pytorch/examples MNIST Net's audit within its size limits (JSON under
1 MB, text under 60 lines) naming its float kinks."""
import importlib.util
import json
import os
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import verify  # noqa: E402
from verify.auditing.kinks import CLASSES  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
D = torch.float64
SCHEMA = json.loads(resources.files("verify.commands").joinpath("output.schema.json").read_text())


def _valid(obj):
    import jsonschema
    jsonschema.validate({"command": "audit", "verdict": "PROVED", **obj}, SCHEMA)


class Every(torch.nn.Module):
    """One layer per kink class, at a point built to sit on each kind of kink exactly."""

    def forward(self, x, y, p, s):
        a = torch.relu(x)                                   # zero: x[1] = 0
        b = torch.clamp(y, -1.0, 1.0)                       # bound: y[2] = 1
        c = torch.nn.functional.max_pool2d(p, 2)            # plateau, tie, below (one window each)
        d = torch.sort(s, stable=True)[0]                   # sort: s has two equal elements
        e = torch.where(x > y, x, y)                        # compare: x[0] = y[0]
        f = torch.maximum(x, y)                             # tie between two arguments: x[0] = y[0]
        w = torch.arange(1.0, 4.0, dtype=D)
        return (w * a).sum() + (w * b).sum() + (c * torch.tensor([1.0, 2.0, 3.0], dtype=D)).sum() + \
            (w * d).sum() + (w * e).sum() + (w * f).sum()


def _every():
    x = torch.tensor([0.5, 0.0, -2.0], dtype=D)
    y = torch.tensor([0.5, 0.25, 1.0], dtype=D)
    p = torch.tensor([[[[0, 0, 3, 3, 5, 2], [0, 0, 1, 2, 2, 1]]]], dtype=D)
    s = torch.tensor([2.0, -1.0, 2.0], dtype=D)
    return Every(), (x, y, p, s)


@pytest.fixture(scope="module")
def every():
    model, args = _every()
    return verify.audit(model, *args)


def test_each_kink_class_is_counted_exactly(every):
    agg = every.kinks()
    assert agg.site_classes == {"zero": 1, "bound": 1, "plateau": 1, "tie": 2, "below": 1, "sort": 1,
                                "compare": 1}
    by_op = {lay.origin.op: lay for lay in agg.layers}
    pool = by_op["aten.max_pool2d_with_indices.default"]
    assert pool.classes == {"plateau": 1, "tie": 1, "below": 1} and pool.sites == 3 and pool.kinked == 3
    assert pool.first == {"plateau": [(0, 0, 0, 0)], "tie": [(0, 0, 0, 1)], "below": [(0, 0, 0, 2)]}
    assert pool.switches == 6 + 1 + 1                        # a plateau of 4 equal values: all 6 pairs vanish
    assert len(every.exact_kinks) == 13                      # 8 sites, of which one plateau (6 switching functions)
    assert by_op["aten.maximum.default"].classes == {"tie": 1}
    assert by_op["aten.relu.default"].first == {"zero": [(1,)]}
    assert every.float_kinks == [] and len(agg.exact_class) == len(every.exact_kinks)
    assert every.verdict_word == "PROVED"                    # float64 decides every kink as the exact point does


def test_the_summary_is_one_screen_with_the_verdict_first(every):
    text = every.summary()
    lines = text.splitlines()
    assert lines[0].startswith("PROVED: audit of Every (torch, float64)")
    header = next(ln for ln in lines if ln.strip().startswith("layer"))
    met = [c for c in CLASSES if c != "jump"]               # the classes this model meets
    assert header.split() == ["layer", "sites", "kinked"] + met + ["float"]
    assert "max_pool2d_with_indices (test_report.py:" in text
    assert len(lines) < 60
    assert repr(every) == "<AuditReport PROVED: Every (torch, float64), 13 exact kink(s), 0 float kink(s)>"


def test_the_json_aggregates_and_is_valid(every):
    obj = every.json()
    _valid(obj)
    assert obj["exact_kinks"] == {"count": 13, "sites": 8, "classes": {"plateau": 1, "zero": 1, "bound": 1,
                                                                      "tie": 2, "below": 1, "sort": 1, "compare": 1}}
    pool = next(lay for lay in obj["layers"] if lay["op"] == "aten.max_pool2d_with_indices.default")
    assert pool["classes"]["plateau"] == {"sites": 1, "first": [[0, 0, 0, 0]]} and pool["kind"] == "max"
    assert json.loads(json.dumps(obj)) == obj


def test_the_json_of_an_artificial_critical_point_is_valid():
    def f(x):                      # t - zero(t): the identity, AD says 0 at 0
        return (x - (torch.relu(-x) + x - torch.relu(x))).sum()
    obj = verify.audit(f, torch.zeros(3, dtype=D)).json()
    _valid(obj)
    assert obj["critical"] == {"selection": True, "clarke": False, "artificial": True}
    assert obj["exact_kinks"] == {"count": 6, "sites": 6, "classes": {"zero": 6}}


def test_every_kink_goes_to_the_npz(every, tmp_path):
    path = every.save_kinks(str(tmp_path / "k.npz"))
    z = np.load(path, allow_pickle=False)
    assert list(z["classes"]) == list(CLASSES)
    got = sorted((int(e), tuple(int(i) for i in s if i >= 0), int(w)) for e, s, w in
                 zip(z["exact_equation"], z["exact_site"], z["exact_switch"]))
    assert got == sorted((s.equation, tuple(s.index), s.switch) for s in every.exact_kinks)
    assert sorted(CLASSES[c] for c in z["exact_class"]) == sorted(every.kinks().exact_class)
    assert len(z["float_equation"]) == 0
    pool = int(z["exact_equation"][list(z["exact_class"]).index(CLASSES.index("plateau"))])
    assert z["layers"][z["layer_of_equation"][pool - 1]].startswith("max_pool2d_with_indices")


@pytest.fixture(scope="module")
def refuted():
    spec = importlib.util.spec_from_file_location("audit_torch_example", os.path.join(EXAMPLES, "audit_torch.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model, args = mod.make()
    return verify.audit(model, *args)


def test_float_kinks_are_listed_one_by_one_with_their_place(refuted):
    rep = refuted
    obj = rep.json()
    _valid(obj)
    (fk,) = obj["float_kinks"]
    assert fk == {"equation": rep.float_kinks[0].equation, "site": [0, 0], "switch": 0, "layer": 0, "kind": "zero",
                  "module": "", "op": "aten.relu.default", "source": fk["source"], "exact": ">0", "float": "0",
                  "float_from": "framework"}
    assert fk["source"].startswith("audit_torch.py:") and "torch.relu" in fk["source"]
    text = rep.summary()
    assert "float kinks: 1, where floats decide" in text
    assert "site [0, 0], switching function 1: exact >0, float 0 (framework)" in text


def test_the_figure(every, tmp_path):
    from matplotlib.image import imread
    path = every.plot(str(tmp_path / "f.png"))
    img = imread(path)
    assert img.shape[0] > 500 and img.shape[1] > 1200
    assert np.std(img[..., :3]) > 0.05                       # something is drawn


def test_the_bound_is_one_function(every, refuted):
    # the figure draws each element against the bound the agreement compared it with: the same elements are
    # outside (when the agreement changes its bound, element_bounds must follow)
    from verify.auditing import figure, floats
    from verify.auditing.figure import element_bounds, errors
    assert getattr(every.agreement[0], "bound", None) is not None or figure.SLACK == floats.SLACK
    assert sum(a.outside for a in refuted.agreement) == 6
    for rep in (every, refuted):
        for i, a in enumerate(rep.agreement):
            err, bound = errors(rep, i)
            assert int(np.sum(err > bound)) == a.outside
            assert element_bounds(rep, i).shape == tuple(rep.inputs[rep.wrt[i]].shape)


# ------------------------------------------------------------------------------------ the MNIST Net

@pytest.fixture(scope="module")
def mnist():
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("mnist_net_example", os.path.join(EXAMPLES, "mnist_net.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model, args = mod.make()
    return verify.audit(model, *args)


def test_the_mnist_net_report_fits(mnist, tmp_path):
    obj = mnist.json()
    _valid(obj)
    size = len(json.dumps({"command": "audit", "verdict": mnist.verdict_word, "reason": mnist.verdict, **obj}))
    assert size < 1_000_000
    text = mnist.summary()
    assert len(text.splitlines()) < 60 and text.splitlines()[0].startswith(mnist.verdict_word + ": audit of Loss")
    agg = mnist.kinks()
    pool = next(lay for lay in agg.layers if "max_pool2d" in lay.origin.op)
    assert pool.origin.module == "net" and pool.origin.source.startswith("mnist_net.py:")
    assert agg.site_classes.get("plateau", 0) > 10_000                 # windows of relu's zeros
    assert set(agg.site_classes) <= {"plateau", "tie", "below", "zero"}
    assert mnist.float_kinks, "the example's point has float kinks: the report must name them"
    for fk in obj["float_kinks"]:
        assert fk["module"] == "net" and fk["op"] == "aten.max_pool2d_with_indices.default" and \
            fk["source"].startswith("mnist_net.py:") and fk["kind"] == "max"
    first = mnist.float_kinks[0]
    assert f"site {list(first.index)}, switching function {first.switch + 1}" in text
    z = np.load(mnist.save_kinks(str(tmp_path / "k.npz")))
    assert len(z["exact_equation"]) == len(mnist.exact_kinks) and len(z["float_equation"]) == len(mnist.float_kinks)
    assert os.path.getsize(mnist.plot(str(tmp_path / "f.png"))) > 10_000


def test_cli_kinks_and_plot(tmp_path):
    target = os.path.join(EXAMPLES, "audit_torch.py") + ":make"
    npz, png = tmp_path / "k.npz", tmp_path / "f.png"
    out = subprocess.run([sys.executable, "-m", "verify", "audit", target, "--kinks", str(npz), "--plot", str(png)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 1, out.stderr
    assert out.stdout.startswith("REFUTED: audit of Net (torch, float32)") and len(out.stdout.splitlines()) < 60
    assert npz.exists() and png.exists() and "kinks written to" in out.stderr
    bad = subprocess.run([sys.executable, "-m", "verify", "audit", target, "--plot", str(tmp_path / "f.txt")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "must end with .png" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "verify", "audit", target, "--kinks", "/nonexistent/k.npz"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_the_documented_console_example_is_the_mnist_text(mnist):
    import re
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "audit.md"), encoding="utf-8").read()
    console = re.search(r"```console\n\$ verify audit examples/mnist_net.py:make[^\n]*\n(.*?)```", doc, re.S).group(1)
    text = mnist.summary().splitlines()
    for line in console.splitlines():
        if line == "..." or line.endswith((" written to kinks.npz", " written to audit.png")):
            continue          # omitted lines, and what the command says on stderr about its files
        assert line in text, f"docs/audit.md shows a line the audit does not print: {line!r}"
