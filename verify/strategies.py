"""Hypothesis strategies for random programs, valid by construction (STYLE rule 6): every operand is a
variable defined earlier (acyclic), every domain holds by construction (log and sqrt of 1 + u*u, division
by 1 + u*u, negative powers of 1 + u*u), and draws lean toward kinks (small rationals as points and
literals, so ties and zeros of switching functions happen often).  Requires hypothesis (the ``test``
extra)."""
from flint import fmpq
from hypothesis import strategies as st

from .frontends import Builder
from .ir import Lit

SMOOTH = ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid")
RATIONAL_SMOOTH = ("add", "sub", "mul", "div", "neg", "pow")
NONSMOOTH = ("relu", "abs", "leaky_relu", "max", "min", "sort", "where", "clamp", "hardtanh", "relu6")
ALL = SMOOTH + NONSMOOTH

SMALL = [fmpq(0), fmpq(1), fmpq(-1), fmpq(1, 2), fmpq(-1, 2), fmpq(2), fmpq(-2), fmpq(1, 3), fmpq(3, 2)]


def small_rationals():
    """Rationals that often sit on kinks: mostly from a short list, sometimes any p/q with |p|, q small."""
    general = st.builds(lambda p, q: fmpq(p, q), st.integers(-20, 20), st.integers(1, 12))
    return st.one_of(st.sampled_from(SMALL), general)


@st.composite
def programs(draw, n_inputs=2, max_eqns=8, primitives=None, rational_only=False, convention=None,
             max_outputs=2):
    """A random typechecked Program.  ``primitives`` restricts the primitive names used; ``rational_only``
    leaves out exp, log, sqrt, sin, cos, tanh, sigmoid (so exact evaluation stays exact).  ``convention``
    is accepted for symmetry with the other strategies: kink params are drawn explicitly some of the time,
    and otherwise left to whichever convention the caller evaluates under."""
    del convention
    allowed = [p for p in (primitives or ALL) if not (rational_only and p in SMOOTH and p not in RATIONAL_SMOOTH)]
    if not allowed:
        raise ValueError("no primitive left to draw from")
    b = Builder("f", [f"x{i}" for i in range(n_inputs)])
    pool = list(range(n_inputs))
    n_eqns = draw(st.integers(1, max_eqns))

    def operand():
        if draw(st.integers(0, 9)) == 0:
            return Lit(draw(small_rationals()))
        return draw(st.sampled_from(pool[-6:]))

    def positive(u):
        """1 + u*u as a new variable (positive by construction)."""
        sq = b.emit("mul", [u, u])[0]
        return b.emit("add", [Lit(fmpq(1)), sq])[0]

    for _ in range(n_eqns):
        prim = draw(st.sampled_from(allowed))
        u = operand()
        params = {}
        if prim in ("add", "sub", "mul"):
            outs = b.emit(prim, [u, operand()])
        elif prim == "div":
            outs = b.emit("div", [u, positive(operand())])
        elif prim == "pow":
            n = draw(st.integers(-2, 3))
            outs = b.emit("pow", [positive(u) if n < 0 else u], {"n": n})
        elif prim in ("log", "sqrt"):
            outs = b.emit(prim, [positive(u)])
        elif prim in ("neg", "exp", "sin", "cos", "tanh", "sigmoid"):
            outs = b.emit(prim, [u])
        elif prim in ("relu", "abs", "leaky_relu"):
            key = {"relu": "alpha", "abs": "at_zero", "leaky_relu": "at_zero"}[prim]
            if draw(st.booleans()):
                params[key] = draw(st.sampled_from(SMALL))
            if prim == "leaky_relu" and draw(st.booleans()):
                params["slope"] = draw(st.sampled_from([fmpq(1, 100), fmpq(1, 5), fmpq(-1, 2)]))
            outs = b.emit(prim, [u], params)
        elif prim in ("max", "min", "sort"):
            k = draw(st.integers(2, 3))
            args = [u] + [operand() for _ in range(k - 1)]
            if prim == "sort":
                params = draw(st.sampled_from([{}, {"descending": True}, {"ties": "reverse"},
                                               {"descending": True, "ties": "reverse"}]))
                outs = b.emit("sort", args, params, n_out=k)
            else:
                if draw(st.booleans()):
                    params["tie"] = draw(st.sampled_from(["split", "first", "last"]))
                outs = b.emit(prim, args, params)
        elif prim == "where":
            op = draw(st.sampled_from([">", ">=", "<", "<="]))
            outs = b.emit("where", [u, operand(), operand(), operand()], {"op": op})
        elif prim in ("clamp", "hardtanh", "relu6"):
            if prim != "relu6":
                lo = draw(st.sampled_from([fmpq(-1), fmpq(0), fmpq(-1, 2)]))
                hi = draw(st.sampled_from([None, fmpq(1), fmpq(2)])) if prim == "clamp" else fmpq(1)
                params = {"lo": lo} if hi is None else {"lo": lo, "hi": hi}
            if draw(st.booleans()):
                params["at_lo"] = draw(st.sampled_from(SMALL))
            outs = b.emit(prim, [u], params)
        else:
            raise ValueError(f"no generator for primitive {prim!r}")
        pool.extend(outs)
    k = draw(st.integers(1, min(max_outputs, len(pool))))
    outputs = [pool[-1]] + [draw(st.sampled_from(pool)) for _ in range(k - 1)]
    return b.finish(outputs)


def points(program, kink_bias=True):
    """Points for ``program``: coordinates from small rationals (kink-biased) or any rationals."""
    coord = small_rationals() if kink_bias else st.builds(lambda p, q: fmpq(p, q), st.integers(-10**6, 10**6),
                                                          st.integers(1, 10**6))
    return st.lists(coord, min_size=program.n_inputs, max_size=program.n_inputs)
