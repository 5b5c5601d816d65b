"""Figure 1 of Bolte & Pauwels (2020), reproduced exactly: verify.reproduce.figure1."""
import json
import os
from fractions import Fraction

import pytest
from flint import fmpq

import verify
from verify.errors import InputError
from verify.reproduce import REPRODUCTIONS, figure1, reproduce

PAPER = {"relu'(0)": "0", "relu2'(0)": "1", "relu3'(0)": "1/2", "zero'(0)": "1", "(t - zero(t))'(0)": "0"}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("figure1")
    messages = []
    res = figure1.run(str(out), progress=messages.append)
    res["_messages"] = messages
    res["_out"] = out
    return res


def test_png_written(result):
    path = result["figure"]
    assert os.path.basename(path) == "figure1.png"
    assert os.path.getsize(path) > 10_000
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_every_row_proved(result):
    rows = result["rows"]
    assert [r["claim"] for r in rows] == list(PAPER)
    assert all(r["verdict"] == "PROVED" for r in rows)
    assert result["ok"] is True


def test_exact_values_match_paper(result):
    for r in result["rows"]:
        assert r["exact"] is True
        assert r["paper"] == PAPER[r["claim"]]
        assert r["ours"] == PAPER[r["claim"]]
    assert {r["claim"]: r["ours"] for r in result["rows"]}["relu3'(0)"] == "1/2"


def test_tables_written(result):
    out = result["_out"]
    with open(out / "table.json") as f:
        table = json.load(f)
    assert table["rows"] == result["rows"] and table["ok"] is True
    md = (out / "table.md").read_text()
    assert "| relu3'(0) |" in md and "PROVED" in md and "REFUTED" not in md
    assert result["_messages"] and all(isinstance(m, str) for m in result["_messages"])


def test_grid_is_exact_and_contains_zero(result):
    with open(result["grid_json"]) as f:
        grid = json.load(f)
    for name in ("relu1", "relu2", "relu3", "zero", "ident_minus_zero"):
        pts = grid[name]
        assert len(pts) == figure1.GRID_N and pts[0]["t"] == "-1" and pts[-1]["t"] == "1"
        assert all(isinstance(p["ad"], str) for p in pts)          # exact "p/q" everywhere
        at = {p["t"]: p["ad"] for p in pts}
        assert at["-1/2"] == {"relu1": "0", "relu2": "0", "relu3": "0", "zero": "0", "ident_minus_zero": "1"}[name]
        assert at["1/2"] == {"relu1": "1", "relu2": "1", "relu3": "1", "zero": "0", "ident_minus_zero": "1"}[name]
    assert {p["t"]: p["ad"] for p in grid["sin_shifted"]}["0"] == "1"   # cos(0) = 1 exactly


def test_sin_derivative_moved_only_at_prescribed_points(result):
    sin = result["sin"]
    assert sin["ok"]
    assert sorted(m["t"] for m in sin["moved"]) == ["-1/2", "1/4"]
    assert {m["t"]: m["shift"] for m in sin["moved"]} == {"-1/2": "1", "1/4": "-2"}


def test_torch_column(result):
    pytest.importorskip("torch")
    for r in result["rows"]:
        assert isinstance(r["torch"], float)
        assert Fraction(r["torch"]) == Fraction(r["paper"]), r


def test_jax_column(result):
    pytest.importorskip("jax")
    for r in result["rows"]:
        assert isinstance(r["jax"], float)
        assert Fraction(r["jax"]) == Fraction(r["paper"]), r


def test_proofs_copy_is_identical():
    proofs = os.path.join(REPO, "proofs", "figure1", "programs.prog")
    if not os.path.exists(proofs):
        pytest.skip("no proofs/ directory next to the tests")
    packaged = os.path.join(os.path.dirname(figure1.__file__), "figure1.prog")
    with open(proofs, "rb") as a, open(packaged, "rb") as b:
        assert a.read() == b.read()


def test_programs_parse_from_proofs_path():
    path = os.path.join(REPO, "proofs", "figure1", "programs.prog")
    if not os.path.exists(path):
        pytest.skip("no proofs/ directory next to the tests")
    P = verify.parse(path, fn="relu3")
    r = verify.grad(P, [0])
    assert r.exact and r.gradient == [fmpq(1, 2)] and r.values == [0]


def test_registry_and_unknown_name(tmp_path):
    assert REPRODUCTIONS["figure1"] is figure1.run and "section5" in REPRODUCTIONS
    with pytest.raises(InputError, match="figure1"):
        reproduce(["figure9"], out_dir=str(tmp_path))


def test_reproduce_runs_into_subdirectory(tmp_path):
    # the quick entries only: the experiments' campaigns are exercised by their own tests
    res = reproduce(["figure1", "section5"], out_dir=str(tmp_path))
    assert list(res) == ["figure1", "section5"] and all(r["ok"] for r in res.values())
    assert os.path.isfile(tmp_path / "figure1" / "figure1.png")
