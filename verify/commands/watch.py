"""verify watch TRAIN.py:NAME: train the user's model with the user's optimizer and batches, and audit the
gradient of every K-th step in worker processes (or on a Dask cluster) while training goes on.

The parent runs the standard loop (zero_grad, forward, backward, step); on an audited step it sends the
parameter snapshot (and buffers), the batch and the gradients in p.grad to a worker.  A worker imports the
script itself, builds the model and its ``verify.Auditor`` once, loads each snapshot into its model, audits
the given gradient and returns the step's JSON line (auditing/watch.py: ``step_record``).  Lines are written
in step order as they come back.  At most ``2 x workers`` audits are in flight: when training runs ahead of
the audits by more, it waits for the oldest (the progress line says so).
"""
import os
import sys
import time
from collections import deque

from ..errors import InputError, VerifyError
from . import FMT, emit, footer, positive

SCRIPT_HELP = ("TRAIN.py:NAME names a function NAME in your own Python script that returns (model, optimizer, "
               "batches): a torch.nn.Module whose model(*batch) returns the scalar loss, a torch.optim optimizer "
               "over its parameters, and an iterable of batches (tuples of tensors; iterated again when it runs "
               "out).  The script is your code and is imported as such, by verify and by every worker (it must "
               "build the same model each time: its weights are replaced by the snapshot of each audited "
               "step).  A model that draws random numbers in its forward pass (dropout in training mode) cannot "
               "be audited.")
MAX_IN_FLIGHT = 2          # audits in flight per worker before training waits for the oldest


def add(sub):
    w = sub.add_parser("watch", help="train with your own loop's pieces and audit the gradients the optimizer uses, "
                                     "every K steps: kinks per layer, the bifurcation and compensation zones",
                       description="Run your training loop (zero_grad, forward, backward, optimizer step) for "
                                   "--steps steps and audit the gradient of every K-th step (--every K), the one in "
                                   "p.grad that the optimizer then uses, at the step's parameters and batch: the "
                                   "verdict (is it the selection gradient of the exact loss?), the exact kinks per "
                                   "layer and class, the float kinks, and the zones: bifurcation (the exact gradient "
                                   "depends on the kink convention: relu'(0) = 1, a max-pool tie split evenly, "
                                   "the other frameworks' choices) and compensation (floats decided a kink "
                                   "otherwise than the exact point).  One JSON line per audited step goes to "
                                   "--log; the summary ends the run.  Exit 0 when every audited step is PROVED, 1 "
                                   "when one is REFUTED, 3 when one is UNDECIDED (and none REFUTED).",
                       epilog=footer(SCRIPT_HELP), formatter_class=FMT)
    w.add_argument("target", metavar="TRAIN.py:NAME", help="the script and the function returning (model, optimizer, "
                                                            "batches)")
    w.add_argument("--steps", type=positive("--steps"), required=True, metavar="N", help="training steps to run")
    w.add_argument("--every", type=positive("--every"), default=1, metavar="K",
                   help="audit steps 0, K, 2K, ... (default 1: every step)")
    w.add_argument("--log", required=True, metavar="FILE.jsonl", help="one JSON line per audited step (docs/watch.md)")
    w.add_argument("--plot", metavar="FILE.png", help="draw kinks per layer and zone counts over the steps")
    where = w.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="W",
                       help="audit in W local worker processes (default: one per CPU but one, at least 1; 0: in "
                            "this process, between training steps)")
    where.add_argument("--dask", metavar="ADDRESS", help="audit on a Dask cluster (needs 'distributed'; the "
                                                         "workers must see the script at the same path)")
    w.add_argument("--json", action="store_true", help="print one JSON object: the summary (no progress line)")
    w.set_defaults(run=run)


# ------------------------------------------------------------------------------------------ the worker side

_MODELS = {}               # in a worker: TRAIN.py:NAME -> {"model", "auditor"}, built on the first task


def warm():
    """Worker start: one torch thread (two processes share the machine with the training), and torch.export's
    own deprecation noise silenced as the CLI silences it."""
    import warnings

    import torch
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)


def load_training(target):
    """(model, optimizer, batches) from TRAIN.py:NAME; InputError naming what is missing."""
    from .audit import call_script
    out = call_script(target)
    if not isinstance(out, tuple) or len(out) != 3:
        raise InputError(f"{target} must return (model, optimizer, batches)")
    model, optimizer, batches = out
    if not hasattr(model, "named_parameters") or not callable(model):
        raise InputError(f"{target}: the model must be a torch.nn.Module (got {type(model).__name__})")
    if not (hasattr(optimizer, "step") and hasattr(optimizer, "zero_grad")):
        raise InputError(f"{target}: the optimizer must have step() and zero_grad() (got {type(optimizer).__name__})")
    try:
        iter(batches)
    except TypeError:
        raise InputError(f"{target}: batches must be iterable (got {type(batches).__name__})") from None
    return model, optimizer, batches


def audit_task(task):
    """What a worker runs for one audited step (task: target, step, state, batch, grads, loss): its JSON line,
    with ``worker`` (the process id that audited it)."""
    from ..auditing.auditor import Auditor
    from ..auditing.watch import step_record
    from ..auditing.zones import zones
    from ..errors import Undecided
    here = _MODELS.get(task["target"])
    if here is None:
        here = _MODELS[task["target"]] = {"model": load_training(task["target"])[0], "auditor": None}
    model = here["model"]
    load_state(model, task["state"])
    batch = tuple(as_torch(b) for b in task["batch"])
    grads = {k: as_torch(v) for k, v in task["grads"].items()}
    t0 = time.perf_counter()
    try:
        if here["auditor"] is None:
            here["auditor"] = Auditor(model, *batch, framework="torch")
        rep = here["auditor"].audit(*batch, gradient=grads)
        rec = step_record(task["step"], rep, zones(rep), time.perf_counter() - t0, task["loss"])
    except Undecided as e:
        rec = undecided_record(task["step"], str(e), time.perf_counter() - t0, task["loss"])
    rec["worker"] = os.getpid()
    return rec


def undecided_record(step, reason, seconds, loss=None):
    """The JSON line of a step whose audit stopped undecided (no kinks or zones to report)."""
    return {"step": step, "verdict": "UNDECIDED", "seconds": round(seconds, 4), "loss": loss, "reason": reason,
            "gradient": {"elements": 0, "outside": 0}, "exact_kinks": {"count": 0, "sites": 0, "classes": {}},
            "layers": [], "float_kinks": {"count": 0, "float_tie": 0, "missed_tie": 0, "flip": 0},
            "zones": {"bifurcation": None, "compensation": False, "conventions": []}}


def as_numpy(t):
    """A tensor as a numpy array to send (bfloat16, which numpy lacks, stays a tensor); anything else as is."""
    if hasattr(t, "detach"):
        t = t.detach().cpu()
        return t.clone() if str(t.dtype) == "torch.bfloat16" else t.numpy().copy()
    return t


def as_torch(v):
    import numpy as np
    import torch
    return torch.from_numpy(v) if isinstance(v, np.ndarray) else v


def load_state(model, state):
    """Copy a snapshot ({name: array} of parameters and buffers) into the worker's model; InputError when the
    script built a model that does not match it."""
    import torch
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if name in state:
                v = as_torch(state[name])
                if tuple(v.shape) != tuple(t.shape):
                    raise InputError(f"the worker's model has {name} of shape {list(t.shape)}, the training's "
                                     f"{list(v.shape)}: the script must build the same model every time")
                t.copy_(v)


def users(step, what, fn, *args):
    """``fn(*args)``: the user's code (the model, the optimizer, the batches); anything it raises becomes one
    InputError line naming the step."""
    try:
        return fn(*args)
    except VerifyError:
        raise
    except Exception as e:                  # the user's code: reported in one line, as an error of the input
        raise InputError(f"step {step}: {what} raised {type(e).__name__}: {e}".split("\n")[0]) from None


# ------------------------------------------------------------------------------------------ the parent side

class Pool:
    """Where audits run: in this process (workers=0), in local spawned worker processes, or on a Dask cluster;
    ``submit(task)`` returns a future, results are read in submission order."""

    def __init__(self, workers, dask):
        self.dask = dask
        if dask is not None:
            from ..executor import DaskPool
            self.pool = DaskPool(dask)
            self.ex, self.size = self.pool.ex, 4
        elif workers == 0:
            self.pool = self.ex = None
            self.size = 1
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            # spawn, not fork: torch starts threads, and a forked copy of a threaded process can deadlock
            self.ex = self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                      initializer=warm)
            self.size = workers

    def submit(self, task):
        if self.ex is None:
            from concurrent.futures import Future
            f = Future()
            f.set_result(audit_task(task))
            return f
        return self.ex.submit(audit_task, task)

    def close(self):
        if self.dask is not None:
            self.pool.close()
        elif self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def default_workers():
    return max(1, (os.cpu_count() or 1) - 1)


class Training:
    """The training loop of ``verify watch``: named steps (``run``: train, submit, collect), the audits in step
    order into the log."""

    def __init__(self, args, log, progress):
        self.args, self.log, self.progress = args, log, progress
        self.model, self.optimizer, self.batches = load_training(args.target)
        self.pending = deque()
        self.steps = 0
        self.waited = 0.0
        self.stopped = ""

    def batch_stream(self):
        """The batches, iterated again when they run out (epochs); stops when an iteration yields none."""
        while True:
            got = False
            for b in self.batches:
                got = True
                yield b if isinstance(b, (tuple, list)) else (b,)
            if not got:
                return

    def run(self, pool):
        stream = self.batch_stream()
        for step in range(self.args.steps):
            batch = users(step, "iterating the batches", next, stream, None)
            if batch is None:
                self.stopped = f"the batches ran out after {step} step(s)"
                break
            loss = self.train_step(step, batch)
            if step % self.args.every == 0:
                self.submit(pool, step, batch, loss)
            users(step, "optimizer.step()", self.optimizer.step)
            self.steps = step + 1
            self.collect(block=False)
            self.progress.update(self.steps)
        self.collect(block=True)
        self.progress.update(self.steps)

    def train_step(self, step, batch):
        users(step, "optimizer.zero_grad()", self.optimizer.zero_grad)
        loss = users(step, "model(*batch)", self.model, *batch)
        if not hasattr(loss, "backward") or getattr(loss, "ndim", 1) != 0:
            raise InputError(f"step {step}: model(*batch) must return a scalar loss tensor (got "
                             f"{type(loss).__name__}{'' if not hasattr(loss, 'shape') else list(loss.shape)})")
        users(step, "loss.backward()", loss.backward)
        return float(loss.detach())

    def submit(self, pool, step, batch, loss):
        grads = {n: as_numpy(p.grad) for n, p in self.model.named_parameters() if p.grad is not None}
        if not grads:
            raise InputError(f"step {step}: no parameter has a gradient after loss.backward()")
        state = {n: as_numpy(t) for n, t in list(self.model.named_parameters()) + list(self.model.named_buffers())}
        task = {"target": self.args.target, "step": step, "state": state, "batch": [as_numpy(b) for b in batch],
                "grads": grads, "loss": loss}
        while len(self.pending) >= MAX_IN_FLIGHT * pool.size:
            t0 = time.perf_counter()
            self.collect(block=True, one=True)
            self.waited += time.perf_counter() - t0
        self.pending.append((step, pool.submit(task)))

    def collect(self, block, one=False):
        """Write the finished audits at the head of the queue (all of them when ``block``; one when ``one``)."""
        from concurrent.futures.process import BrokenProcessPool
        while self.pending and (block or self.pending[0][1].done()):
            step, fut = self.pending.popleft()
            try:
                rec = fut.result()
            except BrokenProcessPool as e:
                raise VerifyError(f"step {step}: an audit worker process died ({e})") from None
            self.log.write(rec)
            self.progress.audited(rec)
            if one:
                return


class Progress:
    """The progress line on stderr: steps trained, audits back, their verdicts, the time."""

    def __init__(self, total, quiet):
        from ..executor import Progress as Bar
        self.bar = Bar(total, quiet=quiet, unit="steps", counts=("audited", "not PROVED"))
        self.done, self.audits, self.bad = 0, 0, 0

    def update(self, steps):
        self.bar.update(steps - self.done, self.bad, self.audits)
        self.done = steps

    def audited(self, rec):
        self.audits += 1
        self.bad += rec["verdict"] != "PROVED"

    def close(self):
        if not self.bar.quiet and self.bar.total:
            self.bar.stream.write("\n" if self.bar.tty else "")
            self.bar.stream.flush()


def check_paths(args):
    from ..certificates import check_writable
    for path, ext in ((args.log, ".jsonl"), (args.plot, ".png")):
        if path:
            check_writable(path)
            if not path.lower().endswith(ext):
                raise InputError(f"{path!r}: the file name must end with {ext}")
    if args.workers is not None and args.workers < 0:
        raise InputError(f"--workers={args.workers} must be at least 0")


def run(args):
    from ..auditing.watch import Log, Summary
    check_paths(args)
    workers = default_workers() if args.workers is None and args.dask is None else args.workers
    log = Log(args.log)
    progress = Progress(args.steps, quiet=args.json or not hasattr(sys.stderr, "write"))
    training = Training(args, log, progress)
    pool = Pool(workers, args.dask)
    t0 = time.perf_counter()
    try:
        training.run(pool)
    finally:
        pool.close()
        progress.close()
    wall = time.perf_counter() - t0
    summary = Summary(log.records, training.steps, args.every)
    if args.plot:
        from ..auditing.watch_figure import plot
        plot(log.records, args.plot, title=f"verify watch {os.path.basename(args.target)}: {training.steps} step(s), "
                                           f"{len(log.records)} audited")
    verdicts = summary.verdicts()
    verdict = "REFUTED" if verdicts["REFUTED"] else ("UNDECIDED" if verdicts["UNDECIDED"] else "PROVED")
    bad = [r["step"] for r in log.records if r["verdict"] == verdict] if verdict != "PROVED" else []
    reason = (f"{len(bad)} audited step(s) {verdict}: steps {', '.join(map(str, bad[:10]))}"
              + (" ..." if len(bad) > 10 else "")) if bad else None
    notes = [n for n in (training.stopped,) if n]
    if training.waited > 0.05:
        notes.append(f"training waited {training.waited:.1f}s for the audits ({MAX_IN_FLIGHT} per worker in flight)")
    text = summary.text() + "".join(f"\nnote: {n}" for n in notes) + \
        f"\nlog: {args.log}" + (f"; figure: {args.plot}" if args.plot else "") + f"; wall time {wall:.1f}s"
    payload = {"target": args.target, "steps": training.steps, "every": args.every,
               "workers": "dask" if args.dask else workers, "log": args.log, "plot": args.plot,
               "wall_seconds": round(wall, 3), "notes": notes, "summary": summary.json()}
    return emit(args, verdict, payload, text, reason)

