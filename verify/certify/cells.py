"""Claim 1 for programs with exp, log, sin, ... (method "ball"): the segment [0, 1] is cut into cells with
rational endpoints, each certified by ball arithmetic over the whole cell.

The program is evaluated over a cell X in first-order Taylor arithmetic (``arb_series([X, 1])``): every value
comes with an enclosure of its t-derivative over X.  A cell is

- a *region* when every switching function has a decided sign over X (or a sign proved by monotonicity:
  derivative enclosure without 0 and decided signs at both ends, zero allowed at one end): the pattern is
  then the same at every point of the open cell;
- a *simple* cell (width < tolerance) holding the unique root of one switching function h of a fixed upstream
  pattern (h monotone on a larger cell with opposite signs at its ends, isolated by interval Newton and
  bisection), with the three patterns for h < 0, h = 0, h > 0 certified by evaluating over the cell with
  that sign forced;
- a *cluster* (width < tolerance) where a sign could not be decided (h' may vanish: a double root, or h may
  vanish identically): its possible patterns are enumerated by branching on every undecided sign, but which
  one holds where is not known.

Every cell endpoint is a rational point whose pattern is evaluated (and must be decided).  The precision
starts at the power of two at least max(128, tol + 64) bits and climbs the ladder (precision.py) for clusters
and undecided points, up to 4096.  A switching function that is undecided on many consecutive tiny cells (it
may vanish identically) gives Undecided.

The sign of a switching function at a rational point is its exact value when its cone is rational there (the
exact system: sin(0) = 0), else its enclosure.  On a cell, each switching function is decided by the most
exact method its own dependencies allow (issues 9 and 21), whatever the rest of the program contains, each
recorded as evidence (evidence.py) that the certificate checker re-derives:

- its dependency cone is rational (+ - * /, integer powers, affine pieces): it is an exact rational function
  of t on the cell (upstream pieces fixed), with exact roots (ratfunc.py, algebraic.py): identically zero,
  a constant sign on the open cell, a rational root where the cell is cut, or an algebraic one isolated in
  a simple cell;
- otherwise its exact form over input atoms (forms.py) with the upstream pieces: 0 is a tie on the whole
  cell, a constant decides, else a tighter enclosure; or it is exactly a rational multiple of a switching
  function decided earlier on the path (the same function under another name: its sign follows, also in
  the three branches of a simple cell);
- at a cell end where it is exactly 0 (a tangency at an end of the segment), the one-sided germ: if its
  Taylor coefficients at the end vanish exactly up to order k - 1 and the k-th Taylor coefficient over the
  whole cell (an enclosure of h^(k)(xi) / k!) has a sign, Taylor's theorem with the Lagrange remainder gives
  its sign on the rest of the cell.

Two switching functions with simple roots at the same point (``relu(sin(x)) + relu(tanh(x))`` at x = 0) are
not a cluster: where the isolated root's cell holds a rational point at which the switching function is
exactly 0 (the simplest rational of the cell), the cell is cut there, and each side is a region.
"""
from dataclasses import dataclass

from flint import arb, arb_series, ctx, fmpq, fmpq_poly, fmpq_series

from .. import progress
from ..errors import DomainError, Undecided
from ..interpret.evaluate import compiled, def_steps
from ..interpret.forms import Forms, TooLarge
from ..interpret.precision import PREC_CAP, certified_start, ladder, next_precision
from ..numbers import get_system
from ..numbers.ball import arb_sign, int_power, json_number
from ..program.ir import eqn_label
from ..program.prims import affine
from . import algebraic as A
from . import ratfunc as R
from .evidence import Exact, Stuck, form_sign, point_walk
from .walk import Open, walk
from .partition import Partition, merge

MAX_CLUSTERS = 24
GERM_ORDER = 6
EXACT = get_system("exact")
MAX_EVALS = 200_000
MAX_BRANCHES = 256
MULTIPLE_CANDIDATES = 64    # earlier switching functions compared with a stuck one (shared switching functions)


def val(x):
    """The value enclosure of a series (or the arb itself)."""
    if isinstance(x, arb):
        return x
    c = x.coeffs()
    return c[0] if c else arb(0)


def der(x):
    """The t-derivative enclosure of a series (0 for a constant)."""
    if isinstance(x, arb):
        return arb(0)
    c = x.coeffs()
    return c[1] if len(c) > 1 else arb(0)


class SeriesSystem:
    """First-order Taylor arithmetic over a cell: values are arb (constants) or arb_series of length 2."""
    name = "series"
    exact = False

    def const(self, q):
        return arb(q)

    def add(self, a, b): return a + b
    def sub(self, a, b): return a - b
    def mul(self, a, b): return a * b
    def div(self, a, b): return _divide(a, b)
    def neg(self, a): return -a

    def pow(self, a, n):
        return int_power(a, n) if n >= 0 else _divide(1, int_power(a, -n))

    def exp(self, a): return a.exp()
    def log(self, a): return a.log()
    def sqrt(self, a): return a.sqrt()
    def sin(self, a): return a.sin()
    def cos(self, a): return a.cos()

    def tanh(self, a):
        if isinstance(a, arb):
            return a.tanh()
        first = _first_order(a, lambda v: v.tanh(), lambda y: 1 - y * y)
        return first if first is not None else 1 - _divide(2, (2 * a).exp() + 1)

    def sigmoid(self, a):
        if isinstance(a, arb):
            return 1 / (1 + (-a).exp())
        first = _first_order(a, lambda v: 1 / (1 + (-v).exp()), lambda y: y * (1 - y))
        return first if first is not None else _divide(1, 1 + (-a).exp())

    def erf(self, a): return a.erf()
    def atan(self, a): return a.atan()

    def _balls_only(self, a, name, fn):
        if isinstance(a, arb):
            return fn(a)
        from ..errors import InputError
        raise InputError(f"cells are enclosed by Taylor series, and {name} has no series implementation here")

    def lgamma(self, a): return self._balls_only(a, "lgamma", lambda b: b.lgamma())
    def erfinv(self, a): return self._balls_only(a, "erfinv", lambda b: b.erfinv())
    def polygamma(self, a, n): return self._balls_only(a, "polygamma", lambda b: get_system("ball").polygamma(b, n))
    def bessel_i(self, a, n): return self._balls_only(a, "bessel_i", lambda b: b.bessel_i(n))
    def pi(self): return arb.pi()

    def sign(self, x):
        return arb_sign(val(x))

    def is_exact_value(self, x):
        return False

    def to_json(self, x):
        return json_number(val(x))


def _first_order(a, f, df):
    """f over the first-order series a = [v, d] as [f(v), f'(v) d] with f' = df(f(v)), or None for longer
    series: the enclosure of tanh(x) - x over a cell then has the derivative (1 - tanh(X)^2 - 1) x', not a
    quotient of exponentials whose overestimate no bisection removes."""
    c = a.coeffs()
    if a.prec > 2:
        return None
    v = c[0] if c else arb(0)
    d = c[1] if len(c) > 1 else arb(0)
    y = f(v)
    return arb_series([y, df(y) * d], prec=2)


def _divide(a, b):
    """a / b over a cell.  python-flint refuses (ValueError) a series division whose divisor's leading term
    is not certainly nonzero, which a wide cell can cause even for a positive divisor (its enclosure is too
    wide): the cell is then undecided and gets split."""
    try:
        return a / b
    except (ValueError, ZeroDivisionError):
        raise Undecided("the divisor's enclosure over the cell contains 0") from None


SERIES = SeriesSystem()


class ExactSeriesSystem:
    """Taylor series of a given order at a rational point, exact while they can be: a value is an fmpq_series
    (rational coefficients) or an arb_series.  exp, sin, cos, tanh, sigmoid of a series whose value there is
    exactly 0 (log and sqrt: exactly 1) have rational Taylor coefficients, computed exactly; anything else
    moves to balls.  A germ's coefficients then vanish exactly where they do (tanh(x) - x at x = 0 to order
    2), which balls of two different computations never show."""
    name = "exact-series"
    exact = False
    ZERO_AT = {"exp": 0, "sin": 0, "cos": 0, "tanh": 0, "sigmoid": 0, "log": 1, "sqrt": 1}

    def __init__(self, order):
        self.n = order + 1

    def const(self, q):
        return fmpq_series([q], prec=self.n)

    def ball(self, x):
        return x if isinstance(x, arb_series) else arb_series([arb(c) for c in x.coeffs()] or [arb(0)], prec=self.n)

    def _both(self, a, b, op):
        if isinstance(a, fmpq_series) and isinstance(b, fmpq_series):
            return op(a, b)
        return op(self.ball(a), self.ball(b))

    def add(self, a, b): return self._both(a, b, lambda x, y: x + y)
    def sub(self, a, b): return self._both(a, b, lambda x, y: x - y)
    def mul(self, a, b): return self._both(a, b, lambda x, y: x * y)
    def neg(self, a): return -a

    def div(self, a, b):
        if isinstance(a, fmpq_series) and isinstance(b, fmpq_series) and _value(b) != 0:
            return a / b
        return _divide(self.ball(a), self.ball(b))

    def pow(self, a, n):
        y = self.const(fmpq(1))
        for _ in range(abs(n)):
            y = self.mul(y, a)
        return y if n >= 0 else self.div(self.const(fmpq(1)), y)

    def _f(self, name, a):
        at = self.ZERO_AT.get(name)
        if isinstance(a, fmpq_series) and at is not None and _value(a) == at:
            if name == "sigmoid":
                return 1 / (1 + (-a).exp())
            return getattr(a, name)()
        return getattr(SERIES, name)(self.ball(a))

    def exp(self, a): return self._f("exp", a)
    def log(self, a): return self._f("log", a)
    def sqrt(self, a): return self._f("sqrt", a)
    def sin(self, a): return self._f("sin", a)
    def cos(self, a): return self._f("cos", a)
    def tanh(self, a): return self._f("tanh", a)
    def sigmoid(self, a): return self._f("sigmoid", a)
    def erf(self, a): return self.ball(a).erf()

    def sign(self, x):
        v = _value(x)
        return (v > 0) - (v < 0) if isinstance(v, fmpq) else arb_sign(v)


def _value(x):
    c = x.coeffs()
    if isinstance(x, fmpq_series):
        return c[0] if c else fmpq(0)
    return c[0] if c else arb(0)


_RATIONAL = ("add", "sub", "mul", "div", "neg", "pow")


class _RFUnchecked(R.RFSystem):
    """Rational functions of t whose divisors are already known to be nonzero on the cell."""

    def sign(self, x):
        return 0 if x.is_zero() else 1


class GiveUp(Undecided):
    """The work budget is exhausted: stop at once."""


@dataclass
class Decided:
    """A pattern over a cell and how its signs were proved beyond the walk's enclosures: ``known`` = ((pos, j,
    sign), ...) by the mean value form or monotonicity (the checker replays these in balls), ``exact`` = Exact
    decisions (evidence.py)."""
    pattern: tuple
    known: tuple = ()
    exact: tuple = ()


@dataclass
class Cell:
    """kind "region" (``pattern``, ``known`` and ``exact`` as in Decided), "simple" (``switch`` = (pos, j),
    ``signs`` = (left, right), ``branches`` = the Decided of the three patterns: left, at the root, right)
    or "cluster" (``candidates``; ``switch``: the switching function no method decided there)."""
    kind: str
    lo: fmpq
    hi: fmpq
    pattern: tuple = None
    known: tuple = ()
    switch: tuple = None
    signs: tuple = None
    branches: tuple = None
    candidates: tuple = None
    exact: tuple = ()

    @property
    def patterns(self):
        return None if self.branches is None else tuple(b.pattern for b in self.branches)


def _series_inputs(curve, lo, hi, order=1):
    """gamma over [lo, hi] as Taylor series in t of the given order (Horner; a constant coordinate stays an
    arb).  At a point (lo = hi) the Taylor coefficients of gamma there are computed exactly first, so that a
    coordinate that is exactly 0 at a rational point is an exact 0 (its germ's coefficients can vanish
    exactly)."""
    if lo == hi:
        shift = fmpq_poly([lo, 1])
        out = []
        for p in curve.polys:
            cs = (p(shift).coeffs() or [fmpq(0)])[:order + 1]
            out.append(arb(cs[0]) if len(cs) == 1 else arb_series([arb(c) for c in cs], prec=order + 1))
        return out
    s = arb_series([A.interval_ball(lo, hi), 1], prec=order + 1)
    out = []
    for p in curve.polys:
        cs = p.coeffs() or [fmpq(0)]
        acc = arb(cs[-1])
        for c in reversed(cs[:-1]):
            acc = acc * s + arb(c)
        out.append(acc)
    return out


class Switches:
    """The ways to decide one switching function of the walk over a cell (see the module docstring): values at
    points and over cells, and the exact methods, each returning an Exact or None."""

    def __init__(self, program, convention, curve):
        self.program, self.convention, self.curve = program, convention, curve
        self.steps = compiled(program, convention)
        self.nonsmooth = [st for st in self.steps if st.sel is not None]
        self.evals = 0
        self._cones, self._rf, self._point_forms = {}, {}, {}
        self.along = [(tuple(p.coeffs()) + (fmpq(0), fmpq(0)))[:2] if p.degree() <= 1 else None
                      for p in curve.polys]

    def eval(self, lo, hi, known, pattern=None, stop=None):
        """The walk over [lo, hi] (a Run, or a switch's series with ``stop``) with the signs ``known`` forced and
        every other sign decided by its enclosure; raises Open for the first one that is not."""
        self.evals += 1
        if self.evals > MAX_EVALS:
            raise GiveUp(f"more than {MAX_EVALS} cell evaluations: giving up")
        path = {}

        def decide(pos, j, v, chosen, env):
            s = known.get((pos, j))
            if s is None:
                s = arb_sign(val(v))
                if s is None:
                    o = Open(pos, j, v, tuple(chosen))
                    o.path = path
                    raise o
            path[(pos, j)] = s
            return s
        return walk(self.program, self.steps, SERIES, _series_inputs(self.curve, lo, hi), decide, pattern, stop)

    def switch_at(self, t, o):
        """Enclosure of the switching function of the Open ``o`` at the point t (upstream frozen), or None."""
        try:
            return val(self.eval(t, t, {}, o.prefix, (o.pos, o.j)))
        except GiveUp:
            raise
        except (DomainError, Undecided, Open):
            return None

    def exact_switch_at(self, t, o):
        """The switching function of ``o`` at the rational t with the upstream pieces frozen, in the exact
        system (an fmpq when its cone is rational there), or None."""
        try:
            return walk(self.program, self.steps, EXACT, self.curve.at(t), None, o.prefix, (o.pos, o.j))
        except (DomainError, Undecided):
            return None

    def sign_at(self, t, o):
        """The sign of ``o``'s switching function at the rational t: its enclosure's, else its exact value's
        (sin(x) at x = 0 exactly), or None."""
        v = self.switch_at(t, o)
        s = None if v is None else arb_sign(v)
        if s is None:
            v = self.exact_switch_at(t, o)
            s = None if v is None else EXACT.sign(v)
        return s

    def point_sign(self, t, o):
        """(sign, relation) of ``o``'s switching function at the rational t: by its value (relation None), else by
        its exact form at the point (the relation, evidence.py); (None, None) when neither decides."""
        s = self.sign_at(t, o)
        if s is not None:
            return s, None
        key = (t, o.pos, o.j, o.prefix, ctx.prec)
        if key not in self._point_forms:
            self._point_forms[key] = self._point_form(t, o)
        return self._point_forms[key]

    def _point_form(self, t, o):
        xs = self.curve.at(t)
        try:
            _, env = walk(self.program, self.steps, EXACT, xs, None, o.prefix, (o.pos, o.j), with_env=True)
            F = Forms(self.program, self.steps, EXACT, env, list(o.prefix), def_steps(self.program, self.steps),
                      inputs=xs)
            s, rel = form_sign(F, F.affine(self.nonsmooth[o.pos].ins, *self.nonsmooth[o.pos].switches[o.j]))
        except (DomainError, Undecided, TooLarge):
            return None, None
        return (s, rel) if s is not None else (None, None)

    def switch_over(self, lo, hi, o):
        try:
            return self.eval(lo, hi, {}, o.prefix, (o.pos, o.j))
        except GiveUp:
            raise
        except (DomainError, Undecided, Open):
            return None

    def value_sign(self, lo, hi, o):
        """(sign, None) on the cell by the mean value form or by monotonicity with decided signs at both ends
        (zero allowed at one): what the certificate checker replays in balls; (sign, Exact "monotone") when an
        end's sign needs its exact form at the point; None."""
        hm = self.switch_at((lo + hi) / 2, o)
        if hm is not None:                      # h(X) in h(m) + h'(X) [-w/2, w/2]
            s = arb_sign(hm + der(o.value) * arb(0, (hi - lo) / 2))
            if s in (-1, 1):
                return s, None
        if arb_sign(der(o.value)) in (-1, 1):
            (sl, rl), (sr, rr) = self.point_sign(lo, o), self.point_sign(hi, o)
            if sl is not None and sr is not None and (sl or sr) and sl * sr >= 0:
                s = sl or sr
                return (s, None) if rl is None and rr is None else (s, Exact(o.pos, o.j, s, "monotone", (rl, rr)))
        return None

    # -- the exact methods
    def cone(self, pos, j):
        """(steps switching function j of nonsmooth equation ``pos`` depends on, True when they are all rational):
        only the arguments it reads (where's branches are not in its cone)."""
        if (pos, j) not in self._cones:
            st = self.nonsmooth[pos]
            dstep = def_steps(self.program, self.steps)
            seen, todo = set(), []
            for i, _ in st.switches[j][0]:
                a = st.ins[i]
                if a.__class__ is int and dstep[a] >= 0 and dstep[a] not in seen:
                    seen.add(dstep[a])
                    todo.append(dstep[a])
            while todo:
                for a in self.steps[todo.pop()].ins:
                    if a.__class__ is int and dstep[a] >= 0 and dstep[a] not in seen:
                        seen.add(dstep[a])
                        todo.append(dstep[a])
            ok = all(self.steps[d].sel is not None or self.steps[d].prim in _RATIONAL for d in seen)
            self._cones[(pos, j)] = (seen, ok)
        return self._cones[(pos, j)]

    def rational_switch(self, o):
        """The switching function of ``o`` as an exact rational function of t (upstream pieces ``o.prefix``), or
        None when its cone is not rational.  Only the cone is evaluated; divisors need no check here (the ball
        walk over the cell decided each one nonzero before reaching this switch)."""
        key = (o.pos, o.j, o.prefix)
        if key not in self._rf:
            self._rf[key] = None
            cone, ok = self.cone(o.pos, o.j)
            if ok:
                self._rf[key] = self._rational_walk(o, cone)
        return self._rf[key]

    def _rational_walk(self, o, cone):
        ns = _RFUnchecked(None)
        env = [R.RF(p) for p in self.curve.polys] + [None] * (self.program.n_vars - self.program.n_inputs)
        m = 0
        for st in self.steps:
            args = None
            if (st.sel is not None and m == o.pos) or st.k in cone:
                args = [env[a] if a.__class__ is int else ns.const(a.value) for a in st.ins]
            if st.sel is not None and m == o.pos:
                return affine(ns, *st.switches[o.j], args)
            if args is not None:
                if st.sel is None:
                    env[st.outs[0]] = st.rule(ns, st.params, *args)
                else:
                    for out, v in zip(st.outs, st.piece(o.prefix[m]).apply(ns, args)):
                        env[out] = v
            m += st.sel is not None
        return None

    def exact_decision(self, lo, hi, h, tolq):
        """("sign", s) on the open cell, ("split", [sub-intervals]) at a rational root, ("root", a, b) an
        isolating interval narrower than ``tolq`` of the first algebraic root, for the rational function h (its
        denominator has no root on the cell: every divisor upstream was decided nonzero there)."""
        if h.is_zero():
            return ("sign", 0)
        roots = [r for r in A.real_roots(h.n, lo, hi) if A.cmp(r, hi) < 0]
        if not roots:
            m = (lo + hi) / 2
            return ("sign", A.sign_at(h.n, m) * (1 if h.d is None else A.sign_at(h.d, m)))
        r = roots[0]
        if isinstance(r, fmpq):
            return ("split", [(lo, r), (r, hi)])
        r.refine_to(tolq / 2)
        return ("root", max(lo, r.lo), min(hi, r.hi))

    def _forms(self, o):
        """Symbolic forms over the cell: identities of functions of t along the curve, the upstream pieces fixed."""
        return Forms(self.program, self.steps, SERIES, o.env, list(o.prefix), def_steps(self.program, self.steps),
                     symbolic=True, along=self.along)

    def form_decision(self, o):
        """The sign of ``o``'s switching function over the cell from its exact form over input atoms with the
        upstream pieces (0 for a linear identity such as tanh(u) - tanh(u)): an Exact "form", or None."""
        if o.env is None:
            return None
        st = self.nonsmooth[o.pos]
        F = self._forms(o)
        try:
            s, rel = form_sign(F, F.affine(st.ins, *st.switches[o.j]))
        except TooLarge:
            return None
        return None if s is None else Exact(o.pos, o.j, s, "form", rel)

    def multiple_decision(self, o):
        """``o``'s switching function is exactly c times one decided earlier on the path (c rational, nonzero):
        an Exact "multiple" with the sign that follows, or None."""
        if o.env is None or not o.path:
            return None
        F = self._forms(o)
        try:
            f = F.affine(self.nonsmooth[o.pos].ins, *self.nonsmooth[o.pos].switches[o.j])
            if f.is_const:
                return None
            for (p, j), s in list(reversed(o.path.items()))[:MULTIPLE_CANDIDATES]:
                g = F.affine(self.nonsmooth[p].ins, *self.nonsmooth[p].switches[j])
                if g.is_const or set(g.terms) != set(f.terms):
                    continue
                a = min(f.terms)
                c = f.terms[a] / g.terms[a]
                d = F.sub(f, F._scale(g, c))
                if d.is_const and d.const == 0:
                    return Exact(o.pos, o.j, s * ((c > 0) - (c < 0)), "multiple", ((p, j), c))
        except TooLarge:
            return None
        return None

    def series(self, lo, hi, o, order):
        """The Taylor series (``order`` + 1 coefficients) of ``o``'s switching function over [lo, hi] (each
        coefficient encloses h^(i)(t) / i! for every t in the cell), or None.  At a point (lo = hi) exact
        rationals where they are (ExactSeriesSystem)."""
        if lo == hi:
            ns = ExactSeriesSystem(order)
            shift = fmpq_poly([lo, 1])
            xs = [fmpq_series(p(shift).coeffs() or [fmpq(0)], prec=order + 1) for p in self.curve.polys]
        else:
            ns, xs = SERIES, _series_inputs(self.curve, lo, hi, order)
        try:
            v = walk(self.program, self.steps, ns, xs, None, o.prefix, (o.pos, o.j))
        except (DomainError, Undecided, ZeroDivisionError, ValueError):
            return None
        c = v.coeffs() if not isinstance(v, arb) else [v]
        return c + [arb(0)] * (order + 1 - len(c))

    def germ_decision(self, lo, hi, o):
        """The sign of ``o``'s switching function on the cell minus an end where it vanishes exactly, from
        the one-sided germ there (see the module docstring): an Exact "germ", or None."""
        for e, side, end in ((hi, -1, "hi"), (lo, 1, "lo")):
            v = self.exact_switch_at(e, o)
            if v is None or EXACT.sign(v) != 0:
                continue
            for k in range(1, GERM_ORDER + 1):
                at = self.series(e, e, o, k)
                if at is None or not all(c == 0 if isinstance(c, fmpq) else c.is_zero() for c in at[:k]):
                    break
                over = self.series(lo, hi, o, k)
                sk = None if over is None else arb_sign(over[k])
                if sk in (-1, 1):
                    return Exact(o.pos, o.j, sk * side ** k, "germ", (end, k))
                if not (at[k] == 0 if isinstance(at[k], fmpq) else at[k].is_zero()):
                    break
        return None

    def rational_decision(self, lo, hi, o, tolq):
        """The sign on the open cell of a switching function whose cone is rational, when the cell holds none of
        its roots: an Exact "rational" with the function, or None."""
        h = self.rational_switch(o)
        if h is None:
            return None
        act = self.exact_decision(lo, hi, h, tolq)
        if act[0] != "sign":
            return None
        return Exact(o.pos, o.j, act[1], "rational", rational_data(h))

    def quick(self, lo, hi, o, tolq):
        """(sign, Exact or None) of ``o``'s switching function on the open cell without cutting it, or None: the
        ball proofs first (None: the checker replays them), then the exact methods."""
        got = self.value_sign(lo, hi, o)
        if got is not None:
            return got
        for method in (lambda: self.rational_decision(lo, hi, o, tolq), lambda: self.form_decision(o),
                       lambda: self.multiple_decision(o), lambda: self.germ_decision(lo, hi, o)):
            e = method()
            if e is not None:
                return e.sign, e
        return None


def rational_data(h):
    """(numerator, denominator) coefficient tuples of the rational function h, reduced with a monic
    denominator (1 for a polynomial)."""
    num = tuple(h.n.coeffs())
    den = (fmpq(1),) if h.d is None else tuple(h.d.coeffs())
    return num, den


class Analytic(Switches):
    """The cells of [0, 1] (see the module docstring): ``cover`` returns them in order."""

    def __init__(self, program, convention, curve, tol, prec):
        super().__init__(program, convention, curve)
        self.tolq = fmpq(1, 2 ** tol)
        self.prec = prec
        self.points = {}
        self.clusters = 0

    def point(self, t):
        """(pattern, [Exact]) at the rational point t, or None when it cannot be decided: every switching
        function decided by balls at this precision, else exactly (the exact system, then exact forms at the
        point, recorded)."""
        key = (t, ctx.prec)
        if key not in self.points:
            try:
                self.points[key] = (self.eval(t, t, {}).pattern, [])
            except GiveUp:
                raise
            except (DomainError, Open, Undecided):
                self.points[key] = self._exact_point(t)
        return self.points[key]

    def _exact_point(self, t):
        xs = self.curve.at(t)
        try:
            r, made = point_walk(self.program, self.steps, EXACT, xs, xs)
        except Stuck:
            return None
        except DomainError as e:
            raise DomainError(f"{self.program.name} at t = {A.number_json(t)} (point "
                              f"{', '.join(A.number_json(v) for v in xs)}): {e}") from None
        except Undecided:
            return None
        return r.pattern, made

    def split(self, lo, hi):
        """A rational point inside (lo, hi) where the pattern is decided (the midpoint when possible)."""
        w = hi - lo
        for k in (8, 7, 9, 6, 10, 5, 11):
            m = lo + w * fmpq(k, 16)
            if self.point(m) is not None:
                return m
        return lo + w / 2

    def halves(self, lo, hi):
        m = self.split(lo, hi)
        return [(lo, m), (m, hi)]

    def process(self, lo, hi):
        """Items (Cell) or sub-intervals (tuple) covering [lo, hi], in order."""
        known, how = {}, {}
        while True:
            try:
                r = self.eval(lo, hi, known)
                return [Cell("region", lo, hi, pattern=r.pattern,
                             known=tuple((p, j, s) for (p, j), s in sorted(known.items()) if (p, j) not in how),
                             exact=tuple(how[k] for k in sorted(how)))]
            except Open as o:
                act = self.analyse(lo, hi, known, o, how)
                if act is not None:
                    return act
            except GiveUp:
                raise
            except Undecided as e:
                if hi - lo < self.tolq:
                    raise Undecided(f"cannot decide that {self.program.name} is defined for t in "
                                    f"[{A.number_json(lo)}, {A.number_json(hi)}]: {e}") from None
                return self.halves(lo, hi)
            except DomainError as e:
                raise DomainError(f"{self.program.name} is not defined for t in [{A.number_json(lo)}, "
                                  f"{A.number_json(hi)}]: {e}") from None

    def analyse(self, lo, hi, known, o, how):
        """Handle an undecided switch: record a sign proved on the cell (return None), or return the
        items/sub-intervals replacing the cell (a cut at a root, an isolated root, halves, a cluster)."""
        q = self.quick(lo, hi, o, self.tolq)
        if q is not None:
            known[(o.pos, o.j)] = q[0]
            if q[1] is not None:
                how[(o.pos, o.j)] = q[1]
            return None
        h = self.rational_switch(o)
        if h is not None:
            act = self.exact_decision(lo, hi, h, self.tolq)
            return act[1] if act[0] == "split" else self.exact_root(lo, hi, o, h, act[1], act[2])
        if arb_sign(der(o.value)) in (-1, 1):
            sl, sr = self.sign_at(lo, o), self.sign_at(hi, o)
            if sl is not None and sr is not None and sl * sr < 0:
                return self.isolate(lo, hi, o, sl, sr)
        cut = self.coincide(lo, hi, lo, hi, o)      # a root at a simple rational point: germs decide its sides
        if cut is not None:
            return cut
        if hi - lo < self.tolq:
            return [self.cluster(lo, hi, o)]
        return self.halves(lo, hi)

    def narrow(self, lo, hi, o, sl, sr):
        """Bisection and interval Newton on the monotone switching function of ``o`` (opposite signs sl, sr at
        lo, hi): (a, b) around its root, or the sub-intervals when a midpoint is exactly the root."""
        a, b = lo, hi
        while b - a >= self.tolq:
            m = (a + b) / 2
            hm = self.switch_at(m, o)
            sm = self.sign_at(m, o)
            if sm == 0 and self.point(m) is not None:
                return [(lo, m), (m, hi)]
            moved = False
            if sm:
                a, b = (m, b) if sm == sl else (a, m)
                moved = True
            ser = self.switch_over(a, b, o) if hm is not None else None
            if ser is not None and arb_sign(der(ser)) in (-1, 1):
                nlo, nhi = A.arb_q(arb(m) - hm / der(ser))
                if a < nlo < b and self.sign_at(nlo, o) == sl:
                    a, moved = nlo, True
                if a < nhi < b and self.sign_at(nhi, o) == sr:
                    b, moved = nhi, True
            if not moved:
                break
        return a, b

    def isolate(self, lo, hi, o, sl, sr):
        """The unique root of the monotone switching function of ``o`` in (lo, hi): an exact rational point, or
        a simple cell narrower than the tolerance."""
        got = self.narrow(lo, hi, o, sl, sr)
        if isinstance(got, list):
            return got
        a, b = got
        if b - a >= self.tolq or self.point(a) is None or self.point(b) is None:
            return self.bracket(lo, hi, a, b, o)
        cell = self.simple(a, b, o, sl, sr)
        if cell is not None:
            return [(lo, a), cell, (b, hi)]
        return self.coincide(lo, hi, a, b, o) or self.bracket(lo, hi, a, b, o)

    def simple(self, a, b, o, sl, sr):
        """The simple cell [a, b] around the root of ``o``'s switching function: the three patterns with its sign
        forced (every other sign decided on the cell), or None when one of them is not decided."""
        branches = []
        for s in (sl, 0, sr):
            try:
                branches.append(self.settle(a, b, {(o.pos, o.j): s}))
            except GiveUp:
                raise
            except (Open, Undecided, DomainError):
                return None
        return Cell("simple", a, b, switch=(o.pos, o.j), signs=(sl, sr), branches=tuple(branches))

    def coincide(self, lo, hi, a, b, o):
        """When the simplest rational q of (a, b) is exactly a root of ``o``'s switching function (sin(x) at
        x = 0), the cut of [lo, hi] at q, else None: a root shared with another switching function, or a multiple
        root, then sits at the end of cells, where exact values and germs decide the signs next to it."""
        q = A.simplest_between(a, b)
        if self.point_sign(q, o)[0] != 0 or self.point(q) is None:
            return None
        return [(lo, q), (q, hi)]

    def settle(self, lo, hi, forced):
        """The Decided pattern over [lo, hi] with the signs ``forced`` and every other sign decided by the walk
        or ``quick``; raises Open when one is not."""
        known, how = dict(forced), {}
        while True:
            try:
                pattern = self.eval(lo, hi, known).pattern
                ball = tuple((p, j, s) for (p, j), s in sorted(known.items()) if (p, j) not in forced and
                             (p, j) not in how)
                return Decided(pattern, ball, tuple(how[k] for k in sorted(how)))
            except Open as o:
                q = self.quick(lo, hi, o, self.tolq)
                if q is None:
                    raise
                known[(o.pos, o.j)] = q[0]
                if q[1] is not None:
                    how[(o.pos, o.j)] = q[1]

    def exact_root(self, lo, hi, o, h, a, b):
        """The first root of the rational switching function h in (lo, hi) is algebraic and alone in [a, b]
        (narrower than the tolerance): a simple cell when h changes sign there and the cell's derivative
        enclosure proves it (as the checker will), else a cluster."""
        sl = A.sign_at(h.n, a) * (1 if h.d is None else A.sign_at(h.d, a))
        sr = A.sign_at(h.n, b) * (1 if h.d is None else A.sign_at(h.d, b))
        if len([r for r in A.real_roots(h.n, a, b) if A.cmp(r, b) < 0]) == 1 and sl * sr == -1 \
                and self.point(a) is not None and self.point(b) is not None:
            ser = self.switch_over(a, b, o)
            if ser is not None and arb_sign(der(ser)) in (-1, 1):
                cell = self.simple(a, b, o, sl, sr)
                if cell is not None:
                    return [x for x in ((lo, a), cell, (b, hi)) if not isinstance(x, tuple) or x[0] < x[1]]
        return self.bracket(lo, hi, a, b, o)

    def bracket(self, lo, hi, a, b, o):
        """Isolation stopped short: a cluster around [a, b] when it is narrow, else bisect the cell."""
        if b - a < self.tolq and self.point(a) is not None and self.point(b) is not None:
            return [(lo, a), self.cluster(a, b, o), (b, hi)] if (lo, hi) != (a, b) else [self.cluster(a, b, o)]
        if hi - lo < self.tolq:
            return [self.cluster(lo, hi, o)]
        return self.halves(lo, hi)

    def cluster(self, lo, hi, o):
        """Every pattern the program can take on [lo, hi]: branch on each undecided sign (-1, 0, 1)."""
        self.clusters += 1
        if self.clusters > MAX_CLUSTERS:
            k = self.nonsmooth[o.pos].k
            raise Undecided(f"equation {k + 1} `{eqn_label(self.program, k)}`: its switching function "
                            f"{o.j + 1} cannot be decided on {MAX_CLUSTERS} cells narrower than the tolerance "
                            f"(near t = {A.q_decimal(lo)[0]}): it may vanish identically")
        found, stack = [], [{}]
        while stack:
            forced = stack.pop()
            try:
                p = self.eval(lo, hi, forced).pattern
                if p not in found:
                    found.append(p)
            except Open as op:
                stack.extend({**forced, (op.pos, op.j): s} for s in (1, 0, -1))
            except GiveUp:
                raise
            except (Undecided, DomainError) as e:
                raise Undecided(f"cannot decide that {self.program.name} is defined for t in "
                                f"[{A.q_decimal(lo)[0]}, {A.q_decimal(hi)[1]}]: {e}") from None
            if len(found) + len(stack) > MAX_BRANCHES:
                raise Undecided(f"more than {MAX_BRANCHES} possible patterns for t in [{A.q_decimal(lo)[0]}, "
                                f"{A.q_decimal(hi)[1]}]")
        return Cell("cluster", lo, hi, switch=(o.pos, o.j), candidates=tuple(sorted(found)))

    def cover(self, lo, hi):
        """Process [lo, hi] into an ordered list of Cells."""
        out, todo = [], [(lo, hi)]
        while todo:
            item = todo.pop()
            if isinstance(item, Cell):
                out.append(item)
                progress.report(f"segment: cells certified up to t = {float(item.hi):.6f},", len(out))
                continue
            todo.extend(reversed(self.process(*item)))
        return out


def analytic_partition(program, convention, curve, tol, prec=None):
    """The partition of Claim 1 by cells (see the module docstring); a Partition with method "ball"."""
    p0 = certified_start(prec, tol)
    an = Analytic(program, convention, curve, tol, p0)
    with ctx.workprec(p0):
        cells = an.cover(fmpq(0), fmpq(1))
    p = p0
    while any(c.kind == "cluster" for c in cells) and p < PREC_CAP:
        p = next_precision(p)
        new, an.clusters = [], 0
        with ctx.workprec(p):
            for c in cells:
                new.extend(an.cover(c.lo, c.hi) if c.kind == "cluster" else [c])
        cells = new
    points = {}
    for c in cells:
        for t in (c.lo, c.hi):
            if t not in points:
                points[t] = _point_pattern(an, t, p0)
    atoms = [("P", cells[0].lo, points[cells[0].lo][0])]
    for c in cells:
        if c.kind == "region":
            atoms.append(("O", c.pattern))
        elif c.kind == "simple":
            pats = c.patterns
            atoms += [("O", pats[0]), ("S", (c.lo, c.hi), pats[1]), ("O", pats[2])]
        else:
            atoms.append(("X", (c.lo, c.hi), c.candidates))
        atoms.append(("P", c.hi, points[c.hi][0]))
    bps, pieces = merge(atoms)
    return Partition(program, convention, curve, "ball", tol, p, bps, pieces, atoms, cells,
                     {t: pat for t, (pat, _) in points.items()}, {t: ex for t, (_, ex) in points.items()})


def _point_pattern(an, t, p0):
    """(pattern, [Exact]) at t, climbing the precision ladder from p0; Undecided at the cap."""
    for p in ladder(p0, PREC_CAP):
        with ctx.workprec(p):
            got = an.point(t)
        if got is not None:
            return got
    raise Undecided(f"cannot decide the pattern of {an.program.name} at t = {A.number_json(t)} (still undecided "
                    f"at {PREC_CAP} bits)")
