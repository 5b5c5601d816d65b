"""verify eval / verify grad."""
from ..numbers.ball import json_number, number_text
from . import FMT, POINT_HELP, PROGRAM_HELP, add_numbers, add_program, emit, footer


def add(sub):
    e = sub.add_parser("eval", help="evaluate a program and report the pattern chosen at the point",
                       description="Evaluate PROGRAM at POINT (the paper's Algorithm 1); report the output "
                                   "values and the piece chosen by every nonsmooth equation.",
                       epilog=footer(PROGRAM_HELP, POINT_HELP), formatter_class=FMT)
    add_program(e)
    add_numbers(e)
    e.set_defaults(run=run)
    g = sub.add_parser("grad", help="the selection derivative AD computes at the point",
                       description="Differentiate PROGRAM at POINT as AD does (Algorithm 2): the Jacobian of "
                                   "the piece selected at the point.",
                       epilog=footer(PROGRAM_HELP, POINT_HELP), formatter_class=FMT)
    add_program(g)
    add_numbers(g)
    g.add_argument("--mode", default="backward", choices=("forward", "backward"),
                   help="forward (one JVP per input) or backward (one VJP per output); equal by Lemma 1")
    g.add_argument("--certify-differentiable", action="store_true",
                   help="prove that f is differentiable at POINT with gradient = the selection gradient (every "
                        "switching function nonzero: Proposition 3), or name the switch that prevents it (exit 3)")
    g.add_argument("--certificate", metavar="FILE", help="with --certify-differentiable: write a certificate")
    g.set_defaults(run=run)


def pieces(program, pattern, convention):
    """[{"equation": "v = relu(u)", "piece": "u"}, ...] for a pattern."""
    from ..interpret.evaluate import compiled
    from ..program.ir import eqn_label
    steps = [s for s in compiled(program, convention) if s.sel is not None]
    return [{"equation": eqn_label(program, s.k), "piece": s.piece(i).label} for s, i in zip(steps, pattern)]


def run(args):
    from ..errors import InputError
    from ..frontends.text import parse
    from ..interpret.ad import grad
    from ..interpret.evaluate import evaluate
    if args.cmd == "grad" and args.certificate and not args.certify_differentiable:
        raise InputError("--certificate needs --certify-differentiable")
    program = parse(args.program, fn=args.fn)
    if args.cmd == "eval":
        res = evaluate(program, args.at, number=args.number, prec=args.prec, convention=args.convention)
        return report(args, program, res, False)
    res = grad(program, args.at, mode=args.mode, number=args.number, prec=args.prec, convention=args.convention)
    if not args.certify_differentiable:
        return report(args, program, res, True)
    import time

    from ..certify.differentiable import certify_differentiable, differentiable_certificate
    t0 = time.perf_counter()
    d = certify_differentiable(program, args.at, number=args.number, prec=args.prec, convention=args.convention)
    if args.certificate:
        from . import write_certificate
        write_certificate(differentiable_certificate(d, t0), args.certificate)
    extra = {"differentiable": {"verdict": d.verdict.name, "reason": d.reason, "signs": d.signs}}
    return report(args, program, res, True, extra, d.verdict.name, d.reason)


def report(args, program, res, is_grad, extra=None, verdict="PROVED", reason=None):
    pcs = pieces(program, res.pattern, res.convention)
    out = {"value": [json_number(v) for v in res.values], "exact": res.exact, "pattern": list(res.pattern),
           "pieces": pcs, "number": res.number, "convention": res.convention, "prec": res.prec}
    if is_grad:
        out["jacobian"] = [[json_number(v) for v in row] for row in res.jacobian]
        if res.gradient is not None:
            out["gradient"] = [json_number(v) for v in res.gradient]
        out["mode"] = res.mode
    out.update(extra or {})
    names = ", ".join(program.input_names)
    kind = "exact" if res.exact else ("enclosure" if res.number in ("exact", "ball", "interval") else "unverified")
    prec = "" if res.prec is None else f" prec={res.prec}"
    lines = [f"program   {program.name}({names})   number={res.number}{prec}   convention={res.convention}   {kind}",
             "value     " + ", ".join(number_text(v) for v in res.values)]
    if is_grad:
        if res.gradient is not None:
            lines.append("gradient  " + ", ".join(number_text(v) for v in res.gradient))
        else:
            for k, row in enumerate(res.jacobian):
                lines.append(f"jacobian  row {k}: " + ", ".join(number_text(v) for v in row))
    for p in pcs:
        lines.append(f"pattern   {p['equation']}   -> piece {p['piece']}")
    for k, v in (extra or {}).items():
        lines.append(f"{k}  {v['verdict']}: {v['reason']}")
    numbers = list(res.values) + ([v for row in res.jacobian for v in row] if is_grad else [])
    if verdict == "PROVED" and res.number in ("exact", "ball", "interval") and any(_infinite(v) for v in numbers):
        verdict = "UNDECIDED"
        reason = "an enclosure is not finite (the ball arithmetic overflowed): it certifies nothing"
        lines.append(f"UNDECIDED: {reason}")
    return emit(args, verdict, out, "\n".join(lines), reason)


def _infinite(v):
    j = json_number(v)
    return isinstance(j, dict) and "inf" in (j["lo"] + j["hi"])
