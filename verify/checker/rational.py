"""The checker's exact tools along a curve: rational functions of t (``RF``) and the rational program walked
over them (``qt_walk``), Sturm counts of real roots, and real algebraic numbers given by a squarefree integer
polynomial and an isolating interval (``Alg``), compared exactly by refinement.  Used by the checks of
segments and integrals (segment.py, cells.py); nothing here rounds a decision."""
from flint import arb_poly, ctx, fmpq, fmpq_poly

from ..numbers.ball import interval_json
from . import Invalid
from . import common as C
from . import kernel as K

Q0, Q1 = K.Q0, K.Q1
MAX_REFINE = 2000
RATIONAL = ("add", "sub", "mul", "div", "neg", "pow")


def horner(p, x):
    """The fmpq_poly p at x (any number the checker computes with)."""
    acc = Q0
    for c in reversed(p.coeffs()):
        acc = acc * x + c
    return acc


# ------------------------------------------------------------------------ rational functions of t

class RF:
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
        return x if isinstance(x, RF) else RF(fmpq_poly([x]))

    def __add__(self, o):
        o = RF.of(o)
        return RF(self.n * o.d + o.n * self.d, self.d * o.d)
    __radd__ = __add__

    def __neg__(self):
        return RF(-self.n, self.d)

    def __sub__(self, o):
        return self + (-RF.of(o))

    def __rsub__(self, o):
        return RF.of(o) - self

    def __mul__(self, o):
        o = RF.of(o)
        return RF(self.n * o.n, self.d * o.d)
    __rmul__ = __mul__

    def __truediv__(self, o):
        o = RF.of(o)
        return RF(self.n * o.d, self.d * o.n)

    def __rtruediv__(self, o):
        return RF.of(o) / self

    def value(self, t):
        dv = self.d(t)
        if dv == 0:
            raise Invalid("a rational function of the certificate has a pole at a stated point")
        return self.n(t) / dv


def rf_smooth(prim, xs, params):
    """A rational smooth primitive over RF values (the divisor already checked not the zero function)."""
    if prim == "pow":
        n = params["n"]
        y = RF.of(Q1)
        for _ in range(abs(n)):
            y = y * xs[0]
        return y if n >= 0 else 1 / y
    a = xs[0]
    return {"add": lambda: a + xs[1], "sub": lambda: a - xs[1], "mul": lambda: a * xs[1],
            "div": lambda: a / xs[1], "neg": lambda: -a}[prim]()


def divisor(prim, xs, params):
    """The RF a rational primitive divides by (None when it divides by nothing); the zero function is Invalid."""
    if prim == "div" or (prim == "pow" and params["n"] < 0):
        b = xs[1] if prim == "div" else xs[0]
        if b.n.is_zero():
            raise Invalid("the program divides by the zero function")
        return b
    return None


def qt_walk(P, polys, pieces=None, sign=None):
    """Evaluate the rational program P along the curve over Q(t): with ``pieces`` frozen, or choosing pieces
    by the kernel's index rules with ``sign(RF)``.  Returns (chosen pieces, switch values per nonsmooth
    equation, divisor numerators, output RF)."""
    val = [RF(p) for p in polys] + [None] * (P.n_vars - P.n_inputs)
    chosen, sw, divs = [], [], []
    for e in P.eqns:
        xs = [RF.of(a.value) if not isinstance(a, int) else val[a] for a in e.ins]
        params = dict(e.params)
        if e.prim in K.SMOOTH:
            if e.prim not in RATIONAL:
                raise Invalid(f"{e.prim} in a certificate of the exact method (rational programs only)")
            b = divisor(e.prim, xs, params)
            if b is not None:
                divs.append(b.n)
                if sign is not None and sign(b) == 0:
                    raise Invalid("the program is not defined at a stated point (division by zero)")
            val[e.outs[0]] = rf_smooth(e.prim, xs, params)
            continue
        vals = [RF.of(v) for v in switch_values(e, xs)]
        sw.append(vals)
        if pieces is not None:
            piece = pieces[len(chosen)]
        else:
            piece = K.choose(e.prim, params, len(e.ins), [sign(v) for v in vals])
        chosen.append(piece)
        for o, y in zip(e.outs, K.apply_piece(piece, xs)):
            val[o] = RF.of(y)
    out = P.outputs[0]
    return chosen, sw, divs, (RF.of(out.value) if not isinstance(out, int) else val[out])


def rational_switch(P, polys, pieces, pos, j):
    """Switching function j of nonsmooth equation ``pos`` along the curve as an exact RF of t, with ``pieces``
    at the nonsmooth equations before it.  Only values it depends on need be rational (an unrelated cos is
    fine); Invalid when one is not.  Its divisors are not checked: the caller's walk over the cell decided
    each one nonzero there before reaching this switching function."""
    val = [RF(p) for p in polys] + [None] * (P.n_vars - P.n_inputs)
    m = 0
    for e in P.eqns:
        xs = [RF.of(a.value) if not isinstance(a, int) else val[a] for a in e.ins]
        if e.prim not in K.SMOOTH and m == pos:
            coefs = K.merged(K.switches(e.prim, dict(e.params), len(e.ins))[j][0], e.ins)
            if any(x is None for x, c in zip(xs, coefs) if c != 0):
                raise Invalid(f"switching function {j + 1} of nonsmooth equation {pos + 1} is not a rational "
                              "function of t: its cone holds a transcendental value")
            xs = [Q0 if x is None else x for x in xs]          # arguments it does not read
            return RF.of(switch_values(e, xs)[j])
        ok = all(x is not None for x in xs)
        if e.prim not in K.SMOOTH:
            if ok:
                for o, y in zip(e.outs, K.apply_piece(pieces[m], xs)):
                    val[o] = RF.of(y)
            m += 1
        elif ok and e.prim in RATIONAL:
            divisor(e.prim, xs, dict(e.params))
            val[e.outs[0]] = rf_smooth(e.prim, xs, dict(e.params))
    raise Invalid(f"nonsmooth equation {pos + 1} does not exist")


def rf_json(F):
    """(numerator, denominator) coefficient strings of an RF, from the constant term (the denominator monic)."""
    return [K.qs(c) for c in F.n.coeffs()], [K.qs(c) for c in F.d.coeffs()]


def switch_values(e, xs, ts=None):
    """The switching functions of equation e at inputs xs (terms on the same variable merged, so max(v, v) has
    the exact switch 0); with tangents ts, the pairs (value, tangent), summed as kernel.combine sums."""
    out = []
    for coefs, const in K.switches(e.prim, dict(e.params), len(e.ins)):
        merged = {}
        for j, c in enumerate(coefs):
            a = e.ins[j]
            key = ("v", a) if isinstance(a, int) else ("l", j)
            first, tot = merged.get(key, (j, Q0))
            merged[key] = (first, tot + c)
        pairs = [(c, j) for j, c in merged.values() if c != 0]
        acc = K.combine([c for c, _ in pairs], const, [xs[j] for _, j in pairs])
        if ts is None:
            out.append(acc)
        else:
            out.append((acc, sum((c * ts[j] for c, j in pairs), Q0)))
    return out


# ------------------------------------------------------------------- Sturm counts, algebraic numbers

def squarefree(P):
    g = P.gcd(P.derivative())
    return P // g if g.degree() > 0 else P


def count_open(P, a, b):
    """Distinct real roots of the nonzero polynomial P in the open interval (a, b), a < b rational (Sturm)."""
    S = squarefree(P)
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


class Alg:
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
        if not (self.lo < self.hi and self.slo * shi < 0 and count_open(q, self.lo, self.hi) == 1):
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
                v = arb_poly(P)(C.ball_of(self.lo, self.hi))
                if v > 0:
                    return 1
                if v < 0:
                    return -1
            self.refine()
        raise K.CannotDecide("the checker cannot decide a sign at an algebraic point")

    def ball(self):
        return C.ball_of(self.lo, self.hi)


def point(j):
    return K.q(j) if isinstance(j, str) else Alg(j)


def sign_at(P, a):
    if isinstance(a, fmpq):
        v = P(a)
        return (v > 0) - (v < 0)
    return a.sign(P)


def rf_sign(a):
    return lambda f: sign_at(f.n, a) * sign_at(f.d, a)


def less(a, b):
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
            if isinstance(x, Alg):
                x.refine()
    raise Invalid("two breakpoints cannot be ordered (equal?)")


def isolated(P, a):
    """Refine the algebraic a until P has no root in (a.lo, a.hi) other than possibly a itself."""
    z = 1 if a.sign(P) == 0 else 0
    for _ in range(MAX_REFINE):
        if count_open(P, a.lo, a.hi) == z:
            return
        a.refine()
    raise Invalid("cannot isolate a root from an algebraic breakpoint")


def no_root(P, a, b):
    """True when the nonzero polynomial P has no root in the open interval (a, b)."""
    if isinstance(a, Alg):
        isolated(P, a)
    if isinstance(b, Alg):
        isolated(P, b)
    lo = a if isinstance(a, fmpq) else a.hi
    hi = b if isinstance(b, fmpq) else b.lo
    if not lo < hi:
        less(a, b)                       # refines until separated
        lo = a if isinstance(a, fmpq) else a.hi
        hi = b if isinstance(b, fmpq) else b.lo
    n = count_open(P, lo, hi)
    n += 1 if isinstance(a, Alg) and P(lo) == 0 else 0
    n += 1 if isinstance(b, Alg) and P(hi) == 0 else 0
    return n == 0


def between(a, b):
    lo = a if isinstance(a, fmpq) else a.hi
    hi = b if isinstance(b, fmpq) else b.lo
    if not lo < hi:
        less(a, b)
        lo = a if isinstance(a, fmpq) else a.hi
        hi = b if isinstance(b, fmpq) else b.lo
    return (lo + hi) / 2


def point_json(a):
    return K.qs(a) if isinstance(a, fmpq) else a.json
