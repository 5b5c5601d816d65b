"""verify fuzz: campaigns of random programs against every claim of the paper, the mutation self-test, and
replaying a saved failure."""
from ..executor import RETRIES
from . import FMT, emit, positive

DESCRIPTION = f"""\
Run every claim of the paper as a property of random programs (hypothesis): Lemma 1, Theorems 1 and 2,
Propositions 2, 3 and 4, soundness of the number systems, our torch/jax conventions against torch and
jax themselves, and that every certificate verify writes passes the independent checker.  N examples per
claim, reproducible by --seed (the examples do not depend on --workers).
Every failure is shrunk to a minimal example and saved under --out as a reproducer (program.prog,
point.txt, example.json, replay.sh).

--self-test runs the claims against deliberately broken rule tables (mutants) and reports which are
killed; exit 0 only when all are.  --replay DIR re-runs a saved reproducer.

Needs hypothesis (pip install 'verify-ad[test]').

A worker process that dies (e.g. killed by the out-of-memory killer) is replaced and its chunk rerun; a
chunk whose workers die {RETRIES + 1} times is reported as lost, with its seed (the other chunks' results are kept).

exit codes: 0 no failure (self-test: every mutant killed), 1 failures (a mutant survived), 2 bad input,
3 replay undecided, or chunks lost and no failure, 4 internal error.  With --json: one JSON object on stdout
whatever the outcome, with verdict (PROVED, REFUTED, UNDECIDED, ERROR) and reason."""


def add(sub):
    f = sub.add_parser("fuzz", help="random programs against every claim of the paper; mutation self-test",
                       description=DESCRIPTION, formatter_class=FMT)
    f.add_argument("--examples", type=positive("--examples"), default=200, metavar="N",
                   help="examples per claim (default 200)")
    f.add_argument("--seed", type=int, default=0, metavar="S", help="campaign seed (default 0)")
    f.add_argument("--claims", nargs="+", metavar="NAME",
                   help="which claims (names or comma-separated lists; default all): lemma1 theorem1 theorem2 "
                        "proposition2 proposition3 proposition4 soundness frameworks certificates")
    f.add_argument("--workers", type=positive("--workers"), default=None, metavar="K",
                   help="local worker processes (default: one per CPU, at most one per chunk of work); the "
                        "examples do not depend on it")
    f.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster (scheduler address, e.g. "
                                                     "tcp://host:8786; needs the 'distributed' package)")
    f.add_argument("--out", default="fuzz-failures", metavar="DIR",
                   help="where failures are saved as reproducers (default fuzz-failures)")
    f.add_argument("--chunk", type=positive("--chunk"), default=None, metavar="M", help=argparse_suppress())
    f.add_argument("--self-test", action="store_true", help="run the claims against the mutants")
    f.add_argument("--replay", metavar="DIR", help="re-run a saved reproducer")
    f.add_argument("--json", action="store_true", help="print one JSON object whatever the outcome (no progress bar)")
    f.set_defaults(run=run)


def argparse_suppress():
    import argparse
    return argparse.SUPPRESS


def _claims(args):
    from ..errors import InputError
    from ..fuzz.claims import NAMES
    if not args.claims:
        return None
    names = [n for a in args.claims for n in a.split(",") if n]
    bad = [n for n in names if n not in NAMES]
    if bad:
        raise InputError(f"unknown claim(s) {', '.join(bad)} (choose from {', '.join(NAMES)})")
    return names


def run(args):
    from ..errors import InputError
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        raise InputError("verify fuzz needs the hypothesis package: pip install 'verify-ad[test]' (or pip install "
                         "hypothesis)") from None
    if args.replay:
        return _replay(args)
    if args.self_test:
        return _self_test(args)
    return _campaign(args)


def _replay(args):
    import os

    import json

    from ..errors import InputError, VerifyError
    from ..fuzz.campaign import replay
    from ..fuzz.claims import Example
    path = os.path.join(args.replay, "example.json") if os.path.isdir(args.replay) else args.replay
    if not os.path.exists(args.replay):
        raise InputError(f"no reproducer at {args.replay!r}")
    try:
        with open(path, encoding="utf-8") as f:
            Example.from_json(json.load(f))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, VerifyError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"
        raise InputError(f"{args.replay!r} is not a reproducer (a folder written by verify fuzz, with "
                         f"example.json): {' '.join(str(why).split())[:200]}") from None
    outcome, msg = replay(args.replay)
    verdict = {"ok": "PROVED", "undecided": "UNDECIDED", "failure": "REFUTED"}[outcome]
    return emit(args, verdict, {"outcome": outcome, "message": msg}, outcome + (f": {msg}" if msg else ""),
                msg or "the claim is undecided on this example")


def _campaign(args):
    from ..executor import CHUNK, Progress, auto_workers, plan
    from ..fuzz.campaign import campaign, table
    from ..fuzz.claims import CLAIMS, NAMES
    names = _claims(args) or list(NAMES)
    n_tasks = len(plan([c for c in names if CLAIMS[c].available() is None], args.examples, args.seed,
                       args.chunk or CHUNK))
    prog = Progress(n_tasks, quiet=args.json)
    workers = args.workers or auto_workers(n_tasks)
    res = campaign(args.examples, args.seed, names, workers, args.dask, args.out, prog, args.chunk or CHUNK)
    failures = sum(s.failures for s in res["claims"].values())
    lost = res["lost"]
    reruns = f", {res['reruns']} chunk(s) rerun after their worker died" if res["reruns"] else ""
    lines = [f"verify fuzz: {args.examples} examples per claim, seed {args.seed}, "
             f"{res['workers']} worker(s), {res['wall_seconds']:.1f}s wall{reruns}", table(res)]
    for name, s in res["claims"].items():
        for r in s.reproducers:
            lines.append(f"FAILURE {name}: {r['message']}\n  reproducer: {r['dir']} (replay: python -m verify fuzz "
                         f"--replay {r['dir']})")
    for x in lost:
        lines.append(f"LOST {x['claim']} chunk {x['index']} ({x['examples']} examples, chunk seed {x['seed']}): "
                     f"{x['attempts']} attempt(s), {x['reason']}")
    lines.append(("no failures" if not failures else f"{failures} failure(s), reproducers under {args.out}/")
                 + (f"; {len(lost)} chunk(s) lost, their examples not run" if lost else ""))
    out = {"claims": {k: s.json() for k, s in res["claims"].items()}, "seed": res["seed"],
           "examples_per_claim": args.examples, "workers": res["workers"],
           "wall_seconds": round(res["wall_seconds"], 3), "failures": failures}
    if failures:
        verdict, reason = "REFUTED", f"{failures} failure(s), reproducers under {args.out}/"
    elif lost:
        verdict, reason = "UNDECIDED", (f"{len(lost)} chunk(s) lost: their workers died "
                                        f"{lost[0]['attempts']} times (claims[NAME].lost lists their seeds)")
    else:
        verdict, reason = "PROVED", None
    return emit(args, verdict, out, "\n".join(lines), reason)


def _self_test(args):
    from ..executor import Progress
    from ..fuzz.mutants import MUTANTS, self_test
    examples = args.examples
    prog = Progress(len(MUTANTS), quiet=args.json, unit="mutants", counts=("killed", "survived"))
    res = self_test(examples, args.seed, args.workers or 1, args.dask, prog, _claims(args))
    # a mutant only a missing framework could see is skipped (killed: null), not counted as survived
    killed = all(r["killed"] is not False for r in res)
    w = max(len(r["name"]) for r in res)
    lines = [f"verify fuzz --self-test: {len(res)} mutants, up to {examples} examples per claim, seed {args.seed}"]
    for r in res:
        status = (f"killed by {r['killed_by']:<12}" if r["killed"] else
                  ("LOST" if r.get("lost") else "SURVIVED" if r["killed"] is False else "skipped").ljust(22))
        lines.append(f"  {r['name']:<{w}}  {status}  {r['examples']:>5} examples  {r['seconds']:6.1f}s  "
                     f"{(r['message'] or r.get('skipped') or r['description'])[:110]}")
    skipped = [r["name"] for r in res if r["killed"] is None]
    lost = [r["name"] for r in res if r.get("lost")]
    survived = sum(r["killed"] is False for r in res) - len(lost)
    lines.append(("every mutant killed" if killed else f"{survived} mutant(s) survived")
                 + (f" ({len(skipped)} skipped here: {', '.join(skipped)})" if skipped else "")
                 + (f"; {len(lost)} lost (their workers kept dying): {', '.join(lost)}" if lost else ""))
    verdict = "PROVED" if killed else ("REFUTED" if survived else "UNDECIDED")
    reason = f"{survived} mutant(s) survived" if survived else f"{len(lost)} mutant(s) lost: {', '.join(lost)}"
    return emit(args, verdict, {"mutants": res, "all_killed": killed}, "\n".join(lines), reason)
