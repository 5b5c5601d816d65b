"""Hypothesis strategies for random programs, valid by construction (STYLE rule 6): every operand is a
variable defined earlier (acyclic), every domain holds by construction (log and sqrt of 1 + u*u, division
by 1 + u*u, negative powers of 1 + u*u), and draws lean toward kinks (small rationals as points and
literals, so ties and zeros of switching functions happen often).  Requires hypothesis (the ``test``
extra)."""
import functools

from flint import fmpq
from hypothesis import strategies as st

from ..frontends import Builder
from ..program.ir import Lit

SMOOTH = ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid")
RATIONAL_SMOOTH = ("add", "sub", "mul", "div", "neg", "pow")
NONSMOOTH = ("relu", "abs", "leaky_relu", "max", "min", "sort", "where", "clamp", "hardtanh", "relu6")
ALL = SMOOTH + NONSMOOTH

SMALL = [fmpq(0), fmpq(1), fmpq(-1), fmpq(1, 2), fmpq(-1, 2), fmpq(2), fmpq(-2), fmpq(1, 3), fmpq(3, 2)]


def small_rationals():
    """Rationals that often sit on kinks: mostly from a short list, sometimes any p/q with |p|, q small."""
    return _SMALL_RATIONALS


_SMALL_RATIONALS = st.one_of(st.sampled_from(SMALL),
                             st.builds(lambda p, q: fmpq(p, q), st.integers(-20, 20), st.integers(1, 12)))


# Strategies are built once and reused: building and validating a fresh strategy for every draw cost more
# than everything else in program generation.
@functools.lru_cache(maxsize=None)
def _ints(lo, hi):
    return st.integers(lo, hi)


@functools.lru_cache(maxsize=4096)
def _sampled(seq):
    return st.sampled_from(seq)


def _pick(draw, seq):
    """draw(st.sampled_from(seq)), with the strategy built once per distinct tuple."""
    return draw(_sampled(tuple(seq)))


_BOOL = st.booleans()
_SLOPES = (fmpq(1, 100), fmpq(1, 5), fmpq(-1, 2))
_SORT_PARAMS = ((), (("descending", True),), (("ties", "reverse"),), (("descending", True), ("ties", "reverse")))
_OPS = (">", ">=", "<", "<=")
_TIE = ("split", "first", "last")
_LOS = (fmpq(-1), fmpq(0), fmpq(-1, 2))
_HIS = (None, fmpq(1), fmpq(2))


# An operand is ("v", j): the j-th of the (at most six) most recent variables, or ("l", q): a literal.  Drawn
# flat (no nested strategy) because the shrinker deletes and simplifies flat records most reliably.
def _operand(draw):
    j = draw(_ints(0, 59))
    if j >= 54:                                # one in ten; shrinks toward a variable
        return ("l", draw(_SMALL_RATIONALS))
    return ("v", j % 6)


@st.composite
def _equation(draw, allowed, kp):
    """One equation as data (prim, operands, params): the builder resolves the operands against the
    variables defined so far, so deleting an earlier equation leaves a valid program (what the shrinker
    needs to reach small programs)."""
    prim = _pick(draw, allowed)
    ops = [_operand(draw)]
    params = {}
    if prim in ("add", "sub", "mul", "div"):
        ops.append(_operand(draw))
    elif prim == "pow":
        params["n"] = draw(_ints(-2, 3))
    elif prim in ("relu", "abs", "leaky_relu"):
        key = {"relu": "alpha", "abs": "at_zero", "leaky_relu": "at_zero"}[prim]
        if kp and draw(_BOOL):
            params[key] = _pick(draw, SMALL)
        if prim == "leaky_relu" and draw(_BOOL):
            params["slope"] = _pick(draw, _SLOPES)
    elif prim in ("max", "min", "sort"):
        k = draw(_ints(2, 3))
        ops += [_operand(draw) for _ in range(k - 1)]
        if prim == "sort":
            params = dict(_pick(draw, _SORT_PARAMS))
            if not kp:
                params.pop("ties", None)
        elif kp and draw(_BOOL):
            params["tie"] = _pick(draw, _TIE)
    elif prim == "where":
        params["op"] = _pick(draw, _OPS)
        ops += [_operand(draw) for _ in range(3)]
    elif prim in ("clamp", "hardtanh", "relu6"):
        if prim != "relu6":
            lo = _pick(draw, _LOS)
            hi = _pick(draw, _HIS) if prim == "clamp" else fmpq(1)
            params = {"lo": lo} if hi is None else {"lo": lo, "hi": hi}
        if kp and draw(_BOOL):
            params["at_lo"] = _pick(draw, SMALL)
    elif prim not in ("neg", "exp", "sin", "cos", "tanh", "sigmoid", "log", "sqrt"):
        raise ValueError(f"no generator for primitive {prim!r}")
    return prim, tuple(ops), params


@functools.lru_cache(maxsize=None)
def _equations(allowed, kp, max_eqns):
    return st.lists(_equation(allowed, kp), min_size=1, max_size=max_eqns)


def build(n_inputs, equations, outputs=((0,),)):
    """The Program of ``equations`` (as drawn by ``programs``) on ``n_inputs`` inputs.  Operands refer to
    the six most recent variables (modulo their number); division, log, sqrt and negative powers act on
    1 + u*u, so every domain holds by construction.  ``outputs``: indices into the variables counted from
    the last one (the first output is always the last variable)."""
    b = Builder("f", [f"x{i}" for i in range(n_inputs)])
    pool = list(range(n_inputs))

    def operand(op):
        if op[0] == "l":
            return Lit(op[1])
        window = pool[-6:]
        return window[op[1] % len(window)]

    def positive(u):
        """1 + u*u as a new variable (positive by construction)."""
        sq = b.emit("mul", [u, u])[0]
        return b.emit("add", [Lit(fmpq(1)), sq])[0]

    for prim, ops, params in equations:
        args = [operand(o) for o in ops]
        if prim == "div":
            args[1] = positive(args[1])
        elif prim in ("log", "sqrt") or (prim == "pow" and params["n"] < 0):
            args[0] = positive(args[0])
        n_out = len(args) if prim == "sort" else 1
        pool.extend(b.emit(prim, args, params, n_out=n_out))
    outs = [pool[-1]] + [pool[len(pool) - 1 - (j % len(pool))] for j in outputs[1:]]
    return b.finish(outs)


@st.composite
def programs(draw, n_inputs=2, max_eqns=8, primitives=None, rational_only=False, convention=None,
             max_outputs=2, kink_params=True):
    """A random typechecked Program.  ``primitives`` restricts the primitive names used; ``rational_only``
    leaves out exp, log, sqrt, sin, cos, tanh, sigmoid (so exact evaluation stays exact).  ``convention``
    is accepted for symmetry with the other strategies: kink params are drawn explicitly some of the time,
    and otherwise left to whichever convention the caller evaluates under.  ``kink_params=False`` never
    writes a kink param (alpha, at_zero, tie, ties, at_lo, at_hi), so every kink follows the convention:
    such programs can be exported to the framework the convention describes (verify.frameworks).

    The equations are drawn as a list of independent records (see ``build``), so hypothesis shrinks a
    failing program by deleting whole equations and simplifying the rest: failures shrink to small
    programs (tests/test_strategies.py checks this as hypothesis's own ``minimal`` tests do)."""
    del convention
    allowed = tuple(p for p in (primitives or ALL) if not (rational_only and p in SMOOTH and p not in RATIONAL_SMOOTH))
    if not allowed:
        raise ValueError("no primitive left to draw from")
    # the outputs first: choices drawn after the list of equations keep the shrinker from deleting equations
    k = draw(_ints(1, max_outputs))
    outputs = (0,) + tuple(draw(_ints(0, 7)) for _ in range(k - 1))
    return build(n_inputs, draw(_equations(allowed, bool(kink_params), max_eqns)), outputs)


def points(program, kink_bias=True):
    """Points for ``program`` (lists of fmpq, one per input).  ``kink_bias=True``: coordinates from small
    rationals (ties between them are common), and half of the time a point constructed to sit exactly on a
    kink of some nonsmooth equation (see ``kink_points``); ``kink_bias=False``: any rationals."""
    if not kink_bias:
        return vectors(program.n_inputs, False)
    plain = vectors(program.n_inputs)
    if not program.nonsmooth_eqns() or program.n_inputs == 0:
        return plain
    return st.one_of(plain, kink_points(program))


_ANY_RATIONAL = st.builds(lambda p, q: fmpq(p, q), st.integers(-10**6, 10**6), st.integers(1, 10**6))


@functools.lru_cache(maxsize=None)
def vectors(n, small=True):
    """Lists of ``n`` rationals: small ones that sit on kinks often (``small``), else any (built once per n)."""
    return st.lists(_SMALL_RATIONALS if small else _ANY_RATIONAL, min_size=n, max_size=n)


def _switch_program(program, k):
    """The program truncated before equation k, returning the atoms equation k reads (its arguments)."""
    from ..program.ir import Program, typecheck
    e = program.eqns[k]
    n_vars = e.outs[0]
    return typecheck(Program(program.name, program.names[:n_vars], program.n_inputs, program.eqns[:k],
                             tuple(e.ins)))


def on_kink(program, x, k, j, convention="torch", steps=3, max_bits=256):
    """A point near ``x`` where switching function ``j`` of equation ``k`` is exactly zero, or None.

    Exact Newton steps along one coordinate at a time on the truncated program (its arguments and their
    gradient by exact AD): a step lands exactly on the kink when the switching function is affine between x
    and the kink (piecewise-linear programs); a few more steps follow a switching function that is affine
    on each region but changes between regions.  Curved switching functions are not reached exactly (the
    result is checked exactly, never assumed).  Returns None when no step lands, the values stop being
    rational, the gradient vanishes, or the numbers grow past ``max_bits``."""
    from ..interpret.ad import grad
    from ..errors import VerifyError
    from ..interpret.evaluate import compiled
    terms, const = compiled(program, convention)[k].switches[j]
    T = _switch_program(program, k)
    x = list(x)
    for _ in range(steps + 1):
        try:
            g = grad(T, x, convention=convention, mode="forward")
        except VerifyError:
            return None
        if not g.exact:
            return None
        h = const + sum((c * g.values[i] for i, c in terms), fmpq(0))
        if h == 0:
            return x
        dh = [sum((c * g.jacobian[i][col] for i, c in terms), fmpq(0)) for col in range(program.n_inputs)]
        col = next((c for c in range(program.n_inputs) if dh[c] != 0), None)
        if col is None:
            return None
        x[col] = x[col] - h / dh[col]
        if max(abs(int(x[col].p)).bit_length(), int(x[col].q).bit_length()) > max_bits:
            return None
    return None


@st.composite
def kink_points(draw, program, convention="torch"):
    """A point sitting exactly on a kink of some nonsmooth equation when one can be constructed (see
    ``on_kink``), else the drawn small-rational base point.  Valid by construction: nothing is filtered."""
    from ..interpret.evaluate import compiled
    base = draw(vectors(program.n_inputs))
    steps = [s for s in compiled(program, convention) if s.sel is not None]
    if not steps:
        return base
    st_ = steps[_pick(draw, range(len(steps)))]
    j = draw(_ints(0, len(st_.switches) - 1))
    if not st_.switches[j][0]:          # a switching function that is constant: nothing to aim at
        return base
    x = on_kink(program, base, st_.k, j, convention)
    return base if x is None else x


def segments(program, kink_bias=True):
    """(x, y): the two ends of a segment for ``program``.  Half of the time the segment crosses a kink point
    p at its midpoint (x = p - d, y = p + d), else two independent (kink-biased) points."""
    free = st.tuples(points(program, kink_bias), points(program, kink_bias))
    if not kink_bias or program.n_inputs == 0:
        return free

    @st.composite
    def through(draw):
        p = draw(points(program))
        d = draw(vectors(program.n_inputs))
        return [a - b for a, b in zip(p, d)], [a + b for a, b in zip(p, d)]
    return st.one_of(free, through())


@st.composite
def curves(draw, program, max_degree=3):
    """A polynomial curve gamma(t) = c0 + c1 t + ... as its coefficient vectors [c0, c1, ...] (fmpq lists),
    degree 1..max_degree, starting at a kink-biased point (the form verify.certify's segment machinery
    takes: Theorem 3's absolutely continuous curves, polynomial here)."""
    n = program.n_inputs
    c0 = draw(points(program))
    deg = draw(_ints(1, max_degree))
    rest = [draw(vectors(n)) for _ in range(deg)]
    return [c0] + rest
