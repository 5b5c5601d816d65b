"""mpmath interval arithmetic (``mpmath.iv``): an independent cross-check of the ball system, never a source
of certificates (mpmath issue 1181: ``iv.exp`` has returned intervals missing the true value).

``iv`` keeps its precision in a global attribute (it has no ``workprec``); ``IntervalSystem.precision``
sets and restores it.  Signs are read from the raw endpoints (``x._mpi_``, in both mpmath 1.3 and 1.4), so
no comparison of two overlapping intervals is ever evaluated (mpmath 1.3 returns None there and 1.4
raises) and nothing is rounded to mpmath's global precision on the way.
"""
import contextlib

from mpmath import iv, mpf
from mpmath.libmp import fnan, mpf_sign


class IntervalSystem:
    name = "interval"
    exact = False

    @staticmethod
    @contextlib.contextmanager
    def precision(bits):
        old = iv.prec
        iv.prec = bits
        try:
            yield
        finally:
            iv.prec = old

    def const(self, q):
        return iv.mpf(int(q.p)) / iv.mpf(int(q.q))

    def add(self, a, b): return a + b
    def sub(self, a, b): return a - b
    def mul(self, a, b): return a * b
    def div(self, a, b): return a / b
    def neg(self, a): return -a
    def pow(self, a, n): return a ** n if n >= 0 else 1 / (a ** (-n))
    def exp(self, a): return iv.exp(a)
    def log(self, a): return iv.log(a)
    def sqrt(self, a): return iv.sqrt(a)
    def sin(self, a): return iv.sin(a)
    def cos(self, a): return iv.cos(a)
    def tanh(self, a):
        # iv has no tanh; 1 - 2/(exp(2a) + 1) uses a once, so the enclosure is as tight as iv.exp's
        return 1 - 2 / (iv.exp(2 * a) + 1)
    def sigmoid(self, a): return 1 / (1 + iv.exp(-a))
    def pi(self): return iv.pi

    def erf(self, a):
        # mpmath's iv has no working erf; erf is increasing, so [erf(lo), erf(hi)] with mpmath's real erf at
        # extra precision, widened outward by a few ulps, encloses it (a cross-check, not a certificate)
        from mpmath import mp, mpf, workprec
        lo, hi = (mpf(t) for t in a._mpi_)
        with workprec(iv.prec + 30):
            elo, ehi = mp.erf(lo), mp.erf(hi)
            pad = mpf(2) ** (-(iv.prec + 10)) * (1 + max(abs(elo), abs(ehi)))
            return iv.mpf([elo - pad, ehi + pad])

    def atan(self, a):
        # iv has no atan; atan is increasing: the same endpoint construction as erf
        return self._increasing(a, "atan")

    def erfinv(self, a):
        return self._increasing(a, "erfinv")        # mpmath's real erfinv at the endpoints (increasing)

    def lgamma(self, a):
        if self.sign(a) == 1:
            return iv.loggamma(a)
        return self._unavailable("lgamma of a non-positive argument")

    def polygamma(self, a, n):
        return self._unavailable("polygamma")

    def bessel_i(self, a, n):
        return self._unavailable("bessel_i")

    def root(self, cs, k):
        return self._unavailable("root")

    def expm(self, xs, i, j):
        return self._unavailable("expm")

    def expm_grad(self, xs, i, j):
        return self._unavailable("expm")

    @staticmethod
    def _unavailable(name):
        from ..errors import Undecidable
        raise Undecidable(f"the interval system (a cross-check) has no enclosure of {name}: use exact or ball")

    def _increasing(self, a, name):
        from mpmath import mp, mpf, workprec
        lo, hi = (mpf(t) for t in a._mpi_)
        with workprec(iv.prec + 30):
            flo, fhi = getattr(mp, name)(lo), getattr(mp, name)(hi)
            pad = mpf(2) ** (-(iv.prec + 10)) * (1 + max(abs(flo), abs(fhi)))
            return iv.mpf([flo - pad, fhi + pad])

    @staticmethod
    def sign(x):
        # the raw endpoint tuples: converting them to mpf would round to mp.prec
        lo, hi = (mpf_sign(t) if t not in (fnan,) else None for t in x._mpi_)
        if lo is None or hi is None:
            return None
        if lo > 0:
            return 1
        if hi < 0:
            return -1
        if lo == 0 and hi == 0:
            return 0
        return None

    def is_exact_value(self, x):
        return False

    def to_json(self, x):
        lo, hi = (mpf(t) for t in x._mpi_)  # display only
        return {"lo": str(lo), "hi": str(hi)}
