"""The checker's own small evaluator: primitive values, piece sets and forward-mode derivatives, written
independently of verify.prims / verify.evaluate / verify.ad so that a certificate is re-validated by
different code than the code that produced it.

Numbers are exact (fmpq) or balls (arb at the caller's precision).  ``sign`` returns -1, 0, 1 or None
(undecided); nothing here turns an undecided comparison into a decision.  A piece is a tuple of rows, one
per output, each row (coefficients tuple, constant) with fmpq entries: output = coefficients . inputs +
constant.
"""
import itertools

from flint import arb, fmpq, fmpz

from ..rational import MAX_BITS, fmt_q     # exact values larger than MAX_BITS are refused, not computed
from . import Invalid


class CannotDecide(Invalid):
    """The checker's own arithmetic cannot decide a comparison (valid only for an UNDECIDED certificate)."""


class Undefined(Invalid):
    """The program (or a frozen program f_s) is not defined at the point: log of a non-positive number..."""

Q0, Q1 = fmpq(0), fmpq(1)


def q(s):
    """An exact number string "p/q" as fmpq (Invalid otherwise)."""
    if not isinstance(s, str):
        raise Invalid(f"expected an exact number string, got {s!r}")
    try:
        if "/" in s:
            p, d = s.split("/")
            return fmpq(int(p), int(d))
        return fmpq(int(s))
    except (ValueError, ZeroDivisionError):
        raise Invalid(f"{s!r} is not an exact number") from None


def qs(x):
    return fmt_q(x)


def sign(x):
    if isinstance(x, fmpq):
        return (x > 0) - (x < 0)
    if x > 0:
        return 1
    if x < 0:
        return -1
    return 0 if x.is_zero() else None


def arf_q(a):
    """An arf (a ball's exact midpoint or radius) as an fmpq, without rounding."""
    m, e = (int(t) for t in a.man_exp())
    if abs(e) > MAX_BITS:
        raise Invalid(f"a number m * 2^{e} is beyond the checker's exact range ({MAX_BITS} bits)")
    return fmpq(m << e) if e >= 0 else fmpq(m, 1 << -e)


def exact_of(x):
    """The exact rational value of x when the checker knows it exactly (an fmpq, or a finite arb of radius 0),
    else None (a ball, a series)."""
    if isinstance(x, fmpq):
        return x
    if isinstance(x, arb) and x.is_finite() and x.is_exact():
        return arf_q(x.mid())
    return None


def _ball(x):
    return x if isinstance(x, arb) else arb(x)


def _isqrt_q(x):
    p, d = fmpz(x.p), fmpz(x.q)
    if p >= 0 and p.isqrt() ** 2 == p and d.isqrt() ** 2 == d:
        return fmpq(p.isqrt(), d.isqrt())
    return None


def ipow(x, n):
    """x ** n (n >= 0) by repeated squaring (arb ** int is nan for a ball around 0 in python-flint 0.9); exact
    for an fmpq; any value with * (balls, series)."""
    if isinstance(x, fmpq):
        return x ** n
    out, base = Q1, x
    while n:
        if n & 1:
            out = out * base
        n >>= 1
        if n:
            base = base * base
    return out


def _zero(x):
    return isinstance(x, fmpq) and x == 0


def dot(coefs, vals):
    """sum c * v, skipping exact zeros on either side (symbolic zeros: a literal's tangent is 0, and 0 times a
    ball would turn an exact sum into a ball)."""
    acc = Q0
    for c, v in zip(coefs, vals):
        if not (_zero(c) or _zero(v)):
            acc = acc + c * v
    return acc


def _need(ok, msg):
    if ok is None:
        raise CannotDecide(f"the checker cannot decide: {msg}")
    if not ok:
        raise Undefined(f"the program is not defined here: {msg}")


def _size(*xs, times=1):
    bits = sum(x.height_bits() for x in xs if isinstance(x, fmpq)) * times
    if bits > MAX_BITS:
        raise Invalid(f"an exact value of the certificate would need about {bits} bits (the checker's limit is "
                      f"{MAX_BITS})")


STEPS = ("floor", "ceil", "round", "trunc")
SPECIAL = ("lgamma", "polygamma", "erfinv", "bessel_i")


def special(prim, x, params):
    """lgamma, polygamma(n), erfinv, bessel_i(n) of an fmpq or a ball, with the checker's own domain checks: the
    poles of lgamma and polygamma (non-positive integers), |x| < 1 for erfinv."""
    from flint import acb
    if prim in ("lgamma", "polygamma"):
        b = _ball(x)
        if not b > 0:
            near = b.mid().floor()
            if isinstance(x, fmpq) and x.q == 1 and x <= 0:
                raise Undefined(f"the program is not defined here: {prim} has a pole at {x}")
            if (b - near).contains(0) or (b - near - 1).contains(0):
                raise CannotDecide(f"the checker cannot decide whether {prim}'s argument is a pole")
        if prim == "lgamma":
            if isinstance(x, fmpq) and x in (1, 2):
                return Q0
            return b.lgamma() if b > 0 else acb(b).lgamma().real
        n = params["n"]
        return b.digamma() if n == 0 else acb(b).polygamma(n).real
    if prim == "erfinv":
        s = sign(1 - x * x)
        _need(None if s is None else s > 0, "erfinv of a number outside (-1, 1)")
        return Q0 if isinstance(x, fmpq) and x == 0 else _ball(x).erfinv()
    n = params["n"]
    if isinstance(x, fmpq) and x == 0:
        return fmpq(1 if n == 0 else 0)
    return _ball(x).bessel_i(n)


def step(prim, x):
    """floor / ceil / round (half to even) / trunc of an fmpq or a ball: exact, or CannotDecide when the ball
    reaches a jump."""
    if isinstance(x, fmpq):
        p, d = int(x.p), int(x.q)
        fl = p // d
        if prim == "floor" or (prim == "trunc" and p >= 0):
            return fmpq(fl)
        if prim == "ceil" or prim == "trunc":
            return fmpq(-((-p) // d))
        twice = 2 * p - (2 * fl + 1) * d            # sign of x - (floor + 1/2)
        return fmpq(fl if twice < 0 or (twice == 0 and fl % 2 == 0) else fl + 1)
    lo, hi = x.lower(), x.upper()
    if not (lo.is_finite() and hi.is_finite()):
        raise CannotDecide(f"the checker cannot decide {prim} of a non-finite ball")
    a, b = step(prim, _exact_q(lo)), step(prim, _exact_q(hi))
    if a != b:
        raise CannotDecide(f"the checker cannot decide {prim} of a ball that reaches a jump")
    return a


def _exact_q(x):
    return arf_q(x.mid())


def smooth_value(prim, xs, params):
    """Value of a smooth primitive (exact when the result is rational at a rational point, else a ball)."""
    if prim in ("mul", "div"):
        _size(*xs)
    if prim == "pow":
        _size(xs[0], times=abs(params["n"]))
    if prim in ("add", "sub", "mul"):
        a, b = xs
        return a + b if prim == "add" else (a - b if prim == "sub" else a * b)
    if prim == "div":
        s = sign(xs[1])
        _need(None if s is None else s != 0, "division by zero")
        return xs[0] / xs[1]
    if prim == "neg":
        return -xs[0]
    x = xs[0]
    if prim in STEPS:
        return step(prim, x)
    if prim in SPECIAL:
        return special(prim, x, params)
    if prim == "pow":
        n = params["n"]
        if n < 0:
            s = sign(x)
            _need(None if s is None else s != 0, "0 to a negative power")
            return 1 / ipow(x, -n)
        return ipow(x, n)
    if prim in ("log", "sqrt"):
        s = sign(x)
        _need(None if s is None else s > 0, f"{prim} of a non-positive number")
    if isinstance(x, fmpq):
        if x == 0 and prim in ("exp", "cos"):
            return Q1
        if x == 0 and prim in ("sin", "tanh", "erf", "atan"):
            return Q0
        if x == 0 and prim == "sigmoid":
            return fmpq(1, 2)
        if x == 1 and prim == "log":
            return Q0
        if prim == "sqrt" and _isqrt_q(x) is not None:
            return _isqrt_q(x)
    b = _ball(x)
    if prim == "sigmoid":
        return 1 / (1 + (-b).exp())
    return getattr(b, prim)()


def smooth_partials(prim, xs, y, params):
    """Partial derivatives of a smooth primitive at xs (y is its value)."""
    if prim == "add":
        return (Q1, Q1)
    if prim == "sub":
        return (Q1, -Q1)
    if prim == "mul":
        return (xs[1], xs[0])
    if prim == "div":
        return (1 / xs[1], -y / xs[1])
    if prim == "neg":
        return (-Q1,)
    x = xs[0]
    if prim in STEPS:
        return (Q0,)
    if prim == "lgamma":
        return (special("polygamma", x, {"n": 0}),)
    if prim == "polygamma":
        return (special("polygamma", x, {"n": params["n"] + 1}),)
    if prim == "erfinv":
        return (arb.pi().sqrt() / 2 * (_ball(y) * _ball(y)).exp(),)
    if prim == "bessel_i":
        n = params["n"]
        b = _ball(x)
        return (b.bessel_i(1) if n == 0 else (b.bessel_i(n - 1) + b.bessel_i(n + 1)) / 2,)
    if prim == "pow":
        n = params["n"]
        return (Q0,) if n == 0 else (n * (ipow(x, n - 1) if n - 1 >= 0 else 1 / ipow(x, 1 - n)),)
    return ({"exp": lambda: y, "log": lambda: 1 / x, "sqrt": lambda: 1 / (2 * y),
             "sin": lambda: smooth_value("cos", xs, params), "cos": lambda: -smooth_value("sin", xs, params),
             "tanh": lambda: 1 - y * y, "sigmoid": lambda: y * (1 - y),
             "erf": lambda: 2 / arb.pi().sqrt() * (-_ball(x) * _ball(x)).exp(),
             "atan": lambda: 1 / (1 + x * x)}[prim](),)


# smooth primitives the checker has no rule of its own for (polynomial roots, the matrix exponential): a
# certificate of a program that uses one is refused (checker/common.py's ``program``)
NO_RULE = ("root", "expm")

SMOOTH = ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "erf",
          "atan") + STEPS + SPECIAL     # the equations with a value rule (the steps' derivative is 0)


def _row(n, coefs, const=Q0):
    return (tuple(fmpq(c) for c in coefs), fmpq(const))


def _unit(n, i, w=Q1):
    return tuple(fmpq(w) if j == i else Q0 for j in range(n))


def pieces(prim, params, n):
    """The set of pieces (affine maps) of a nonsmooth primitive, as a list without repeats."""
    out = []

    def add(piece):
        if piece not in out:
            out.append(piece)
    if prim in ("relu", "abs", "leaky_relu"):
        left = {"relu": Q0, "abs": -Q1, "leaky_relu": params.get("slope")}[prim]
        kink = {"relu": params.get("alpha"), "abs": params.get("at_zero"),
                "leaky_relu": params.get("at_zero") if params.get("at_zero") is not None else params.get("slope")}[prim]
        for c in (left, Q1, kink):
            add((_row(1, (c,)),))
    elif prim in ("clamp", "hardtanh", "relu6"):
        lo, hi = (Q0, fmpq(6)) if prim == "relu6" else (params.get("lo"), params.get("hi"))
        add((_row(1, (Q1,)),))
        for b, d in ((lo, params.get("at_lo")), (hi, params.get("at_hi"))):
            if b is not None:
                add((_row(1, (Q0,), b),))
                add((_row(1, (d,), (1 - d) * b),))
    elif prim == "mode":
        for i in range(n):
            add((_row(n, _unit(n, i)),))
    elif prim in ("max", "min", "kth"):
        if params.get("tie") == "split":
            for k in range(1, n + 1):
                for sub in itertools.combinations(range(n), k):
                    add((_row(n, tuple(fmpq(1, k) if j in sub else Q0 for j in range(n))),))
        else:
            for i in range(n):
                add((_row(n, _unit(n, i)),))
    elif prim == "sort":
        for perm in itertools.permutations(range(n)):
            add(tuple(_row(n, _unit(n, perm[r])) for r in range(n)))
    elif prim == "where":
        add((_row(4, _unit(4, 2)),))
        add((_row(4, _unit(4, 3)),))
    else:
        raise Invalid(f"unknown primitive {prim!r}")
    return out


def nonsmooth_value(prim, xs, params):
    """The primitive's value, computed from its definition (not from its pieces); signs must be decided."""
    def s(v, what):
        r = sign(v)
        if r is None:
            raise CannotDecide(f"the checker cannot decide the sign of {what}")
        return r
    if prim == "relu":
        return [xs[0] if s(xs[0], "relu's argument") > 0 else Q0]
    if prim == "abs":
        return [xs[0] if s(xs[0], "abs's argument") >= 0 else -xs[0]]
    if prim == "leaky_relu":
        return [xs[0] if s(xs[0], "leaky_relu's argument") > 0 else params["slope"] * xs[0]]
    if prim in ("clamp", "hardtanh", "relu6"):
        lo, hi = (Q0, fmpq(6)) if prim == "relu6" else (params.get("lo"), params.get("hi"))
        x = xs[0]
        if lo is not None and s(x - lo, "x - lo") < 0:
            return [lo]
        if hi is not None and s(x - hi, "x - hi") > 0:
            return [hi]
        return [x]
    if prim in ("max", "min", "sort", "kth", "mode"):
        def cmp(i, j):       # one variable twice is one number: an exact tie even when it is a ball
            return 0 if xs[i] is xs[j] else s(xs[i] - xs[j], "a difference of arguments")
        order = list(range(len(xs)))
        for i in range(1, len(order)):        # insertion sort with decided comparisons only
            j = i
            while j > 0 and cmp(order[j - 1], order[j]) > 0:
                order[j - 1], order[j] = order[j], order[j - 1]
                j -= 1
        srt = [xs[i] for i in order]
        if prim == "mode":         # runs of equal values in sorted order; the longest, the first (smallest) of them
            runs, start = [], 0
            for r in range(1, len(order) + 1):
                if r == len(order) or cmp(order[r - 1], order[r]) != 0:
                    runs.append((r - start, start))
                    start = r
            most = max(c for c, _ in runs)
            return [srt[next(s for c, s in runs if c == most)]]
        if prim == "kth":
            return [srt[params["k"]]]
        if prim == "max":
            return [srt[-1]]
        if prim == "min":
            return [srt[0]]
        return srt[::-1] if params.get("descending") else srt
    if prim == "where":
        d = 0 if xs[0] is xs[1] else s(xs[0] - xs[1], "where's condition")
        holds = {">": d > 0, ">=": d >= 0, "<": d < 0, "<=": d <= 0, "==": d == 0, "!=": d != 0}[params["op"]]
        return [xs[2] if holds else xs[3]]
    raise Invalid(f"unknown primitive {prim!r}")


def merged(coefs, ins):
    """Coefficients of an affine map of the inputs ``ins`` with the terms on one variable added up (the terms
    of max(v, v) on its two arguments are one term, so v - v is exactly 0 whatever v is)."""
    out = list(coefs)
    for j, a in enumerate(ins):
        if isinstance(a, int):
            first = ins.index(a)
            if first != j:
                out[first], out[j] = out[first] + out[j], Q0
    return tuple(out)


def difference(p, q, ins, xs):
    """p(xs) - q(xs) for two pieces, row by row, with the terms on one variable merged: exact 0 when the two
    maps agree as functions of the distinct variables."""
    return [affine_value((merged(tuple(a - b for a, b in zip(ca, cb)), ins), ka - kb), xs)
            for (ca, ka), (cb, kb) in zip(p, q)]


def combine(coefs, const, xs):
    """const + sum c * x, summed as the certifiers sum: a coefficient 1 or -1 multiplies nothing, a zero
    constant adds nothing (a product by an exact 1 can widen a huge ball of a series in python-flint 0.9)."""
    acc = None
    for c, x in zip(coefs, xs):
        if c != 0:
            t = x if c == 1 else (-x if c == -1 else c * x)
            acc = t if acc is None else acc + t
    if acc is None:
        return const
    return acc if const == 0 else acc + const


def apply_piece(piece, xs):
    return [combine(coefs, const, xs) for coefs, const in piece]


def piece_json(piece):
    return [[qs(c) for c in coefs] + [qs(const)] for coefs, const in piece]


def piece_from_json(rows):
    try:
        return tuple((tuple(q(c) for c in r[:-1]), q(r[-1])) for r in rows)
    except (TypeError, IndexError):
        raise Invalid(f"malformed piece {rows!r}") from None


class Frozen:
    """A program evaluated with given pieces at its nonsmooth equations (or with the primitives' own values
    when ``pieces_of`` is None), carrying the dense gradient of every variable (forward mode)."""

    def __init__(self, program, x, pieces_of=None, want_grad=True):
        n = program.n_inputs
        want_grad = want_grad and pieces_of is not None   # a gradient needs a piece at every kink
        self.program = program
        self.val = list(x) + [None] * (program.n_vars - n)
        self.grad = [[Q1 if j == i else Q0 for j in range(n)] for i in range(n)] + [None] * (program.n_vars - n)
        self.args = []
        zero = [Q0] * n
        k = 0
        for e in program.eqns:
            xs = [a.value if not isinstance(a, int) else self.val[a] for a in e.ins]
            gs = [zero if not isinstance(a, int) else self.grad[a] for a in e.ins]
            self.args.append(xs)
            params = dict(e.params)
            if e.prim in SMOOTH:
                y = smooth_value(e.prim, xs, params)
                ys = [y]
                if want_grad:
                    ps = smooth_partials(e.prim, xs, y, params)
                    gys = [[dot(ps, [g[j] for g in gs]) for j in range(n)]]
            else:
                if pieces_of is None:
                    ys = nonsmooth_value(e.prim, xs, params)
                    gys = None
                else:
                    piece = pieces_of[k]
                    ys = apply_piece(piece, xs)
                    gys = [[dot(coefs, [g[j] for g in gs]) for j in range(n)]
                           for coefs, _ in piece] if want_grad else None
                k += 1
            for o, y in zip(e.outs, ys):
                self.val[o] = y
            if want_grad and gys is not None:
                for o, gy in zip(e.outs, gys):
                    self.grad[o] = gy

    def outputs(self):
        return [a.value if not isinstance(a, int) else self.val[a] for a in self.program.outputs]

    def jacobian(self):
        n = self.program.n_inputs
        return [[Q0] * n if not isinstance(a, int) else self.grad[a] for a in self.program.outputs]


class Tape:
    """The program evaluated once at x by the primitives' own definitions (or by the ``pieces`` chosen there,
    which agree with them): every variable's value, every equation's arguments, and the partial derivatives
    of every smooth equation.  For the patterns of a local
    index set (every piece agrees with its primitive at x, so every variable has the same value under every
    one of them) the selection Jacobians are reverse sweeps over these shared values with the patterns' pieces
    at the nonsmooth equations, skipping zero cotangents (symbolic zeros); ``jacobians`` sweeps the part after
    the last equation where the patterns differ once for all of them."""

    def __init__(self, program, x, pieces=None):
        F = Frozen(program, x, pieces, want_grad=False)
        self.pieces = pieces
        self.program, self.val, self.args = program, F.val, F.args
        self.ops, self.eq_of_pos = [], []
        for k, e in enumerate(program.eqns):
            if e.prim in SMOOTH:
                ps = smooth_partials(e.prim, F.args[k], F.val[e.outs[0]], dict(e.params))
                self.ops.append((e.outs[0], tuple((a, d) for a, d in zip(e.ins, ps)
                                                  if isinstance(a, int) and not _zero(d)), None))
            else:
                self.ops.append((e.outs, tuple(a if isinstance(a, int) else None for a in e.ins),
                                 len(self.eq_of_pos)))
                self.eq_of_pos.append(k)

    def outputs(self):
        return [a.value if not isinstance(a, int) else self.val[a] for a in self.program.outputs]

    def _sweep(self, ct, hi, lo, pieces):
        """Reverse sweep over equations hi, hi - 1, ..., lo, in place on the cotangents ``ct`` (None: zero)."""
        ops = self.ops
        for k in range(hi, lo - 1, -1):
            outs, ins, pos = ops[k]
            if pos is None:
                c = ct[outs]
                if c is None:
                    continue
                ct[outs] = None
                for a, d in ins:
                    v = ct[a]
                    ct[a] = c * d if v is None else v + c * d
                continue
            for o, (coefs, _) in zip(outs, pieces[pos]):
                c = ct[o]
                if c is None:
                    continue
                ct[o] = None
                for a, w in zip(ins, coefs):
                    if a is not None and w != 0:
                        v = ct[a]
                        ct[a] = c * w if v is None else v + c * w

    def jacobians(self, patterns):
        """The selection Jacobian (rows = outputs) of every pattern (a tuple of pieces per nonsmooth equation)."""
        P = self.program
        n, last = P.n_inputs, len(P.eqns) - 1
        vary = [m for m in range(len(self.eq_of_pos)) if len({p[m] for p in patterns}) > 1]
        split = self.eq_of_pos[max(vary)] if vary else -1        # equations after split: the same for all
        out = [[] for _ in patterns]
        for o in P.outputs:
            if not isinstance(o, int):
                for rows in out:
                    rows.append([Q0] * n)
                continue
            ct = [None] * P.n_vars
            ct[o] = Q1
            if patterns:
                self._sweep(ct, last, split + 1, patterns[0])
            for rows, pat in zip(out, patterns):
                c2 = ct[:]
                self._sweep(c2, split, 0, pat)
                rows.append([Q0 if c2[j] is None else c2[j] for j in range(n)])
        return out

    def jacobian(self, pieces):
        return self.jacobians([tuple(pieces)])[0]


def nonsmooth_eqns(program):
    return [e for e in program.eqns if e.prim not in SMOOTH]


# ------------------------------------------------------------------------------ index rules (for Clarke)
# Switching functions, in the documented order every certificate uses: relu, abs, leaky_relu: [u];
# clamp, hardtanh, relu6: [x - lo, x - hi] (those bounds that exist); max, min, sort: x_i - x_j for the
# pairs i < j in lexicographic order; where: [u - v].  Each is (coefficients tuple, constant).

def bounds(prim, params):
    return (Q0, fmpq(6)) if prim == "relu6" else (params.get("lo"), params.get("hi"))


def switches(prim, params, n):
    if prim in ("relu", "abs", "leaky_relu"):
        return [((Q1,), Q0)]
    if prim in ("clamp", "hardtanh", "relu6"):
        return [((Q1,), -b) for b in bounds(prim, params) if b is not None]
    if prim in ("max", "min", "sort", "kth", "mode"):
        return [(tuple(Q1 if k == i else (-Q1 if k == j else Q0) for k in range(n)), Q0)
                for i in range(n) for j in range(i + 1, n)]
    if prim == "where":
        return [((Q1, -Q1, Q0, Q0), Q0)]
    raise Invalid(f"unknown primitive {prim!r}")


def consistent(prim, params, n, signs):
    """Can the switching functions of the primitive take these signs together, at some input?  Pairwise
    differences (max, min, sort) must be a weak order of the arguments; clamp's x - lo > x - hi; single
    switches take any sign."""
    if prim in ("max", "min", "sort", "kth", "mode"):
        pairs = {(i, j): k for k, (i, j) in enumerate((i, j) for i in range(n) for j in range(i + 1, n))}

        def d(i, j):
            return 0 if i == j else (signs[pairs[(i, j)]] if i < j else -signs[pairs[(j, i)]])
        for i in range(n):
            for j in range(n):
                for k in range(n):
                    a, b = d(i, j), d(j, k)
                    if a >= 0 and b >= 0 and d(i, k) < (1 if a > 0 or b > 0 else 0):
                        return False
        return True
    if prim in ("clamp", "hardtanh", "relu6"):
        lo, hi = bounds(prim, params)
        if lo is not None and hi is not None:
            s_lo, s_hi = signs[0], signs[1]
            return (s_hi < 0 or s_lo > 0) and (s_lo > 0 or s_hi < 0)
    return True


def _choose_kink(prim, params, signs):
    """The one-row piece of relu, abs or leaky_relu for the decided sign of its switch."""
    s = signs[0]
    left = {"relu": Q0, "abs": -Q1, "leaky_relu": params.get("slope")}[prim]
    kink = {"relu": params.get("alpha"), "abs": params.get("at_zero"),
            "leaky_relu": params.get("at_zero") if params.get("at_zero") is not None else params.get("slope")}[prim]
    return (_row(1, (left if s < 0 else (Q1 if s > 0 else kink),)),)


def _choose_clamp(prim, params, signs):
    """The one-row piece of clamp, hardtanh or relu6 for the decided signs of its bound switches."""
    lo, hi = bounds(prim, params)
    k = 0
    if lo is not None:
        if signs[k] < 0:
            return (_row(1, (Q0,), lo),)
        if signs[k] == 0:
            d = params["at_lo"]
            return (_row(1, (d,), (1 - d) * lo),)
        k += 1
    if hi is not None:
        if signs[k] > 0:
            return (_row(1, (Q0,), hi),)
        if signs[k] == 0:
            d = params["at_hi"]
            return (_row(1, (d,), (1 - d) * hi),)
    return (_row(1, (Q1,)),)


def _pair_comparer(n, signs):
    """cmp(i, j): the decided sign of x_i - x_j, read from the signs of the pairs i < j in row-major order."""
    pairs = {(i, j): k for k, (i, j) in enumerate((i, j) for i in range(n) for j in range(i + 1, n))}

    def cmp(i, j):
        return 0 if i == j else (signs[pairs[(i, j)]] if i < j else -signs[pairs[(j, i)]])
    return cmp


def _choose_mode(params, n, cmp):
    """The unit row of the mode's pick (the largest of the lowest most frequent values); CannotDecide at an
    unspecified tie."""
    freq = [sum(cmp(i, j) == 0 for j in range(n)) for i in range(n)]
    most = max(freq)
    cands = [i for i in range(n) if freq[i] == most]
    low = [i for i in cands if all(cmp(i, j) <= 0 for j in cands)]
    if len(low) > 1 and params.get("tie") == "unspecified":
        raise CannotDecide("the checker cannot decide a mode whose tie rule is unspecified")
    return (_row(n, _unit(n, max(low))),)


def _choose_kth(params, n, cmp, unspecified):
    """The row of the k-th order statistic (split evenly, or the first or last of a tied group); CannotDecide
    at a tie whose rule is unspecified."""
    k = params["k"]
    group = [i for i in range(n) if sum(cmp(j, i) < 0 for j in range(n)) <= k <
             sum(cmp(j, i) <= 0 for j in range(n))]
    if unspecified and len(group) > 1:
        raise CannotDecide("the checker cannot decide an order statistic at a tie whose rule is unspecified")
    tie = params.get("tie")
    if tie == "split":
        return (_row(n, tuple(fmpq(1, len(group)) if j in group else Q0 for j in range(n))),)
    return (_row(n, _unit(n, group[-1] if tie == "last" else group[0])),)


def _choose_sort(params, n, cmp):
    """The n unit rows of the sorting permutation (by value, then by the tie order)."""
    down = -1 if params.get("descending") else 1
    rev = -1 if params.get("ties") == "reverse" else 1
    order = list(range(n))
    for a in range(1, n):               # insertion sort by (value, tie order)
        b = a
        while b > 0 and (cmp(order[b - 1], order[b]) * down > 0 or
                         (cmp(order[b - 1], order[b]) == 0 and (order[b - 1] - order[b]) * rev > 0)):
            order[b - 1], order[b] = order[b], order[b - 1]
            b -= 1
    return tuple(_row(n, _unit(n, order[r])) for r in range(n))


def _choose_extreme(prim, params, n, cmp):
    """The row of max or min (split evenly over the tied best, or the first or last of them)."""
    sgn = 1 if prim == "max" else -1
    best = [i for i in range(n) if all(cmp(i, j) * sgn >= 0 for j in range(n))]
    tie = params.get("tie")
    if tie == "split":
        return (_row(n, tuple(fmpq(1, len(best)) if j in best else Q0 for j in range(n))),)
    return (_row(n, _unit(n, best[0] if tie == "first" else best[-1])),)


def _choose_order(prim, params, n, signs):
    """The piece of max, min, sort, kth or mode for the decided signs of the pairwise differences."""
    cmp = _pair_comparer(n, signs)
    if prim == "mode":
        return _choose_mode(params, n, cmp)
    unspecified = "unspecified" in (params.get("ties"), params.get("tie"))
    if prim == "kth":
        return _choose_kth(params, n, cmp, unspecified)
    if prim == "sort" and unspecified and any(s == 0 for s in signs):
        raise CannotDecide("the checker cannot decide a sort at a tie whose order is unspecified")
    if prim == "sort":
        return _choose_sort(params, n, cmp)
    return _choose_extreme(prim, params, n, cmp)


def choose(prim, params, n, signs):
    """The piece (affine map) the index rule picks for the given decided signs of the switches."""
    if prim in ("relu", "abs", "leaky_relu"):
        return _choose_kink(prim, params, signs)
    if prim in ("clamp", "hardtanh", "relu6"):
        return _choose_clamp(prim, params, signs)
    if prim in ("max", "min", "sort", "kth", "mode"):
        return _choose_order(prim, params, n, signs)
    if prim == "where":
        d = signs[0]
        holds = {">": d > 0, ">=": d >= 0, "<": d < 0, "<=": d <= 0, "==": d == 0, "!=": d != 0}[params["op"]]
        return (_row(4, _unit(4, 2 if holds else 3)),)
    raise Invalid(f"unknown primitive {prim!r}")


def affine_value(form, xs):
    return combine(form[0], form[1], xs)


def _linear(e):
    lit = [not isinstance(a, int) for a in e.ins]
    if e.prim in ("add", "sub", "neg") or (e.prim == "mul" and any(lit)) or (e.prim == "div" and lit[1]):
        return True
    if e.prim == "pow" and dict(e.params)["n"] in (0, 1):
        return True
    return e.prim not in SMOOTH


def affine_switch(program, k, coefs):
    """True when the switching function with ``coefs`` on the inputs of equation k is affine on every pattern's
    region: every equation it depends on is affine in its operands (see ``piecewise_linear``)."""
    dstep = {o: i for i, e in enumerate(program.eqns) for o in e.outs}
    todo = [a for a, c in zip(program.eqns[k].ins, coefs) if c != 0]
    seen = set()
    while todo:
        a = todo.pop()
        i = dstep.get(a) if isinstance(a, int) else None
        if i is None or i in seen:
            continue
        seen.add(i)
        if not _linear(program.eqns[i]):
            return False
        todo.extend(program.eqns[i].ins)
    return True


def piecewise_linear(program):
    """True when every smooth equation is + - neg, a product with a literal, a quotient by a literal, or
    pow with n in {0, 1} (so every switching function is affine on each branch)."""
    return all(_linear(e) for e in program.eqns)
