"""arb balls.  Precision is set by the caller with ``flint.ctx.workprec`` around a whole run, never globally.

The operations that are plain arb operations are the C functions themselves (``operator.add``, ``arb.exp``):
the interpreter calls ``ns.add`` directly, so there is no Python frame between it and FLINT."""
import operator

from flint import arb, arf, fmpq

from ..rational import MAX_BITS, dyadic_q, fmt_q


def int_power(a, n):
    """a ** n for an integer n >= 0 by repeated squaring.  Measured with python-flint 0.9: ``arb ** int``
    returns nan for a ball that contains 0 without being exactly 0 (and a needlessly wide ball for negative
    bases), so integer powers of balls (arb, arb_series, acb) are products."""
    result, base = None, a
    while n:
        if n & 1:
            result = base if result is None else result * base
        n >>= 1
        if n:
            base = base * base
    return a * 0 + 1 if result is None else result


def arb_sign(x):
    """-1, 0, 1 when decided; None when the ball contains 0 without being exactly 0 (or is nan)."""
    if x > 0:
        return 1
    if x < 0:
        return -1
    if x.is_zero():
        return 0
    return None


def _dec(m, e):
    """Exact decimal string of the integer m times 10**e."""
    s = "-" if m < 0 else ""
    d = str(abs(m))
    if m == 0:
        return "0"
    point = len(d) + e  # digits before the decimal point
    if -25 <= point <= 40:
        if e >= 0:
            return s + d + "0" * e
        if point > 0:
            return s + d[:point] + "." + d[point:]
        return s + "0." + "0" * (-point) + d
    return f"{s}{d[0]}.{d[1:] or '0'}e{point - 1}"


def arb_bounds(x, digits=None):
    """(lo, hi) decimal strings with lo <= every point of the ball <= hi (outward rounded, exact strings).
    By default as many digits as the ball is accurate (at least 20), so printing loses no information."""
    if not x.is_finite():
        return ("-inf", "inf")
    if digits is None:
        digits = min(max(20, int(x.rel_accuracy_bits() * 0.30103) + 4), 1300)
    m, r, e = x.mid_rad_10exp(digits)
    m, r, e = int(m), int(r), int(e)
    return _dec(m - r, e), _dec(m + r, e)


class BallSystem:
    name = "ball"
    exact = False

    def const(self, q):
        return arb(q)

    native = True            # add/sub/mul/div/neg are Python's operators, comparisons are decided ones

    add = staticmethod(operator.add)
    sub = staticmethod(operator.sub)
    mul = staticmethod(operator.mul)
    div = staticmethod(operator.truediv)
    neg = staticmethod(operator.neg)
    def pow(self, a, n): return int_power(a, n) if n >= 0 else 1 / int_power(a, -n)
    exp = staticmethod(arb.exp)
    log = staticmethod(arb.log)
    sqrt = staticmethod(arb.sqrt)
    sin = staticmethod(arb.sin)
    cos = staticmethod(arb.cos)
    tanh = staticmethod(arb.tanh)
    def sigmoid(self, a): return 1 / (1 + (-a).exp())
    def erf(self, a): return a.erf()
    atan = staticmethod(arb.atan)
    def lgamma(self, a): return arb_lgamma(a)
    def polygamma(self, a, n): return arb_polygamma(a, n)
    erfinv = staticmethod(arb.erfinv)
    def bessel_i(self, a, n): return a.bessel_i(n)
    def pi(self): return arb.pi()

    def root(self, cs, k):
        from .roots import real_root
        return real_root([to_arb(c) for c in cs], k)

    def expm(self, xs, i, j):
        from .matfun import expm_entry
        return expm_entry([to_arb(x) for x in xs], i, j)

    def expm_grad(self, xs, i, j):
        from .matfun import expm_gradient
        return expm_gradient([to_arb(x) for x in xs], i, j)

    sign = staticmethod(arb_sign)

    def is_exact_value(self, x):
        return False

    def to_json(self, x):
        lo, hi = arb_bounds(x)
        return {"lo": lo, "hi": hi}


def arb_lgamma(x):
    """log |Gamma(x)| of a ball off the poles (for x <= 0 the real part of the complex log-gamma)."""
    if x > 0:
        return x.lgamma()
    from flint import acb
    return acb(x).lgamma().real


def arb_polygamma(x, n):
    """The n-th polygamma function of a ball off the poles (n = 0: digamma)."""
    if n == 0:
        return x.digamma()
    from flint import acb
    return acb(x).polygamma(n).real


def to_arb(x):
    """fmpq or arb -> arb at the current precision."""
    return x if isinstance(x, arb) else arb(x)


def arb_exact_q(x):
    """The exact rational value of a ball's midpoint (a dyadic number; the ball's value when its radius is 0).
    Undecided beyond verify.rational.MAX_BITS (dyadic_q)."""
    return dyadic_q(x.mid())


def interval_digits(lo, hi):
    """Significant digits that show the exact rational interval [lo, hi] as accurately as it is: about
    log10(|value| / width) + 4, at least 20 and at most 1300."""
    w, m = hi - lo, max(abs(lo), abs(hi))
    if w <= 0 or m == 0:
        return 20
    return min(max(20, len(str(int(m / w))) + 4), 1300)


def q_decimal(x, digits=20):
    """Outward decimal bounds (lo, hi) of the rational x (exact strings; lo == hi when x is a short decimal)."""
    from flint import ctx
    with ctx.workprec(4 * digits + 64):
        return arb_bounds(arb(x), digits)


def interval_json(lo, hi):
    """The exact rational interval [lo, hi] as JSON: "p/q" when lo == hi, else {"lo", "hi"}: decimal strings
    rounded outward with as many digits as the interval is accurate (``interval_digits``)."""
    if lo == hi:
        return fmt_q(lo)
    d = interval_digits(lo, hi)
    return {"lo": q_decimal(lo, d)[0], "hi": q_decimal(hi, d)[1]}


def json_number(x):
    """JSON form of a value of any system: "p/q" when exact (an fmpq, or a ball of radius 0); {"lo", "hi"} for
    a ball or an mpmath interval, with as many digits as it is accurate; for a float of an unverified float
    system, the exact binary value it holds as "p/q" ("inf", "-inf" or "nan" when it is not finite)."""
    if isinstance(x, fmpq):
        return fmt_q(x)
    if isinstance(x, arb):
        if x.is_finite() and x.is_exact():
            return fmt_q(arb_exact_q(x))
        lo, hi = arb_bounds(x)
        return {"lo": lo, "hi": hi}
    if hasattr(x, "_mpi_"):                       # mpmath interval: its exact endpoints
        from mpmath.libmp import finf, fninf
        a, b = x._mpi_
        if a in (finf, fninf) or b in (finf, fninf) or not all(t[1] or t == (0, 0, 0, 0) for t in (a, b)):
            return {"lo": "-inf", "hi": "inf"}
        if any(abs(int(t[2])) > MAX_BITS for t in (a, b)):      # exact rationals of these are not formed
            lo, hi = (arb(arf((-int(t[1]) if t[0] else int(t[1]), int(t[2])))) for t in (a, b))
            return {"lo": arb_bounds(lo)[0], "hi": arb_bounds(hi)[1]}
        lo, hi = (_mpf_q(t) for t in (a, b))
        return fmt_q(lo) if lo == hi else interval_json(lo, hi)
    import math
    f = float(x)
    if not math.isfinite(f):
        return "nan" if f != f else ("inf" if f > 0 else "-inf")
    p, q = f.as_integer_ratio()
    return fmt_q(fmpq(p, q))


def _mpf_q(t):
    sign, man, exp, _ = t
    man = -int(man) if sign else int(man)
    exp = int(exp)
    return fmpq(man) * fmpq(2) ** exp if exp >= 0 else fmpq(man, 2 ** (-exp))


def number_text(x):
    """A value for people, as accurate as its JSON form: p/q, or [lo, hi] for an enclosure (never arb's
    default 15-digit print), a float as Python prints it."""
    if isinstance(x, float) or (not isinstance(x, (fmpq, arb)) and not hasattr(x, "_mpi_")):
        return repr(float(x))
    j = json_number(x)
    return j if isinstance(j, str) else f"[{j['lo']}, {j['hi']}]"
