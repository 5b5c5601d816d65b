"""JAX: import a function (its jaxpr), its own gradient, and its own intermediate values.

The importer is an interpreter over jaxprs: one small entry per JAX primitive in ``RULES``, with its JVP's kink
semantics beside it; nested ``jit`` calls are followed, ``custom_jvp_call`` / ``custom_vjp_call`` take the
forward from ``call_jaxpr`` and the derivative at its kinks from the rule's own jaxpr (``_resolve_kinks``), and
``stop_gradient`` is accepted where the result provably does not depend on it (``Shifted``).  ``gradient`` is
what ``jax.grad`` returns for the function, ``framework_values`` what JAX computes at every equation of the
imported jaxpr: the two things an audit sets beside the exact evaluation.
"""
import math as _math
import os
from dataclasses import dataclass as _dataclass

import numpy as _np
from flint import fmpq

from ..errors import VerifyError
from ..program.builder import Builder
from ..program.ir import Eqn, Lit
from ..program.prims import PRIMITIVES, selection_rules
from .lowering import (Const, Cond, ImportFailure, Imported, InputInfo, Lowering, NonReal, Origin, Tensor,
                       Unavailable, exact_q, point_value)

NAME = "jax"

RULES = {}     # primitive name -> (handler, kink note)


def rule(*names, note=""):
    """Register a handler ``fn(lo, eqn, *invals) -> value or list of values`` for JAX primitives ``names``."""
    def deco(fn):
        for n in names:
            RULES[n] = (fn, note)
        return fn
    return deco


_MISSING = object()
_CALLS = ("jit", "pjit", "closed_call", "core_call", "remat", "remat2", "checkpoint", "custom_jvp_call",
          "custom_vjp_call", "custom_vjp_call_jaxpr")


def _is_float(dtype):
    import jax.numpy as jnp
    return bool(jnp.issubdtype(dtype, jnp.floating))


@_dataclass(frozen=True)
class Shifted:
    """A value downstream of ``stop_gradient(m)``, tracked exactly: the program computes ``base`` as if the shift
    were 0, and the true value is ``base + coef * eps[proj]`` (kind "add") or ``base * exp(coef * eps[proj])``
    (kind "mul"), eps being the unknown stopped value and ``proj`` (an int array of the value's shape) which of
    its elements reaches each position.  Only operations for which these forms are exact identities are
    accepted; a value whose coefficient cancels is exactly ``base``, whatever eps is, so the program's result
    does not depend on the stopped value (the max shift of log_softmax, softmax and logsumexp)."""
    base: object
    kind: str
    coef: object
    proj: object

    @property
    def shape(self):
        return self.base.shape


@_dataclass(frozen=True)
class Drawn(Const):
    """A value of the random stream, known at import time: a PRNG key (a JAX key array, which numpy cannot
    hold), its random bits, and whatever is computed from them and constants only (a normal or uniform draw, a
    dropout mask, a permutation's sort keys).  A random op is a constant at the given key: JAX evaluates it
    (``_draw``), and where a real operation uses the result, it enters the program as the exact value of the
    floats drawn, like any other constant."""


def is_key(x):
    """True for a JAX PRNG key array (``jax.random.key``; a ``PRNGKey``-style key is a uint32 array) or an
    abstract value of that type."""
    import jax
    dtype = getattr(x, "dtype", None)
    try:
        return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    except TypeError:
        return False


def float_leaf(x):
    """True for an argument leaf of a float dtype (a key array is not: it has no numpy dtype)."""
    import jax.numpy as jnp
    if is_key(x):
        return False
    dtype = getattr(x, "dtype", None)
    return bool(jnp.issubdtype(_np.asarray(x).dtype if dtype is None else dtype, jnp.floating))


def _host(x):
    """A concrete value for JAX or numpy: key arrays stay JAX arrays, anything else becomes a numpy array."""
    return x if is_key(x) else _np.asarray(x)


def _bits(x):
    """A non-float argument leaf as a numpy array to compare (a key array by its key data)."""
    if is_key(x):
        import jax
        return _np.asarray(jax.random.key_data(x))
    return _np.asarray(x)


def _drawn_eqn(e, invals):
    """True when equation ``e`` computes from the random stream and constants only: one of its operands is
    Drawn (or it makes a key from integers: random_seed, random_wrap), none is real."""
    from jax.extend.core import Literal
    drawn = any(is_key(v.aval) for v in e.outvars)
    for v, x in zip(e.invars, invals):
        if isinstance(v, Literal):
            continue
        if isinstance(x, Drawn):
            drawn = True
        elif not isinstance(x, Const):
            return False
    return drawn


def _draw(e, invals):
    """Run an equation of the random stream (nested calls included) with JAX itself: Drawn outputs."""
    from jax.extend.core import Literal
    vals = [None if isinstance(v, Literal) else _host(x.value) for v, x in zip(e.invars, invals)]
    return [Drawn(_host(o)) for o in _bind(e, vals)]


class JaxLowering(Lowering):
    def __init__(self, name, inputs, resolve=True):
        super().__init__("jax", name, inputs)
        self.stack = []           # names of the nested calls being lowered
        self.path = []            # equation indices of the calls being lowered (an equation's node is its path)
        self.resolve = resolve    # resolve the kinks of custom_jvp / custom_vjp functions from their rules

    # ------------------------------------------------------------------------------------------- values
    def literal(self, lit):
        val = _np.asarray(lit.val)
        if _is_float(val.dtype):
            return self.constant(val, "literal")
        if val.dtype.kind == "c":
            self.fail("a complex literal")
        return Const(val)

    def lower(self, jaxpr, consts, args, outs_needed=None):
        """Lower an open jaxpr given the values of its constvars and invars; values of the needed outputs."""
        from jax.extend.core import Literal
        outs_needed = outs_needed or [True] * len(jaxpr.outvars)
        env = {}
        for v, x in zip(jaxpr.constvars, consts):
            env[v] = x
        for v, x in zip(jaxpr.invars, args):
            env[v] = x

        def read(v):
            if isinstance(v, Literal):
                return self.literal(v)
            return env.get(v, _MISSING)
        mask = _needed(jaxpr, outs_needed)[0]
        for i, (e, live) in enumerate(zip(jaxpr.eqns, mask)):
            if not live:
                continue
            invals = [read(v) for v in e.invars]
            saved = self.origin, self.hint
            self.path.append(i)
            self.origin = self._origin(e)
            self.hint = _hint(e)
            try:
                outs = self.run_eqn(e, invals)
                for v, o in zip(e.outvars, outs):
                    shape = getattr(o, "shape", None)
                    if shape is not None and tuple(shape) != tuple(v.aval.shape):
                        self.fail(f"internal error: the lowering has shape {list(shape)}, JAX says "
                                  f"{list(v.aval.shape)}")
                    env[v] = o
            finally:
                self.path.pop()
            self.origin, self.hint = saved
        return [read(v) if n else None for v, n in zip(jaxpr.outvars, outs_needed)]

    def _origin(self, e):
        from jax.extend import source_info_util
        name = e.primitive.name
        sub = e.params.get("name")
        op = f"{name}[{sub}]" if sub and name in _CALLS else name
        try:
            src = source_info_util.summarize(e.source_info)
        except Exception:    # source info is best effort: never let it break an import
            src = ""
        if not src or f"{os.sep}jax{os.sep}" in src:
            src = self.origin.source          # inside a library call: the caller's line
        else:
            src = os.path.basename(src)       # file:line:column (function), named like torch's origins
        return Origin("jax", op, "eqn " + "/".join(str(i) for i in self.path), "/".join(self.stack), src,
                      RULES.get(name, (None, ""))[1])

    def run_eqn(self, e, invals):
        name = e.primitive.name
        float_out = any(_is_float(v.aval.dtype) for v in e.outvars if hasattr(v.aval, "dtype"))
        real_in = any(isinstance(x, (Tensor, Cond, NonReal, Unavailable, Shifted)) for x in invals)
        if _drawn_eqn(e, invals):
            return _draw(e, invals)
        if real_in and name not in _CALLS and any(isinstance(x, Drawn) and is_key(x.value) for x in invals):
            self.fail(f"{name} takes a PRNG key together with values computed from the real inputs")
        if not real_in and not float_out and name not in _CALLS:
            return _concrete(e, invals)
        if any(isinstance(x, Shifted) for x in invals) and name not in _CALLS:
            out = _shift(self, e, invals)
        else:
            entry = RULES.get(name)
            if entry is None:
                self.fail(f"the JAX primitive {name!r} is not supported by the importer (no mapping to verify's "
                          "primitives)")
            out = entry[0](self, e, *invals)
        return list(out) if isinstance(out, (list, tuple)) else [out]


def _hint(e):
    return e.primitive.name


def _bind(e, vals):
    """Run the equation's primitive on concrete values (one per invar; literals are taken from the equation):
    the list of its outputs."""
    from jax.extend.core import Literal
    args = [v.val if isinstance(v, Literal) else x for v, x in zip(e.invars, vals)]
    out = e.primitive.bind(*args, **e.primitive.get_bind_params(e.params))
    return list(out) if e.primitive.multiple_results else [out]


def _concrete(e, invals):
    """An equation on integers and booleans only, computed by JAX itself."""
    outs = _bind(e, [None if not isinstance(x, Const) else _np.asarray(x.value) for x in invals])
    return [Const(_np.asarray(o)) for o in outs]


def _sub_jaxpr(e):
    """(open jaxpr, consts) of a call equation."""
    p = e.params
    j = p.get("jaxpr") or p.get("call_jaxpr") or p.get("fun_jaxpr")
    if hasattr(j, "jaxpr"):
        return j.jaxpr, list(j.consts)
    return j, []


def _needed(jaxpr, outs_needed):
    """(live equation mask, needed invars mask): dead code is never lowered, so an unused argmax or sort
    index, or the max that only feeds a stop_gradient, costs nothing and raises nothing."""
    from jax.extend.core import Literal
    need = {v for v, n in zip(jaxpr.outvars, outs_needed) if n and not isinstance(v, Literal)}
    mask = [False] * len(jaxpr.eqns)
    for i in range(len(jaxpr.eqns) - 1, -1, -1):
        e = jaxpr.eqns[i]
        live = [v in need for v in e.outvars]
        if not any(live):
            continue
        mask[i] = True
        for v, n in zip(e.invars, _inputs_needed(e, live)):
            if n and not isinstance(v, Literal):
                need.add(v)
    return mask, [v in need for v in jaxpr.invars]


def _inputs_needed(e, live):
    name = e.primitive.name
    n = len(e.invars)
    if name == "stop_gradient":
        return [False]
    if name == "sort":
        k = e.params.get("num_keys", 1)
        return [i < k or live[i] for i in range(n)]
    if name in _CALLS:
        j, _ = _sub_jaxpr(e)
        if j is not None and len(j.invars) == n:
            return _needed(j, live)[1]
    return [True] * n


def from_jax(f, *example_args, constant_args=(), name=None):
    """Import a JAX function as a verify tensor program.

    ``f`` is a function of arrays (pytrees allowed); ``example_args`` its example arguments.  The program is read
    from ``jax.make_jaxpr(f)(*example_args)``, one entry of ``RULES`` per JAX primitive, following nested
    ``jit`` calls.  Float leaves become program inputs, except those of the arguments listed in
    ``constant_args`` (indices), which become exact array constants, as do arrays closed over by ``f``; integer
    and boolean leaves (labels) are exact constants.  Every float is its exact dyadic value and a float cast
    (``convert_element_type``) is the identity on exact values: the program is the real-number program that
    the float code approximates.  Run under ``jax_enable_x64`` for float64 models.

    Kinks, from each primitive's JVP: ``max`` / ``min`` split a tie (``jnp.maximum(x, 0)`` is relu with
    derivative 1/2 at 0), ``abs`` has derivative 1 at 0, ``clamp`` (lax.clamp) 0 at its bounds, ``jnp.clip`` is
    max and min (1/2 at its bounds), ``reduce_max`` splits a tie, ``reduce_window_max`` (max-pool) gives a tied
    window's gradient to its first maximal element, ``sort`` is stable, ``select_n`` follows its comparison.
    ``custom_jvp_call`` and ``custom_vjp_call`` (``jax.nn.relu``, ``jax.nn.relu6``, user rules): the forward is
    lowered from ``call_jaxpr``; when it has kinks, the function must be elementwise, and each kink param is
    chosen so that the program's derivative equals the rule's own jaxpr (lowered and evaluated exactly) at
    every kink found by exact Newton steps from the function's literals; the rule is also checked against the
    forward's derivative off the kinks (a rule that is not a derivative, such as a straight-through estimator,
    is an ImportFailure).  ``stop_gradient`` is not a real-number function: it is accepted only where the
    result provably does not depend on the stopped value (the max shift of log_softmax, softmax, logsumexp:
    see ``Shifted``), and is an ImportFailure anywhere else.
    """
    return lower_traced(trace(f, *example_args), f, example_args, constant_args, name)


def trace(f, *example_args):
    """``jax.make_jaxpr(f)(*example_args)``: the expensive half of an import (ImportFailure in one line when
    the user's code cannot be traced); ``lower_traced`` is the other."""
    import jax
    try:
        return jax.make_jaxpr(f)(*example_args)
    except Exception as e:     # tracing runs the user's code: any error is the user's, reported in one line
        raise ImportFailure(f"jax.make_jaxpr could not trace {getattr(f, '__name__', 'f')}: "
                            f"{type(e).__name__}: {e}".split("\n")[0]) from e


def argument_names(f, n):
    """The names of ``f``'s first ``n`` positional arguments (``arg{i}`` where the signature does not say)."""
    import inspect
    try:
        names = list(inspect.signature(f).parameters)
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) and not names[i].startswith("*") else f"arg{i}" for i in range(n)]


def named_leaves(f, args):
    """[(argument index, framework name, leaf)] of the arguments' pytrees in jaxpr order: a leaf of argument
    ``params`` at key 'w' is named ``params['w']``."""
    import jax
    out = []
    for i, (base, a) in enumerate(zip(argument_names(f, len(args)), args)):
        for path, leaf in jax.tree_util.tree_flatten_with_path(a)[0]:
            out.append((i, base + jax.tree_util.keystr(path), leaf))
    return out


def lower_traced(closed, f, example_args, constant_args=(), name=None):
    """Lower the traced ``closed`` jaxpr of ``f`` at ``example_args`` (of the shapes it was traced at) to an
    ``Imported`` (see ``from_jax``): the cheap half of an import."""
    name = name or getattr(f, "__name__", "f")
    leaves = named_leaves(f, example_args)
    jaxpr = closed.jaxpr
    if len(leaves) != len(jaxpr.invars):
        raise ImportFailure(f"jax: {len(leaves)} argument leaves for {len(jaxpr.invars)} jaxpr inputs")
    inputs = []
    for (i, src, leaf), v in zip(leaves, jaxpr.invars):
        if not is_key(v.aval) and _is_float(v.aval.dtype) and i not in constant_args:
            inputs.append((src, tuple(v.aval.shape)))
    lo = JaxLowering(name, inputs)
    args, point, infos, constants, k = [], [], [], {}, 0
    for (i, src, leaf), v in zip(leaves, jaxpr.invars):
        if is_key(v.aval):          # a key argument is a constant argument: the random values it draws are known
            args.append(Drawn(leaf))
            continue
        arr = _np.asarray(leaf)
        if _is_float(v.aval.dtype):
            ea = _exact(arr)
            if i in constant_args:
                a = lo.add_array(ea, src)
                args.append(Tensor(a, tuple(arr.shape)))
                constants[a.name] = ("constant", src, str(arr.dtype))
            else:
                args.append(lo.inputs[k])
                infos.append(InputInfo(lo.b.names[k], "input", src, tuple(arr.shape), str(arr.dtype)))
                point.append(point_value(ea))
                k += 1
        elif arr.dtype.kind == "c":
            raise ImportFailure(f"jax: argument {src} is complex: only real numbers are supported")
        else:
            args.append(Const(arr))
    consts = []
    for j, c in enumerate(closed.consts):
        if is_key(c):
            consts.append(Drawn(c))
            continue
        arr = _np.asarray(c)
        if _is_float(arr.dtype):
            src = f"closure{j}"
            a = lo.add_array(_exact(arr), src)
            consts.append(Tensor(a, tuple(arr.shape)))
            constants[a.name] = ("closure", src, str(arr.dtype))
        else:
            consts.append(Const(arr))
    outs = lo.lower(jaxpr, consts, args)
    lo.origin = Origin("jax", "output")
    for o in outs:
        if isinstance(o, Shifted):
            lo.fail("the output depends on a stop_gradient value")
    program = lo.finish(outs)
    return Imported(program, point, infos, constants, tuple(lo.origins), "jax", closed)


def _exact(arr):
    from ..program.arrays import ExactArray
    arr = _np.asarray(arr)
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 2 or str(arr.dtype) == "bfloat16":
        arr = arr.astype(_np.float32)
    return ExactArray.from_any(arr)


# --------------------------------------------------------------------------------------------- elementwise

def _binary(prim):
    def fn(lo, e, a, b):
        return lo.ew(prim, [a, b])
    return fn


def _unary(prim):
    def fn(lo, e, a):
        return lo.ew(prim, [a])
    return fn


for _p in ("add", "sub", "mul", "div"):
    rule(_p)(_binary(_p))
for _p in ("neg", "exp", "log", "sqrt", "tanh", "erf", "sin", "cos"):
    rule(_p)(_unary(_p))
rule("logistic")(_unary("sigmoid"))


@rule("add_any")
def _add_any(lo, e, a, b):
    return lo.add(a, b)


@rule("copy", "copy_p", "optimization_barrier", "device_put",
      note="device_put moves an array between devices: the identity on values")
def _copy(lo, e, *a):
    return list(a)


@rule("rsqrt")
def _rsqrt(lo, e, a):
    return lo.div(1, lo.ew("sqrt", [a]))


@rule("log1p")
def _log1p(lo, e, a):
    return lo.ew("log", [lo.add(1, a)])


@rule("expm1")
def _expm1(lo, e, a):
    return lo.sub(lo.ew("exp", [a]), 1)


@rule("erfc")
def _erfc(lo, e, a):
    return lo.sub(1, lo.ew("erf", [a]))


@rule("square")
def _square(lo, e, a):
    return lo.ew("pow", [a], {"n": 2})


@rule("integer_pow")
def _integer_pow(lo, e, a):
    return lo.ew("pow", [a], {"n": int(e.params["y"])})


@rule("pow")
def _pow(lo, e, a, b):
    if not (isinstance(b, Tensor) and isinstance(b.atom, Lit)) and not isinstance(b, Const):
        # a real exponent: exp(y log x), defined for x > 0 (JAX's own derivative there is the same function's)
        return lo.ew("exp", [lo.mul(b, lo.ew("log", [a]))])
    q = b.atom.value if isinstance(b, Tensor) else exact_q(_np.asarray(b.value).ravel()[0])
    if isinstance(b, Const) and not _np.all(_np.asarray(b.value) == _np.asarray(b.value).ravel()[0]):
        return lo.ew("exp", [lo.mul(lo.real(b), lo.ew("log", [a]))])
    if q.q == 1:
        return lo.ew("pow", [a], {"n": int(q.p)})
    if q == fmpq(1, 2):
        return lo.ew("sqrt", [a])
    if q == fmpq(-1, 2):
        return lo.div(1, lo.ew("sqrt", [a]))
    lo.fail(f"x ** {q}: only integer exponents and +-1/2 are supported")


@rule("max", note="max JVP: a tie gives 1/2 to each side (tie=split); max(x, -inf) = x")
def _max(lo, e, a, b):
    return _extremum(lo, "max", a, b)


@rule("min", note="min JVP: a tie gives 1/2 to each side (tie=split); min(x, inf) = x")
def _min(lo, e, a, b):
    return _extremum(lo, "min", a, b)


def _extremum(lo, prim, a, b):
    neutral = -_math.inf if prim == "max" else _math.inf
    for x, y in ((a, b), (b, a)):
        if isinstance(x, NonReal) and x.value == neutral:
            return lo.broadcast(lo.real(y), lo.bshape(x.shape, y.shape))
    return lo.ew(prim, [a, b], {"tie": "split"})


@rule("abs", note="abs JVP: select(x >= 0, t, -t), so derivative 1 at 0")
def _abs(lo, e, a):
    t = lo.real(a)
    (o,) = lo.emit("abs", [t.atom], {"at_zero": fmpq(1)})
    return Tensor(o, t.shape)


@rule("sign", note="sign JVP is 0 everywhere (a jump at 0)")
def _sign(lo, e, a):
    return lo.sign(a)


@rule("clamp", note="lax.clamp JVP: select(lo < x < hi, t, 0), so derivative 0 at both bounds")
def _clamp(lo, e, lo_v, x, hi_v):
    t = lo.real(x)
    bounds = []
    for v in (lo_v, hi_v):
        if isinstance(v, NonReal):
            bounds.append(None)
            continue
        v = lo.real(v)
        if not isinstance(v.atom, Lit):
            return _clamp_arrays(lo, lo_v, t, hi_v)
        bounds.append(v.atom.value)
    if bounds[0] is not None and bounds[1] is not None and not bounds[0] < bounds[1]:
        lo.fail("lax.clamp with lo >= hi")
    (o,) = lo.emit("clamp", [lo.full(t)], {"lo": bounds[0], "hi": bounds[1], "at_lo": fmpq(0), "at_hi": fmpq(0)})
    return Tensor(o, t.shape)


def _clamp_arrays(lo, lo_v, x, hi_v):
    """lax.clamp with bounds computed from real values: XLA's min(max(x, lo), hi), so hi wherever hi < lo.  As
    JAX's JVP reads it, x's derivative is 0 at both bounds; at a tie JAX also gives the bound derivative 0 (its
    JVP is select(lo > x and lo < hi, ...) for lo and select(hi < x, ...) for hi), which is no selection
    derivative: this program gives the bound derivative 1 there (and hi's where hi < lo), and an audit at such
    a point reports the difference."""
    at_least = x if isinstance(lo_v, NonReal) else lo.select(lo.compare(">", x, lo_v), x, lo_v)
    return at_least if isinstance(hi_v, NonReal) else lo.select(lo.compare("<", at_least, hi_v), at_least, hi_v)


def _cmp(op):
    def fn(lo, e, a, b):
        return lo.compare(op, a, b)
    return fn


for _name, _op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("eq", "=="), ("ne", "!=")):
    rule(_name)(_cmp(_op))


@rule("and")
def _and(lo, e, a, b):
    return lo.logical("and", a, b)


@rule("or")
def _or(lo, e, a, b):
    return lo.logical("or", a, b)


@rule("not")
def _not(lo, e, a):
    return lo.logical("not", a)


@rule("is_finite")
def _is_finite(lo, e, a):
    if isinstance(a, NonReal):
        return Const(_np.zeros(a.shape, dtype=bool))
    return Const(_np.ones(lo.real(a).shape, dtype=bool))          # every real number is finite


@rule("select_n", note="select_n JVP: the tangent of the selected case")
def _select_n(lo, e, pred, *cases):
    if len(cases) == 1:
        return cases[0]
    if len(cases) != 2:
        if isinstance(pred, Const):
            p = _np.asarray(pred.value)
            out = cases[0]
            for i in range(1, len(cases)):
                out = lo.select(Const(p == i), cases[i], out)
            return out
        lo.fail("select_n with more than two cases and a real-valued selector")
    if isinstance(pred, Const) and _np.asarray(pred.value).dtype.kind != "b":
        pred = Const(_np.asarray(pred.value) != 0)
    return lo.select(pred, cases[1], cases[0])


@rule("convert_element_type", note="a float cast is the identity on exact values")
def _convert(lo, e, a):
    new = e.params["new_dtype"]
    if isinstance(a, Cond) and not _is_float(new):
        return a           # a boolean as 0 / 1: lax.cond's index (anything else that needs an integer fails there)
    if not _is_float(new):
        what = "a real value"
        lo.fail(f"a cast of {what} to {new} (an index, or control flow such as lax.cond): not a real-number "
                "function")
    if isinstance(a, Cond):
        return lo.as_real(a, a.shape)
    if isinstance(a, NonReal):
        return a
    return lo.real(a)


@rule("reduce_precision", note="rounding to fewer mantissa bits is a float cast: the identity on exact values")
def _reduce_precision(lo, e, a):
    return lo.real(a)


@rule("stop_gradient")
def _stop_gradient(lo, e, a):
    shape = tuple(e.outvars[0].aval.shape)
    return Shifted(Tensor(Lit(fmpq(0)), shape), "add", fmpq(1), _np.arange(_math.prod(shape)).reshape(shape))


# ----------------------------------------------------------------------------------------------- structure

@rule("broadcast_in_dim")
def _broadcast_in_dim(lo, e, a, *dyn):
    shape = tuple(e.params["shape"])
    dims = tuple(e.params["broadcast_dimensions"])
    if isinstance(a, NonReal):
        return NonReal(a.value, shape)
    if isinstance(a, Const):
        return _concrete(e, [a])[0]
    return lo.broadcast_in_dim(lo.real(a), shape, dims)


@rule("reshape")
def _reshape(lo, e, a, *dyn):
    t = lo.real(a)
    if e.params.get("dimensions") is not None:
        t = lo.transpose(t, e.params["dimensions"])
    return lo.reshape(t, e.params["new_sizes"])


@rule("squeeze")
def _squeeze(lo, e, a):
    return lo.reshape(lo.real(a), e.outvars[0].aval.shape)


@rule("expand_dims")
def _expand_dims(lo, e, a):
    return lo.reshape(lo.real(a), e.outvars[0].aval.shape)


@rule("transpose")
def _transpose(lo, e, a):
    return lo.transpose(lo.real(a), e.params["permutation"])


@rule("slice")
def _slice(lo, e, a):
    p = e.params
    return lo.slice(lo.real(a), p["start_indices"], p["limit_indices"], p["strides"])


@rule("dynamic_slice")
def _dynamic_slice(lo, e, a, *starts):
    t = lo.real(a)
    if not all(isinstance(s, Const) for s in starts):
        lo.fail("dynamic_slice at positions computed from real values")
    sizes = e.params["slice_sizes"]
    st = [min(max(int(_np.asarray(s.value)), 0), d - k) for s, d, k in zip(starts, t.shape, sizes)]
    return lo.slice(t, st, [s + k for s, k in zip(st, sizes)])


@rule("dynamic_update_slice")
def _dynamic_update_slice(lo, e, a, u, *starts):
    t, v = lo.real(a), lo.real(u)
    if not all(isinstance(s, Const) for s in starts):
        lo.fail("dynamic_update_slice at positions computed from real values")
    st = [min(max(int(_np.asarray(s.value)), 0), d - k) for s, d, k in zip(starts, t.shape, v.shape)]
    hi = [d - s - k for s, d, k in zip(st, t.shape, v.shape)]
    keep = _np.ones(t.shape, dtype=_np.int64)
    keep[tuple(slice(s, s + k) for s, k in zip(st, v.shape))] = 0
    return lo.add(lo.mul(t, lo.constant(keep, "update.mask")), lo.pad(v, st, hi, 0))


@rule("concatenate")
def _concatenate(lo, e, *xs):
    return lo.concat(list(xs), e.params["dimension"])


@rule("iota")
def _iota(lo, e, *dyn):
    (c,) = _concrete(e, list(dyn))
    return lo.constant(c.value, "iota")


@rule("stack")
def _stack(lo, e, *xs):
    ax = e.params["axis"]
    ts = [lo.real(x) for x in xs]
    shape = list(ts[0].shape)
    shape.insert(ax % (len(shape) + 1), 1)
    return lo.concat([lo.reshape(t, shape) for t in ts], ax % len(shape))


@rule("pad")
def _pad(lo, e, a, value):
    cfg = e.params["padding_config"]
    v = lo.real(value)
    lows, highs = [int(a_) for a_, _, _ in cfg], [int(b) for _, b, _ in cfg]
    if any(int(i) for _, _, i in cfg) or min(lows + highs, default=0) < 0:
        return _pad_moving(lo, e, lo.real(a), v)
    if isinstance(v.atom, Lit):
        return lo.pad(a, lows, highs, v.atom.value)
    # a padding value computed from real values: zero padding plus the value times the padding's mask
    out = lo.pad(a, lows, highs, 0)
    inner = lo.pad(lo.constant(_np.ones(lo.real(a).shape, dtype=_np.int64), "pad.ones", fold=False), lows, highs, 0)
    return lo.add(out, lo.mul(v, lo.sub(1, inner)))


def _pad_moving(lo, e, t, v):
    """pad with interior (or negative) padding: JAX pads the positions of ``t`` (padding value -1) and each
    output element is the element of ``t`` at its position, or the padding value."""
    n = _math.prod(t.shape)
    dtype = _np.dtype(e.invars[0].aval.dtype)
    if n >= 2 ** (_np.finfo(dtype).nmant + 1):
        lo.fail(f"a pad of {n} positions does not fit {dtype}")
    from jax import lax
    cfg = [tuple(int(c) for c in triple) for triple in e.params["padding_config"]]
    pos = _np.asarray(lax.pad(_np.arange(n, dtype=dtype).reshape(t.shape), _np.asarray(-1, dtype=dtype), cfg))
    pos = pos.astype(_np.int64)
    both = lo.concat([lo.reshape(t, (n,)), lo.reshape(v, (1,))], 0)
    return lo.take(both, _np.where(pos < 0, n, pos), "pad")


@rule("split")
def _split(lo, e, a):
    t = lo.real(a)
    ax = e.params["axis"] % len(t.shape)
    out, off = [], 0
    for s in e.params["sizes"]:
        start, stop = [0] * len(t.shape), list(t.shape)
        start[ax], stop[ax] = off, off + int(s)
        out.append(lo.slice(t, start, stop))
        off += int(s)
    return out


def _index_map(lo, e, t, others):
    """A data-movement primitive (rev, tile, gather with constant indices) applied by JAX itself to the positions
    of ``t``: where each element lands is the primitive's own semantics."""
    n = _math.prod(t.shape)
    dtype = _np.dtype(e.invars[0].aval.dtype)
    if n >= 2 ** (_np.finfo(dtype).nmant + 1):
        lo.fail(f"an index map of {n} positions does not fit {dtype}")
    pos = _np.arange(n, dtype=dtype).reshape(t.shape)
    out = _np.asarray(_bind(e, [pos] + [_np.asarray(x.value) for x in others])[0], dtype=_np.float64)
    if not _np.all(_np.isfinite(out)):
        lo.fail("an index falls outside the array (the fill value is not a real number)")
    return lo.take(t, out.astype(_np.int64), "map")


@rule("rev", "tile")
def _rev(lo, e, a):
    return _index_map(lo, e, lo.real(a), [])


@rule("gather")
def _gather(lo, e, a, idx):
    if not isinstance(idx, Const):
        lo.fail("gather with indices computed from real values: not a real-number function")
    return _index_map(lo, e, lo.real(a), [idx])


# ---------------------------------------------------------------------------------------------- reductions

@rule("reduce_sum")
def _reduce_sum(lo, e, a):
    return lo.reduce("sum", a, e.params["axes"])


@rule("reduce_max", note="reduce_max JVP: the tangent averaged over the maximal elements (tie=split)")
def _reduce_max(lo, e, a):
    return lo.reduce("amax", a, e.params["axes"], tie="split")


@rule("reduce_min", note="reduce_min JVP: the tangent averaged over the minimal elements (tie=split)")
def _reduce_min(lo, e, a):
    return lo.reduce("amin", a, e.params["axes"], tie="split")


@rule("dot_general")
def _dot_general(lo, e, a, b):
    (ca, cb), (ba, bb) = e.params["dimension_numbers"]
    return lo.dot(a, b, tuple(int(i) for i in ca), tuple(int(i) for i in cb), tuple(int(i) for i in ba),
                  tuple(int(i) for i in bb))


@rule("conv_general_dilated")
def _conv(lo, e, x, w):
    p = e.params
    x, w = lo.real(x), lo.real(w)
    if any(d != 1 for d in p["lhs_dilation"]):
        lo.fail("a transposed convolution (lhs_dilation != 1)")
    if p.get("batch_group_count", 1) != 1:
        lo.fail("batch_group_count != 1")
    dn = p["dimension_numbers"]
    lhs, rhs, out = dn.lhs_spec, dn.rhs_spec, dn.out_spec
    if len(lhs) != 4:
        lo.fail(f"a {len(lhs) - 2}-d convolution (only 2-d is supported)")
    xn = lo.transpose(x, lhs)
    wn = lo.transpose(w, rhs)
    (t, b), (le, r) = p["padding"]
    (o,) = lo.emit("conv2d", [lo.full(xn), lo.full(wn)],
                   {"stride": tuple(int(s) for s in p["window_strides"]), "padding": (int(t), int(b), int(le), int(r)),
                    "dilation": tuple(int(d) for d in p["rhs_dilation"]), "groups": int(p["feature_group_count"])})
    y = Tensor(o, lo.shape_of(o))
    return lo.transpose(y, tuple(int(i) for i in _np.argsort(out)))


def _window(lo, e, x):
    """NCHW pooling params from a reduce_window over (1, 1, kh, kw) windows (or NHWC: (1, kh, kw, 1))."""
    p = e.params
    dims, strides, pad = p["window_dimensions"], p["window_strides"], p["padding"]
    if any(d != 1 for d in p["base_dilation"]):
        lo.fail("reduce_window with base dilation")
    if len(dims) != 4:
        lo.fail(f"a reduce_window over {len(dims)} dimensions (only 2-d pooling of 4-d arrays is supported)")
    spatial = [i for i, d in enumerate(dims) if d != 1 or strides[i] != 1 or tuple(pad[i]) != (0, 0)]
    perm = None
    if all(i in (2, 3) for i in spatial):
        perm = (0, 1, 2, 3)
    elif all(i in (1, 2) for i in spatial):
        perm = (0, 3, 1, 2)          # NHWC
    else:
        lo.fail("a reduce_window whose window is not over two spatial axes")
    h, w = perm[2], perm[3]
    params = {"kernel": (int(dims[h]), int(dims[w])), "stride": (int(strides[h]), int(strides[w])),
              "padding": (int(pad[h][0]), int(pad[h][1]), int(pad[w][0]), int(pad[w][1])),
              "dilation": (int(p["window_dilation"][h]), int(p["window_dilation"][w]))}
    return lo.transpose(lo.real(x), perm), perm, params


def _window_index(shape, dims, strides, pads, wdil, base_dil):
    """(index array of shape out_shape + (K,) into the flat operand, -1 at padding) of a reduce_window."""
    if any(d != 1 for d in base_dil):
        return None
    idx = _np.arange(_math.prod(shape), dtype=_np.int64).reshape(shape)
    idx = _np.pad(idx, [tuple(int(a) for a in p) for p in pads], constant_values=-1)
    extent = [(k - 1) * d + 1 for k, d in zip(dims, wdil)]
    out = [max((n - x) // s + 1, 0) for n, x, s in zip(idx.shape, extent, strides)]
    offsets = _np.stack(_np.meshgrid(*[_np.arange(k) * d for k, d in zip(dims, wdil)], indexing="ij"), -1)
    offsets = offsets.reshape(-1, len(shape))                     # K window offsets, row-major
    starts = _np.stack(_np.meshgrid(*[_np.arange(o) * s for o, s in zip(out, strides)], indexing="ij"), -1)
    pos = starts[..., None, :] + offsets                           # out + (K, ndim)
    return idx[tuple(pos[..., i] for i in range(len(shape)))]


def _window_reduce(lo, e, x, how):
    """A reduce_window of any rank as a gather of every window's elements (a constant index array, the
    window along a new last axis) and a reduction over that axis: ``how`` is max / min (a tied window's
    tangent to its first extreme element, as JAX's select_and_gather_add gives it), sum or mul.  A padded
    position takes the value of its window's first element for max / min (it never wins a tie it would
    not win anyway) and is masked out of sums and products."""
    p = e.params
    t = lo.real(x)
    index = _window_index(t.shape, p["window_dimensions"], p["window_strides"], p["padding"],
                          p["window_dilation"], p["base_dilation"])
    if index is None:
        lo.fail("reduce_window with base dilation")
    pad = index < 0
    if pad.all(axis=-1).any():
        lo.fail("a reduce_window with a window made of padding only (its value is the init value)")
    first = _np.take_along_axis(index, _np.argmax(~pad, axis=-1)[..., None], -1)
    gathered = lo.take(t, _np.where(pad, first, index), "window")
    ax = len(gathered.shape) - 1
    if how in ("max", "min"):
        return lo.reduce("amax" if how == "max" else "amin", gathered, (ax,), tie="first")
    mask = lo.constant((~pad).astype(_np.int64), "window.mask")
    if how == "sum":
        return lo.reduce("sum", lo.mul(gathered, mask), (ax,))
    return _product_last_axis(lo, lo.add(lo.mul(gathered, mask), lo.sub(1, mask)))   # padding multiplies by 1


def _product_last_axis(lo, t):
    """The product of ``t`` along its last axis, as a chain of elementwise products (1 when it is empty)."""
    n, ax = t.shape[-1], len(t.shape) - 1
    out = None
    for j in range(n):
        col = lo.reshape(lo.slice(t, (0,) * ax + (j,), tuple(t.shape[:-1]) + (j + 1,)), t.shape[:-1])
        out = col if out is None else lo.mul(out, col)
    return out if out is not None else lo.constant(_np.ones(t.shape[:-1]), "product.empty")


def _pooling(e):
    """True when the reduce_window is a 2-d pooling of a 4-d array (the max_pool2d / avg_pool2d fast path)."""
    p = e.params
    if len(p["window_dimensions"]) != 4 or any(d != 1 for d in p["base_dilation"]):
        return False
    spatial = [i for i, d in enumerate(p["window_dimensions"])
               if d != 1 or p["window_strides"][i] != 1 or tuple(p["padding"][i]) != (0, 0)]
    return all(i in (2, 3) for i in spatial) or all(i in (1, 2) for i in spatial)


@rule("reduce_window_max", note="reduce_window_max JVP gives a tied window's tangent to its first maximal "
                                "element in row-major order, measured (tie=first)")
def _reduce_window_max(lo, e, x):
    if not _pooling(e):
        return _window_reduce(lo, e, x, "max")
    xn, perm, params = _window(lo, e, x)
    if _math.prod(params["kernel"]) < 2:
        return lo.transpose(xn, tuple(int(i) for i in _np.argsort(perm)))
    (o,) = lo.emit("max_pool2d", [lo.full(xn)], {**params, "tie": "first"})
    return lo.transpose(Tensor(o, lo.shape_of(o)), tuple(int(i) for i in _np.argsort(perm)))


@rule("reduce_window_min", note="reduce_window_min JVP gives a tied window's tangent to its first minimal "
                                "element (tie=first)")
def _reduce_window_min(lo, e, x):
    return _window_reduce(lo, e, x, "min")


@rule("reduce_window_sum")
def _reduce_window_sum(lo, e, x):
    if not _pooling(e) or any(d != 1 for d in e.params["window_dilation"]):
        return _window_reduce(lo, e, x, "sum")
    xn, perm, params = _window(lo, e, x)
    params.pop("dilation")
    (o,) = lo.emit("avg_pool2d", [lo.full(xn)], params)
    y = lo.mul(Tensor(o, lo.shape_of(o)), _math.prod(params["kernel"]))
    return lo.transpose(y, tuple(int(i) for i in _np.argsort(perm)))


_MONOIDS = {"add": ("sum", 0), "mul": ("mul", 1), "max": ("max", None), "min": ("min", None)}


def _monoid(lo, e):
    """(how, neutral) of a reduction whose body is one add / mul / max / min of its two arguments."""
    closed = e.params["jaxpr"]
    j = getattr(closed, "jaxpr", closed)
    if len(j.eqns) != 1 or j.eqns[0].primitive.name not in _MONOIDS or list(j.eqns[0].invars) != list(j.invars):
        lo.fail("a reduction whose body is not one add, mul, max or min of its two arguments")
    return _MONOIDS[j.eqns[0].primitive.name]


def _with_init(lo, out, init, how):
    """A reduction's result combined with its init value (skipped when the init is the neutral element)."""
    if isinstance(init, NonReal):
        if (how == "max" and init.value < 0) or (how == "min" and init.value > 0):
            return out
        lo.fail(f"a {how} reduction with init value {init.value}")
    v = lo.real(init, "init value")
    neutral = {"sum": 0, "mul": 1}.get(how)
    if isinstance(v.atom, Lit) and neutral is not None and v.atom.value == neutral:
        return out
    if how == "sum":
        return lo.add(out, v)
    if how == "mul":
        return lo.mul(out, v)
    return lo.ew(how, [out, v], {"tie": "split"})


@rule("reduce_window", note="a generic window reduction: its body must be add, mul, max or min")
def _reduce_window(lo, e, x, init):
    how, _ = _monoid(lo, e)
    if how in ("max", "min") and not isinstance(init, NonReal):
        lo.fail("the JAX primitive 'reduce_window' is not supported with a max or min body and a finite init value "
                "(the init takes part in every window, and JAX has no derivative for it to measure)")
    return _with_init(lo, _window_reduce(lo, e, x, how), init, how)


@rule("reduce", note="a generic reduction whose body is add or mul")
def _reduce(lo, e, *args):
    if len(args) != 2:
        lo.fail("a variadic reduction (several operands, as argmax computes): not a real-number function")
    x, init = args
    how, _ = _monoid(lo, e)
    if how not in ("sum", "mul"):
        lo.fail(f"a generic {how} reduction: its derivative at ties is not measured (jnp.max / jnp.min are "
                "reduce_max / reduce_min, which are supported)")
    axes = tuple(int(a) for a in e.params["dimensions"])
    if how == "sum":
        return _with_init(lo, lo.reduce("sum", x, axes), init, how)
    t = lo.real(x)
    kept = tuple(i for i in range(len(t.shape)) if i not in axes)
    flat = lo.reshape(lo.transpose(t, kept + axes),
                      tuple(t.shape[i] for i in kept) + (_math.prod(t.shape[i] for i in axes),))
    return _with_init(lo, _product_last_axis(lo, flat), init, how)


@rule("sort", note="sort JVP permutes the tangent like the operand: is_stable=True keeps tied elements in "
                   "input order (ties=stable), is_stable=False has no tie rule (ties=unspecified: UNDECIDED at a "
                   "tie); jnp.sort(descending=True) is an ascending sort and rev")
def _sort(lo, e, *ops):
    p = e.params
    if p.get("num_keys", 1) != 1:
        lo.fail("sort with several keys")
    if isinstance(ops[0], Const):
        return _sort_by_constant_keys(lo, e, ops)
    t = lo.real(ops[0])
    ax = p["dimension"] % len(t.shape)
    # an unstable sort orders tied elements by its algorithm: a tie is UNDECIDED ("unspecified"), off ties the
    # order and the derivative are the stable sort's
    ties = "stable" if p.get("is_stable", False) else "unspecified"
    if t.shape[ax] < 2:
        out = t
    else:
        (o,) = lo.emit("sort_axis", [lo.full(t)], {"axis": ax, "descending": False, "ties": ties})
        out = Tensor(o, t.shape)
    rest = [Unavailable("the operands sorted along with a key (argsort indices) are not supported", x.shape)
            for x in ops[1:]]
    return [out] + rest


def _sort_by_constant_keys(lo, e, ops):
    """A sort whose keys are known at import time (the random bits of jax.random.permutation, an argsort of
    labels) moves the other operands by a known permutation: JAX sorts the positions of each operand along
    with the keys, and the real operands are gathered at those positions (exact; ties in the keys keep JAX's
    own order, stable or not, since JAX computes it)."""
    vals = [_host(ops[0].value)]
    for x in ops[1:]:
        vals.append(_np.arange(_math.prod(x.shape), dtype=_np.int64).reshape(x.shape))
    outs = _bind(e, vals)
    res = [type(ops[0])(_host(outs[0]))]
    for x, pos in zip(ops[1:], outs[1:]):
        pos = _np.asarray(pos)
        if isinstance(x, Const):
            res.append(type(x)(_np.take(_np.asarray(_host(x.value)).ravel(), pos)))
        else:
            res.append(lo.take(lo.real(x), pos, "map"))
    return res


@rule("argmax", "argmin")
def _argmax(lo, e, a):
    lo.fail(f"{e.primitive.name} computes integers from real values: not a real-number function")


# ---------------------------------------------------------------------------------------------------- calls

@rule("jit", "pjit", "closed_call", "core_call", "remat", "remat2", "checkpoint",
      note="a call (remat2 is jax.checkpoint: the same function, recomputed in the backward pass)")
def _call(lo, e, *args):
    j, consts = _sub_jaxpr(e)
    consts = [Drawn(c) if is_key(c) else
              lo.constant(_np.asarray(c), f"closure.{lo.hint}", fold=False) if _is_float(_np.asarray(c).dtype)
              else Const(_np.asarray(c)) for c in consts]
    lo.stack.append(_call_name(e))
    try:
        return lo.lower(j, consts, list(args), [True] * len(j.outvars))
    finally:
        lo.stack.pop()


def _call_name(e):
    """The name of a called function: jit's ``name``, or the custom function's own name."""
    if e.params.get("name"):
        return str(e.params["name"])
    j, _ = _sub_jaxpr(e)
    info = getattr(j, "debug_info", None)
    name = getattr(info, "func_name", None) if info is not None else None
    if not name and info is not None:
        name = str(getattr(info, "func_src_info", "") or "").split(" ")[0]
    return name or e.primitive.name


@rule("custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr",
      note="custom rule: forward from call_jaxpr; kink params chosen so that the derivative equals the rule's "
           "jaxpr at the function's kinks")
def _custom(lo, e, *args):
    first = len(lo.b.eqns)
    outs = _call(lo, e, *args)
    new = list(range(first, len(lo.b.eqns)))
    kinky = [k for k in new if not PRIMITIVES[lo.b.eqns[k].prim].smooth]
    if kinky and lo.resolve:
        _resolve_kinks(lo, e, args, outs, new, kinky)
    return outs


# ------------------------------------------------------------------------------------------ control flow
#
# lax.scan (and fori_loop, which JAX writes as a scan) is unrolled: its length is fixed when JAX traces it, so
# the loop is the same real-number program as its body written out `length` times.  lax.cond / lax.switch
# with an index known at import time is the branch it selects; lax.cond on a comparison of reals is a
# selection: both branches are lowered and each output is where(comparison, true branch, false branch), the
# comparison being the switching function (both branches must then be defined at the point).  A while_loop is
# unrolled when its predicate is known at import time (integer counters), and refused when the predicate
# depends on real values: its trip count, and so the program, changes with the inputs.

MAX_UNROLL = 100000      # loop steps an import unrolls at most


def _closed_consts(lo, consts):
    """The constants of a closed sub-jaxpr as values of the lowering (floats exact, integers as they are)."""
    return [lo.constant(_np.asarray(c), f"closure.{lo.hint}", fold=False) if _is_float(_np.asarray(c).dtype)
            else Const(_np.asarray(c)) for c in consts]


def _lower_closed(lo, closed, args, name):
    """Lower a ClosedJaxpr on ``args`` as a nested call named ``name``: the values of its outputs."""
    lo.stack.append(name)
    try:
        return lo.lower(closed.jaxpr, _closed_consts(lo, closed.consts), list(args), [True] * len(closed.jaxpr.outvars))
    finally:
        lo.stack.pop()


def _step(lo, x, i):
    """Element ``i`` along the first axis of a scanned value (a real array or an integer constant)."""
    if isinstance(x, Const):
        return Const(_np.asarray(x.value)[i])
    if isinstance(x, NonReal):
        return NonReal(x.value, tuple(x.shape[1:]))
    t = lo.real(x, "scanned value")
    t = lo.slice(t, (i,) + (0,) * (len(t.shape) - 1), (i + 1,) + tuple(t.shape[1:]))
    return lo.reshape(t, t.shape[1:])


def _stack_steps(lo, values, aval):
    """The per-step outputs of a scan stacked along a new first axis (``aval``: JAX's type of the result)."""
    shape = tuple(aval.shape)
    if not values:
        return lo.constant(_np.zeros(shape), "scan.empty") if _is_float(aval.dtype) else Const(_np.zeros(shape,
                                                                                                         aval.dtype))
    if all(isinstance(v, Const) for v in values):
        return Const(_np.stack([_np.asarray(v.value) for v in values]))
    parts = [lo.reshape(lo.real(v, "scan output"), (1,) + shape[1:]) for v in values]
    return parts[0] if len(parts) == 1 else lo.concat(parts, 0)


@rule("scan", note="unrolled: its body once per step (the length is fixed when JAX traces the loop)")
def _scan(lo, e, *args):
    p = e.params
    nc, nk, length = p["num_consts"], p["num_carry"], int(p["length"])
    if length > MAX_UNROLL:
        lo.fail(f"a scan of length {length}: more than the {MAX_UNROLL} steps an import unrolls")
    consts, carry, xs = list(args[:nc]), list(args[nc:nc + nk]), list(args[nc + nk:])
    steps = range(length - 1, -1, -1) if p["reverse"] else range(length)
    ys = {}
    for i in steps:
        outs = _lower_closed(lo, p["jaxpr"], consts + carry + [_step(lo, x, i) for x in xs], f"scan[{i}]")
        carry, ys[i] = list(outs[:nk]), list(outs[nk:])
    stacked = [_stack_steps(lo, [ys[i][j] for i in range(length)], v.aval)
               for j, v in enumerate(e.outvars[nk:])]
    return carry + stacked


@rule("cond", note="a selection: the branch its index selects; on a comparison of reals, where(comparison, ...)")
def _cond(lo, e, index, *ops):
    branches = e.params["branches"]
    if isinstance(index, Const):
        k = int(_np.clip(_np.asarray(index.value), 0, len(branches) - 1))
        return _lower_closed(lo, branches[k], ops, f"cond[{k}]")
    if not isinstance(index, Cond) or len(branches) != 2:
        lo.fail("lax.switch on an index computed from real values (only lax.cond on a comparison of reals, or an "
                "index known at import time, is a selection verify can import)")
    no, yes = (_lower_closed(lo, b, ops, f"cond[{k}]") for k, b in enumerate(branches))
    out = []
    for a, b in zip(yes, no):
        if isinstance(a, Const) and isinstance(b, Const) and _np.array_equal(a.value, b.value):
            out.append(a)
        else:
            out.append(lo.select(index, a, b))
    return out


@rule("while", note="unrolled while its predicate is known at import time (integer counters)")
def _while(lo, e, *args):
    p = e.params
    cn, bn = p["cond_nconsts"], p["body_nconsts"]
    cconsts, bconsts, carry = list(args[:cn]), list(args[cn:cn + bn]), list(args[cn + bn:])
    for i in range(MAX_UNROLL + 1):
        (pred,) = _lower_closed(lo, p["cond_jaxpr"], cconsts + carry, f"while.cond[{i}]")
        if not isinstance(pred, Const):
            lo.fail("a while_loop whose predicate depends on real values: its trip count changes with the inputs, so "
                    "it is not one real-number program (write it with lax.scan or fori_loop of fixed length)")
        if not bool(_np.asarray(pred.value)):
            return carry
        carry = list(_lower_closed(lo, p["body_jaxpr"], bconsts + carry, f"while[{i}]"))
    lo.fail(f"a while_loop that runs more than {MAX_UNROLL} steps")


# ------------------------------------------------------------------------------- JAX's operator set (issue 17)
#
# Elementary functions JAX has as primitives and verify writes with its own (asin as atan(x / sqrt(1 - x^2)),
# ...): each is the same real function on its domain, and JAX's JVP there is that function's derivative, so no
# kink is involved.  Where a formula leaves the domain at a point the real function has (cbrt at 0, acos at 1),
# the derivative is infinite there and the import's DomainError says so.

def _pi(lo):
    """pi exactly (4 atan 1: a ball in the interpreters, not the double 3.141592653589793)."""
    return lo.mul(4, lo.ew("atan", [lo.lit(1)]))


rule("atan")(_unary("atan"))
rule("lgamma")(_unary("lgamma"))
rule("erf_inv", note="defined for |x| < 1")(_unary("erfinv"))


@rule("digamma", note="polygamma of order 0 (poles at the non-positive integers)")
def _digamma(lo, e, a):
    return lo.ew("polygamma", [lo.real(a)], {"n": 0})


@rule("polygamma", note="an order known at import time, an integer 0 <= n <= 64")
def _polygamma(lo, e, m, a):
    m = lo.real(m, "order")
    if not isinstance(m.atom, Lit) or m.atom.value.q != 1 or not 0 <= int(m.atom.value.p) <= 64:
        lo.fail("polygamma of an order that is not an integer 0 <= n <= 64 known at import time")
    return lo.ew("polygamma", [lo.real(a)], {"n": int(m.atom.value.p)})


@rule("tan")
def _tan(lo, e, a):
    x = lo.real(a)
    return lo.div(lo.ew("sin", [x]), lo.ew("cos", [x]))


@rule("sinh")
def _sinh(lo, e, a):
    x = lo.real(a)
    return lo.mul(lo.sub(lo.ew("exp", [x]), lo.ew("exp", [lo.neg(x)])), fmpq(1, 2))


@rule("cosh")
def _cosh(lo, e, a):
    x = lo.real(a)
    return lo.mul(lo.add(lo.ew("exp", [x]), lo.ew("exp", [lo.neg(x)])), fmpq(1, 2))


@rule("asin", note="defined for |x| < 1: atan(x / sqrt(1 - x^2)) (at +-1 JAX's derivative is infinite)")
def _asin(lo, e, a):
    x = lo.real(a)
    return lo.ew("atan", [lo.div(x, lo.ew("sqrt", [lo.sub(1, lo.mul(x, x))]))])


@rule("acos", note="defined for |x| < 1: 2 atan(sqrt((1 - x) / (1 + x))) (at +-1 JAX's derivative is infinite)")
def _acos(lo, e, a):
    x = lo.real(a)
    return lo.mul(2, lo.ew("atan", [lo.ew("sqrt", [lo.div(lo.sub(1, x), lo.add(1, x))])]))


@rule("asinh")
def _asinh(lo, e, a):
    x = lo.real(a)
    return lo.ew("log", [lo.add(x, lo.ew("sqrt", [lo.add(lo.mul(x, x), 1)]))])


@rule("acosh", note="defined for x > 1 (at 1 JAX's derivative is infinite)")
def _acosh(lo, e, a):
    x = lo.real(a)
    return lo.ew("log", [lo.add(x, lo.ew("sqrt", [lo.sub(lo.mul(x, x), 1)]))])


@rule("atanh", note="defined for |x| < 1: log((1 + x) / (1 - x)) / 2")
def _atanh(lo, e, a):
    x = lo.real(a)
    return lo.mul(lo.ew("log", [lo.div(lo.add(1, x), lo.sub(1, x))]), fmpq(1, 2))


@rule("cbrt", note="x |x|^(-2/3) = x exp(-log(x^2) / 3), defined for x != 0 (at 0 JAX's derivative is infinite)")
def _cbrt(lo, e, a):
    x = lo.real(a)
    return lo.mul(x, lo.ew("exp", [lo.mul(lo.ew("log", [lo.mul(x, x)]), fmpq(-1, 3))]))


@rule("atan2", note="atan2 JVP is (x, -y) / (x^2 + y^2) (nan at the origin): atan(y / x) (+-pi) off the y axis, "
                    "2 atan((r - x) / y) on it; the jump across y = 0, x < 0 takes the y >= 0 side (pi), as "
                    "atan2(0, -1) = pi")
def _atan2(lo, e, y, x):
    y, x = lo.real(y), lo.real(x)
    shape = lo.bshape(y.shape, x.shape)
    y, x = lo.broadcast(y, shape), lo.broadcast(x, shape)
    x_nz, y_nz = lo.compare("!=", x, 0), lo.compare("!=", y, 0)
    # the branch not taken still has to be defined (where evaluates both sides): 1 stands in for a zero divisor
    base = lo.ew("atan", [lo.div(y, lo.select(x_nz, x, 1))])
    pi = _pi(lo)
    left = lo.select(lo.compare(">=", y, 0), lo.add(base, pi), lo.sub(base, pi))
    off_axis = lo.select(lo.compare(">", x, 0), base, left)
    r = lo.ew("sqrt", [lo.select(y_nz, lo.add(lo.mul(x, x), lo.mul(y, y)), 1)])
    on_axis = lo.select(y_nz, lo.mul(2, lo.ew("atan", [lo.div(lo.sub(r, x), lo.select(y_nz, y, 1))])), 0)
    return lo.broadcast(lo.select(x_nz, off_axis, on_axis), shape)


def _abs0(lo, t):
    """|x| with derivative 0 at 0 (the sgn of JAX's scaled Bessel JVPs)."""
    (o,) = lo.emit("abs", [lo.full(t)], {"at_zero": fmpq(0)})
    return Tensor(o, t.shape)


def _scaled_bessel(n):
    def fn(lo, e, a):
        x = lo.real(a)
        return lo.mul(lo.ew("exp", [lo.neg(_abs0(lo, x))]), lo.ew("bessel_i", [x], {"n": n}))
    return fn


rule("bessel_i0e", note="exp(-|x|) I0(x): the JVP is i1e(x) - sign(x) i0e(x), 0 at 0 (abs at_zero=0)")(
    _scaled_bessel(0))
rule("bessel_i1e", note="exp(-|x|) I1(x): the JVP at 0 is 1/2 (I1(0) = 0, so abs's kink does not show)")(
    _scaled_bessel(1))


def _emit_step(lo, kind, x):
    x = lo.real(x)
    (o,) = lo.emit(kind, [lo.full(x)])
    return Tensor(o, x.shape)


@rule("floor", "ceil", note="a step: derivative 0 everywhere (discontinuous at the integers)")
def _floor_ceil(lo, e, a):
    return _emit_step(lo, e.primitive.name, a)


@rule("round", note="rounding_method TO_NEAREST_EVEN: the round step; AWAY_FROM_ZERO: floor(x + 1/2) for x >= 0, "
                    "ceil(x - 1/2) below; derivative 0 everywhere (discontinuous at the half-integers)")
def _round(lo, e, a):
    x = lo.real(a)
    if int(e.params.get("rounding_method", 0)) == 1:            # lax.RoundingMethod.TO_NEAREST_EVEN
        return _emit_step(lo, "round", x)
    return lo.select(lo.compare(">=", x, 0), _emit_step(lo, "floor", lo.add(x, fmpq(1, 2))),
                     _emit_step(lo, "ceil", lo.sub(x, fmpq(1, 2))))


@rule("rem", note="rem(x, y) = x - y trunc(x / y) (C's fmod): the JVP is 1 in x and -trunc(x / y) in y; a jump "
                  "where x / y is a nonzero integer")
def _rem(lo, e, a, b):
    return lo.sub(a, lo.mul(b, _emit_step(lo, "trunc", lo.div(a, b))))


_NOT_REAL = {
    "nextafter": "the next float after x depends on the float format, not on the real number x",
    "bitcast_convert_type": "it reinterprets the bits of a float, which are no function of its real value",
    "igamma": "the regularized incomplete gamma function is not among verify's primitives (no enclosure rule and "
              "checker kernel for it yet)",
    "igammac": "the regularized incomplete gamma function is not among verify's primitives (no enclosure rule and "
               "checker kernel for it yet)",
    "igamma_grad_a": "the incomplete gamma function's derivative in a is not among verify's primitives",
    "regularized_incomplete_beta": "the regularized incomplete beta function is not among verify's primitives (no "
                                   "enclosure rule and checker kernel for it yet)",
    "zeta": "the Hurwitz zeta function is not among verify's primitives",
}


def _refuse(lo, e, *args):
    lo.fail(f"the JAX primitive {e.primitive.name!r} is refused: {_NOT_REAL[e.primitive.name]}")


for _name in _NOT_REAL:
    rule(_name, note=_NOT_REAL[_name])(_refuse)


# ---------------------------------------------------------------------------- cumulative ops, products, top_k

def _jax_combine(name):
    from jax import lax
    from jax import numpy as jnp
    # logaddexp is smooth: its own formula (a custom_jvp around a max) and log(e^a + e^b) have one derivative
    return {"cumsum": lax.add, "cumprod": lax.mul, "cummax": lax.max, "cummin": lax.min,
            "cumlogsumexp": lambda a, b: jnp.log(jnp.exp(a) + jnp.exp(b))}[name]


@rule("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp",
      note="JAX differentiates a cumulative op as lax.associative_scan of add / mul / max / min / logaddexp, and "
           "that scan's own jaxpr is what is imported: the same values, and at ties the same derivative (max and "
           "min give 1/2 to each side at every combination, as lax.max)")
def _cumulative(lo, e, a):
    import jax
    from jax import lax
    p = e.params
    aval = e.invars[0].aval
    fn = _jax_combine(e.primitive.name)
    closed = jax.make_jaxpr(lambda t: lax.associative_scan(fn, t, reverse=bool(p["reverse"]), axis=int(p["axis"])))(
        jax.ShapeDtypeStruct(aval.shape, aval.dtype))
    return _lower_closed(lo, closed, [a], e.primitive.name)


@rule("reduce_prod", note="a chain of products (the JVP is the product of the other factors, also at zeros)")
def _reduce_prod(lo, e, a):
    t = lo.real(a)
    axes = tuple(int(i) % len(t.shape) for i in e.params["axes"]) if t.shape else ()
    if not axes:
        return t
    kept = tuple(i for i in range(len(t.shape)) if i not in axes)
    flat = lo.reshape(lo.transpose(t, kept + axes),
                      tuple(t.shape[i] for i in kept) + (_math.prod(t.shape[i] for i in axes),))
    return _product_last_axis(lo, flat)


def _largest(lo, t, ax, k, descending):
    """The k largest (or smallest) elements of ``t`` along ``ax``, sorted, ties in input order (XLA's TopK on
    CPU, measured): a stable sort and a slice."""
    if t.shape[ax] >= 2:
        (o,) = lo.emit("sort_axis", [lo.full(t)], {"axis": ax, "descending": descending, "ties": "stable"})
        t = Tensor(o, t.shape)
    stop = list(t.shape)
    stop[ax] = k
    return lo.slice(t, (0,) * len(t.shape), stop)


@rule("top_k", note="the k largest in descending order, tied elements in input order (measured): its JVP is the "
                    "tangent at the selected indices")
def _top_k(lo, e, a):
    t = lo.real(a)
    ax = int(e.params.get("axis", -1)) % len(t.shape)
    out = _largest(lo, t, ax, int(e.params["k"]), True)
    return [out, Unavailable("top_k's indices are integers computed from real values", out.shape)]


@rule("approx_top_k", note="exact on CPU (measured): top_k, or the k smallest in ascending order when is_max_k is "
                           "False, tied elements in input order")
def _approx_top_k(lo, e, a):
    t = lo.real(a)
    p = e.params
    ax = int(p["reduction_dimension"]) % len(t.shape)
    if int(p.get("reduction_input_size_override", -1)) not in (-1, t.shape[ax]) or not p.get("aggregate_to_topk",
                                                                                              True):
        lo.fail("approx_top_k with a reduction_input_size_override or without aggregate_to_topk (an approximate "
                "result)")
    out = _largest(lo, t, ax, int(p["k"]), bool(p["is_max_k"]))
    return [out, Unavailable("approx_top_k's indices are integers computed from real values", out.shape)]


# ------------------------------------------------------------------------------ scatter with known indices

def _scatter_targets(lo, e, idx, n_operand, upd_shape, dtype):
    """For every element of the updates (flat), the flat operand position it lands on (-1: dropped, out of
    bounds), computed by JAX: the transpose of a scatter-add in the updates is the gather of its cotangent, and
    the cotangent is the operand positions plus 1."""
    import jax
    from jax import lax
    from jax import numpy as jnp
    shape = tuple(e.invars[0].aval.shape)
    if n_operand + 1 >= 2 ** (_np.finfo(dtype).nmant + 1):
        lo.fail(f"a scatter into {n_operand} positions does not fit {dtype}")
    p = e.params

    def scatter(u):
        return lax.scatter_add(jnp.zeros(shape, dtype), _np.asarray(idx.value), u, p["dimension_numbers"],
                               mode=p["mode"])
    _, pull = jax.vjp(scatter, jnp.zeros(upd_shape, dtype))
    (pos,) = pull(jnp.arange(1, n_operand + 1, dtype=dtype).reshape(shape))
    return _np.asarray(pos, dtype=_np.float64).astype(_np.int64).ravel() - 1


def _contributors(targets, n):
    """(windows, counts): windows[i] lists (padded with -1) the update elements landing on operand position i."""
    counts = _np.bincount(targets[targets >= 0], minlength=n)
    k = int(counts.max()) if n else 0
    windows = -_np.ones((n, max(k, 1)), dtype=_np.int64)
    fill = _np.zeros(n, dtype=_np.int64)
    for j, i in enumerate(targets):
        if i >= 0:
            windows[i, fill[i]] = j
            fill[i] += 1
    return windows, counts


@rule("scatter", "scatter-add", "scatter-mul", "scatter-max", "scatter-min",
      note="with indices known at import: a linear map (scatter, scatter-add), a product (scatter-mul), a max / min "
           "of the operand element and the updates landing on it with ties split equally (JAX's scatter-max JVP, "
           "measured); plain scatter only where no two updates land on one position")
def _scatter(lo, e, a, idx, u):
    from .torch_ops import window_reduce
    kind = e.primitive.name.split("-")[-1]
    if not isinstance(idx, Const):
        lo.fail(f"{e.primitive.name} at indices computed from real values: not a real-number function")
    t, v = lo.real(a), lo.real(u)
    n = _math.prod(t.shape)
    targets = _scatter_targets(lo, e, idx, n, v.shape, _np.dtype(e.invars[0].aval.dtype))
    windows, counts = _contributors(targets, n)
    hit = (counts > 0).reshape(t.shape)
    if kind == "scatter":
        if counts.max(initial=0) > 1:
            lo.fail("a scatter where two updates land on one position: which one JAX keeps is not specified")
        return lo.select(Const(hit), lo.take(v, _np.maximum(windows[:, 0], 0).reshape(t.shape), "scatter"), t)
    if not hit.any():
        return t
    flat_t, flat_v = lo.reshape(t, (n,)), lo.reshape(v, (_math.prod(v.shape),))
    both = lo.concat([flat_t, flat_v], 0)
    rows = _np.concatenate([_np.arange(n)[:, None], _np.where(windows >= 0, windows + n, -1)], axis=1)
    if kind in ("max", "min"):
        return lo.reshape(window_reduce(lo, both, rows, f"window_{kind}", "split"), t.shape)
    gathered = lo.take(both, _np.where(rows >= 0, rows, 0), "scatter")
    mask = lo.constant((rows >= 0).astype(_np.int64), "scatter.mask")
    if kind == "add":
        out = lo.reduce("sum", lo.mul(gathered, mask), (1,))
    else:
        out = _product_last_axis(lo, lo.add(lo.mul(gathered, mask), lo.sub(1, mask)))
    return lo.reshape(out, t.shape)


# --------------------------------------------------------------------------- the pooling gradient primitives

def _window_rows(lo, e, shape):
    p = e.params
    index = _window_index(shape, p["window_dimensions"], p["window_strides"], p["padding"],
                          p.get("window_dilation", (1,) * len(shape)), p.get("base_dilation", (1,) * len(shape)))
    if index is None:
        lo.fail(f"{e.primitive.name} with base dilation")
    pad = index < 0
    if pad.all(axis=-1).any():
        lo.fail(f"{e.primitive.name} with a window made of padding only")
    first = _np.take_along_axis(index, _np.argmax(~pad, axis=-1)[..., None], -1)
    return _np.where(pad, first, index)


def _select_op(lo, e):
    name = getattr(e.params["select_prim"], "name", str(e.params["select_prim"]))
    if name not in ("ge", "le"):
        lo.fail(f"{e.primitive.name} with select_prim {name}")
    return ">" if name == "ge" else "<"


@rule("select_and_gather_add", note="the tangent at each window's first maximal (ge) or minimal (le) operand "
                                    "element in row-major order (measured): a selection on the operand")
def _select_and_gather_add(lo, e, tangents, operand):
    op = _select_op(lo, e)
    x, t = lo.real(operand), lo.real(tangents)
    rows = _window_rows(lo, e, x.shape)
    best, pick = None, None
    for k in range(rows.shape[-1]):
        xk, tk = lo.take(x, rows[..., k], "window"), lo.take(t, rows[..., k], "window")
        if best is None:
            best, pick = xk, tk
            continue
        c = lo.compare(op, xk, best)             # strictly better: a tie keeps the earlier element
        best, pick = lo.select(c, xk, best), lo.select(c, tk, pick)
    return pick


@rule("select_and_scatter_add", note="each window's source value added at its first maximal (ge) or minimal (le) "
                                     "operand element in row-major order (measured): a selection on the operand")
def _select_and_scatter_add(lo, e, source, operand):
    op = _select_op(lo, e)
    x, s = lo.real(operand), lo.real(source)
    rows = _window_rows(lo, e, x.shape)
    K = rows.shape[-1]
    cols = [lo.take(x, rows[..., k], "window") for k in range(K)]
    parts = []
    for k in range(K):
        # element k wins its window when it beats every earlier one strictly and no later one beats it
        win = None
        for j in range(K):
            if j == k:
                continue
            c = lo.compare(op, cols[k], cols[j]) if j < k else lo.logical("not", lo.compare(op, cols[j], cols[k]))
            win = c if win is None else lo.logical("and", win, c)
        parts.append(s if win is None else lo.select(win, s, 0))
    # out[i] = the sum of the parts whose window element k is position i
    n, m = _math.prod(x.shape), _math.prod(s.shape)
    flat = lo.concat([lo.reshape(lo.broadcast(pk, s.shape), (m,)) for pk in parts], 0)
    targets = _np.concatenate([rows[..., k].ravel() for k in range(K)])
    duplicate = _np.zeros(rows.shape, dtype=bool)
    for k in range(1, K):                          # a padded slot repeats its window's first element: not a target
        duplicate[..., k] = (rows[..., k:k + 1] == rows[..., :k]).any(axis=-1)
    targets = _np.where(_np.concatenate([duplicate[..., k].ravel() for k in range(K)]), -1, targets)
    windows, counts = _contributors(targets, n)
    if not counts.any():
        return lo.constant(_np.zeros(x.shape), "select_and_scatter_add.zero")
    both = lo.concat([flat, lo.constant(_np.zeros(1), "zero", fold=False)], 0)
    gathered = lo.take(both, _np.where(windows >= 0, windows, K * m), "scatter")
    return lo.reshape(lo.reduce("sum", gathered, (1,)), x.shape)


# --------------------------------------------------------------------------------------- stop_gradient shifts

_STRUCT_PROJ = {
    "broadcast_in_dim": lambda e, p: _np.broadcast_to(
        p.reshape([p.shape[e.params["broadcast_dimensions"].index(d)] if d in e.params["broadcast_dimensions"]
                   else 1 for d in range(len(e.params["shape"]))]), tuple(e.params["shape"])),
    "reshape": lambda e, p: p.reshape(tuple(e.outvars[0].aval.shape)),
    "squeeze": lambda e, p: p.reshape(tuple(e.outvars[0].aval.shape)),
    "expand_dims": lambda e, p: p.reshape(tuple(e.outvars[0].aval.shape)),
    "transpose": lambda e, p: _np.transpose(p, e.params["permutation"]),
}


def _shift(lo, e, invals):
    """Lower an equation with Shifted operands: run it on the bases (the values at shift 0) and carry the shift
    through the exact identities below; anything else is an ImportFailure.

    add form v0 + c*eps:  (v0 + c eps) +- w,  (v0 + c1 eps) +- (w0 + c2 eps),  -(v0 + c eps),  sum over axes
    along which eps is constant (n*c), max over such axes (c), exp -> mul form with c.
    mul form v0 * exp(c*eps):  times or divided by w, by each other (c1 +- c2), |.|, sum over axes along which
    eps is constant, log -> add form with c.
    Structural ops (broadcast, reshape, transpose) move the projection with the values.  A coefficient that
    cancels leaves an ordinary value, exactly equal to the true one whatever eps is."""
    name = e.primitive.name
    entry = RULES.get(name)
    sh = [x for x in invals if isinstance(x, Shifted)]
    kinds = {x.kind for x in sh}

    def fail():
        lo.fail(f"a stop_gradient value flows into {name}: verify cannot prove the result independent of it "
                "(stop_gradient is accepted only where the result does not depend on it, such as the max shift of "
                "log_softmax, softmax and logsumexp)")
    if entry is None or name == "stop_gradient" or len(kinds) != 1:
        fail()
    kind = kinds.pop()
    bases = [x.base if isinstance(x, Shifted) else x for x in invals]
    shape = tuple(e.outvars[0].aval.shape)

    def tracked(k, coef, proj):
        out = entry[0](lo, e, *bases)
        out = out[0] if isinstance(out, list) else out
        return out if coef == 0 else Shifted(out, k, fmpq(coef), _np.array(proj))
    signs = {"add": {"add": (1, 1), "add_any": (1, 1), "sub": (1, -1)},
             "mul": {"mul": (1, 1), "div": (1, -1)}}[kind]
    if name in signs:
        projs = [_np.broadcast_to(x.proj, shape) for x in sh]
        if any(not _np.array_equal(p, projs[0]) for p in projs):
            fail()
        coef = sum((x.coef * s for x, s in zip(invals, signs[name]) if isinstance(x, Shifted)), fmpq(0))
        return tracked(kind, coef, projs[0])
    if len(sh) != 1 or len(invals) != 1:
        fail()
    x = sh[0]
    if name in ("copy", "copy_p", "convert_element_type"):
        return tracked(kind, x.coef, x.proj)
    if name in _STRUCT_PROJ:
        return tracked(kind, x.coef, _STRUCT_PROJ[name](e, x.proj))
    if (name, kind) == ("neg", "add"):
        return tracked("add", -x.coef, x.proj)
    if (name, kind) == ("exp", "add"):
        return tracked("mul", x.coef, x.proj)
    if (name, kind) == ("log", "mul"):
        return tracked("add", x.coef, x.proj)
    if (name, kind) == ("abs", "mul"):
        return tracked("mul", x.coef, x.proj)
    if name == "reduce_sum" or (name, kind) == ("reduce_max", "add"):
        axes = tuple(e.params["axes"])
        lo_p, hi_p = x.proj.min(axis=axes), x.proj.max(axis=axes)
        if not _np.array_equal(lo_p, hi_p):
            fail()
        n = _math.prod(x.proj.shape[a] for a in axes)
        return tracked(kind, x.coef * (n if (name, kind) == ("reduce_sum", "add") else 1), lo_p)
    fail()


# ---------------------------------------------------------------------------------- custom rules at the kinks

_CANDIDATES = {
    "relu": [("alpha", [fmpq(0), fmpq(1, 2), fmpq(1)])],
    "abs": [("at_zero", [fmpq(1), fmpq(0), fmpq(-1)])],
    "max": [("tie", ["split", "first", "last"])],
    "min": [("tie", ["split", "first", "last"])],
    "clamp": [("at_lo", [fmpq(0), fmpq(1, 2), fmpq(1)]), ("at_hi", [fmpq(0), fmpq(1, 2), fmpq(1)])],
    "where": [],
}
_MAX_ASSIGNMENTS = 729


def _kink_starts(phi, rho):
    """The starting points of the exact Newton search for kinks: 0, 1, -1 and every literal of the function
    ``phi`` and of its rule ``rho`` negated and shifted by one (a set of fmpq)."""
    starts = {fmpq(0), fmpq(1), fmpq(-1)}
    for prog in (phi[0], rho):
        for eq in prog.eqns:
            for a in eq.ins:
                if isinstance(a, Lit):
                    starts |= {a.value, -a.value, a.value + 1, a.value - 1, -a.value + 1, -a.value - 1}
    return starts


def _locate_kinks(lo, phi, starts, where):
    """The sorted kink points of every nonsmooth equation of ``phi``; fails where an equation's kinks are not
    found."""
    kinks_at = {}
    for j in phi[1]:
        found = _kink_points(phi[0], j, starts)
        if not found:
            lo.fail(f"{where}: cannot locate the kinks of `{phi[0].eqns[j].prim}` (exact Newton steps from the "
                    "function's literals found none)")
        kinks_at[j] = found
    return sorted(set().union(*kinks_at.values()))


def _kink_options(lo, phi, where):
    """For each nonsmooth equation of ``phi``, its candidate kink params (dicts, the current ones first);
    fails on a primitive without candidates or when the assignments number over _MAX_ASSIGNMENTS."""
    import itertools
    options = []
    for j in phi[1]:
        eq = phi[0].eqns[j]
        cands = _CANDIDATES.get(eq.prim)
        if cands is None:
            lo.fail(f"{where}: kinks of {eq.prim} inside a custom function are not supported")
        combos = [dict(zip([k for k, _ in cands], vals)) for vals in itertools.product(*[v for _, v in cands])]
        current = eq.param_dict
        combos.sort(key=lambda c: any(current.get(k) != v for k, v in c.items()))
        options.append(combos or [{}])
    total = _math.prod(len(o) for o in options)
    if total > _MAX_ASSIGNMENTS:
        lo.fail(f"{where}: too many kink choices to try ({total})")
    return options


def _matching_assignments(phi, options, points, want, exact):
    """The (assignment, derivatives at ``points``) pairs whose derivatives match the rule's ``want``: the first
    equal one when exact, else every one whose balls contain the rule's values."""
    import itertools
    matches = []
    for assign in itertools.product(*options):
        cand = _with_params(phi[0], dict(zip(phi[1], assign)))
        got = [_derivative(cand, x, exact) for x in points]
        if exact and got == want:
            matches = [(assign, got)]
            break
        if not exact and all(g is not None and (g - r).contains(0) for g, r in zip(got, want)):
            matches.append((assign, got))
    return matches


def _decided_assignment(lo, matches, points, want, where):
    """The first matching assignment; fails when none matches or when, in balls, the matches disagree."""
    if not matches:
        shown = ", ".join(f"{_show(r)} at {x}" for x, r in zip(points, want))
        lo.fail(f"{where}: the rule's derivative ({shown}) is not given by any choice of the kink params of "
                "its function")
    for _, got in matches[1:]:       # in balls: every accepted choice must give the same derivatives
        if any(not (g - h).contains(0) for g, h in zip(got, matches[0][1])):
            lo.fail(f"{where}: the rule's derivative at its kinks is not decided in ball arithmetic")
    return matches[0][0]


def _apply_kink_params(lo, phi, chosen, points, where):
    """Write the chosen kink params into the main program's equations and their origins; returns nothing."""
    for j, k in zip(phi[1], phi[2]):
        old = lo.b.eqns[k]
        params = {**old.param_dict, **chosen[phi[1].index(j)]}
        lo.b.eqns[k] = Eqn(old.prim, old.ins, tuple(sorted(params.items())), old.outs, old.loc)
        lo.origins[k] = Origin(lo.origins[k].framework, lo.origins[k].op, lo.origins[k].node, lo.origins[k].module,
                               lo.origins[k].source, f"{where}: kink params {chosen[phi[1].index(j)]} read from the "
                               f"rule at {[str(x) for x in points]}")


def _resolve_kinks(lo, e, args, outs, new, kinky):
    """Choose the kink params of the custom function's forward equations ``kinky`` so that the program's
    derivative equals the custom rule at the function's kinks (see ``from_jax``)."""
    where = f"{e.primitive.name} {_call_name(e)}"
    xs = [i for i, a in enumerate(args) if isinstance(a, Tensor) and not isinstance(a.atom, (Lit,)) and
          isinstance(a.atom, int)]
    if len(xs) != 1 or len(outs) != 1 or not isinstance(outs[0], Tensor) or outs[0].shape != args[xs[0]].shape:
        lo.fail(f"{where}: a nonsmooth custom function must be elementwise in one real argument to have its "
                "kinks read from its rule")
    xi = xs[0]
    phi = _scalarize(lo, [lo.b.eqns[k] for k in new], [args[xi].atom], outs[0].atom, where)
    rho = _rule_program(lo, e, args, xi, where)
    points = _locate_kinks(lo, phi, _kink_starts(phi, rho), where)
    want = [_rule_value(rho, x, where, lo) for x in points]
    exact = all(isinstance(r, fmpq) for r in want)
    options = _kink_options(lo, phi, where)
    matches = _matching_assignments(phi, options, points, want, exact)
    chosen = _decided_assignment(lo, matches, points, want, where)
    final = _with_params(phi[0], dict(zip(phi[1], chosen)))
    _check_off_kinks(final, rho, points, where, lo)
    _apply_kink_params(lo, phi, chosen, points, where)


def _scalarize(lo, eqns, in_atoms, out_atom, where):
    """The scalar function of an elementwise piece of the program: (program, positions of its nonsmooth
    equations, their indices in the main program)."""
    b = Builder("phi", ["x"])
    amap = {a: 0 for a in in_atoms}
    first = len(lo.b.eqns) - len(eqns)
    ns_local, ns_main = [], []
    for i, eq in enumerate(eqns):
        ins = []
        for a in eq.ins:
            if isinstance(a, Lit):
                ins.append(a)
            elif isinstance(a, int) and a in amap:
                ins.append(amap[a])
            else:
                lo.fail(f"{where}: its function uses a value other than its argument and numbers: not elementwise")
        prim = PRIMITIVES[eq.prim]
        if eq.prim in ("broadcast_to", "reshape"):
            amap[eq.outs[0]] = ins[0]
            continue
        if prim.tensor:
            lo.fail(f"{where}: its function uses {eq.prim}: not elementwise")
        outs = b.emit(eq.prim, ins, eq.param_dict, len(eq.outs))
        for o, n in zip(eq.outs, outs):
            amap[o] = n
        if not prim.smooth:
            ns_local.append(len(b.eqns) - 1)
            ns_main.append(first + i)
    if out_atom not in amap:
        lo.fail(f"{where}: its output is not computed from its argument")
    return b.finish([amap[out_atom]]), ns_local, ns_main


def _rule_program(lo, e, args, xi, where):
    """The custom rule as a scalar program (x, t) -> derivative of the function at x applied to t: the JVP (or
    VJP) jaxpr of the call equation alone, lowered by this importer and scalarised."""
    import jax
    from jax.extend.core import Literal
    xvar = e.invars[xi]
    fixed = {}
    for i, (v, a) in enumerate(zip(e.invars, args)):
        if isinstance(v, Literal) or i == xi:
            continue
        if isinstance(a, Const):
            fixed[i] = _np.asarray(a.value)
        elif isinstance(a, Tensor) and isinstance(a.atom, Lit):
            fixed[i] = _np.full(a.shape, float(a.atom.value), dtype=v.aval.dtype)
        else:
            lo.fail(f"{where}: its other arguments must be numbers")

    def one(x):
        return _bind(e, [x if i == xi else fixed.get(i) for i in range(len(e.invars))])[0]
    spec = jax.ShapeDtypeStruct(xvar.aval.shape, xvar.aval.dtype)
    if e.primitive.name == "custom_jvp_call":
        rj = jax.make_jaxpr(lambda x, t: jax.jvp(one, (x,), (t,))[1])(spec, spec)
    else:
        rj = jax.make_jaxpr(lambda x, t: jax.vjp(one, x)[1](t)[0])(spec, spec)
    shape = tuple(xvar.aval.shape)
    sub = JaxLowering("rule", [("x", shape), ("t", shape)], resolve=False)
    sub.stack = lo.stack + [_call_name(e)]
    try:
        (out,) = sub.lower(rj.jaxpr, [sub.constant(_np.asarray(c), "c") for c in rj.consts], sub.inputs)
    except ImportFailure as err:
        lo.fail(f"{where}: its rule cannot be read: {err}")
    t = sub.real(out)
    b = Builder("rho", ["x", "t"])
    amap = {0: 0, 1: 1}
    for eq in sub.b.eqns:
        ins = []
        for a in eq.ins:
            if isinstance(a, Lit):
                ins.append(a)
            elif isinstance(a, int) and a in amap:
                ins.append(amap[a])
            else:
                lo.fail(f"{where}: its rule is not elementwise")
        if eq.prim in ("broadcast_to", "reshape"):
            amap[eq.outs[0]] = ins[0]
            continue
        if PRIMITIVES[eq.prim].tensor:
            lo.fail(f"{where}: its rule uses {eq.prim}: not elementwise")
        outs = b.emit(eq.prim, ins, eq.param_dict, len(eq.outs))
        for o, n in zip(eq.outs, outs):
            amap[o] = n
    a = t.atom
    return b.finish([a if isinstance(a, Lit) else amap[a]])


def _show(r):
    return str(r) if isinstance(r, fmpq) else str(r.mid())


def _rule_value(rho, x, where, lo):
    """The rule's derivative at x: exact when it is rational, else a ball (precision 128)."""
    from ..interpret.evaluate import evaluate
    try:
        r = evaluate(rho, [x, 1])
        return r.values[0] if r.exact else evaluate(rho, [x, 1], number="ball").values[0]
    except VerifyError as err:
        lo.fail(f"{where}: its rule cannot be evaluated at {x}: {err}")


def _derivative(prog, x, exact=True):
    from ..interpret.ad import grad
    try:
        g = grad(prog, [x], number="exact" if exact else "ball")
    except VerifyError:
        return None
    return g.gradient[0] if (g.exact or not exact) else None


def _with_params(prog, changes):
    from ..program.ir import Program, typecheck
    eqns = list(prog.eqns)
    for j, params in changes.items():
        old = eqns[j]
        eqns[j] = Eqn(old.prim, old.ins, tuple(sorted({**old.param_dict, **params}.items())), old.outs, old.loc)
    return typecheck(Program(prog.name, prog.names, prog.n_inputs, tuple(eqns), prog.outputs))


def _kink_points(phi, j, starts):
    """Exact points where a switching function of equation j of the scalar function phi vanishes, by exact
    Newton steps on the truncated program (exact when the switching function is affine near the start)."""
    from ..interpret.ad import grad
    from ..program.ir import Program, typecheck
    eq = phi.eqns[j]
    sel = selection_rules[eq.prim]
    params = {k: d for k, (d, _) in PRIMITIVES[eq.prim].params.items()}
    params.update(eq.param_dict)
    found = set()
    for terms, const in sel.switches(params, len(eq.ins)):
        b = Builder("h", ["x"])
        amap = {0: 0}
        for q in phi.eqns[:j]:
            outs = b.emit(q.prim, [a if isinstance(a, Lit) else amap[a] for a in q.ins], q.param_dict, len(q.outs))
            for o, n in zip(q.outs, outs):
                amap[o] = n
        acc = Lit(const)
        for i, c in terms:
            a = eq.ins[i]
            a = a if isinstance(a, Lit) else amap[a]
            (m,) = b.emit("mul", [Lit(c), a])
            (acc,) = b.emit("add", [acc, m])
        try:
            h = typecheck(Program("h", tuple(b.names), 1, tuple(b.eqns), (acc,)))
        except VerifyError:
            continue
        for x0 in starts:
            x = x0
            for _ in range(4):
                try:
                    g = grad(h, [x])
                except VerifyError:
                    break
                if not g.exact:
                    break
                v, d = g.values[0], g.gradient[0]
                if v == 0:
                    found.add(x)
                    break
                if d == 0:
                    break
                x = x - v / d
    return found


def _check_off_kinks(phi, rho, points, where, lo):
    """The rule must be the function's derivative off its kinks (else it is not a selection derivative)."""
    from ..interpret.ad import grad
    from ..interpret.evaluate import evaluate
    pts = sorted(points)
    probes = [pts[0] - fmpq(1, 2)] + [(a + b) / 2 for a, b in zip(pts, pts[1:])] + [pts[-1] + fmpq(1, 3)]
    for x in probes:
        try:
            d = grad(phi, [x], number="ball")
            r = evaluate(rho, [x, 1], number="ball")
        except VerifyError:
            continue
        dv, rv = d.gradient[0], r.values[0]
        if not (dv - rv).contains(0):
            lo.fail(f"{where}: its rule gives {rv.mid()} at x = {x} where its function's derivative is {dv.mid()}: "
                    "the rule is not a derivative of the function (e.g. a straight-through estimator)")


def framework_values(imported, *args):
    """Run the jaxpr that was imported, primitive by primitive in JAX's own float arithmetic (as JAX runs it
    eagerly; a jit-compiled program may round fused operations differently), at ``args`` (as for from_jax):
    {"eqn i/j/...": (input values, output values)} for every equation, nested calls included (``Origin.node``
    names them), so that an audit can set the framework's floats beside the exact values of the equations
    lowered from each one."""
    import jax
    from jax.extend.core import Literal
    closed = imported.source
    values = {}

    def run(jaxpr, consts, vals, path):
        env = dict(zip(jaxpr.constvars, consts))
        env.update(zip(jaxpr.invars, vals))

        def read(v):
            return v.val if isinstance(v, Literal) else env[v]
        for i, e in enumerate(jaxpr.eqns):
            ins = [read(v) for v in e.invars]
            where = path + [i]
            if e.primitive.name in _CALLS:
                j, c = _sub_jaxpr(e)
                outs = run(j, c, ins, where)
            else:
                outs = _bind(e, ins)
            values["eqn " + "/".join(str(k) for k in where)] = (ins, outs)
            env.update(zip(e.outvars, outs))
        return [read(v) for v in jaxpr.outvars]
    run(closed.jaxpr, list(closed.consts), jax.tree_util.tree_leaves(args), [])
    return values


# -------------------------------------------------------------------------------------- what JAX returns

def owns(f, args):
    """True when one of ``args`` is a JAX array (or ``f`` is a jitted JAX function)."""
    import jax
    return any(isinstance(a, jax.Array) for a in jax.tree_util.tree_leaves(list(args))) or \
        type(f).__module__.startswith("jax")


def import_model(f, *args, constant_args=(), name=None):
    """The function as a verify program (``from_jax``)."""
    return from_jax(f, *args, constant_args=constant_args, name=name)


def gradient(f, args, imported, constant_args=(), name=None):
    """``jax.grad`` of the scalar ``f(*args)`` with respect to every program input of ``imported`` (the float
    leaves of the arguments that are not constant arguments): one numpy array per program input."""
    import jax
    leaves, tree = jax.tree_util.tree_flatten(list(args))
    # the program's inputs: the float leaves, except those of the constant arguments (in jaxpr order)
    float_pos = [k for k, (i, _, v) in enumerate(named_leaves(f, args))
                 if float_leaf(v) and i not in set(constant_args)]        # a PRNG key is not a float leaf

    def g(*xs):
        vals = list(leaves)
        for i, x in zip(float_pos, xs):
            vals[i] = x
        out = f(*jax.tree_util.tree_unflatten(tree, vals))
        return out.reshape(())
    if not float_pos:
        return []
    grads = jax.grad(g, argnums=tuple(range(len(float_pos))))(*[leaves[i] for i in float_pos])
    return [_np.asarray(x) for x in grads]


# ------------------------------------------------------------------------------ import once, audit many

class Model:
    """A JAX function traced once (``jax.make_jaxpr``) and lowered at any arguments of the example's shapes:
    the JAX side of ``verify.Auditor``.  Parameters are arguments, so new weights are new arguments.

    ``imported(*args)`` re-uses the program and only rebuilds the point (and the arrays of the constant
    arguments that changed) when the integer and boolean leaves (labels) are those of the last lowering; new
    integer data are lowered again from the same jaxpr; a new pytree structure, shape or dtype is traced
    again (``exports`` counts the traces).  Arrays the function closes over are read at trace time."""

    def __init__(self, f, example_args, constant_args=(), name=None):
        self.f, self.constant_args, self.name = f, tuple(constant_args), name or getattr(f, "__name__", "f")
        self.exports = 0
        self._trace(tuple(example_args))

    def _trace(self, args):
        self.closed = trace(self.f, *args)
        self.exports += 1
        self.key = _args_key(args)
        self.current = None          # (the last Imported, the integer leaves it baked in)

    def imported(self, *args):
        """The function as an ``Imported`` at ``args`` (see the class docstring)."""
        if _args_key(args) != self.key:
            self._trace(args)
        leaves = named_leaves(self.f, args)
        baked = [_bits(leaf) for _, _, leaf in leaves if not float_leaf(leaf)]
        cur = self.current
        if cur is not None and len(cur[1]) == len(baked) and all(
                a.shape == b.shape and _np.array_equal(a, b) for a, b in zip(cur[1], baked)):
            imp = self._reuse(cur[0], leaves)
        else:
            imp = lower_traced(self.closed, self.f, args, self.constant_args, self.name)
        self.current = (imp, baked)
        return imp

    def _reuse(self, imp, leaves):
        import dataclasses

        from ..program.arrays import Arrays
        point = [point_value(_exact(leaf)) for i, _, leaf in leaves
                 if _is_float(_np.asarray(leaf).dtype) and i not in self.constant_args]
        by_src = {src: leaf for i, src, leaf in leaves if i in self.constant_args}
        arrays = dict(imp.program.arrays.arrays) if imp.program.arrays else {}
        changed = False
        for name, (kind, src, _) in imp.constants.items():
            if src in by_src:
                ea = _exact(by_src[src])
                if ea != arrays[name]:
                    arrays[name], changed = ea, True
        program = imp.program
        if changed:
            program = dataclasses.replace(program, arrays=Arrays(arrays, program.arrays.file))
        return dataclasses.replace(imp, program=program, point=point)

    def gradient(self, args, imported):
        """``jax.grad`` at ``args`` (see ``gradient``)."""
        return gradient(self.f, args, imported, self.constant_args)

    def values(self, imported, args):
        """JAX's own value at every equation at ``args`` (see ``framework_values``)."""
        return framework_values(imported, *args)


def _args_key(args):
    """What a trace fixes: the arguments' pytree structure and every leaf's shape and dtype."""
    import jax
    leaves, tree = jax.tree_util.tree_flatten(list(args))
    return str(tree), tuple((tuple(_np.shape(x)), str(getattr(x, "dtype", None) or _np.asarray(x).dtype))
                            for x in leaves)
