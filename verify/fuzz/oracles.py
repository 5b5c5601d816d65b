"""Independent oracles the claims are checked against.

- ``q_bounds`` / ``meets`` / ``contains``: exact rational bounds of an fmpq, an arb ball or an mpmath
  interval (from the exact midpoint and radius or the raw endpoints: nothing is rounded), so containment is
  decided in rationals, never in floats.
- ``Germ``: a number system of rational functions of t (numerator and denominator ``fmpq_poly``) read at
  t = 0.  Running a rational program on x + t e_i in it gives the exact germ of the program along that line;
  its derivative at 0 is the exact limit of the difference quotients (f(x + h e_i) - f(x)) / h.  It uses
  only the evaluation rules and the pieces, never the jvp / vjp rules, so it is an independent derivative.
- ``kernel_frozen``: the certificate checker's own evaluator (verify/certificates/kernel.py: its own
  primitive values, index rules, pieces and forward mode), on the program with the convention resolved.
"""
from flint import arb, fmpq, fmpq_poly

from ..errors import Undecided, VerifyError
from ..rational import MAX_BITS, dyadic_q


# ------------------------------------------------------------------------- exact bounds of enclosures

def _mpf_q(t):
    sign, man, exp, _ = t
    if man == 0 and t != (0, 0, 0, 0):
        raise ValueError(f"non-finite interval endpoint {t}")
    if abs(int(exp)) > MAX_BITS:
        raise ValueError(f"interval endpoint with binary exponent {exp}")
    man, exp = (-1) ** sign * int(man), int(exp)
    return fmpq(man << exp) if exp >= 0 else fmpq(man, 1 << -exp)


def q_bounds(x):
    """Exact (lo, hi) of an fmpq (itself), a finite arb ball or an mpmath interval; None when infinite, nan,
    or with a binary exponent beyond MAX_BITS (exp(exp(30)) is near 2^(2^43): an enclosure whose exact
    rational bounds are not formed, so nothing is compared)."""
    if isinstance(x, fmpq):
        return x, x
    if isinstance(x, arb):
        if not x.is_finite():
            return None
        try:
            m, r = dyadic_q(x.mid()), dyadic_q(x.rad())
        except Undecided:
            return None
        return m - r, m + r
    try:
        a, b = x._mpi_
        return _mpf_q(a), _mpf_q(b)
    except (AttributeError, ValueError):
        return None


def meets(a, b):
    """The enclosures a and b overlap (True when either is unbounded: nothing is claimed then)."""
    A, B = q_bounds(a), q_bounds(b)
    if A is None or B is None:
        return True
    return A[0] <= B[1] and B[0] <= A[1]


def contains(x, q):
    b = q_bounds(x)
    return b is not None and b[0] <= q <= b[1]


def width(x):
    b = q_bounds(x)
    return None if b is None else b[1] - b[0]


def same(a, b):
    """Equal when both are exact rationals, overlapping enclosures otherwise."""
    if isinstance(a, fmpq) and isinstance(b, fmpq):
        return a == b
    return meets(a, b)


def show(x):
    if isinstance(x, fmpq):
        return str(x.p) if x.q == 1 else f"{x.p}/{x.q}"
    return str(x)


# --------------------------------------------------------------- germs: rational functions of t at t = 0

class NotRational(VerifyError):
    """A transcendental primitive (or too high a degree) in the germ system: no exact derivative."""


class Germ:
    """n(t) / d(t) with d(0) != 0."""
    __slots__ = ("n", "d")

    def __init__(self, n, d=None):
        self.n, self.d = n, (fmpq_poly([1]) if d is None else d)

    def at0(self):
        return self.n(0) / self.d(0)

    def derivative_at0(self):
        n, d = self.n, self.d
        d0 = d(0)
        return (n.derivative()(0) * d0 - n(0) * d.derivative()(0)) / (d0 * d0)


class GermSystem:
    """Number-system protocol over Germ values (sign = the sign of the value at t = 0)."""
    name = "germ"
    exact = True
    MAX_DEGREE = 256

    def _make(self, n, d):
        if max(n.degree(), d.degree()) > self.MAX_DEGREE:
            raise NotRational(f"degree above {self.MAX_DEGREE}")
        if d.degree() > 0:
            g = n.gcd(d)
            if g.degree() > 0:
                n, d = n / g, d / g            # exact division (fmpq_poly / fmpq_poly is exact here)
        return Germ(n, d)

    def const(self, q):
        return Germ(fmpq_poly([q]))

    def add(self, a, b):
        if a.d == b.d:
            return self._make(a.n + b.n, a.d)
        return self._make(a.n * b.d + b.n * a.d, a.d * b.d)

    def sub(self, a, b):
        if a.d == b.d:
            return self._make(a.n - b.n, a.d)
        return self._make(a.n * b.d - b.n * a.d, a.d * b.d)

    def mul(self, a, b):
        return self._make(a.n * b.n, a.d * b.d)

    def div(self, a, b):
        if b.n(0) == 0:
            raise NotRational("division by a germ vanishing at 0")
        n, d = a.n * b.d, a.d * b.n
        return self._make(n, d)

    def neg(self, a):
        return Germ(-a.n, a.d)

    def pow(self, a, n):
        if n >= 0:
            return self._make(a.n ** n, a.d ** n)
        return self.div(self.const(fmpq(1)), self.pow(a, -n))

    def _transcendental(self, name):
        def f(a):
            raise NotRational(f"{name} is not rational")
        return f

    def __getattr__(self, name):
        if name in ("exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "erf", "atan", "lgamma", "polygamma",
                    "erfinv", "bessel_i", "pi"):
            return self._transcendental(name)
        raise AttributeError(name)

    @staticmethod
    def sign(x):
        v = x.at0()
        return (v > 0) - (v < 0)

    def is_exact_value(self, x):
        return True

    def to_json(self, x):
        return show(x.at0())


def germ_partials(program, x, convention, pattern=None):
    """The exact partial derivatives d f / d x_i at x of every output, as a Jacobian (rows = outputs),
    and the pattern the germ evaluation chose.  With ``pattern`` the program is frozen (f_sigma); without,
    the index rules decide on the values at x: this is the germ of f itself only where no switching function
    vanishes at x (the caller checks that).  Raises NotRational for transcendental programs."""
    from ..interpret.evaluate import output_values, run
    ns = GermSystem()
    n = program.n_inputs
    cols, patterns = [], set()
    t = fmpq_poly([0, 1])
    for i in range(n):
        ins = [Germ(fmpq_poly([q]) + (t if j == i else 0)) for j, q in enumerate(x)]
        r = run(program, ns, ins, convention, pattern)
        patterns.add(r.pattern)
        cols.append([v.derivative_at0() for v in output_values(r)])
    if len(patterns) > 1:
        raise AssertionError(f"the germ evaluation chose different patterns along different axes: {patterns}")
    m = program.n_outputs
    if n == 0:
        r = run(program, ns, [], convention, pattern)
        return [[] for _ in range(m)], r.pattern
    return [[cols[i][o] for i in range(n)] for o in range(m)], patterns.pop()


# ----------------------------------------------------------------------------------- the checker's kernel

def kernel_frozen(resolved, x, pieces_of=None):
    from ..checker.kernel import Frozen
    return Frozen(resolved, x, pieces_of)


def dense_piece(piece, n):
    """A verify.prims Piece as the kernel's dense rows ((coefficients...), constant)."""
    rows = []
    for terms, const in piece.rows:
        coefs = [fmpq(0)] * n
        for j, c in terms:
            coefs[j] += c
        rows.append((tuple(coefs), fmpq(const)))
    return tuple(rows)
