"""Hypothesis strategies for tensor programs: small random shapes, constant matrices, elementwise and
reducing nonsmooth primitives, and segments between two arrays per input.

``tensor_programs`` draws a program with one scalar output, valid by construction (every equation takes
variables already defined, shapes chosen to fit): array inputs of shapes like [2], [3], [2, 2]; contractions
with constant matrices (``dot``), sums with constant arrays, scalings by small rationals, relu, abs,
leaky_relu, clamp, elementwise max / min (every tie rule), where (every comparison), amax / amin over an axis,
sort along an axis, sum over an axis and reshape; ``pl=False`` adds elementwise products of two
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

SHAPES = [(2,), (3,), (2, 2), (1,)]


def small_rationals(lo=-2, hi=2, den=4):
    return st.builds(lambda p, q: fmpq(p, q), st.integers(lo * den, hi * den), st.sampled_from([1, 2, den]))


def exact_arrays(shape, lo=-2, hi=2, den=4):
    n = int(np.prod(shape)) if shape else 1
    return st.lists(small_rationals(lo, hi, den), min_size=n, max_size=n).map(
        lambda vals: ExactArray.from_any(np.array([str(v) for v in vals], dtype=object).reshape(shape)))


@st.composite
def tensor_programs(draw, max_inputs=2, max_eqns=8, pl=True, where=True):
    """A random tensor program with one scalar output (see the module docstring)."""
    n_in = draw(st.integers(1, max_inputs))
    shapes = [draw(st.sampled_from(SHAPES)) for _ in range(n_in)]
    arrays = Arrays({})
    b = Builder("f", [f"x{i}" for i in range(n_in)], shapes, arrays)
    pool = list(range(n_in))

    def const(shape):
        name = f"c{len(arrays.arrays)}"
        arrays.arrays[name] = draw(exact_arrays(shape))
        return Arr(name)

    def lit():
        return Lit(draw(small_rationals()))

    def pick(pred=lambda s: True):
        cands = [v for v in pool[-5:] if pred(b.shape_of(v))]
        if cands and cands[-1] == pool[-1] and draw(st.booleans()):
            return cands[-1]                  # half the time the newest value: deep chains
        return draw(st.sampled_from(cands)) if cands else None

    kinds = ["relu", "abs", "leaky_relu", "clamp", "max", "dot", "dot", "add", "scale", "amax", "sort", "sum",
             "reshape"] + (["where"] if where else []) + ([] if pl else ["mul"] * 5)
    for _ in range(draw(st.integers(1, max_eqns))):
        kind = draw(st.sampled_from(kinds))
        u = pick()
        su = b.shape_of(u)
        out = None
        if kind in ("relu", "abs", "leaky_relu"):
            out = b.emit(kind, [u])[0]
        elif kind == "clamp":
            out = b.emit("clamp", [u], {"lo": fmpq(-1, 2), "hi": fmpq(1)})[0]
        elif kind in ("max", "where", "mul"):
            v = pick(lambda s: s == su)
            other = v if v is not None and draw(st.booleans()) else const(su)
            if kind == "max":
                prim = draw(st.sampled_from(["max", "min"]))
                out = b.emit(prim, [u, other], {"tie": draw(st.sampled_from(["split", "first", "last"]))})[0]
            elif kind == "mul":              # u * v + c: switching functions with irrational roots
                out = b.emit("add", [b.emit("mul", [u, v if v is not None else u])[0], lit()])[0]
            else:
                op = draw(st.sampled_from([">", ">=", "<", "<=", "==", "!="]))
                a = b.emit("add", [u, lit()])[0]
                out = b.emit("where", [u, other, a, draw(st.sampled_from([u, other]))], {"op": op})[0]
        elif kind == "dot":
            if len(su) == 1:
                out = b.emit("dot", [const((draw(st.integers(1, 3)), su[0])), u], {"ca": (1,), "cb": (0,)})[0]
            elif len(su) == 2:
                out = b.emit("dot", [u, const((su[1], draw(st.integers(1, 3))))], {"ca": (1,), "cb": (0,)})[0]
        elif kind == "add":
            v = pick(lambda s: s == su)
            out = b.emit(draw(st.sampled_from(["add", "sub"])), [u, const(su) if v is None or v == u else v])[0]
        elif kind == "scale":
            out = b.emit("mul", [u, lit()])[0]
        elif kind in ("amax", "sort") and su and su[-1] >= 2:
            ax = len(su) - 1
            if kind == "amax":
                out = b.emit(draw(st.sampled_from(["amax", "amin"])), [u],
                             {"axes": (ax,), "tie": draw(st.sampled_from(["split", "first", "last"]))})[0]
            else:
                out = b.emit("sort_axis", [u], {"axis": ax, "descending": draw(st.booleans())})[0]
        elif kind == "sum" and su:
            out = b.emit("sum", [u], {"axes": (0,)})[0]
        elif kind == "reshape" and len(su) == 2:
            out = b.emit("reshape", [u], {"shape": (su[0] * su[1],)})[0]
        if out is not None:
            pool.append(out)
    last = pool[-1]
    s = b.shape_of(last)
    if s:
        last = b.emit("sum", [last], {"axes": tuple(range(len(s)))})[0]
    if draw(st.booleans()):            # mix in an earlier value, so the output sees more than one branch
        w = pool[draw(st.integers(0, len(pool) - 1))]
        sw = b.shape_of(w)
        if sw:
            w = b.emit("sum", [w], {"axes": tuple(range(len(sw)))})[0]
        last = b.emit("add", [last, b.emit("mul", [w, lit()])[0]])[0]
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
