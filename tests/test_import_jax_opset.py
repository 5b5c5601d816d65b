"""JAX's operator set (issue 17) at its kinks: every new mapping of verify/frameworks/jax.py measured against
jax.grad at dyadic points built to sit on ties and jumps (exact equality: there every float operation JAX does is
exact), and the smooth ones at their special points to float64 rounding.  The samples of
tests/test_framework_outputs.py (jax_samples) check each primitive off its kinks."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy
from jax import lax  # noqa: E402

import verify  # noqa: E402
from verify.errors import VerifyError  # noqa: E402
from import_helpers import assert_kinks_explicit, close, exact_equal  # noqa: E402


def a(x):
    return jnp.asarray(np.asarray(x, dtype=np.float64))


def pool(t, op=lax.max, init=-jnp.inf):
    return lax.reduce_window(t, init, op, (1, 2), (1, 1), ((0, 0), (0, 1)))


X = a([[2., 2., 1., 2.], [0., 0., 0., 0.]])          # ties everywhere, integers (jumps of the steps)
Y = a([[2., 0., 2., 2.], [-1., 0., 1., 0.]])
W = jnp.arange(1., 9.).reshape(2, 4)

TIES = {
    "cummax": lambda x, y: lax.cummax(x, 1) * W,
    "cummin reverse": lambda x, y: lax.cummin(y, 1, reverse=True) * W,
    "cumsum cumprod": lambda x, y: jnp.cumsum(x, 0) * W + jnp.cumprod(y + 1, 1),
    "top_k": lambda x, y: jnp.concatenate([lax.top_k(x, 3)[0], lax.top_k(y, 2)[0]], 1),
    "approx_max_k / approx_min_k": lambda x, y: jnp.concatenate([lax.approx_max_k(x, 3)[0],
                                                                  lax.approx_min_k(y, 2)[0]], 1),
    "scatter-max": lambda x, y: x.at[jnp.array([1, 1, 3, 0])].max(y[0]),
    "scatter-min": lambda x, y: y.at[jnp.array([0, 0, 2, 2])].min(x[1] - 1),
    "scatter-add / scatter": lambda x, y: x[0].at[jnp.array([1, 1, 3])].add(y[0, :3]).at[jnp.array([0, 2])].set(
        y[1, :2]),
    # JAX differentiates scatter-mul only with unique indices
    "scatter-mul": lambda x, y: x[0].at[jnp.array([1, 0, 3])].multiply(y[1, 1:], unique_indices=True),
    "select_and_gather_add (a max-pool JVP)": lambda x, y: jax.jvp(pool, (x,), (y,))[1],
    "select_and_scatter_add (a max-pool VJP)": lambda x, y: jax.vjp(pool, x)[1](y[:, :4])[0],
    "min-pool VJP": lambda x, y: jax.vjp(lambda t: pool(t, lax.min, jnp.inf), y)[1](x)[0],
    "floor ceil round": lambda x, y: (jnp.floor(x / 2) + jnp.ceil(y / 2) + jnp.round(y / 2)
                                      + lax.round(x / 4, lax.RoundingMethod.AWAY_FROM_ZERO)) * x,
    "rem at a jump": lambda x, y: lax.rem(x + 2, y + 3),
    "reduce_prod with zeros": lambda x, y: jnp.prod(x * y, 1),
    "interior pad": lambda x, y: lax.pad(x, 0.5, ((0, 0, 0), (1, -1, 2))) * lax.pad(y, 0.0, ((0, 0, 0), (1, -1, 2))),
    "remat2": lambda x, y: jax.checkpoint(lambda u, v: jnp.maximum(u, v) * u)(x, y),
}


def weighted(fn):
    shape = fn(X, Y).shape
    w = jnp.arange(1., 1. + int(np.prod(shape))).reshape(shape)
    return lambda x, y: jnp.sum(fn(x, y) * w)


@pytest.mark.parametrize("name", sorted(TIES))
def test_new_primitives_match_jax_exactly_at_ties_and_jumps(name):
    f = weighted(TIES[name])
    imp = verify.from_jax(f, X, Y)
    assert_kinks_explicit(imp.program)
    g = verify.grad(imp.program, imp.point)
    value, grads = jax.value_and_grad(f, argnums=(0, 1))(X, Y)
    exact_equal(np.array(g.values[0]), np.array(value), f"{name} value")
    for ours, theirs, what in zip(g.gradient, grads, ("d/dx", "d/dy")):
        exact_equal(ours, np.asarray(theirs), f"{name} {what}")


SMOOTH = {
    "asin acos atan": (lambda t: jnp.arcsin(t) + jnp.arccos(t) * t + jnp.arctan(t * 4), [-0.5, 0., 0.25, 0.75]),
    "sinh cosh tan": (lambda t: jnp.sinh(t) + jnp.cosh(t) * t + jnp.tan(t), [-1., 0., 0.5, 1.5]),
    "asinh acosh atanh": (lambda t: jnp.arcsinh(t) + jnp.arccosh(t + 3) + jnp.arctanh(t / 2), [-1., 0., 0.5, 1.5]),
    "cbrt": (jnp.cbrt, [-8., -0.125, 1., 27.]),
    "atan2 on the axes": (lambda t: jnp.arctan2(t, t[::-1] - 0.5), [0., -1., 1., 0.]),
    "i0e at 0": (jax.scipy.special.i0e, [0., -1., 1., 3.]),
    "i1e at 0": (jax.scipy.special.i1e, [0., -1., 1., 3.]),
    "lgamma digamma": (lambda t: jax.scipy.special.gammaln(t) + jax.scipy.special.digamma(t), [0.5, 1., 2.5, 7.]),
    "erf_inv": (jax.scipy.special.erfinv, [-0.5, 0., 0.25, 0.875]),
    "cumlogsumexp": (lambda t: lax.cumlogsumexp(t), [0., 0., 1., -1.]),
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_smooth_primitives_match_jax(name):
    fn, pts = SMOOTH[name]
    x = a(pts)
    w = jnp.arange(1., 5.)

    def f(t):
        return jnp.sum(fn(t) * w)
    imp = verify.from_jax(f, x)
    g = verify.grad(imp.program, imp.point, number="ball")
    value, grad = jax.value_and_grad(f)(x)
    close(np.array(g.values[0]), np.array(value), f"{name} value")
    close(g.gradient[0], np.asarray(grad), f"{name} gradient")


def test_an_unstable_sort_is_undecided_at_a_tie_and_exact_off_ties():
    def f(t):
        return jnp.sum(lax.sort(t, is_stable=False) * jnp.arange(1., 5.))
    imp = verify.from_jax(f, a([3., 1., 2., 0.]))
    g = verify.grad(imp.program, imp.point)
    exact_equal(g.gradient[0], np.asarray(jax.grad(f)(a([3., 1., 2., 0.]))), "off ties")
    with pytest.raises(VerifyError, match="tied elements|not determined"):
        verify.grad(imp.program, [np.array([1., 1., 2., 0.])])


@pytest.mark.parametrize("fn, words", [
    (lambda t: jnp.nextafter(t, 3.0), "float format"),
    (lambda t: jax.scipy.special.betainc(t, 2.0, 0.5), "incomplete beta"),
    (lambda t: t.at[jnp.array([0, 0])].set(t[1:3]), "two updates land on one position"),
    (lambda t: jnp.cbrt(t), "positive"),
])
def test_refusals_say_why(fn, words):
    with pytest.raises(VerifyError, match=words):
        imp = verify.from_jax(lambda t: jnp.sum(fn(t)), a([0., 1., 2., 3.]))
        verify.grad(imp.program, imp.point)
