"""Proposition 2 of the paper (Theorem 3 along polynomial curves): for f in the class S,

    f(gamma(1)) - f(gamma(0)) = int_0^1 <gamma'(t), grad^s f(gamma(t))> dt,

where grad^s f is the selection derivative, i.e. what AD computes.  ``integral_identity`` encloses both sides.

The right side is integrated piece by piece over the certified partition of Claim 1 (segment.py): on a piece
the pattern sigma is constant, so the integrand is d/dt f_sigma(gamma(t)) obtained by forward mode (ad.jvp)
over the frozen program.  Rational programs: the integrand is an exact rational function of t; a polynomial
integrand over rational breakpoints is integrated exactly (piecewise-linear programs get exact sides).
Otherwise ``acb.integral`` integrates the forward-mode derivative over complex balls, with its ``analytic``
flag honoured (log and sqrt check their branch cut; a failed domain check returns a non-finite ball) and the
accuracy of its result checked (at its evaluation limit it silently returns a wide ball: we raise precision
and the limit, then give up).  A cell around a ball breakpoint (simple or cluster) contributes its width times
the hull of the integrand over the cell for every pattern possible there.

Verdict: PROVED when lhs - rhs encloses 0 with width below 2^-tol (exactly 0 for exact sides); REFUTED when
two adjacent pieces (or a piece and the point itself) disagree in value at a breakpoint, proved exactly or by
disjoint balls (f is discontinuous, hence outside S), or when lhs - rhs certainly excludes 0; UNDECIDED
otherwise.
"""
import itertools
from dataclasses import dataclass
from fractions import Fraction

from flint import acb, acb_poly, arb, arb_poly, ctx, fmpq, fmpq_poly

from ..numbers.ball import int_power
from ..program import kinks
from ..interpret.ad import jvp
from ..errors import DomainError, InputError, Undecided
from ..interpret.evaluate import output_values, run
from ..interpret.precision import PREC_CAP, ladder
from ..frontends import as_program
from ..numbers import get_system
from ..numbers.ball import arb_sign, interval_json, json_number
from ..truth import Verdict
from . import algebraic as A
from .ratfunc import RF, At, Right, RFSystem
from .partition import enclosure_json
from .segment import DEFAULT_TOL, bp_json, segment_partition


@dataclass
class Integral:
    """One term of the right side: over (lo, hi) (fmpq/Alg endpoints, or a rational cell) with ``pattern``,
    or a cell contribution (``patterns``: every pattern possible there).  ``value``: fmpq or arb."""
    lo: object
    hi: object
    value: object
    pattern: tuple = None
    patterns: tuple = None
    kind: str = "piece"
    json: object = None


@dataclass
class IntegralResult:
    """``lhs``, ``rhs``, ``difference``: JSON numbers ("p/q" or {"lo", "hi"}; rhs and difference are None when
    a piece is not integrable); ``lhs_value`` etc. give them as fmpq or arb.  ``terms``: the right side's
    pieces and cell contributions."""
    verdict: Verdict
    lhs: object
    rhs: object
    difference: object
    partition: object
    terms: list
    discontinuity: dict = None
    reason: str = ""
    prec: int = None
    tol: int = DEFAULT_TOL

    @property
    def exact(self):
        return all(isinstance(v, str) for v in (self.lhs, self.rhs))

    @property
    def lhs_value(self):
        return value_of(self.lhs)

    @property
    def rhs_value(self):
        return None if self.rhs is None else value_of(self.rhs)

    @property
    def difference_value(self):
        return None if self.difference is None else value_of(self.difference)

    def json(self):
        out = {"verdict": self.verdict.name, "lhs": self.lhs, "rhs": self.rhs,
               "difference": self.difference, "exact": self.exact, "tol": self.tol,
               "breakpoints": [bp_json(b) for b in self.partition.breakpoints],
               "method": self.partition.method, "curve": self.partition.curve.json(),
               "convention": self.partition.convention}
        if self.discontinuity is not None:
            out["discontinuity"] = self.discontinuity
        if self.reason:
            out["reason"] = self.reason
        return out


# ------------------------------------------------------------------------------- complex balls (acb)

class ComplexSystem:
    """acb values for the integrand.  ``analytic``: log and sqrt return a non-finite ball when the argument
    touches their branch cut (acb.integral's contract).  ``sign`` (used only by domain checks) reads the real
    part: a divisor must exclude 0, log's and sqrt's arguments need a positive real part."""
    name = "complex"
    exact = False

    def __init__(self, analytic):
        self.analytic = bool(analytic)

    def const(self, q): return acb(q)
    def add(self, a, b): return a + b
    def sub(self, a, b): return a - b
    def mul(self, a, b): return a * b
    def div(self, a, b): return a / b
    def neg(self, a): return -a
    def pow(self, a, n): return int_power(a, n) if n >= 0 else 1 / int_power(a, -n)
    def exp(self, a): return a.exp()
    def log(self, a): return a.log(analytic=self.analytic)
    def sqrt(self, a): return a.sqrt(analytic=self.analytic)
    def sin(self, a): return a.sin()
    def cos(self, a): return a.cos()
    def tanh(self, a): return a.tanh()
    def sigmoid(self, a): return 1 / (1 + (-a).exp())
    def erf(self, a): return a.erf()
    def atan(self, a): return a.atan()
    def lgamma(self, a): return a.lgamma()
    def polygamma(self, a, n): return a.polygamma(n)
    def bessel_i(self, a, n): return a.bessel_i(n)

    def erfinv(self, a):
        raise InputError("the integral identity evaluates the program on complex balls, and erfinv has no "
                         "complex-ball implementation here")
    def pi(self): return acb.pi()

    def sign(self, x):
        s = arb_sign(x.real)
        if s:
            return s
        return 1 if (x.imag > 0 or x.imag < 0) else None     # nonzero, yet no real sign: fine for a divisor

    def is_exact_value(self, x):
        return False

    def to_json(self, x):
        return str(x)


def _horner(p, z, make):
    acc = make(0)
    for c in reversed(p.coeffs()):
        acc = acc * z + make(c)
    return acc


def live(program, pattern):
    """The program restricted to the equations its outputs depend on, and the pattern restricted to them
    (dead code, e.g. a log whose argument leaves the right half-plane off the real axis, must not make the
    integrand non-analytic)."""
    from ..program.ir import Eqn, Program
    from ..program.prims import PRIMITIVES
    need, keep = {a for a in program.outputs if a.__class__ is int}, []
    for k in reversed(range(len(program.eqns))):
        e = program.eqns[k]
        if any(o in need for o in e.outs):
            keep.append(k)
            need.update(a for a in e.ins if a.__class__ is int)
    keep.reverse()
    new = {i: i for i in range(program.n_inputs)}
    names = list(program.names[:program.n_inputs])
    eqns, pat, it = [], [], iter(pattern)
    kept = set(keep)
    for k, e in enumerate(program.eqns):
        i = None if PRIMITIVES[e.prim].smooth else next(it)
        if k not in kept:
            continue
        if i is not None:
            pat.append(i)
        for o in e.outs:
            new[o] = len(names)
            names.append(program.names[o])
        eqns.append(Eqn(e.prim, tuple(new[a] if a.__class__ is int else a for a in e.ins), e.params,
                        tuple(new[o] for o in e.outs), e.loc))
    outs = tuple(new[a] if a.__class__ is int else a for a in program.outputs)
    return Program(program.name, tuple(names), program.n_inputs, tuple(eqns), outs), tuple(pat)


def _integrand(program, convention, curve, pattern):
    """acb.integral's callback: d/dt f_pattern(gamma(z)) by forward mode over complex balls."""
    program, pattern = live(program, pattern)

    def f(z, analytic):
        ns = ComplexSystem(analytic)
        try:
            xs = [_horner(p, z, acb) for p in curve.polys]
            ts = [_horner(p, z, acb) for p in curve.dpolys]
            r = run(program, ns, xs, convention, pattern)
            d = jvp(r, ts)[0]
            return acb(0) if d is None else d
        except (DomainError, Undecided, ZeroDivisionError):
            return acb("nan")
    return f


def acb_integral(func, a, b, budget, prec):
    """Enclosure (arb) of the real integral of ``func`` over [a, b] (rationals) with radius <= budget.  When
    acb.integral stops short (a non-finite or too wide result: its tolerance is per subinterval, its evaluation
    limits scale with the precision) the next two rungs of the precision ladder are tried with a tighter
    tolerance; then Undecided."""
    for k, p in enumerate(itertools.islice(ladder(prec, PREC_CAP), 3)):
        with ctx.workprec(p):      # abs_tol is a goal per subinterval, not for the sum: tighten it too
            r = acb.integral(func, acb(a), acb(b), abs_tol=arb(budget) / 2 ** (2 + 24 * k), rel_tol=arb(2) ** (-p))
            v = r.real
            if v.is_finite() and A.arf_q(v.rad()) <= budget:
                return v
    raise Undecided(f"acb.integral did not reach the accuracy 2^-{budget.q.bit_length() - 1} on "
                    f"[{A.number_json(a)}, {A.number_json(b)}] (still at {p} bits)")


# ------------------------------------------------------------------------------------------- the sides

def _values_at(program, convention, curve, t, prec):
    """f(gamma(t)) at a rational t: exact when rational, else a ball (escalating precision)."""
    from ..interpret.evaluate import escalate

    def job(ns, p):
        return output_values(run(program, ns, [ns.const(v) for v in curve.at(t)], convention))[0]
    return escalate("exact", prec, job)


def _lhs(program, conv, curve, p, budget):
    """f(gamma(1)) - f(gamma(0)), exact when rational, else a ball of radius <= budget when precision allows."""
    for p in ladder(p, PREC_CAP):
        with ctx.workprec(p):
            v = _add(_values_at(program, conv, curve, fmpq(1), p), -_values_at(program, conv, curve, fmpq(0), p))
        if isinstance(v, fmpq) or A.arf_q(v.rad()) <= budget:
            break
    return v


def _add(a, b):
    """a + b, exact when both are fmpq."""
    return a + b if isinstance(a, fmpq) and isinstance(b, fmpq) else arb(a) + arb(b)


def _exact_terms(part, tol):
    """Right side of a rational program: exact per piece when the integrand is a polynomial and the ends are
    rational, else balls.  Also the discontinuity (or None)."""
    program, conv, curve = part.program, part.convention, part.curve
    ins = [RF(p) for p in curve.polys]
    tans = [RF(p) for p in curve.dpolys]
    width = fmpq(1, 2 ** (tol + 8))
    bps = part.breakpoints
    exact = get_system("exact")
    point_vals = [output_values(run(program, exact, curve.at(b.t), conv) if isinstance(b.t, fmpq) else
                                run(program, RFSystem(At(b.t)), ins, conv))[0] for b in bps]
    terms, disc = [], None
    for pc in part.pieces:
        a, b = bps[pc.lo].t, bps[pc.hi].t
        r = run(program, RFSystem(Right(a)), ins, conv, pc.pattern)
        F = output_values(r)[0]
        for end, pv in ((a, point_vals[pc.lo]), (b, point_vals[pc.hi])):
            jump = _rf_jump(F, pv, end)
            if jump is not None and disc is None:
                disc = {"t": A.number_json(end), "reason": jump, "pattern": list(pc.pattern)}
            if jump and "pole" in jump:
                return None, disc                    # not integrable: no right side
        d = jvp(r, tans)[0]
        R = RF(fmpq_poly([])) if d is None else d
        terms.append(Integral(a, b, _integrate_rf(R, a, b, width, tol), pattern=pc.pattern))
    return terms, disc


def _rf_jump(F, pv, t):
    """None when the piece's rational function F is continuous up to t and equals the value there (pv: an
    fmpq at a rational t, an RF valid at t at an algebraic one); else the reason."""
    if F.d is not None and A.sign_at(F.d, t) == 0:
        return "the piece's function has a pole there"
    if isinstance(pv, fmpq):                       # a rational point: exact values
        return None if F(t) == pv else "the value of the adjacent piece differs from the value at the point"
    G = RFSystem(At(t)).sub(F, pv)
    if A.sign_at(G.n, t) != 0:
        return "the value of the adjacent piece differs from the value at the point"
    return None


def _integrate_rf(R, a, b, width, tol):
    """int_a^b R (R an RF; a, b fmpq or Alg): exact for a polynomial between rationals, else a ball."""
    if R.d is None and isinstance(a, fmpq) and isinstance(b, fmpq):
        Q = R.n.integral()
        return Q(b) - Q(a)
    prec = tol + 64
    for e in (a, b):
        if isinstance(e, A.Alg):
            e.refine_to(width)
    with ctx.workprec(prec):
        if R.d is None:
            Q = arb_poly(R.n.integral())
            return Q(A.ball_of(b)) - Q(A.ball_of(a))
        # a rational function: acb.integral between rational inner ends, plus the end cells
        lo = a if isinstance(a, fmpq) else a.hi
        hi = b if isinstance(b, fmpq) else b.lo
        if not lo < hi:
            lo = hi = A.between(a, b)
        N, D = arb_poly(R.n), arb_poly(R.d)
        Nc, Dc = acb_poly(R.n), acb_poly(R.d)
        total = arb(0) if lo == hi else acb_integral(lambda z, an: Nc(z) / Dc(z), lo, hi, width, prec)
        for e, inner in ((a, lo), (b, hi)):
            if isinstance(e, A.Alg):
                X = A.interval_ball(min(e.lo, inner), max(e.hi, inner))
                cell = arb(0).union(arb(max(e.hi, inner) - min(e.lo, inner)))
                total = total + cell * (N(X) / D(X))
        return total


def _cell_derivative(program, conv, curve, pattern, lo, hi):
    """Enclosure of d/dt f_pattern(gamma(t)) over [lo, hi] (forward mode in balls over the cell)."""
    X = A.interval_ball(lo, hi)
    ns = get_system("ball")
    xs = [_horner(p, X, arb) for p in curve.polys]
    ts = [_horner(p, X, arb) for p in curve.dpolys]
    r = run(program, ns, xs, conv, pattern)
    d = jvp(r, ts)[0]
    return (arb(0) if d is None else d), output_values(r)[0]


def _ball_terms(part, tol, prec):
    """Right side of an analytic program over the cells of the partition."""
    program, conv, curve = part.program, part.convention, part.curve
    budget = fmpq(1, 2 ** (tol + 8)) / max(1, len(part.cells))
    terms, run_cells = [], []

    def flush():
        if run_cells:
            lo, hi, pat = run_cells[0].lo, run_cells[-1].hi, run_cells[0].pattern
            v = acb_integral(_integrand(program, conv, curve, pat), lo, hi, budget, prec)
            terms.append(Integral(lo, hi, v, pattern=pat))
            run_cells.clear()
    for c in part.cells:
        if c.kind == "region":
            if run_cells and run_cells[-1].pattern != c.pattern:
                flush()
            run_cells.append(c)
            continue
        flush()
        pats = (c.patterns[0], c.patterns[2]) if c.kind == "simple" else c.candidates
        with ctx.workprec(prec):
            hull = None
            for p in dict.fromkeys(pats):
                d, _ = _cell_derivative(program, conv, curve, p, c.lo, c.hi)
                hull = d if hull is None else hull.union(d)
            value = arb(0).union(arb(c.hi - c.lo)) * hull
        terms.append(Integral(c.lo, c.hi, value, patterns=tuple(dict.fromkeys(pats)), kind=c.kind))
    flush()
    return terms


def _differ(program, conv, curve, pa, pb, lo, hi):
    """Do f_pa and f_pb certainly differ at t = lo = hi, or over the cell [lo, hi]?  True / False (equal)
    / None (undecided): balls first, then exact affine forms over atoms (verify.numbers.affine), which
    decide a difference exactly whenever it is a rational constant, e.g. (exp(t) + 1/10^40) - exp(t)."""
    from ..numbers.affine import AffineSystem
    X = A.interval_ball(lo, hi)
    coords = [p(lo) if lo == hi or p.degree() <= 0 else _horner(p, X, arb) for p in curve.polys]
    ns = get_system("ball")
    try:
        u, v = (output_values(run(program, ns, [arb(c) for c in coords], conv, p))[0] for p in (pa, pb))
        s = arb_sign(u - v)
    except (DomainError, Undecided):
        s = None
    if s is None:
        aff = AffineSystem()
        xs = [aff.input(i, c) for i, c in enumerate(coords)]
        try:
            u, v = (output_values(run(program, aff, xs, conv, p))[0] for p in (pa, pb))
            s = aff.sign(aff.sub(u, v))
        except (DomainError, Undecided):
            s = None
    return None if s is None else s != 0


def _ball_jumps(part, prec):
    """The first jump of f along the ball partition, in t order: at each cell boundary t (the pattern of an
    adjacent region against the pattern at t) and in each simple cell (the pattern of a side against the
    pattern at the root, over the cell).  The discontinuity dict, or None."""
    program, conv, curve = part.program, part.convention, part.curve
    cells = part.cells
    with ctx.workprec(prec):
        for i in range(len(cells) + 1):
            t = cells[0].lo if i == 0 else cells[i - 1].hi
            at = part.point_patterns[t]
            for c in (cells[i - 1] if i > 0 else None, cells[i] if i < len(cells) else None):
                if c is not None and c.kind == "region" and c.pattern != at and \
                        _differ(program, conv, curve, c.pattern, at, t, t):
                    return {"t": A.number_json(t), "reason": "the value of the adjacent piece differs from the value "
                            "at the point", "pattern": list(c.pattern)}
            c = cells[i] if i < len(cells) else None
            if c is not None and c.kind == "simple":
                for side in (c.patterns[0], c.patterns[2]):
                    if side != c.patterns[1] and _differ(program, conv, curve, side, c.patterns[1], c.lo, c.hi):
                        return {"t": enclosure_json(c.lo, c.hi),
                                "reason": "the adjacent pieces' values at the switch point differ",
                                "pattern": list(side)}
    return None


def integral_identity(program, x=None, y=None, curve=None, convention=kinks.DEFAULT, tol=DEFAULT_TOL,
                      method="auto", prec=None):
    """Both sides of Proposition 2 along the segment x -> y (or ``curve``), enclosed; see the module
    docstring for the verdict.  Raises like ``segment_partition`` (DomainError, Undecided, InputError)."""
    program = as_program(program)
    if type(tol) is not int or not 1 <= tol <= 2000:
        raise InputError(f"tol={tol!r} must be a number of bits between 1 and 2000")
    if program.n_outputs != 1:
        raise InputError(f"the integral identity needs a program with one output; {program.name} has "
                         f"{program.n_outputs}")
    for extra in (10, 40):              # cells around ball breakpoints narrower than the tolerance
        res = _identity(program, x, y, curve, convention, tol, method, prec, tol + extra)
        if res.verdict is not Verdict.UNDECIDED:
            break
    return res


def _identity(program, x, y, curve, convention, tol, method, prec, cell_tol):
    part = segment_partition(program, x, y, curve, convention, cell_tol, method, prec)
    p = max(prec or 128, cell_tol + 64)
    lhs = _lhs(program, part.convention, part.curve, p, fmpq(1, 2 ** (tol + 4)))
    if part.method == "exact":
        terms, disc = _exact_terms(part, cell_tol)
    else:
        terms, disc = _ball_terms(part, cell_tol, p), _ball_jumps(part, p)
    digits = json_digits(tol)
    with ctx.workprec(p):
        pad = arb(0, fmpq(1, 2 ** (cell_tol + 24)))      # slack, so a checker's tighter enclosure fits inside
        if not isinstance(lhs, fmpq):
            lhs = lhs + pad
        for tm in terms or []:
            if not isinstance(tm.value, fmpq):
                tm.value = tm.value + pad
            tm.json = num_json(tm.value, digits)
        lhs_j = num_json(lhs, digits)
    res = IntegralResult(Verdict.UNDECIDED, lhs_j, None, None, part, terms or [], disc, prec=p, tol=tol)
    if terms is not None:
        res.rhs = iv_json(iv_sum(iv_of(tm.json) for tm in terms), digits)
        res.difference = iv_json(iv_sub(iv_of(res.lhs), iv_of(res.rhs)), digits)
    if disc is not None:
        res.verdict = Verdict.REFUTED
        res.reason = f"f is discontinuous at t = {_show(disc['t'])}: it is not in the class S"
        return res
    lo, hi = iv_sub(iv_of(res.lhs), iv_of(res.rhs))
    if lo > 0 or hi < 0:
        res.verdict, res.reason = Verdict.REFUTED, "the two sides certainly differ: f is not in the class S"
    elif hi - lo < fmpq(1, 2 ** tol):
        res.verdict = Verdict.PROVED
    else:
        res.reason = f"the difference encloses 0 but is not narrower than 2^-{tol}"
    return res


def _show(t):
    return t if isinstance(t, str) else f"[{t['lo']}, {t['hi']}]"


def integral_text(res):
    """Human-readable lines."""
    def show(j):
        return "-" if j is None else (j if isinstance(j, str) else f"[{j['lo']}, {j['hi']}]")
    part, P = res.partition, res.partition.program
    lines = [f"program   {P.name}({', '.join(P.input_names)})   {part.curve.describe()}   method={part.method}   "
             f"convention={part.convention}",
             f"lhs       f(end) - f(start) = {show(res.lhs)}",
             f"rhs       integral of the AD directional derivative = {show(res.rhs)}   "
             f"({len(part.pieces)} piece(s), {len(part.breakpoints) - 2} interior breakpoint(s))",
             f"lhs - rhs {show(res.difference)}"]
    if res.discontinuity:
        lines.append(f"jump      at t = {show(res.discontinuity['t'])}: {res.discontinuity['reason']}")
    lines.append(f"verdict   {res.verdict.name}" + (f": {res.reason}" if res.reason else
                                                   f" (the two sides agree within 2^-{res.tol})"))
    return "\n".join(lines)


def integral_certificate(res, started=None):
    """A certificate (kind "integral"): the partition's evidence plus every term of the right side."""
    from ..certificates import make
    from .segment import claim_json, partition_evidence
    part = res.partition
    ev = partition_evidence(part)
    terms = []
    for tm in res.terms:
        j = {"lo": A.number_json(tm.lo), "hi": A.number_json(tm.hi), "value": tm.json}
        if tm.kind == "piece":
            j["pattern"] = list(tm.pattern)
        else:
            j["kind"], j["patterns"] = tm.kind, [list(p) for p in tm.patterns]
        terms.append(j)
    ev["terms"] = terms
    claim = {**claim_json(part), "tol": res.tol, "method": part.method}
    return make("integral", part.program, part.convention, claim, res.verdict.name, res.json(), ev,
                part.prec if part.method == "ball" else None, started)


# --------------------------------------------------------------- numbers as the JSON states them, exactly
# The sides are computed from the JSON forms of the terms, in exact rational interval arithmetic, so that a
# checker re-derives exactly the same rhs, difference and verdict from the certificate.

def json_digits(tol):
    """Significant decimal digits for enclosures: enough for a width of 2^-tol."""
    return max(20, (tol * 3) // 10 + 12)


def num_json(x, digits=None):
    """"p/q" for an fmpq (or a radius-0 ball); {"lo", "hi"} outward decimal bounds for a ball, with as many
    digits as it is accurate (the format of every command)."""
    return json_number(x)


def iv_of(j):
    """(lo, hi) exact rationals of a JSON number."""
    if isinstance(j, str):
        f = Fraction(j)
        q = fmpq(f.numerator, f.denominator)
        return q, q
    lo, hi = Fraction(j["lo"]), Fraction(j["hi"])
    return fmpq(lo.numerator, lo.denominator), fmpq(hi.numerator, hi.denominator)


def iv_json(iv, digits=None):
    """An exact rational interval as JSON (``verify.numbers.ball.interval_json``)."""
    return interval_json(*iv)


def iv_sum(ivs):
    lo = hi = fmpq(0)
    for a, b in ivs:
        lo, hi = lo + a, hi + b
    return lo, hi


def iv_sub(a, b):
    return a[0] - b[1], a[1] - b[0]


def value_of(j):
    """A JSON number as fmpq (exact) or an arb ball containing its interval (for the Python API)."""
    lo, hi = iv_of(j)
    if lo == hi:
        return lo
    with ctx.workprec(4 * max(len(str(lo.q)), len(str(hi.q))) + 64):
        return A.interval_ball(lo, hi)


__all__ = ["integral_identity", "IntegralResult", "Integral", "ComplexSystem"]
