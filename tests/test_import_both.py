"""The same model written in PyTorch and in JAX, imported from both: where the two frameworks' kink semantics
agree the two programs compute exactly the same value and selection gradient; where they differ (abs at 0,
maximum(x, 0) against relu) the programs differ exactly as the frameworks do.  Skipped unless both are
installed."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from flint import fmpq  # noqa: E402

import verify  # noqa: E402

D = torch.float64


def test_a_cnn_imported_from_both_frameworks_is_the_same_real_function():
    rng = np.random.default_rng(0)
    w = rng.integers(-4, 5, size=(2, 1, 3, 3)) / 4
    fc = rng.integers(-4, 5, size=(8, 3)) / 4
    x = rng.integers(0, 2, size=(2, 1, 6, 6)).astype(np.float64)      # tied windows and zeros

    def torch_f(x):
        h = torch.nn.functional.conv2d(x, torch.tensor(w))
        h = torch.nn.functional.max_pool2d(torch.relu(h), 2)
        return (h.flatten(1) @ torch.tensor(fc)).sum()

    def jax_f(x):
        h = lax.conv_general_dilated(x, jnp.asarray(w), (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))
        h = lax.reduce_window(jax.nn.relu(h), -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        return (h.reshape(2, -1) @ jnp.asarray(fc)).sum()

    a = verify.from_torch(torch_f, torch.tensor(x))
    b = verify.from_jax(jax_f, jnp.asarray(x))
    ga, gb = verify.grad(a.program, [x]), verify.grad(b.program, [x])
    assert ga.exact and gb.exact and ga.values == gb.values
    assert ga.gradient[0].tolist() == gb.gradient[0].tolist()
    tg = torch.func.grad(torch_f)(torch.tensor(x)).numpy()
    assert np.array_equal(np.vectorize(float)(ga.gradient[0]), tg)      # and both are the frameworks' own


def test_where_the_frameworks_differ_the_programs_differ():
    x = np.array([0., 0., 1.])
    a = verify.from_torch(lambda x: (x.abs() + torch.maximum(x, torch.zeros_like(x))).sum(), torch.tensor(x))
    b = verify.from_jax(lambda x: (jnp.abs(x) + jax.nn.relu(x)).sum(), jnp.asarray(x))
    half = fmpq(1, 2)
    assert verify.grad(a.program, [x]).gradient[0].tolist() == [half, half, 2]   # abs'(0) = 0, max tie 1/2
    assert verify.grad(b.program, [x]).gradient[0].tolist() == [1, 1, 2]         # abs'(0) = 1, relu'(0) = 0
