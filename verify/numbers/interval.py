"""mpmath interval arithmetic (``mpmath.iv``): an independent cross-check of the ball system, never a source
of certificates (mpmath issue 1181: ``iv.exp`` has returned intervals missing the true value).

``iv`` keeps its precision in a global attribute (it has no ``workprec``); ``IntervalSystem.precision``
sets and restores it.  Signs are read from the endpoints, which are plain mpf numbers, so no comparison of
two overlapping intervals is ever evaluated (mpmath 1.3 returns None there and 1.4 raises).
"""
import contextlib

from mpmath import iv, mpf


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
    def tanh(self, a): return iv.tanh(a)
    def sigmoid(self, a): return 1 / (1 + iv.exp(-a))

    @staticmethod
    def sign(x):
        lo, hi = mpf(x.a), mpf(x.b)
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
        return {"lo": str(mpf(x.a)), "hi": str(mpf(x.b))}
