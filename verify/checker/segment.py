"""Checks for segment, integral and differentiable certificates, re-derived with kernel.py and the small exact
tools below (rational functions of t, Sturm sequences, real algebraic numbers), never with verify.certify,
verify.evaluate, verify.ad or the primitives' rules.

Segment, method "exact" (rational programs): at every point of the fine partition the index rules, replayed
by the checker (exactly, at a rational or algebraic t), choose the stated pieces; on every open piece the
frozen program's switching functions and divisors, computed by the checker as rational functions of t, have
no root (Sturm counts), and the index rules choose the stated pieces at a rational sample point: then they
choose them on the whole piece (every switching function keeps its sign).  Method "ball": every cell is
re-evaluated in balls over the whole cell (a region: all signs decided, by enclosure, mean value form or
monotonicity; a simple cell: one monotone switching function with opposite signs at the ends, the three
patterns re-derived with its sign forced; a cluster: the candidate patterns re-enumerated).  In both cases
the breakpoints and pieces of the result are re-derived by merging and compared as JSON.

Integral: the partition as above, then every term of the right side by the fundamental theorem of calculus
(f_s(gamma(b)) - f_s(gamma(a)) on a piece, exactly or in balls that the stated enclosure must contain), cell
contributions as width times the hull of the checker's forward-mode derivative, the left side by the
checker's own evaluation; rhs, difference and verdict are re-derived exactly from the stated numbers.
Differentiable: every switching function's sign at the point, the pattern and the selection Jacobian.
"""
from flint import arb, arb_poly, arb_series, ctx, fmpq, fmpq_poly

from ..numbers.ball import interval_json
from . import Invalid, register
from . import common as C
from . import kernel as K

Q0, Q1 = K.Q0, K.Q1
MAX_REFINE = 2000
RATIONAL = ("add", "sub", "mul", "div", "neg", "pow")


# ------------------------------------------------------------------------------------------- numbers

def _enclosure(lo, hi):
    return interval_json(lo, hi)


_iv = C.stated_bounds
_contains = C.contains
_ball_of = C.ball_of


def _horner(p, x):
    acc = Q0
    for c in reversed(p.coeffs()):
        acc = acc * x + c
    return acc


def _iv_json(lo, hi):
    return interval_json(lo, hi)


# ------------------------------------------------------------------------ rational functions of t

class _RF:
    """n / d, fmpq_poly, reduced, d monic."""
    __slots__ = ("n", "d")

    def __init__(self, n, d=None):
        d = fmpq_poly([1]) if d is None else d
        if d.is_zero():
            raise Invalid("division by the zero function")
        if not n.is_zero() and d.degree() > 0:
            g = n.gcd(d)
            n, d = n // g, d // g
        if n.is_zero():
            d = fmpq_poly([1])
        c = d.leading_coefficient()
        self.n, self.d = n / c, d / c

    @staticmethod
    def of(x):
        return x if isinstance(x, _RF) else _RF(fmpq_poly([x]))

    def __add__(self, o):
        o = _RF.of(o)
        return _RF(self.n * o.d + o.n * self.d, self.d * o.d)
    __radd__ = __add__

    def __neg__(self):
        return _RF(-self.n, self.d)

    def __sub__(self, o):
        return self + (-_RF.of(o))

    def __rsub__(self, o):
        return _RF.of(o) - self

    def __mul__(self, o):
        o = _RF.of(o)
        return _RF(self.n * o.n, self.d * o.d)
    __rmul__ = __mul__

    def __truediv__(self, o):
        o = _RF.of(o)
        return _RF(self.n * o.d, self.d * o.n)

    def __rtruediv__(self, o):
        return _RF.of(o) / self

    def value(self, t):
        dv = self.d(t)
        if dv == 0:
            raise Invalid("a rational function of the certificate has a pole at a stated point")
        return self.n(t) / dv


def _qt_walk(P, polys, pieces=None, sign=None):
    """Evaluate the rational program P along the curve over Q(t): with ``pieces`` frozen, or choosing pieces
    by the kernel's index rules with ``sign(RF)``.  Returns (chosen pieces, switch values per nonsmooth
    equation, divisor numerators, output RF)."""
    val = [_RF(p) for p in polys] + [None] * (P.n_vars - P.n_inputs)
    chosen, sw, divs = [], [], []
    for e in P.eqns:
        xs = [_RF.of(a.value) if not isinstance(a, int) else val[a] for a in e.ins]
        params = dict(e.params)
        if e.prim in K.SMOOTH:
            if e.prim not in RATIONAL:
                raise Invalid(f"{e.prim} in a certificate of the exact method (rational programs only)")
            if e.prim == "div" or (e.prim == "pow" and params["n"] < 0):
                b = xs[1] if e.prim == "div" else xs[0]
                if b.n.is_zero():
                    raise Invalid("the program divides by the zero function")
                divs.append(b.n)
                if sign is not None and sign(b) == 0:
                    raise Invalid("the program is not defined at a stated point (division by zero)")
            if e.prim == "pow":
                n = params["n"]
                y = _RF.of(Q1)
                for _ in range(abs(n)):
                    y = y * xs[0]
                y = y if n >= 0 else 1 / y
            else:
                a = xs[0]
                y = {"add": lambda: a + xs[1], "sub": lambda: a - xs[1], "mul": lambda: a * xs[1],
                     "div": lambda: a / xs[1], "neg": lambda: -a}[e.prim]()
            val[e.outs[0]] = y
            continue
        vals = [_RF.of(v) for v in _switch_values(e, xs)]
        sw.append(vals)
        if pieces is not None:
            piece = pieces[len(chosen)]
        else:
            piece = K.choose(e.prim, params, len(e.ins), [sign(v) for v in vals])
        chosen.append(piece)
        for o, y in zip(e.outs, K.apply_piece(piece, xs)):
            val[o] = _RF.of(y)
    out = P.outputs[0]
    return chosen, sw, divs, (_RF.of(out.value) if not isinstance(out, int) else val[out])


def _switch_values(e, xs, ts=None):
    """The switching functions of equation e at inputs xs (terms on the same variable merged, so max(v, v) has
    the exact switch 0); with tangents ts, the pairs (value, tangent)."""
    out = []
    for coefs, const in K.switches(e.prim, dict(e.params), len(e.ins)):
        merged = {}
        for j, c in enumerate(coefs):
            a = e.ins[j]
            key = ("v", a) if isinstance(a, int) else ("l", j)
            first, tot = merged.get(key, (j, Q0))
            merged[key] = (first, tot + c)
        acc, tacc = const, Q0
        for j, c in merged.values():
            if c != 0:
                acc = acc + c * xs[j]
                if ts is not None:
                    tacc = tacc + c * ts[j]
        out.append(acc if ts is None else (acc, tacc))
    return out


# ------------------------------------------------------------------- Sturm counts, algebraic numbers

def _squarefree(P):
    g = P.gcd(P.derivative())
    return P // g if g.degree() > 0 else P


def _count_open(P, a, b):
    """Distinct real roots of the nonzero polynomial P in the open interval (a, b), a < b rational (Sturm)."""
    S = _squarefree(P)
    if S.degree() <= 0:
        return 0
    seq = [S, S.derivative()]
    while seq[-1].degree() > 0:
        r = -(seq[-2] % seq[-1])
        if r.is_zero():
            break
        seq.append(r)

    def var(x):
        signs = [s for s in ((v > 0) - (v < 0) for v in (p(x) for p in seq)) if s]
        return sum(1 for u, v in zip(signs, signs[1:]) if u != v)
    return var(a) - var(b) - (1 if S(b) == 0 else 0)


class _Alg:
    """The root of the squarefree polynomial q in (lo, hi), validated: q(lo) q(hi) < 0 and one root inside."""

    def __init__(self, j):
        try:
            self.q = fmpq_poly([int(c) for c in j["poly"]])
            self.lo, self.hi = (K.q(s) for s in j["interval"])
        except (KeyError, TypeError, ValueError):
            raise Invalid(f"malformed algebraic number {j!r}") from None
        q = self.q
        if q.degree() < 2 or q.gcd(q.derivative()).degree() > 0:
            raise Invalid("an algebraic breakpoint's polynomial must be squarefree of degree >= 2")
        self.slo = (q(self.lo) > 0) - (q(self.lo) < 0)
        shi = (q(self.hi) > 0) - (q(self.hi) < 0)
        if not (self.lo < self.hi and self.slo * shi < 0 and _count_open(q, self.lo, self.hi) == 1):
            raise Invalid(f"the interval of {j!r} does not isolate one root of its polynomial")
        enc = interval_json(self.lo, self.hi)
        if j.get("lo") != enc["lo"] or j.get("hi") != enc["hi"] or \
                set(j) != {"lo", "hi", "poly", "interval"}:
            raise Invalid(f"the decimal bounds of {j!r} are not those of its interval")
        self.json = j

    def refine(self):
        m = (self.lo + self.hi) / 2
        s = (self.q(m) > 0) - (self.q(m) < 0)
        if s == 0:
            raise Invalid("an algebraic breakpoint is rational")
        if s == self.slo:
            self.lo = m
        else:
            self.hi = m

    def sign(self, P):
        if P.is_zero():
            return 0
        g = P.gcd(self.q)
        if g.degree() > 0 and ((g(self.lo) > 0) != (g(self.hi) > 0)):
            return 0
        for k in range(MAX_REFINE):
            with ctx.workprec(64 + 2 * k):
                v = arb_poly(P)(_ball_of(self.lo, self.hi))
                if v > 0:
                    return 1
                if v < 0:
                    return -1
            self.refine()
        raise K.CannotDecide("the checker cannot decide a sign at an algebraic point")

    def ball(self):
        return _ball_of(self.lo, self.hi)


def _point(j):
    return K.q(j) if isinstance(j, str) else _Alg(j)


def _sign_at(P, a):
    if isinstance(a, fmpq):
        v = P(a)
        return (v > 0) - (v < 0)
    return a.sign(P)


def _rf_sign(a):
    return lambda f: _sign_at(f.n, a) * _sign_at(f.d, a)


def _less(a, b):
    """Decide a < b (rational or algebraic); equal or undecidable values are Invalid."""
    for _ in range(MAX_REFINE):
        ahi = a if isinstance(a, fmpq) else a.hi
        blo = b if isinstance(b, fmpq) else b.lo
        alo = a if isinstance(a, fmpq) else a.lo
        bhi = b if isinstance(b, fmpq) else b.hi
        if ahi <= blo and not (isinstance(a, fmpq) and isinstance(b, fmpq) and a == b):
            return True
        if bhi <= alo:
            return False
        if isinstance(a, fmpq) and isinstance(b, fmpq):
            return False
        for x in (a, b):
            if isinstance(x, _Alg):
                x.refine()
    raise Invalid("two breakpoints cannot be ordered (equal?)")


def _isolated(P, a):
    """Refine the algebraic a until P has no root in (a.lo, a.hi) other than possibly a itself."""
    z = 1 if a.sign(P) == 0 else 0
    for _ in range(MAX_REFINE):
        if _count_open(P, a.lo, a.hi) == z:
            return
        a.refine()
    raise Invalid("cannot isolate a root from an algebraic breakpoint")


def _no_root(P, a, b):
    """True when the nonzero polynomial P has no root in the open interval (a, b)."""
    if isinstance(a, _Alg):
        _isolated(P, a)
    if isinstance(b, _Alg):
        _isolated(P, b)
    lo = a if isinstance(a, fmpq) else a.hi
    hi = b if isinstance(b, fmpq) else b.lo
    if not lo < hi:
        _less(a, b)                       # refines until separated
        lo = a if isinstance(a, fmpq) else a.hi
        hi = b if isinstance(b, fmpq) else b.lo
    n = _count_open(P, lo, hi)
    n += 1 if isinstance(a, _Alg) and P(lo) == 0 else 0
    n += 1 if isinstance(b, _Alg) and P(hi) == 0 else 0
    return n == 0


def _between(a, b):
    lo = a if isinstance(a, fmpq) else a.hi
    hi = b if isinstance(b, fmpq) else b.lo
    if not lo < hi:
        _less(a, b)
        lo = a if isinstance(a, fmpq) else a.hi
        hi = b if isinstance(b, fmpq) else b.lo
    return (lo + hi) / 2


def _point_json(a):
    return K.qs(a) if isinstance(a, fmpq) else a.json


# ---------------------------------------------------------------------------------- walks in balls

def _coef(x, i):
    """Coefficient i (0: the value, 1: the t-derivative) of a first-order series, or of a constant."""
    if isinstance(x, arb_series):
        c = x.coeffs()
        return c[i] if len(c) > i else arb(0)
    return x if i == 0 else Q0


def _series_power(x, n):
    """x ** n (n >= 0) by repeated squaring."""
    out, base = None, x
    while n:
        if n & 1:
            out = base if out is None else out * base
        n >>= 1
        if n:
            base = base * base
    return Q1 if out is None else out


def _series_value(prim, xs, params):
    """A smooth primitive over first-order Taylor series t -> (value, t-derivative) on a cell (arb_series of
    length 2, the arithmetic whose enclosures prove a sign on a whole cell: f over arb_series([X, 1]) encloses
    f' on X); constants (literals) go to the kernel."""
    if not any(isinstance(x, arb_series) for x in xs):
        return K.smooth_value(prim, xs, params)

    def need_sign(x, allowed, what):
        s = K.sign(_coef(x, 0))
        if s is None:
            raise K.CannotDecide(f"the checker cannot decide {what} over a cell")
        if s not in allowed:
            raise K.Undefined(f"the program is not defined over a cell: {what}")
    try:
        if prim in ("add", "sub", "mul"):
            a, b = xs
            return a + b if prim == "add" else (a - b if prim == "sub" else a * b)
        if prim == "neg":
            return -xs[0]
        if prim == "div":
            need_sign(xs[1], (-1, 1), "a divisor")
            return xs[0] / xs[1]
        x = xs[0]
        if prim == "pow":
            n = params["n"]
            if n < 0:
                need_sign(x, (-1, 1), "a base of a negative power")
                return 1 / _series_power(x, -n)
            return _series_power(x, n)
        if prim in ("log", "sqrt"):
            need_sign(x, (1,), f"the argument of {prim}")
        if prim == "tanh":
            return 1 - 2 / ((2 * x).exp() + 1)
        if prim == "sigmoid":
            return 1 / (1 + (-x).exp())
        return getattr(x, prim)()
    except (ValueError, ZeroDivisionError):
        # python-flint refuses a series division whose leading term is not certainly nonzero
        raise K.CannotDecide(f"{prim} cannot be enclosed over this cell") from None


def _series_walk(P, xs, decide=None, pieces=None, stop=None, consistent=False):
    """_ball_walk over a cell: xs are first-order series (``_series_inputs``); ``decide`` and ``stop`` see the
    (value, derivative) enclosures of the switching functions over the cell.  With ``consistent``, signs that
    no input realizes together (kernel.consistent) raise _Inconsistent instead of choosing a piece."""
    val = list(xs) + [None] * (P.n_vars - P.n_inputs)
    chosen = []
    for e in P.eqns:
        vs = [a.value if not isinstance(a, int) else val[a] for a in e.ins]
        params = dict(e.params)
        if e.prim in K.SMOOTH:
            val[e.outs[0]] = _series_value(e.prim, vs, params)
            continue
        pos = len(chosen)
        sws = [(_coef(v, 0), _coef(v, 1)) for v in _switch_values(e, vs)]
        if stop is not None and stop[0] == pos:
            return sws[stop[1]]
        if pieces is not None and pos < len(pieces):
            piece = pieces[pos]
        else:
            signs = [decide(pos, j, v, t, chosen) for j, (v, t) in enumerate(sws)]
            if consistent and not K.consistent(e.prim, params, len(e.ins), signs):
                raise _Inconsistent()
            piece = K.choose(e.prim, params, len(e.ins), signs)
        chosen.append(piece)
        for o, row in zip(e.outs, piece):
            val[o] = K.apply_piece((row,), vs)[0]
    out = P.outputs[0]
    y = out.value if not isinstance(out, int) else val[out]
    return chosen, _coef(y, 0), _coef(y, 1)


def _series_inputs(polys, lo, hi):
    """gamma over the cell [lo, hi] as first-order series in t (Horner over arb_series([X, 1]))."""
    s = arb_series([_ball_of(lo, hi), 1], prec=2)
    out = []
    for p in polys:
        cs = p.coeffs() or [Q0]
        acc = arb(cs[-1])
        for c in reversed(cs[:-1]):
            acc = acc * s + arb(c)
        out.append(acc)
    return out


def _ball_walk(P, xs, ts, decide=None, pieces=None, stop=None):
    """Evaluate P with values and t-tangents (exact or balls): pieces frozen for the first nonsmooth
    equations, the rest chosen by the kernel's index rules with ``decide(pos, j, value, tangent, chosen)``.
    Returns (chosen pieces, output value, output tangent), or the (value, tangent) of switch ``stop``."""
    val = list(xs) + [None] * (P.n_vars - P.n_inputs)
    tan = list(ts) + [None] * (P.n_vars - P.n_inputs)
    chosen = []
    for e in P.eqns:
        vs = [a.value if not isinstance(a, int) else val[a] for a in e.ins]
        tv = [Q0 if not isinstance(a, int) else tan[a] for a in e.ins]
        params = dict(e.params)
        if e.prim in K.SMOOTH:
            y = K.smooth_value(e.prim, vs, params)
            ps = K.smooth_partials(e.prim, vs, y, params)
            val[e.outs[0]], tan[e.outs[0]] = y, K.dot(ps, tv)
            continue
        pos = len(chosen)
        if stop is not None and stop[0] == pos:
            return _switch_values(e, vs, tv)[stop[1]]
        if pieces is not None and pos < len(pieces):
            piece = pieces[pos]
        else:
            signs = [decide(pos, j, v, t, chosen) for j, (v, t) in enumerate(_switch_values(e, vs, tv))]
            piece = K.choose(e.prim, params, len(e.ins), signs)
        chosen.append(piece)
        for o, (coefs, const) in zip(e.outs, piece):
            val[o] = K.apply_piece(((coefs, const),), vs)[0]
            tan[o] = K.dot(coefs, tv)
    out = P.outputs[0]
    if not isinstance(out, int):
        return chosen, out.value, Q0
    return chosen, val[out], tan[out]


def _strict(pos, j, v, t, chosen):
    s = K.sign(v)
    if s is None:
        raise K.CannotDecide(f"the checker cannot decide switching function {j + 1} of nonsmooth equation "
                             f"{pos + 1}")
    return s


def _at_point(P, polys, dpolys, t):
    return [_horner(p, t) for p in polys], [_horner(p, t) for p in dpolys]


def _over_cell(P, polys, dpolys, lo, hi):
    X = _ball_of(lo, hi)
    return [_horner(p, X) for p in polys], [_horner(p, X) for p in dpolys]


def _pattern_at(P, polys, dpolys, t):
    """The pieces the index rules choose at the rational t (every switch decided, else CannotDecide)."""
    return _ball_walk(P, *_at_point(P, polys, dpolys, t), _strict)[0]


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
    return _point_json(a[1]) if a[0] == "P" else _enclosure(*a[1])


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
    points = [_point(j) for j in pts]
    if points[0] != 0 or points[-1] != 1:
        raise Invalid("the fine partition must start at 0 and end at 1")
    for a, b in zip(points, points[1:]):
        if not _less(a, b):
            raise Invalid("the fine partition is not increasing")
    for k, (a, pat) in enumerate(zip(points, at)):
        want = table.pattern(pat, f"point {k}")
        got = _pattern_at(P, polys, dpolys, a) if isinstance(a, fmpq) else _qt_walk(P, polys, sign=_rf_sign(a))[0]
        if tuple(got) != want:
            raise Invalid(f"the pattern at point {k} is not the one the index rules choose")
    for k, pat in enumerate(opn):
        a, b = points[k], points[k + 1]
        want = table.pattern(pat, f"open piece {k}")
        _, sw, divs, _ = _qt_walk(P, polys, pieces=want)
        for poly in [v.n for vals in sw for v in vals if not v.n.is_zero()] + divs:
            if poly.degree() > 0 and not _no_root(poly, a, b):
                raise Invalid(f"a switching function or divisor vanishes inside open piece {k}")
        if tuple(_pattern_at(P, polys, dpolys, _between(a, b))) != want:
            raise Invalid(f"the pattern on open piece {k} is not the one the index rules choose")
    atoms = [("P", points[0], tuple(at[0]))]
    for k, pat in enumerate(opn):
        atoms += [("O", tuple(pat)), ("P", points[k + 1], tuple(at[k + 1]))]
    return atoms, points


def _cell_value_sign(P, polys, dpolys, t, prefix, pos, j):
    v, _ = _ball_walk(P, *_at_point(P, polys, dpolys, t), pieces=prefix, stop=(pos, j))
    return K.sign(v), v


def _cell_decide(P, polys, dpolys, lo, hi, known, used):
    """decide() over the cell [lo, hi]: an enclosure's sign, or a stated sign proved by the mean value form
    or by monotonicity (tangent without 0, signs at both ends in {s, 0}, not both 0)."""
    def decide(pos, j, v, t, chosen):
        s = K.sign(v)
        want = known.get((pos, j))
        if want is not None:
            used.add((pos, j))
            if s is not None and s != want:
                raise Invalid(f"the stated sign of switching function {j + 1} of nonsmooth equation {pos + 1} is "
                              "wrong")
        if s is not None:
            return s
        if want is None:
            raise K.CannotDecide(f"switching function {j + 1} of nonsmooth equation {pos + 1} is undecided on "
                                 f"[{K.qs(lo)}, {K.qs(hi)}]")
        prefix = list(chosen)
        _, vm = _cell_value_sign(P, polys, dpolys, (lo + hi) / 2, prefix, pos, j)
        if K.sign(vm + t * arb(0, (hi - lo) / 2)) == want:
            return want
        if K.sign(t) in (-1, 1):
            sl = _cell_value_sign(P, polys, dpolys, lo, prefix, pos, j)[0]
            sr = _cell_value_sign(P, polys, dpolys, hi, prefix, pos, j)[0]
            if sl in (want, 0) and sr in (want, 0) and (sl or sr):
                return want
        raise K.CannotDecide(f"the stated sign of switching function {j + 1} of nonsmooth equation {pos + 1} on "
                             f"[{K.qs(lo)}, {K.qs(hi)}] is not proved")
    return decide


def _branches(P, polys, dpolys, lo, hi, cap=256):
    """Every pattern the index rules can choose over [lo, hi], branching on undecided signs (-1, 0, 1), keeping
    only sign vectors that some input realizes at each equation (a weak order for max / min / sort)."""
    xs = _series_inputs(polys, lo, hi)
    found, stack = [], [{}]
    while stack:
        forced = stack.pop()
        state = {}

        def decide(pos, j, v, t, chosen, forced=forced, state=state):
            if (pos, j) in forced:
                return forced[(pos, j)]
            s = K.sign(v)
            if s is None:
                state["open"] = (pos, j)
                raise _Branch()
            return s
        try:
            p = tuple(_series_walk(P, xs, decide, consistent=True)[0])
            if p not in found:
                found.append(p)
        except _Branch:
            stack.extend({**forced, state["open"]: s} for s in (1, 0, -1))
        except _Inconsistent:
            pass
        if len(found) + len(stack) > cap:
            raise K.CannotDecide("too many branches in a cluster")
    return found


class _Branch(Exception):
    pass


class _Inconsistent(Exception):
    pass


def _escalating(fn, prec):
    """fn() at ``prec`` bits, then 2 prec, ... 4096 while the checker's own arithmetic cannot decide (more
    precision never makes a decided sign wrong; certifier and checker round differently)."""
    for p in C.ladder(prec):
        try:
            with ctx.workprec(p):
                return fn()
        except K.CannotDecide:
            if p >= C.PREC_CAP:
                raise


def _check_cell(P, polys, dpolys, table, k, c, lo, hi, tol, prec):
    """Validate one cell of the ball partition; return its atoms."""
    width = fmpq(1, 2 ** tol)
    kind = c["kind"]
    if kind == "region":
        items = c["known"]
        if items != sorted(items) or len({(i[0], i[1]) for i in items}) != len(items):
            raise Invalid(f"cell {k}: malformed sign claims")
        known = {(i[0], i[1]): i[2] for i in items}
        want = table.pattern(c["pattern"], f"cell {k}")

        def region():
            used = set()
            got = _series_walk(P, _series_inputs(polys, lo, hi), _cell_decide(P, polys, dpolys, lo, hi, known, used))[0]
            if tuple(got) != want:
                raise Invalid(f"the pattern on cell {k} is not the one the index rules choose")
            if used != set(known):
                raise Invalid(f"cell {k}: a sign claim is about no switching function on the path")
        _escalating(region, prec)
        return [("O", tuple(c["pattern"]))]
    if kind == "simple":
        if hi - lo >= width:
            raise Invalid(f"simple cell {k} is not narrower than 2^-{tol}")
        pos, j = c["switch"]
        sl, sr = c["signs"]
        pats = c["patterns"]
        if sl * sr != -1:
            raise Invalid(f"simple cell {k}: the signs at its ends must be opposite")
        wants = [table.pattern(pat, f"cell {k}") for pat in pats]

        def simple():
            xs = _series_inputs(polys, lo, hi)
            outs = []
            for s, want in zip((sl, 0, sr), wants):
                def decide(p_, j_, v, t, chosen, s=s):
                    return s if (p_, j_) == (pos, j) else _strict(p_, j_, v, t, chosen)
                outs.append(tuple(_series_walk(P, xs, decide)[0]))
                if outs[-1] != want:
                    raise Invalid(f"a pattern of simple cell {k} is not the one the index rules choose")
            prefix = list(outs[0][:pos])
            v, t = _series_walk(P, xs, pieces=prefix, stop=(pos, j))
            if K.sign(t) not in (-1, 1) or _cell_value_sign(P, polys, dpolys, lo, prefix, pos, j)[0] != sl or \
                    _cell_value_sign(P, polys, dpolys, hi, prefix, pos, j)[0] != sr:
                raise K.CannotDecide(f"simple cell {k}: the switching function is not proved to cross 0 exactly once")
        _escalating(simple, prec)
        return [("O", tuple(pats[0])), ("S", (lo, hi), tuple(pats[1])), ("O", tuple(pats[2]))]
    if hi - lo >= width:
        raise Invalid(f"cluster {k} is not narrower than 2^-{tol}")
    if c["candidates"] != sorted(c["candidates"]):
        raise Invalid(f"the candidate patterns of cluster {k} must be listed in order")
    cands = [table.pattern(pat, f"cell {k}") for pat in c["candidates"]]
    with ctx.workprec(prec):
        mine = _branches(P, polys, dpolys, lo, hi)
    # the claim is "the pattern inside is one of these": the candidates must cover every pattern that signs
    # realizable together give (the certifier may list more: patterns of sign vectors no input realizes)
    if len(set(cands)) != len(cands) or not set(mine) <= set(cands):
        raise Invalid(f"the candidate patterns of cluster {k} do not cover the possible ones")
    return [("X", (lo, hi), tuple(tuple(p) for p in c["candidates"]))]


def _check_ball(P, polys, dpolys, ev, table, tol, prec):
    """Validate the cells; return (atoms, cells as (kind, lo, hi, cell json))."""
    cells, pts = ev["cells"], ev["points"]
    if not cells or len(pts) != len(cells) + 1:
        raise Invalid("evidence.cells / points do not fit together")
    bounds = [K.q(p["t"]) for p in pts]
    if bounds[0] != 0 or bounds[-1] != 1:
        raise Invalid("the cells must cover [0, 1]")
    if any(c["kind"] == "cluster" for c in cells) and prec != C.PREC_CAP:
        raise Invalid(f"a cluster is left only at the precision cap: prec must be {C.PREC_CAP}")
    for k, p in enumerate(pts):
        want = table.pattern(p["pattern"], f"point {k}")
        if _escalating(lambda t=bounds[k]: tuple(_pattern_at(P, polys, dpolys, t)), prec) != want:
            raise Invalid(f"the pattern at cell boundary {k} is not the one the index rules choose")
    atoms = [("P", bounds[0], tuple(pts[0]["pattern"]))]
    own = []
    for k, c in enumerate(cells):
        lo, hi = K.q(c["lo"]), K.q(c["hi"])
        if (lo, hi) != (bounds[k], bounds[k + 1]) or not lo < hi:
            raise Invalid(f"cell {k} does not fit between its boundary points")
        atoms += _check_cell(P, polys, dpolys, table, k, c, lo, hi, tol, prec)
        own.append((c["kind"], lo, hi, c))
        atoms.append(("P", bounds[k + 1], tuple(pts[k + 1]["pattern"])))
    return atoms, own


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
    """Segment and integral: prec is null for the exact method; for the ball method the precision of the cells,
    a power of two at least max(128, tol + 64) (the certifiers' starting precision), 4096 when a cluster is
    left; the checker re-evaluates every cell there."""
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
        atoms, extra = _check_ball(P, polys, dpolys, ev, table, tol, prec)
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
    xs, ts = _at_point(P, polys, dpolys, t)
    if pieces is None:
        return K.Frozen(P, xs).outputs()[0]
    return _ball_walk(P, xs, ts, pieces=pieces)[1]


def _rf_at(F, a, width):
    """F (an _RF) at a (rational or algebraic): exact, or a ball after refining a below ``width``."""
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
        F = _qt_walk(P, polys, pieces=table.pattern(list(pat), "a piece"))[3]
        fns.append(F)
        for end in (bps[i][1], bps[j][1]):
            G = _qt_walk(P, polys, sign=_rf_sign(end))[3]
            if _sign_at(F.d, end) == 0:
                return {"t": _point_json(end), "reason": "the piece's function has a pole there",
                        "pattern": list(pat)}, fns
            if _sign_at((F - G).n, end) != 0:
                return {"t": _point_json(end), "reason": "the value of the adjacent piece differs from the value at "
                        "the point", "pattern": list(pat)}, fns
    return None, fns


def _differ(P, polys, table, pa, pb, lo, hi):
    """Do f_pa and f_pb certainly differ at t = lo = hi (or over the cell [lo, hi])?  True, False or None:
    balls first, then the kernel's exact affine forms (a rational difference is decided exactly)."""
    X = _ball_of(lo, hi)
    coords = [p(lo) if lo == hi or p.degree() <= 0 else _horner(p, X) for p in polys]
    pcs = [table.pattern(list(pat), "a jump") for pat in (pa, pb)]
    try:
        u, v = (K.Frozen(P, coords, list(pc), want_grad=False).outputs()[0] for pc in pcs)
        s = K.sign(_sub(u, v))
    except (K.CannotDecide, K.Undefined):
        s = None
    if s is None:
        forms = K.Forms()
        xs = [forms.input(i, c) for i, c in enumerate(coords)]
        try:
            u, v = (forms.evaluate(P, xs, list(pc))[0] for pc in pcs)
            s = forms.sign(forms.add(u, v, -K.Q1))
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
        C.same(tm, {"lo": _point_json(a), "hi": _point_json(b), "value": tm["value"], "pattern": list(pat)},
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
        xs, ts = _over_cell(P, polys, dpolys, lo, hi)
        hull = None
        for p in pats:
            d = arb(_ball_walk(P, xs, ts, pieces=table.pattern(p, f"term {k}"))[2])
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
        _contains(lhs, _sub(_f_at(P, polys, dpolys, Q1), _f_at(P, polys, dpolys, Q0)), "lhs")
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

        def decide(pos, j, v, t, chosen):
            s = K.sign(v)
            if s is None:
                raise K.CannotDecide(f"the checker cannot decide switching function {j + 1} of nonsmooth "
                                     f"equation {pos + 1}")
            if j == 0:
                signs.append([])
            signs[pos].append(s)
            return s
        return _ball_walk(P, x, [Q0] * len(x), decide)[0], signs
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

    def frozen():
        return K.Frozen(P, x, list(chosen))
    F = C.decided(lambda p: frozen())
    vals, jac = F.outputs(), F.jacobian()
    if not isinstance(res["value"], list) or len(res["value"]) != len(vals) or not all(
            _number(s, v, (lambda i=i: frozen().outputs()[i]), prec)
            for i, (s, v) in enumerate(zip(res["value"], vals))):
        raise Invalid("the value is not the program's value at the point")
    stated = res["jacobian"]
    if not isinstance(stated, list) or len(stated) != len(jac) or not all(
            len(r) == len(o) and all(_number(s, v, (lambda i=i, j=j: frozen().jacobian()[i][j]), prec)
                                     for j, (s, v) in enumerate(zip(r, o)))
            for i, (r, o) in enumerate(zip(stated, jac))):
        raise Invalid("the Jacobian is not the selection Jacobian of the stated pattern")
    table.check_used()


def _number(stated, own, compute, prec):
    if isinstance(stated, str):
        q = own if isinstance(own, fmpq) else C.exact_value(own)
        return q is not None and K.q(stated) == q
    return prec is not None and C.number_ok(stated, compute, prec)
