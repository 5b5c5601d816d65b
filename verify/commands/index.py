"""verify index-set / verify critical / verify spurious."""
import time

from ..numbers.ball import json_number, number_text
from . import FMT, POINT_HELP, PROGRAM_HELP, add_program, emit, footer, positive, write_certificate


def _caps(p):
    p.add_argument("--cap", type=positive("--cap"), default=4096, metavar="N",
                   help="list at most N patterns of I(x) (default 4096; the field needs them all)")
    p.add_argument("--max-patterns", type=positive("--max-patterns"), default=4096, metavar="N",
                   help="with --global: refuse to try more than N patterns (default 4096)")


def add(sub):
    p = sub.add_parser("index-set", help="certified index set I(x) and conservative field D_f(x)",
                       description="The patterns of the program's representation active at POINT (I(x), "
                                   "Definition 5) and the distinct selection gradients over them (the "
                                   "generators of the conservative field D_f(x)).  Local scope: per equation, "
                                   "the pieces agreeing with the primitive; --global: every pattern of the "
                                   "whole program whose frozen program equals f at x.  Exit 3 when undecided.",
                       epilog=footer(PROGRAM_HELP, POINT_HELP), formatter_class=FMT)
    add_program(p)
    p.add_argument("--global", dest="scope", action="store_const", const="global", default="local",
                   help="Definition 5 literally (exponential: small programs only)")
    _caps(p)
    p.add_argument("--certificate", metavar="FILE", help="write a certificate that `verify check` re-validates")
    p.set_defaults(run=run_index)
    c = sub.add_parser("critical", help="selection-, Clarke- and artificial criticality at a point",
                       description="Is POINT selection-critical (0 in D_f(x)), Clarke-critical (0 in the Clarke "
                                   "subdifferential), or an artificial critical point (the first, not the "
                                   "second)?  Each answer is proved by convex weights or a separating vector; "
                                   "essential patterns by strict directions and Gordan certificates "
                                   "(piecewise-linear programs) or independent tied gradients.  Exit 3 when "
                                   "something is undecided.",
                       epilog=footer(PROGRAM_HELP, POINT_HELP), formatter_class=FMT)
    add_program(c)
    c.add_argument("--global", dest="scope", action="store_const", const="global", default="local",
                   help="use the global index set for the field")
    _caps(c)
    c.add_argument("--max-leaves", type=positive("--max-leaves"), default=4096, metavar="N",
                   help="refuse more than N essential patterns in the Clarke walk (default 4096)")
    c.add_argument("--certificate", metavar="FILE", help="write a certificate that `verify check` re-validates")
    c.set_defaults(run=run_critical)
    s = sub.add_parser("spurious", help="Theorem 1: the same function with AD's derivative shifted at a point",
                       description="Print a program equal to PROGRAM as a function whose AD derivative at "
                                   "POINT is shifted by SHIFT: P(x) + sum_i r_i * zero(x_i - a_i), zero(t) = "
                                   "relu(-t) + t - relu(t).",
                       epilog=footer(PROGRAM_HELP, POINT_HELP, "SHIFT is a vector like POINT, one exact number "
                                                               "per input."), formatter_class=FMT)
    add_program(s)
    s.add_argument("--shift", required=True, metavar="SHIFT", help="one exact number per input, e.g. 1,-1/2")
    s.add_argument("--certificate", metavar="FILE", help="write a certificate that `verify check` re-validates")
    s.set_defaults(run=run_spurious)


def _vec(v):
    return [json_number(x) for x in v]


def _show(v):
    return "(" + ", ".join(number_text(x) for x in v) + ")"


def run_index(args):
    from ..certify.certs import index_certificate
    from ..certify.index import field_of, index_set
    from ..frontends.text import parse
    t0 = time.perf_counter()
    P = parse(args.program, fn=args.fn)
    if not P.is_scalar:
        return _tensor_index(args, P)
    iset = index_set(P, args.at, scope=args.scope, convention=args.convention, cap=args.cap,
                     max_patterns=args.max_patterns)
    grads, where, exact = field_of(iset, iset.patterns) if iset.decided else ([], [], False)
    if args.certificate:
        write_certificate(index_certificate(iset, t0), args.certificate)
    out = {"patterns": [list(p) for p in iset.patterns], "count": iset.count, "capped": iset.capped,
           "field": [_vec(j[0]) if len(j) == 1 else [_vec(r) for r in j] for j in grads],
           "scope": iset.scope, "convention": iset.convention, "decided": iset.decided,
           "undecided": iset.undecided, "exact": exact}
    lines = [f"I(x) at {args.at}: {iset.count} pattern(s) ({iset.scope} scope)"
             + (f", first {len(iset.patterns)} listed" if iset.capped else "")]
    lines += [f"  pattern {list(p)}" for p in iset.patterns]
    lines.append(f"D_f(x) = conv of {len(grads)} gradient(s):" if not iset.capped else
                 f"the distinct gradients of the {len(iset.patterns)} listed pattern(s) ({len(grads)}; D_f(x) is the "
                 "convex hull of the gradients of all patterns):")
    lines += ["  " + "; ".join(_show(r) for r in j) for j in grads]
    lines += [f"UNDECIDED: {u['reason']}" for u in iset.undecided]
    reason = "; ".join(u["reason"] for u in iset.undecided)
    if iset.capped and iset.decided:
        out["reason"] = capped_reason(iset.count, len(iset.patterns))
        lines.append(f"PROVED: {out['reason']}")
    return emit(args, "PROVED" if iset.decided else "UNDECIDED", out, "\n".join(lines), reason)


def capped_reason(count, listed):
    """What a capped index set proves: the count, exactly; the list and the field are partial."""
    return (f"proved: I(x) has exactly {count} pattern(s); the list is partial (the first {listed}, --cap) and so "
            "are the field's gradients: raise --cap for all of them")


def _truth(t):
    from ..truth import FALSE, TRUE
    return True if t is TRUE else (False if t is FALSE else None)


def run_critical(args):
    from ..certify.certs import critical_certificate
    from ..certify.critical import critical
    from ..frontends.text import parse
    t0 = time.perf_counter()
    P = parse(args.program, fn=args.fn)
    if not P.is_scalar:
        return _tensor_critical(args, P)
    c = critical(P, args.at, convention=args.convention, scope=args.scope, cap=args.cap,
                 max_patterns=args.max_patterns, max_leaves=args.max_leaves)
    if args.certificate:
        write_certificate(critical_certificate(c, t0), args.certificate)
    sel, cl, art = _truth(c.selection.truth), _truth(c.clarke_critical.truth), _truth(c.artificial)
    out = {"field": [_vec(g) for g in c.field], "clarke": None if c.clarke is None else [_vec(g) for g in c.clarke],
           "selection_critical": sel, "clarke_critical": cl, "artificial": art,
           "convention": args.convention, "scope": args.scope}

    def word(b):
        return {True: "yes", False: "no", None: "UNDECIDED"}[b]
    lines = [f"D_f(x) generators:    {', '.join(_show(g) for g in c.field)}",
             f"Clarke generators:    {', '.join(_show(g) for g in c.clarke) if c.clarke else 'UNDECIDED'}",
             f"selection-critical:   {word(sel)}" + (f"   ({c.selection.reason})" if sel is None else ""),
             f"Clarke-critical:      {word(cl)}" + (f"   ({c.clarke_critical.reason})" if cl is None else ""),
             f"artificial:           {word(art)}"]
    why = [f"selection: {c.selection.reason}"] if sel is None else []
    why += [f"Clarke: {c.clarke_critical.reason}"] if cl is None else []
    return emit(args, "PROVED" if not why else "UNDECIDED", out, "\n".join(lines), "; ".join(why))


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
    return emit(args, "PROVED", {"program": to_text(Q), "same_function": True, "at": ev["at"], "shift": ev["shift"]},
                to_text(Q).rstrip("\n"))


# ------------------------------------------------------------------------------------------ tensor programs

def _tensor_checks(args, P):
    from ..errors import InputError
    if args.scope != "local":
        raise InputError("the global index set of a tensor program enumerates every pattern of every site: "
                         "scalarise small programs (verify.scalarize) to ask for it")


def numbered(items):
    """Site records with their equation counted from 1, as the text and every message of verify count (the
    Python objects hold the index into ``program.eqns``)."""
    return [{**m, "equation": m["equation"] + 1} for m in items]


def _tensor_index(args, P):
    """index-set of a tensor program: the sites where several pieces agree, and the exact kinks."""
    from ..certify.sites import site_index_set
    from ..interpret import tensor as T
    _tensor_checks(args, P)
    t0 = time.perf_counter()
    point = T.coerce_inputs(P, args.at)
    iset = site_index_set(P, point, args.convention, cap=args.cap)
    if args.certificate:
        from ..certify.certs_tensor import tensor_index_certificate
        write_certificate(tensor_index_certificate(P, point, args.convention, iset=iset, started=t0), args.certificate)
    sites = sum(len(g.sites) for st in T.nonsmooth_steps(P, args.convention) for g in st.sites.groups)
    multi, undecided = numbered(iset.candidates_json()), numbered(iset.undecided)
    out = {"tensor": True, "count": iset.count, "capped": iset.capped, "multi": multi,
           "kinks": numbered(k.json() for k in iset.kinks), "undecided": undecided, "convention": args.convention,
           "scope": "local", "decided": iset.decided, "sites": sites}
    lines = [f"I(x): {iset.count} pattern(s) over {sites} site(s); {len(iset.multi)} site(s) where several pieces "
             f"agree; {len(iset.kinks)} switching function(s) exactly 0"]
    lines += [f"  equation {m['equation']} site {m['site']}: pieces {m['pieces']}" for m in multi[:20]]
    if len(iset.multi) > 20:
        lines.append(f"  ... {len(iset.multi) - 20} more (--json lists them all)")
    lines += [f"UNDECIDED: {u['reason']} (equation {u['equation']} site {u['site']})" for u in undecided]
    reason = "; ".join(u["reason"] for u in iset.undecided)
    return emit(args, "PROVED" if iset.decided else "UNDECIDED", out, "\n".join(lines), reason)


def _tensor_critical(args, P):
    from ..certify.sites import site_critical
    from ..interpret import tensor as T
    _tensor_checks(args, P)
    t0 = time.perf_counter()
    point = T.coerce_inputs(P, args.at)
    c = site_critical(P, point, args.convention, max_leaves=args.max_leaves)
    if args.certificate:
        from ..certify.certs_tensor import tensor_critical_certificate
        write_certificate(tensor_critical_certificate(P, point, args.convention, crit=c, started=t0),
                          args.certificate)
    sel, cl, art = _truth(c.selection.truth), _truth(c.clarke_critical.truth), _truth(c.artificial)
    out = {"tensor": True, "field_size": len(c.field.gradients),
           "clarke_size": None if c.clarke is None else len(c.clarke.gradients), "selection_critical": sel,
           "clarke_critical": cl, "artificial": art, "convention": args.convention, "scope": "local"}

    def word(b):
        return {True: "yes", False: "no", None: "UNDECIDED"}[b]
    lines = [f"D_f(x): conv of {len(c.field.gradients)} selection gradient(s); Clarke: "
             + (f"conv of {len(c.clarke.gradients)}" if c.clarke else f"UNDECIDED ({c.clarke_error})"),
             f"selection-critical:   {word(sel)}" + (f"   ({c.selection.reason})" if sel is None else ""),
             f"Clarke-critical:      {word(cl)}" + (f"   ({c.clarke_critical.reason})" if cl is None else ""),
             f"artificial:           {word(art)}"]
    why = [f"selection: {c.selection.reason}"] if sel is None else []
    why += [f"Clarke: {c.clarke_critical.reason}"] if cl is None else []
    return emit(args, "PROVED" if not why else "UNDECIDED", out, "\n".join(lines), "; ".join(why))
