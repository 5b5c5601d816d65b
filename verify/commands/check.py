"""verify check."""
import os
import sys

from . import EXIT_HELP, FMT, emit


def add(sub):
    c = sub.add_parser("check", help="re-validate certificates with the independent checker",
                       description="Re-validate each FILE (a certificate that index-set, critical, spurious, "
                                   "segment, integral or grad wrote) with a checker "
                                   "that does not import the certifiers: it re-evaluates the program with its "
                                   "own small exact/ball evaluator and re-derives every result and verdict from "
                                   "the evidence.  Every file is reported.  Exit 0 when all are valid, 1 when one "
                                   "is invalid, 2 when one is not a readable certificate.",
                       epilog=EXIT_HELP, formatter_class=FMT)
    c.add_argument("files", nargs="+", metavar="FILE", help="certificate JSON file(s)")
    c.add_argument("--json", action="store_true", help="print one JSON object (whatever the outcome)")
    c.set_defaults(run=run)


def run(args):
    from ..certificates import load
    from ..checker import Invalid, check
    from ..errors import VerifyError
    files, lines, errs = {}, [], []
    for f in args.files:
        try:
            cert = load(f)
            check(cert, base=os.path.dirname(os.path.abspath(f)))
            files[f] = {"verdict": "PROVED", "kind": cert["kind"]}
            lines.append(f"{f}: valid")
        except Invalid as e:
            files[f] = {"verdict": "REFUTED", "reason": str(e)}
            errs.append(f"{f}: INVALID: {e}")
        except VerifyError as e:
            files[f] = {"verdict": "ERROR", "reason": str(e)}
            errs.append(f"{f}: ERROR: {e}")
    verdicts = [r["verdict"] for r in files.values()]
    verdict = "ERROR" if "ERROR" in verdicts else ("REFUTED" if "REFUTED" in verdicts else "PROVED")
    bad = len(verdicts) - verdicts.count("PROVED")
    reason = f"{bad} of {len(verdicts)} file(s) not valid: " + "; ".join(" ".join(e.split()) for e in errs)
    if not args.json:
        for e in errs:
            print(" ".join(e.split()), file=sys.stderr)
    return emit(args, verdict, {"files": files}, "\n".join(lines) if lines else None, reason)
