"""verify index-set / verify critical / verify spurious."""
import json
import time

from ..numbers.ball import json_number
from . import EPILOG, FMT, add_program, write_certificate


def add(sub):
    p = sub.add_parser("index-set", help="certified index set I(x) and conservative field D_f(x)",
                       description="The patterns of the program's representation active at POINT (I(x), "
                                   "Definition 5) and the distinct selection gradients over them (the "
                                   "generators of the conservative field D_f(x)).  Local scope: per equation, "
                                   "the pieces agreeing with the primitive; --global: every pattern of the "
                                   "whole program whose frozen program equals f at x.  Exit 3 when undecided.",
                       epilog=EPILOG, formatter_class=FMT)
    add_program(p)
    p.add_argument("--global", dest="scope", action="store_const", const="global", default="local",
                   help="Definition 5 literally (exponential: small programs only)")
    p.add_argument("--cap", type=int, default=4096, help="list at most this many patterns (default 4096)")
    p.add_argument("--max-patterns", type=int, default=4096,
                   help="refuse a global enumeration above this many patterns (default 4096)")
    p.add_argument("--certificate", metavar="FILE", help="write a certificate that `verify check` re-validates")
    p.set_defaults(run=run_index)
    c = sub.add_parser("critical", help="selection-, Clarke- and artificial criticality at a point",
                       description="Is POINT selection-critical (0 in D_f(x)), Clarke-critical (0 in the Clarke "
                                   "subdifferential), or an artificial critical point (the first, not the "
                                   "second)?  Each answer is proved by convex weights or a separating vector; "
                                   "essential patterns by strict directions and Gordan certificates "
                                   "(piecewise-linear programs) or independent tied gradients.  Exit 3 when "
                                   "something is undecided.",
                       epilog=EPILOG, formatter_class=FMT)
    add_program(c)
    c.add_argument("--global", dest="scope", action="store_const", const="global", default="local",
                   help="use the global index set for the field")
    c.add_argument("--certificate", metavar="FILE", help="write a certificate that `verify check` re-validates")
    c.set_defaults(run=run_critical)
    s = sub.add_parser("spurious", help="Theorem 1: the same function with AD's derivative shifted at a point",
                       description="Print a program equal to PROGRAM as a function whose AD derivative at "
                                   "POINT is shifted by SHIFT: P(x) + sum_i r_i * zero(x_i - a_i), zero(t) = "
                                   "relu(-t) + t - relu(t).",
                       epilog=EPILOG, formatter_class=FMT)
    add_program(s)
    s.add_argument("--shift", required=True, metavar="VECTOR", help="one exact number per input, e.g. 1,-1/2")
    s.add_argument("--certificate", metavar="FILE", help="write a certificate that `verify check` re-validates")
    s.set_defaults(run=run_spurious)


def _vec(v):
    return [json_number(x) for x in v]


def _show(v):
    out = []
    for x in v:
        j = json_number(x)
        out.append(j if isinstance(j, str) else f"[{j['lo']}, {j['hi']}]" if isinstance(j, dict) else str(j))
    return "(" + ", ".join(out) + ")"


def run_index(args):
    from ..certify.certs import index_certificate
    from ..certify.index import field_of, index_set
    from ..frontends.text import parse
    t0 = time.perf_counter()
    P = parse(args.program, fn=args.fn)
    iset = index_set(P, args.at, scope=args.scope, convention=args.convention, cap=args.cap,
                     max_patterns=args.max_patterns)
    grads, where, exact = field_of(iset, iset.patterns) if iset.decided else ([], [], False)
    if args.certificate:
        write_certificate(index_certificate(iset, t0), args.certificate)
    out = {"patterns": [list(p) for p in iset.patterns], "count": iset.count, "capped": iset.capped,
           "field": [_vec(j[0]) if len(j) == 1 else [_vec(r) for r in j] for j in grads],
           "scope": iset.scope, "convention": iset.convention, "decided": iset.decided,
           "undecided": iset.undecided, "exact": exact}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"I(x) at {args.at}: {iset.count} pattern(s) ({iset.scope} scope)"
              + (f", first {len(iset.patterns)} listed" if iset.capped else ""))
        for p in iset.patterns:
            print(f"  pattern {list(p)}")
        print(f"D_f(x) = conv of {len(grads)} gradient(s):")
        for j in grads:
            print("  " + "; ".join(_show(r) for r in j))
        for u in iset.undecided:
            print(f"UNDECIDED: {u['reason']}")
    return 0 if iset.decided else 3


def _truth(t):
    from ..truth import FALSE, TRUE
    return True if t is TRUE else (False if t is FALSE else None)


def run_critical(args):
    from ..certify.certs import critical_certificate
    from ..certify.critical import critical
    from ..frontends.text import parse
    t0 = time.perf_counter()
    P = parse(args.program, fn=args.fn)
    c = critical(P, args.at, convention=args.convention, scope=args.scope)
    if args.certificate:
        write_certificate(critical_certificate(c, t0), args.certificate)
    sel, cl, art = _truth(c.selection.truth), _truth(c.clarke_critical.truth), _truth(c.artificial)
    out = {"field": [_vec(g) for g in c.field], "clarke": None if c.clarke is None else [_vec(g) for g in c.clarke],
           "selection_critical": sel, "clarke_critical": cl, "artificial": art,
           "convention": args.convention, "scope": args.scope}
    if c.clarke_error:
        out["clarke_undecided"] = c.clarke_error
    if args.json:
        print(json.dumps(out))
    else:
        def word(b):
            return {True: "yes", False: "no", None: "UNDECIDED"}[b]
        print(f"D_f(x) generators:    {', '.join(_show(g) for g in c.field)}")
        print(f"Clarke generators:    {', '.join(_show(g) for g in c.clarke) if c.clarke else 'UNDECIDED'}")
        print(f"selection-critical:   {word(sel)}")
        print(f"Clarke-critical:      {word(cl)}" + (f"   ({c.clarke_error})" if c.clarke_error else ""))
        print(f"artificial:           {word(art)}")
    return 0 if None not in (sel, cl) else 3


def run_spurious(args):
    from ..certify.certs import spurious_certificate
    from ..certify.spurious import spurious
    from ..frontends.text import parse
    from ..program.ir import to_text
    t0 = time.perf_counter()
    P = parse(args.program, fn=args.fn)
    Q, ev = spurious(P, args.at, args.shift, convention=args.convention)
    if args.certificate:
        write_certificate(spurious_certificate(P, Q, ev, args.convention, t0), args.certificate)
    if args.json:
        print(json.dumps({"program": to_text(Q), "same_function": True, "evidence": ev}))
    else:
        print(to_text(Q), end="")
    return 0
