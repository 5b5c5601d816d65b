"""Hypothesis strategies for segment and integral tests: programs whose switching functions are generic by
construction, and segments.

``generic_programs`` feeds every nonsmooth primitive arguments of the form v + c with a fresh offset c = n/p
(p a prime used once per program, n != 0), so that no switching function vanishes identically on an
interval (ball arithmetic cannot decide that) while kinks are still crossed; exp acts on a scaled argument
and log on 1 + u*u, so values stay moderate and every domain holds.  ``pl_programs`` are piecewise-linear
(affine maps with small rational coefficients and relu, abs, max, min, clamp, where): their switching
functions are affine on each piece, so breakpoints are rational.  Requires hypothesis.
"""
from flint import fmpq
from hypothesis import strategies as st

from ..frontends import Builder
from ..program.ir import Lit

PRIMES = (101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173, 179, 181, 191, 193, 197,
          199, 211, 223, 227, 229, 233, 239, 241, 251, 257)
COEFS = [fmpq(1), fmpq(-1), fmpq(2), fmpq(-2), fmpq(1, 2), fmpq(-1, 2), fmpq(3, 2), fmpq(-3, 4)]


def rationals(lo=-2, hi=2, den=8):
    return st.builds(lambda p, q: fmpq(p, q), st.integers(lo * den, hi * den), st.integers(1, den))


@st.composite
def generic_programs(draw, n_inputs=1, max_eqns=6, smooth=("exp", "log"), nonsmooth=("relu", "abs", "max")):
    """A random program with one output, built from affine combinations, ``smooth`` (exp, log, sin, tanh)
    and ``nonsmooth`` (relu, abs, max, min) primitives, every nonsmooth argument offset by a fresh n/p."""
    b = Builder("f", [f"x{i}" for i in range(n_inputs)])
    pool = list(range(n_inputs))
    primes = iter(PRIMES)

    def lit(q):
        return Lit(fmpq(q))

    def offset(v):
        n = draw(st.integers(-60, 60).filter(lambda k: k != 0))
        return b.emit("add", [v, lit(fmpq(n, next(primes)))])[0]

    def pick():
        return draw(st.sampled_from(pool[-4:]))

    for _ in range(draw(st.integers(1, max_eqns))):
        kind = draw(st.sampled_from(["affine", "nonsmooth", "nonsmooth"] + (["smooth"] if smooth else [])))
        if kind == "affine":
            u, v = pick(), pick()
            w = b.emit("mul", [u, lit(draw(st.sampled_from(COEFS)))])[0]
            if v != u:
                w = b.emit("add", [w, b.emit("mul", [v, lit(draw(st.sampled_from(COEFS)))])[0]])[0]
            out = w
        elif kind == "smooth":
            prim = draw(st.sampled_from(smooth))
            u = pick()
            if prim == "log":
                sq = b.emit("mul", [u, u])[0]
                out = b.emit("log", [b.emit("add", [lit(1), sq])[0]])[0]
            else:
                out = b.emit(prim, [b.emit("mul", [u, lit(fmpq(1, 2))])[0]])[0]
        else:
            prim = draw(st.sampled_from(nonsmooth))
            if prim in ("max", "min"):
                args = [offset(pick()), offset(pick())]
                out = b.emit(prim, args)[0]
            else:
                out = b.emit(prim, [offset(pick())])[0]
        pool.append(out)
    return b.finish([pool[-1]])


@st.composite
def pl_programs(draw, n_inputs=2, max_eqns=8):
    """A random piecewise-linear program (one output): affine maps with small rational coefficients and
    relu, abs, max, min, clamp, where; offsets are small rationals, so ties and shared kinks happen."""
    b = Builder("f", [f"x{i}" for i in range(n_inputs)])
    pool = list(range(n_inputs))
    small = st.sampled_from([fmpq(0), fmpq(1, 2), fmpq(-1, 2), fmpq(1, 3), fmpq(1), fmpq(-1), fmpq(2, 3)])

    def pick():
        return draw(st.sampled_from(pool[-5:]))

    for _ in range(draw(st.integers(1, max_eqns))):
        kind = draw(st.sampled_from(["affine", "relu", "abs", "max", "min", "clamp", "where"]))
        u = pick()
        if kind == "affine":
            w = b.emit("mul", [u, Lit(draw(st.sampled_from(COEFS)))])[0]
            out = b.emit("add", [w, Lit(draw(small))])[0]
        elif kind in ("relu", "abs"):
            out = b.emit(kind, [b.emit("sub", [u, Lit(draw(small))])[0]])[0]
        elif kind in ("max", "min"):
            out = b.emit(kind, [u, pick()] + ([Lit(draw(small))] if draw(st.booleans()) else []))[0]
        elif kind == "clamp":
            out = b.emit("clamp", [u], {"lo": fmpq(-1, 2), "hi": fmpq(1)})[0]
        else:
            op = draw(st.sampled_from([">", ">=", "<", "<="]))
            out = b.emit("where", [u, Lit(draw(small)), pick(), pick()], {"op": op})[0]
        pool.append(out)
    return b.finish([pool[-1]])


def segments(n_inputs, lo=-2, hi=2):
    """(x, y): two points with small rational coordinates."""
    pt = st.lists(rationals(lo, hi), min_size=n_inputs, max_size=n_inputs)
    return st.tuples(pt, pt)
