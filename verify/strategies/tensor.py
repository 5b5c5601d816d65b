"""Hypothesis strategies for tensor programs: small random shapes, a batch axis, matrix products with
constant or input weights, convolutions and pooling, reductions, structure, and every nonsmooth primitive
elementwise, valid by construction (each equation is drawn for the shapes of values already defined), and
points biased towards kinks (entries from a few small rationals, so ties and zeros are common).

    @given(st.data())
    def test(data):
        P = data.draw(tensor_programs())
        x = data.draw(tensor_points(P))
"""
import numpy as np
from flint import fmpq
from hypothesis import strategies as st

from ..program.arrays import Arrays, ExactArray
from ..program.builder import Builder
from ..program.ir import Arr, Lit

KINKY = ("-1", "-1/2", "0", "0", "1/2", "1", "2")
UNARY = ("relu", "abs", "leaky_relu", "clamp", "neg", "tanh", "exp_safe", "log_safe")
BINARY = ("add", "sub", "mul", "max", "min", "where", "sort")
STRUCT = ("sum", "mean", "amax", "sort_axis", "logsumexp", "transpose", "reshape", "slice", "pad", "concat")


def _q(s):
    return fmpq(*map(int, s.split("/"))) if "/" in s else fmpq(int(s))


@st.composite
def tensor_programs(draw, max_eqns=6, conv=None, rational_only=False, weights_as_inputs=None):
    """A random tensor program with one scalar output (the sum of its last value)."""
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
    consts = {}

    def const(shape):
        name = f"c{len(consts)}"
        vals = draw(st.lists(st.sampled_from(KINKY), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        consts[name] = ExactArray.from_any(np.array(vals, dtype=object).reshape(shape))
        return Arr(name)

    b = Builder("t", names, shapes, None)
    b.arrays = _Lazy(consts)
    pool = list(range(len(names)))

    def shape(v):
        return b.shape_of(v)

    def emit(prim, ins, params=None, n_out=1):
        outs = b.emit(prim, ins, params or {}, n_out=n_out)
        pool.extend(outs)
        return outs

    if use_conv:
        c = emit("conv2d", [0, const((1, 1, 2, 2))])[0]
        r = emit("relu", [c])[0]
        m = emit(draw(st.sampled_from(["max_pool2d", "avg_pool2d"])), [r], {"kernel": (2, 2), "stride": (1, 1)})[0]
        emit("reshape", [m], {"shape": (1, 1)})
    elif wia:
        emit("dot", [0, 1])
    for _ in range(draw(st.integers(1, max_eqns))):
        v = draw(st.sampled_from(pool))
        sh = shape(v)
        kind = draw(st.sampled_from(("unary", "binary", "struct", "dot")))
        if kind == "unary":
            op = draw(st.sampled_from(UNARY if not rational_only else UNARY[:5]))
            if op == "exp_safe":
                emit("exp", [emit("tanh", [v])[0]])
            elif op == "log_safe":
                sq = emit("mul", [v, v])[0]
                emit("log", [emit("add", [sq, Lit(fmpq(1))])[0]])
            elif op == "clamp":
                emit("clamp", [v], {"lo": fmpq(-1, 2), "hi": fmpq(1)})
            elif op == "relu":
                emit("relu", [v], {"alpha": draw(st.sampled_from([fmpq(0), fmpq(1, 2), fmpq(1)]))})
            else:
                emit(op, [v])
        elif kind == "binary":
            partners = [u for u in pool if shape(u) == sh] + [None]
            u = draw(st.sampled_from(partners))
            if u is None:
                u = draw(st.sampled_from([Lit(_q(draw(st.sampled_from(KINKY)))), const(sh)]))
            op = draw(st.sampled_from(BINARY))
            if op == "where":
                emit("where", [v, u, v, u], {"op": draw(st.sampled_from([">", ">=", "<", "<=", "==", "!="]))})
            elif op == "sort":
                emit("sort", [v, u], {"descending": draw(st.booleans())}, n_out=2)
            else:
                emit(op, [v, u])
        elif kind == "dot" and len(sh) == 2:
            emit("dot", [v, const((sh[1], draw(st.integers(1, 3))))])
        elif len(sh) >= 1:
            op = draw(st.sampled_from(STRUCT if not rational_only else tuple(o for o in STRUCT if o != "logsumexp")))
            ax = draw(st.integers(0, len(sh) - 1))
            if op in ("sum", "mean", "logsumexp"):
                emit(op, [v], {"axes": (ax,)})
            elif op in ("amax", "sort_axis"):
                if sh[ax] >= 2:
                    emit(op, [v], {"axes": (ax,)} if op == "amax" else {"axis": ax})
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
    last = pool[-1]
    sh = shape(last)
    out = emit("sum", [last], {"axes": tuple(range(len(sh)))})[0] if sh else last
    b.arrays = Arrays(consts) if consts else None
    return b.finish([out])


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
