"""verify eval / verify grad."""
from ..numbers.ball import json_number, number_text
from . import FMT, POINT_HELP, PROGRAM_HELP, add_numbers, add_program, emit, float_verdict, footer


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
    if not program.is_scalar:
        return run_tensor(args, program)
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
    verdict, reason = float_verdict(res.number, verdict, reason)
    if verdict == "UNVERIFIED":
        lines.append(f"UNVERIFIED: {reason}")
    return emit(args, verdict, out, "\n".join(lines), reason)


def _infinite(v):
    j = json_number(v)
    return isinstance(j, dict) and "inf" in (j["lo"] + j["hi"])


# ------------------------------------------------------------------------------------------ tensor programs

def nested(ns_values):
    """An array of numbers (fmpq, arb, floats) as nested lists of JSON numbers."""
    import numpy as np
    a = np.asarray(ns_values, dtype=object)
    if a.ndim == 0:
        return json_number(a[()])
    flat = [json_number(v) for v in a.ravel().tolist()]
    return np.array(flat + [None], dtype=object)[:-1].reshape(a.shape).tolist()


def summary(a, k=6):
    """A short human form of an array: its shape and its first entries."""
    import numpy as np
    arr = np.asarray(a, dtype=object)
    if arr.ndim == 0:
        return number_text(arr[()])
    head = ", ".join(number_text(v) for v in arr.ravel()[:k].tolist())
    more = ", ..." if arr.size > k else ""
    return f"array {list(arr.shape)}: [{head}{more}]"


def run_tensor(args, program):
    """eval / grad of a tensor program: --at is an .npz file (one array per input, named like the inputs) or
    every element comma-separated; the JSON carries the arrays as nested lists."""
    import time

    from ..interpret import tensor as T
    if getattr(args, "certify_differentiable", False):
        from ..certify.sites import site_differentiable
    t0 = time.perf_counter()
    point = T.coerce_inputs(program, args.at)
    if args.cmd == "eval":
        res = T.evaluate(program, point, number=args.number, prec=args.prec, convention=args.convention)
    else:
        res = T.grad(program, point, mode=args.mode, number=args.number, prec=args.prec, convention=args.convention)
    r = res.run
    sites = kinks = 0
    for st in T.nonsmooth_steps(program, res.convention):
        for gi, g in enumerate(st.sites.groups):
            sites += len(g.sites)
            if st.switches[gi]:
                import numpy as np
                zero = np.zeros(len(g.sites), dtype=bool)
                for s in r.switch_signs(st, gi):
                    zero |= s == 0
                kinks += int(zero.sum())
    out = {"tensor": True, "value": [nested(v) for v in res.values], "exact": res.exact, "number": res.number,
           "convention": res.convention, "prec": res.prec, "sites": sites, "kinks": kinks}
    kind = "exact" if res.exact else ("enclosure" if res.number in ("exact", "ball", "interval") else "unverified")
    shapes = ", ".join(f"{n}: {list(s)}" for n, s in zip(program.input_names, program.input_shapes))
    lines = [f"program   {program.name}({shapes})   number={res.number}"
             + ("" if res.prec is None else f" prec={res.prec}") + f"   convention={res.convention}   {kind}",
             "value     " + "; ".join(summary(v) for v in res.values),
             f"pattern   {sites} site(s), {kinks} on a kink (a switching function exactly 0)"]
    verdict, reason = "PROVED", None
    if args.cmd == "grad":
        out["gradient"] = {n: nested(g) for n, g in zip(program.input_names, res.gradient) if g is not None}
        out["mode"] = res.mode
        lines += [f"gradient  {n}: {summary(g)}" for n, g in zip(program.input_names, res.gradient) if g is not None]
        if args.certify_differentiable:
            d = site_differentiable(program, point, res.convention, args.number if args.number in ("exact", "ball")
                                    else "exact", args.prec)
            verdict = "PROVED" if d.differentiable.value == "true" else "UNDECIDED"
            reason = None if verdict == "PROVED" else d.reason
            out["differentiable"] = {"verdict": verdict, "reason": d.reason, "signs": None}
            lines.append(f"differentiable  {verdict}: {d.reason}")
            if args.certificate:
                from ..certify.certs_tensor import tensor_differentiable_certificate
                from . import write_certificate
                write_certificate(tensor_differentiable_certificate(program, point, res.convention, gradient=True,
                                                                    started=t0), args.certificate)
    if not (args.cmd == "grad" and args.certify_differentiable):
        verdict, reason = float_verdict(res.number, verdict, reason)
        if verdict == "UNVERIFIED":
            lines.append(f"UNVERIFIED: {reason}")
    return emit(args, verdict, out, "\n".join(lines), reason)
