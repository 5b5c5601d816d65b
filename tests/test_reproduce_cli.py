"""verify reproduce: the targets in --help, bad input, one table with verdicts, JSON, and where the outputs went."""
import json
import os


from verify.cli import main
from verify.reproduce import DESCRIPTIONS, REPRODUCTIONS


def test_help_lists_every_target(capsys):
    rc = main(["reproduce", "--help"])
    out = capsys.readouterr().out
    assert rc == 0 and "--full" in out and "--workers" in out and "--dask" in out
    for name in REPRODUCTIONS:
        assert f"  {name} " in out, name
    assert set(DESCRIPTIONS) == set(REPRODUCTIONS)


def test_unknown_target_and_bad_workers_exit_2(tmp_path, capsys):
    assert main(["reproduce", "figure9", "--out", str(tmp_path)]) == 2
    assert "figure1" in capsys.readouterr().err
    assert main(["reproduce", "theorem4", "--workers", "0", "--out", str(tmp_path)]) == 2


def test_table_and_outputs(tmp_path, capsys):
    assert main(["reproduce", "theorem3", "section5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0].split()
    assert head == ["entry", "claim", "paper", "ours", "verdict"]
    assert out.count("PROVED") == 6 and "all PASS" in out
    assert f"3 certificate(s) in {tmp_path}/theorem3/" in out and "figure.png" in out


def test_json(tmp_path, capsys):
    assert main(["reproduce", "section5", "--out", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["command"] == "reproduce" and out["verdict"] == "PROVED"
    res = out["results"]
    s5 = res["reproductions"]["section5"]
    assert res["ok"] and s5["ok"] and len(s5["certificates"]) == 5 and s5["seconds"] >= 0
    assert all(os.path.isfile(os.path.join(s5["out_dir"], c + ".json")) for c in s5["certificates"])
    assert [r["verdict"] for r in s5["rows"]] == ["PROVED"] * 4
