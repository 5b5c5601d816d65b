"""verify reproduce."""
import json
import sys

from . import FMT


def add(sub):
    r = sub.add_parser("reproduce", help="regenerate the paper's figures and claims",
                       description="Regenerate the paper's reproductions (figures, tables of certified "
                                   "values) into --out, and print claim / paper / ours / verdict.  Exit 0 when "
                                   "every claim is PROVED, 1 otherwise.",
                       formatter_class=FMT)
    r.add_argument("names", nargs="*", metavar="NAME", help="which reproductions (default: all)")
    r.add_argument("--out", default="reproduce-out", metavar="DIR", help="output folder (default reproduce-out)")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(run=run)


def run(args):
    from ..reproduce import reproduce
    results = reproduce(args.names or None, args.out, progress=lambda m: print(m, file=sys.stderr))
    ok = all(r["ok"] for r in results.values())
    if args.json:
        print(json.dumps({k: {"ok": r["ok"], "figure": r.get("figure"), "rows": r["rows"]}
                          for k, r in results.items()}))
    else:
        cols = ["claim", "paper", "ours", "torch", "jax", "verdict"]
        rows = [[str(row.get(c, "-")) for c in cols] for r in results.values() for row in r["rows"]]
        w = [max([len(c)] + [len(x[i]) for x in rows]) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(cols)).rstrip())
        for x in rows:
            print("  ".join(v.ljust(w[i]) for i, v in enumerate(x)).rstrip())
        for k, r in results.items():
            if r.get("figure"):
                print(f"{k}: figure written to {r['figure']}")
    return 0 if ok else 1
