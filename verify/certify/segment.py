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
from dataclasses import dataclass, field

from flint import fmpq, fmpq_poly

from .. import kinks
from ..errors import DomainError, InputError, Undecided
from ..evaluate import compiled, run
from ..frontends import as_program
from ..numbers import get_system
from ..prims import affine
from ..rational import fmt_q, parse_point
from . import algebraic as A
from .ratfunc import RF, At, NotRational, Right, RFSystem

DEFAULT_TOL = 60
RATIONAL_PRIMS = {"add", "sub", "mul", "div", "neg", "pow"}


# ------------------------------------------------------------------------------------------------- curves

class Curve:
    """gamma(t) = sum_k coeffs[k] * t**k, each coefficient a vector of fmpq (one entry per program input).
    A segment from x to y is Curve([x, y - x]); ``segment`` keeps x and y for reports."""

    def __init__(self, coeffs, segment=None):
        if not coeffs or len({len(c) for c in coeffs}) != 1:
            raise InputError("a curve needs one or more coefficient vectors of the same length")
        self.coeffs = [list(c) for c in coeffs]
        self.segment = segment
        self.n = len(coeffs[0])
        self.polys = [fmpq_poly([c[i] for c in self.coeffs]) for i in range(self.n)]
        self.dpolys = [p.derivative() for p in self.polys]

    @classmethod
    def from_segment(cls, x, y):
        x, y = parse_point(x), parse_point(y)
        if len(x) != len(y):
            raise InputError(f"--from has {len(x)} coordinate(s) and --to has {len(y)}")
        return cls([x, [b - a for a, b in zip(x, y)]], segment=(x, y))

    @classmethod
    def parse(cls, text):
        """"c0; c1; c2" (each a comma-separated vector): gamma(t) = c0 + c1 t + c2 t^2; or a list of vectors."""
        if isinstance(text, Curve):
            return text
        parts = text.split(";") if isinstance(text, str) else list(text)
        if isinstance(text, str) and any(not p.strip() for p in parts):
            raise InputError(f"curve {text!r} is malformed: write coefficient vectors separated by ';', "
                             "e.g. '0,0; 1,0; 0,1' for gamma(t) = (t, t^2)")
        return cls([parse_point(p) for p in parts])

    def at(self, t):
        """gamma(t) as exact rationals (t rational)."""
        return [p(t) for p in self.polys]

    def json(self):
        return [[fmt_q(c) for c in v] for v in self.coeffs]

    def describe(self):
        if self.segment:
            x, y = self.segment
            return f"from ({', '.join(map(fmt_q, x))}) to ({', '.join(map(fmt_q, y))})"
        return "gamma(t) = " + " + ".join(f"({', '.join(map(fmt_q, c))})" + (f" t^{k}" if k > 1 else " t" if k else "")
                                          for k, c in enumerate(self.coeffs))


def make_curve(program, x=None, y=None, curve=None):
    if curve is not None:
        if x is not None or y is not None:
            raise InputError("give either a curve or --from/--to, not both")
        c = Curve.parse(curve)
    else:
        if x is None or y is None:
            raise InputError("a segment needs both ends (--from X --to Y) or a curve (--curve)")
        c = Curve.from_segment(x, y)
    if c.n != program.n_inputs:
        raise InputError(f"the curve has {c.n} coordinate(s) but {program.name} takes {program.n_inputs} input(s)")
    return c


def is_rational(program):
    """Only + - * /, integer powers and nonsmooth primitives: every value is rational in t on a pattern."""
    from ..prims import PRIMITIVES
    return all(e.prim in RATIONAL_PRIMS or not PRIMITIVES[e.prim].smooth for e in program.eqns)


# ---------------------------------------------------------------------------------------------- results

@dataclass
class Breakpoint:
    """``t``: fmpq or algebraic (status "exact"), or a rational enclosure (lo, hi) (status "simple": exactly
    one switch inside, whose pattern is ``pattern``; status "cluster": possible switches inside, pattern
    unknown)."""
    t: object
    pattern: tuple
    status: str


@dataclass
class Piece:
    """The open interval between breakpoints ``lo`` and ``hi`` (indices) with its constant pattern."""
    lo: int
    hi: int
    pattern: tuple


@dataclass
class Partition:
    program: object
    convention: str
    curve: Curve
    method: str
    tol: int
    prec: int
    breakpoints: list
    pieces: list
    atoms: list = field(repr=False)      # the fine partition, before merging (the certificate's evidence)
    cells: list = field(default=None, repr=False)             # method "ball": the certified cells
    point_patterns: dict = field(default=None, repr=False)    # method "ball": the pattern at each cell end

    @property
    def complete(self):
        return all(b.status != "cluster" for b in self.breakpoints)

    @property
    def exact(self):
        return all(b.status == "exact" for b in self.breakpoints)

    def json(self):
        return {"breakpoints": [bp_json(b) for b in self.breakpoints],
                "breakpoint_patterns": [None if b.pattern is None else list(b.pattern) for b in self.breakpoints],
                "breakpoint_status": [b.status for b in self.breakpoints],
                "pieces": [{"interval": [bp_json(self.breakpoints[p.lo]), bp_json(self.breakpoints[p.hi])],
                            "pattern": list(p.pattern)} for p in self.pieces],
                "method": self.method, "exact": self.exact, "complete": self.complete, "tol": self.tol,
                "curve": self.curve.json(), "convention": self.convention}


def enclosure_json(lo, hi):
    return {"lo": A.q_decimal(lo)[0], "hi": A.q_decimal(hi)[1]}


def bp_json(b):
    if b.status == "exact":
        return A.number_json(b.t)
    return enclosure_json(*b.t)


# ------------------------------------------------------------------------------------------------ merging

def merge(atoms):
    """Breakpoints and pieces from a fine partition.  ``atoms`` alternates point-like atoms ("P", t, pattern)
    / ("S", (lo, hi), pattern) / ("X", (lo, hi), candidates) and open atoms ("O", pattern), starting and
    ending with a point.  A cluster with a single candidate pattern is an open atom; the boundary points of a
    cluster belong to it (except 0 and 1); a point whose pattern equals the patterns on both sides is not a
    breakpoint."""
    atoms = [("O", a[2][0]) if a[0] == "X" and len(a[2]) == 1 else a for a in atoms]
    last = len(atoms) - 1
    keep = []
    for i, a in enumerate(atoms):
        if a[0] == "P" and 0 < i < last and ("X" in (atoms[i - 1][0], atoms[i + 1][0])):
            continue
        if a[0] in "PS" and 0 < i < last and atoms[i - 1][0] == "O" and atoms[i + 1][0] == "O" and \
                atoms[i - 1][1] == a[2] == atoms[i + 1][1]:
            continue
        if a[0] == "O" and keep and keep[-1][0] == "O":
            continue
        keep.append(a)
    bps, pieces, pending = [], [], None
    for a in keep:
        if a[0] == "O":
            pending = a[1]
            continue
        status = {"P": "exact", "S": "simple", "X": "cluster"}[a[0]]
        bps.append(Breakpoint(a[1], None if a[0] == "X" else a[2], status))
        if pending is not None:
            pieces.append(Piece(len(bps) - 2, len(bps) - 1, pending))
            pending = None
    return bps, pieces


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
    and on each open piece; ball: every cell with its proof data and the pattern at every cell boundary)."""
    from .certs import pieces_table
    ev = {"method": part.method, "pieces": pieces_table(part.program, part.convention, _patterns_of(part))}
    if part.method == "exact":
        ev["points"] = [A.number_json(a[1]) for a in part.atoms if a[0] == "P"]
        ev["at"] = [list(a[2]) for a in part.atoms if a[0] == "P"]
        ev["open"] = [list(a[1]) for a in part.atoms if a[0] == "O"]
        return ev
    cells = []
    for c in part.cells:
        j = {"kind": c.kind, "lo": fmt_q(c.lo), "hi": fmt_q(c.hi)}
        if c.kind == "region":
            j["pattern"], j["known"] = list(c.pattern), [list(k) for k in c.known]
        elif c.kind == "simple":
            j["switch"], j["signs"], j["patterns"] = list(c.switch), list(c.signs), [list(p) for p in c.patterns]
        else:
            j["candidates"] = [list(p) for p in c.candidates]
        cells.append(j)
    ev["cells"] = cells
    bounds = [part.cells[0].lo] + [c.hi for c in part.cells]
    ev["points"] = [{"t": fmt_q(t), "pattern": list(part.point_patterns[t])} for t in bounds]
    return ev


def segment_certificate(part, started=None):
    """A certificate (kind "segment") for a Partition: PROVED when complete, UNDECIDED with clusters."""
    from ..certificates import make
    return make("segment", part.program, part.convention, {**claim_json(part), "method": part.method},
                "PROVED" if part.complete else "UNDECIDED", part.json(), partition_evidence(part), part.prec, started)


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
    return "\n".join(lines)


def _short(b):
    j = bp_json(b)
    return j if isinstance(j, str) else f"[{j['lo'][:12]}.., {j['hi'][:12]}..]"


__all__ = ["segment_partition", "Curve", "Partition", "Breakpoint", "Piece", "merge", "exact_walk",
           "partition_text", "DEFAULT_TOL"]
