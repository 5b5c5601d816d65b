"""Piecewise constant primitives: ``floor``, ``ceil``, ``round`` (half to even, as torch.round and jnp.round)
and ``trunc``.

Each is a staircase: on every bounded set an elementary selection whose pieces are the constants k (one per
integer k the argument can reach), chosen by the signs of x - k and x - (k + 1) (for round, of x - (k -
1/2) and x - (k + 1/2)).  Every piece is constant, so the selection derivative is 0 everywhere, also at a
jump: what PyTorch and JAX return (measured: floor, ceil, round, trunc and sign backward are 0 at integers
too).  Only the chosen piece agrees with the value at a jump (floor is right-continuous, ceil left-
continuous, ...), so the local index set of one of these equations is always the chosen piece alone, and it
needs no pattern entry: the rules are ``eval`` (the exact step, decided by signs), ``jvp`` and ``vjp``
(zero).  They are **discontinuous** (``Primitive.continuous`` is False): claims that need a continuous
program (Clarke's subdifferential, the segment partition, the integral identity, differentiability) refuse
programs that use them (``discontinuous_eqns``).

Deciding the step: a rational guess k from the value (exact for rationals, the midpoint of a ball), then
the signs of x - k and x - (k + 1) in the number system itself (``ns.sign`` / ``ns.signs``); an undecided
sign raises Undecided (the interpreter raises the precision), a wrong guess is corrected by one step.
"""
from fractions import Fraction
from math import ceil as _ceil, floor as _floor

import numpy as np
from flint import fmpq

from ...errors import InputError, Undecided
from ...rational import dyadic_q
from . import PRIMITIVES, Primitive, eval_rules, jvp_rules, register, vjp_rules

# kind -> (offsets a, b of the interval [k + a, k + b] where the step is k, which ends are closed)
_STEPS = {
    "floor": (fmpq(0), fmpq(1), (True, False)),       # k <= x < k + 1
    "ceil": (fmpq(-1), fmpq(0), (False, True)),       # k - 1 < x <= k
    "round": (fmpq(-1, 2), fmpq(1, 2), None),         # k - 1/2 <= x <= k + 1/2, ties to the even k
}
_UNDECIDED = 2


def approx_q(v):
    """A rational near the value ``v`` of any number system (fmpq, arb, float, mpmath interval, an affine
    form (c, terms, ball)); only a guess, never a decision."""
    if isinstance(v, fmpq):
        return v
    if isinstance(v, tuple):                   # numbers/affine.py: (constant, terms, enclosure)
        return approx_q(v[0] if not v[1] else v[2])
    if hasattr(v, "mid") and hasattr(v, "rad") and callable(v.mid):     # arb
        return dyadic_q(v.mid(), "a guess near a ball")
    if hasattr(v, "_mpi_"):                    # mpmath iv
        from mpmath import mpf
        f = Fraction(float(mpf(v._mpi_[0]) / 2 + mpf(v._mpi_[1]) / 2))
        return fmpq(f.numerator, f.denominator)
    f = Fraction(float(v))
    return fmpq(f.numerator, f.denominator)


def _guess(kind, q):
    if kind == "floor":
        return _floor(Fraction(int(q.p), int(q.q)))
    if kind == "ceil":
        return _ceil(Fraction(int(q.p), int(q.q)))
    if kind == "round":
        return round(Fraction(int(q.p), int(q.q)))        # Python rounds half to even
    f = Fraction(int(q.p), int(q.q))
    return _floor(f) if f >= 0 else _ceil(f)


def _verdict(kind, k, s_lo, s_hi):
    """Given the signs of x - (k + a) and x - (k + b) for the kind's offsets: 0 when the step is k, -1 when it
    is below k, 1 when above, None when a sign is undecided."""
    if _UNDECIDED in (s_lo, s_hi) or None in (s_lo, s_hi):
        return None
    if kind == "round":
        if s_lo < 0:
            return -1
        if s_hi > 0:
            return 1
        if s_lo == 0 and k % 2:             # x = k - 1/2: the even neighbour is k - 1
            return -1
        if s_hi == 0 and k % 2:             # x = k + 1/2: the even neighbour is k + 1
            return 1
        return 0
    closed_lo, closed_hi = _STEPS[kind][2]
    if s_lo < 0 or (s_lo == 0 and not closed_lo):
        return -1
    if s_hi > 0 or (s_hi == 0 and not closed_hi):
        return 1
    return 0


def _scalar_step(kind, ns, x):
    if kind == "trunc":
        s = ns.sign(x)
        if s is None:
            # |x| < 1 decides trunc(x) = 0 without the sign of x
            lo, hi = ns.sign(ns.add(x, ns.const(fmpq(1)))), ns.sign(ns.sub(x, ns.const(fmpq(1))))
            if lo == 1 and hi == -1:
                return ns.const(fmpq(0))
            raise Undecided("cannot decide the sign of trunc's argument")
        if s == 0:
            return ns.const(fmpq(0))
        kind = "floor" if s > 0 else "ceil"
    k = _guess(kind, approx_q(x))
    for _ in range(3):
        a, b, _c = _STEPS[kind]
        s_lo, s_hi = ns.sign(ns.sub(x, ns.const(k + a))), ns.sign(ns.sub(x, ns.const(k + b)))
        v = _verdict(kind, k, s_lo, s_hi)
        if v is None:
            raise Undecided(f"cannot decide {kind} of a value near {k}")
        if v == 0:
            return ns.const(fmpq(k))
        k += v
    raise Undecided(f"cannot locate {kind} of the value")


def _tensor_step(kind, ns, x):
    from ..arrays import ExactArray
    shape = tuple(ns.shape(x))
    vals = np.asarray(ns.out(x), dtype=object).reshape(shape)
    flat = vals.ravel().tolist()
    kinds = [kind] * len(flat)
    if kind == "trunc":
        signs = np.asarray(ns.signs(x)).reshape(-1).tolist()
        inside = None          # -1 < x < 1 decides trunc(x) = 0 where the sign of x is undecided
        kinds = []
        for i, s in enumerate(signs):
            if s == _UNDECIDED:
                if inside is None:
                    one = ns.const(fmpq(1))
                    inside = (np.asarray(ns.signs(ns.add(x, one))).reshape(-1) == 1) & \
                        (np.asarray(ns.signs(ns.sub(x, one))).reshape(-1) == -1)
                if not inside[i]:
                    raise Undecided(f"cannot decide the sign of trunc's argument at index {_index(i, shape)}")
            kinds.append("zero" if s in (0, _UNDECIDED) else ("floor" if s > 0 else "ceil"))
    ks = [0 if kd == "zero" else _guess(kd, approx_q(v)) for kd, v in zip(kinds, flat)]
    for _ in range(3):
        lo = [0 if kd == "zero" else fmpq(k) + _STEPS[kd][0] for kd, k in zip(kinds, ks)]
        hi = [0 if kd == "zero" else fmpq(k) + _STEPS[kd][1] for kd, k in zip(kinds, ks)]
        s_lo = np.asarray(ns.signs(ns.sub(x, ns.const_array(_exact(lo, shape))))).reshape(-1).tolist()
        s_hi = np.asarray(ns.signs(ns.sub(x, ns.const_array(_exact(hi, shape))))).reshape(-1).tolist()
        moved = False
        for i, kd in enumerate(kinds):
            if kd == "zero":
                continue
            v = _verdict(kd, ks[i], s_lo[i], s_hi[i])
            if v is None:
                raise Undecided(f"cannot decide {kind} at index {_index(i, shape)}")
            if v:
                ks[i] += v
                moved = True
        if not moved:
            return ns.const_array(ExactArray(np.array(ks, dtype=object).reshape(shape), 1))
    raise Undecided(f"cannot locate {kind} of the values")


def _index(i, shape):
    return [int(t) for t in np.unravel_index(i, shape)] if shape else []


def _exact(vals, shape):
    from ..arrays import ExactArray
    return ExactArray.from_any(np.array([Fraction(int(fmpq(v).p), int(fmpq(v).q)) for v in vals],
                                        dtype=object).reshape(shape))


def step_value(kind, ns, x):
    """floor / ceil / round / trunc of ``x`` in the number system ``ns`` (scalar or tensor), decided by signs."""
    if getattr(ns, "tensor", False):
        return _tensor_step(kind, ns, x)
    return _scalar_step(kind, ns, x)


def on_jump(kind, v):
    """True when the step ``kind`` jumps at the value v (floor, ceil: an integer; trunc: a nonzero integer;
    round: a half-integer), False when it does not, None when a ball cannot tell."""
    half = fmpq(1, 2) if kind == "round" else fmpq(0)
    if isinstance(v, fmpq):
        w = v - half
        return w.q == 1 and not (kind == "trunc" and v == 0)
    lo, hi = approx_q(v.lower() if hasattr(v, "lower") else v), approx_q(v.upper() if hasattr(v, "upper") else v)
    a, b = _floor(Fraction(int((lo - half).p), int((lo - half).q))), _floor(Fraction(int((hi - half).p),
                                                                                      int((hi - half).q)))
    if a == b and Fraction(int((lo - half).p), int((lo - half).q)) != a:
        return False                      # no integer (or half-integer) inside the ball
    return None


def jump_sites(prim, values):
    """The flat indices (sorted) of ``values`` (the exact or ball arguments of a step equation, flattened) where
    the step ``prim`` jumps or may jump: there the function is not continuous, so nothing is claimed smooth."""
    return [i for i, v in enumerate(values) if on_jump(prim, v) is not False]


def discontinuous_eqns(program):
    """[(equation index, primitive name)] of the equations whose primitive is discontinuous (floor, ...)."""
    return [(k, e.prim) for k, e in enumerate(program.eqns) if not PRIMITIVES[e.prim].continuous]


def require_continuous(program, claim):
    """Raise InputError when ``program`` uses a discontinuous primitive: ``claim`` (Clarke's subdifferential,
    the segment partition, ...) is stated for continuous programs (the paper's class S)."""
    bad = discontinuous_eqns(program)
    if bad:
        k, prim = bad[0]
        raise InputError(f"{claim} needs a continuous program, but equation {k + 1} of {program.name} uses {prim}, "
                         "which is discontinuous (piecewise constant or a jumping selection: AD's derivative "
                         "there is the selection derivative, but the function jumps)")


def _zero_jvp(ns, p, xs, y, ts):
    return None


def _zero_vjp(ns, p, xs, y, ct):
    return (None,)


_DOCS = {"floor": "the largest integer <= x", "ceil": "the smallest integer >= x",
         "round": "the nearest integer, ties to the even one", "trunc": "x rounded towards 0"}
for _kind in ("floor", "ceil", "round", "trunc"):
    register(Primitive(_kind, (1, 1), True, doc=f"{_DOCS[_kind]}: piecewise constant, derivative 0 (also at a "
                       "jump); discontinuous", continuous=False))
    eval_rules[_kind] = (lambda kind: lambda ns, p, x: step_value(kind, ns, x))(_kind)
    jvp_rules[_kind] = _zero_jvp
    vjp_rules[_kind] = _zero_vjp
