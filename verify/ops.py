"""Functions to call inside ``verify.trace``: each records one primitive.  Keyword params are the
primitive's params (``relu(x, alpha=1/2)``); numbers given as params are read exactly."""
from .frontends.trace import Comparison, TracingError, record
from .program.prims import PRIMITIVES, INT
from .rational import to_fmpq


def _params(prim, kw):
    out = {}
    for k, v in kw.items():
        kind = PRIMITIVES[prim].params.get(k, (None, None))[1]
        if isinstance(v, (int, float)) and not isinstance(v, bool) and kind != INT:
            v = to_fmpq(v, f"{prim} param {k}")
        out[k] = v
    return out


def _unary(name):
    def f(x, **kw):
        return record(name, x, params=_params(name, kw))
    f.__name__ = name
    f.__doc__ = PRIMITIVES[name].doc
    return f


exp, log, sqrt, sin, cos, tanh, sigmoid = (_unary(n) for n in ("exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid"))
relu, abs, leaky_relu, clamp, hardtanh, relu6 = (_unary(n) for n in
                                                 ("relu", "abs", "leaky_relu", "clamp", "hardtanh", "relu6"))


def max(*xs, **kw):
    """max of two or more values (tie= split | first | last)."""
    return record("max", *xs, params=_params("max", kw))


def min(*xs, **kw):
    """min of two or more values (tie= split | first | last)."""
    return record("min", *xs, params=_params("min", kw))


def sort(*xs, **kw):
    """sort two or more values; returns a tuple (descending=, ties= stable | reverse)."""
    return record("sort", *xs, params=_params("sort", kw), n_out=len(xs))


def where(cond, a, b):
    """``a`` where the comparison ``cond`` (u > v, u >= v, ...) holds, else ``b``."""
    if not isinstance(cond, Comparison):
        raise TracingError("where's condition must be a comparison of traced values, e.g. where(x > 0, x, 0)")
    return record("where", cond.u, cond.v, a, b, params={"op": cond.op})
