"""What both importers share: the values of the interpretation, the Lowering that emits equations, the result.

An importer (frameworks/torch.py, frameworks/jax.py) is an interpreter over the framework's own intermediate
representation (torch.export's core ATen graph, a jaxpr), one small mapping entry per foreign op with that op's
kink semantics beside it.  It lowers the foreign program to a verify tensor program: the real-number program
that the float code approximates.  Every float (input, weight, literal) is its exact dyadic value, float casts
are the identity, and every kink param is written explicitly, so the imported program means the same under
any convention.  Integers and booleans are not real variables: labels, masks and index arithmetic that do not
depend on the real inputs are computed at import time (exactly, by the framework itself) and become
constants; a boolean that depends on real values must be a comparison of two reals (or a combination of
comparisons with and / or / not), which becomes ``where(u OP v, a, b)``.  An op with no faithful counterpart
is an ImportFailure naming the op and where it came from (module, node, source line), never a silent
approximation.

This module holds the values of the interpretation (``Tensor``, ``Const``, ``Cond``, ``NonReal``,
``Unavailable``), the ``Lowering`` that emits equations with their ``Origin``, and the ``Imported`` result.
"""
import dataclasses
import keyword
import math
import re
from dataclasses import dataclass, field

import numpy as np
from flint import fmpq

from ..errors import InputError, ProgramError
from ..program.arrays import Arrays, ExactArray
from ..program.builder import Builder
from ..program.ir import Arr, Lit
from ..program.prims import PRIMITIVES


class ImportFailure(InputError):
    """The framework's program has no faithful counterpart in verify (an unsupported op, a value that is not a
    real number, a boolean that is not a comparison of reals, ...).  The message names the op and where it
    came from."""



@dataclass(frozen=True)
class Origin:
    """Where an equation of an imported program came from: the framework's ``op``, the ``node`` (torch: the
    node's name in the exported graph; jax: the equation's output variable), the ``module`` (torch: the
    module path such as ``layer1.0.conv1``; jax: the nested jit / custom_jvp names), the user's ``source``
    line when the framework records it, and ``note``: the kink semantics the mapping used."""
    framework: str
    op: str
    node: str = ""
    module: str = ""
    source: str = ""
    note: str = ""

    def __str__(self):
        parts = [f"{self.framework} {self.op}"]
        if self.node:
            parts.append(f"node {self.node}")
        if self.module:
            parts.append(f"module {self.module!r}")
        if self.source:
            parts.append(self.source)
        return ", ".join(parts)


@dataclass(frozen=True)
class InputInfo:
    """One input of an imported program: its ``name`` in the program, ``kind`` ("input": an argument of the
    function; "parameter": a weight of a torch module), ``source`` (the framework's name: ``x``,
    ``l1.weight``, ``params['w']``), ``shape`` and the framework's ``dtype``."""
    name: str
    kind: str
    source: str
    shape: tuple
    dtype: str


@dataclass
class Imported:
    """An imported program and what maps it back to the framework.

    - ``program``: the verify tensor program (``to_text(program)`` and ``program.arrays.save(...)`` store it);
    - ``point``: the example arguments as exact arrays (an fmpq for a scalar), one per program input
      (``verify.grad(program, point)``);
    - ``inputs``: an ``InputInfo`` per program input;
    - ``constants``: array constant name -> (kind, framework name, dtype) for weights, buffers and labels
      imported as exact constants;
    - ``origins``: an ``Origin`` per equation (``nonsmooth()`` lists those of the nonsmooth equations, whose
      switching functions are the kinks);
    - ``source``: the framework's own program (torch: the decomposed ExportedProgram; jax: the ClosedJaxpr);
    - ``no_gradient``: {output index: reason} of the outputs the framework computes but gives no gradient (a
      ``Stopped`` value returned as it is, such as native_layer_norm's mean): their values are real functions
      of the inputs, but no gradient of them is the framework's, so none is audited or compared.
    """
    program: object
    point: list
    inputs: list
    constants: dict
    origins: tuple
    framework: str
    source: object = field(default=None, repr=False)
    no_gradient: dict = field(default_factory=dict)

    def nonsmooth(self):
        """[(equation index, Origin)] for every nonsmooth equation, in the order of the program's pattern."""
        return [(k, self.origins[k]) for k in self.program.nonsmooth_eqns()]

    def origin(self, k):
        return self.origins[k]

    def grad(self, **kw):
        """``verify.grad`` at the example point (keyword arguments as for verify.grad); InputError when the
        output is one the framework gives no gradient (``no_gradient``)."""
        from ..interpret.tensor import grad
        if 0 in self.no_gradient and self.program.n_outputs == 1:
            raise InputError(f"{self.program.name}'s output has no gradient in {self.framework}: "
                             f"{self.no_gradient[0]}")
        return grad(self.program, self.point, **kw)


@dataclass(frozen=True)
class Tensor:
    """A real array of the program being built: an atom (variable, Lit or Arr) and its shape.  A Lit atom with a
    non-scalar shape stands for an array filled with that number (materialised only when an op needs it)."""
    atom: object
    shape: tuple


@dataclass(frozen=True)
class Const:
    """An integer or boolean array known at import time (labels, masks, index arithmetic): a numpy array."""
    value: object

    @property
    def shape(self):
        return tuple(np.shape(self.value))


@dataclass(frozen=True)
class Cond:
    """A boolean array that depends on real values: a comparison ``u OP v`` of two Tensors (op one of > >= < <=
    == !=), or ``and`` / ``or`` / ``not`` of Conds and constant masks."""
    op: str
    args: tuple
    shape: tuple


@dataclass(frozen=True)
class NonReal:
    """inf, -inf or nan filling an array: allowed only where it provably never reaches a real value (the
    neutral element of a max, one side of a comparison, the unused branch of a decided select)."""
    value: float
    shape: tuple


@dataclass(frozen=True, eq=False)
class Masked:
    """A real array with -inf at the positions of a constant boolean ``mask`` (an attention mask written
    masked_fill(mask, -inf), torch.where(mask, 0, -inf) added to scores): ``values`` is a real Tensor (any value
    at the masked positions).  Sums with reals and scalings by positive constants keep the mask; exp turns it
    into 0; softmax and logsumexp leave the masked positions out; anything else that meets -inf is refused."""
    values: object
    mask: object
    shape: tuple


@dataclass(frozen=True)
class Unavailable:
    """A value the importer cannot represent (max-pool indices, sort indices: integers computed from real
    values); using it is an ImportFailure with ``reason``."""
    reason: str
    shape: tuple = ()


@dataclass(frozen=True)
class Stopped(Unavailable):
    """A value the framework computes but gives no gradient (torch: no grad_fn, such as the statistics
    native_layer_norm saves for its backward): ``value`` is its real Tensor.  The framework's AD treats it as a
    constant, which no real-number function does, so used in any computation it is refused with ``reason``
    (as an Unavailable); returned as an output it is its value, and ``Imported.no_gradient`` names it."""
    value: object = None


CMP_OPS = (">", ">=", "<", "<=", "==", "!=")
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}
_NEGATE = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
_NP_CMP = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal, "==": np.equal,
           "!=": np.not_equal}


def exact_q(x, what="number"):
    """A Python / numpy number as an exact fmpq (a float is its exact dyadic value)."""
    if isinstance(x, (bool, np.bool_)):
        return fmpq(int(x))
    if isinstance(x, (int, np.integer)):
        return fmpq(int(x))
    if isinstance(x, fmpq):
        return x
    v = float(x)
    if not math.isfinite(v):
        raise ImportFailure(f"{what} {v!r} is not a real number")
    p, q = v.as_integer_ratio()
    return fmpq(p, q)


def point_value(ea):
    """An input's value in ``Imported.point``: the ExactArray, or its fmpq for a scalar input (so that the point
    of a program of scalars is also a point of the scalar interpreter)."""
    return ea.item(()) if ea.shape == () else ea


def identifier(text, default="v"):
    """``text`` made into a program identifier (``l1.weight`` -> ``l1_weight``); never a primitive's name."""
    s = re.sub(r"\W+", "_", str(text)).strip("_") or default
    if s[0].isdigit():
        s = f"{default}{s}"
    if s in PRIMITIVES or s in ("const", "arrays", "def", "return", "lambda"):
        s += "_"
    return s


def _fold(prim, qs, params):
    """Exact value of an arithmetic primitive on rational literals (None when not folded)."""
    if prim == "add":
        return qs[0] + qs[1]
    if prim == "sub":
        return qs[0] - qs[1]
    if prim == "mul":
        return qs[0] * qs[1]
    if prim == "neg":
        return -qs[0]
    if prim == "div" and qs[1] != 0:
        return qs[0] / qs[1]
    if prim == "pow" and (qs[0] != 0 or params["n"] >= 0) and abs(params["n"]) <= 64:
        return qs[0] ** params["n"]
    if prim in ("max", "min") and len(qs) == 2:
        return max(qs) if prim == "max" else min(qs)
    return None


class Lowering:
    """Emits the equations of an imported program, each with the Origin of the foreign op being lowered.

    The framework module creates one per import, sets ``origin`` before lowering each foreign op, and calls
    the helpers below, which keep the program small and exact: arithmetic on literals is folded in rationals,
    filled arrays stay literals until an op needs the array, ``where`` over a formula of comparisons is a
    cascade of ``where(u OP v, a, b)``, and a select on a constant mask is exact arithmetic.
    """

    def __init__(self, framework, name, inputs):
        """``inputs``: [(name hint, shape)] of the program inputs, in order."""
        self.framework = framework
        self.name = identifier(name, "f")
        self.arrays = Arrays({}, f"{self.name}.npz")
        names, taken = [], set()
        for hint, _ in inputs:
            nm, k = identifier(hint, "x"), 1
            base = nm
            while nm in taken:
                k += 1
                nm = f"{base}_{k}"
            taken.add(nm)
            names.append(nm)
        self.b = Builder(self.name, names, [tuple(s) for _, s in inputs], self.arrays)
        self.inputs = [Tensor(i, tuple(s)) for i, (_, s) in enumerate(inputs)]
        self.origin = Origin(framework, "input")
        self.origins = []
        self.hint = None
        self._counts = {}

    # -------------------------------------------------------------------------------------------- errors
    def fail(self, msg):
        raise ImportFailure(f"{self.origin}: {msg}")

    # ------------------------------------------------------------------------------------------ emitting
    def fresh(self, hint):
        """A new variable name from ``hint``: the hint itself when free (and not a primitive's name), else
        hint_1, hint_2, ..."""
        base = re.sub(r"\W+", "_", str(hint)).strip("_") or "v"
        if base[0].isdigit():
            base = "v" + base
        k = self._counts.get(base, 0)
        name = base if k == 0 and base not in PRIMITIVES and base not in ("const", "arrays") else None
        while name is None or name in self.b.taken or keyword.iskeyword(name):
            k += 1
            name = f"{base}_{k}"
        self._counts[base] = k
        self.b.taken.add(name)
        return name

    def emit(self, prim, ins, params=None, n_out=1):
        names = [self.fresh(self.hint or prim) for _ in range(n_out)]
        outs = self.b.emit(prim, ins, params, n_out, names=names)
        try:
            for o in outs:
                self.b.shape_of(o)
        except ProgramError as e:
            raise ImportFailure(f"{self.origin}: {e}") from None
        self.origins.append(self.origin)
        return outs

    def add_array(self, value, hint):
        """Register an exact array constant; return its Arr atom (``params['w'][0]`` is named ``params.w.0``)."""
        ea = value if isinstance(value, ExactArray) else ExactArray.from_any(value, hint)
        hint = re.sub(r"\[['\"]?([^'\"\]]*)['\"]?\]", r".\1", str(hint))
        hint = re.sub(r"[\s'\"\\]+", "_", hint) or "c"
        name, k = hint, 1
        while name in self.arrays:
            k += 1
            name = f"{hint}#{k}"
        self.arrays.arrays[name] = ea
        return Arr(name)

    def constant(self, value, hint="c", fold=True):
        """A real Tensor for a constant array (numpy / framework array, float or integer): a literal when
        every element is the same number (and ``fold``), else an array constant."""
        if isinstance(value, ExactArray):
            flat = value.num.ravel()
            if fold and (flat.size == 0 or all(v == flat[0] for v in flat.tolist())):
                return Tensor(Lit(fmpq(int(flat[0]) if flat.size else 0, value.den)), tuple(value.shape))
            return Tensor(self.add_array(value, hint), tuple(value.shape))
        arr = np.asarray(value)
        shape = tuple(arr.shape)
        if arr.dtype.kind == "b":
            arr = arr.astype(np.int64)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            bad = float(arr[~np.isfinite(arr)].ravel()[0])
            if fold and (np.all(np.isnan(arr)) if math.isnan(bad) else np.all(arr == bad)):
                return NonReal(bad, shape)
            self.fail(f"the constant {hint!r} holds {bad!r}, which is not a real number")
        if fold and (arr.size == 0 or np.all(arr == arr.ravel()[0])):
            return Tensor(Lit(exact_q(arr.ravel()[0] if arr.size else 0)), shape)
        return Tensor(self.add_array(ExactArray.from_any(arr, hint), hint), shape)

    def shape_of(self, atom):
        return tuple(self.b.shape_of(atom))

    # ------------------------------------------------------------------------------------------- values
    def real(self, v, what="operand"):
        """``v`` as a real Tensor: Tensors as they are, numbers and integer constants exactly."""
        if isinstance(v, Tensor):
            return v
        if isinstance(v, fmpq):
            return Tensor(Lit(v), ())
        if isinstance(v, (bool, int, float, np.number)) and not isinstance(v, (np.bool_,)):
            q = float(v) if isinstance(v, (float, np.floating)) else v
            if isinstance(q, float) and not math.isfinite(q):
                self.fail(f"the {what} {q!r} is not a real number")
            return Tensor(Lit(exact_q(v)), ())
        if isinstance(v, Const):
            return self.constant(v.value, f"const.{self.hint or 'c'}")
        if isinstance(v, NonReal):
            self.fail(f"the {what} is {v.value!r}, which is not a real number")
        if isinstance(v, Cond):
            # a boolean used as a number (torch promotes it in arithmetic): 1 where it holds, else 0
            return self.as_real(v)
        if isinstance(v, Unavailable):
            self.fail(v.reason)
        if isinstance(v, Masked):
            self.fail(f"the {what} holds -inf (a masked value), which is not a real number")
        self.fail(f"the {what} {v!r} is not a real array")

    def full(self, t):
        """The atom of ``t`` with exactly ``t.shape`` (a filled literal or a broadcast value materialised)."""
        if self.shape_of(t.atom) == tuple(t.shape):
            return t.atom
        (o,) = self.emit("broadcast_to", [t.atom], {"shape": tuple(t.shape)})
        return o

    @staticmethod
    def bshape(*shapes):
        try:
            return tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            raise ImportFailure(f"shapes {[list(s) for s in shapes]} do not broadcast") from None

    def ew(self, prim, args, params=None):
        """An elementwise primitive on real values (numpy broadcasting), folded on literals."""
        if any(isinstance(a, Masked) for a in args):
            return self._ew_masked(prim, args, params)
        params = dict(params or {})
        ts = [self.real(a) for a in args]
        shape = self.bshape(*(t.shape for t in ts))
        if all(isinstance(t.atom, Lit) for t in ts):
            q = _fold(prim, [t.atom.value for t in ts], params)
            if q is not None:
                return Tensor(Lit(q), shape)
        if prim in ("mul", "add", "sub") and len(ts) == 2:
            unit = fmpq(1) if prim == "mul" else fmpq(0)
            for i in ((0, 1) if prim != "sub" else (1,)):
                other = ts[1 - i]
                if isinstance(ts[i].atom, Lit) and ts[i].atom.value == unit and other.shape == shape:
                    return other
        if prim == "max" and len(ts) == 2:
            r = self._relu_of_max(ts, shape, params)
            if r is not None:
                return r
        (o,) = self.emit(prim, [t.atom for t in ts], params)
        return Tensor(o, shape)

    def masked_parts(self, v, shape):
        """(values, mask) of v broadcast to ``shape``: a Masked array's parts, -inf as (0, everywhere), a real
        array with no mask."""
        if isinstance(v, Masked):
            return self.broadcast(v.values, shape), np.broadcast_to(v.mask, shape)
        if isinstance(v, NonReal) and v.value == -math.inf or isinstance(v, float) and v == -math.inf:
            return Tensor(Lit(fmpq(0)), shape), np.ones(shape, dtype=bool)
        return self.broadcast(self.real(v), shape), np.zeros(shape, dtype=bool)

    def masked(self, values, mask):
        """A Masked array, or the real values when nothing is masked."""
        return Masked(values, mask, tuple(values.shape)) if mask.any() else values

    def _ew_masked(self, prim, args, params):
        """x + -inf = -inf: sums with reals, differences with a real subtracted and products with positive
        constants keep the mask; exp(-inf) = 0.  Anything else is refused."""
        shape = self.bshape(*(_shape(a) for a in args))
        parts = [self.masked_parts(a, shape) for a in args]
        if prim == "add" and len(args) == 2:
            return self.masked(self.add(parts[0][0], parts[1][0]), parts[0][1] | parts[1][1])
        if prim == "sub" and not parts[1][1].any():
            return self.masked(self.sub(parts[0][0], parts[1][0]), parts[0][1])
        if prim in ("mul", "div") and len(args) == 2 and not parts[1][1].any() and isinstance(parts[1][0].atom, Lit) \
                and parts[1][0].atom.value > 0:
            return self.masked(self.ew(prim, [parts[0][0], parts[1][0]]), parts[0][1])
        if prim == "mul" and len(args) == 2 and not parts[0][1].any() and isinstance(parts[0][0].atom, Lit) \
                and parts[0][0].atom.value > 0:
            return self.masked(self.mul(parts[0][0], parts[1][0]), parts[1][1])
        if prim == "exp":
            v, m = parts[0]
            return self.select(Const(m), 0, self.ew("exp", [v]))
        self.fail(f"-inf (a masked value) reaches {prim}, which verify cannot carry through")

    def _relu_of_max(self, ts, shape, params):
        """max(u, 0) is relu(u) with alpha = the derivative the tie rule gives u at 0 (same pieces, same AD)."""
        for i in (0, 1):
            z, u = ts[i], ts[1 - i]
            if isinstance(z.atom, Lit) and z.atom.value == 0 and u.shape == shape:
                tie = params.get("tie", "split")
                alpha = {"split": fmpq(1, 2), "first": fmpq(1 if i == 1 else 0),
                         "last": fmpq(0 if i == 1 else 1)}[tie]
                (o,) = self.emit("relu", [u.atom], {"alpha": alpha})
                return Tensor(o, shape)
        return None

    def add(self, a, b):
        return self.ew("add", [a, b])

    def sub(self, a, b):
        return self.ew("sub", [a, b])

    def mul(self, a, b):
        return self.ew("mul", [a, b])

    def div(self, a, b):
        return self.ew("div", [a, b])

    def neg(self, a):
        return self.ew("neg", [a])

    def lit(self, q):
        return Tensor(Lit(q if isinstance(q, fmpq) else exact_q(q)), ())

    # ------------------------------------------------------------------------------------------- booleans
    def compare(self, op, u, v):
        """``u OP v``: a constant mask when it is decided at import time (constants, or a comparison with an
        infinity: every real number is finite), else a Cond."""
        u, v = (NonReal(float(x), ()) if isinstance(x, float) and not math.isfinite(x) else x for x in (u, v))
        shape = self.bshape(_shape(u), _shape(v))
        if u is v and isinstance(u, (Tensor, Unavailable)):
            # x OP x: decided for every real x, also for one whose derivative is unavailable (isnan(x) is x != x)
            return Const(np.full(shape, op in (">=", "<=", "==")))
        for a, b in ((u, v), (v, u)):
            if isinstance(a, Masked) and isinstance(b, NonReal) and b.value == -math.inf and op in ("==", "!="):
                m = np.broadcast_to(a.mask, shape)
                return Const((m if op == "==" else ~m).copy())
        for a, b, o in ((u, v, op), (v, u, _FLIP[op])):
            if isinstance(b, NonReal):
                if isinstance(a, NonReal):
                    self.fail("a comparison of two non-real numbers")
                if math.isnan(b.value):
                    return Const(np.full(shape, o == "!="))
                # a real a against +-inf
                res = {">": b.value < 0, ">=": b.value < 0, "<": b.value > 0, "<=": b.value > 0, "==": False,
                       "!=": True}[o]
                return Const(np.full(shape, res))
        u, v = self.real(u), self.real(v)
        if isinstance(u.atom, Lit) and isinstance(v.atom, Lit):
            return Const(np.full(shape, bool(_NP_CMP[op](u.atom.value - v.atom.value, 0))))
        if not isinstance(u.atom, int) and not isinstance(v.atom, int):
            # two constants (literals or array constants): decided exactly now
            d = np.asarray(self._exact_values(u) - self._exact_values(v), dtype=object)
            signs = np.vectorize(lambda q: (q > 0) - (q < 0), otypes=[np.int64])(d) if d.size else d.astype(np.int64)
            return Const(np.broadcast_to(_NP_CMP[op](signs, 0), shape).copy())
        if u.atom == v.atom and u.shape == v.shape:
            # x OP x: decided for every real x (isnan(x) is x != x: False)
            return Const(np.full(shape, op in (">=", "<=", "==")))
        return Cond(op, (u, v), shape)

    def _exact_values(self, t):
        """The exact values (an object array of fmpq, broadcast to t.shape) of a constant Tensor."""
        if isinstance(t.atom, Lit):
            return np.full(t.shape, t.atom.value, dtype=object)
        return np.broadcast_to(self.arrays[t.atom.name].to_fmpq(), t.shape)

    def logical(self, op, *args):
        """and / or / not of booleans (constant masks folded)."""
        for a in args:
            if not isinstance(a, (Cond, Const)):
                self.fail(f"`{op}` of a value that is not a boolean")
        if op == "not":
            (a,) = args
            if isinstance(a, Const):
                return Const(~np.asarray(a.value, dtype=bool))
            if a.op in CMP_OPS:
                return Cond(_NEGATE[a.op], a.args, a.shape)
            return Cond("not", (a,), a.shape)
        a, b = args
        shape = self.bshape(a.shape, b.shape)
        if isinstance(a, Const) and isinstance(b, Const):
            m, n = np.asarray(a.value, dtype=bool), np.asarray(b.value, dtype=bool)
            return Const(np.broadcast_to(m & n if op == "and" else m | n, shape).copy())
        for x, y in ((a, b), (b, a)):
            if isinstance(x, Const):
                m = np.asarray(x.value, dtype=bool)
                if (not m.any()) if op == "and" else m.all():          # absorbing
                    return Const(np.full(shape, op == "or"))
                if m.all() if op == "and" else not m.any():            # neutral
                    return dataclasses.replace(y, shape=shape)
        return Cond(op, (a, b), shape)

    def select(self, c, a, b):
        """``a`` where ``c`` holds, else ``b`` (a Cond becomes a cascade of where(u OP v, a, b); a constant mask
        picks a side, or blends the two sides exactly as a*m + b*(1-m))."""
        if isinstance(c, Const):
            m = np.asarray(c.value, dtype=bool)
            shape = self.bshape(m.shape, _shape(a), _shape(b))
            m = np.broadcast_to(m, shape)
            if any(isinstance(v, Masked) or isinstance(v, NonReal) and v.value == -math.inf or
                   isinstance(v, float) and v == -math.inf for v in (a, b)):
                (va, ma), (vb, mb) = self.masked_parts(a, shape), self.masked_parts(b, shape)
                return self.masked(self.select(Const(m), va, vb), np.where(m, ma, mb))
            if m.all():
                return self.broadcast(self.real(a, "selected value"), shape)
            if not m.any():
                return self.broadcast(self.real(b, "selected value"), shape)
            a, b = self.real(a, "selected value"), self.real(b, "selected value")
            mt = self.constant(m.astype(np.int64), f"mask.{self.hint or 'select'}")
            return self.add(self.mul(a, mt), self.mul(b, self.sub(self.lit(1), mt)))
        if not isinstance(c, Cond):
            self.fail("a select whose condition is not a boolean")
        if c.op == "not":
            return self.select(c.args[0], b, a)
        if c.op == "and":
            return self.select(c.args[0], self.select(c.args[1], a, b), b)
        if c.op == "or":
            return self.select(c.args[0], a, self.select(c.args[1], a, b))
        a, b = self.real(a, "selected value"), self.real(b, "selected value")
        u, v = c.args
        shape = self.bshape(c.shape, a.shape, b.shape)
        (o,) = self.emit("where", [u.atom, v.atom, a.atom, b.atom], {"op": c.op})
        return Tensor(o, shape)

    def sign(self, x):
        """sign(x) = 1, 0 or -1: piecewise constant, derivative 0 everywhere (a jump at 0, as in torch and JAX)."""
        x = self.real(x)
        return self.broadcast(self.select(self.compare(">", x, 0), 1, self.select(self.compare("<", x, 0), -1, 0)),
                              x.shape)

    def as_real(self, c, shape=None):
        """A boolean as the real numbers 1 and 0 (a cast of a comparison to a float)."""
        out = self.select(c, self.lit(1), self.lit(0))
        return self.broadcast(out, shape) if shape is not None else out

    # ------------------------------------------------------------------------------------------ structure
    def reshape(self, t, shape):
        shape = tuple(int(d) for d in shape)
        if math.prod(shape) != math.prod(t.shape):
            self.fail(f"cannot reshape {list(t.shape)} to {list(shape)}")
        if shape == tuple(t.shape) or isinstance(t.atom, Lit):
            return Tensor(t.atom, shape)
        (o,) = self.emit("reshape", [self.full(t)], {"shape": shape})
        return Tensor(o, shape)

    def transpose(self, t, perm):
        perm = tuple(int(p) % max(len(t.shape), 1) for p in perm)
        shape = tuple(t.shape[p] for p in perm)
        if perm == tuple(range(len(perm))) or isinstance(t.atom, Lit):
            return Tensor(t.atom, shape)
        (o,) = self.emit("transpose", [self.full(t)], {"perm": perm})
        return Tensor(o, shape)

    def broadcast(self, t, shape):
        shape = tuple(int(d) for d in shape)
        if tuple(t.shape) == shape or isinstance(t.atom, Lit):
            if self.bshape(t.shape, shape) != shape:
                self.fail(f"cannot broadcast {list(t.shape)} to {list(shape)}")
            return Tensor(t.atom, shape)
        (o,) = self.emit("broadcast_to", [self.full(t)], {"shape": shape})
        return Tensor(o, shape)

    def broadcast_in_dim(self, t, shape, dims):
        """lax.broadcast_in_dim: axis i of t becomes axis dims[i] of the result."""
        mid = [1] * len(shape)
        for i, d in enumerate(dims):
            mid[d] = t.shape[i]
        return self.broadcast(self.reshape(t, mid), shape)

    def slice(self, t, start, stop, step=None):
        step = tuple(step or (1,) * len(t.shape))
        norm = [slice(a, b, c).indices(d) for a, b, c, d in zip(start, stop, step, t.shape)]
        shape = tuple(len(range(*n)) for n in norm)
        if isinstance(t.atom, Lit):
            return Tensor(t.atom, shape)
        if all(n == (0, d, 1) for n, d in zip(norm, t.shape)):
            return t
        (o,) = self.emit("slice", [self.full(t)], {"start": tuple(n[0] for n in norm),
                                                   "stop": tuple(n[1] for n in norm),
                                                   "step": tuple(n[2] for n in norm)})
        return Tensor(o, shape)

    def take(self, t, index, hint="index"):
        """The array whose element at each position is ``t.ravel()[index[position]]`` (``index``: integers,
        computed at import time): reshape, take_along with a constant index array, reshape."""
        index = np.asarray(index, dtype=np.int64)
        n = math.prod(t.shape)
        if index.size and (index.min() < 0 or index.max() >= n):
            self.fail("an index falls outside the array")
        shape = tuple(index.shape)
        if isinstance(t.atom, Lit):
            return Tensor(t.atom, shape)
        if index.size == n and np.array_equal(index.ravel(), np.arange(n)):
            return self.reshape(t, shape)
        flat = self.reshape(t, (n,))
        idx = self.add_array(ExactArray(index.ravel().astype(object), 1), f"{hint}.{self.hint or 'take'}")
        (o,) = self.emit("take_along", [self.full(flat)], {"indices": idx, "axis": 0})
        return self.reshape(Tensor(o, (index.size,)), shape)

    def concat(self, ts, axis):
        ts = [self.real(t) for t in ts]
        nd = len(ts[0].shape)
        axis = int(axis) % nd
        shape = list(ts[0].shape)
        shape[axis] = sum(t.shape[axis] for t in ts)
        shape = tuple(shape)
        ts = [t for t in ts if t.shape[axis] > 0]
        if not ts:                  # every part is empty along the axis: an empty result
            return Tensor(Lit(fmpq(0)), shape)
        if len(ts) == 1:
            return ts[0]
        if all(isinstance(t.atom, Lit) and t.atom == ts[0].atom for t in ts):
            return Tensor(ts[0].atom, shape)
        (o,) = self.emit("concat", [self.full(t) for t in ts], {"axis": axis})
        return Tensor(o, shape)

    def pad(self, t, lo, hi, value=0):
        """Pad with ``value`` (negative lo / hi crop)."""
        t = self.real(t)
        if any(v < 0 for v in tuple(lo) + tuple(hi)):
            start = [max(-a, 0) for a in lo]
            stop = [d - max(-b, 0) for d, b in zip(t.shape, hi)]
            t = self.slice(t, start, stop)
            lo, hi = [max(a, 0) for a in lo], [max(b, 0) for b in hi]
        lo, hi = tuple(int(a) for a in lo), tuple(int(b) for b in hi)
        if not any(lo + hi):
            return t
        shape = tuple(d + a + b for d, a, b in zip(t.shape, lo, hi))
        value = exact_q(value, "padding value")
        if isinstance(t.atom, Lit) and t.atom.value == value:
            return Tensor(t.atom, shape)
        (o,) = self.emit("pad", [self.full(t)], {"lo": lo, "hi": hi})
        out = Tensor(o, shape)
        if value != 0:
            mask = np.ones(shape, dtype=np.int64)
            mask[tuple(slice(a, a + d) for a, d in zip(lo, t.shape))] = 0
            out = self.add(out, self.mul(self.lit(value), self.constant(mask, f"padmask.{self.hint}")))
        return out

    # ------------------------------------------------------------------------------------------ reductions
    @staticmethod
    def axes(axes, ndim):
        return tuple(sorted({int(a) % ndim for a in axes})) if ndim else ()

    def _reduced(self, shape, axes, keepdims):
        return tuple(1 if i in axes else d for i, d in enumerate(shape)) if keepdims else \
            tuple(d for i, d in enumerate(shape) if i not in axes)

    def reduce(self, prim, t, axes, keepdims=False, **params):
        """sum / mean / amax / amin / logsumexp over ``axes``."""
        t = self.real(t)
        axes = self.axes(axes, len(t.shape))
        shape = self._reduced(t.shape, axes, keepdims)
        n = math.prod(t.shape[a] for a in axes)
        if not axes:
            return t
        if isinstance(t.atom, Lit):
            q = t.atom.value
            return Tensor(Lit(q * n if prim == "sum" else q), shape)
        if n == 1 and prim in ("amax", "amin", "mean", "sum"):
            return self.reshape(t, shape)
        (o,) = self.emit(prim, [self.full(t)], {"axes": axes, "keepdims": bool(keepdims), **params})
        return Tensor(o, shape)

    def logsumexp(self, t, axes, keepdims=False):
        return self.reduce("logsumexp", t, axes, keepdims)

    def dot(self, a, b, ca, cb, ba=(), bb=()):
        a, b = self.real(a), self.real(b)
        fa = [i for i in range(len(a.shape)) if i not in ca + ba]
        fb = [j for j in range(len(b.shape)) if j not in cb + bb]
        shape = tuple(a.shape[i] for i in ba) + tuple(a.shape[i] for i in fa) + tuple(b.shape[j] for j in fb)
        if any(a.shape[i] == 0 for i in ca):          # an empty sum: the constant 0
            return Tensor(Lit(fmpq(0)), shape)
        (o,) = self.emit("dot", [self.full(a), self.full(b)], {"ca": tuple(ca), "cb": tuple(cb), "ba": tuple(ba),
                                                               "bb": tuple(bb)})
        return Tensor(o, shape)

    # ------------------------------------------------------------------------------------------ finishing
    def finish(self, outputs):
        """The program returning ``outputs``; a Stopped output is its value, recorded in ``no_gradient``."""
        atoms = []
        self.no_gradient = {}
        for i, v in enumerate(outputs):
            if isinstance(v, Stopped) and v.value is not None:
                self.no_gradient[i], v = v.reason, v.value
            t = self.real(v, f"output {i}")
            atoms.append(self.full(t))
        return self.b.finish(atoms)


def _shape(v):
    if isinstance(v, (Tensor, Const, Cond, NonReal, Unavailable, Masked)):
        return tuple(v.shape)
    return ()

