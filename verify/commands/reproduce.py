"""verify reproduce."""
import sys

from . import EXIT_HELP, FMT, emit


def _targets():
    import textwrap

    from ..reproduce import TARGETS
    return "\n".join(textwrap.fill(doc, 110, initial_indent=f"  {name:<10}", subsequent_indent=" " * 12)
                     for name, doc in TARGETS.items())


def add(sub):
    r = sub.add_parser("reproduce", help="regenerate the paper's figures and claims",
                       description="Regenerate the paper's reproductions (figures, tables of certified "
                                   "values, certificates) into --out, and print claim / paper / ours / verdict.  "
                                   "Exit 0 when every claim is PROVED, 1 otherwise.\n\ntargets (NAME):\n" + _targets(),
                       epilog=EXIT_HELP, formatter_class=FMT)
    r.add_argument("names", nargs="*", metavar="NAME", help="which reproductions (default: all, listed above)")
    r.add_argument("--out", default="reproduce-out", metavar="DIR", help="output folder (default reproduce-out)")
    r.add_argument("--json", action="store_true", help="print one JSON object (whatever the outcome)")
    r.set_defaults(run=run)


def run(args):
    from ..reproduce import reproduce
    results = reproduce(args.names or None, args.out, progress=lambda m: print(m, file=sys.stderr))
    ok = all(r["ok"] for r in results.values())
    cols = ["claim", "paper", "ours", "torch", "jax", "verdict"]
    rows = [[str(row.get(c, "-")) for c in cols] for r in results.values() for row in r["rows"]]
    w = [max([len(c)] + [len(x[i]) for x in rows]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(cols)).rstrip()]
    lines += ["  ".join(v.ljust(w[i]) for i, v in enumerate(x)).rstrip() for x in rows]
    lines += [f"{k}: figure written to {r['figure']}" for k, r in results.items() if r.get("figure")]
    failed = [k for k, r in results.items() if not r["ok"]]
    out = {"results": {k: {"ok": r["ok"], "figure": r.get("figure"), "rows": r["rows"]} for k, r in results.items()}}
    return emit(args, "PROVED" if ok else "REFUTED", out, "\n".join(lines),
                f"not every claim is PROVED in: {', '.join(failed)}")
