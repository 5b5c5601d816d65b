"""verify eval / verify grad."""
import json

from ..numbers.ball import json_number
from . import EPILOG, FMT, add_numbers, add_program


def add(sub):
    e = sub.add_parser("eval", help="evaluate a program and report the pattern chosen at the point",
                       description="Evaluate PROGRAM at POINT (the paper's Algorithm 1); report the output "
                                   "values and the piece chosen by every nonsmooth equation.",
                       epilog=EPILOG, formatter_class=FMT)
    add_program(e)
    add_numbers(e)
    e.set_defaults(run=run)
    g = sub.add_parser("grad", help="the selection derivative AD computes at the point",
                       description="Differentiate PROGRAM at POINT as AD does (Algorithm 2): the Jacobian of "
                                   "the piece selected at the point.",
                       epilog=EPILOG, formatter_class=FMT)
    add_program(g)
    add_numbers(g)
    g.add_argument("--mode", default="backward", choices=("forward", "backward"),
                   help="forward (one JVP per input) or backward (one VJP per output); equal by Lemma 1")
    g.add_argument("--certify-differentiable", action="store_true",
                   help="prove that f is differentiable at POINT with gradient = the selection gradient (every "
                        "switching function nonzero: Proposition 3), or name the switch that prevents it (exit 3)")
    g.add_argument("--certificate", metavar="FILE", help="with --certify-differentiable: write a certificate")
    g.set_defaults(run=run)


def text_number(x):
    """A value for people: p/q, an arb ball as printed by arb, an interval as [lo, hi], a float."""
    j = json_number(x)
    if isinstance(j, dict):
        return str(x) if hasattr(x, "rad") else f"[{j['lo']}, {j['hi']}]"
    return str(j)


def pieces(program, pattern, convention):
    """[{"equation": "v = relu(u)", "piece": "u"}, ...] for a pattern."""
    from ..interpret.evaluate import compiled
    from ..program.ir import eqn_label
    steps = [s for s in compiled(program, convention) if s.sel is not None]
    return [{"equation": eqn_label(program, s.k), "piece": s.piece(i).label} for s, i in zip(steps, pattern)]


def run(args):
    from ..interpret.ad import grad
    from ..interpret.evaluate import evaluate
    from ..frontends.text import parse
    program = parse(args.program, fn=args.fn)
    if args.cmd == "eval":
        res = evaluate(program, args.at, number=args.number, prec=args.prec, convention=args.convention)
    else:
        res = grad(program, args.at, mode=args.mode, number=args.number, prec=args.prec, convention=args.convention)
        if args.certify_differentiable or args.certificate:
            from ..certify.differentiable import cli_differentiable
            return cli_differentiable(args, program, res, report)
    report(args, program, res, args.cmd == "grad")
    return 0


def report(args, program, res, is_grad, extra=None):
    pcs = pieces(program, res.pattern, res.convention)
    if args.json:
        out = {"value": [json_number(v) for v in res.values], "exact": res.exact,
               "pattern": list(res.pattern), "pieces": pcs, "number": res.number,
               "convention": res.convention, "prec": res.prec}
        if is_grad:
            out["jacobian"] = [[json_number(v) for v in row] for row in res.jacobian]
            if res.gradient is not None:
                out["gradient"] = [json_number(v) for v in res.gradient]
            out["mode"] = res.mode
        print(json.dumps({**out, **(extra or {})}))
        return
    names = ", ".join(program.input_names)
    kind = "exact" if res.exact else ("enclosure" if res.number in ("exact", "ball", "interval") else "unverified")
    prec = "" if res.prec is None else f" prec={res.prec}"
    print(f"program   {program.name}({names})   number={res.number}{prec}   convention={res.convention}   {kind}")
    print("value     " + ", ".join(text_number(v) for v in res.values))
    if is_grad:
        if res.gradient is not None:
            print("gradient  " + ", ".join(text_number(v) for v in res.gradient))
        else:
            for k, row in enumerate(res.jacobian):
                print(f"jacobian  row {k}: " + ", ".join(text_number(v) for v in row))
    for p in pcs:
        print(f"pattern   {p['equation']}   -> piece {p['piece']}")
    for k, v in (extra or {}).items():
        print(f"{k}  {v['verdict']}: {v['reason']}")
