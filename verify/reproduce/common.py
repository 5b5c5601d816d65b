"""What the reproductions share: certificates written and re-checked, markdown tables, Agg figures, the
initialisation campaigns (run on ``verify.executor``, as ``verify fuzz``'s are), and reading the kinks of an
evaluation.

Every reproduction is ``run(out_dir, progress=None, full=False, workers=None, dask=None)``: ``full`` is the
paper's scale (the default is bounded), ``workers`` / ``dask`` choose where its campaigns run (local
processes or a Dask cluster, as in ``verify fuzz``), ``progress`` receives one-line messages.
"""
import json
import os

from ..certificates import write
from ..checker import check
from ..errors import InputError
from ..executor import RETRIES, Progress, auto_workers, run_tasks


def save_certificate(cert, path):
    """Write ``cert`` to ``path`` and re-validate the file with the independent checker (raises if invalid);
    return the file's base name."""
    write(cert, path)
    with open(path, encoding="utf-8") as f:
        check(json.load(f))
    return os.path.basename(path)


def write_json(obj, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")
    return path


def write_text(text, path):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def md_table(head, rows):
    """A markdown table (cells converted with str)."""
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def figure(nrows, ncols, size, dpi=100):
    """(Figure, axes) drawn by the Agg backend (no display, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig, path):
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})    # no version string: the file changes only with the data
    return path


# ------------------------------------------------------------------------------------------- campaigns

# Tasks given up by the campaigns of this process (their workers kept dying), oldest first, until take_lost()
# hands them over: `verify reproduce` reports them beside the reproduction whose numbers miss them.
_LOST = []


def take_lost():
    """The campaigns' tasks given up since the last call, as {unit, task, attempts, reason}; clears them."""
    out = list(_LOST)
    _LOST.clear()
    return out


def campaign(fn, tasks, workers=None, dask=None, progress=None, unit="runs", counts=("runs", "events"),
             count=None, warm=None, retries=RETRIES):
    """Run ``fn(task)`` for every task (dicts with an ``index``) on ``verify.executor`` (inline for one worker,
    local processes, or a Dask cluster), with a progress bar on stderr when ``progress`` is given.
    ``count(result)`` -> (runs, events) feeds the bar.  Returns the results in task order, so the outcome does
    not depend on the number of workers.  A task whose worker process dies is rerun on a new one, up to
    ``retries`` times; after that it is missing from the results, said through ``progress`` and kept for
    ``take_lost``."""
    if workers is not None and workers < 1:
        raise InputError(f"workers={workers!r} must be at least 1")
    n = workers or auto_workers(len(tasks))
    bar = Progress(len(tasks), quiet=progress is None, unit=unit, counts=counts)
    totals = [0, 0]

    def done(r):
        a, b = count(r) if count else (1, 0)
        totals[0] += a
        totals[1] += b
        bar.update(1, totals[1], totals[0])

    def lost(x):
        bar.lose()
        _LOST.append({"unit": unit, "task": x.task, "attempts": x.attempts, "reason": x.reason})
        if progress:
            progress(f"LOST: {unit[:-1] if unit.endswith('s') else unit} {x.task.get('index')} ({x.task}) given up "
                     f"after {x.attempts} attempts: {x.reason}")
    out = run_tasks(fn, tasks, n, dask, warm, retries, on_result=done, on_lost=lost)
    return sorted(out.results, key=lambda r: r["index"])


# ------------------------------------------------------------------------------------------------ kinks

KINK_PRIMS = ("relu", "abs")


def relu_inputs(result):
    """The input of every relu (and abs) equation in an evaluation (an EvalResult of ``verify.evaluate``), in
    program order: the program is at a kink of equation k exactly when input k is 0 (exactly, for exact
    numbers; in the float type's own arithmetic for float numbers).  Only programs whose nonsmooth equations
    are relu and abs are accepted (another nonsmooth primitive raises InputError): their switching functions
    are these inputs."""
    from ..program.prims import PRIMITIVES
    P, env = result.run.program, result.run.env
    out = []
    for e in P.eqns:
        if e.prim in KINK_PRIMS:
            a = e.ins[0]
            out.append(env[a] if a.__class__ is int else a.value)
        elif not PRIMITIVES[e.prim].smooth:
            raise InputError(f"relu_inputs reads relu / abs programs only, {P.name} has {e.prim}")
    return out


def exact_relu_inputs(program, point, convention="torch"):
    """relu_inputs at ``point`` in exact rationals; InputError when one of them is not an exact rational (a
    ball's sign would not be decided here)."""
    from flint import fmpq

    from ..interpret.evaluate import evaluate
    vals = relu_inputs(evaluate(program, point, number="exact", convention=convention))
    if not all(isinstance(v, fmpq) for v in vals):
        raise InputError(f"{program.name}: a relu input is not an exact rational at the point")
    return vals


def kinks_at(program, point, number="exact", convention="torch"):
    """How many relu inputs are exactly 0 when ``program`` is evaluated at ``point`` in ``number`` ("exact":
    decided in rationals; "float64" / "float32" / "float16": in that float arithmetic, what a framework sees).
    Balls are refused: a ball around 0 does not say whether the input is 0."""
    from ..interpret.evaluate import evaluate
    if number == "exact":
        vals = exact_relu_inputs(program, point, convention)
    elif number in ("float", "float64", "float32", "float16"):
        vals = relu_inputs(evaluate(program, point, number=number, convention=convention))
    else:
        raise InputError(f"kinks_at decides kinks exactly or in floats, not in {number!r}")
    return sum(1 for v in vals if v == 0)
