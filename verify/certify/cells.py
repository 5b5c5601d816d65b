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

Every cell endpoint is a rational point whose pattern is evaluated (and must be decided).  Precision starts
at max(128, tol + 64) bits and is raised for clusters up to 4096.  A switching function that is undecided on
many consecutive tiny cells (it may vanish identically) gives Undecided.

Each switching function is decided by the most exact method its own dependencies allow (issue 9), whatever
the rest of the program contains:

- its dependency cone is rational (+ - * /, integer powers, affine pieces): it is an exact rational function
  of t on the cell (upstream pieces fixed), with exact roots (ratfunc.py, algebraic.py): identically zero,
  a constant sign on the open cell, a rational root where the cell is cut, or an algebraic one isolated in
  a simple cell;
- otherwise its exact form over input atoms (forms.py) with the upstream pieces: 0 is a tie on the whole
  cell, a constant decides, else a tighter enclosure;
- at a cell end where it is exactly 0 (a tangency at an end of the segment), the one-sided germ: if its
  Taylor coefficients at the end vanish exactly up to order k - 1 and the k-th Taylor coefficient over the
  whole cell (an enclosure of h^(k)(xi) / k!) has a sign, Taylor's theorem with the Lagrange remainder gives
  its sign on the rest of the cell.

Points are evaluated by the exact system (rationals, balls only for transcendental values), with its exact
forms and precision escalation.  Region cells list the signs decided these ways apart from the ball-proved
ones (``exact``), since the certificate checker replays only the latter.
"""
from dataclasses import dataclass

from flint import arb, arb_series, ctx, fmpq

from .. import progress
from ..numbers.ball import int_power
from ..errors import DomainError, Undecided
from ..interpret.evaluate import PREC_CAP, Run, compiled, def_steps, run, structure_allowed
from ..interpret.forms import Forms, TooLarge
from ..numbers import get_system
from . import ratfunc as R
from ..program.ir import eqn_label
from ..numbers.ball import arb_sign, json_number
from ..program.prims import affine
from . import algebraic as A
from .partition import Partition, merge

MAX_CLUSTERS = 24
GERM_ORDER = 6
EXACT = get_system("exact")
MAX_EVALS = 200_000
MAX_BRANCHES = 256


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
        return 1 - _divide(2, (2 * a).exp() + 1)

    def sigmoid(self, a):
        return _divide(1, 1 + (-a).exp())

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


def _divide(a, b):
    """a / b over a cell.  python-flint refuses (ValueError) a series division whose divisor's leading term
    is not certainly nonzero, which a wide cell can cause even for a positive divisor (its enclosure is too
    wide): the cell is then undecided and gets split."""
    try:
        return a / b
    except (ValueError, ZeroDivisionError):
        raise Undecided("the divisor's enclosure over the cell contains 0") from None


SERIES = SeriesSystem()


_RATIONAL = ("add", "sub", "mul", "div", "neg", "pow")


class _RFUnchecked(R.RFSystem):
    """Rational functions of t whose divisors are already known to be nonzero on the cell."""

    def sign(self, x):
        return 0 if x.is_zero() else 1


class GiveUp(Undecided):
    """The work budget is exhausted: stop at once."""


class Open(Exception):
    """An undecided switching function: nonsmooth equation ``pos`` (its position among the nonsmooth ones),
    switch ``j``, its series ``value`` over the cell, and the pieces chosen upstream (``prefix``); ``env``:
    the walk's values so far."""

    def __init__(self, pos, j, value, prefix):
        super().__init__(pos, j)
        self.pos, self.j, self.value, self.prefix = pos, j, value, prefix
        self.env = None


def walk(program, steps, ns, xs, decide, pattern=None, stop=None):
    """Algorithm 1 with signs from ``decide(pos, j, value, chosen)`` (every switch of a nonsmooth equation is
    decided, not only those its index rule reads).  ``pattern`` freezes the first nonsmooth equations; with
    ``stop=(pos, j)`` the value of that switching function is returned instead of a Run."""
    env = list(xs) + [None] * (program.n_vars - program.n_inputs)
    all_args, chosen = [], []
    for st in steps:
        args = [env[a] if a.__class__ is int else ns.const(a.value) for a in st.ins]
        all_args.append(args)
        if st.rule is not None:
            env[st.outs[0]] = st.rule(ns, st.params, *args)
            continue
        pos = len(chosen)
        if stop is not None and stop[0] == pos:
            return affine(ns, *st.switches[stop[1]], args)
        if pattern is not None and pos < len(pattern):
            i = pattern[pos]
        else:
            try:
                signs = [decide(pos, j, affine(ns, terms, const, args), chosen)
                         for j, (terms, const) in enumerate(st.switches)]
            except Open as o:
                o.env = env
                raise
            i = st.sel.choose(st.params, len(args), signs.__getitem__)
        chosen.append(i)
        for o, v in zip(st.outs, st.piece(i).apply(ns, args)):
            env[o] = v
    return Run(program, ns, env, all_args, tuple(chosen), None, None)


@dataclass
class Cell:
    """kind "region" (``pattern``, ``known`` = [(pos, j, sign)] proved by monotonicity), "simple" (``switch`` =
    (pos, j), ``signs`` = (left, right), ``patterns`` = (left, at the root, right)) or "cluster"
    (``candidates``)."""
    kind: str
    lo: fmpq
    hi: fmpq
    pattern: tuple = None
    known: tuple = ()
    switch: tuple = None
    signs: tuple = None
    patterns: tuple = None
    candidates: tuple = None
    exact: tuple = ()       # region: [(pos, j, sign, how)] decided by "rational", "identity" or "germ"


class Analytic:
    def __init__(self, program, convention, curve, tol, prec):
        self.program, self.convention, self.curve = program, convention, curve
        self.steps = compiled(program, convention)
        self.tolq = fmpq(1, 2 ** tol)
        self.prec = prec
        self.points = {}
        self.evals = 0
        self.clusters = 0
        self._cones, self._rf, self._exact_points = {}, {}, {}
        self.beyond = False     # a decision used exact methods (see evaluate.values_only)

    # -- evaluation
    def inputs(self, lo, hi):
        s = arb_series([A.interval_ball(lo, hi), 1], prec=2)
        out = []
        for p in self.curve.polys:
            cs = p.coeffs() or [fmpq(0)]
            acc = arb(cs[-1])                  # Horner; a constant coordinate stays an arb
            for c in reversed(cs[:-1]):
                acc = acc * s + arb(c)
            out.append(acc)
        return out

    def eval(self, lo, hi, known, pattern=None, stop=None):
        self.evals += 1
        if self.evals > MAX_EVALS:
            raise GiveUp(f"more than {MAX_EVALS} cell evaluations: giving up")

        def decide(pos, j, v, chosen):
            s = known.get((pos, j))
            if s is None:
                s = arb_sign(val(v))
                if s is None:
                    raise Open(pos, j, v, tuple(chosen))
            return s
        return walk(self.program, self.steps, SERIES, self.inputs(lo, hi), decide, pattern, stop)

    def point(self, t):
        """The pattern at the rational point t, or None when it cannot be decided: every switching function
        decided by balls at this precision (what the certificate checker replays) or else by the exact system
        (exact forms, the undecided cone re-run at more precision, up to the cap) at the exact point."""
        key = (t, ctx.prec)
        if key not in self.points:
            try:
                self.points[key] = self.eval(t, t, {}).pattern
            except GiveUp:
                raise
            except DomainError as e:
                raise DomainError(f"{self.program.name} at t = {A.number_json(t)} (point "
                                  f"{', '.join(A.number_json(v) for v in self.curve.at(t))}): {e}") from None
            except (Open, Undecided):
                self.points[key] = None
                if structure_allowed():
                    if t not in self._exact_points:
                        try:
                            self._exact_points[t] = run(self.program, EXACT, self.curve.at(t), self.convention).pattern
                        except Undecided:
                            self._exact_points[t] = None
                    self.points[key] = self._exact_points[t]
                    self.beyond = self.beyond or self.points[key] is not None
        return self.points[key]

    def switch_at(self, t, o):
        """Enclosure of the switching function of the Open ``o`` at the point t (upstream frozen), or None."""
        try:
            return val(self.eval(t, t, {}, o.prefix, (o.pos, o.j)))
        except GiveUp:
            raise
        except (DomainError, Undecided, Open):
            return None

    def sign_at(self, t, o):
        v = self.switch_at(t, o)
        return None if v is None else arb_sign(v)

    def switch_over(self, lo, hi, o):
        try:
            return self.eval(lo, hi, {}, o.prefix, (o.pos, o.j))
        except GiveUp:
            raise
        except (DomainError, Undecided, Open):
            return None

    # -- the exact methods (see the module docstring)
    def _step(self, pos):
        return [st for st in self.steps if st.sel is not None][pos]

    def cone(self, pos):
        """(steps of the cone of nonsmooth equation ``pos``, True when they are all rational)."""
        if pos not in self._cones:
            k = self._step(pos).k
            dstep = def_steps(self.program, self.steps)
            seen, todo = set(), [k]
            while todo:
                for a in self.steps[todo.pop()].ins:
                    if a.__class__ is int and dstep[a] >= 0 and dstep[a] not in seen:
                        seen.add(dstep[a])
                        todo.append(dstep[a])
            ok = all(self.steps[d].sel is not None or self.steps[d].prim in _RATIONAL for d in seen)
            self._cones[pos] = (seen, ok)
        return self._cones[pos]

    def rational_switch(self, o):
        """The switching function of ``o`` as an exact rational function of t (upstream pieces ``o.prefix``), or
        None when its cone is not rational.  Only the cone is evaluated; divisors need no check here (the ball
        walk over the cell decided each one nonzero before reaching this switch)."""
        key = (o.pos, o.j, o.prefix)
        if key not in self._rf:
            self._rf[key] = None
            cone, ok = self.cone(o.pos)
            if ok:
                ns = _RFUnchecked(None)
                env = [R.RF(p) for p in self.curve.polys] + [None] * (self.program.n_vars - self.program.n_inputs)
                m = 0
                for st in self.steps:
                    if st.sel is not None and m == o.pos:
                        args = [env[a] if a.__class__ is int else ns.const(a.value) for a in st.ins]
                        self._rf[key] = affine(ns, *st.switches[o.j], args)
                        break
                    if st.k in cone:
                        args = [env[a] if a.__class__ is int else ns.const(a.value) for a in st.ins]
                        if st.sel is None:
                            env[st.outs[0]] = st.rule(ns, st.params, *args)
                        else:
                            for out, v in zip(st.outs, st.piece(o.prefix[m]).apply(ns, args)):
                                env[out] = v
                    m += st.sel is not None
        return self._rf[key]

    def exact_decision(self, lo, hi, h):
        """("sign", s) on the open cell, ("split", [sub-intervals]) at a rational root, ("root", a, b) an
        isolating interval narrower than the tolerance of the first algebraic root, for the rational function
        h (its denominator has no root on the cell: every divisor upstream was decided nonzero there)."""
        if h.is_zero():
            return ("sign", 0)
        roots = [r for r in A.real_roots(h.n, lo, hi) if A.cmp(r, hi) < 0]
        if not roots:
            return ("sign", A.sign_at(h.n, (lo + hi) / 2) * (1 if h.d is None else A.sign_at(h.d, (lo + hi) / 2)))
        r = roots[0]
        if isinstance(r, fmpq):
            return ("split", [(lo, r), (r, hi)])
        r.refine_to(self.tolq / 2)
        return ("root", max(lo, r.lo), min(hi, r.hi))

    def identity_sign(self, o):
        """The sign of ``o``'s switching function over the cell from its exact form over input atoms with the
        upstream pieces (0 for a linear identity such as tanh(u) - tanh(u)), or None."""
        if o.env is None:
            return None
        st = self._step(o.pos)
        F = Forms(self.program, self.steps, SERIES, o.env, list(o.prefix), def_steps(self.program, self.steps),
                  symbolic=True)
        try:
            f = F.affine(st.ins, *st.switches[o.j])
            return F.sign(f)[0]
        except TooLarge:
            return None

    def exact_switch_at(self, t, o):
        """The switching function of ``o`` at the rational t with the upstream pieces frozen, in the exact
        system (an fmpq when its cone is rational there), or None."""
        try:
            return walk(self.program, self.steps, EXACT, self.curve.at(t), None, o.prefix, (o.pos, o.j))
        except (DomainError, Undecided):
            return None

    def series(self, lo, hi, o, order):
        """The Taylor series (``order`` + 1 coefficients) of ``o``'s switching function over [lo, hi] (each
        coefficient encloses h^(i)(t) / i! for every t in the cell), or None."""
        s = arb_series([A.interval_ball(lo, hi), 1], prec=order + 1)
        ins = []
        for p in self.curve.polys:
            cs = p.coeffs() or [fmpq(0)]
            acc = arb(cs[-1])
            for c in reversed(cs[:-1]):
                acc = acc * s + arb(c)
            ins.append(acc)
        try:
            v = walk(self.program, self.steps, SERIES, ins, None, o.prefix, (o.pos, o.j))
        except (DomainError, Undecided, ZeroDivisionError):
            return None
        c = v.coeffs() if not isinstance(v, arb) else [v]
        return c + [arb(0)] * (order + 1 - len(c))

    def germ_sign(self, lo, hi, o):
        """The sign of ``o``'s switching function on the cell minus an end where it vanishes exactly, from
        the one-sided germ there (see the module docstring), or None."""
        for e, side in ((hi, -1), (lo, 1)):
            v = self.exact_switch_at(e, o)
            if v is None or not (v == 0 if isinstance(v, fmpq) else v.is_zero()):
                continue
            for k in range(1, GERM_ORDER + 1):
                at = self.series(e, e, o, k)
                if at is None or not all(c.is_zero() for c in at[:k]):
                    break
                over = self.series(lo, hi, o, k)
                sk = None if over is None else arb_sign(over[k])
                if sk in (-1, 1):
                    return sk * side ** k
                if not at[k].is_zero():
                    break
        return None

    # -- cells
    def split(self, lo, hi):
        """A rational point inside (lo, hi) where the pattern is decided (the midpoint when possible)."""
        w = hi - lo
        for k in (8, 7, 9, 6, 10, 5, 11):
            m = lo + w * fmpq(k, 16)
            if self.point(m) is not None:
                return m
        return lo + w / 2

    def process(self, lo, hi):
        """Items (Cell) or sub-intervals (tuple) covering [lo, hi], in order."""
        known, how = {}, {}
        while True:
            try:
                r = self.eval(lo, hi, known)
                return [Cell("region", lo, hi, pattern=r.pattern,
                             known=tuple((p, j, s) for (p, j), s in sorted(known.items()) if (p, j) not in how),
                             exact=tuple((p, j, s, how[(p, j)]) for (p, j), s in sorted(known.items())
                                         if (p, j) in how))]
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
                m = self.split(lo, hi)
                return [(lo, m), (m, hi)]
            except DomainError as e:
                raise DomainError(f"{self.program.name} is not defined for t in [{A.number_json(lo)}, "
                                  f"{A.number_json(hi)}]: {e}") from None

    def analyse(self, lo, hi, known, o, how):
        """Handle an undecided switch: record a sign proved by the mean value form, exactly (a rational cone,
        an identity, a germ at an end) or by monotonicity (return None), or return the items/sub-intervals
        replacing the cell."""
        d = der(o.value)
        key = (o.pos, o.j)
        q = self.quick(lo, hi, o)
        if q is not None:
            known[key] = q[0]
            if q[1] is not None:
                how[key] = q[1]
            return None
        h = self.rational_switch(o) if structure_allowed() else None
        if h is not None:
            act = self.exact_decision(lo, hi, h)
            if act[0] == "split":
                return act[1]
            return self.exact_root(lo, hi, o, h, act[1], act[2])
        if arb_sign(d) in (-1, 1):
            hl, hr = self.switch_at(lo, o), self.switch_at(hi, o)
            sl = None if hl is None else arb_sign(hl)
            sr = None if hr is None else arb_sign(hr)
            if sl is not None and sr is not None and (sl or sr):
                if sl * sr >= 0:
                    known[(o.pos, o.j)] = sl or sr
                    return None
                return self.isolate(lo, hi, o, sl, sr)
        if hi - lo < self.tolq:
            return [self.cluster(lo, hi, o)]
        m = self.split(lo, hi)
        return [(lo, m), (m, hi)]

    def isolate(self, lo, hi, o, sl, sr):
        """The unique root of the monotone switching function of ``o`` in (lo, hi): an exact rational point, or
        a simple cell narrower than the tolerance (interval Newton, with bisection as a fallback)."""
        a, b = lo, hi
        while b - a >= self.tolq:
            m = (a + b) / 2
            hm = self.switch_at(m, o)
            sm = None if hm is None else arb_sign(hm)
            if sm == 0 and self.point(m) is not None:
                return [(lo, m), (m, hi)]
            progress = False
            if sm:
                a, b = (m, b) if sm == sl else (a, m)
                progress = True
            ser = self.switch_over(a, b, o) if hm is not None else None
            if ser is not None and arb_sign(der(ser)) in (-1, 1):
                nlo, nhi = A.arb_q(arb(m) - hm / der(ser))
                if a < nlo < b and self.sign_at(nlo, o) == sl:
                    a, progress = nlo, True
                if a < nhi < b and self.sign_at(nhi, o) == sr:
                    b, progress = nhi, True
            if not progress:
                break
        if b - a >= self.tolq or self.point(a) is None or self.point(b) is None:
            return self.bracket(lo, hi, a, b, o)
        branches = []
        for s in (sl, 0, sr):               # only this sign forced: every other one decided on the cell
            try:
                branches.append(self.settle(a, b, {(o.pos, o.j): s}))
            except GiveUp:
                raise
            except (Open, Undecided, DomainError):
                return self.bracket(lo, hi, a, b, o)
        return [(lo, a), Cell("simple", a, b, switch=(o.pos, o.j), signs=(sl, sr), patterns=tuple(branches)), (b, hi)]

    def quick(self, lo, hi, o):
        """(sign, how) of ``o``'s switching function on the open cell without cutting it, or None: the mean
        value form and monotonicity first (how None: ball proofs, which the certificate checker replays), then
        the exact methods ("rational" when the cell holds no root, "identity", "germ")."""
        hm = self.switch_at((lo + hi) / 2, o)
        if hm is not None:                      # h(X) in h(m) + h'(X) [-w/2, w/2]
            s = arb_sign(hm + der(o.value) * arb(0, (hi - lo) / 2))
            if s in (-1, 1):
                return s, None
        if arb_sign(der(o.value)) in (-1, 1):   # monotone, one sign at both ends (0 allowed at one)
            sl, sr = self.sign_at(lo, o), self.sign_at(hi, o)
            if sl is not None and sr is not None and (sl or sr) and sl * sr >= 0:
                return sl or sr, None
        if not structure_allowed():
            return None
        h = self.rational_switch(o)
        if h is not None:
            act = self.exact_decision(lo, hi, h)
            return (act[1], "rational") if act[0] == "sign" else None
        s = self.identity_sign(o)
        if s is not None:
            return s, "identity"
        s = self.germ_sign(lo, hi, o)
        return None if s is None else (s, "germ")

    def settle(self, lo, hi, known):
        """The pattern over [lo, hi] with the signs ``known`` forced and every other sign decided by the ball
        walk or ``quick``; raises Open when one is not."""
        known = dict(known)
        while True:
            try:
                return self.eval(lo, hi, known).pattern
            except Open as o:
                q = self.quick(lo, hi, o)
                if q is None:
                    raise
                known[(o.pos, o.j)] = q[0]
                self.beyond = self.beyond or q[1] is not None

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
                branches = []
                for sg in (sl, 0, sr):
                    try:
                        branches.append(self.settle(a, b, {(o.pos, o.j): sg}))
                    except GiveUp:
                        raise
                    except (Open, Undecided, DomainError):
                        break
                if len(branches) == 3:
                    cell = Cell("simple", a, b, switch=(o.pos, o.j), signs=(sl, sr), patterns=tuple(branches))
                    return [x for x in ((lo, a), cell, (b, hi)) if not isinstance(x, tuple) or x[0] < x[1]]
        return self.bracket(lo, hi, a, b, o)

    def bracket(self, lo, hi, a, b, o):
        """Isolation stopped short: a cluster around [a, b] when it is narrow, else bisect the cell."""
        if b - a < self.tolq and self.point(a) is not None and self.point(b) is not None:
            return [(lo, a), self.cluster(a, b, o), (b, hi)] if (lo, hi) != (a, b) else [self.cluster(a, b, o)]
        if hi - lo < self.tolq:
            return [self.cluster(lo, hi, o)]
        m = self.split(lo, hi)
        return [(lo, m), (m, hi)]

    def cluster(self, lo, hi, o):
        """Every pattern the program can take on [lo, hi]: branch on each undecided sign (-1, 0, 1)."""
        self.clusters += 1
        if self.clusters > MAX_CLUSTERS:
            k = [st for st in self.steps if st.sel is not None][o.pos].k
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
        return Cell("cluster", lo, hi, candidates=tuple(sorted(found)))

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
    p0 = 1 << (max(prec or 128, tol + 64) - 1).bit_length()     # a power of two: certificates state one
    an = Analytic(program, convention, curve, tol, p0)
    with ctx.workprec(p0):
        cells = an.cover(fmpq(0), fmpq(1))
    p = p0
    while any(c.kind == "cluster" for c in cells) and p < PREC_CAP:
        p = min(2 * p, PREC_CAP)
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
    atoms = [("P", cells[0].lo, points[cells[0].lo])]
    for c in cells:
        if c.kind == "region":
            atoms.append(("O", c.pattern))
        elif c.kind == "simple":
            atoms += [("O", c.patterns[0]), ("S", (c.lo, c.hi), c.patterns[1]), ("O", c.patterns[2])]
        else:
            atoms.append(("X", (c.lo, c.hi), c.candidates))
        atoms.append(("P", c.hi, points[c.hi]))
    bps, pieces = merge(atoms)
    beyond = an.beyond or any(c.exact for c in cells)
    return Partition(program, convention, curve, "ball", tol, p, bps, pieces, atoms, cells, points, beyond=beyond)


def _point_pattern(an, t, p0):
    p = p0
    while True:
        with ctx.workprec(p):
            pat = an.point(t)
        if pat is not None:
            return pat
        if p >= PREC_CAP:
            raise Undecided(f"cannot decide the pattern of {an.program.name} at t = {A.number_json(t)} "
                            f"(still undecided at {p} bits)")
        p = min(2 * p, PREC_CAP)
