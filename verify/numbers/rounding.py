"""Proved bounds on floating-point rounding: what any IEEE evaluation in a given format can return.

Everything here is a *bound*, valid whatever the evaluation order (BLAS reorders and blocks its sums; the
order may change with threads and shapes), with or without a fused multiply-add, in round-to-nearest:

- one correctly rounded operation (+ - * / sqrt): ``|fl(a o b) - a o b| <= u |a o b|`` when the result is
  normal, and ``<= eta / 2`` when it is subnormal (``eta`` the subnormal spacing); a sum or difference that
  lands in the subnormal range is exact, so only products and quotients carry the underflow term;
- a sum of n terms, any order: ``|fl(sum a_i) - sum a_i| <= gamma_{n-1} sum |a_i|``;
- a dot product (or a matrix product with inner dimension n), any order, FMA or not:
  ``|fl(x^T y) - x^T y| <= gamma_n |x|^T |y| + n eta``, with ``gamma_n = n u / (1 - n u)`` (Higham, *Accuracy
  and Stability of Numerical Algorithms*, 2nd ed., Lemma 3.1 and eq. (3.5); each product carries at most one
  underflow error of eta / 2 and every partial sum is multiplied by at most n factors (1 + delta)).
  Jeannerod & Rump ("Improved error bounds for inner products in floating-point arithmetic", SIAM J. Matrix
  Anal. Appl. 34(2), 2013) sharpen gamma_n to ``n u`` for any order when no underflow or overflow occurs and
  every operation is a rounded + or *; ``dot_factor(..., fma=False, underflow=False)`` uses that form, every
  other call uses gamma_n;
- an elementary function (exp, log, tanh, ...) computed by a library: a stated bound in ulps of the exact
  result per library, function and format (``ULPS``, each entry tested against arb in
  tests/test_rounding.py), so ``|f~(x) - f(x)| <= k ulp(f(x)) <= 2 k u |f(x)| + k eta``.

The bounds themselves are computed in float64 with round-to-nearest (numpy cannot change the rounding mode),
so each computed bound is inflated by a factor proved to cover its own rounding (Rump, "Fast and parallel
interval arithmetic", BIT 39(3), 1999, Section 2; Ogita, Rump & Oishi, "Accurate sum and dot product",
SIAM J. Sci. Comput. 26(6), 2005): a nonnegative value computed by k roundings, none of them underflowing,
is at most ``(1 + u)^k`` times the computed one, and ``up(x, k)`` returns a float at least that large.
Constants (u, gamma_n, the inflation factors) are computed exactly with Fractions and rounded up.

``Rounding`` bundles a format with how a framework computes in it: the format values are stored in, the
format sums accumulate in (PyTorch accumulates float16 and bfloat16 in float32), whether subnormals are
flushed to zero (XLA on CPU flushes float32), and the ulp table of its elementary functions.
"""
import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

# ------------------------------------------------------------------------------------------------ formats


@dataclass(frozen=True, eq=True)
class Format:
    """A binary floating-point format: ``p`` significand bits (the hidden one included), smallest normal
    2**emin, largest finite below 2**(emax + 1)."""
    name: str
    p: int
    emin: int
    emax: int

    @functools.cached_property
    def u_q(self):
        """The unit roundoff 2**-p, exactly."""
        return Fraction(1, 2 ** self.p)

    @functools.cached_property
    def u(self):
        return 2.0 ** -self.p

    @functools.cached_property
    def eta(self):
        """The subnormal spacing (the smallest positive number) 2**(emin - p + 1)."""
        return 2.0 ** (self.emin - self.p + 1)

    @functools.cached_property
    def tiny(self):
        """The smallest positive normal number 2**emin."""
        return 2.0 ** self.emin

    @functools.cached_property
    def max(self):
        """The largest finite number."""
        return float((2 - Fraction(2) ** (1 - self.p)) * Fraction(2) ** self.emax)

    def representable(self, q):
        """Is the rational ``q`` (Fraction / fmpq / int) exactly a finite number of this format?"""
        q = as_fraction(q)
        if q == 0:
            return True
        n, d = abs(q.numerator), q.denominator
        if d & (d - 1) or q > Fraction(self.max) or -q > Fraction(self.max):
            return False                                    # not dyadic, or beyond the range
        k = d.bit_length() - 1                              # |q| = n 2**-k
        e = n.bit_length() - 1 - k                          # 2**e <= |q| < 2**(e + 1)
        lsb = max(e, self.emin) - self.p + 1                # the exponent of its ulp
        shift = k + lsb                                     # |q| / 2**lsb = n / 2**shift must be an integer
        return shift <= 0 or n % (1 << shift) == 0


def as_fraction(q):
    """A Fraction from a Fraction, an fmpq, an int or a float (exactly)."""
    if isinstance(q, Fraction):
        return q
    if hasattr(q, "p") and hasattr(q, "q"):
        return Fraction(int(q.p), int(q.q))
    return Fraction(q)


FORMATS = {
    "float16": Format("float16", 11, -14, 15),
    "bfloat16": Format("bfloat16", 8, -126, 127),
    "float32": Format("float32", 24, -126, 127),
    "float64": Format("float64", 53, -1022, 1023),
}
F64 = FORMATS["float64"]


def fmt_of(dtype):
    """The Format of a numpy / torch / jax dtype or its name."""
    if isinstance(dtype, type) and issubclass(dtype, np.generic):
        dtype = np.dtype(dtype)
    name = str(getattr(dtype, "name", dtype)).replace("torch.", "")
    if name not in FORMATS:
        raise ValueError(f"no floating-point format {name!r}")
    return FORMATS[name]


# -------------------------------------------------------------------------------- exact constants, rounded up

def round_up(q):
    """The smallest float64 >= the rational ``q`` (a Fraction): the float nearest q, moved up one ulp when it
    fell below.  Returns inf beyond float64's range."""
    if q > Fraction(F64.max):
        return math.inf
    f = float(q)                        # correctly rounded to nearest
    if Fraction(f) < q:
        f = math.nextafter(f, math.inf)
    return f


def round_down(q):
    """The largest float64 <= ``q``."""
    return -round_up(-q)


@functools.lru_cache(maxsize=4096)
def gamma_q(n, fmt=F64):
    """gamma_n = n u / (1 - n u) of ``fmt`` exactly (a Fraction), or None when n u >= 1 (no bound)."""
    nu = n * fmt.u_q
    if nu >= 1:
        return None
    return nu / (1 - nu)


@functools.lru_cache(maxsize=4096)
def gamma(n, fmt=F64):
    """gamma_n of ``fmt`` rounded up to a float64 (inf when n u >= 1)."""
    g = gamma_q(n, fmt)
    return math.inf if g is None else round_up(g)


@functools.lru_cache(maxsize=4096)
def dot_factor(n, fmt=F64, fma=True, underflow=True):
    """The factor c of the bound ``|fl(x^T y) - x^T y| <= c |x|^T |y|`` (+ the underflow term) for a dot product
    of ``n`` terms in ``fmt``, any order: gamma_n (Higham 3.1), or n u (Jeannerod & Rump 2013) when the caller
    certifies there is no FMA and no underflow.  Rounded up; inf when no bound holds."""
    if n <= 0:
        return 0.0
    if not fma and not underflow:
        return round_up(n * fmt.u_q)
    return gamma(n, fmt)


def sum_factor(n, fmt=F64):
    """The factor of ``|fl(sum of n terms) - sum| <= c sum |a_i|`` in any order: gamma_{n-1}."""
    return 0.0 if n <= 1 else gamma(n - 1, fmt)


@functools.lru_cache(maxsize=4096)
def inflation(k, fmt=F64):
    """A float c with ``fl(x * c) >= (1 + u)^k x`` for every float x >= 0 (x * c not underflowing): a value
    computed from nonnegative terms by k roundings of ``fmt`` (to nearest, no underflow) is at least its true
    value divided by (1 + u)^k, and the product x * c, rounded once more in float64, stays above that."""
    q = (1 + fmt.u_q) ** k * (1 + 2 * F64.u_q)
    return round_up(q)


@functools.lru_cache(maxsize=4096)
def dot_inflation(n, fmt=F64):
    """A float c with ``fl(P * c) >= P_true`` for a dot product P = fl(sum of n nonnegative products) computed
    in ``fmt`` without underflow: P >= (1 - gamma_n) P_true, so P_true <= P / (1 - gamma_n)."""
    g = gamma_q(n, fmt)
    if g is None:
        return math.inf
    return round_up(1 / (1 - g) * (1 + 2 * F64.u_q))


def up(x, k=1):
    """An upper bound of the true value of the nonnegative float array (or float) ``x`` computed by ``k``
    float64 roundings of sums and products of nonnegative terms, none underflowing: ``x * inflation(k)``."""
    return x * inflation(k)


# --------------------------------------------------------------------------- elementary functions: ulp table

# Bounds in ulps of the exact result, per (library, format).  Each is a stated bound that tests/test_rounding.py
# checks against arb on random and edge inputs; the measured maxima (this machine, numpy 2.4, torch 2.13 CPU,
# jax 0.10.2 CPU) are in docs/audit-numerics.md.  IEEE operations (sqrt, division) are correctly rounded
# (0.5 ulp) where the library uses the hardware instruction; PyTorch's vectorised float64 sqrt measured 0.59 ulp,
# hence 1.  sigmoid is a composite (1 / (1 + exp(-x))) in every library here.
ULPS = {
    ("numpy", "float64"): {"exp": 2, "log": 2, "tanh": 2, "sigmoid": 4, "erf": 4, "sqrt": 0.5, "sin": 2, "cos": 2},
    ("numpy", "float32"): {"exp": 4, "log": 4, "tanh": 4, "sigmoid": 6, "erf": 4, "sqrt": 0.5, "sin": 4, "cos": 4},
    ("torch", "float64"): {"exp": 2, "log": 2, "tanh": 2, "sigmoid": 4, "erf": 2, "sqrt": 1, "sin": 2, "cos": 2},
    ("torch", "float32"): {"exp": 2, "log": 2, "tanh": 2, "sigmoid": 4, "erf": 2, "sqrt": 1, "sin": 2, "cos": 2},
    ("jax", "float64"): {"exp": 4, "log": 2, "tanh": 16, "sigmoid": 4, "erf": 2, "sqrt": 1, "sin": 2, "cos": 2},
    ("jax", "float32"): {"exp": 2, "log": 2, "tanh": 8, "sigmoid": 4, "erf": 8, "sqrt": 1, "sin": 2, "cos": 2},
}
FUNCTIONS = ("exp", "log", "tanh", "sigmoid", "erf", "sqrt", "sin", "cos")
# sin and cos are trusted (tested) only on |x| <= TRIG_RANGE: beyond it argument reduction is a library's weak spot
TRIG_RANGE = 2.0 ** 20


def ulps(library, fmt_name, fn):
    """The stated ulp bound of ``fn`` in ``library`` for the format ``fmt_name``; libraries without an entry
    (and half formats, computed in float32 then rounded) use the most conservative float32 / float64 row."""
    row = ULPS.get((library, fmt_name))
    if row is None:
        rows = [r for (lib, f), r in ULPS.items() if f == fmt_name] or [r for (lib, f), r in ULPS.items()
                                                                         if f == "float32"]
        return max(r[fn] for r in rows)
    return row[fn]


# ------------------------------------------------------------------------------------ a framework's rounding

@dataclass(frozen=True)
class Rounding:
    """How a framework computes in a floating-point type: values stored in ``storage``, sums and dot products
    accumulated in ``accumulate``, subnormals flushed to zero or not (``flush``), elementary functions within
    ``ulps`` of their exact values.  Every method returns a bound of one operation's error: ``rel`` relative to
    the magnitude named in its docstring, ``abs_`` an absolute term."""
    storage: Format
    accumulate: Format
    flush: bool = False
    library: str = "numpy"
    table: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self):
        acc = "" if self.accumulate == self.storage else f", accumulating in {self.accumulate.name}"
        return f"{self.library} {self.storage.name}{acc}{', subnormals flushed' if self.flush else ''}"

    @property
    def u(self):
        return self.storage.u

    @property
    def small(self):
        """The absolute error a result near zero can carry: the subnormal spacing, or the smallest normal
        when subnormals are flushed."""
        return self.storage.tiny if self.flush else self.storage.eta

    def _store(self, rel, abs_):
        """Add the final rounding to ``storage`` of a result computed in ``accumulate``."""
        if self.accumulate == self.storage:
            return rel, abs_
        return round_up((1 + Fraction(rel)) * (1 + self.storage.u_q) - 1), abs_ + self.small

    @functools.lru_cache(maxsize=None)
    def op(self):
        """(rel, abs) of one rounded + - * / or sqrt, relative to |exact result| (abs: products and quotients
        that underflow; 0 for sums, which are exact in the subnormal range unless flushed)."""
        u = self.accumulate.u_q
        small = self.accumulate.tiny if self.flush else self.accumulate.eta
        return self._store(round_up(u), small)

    @functools.lru_cache(maxsize=4096)
    def dot(self, n):
        """(rel, abs) of a dot product / matrix product of inner dimension n, relative to sum |x_i||y_i|."""
        c = dot_factor(n, self.accumulate)
        small = self.accumulate.tiny if self.flush else self.accumulate.eta
        return self._store(c, n * small)

    @functools.lru_cache(maxsize=4096)
    def sum(self, n):
        """(rel, abs) of a sum of n terms, relative to sum |a_i| (abs: flushed partial sums)."""
        c = sum_factor(n, self.accumulate)
        return self._store(c, (n - 1) * self.accumulate.tiny if self.flush else 0.0)

    @functools.lru_cache(maxsize=256)
    def func(self, fn):
        """(rel, abs) of the elementary function ``fn``, relative to |exact value|: k ulps."""
        k = Fraction(self.table.get(fn) if fn in self.table else ulps(self.library, self.accumulate.name, fn))
        small = self.accumulate.tiny if self.flush else self.accumulate.eta
        return self._store(round_up(2 * k * self.accumulate.u_q), float(k) * small + small)


def rounding_for(framework, dtype):
    """The Rounding of ``framework`` ("torch", "jax", "numpy") computing in ``dtype``: PyTorch accumulates
    float16 / bfloat16 in float32; XLA on CPU flushes float32 subnormals to zero."""
    fmt = fmt_of(dtype)
    half = fmt.name in ("float16", "bfloat16")
    acc = FORMATS["float32"] if half else fmt
    flush = framework == "jax" and acc.name == "float32"
    return Rounding(fmt, acc, flush, framework)


WORK = Rounding(F64, F64, False, "numpy")      # what our own float64 enclosures are computed with


def finite_max(x):
    """The largest |entry| of a float array as a Python float (0 for an empty array)."""
    return float(np.max(np.abs(x))) if np.size(x) else 0.0


__all__ = ["Format", "FORMATS", "F64", "fmt_of", "round_up", "round_down", "gamma", "gamma_q", "dot_factor",
           "sum_factor", "inflation", "dot_inflation", "up", "ULPS", "FUNCTIONS", "TRIG_RANGE", "ulps", "Rounding",
           "rounding_for", "WORK"]
