"""The campaign executor: many independent tasks on one process, on local worker processes or on a Dask
cluster, with a progress bar; used by ``verify fuzz`` and by the reproductions' initialisation campaigns.

A task is a picklable value (usually a dict), ``fn`` a module-level function of one task; results do not
depend on where a task runs, so callers that sort by a task index get the same outcome whatever the number
of workers.  Task seeds come from ``chunk_seed``, a hash of (campaign seed, name, chunk index) only.

A worker process that dies (the out-of-memory killer's SIGKILL, a crash in native code) loses only the task
it was running: the local pool starts a new worker and reruns that task, at most ``RETRIES`` more times,
after which the task is given up and reported as ``Lost`` with its task (and so its seed).  Results
already returned are never lost.  On Dask the scheduler does the same (its
``distributed.scheduler.allowed-failures``, default 3) and a task it gives up becomes a ``Lost`` here.

Only the standard library is imported here (and ``distributed`` when a Dask cluster is asked for): the
reproductions run with the core dependencies alone.
"""
import hashlib
import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass, field

from .errors import InputError

CHUNK = 100
# reruns of a task whose worker died before it is given up: 1 + RETRIES attempts in all, as a Dask cluster
# with its default allowed-failures = 3
RETRIES = 3


# ---------------------------------------------------------------------------------------------- planning

def chunk_seed(seed, name, index):
    """A 64-bit seed for chunk ``index`` of ``name`` (stable across processes, machines and Python versions)."""
    h = hashlib.sha256(f"verify-fuzz:{seed}:{name}:{index}".encode()).digest()
    return int.from_bytes(h[:8], "big")


def plan(names, examples, seed, chunk=CHUNK):
    """The tasks of a campaign of ``examples`` per name, cut into chunks of at most ``chunk``: dicts
    {claim, index, seed, examples} with the seed from ``chunk_seed``, names interleaved (so a partial run
    has touched every name)."""
    per = {c: [] for c in names}
    for c in names:
        left, i = examples, 0
        while left > 0:
            n = min(chunk, left)
            per[c].append({"claim": c, "index": i, "seed": chunk_seed(seed, c, i), "examples": n})
            left -= n
            i += 1
    tasks = []
    for k in range(max((len(v) for v in per.values()), default=0)):
        for c in names:
            if k < len(per[c]):
                tasks.append(per[c][k])
    return tasks


def auto_workers(n_tasks):
    """The default number of local workers: one per CPU, at most one per task, at least one."""
    return max(1, min(os.cpu_count() or 1, n_tasks))


# ------------------------------------------------------------------------------------------- outcomes

@dataclass
class Lost:
    """A task given up: ``attempts`` workers died running it; ``reason`` says how the last one ended."""
    task: object
    attempts: int
    reason: str


@dataclass
class Outcome:
    """What ``run_tasks`` returns: the results in completion order, the tasks given up, and how many times a
    task was rerun after its worker died (local workers only; Dask does not tell)."""
    results: list = field(default_factory=list)
    lost: list = field(default_factory=list)
    reruns: int = 0


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process (attached as its ``__cause__``)."""

    def __str__(self):
        return self.args[0] if self.args else ""


# ------------------------------------------------------------------------------------------ executors

class Inline:
    """Runs the tasks in this process, in order (one worker)."""
    reruns = 0

    def map_unordered(self, fn, tasks):
        for t in tasks:
            yield fn(t)

    def close(self):
        pass


def _death(code):
    if code is None:
        return "its worker process closed its pipe without answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"its worker process was killed by {name}" + (" (what the out-of-memory killer sends)"
                                                             if name == "SIGKILL" else "")
    return f"its worker process exited with code {code}"


def _error_reply(e):
    """("error", exception, traceback text), with the exception replaced by a RuntimeError naming it when it
    does not survive pickling."""
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    try:
        pickle.loads(pickle.dumps(e))
    except Exception:                  # noqa: BLE001 - any pickling failure: send its text instead
        e = RuntimeError(f"{type(e).__name__}: {e}")
    return ("error", e, tb)


def _exit_with(parent):
    """Exit this worker within a second of its parent's death (a SIGKILLed parent cannot stop its workers,
    and a worker would otherwise finish its chunk, possibly minutes, for nobody)."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def serve(conn, warm):
    """What a local worker process runs: ``warm()`` once, then (fn, task) messages answered by ("ok", result)
    or ("error", exception, traceback), until None or the parent's end of the pipe closes."""
    import threading
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the parent's to handle: it stops the workers
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True, name="exit-with-parent").start()
    try:
        if warm is not None:
            warm()
    except Exception as e:             # noqa: BLE001 - reported to the parent, which raises it
        conn.send(_error_reply(e))
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):   # the parent is gone
            return
        if msg is None:
            return
        fn, task = msg
        try:
            reply = ("ok", fn(task))
        except Exception as e:         # noqa: BLE001 - the parent re-raises it
            reply = _error_reply(e)
        try:
            conn.send(reply)
        except OSError:                # the parent is gone
            return
        except Exception as e:         # noqa: BLE001 - e.g. a result that cannot be pickled
            conn.send(_error_reply(e))


class _Worker:
    """One spawned worker process and the parent's end of its pipe."""

    def __init__(self, ctx, warm):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(child, warm), daemon=True, name="verify-worker")
        self.proc.start()
        child.close()                  # only the worker holds its end now: its death closes the pipe

    def give(self, fn, task):
        """Send a task; False when the worker is already dead."""
        try:
            self.conn.send((fn, task))
            return True
        except OSError:
            return False

    def receive(self):
        """The worker's reply, or ("died", how) when it ended without one."""
        try:
            if self.conn.poll():
                return self.conn.recv()
        except (EOFError, OSError):    # end of file, or cut off in the middle of a message
            pass
        self.proc.join(5)
        code = self.proc.exitcode      # None: the pipe closed but the process lingers (stopped below)
        self.stop()
        return ("died", _death(code))

    def stop(self):
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.conn.close()

    def quit(self):
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(5)
        self.stop()


class LocalPool:
    """``workers`` spawned processes, each running one task at a time; a worker that dies is replaced and
    its task rerun (up to ``retries`` times, then yielded as ``Lost``).  Spawned, not forked: torch and jax
    start threads, and a forked copy of a threaded process can deadlock.  ``warm``: a module-level function
    each worker runs once before its first task."""

    def __init__(self, workers, warm=None, retries=RETRIES):
        if workers < 1:
            raise InputError(f"workers={workers!r} must be at least 1")
        if retries < 0:
            raise InputError(f"retries={retries!r} must be at least 0")
        self.size, self.warm, self.retries = workers, warm, retries
        self.ctx = multiprocessing.get_context("spawn")
        self.idle, self.busy = [], {}            # busy: worker -> [task, attempts so far]
        self.given_up = []                        # Lost records not yet yielded
        self.reruns = 0

    def pids(self):
        """The process ids of the live workers."""
        return [w.proc.pid for w in self.idle + list(self.busy) if w.proc.is_alive()]

    def map_unordered(self, fn, tasks):
        """Yield each task's result as it finishes, or a ``Lost`` for a task given up; a task's exception is
        raised here (with the worker's traceback as its cause)."""
        todo = deque([t, 0] for t in tasks)
        try:
            while todo or self.busy:
                self._fill(fn, todo)
                if not self.busy:      # every remaining task was given up while being handed out
                    break
                done = self._collect(todo)
                self._fill(fn, todo)   # a freed worker starts its next task before the caller sees a result
                done, self.given_up = self.given_up + done, []
                yield from done
            yield from self.given_up
            self.given_up = []
        finally:
            for w in list(self.busy):  # abandoned (an exception, or the caller stopped early)
                w.stop()
            self.busy.clear()

    def _fill(self, fn, todo):
        """Give queued tasks to idle workers, starting new ones up to the pool's size."""
        while todo and len(self.busy) < self.size:
            if self.idle:
                w = self.idle.pop()
                if not w.proc.is_alive():      # died while idle: no task was lost, replace it
                    w.stop()
                    continue
            else:
                w = _Worker(self.ctx, self.warm)
            job = todo.popleft()
            self.busy[w] = job
            if not w.give(fn, job[0]):
                self.busy.pop(w)
                self._died(w, job, todo, "its worker process ended before taking the task")

    def _collect(self, todo):
        """Wait until a busy worker answers or dies; return the results."""
        from multiprocessing.connection import wait
        ready = set(wait([w.conn for w in self.busy] + [w.proc.sentinel for w in self.busy]))
        out = []
        for w in [w for w in self.busy if w.conn in ready or w.proc.sentinel in ready]:
            job = self.busy.pop(w)
            reply = w.receive()
            if reply[0] == "ok":
                self.idle.append(w)
                out.append(reply[1])
            elif reply[0] == "error":
                self.idle.append(w)
                exc = reply[1]
                exc.__cause__ = RemoteTraceback(reply[2])
                raise exc
            else:
                self._died(w, job, todo, reply[1])
        return out

    def _died(self, w, job, todo, how):
        """Book a worker's death while it held ``job``: rerun the task first, or give it up."""
        w.stop()
        job[1] += 1
        if job[1] > self.retries:
            self.given_up.append(Lost(job[0], job[1], how))
        else:
            self.reruns += 1
            todo.appendleft(job)

    def close(self):
        for w in self.idle:
            w.quit()
        for w in self.busy:
            w.stop()
        self.idle, self.busy = [], {}


class DaskPool:
    """A Dask cluster (an address such as tcp://host:8786, or a ``distributed.Client``); a task the scheduler
    gives up after its workers died (``KilledWorker``) is yielded as ``Lost``."""

    def __init__(self, dask):
        try:
            from distributed import Client
        except ImportError:
            raise InputError("--dask needs the 'distributed' package (pip install distributed)") from None
        self.owns = not isinstance(dask, Client)
        self.client = Client(dask) if self.owns else dask
        self.ex = self.client.get_executor()
        self.reruns = 0

    def map_unordered(self, fn, tasks):
        from concurrent.futures import as_completed

        import dask.config
        from distributed.scheduler import KilledWorker
        allowed = dask.config.get("distributed.scheduler.allowed-failures", RETRIES)
        futs = {self.ex.submit(fn, t): t for t in tasks}
        try:
            for f in as_completed(futs):
                try:
                    r = f.result()
                except KilledWorker as e:
                    r = Lost(futs[f], allowed + 1, f"the Dask scheduler gave it up: {e}")
                yield r
        finally:
            for f in futs:
                f.cancel()

    def close(self):
        if self.owns:
            self.client.close()


def executor(workers=1, dask=None, warm=None, retries=RETRIES):
    """Inline for one worker, a LocalPool for several, a DaskPool when ``dask`` is given.  ``warm``: a
    module-level function each local worker process runs once before its first task (e.g. imports)."""
    if dask is not None:
        return DaskPool(dask)
    if workers <= 1:
        return Inline()
    return LocalPool(workers, warm, retries)


def run_tasks(fn, tasks, workers=1, dask=None, warm=None, retries=RETRIES, on_result=None, on_lost=None):
    """Run ``fn(task)`` for every task on ``executor(workers, dask, warm, retries)``; ``on_result(result)`` and
    ``on_lost(lost)`` are called as each task ends.  Returns an Outcome; a task's exception propagates (the
    workers are stopped)."""
    out = Outcome()
    ex = executor(workers, dask, warm, retries)
    try:
        for r in ex.map_unordered(fn, tasks):
            if isinstance(r, Lost):
                out.lost.append(r)
                if on_lost:
                    on_lost(r)
            else:
                out.results.append(r)
                if on_result:
                    on_result(r)
    finally:
        ex.close()
    out.reruns = ex.reruns
    return out


# ------------------------------------------------------------------------------------------- progress

class Progress:
    """A one-line progress bar on stderr, updated per finished task (on a terminal: redrawn in place;
    otherwise one line per tenth of the work)."""

    def __init__(self, total, stream=None, quiet=False, unit="chunks", counts=("examples", "failures")):
        self.total, self.done, self.lost, self.quiet = total, 0, 0, quiet
        self.unit, self.counts = unit, counts
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = -1
        self._shown = (0, 0)

    def update(self, n, failures, examples):
        """``n`` more tasks done; ``examples`` and ``failures``: the running totals of the two counts."""
        self.done += n
        self._shown = (failures, examples)
        self._draw()

    def lose(self, n=1):
        """``n`` tasks given up (their workers died too often): counted as done, shown as lost."""
        self.done += n
        self.lost += n
        self._draw(force=True)

    def _draw(self, force=False):
        if self.quiet or self.total == 0:
            return
        frac = self.done / self.total
        if not (self.tty or force) and int(frac * 10) == self._last and self.done < self.total:
            return
        self._last = int(frac * 10)
        failures, examples = self._shown
        bar = "#" * int(frac * 30)
        el = time.perf_counter() - self.t0
        line = (f"[{bar:<30}] {self.done}/{self.total} {self.unit}  {examples} {self.counts[0]}  "
                f"{failures} {self.counts[1]}" + (f"  {self.lost} lost" if self.lost else "") + f"  {el:.0f}s")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()
