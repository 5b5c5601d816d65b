"""verify check."""
import json

from . import FMT


def add(sub):
    c = sub.add_parser("check", help="re-validate a certificate with the independent checker",
                       description="Re-validate FILE (a certificate written with --certificate) with a checker "
                                   "that does not import the certifiers: it re-evaluates the program with its "
                                   "own small exact/ball evaluator.  Exit 0 when valid, 1 with the reason when "
                                   "not, 2 when FILE is not a certificate.",
                       formatter_class=FMT)
    c.add_argument("files", nargs="+", metavar="FILE", help="certificate JSON file(s)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(run=run)


def run(args):
    import sys

    from ..certificates import load
    from ..checker import Invalid, check
    results, bad = {}, 0
    for f in args.files:
        try:
            check(load(f))
            results[f] = {"valid": True}
        except Invalid as e:
            results[f] = {"valid": False, "reason": str(e)}
            bad += 1
    if args.json:
        print(json.dumps(results))
    else:
        for f, r in results.items():
            print(f"{f}: valid" if r["valid"] else f"{f}: INVALID: {r['reason']}",
                  file=sys.stdout if r["valid"] else sys.stderr)
    return 1 if bad else 0
