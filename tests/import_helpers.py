"""Shared oracles for the importer tests (tests/test_import_torch*.py, tests/test_import_jax.py).

Float64 rounding bound.  The models of these tests are small: at most a few hundred float64 operations on
any path to an output, on values and weights below 2^4 in magnitude, with sensitivities (derivatives of the
output with respect to an intermediate value) below 2^4 at the random points used.  Each operation rounds
with a relative error of at most u = 2^-53, so the framework's float64 value and gradient differ from the
exact ones by less than 2^9 (operations) * 2^4 (values) * 2^4 (sensitivity) * 2^-53 = 2^-36 relative to
max(1, |exact|).  ``close`` asserts exactly that, and nothing looser.  At tie points the models of the
exact tests are piecewise linear with small dyadic data, where float64 arithmetic is exact: there the
framework's gradient must equal ours exactly.
"""
import numpy as np
from flint import arb, fmpq

FLOAT64_BOUND = 2.0 ** -36


def as_float(v):
    """An exact fmpq or an arb ball as a float (the ball's midpoint: its radius is far below the bound)."""
    if isinstance(v, fmpq):
        return int(v.p) / int(v.q)
    if isinstance(v, arb):
        assert float(v.rad()) < 2.0 ** -60, v
        return float(v.mid())
    return float(v)


def run_torch(f, args):
    """torch's value of the scalar ``f(*args)`` and its gradient with respect to every argument (zeros where f
    does not depend on one), by autograd on fresh copies of the arguments."""
    import torch
    args = [a.detach().clone().requires_grad_(True) for a in args]
    out = f(*args)
    out.backward()
    return out.item(), [a.grad if a.grad is not None else torch.zeros_like(a) for a in args]


def floats(a):
    return np.vectorize(as_float, otypes=[float])(np.asarray(a, dtype=object))


def close(ours, theirs, what=""):
    """|ours - theirs| <= 2^-36 * max(1, |ours|), element by element (the float64 rounding bound above)."""
    o, t = floats(ours), np.asarray(theirs, dtype=np.float64)
    assert o.shape == t.shape, (what, o.shape, t.shape)
    err = np.abs(o - t)
    bound = FLOAT64_BOUND * np.maximum(1.0, np.abs(o))
    assert np.all(err <= bound), f"{what}: max error {err.max()} exceeds the float64 bound"


def exact_equal(ours, theirs, what=""):
    """Every element of ours is an exact rational equal to the framework's float64 number."""
    from verify.program.arrays import ExactArray
    o = np.asarray(ours, dtype=object)
    assert all(isinstance(v, fmpq) for v in o.ravel()), f"{what}: not exact"
    t = ExactArray.from_any(np.asarray(theirs, dtype=np.float64)).to_fmpq()
    assert o.shape == t.shape and all(a == b for a, b in zip(o.ravel(), t.ravel())), \
        f"{what}: ours {o.tolist()} != framework {np.asarray(theirs).tolist()}"


def assert_kinks_explicit(program):
    """Every kink param that a convention could fill is written in the imported program, so it means the same
    under every convention."""
    from verify.program.kinks import CONVENTIONS
    for k, e in enumerate(program.eqns):
        names = set().union(*(set(CONVENTIONS[c].get(e.prim, {})) for c in CONVENTIONS))
        missing = names - set(e.param_dict)
        assert not missing, f"equation {k + 1} ({e.prim}) leaves {sorted(missing)} to the convention"
