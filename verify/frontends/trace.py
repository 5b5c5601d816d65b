"""Python tracing: run ordinary Python on tracer values and record a Program.

``trace(fn, n_inputs)`` calls ``fn`` with ``n_inputs`` tracers; arithmetic operators and ``verify.ops``
functions record equations.  Python floats become their exact binary rationals.  Branching on a traced
comparison (``if x > 0``, Python's ``max``) raises a TracingError that points to ``where``.
"""
import inspect

from ..errors import InputError, ProgramError
from ..program.ir import Lit
from ..rational import to_fmpq
from . import Builder


class TracingError(ProgramError):
    pass


_BUILDER = []


class Tracer:
    __slots__ = ("var", "builder")
    __array_priority__ = 1000

    def __init__(self, var, builder):
        self.var, self.builder = var, builder

    def __add__(self, o): return record("add", self, o)
    def __radd__(self, o): return record("add", o, self)
    def __sub__(self, o): return record("sub", self, o)
    def __rsub__(self, o): return record("sub", o, self)
    def __mul__(self, o): return record("mul", self, o)
    def __rmul__(self, o): return record("mul", o, self)
    def __truediv__(self, o): return record("div", self, o)
    def __rtruediv__(self, o): return record("div", o, self)
    def __neg__(self): return record("neg", self)
    def __pos__(self): return self
    def __abs__(self): return record("abs", self)

    def __pow__(self, n):
        if isinstance(n, bool) or not isinstance(n, int):
            raise TracingError(f"x ** {n!r}: only integer exponents are allowed (use exp(n*log(x)))")
        return record("pow", self, params={"n": n})

    def __rpow__(self, o):
        raise TracingError("a traced value cannot be an exponent (use exp(y*log(c)))")

    def _cmp(self, op, o):
        return Comparison(self, op, o)

    def __gt__(self, o): return self._cmp(">", o)
    def __ge__(self, o): return self._cmp(">=", o)
    def __lt__(self, o): return self._cmp("<", o)
    def __le__(self, o): return self._cmp("<=", o)

    def __bool__(self):
        raise TracingError("a traced value was used as a bool: use verify.ops.where for branches")

    def __float__(self):
        raise TracingError("a traced value has no float value while tracing")

    __hash__ = object.__hash__


class Comparison:
    """``u OP v`` on traced values: only usable as ``ops.where``'s condition."""

    def __init__(self, u, op, v):
        self.u, self.op, self.v = u, op, v

    def __bool__(self):
        raise TracingError(f"branching on a traced comparison ({self.op}) is not allowed: "
                           "use verify.ops.where(u > v, a, b), or max/min/relu from verify.ops")


def current_builder():
    return _BUILDER[-1] if _BUILDER else None


def atom(x):
    """A tracer's variable, or a number as an exact literal."""
    if isinstance(x, Tracer):
        return x.var
    try:
        return Lit(to_fmpq(x))
    except InputError:
        raise TracingError(f"{x!r} of type {type(x).__name__} cannot be traced: "
                           "use numbers and traced values") from None


def record(prim, *args, params=None, n_out=1):
    """Record ``prim`` applied to ``args`` (tracers and numbers) on the trace they belong to (or the current
    one): its output tracer, or a tuple of ``n_out`` tracers.  TracingError outside ``verify.trace``."""
    b = next((a.builder for a in args if isinstance(a, Tracer)), None) or current_builder()
    if b is None:
        raise TracingError(f"{prim} was called outside verify.trace")
    outs = b.emit(prim, [atom(a) for a in args], params, n_out=n_out)
    ts = [Tracer(o, b) for o in outs]
    return ts[0] if n_out == 1 else tuple(ts)


def trace(fn, n_inputs=None, name=None):
    """Program recorded by running ``fn`` on ``n_inputs`` tracers (default: fn's positional arity).

    ``fn`` returns a traced value, a number, or a tuple/list of them.
    """
    if n_inputs is None:
        try:
            n_inputs = len(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            raise InputError("give n_inputs: the function's signature cannot be read") from None
    try:
        argnames = [p for p in inspect.signature(fn).parameters][:n_inputs]
    except (TypeError, ValueError):
        argnames = []
    if len(argnames) != n_inputs:
        argnames = [f"x{i}" for i in range(n_inputs)]
    pname = name or getattr(fn, "__name__", "f")
    if not pname.isidentifier():
        pname = "f"
    b = Builder(pname, argnames)
    _BUILDER.append(b)
    try:
        out = fn(*[Tracer(i, b) for i in range(n_inputs)])
    finally:
        _BUILDER.pop()
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return b.finish([atom(o) for o in outs])
