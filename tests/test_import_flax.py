"""A CNN written with flax (linen: Conv, relu, max_pool, Dense, softmax cross-entropy), parameters as flax's
nested dict: imported through its jaxpr, values and gradients equal to JAX's float64, also where a max-pool window
holds four of relu's zeros (JAX's first-element rule), and audited: the gradient JAX returns is the selection
gradient within the proved bound."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
nn = pytest.importorskip("flax.linen")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import verify  # noqa: E402
from verify.frameworks import from_jax  # noqa: E402
from import_helpers import close  # noqa: E402


class CNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        f64 = {"param_dtype": jnp.float64, "dtype": jnp.float64}
        x = nn.relu(nn.Conv(features=4, kernel_size=(3, 3), **f64)(x))
        x = nn.max_pool(x, window_shape=(2, 2), strides=(2, 2))
        return nn.Dense(10, **f64)(x.reshape((x.shape[0], -1)))


MODEL = CNN()
LABELS = jnp.array([0, 3, 5, 9])


def loss(params, x):
    logp = jax.nn.log_softmax(MODEL.apply(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, LABELS[:, None], axis=1))


def digits(seed):
    """4 images of 8 x 8 pixels k/16 (exact dyadic values): blank corners make max-pool windows of relu zeros."""
    x = np.random.RandomState(seed).randint(0, 17, size=(4, 8, 8, 1)) / 16.0
    x[:, :3, :3, :] = 0.0
    return jnp.asarray(x)


def test_flax_cnn_values_and_gradients_are_jaxs():
    x = digits(0)
    params = MODEL.init(jax.random.PRNGKey(0), x)
    imp = from_jax(loss, params, x)
    g = verify.grad(imp.program, imp.point)
    v, (gp, gx) = jax.value_and_grad(loss, argnums=(0, 1))(params, x)
    close(g.values[0], np.asarray(v), "loss")
    theirs = jax.tree_util.tree_leaves(gp) + [gx]
    assert len(g.gradient) == len(theirs)
    for ours, t in zip(g.gradient, theirs):
        close(ours, np.asarray(t), "gradient")


def test_flax_cnn_at_a_tie_of_relu_zeros_is_exact_and_audits():
    x = digits(1)
    params = MODEL.init(jax.random.PRNGKey(1), x)
    params = jax.tree_util.tree_map(lambda p: jnp.round(p * 64) / 64, params)     # dyadic weights
    # a conv bias of -1 makes the first channel's relu 0 on the blank corner: a max-pool window of four zeros
    params["params"]["Conv_0"]["bias"] = params["params"]["Conv_0"]["bias"].at[0].set(-1.0)
    rep = verify.audit(loss, params, x, framework="jax")
    assert rep.verdict_word == "PROVED" and rep.kinks().site_classes.get("plateau", 0) > 0
    # with exact arithmetic throughout, the conv kernel's exact gradient is JAX's to float64 rounding
    imp = from_jax(lambda k: loss({"params": {**params["params"], "Conv_0": {**params["params"]["Conv_0"],
                                                                              "kernel": k}}}, x),
                   params["params"]["Conv_0"]["kernel"])
    ours = verify.grad(imp.program, imp.point).gradient[0]
    theirs = jax.grad(loss)(params, x)["params"]["Conv_0"]["kernel"]
    close(ours, np.asarray(theirs), "conv kernel at the tie")
