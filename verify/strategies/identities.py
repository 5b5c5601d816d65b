"""Programs that reuse values on purpose (issue 9): the same subexpression computed twice, a piece that returns
its input, x - x, a split tie through its mean, an odd function of -u next to the same function of u, all
fed to nonsmooth primitives at their kinks.  Every such tie holds by a *linear* identity over the values
(exact forms decide it in balls, see verify/interpret/forms.py), so the soundness and Lemma 1 properties
must run on these programs in balls without a single UNDECIDED.

Valid by construction (STYLE rule 6): operands are drawn among the recent variables, divisions by 1 + u*u,
and a value is only passed through a piece where the piece provably returns it with room to spare (relu and
abs of exp(u), clamp of sigmoid(u) from below, hardtanh of sin(u) / 2, max(v, v)).  The transcendental
primitives are exp, sin, cos, tanh and sigmoid: no log or sqrt, whose inverses would make nonlinear
identities (log(exp(u)) = u) that no linear form decides and that these programs promise not to contain.
Values stay moderate (products by a literal in [-2, 2] or by a tanh output, exp and sigmoid of tanh
outputs), so no sign needs more than a few hundred bits by coincidence (tanh(u) - 1 for a huge u would).
"""
from flint import fmpq
from hypothesis import strategies as st

from ..frontends import Builder
from ..program.ir import Lit
from . import SMALL

FRESH = ("add", "sub", "mul", "neg", "div", "exp", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "max", "min")
_BOUNDED = ("tanh", "sin", "cos")
IDENTITIES = ("repeat", "cancel", "pass", "split", "odd", "sort", "shift")
CONSUMERS = ("relu", "abs", "max", "min", "where", "clamp", "leaky_relu")


class _Gen:
    def __init__(self, n_inputs):
        self.b = Builder("f", [f"x{i}" for i in range(n_inputs)])
        self.pool = list(range(n_inputs))
        self.made = []          # (prim, ins, params) of every equation, to repeat one
        self.bounded = []       # outputs of tanh, sin, cos: values in [-1, 1]

    def emit(self, prim, ins, params=None, n_out=1):
        params = params or {}
        outs = self.b.emit(prim, ins, params, n_out=n_out)
        self.made.append((prim, tuple(ins), dict(params), n_out))
        self.pool.extend(outs)
        if prim in _BOUNDED:
            self.bounded.append(outs[0])
        return outs[0] if n_out == 1 else outs

    def pick(self, draw):
        window = self.pool[-6:]
        return window[draw(st.integers(0, len(window) - 1))]


def _fresh(draw, g):
    prim = draw(st.sampled_from(FRESH))
    u = g.pick(draw)
    if prim in ("add", "sub", "max", "min"):
        other = Lit(draw(st.sampled_from(SMALL))) if draw(st.integers(0, 4)) == 0 else g.pick(draw)
        return g.emit(prim, [u, other])
    if prim == "mul":
        if g.bounded and draw(st.booleans()):
            other = g.bounded[-1 - draw(st.integers(0, min(5, len(g.bounded) - 1)))]
        else:
            other = Lit(draw(st.sampled_from(SMALL)))
        return g.emit("mul", [u, other])
    if prim == "div":
        w = g.pick(draw)
        sq = g.emit("mul", [w, w])
        return g.emit("div", [u, g.emit("add", [Lit(fmpq(1)), sq])])
    if prim in ("exp", "sigmoid"):
        u = g.emit("tanh", [u])
    return g.emit(prim, [u])


def _zero_or_tie(draw, g):
    """Emit an identity; return (a, b): two variables with equal values by that identity."""
    kind = draw(st.sampled_from(IDENTITIES))
    u = g.pick(draw)
    if kind == "repeat" and g.made:
        k = draw(st.integers(max(0, len(g.made) - 6), len(g.made) - 1))
        prim, ins, params, n_out = g.made[k]
        twice = g.emit(prim, list(ins), params, n_out)
        return g.b.eqns[k].outs[0], (twice if n_out == 1 else twice[0])
    if kind == "cancel":
        c = Lit(draw(st.sampled_from(SMALL)))
        s = g.emit("add", [u, c])
        return g.emit("sub", [s, c]), u
    if kind == "pass":
        how = draw(st.sampled_from(("relu_exp", "abs_exp", "clamp_sigmoid", "hardtanh_sin", "max_same")))
        if how == "relu_exp" or how == "abs_exp":
            e = g.emit("exp", [g.emit("tanh", [u])])
            return g.emit("relu" if how == "relu_exp" else "abs", [e]), e
        if how == "clamp_sigmoid":
            s = g.emit("sigmoid", [u])
            return g.emit("clamp", [s], {"lo": fmpq(0)}), s
        if how == "hardtanh_sin":
            t = g.emit("mul", [g.emit("sin", [u]), Lit(fmpq(1, 2))])
            return g.emit("hardtanh", [t]), t
        return g.emit("max", [u, u]), u
    if kind == "split":
        k = draw(st.integers(2, 3))
        return g.emit(draw(st.sampled_from(("min", "max"))), [u] * k), u
    if kind == "odd":
        f = draw(st.sampled_from(("tanh", "sin")))
        n = g.emit("neg", [u])
        return g.emit("neg", [g.emit(f, [n])]), g.emit(f, [u])
    if kind == "sort":
        lo, hi = g.emit("sort", [u, u], n_out=2)
        return lo, hi
    # shift: (u + v) - v
    v = g.pick(draw)
    s = g.emit("add", [u, v])
    return g.emit("sub", [s, v]), u


def _consume(draw, g, a, b):
    """Feed the tie a = b to a nonsmooth primitive at its kink."""
    prim = draw(st.sampled_from(CONSUMERS))
    if prim in ("max", "min"):
        return g.emit(prim, [a, b])
    if prim == "where":
        op = draw(st.sampled_from((">", ">=", "<", "<=")))
        return g.emit("where", [a, b, g.pick(draw), g.pick(draw)], {"op": op})
    d = g.emit("sub", [a, b])
    if prim == "clamp":
        c = draw(st.sampled_from(SMALL))
        shifted = g.emit("add", [d, Lit(c)])
        return g.emit("clamp", [shifted], {"lo": c} if draw(st.booleans()) else {"lo": c - 1, "hi": c})
    return g.emit(prim, [d])


@st.composite
def identity_programs(draw, n_inputs=None, max_steps=6):
    """A random Program in which ties hold by linear identities (see the module docstring)."""
    n = draw(st.integers(1, 2)) if n_inputs is None else n_inputs
    g = _Gen(n)
    for _ in range(draw(st.integers(1, max_steps))):
        if draw(st.integers(0, 2)) == 0:
            _fresh(draw, g)
        else:
            a, b = _zero_or_tie(draw, g)
            _consume(draw, g, a, b)
    # the output mixes the last value with an earlier one, so the backward pass crosses the ties
    last = g.pool[-1]
    other = g.pool[draw(st.integers(0, len(g.pool) - 1))]
    out = g.emit("add", [last, other]) if other != last else last
    return g.b.finish([out])
