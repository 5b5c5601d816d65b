"""The kink-hit experiment (verify.reproduce.kinkhit) and its exact audit (verify.reproduce.exact_mlp): exact
pre-activations against a brute-force fmpq forward pass, float-only and exact kinks told apart, and the committed
table has a row per precision and depth with counts."""
import json
import pathlib

import numpy as np
import pytest
from flint import fmpq

from verify.reproduce import exact_mlp, kinkhit

ROOT = pathlib.Path(__file__).resolve().parent.parent / "proofs" / "kinkhit"


def _q(v):
    return fmpq(*float(v).as_integer_ratio())


def brute_force(weights, biases, x):
    """Exact pre-activations, one fmpq at a time (the oracle)."""
    h = [[_q(v) for v in row] for row in x]
    out = []
    for layer, (W, b) in enumerate(zip(weights, biases)):
        z = [[sum((_q(W[j, k]) * h[i][k] for k in range(W.shape[1])), fmpq(0)) + _q(b[j])
              for j in range(W.shape[0])] for i in range(len(h))]
        out.append(z)
        h = [[v if v > 0 else fmpq(0) for v in row] for row in z]
    return out


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_exact_kinks_match_brute_force(dtype):
    rng = np.random.default_rng(7)
    sizes = [5, 8, 6, 3]
    ws = [rng.uniform(-1, 1, (b, a)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.uniform(-1, 1, b).astype(dtype) for b in sizes[1:]]
    ws[1][2, 3] = dtype(2.0 ** -20)                   # mixed exponents, subnormal-range entries in float16
    bs[0][1] = dtype(0)
    ws[0][4] = 0                                      # neuron 4 of layer 1 is exactly 0 on every sample ...
    bs[0][4] = dtype(0)
    x = (rng.integers(0, 17, (4, sizes[0])) / 16).astype(dtype)
    oracle = brute_force(ws, bs, x)
    zeros = [sum(1 for row in z for v in row if v == 0) for z in oracle]
    assert exact_mlp.exact_kinks(ws, bs, x) == zeros[:-1] and zeros[0] >= 4     # ... and counted
    assert exact_mlp.exact_kinks(ws, bs, x, include_output=True) == zeros


def test_exact_and_float_kinks_are_told_apart():
    # an exact kink: 1/2 - 1/2 = 0
    w = [np.array([[1.0, -1.0]]), np.array([[1.0]])]
    b = [np.array([0.0]), np.array([0.0])]
    assert exact_mlp.exact_kinks(w, b, np.array([[0.5, 0.5]])) == [1]
    # a float kink only: (1e16 + 1) - 1e16 is 0.0 in float64, 1 exactly
    w = [np.array([[1e16, 1.0, -1e16]]), np.array([[1.0]])]
    x = np.array([[1.0, 1.0, 1.0]])
    assert float(np.float64(1e16) + np.float64(1.0) - np.float64(1e16)) == 0.0
    assert exact_mlp.exact_kinks(w, b, x) == [0]
    assert exact_mlp.exact_kinks(w, b, x, include_output=True) == [0, 0]
    from verify.errors import InputError
    with pytest.raises(InputError):
        exact_mlp.exact_kinks(w, b, np.array([[np.inf, 1.0, 1.0]]))


def test_committed_table_has_a_row_per_precision_and_depth_with_counts():
    res = json.loads((ROOT / "results.json").read_text())
    rows = res["table"]
    assert {(r["precision"], r["depth"]) for r in rows} == \
        {(p, d) for p in kinkhit.PRECISIONS for d in kinkhit.DEPTHS}
    for r in rows:
        assert r["inits"] == res["scale"]["inits"] and 0 <= r["differing_inits"] <= r["inits"]
        assert r["differing_batches"] <= r["float_kink_batches"] <= r["batches"]
        assert r["exact_kink_batches"] + r["float_only_batches"] == r["float_kink_batches"]
        if r["precision"] == "float64":
            assert r["differing_inits"] == 0 and r["audited_exact_kink_batches"] == 0
    assert sum(r["audited_batches"] for r in rows if r["precision"] == "float64") > 0
    md = (ROOT / "table.md").read_text()
    assert md.count("| float16 |") == len(kinkhit.DEPTHS) and "871/1000" in md and "MNIST" in md


def test_one_epoch_counts_and_audit():
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    r = kinkhit.one_epoch(3, 1, "float64", audit=True)
    assert r["batches"] == r["audited_batches"] == -(-1797 // kinkhit.BATCH)
    assert r["float_kink_batches"] == r["differing_batches"] == r["audited_exact_kink_batches"] == 0


def test_missing_dependencies_are_a_skip_with_the_install_line(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    monkeypatch.setitem(__import__("sys").modules, "sklearn.datasets", None)
    line = kinkhit.missing()
    assert line.startswith("the kink-hit experiment needs scikit-learn") and "[paper]" in line
    res = kinkhit.run(str(tmp_path))
    assert res["ok"] and res["rows"][0]["verdict"] == "SKIPPED" and res["rows"][0]["ours"] == line
