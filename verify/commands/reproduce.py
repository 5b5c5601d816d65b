"""verify reproduce."""
import sys
import textwrap
import time

from . import EXIT_HELP, FMT, emit

OK_VERDICTS = ("PROVED", "CONSISTENT", "MEASURED", "SKIPPED")


def _description():
    from ..executor import RETRIES
    from ..reproduce import DESCRIPTIONS, REPRODUCTIONS
    targets = "\n".join(f"  {name:<13} {DESCRIPTIONS.get(name, '')}" for name in REPRODUCTIONS)
    return f"""\
Regenerate the paper's reproductions into --out (one folder per target: certificates re-validated by the
independent checker, figures, table.md, results.json) and print one table: claim / paper's value / ours /
verdict, then where the certificates and figures went.

targets (default: all):
{targets}

The default is bounded (all targets in a couple of minutes on two cores); --full runs the experiments
(theorem4, kinkhit) at the paper's scale.  Their initialisation campaigns run on the executor `verify fuzz`
uses too: local processes (--workers, default one per CPU) or a Dask cluster (--dask), with a progress bar on
stderr; the results do not depend on the number of workers.  A worker that dies is replaced and its
initialisation rerun; one given up after {RETRIES + 1} attempts is listed as lost, in an UNDECIDED row
"campaign complete".  `verify reproduce NAME --out proofs` rewrites the committed files of proofs/NAME.
kinkhit needs scikit-learn and torch: pip install -e '.[paper]' (skipped otherwise).

verdicts in the table: PROVED (certified), CONSISTENT (an experiment agrees with the paper's claim), MEASURED
(a measurement beside the paper's, no claim to decide), SKIPPED (a missing optional dependency); REFUTED,
INCONSISTENT or UNDECIDED fail.  The command's own verdict is PROVED when every row passes, else REFUTED."""


def add(sub):
    r = sub.add_parser("reproduce", help="regenerate the paper's figures, claims and experiments",
                       description=_description(), epilog=EXIT_HELP, formatter_class=FMT)
    r.add_argument("names", nargs="*", metavar="NAME", help="which reproductions (default: all; see the list above)")
    r.add_argument("--out", default="reproduce-out", metavar="DIR", help="output folder (default reproduce-out)")
    r.add_argument("--full", action="store_true", help="the experiments at the paper's scale (slow)")
    r.add_argument("--workers", type=int, default=None, metavar="K",
                   help="local worker processes for the campaigns (default: one per CPU)")
    r.add_argument("--dask", metavar="ADDRESS", help="run the campaigns on a Dask cluster (needs 'distributed')")
    r.add_argument("--json", action="store_true", help="print one JSON object (no progress bar)")
    r.set_defaults(run=run)


def _ours(row):
    ours = str(row.get("ours", "-"))
    extra = [f"{k} {row[k]}" for k in ("torch", "jax") if row.get(k) not in (None, "-")]
    return ours + (f" ({', '.join(extra)})" if extra else "")


def table(results, width=100):
    """The one table: entry, claim, paper, ours (wrapped), verdict."""
    cols = ["entry", "claim", "paper", "ours", "verdict"]
    rows = [[name, str(row.get("claim", "-")), str(row.get("paper", "-")), _ours(row), str(row.get("verdict", "-"))]
            for name, r in results.items() for row in r["rows"]]
    limits = {"entry": 13, "claim": 44, "paper": 32, "ours": width, "verdict": 12}
    wrapped = [[textwrap.wrap(c, limits[h]) or [""] for h, c in zip(cols, row)] for row in rows]
    w = [max([len(h)] + [len(line) for row in wrapped for line in row[i]]) for i, h in enumerate(cols)]
    out = ["  ".join(h.ljust(w[i]) for i, h in enumerate(cols)).rstrip(),
           "  ".join("-" * w[i] for i in range(len(cols)))]
    for row in wrapped:
        for k in range(max(len(c) for c in row)):
            out.append("  ".join((c[k] if k < len(c) else "").ljust(w[i]) for i, c in enumerate(row)).rstrip())
    return "\n".join(out)


def _ok(result):
    return result["ok"] and all(row.get("verdict") in OK_VERDICTS for row in result["rows"])


def _note_lost(result, lost):
    """A reproduction whose campaign gave up tasks (their workers kept dying) gets a failing row saying which:
    its numbers miss those runs.  The tasks are kept as ``result["lost"]``."""
    if not lost:
        return
    result["lost"] = list(lost)
    what = "; ".join(f"{x['unit']} {x['task'].get('index')} {x['task']}" for x in lost)
    result["rows"] = list(result["rows"]) + [{
        "claim": "campaign complete (every task ran)", "paper": "-",
        "ours": f"{len(lost)} lost after {lost[0]['attempts']} attempts ({lost[0]['reason']}): {what}",
        "verdict": "UNDECIDED"}]


def run(args):
    import os

    from ..errors import InputError
    from ..reproduce import reproduce
    from ..reproduce.common import take_lost
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers={args.workers} must be at least 1")
    progress = None if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    take_lost()                        # none left over from an earlier call in this process
    t0 = time.perf_counter()
    results, seconds = {}, {}
    names = args.names or None
    from ..reproduce import REPRODUCTIONS
    for name in (names or list(REPRODUCTIONS)):
        t = time.perf_counter()
        results.update(reproduce([name], args.out, progress=progress, full=args.full, workers=args.workers,
                                 dask=args.dask))
        seconds[name] = time.perf_counter() - t
        _note_lost(results[name], take_lost())
    wall = time.perf_counter() - t0
    ok = all(_ok(r) for r in results.values())
    payload = {"results": {"ok": ok, "full": args.full, "wall_seconds": round(wall, 3),
                           "reproductions": {k: {"ok": _ok(r), "out_dir": os.path.join(args.out, k),
                                                 "figure": r.get("figure"), "figures": r.get("figures", []),
                                                 "certificates": r.get("certificates", []), "rows": r["rows"],
                                                 "seconds": round(seconds[k], 3),
                                                 **({"lost": r["lost"]} if r.get("lost") else {})}
                                             for k, r in results.items()}}}
    lines = [table(results), ""]
    for k, r in results.items():
        d = os.path.join(args.out, k)
        certs = r.get("certificates") or []
        figs = r.get("figures") or ([r["figure"]] if r.get("figure") else [])
        parts = [f"{len(certs)} certificate(s) in {d}/ (verify check)" if certs else f"output in {d}/"]
        if figs:
            parts.append("figure(s): " + ", ".join(figs))
        if r.get("skipped"):
            parts = [f"skipped: {r['skipped']}"]
        lines.append(f"{k:<13} {'; '.join(parts)}  [{seconds[k]:.1f}s]")
    lines.append(f"{'all PASS' if ok else 'FAILED'}: {len(results)} reproduction(s)"
                 f"{' at full scale' if args.full else ''} in {wall:.1f}s")
    failed = [k for k, r in results.items() if not _ok(r)]
    return emit(args, "PROVED" if ok else "REFUTED", payload, "\n".join(lines),
                f"not every claim passes in: {', '.join(failed)}")
