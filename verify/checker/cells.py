"""Ball partitions (segment and integral certificates of the ball method): the checker's walks of the program
in balls, at a rational point and over a cell, and the check of every stated cell and cell end.

Over a cell [lo, hi] the program runs on Taylor series in t (``arb_series([X, 1])``: f over it encloses f'
on X; higher orders for germs).  A region's pattern is re-derived with every switching function's sign
decided by its enclosure, by a stated sign the checker proves in balls (the mean value form, or monotonicity:
a tangent without 0 and signs at both ends, one of them possibly 0), or by a stated exact decision the
checker re-derives with its own code (``Decider.verify``):

- ``form``: its own exact form of the switching function (forms.py, symbolic: inputs are atoms) minus the
  stated combination of program variables is exactly 0; the sign is the constant's, or the enclosure's of
  the combination over the cell;
- ``multiple``: the same with a rational multiple of a switching function decided earlier on the path;
- ``monotone``: its tangent over the cell has a sign, and its signs at the ends agree (one may be 0), an end's
  sign by its value or by the stated exact form at that point (forms at the point);
- ``rational``: its own rational function of t through the switching function's cone (rational.py) is the
  stated one, and a Sturm count finds no root inside the cell;
- ``germ``: its value at the stated end is exactly 0, its Taylor coefficients there below the stated order
  are exactly 0, and the order-th coefficient over the whole cell has a sign.

A simple cell re-derives its three patterns with the isolated switching function's sign forced, the same way,
and proves the crossing (monotone, opposite signs at the ends); a cluster's candidates must cover every
pattern that realizable signs give.  At a cell end the pattern is re-derived at the exact point (exact where
the values are rational), with stated ``form`` decisions at the point (forms at the point: exactly known
values are constants).  Precision: the stated one, raised along the checker's own ladder where its own
rounding needs more.
"""
from flint import arb, arb_series, ctx, fmpq, fmpq_poly, fmpq_series

from . import Invalid
from . import common as C
from . import kernel as K
from . import rational as R
from .forms import Forms

Q0, Q1 = K.Q0, K.Q1
BRANCH_CAP = 256


# ---------------------------------------------------------------------------------- walks in balls

def coef(x, i):
    """Coefficient i (0: the value, 1: the t-derivative, ...) of a Taylor series, or of a constant."""
    if isinstance(x, arb_series):
        c = x.coeffs()
        return c[i] if len(c) > i else arb(0)
    return x if i == 0 else Q0


def _need_sign(x, allowed, what):
    s = K.sign(coef(x, 0))
    if s is None:
        raise K.CannotDecide(f"the checker cannot decide {what} over a cell")
    if s not in allowed:
        raise K.Undefined(f"the program is not defined over a cell: {what}")


def series_value(prim, xs, params):
    """A smooth primitive over Taylor series in t on a cell (arb_series: their enclosures prove a sign on a whole
    cell); constants (literals) go to the kernel."""
    if not any(isinstance(x, arb_series) for x in xs):
        return K.smooth_value(prim, xs, params)
    try:
        if prim in ("add", "sub", "mul"):
            a, b = xs
            return a + b if prim == "add" else (a - b if prim == "sub" else a * b)
        if prim == "neg":
            return -xs[0]
        if prim == "div":
            _need_sign(xs[1], (-1, 1), "a divisor")
            return xs[0] / xs[1]
        x = xs[0]
        if prim == "pow":
            n = params["n"]
            if n < 0:
                _need_sign(x, (-1, 1), "a base of a negative power")
                return 1 / K.ipow(x, -n)
            return K.ipow(x, n)
        if prim in ("log", "sqrt"):
            _need_sign(x, (1,), f"the argument of {prim}")
        if prim in ("tanh", "sigmoid"):
            return _logistic(prim, x)
        return getattr(x, prim)()
    except (ValueError, ZeroDivisionError):
        # python-flint refuses a series division whose leading term is not certainly nonzero
        raise K.CannotDecide(f"{prim} cannot be enclosed over this cell") from None


def increasing(v, f):
    """f(v) for an increasing f, from the ends of the ball v: arb's tanh of a wide ball is far wider than
    [-1, 1] (tanh of [-2.5, 2.5] is [+/- 150]), the hull of f at the two ends is what f takes there."""
    direct = f(v)
    if v.rad() == 0:
        return direct
    ends = f(arb(v.lower())).union(f(arb(v.upper())))
    return ends if ends.rad() < direct.rad() else direct


def _logistic(prim, x):
    """tanh or sigmoid of a series: a first-order series [v, d] as [f(v), f'(v) d] (f' = 1 - f^2, f (1 - f)),
    which keeps the enclosure of f(x) - x tight on a cell; a longer one from exponentials."""
    if x.prec <= 2:
        c = x.coeffs()
        v, d = (c[0] if c else arb(0)), (c[1] if len(c) > 1 else arb(0))
        y = increasing(v, (lambda b: b.tanh()) if prim == "tanh" else (lambda b: 1 / (1 + (-b).exp())))
        return arb_series([y, (1 - y * y if prim == "tanh" else y * (1 - y)) * d], prec=2)
    if prim == "tanh":
        return 1 - 2 / ((2 * x).exp() + 1)
    return 1 / (1 + (-x).exp())


class Inconsistent(Exception):
    """Signs that no input realizes together (kernel.consistent)."""


def series_walk(P, xs, decide=None, pieces=None, stop=None, consistent=False, full=False):
    """P over a cell: xs are series (``series_inputs``); ``decide(pos, j, value, tangent, chosen, val)`` sees the
    enclosures of the switching functions over the cell and the walk's values.  Returns (chosen pieces, output
    value, output tangent), or at ``stop`` = (pos, j) that switching function's (value, tangent) (its whole
    series with ``full``).  With ``consistent``, signs no input realizes together raise Inconsistent."""
    val = list(xs) + [None] * (P.n_vars - P.n_inputs)
    chosen = []
    for e in P.eqns:
        vs = [a.value if not isinstance(a, int) else val[a] for a in e.ins]
        params = dict(e.params)
        if e.prim in K.SMOOTH:
            val[e.outs[0]] = series_value(e.prim, vs, params)
            continue
        pos = len(chosen)
        if stop is not None and stop[0] == pos:
            v = R.switch_values(e, vs)[stop[1]]
            return v if full else (coef(v, 0), coef(v, 1))
        if pieces is not None and pos < len(pieces):
            piece = pieces[pos]
        else:
            sws = [(coef(v, 0), coef(v, 1)) for v in R.switch_values(e, vs)]
            signs = [decide(pos, j, v, t, chosen, val) for j, (v, t) in enumerate(sws)]
            if consistent and not K.consistent(e.prim, params, len(e.ins), signs):
                raise Inconsistent()
            piece = K.choose(e.prim, params, len(e.ins), signs)
        chosen.append(piece)
        for o, row in zip(e.outs, piece):
            val[o] = K.apply_piece((row,), vs)[0]
    out = P.outputs[0]
    y = out.value if not isinstance(out, int) else val[out]
    return chosen, coef(y, 0), coef(y, 1)


# Taylor series at a rational point, with exact rational coefficients while they can be: exp, sin, cos, tanh,
# sigmoid of a series that is exactly 0 there (log, sqrt: exactly 1) have rational coefficients (flint's
# fmpq_series), anything else moves to balls.  A germ's coefficients then vanish exactly where they do.
ZERO_AT = {"exp": 0, "sin": 0, "cos": 0, "tanh": 0, "sigmoid": 0, "log": 1, "sqrt": 1}


def _ball_series(x, n):
    return x if isinstance(x, arb_series) else arb_series([arb(c) for c in x.coeffs()] or [arb(0)], prec=n)


def _series_at(x):
    c = x.coeffs()
    return c[0] if c else (Q0 if isinstance(x, fmpq_series) else arb(0))


def _exact_series_value(prim, xs, params, n):
    if all(isinstance(x, fmpq_series) for x in xs):
        if prim in ("add", "sub", "mul"):
            a, b = xs
            return a + b if prim == "add" else (a - b if prim == "sub" else a * b)
        if prim == "neg":
            return -xs[0]
        if prim == "div" and _series_at(xs[1]) != 0:
            return xs[0] / xs[1]
        if prim == "pow" and (params["n"] >= 0 or _series_at(xs[0]) != 0):
            y = fmpq_series([Q1], prec=n)
            for _ in range(abs(params["n"])):
                y = y * xs[0]
            return y if params["n"] >= 0 else fmpq_series([Q1], prec=n) / y
        if ZERO_AT.get(prim) is not None and _series_at(xs[0]) == ZERO_AT[prim]:
            return 1 / (1 + (-xs[0]).exp()) if prim == "sigmoid" else getattr(xs[0], prim)()
    return series_value(prim, [_ball_series(x, n) for x in xs], params)


def _combine(coefs, const, vs, n):
    """const + sum coefs[i] * vs[i] over series, exactly when every term is exact."""
    terms = [(c, v) for c, v in zip(coefs, vs) if c != 0]
    if all(isinstance(v, fmpq_series) for _, v in terms):
        acc = fmpq_series([const], prec=n)
        for c, v in terms:
            acc = acc + v * c
        return acc
    acc = arb_series([arb(const)], prec=n)
    for c, v in terms:
        acc = acc + _ball_series(v, n) * arb(c)
    return acc


def germ_series(P, polys, t, pieces, pos, j, order):
    """The Taylor coefficients (``order`` + 1 of them, fmpq where exact, else arb) at the rational t of switching
    function j of nonsmooth equation ``pos``, with ``pieces`` before it."""
    n = order + 1
    shift = fmpq_poly([t, 1])
    val = [fmpq_series(p(shift).coeffs() or [Q0], prec=n) for p in polys] + [None] * (P.n_vars - P.n_inputs)
    m = 0
    for e in P.eqns:
        vs = [fmpq_series([a.value], prec=n) if not isinstance(a, int) else val[a] for a in e.ins]
        if e.prim in K.SMOOTH:
            try:
                val[e.outs[0]] = _exact_series_value(e.prim, vs, dict(e.params), n)
            except (ValueError, ZeroDivisionError):
                raise K.CannotDecide(f"{e.prim} has no Taylor series at the germ's end") from None
            continue
        if m == pos:
            coefs, const = K.switches(e.prim, dict(e.params), len(e.ins))[j]
            y = _combine(K.merged(coefs, e.ins), const, vs, n)
            c = list(y.coeffs())
            return c + [Q0 if isinstance(y, fmpq_series) else arb(0)] * (n - len(c))
        for o, (coefs, const) in zip(e.outs, pieces[m]):
            val[o] = _combine(coefs, const, vs, n)
        m += 1
    raise Invalid(f"nonsmooth equation {pos + 1} does not exist")


def series_inputs(polys, lo, hi, order=1):
    """gamma over the cell [lo, hi] as Taylor series in t of the given order (Horner over arb_series); at a point
    (lo = hi) from gamma's Taylor coefficients there, computed exactly (an exact 0 stays an exact 0)."""
    if lo == hi:
        shift = fmpq_poly([lo, 1])
        out = []
        for p in polys:
            cs = (p(shift).coeffs() or [Q0])[:order + 1]
            out.append(arb(cs[0]) if len(cs) == 1 else arb_series([arb(c) for c in cs], prec=order + 1))
        return out
    s = arb_series([C.ball_of(lo, hi), 1], prec=order + 1)
    out = []
    for p in polys:
        cs = p.coeffs() or [Q0]
        acc = arb(cs[-1])
        for c in reversed(cs[:-1]):
            acc = acc * s + arb(c)
        out.append(acc)
    return out


def ball_walk(P, xs, ts, decide=None, pieces=None, stop=None, with_env=False):
    """Evaluate P with values and t-tangents (exact or balls): pieces frozen for the first nonsmooth
    equations, the rest chosen by the kernel's index rules with ``decide(pos, j, value, tangent, chosen, val)``.
    Returns (chosen pieces, output value, output tangent), or the (value, tangent) of switch ``stop`` (with
    ``with_env``: (value, the values so far))."""
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
            v, t = R.switch_values(e, vs, tv)[stop[1]]
            return (v, val) if with_env else (v, t)
        if pieces is not None and pos < len(pieces):
            piece = pieces[pos]
        else:
            signs = [decide(pos, j, v, t, chosen, val) for j, (v, t) in enumerate(R.switch_values(e, vs, tv))]
            piece = K.choose(e.prim, params, len(e.ins), signs)
        chosen.append(piece)
        for o, (coefs, const) in zip(e.outs, piece):
            val[o] = K.apply_piece(((coefs, const),), vs)[0]
            tan[o] = K.dot(coefs, tv)
    out = P.outputs[0]
    if not isinstance(out, int):
        return chosen, out.value, Q0
    return chosen, val[out], tan[out]


def strict(pos, j, v, t, chosen, val=None):
    s = K.sign(v)
    if s is None:
        raise K.CannotDecide(f"the checker cannot decide switching function {j + 1} of nonsmooth equation "
                             f"{pos + 1}")
    return s


def at_point(polys, dpolys, t):
    return [R.horner(p, t) for p in polys], [R.horner(p, t) for p in dpolys]


def over_cell(polys, dpolys, lo, hi):
    X = C.ball_of(lo, hi)
    return [R.horner(p, X) for p in polys], [R.horner(p, X) for p in dpolys]


def pattern_at(P, polys, dpolys, t, exact=None):
    """The pieces the index rules choose at the rational t: every switch decided by its value (exact where the
    values are rational), else by a stated ``form`` decision at the point (``exact``: an Evidence); else
    CannotDecide."""
    decide = strict if exact is None else PointDecider(P, exact)
    return ball_walk(P, *at_point(polys, dpolys, t), decide)[0]


def along(polys):
    """Per input, (c0, c1) when it is c0 + c1 t along the curve, else None (symbolic forms, forms.py)."""
    return [(tuple(p.coeffs()) + (Q0, Q0))[:2] if p.degree() <= 1 else None for p in polys]


def end_sign(P, polys, dpolys, t, pieces, pos, j, rel):
    """The sign at the rational t of switching function j of nonsmooth equation ``pos`` (``pieces`` before it):
    its value's (``rel`` None), or the stated relation's, which must be its exact form at the point."""
    if rel is None:
        return switch_at(P, polys, dpolys, t, pieces, pos, j)[0]
    _, val = ball_walk(P, *at_point(polys, dpolys, t), pieces=pieces, stop=(pos, j), with_env=True)
    return form_sign(Forms(P, val, list(pieces), symbolic=False), P, pos, j, rel, val)


def switch_at(P, polys, dpolys, t, pieces, pos, j):
    """(sign or None, value) of switching function j of nonsmooth equation ``pos`` at the rational t, with
    ``pieces`` at the nonsmooth equations before it."""
    v, _ = ball_walk(P, *at_point(polys, dpolys, t), pieces=pieces, stop=(pos, j))
    return K.sign(v), v


# ------------------------------------------------------------------------------ stated decisions

class Evidence:
    """The stated exact decisions of a cell, a branch or a point, keyed by switching function; each one must be
    used (``check_used``)."""

    def __init__(self, entries, what):
        self.what, self.by, self.used = what, {}, set()
        for e in entries or []:
            key = tuple(e["switch"])
            if key in self.by:
                raise Invalid(f"{what}: switching function {list(key)} is decided twice")
            self.by[key] = e
        if [list(k) for k in self.by] != sorted([list(k) for k in self.by]):
            raise Invalid(f"{what}: the exact decisions must be listed by switching function")

    def get(self, pos, j):
        e = self.by.get((pos, j))
        if e is not None:
            self.used.add((pos, j))
        return e

    def check_used(self):
        extra = set(self.by) - self.used
        if extra:
            raise Invalid(f"{self.what}: an exact decision is about no switching function on the path "
                          f"({sorted(extra)[0]})")


def _eqn_of_pos(P, pos):
    eqs = [k for k, e in enumerate(P.eqns) if e.prim not in K.SMOOTH]
    if not 0 <= pos < len(eqs):
        raise Invalid(f"nonsmooth equation {pos + 1} does not exist")
    return eqs[pos]


def _switch_form(F, P, pos, j):
    k = _eqn_of_pos(P, pos)
    e = P.eqns[k]
    sw = K.switches(e.prim, dict(e.params), len(e.ins))
    if not 0 <= j < len(sw):
        raise Invalid(f"nonsmooth equation {pos + 1} has no switching function {j + 1}")
    coefs, const = sw[j]
    return F.affine(e, coefs, const), k


def form_sign(F, P, pos, j, rel, val):
    """The sign a stated ``form`` decision proves: the switching function minus the stated combination must be
    exactly 0 in the checker's forms; then ``relation_sign``."""
    f, k = _switch_form(F, P, pos, j)
    g = F.relation(rel, P.eqns[k].outs[0])
    if not F.lin(((Q1, f), (-Q1, g))).is_zero():
        raise Invalid(f"the stated form of switching function {j + 1} of nonsmooth equation {pos + 1} is not its "
                      "exact form")
    return relation_sign(rel, val)


def relation_sign(rel, val):
    """The sign of a stated combination const + sum coef * v_var: the constant's when there are no terms, else
    its enclosure's from the values ``val`` (CannotDecide when that is undecided)."""
    if not rel["terms"]:
        return K.sign(K.q(rel["const"]))
    acc = K.q(rel["const"])
    for var, c in rel["terms"]:
        acc = acc + K.q(c) * coef(val[var], 0)
    s = K.sign(acc)
    if s is None:
        raise K.CannotDecide("the checker cannot decide the sign of a stated form's enclosure")
    return s


class PointDecider:
    """decide() at a rational point: the value's sign, else a stated ``form`` decision (forms at the point)."""

    def __init__(self, P, exact):
        self.P, self.exact, self.forms = P, exact, None

    def __call__(self, pos, j, v, t, chosen, val):
        s = K.sign(v)
        e = self.exact.get(pos, j)
        if e is None:
            if s is None:
                raise K.CannotDecide(f"the checker cannot decide switching function {j + 1} of nonsmooth "
                                     f"equation {pos + 1} at a point")
            return s
        if "form" not in e:
            raise Invalid("at a point only exact forms decide a sign")
        if self.forms is None or self.forms.val is not val:
            self.forms = Forms(self.P, val, chosen, symbolic=False)
        se = form_sign(self.forms, self.P, pos, j, e["form"], val)
        if se != e["sign"] or (s is not None and s != se):
            raise Invalid(f"the stated sign of switching function {j + 1} of nonsmooth equation {pos + 1} at a point "
                          "is wrong")
        return se


class Decider:
    """decide() over the cell [lo, hi] for ``series_walk``: a ``forced`` sign (a simple cell's branch), the
    enclosure's sign, a ``known`` sign proved in balls (mean value form or monotonicity), or an ``exact``
    decision re-derived (see the module docstring).  ``path`` records every sign decided, in order."""

    def __init__(self, P, polys, dpolys, lo, hi, known, exact, forced=None):
        self.P, self.polys, self.dpolys, self.lo, self.hi = P, polys, dpolys, lo, hi
        self.along = along(polys)
        self.known, self.exact, self.forced = known, exact, forced or {}
        self.used, self.path, self.forms = set(), {}, None

    def __call__(self, pos, j, v, t, chosen, val):
        s = self.forced.get((pos, j))
        if s is None:
            s = self.decide(pos, j, v, t, chosen, val)
        self.path[(pos, j)] = s
        return s

    def decide(self, pos, j, v, t, chosen, val):
        s = K.sign(v)
        e = self.exact.get(pos, j)
        if e is not None:
            if (pos, j) in self.known:
                raise Invalid(f"switching function {j + 1} of nonsmooth equation {pos + 1} is decided twice")
            se = self.verify(e, pos, j, t, chosen, val)
            if se != e["sign"] or (s is not None and s != se):
                raise Invalid(f"the stated sign of switching function {j + 1} of nonsmooth equation {pos + 1} on "
                              f"[{K.qs(self.lo)}, {K.qs(self.hi)}] is wrong")
            return se
        want = self.known.get((pos, j))
        if want is not None:
            self.used.add((pos, j))
            if s is not None and s != want:
                raise Invalid(f"the stated sign of switching function {j + 1} of nonsmooth equation {pos + 1} is "
                              "wrong")
        if s is not None:
            return s
        if want is None:
            raise K.CannotDecide(f"switching function {j + 1} of nonsmooth equation {pos + 1} is undecided on "
                                 f"[{K.qs(self.lo)}, {K.qs(self.hi)}]")
        return self.ball_proof(pos, j, t, list(chosen), want)

    def ball_proof(self, pos, j, t, prefix, want):
        """A stated sign on the cell by the mean value form, or by monotonicity."""
        P, polys, dpolys, lo, hi = self.P, self.polys, self.dpolys, self.lo, self.hi
        _, vm = switch_at(P, polys, dpolys, (lo + hi) / 2, prefix, pos, j)
        if K.sign(vm + t * arb(0, (hi - lo) / 2)) == want:
            return want
        if K.sign(t) in (-1, 1):
            sl = switch_at(P, polys, dpolys, lo, prefix, pos, j)[0]
            sr = switch_at(P, polys, dpolys, hi, prefix, pos, j)[0]
            if sl in (want, 0) and sr in (want, 0) and (sl or sr):
                return want
        raise K.CannotDecide(f"the stated sign of switching function {j + 1} of nonsmooth equation {pos + 1} on "
                             f"[{K.qs(lo)}, {K.qs(hi)}] is not proved")

    # -- exact decisions
    def verify(self, e, pos, j, t, chosen, val):
        """The sign the stated exact decision ``e`` proves (Invalid when it proves nothing); ``t``: the switching
        function's t-derivative over the cell."""
        if "monotone" in e:
            return self.monotone(e["monotone"], pos, j, t, list(chosen))
        if "form" in e or "multiple" in e:
            if self.forms is None or self.forms.val is not val:
                self.forms = Forms(self.P, val, chosen, symbolic=True, along=self.along)
            if "form" in e:
                try:
                    return form_sign(self.forms, self.P, pos, j, e["form"], val)
                except K.CannotDecide:
                    # the form is the switching function's (checked first); the checker's own enclosure of
                    # the combination is too wide: prove the stated sign of the function itself on the cell
                    if e["sign"] == 0:
                        raise
                    return self.ball_proof(pos, j, t, list(chosen), e["sign"])
            return self.multiple(e["multiple"], pos, j)
        if "rational" in e:
            return self.rational(e["rational"], chosen, pos, j)
        return self.germ(e["germ"], chosen, pos, j)

    def multiple(self, m, pos, j):
        of, c = tuple(m["of"]), K.q(m["factor"])
        if of not in self.path or c == 0:
            raise Invalid(f"switching function {j + 1} of nonsmooth equation {pos + 1}: a multiple of a switching "
                          "function not decided before it on the path")
        F = self.forms
        f, _ = _switch_form(F, self.P, pos, j)
        g, _ = _switch_form(F, self.P, *of)
        if not F.lin(((Q1, f), (-c, g))).is_zero():
            raise Invalid(f"switching function {j + 1} of nonsmooth equation {pos + 1} is not the stated multiple")
        return K.sign(c) * self.path[of]

    def monotone(self, m, pos, j, t, prefix):
        if m["lo"] is None and m["hi"] is None:
            raise Invalid("a monotone decision states an exact form at one end at least (else it is a known sign)")
        if K.sign(t) not in (-1, 1):
            raise K.CannotDecide(f"switching function {j + 1} of nonsmooth equation {pos + 1} is not proved monotone "
                                 f"on [{K.qs(self.lo)}, {K.qs(self.hi)}]")
        sl, sr = (end_sign(self.P, self.polys, self.dpolys, x, prefix, pos, j, m[end])
                  for x, end in ((self.lo, "lo"), (self.hi, "hi")))
        if sl is None or sr is None or not (sl or sr) or sl * sr < 0:
            raise K.CannotDecide(f"the signs of switching function {j + 1} of nonsmooth equation {pos + 1} at the "
                                 f"ends of [{K.qs(self.lo)}, {K.qs(self.hi)}] do not give its sign")
        return sl or sr

    def rational(self, r, chosen, pos, j):
        F = R.rational_switch(self.P, self.polys, list(chosen), pos, j)
        if [r["num"], r["den"]] != list(R.rf_json(F)):
            raise Invalid(f"switching function {j + 1} of nonsmooth equation {pos + 1} is not the stated rational "
                          "function of t")
        if F.n.is_zero():
            return 0
        if R.count_open(F.n, self.lo, self.hi):
            raise Invalid(f"the rational switching function {j + 1} of nonsmooth equation {pos + 1} has a root in "
                          f"[{K.qs(self.lo)}, {K.qs(self.hi)}]")
        m = (self.lo + self.hi) / 2
        return K.sign(F.n(m)) * K.sign(F.d(m))

    def germ(self, g, chosen, pos, j):
        end, k = g["end"], g["order"]
        if not isinstance(k, int) or not 1 <= k <= 64 or end not in ("lo", "hi"):
            raise Invalid("a germ needs an end (lo or hi) and an order from 1 to 64")
        t = self.lo if end == "lo" else self.hi
        prefix = list(chosen)
        if switch_at(self.P, self.polys, self.dpolys, t, prefix, pos, j)[0] != 0:
            raise Invalid(f"a germ of switching function {j + 1} of nonsmooth equation {pos + 1} at a point where it "
                          "is not exactly 0")
        at = germ_series(self.P, self.polys, t, prefix, pos, j, k)
        if any(K.sign(c) != 0 for c in at[:k]):
            raise Invalid(f"the Taylor coefficients of switching function {j + 1} of nonsmooth equation {pos + 1} "
                          f"below order {k} are not exactly 0 at the germ's end")
        over = series_walk(self.P, series_inputs(self.polys, self.lo, self.hi, k), pieces=prefix, stop=(pos, j),
                           full=True)
        sk = K.sign(coef(over, k))
        if sk not in (-1, 1):
            raise K.CannotDecide(f"the order-{k} Taylor coefficient of a germ has no sign over the cell")
        return sk * (-1 if end == "hi" else 1) ** k


# ----------------------------------------------------------------------------------------- the cells

def branches(P, polys, lo, hi, cap=BRANCH_CAP):
    """Every pattern the index rules can choose over [lo, hi], branching on undecided signs (-1, 0, 1), keeping
    only sign vectors that some input realizes at each equation (a weak order for max / min / sort)."""
    xs = series_inputs(polys, lo, hi)
    found, stack = [], [{}]
    while stack:
        forced = stack.pop()
        state = {}

        def decide(pos, j, v, t, chosen, val, forced=forced, state=state):
            if (pos, j) in forced:
                return forced[(pos, j)]
            s = K.sign(v)
            if s is None:
                state["open"] = (pos, j)
                raise _Branch()
            return s
        try:
            p = tuple(series_walk(P, xs, decide, consistent=True)[0])
            if p not in found:
                found.append(p)
        except _Branch:
            stack.extend({**forced, state["open"]: s} for s in (1, 0, -1))
        except Inconsistent:
            pass
        if len(found) + len(stack) > cap:
            raise K.CannotDecide("too many branches in a cluster")
    return found


class _Branch(Exception):
    pass


def escalating(fn, prec):
    """fn() at ``prec`` bits, then up the checker's ladder to 4096 while its own arithmetic cannot decide (more
    precision never makes a decided sign wrong; certifier and checker round differently)."""
    for p in C.ladder(prec):
        try:
            with ctx.workprec(p):
                return fn()
        except K.CannotDecide:
            if p >= C.PREC_CAP:
                raise


def _ball_signs(items, what):
    if items != sorted(items) or len({(i[0], i[1]) for i in items}) != len(items):
        raise Invalid(f"{what}: malformed sign claims")
    return {(i[0], i[1]): i[2] for i in items}


def check_region(P, polys, dpolys, table, k, c, lo, hi, prec):
    known = _ball_signs(c["known"], f"cell {k}")
    want = table.pattern(c["pattern"], f"cell {k}")

    def region():
        exact = Evidence(c.get("exact"), f"cell {k}")
        d = Decider(P, polys, dpolys, lo, hi, known, exact)
        got = series_walk(P, series_inputs(polys, lo, hi), d)[0]
        if tuple(got) != want:
            raise Invalid(f"the pattern on cell {k} is not the one the index rules choose")
        if d.used != set(known):
            raise Invalid(f"cell {k}: a sign claim is about no switching function on the path")
        exact.check_used()
    escalating(region, prec)
    return [("O", tuple(c["pattern"]))]


def check_simple(P, polys, dpolys, table, k, c, lo, hi, tol, prec):
    if hi - lo >= fmpq(1, 2 ** tol):
        raise Invalid(f"simple cell {k} is not narrower than 2^-{tol}")
    pos, j = c["switch"]
    sl, sr = c["signs"]
    pats = c["patterns"]
    if sl * sr != -1:
        raise Invalid(f"simple cell {k}: the signs at its ends must be opposite")
    wants = [table.pattern(pat, f"cell {k}") for pat in pats]
    knowns = [_ball_signs(b, f"simple cell {k}") for b in c.get("known", [[], [], []])]
    exacts = c.get("exact", [[], [], []])

    def simple():
        xs = series_inputs(polys, lo, hi)
        outs = []
        for s, want, known, ex in zip((sl, 0, sr), wants, knowns, exacts):
            exact = Evidence(ex, f"simple cell {k}")
            d = Decider(P, polys, dpolys, lo, hi, known, exact, forced={(pos, j): s})
            outs.append(tuple(series_walk(P, xs, d)[0]))
            if outs[-1] != want:
                raise Invalid(f"a pattern of simple cell {k} is not the one the index rules choose")
            if d.used != set(known):
                raise Invalid(f"simple cell {k}: a sign claim is about no switching function on the path")
            exact.check_used()
        prefix = list(outs[0][:pos])
        v, t = series_walk(P, xs, pieces=prefix, stop=(pos, j))
        if K.sign(t) not in (-1, 1) or switch_at(P, polys, dpolys, lo, prefix, pos, j)[0] != sl or \
                switch_at(P, polys, dpolys, hi, prefix, pos, j)[0] != sr:
            raise K.CannotDecide(f"simple cell {k}: the switching function is not proved to cross 0 exactly once")
    escalating(simple, prec)
    return [("O", tuple(pats[0])), ("S", (lo, hi), tuple(pats[1])), ("O", tuple(pats[2]))]


def check_cluster(P, polys, table, k, c, lo, hi, tol, prec):
    if hi - lo >= fmpq(1, 2 ** tol):
        raise Invalid(f"cluster {k} is not narrower than 2^-{tol}")
    if c["candidates"] != sorted(c["candidates"]):
        raise Invalid(f"the candidate patterns of cluster {k} must be listed in order")
    cands = [table.pattern(pat, f"cell {k}") for pat in c["candidates"]]
    with ctx.workprec(prec):
        mine = branches(P, polys, lo, hi)
    # the claim is "the pattern inside is one of these": the candidates must cover every pattern that signs
    # realizable together give (the certifier may list more: patterns of sign vectors no input realizes)
    if len(set(cands)) != len(cands) or not set(mine) <= set(cands):
        raise Invalid(f"the candidate patterns of cluster {k} do not cover the possible ones")
    return [("X", (lo, hi), tuple(tuple(p) for p in c["candidates"]))]


def check_ball(P, polys, dpolys, ev, table, tol, prec):
    """Validate the cells and their ends; return (atoms, cells as (kind, lo, hi, cell json))."""
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

        def at(t=bounds[k], p=p, k=k):
            exact = Evidence(p.get("exact"), f"point {k}")
            got = tuple(pattern_at(P, polys, dpolys, t, exact))
            exact.check_used()
            return got
        if escalating(at, prec) != want:
            raise Invalid(f"the pattern at cell boundary {k} is not the one the index rules choose")
    atoms = [("P", bounds[0], tuple(pts[0]["pattern"]))]
    own = []
    for k, c in enumerate(cells):
        lo, hi = K.q(c["lo"]), K.q(c["hi"])
        if (lo, hi) != (bounds[k], bounds[k + 1]) or not lo < hi:
            raise Invalid(f"cell {k} does not fit between its boundary points")
        if c["kind"] == "region":
            atoms += check_region(P, polys, dpolys, table, k, c, lo, hi, prec)
        elif c["kind"] == "simple":
            atoms += check_simple(P, polys, dpolys, table, k, c, lo, hi, tol, prec)
        else:
            atoms += check_cluster(P, polys, table, k, c, lo, hi, tol, prec)
        own.append((c["kind"], lo, hi, c))
        atoms.append(("P", bounds[k + 1], tuple(pts[k + 1]["pattern"])))
    return atoms, own
