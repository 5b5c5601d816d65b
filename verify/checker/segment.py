"""Checks for segment, integral and differentiable certificates, re-derived with kernel.py, the exact tools
along the curve (rational.py: rational functions of t, Sturm sequences, real algebraic numbers) and the walks
in balls (cells.py), never with verify.certify, verify.evaluate, verify.ad or the primitives' rules.

Segment, method "exact" (rational programs): at every point of the fine partition the index rules, replayed
by the checker (exactly, at a rational or algebraic t), choose the stated pieces; on every open piece the
frozen program's switching functions and divisors, computed by the checker as rational functions of t, have
no root (Sturm counts), and the index rules choose the stated pieces at a rational sample point: then they
choose them on the whole piece (every switching function keeps its sign).  Method "ball": every cell is
re-evaluated in balls over the whole cell (a region: all signs decided, by enclosure, mean value form or
monotonicity, or an exact decision the certificate states and the checker re-derives: see cells.py; a simple
cell: one monotone switching function with opposite signs at the ends, the three patterns re-derived with its
sign forced; a cluster: the candidate patterns re-enumerated).  In both cases
the breakpoints and pieces of the result are re-derived by merging and compared as JSON.

Integral: the partition as above, then every term of the right side by the fundamental theorem of calculus
(f_s(gamma(b)) - f_s(gamma(a)) on a piece, exactly or in balls that the stated enclosure must contain), cell
contributions as width times the hull of the checker's forward-mode derivative, the left side by the
checker's own evaluation; rhs, difference and verdict are re-derived exactly from the stated numbers.
Differentiable: every switching function's sign at the point, the pattern and the selection Jacobian.
"""
from flint import arb, arb_poly, ctx, fmpq, fmpq_poly

from ..numbers.ball import interval_json
from . import Invalid, register
from . import cells as S
from . import common as C
from . import kernel as K
from . import rational as R
from .forms import Forms

Q0, Q1 = K.Q0, K.Q1


def _enclosure(lo, hi):
    return interval_json(lo, hi)


_iv = C.stated_bounds
_contains = C.contains
_ball_of = C.ball_of
_iv_json = _enclosure


# ------------------------------------------------------------------------------------- the partition

def _merge(atoms):
    """As the certifier: X with one candidate is open; P next to X belongs to it (but 0 and 1); a point with
    the same pattern as both neighbours is not a breakpoint."""
    atoms = [("O", a[2][0]) if a[0] == "X" and len(a[2]) == 1 else a for a in atoms]
    last, keep = len(atoms) - 1, []
    for i, a in enumerate(atoms):
        if a[0] == "P" and 0 < i < last and "X" in (atoms[i - 1][0], atoms[i + 1][0]):
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
        bps.append(a)
        if pending is not None:
            pieces.append((len(bps) - 2, len(bps) - 1, pending))
            pending = None
    return bps, pieces


def _bp_json(a):
    return R.point_json(a[1]) if a[0] == "P" else _enclosure(*a[1])


def _partition_json(bps, pieces, method, tol, curve_json, conv):
    status = {"P": "exact", "S": "simple", "X": "cluster"}
    return {"breakpoints": [_bp_json(b) for b in bps],
            "breakpoint_patterns": [None if b[0] == "X" else list(b[2]) for b in bps],
            "breakpoint_status": [status[b[0]] for b in bps],
            "pieces": [{"interval": [_bp_json(bps[i]), _bp_json(bps[k])], "pattern": list(p)} for i, k, p in pieces],
            "method": method, "exact": all(b[0] == "P" for b in bps),
            "complete": all(b[0] != "X" for b in bps), "tol": tol, "curve": curve_json, "convention": conv}


def _check_exact(P, polys, dpolys, ev, table):
    """Validate the exact fine partition; return (atoms with patterns as index lists, points)."""
    pts, at, opn = ev["points"], ev["at"], ev["open"]
    if len(pts) < 2 or len(at) != len(pts) or len(opn) != len(pts) - 1:
        raise Invalid("evidence.points / at / open do not fit together")
    points = [R.point(j) for j in pts]
    if points[0] != 0 or points[-1] != 1:
        raise Invalid("the fine partition must start at 0 and end at 1")
    for a, b in zip(points, points[1:]):
        if not R.less(a, b):
            raise Invalid("the fine partition is not increasing")
    for k, (a, pat) in enumerate(zip(points, at)):
        want = table.pattern(pat, f"point {k}")
        got = S.pattern_at(P, polys, dpolys, a) if isinstance(a, fmpq) else R.qt_walk(P, polys, sign=R.rf_sign(a))[0]
        if tuple(got) != want:
            raise Invalid(f"the pattern at point {k} is not the one the index rules choose")
    for k, pat in enumerate(opn):
        a, b = points[k], points[k + 1]
        want = table.pattern(pat, f"open piece {k}")
        _, sw, divs, _ = R.qt_walk(P, polys, pieces=want)
        for poly in [v.n for vals in sw for v in vals if not v.n.is_zero()] + divs:
            if poly.degree() > 0 and not R.no_root(poly, a, b):
                raise Invalid(f"a switching function or divisor vanishes inside open piece {k}")
        if tuple(S.pattern_at(P, polys, dpolys, R.between(a, b))) != want:
            raise Invalid(f"the pattern on open piece {k} is not the one the index rules choose")
    atoms = [("P", points[0], tuple(at[0]))]
    for k, pat in enumerate(opn):
        atoms += [("O", tuple(pat)), ("P", points[k + 1], tuple(at[k + 1]))]
    return atoms, points


def _curve(cert, P):
    claim = cert["claim"]
    coeffs = [C.exact_vector(v, P.n_inputs, "a coefficient of claim.curve") for v in claim["curve"]]
    if "from" in claim or "to" in claim:
        x = C.exact_vector(claim.get("from", []), P.n_inputs, "claim.from")
        y = C.exact_vector(claim.get("to", []), P.n_inputs, "claim.to")
        if coeffs != [x, [b - a for a, b in zip(x, y)]]:
            raise Invalid("claim.curve is not the segment from claim.from to claim.to")
    polys = [fmpq_poly([v[i] for v in coeffs]) for i in range(P.n_inputs)]
    return polys, [p.derivative() for p in polys]


def _partition_prec(cert, tol):
    """Segment and integral: prec is null for the exact method; for the ball method where the checker starts
    every cell and cell end, a power of two from max(128, tol + 64) (the certifiers' start) to 4096, 4096 when a
    cluster is left.  The checker climbs its ladder from there wherever its own rounding needs more, so every
    value of the range proves the same cells (verify/certificates/__init__.py: harmless by definition)."""
    method, p = cert["claim"]["method"], cert["prec"]
    if method == "exact":
        C.prec_null(cert, "the exact method holds no balls computed at a precision")
        return None
    low = 1 << (max(128, tol + 64) - 1).bit_length()
    if p not in C.PRECS or p < low:
        raise Invalid(f"prec {p!r} must be the precision of the ball cells: a power of two from {low} to "
                      f"{C.PREC_CAP}")
    return p


def _partition(cert, P, tol, prec):
    """Validate the partition evidence; return (polys, dpolys, table, bps, pieces, extra) where extra is
    the fine points (exact) or the cells (ball)."""
    ev, method = cert["evidence"], cert["claim"]["method"]
    polys, dpolys = _curve(cert, P)
    table = C.PieceTable(ev, P)
    if ("cells" in ev) != (method == "ball"):
        raise Invalid(f"the evidence is not that of the {method} method")
    if method == "exact":
        with ctx.workprec(128):
            atoms, extra = _check_exact(P, polys, dpolys, ev, table)
    else:
        atoms, extra = S.check_ball(P, polys, dpolys, ev, table, tol, prec)
    bps, pieces = _merge(atoms)
    return polys, dpolys, table, bps, pieces, extra


@register("segment")
def check_segment(cert):
    P = C.program(cert)
    claim = cert["claim"]
    tol = claim["tol"]
    prec = _partition_prec(cert, tol)
    polys, dpolys, table, bps, pieces, _ = _partition(cert, P, tol, prec)
    own = _partition_json(bps, pieces, claim["method"], tol, claim["curve"], claim["convention"])
    C.same(cert["result"], own, "result")
    C.same(cert["verdict"], "PROVED" if own["complete"] else "UNDECIDED", "verdict")
    table.check_used()


# --------------------------------------------------------------------------------------- the integral

def _f_at(P, polys, dpolys, t, pieces=None):
    """f (or the frozen f_pieces) at gamma(t), t rational: exact or a ball."""
    xs, ts = S.at_point(polys, dpolys, t)
    if pieces is None:
        return K.Frozen(P, xs).outputs()[0]
    return S.ball_walk(P, xs, ts, pieces=pieces)[1]


def _rf_at(F, a, width):
    """F (an R.RF) at a (rational or algebraic): exact, or a ball after refining a below ``width``."""
    if isinstance(a, fmpq):
        return F.value(a)
    if a.sign(F.d) == 0:
        raise Invalid("a piece's function has a pole at a breakpoint")
    while a.hi - a.lo > width:
        a.refine()
    X = a.ball()
    return arb_poly(F.n)(X) / arb_poly(F.d)(X)


def _sub(a, b):
    return a - b if isinstance(a, fmpq) and isinstance(b, fmpq) else arb(a) - arb(b)


def _exact_jumps(P, polys, table, bps, pieces):
    """The first jump along the exact partition, in the certifier's order (each piece, its left end then its
    right end): the piece's rational function has a pole at the end, or its value there differs from the
    program's.  (discontinuity dict or None, the pieces' rational functions)."""
    fns = []
    for i, j, pat in pieces:
        F = R.qt_walk(P, polys, pieces=table.pattern(list(pat), "a piece"))[3]
        fns.append(F)
        for end in (bps[i][1], bps[j][1]):
            G = R.qt_walk(P, polys, sign=R.rf_sign(end))[3]
            if R.sign_at(F.d, end) == 0:
                return {"t": R.point_json(end), "reason": "the piece's function has a pole there",
                        "pattern": list(pat)}, fns
            if R.sign_at((F - G).n, end) != 0:
                return {"t": R.point_json(end), "reason": "the value of the adjacent piece differs from the value at "
                        "the point", "pattern": list(pat)}, fns
    return None, fns


def _differ(P, polys, table, pa, pb, lo, hi):
    """Do f_pa and f_pb certainly differ at t = lo = hi (or over the cell [lo, hi])?  True, False or None:
    balls first, then the kernel's exact affine forms (a rational difference is decided exactly)."""
    X = _ball_of(lo, hi)
    coords = [p(lo) if lo == hi or p.degree() <= 0 else R.horner(p, X) for p in polys]
    pcs = [table.pattern(list(pat), "a jump") for pat in (pa, pb)]
    try:
        u, v = (K.Frozen(P, coords, list(pc), want_grad=False).outputs()[0] for pc in pcs)
        s = K.sign(_sub(u, v))
    except (K.CannotDecide, K.Undefined):
        s = None
    if s is None:        # exact forms at the same inputs: a difference whose atoms cancel is exact
        try:
            ids, forms = {}, []
            for pc in pcs:
                F = K.Frozen(P, coords, list(pc), want_grad=False)
                forms.append(Forms(P, F.val, list(pc), symbolic=False, ids=ids))
            d = forms[0].lin(((Q1, forms[0].output(0)), (-Q1, forms[1].output(0))))
            s = K.sign(d.const) if not d.terms else None
        except (K.CannotDecide, K.Undefined):
            s = None
    return None if s is None else s != 0


def _ball_jumps(P, polys, table, cells, pts):
    """The first jump along the ball partition in t order, as the certifier scans: at each cell boundary
    (an adjacent region's pattern against the pattern at the point), in each simple cell (a side's pattern
    against the pattern at the root, over the cell)."""
    for i in range(len(cells) + 1):
        t, at = K.q(pts[i]["t"]), pts[i]["pattern"]
        for c in (cells[i - 1][3] if i > 0 else None, cells[i][3] if i < len(cells) else None):
            if c is not None and c["kind"] == "region" and c["pattern"] != at and \
                    _differ(P, polys, table, c["pattern"], at, t, t):
                return {"t": K.qs(t), "reason": "the value of the adjacent piece differs from the value at the point",
                        "pattern": list(c["pattern"])}
        if i < len(cells) and cells[i][0] == "simple":
            _, lo, hi, c = cells[i]
            for side in (c["patterns"][0], c["patterns"][2]):
                if side != c["patterns"][1] and _differ(P, polys, table, side, c["patterns"][1], lo, hi):
                    return {"t": _enclosure(lo, hi), "reason": "the adjacent pieces' values at the switch point "
                            "differ", "pattern": list(side)}
    return None


def _terms_exact(P, table, bps, pieces, fns, terms, tol):
    width = fmpq(1, 2 ** (tol + 40))
    if len(terms) != len(pieces):
        raise Invalid("one term per piece of the partition is expected")
    for k, ((i, j, pat), F, tm) in enumerate(zip(pieces, fns, terms)):
        a, b = bps[i][1], bps[j][1]
        C.same(tm, {"lo": R.point_json(a), "hi": R.point_json(b), "value": tm["value"], "pattern": list(pat)},
               f"evidence/terms/{k}")
        _contains(tm["value"], _sub(_rf_at(F, b, width), _rf_at(F, a, width)), f"term {k}")


def _terms_ball(P, polys, dpolys, table, cells, terms):
    """Expected terms: runs of region cells with one pattern (checked by FTC), then each simple / cluster cell
    (width times the hull of the checker's derivative enclosures)."""
    expect, run = [], []
    for kind, lo, hi, c in cells:
        if kind == "region":
            if run and run[-1][3]["pattern"] != c["pattern"]:
                expect.append(("piece", run[0][1], run[-1][2], run[0][3]["pattern"]))
                run = []
            run.append((kind, lo, hi, c))
            continue
        if run:
            expect.append(("piece", run[0][1], run[-1][2], run[0][3]["pattern"]))
            run = []
        pats = [c["patterns"][0], c["patterns"][2]] if kind == "simple" else c["candidates"]
        expect.append((kind, lo, hi, list({tuple(p): p for p in pats}.values())))
    if run:
        expect.append(("piece", run[0][1], run[-1][2], run[0][3]["pattern"]))
    if len(expect) != len(terms):
        raise Invalid("the terms do not follow the cells of the partition")
    for k, ((kind, lo, hi, pats), tm) in enumerate(zip(expect, terms)):
        if kind == "piece":
            C.same(tm, {"lo": K.qs(lo), "hi": K.qs(hi), "value": tm["value"], "pattern": pats}, f"evidence/terms/{k}")
            pcs = table.pattern(pats, f"term {k}")
            own = _sub(_f_at(P, polys, dpolys, hi, pcs), _f_at(P, polys, dpolys, lo, pcs))
            _contains(tm["value"], own, f"term {k}")
            continue
        C.same(tm, {"lo": K.qs(lo), "hi": K.qs(hi), "value": tm["value"], "kind": kind, "patterns": pats},
               f"evidence/terms/{k}")
        xs, ts = S.over_cell(polys, dpolys, lo, hi)
        hull = None
        for p in pats:
            d = arb(S.ball_walk(P, xs, ts, pieces=table.pattern(p, f"term {k}"))[2])
            hull = d if hull is None else hull.union(d)
        _contains(tm["value"], arb(0).union(arb(hi - lo)) * hull, f"term {k}")


def _show(t):
    return t if isinstance(t, str) else f"[{t['lo']}, {t['hi']}]"


@register("integral")
def check_integral(cert):
    P = C.program(cert)
    claim, ev, res = cert["claim"], cert["evidence"], cert["result"]
    tol = claim["tol"]
    if P.n_outputs != 1:
        raise Invalid("the integral identity is about a program with one output")
    prec = _partition_prec(cert, tol)
    polys, dpolys, table, bps, pieces, extra = _partition(cert, P, tol, prec)
    work = 1 << (2 * max(128, tol + 64) - 1).bit_length()    # the checker's own enclosures: tighter than tol
    method, terms, lhs = claim["method"], ev["terms"], res["lhs"]
    with ctx.workprec(work):
        # f at the ends is f_s with the pattern s derived there (by values, or by the exact decisions stated)
        ends = [table.pattern(list(bps[i][2]), "an end of the curve") for i in (-1, 0)]
        _contains(lhs, _sub(_f_at(P, polys, dpolys, Q1, ends[0]), _f_at(P, polys, dpolys, Q0, ends[1])), "lhs")
        if method == "exact":
            disc, fns = _exact_jumps(P, polys, table, bps, pieces)
        else:
            disc = _ball_jumps(P, polys, table, extra, ev["points"])
        pole = disc is not None and disc["reason"] == "the piece's function has a pole there"
        if pole:
            if terms:
                raise Invalid("a piece with a pole has no right side: evidence.terms must be empty")
        elif method == "exact":
            _terms_exact(P, table, bps, pieces, fns, terms, tol)
        else:
            _terms_ball(P, polys, dpolys, table, extra, terms)
    rhs = diff = None
    if not pole:
        lo = hi = Q0
        for tm in terms:
            a, b = _iv(tm["value"])
            lo, hi = lo + a, hi + b
        rhs = _iv_json(lo, hi)
        (alo, ahi), (blo, bhi) = _iv(lhs), _iv(rhs)
        diff = _iv_json(alo - bhi, ahi - blo)
    if disc is not None:
        verdict, why = "REFUTED", f"f is discontinuous at t = {_show(disc['t'])}: it is not in the class S"
    else:
        (alo, ahi), (blo, bhi) = _iv(lhs), _iv(rhs)
        dlo, dhi = alo - bhi, ahi - blo
        if dlo > 0 or dhi < 0:
            verdict, why = "REFUTED", "the two sides certainly differ: f is not in the class S"
        elif dhi - dlo < fmpq(1, 2 ** tol):
            verdict, why = "PROVED", ""
        else:
            verdict, why = "UNDECIDED", f"the difference encloses 0 but is not narrower than 2^-{tol}"
    own = {"verdict": verdict, "lhs": lhs, "rhs": rhs, "difference": diff,
           "exact": isinstance(lhs, str) and isinstance(rhs, str), "tol": tol,
           "breakpoints": [_bp_json(b) for b in bps], "method": method, "curve": claim["curve"],
           "convention": claim["convention"]}
    if disc is not None:
        own["discontinuity"] = disc
    if why:
        own["reason"] = why
    C.same(res, own, "result")
    C.same(cert["verdict"], verdict, "verdict")
    table.check_used()


# --------------------------------------------------------------------------------- differentiability

@register("differentiable")
def check_differentiable(cert):
    from ..certificates import has_balls
    P = C.program(cert)
    ev, res = cert["evidence"], cert["result"]
    x = C.point(cert, P)
    table = C.PieceTable(ev, P)
    prec = C.prec_of_balls(cert, has_balls(res))

    def walk():
        signs = []

        def decide(pos, j, v, t, chosen, val=None):
            s = K.sign(v)
            if s is None:
                raise K.CannotDecide(f"the checker cannot decide switching function {j + 1} of nonsmooth "
                                     f"equation {pos + 1}")
            if j == 0:
                signs.append([])
            signs[pos].append(s)
            return s
        return S.ball_walk(P, x, [Q0] * len(x), decide)[0], signs
    try:
        chosen, signs = C.decided(lambda p: walk())
    except K.CannotDecide:
        # nothing is decided: the certificate may state no pattern, sign or number
        C.same(res, {"differentiable": False, "pattern": None, "value": None, "jacobian": None, "blocking": None},
               "result")
        C.same(ev["signs"], None, "evidence/signs")
        C.same(cert["verdict"], "UNDECIDED", "verdict")
        table.check_used()
        return
    C.same(ev["signs"], signs, "evidence/signs")
    zero = [(pos, j) for pos, ss in enumerate(signs) for j, s in enumerate(ss) if s == 0]
    eqs = [k for k, e in enumerate(P.eqns) if e.prim not in K.SMOOTH]
    blocking = None if not zero else {"nonsmooth": zero[0][0], "equation": eqs[zero[0][0]], "switch": zero[0][1]}
    pattern = table.indices(chosen, "the pattern")
    C.same({k: res[k] for k in ("differentiable", "pattern", "blocking")},
           {"differentiable": not zero, "pattern": pattern, "blocking": blocking}, "result")
    C.same(cert["verdict"], "PROVED" if not zero else "UNDECIDED", "verdict")

    def tape():             # reverse mode, as AD: the cotangents of one variable add up exactly
        return K.Tape(P, x, list(chosen))          # (tanh(u) - tanh(u) sends 1 - 1 = 0 to u)
    T = C.decided(lambda p: tape())
    vals, jac = T.outputs(), T.jacobian(list(chosen))
    if not isinstance(res["value"], list) or len(res["value"]) != len(vals) or not all(
            _number(s, v, (lambda i=i: tape().outputs()[i]), prec)
            for i, (s, v) in enumerate(zip(res["value"], vals))):
        raise Invalid("the value is not the program's value at the point")
    stated = res["jacobian"]
    if not isinstance(stated, list) or len(stated) != len(jac) or not all(
            len(r) == len(o) and all(_number(s, v, (lambda i=i, j=j: tape().jacobian(list(chosen))[i][j]), prec)
                                     for j, (s, v) in enumerate(zip(r, o)))
            for i, (r, o) in enumerate(zip(stated, jac))):
        raise Invalid("the Jacobian is not the selection Jacobian of the stated pattern")
    table.check_used()


def _number(stated, own, compute, prec):
    if isinstance(stated, str):
        q = own if isinstance(own, fmpq) else C.exact_value(own)
        return q is not None and K.q(stated) == q
    return prec is not None and C.number_ok(stated, compute, prec)
