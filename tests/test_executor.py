"""The campaign executor (verify/executor.py): the reproductions run it without hypothesis (the test extra);
a worker process killed by SIGKILL (what the out-of-memory killer sends) is replaced and its chunk rerun, so
the campaign's results are those of a one-worker run; a chunk whose workers keep dying is reported as lost
with its seed, and the rest is kept."""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from executor_tasks import bad_input_on_two, die_on_three, square

from verify.cli import main
from verify.errors import InputError
from verify.executor import RETRIES, LocalPool, Lost, Progress, RemoteTraceback, chunk_seed, run_tasks
from verify.fuzz import campaign as C

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def counts(res):
    return {k: (s.examples, s.ok, s.undecided, s.failures) for k, s in res["claims"].items()}


class KillAWorker(Progress):
    """A quiet progress bar that SIGKILLs one worker process of this process when the first chunk is done
    (the pool has then given that worker its next chunk: it dies holding one)."""

    def __init__(self, total):
        super().__init__(total, quiet=True)
        self.killed = None

    def update(self, n, failures, examples):
        super().update(n, failures, examples)
        if self.killed is None:
            kids = [p for p in multiprocessing.active_children() if p.name == "verify-worker"]
            assert kids, "no worker process to kill"
            self.killed = kids[0].pid
            os.kill(self.killed, signal.SIGKILL)


# ------------------------------------------------------------------------------------------ dead workers

def test_a_killed_worker_is_replaced_and_its_chunk_rerun():
    one = C.campaign(60, 11, ["lemma1", "theorem2"], workers=1, chunk=10)
    bar = KillAWorker(12)
    two = C.campaign(60, 11, ["lemma1", "theorem2"], workers=2, chunk=10, progress=bar)
    assert bar.killed is not None
    assert two["reruns"] == 1 and two["lost"] == [] and not any(s.lost for s in two["claims"].values())
    assert counts(two) == counts(one) and counts(one)["lemma1"][0] == counts(one)["theorem2"][0] == 60


def test_a_chunk_out_of_retries_is_lost_with_its_seed_and_the_rest_is_kept():
    one = C.campaign(60, 11, ["lemma1", "theorem2"], workers=1, chunk=10)
    bar = KillAWorker(12)
    two = C.campaign(60, 11, ["lemma1", "theorem2"], workers=2, chunk=10, progress=bar, retries=0)
    assert two["reruns"] == 0 and len(two["lost"]) == 1
    lost = two["lost"][0]
    claim, index = lost["claim"], lost["index"]
    assert lost["seed"] == chunk_seed(11, claim, index) and lost["examples"] == 10 and lost["attempts"] == 1
    assert "SIGKILL" in lost["reason"]
    assert two["claims"][claim].json()["lost"] == [{k: v for k, v in lost.items() if k != "claim"}]
    # the seed is enough: its chunk rerun alone completes the campaign to the one-worker run
    again = C.run_task({"claim": claim, "index": index, "seed": lost["seed"], "examples": lost["examples"]})
    s = two["claims"][claim]
    a = (s.examples + again["examples"], s.ok + again["ok"], s.undecided + again["undecided"], s.failures)
    assert a == counts(one)[claim]
    other = next(c for c in two["claims"] if c != claim)
    assert counts(two)[other] == counts(one)[other]
    head = C.table(two).splitlines()[0].split()
    assert head[-2:] == ["lost", "chunks"]


def test_fuzz_command_reports_lost_chunks_undecided(capsys, monkeypatch, tmp_path):
    real = C.campaign

    def campaign(*args, **kwargs):           # the command's campaign, with one worker killed and no retry
        return real(*args[:6], progress=KillAWorker(args[6].total), chunk=args[7], retries=0)
    monkeypatch.setattr(C, "campaign", campaign)
    code = main(["fuzz", "--examples", "60", "--claims", "lemma1", "--workers", "2", "--chunk", "10", "--json",
                 "--out", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)
    assert code == 3 and out["verdict"] == "UNDECIDED" and "lost" in out["reason"]
    (lost,) = out["claims"]["lemma1"]["lost"]
    assert lost["seed"] == chunk_seed(0, "lemma1", lost["index"]) and out["claims"]["lemma1"]["examples"] == 50
    code = main(["fuzz", "--examples", "60", "--claims", "lemma1", "--workers", "2", "--chunk", "10",
                 "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert code == 3 and "LOST lemma1 chunk" in text and "chunk(s) lost" in text


def test_local_pool_gives_up_a_task_that_always_kills_its_worker():
    tasks = [{"index": i} for i in range(6)]
    out = run_tasks(die_on_three, tasks, workers=2)
    assert sorted(r["index"] for r in out.results) == [0, 1, 2, 4, 5]
    assert [r["value"] for r in sorted(out.results, key=lambda r: r["index"])] == [0, 1, 4, 16, 25]
    (lost,) = out.lost
    assert isinstance(lost, Lost) and lost.task == {"index": 3} and lost.attempts == RETRIES + 1
    assert out.reruns == RETRIES and "SIGKILL" in lost.reason
    assert [p for p in multiprocessing.active_children() if p.name == "verify-worker"] == []


def test_dask_gives_up_a_task_that_always_kills_its_worker():
    distributed = pytest.importorskip("distributed")
    import dask.config
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        out = run_tasks(die_on_three, [{"index": i} for i in range(6)], dask=client)
    assert sorted(r["index"] for r in out.results) == [0, 1, 2, 4, 5]
    (lost,) = out.lost
    assert lost.task == {"index": 3} and lost.attempts == 2 and "Dask" in lost.reason


def test_a_task_exception_is_raised_with_the_worker_traceback_and_the_workers_stop():
    pool = LocalPool(2)
    try:
        with pytest.raises(InputError, match="task 2 is bad") as e:
            list(pool.map_unordered(bad_input_on_two, [{"index": i} for i in range(5)]))
        assert isinstance(e.value.__cause__, RemoteTraceback) and "bad_input_on_two" in str(e.value.__cause__)
        # the pool still works: the same workers, or new ones
        assert sorted(r["value"] for r in pool.map_unordered(square, [{"index": i} for i in range(4)])) == \
            [0, 1, 4, 9]
    finally:
        pool.close()
    assert [p for p in multiprocessing.active_children() if p.name == "verify-worker"] == []


def running(pid):
    """True while ``pid`` is a live process (a zombie left for a non-reaping init counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    # a parent SIGKILLed mid-campaign (the OOM killer may pick it) cannot stop its workers: they must notice
    code = textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {os.path.join(ROOT, 'tests')!r})
        from executor_tasks import report_and_sleep
        from verify.executor import run_tasks
        if __name__ == "__main__":
            run_tasks(report_and_sleep, [{{"index": i, "dir": {str(tmp_path)!r}}} for i in range(2)], workers=2)
        """)
    script = tmp_path / "parent.py"
    script.write_text(code)
    parent = subprocess.Popen([sys.executable, str(script)], env=dict(os.environ, PYTHONPATH=ROOT))
    try:
        files = [tmp_path / f"{i}.pid" for i in range(2)]
        deadline = time.monotonic() + 120
        while not all(f.exists() for f in files) and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.1)
        pids = [int(f.read_text()) for f in files]
        assert all(running(p) for p in pids)
    finally:
        parent.kill()
        parent.wait()
    # their chunks sleep a minute: gone well before that means they saw the parent die
    deadline = time.monotonic() + 30
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if running(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert left == []


def test_results_do_not_depend_on_the_number_of_workers():
    tasks = [{"index": i} for i in range(7)]
    one = run_tasks(square, tasks, workers=1)
    three = run_tasks(square, tasks, workers=3)
    strip = lambda rs: sorted((r["index"], r["value"]) for r in rs)   # noqa: E731
    assert strip(one.results) == strip(three.results) == [(i, i * i) for i in range(7)]
    assert len({r["pid"] for r in three.results} - {os.getpid()}) >= 2
    assert {r["pid"] for r in one.results} == {os.getpid()}


def test_reproduce_notes_a_lost_initialisation(capsys, monkeypatch, tmp_path):
    from verify.reproduce import common, theorem3

    def run(out_dir, progress=None, full=False, workers=None, dask=None):
        res = common.campaign(die_on_three, [{"index": i, "seed": 100 + i} for i in range(5)], workers=2,
                              progress=progress, unit="initialisations")
        assert [r["index"] for r in res] == [0, 1, 2, 4]
        return {"rows": [{"claim": "c", "paper": "-", "ours": str(len(res)), "verdict": "MEASURED"}], "ok": True}
    monkeypatch.setattr(theorem3, "run", run)
    code = main(["reproduce", "theorem3", "--out", str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["verdict"] == "REFUTED"
    t3 = out["results"]["reproductions"]["theorem3"]
    assert not t3["ok"] and [x["task"] for x in t3["lost"]] == [{"index": 3, "seed": 103}]
    assert t3["rows"][-1]["verdict"] == "UNDECIDED" and "'seed': 103" in t3["rows"][-1]["ours"]
    assert common.take_lost() == []
    code = main(["reproduce", "theorem3", "--out", str(tmp_path)])
    cap = capsys.readouterr()
    assert code == 1 and "campaign complete" in cap.out and "LOST: initialisation 3" in cap.err


# ----------------------------------------------------------------------------- without the test extra

def blocked_python(tmp_path, *names):
    """An environment whose Python (and every process it spawns) cannot import ``names``: a sitecustomize
    on PYTHONPATH puts an import blocker first on sys.meta_path."""
    d = tmp_path / "block"
    d.mkdir()
    (d / "sitecustomize.py").write_text(textwrap.dedent(f"""\
        import sys

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {set(names)!r}:
                    raise ImportError(f"{{name}} is not installed here (blocked)")
                return None

        sys.meta_path.insert(0, Blocker())
        """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(d), ROOT]))
    return env


def test_reproduce_campaigns_run_without_hypothesis(tmp_path):
    env = blocked_python(tmp_path, "hypothesis")
    probe = subprocess.run([sys.executable, "-c", "import hypothesis"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked" in probe.stderr
    code = textwrap.dedent(f"""\
        import json, sys
        from verify.reproduce import theorem4
        r = theorem4.run({str(tmp_path / 'out')!r}, workers=2, scale={{"inits": 1, "cs": 1, "steps": 64}})
        print(json.dumps({{"verdicts": [row["verdict"] for row in r["rows"]], "runs": len(r["records"]),
                          "hypothesis": "hypothesis" in sys.modules}}))
        """)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["hypothesis"] is False and out["runs"] == 8 and "INCONSISTENT" not in out["verdicts"]


def test_kinkhit_without_the_paper_extra_is_skipped_with_the_install_line(tmp_path):
    env = blocked_python(tmp_path, "hypothesis", "sklearn", "torch")
    p = subprocess.run([sys.executable, "-m", "verify", "reproduce", "kinkhit", "--json", "--out",
                        str(tmp_path / "out")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    (row,) = out["results"]["reproductions"]["kinkhit"]["rows"]
    assert out["verdict"] == "PROVED" and row["verdict"] == "SKIPPED" and "pip install -e '.[paper]'" in row["ours"]
