"""The ``verify`` command line: a thin layer over the Python API.

Exit codes: 0 done / PROVED, 1 REFUTED, 2 bad input or a program not defined at the point, 3 UNDECIDED,
4 internal error (a bug: please report it).  Errors are one line on stderr, never a traceback.
"""
import argparse
import json
import sys

from . import kinks
from .errors import InputError, Undecided, VerifyError
from .numbers import SYSTEMS
from .numbers.ball import json_number

EPILOG = """\
PROGRAM is a .prog file (a Python subset: defs of assignments and a return; --fn picks a def, default the
last) or a lambda string such as 'lambda x, y: max(x, y) + relu(x - y)'.  POINT is comma-separated exact
numbers: --at 1/3,-2,0.25 (decimals are exact: 0.1 is 1/10).

exit codes: 0 done, 1 refuted, 2 bad input / not defined at the point, 3 undecided, 4 internal error
"""


def _common(p):
    p.add_argument("program", metavar="PROGRAM", help="a .prog file or a lambda string")
    p.add_argument("--at", required=True, metavar="POINT", help="the point, e.g. 1/3,-2,0.25")
    p.add_argument("--fn", metavar="NAME", help="which def of the file to use (default: the last)")
    p.add_argument("--number", default="exact", choices=SYSTEMS,
                   help="exact rationals (values that stop being rational become balls), ball (arb), "
                        "interval (mpmath, a cross-check), float/float64/float32/float16 (unverified); "
                        "default: exact")
    p.add_argument("--prec", type=int, metavar="BITS",
                   help="starting ball precision in bits (default 128; raised up to 4096 when a sign is undecided)")
    p.add_argument("--convention", default=kinks.DEFAULT, choices=sorted(kinks.CONVENTIONS),
                   help="whose derivatives at kinks: torch, jax or tf (default torch); params written in the "
                        "program win")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def build_parser():
    ap = argparse.ArgumentParser(
        prog="verify", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Certified automatic differentiation of nonsmooth programs (Bolte & Pauwels 2020): "
                    "evaluate programs exactly or in ball arithmetic and compute the selection derivative "
                    "that AD returns, under PyTorch, JAX or TensorFlow kink conventions.")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True
    fmt = argparse.RawDescriptionHelpFormatter
    e = sub.add_parser("eval", help="evaluate a program and report the pattern chosen at the point",
                       description="Evaluate PROGRAM at POINT (the paper's Algorithm 1); report the output "
                                   "values and the piece chosen by every nonsmooth equation.",
                       epilog=EPILOG, formatter_class=fmt)
    _common(e)
    g = sub.add_parser("grad", help="the selection derivative AD computes at the point",
                       description="Differentiate PROGRAM at POINT as AD does (Algorithm 2): the Jacobian of "
                                   "the piece selected at the point.",
                       epilog=EPILOG, formatter_class=fmt)
    _common(g)
    g.add_argument("--mode", default="backward", choices=("forward", "backward"),
                   help="forward (one JVP per input) or backward (one VJP per output); equal by Lemma 1")
    r = sub.add_parser("reproduce", help="regenerate the paper's figures and claims",
                       description="Regenerate the paper's reproductions (figures, tables of certified "
                                   "values) into --out, and print claim / paper / ours / verdict.",
                       formatter_class=fmt)
    r.add_argument("names", nargs="*", metavar="NAME", help="which reproductions (default: all)")
    r.add_argument("--out", default="reproduce-out", metavar="DIR", help="output folder (default reproduce-out)")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    return ap


def _fix_negative_values(argv):
    """Let ``--at -1,2`` through: argparse would read -1,2 as an option."""
    out, it = [], iter(argv)
    for a in it:
        if a in ("--at", "--from", "--to"):
            nxt = next(it, None)
            out.append(a if nxt is None else f"{a}={nxt}")
        else:
            out.append(a)
    return out


def _text(x):
    j = json_number(x)
    if isinstance(j, dict):
        return str(x) if hasattr(x, "rad") else f"[{j['lo']}, {j['hi']}]"
    return str(j)


def _pieces(program, pattern, convention):
    from .evaluate import compiled
    from .ir import eqn_label
    steps = [s for s in compiled(program, convention) if s.sel is not None]
    return [{"equation": eqn_label(program, s.k), "piece": s.piece(i).label} for s, i in zip(steps, pattern)]


def _report(args, program, res, grad):
    pieces = _pieces(program, res.pattern, res.convention)
    if args.json:
        out = {"value": [json_number(v) for v in res.values], "exact": res.exact,
               "pattern": list(res.pattern), "pieces": pieces, "number": res.number,
               "convention": res.convention, "prec": res.prec}
        if grad:
            out["jacobian"] = [[json_number(v) for v in row] for row in res.jacobian]
            if res.gradient is not None:
                out["gradient"] = [json_number(v) for v in res.gradient]
            out["mode"] = res.mode
        print(json.dumps(out))
        return
    names = ", ".join(program.input_names)
    kind = "exact" if res.exact else ("enclosure" if res.number in ("exact", "ball", "interval") else "unverified")
    prec = "" if res.prec is None else f" prec={res.prec}"
    print(f"program   {program.name}({names})   number={res.number}{prec}   convention={res.convention}   {kind}")
    print("value     " + ", ".join(_text(v) for v in res.values))
    if grad:
        if res.gradient is not None:
            print("gradient  " + ", ".join(_text(v) for v in res.gradient))
        else:
            for k, row in enumerate(res.jacobian):
                print(f"jacobian  row {k}: " + ", ".join(_text(v) for v in row))
    for p in pieces:
        print(f"pattern   {p['equation']}   -> piece {p['piece']}")


def _reproduce(args):
    from .reproduce import reproduce
    results = reproduce(args.names or None, args.out, progress=lambda m: print(m, file=sys.stderr))
    ok = all(r["ok"] for r in results.values())
    if args.json:
        print(json.dumps({k: {"ok": r["ok"], "figure": r.get("figure"), "rows": r["rows"]}
                          for k, r in results.items()}))
    else:
        cols = ["claim", "paper", "ours", "torch", "jax", "verdict"]
        rows = [[str(row.get(c, "-")) for c in cols] for r in results.values() for row in r["rows"]]
        w = [max(len(c), *(len(x[i]) for x in rows)) if rows else len(c) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(cols)))
        for x in rows:
            print("  ".join(v.ljust(w[i]) for i, v in enumerate(x)))
        for k, r in results.items():
            if r.get("figure"):
                print(f"{k}: figure written to {r['figure']}")
    return 0 if ok else 1


def main(argv=None):
    argv = _fix_negative_values(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "reproduce":
            return _reproduce(args)
        from .ad import grad
        from .evaluate import evaluate
        from .frontends.text import parse
        program = parse(args.program, fn=args.fn)
        if args.cmd == "eval":
            res = evaluate(program, args.at, number=args.number, prec=args.prec, convention=args.convention)
        else:
            res = grad(program, args.at, mode=args.mode, number=args.number, prec=args.prec,
                       convention=args.convention)
        _report(args, program, res, args.cmd == "grad")
        return 0
    except Undecided as e:
        print(f"verify: UNDECIDED: {e}", file=sys.stderr)
        return 3
    except (InputError, VerifyError) as e:
        print(f"verify: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("verify: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input: one line, and a distinct exit code
        print(f"verify: internal error (please report): {type(e).__name__}: {e}", file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(main())
