"""IEEE floats through numpy (float64, float32, float16): what frameworks compute.  Unverified by design;
used to show how floating point meets kinks, never to certify anything."""
import operator

import numpy as np


class FloatSystem:
    exact = False

    def __init__(self, name="float64"):
        self.name = name
        self.dtype = getattr(np, name)

    def const(self, q):
        # int/int division in Python rounds correctly to float64; then round to the narrower type.  A rational
        # beyond float64's range is +-inf (or 0) as a float conversion gives, not an OverflowError
        try:
            return self.dtype(int(q.p) / int(q.q))
        except OverflowError:
            return self.dtype(np.inf if q > 0 else -np.inf) if abs(q) > 1 else self.dtype(0)

    native = True            # add/sub/mul/div/neg are Python's operators on numpy scalars

    add = staticmethod(operator.add)
    sub = staticmethod(operator.sub)
    mul = staticmethod(operator.mul)
    div = staticmethod(operator.truediv)
    neg = staticmethod(operator.neg)
    def pow(self, a, n): return a ** self.dtype(n) if n >= 0 else self.dtype(1) / a ** self.dtype(-n)
    def exp(self, a): return np.exp(a)
    def log(self, a): return np.log(a)
    def sqrt(self, a): return np.sqrt(a)
    def sin(self, a): return np.sin(a)
    def cos(self, a): return np.cos(a)
    def tanh(self, a): return np.tanh(a)
    def atan(self, a): return np.arctan(a)

    def lgamma(self, a):
        from scipy.special import gammaln
        return self.dtype(gammaln(a))

    def polygamma(self, a, n):
        from scipy.special import polygamma
        return self.dtype(polygamma(n, a))

    def erfinv(self, a):
        from scipy.special import erfinv
        return self.dtype(erfinv(a))

    def bessel_i(self, a, n):
        from scipy.special import iv
        return self.dtype(iv(n, a))
    def sigmoid(self, a): return self.dtype(1) / (self.dtype(1) + np.exp(-a))
    def pi(self): return self.dtype(np.pi)

    def root(self, cs, k):
        from .roots import float_root
        return self.dtype(float_root(cs, k))

    def expm(self, xs, i, j):
        from .matfun import float_expm_entry
        return self.dtype(float_expm_entry(xs, i, j))

    def expm_grad(self, xs, i, j):
        from .matfun import float_expm_gradient
        return [self.dtype(v) for v in float_expm_gradient(xs, i, j)]

    def erf(self, a):
        from scipy.special import erf
        return self.dtype(erf(a))

    @staticmethod
    def sign(x):
        if x != x:  # nan: no sign
            return None
        return int(x > 0) - int(x < 0)

    def is_exact_value(self, x):
        return False

    def to_json(self, x):
        from .ball import json_number
        return json_number(x)
