"""Smooth primitives: + - * / neg, integer powers, exp, log, sqrt (argument > 0 only: sqrt is not
Lipschitz at 0), and sin, cos, tanh, sigmoid, erf, atan (analytic, allowed as in Remark 1 of the paper;
atan gives asin, acos and atan2 in the importers), and the special functions lgamma (log |Gamma|),
polygamma(n) (digamma for n = 0), erfinv and bessel_i(n) (the modified Bessel functions I_n), each family
closed under differentiation, analytic off their poles (lgamma, polygamma: the non-positive integers) and
inside their domain (erfinv: |x| < 1)."""
from flint import fmpq

from ...errors import DomainError, ProgramError, Undecided
from . import INT, Primitive, eval_rules, jvp_rules, register, vjp_rules


def value_text(ns, x):
    """A value of ``ns`` for messages: its JSON text, a ball or interval as [lo, hi]."""
    j = ns.to_json(x)
    return j if isinstance(j, str) else (f"[{j['lo']}, {j['hi']}]" if isinstance(j, dict) else repr(j))


def require(ns, x, allowed, need):
    """Raise DomainError unless sign(x) is in ``allowed`` (``need`` says what the primitive needs, e.g.
    "log needs a positive argument"); Undecided when this number system cannot decide the sign.  On arrays
    (tensor number systems) every element must be allowed; the message names the first that is not."""
    if getattr(ns, "tensor", False):
        return _require_all(ns, x, allowed, need)
    s = ns.sign(x)
    if s is None:
        raise Undecided(f"cannot decide whether {value_text(ns, x)} is allowed ({need})")
    if s not in allowed:
        raise DomainError(f"{need}, got {value_text(ns, x)}")


def _require_all(ns, x, allowed, need):
    import numpy as np
    signs = ns.signs(x)
    bad = ~np.isin(signs, list(allowed))
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        at = f" at index {list(i)}" if i else ""
        v = ns.out(x)[i] if i else ns.out(x)[()]
        if signs[i] not in (-1, 0, 1):
            raise Undecided(f"cannot decide whether the element{at} ({value_text(ns, v)}) is allowed ({need})")
        raise DomainError(f"{need}, got {value_text(ns, v)}{at}")


def _zero_or(ns, t, f):
    return None if t is None else f(t)


def _sum(ns, a, b):
    if a is None:
        return b
    return a if b is None else ns.add(a, b)


def smooth_prim(name, arity=1, **kw):
    return register(Primitive(name, (arity, arity), True, **kw))


add_p = smooth_prim("add", 2, doc="a + b")
eval_rules["add"] = lambda ns, p, a, b: ns.add(a, b)
jvp_rules["add"] = lambda ns, p, xs, y, ts: _sum(ns, ts[0], ts[1])
vjp_rules["add"] = lambda ns, p, xs, y, ct: (ct, ct)

sub_p = smooth_prim("sub", 2, doc="a - b")
eval_rules["sub"] = lambda ns, p, a, b: ns.sub(a, b)
jvp_rules["sub"] = lambda ns, p, xs, y, ts: _sum(ns, ts[0], None if ts[1] is None else ns.neg(ts[1]))
vjp_rules["sub"] = lambda ns, p, xs, y, ct: (ct, ns.neg(ct))

mul_p = smooth_prim("mul", 2, doc="a * b")
eval_rules["mul"] = lambda ns, p, a, b: ns.mul(a, b)
jvp_rules["mul"] = lambda ns, p, xs, y, ts: _sum(
    ns, _zero_or(ns, ts[0], lambda t: ns.mul(t, xs[1])), _zero_or(ns, ts[1], lambda t: ns.mul(xs[0], t)))
vjp_rules["mul"] = lambda ns, p, xs, y, ct: (ns.mul(ct, xs[1]), ns.mul(xs[0], ct))


def _div(ns, p, a, b):
    require(ns, b, (-1, 1), "division needs a nonzero divisor")
    return ns.div(a, b)


div_p = smooth_prim("div", 2, doc="a / b, defined where b != 0")
eval_rules["div"] = _div


def _div_jvp(ns, p, xs, y, ts):
    num = _sum(ns, ts[0], None if ts[1] is None else ns.neg(ns.mul(y, ts[1])))
    return None if num is None else ns.div(num, xs[1])


jvp_rules["div"] = _div_jvp
vjp_rules["div"] = lambda ns, p, xs, y, ct: (ns.div(ct, xs[1]), ns.neg(ns.div(ns.mul(ct, y), xs[1])))

neg_p = smooth_prim("neg", 1, doc="-a")
eval_rules["neg"] = lambda ns, p, a: ns.neg(a)
jvp_rules["neg"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], ns.neg)
vjp_rules["neg"] = lambda ns, p, xs, y, ct: (ns.neg(ct),)


def _pow(ns, p, a):
    n = p["n"]
    if n < 0:
        require(ns, a, (-1, 1), "a negative power needs a nonzero base")
    return ns.pow(a, n)


def _dpow(ns, p, x):
    """d/dx x**n = n x**(n-1)."""
    n = p["n"]
    if n == 0:
        return ns.const(fmpq(0))
    return ns.mul(ns.const(fmpq(n)), ns.pow(x, n - 1))


MAX_EXPONENT = 10 ** 5      # |n| of a ** n: FLINT dies (SIGFPE) or overflows on huge exponents


class PowPrimitive(Primitive):
    def check_params(self, explicit, n_in, where):
        out = super().check_params(explicit, n_in, where)
        if abs(out["n"]) > MAX_EXPONENT:
            raise ProgramError(f"{where}: the exponent n={out['n']} exceeds the limit |n| <= {MAX_EXPONENT} "
                               "(verify.program.prims.smooth.MAX_EXPONENT)")
        return out


pow_p = register(PowPrimitive("pow", (1, 1), True, params={"n": (None, INT)}, required=("n",),
                              doc="a ** n for an integer n, |n| <= MAX_EXPONENT"))
eval_rules["pow"] = _pow
jvp_rules["pow"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.mul(_dpow(ns, p, xs[0]), t))
vjp_rules["pow"] = lambda ns, p, xs, y, ct: (ns.mul(_dpow(ns, p, xs[0]), ct),)

exp_p = smooth_prim("exp", doc="exp(a)")
eval_rules["exp"] = lambda ns, p, a: ns.exp(a)
jvp_rules["exp"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.mul(y, t))
vjp_rules["exp"] = lambda ns, p, xs, y, ct: (ns.mul(y, ct),)


def _log(ns, p, a):
    require(ns, a, (1,), "log needs a positive argument")
    return ns.log(a)


log_p = smooth_prim("log", doc="natural log, defined where a > 0")
eval_rules["log"] = _log
jvp_rules["log"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.div(t, xs[0]))
vjp_rules["log"] = lambda ns, p, xs, y, ct: (ns.div(ct, xs[0]),)


def _sqrt(ns, p, a):
    require(ns, a, (1,), "sqrt needs a positive argument (it is not Lipschitz at 0)")
    return ns.sqrt(a)


sqrt_p = smooth_prim("sqrt", doc="square root, defined where a > 0")
eval_rules["sqrt"] = _sqrt
jvp_rules["sqrt"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.div(t, ns.add(y, y)))
vjp_rules["sqrt"] = lambda ns, p, xs, y, ct: (ns.div(ct, ns.add(y, y)),)

sin_p = smooth_prim("sin", doc="sine (analytic extension, Remark 1)")
eval_rules["sin"] = lambda ns, p, a: ns.sin(a)
jvp_rules["sin"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.mul(ns.cos(xs[0]), t))
vjp_rules["sin"] = lambda ns, p, xs, y, ct: (ns.mul(ns.cos(xs[0]), ct),)

cos_p = smooth_prim("cos", doc="cosine (analytic extension, Remark 1)")
eval_rules["cos"] = lambda ns, p, a: ns.cos(a)
jvp_rules["cos"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.neg(ns.mul(ns.sin(xs[0]), t)))
vjp_rules["cos"] = lambda ns, p, xs, y, ct: (ns.neg(ns.mul(ns.sin(xs[0]), ct)),)


def _dtanh(ns, y):
    return ns.sub(ns.const(fmpq(1)), ns.mul(y, y))


tanh_p = smooth_prim("tanh", doc="hyperbolic tangent (analytic extension, Remark 1)")
eval_rules["tanh"] = lambda ns, p, a: ns.tanh(a)
jvp_rules["tanh"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.mul(_dtanh(ns, y), t))
vjp_rules["tanh"] = lambda ns, p, xs, y, ct: (ns.mul(_dtanh(ns, y), ct),)


def _derf(ns, x):
    """d/dx erf(x) = 2 / sqrt(pi) * exp(-x**2)."""
    return ns.mul(ns.div(ns.const(fmpq(2)), ns.sqrt(ns.pi())), ns.exp(ns.neg(ns.mul(x, x))))


erf_p = smooth_prim("erf", doc="the error function (analytic; GELU's exact form is x * (1 + erf(x / sqrt 2)) / 2)")
eval_rules["erf"] = lambda ns, p, a: ns.erf(a)
jvp_rules["erf"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.mul(_derf(ns, xs[0]), t))
vjp_rules["erf"] = lambda ns, p, xs, y, ct: (ns.mul(_derf(ns, xs[0]), ct),)


def _datan(ns, x):
    """d/dx atan(x) = 1 / (1 + x**2)."""
    return ns.div(ns.const(fmpq(1)), ns.add(ns.const(fmpq(1)), ns.mul(x, x)))


atan_p = smooth_prim("atan", doc="arctangent (analytic; asin, acos and atan2 are written with it)")
eval_rules["atan"] = lambda ns, p, a: ns.atan(a)
jvp_rules["atan"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.mul(_datan(ns, xs[0]), t))
vjp_rules["atan"] = lambda ns, p, xs, y, ct: (ns.mul(_datan(ns, xs[0]), ct),)


def _dsigmoid(ns, y):
    return ns.mul(y, ns.sub(ns.const(fmpq(1)), y))


sigmoid_p = smooth_prim("sigmoid", doc="1 / (1 + exp(-a)) (analytic extension, Remark 1)")
eval_rules["sigmoid"] = lambda ns, p, a: ns.sigmoid(a)
jvp_rules["sigmoid"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.mul(_dsigmoid(ns, y), t))
vjp_rules["sigmoid"] = lambda ns, p, xs, y, ct: (ns.mul(_dsigmoid(ns, y), ct),)


# ------------------------------------------------------------------------------------------ special functions

def _require_no_pole(ns, x, name):
    """DomainError at a non-positive integer (a pole of Gamma), Undecided when that cannot be decided."""
    import numpy as np
    from .steps import step_value
    k = step_value("round", ns, x)
    d = ns.sub(x, k)
    if getattr(ns, "tensor", False):
        sd, sk = np.asarray(ns.signs(d)), np.asarray(ns.signs(k))
        pole = (sd == 0) & (sk <= 0)
        unknown = (sd == 2) & (sk <= 0)
    else:
        sd, sk = ns.sign(d), ns.sign(k)
        pole, unknown = sd == 0 and sk is not None and sk <= 0, sd is None and (sk is None or sk <= 0)
    if np.any(pole):
        raise DomainError(f"{name} has a pole at the non-positive integers")
    if np.any(unknown):
        raise Undecided(f"cannot decide whether the argument of {name} is a pole (a non-positive integer)")


def _lgamma(ns, p, a):
    _require_no_pole(ns, a, "lgamma")
    return ns.lgamma(a)


lgamma_p = smooth_prim("lgamma", doc="log |Gamma(a)|, defined off the non-positive integers (analytic)")
eval_rules["lgamma"] = _lgamma
jvp_rules["lgamma"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.mul(ns.polygamma(xs[0], 0), t))
vjp_rules["lgamma"] = lambda ns, p, xs, y, ct: (ns.mul(ns.polygamma(xs[0], 0), ct),)


def _polygamma(ns, p, a):
    _require_no_pole(ns, a, "polygamma")
    return ns.polygamma(a, p["n"])


class OrderPrimitive(Primitive):
    """A smooth primitive with an order param n >= 0 (polygamma, bessel_i), bounded like pow's exponent."""

    def check_params(self, explicit, n_in, where):
        out = super().check_params(explicit, n_in, where)
        if not 0 <= out["n"] <= 64:
            raise ProgramError(f"{where}: {self.name} needs an order 0 <= n <= 64, got n={out['n']}")
        return out


polygamma_p = register(OrderPrimitive("polygamma", (1, 1), True, params={"n": (None, INT)}, required=("n",),
                                      doc="the n-th derivative of digamma (n = 0: digamma), defined off the "
                                          "non-positive integers"))
eval_rules["polygamma"] = _polygamma
jvp_rules["polygamma"] = lambda ns, p, xs, y, ts: _zero_or(
    ns, ts[0], lambda t: ns.mul(ns.polygamma(xs[0], p["n"] + 1), t))
vjp_rules["polygamma"] = lambda ns, p, xs, y, ct: (ns.mul(ns.polygamma(xs[0], p["n"] + 1), ct),)


def _erfinv(ns, p, a):
    require(ns, ns.sub(ns.const(fmpq(1)), ns.mul(a, a)), (1,), "erfinv needs an argument in (-1, 1)")
    return ns.erfinv(a)


def _derfinv(ns, y):
    """d/dx erfinv(x) = sqrt(pi) / 2 * exp(erfinv(x)**2)."""
    return ns.mul(ns.div(ns.sqrt(ns.pi()), ns.const(fmpq(2))), ns.exp(ns.mul(y, y)))


erfinv_p = smooth_prim("erfinv", doc="the inverse of erf, defined for |a| < 1 (analytic)")
eval_rules["erfinv"] = _erfinv
jvp_rules["erfinv"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.mul(_derfinv(ns, y), t))
vjp_rules["erfinv"] = lambda ns, p, xs, y, ct: (ns.mul(_derfinv(ns, y), ct),)


def _dbessel(ns, p, x):
    """I_0' = I_1, I_n' = (I_{n-1} + I_{n+1}) / 2."""
    n = p["n"]
    if n == 0:
        return ns.bessel_i(x, 1)
    return ns.div(ns.add(ns.bessel_i(x, n - 1), ns.bessel_i(x, n + 1)), ns.const(fmpq(2)))


bessel_p = register(OrderPrimitive("bessel_i", (1, 1), True, params={"n": (None, INT)}, required=("n",),
                                   doc="the modified Bessel function of the first kind I_n (entire)"))
eval_rules["bessel_i"] = lambda ns, p, a: ns.bessel_i(a, p["n"])
jvp_rules["bessel_i"] = lambda ns, p, xs, y, ts: _zero_or(ns, ts[0], lambda t: ns.mul(_dbessel(ns, p, xs[0]), t))
vjp_rules["bessel_i"] = lambda ns, p, xs, y, ct: (ns.mul(_dbessel(ns, p, xs[0]), ct),)
