"""Fuzz campaigns: the claims of claims.py on many random programs, reproducible by seed.

A campaign of N examples per claim is cut into chunks of at most ``CHUNK`` examples.  Chunk i of claim c
runs hypothesis (``@given`` with ``@seed``) with a seed derived from (seed, c, i) only, so the examples do
not depend on how many workers run the chunks or in which order: ``--seed S`` reproduces the campaign on
one process, on K local processes or on a Dask cluster.  A failing example is shrunk by hypothesis to a
minimal one, which is saved as a reproducer (the program, the point, the example and the command that
replays it).
"""
import hashlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field

CHUNK = 100


def chunk_seed(seed, claim, index):
    """A 64-bit seed for chunk ``index`` of ``claim`` (stable across processes and Python versions)."""
    h = hashlib.sha256(f"verify-fuzz:{seed}:{claim}:{index}".encode()).digest()
    return int.from_bytes(h[:8], "big")


def plan(claims, examples, seed, chunk=CHUNK):
    """The tasks of a campaign: dicts {claim, index, seed, examples}, claims interleaved."""
    per = {c: [] for c in claims}
    for c in claims:
        left, i = examples, 0
        while left > 0:
            n = min(chunk, left)
            per[c].append({"claim": c, "index": i, "seed": chunk_seed(seed, c, i), "examples": n})
            left -= n
            i += 1
    tasks = []
    for k in range(max((len(v) for v in per.values()), default=0)):
        for c in claims:
            if k < len(per[c]):
                tasks.append(per[c][k])
    return tasks


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


# ------------------------------------------------------------------------------------------ executors

class _Inline:
    """Runs tasks in this process, in order (workers=1)."""

    def map_unordered(self, fn, tasks):
        for t in tasks:
            yield fn(t)

    def close(self):
        pass


class _Futures:
    def __init__(self, executor, owns=True):
        self.ex, self.owns = executor, owns

    def map_unordered(self, fn, tasks):
        from concurrent.futures import as_completed
        futs = [self.ex.submit(fn, t) for t in tasks]
        try:
            for f in as_completed(futs):
                yield f.result()
        finally:
            for f in futs:
                f.cancel()

    def close(self):
        if self.owns:
            self.ex.shutdown(wait=True, cancel_futures=True)


def _warm():
    """Import what a worker needs once, before tasks arrive."""
    import verify.fuzz.claims  # noqa: F401


def executor(workers=1, dask=None, warm=_warm):
    """Inline for one worker, a process pool for several, a Dask cluster's executor for ``dask`` (an address
    such as tcp://host:8786, or a distributed.Client).  ``warm``: a module-level function each local worker
    process runs once before its first task (default: import the fuzz claims; other campaigns, such as the
    reproductions' initialisation campaigns, pass their own, or None)."""
    if dask is not None:
        try:
            from distributed import Client
        except ImportError:
            from ..errors import InputError
            raise InputError("--dask needs the 'distributed' package (pip install distributed)") from None
        client = dask if isinstance(dask, Client) else Client(dask)
        return _Futures(client.get_executor(), owns=False), client
    if workers <= 1:
        return _Inline(), None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    # spawn, not fork: torch and jax start threads, and a forked copy of a threaded process can deadlock
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=warm)
    return _Futures(pool), None


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

    def json(self):
        out = {"examples": self.examples, "failures": self.failures, "undecided": self.undecided,
               "seconds": round(self.seconds, 3)}
        if self.skipped:
            out["skipped"] = self.skipped
        if self.reproducers:
            out["reproducers"] = self.reproducers
        return out


class Progress:
    """A one-line progress bar on stderr, updated per finished chunk."""

    def __init__(self, total, stream=None, quiet=False, unit="chunks", counts=("examples", "failures")):
        self.total, self.done, self.quiet = total, 0, quiet
        self.unit, self.counts = unit, counts
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = -1

    def update(self, n, failures, examples):
        self.done += n
        if self.quiet or self.total == 0:
            return
        frac = self.done / self.total
        if not self.tty and int(frac * 10) == self._last and self.done < self.total:
            return
        self._last = int(frac * 10)
        bar = "#" * int(frac * 30)
        el = time.perf_counter() - self.t0
        line = (f"[{bar:<30}] {self.done}/{self.total} {self.unit}  {examples} {self.counts[0]}  "
                f"{failures} {self.counts[1]}  {el:.0f}s")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


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
             chunk=CHUNK):
    """Run a campaign; returns {"claims": {name: Stats}, "wall_seconds", "seed", "workers"}.  Failures are
    written as reproducers under ``outdir`` (only when there are failures)."""
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
    ex, client = executor(workers, dask)
    prog = progress or Progress(len(tasks), quiet=True)
    results = []
    t0 = time.perf_counter()
    total_ex = total_fail = 0
    try:
        for r in ex.map_unordered(run_task, tasks):
            results.append(r)
            s = stats[r["claim"]]
            s.examples += r["examples"]
            s.ok += r["ok"]
            s.undecided += r["undecided"]
            s.failures += len(r["failures"])
            s.seconds += r["seconds"]
            total_ex += r["examples"]
            total_fail += len(r["failures"])
            prog.update(1, total_fail, total_ex)
    finally:
        ex.close()
    wall = time.perf_counter() - t0
    results.sort(key=lambda r: (names.index(r["claim"]), r["index"]))
    counters = {c: 0 for c in names}
    seen = set()
    for r in results:
        stats[r["claim"]].failures -= len(r["failures"])
        for f in r["failures"]:
            key = json.dumps(f["example"], sort_keys=True)
            if key in seen:            # the same minimal example found by several chunks: one reproducer
                continue
            seen.add(key)
            stats[r["claim"]].failures += 1
            counters[r["claim"]] += 1
            d = write_reproducer(outdir, r["claim"], counters[r["claim"]], f)
            stats[r["claim"]].reproducers.append({"dir": d, "message": f["message"].splitlines()[0][:300]})
    return {"claims": stats, "wall_seconds": wall, "seed": seed, "workers": workers if dask is None else "dask",
            "examples": examples}


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
    per second per claim."""
    rows = [("claim", "examples", "failures", "undecided", "seconds", "examples/s")]
    for name, s in result["claims"].items():
        if s.skipped:
            rows.append((name, "0", "-", "-", "-", f"skipped: {s.skipped}"))
            continue
        rate = f"{s.examples / s.seconds:.1f}" if s.seconds > 0 else "-"
        rows.append((name, str(s.examples), str(s.failures), str(s.undecided), f"{s.seconds:.1f}", rate))
    w = [max(len(r[i]) for r in rows) for i in range(6)]
    return "\n".join("  ".join([r[0].ljust(w[0])] + [r[i].rjust(w[i]) for i in range(1, 6)]).rstrip() for r in rows)
