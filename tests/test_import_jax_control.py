"""JAX control flow imported as the real-number programs it means (against live JAX, float64).

lax.scan and fori_loop are unrolled (their length is fixed at trace time); lax.cond on a comparison of reals
is a selection (where), at the tie too; lax.cond / switch with an index known at import time is its branch; a
while_loop runs at import time while its predicate is an integer one, and is refused when the predicate depends
on real values.  An RNN written with lax.scan and jnp.take imports, agrees with jax.grad and audits.
"""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

import verify  # noqa: E402
from verify.frameworks import ImportFailure, from_jax  # noqa: E402
from import_helpers import close, exact_equal  # noqa: E402


def a(x):
    return jnp.asarray(np.asarray(x, dtype=np.float64))


def both(f, *args):
    """(verify's value and gradient, JAX's) at ``args`` (gradients with respect to every argument)."""
    imp = from_jax(f, *args)
    g = verify.grad(imp.program, imp.point)
    v, jg = jax.value_and_grad(f, argnums=tuple(range(len(args))))(*args)
    return (g.values[0], g.gradient), (float(v), [np.asarray(x) for x in jg]), imp


def scan_tanh(x, w):
    def body(c, xi):
        c = jnp.tanh(c @ w + xi)
        return c, jnp.maximum(c, 0.).sum()
    c, ys = lax.scan(body, jnp.zeros(3), x)
    return ys.sum() + c.sum()


def test_scan_is_unrolled_and_agrees_with_jax():
    rng = np.random.default_rng(0)
    (v, g), (jv, jg), imp = both(scan_tanh, a(rng.normal(size=(4, 3))), a(rng.normal(size=(3, 3))))
    close([v], [jv], "value")
    for ours, theirs in zip(g, jg):
        close(ours, theirs, "gradient")
    assert sum(e.prim == "tanh" for e in imp.program.eqns) == 4         # the body, once per step
    assert any("scan[3]" in o.module for o in imp.origins)              # each step named in the origins


def test_a_reverse_scan_with_a_carry_and_outputs():
    def f(x):
        c, ys = lax.scan(lambda c, xi: (c * xi + 1, c), 1.0, x, reverse=True)
        return c + ys.sum()
    (v, g), (jv, jg), _ = both(f, a([0.5, 1., 2.]))
    exact_equal([v], [jv], "value")                  # dyadic data: float64 is exact here
    exact_equal(g[0], jg[0], "gradient")


def test_fori_loop_with_static_bounds():
    def f(x):
        return lax.fori_loop(0, 3, lambda i, c: c * 2 + i, x).sum()
    (v, g), (jv, jg), _ = both(f, a([0.5, 1., 2.]))
    exact_equal([v], [jv])
    exact_equal(g[0], jg[0])


@pytest.mark.parametrize("x0", [0.5, -0.5, 0.0])
def test_cond_on_a_comparison_of_reals_is_a_selection(x0):
    def f(x):
        return lax.cond(x[0] > 0, lambda y: y * 2 + jnp.abs(y), lambda y: y - 1, x).sum()
    (v, g), (jv, jg), imp = both(f, a([x0, 1., 2.]))
    exact_equal([v], [jv])
    exact_equal(g[0], jg[0])            # at 0 too: the comparison's side is JAX's
    assert any(e.prim == "where" for e in imp.program.eqns)


def test_cond_and_switch_with_an_index_known_at_import_time():
    def f(x, k):
        return lax.switch(k, [lambda y: y * 3, lambda y: jnp.sin(y), lambda y: y * y], x).sum()
    for k in range(3):
        imp = from_jax(f, a([0.25, 1.5]), jnp.asarray(k))
        g = verify.grad(imp.program, imp.point)
        close(g.gradient[0], jax.grad(f)(a([0.25, 1.5]), jnp.asarray(k)))
        assert not any(e.prim == "where" for e in imp.program.eqns)


def test_a_while_loop_with_an_integer_predicate_runs_at_import_time():
    def f(x):
        return lax.while_loop(lambda c: c[1] < 10, lambda c: (c[0] * 2, c[1] + 1), (x, 0))[0].sum()
    imp = from_jax(f, a([0.5, 1., 2.]))
    assert verify.evaluate(imp.program, imp.point).values[0] == 3584          # 3.5 * 2^10
    assert list(verify.grad(imp.program, imp.point).gradient[0]) == [1024] * 3


def test_a_while_loop_on_real_values_is_refused_with_the_reason():
    def f(x):
        return lax.while_loop(lambda c: c[0] < 10, lambda c: c * 2, x).sum()
    with pytest.raises(ImportFailure, match="trip count changes with the inputs"):
        from_jax(f, a([0.5, 1., 2.]))


def rnn(params, tokens, labels):
    emb, wh, wo = params

    def step(h, t):
        h = jnp.tanh(jnp.take(emb, t, axis=0) + h @ wh)
        return h, h @ wo
    _, logits = lax.scan(step, jnp.zeros(wh.shape[0]), tokens)
    lp = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(lp, labels[:, None], axis=1).sum()


def test_an_rnn_with_scan_and_take_imports_agrees_and_audits():
    rng = np.random.default_rng(1)
    params = tuple(a(rng.normal(size=s)) for s in ((5, 4), (4, 4), (4, 5)))
    tokens, labels = jnp.asarray([1, 3, 0, 2]), jnp.asarray([3, 0, 2, 4])
    imp = from_jax(rnn, params, tokens, labels)
    g = verify.grad(imp.program, imp.point)
    v, jg = jax.value_and_grad(rnn)(params, tokens, labels)
    close([g.values[0]], [float(v)])
    for ours, theirs in zip(g.gradient, jax.tree_util.tree_leaves(jg)):
        close(ours, theirs)
    rep = verify.audit(rnn, params, tokens, labels)
    assert rep.exact_kinks == [] and rep.verdict_word in ("PROVED", "UNDECIDED")
