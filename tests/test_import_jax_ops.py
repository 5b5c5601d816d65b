"""JAX primitives beyond the 2-d pooling and constant-bound fast paths, against live JAX (float64): window
reductions of any rank (max and min ties to the first extreme element, padding never wins), generic reduce and
reduce_window with an add / mul body, pad with a real padding value, lax.clamp with array bounds, x ** y with a
real exponent, dynamic_update_slice, device_put and reduce_precision.  Values and gradients equal JAX's exactly
at dyadic points (ties included), to the float64 bound elsewhere."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

import verify  # noqa: E402
from verify.frameworks import from_jax  # noqa: E402
from import_helpers import close, exact_equal  # noqa: E402


def a(x):
    return jnp.asarray(np.asarray(x, dtype=np.float64))


def compare(f, *args, exact=True):
    imp = from_jax(f, *args)
    g = verify.grad(imp.program, imp.point)
    v, jg = jax.value_and_grad(f, argnums=tuple(range(len(args))))(*args)
    check = exact_equal if exact else close
    check([g.values[0]], [float(v)], "value")
    for ours, theirs in zip(g.gradient, jg):
        check(ours, np.asarray(theirs), "gradient")
    return imp


def compare_to(f, same, *args):
    """f imported, against JAX's value of f and JAX's gradient of ``same``, the same function written with
    operations JAX differentiates."""
    imp = from_jax(f, *args)
    g = verify.grad(imp.program, imp.point)
    exact_equal([g.values[0]], [float(f(*args))], "value")
    for ours, theirs in zip(g.gradient, jax.grad(same, argnums=tuple(range(len(args))))(*args)):
        exact_equal(ours, np.asarray(theirs), "gradient")


W = np.array([[1., -1., 1., 1., 0.5], [2., 2., -3., 2., 0.], [0., 0., 0., 0., 0.]])      # ties in windows
WEIGHTS = a(np.arange(1., 16.).reshape(3, 5) / 8)


@pytest.mark.parametrize("pad", [((0, 0), (0, 0)), ((1, 0), (1, 1)), ((1, 1), (1, 0))])
@pytest.mark.parametrize("reducer", ["max", "min"])
def test_window_max_and_min_of_a_2d_array_ties_and_padding(pad, reducer):
    init, op = (-jnp.inf, lax.max) if reducer == "max" else (jnp.inf, lax.min)

    def f(x):
        y = lax.reduce_window(x, init, op, (2, 2), (1, 1), pad)
        return (y * WEIGHTS[:y.shape[0], :y.shape[1]]).sum() if y.shape[0] <= 3 and y.shape[1] <= 5 else y.sum()
    compare(f, a(W))


def test_a_window_of_padding_only_is_refused():
    # its value is the init value -inf: not a real number
    def f(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (2, 2), (1, 1), ((0, 0), (2, 0))).sum()
    with pytest.raises(verify.frameworks.ImportFailure, match="padding only"):
        from_jax(f, a(W))


def test_window_max_of_1d_and_3d_arrays_with_strides_and_dilation():
    def f1(x):
        return (lax.reduce_window(x, -jnp.inf, lax.max, (3,), (2,), ((1, 1),)) * a([1., 2., 3., 4.])).sum()
    compare(f1, a([1., 3., 3., -1., 0., 2., 2.]))

    x3 = a(np.array([[[1., 0., 1., 2.], [0., 0., 0., 0.]], [[1., 5., 1., -2.], [0., 1., 0., 1.]]]))

    def f3(x):
        y = lax.reduce_window(x, -jnp.inf, lax.max, (2, 1, 2), (1, 1, 2), ((0, 0), (0, 0), (0, 0)))
        return (y * a(np.arange(1., y.size + 1).reshape(y.shape))).sum()
    compare(f3, x3)

    def dilated(x):      # JAX has no VJP for a dilated max window: forward mode is its derivative
        y = lax.reduce_window(x, -jnp.inf, lax.max, (2, 1, 2), (1, 1, 1), ((0, 0), (0, 0), (0, 0)),
                              window_dilation=(1, 1, 2))
        return (y * a(np.arange(1., y.size + 1).reshape(y.shape))).sum()
    imp = from_jax(dilated, x3)
    exact_equal(verify.grad(imp.program, imp.point).gradient[0], jax.jacfwd(dilated)(x3))


def test_window_sum_and_product_and_a_generic_reduce():
    x = a([[0.5, -1., 2.], [1.5, 0.25, -0.5]])

    def wsum(x):
        return (lax.reduce_window(x, 0., lax.add, (1, 2), (1, 1), ((0, 0), (1, 0))) ** 2).sum()
    compare(wsum, x)

    # JAX differentiates neither a generic window product nor a generic reduce with a mul body: the oracle is
    # JAX's gradient of the same function written with products of slices
    def wprod(x):
        return lax.reduce_window(x, 1., lax.mul, (2, 2), (1, 1), "VALID").sum()

    def wprod_slices(x):
        return (x[:-1, :-1] * x[:-1, 1:] * x[1:, :-1] * x[1:, 1:]).sum()
    compare_to(wprod, wprod_slices, x)

    def red(x):
        return lax.reduce(x, 3., lax.add, (0,)).sum() + lax.reduce(x, 2., lax.mul, (1,)).sum()

    def red_slices(x):
        return (x.sum(0) + 3.).sum() + (x[:, 0] * x[:, 1] * x[:, 2] * 2.).sum()
    compare_to(red, red_slices, x)


def test_pad_with_a_real_padding_value():
    def f(x, v):
        return (lax.pad(x, v, ((1, 2, 0), (0, 1, 0))) * a(np.arange(20.).reshape(5, 4) / 4)).sum()
    compare(f, a([[1., 2., 3.], [4., 5., 6.]]), a(0.5))


def test_clamp_with_array_bounds():
    def f(lo, x, hi):
        return (lax.clamp(lo, x, hi) * a([1., 2., 3.])).sum()
    # off the bounds: exactly JAX's
    compare(f, a([0., 0., 0.]), a([-1., 0.5, 2.]), a([1., 1., 1.]))
    # at a tie JAX's derivative for the bound is 0, which no selection gives: the operand's is the same (0)
    imp = from_jax(f, a([0., 0., 0.]), a([0., 0.5, 1.]), a([1., 1., 1.]))
    g = verify.grad(imp.program, imp.point).gradient
    jg = jax.grad(f, argnums=(0, 1, 2))(a([0., 0., 0.]), a([0., 0.5, 1.]), a([1., 1., 1.]))
    exact_equal(g[1], jg[1], "operand")
    assert list(g[0]) == [1, 0, 0] and list(np.asarray(jg[0])) == [0., 0., 0.]
    # lo > hi: XLA's clamp is min(max(x, lo), hi), so hi everywhere (the import once took lo here); the value
    # is JAX's exactly, and the derivative goes to hi, where JAX's JVP gives none (its own rule, not the
    # derivative of its function)
    lo_, x_, hi_ = a([2., 2., 2.]), a([-1., 0.5, 3.]), a([-0.5, 0.25, 1.])
    imp = from_jax(f, lo_, x_, hi_)
    assert float(verify.evaluate(imp.program, imp.point).values[0]) == float(f(lo_, x_, hi_)) == -0.5 + 0.5 + 3
    assert list(verify.grad(imp.program, imp.point).gradient[2]) == [1, 2, 3]


def test_a_real_exponent_and_its_domain():
    def f(x, y):
        return (x ** y).sum()
    compare(f, a([0.5, 2., 3.]), a([1.5, -0.5, 2.]), exact=False)
    imp = from_jax(f, a([-0.5, 2.]), a([1.5, 1.]))
    with pytest.raises(verify.DomainError):
        verify.evaluate(imp.program, imp.point)


def test_dynamic_update_slice_device_put_and_reduce_precision():
    def f(x, u):
        y = lax.dynamic_update_slice(x, u, (1, 2))
        y = jax.device_put(y)
        return (lax.reduce_precision(y, exponent_bits=11, mantissa_bits=52) * a(np.arange(12.).reshape(3, 4))).sum()
    compare(f, a(np.ones((3, 4)) / 2), a([[2., 3.], [4., 5.]]))
