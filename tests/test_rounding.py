"""The rounding bounds (verify/numbers/rounding.py) hold for every IEEE evaluation we can produce: exhaustive
float16 operations, float16 and float32 dot products summed in shuffled orders with and without an (exactly
emulated) fused multiply-add, numpy's BLAS products in float32 and float64, and the elementary functions of
numpy, PyTorch and JAX against arb, each within its stated ulp bound.  Exact values are computed in integers
(floats are dyadic rationals), never in floats."""
import math
from fractions import Fraction

import numpy as np
import pytest
from flint import arb, ctx, fmpz_mat

from verify.numbers.rounding import (F64, FORMATS, ULPS, Rounding, dot_factor, dot_inflation, fmt_of, gamma, gamma_q,
                                     inflation, round_up, rounding_for, sum_factor, ulps)
from verify.program.arrays import ExactArray

F16, F32 = FORMATS["float16"], FORMATS["float32"]
RNG = np.random.default_rng(20261205)


# ----------------------------------------------------------------------------------------- exact helpers

def exact(a):
    """(numerators as Python ints, common power-of-two denominator) of a float array, exactly."""
    ea = ExactArray.from_any(np.asarray(a))
    return np.asarray(ea.num, dtype=object), ea.den


def round_to(fmt, q):
    """The number of ``fmt`` nearest the rational q (ties to even), as a Fraction; inf beyond the range."""
    if q == 0:
        return Fraction(0)
    s = -1 if q < 0 else 1
    a = abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    lsb = max(e, fmt.emin) - fmt.p + 1
    scaled = a / Fraction(2) ** lsb
    n, r = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * r
    if twice > scaled.denominator or (twice == scaled.denominator and n % 2):
        n += 1
    v = n * Fraction(2) ** lsb
    if v > Fraction(fmt.max):
        raise OverflowError(f"{q} overflows {fmt.name}")
    return s * v


def test_formats_are_numpys_and_torchs():
    for name, dt in (("float16", np.float16), ("float32", np.float32), ("float64", np.float64)):
        fi, f = np.finfo(dt), FORMATS[name]
        assert (f.u, f.eta, f.tiny, f.max) == (float(fi.eps) / 2, float(fi.smallest_subnormal),
                                               float(fi.smallest_normal), float(fi.max))
    torch = pytest.importorskip("torch")
    fi, f = torch.finfo(torch.bfloat16), FORMATS["bfloat16"]
    assert (f.u, f.tiny, f.max) == (fi.eps / 2, fi.smallest_normal, fi.max)
    assert fmt_of(np.float32) is F32 and fmt_of("torch.float16") is F16


def test_representable_agrees_with_round_trips():
    for name, dt in (("float16", np.float16), ("float32", np.float32)):
        f = FORMATS[name]
        x = RNG.standard_normal(2000) * 2.0 ** RNG.integers(-30, 10, 2000)
        x = np.concatenate([x, [f.eta, f.eta * 3, f.tiny, f.max, -f.max, 0.0]])
        for v in x.tolist():
            q = Fraction(v)
            assert f.representable(q) == (float(dt(v)) == v), (name, v)
    assert not F32.representable(Fraction(1, 6)) and F32.representable(Fraction(1, 2 ** 149))
    assert not F32.representable(Fraction(1, 2 ** 150)) and not F16.representable(Fraction(65520))


def test_constants_are_rounded_up():
    for n in (1, 2, 3, 100, 784, 10 ** 6):
        for f in (F16, F32, F64):
            g = gamma_q(n, f)
            if g is None:
                assert n * f.u_q >= 1 and gamma(n, f) == math.inf
                continue
            assert Fraction(gamma(n, f)) >= g and Fraction(gamma(n, f)) - g <= g * Fraction(1, 2 ** 50)
            assert Fraction(dot_inflation(n, f)) >= 1 / (1 - g)
        assert Fraction(inflation(n if n < 50 else 7)) >= (1 + F64.u_q) ** (n if n < 50 else 7)
    assert dot_factor(10, F32, fma=False, underflow=False) == round_up(10 * F32.u_q) < gamma(10, F32)
    assert sum_factor(1) == 0.0 and sum_factor(5, F32) == gamma(4, F32)
    assert round_up(Fraction(1, 3)) > 1 / 3 and Fraction(round_up(Fraction(1, 3))) - Fraction(1, 3) < 2 ** -53


# ------------------------------------------------------------------------------ exhaustive float16 operations

def all_float16():
    bits = np.arange(2 ** 16, dtype=np.uint16)
    x = bits.view(np.float16)
    return x[np.isfinite(x)]


def test_every_float16_product_and_sum_within_one_rounding():
    """Every finite float16 x against a spread of y: |fl(x o y) - x o y| <= u |x o y| (+ eta/2 for a product,
    which may underflow; a sum landing among the subnormals is exact).  float16 products and sums are exact in
    float64, so the exact value is a float64 here."""
    x = all_float16()
    ys = np.concatenate([all_float16()[::997], np.array([F16.eta, -F16.eta, F16.tiny, 1.0, -1.0, 3.0, 1 / 3],
                                                        dtype=np.float16)])
    u, eta = F16.u, F16.eta
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        for y in ys.tolist():
            for op, exact_op, small in ((np.multiply, lambda a: a * y, eta / 2), (np.add, lambda a: a + y, 0.0)):
                fl = op(x, np.float16(y)).astype(np.float64)
                ex = exact_op(x64)
                ok = np.abs(ex) <= F16.max
                err = np.abs(fl[ok] - ex[ok])
                assert np.all(err <= u * np.abs(ex[ok]) + small), (op.__name__, y)


def test_numpy_float16_functions_within_the_table():
    """numpy's float16 exp, log, tanh, sqrt (computed in float32, rounded): every float16 input, against arb,
    within the Rounding of ('numpy', float16): k ulps of float32 plus the rounding to float16."""
    x = all_float16()
    rnd = Rounding(F16, F32, False, "numpy")
    with ctx.workprec(120), np.errstate(all="ignore"):
        for fn, npf, ok in (("exp", np.exp, lambda v: v < 11), ("log", np.log, lambda v: v > 0),
                            ("tanh", np.tanh, lambda v: True), ("sqrt", np.sqrt, lambda v: v > 0)):
            xs = x[[ok(float(v)) for v in x.tolist()]][::3]
            fl = npf(xs).astype(np.float64)
            rel, small = rnd.func(fn)
            for v, f in zip(xs.tolist(), fl.tolist()):
                e = getattr(arb(v), fn)()
                assert abs(arb(f) - e) <= arb(rel) * abs(e) + arb(small), (fn, v, f)


# -------------------------------------------------------------------------- dot products in shuffled orders

def _exact_dot(a, b):
    na, da = exact(a)
    nb, db = exact(b)
    return Fraction(int(np.dot(na, nb)), da * db), Fraction(int(np.dot(np.abs(na), np.abs(nb))), da * db)


def _sum_in_order(fmt, terms, order):
    """Sequential summation in ``fmt``, rounding exactly (ties to even) at every step, in the given order.
    With rounded products as terms this is a plain dot product; with exact products every step is one
    rounding of acc + a * b: a fused multiply-add."""
    acc = Fraction(0)
    for i in order:
        acc = round_to(fmt, acc + terms[i])
    return acc


@pytest.mark.parametrize("name", ["float16", "float32"])
def test_dot_products_in_any_order_with_or_without_fma_stay_inside(name):
    fmt = FORMATS[name]
    dt = np.float16 if name == "float16" else np.float32
    rnd = Rounding(fmt, fmt, False, "numpy")
    for trial in range(60):
        n = int(RNG.integers(2, 40 if name == "float16" else 400))
        scale = 2.0 ** RNG.integers(-12, 4, n) if trial % 3 else np.ones(n)
        a = (RNG.standard_normal(n) * scale).astype(dt)
        b = (RNG.standard_normal(n) * (1 if trial % 4 else 2.0 ** -10)).astype(dt)
        if trial % 5 == 0:                                   # cancellation: b's second half undoes the first
            b[n // 2: 2 * (n // 2)] = -b[: n // 2]
            a[n // 2: 2 * (n // 2)] = a[: n // 2]
        ex, absdot = _exact_dot(a, b)
        rel, small = rnd.dot(n)
        bound = Fraction(rel) * absdot + Fraction(small)
        fa = [Fraction(float(v)) for v in a]
        fb = [Fraction(float(v)) for v in b]
        prods = [round_to(fmt, x * y) for x, y in zip(fa, fb)]
        for k in range(4):
            order = RNG.permutation(n)
            plain = _sum_in_order(fmt, prods, order)
            fused = _sum_in_order(fmt, [x * y for x, y in zip(fa, fb)], order)
            assert abs(plain - ex) <= bound and abs(fused - ex) <= bound, (name, trial, k)
        # numpy's own: sequential float accumulation, pairwise np.sum, BLAS np.dot
        seq = dt(0)
        for x, y in zip(a, b):
            seq = dt(seq + dt(x * y))
        for got in (seq, np.sum(a * b, dtype=dt), np.dot(a, b)):
            assert abs(Fraction(float(got)) - ex) <= bound, (name, trial)


def test_blas_matrix_products_within_gamma_n():
    """float32 and float64 BLAS products of random and cancelling matrices: |fl(AB) - AB| <= gamma_n |A||B|
    (+ n eta), checked exactly with integer matrices."""
    for dt, fmt in ((np.float32, F32), (np.float64, F64)):
        for trial in range(4):
            m, k, n = (int(v) for v in RNG.integers(2, 60, 3))
            A = (RNG.standard_normal((m, k)) * 2.0 ** RNG.integers(-20, 20, (m, k))).astype(dt)
            B = RNG.standard_normal((k, n)).astype(dt)
            if trial % 2:
                B[k // 2: 2 * (k // 2)] = -B[: k // 2]
                A[:, k // 2: 2 * (k // 2)] = A[:, : k // 2]
            C = A @ B
            na, da = exact(A)
            nb, db = exact(B)
            nc, dc = exact(C)
            P = fmpz_mat(m, k, na.ravel().tolist()) * fmpz_mat(k, n, nb.ravel().tolist())
            S = fmpz_mat(m, k, np.abs(na).ravel().tolist()) * fmpz_mat(k, n, np.abs(nb).ravel().tolist())
            rel, small = Rounding(fmt, fmt).dot(k)
            for i in range(m):
                for j in range(n):
                    exact_ij = Fraction(int(P[i, j]), da * db)
                    got = Fraction(int(nc[i, j]), dc)
                    assert abs(got - exact_ij) <= Fraction(rel) * Fraction(int(S[i, j]), da * db) + Fraction(small)


# --------------------------------------------------------------------------------- the ulp table, measured

def _inputs(fn, dt, n):
    big = 700 if dt == "float64" else 80
    if fn in ("log", "sqrt"):
        return np.exp(RNG.uniform(-big, big, n)).astype(dt)
    lo, hi = {"exp": (-big, big), "sin": (-1000, 1000), "cos": (-1000, 1000), "erf": (-6, 6)}.get(fn, (-20, 20))
    a = RNG.uniform(lo, hi, n)
    b = RNG.standard_normal(n) * 2.0 ** RNG.integers(-30, 3, n)
    return np.concatenate([a, b, [0.0, 0.5, -0.5, 1.0]]).astype(dt)


REF = {"exp": lambda a: a.exp(), "log": lambda a: a.log(), "tanh": lambda a: a.tanh(), "sin": lambda a: a.sin(),
       "cos": lambda a: a.cos(), "erf": lambda a: a.erf(), "sqrt": lambda a: a.sqrt(),
       "sigmoid": lambda a: 1 / (1 + (-a).exp())}


def _max_ulps(x, y, fn, fmt):
    worst = 0.0
    with ctx.workprec(200):
        for xi, yi in zip(x.tolist(), y.tolist()):
            if not math.isfinite(yi):
                continue
            e = REF[fn](arb(xi))
            m = abs(float(e.mid()))
            ex = math.frexp(m)[1] - 1 if m else fmt.emin
            ulp = 2.0 ** (max(ex, fmt.emin) - fmt.p + 1)
            worst = max(worst, float(abs(arb(yi) - e).upper()) / ulp)
    return worst


def _library_fn(lib, fn):
    if lib == "numpy":
        import scipy.special
        return {"sigmoid": lambda x: 1 / (1 + np.exp(-x)), "erf": scipy.special.erf}.get(fn, getattr(np, fn, None))
    if lib == "torch":
        torch = pytest.importorskip("torch")
        f = {"sigmoid": torch.sigmoid}.get(fn, getattr(torch, fn))
        return lambda x: f(torch.tensor(x)).numpy()
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    f = jax.jit({"sigmoid": jax.nn.sigmoid, "erf": jax.scipy.special.erf}.get(fn, getattr(jnp, fn, None)))
    return lambda x: np.asarray(f(jnp.asarray(x)))


@pytest.mark.parametrize("lib,dt", sorted(ULPS))
def test_stated_ulp_bounds_hold(lib, dt):
    """Each entry of the table against arb on random inputs over the function's range and near 0."""
    fmt = FORMATS[dt]
    for fn in sorted(ULPS[(lib, dt)]):
        x = _inputs(fn, dt, 400)
        with np.errstate(all="ignore"):
            y = np.asarray(_library_fn(lib, fn)(x)).astype(dt)
        assert _max_ulps(x, y, fn, fmt) <= ULPS[(lib, dt)][fn], (lib, dt, fn)


def test_framework_roundings():
    r = rounding_for("torch", "float16")
    assert r.storage is F16 and r.accumulate is F32 and not r.flush
    assert rounding_for("jax", np.float32).flush and not rounding_for("jax", "float64").flush
    rel, small = r.op()
    assert rel >= F16.u + F32.u and small >= F16.eta
    assert rounding_for("torch", "float32").dot(4000)[0] == gamma(4000, F32)
    assert math.isinf(Rounding(F16, F16).dot(3000)[0])               # n u >= 1: no bound at all
    # a library without a row (bfloat16 here) gets the most conservative float32 bound
    assert ulps("torch", "bfloat16", "exp") == max(row["exp"] for (lib, f), row in ULPS.items() if f == "float32")


@pytest.mark.parametrize("name", ["float16", "float32"])
def test_the_sum_bound_is_nearly_attained(name):
    """1 + u + u + ... summed left to right loses every u (each step is a tie, rounded to even): the error is
    (n - 1) u against a sum of |terms| of 1 + (n - 1) u, within a factor (1 - (n-1)u) of gamma_{n-1}: a bound
    half as large would fail here."""
    fmt = FORMATS[name]
    dt = np.float16 if name == "float16" else np.float32
    for n in (10, 100, 500):
        terms = np.array([1.0] + [fmt.u] * (n - 1), dtype=dt)
        acc = dt(0)
        for t in terms:
            acc = dt(acc + t)
        ex = 1 + (n - 1) * Fraction(fmt.u)
        err = abs(Fraction(float(acc)) - ex)
        rel, _ = Rounding(fmt, fmt).sum(n)
        assert err <= Fraction(rel) * ex
        assert err > Fraction(rel) * ex / 2
