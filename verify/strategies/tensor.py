"""Hypothesis strategies for tensor programs: small random shapes, a batch axis, matrix products with
constant or input weights, convolutions and pooling, reductions, order statistics and windowed max / min,
structure, atan and the special functions, the piecewise constant steps (floor, ceil, round, trunc: not in
``rational_only`` programs, which certifiers of continuous programs draw), and every nonsmooth primitive
elementwise, valid by construction (each equation is drawn for the shapes of values already defined), and
points biased towards kinks (entries from a few small rationals, so ties and zeros are common).

    @given(st.data())
    def test(data):
        P = data.draw(tensor_programs())
        x = data.draw(tensor_points(P))

``segment_programs`` draws programs for segment walks (one scalar output; inputs of shapes like [2], [3],
[2, 2]): contractions with constant matrices, sums with constant arrays, scalings by small rationals, relu,
abs, leaky_relu, clamp, elementwise max / min (every tie rule), where (every comparison), amax / amin over an
axis, sort along an axis, sum over an axis and reshape; ``pl=False`` adds elementwise products of two
input-dependent values (the program is then not piecewise linear).  Small rational data make exact ties
(identically zero switching functions, several sites switching at one t) common.  ``tensor_segments(P)``
draws the two ends, sometimes with an input (not the first) that does not move, half the time through 0
(y = -x).  Requires hypothesis.
"""
import numpy as np
from flint import fmpq
from hypothesis import strategies as st

from ..program.arrays import Arrays, ExactArray
from ..program.builder import Builder
from ..program.ir import Arr, Lit

KINKY = ("-1", "-1/2", "0", "0", "1/2", "1", "2")
UNARY = ("relu", "abs", "leaky_relu", "clamp", "neg", "tanh", "exp_safe", "log_safe", "atan", "step", "special")
BINARY = ("add", "sub", "mul", "max", "min", "where", "sort")
STRUCT = ("sum", "mean", "amax", "sort_axis", "logsumexp", "transpose", "reshape", "slice", "pad", "concat",
          "kth_axis", "window")
STEPS = ("floor", "ceil", "round", "trunc")
FILTERABLE = tuple(u for u in UNARY if u not in ("atan", "step", "special"))


def _q(s):
    return fmpq(*map(int, s.split("/"))) if "/" in s else fmpq(int(s))


@st.composite
def tensor_programs(draw, max_eqns=6, conv=None, rational_only=False, weights_as_inputs=None, filterable=False):
    """A random tensor program with one scalar output (the sum of its last value).  ``filterable``: only
    primitives the float filter has a proved rounding bound for (no atan, special functions or steps)."""
    B = draw(st.integers(1, 3))
    F = draw(st.integers(1, 3))
    use_conv = draw(st.booleans()) if conv is None else conv
    wia = draw(st.booleans()) if weights_as_inputs is None else weights_as_inputs
    names, shapes = ["x"], [(B, F)]
    if use_conv:
        names, shapes = ["x"], [(1, 1, 3, 3)]
    if wia and not use_conv:
        names.append("w")
        shapes.append((F, draw(st.integers(1, 3))))
    unary_ops = UNARY[:5] if rational_only else FILTERABLE if filterable else UNARY
    struct_ops = (tuple(o for o in STRUCT if o != "logsumexp") if rational_only else
                  STRUCT if filterable else STRUCT + ("mode_axis",))
    t = _TensorDraw(draw, names, shapes)
    if use_conv:
        t.conv_prelude()
    elif wia:
        t.emit("dot", [0, 1])
    for _ in range(draw(st.integers(1, max_eqns))):
        v = draw(st.sampled_from(t.pool))
        sh = t.shape(v)
        kind = draw(st.sampled_from(("unary", "binary", "struct", "dot")))
        if kind == "unary":
            t.unary(v, unary_ops)
        elif kind == "binary":
            t.binary(v, sh)
        elif kind == "dot" and len(sh) == 2:
            t.emit("dot", [v, t.const((sh[1], draw(st.integers(1, 3))))])
        elif len(sh) >= 1:
            t.struct(v, sh, struct_ops)
    return t.finish()


class _TensorDraw:
    """One tensor program while it is drawn: the builder, the pool of values defined so far (every equation
    is drawn for their shapes) and the constant arrays added on the way."""

    def __init__(self, draw, names, shapes):
        self.draw = draw
        self.consts = {}
        self.b = Builder("t", names, shapes, None)
        self.b.arrays = _Lazy(self.consts)
        self.pool = list(range(len(names)))

    def const(self, shape):
        """A new constant of ``shape`` with entries drawn from KINKY; returns its Arr."""
        name = f"c{len(self.consts)}"
        vals = self.draw(st.lists(st.sampled_from(KINKY), min_size=int(np.prod(shape)),
                                  max_size=int(np.prod(shape))))
        self.consts[name] = ExactArray.from_any(np.array(vals, dtype=object).reshape(shape))
        return Arr(name)

    def shape(self, v):
        """The shape of value ``v``."""
        return self.b.shape_of(v)

    def emit(self, prim, ins, params=None, n_out=1):
        """The outputs of a new equation, which join the pool."""
        outs = self.b.emit(prim, ins, params or {}, n_out=n_out)
        self.pool.extend(outs)
        return outs

    def conv_prelude(self):
        """Emits conv2d, relu, a 2x2 pooling and a reshape to (1, 1) on the (1, 1, 3, 3) input; returns None."""
        draw, emit = self.draw, self.emit
        c = emit("conv2d", [0, self.const((1, 1, 2, 2))])[0]
        r = emit("relu", [c])[0]
        m = emit(draw(st.sampled_from(["max_pool2d", "avg_pool2d"])), [r], {"kernel": (2, 2), "stride": (1, 1)})[0]
        emit("reshape", [m], {"shape": (1, 1)})

    def unary(self, v, ops):
        """Emits one elementwise primitive drawn from ``ops`` (kept inside its domain) on ``v``; returns None."""
        draw, emit = self.draw, self.emit
        op = draw(st.sampled_from(ops))
        if op == "exp_safe":
            emit("exp", [emit("tanh", [v])[0]])
        elif op == "log_safe":
            sq = emit("mul", [v, v])[0]
            emit("log", [emit("add", [sq, Lit(fmpq(1))])[0]])
        elif op == "clamp":
            emit("clamp", [v], {"lo": fmpq(-1, 2), "hi": fmpq(1)})
        elif op == "relu":
            emit("relu", [v], {"alpha": draw(st.sampled_from([fmpq(0), fmpq(1, 2), fmpq(1)]))})
        elif op == "step":             # piecewise constant (discontinuous): scaled so that jumps are hit
            emit(draw(st.sampled_from(STEPS)), [emit("mul", [v, Lit(fmpq(2))])[0]])
        elif op == "special":
            self.special(v)
        else:
            emit(op, [v])

    def special(self, v):
        """Emits a special function of ``v`` inside its domain (1 + v^2 >= 1, tanh(v) / 2); returns None."""
        draw, emit = self.draw, self.emit
        fn = draw(st.sampled_from(["lgamma", "polygamma", "erfinv", "bessel_i"]))
        if fn == "erfinv":
            emit(fn, [emit("mul", [emit("tanh", [v])[0], Lit(fmpq(1, 2))])[0]])
        elif fn == "bessel_i":
            emit(fn, [v], {"n": draw(st.integers(0, 2))})
        else:
            arg = emit("add", [emit("mul", [v, v])[0], Lit(fmpq(1))])[0]
            emit(fn, [arg], {"n": draw(st.integers(0, 2))} if fn == "polygamma" else {})

    def binary(self, v, sh):
        """Emits a binary primitive of ``v`` (shape ``sh``) and a pool value of that shape, a literal or a new
        constant; returns None."""
        draw, emit = self.draw, self.emit
        partners = [u for u in self.pool if self.shape(u) == sh] + [None]
        u = draw(st.sampled_from(partners))
        if u is None:
            u = draw(st.sampled_from([Lit(_q(draw(st.sampled_from(KINKY)))), self.const(sh)]))
        op = draw(st.sampled_from(BINARY))
        if op == "where":
            emit("where", [v, u, v, u], {"op": draw(st.sampled_from([">", ">=", "<", "<=", "==", "!="]))})
        elif op == "sort":
            emit("sort", [v, u], {"descending": draw(st.booleans())}, n_out=2)
        else:
            emit(op, [v, u])

    def struct(self, v, sh, ops):
        """Emits a reduction or structural primitive drawn from ``ops`` on ``v`` (shape ``sh``, at least one
        axis), or nothing when the drawn one does not fit the shape; returns None."""
        draw, emit = self.draw, self.emit
        op = draw(st.sampled_from(ops))
        ax = draw(st.integers(0, len(sh) - 1))
        if op in ("sum", "mean", "logsumexp"):
            emit(op, [v], {"axes": (ax,)})
        elif op in ("amax", "sort_axis"):
            if sh[ax] >= 2:
                emit(op, [v], {"axes": (ax,)} if op == "amax" else {"axis": ax})
        elif op == "mode_axis" and sh[ax] >= 2:      # discontinuous: not in rational_only programs
            emit(op, [v], {"axis": ax})
        elif op == "kth_axis" and sh[ax] >= 2:
            emit(op, [v], {"axes": (ax,), "k": draw(st.integers(0, sh[ax] - 1)),
                           "tie": draw(st.sampled_from(["split", "first", "last"]))})
        elif op == "window" and int(np.prod(sh)) >= 2:
            self.window(v, sh)
        elif op == "transpose" and len(sh) == 2:
            emit("transpose", [v], {"perm": (1, 0)})
        elif op == "reshape":
            emit("reshape", [v], {"shape": (int(np.prod(sh)),)})
        elif op == "slice" and sh[ax] >= 2:
            start = tuple(0 for _ in sh)
            stop = tuple(d if i != ax else d - 1 for i, d in enumerate(sh))
            emit("slice", [v], {"start": start, "stop": stop, "step": tuple(1 for _ in sh)})
        elif op == "pad":
            emit("pad", [v], {"lo": tuple(int(i == ax) for i in range(len(sh))), "hi": tuple(0 for _ in sh)})
        elif op == "concat":
            emit("concat", [v, v], {"axis": ax})

    def window(self, v, sh):
        """Emits window_max or window_min of ``v`` over 1 to 3 drawn windows of 2 or 3 flat indices (rows
        padded with -1, stored as a new constant); returns None."""
        draw = self.draw
        n = int(np.prod(sh))
        rows = [draw(st.permutations(range(n)))[:draw(st.integers(2, min(n, 3)))]
                for _ in range(draw(st.integers(1, 3)))]
        width = max(len(r) for r in rows)
        w = np.array([list(r) + [-1] * (width - len(r)) for r in rows], dtype=object)
        name = f"c{len(self.consts)}"
        self.consts[name] = ExactArray(w, 1)
        self.emit(draw(st.sampled_from(["window_max", "window_min"])), [v],
                  {"windows": Arr(name), "tie": draw(st.sampled_from(["first", "last", "split"]))})

    def finish(self):
        """The program: the sum of the last value as its one scalar output."""
        last = self.pool[-1]
        sh = self.shape(last)
        out = self.emit("sum", [last], {"axes": tuple(range(len(sh)))})[0] if sh else last
        self.b.arrays = Arrays(self.consts) if self.consts else None
        return self.b.finish([out])


class _Lazy:
    """The arrays table while a program is drawn (constants are added as equations are drawn)."""

    def __init__(self, d):
        self.arrays = d

    def __getitem__(self, k):
        return self.arrays[k]

    def __contains__(self, k):
        return k in self.arrays


@st.composite
def tensor_points(draw, program, kink_bias=True):
    """One exact array per input, entries from small rationals (kink-biased: zeros and ties are common)."""
    out = []
    pool = KINKY if kink_bias else ("-3/4", "-1/3", "1/5", "2/3", "5/4", "7/3")
    for sh in program.input_shapes or [()] * program.n_inputs:
        n = int(np.prod(sh))
        vals = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
        out.append(ExactArray.from_any(np.array(vals, dtype=object).reshape(sh)))
    return out


# ------------------------------------------------------------------------------------ segment programs

SHAPES = [(2,), (3,), (2, 2), (1,)]


def small_rationals(lo=-2, hi=2, den=4):
    return st.builds(lambda p, q: fmpq(p, q), st.integers(lo * den, hi * den), st.sampled_from([1, 2, den]))


def exact_arrays(shape, lo=-2, hi=2, den=4):
    n = int(np.prod(shape)) if shape else 1
    return st.lists(small_rationals(lo, hi, den), min_size=n, max_size=n).map(
        lambda vals: ExactArray.from_any(np.array([str(v) for v in vals], dtype=object).reshape(shape)))


@st.composite
def segment_programs(draw, max_inputs=2, max_eqns=8, pl=True, where=True):
    """A random program for segment walks: one scalar output, piecewise linear unless ``pl=False`` (see
    the module docstring)."""
    n_in = draw(st.integers(1, max_inputs))
    shapes = [draw(st.sampled_from(SHAPES)) for _ in range(n_in)]
    s = _SegmentDraw(draw, n_in, shapes)
    kinds = ["relu", "abs", "leaky_relu", "clamp", "max", "dot", "dot", "add", "scale", "amax", "sort", "sum",
             "reshape"] + (["where"] if where else []) + ([] if pl else ["mul"] * 5)
    for _ in range(draw(st.integers(1, max_eqns))):
        kind = draw(st.sampled_from(kinds))
        out = s.step(kind)
        if out is not None:
            s.pool.append(out)
    return s.finish()


class _SegmentDraw:
    """One segment-walk program while it is drawn: the builder, its arrays table and the pool of values
    defined so far."""

    def __init__(self, draw, n_in, shapes):
        self.draw = draw
        self.arrays = Arrays({})
        self.b = Builder("f", [f"x{i}" for i in range(n_in)], shapes, self.arrays)
        self.pool = list(range(n_in))

    def const(self, shape):
        """A new constant of ``shape`` with small rational entries; returns its Arr."""
        name = f"c{len(self.arrays.arrays)}"
        self.arrays.arrays[name] = self.draw(exact_arrays(shape))
        return Arr(name)

    def lit(self):
        """A small rational literal."""
        return Lit(self.draw(small_rationals()))

    def pick(self, pred=lambda s: True):
        """One of the last five pool values whose shape satisfies ``pred``, or None if there is none."""
        cands = [v for v in self.pool[-5:] if pred(self.b.shape_of(v))]
        if cands and cands[-1] == self.pool[-1] and self.draw(st.booleans()):
            return cands[-1]                  # half the time the newest value: deep chains
        return self.draw(st.sampled_from(cands)) if cands else None

    def step(self, kind):
        """The new value of one equation of ``kind`` on a picked value, or None when the kind does not fit
        that value's shape."""
        draw, b = self.draw, self.b
        u = self.pick()
        su = b.shape_of(u)
        if kind in ("relu", "abs", "leaky_relu"):
            return b.emit(kind, [u])[0]
        if kind == "clamp":
            return b.emit("clamp", [u], {"lo": fmpq(-1, 2), "hi": fmpq(1)})[0]
        if kind in ("max", "where", "mul"):
            return self.two_valued(kind, u, su)
        if kind == "dot":
            if len(su) == 1:
                return b.emit("dot", [self.const((draw(st.integers(1, 3)), su[0])), u], {"ca": (1,), "cb": (0,)})[0]
            if len(su) == 2:
                return b.emit("dot", [u, self.const((su[1], draw(st.integers(1, 3))))], {"ca": (1,), "cb": (0,)})[0]
            return None
        if kind == "add":
            v = self.pick(lambda s: s == su)
            return b.emit(draw(st.sampled_from(["add", "sub"])), [u, self.const(su) if v is None or v == u else v])[0]
        if kind == "scale":
            return b.emit("mul", [u, self.lit()])[0]
        if kind in ("amax", "sort") and su and su[-1] >= 2:
            ax = len(su) - 1
            if kind == "amax":
                return b.emit(draw(st.sampled_from(["amax", "amin"])), [u],
                              {"axes": (ax,), "tie": draw(st.sampled_from(["split", "first", "last"]))})[0]
            return b.emit("sort_axis", [u], {"axis": ax, "descending": draw(st.booleans())})[0]
        if kind == "sum" and su:
            return b.emit("sum", [u], {"axes": (0,)})[0]
        if kind == "reshape" and len(su) == 2:
            return b.emit("reshape", [u], {"shape": (su[0] * su[1],)})[0]
        return None

    def two_valued(self, kind, u, su):
        """The new value of a max / min (every tie rule), a where (every comparison) or a product plus a
        literal, of ``u`` (shape ``su``) and a pool value of that shape or a new constant."""
        draw, b = self.draw, self.b
        v = self.pick(lambda s: s == su)
        other = v if v is not None and draw(st.booleans()) else self.const(su)
        if kind == "max":
            prim = draw(st.sampled_from(["max", "min"]))
            return b.emit(prim, [u, other], {"tie": draw(st.sampled_from(["split", "first", "last"]))})[0]
        if kind == "mul":              # u * v + c: switching functions with irrational roots
            return b.emit("add", [b.emit("mul", [u, v if v is not None else u])[0], self.lit()])[0]
        op = draw(st.sampled_from([">", ">=", "<", "<=", "==", "!="]))
        a = b.emit("add", [u, self.lit()])[0]
        return b.emit("where", [u, other, a, draw(st.sampled_from([u, other]))], {"op": op})[0]

    def finish(self):
        """The program: the sum of the last value, half the time plus a literal times the sum of an earlier
        value, as its one scalar output."""
        draw, b, pool = self.draw, self.b, self.pool
        last = pool[-1]
        s = b.shape_of(last)
        if s:
            last = b.emit("sum", [last], {"axes": tuple(range(len(s)))})[0]
        if draw(st.booleans()):            # mix in an earlier value, so the output sees more than one branch
            w = pool[draw(st.integers(0, len(pool) - 1))]
            sw = b.shape_of(w)
            if sw:
                w = b.emit("sum", [w], {"axes": tuple(range(len(sw)))})[0]
            last = b.emit("add", [last, b.emit("mul", [w, self.lit()])[0]])[0]
        return b.finish([last])


@st.composite
def tensor_segments(draw, program):
    """(x, y): one ExactArray per input each; sometimes an input does not move, sometimes an end is 0."""
    shapes = program.input_shapes or [()] * program.n_inputs
    x = [draw(exact_arrays(s)) for s in shapes]
    through_zero = draw(st.booleans())      # y = -x: every linear switching function crosses 0 at t = 1/2
    y = []
    for i, (xi, s) in enumerate(zip(x, shapes)):
        move = draw(st.integers(0, 4)) if i else 1      # the first input always moves
        y.append(xi if move == 0 else ExactArray(-xi.num, xi.den) if through_zero else draw(exact_arrays(s)))
    return x, y


__all__ = ["tensor_programs", "tensor_segments", "exact_arrays", "small_rationals"]
