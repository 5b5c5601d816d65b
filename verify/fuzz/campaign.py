"""Fuzz campaigns: the claims of claims.py on many random programs, reproducible by seed.

A campaign of N examples per claim is cut into chunks of at most ``CHUNK`` examples (``verify.executor.plan``).
Chunk i of claim c runs hypothesis (``@given`` with ``@seed``) with a seed derived from (seed, c, i) only, so
the examples do not depend on how many workers run the chunks or in which order: ``--seed S`` reproduces the
campaign on one process, on K local processes or on a Dask cluster (``verify.executor``, which also reruns
the chunk of a worker that dies, and reports a chunk as lost with its seed when its workers keep dying).  A
failing example is shrunk by hypothesis to a minimal one, which is saved as a reproducer (the program, the
point, the example and the command that replays it).
"""
import json
import os
import time
import traceback
from dataclasses import dataclass, field

from ..executor import CHUNK, RETRIES, Progress, chunk_seed, plan, run_tasks

__all__ = ["CHUNK", "Progress", "Stats", "campaign", "chunk_seed", "lost_json", "plan", "replay", "run_examples",
           "run_task", "table", "warm", "write_reproducer"]


def _settings(n, shrink=True):
    from hypothesis import HealthCheck, Phase, Verbosity, settings
    phases = (Phase.explicit, Phase.generate, Phase.shrink) if shrink else (Phase.explicit, Phase.generate)
    return settings(max_examples=n, database=None, deadline=None, derandomize=False, print_blob=False,
                    suppress_health_check=list(HealthCheck), phases=phases, report_multiple_bugs=True,
                    verbosity=Verbosity.quiet)


def run_examples(claim_name, seed, n, shrink=True, options=None):
    """Run ``n`` examples of one claim with hypothesis seeded by ``seed``.  Returns a dict: examples, ok,
    undecided, failures (a list of {message, error, example, traceback}, one per distinct minimal failing
    example) and seconds."""
    from hypothesis import given, seed as hseed
    from hypothesis.control import current_build_context

    from .claims import CLAIMS, check
    claim = CLAIMS[claim_name]
    state = {"examples": 0, "ok": 0, "undecided": 0, "failed": False, "finals": [], "last": None}

    def record(ex, e):
        return {"message": f"{type(e).__name__}: {e}" if not isinstance(e, AssertionError) else str(e),
                "error": type(e).__name__, "example": ex.to_json(),
                "traceback": "".join(traceback.format_exception(type(e), e, e.__traceback__))}

    @hseed(seed)
    @_settings(n, shrink)
    @given(claim.strategy(**(options or {})))
    def prop(ex):
        try:
            r = check(ex)
        except Exception as e:
            try:
                final = current_build_context().is_final
            except Exception:          # noqa: BLE001 - outside a hypothesis context: treat as final
                final = True
            if final:
                state["finals"].append(record(ex, e))
            state["last"] = (ex, e)
            if not state["failed"]:
                state["examples"] += 1
                state["failed"] = True
            raise
        if not state["failed"]:
            state["examples"] += 1
            state[r] += 1

    t0 = time.perf_counter()
    try:
        prop()
    except Exception:                  # noqa: BLE001 - the failures were recorded above
        if not state["finals"] and state["last"] is not None:    # e.g. a flaky failure: keep the last one
            state["finals"].append(record(*state["last"]))
    if shrink:
        state["finals"] = [_reduced(f, record) for f in state["finals"]]
    seconds = time.perf_counter() - t0
    return {"claim": claim_name, "examples": state["examples"], "ok": state["ok"], "undecided": state["undecided"],
            "failures": state["finals"], "seconds": seconds}


def signature(e):
    """How a claim failed, for "fails the same way": the error type and the words of its message."""
    import re
    return type(e).__name__, tuple(re.findall(r"[A-Za-z_]+", str(e))[:8])


def _reduced(failure, record):
    """The failure after reduce_example (equations deleted, coordinates simplified) when it still fails."""
    from .claims import Example, check
    from .reduce import reduce_example
    ex = Example.from_json(failure["example"])
    try:
        check(ex)
        return failure                 # does not replay outside hypothesis: keep it as it is
    except Exception as e:             # noqa: BLE001
        want = signature(e)

    def fails(candidate):
        try:
            check(candidate)
        except Exception as e:         # noqa: BLE001
            return signature(e) == want
        return False
    small = reduce_example(ex, fails)
    if small is ex:
        return failure
    try:
        check(small)
    except Exception as e:             # noqa: BLE001
        return record(small, e)
    return failure


def run_task(task):
    """One chunk (a task from ``plan``); what workers run."""
    out = run_examples(task["claim"], task["seed"], task["examples"], task.get("shrink", True), task.get("options"))
    out["index"] = task["index"]
    out["seed"] = task["seed"]
    return out


def warm():
    """What a local worker process imports once, before its first chunk."""
    import verify.fuzz.claims  # noqa: F401


# ------------------------------------------------------------------------------------------ campaigns

@dataclass
class Stats:
    examples: int = 0
    ok: int = 0
    failures: int = 0
    undecided: int = 0
    seconds: float = 0.0
    skipped: str = None
    reproducers: list = field(default_factory=list)
    lost: list = field(default_factory=list)      # lost_json records of the chunks given up

    def json(self):
        out = {"examples": self.examples, "failures": self.failures, "undecided": self.undecided,
               "seconds": round(self.seconds, 3)}
        if self.skipped:
            out["skipped"] = self.skipped
        if self.reproducers:
            out["reproducers"] = self.reproducers
        if self.lost:
            out["lost"] = self.lost
        return out


def lost_json(lost):
    """A chunk given up (an ``executor.Lost`` of a ``plan`` task) as {index, seed, examples, attempts, reason}:
    enough to rerun exactly its examples (``run_examples(claim, seed, examples)``)."""
    t = lost.task
    return {"index": t["index"], "seed": t["seed"], "examples": t["examples"], "attempts": lost.attempts,
            "reason": lost.reason}


def write_reproducer(outdir, claim, number, failure):
    """Write <outdir>/<claim>-<number>/ with program.prog, point.txt, example.json, failure.txt and replay.sh;
    return the directory."""
    from .claims import Example
    d = os.path.join(outdir, f"{claim}-{number}")
    os.makedirs(d, exist_ok=True)
    ex = Example.from_json(failure["example"])
    with open(os.path.join(d, "program.prog"), "w") as f:
        f.write(failure["example"]["program"])
    for k, v in failure["example"].get("extra", {}).items():
        if "program" in v:
            with open(os.path.join(d, f"{k}.prog"), "w") as f:
                f.write(v["program"])
    with open(os.path.join(d, "point.txt"), "w") as f:
        f.write(",".join(failure["example"]["point"]) + "\n")
    with open(os.path.join(d, "example.json"), "w") as f:
        json.dump(failure["example"], f, indent=1)
        f.write("\n")
    with open(os.path.join(d, "failure.txt"), "w") as f:
        f.write(failure["message"] + "\n\n" + failure.get("traceback", ""))
    point = ",".join(failure["example"]["point"])
    grad_line = (f"# the program at the point: python -m verify grad {d}/program.prog --at {point} "
                 f"--convention {ex.convention if ex.convention in ('torch', 'jax', 'tf') else 'torch'}")
    with open(os.path.join(d, "replay.sh"), "w") as f:
        f.write("#!/bin/sh\n# replays this minimal failing example of the claim '" + claim + "'\n"
                f"python -m verify fuzz --replay {d}\n{grad_line}\n")
    os.chmod(os.path.join(d, "replay.sh"), 0o755)
    return d


def campaign(examples, seed, claims=None, workers=1, dask=None, outdir="fuzz-failures", progress=None,
             chunk=CHUNK, retries=RETRIES):
    """Run a campaign; returns {"claims": {name: Stats}, "wall_seconds", "seed", "workers", "examples", "lost"
    (lost_json records, each with its "claim"), "reruns" (chunks rerun after their worker died)}.  Failures
    are written as reproducers under ``outdir`` (only when there are failures).  A chunk whose worker dies
    is rerun on a new worker, up to ``retries`` times, then counted in its claim's ``lost``: the other
    chunks' results are kept."""
    from .claims import CLAIMS, NAMES
    names = list(claims or NAMES)
    stats = {c: Stats() for c in names}
    runnable = []
    for c in names:
        why = CLAIMS[c].available()
        if why:
            stats[c].skipped = why
        else:
            runnable.append(c)
    tasks = plan(runnable, examples, seed, chunk)
    prog = progress or Progress(len(tasks), quiet=True)
    totals = {"examples": 0, "failures": 0}

    def done(r):
        s = stats[r["claim"]]
        s.examples += r["examples"]
        s.ok += r["ok"]
        s.undecided += r["undecided"]
        s.seconds += r["seconds"]
        totals["examples"] += r["examples"]
        totals["failures"] += len(r["failures"])
        prog.update(1, totals["failures"], totals["examples"])

    def lost(x):
        stats[x.task["claim"]].lost.append(lost_json(x))
        prog.lose()
    t0 = time.perf_counter()
    out = run_tasks(run_task, tasks, workers, dask, warm, retries, on_result=done, on_lost=lost)
    wall = time.perf_counter() - t0
    results = sorted(out.results, key=lambda r: (names.index(r["claim"]), r["index"]))
    _save_failures(results, stats, outdir)
    for s in stats.values():
        s.lost.sort(key=lambda x: x["index"])
    return {"claims": stats, "wall_seconds": wall, "seed": seed, "workers": workers if dask is None else "dask",
            "examples": examples, "reruns": out.reruns,
            "lost": [dict(x, claim=c) for c, s in stats.items() for x in s.lost]}


def _save_failures(results, stats, outdir):
    """One reproducer per distinct minimal failing example, numbered per claim in chunk order."""
    counters = {c: 0 for c in stats}
    seen = set()
    for r in results:
        for f in r["failures"]:
            key = json.dumps(f["example"], sort_keys=True)
            if key in seen:            # the same minimal example found by several chunks: one reproducer
                continue
            seen.add(key)
            stats[r["claim"]].failures += 1
            counters[r["claim"]] += 1
            d = write_reproducer(outdir, r["claim"], counters[r["claim"]], f)
            stats[r["claim"]].reproducers.append({"dir": d, "message": f["message"].splitlines()[0][:300]})


def replay(directory):
    """Re-run the example saved in a reproducer directory: ("ok" | "undecided" | "failure", message)."""
    from .claims import Example, check
    path = os.path.join(directory, "example.json") if os.path.isdir(directory) else directory
    with open(path) as f:
        ex = Example.from_json(json.load(f))
    try:
        return check(ex), ""
    except Exception as e:                 # noqa: BLE001 - the failure is the answer
        msg = str(e) if isinstance(e, AssertionError) else f"{type(e).__name__}: {e}"
        return "failure", msg


def table(result):
    """The summary table as text: examples, failures, undecided, seconds (summed over workers) and examples
    per second per claim, and a "lost chunks" column when a chunk was given up (its workers died)."""
    lost = any(s.lost for s in result["claims"].values())
    head = ("claim", "examples", "failures", "undecided", "seconds", "examples/s")
    rows = [head + (("lost chunks",) if lost else ())]
    for name, s in result["claims"].items():
        if s.skipped:
            row = (name, "0", "-", "-", "-", f"skipped: {s.skipped}")
        else:
            rate = f"{s.examples / s.seconds:.1f}" if s.seconds > 0 else "-"
            row = (name, str(s.examples), str(s.failures), str(s.undecided), f"{s.seconds:.1f}", rate)
        rows.append(row + ((str(len(s.lost)),) if lost else ()))
    n = len(rows[0])
    w = [max(len(r[i]) for r in rows) for i in range(n)]
    return "\n".join("  ".join([r[0].ljust(w[0])] + [r[i].rjust(w[i]) for i in range(1, n)]).rstrip() for r in rows)
