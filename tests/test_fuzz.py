"""verify fuzz: campaigns reproducible by seed (whatever the number of workers), minimal reproducers that
replay, the JSON report, the mutation self-test (every mutant killed; a surviving one fails the run), and
Dask distributed against a LocalCluster."""
import json
import os

import pytest

from verify.cli import main
from verify.fuzz import campaign as C
from verify.fuzz.claims import CLAIMS, NAMES
from verify.fuzz.mutants import MUTANTS, Mutant, patch, run_mutant


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def counts(res):
    return {k: (s.examples, s.ok, s.undecided, s.failures) for k, s in res["claims"].items()}


def test_json_report_has_every_claim(capsys, tmp_path):
    code, out, err = run_cli(capsys, "fuzz", "--examples", "8", "--seed", "5", "--json", "--workers", "1", "--out",
                             str(tmp_path))
    assert code == 0 and err == ""             # no progress bar with --json
    rep = json.loads(out)
    assert set(rep["claims"]) == set(NAMES) == {"lemma1", "theorem1", "theorem2", "proposition2", "proposition3",
                                                 "proposition4", "soundness", "frameworks", "certificates"}
    for name, c in rep["claims"].items():
        assert {"examples", "failures", "undecided", "seconds"} <= set(c)
        assert c["failures"] == 0
        assert c["examples"] == (0 if c.get("skipped") else 8)


def test_table_and_progress_bar(capsys, tmp_path):
    code, out, err = run_cli(capsys, "fuzz", "--examples", "5", "--claims", "lemma1,soundness", "--workers", "1",
                             "--out", str(tmp_path))
    assert code == 0
    assert "examples/s" in out and "lemma1" in out and "soundness" in out and "theorem2" not in out
    assert "chunks" in err                      # the progress bar, on stderr


def test_unknown_claim_is_bad_input(capsys):
    code, _, err = run_cli(capsys, "fuzz", "--claims", "lemma2")
    assert code == 2 and "unknown claim" in err


def test_same_seed_same_examples_whatever_the_workers():
    a = C.campaign(30, 11, ["lemma1", "theorem2"], workers=1, chunk=10)
    b = C.campaign(30, 11, ["lemma1", "theorem2"], workers=1, chunk=10)
    c = C.campaign(30, 11, ["lemma1", "theorem2"], workers=2, chunk=10)
    assert counts(a) == counts(b) == counts(c)
    assert [t["seed"] for t in C.plan(["lemma1"], 25, 11, 10)] == [C.chunk_seed(11, "lemma1", i) for i in range(3)]
    assert C.chunk_seed(11, "lemma1", 0) != C.chunk_seed(12, "lemma1", 0)


def test_a_failure_is_shrunk_saved_and_replayed(tmp_path, capsys):
    m = next(m for m in MUTANTS if m.name == "where-ge-as-gt")
    with m.apply():
        res = C.campaign(100, 3, ["theorem2"], outdir=str(tmp_path))
        s = res["claims"]["theorem2"]
        assert s.failures >= 1 and s.reproducers
        d = s.reproducers[0]["dir"]
        assert C.replay(d)[0] == "failure"
    for f in ("program.prog", "point.txt", "example.json", "replay.sh", "failure.txt"):
        assert os.path.exists(os.path.join(d, f))
    prog = open(os.path.join(d, "program.prog")).read()
    assert prog.count("\n    ") == 2 and "where(" in prog and ">=" in prog     # one equation and a return
    assert f"python -m verify fuzz --replay {d}" in open(os.path.join(d, "replay.sh")).read()
    # outside the mutant the same example passes: the reproducer is about the bug, not the example
    code, out, _ = run_cli(capsys, "fuzz", "--replay", d)
    assert code == 0 and out.strip() == "ok"


def test_self_test_kills_every_mutant(capsys):
    assert len(MUTANTS) >= 10
    code, out, _ = run_cli(capsys, "fuzz", "--self-test", "--json")
    rep = json.loads(out)
    assert code == 0, [m for m in rep["mutants"] if not m["killed"]]
    assert {m["name"] for m in rep["mutants"]} == {m.name for m in MUTANTS}
    from verify.frameworks import available
    for m, mm in zip(rep["mutants"], MUTANTS):
        if all(available(fw) for fw in mm.requires):
            assert m["killed"] and m["killed_by"] in NAMES, m
        else:                                  # e.g. the jax convention mutant without jax installed
            assert m["killed"] is None and "needs" in m["skipped"]


def test_a_surviving_mutant_fails_the_self_test(capsys, monkeypatch):
    harmless = Mutant("harmless", "changes nothing", lambda: patch(), ("lemma1",))
    monkeypatch.setattr("verify.fuzz.mutants.MUTANTS", [harmless])
    code, out, _ = run_cli(capsys, "fuzz", "--self-test", "--examples", "5", "--claims", "lemma1", "--json")
    assert code == 1 and json.loads(out)["mutants"] == [
        {"name": "harmless", "description": "changes nothing", "killed": False, "killed_by": None, "message": None,
         "examples": 5, "seconds": json.loads(out)["mutants"][0]["seconds"]}]


def test_mutants_restore_what_they_patch():
    from verify.program.prims import jvp_rules, selection_rules
    before = (dict(jvp_rules), dict(selection_rules))
    for m in MUTANTS:
        with m.apply():
            pass
    assert (dict(jvp_rules), dict(selection_rules)) == before
    r = run_mutant("mul-jvp-drops-term", examples=50)
    assert r["killed"] and r["killed_by"] == "lemma1"
    assert CLAIMS["lemma1"].check is not None


def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        res = C.campaign(20, 7, ["lemma1", "proposition4"], dask=client, chunk=10, outdir=str(tmp_path))
    assert res["workers"] == "dask"
    assert counts(res) == counts(C.campaign(20, 7, ["lemma1", "proposition4"], chunk=10))


def test_a_time_budget_running_out_inside_the_checker_is_undecided_not_a_failure(monkeypatch):
    # proposition2 checks a PROVED identity's certificate under the claim's time budget; when the budget runs
    # out while the checker parses the program, that is "undecided", never "the checker rejects it"
    from verify import checker
    from verify.certify.integral import integral_certificate, integral_identity
    from verify.frontends import text
    from verify.fuzz.claims import TimeLimit
    cert = integral_certificate(integral_identity("lambda t: relu(t - 1/3)", [0], [1]))
    real = text.parse

    def slow(*a, **k):
        raise TimeLimit("over the 3s budget")
    monkeypatch.setattr(text, "parse", slow)
    with pytest.raises(TimeLimit):
        checker.check(cert)
    monkeypatch.setattr(text, "parse", real)
    assert checker.check(cert) is None
