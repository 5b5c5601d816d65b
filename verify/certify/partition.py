"""What a segment partition is (Claim 1): the curve, the breakpoints, the open pieces with their patterns, and
how a fine partition (every root found) is merged into breakpoints.  Shared by the exact walk (segment.py) and
the ball walk (cells.py)."""
from dataclasses import dataclass, field

from flint import fmpq_poly

from ..errors import InputError
from ..numbers.ball import interval_json
from ..rational import fmt_q, parse_point
from . import algebraic as A


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
    point_exact: dict = field(default=None, repr=False)       # method "ball": exact-form decisions at cell ends

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
    """A rational enclosure (lo < hi) as JSON, with as many digits as it is accurate."""
    return interval_json(lo, hi)


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
