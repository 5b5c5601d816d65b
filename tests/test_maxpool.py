"""`verify reproduce maxpool` (verify.reproduce.maxpool): the beta = 1 max-pool shares a tie as Boustany's does,
a small run's records agree with themselves (a step is in the compensation zone exactly when it has a float
kink, ...), the committed table has a row per precision with Boustany's figures beside ours, and the entry is
skipped with the install line without scikit-learn and torch."""
import json
import pathlib
import subprocess
import sys

import pytest

from verify.reproduce import maxpool

from test_executor import blocked_python

ROOT = pathlib.Path(__file__).resolve().parent.parent / "proofs" / "maxpool"


def test_the_split_max_pool_shares_a_tie_and_torch_gives_it_to_the_first():
    torch = pytest.importorskip("torch")
    net = maxpool.lenet().double()
    x = torch.tensor([[[[1.0, 1.0], [0.0, -2.0]]]], dtype=torch.float64, requires_grad=True)
    net.split = True
    net.pool(x).sum().backward()
    assert x.grad.tolist() == [[[[0.5, 0.5], [0.0, 0.0]]]]
    x.grad = None
    net.split = False
    net.pool(x).sum().backward()
    assert x.grad.tolist() == [[[[1.0, 0.0], [0.0, 0.0]]]]


def test_a_small_run_is_consistent(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    res = maxpool.run(str(tmp_path), scale={"seeds": 1, "steps": 2, "batch": 4}, workers=1)
    assert res["ok"] and [r["verdict"] for r in res["rows"]] == ["MEASURED"] * 3
    assert (tmp_path / "table.md").exists() and pathlib.Path(res["figure"]).stat().st_size > 10_000
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["precision"] for r in saved["table"]] == list(maxpool.PRECISIONS)
    for run in saved["runs"]:
        assert [s["step"] for s in run["steps"]] == [0, 1]
        for s in run["steps"]:
            assert s["compensation"] == (s["float_kinks"] > 0) == (sum(s["float_kinds"].values()) > 0)
            assert (s["bifurcation"] is True) == ("differs" in (s["maxpool"], s["relu"]))
            assert s["float_differs"] or not s["threshold_differs"]       # a threshold only hides differences
            assert s["kinked_sites"] > 0                                    # max-pool windows of relu's zeros
    for row in saved["table"]:
        assert row["steps"] == 2 and row["paper"] == "{}/{}".format(*maxpool.PAPER[row["precision"]])


def test_committed_table_has_a_row_per_precision_beside_boustany():
    res = json.loads((ROOT / "results.json").read_text())
    rows = res["table"]
    assert [r["precision"] for r in rows] == list(maxpool.PRECISIONS)
    n = res["scale"]["seeds"] * res["scale"]["steps"]
    for r in rows:
        assert r["steps"] == n and sum(r["verdicts"].values()) == n
        assert r["bifurcation"] + r["bifurcation_undecided"] <= n and r["compensation"] <= n
        assert r["threshold_differs"] <= r["float_differs"] <= n
    assert rows[2]["compensation"] == 0                       # float64: no float kink on these steps
    md = (ROOT / "table.md").read_text()
    assert all(md.count(f"\n| {p} |") == 1 for p in maxpool.PRECISIONS)
    assert "391/391" in md and "216/391" in md and "0/391" in md
    assert "VGG11" in md and "CIFAR-10" in md


def test_without_the_paper_extra_the_entry_is_skipped_with_the_install_line(tmp_path):
    env = blocked_python(tmp_path, "sklearn", "torch")
    p = subprocess.run([sys.executable, "-m", "verify", "reproduce", "maxpool", "--json", "--out",
                        str(tmp_path / "out")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    (row,) = json.loads(p.stdout)["results"]["reproductions"]["maxpool"]["rows"]
    assert row["verdict"] == "SKIPPED" and "pip install -e '.[paper]'" in row["ours"]
