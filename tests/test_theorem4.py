"""Theorem 4's experiment (verify.reproduce.theorem4): exact SGD runs from random initialisations never stop at an
artificial critical point, the constructed initialisations do, and the committed certificates say so; a fresh
small campaign reproduces the committed certificates of its runs."""
import json
import pathlib

from flint import fmpq

from verify.checker import check
from verify.reproduce import theorem4 as T

ROOT = pathlib.Path(__file__).resolve().parent.parent / "proofs" / "theorem4"


def _results():
    return json.loads((ROOT / "results.json").read_text())


def _cert(name):
    cert = json.loads((ROOT / name).read_text())
    check(cert)
    return cert


def test_exact_random_runs_never_stop_at_an_artificial_point():
    res = _results()
    exact = [r for r in res["runs"] if r["precision"] == "exact"]
    assert len(exact) == 2 * res["scale"]["inits"] * res["scale"]["cs"]
    for r in exact:
        assert r["exact_kink_iterates"] == 0 and not r["diverged"]
        assert r["limit"] in ("Clarke-critical", "not settled"), r
        assert not r["stopped"] or r["limit"] == "Clarke-critical"
        for name in r["limit_certificates"]:
            cert = _cert(name)
            assert cert["kind"] == "critical" and cert["verdict"] == "PROVED"
            assert cert["result"]["artificial"] is False and cert["result"]["clarke_critical"] is True
    assert sum(1 for r in exact if r["limit"] == "Clarke-critical") >= len(exact) // 2


def test_constructed_initialisations_stop_at_the_artificial_point():
    res = _results()
    cons = res["constructed"]
    assert {c["name"] for c in cons} == {"start at s", "one step before s"}
    s = T.fmt_q(T.S_KINK)
    for c in cons:
        assert c["stopped"] and c["final_exact"] == [s] and c["limit"] == "artificial"
        assert c["limit_certificates"] == ["artificial.json"]
    pre = next(c for c in cons if c["name"] == "one step before s")
    assert pre["x0"] != [s] and pre["precision"] == "exact"
    cert = _cert("artificial.json")
    assert cert["claim"]["point"] == [s]
    r = cert["result"]
    assert r["selection_critical"] is True and r["clarke_critical"] is False and r["artificial"] is True
    assert r["clarke"] == [["1/2"]]


def test_summary_table_has_a_row_per_problem_and_precision():
    res = _results()
    keys = {(r["problem"], r["precision"]) for r in res["summary"]}
    assert keys == {(p.key, q) for p in T.PROBLEMS for q in T.PRECISIONS}
    for r in res["summary"]:
        assert r["runs"] == res["scale"]["inits"] * res["scale"]["cs"]
        if r["precision"] == "exact":
            assert r["runs_exact_kink"] == 0 and r["stopped_artificial"] == 0 and r["limit_artificial"] == 0
    assert (ROOT / "table.md").read_text().count("| zero_sum |") == len(T.PRECISIONS)


def test_fresh_small_campaign_reproduces_the_committed_certificates(tmp_path):
    records, cons, rows, art = T.experiment(str(tmp_path), inits=1, cs=1, steps=T.SCALES["default"]["steps"],
                                            workers=1)
    committed = {(r["problem"], r["init"], r["j"], r["precision"]): r for r in _results()["runs"]}
    for r in records:
        c = committed[(r["problem"], r["init"], r["j"], r["precision"])]
        assert (r["exact_kink_iterates"], r["float_kink_iterates"], r["stopped"], r["limit"]) == \
            (c["exact_kink_iterates"], c["float_kink_iterates"], c["stopped"], c["limit"])
        assert r["candidates"] == c["candidates"]
    names = ["artificial.json"] + [f"limits/{p.name}" for p in (tmp_path / "limits").glob("*.json")]
    assert len(names) >= 2
    for name in names:
        fresh = json.loads((tmp_path / name).read_text())
        assert fresh["digest"] == json.loads((ROOT / name).read_text())["digest"], name


def test_exact_trajectories_stay_dyadic():
    p = T.BY_KEY["relu_net"]
    x0 = T.initialisation(p, 0)
    r = T.sgd(p, x0, T.step_scale(p, 0, 0), T.batches(p, 0, 0, 24), "exact")
    for v in T.exact_value_list(r["final"]):
        q = int(v.q)
        assert q & (q - 1) == 0            # a power of two
    assert all(float(v).is_integer() or True for v in x0)


def test_step_sizes():
    assert [T.alpha(k) for k in (0, 1, 2, 3, 14, 15, 63, 255)] == \
        [1, 1, 1, fmpq(1, 2), fmpq(1, 2), fmpq(1, 4), fmpq(1, 8), fmpq(1, 16)]
    assert [T.alpha(k, 8) for k in (0, 254, 255, 65534, 65535)] == [1, 1, fmpq(1, 2), fmpq(1, 2), fmpq(1, 4)]
    p = T.BY_KEY["zero_sum"]
    assert all(0 < T.step_scale(p, i, j) <= 1 for i in range(5) for j in range(5))


def test_limit_candidates():
    p = T.BY_KEY["zero_sum"]
    # an iterate in the flat interval: the region's simplest point stands for it
    cands, dist = T.candidates(p, [[fmpq(1201379, 1048576)]])
    assert len(cands) == 1 and T.FLAT[0] < cands[0][0] < T.FLAT[1] and cands[0][0].q <= 64 and dist == 0
    # right of s, J_sigma has slope 1/2: no minimiser in that region
    assert T.candidates(p, [[fmpq(3, 2)]]) == ([], None)


def test_campaign_on_worker_processes_gives_the_same_runs(tmp_path):
    # the campaign executor (verify/executor.py), two spawned worker processes: same runs as the committed (inline) ones
    records, _, _, _ = T.experiment(str(tmp_path), inits=2, cs=1, steps=T.SCALES["default"]["steps"], workers=2)
    committed = {(r["problem"], r["init"], r["j"], r["precision"]): r for r in _results()["runs"]}
    for r in records:
        c = committed[(r["problem"], r["init"], r["j"], r["precision"])]
        assert (r["candidates"], r["limit"], r["exact_kink_iterates"], r["float_kink_iterates"]) == \
            (c["candidates"], c["limit"], c["exact_kink_iterates"], c["float_kink_iterates"])
