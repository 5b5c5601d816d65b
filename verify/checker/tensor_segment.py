"""Checks for tensor_segment and tensor_integral certificates (written by verify/certify/certs_tensor.py for
piecewise-linear tensor programs), re-derived with the checker's own tensor kernel (tensor.py).

Along z(t) = x + t (y - x) every value of a piecewise-linear program frozen to a pattern is affine in t.  The
checker re-derives, for the stated fine partition 0 = t_0 < ... < t_n = 1 and the stated patterns:

- at every point t_i, the pattern the index rules choose at z(t_i) (exactly: the values are rational);
- on every open piece (t_i, t_i+1) (the program is piecewise linear in the inputs that move), the pattern the
  index rules choose at its midpoint m, and that no
  switching function of any site of the program frozen to that pattern vanishes inside the piece: each is
  affine in t, so its signs at t_i, m and t_i+1 (the frozen program evaluated there) show it (a nonzero sign at
  m must not be contradicted at an end; a zero at m means zero at both ends: identically zero);

then it merges the fine partition into breakpoints and pieces and requires the stated result.  The integral:
on each piece the frozen program's output is affine in t, so the integral of its derivative is its value at
the piece's right end minus its value at the left end, exactly; the left side f(y) - f(x); a jump where a
piece's value at a point differs from the value there (REFUTED); the sides, their difference and the verdict.
"""
import numpy as np
from flint import fmpq

from ..errors import InputError
from ..numbers.ball import interval_json
from ..program.arrays import decode
from . import Invalid, register
from . import common as C
from . import kernel as K
from . import sites as SI
from . import tensor as TK


def _end(cert, key, base, P):
    """The segment's end ``claim[key]`` (a side file, one array per input) as exact arrays of the kernel."""
    try:
        arrays = decode(SI.side(cert["claim"][key], base, f"claim.{key}"))
    except InputError as e:
        raise Invalid(f"claim.{key}: {e}") from None
    names, shapes = list(P.input_names), P.input_shapes or [()] * P.n_inputs
    if sorted(arrays) != sorted(names):
        raise Invalid(f"claim.{key} must hold one array per input ({', '.join(names)}), named like the inputs")
    out = []
    for n, s in zip(names, shapes):
        if tuple(arrays[n].shape) != tuple(s):
            raise Invalid(f"claim.{key}: input {n} has shape {list(arrays[n].shape)}, the program declares {list(s)}")
        out.append(arrays[n].to_fmpq())
    return out


class Segment:
    """The checker's walk over the stated fine partition of a tensor segment."""

    def __init__(self, cert, base):
        self.cert, self.P = cert, C.program(cert, base)
        self.x, self.y = _end(cert, "from", base, self.P), _end(cert, "to", base, self.P)
        moving = [bool(np.any(np.asarray(a != b, dtype=bool))) for a, b in zip(self.x, self.y)]
        if not SI.is_piecewise_linear(self.P, moving):
            raise Invalid("a tensor segment certificate is for programs piecewise linear in the inputs that move "
                          "along the segment (every value affine in t on a piece)")
        ev = cert["evidence"]
        self.ts = [K.q(s) for s in ev["points"]]
        if len(self.ts) < 2 or self.ts[0] != 0 or self.ts[-1] != 1 or any(a >= b for a, b in zip(self.ts, self.ts[1:])):
            raise Invalid("evidence.points must rise from 0 to 1")
        self.encoded = ev["patterns"]
        if not isinstance(self.encoded, list) or len(self.encoded) != 2 * len(self.ts) - 1:
            raise Invalid("evidence.patterns must give the pattern at every point and on every piece between them")
        self.runs = {}

    def z(self, t):
        return [TK.from_fmpqs(np.asarray(a + t * (b - a), dtype=object)) for a, b in zip(self.x, self.y)]

    def run(self, t, pattern=None):
        key = (t, None if pattern is None else id(pattern))
        if key not in self.runs:
            self.runs[key] = TK.Run(self.P, self.z(t), pattern)
        return self.runs[key]

    def decode(self, table):
        """The stated patterns as {k: flat piece list} (pieces by the table) and as index arrays per equation.
        The encoding must be the canonical one (the first pattern in full, by integers; then exactly the sites
        that change, in order), as the certifier writes it."""
        eqs = self.run(self.ts[0]).nonsmooth()
        out, last = [], None
        for j, p in enumerate(self.encoded):
            if j == 0:
                if not isinstance(p, list) or len(p) != len(eqs):
                    raise Invalid("evidence/patterns/0: one array of piece indices per nonsmooth equation")
                cur = [np.array(a, dtype=object).reshape(S.table.grid) for a, S in zip(p, eqs)]
                ints = all(type(v) is int for a in cur for v in a.ravel())
                if not ints or [np.asarray(a).tolist() for a in cur] != p:
                    raise Invalid("evidence/patterns/0: not the canonical full pattern")
            else:
                if not isinstance(p, dict) or set(p) != {"changes"}:
                    raise Invalid(f"evidence/patterns/{j}: the sites that change, {{\"changes\": [...]}}")
                cur = [a.copy() for a in last]
                for e, idx, piece in p["changes"]:
                    if not (type(e) is int and 0 <= e < len(cur) and type(piece) is int):
                        raise Invalid(f"evidence/patterns/{j}: a malformed change")
                    cur[e][tuple(idx)] = piece
                if _changes(cur, last) != p["changes"]:
                    raise Invalid(f"evidence/patterns/{j}: not the canonical list of the sites that change")
            out.append(cur)
            last = cur
        pieces = [{S.k: self.pieces_of(S, arr, table, j) for S, arr in zip(eqs, pat)} for j, pat in enumerate(out)]
        return out, pieces

    @staticmethod
    def pieces_of(S, arr, table, j):
        flat = np.asarray(arr).ravel()
        if flat.size != S.table.n_sites:
            raise Invalid(f"evidence/patterns/{j}: equation {S.k + 1} has {S.table.n_sites} sites")
        out = [None] * flat.size
        for G in S.groups:
            for s in G.sites:
                out[int(s)] = table.piece(S.k, G.n, int(flat[int(s)]))
        return out

    def chosen(self, run):
        """{k: flat piece list} the index rules choose in ``run``."""
        out = {}
        for S in run.nonsmooth():
            flat = [None] * S.table.n_sites
            for G in S.groups:
                for loc, s in enumerate(G.sites):
                    flat[int(s)] = G.pieces[G.ids[loc]]
            out[S.k] = flat
        return out

    def check_piece(self, j, a, b, pattern):
        """The open piece (a, b): the index rules choose ``pattern`` at its midpoint, and no switching function
        of the frozen program changes sign inside (affine in t: signs at a, the midpoint and b)."""
        m = (a + b) / 2
        if self.chosen(self.run(m)) != pattern:
            raise Invalid(f"the pattern on piece {j} is not the one the index rules choose")
        mid = self.run(m, pattern)
        for t in (a, b):
            end = self.run(t, pattern)
            for S, E in zip(mid.nonsmooth(), end.nonsmooth()):
                for G, H in zip(S.groups, E.groups):
                    for sm, se in zip(G.signs, H.signs):
                        sm, se = np.asarray(sm, dtype=np.int64), np.asarray(se, dtype=np.int64)
                        bad = np.where(sm != 0, se * sm < 0, se != 0)
                        if bad.any():
                            raise Invalid(f"a switching function of equation {S.k + 1} vanishes inside piece {j}")


def _merge(atoms):
    """Breakpoints and pieces: a point whose pattern equals both neighbours' is not a breakpoint."""
    last, keep = len(atoms) - 1, []
    for i, a in enumerate(atoms):
        if a[0] == "P" and 0 < i < last and atoms[i - 1][1] == a[2] == atoms[i + 1][1]:
            continue
        if a[0] == "O" and keep and keep[-1][0] == "O":
            continue
        keep.append(a)
    bps, pieces, pending = [], [], None
    for a in keep:
        if a[0] == "O":
            pending = a
            continue
        bps.append(a)
        if pending is not None:
            pieces.append((len(bps) - 2, len(bps) - 1, pending))
            pending = None
    return bps, pieces


def _changes(cur, prev):
    out = []
    for e, (a, b) in enumerate(zip(cur, prev)):
        for idx in np.argwhere(np.asarray(a, dtype=object) != np.asarray(b, dtype=object)).tolist():
            out.append([e, [int(i) for i in idx], int(a[tuple(idx)])])
    return out


def _walk(cert, base):
    """(Segment, table, fine atoms, merged breakpoints, merged pieces) re-derived from the certificate."""
    W = Segment(cert, base)
    table = SI.SitePieces(cert["evidence"]["pieces"], W.run(W.ts[0]))
    arrays, pats = W.decode(table)
    atoms = []
    for i, t in enumerate(W.ts):
        if W.chosen(W.run(t)) != pats[2 * i]:
            raise Invalid(f"the pattern at point {i} is not the one the index rules choose")
        atoms.append(("P", t, pats[2 * i], arrays[2 * i]))
        if i + 1 < len(W.ts):
            W.check_piece(i, t, W.ts[i + 1], pats[2 * i + 1])
            atoms.append(("O", pats[2 * i + 1], arrays[2 * i + 1]))
    bps, pieces = _merge(atoms)
    return W, table, atoms, bps, pieces


def _result(W, bps, pieces):
    """The partition's JSON (without its curve) as the certifier writes it."""
    seq = []
    for i, b in enumerate(bps):
        seq.append(b[3])
        if i < len(pieces):
            seq.append(pieces[i][2][2])
    enc, last = [], None
    for a in seq:
        enc.append([np.asarray(x).tolist() for x in a] if last is None else {"changes": _changes(a, last)})
        last = a
    eqs = W.run(W.ts[0]).nonsmooth()
    pts = [K.qs(b[1]) for b in bps]
    return {"breakpoints": pts, "breakpoint_patterns": enc[0::2], "breakpoint_status": ["exact"] * len(bps),
            "pieces": [{"interval": [pts[i], pts[k]], "pattern": j} for (i, k, _), j in zip(pieces, enc[1::2])],
            "method": "exact", "exact": True, "complete": True, "tol": W.cert["claim"]["tol"],
            "convention": W.cert["claim"]["convention"], "route": "native", "values": "affine",
            "pattern_encoding": "changes",
            "sites": [{"equation": S.k, "primitive": S.e.prim, "grid": list(S.table.grid)} for S in eqs]}


@register("tensor_segment", side_files=True)
def check_tensor_segment(cert, base):
    C.prec_null(cert, "a piecewise-linear tensor segment is exact")
    W, table, _, bps, pieces = _walk(cert, base)
    C.same(cert["result"], _result(W, bps, pieces), "result")
    C.same(cert["verdict"], "PROVED", "verdict")
    table.check_used()


def _output(run):
    """The scalar output of a run of a piecewise-linear program at an exact point: an fmpq."""
    v = run.outputs()[0]
    if not isinstance(v, TK.Q):
        raise Invalid("the output of a piecewise-linear program at an exact point is not exact")
    return v.fmpqs().ravel()[0]


@register("tensor_integral", side_files=True)
def check_tensor_integral(cert, base):
    C.prec_null(cert, "the integral of a piecewise-linear tensor program is exact")
    W, table, atoms, bps, pieces = _walk(cert, base)
    P = W.P
    if P.n_outputs != 1 or P.atom_shape(P.outputs[0]) != ():
        raise Invalid("the integral identity is about a program with one scalar output")
    disc = None
    for j, a in enumerate(atoms):                 # a jump: a piece's value at an adjacent point differs from f's
        if a[0] != "P" or disc is not None:
            continue
        f = _output(W.run(a[1]))
        for side in (j - 1, j + 1):
            if 0 <= side < len(atoms) and disc is None and _output(W.run(a[1], atoms[side][1])) != f:
                disc = {"t": K.qs(a[1]), "pattern": [np.asarray(x).tolist() for x in atoms[side][2]],
                        "reason": "the value of the adjacent piece differs from the value at the point"}
    terms = [_output(W.run(bps[k][1], pat)) - _output(W.run(bps[i][1], pat)) for i, k, (_, pat, _) in pieces]
    lhs = _output(W.run(fmpq(1))) - _output(W.run(fmpq(0)))
    rhs = sum(terms, fmpq(0))
    own = {"verdict": "PROVED", "lhs": K.qs(lhs), "rhs": interval_json(rhs, rhs), "difference":
           interval_json(lhs - rhs, lhs - rhs), "exact": True, "tol": cert["claim"]["tol"],
           "breakpoints": [K.qs(b[1]) for b in bps], "method": "exact", "convention": cert["claim"]["convention"]}
    if disc is not None:
        own["verdict"], own["discontinuity"] = "REFUTED", disc
        own["reason"] = f"f is discontinuous at t = {disc['t']}: it is not in the class S"
    elif lhs != rhs:
        own["verdict"], own["reason"] = "REFUTED", "the two sides certainly differ: f is not in the class S"
    C.same(cert["result"], own, "result")
    C.same(cert["verdict"], own["verdict"], "verdict")
    table.check_used()
