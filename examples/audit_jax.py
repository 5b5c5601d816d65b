"""Audit a JAX function:  verify audit examples/audit_jax.py:make

The same situation in JAX: a two-layer network whose first-layer pre-activations are exactly 0 for one
neuron of sample 1, and 0 only in float32 for one neuron of sample 0.  JAX's own relu (a custom_jvp with
derivative 0 at 0) and jnp.maximum (1/2 at a tie) differ at kinks; the audit reads the kink rule from the
function's own JVP.
"""
import jax
import jax.numpy as jnp


def loss(params, x, labels):
    h = jax.nn.relu(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    return -jnp.sum(jax.nn.log_softmax(logits)[jnp.arange(labels.shape[0]), labels])


def make():
    w1 = jnp.array([[1.0, 1.0, 0.5, -0.25], [1.0, 0.0, 0.25, 0.5], [-1.0, 0.0, -0.5, 0.75]], dtype=jnp.float32)
    b1 = jnp.array([0.0, -0.5, 0.125, 0.0], dtype=jnp.float32)
    w2 = jnp.array([[0.5, -0.5], [1.0, 0.25], [-0.75, 0.5], [0.25, 1.0]], dtype=jnp.float32)
    b2 = jnp.array([0.0, 0.125], dtype=jnp.float32)
    x = jnp.array([[2.0 ** -30, 1.0, 1.0], [0.5, 0.25, 0.125]], dtype=jnp.float32)
    labels = jnp.array([0, 1])
    params = {"w1": w1, "b1": b1, "w2": w2, "b2": b2}
    return loss, (params, x, labels)
