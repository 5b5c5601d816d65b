"""The mutation self-test: deliberately broken rule tables, number systems and conventions, each of which the
claims must catch (``verify fuzz --self-test``).

A mutant is a context manager that patches one thing (a rule-table entry, a selection, a number-system
method, a convention, an AD routine) and restores it on exit.  Programs cache their compiled steps, so the
self-test generates fresh programs inside the mutant's context.  A mutant is *killed* when some claim fails
(an AssertionError or any other exception) within a bounded number of examples from a fixed seed; claims
are tried in the mutant's ``targets`` order first, then the rest.
"""
import contextlib
import time
from dataclasses import dataclass

from flint import fmpq

_MISSING = object()


@contextlib.contextmanager
def patch(*changes):
    """Apply (container, key, value) changes (a dict entry or an attribute), restore them on exit."""
    saved = []
    try:
        for obj, key, value in changes:
            if isinstance(obj, dict):
                saved.append((obj, key, obj.get(key, _MISSING)))
                obj[key] = value
            else:
                saved.append((obj, key, obj.__dict__.get(key, _MISSING) if isinstance(obj, type)
                              else getattr(obj, key, _MISSING)))
                setattr(obj, key, value)
        yield
    finally:
        for obj, key, old in reversed(saved):
            if isinstance(obj, dict):
                if old is _MISSING:
                    obj.pop(key, None)
                else:
                    obj[key] = old
            elif old is _MISSING:
                delattr(obj, key)
            else:
                setattr(obj, key, old)


@dataclass
class Mutant:
    name: str
    description: str
    apply: object           # () -> context manager
    targets: tuple          # the claims expected to kill it, tried first
    focus: tuple = None     # the primitives its examples are built from (None: all)
    requires: tuple = ()    # frameworks it needs to be killable ("jax", "torch"); skipped without them


MUTANTS = []


def mutant(name, description, targets, focus=None, requires=()):
    def deco(fn):
        MUTANTS.append(Mutant(name, description, fn, targets, focus, requires))
        return fn
    return deco


# ------------------------------------------------------------------------------------------- the mutants

@mutant("exp-wrong-derivative", "exp' = x instead of exp(x), consistently in jvp and vjp (Lemma 1 cannot see it)",
        ("theorem2", "proposition3", "frameworks"), ("exp", "add", "mul", "relu"))
def _exp_derivative():
    from ..program.prims import jvp_rules, vjp_rules
    return patch((jvp_rules, "exp", lambda ns, p, xs, y, ts: None if ts[0] is None else ns.mul(xs[0], ts[0])),
                 (vjp_rules, "exp", lambda ns, p, xs, y, ct: (ns.mul(xs[0], ct),)))


@mutant("relu-pieces-swapped", "relu's left and right pieces exchanged (u on u < 0, 0 on u > 0)",
        ("theorem2", "frameworks"), ("relu", "add", "sub", "mul"))
def _relu_swapped():
    from ..program.prims import selection_rules
    from ..program.prims.nonsmooth import Slopes
    return patch((selection_rules, "relu", Slopes(lambda p: (1, 0, p["alpha"]))))


@mutant("div-vjp-transposed", "the cotangents of a / b returned in the wrong order (the transposed partials)",
        ("lemma1",), ("div", "add", "sub", "mul"))
def _div_vjp():
    from ..program.prims import vjp_rules
    good = vjp_rules["div"]
    return patch((vjp_rules, "div", lambda ns, p, xs, y, ct: tuple(reversed(good(ns, p, xs, y, ct)))))


@mutant("sort-vjp-transposed", "backward mode through sort applies the permutation instead of its transpose",
        ("lemma1",), ("sort", "add", "sub", "mul"))
def _sort_vjp():
    from ..interpret import ad
    good = ad.vjp

    def vjp(r, cotangents):
        # transpose every sort piece's rows before the real backward pass sees them
        from ..interpret.evaluate import compiled
        from ..program.prims import Piece
        steps = compiled(r.program, r.convention)
        saved = []
        pat = iter(r.pattern)
        for st in steps:
            if st.rule is not None:
                continue
            i = next(pat)
            if st.prim != "sort":
                continue
            p = st.piece(i)
            n = len(p.rows)
            dense = [[0] * n for _ in range(n)]
            for row, (terms, _) in enumerate(p.rows):
                for j, c in terms:
                    dense[row][j] = c
            rows = tuple((tuple((j, fmpq(dense[j][row])) for j in range(n) if dense[j][row] != 0), fmpq(0))
                         for row in range(n))
            saved.append((st, i, p))
            st.pieces[i] = Piece(rows, p.label + "^T")
        try:
            return good(r, cotangents)
        finally:
            for st, i, p in saved:
                st.pieces[i] = p
    return patch((ad, "vjp", vjp))


@mutant("max-tie-piece-dropped", "max/min with split ties leave the last tied argument out of the mean",
        ("theorem2", "frameworks"), ("max", "min", "add", "sub"))
def _tie_dropped():
    from ..program.prims import selection_rules
    from ..program.prims.nonsmooth import Extremum

    class Dropped(Extremum):
        def choose(self, params, n, sign):
            i = super().choose(params, n, sign)
            if params["tie"] != "split":
                return i
            mask = i + 1
            members = [j for j in range(n) if mask >> j & 1]
            if len(members) > 1:
                mask &= ~(1 << members[-1])
            return mask - 1
    return patch((selection_rules, "max", Dropped(1)), (selection_rules, "min", Dropped(-1)))


@mutant("sort-permutation-off-by-one", "sort's index rule returns the next permutation in lexicographic order",
        ("theorem2", "frameworks"), ("sort", "add", "sub", "mul"))
def _sort_off_by_one():
    import math

    from ..program.prims import selection_rules
    from ..program.prims.nonsmooth import Sort

    class OffByOne(Sort):
        def choose(self, params, n, sign):
            return (super().choose(params, n, sign) + 1) % math.factorial(n)
    return patch((selection_rules, "sort", OffByOne()))


@mutant("ball-rounding-unsound", "ball + and * keep only the midpoint (the rounding error is dropped)",
        ("soundness",))
def _ball_unsound():
    from ..numbers.ball import BallSystem
    return patch((BallSystem, "add", lambda self, a, b: (a + b).mid()),
                 (BallSystem, "mul", lambda self, a, b: (a * b).mid()))


@mutant("float-leak-exact", "the exact system reads constants through a float (1/3 becomes its binary neighbour)",
        ("soundness", "theorem2"))
def _float_leak():
    from ..numbers.exact import ExactSystem
    return patch((ExactSystem, "const", lambda self, q: fmpq(*(int(q.p) / int(q.q)).as_integer_ratio())))


@mutant("relu-kink-ignores-alpha", "relu's kink piece always has slope 1, whatever alpha says (torch wants 0)",
        ("theorem2", "frameworks"), ("relu", "add", "sub", "mul"))
def _relu_alpha():
    from ..program.prims import selection_rules
    from ..program.prims.nonsmooth import Slopes
    return patch((selection_rules, "relu", Slopes(lambda p: (0, 1, 1))))


@mutant("jax-abs-convention", "the jax convention says abs'(0) = 0 (jnp.abs gives 1)", ("frameworks",),
        ("abs", "add", "sub", "mul"), requires=("jax",))
def _jax_abs():
    from ..program.kinks import CONVENTIONS
    return patch((CONVENTIONS["jax"]["abs"], "at_zero", fmpq(0)))


@mutant("where-ge-as-gt", "where(u >= v, a, b) takes b at a tie u = v", ("theorem2", "frameworks"),
        ("where", "add", "sub", "mul"))
def _where():
    from ..program.prims.nonsmooth import Where
    tests = dict(Where.TESTS)
    tests[">="] = lambda s: s > 0
    return patch((Where, "TESTS", tests))


@mutant("mul-jvp-drops-term", "forward mode of a * b forgets a * db", ("lemma1",))
def _mul_jvp():
    from ..program.prims import jvp_rules
    return patch((jvp_rules, "mul", lambda ns, p, xs, y, ts: None if ts[0] is None else ns.mul(ts[0], xs[1])))


@mutant("interval-exp-unsound", "mpmath interval exp shifted by a relative 2^-40 (it no longer encloses exp)",
        ("soundness",))
def _iv_exp():
    from mpmath import iv

    from ..numbers.interval import IntervalSystem
    return patch((IntervalSystem, "exp", lambda self, a: iv.exp(a) * (1 + iv.mpf(2) ** -40)))


@mutant("clamp-upper-switch-sign", "clamp's upper switching function is x + hi instead of x - hi",
        ("theorem2", "frameworks"), ("clamp", "hardtanh", "relu6", "add", "mul"))
def _clamp():
    from ..program.prims import selection_rules
    from ..program.prims.nonsmooth import Clamp

    class Wrong(Clamp):
        def switches(self, params, n):
            lo, hi = self._bounds(params)
            out = []
            if lo is not None:
                out.append((((0, fmpq(1)),), -lo))
            if hi is not None:
                out.append((((0, fmpq(1)),), hi))
            return out
    w = Wrong()
    return patch((selection_rules, "clamp", w), (selection_rules, "hardtanh", w), (selection_rules, "relu6", w))


@mutant("log-derivative-of-output", "log' = 1/log(x) instead of 1/x, consistently in jvp and vjp",
        ("theorem2", "proposition3", "frameworks"), ("log", "add", "mul", "relu"))
def _log():
    from ..program.prims import jvp_rules, vjp_rules
    return patch((jvp_rules, "log", lambda ns, p, xs, y, ts: None if ts[0] is None else ns.div(ts[0], y)),
                 (vjp_rules, "log", lambda ns, p, xs, y, ct: (ns.div(ct, y),)))


@mutant("chain-rule-reuses-cotangent", "backward mode overwrites a cotangent instead of adding when a variable "
        "feeds two equations", ("lemma1", "proposition4"))
def _overwrite():
    from ..interpret import ad
    return patch((ad, "_acc", lambda ns, a, b: b if b is not None else a))


# ------------------------------------------------------------------------------------------- self-test

def run_mutant(name, examples=200, seed=0, claims=None):
    """Run the claims against one mutant until one fails.  Returns {name, description, killed, killed_by,
    examples, message, seconds}."""
    from .campaign import run_examples
    from .claims import CLAIMS, NAMES
    m = next(x for x in MUTANTS if x.name == name)
    order = [c for c in m.targets if c in CLAIMS] + [c for c in (claims or NAMES) if c not in m.targets]
    order = [c for c in order if CLAIMS[c].available() is None and (claims is None or c in claims)]
    t0 = time.perf_counter()
    total = 0
    out = {"name": m.name, "description": m.description, "killed": False, "killed_by": None, "message": None}
    from ..frameworks import available
    missing = [fw for fw in m.requires if not available(fw)]
    if missing:                        # only a framework can see this one: not run, not counted as survived
        out.update(killed=None, skipped=f"needs {', '.join(missing)}", examples=0, seconds=0.0)
        return out
    with m.apply():
        for c in order:
            opts = {"primitives": m.focus} if m.focus else None
            r = run_examples(c, seed, examples, shrink=False, options=opts)
            total += r["examples"]
            if r["failures"]:
                out.update(killed=True, killed_by=c, message=r["failures"][0]["message"].splitlines()[0][:300])
                break
    out["examples"] = total
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _task(args):
    return run_mutant(*args)


def self_test(examples=200, seed=0, workers=1, dask=None, progress=None, claims=None):
    """Every mutant against the claims; a list of run_mutant results in MUTANTS order.  A mutant whose worker
    processes kept dying is {killed: False, lost: True, message: why}: neither killed nor known to survive."""
    from ..executor import run_tasks
    by_name = {m.name: m for m in MUTANTS}
    out = {}

    def done(r):
        out[r["name"]] = r
        if progress:
            progress.update(1, sum(x["killed"] is False and not x.get("lost") for x in out.values()),
                            sum(x["killed"] is True for x in out.values()))

    def lost(x):
        m = by_name[x.task[0]]
        out[m.name] = {"name": m.name, "description": m.description, "killed": False, "killed_by": None,
                       "message": f"lost: {x.reason} ({x.attempts} attempts)", "examples": 0, "seconds": 0.0,
                       "lost": True}
        if progress:
            progress.lose()
    run_tasks(_task, [(m.name, examples, seed, claims) for m in MUTANTS], workers, dask, on_result=done,
              on_lost=lost)
    return [out[m.name] for m in MUTANTS]


__all__ = ["MUTANTS", "Mutant", "patch", "run_mutant", "self_test"]
