"""verify segment / verify integral (Claim 1, Proposition 2 and Theorem 3 of the paper)."""
import time

from . import FMT, PROGRAM_HELP, add_program, emit, footer, positive, write_certificate

CURVE_HELP = ("a polynomial curve instead of a segment: coefficient vectors c0; c1; c2 ... for gamma(t) = c0 + "
              "c1 t + c2 t^2 + ..., e.g. '0,0; 1,0; 0,1' (write --curve='-1,0; ...' when it starts with a minus)")
ENDS_HELP = ("X and Y are points, comma-separated exact numbers: --from 0,1/2 --to 1,1 (write --from=-1,0 when "
             "a point starts with a minus sign).  Tensor programs (array inputs): --from A.npz --to B.npz, one "
             "array per input named like the inputs; piecewise-linear and polynomial programs get an exact walk "
             "on affine functions or polynomials of t (rational or algebraic breakpoints), others go through their "
             "scalarisation (refused when it is too large); --curve is not available for them, and --certificate "
             "only for programs piecewise linear in the inputs that move along the segment.")


def _common(p):
    add_program(p, at=False)
    p.add_argument("--from", dest="x", metavar="X", help="the segment's start, e.g. 0,1/2")
    p.add_argument("--to", dest="y", metavar="Y", help="the segment's end")
    p.add_argument("--curve", metavar="C", help=CURVE_HELP)
    p.add_argument("--tol", type=positive("--tol", 2000), default=60, metavar="BITS",
                   help="ball breakpoints (and the integral's difference) narrower than 2^-BITS (default 60, at "
                        "most 2000)")
    p.add_argument("--method", default="auto", choices=("auto", "exact", "ball"),
                   help="exact (rational programs: exact breakpoints), ball (interval Newton), auto (default: "
                        "exact when the program is rational)")
    p.add_argument("--prec", type=positive("--prec", 4096), metavar="BITS",
                   help="starting ball precision (default: the power of two at least max(128, tol + 64); at most "
                        "4096)")
    p.add_argument("--certificate", metavar="FILE", help="write a certificate that `verify check` re-validates")


def add(sub):
    s = sub.add_parser("segment", help="certified partition of a segment where the pattern is constant (Claim 1)",
                       description="Breakpoints 0 = a_0 < ... < a_N = 1 of t along z(t) = X + t (Y - X) (or a "
                                   "polynomial curve) such that the pattern (the pieces the index rules choose) "
                                   "is constant on each open piece; the pattern on each piece and at each "
                                   "breakpoint.  Rational programs get exact breakpoints (rational, or algebraic "
                                   "with their polynomial); others get balls narrower than 2^-tol.  Exit 3 when "
                                   "a cluster (a possible double root or an identically zero switching function) "
                                   "leaves the pattern undetermined somewhere.",
                       epilog=footer(PROGRAM_HELP, ENDS_HELP), formatter_class=FMT)
    _common(s)
    s.set_defaults(run=run_segment)
    i = sub.add_parser("integral", help="both sides of Proposition 2: f(Y) - f(X) = int_0^1 <Y - X, AD grad> dt",
                       description="Encloses f(Y) - f(X) and the integral of the directional selection derivative "
                                   "(forward-mode AD) along the segment (or curve), piece by piece over the "
                                   "certified partition.  PROVED (exit 0) when the difference encloses 0 with "
                                   "width below 2^-tol (exactly 0 for exact sides); REFUTED (exit 1) when the "
                                   "program is discontinuous (outside the class S) at a breakpoint; UNDECIDED "
                                   "(exit 3) otherwise.",
                       epilog=footer(PROGRAM_HELP, ENDS_HELP), formatter_class=FMT)
    _common(i)
    i.set_defaults(run=run_integral)


def run_segment(args):
    from ..certify.segment import partition_text, segment_certificate, segment_partition
    from ..frontends.text import parse
    t0 = time.perf_counter()
    P = parse(args.program, fn=args.fn)
    if not P.is_scalar:
        return _tensor(P, args, integral=False)
    part = segment_partition(P, args.x, args.y, args.curve, args.convention, args.tol, args.method, args.prec)
    if args.certificate:
        write_certificate(segment_certificate(part, t0), args.certificate)
    return emit(args, "PROVED" if part.complete else "UNDECIDED", part.json(), partition_text(part),
                "the pattern inside the cluster enclosure(s) is not determined")


def run_integral(args):
    from ..certify.integral import integral_certificate, integral_identity, integral_text
    from ..frontends.text import parse
    t0 = time.perf_counter()
    P = parse(args.program, fn=args.fn)
    if not P.is_scalar:
        return _tensor(P, args, integral=True)
    res = integral_identity(P, args.x, args.y, args.curve, args.convention, args.tol, args.method, args.prec)
    if args.certificate:
        write_certificate(integral_certificate(res, t0), args.certificate)
    return emit(args, res.verdict.name, res.json(), integral_text(res), res.reason)


def _tensor(P, args, integral):
    """A tensor program: the ends are .npz files (or every element comma-separated); certificates for programs
    piecewise linear in the inputs that move along the segment (the native exact walk)."""
    from ..certify import segment_net as N
    from ..certify.certs_tensor import tensor_integral_certificate, tensor_segment_certificate
    from ..certify.integral import integral_text
    t0 = time.perf_counter()
    fn = N.tensor_integral_identity if integral else N.tensor_segment_partition
    res = fn(P, args.x, args.y, args.curve, args.convention, args.tol, args.method, args.prec)
    if args.certificate:
        make = tensor_integral_certificate if integral else tensor_segment_certificate
        write_certificate(make(res, t0), args.certificate)
    if integral:
        return emit(args, res.verdict.name, res.json(), integral_text(res), res.reason)
    return emit(args, "PROVED" if res.complete else "UNDECIDED", res.json(), N.partition_text(res),
                "the pattern inside the cluster enclosure(s) is not determined")
