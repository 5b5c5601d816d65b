"""Claim 1 of the paper: along a segment z(t) = x + t (y - x), t in [0, 1] (or a polynomial curve with
rational coefficients, Theorem 3's setting), the pattern s(z(t)) is constant on the open pieces of a finite
partition 0 = a_0 < a_1 < ... < a_N = 1.  ``segment_partition`` returns such a partition with the pattern on
every open piece and at every breakpoint, certified:

- rational programs (+ - * /, integer powers, nonsmooth primitives), method "exact": on a frozen pattern every
  switching function is a rational function of t, computed exactly (ratfunc.py).  The walk goes from t = 0:
  the pattern just right of the current point (first nonzero Taylor coefficient), the first root after it of
  any switching function or divisor of that pattern (exact: rational, or algebraic with an isolating interval
  narrower than the tolerance), the pattern at that root, and so on.  A switching function that is
  identically zero is decided exactly (sign 0).
- other programs, method "ball": cells.py (interval evaluation, monotonicity, interval Newton); breakpoints are
  enclosed in balls narrower than the tolerance; a cell where a switching function may vanish without a
  certified simple root (a double root, a switching function that may be identically zero) is reported as a
  "cluster": the patterns on both sides are certified, the pattern inside is not, and the partition is then
  incomplete (UNDECIDED), never a claim that the pattern is constant across the cell.

Breakpoints are the points where the pattern changes: a point whose pattern equals the patterns on both
sides is merged away.  The fine partition (every root found) is kept as evidence for the certificate.
"""
from flint import fmpq

from .. import progress
from ..program import kinks
from ..errors import DomainError, InputError, Undecided
from ..interpret.evaluate import compiled, run
from ..frontends import as_program
from ..numbers import get_system
from ..program.prims import affine
from ..rational import fmt_q
from . import algebraic as A
from .partition import Breakpoint, Curve, Partition, Piece, bp_json, enclosure_json, make_curve, merge  # noqa: F401
from .ratfunc import RF, At, NotRational, Right, RFSystem

DEFAULT_TOL = 60
RATIONAL_PRIMS = {"add", "sub", "mul", "div", "neg", "pow"}


def is_rational(program):
    """Only + - * /, integer powers and nonsmooth primitives: every value is rational in t on a pattern."""
    from ..program.prims import PRIMITIVES
    return all(e.prim in RATIONAL_PRIMS or not PRIMITIVES[e.prim].smooth for e in program.eqns)


# ------------------------------------------------------------------------------------ the exact walk

def _located(err, where, curve, program):
    t = where.a
    pt = "" if not isinstance(t, fmpq) else f" (point {', '.join(fmt_q(v) for v in curve.at(t))})"
    return type(err)(f"{program.name} at {where}{pt}: {err}")


def _run_at(program, convention, curve, where, ins):
    try:
        if isinstance(where, At) and isinstance(where.a, fmpq):
            return run(program, get_system("exact"), curve.at(where.a), convention)
        return run(program, RFSystem(where), ins, convention)
    except (DomainError, Undecided) as e:
        raise _located(e, where, curve, program) from None


def critical_polys(program, convention, r):
    """The numerators of every switching function and every divisor of the Run ``r`` (over RF values) that
    are not constant: the pattern can change, or the program stop being defined, only at their roots."""
    out = []
    for st in compiled(program, convention):
        args = r.args[st.k]
        if st.sel is not None:
            for terms, const in st.switches:
                out.append(affine(r.ns, terms, const, args).n)
        elif st.prim == "div":
            out.append(args[1].n)
        elif st.prim == "pow" and st.params["n"] < 0:
            out.append(args[0].n)
    return [p for p in out if p.degree() > 0]


def exact_walk(program, convention, curve, tol):
    """The fine partition of a rational program along ``curve``: atoms as in ``merge``."""
    ins = [RF(p) for p in curve.polys]
    width = fmpq(1, 2 ** tol)
    t = fmpq(0)
    atoms = [("P", t, _run_at(program, convention, curve, At(t), ins).pattern)]
    one = fmpq(1)
    while True:
        progress.report(f"segment: breakpoints up to t = {float(t) if isinstance(t, fmpq) else float(t.lo):.6f},",
                        len(atoms) // 2)
        r = _run_at(program, convention, curve, Right(t), ins)
        nxt = one
        for P in critical_polys(program, convention, r):
            roots = A.real_roots(P, t, nxt)
            if roots:
                nxt = roots[0]
        if isinstance(nxt, A.Alg):
            nxt.refine_to(width)
        atoms.append(("O", r.pattern))
        atoms.append(("P", nxt, _run_at(program, convention, curve, At(nxt), ins).pattern))
        if isinstance(nxt, fmpq) and nxt == one:
            return atoms
        t = nxt


# ------------------------------------------------------------------------------------------- public API

def segment_partition(program, x=None, y=None, curve=None, convention=kinks.DEFAULT, tol=DEFAULT_TOL,
                      method="auto", prec=None):
    """The certified partition of Claim 1 along the segment from ``x`` to ``y`` (or along ``curve``, a
    Curve or "c0; c1; ..." coefficient vectors).  ``tol``: breakpoint enclosures narrower than 2**-tol.
    ``method``: "exact" (rational programs only), "ball", or "auto" (exact when the program is rational).
    Raises DomainError when the program is not defined somewhere on the curve, Undecided when a pattern
    cannot be decided (a cluster does not raise: see Partition.complete)."""
    program = as_program(program)
    kinks.check_convention(convention)
    if type(tol) is not int or not 1 <= tol <= 2000:
        raise InputError(f"tol={tol!r} must be a number of bits between 1 and 2000")
    c = make_curve(program, x, y, curve)
    rational = is_rational(program)
    if method == "auto":
        method = "exact" if rational else "ball"
    if method == "exact":
        if not rational:
            raise InputError("the exact method needs a rational program (+ - * /, integer powers, nonsmooth "
                             "primitives); use method='ball'")
        try:
            atoms = exact_walk(program, convention, c, tol)
        except NotRational as e:
            raise InputError(str(e)) from None
        bps, pieces = merge(atoms)
        return Partition(program, convention, c, "exact", tol, None, bps, pieces, atoms)
    if method != "ball":
        raise InputError(f"method {method!r} must be 'auto', 'exact' or 'ball'")
    from .cells import analytic_partition
    return analytic_partition(program, convention, c, tol, prec)


# ------------------------------------------------------------------------------------------ certificates

def _patterns_of(part):
    out = []
    for a in part.atoms:
        if a[0] == "O":
            out.append(a[1])
        elif a[0] in "PS":
            out.append(a[2])
        else:
            out.extend(a[2])
    for c in part.cells or []:
        out.extend(p for p in (c.pattern,) + (c.patterns or ()) + (c.candidates or ()) if p is not None)
    return out


def claim_json(part):
    out = {"curve": part.curve.json(), "tol": part.tol}
    if part.curve.segment:
        x, y = part.curve.segment
        out["from"], out["to"] = [fmt_q(v) for v in x], [fmt_q(v) for v in y]
    return out


def partition_evidence(part):
    """What a checker needs: the piece table and the fine partition (exact: every point and the pattern at it
    and on each open piece; ball: every cell with its proof data and the pattern at every cell boundary, with
    the signs decided beyond enclosures as evidence.Exact entries)."""
    from .certs import pieces_table
    ev = {"pieces": pieces_table(part.program, part.convention, _patterns_of(part))}
    if part.method == "exact":
        ev["points"] = [A.number_json(a[1]) for a in part.atoms if a[0] == "P"]
        ev["at"] = [list(a[2]) for a in part.atoms if a[0] == "P"]
        ev["open"] = [list(a[1]) for a in part.atoms if a[0] == "O"]
        return ev
    ev["cells"] = [cell_json(c) for c in part.cells]
    bounds = [part.cells[0].lo] + [c.hi for c in part.cells]
    ev["points"] = []
    for t in bounds:
        j = {"t": fmt_q(t), "pattern": list(part.point_patterns[t])}
        if part.point_exact.get(t):
            j["exact"] = [e.json() for e in part.point_exact[t]]
        ev["points"].append(j)
    return ev


def cell_json(c):
    """One cell of a ball partition as certificate evidence (see the checker's segment.py)."""
    j = {"kind": c.kind, "lo": fmt_q(c.lo), "hi": fmt_q(c.hi)}
    if c.kind == "region":
        j["pattern"], j["known"] = list(c.pattern), [list(k) for k in c.known]
        if c.exact:
            j["exact"] = [e.json() for e in c.exact]
    elif c.kind == "simple":
        j["switch"], j["signs"], j["patterns"] = list(c.switch), list(c.signs), [list(p) for p in c.patterns]
        if any(b.known for b in c.branches):
            j["known"] = [[list(k) for k in b.known] for b in c.branches]
        if any(b.exact for b in c.branches):
            j["exact"] = [[e.json() for e in b.exact] for b in c.branches]
    else:
        j["candidates"] = [list(p) for p in c.candidates]
    return j


def segment_certificate(part, started=None):
    """A certificate (kind "segment") for a Partition: PROVED when complete, UNDECIDED with clusters."""
    from ..certificates import make
    return make("segment", part.program, part.convention, {**claim_json(part), "method": part.method},
                "PROVED" if part.complete else "UNDECIDED", part.json(), partition_evidence(part),
                part.prec if part.method == "ball" else None, started)


def partition_text(part):
    """Human-readable lines."""
    P = part.program
    head = (f"program   {P.name}({', '.join(P.input_names)})   {part.curve.describe()}   method={part.method}   "
            f"convention={part.convention}")
    lines = [head, f"breakpoints ({len(part.breakpoints)}):"]
    for b in part.breakpoints:
        j = bp_json(b)
        num = j if isinstance(j, str) else f"[{j['lo']}, {j['hi']}]"
        extra = ""
        if b.status == "exact" and isinstance(b.t, A.Alg):
            extra = f"  (root of {b.t.q})"
        pat = "?" if b.pattern is None else list(b.pattern)
        lines.append(f"  t = {num}{extra}   pattern {pat}   {b.status}")
    lines.append(f"pieces ({len(part.pieces)}):")
    for p in part.pieces:
        lines.append(f"  ({_short(part.breakpoints[p.lo])}, {_short(part.breakpoints[p.hi])})   pattern "
                     f"{list(p.pattern)}")
    if not part.complete:
        lines.append("UNDECIDED: the pattern inside the cluster enclosure(s) is not determined")
        lines += [f"  {cluster_reason(part, c)}" for c in part.cells or [] if c.kind == "cluster"]
    return "\n".join(lines)


def cluster_reason(part, c):
    """Why a cluster is left: its switching function may vanish to second order there (a multiple root, or
    identically), where neither its enclosure, nor exact structure, nor a germ decides its sign."""
    from ..interpret.evaluate import compiled
    from ..program.ir import eqn_label
    pos, j = c.switch
    k = [st for st in compiled(part.program, part.convention) if st.sel is not None][pos].k
    return (f"t in {_short(Breakpoint((c.lo, c.hi), None, 'cluster'))}: switching function {j + 1} of equation "
            f"{k + 1} `{eqn_label(part.program, k)}` may have a multiple root there (or vanish identically): no "
            "enclosure, exact form or germ decides its sign next to it")


def _short(b):
    j = bp_json(b)      # in full: an enclosure is printed with as many digits as it is accurate
    return j if isinstance(j, str) else f"[{j['lo']}, {j['hi']}]"


__all__ = ["segment_partition", "Curve", "Partition", "Breakpoint", "Piece", "merge", "exact_walk",
           "partition_text", "DEFAULT_TOL"]
