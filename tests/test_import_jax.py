"""verify.from_jax against live JAX (float64: jax_enable_x64, CPU).

Every primitive mapping is measured against jax.grad at a point on its kinks (ties) and off them; custom_jvp
and custom_vjp functions (jax.nn.relu, jax.nn.relu6, user rules) take their kinks from their rules; whole
models (an MLP, a CNN with max-pool, a model with sort / where / clip / hard_tanh / relu6 / abs / leaky_relu,
softmax cross-entropy, layer norm) round-trip: value and gradient equal JAX's at random points to float64
rounding (tests/import_helpers.py states the bound) and exactly at dyadic points built to sit on kinks.
Skipped when JAX is not installed.
"""
import json
import os
import pathlib

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

import verify  # noqa: E402
from verify.frameworks import ImportFailure  # noqa: E402
from verify.rational import to_fmpq  # noqa: E402
from import_helpers import assert_kinks_explicit, close, exact_equal  # noqa: E402


def a(x):
    return jnp.asarray(np.asarray(x, dtype=np.float64))


def run_jax(f, args):
    """Value and the gradient with respect to every float leaf of the arguments, in tree order."""
    floats = [i for i, x in enumerate(args) if any(jnp.issubdtype(jnp.asarray(v).dtype, jnp.floating)
                                                    for v in jax.tree_util.tree_leaves(x))]
    # jit: one compilation instead of one per primitive (JAX's AD rules are applied before compiling, and on
    # the dyadic tie points every float operation is exact, so the comparisons are unchanged)
    v, g = jax.jit(jax.value_and_grad(f, argnums=tuple(floats)))(*args)
    return float(v), [np.asarray(x) for x in jax.tree_util.tree_leaves(g)]


def run_ours(imp, number="exact", point=None):
    g = verify.grad(imp.program, imp.point if point is None else point, number=number)
    return g.values[0], g.gradient


def leaves(*args):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(args)
            if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]


# ------------------------------------------------------------------------------------- op by op, at a tie

X_TIE = a([[-1., 0., 1.], [6., 0., -2.]])
Y_TIE = a([[-1., 1., 1.], [5., 0., -3.]])


def pool(x, k=2, s=1, pad="VALID"):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, k, k), (1, 1, s, s), pad)


PL = {
    "jax.nn.relu (custom_jvp)": lambda x, y: jax.nn.relu(x),
    "jax.nn.relu6 (custom_jvp)": lambda x, y: jax.nn.relu6(x),
    "leaky_relu": lambda x, y: jax.nn.leaky_relu(x, 0.25),
    "hard_tanh": lambda x, y: jax.nn.hard_tanh(x),
    "clip": lambda x, y: jnp.clip(x, 0., 1.),
    "lax.clamp": lambda x, y: lax.clamp(0., x, 1.),
    "abs": lambda x, y: jnp.abs(x),
    "sign": lambda x, y: jnp.sign(x) * y,
    "maximum": lambda x, y: jnp.maximum(x, y),
    "minimum": lambda x, y: jnp.minimum(x, y),
    "maximum(x, 0)": lambda x, y: jnp.maximum(x, 0.),
    "where >": lambda x, y: jnp.where(x > 0, x, 0.),
    "where >=": lambda x, y: jnp.where(x >= y, x, y),
    "where and": lambda x, y: jnp.where((x > 0) & (x < 1), x, y),
    "where or not": lambda x, y: jnp.where((x < 0) | ~(y > 0), x, y),
    "bool cast": lambda x, y: (x > 0).astype(jnp.float64) * x,
    "max over an axis": lambda x, y: jnp.concatenate([x, y]).max(0),
    "min over an axis": lambda x, y: jnp.concatenate([x, y]).min(1),
    "max of all": lambda x, y: jnp.stack([x, y]).max(),
    "sort": lambda x, y: jnp.sort(jnp.concatenate([x, y], 1), axis=1)[:, :4],
    "sort descending": lambda x, y: jnp.sort(jnp.concatenate([x, y], 1), axis=1, descending=True)[:, 1:4],
    "max-pool": lambda x, y: pool(jnp.concatenate([x, y, x], 1)[None, None])[0, 0, :, :3],
    "max-pool padded": lambda x, y: pool(jnp.concatenate([x, y], 1)[None, None], 3, 2, "SAME")[0, 0, :, :3],
    "avg-pool": lambda x, y: lax.reduce_window(jnp.concatenate([x, y], 1)[None, None], 0., lax.add, (1, 1, 2, 2),
                                               (1, 1, 1, 1), "VALID")[0, 0, :, :3] / 4,
    "structure": lambda x, y: (jnp.flip(x, 1) + jnp.roll(y, 1, 0) + x.T.reshape(2, 3) + jnp.pad(x, 1)[1:3, 1:4]
                               + jnp.tile(x[:, :1], (1, 3))),
    "gather": lambda x, y: x[jnp.array([1, 0])] + jnp.take_along_axis(y, jnp.array([[2], [0]]), axis=1),
    "elu at 0": lambda x, y: jax.nn.elu(x * (x == 0)),
}
SMOOTH = {
    "elu": lambda x, y: jax.nn.elu(x, 0.5),
    "gelu": lambda x, y: jax.nn.gelu(x),
    "gelu erf": lambda x, y: jax.nn.gelu(x, approximate=False),
    "silu": lambda x, y: jax.nn.silu(x),
    "softplus (custom_jvp logaddexp)": lambda x, y: jax.nn.softplus(x),
    "sigmoid tanh": lambda x, y: jax.nn.sigmoid(x) * jnp.tanh(y),
    "softmax": lambda x, y: jax.nn.softmax(x, axis=1),
    "log_softmax": lambda x, y: jax.nn.log_softmax(y, axis=0),
    "logsumexp": lambda x, y: jax.scipy.special.logsumexp(x, axis=1, keepdims=True) * y,
    "standardize": lambda x, y: jax.nn.standardize(x, axis=1),
    "var": lambda x, y: jnp.var(x, axis=1, keepdims=True) * y,
    "sqrt rsqrt": lambda x, y: jnp.sqrt(x * x + 1) + lax.rsqrt(y * y + 2),
    "exp log": lambda x, y: jnp.exp(x) + jnp.log1p(y * y) + jnp.expm1(x / 4),
    "pow": lambda x, y: x ** 3 + (y * y + 1) ** -0.5 + 1 / (x * x + 1) + (y * y + 1) ** 2.0,
    "erf erfc": lambda x, y: jax.scipy.special.erf(x) + jax.scipy.special.erfc(y),
}


def weighted(fn):
    shape = fn(X_TIE, Y_TIE).shape
    w = jnp.arange(1., 1. + int(np.prod(shape))).reshape(shape)
    return lambda x, y: (fn(x, y) * w).sum()


@pytest.mark.parametrize("name", sorted(PL) + sorted(SMOOTH))
def test_op_matches_jax_at_a_tie_and_off_the_kinks(name):
    """One import per op; the program is run at the tie point (exact equality for piecewise-linear ops, float64
    rounding for the others) and at a random point (float64 rounding)."""
    f = weighted({**PL, **SMOOTH}[name])
    imp = verify.from_jax(f, X_TIE, Y_TIE)
    assert_kinks_explicit(imp.program)
    exact = name in PL
    value, grads = run_ours(imp, "exact" if exact else "ball")
    tv, tg = run_jax(f, (X_TIE, Y_TIE))
    check = exact_equal if exact else close
    check(np.array(value), np.array(tv), f"{name} value")
    for o, g, what in zip(grads, tg, ("d/dx", "d/dy")):
        check(o, g, f"{name} {what}")
    rng = np.random.default_rng(sum(map(ord, name)))
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    value, grads = run_ours(imp, "ball", [x, y])
    tv, tg = run_jax(f, (a(x), a(y)))
    close(np.array(value), np.array(tv), f"{name} value off the kinks")
    for o, g in zip(grads, tg):
        close(o, g, f"{name} gradient off the kinks")


def test_kink_params_are_written_explicitly():
    f = weighted(lambda x, y: jax.nn.relu(x) + jnp.clip(y, 0., 1.) + jnp.maximum(x, y) + jnp.abs(x)
                 + lax.clamp(-1., y, 1.) + jax.nn.relu6(y))
    imp = verify.from_jax(f, X_TIE, Y_TIE)
    text = verify.to_text(imp.program)
    for part in ("relu(x, alpha=0)", "relu(y, alpha=1/2)", "tie='split'", "abs(x, at_zero=1)",
                 "clamp(y, at_hi=0, at_lo=0, hi=1, lo=-1)", "tie='last'"):
        assert part in text, part
    for conv in ("torch", "jax", "tf"):
        assert [g.tolist() for g in verify.grad(imp.program, imp.point, convention=conv).gradient] == \
            [g.tolist() for g in run_ours(imp)[1]]


# ------------------------------------------------------------------------------------ custom rules

@jax.custom_jvp
def relu_ge(x):
    return jnp.maximum(x, 0.)


relu_ge.defjvps(lambda g, ans, x: jnp.where(x >= 0, g, 0.))


@jax.custom_vjp
def clip_vjp(x):
    return jnp.minimum(jnp.maximum(x, -1.), 1.)


clip_vjp.defvjp(lambda x: (clip_vjp(x), x), lambda x, g: (jnp.where((x > -1) & (x <= 1), g, 0.),))


@jax.custom_jvp
def straight_through(x):
    return jnp.maximum(x, 0.)


straight_through.defjvps(lambda g, ans, x: g)


@pytest.mark.parametrize("fn, at_kinks", [
    (jax.nn.relu, [0.]),
    (jax.nn.relu6, [0., 6.]),
    (relu_ge, [0.]),
    (clip_vjp, [-1., 1.]),
])
def test_custom_rules_give_the_kinks(fn, at_kinks):
    """The derivative at a kink comes from the rule (jax.nn.relu: 0 at 0, although its forward is
    jnp.maximum(x, 0), whose own derivative there is 1/2), cross-checked against jax.grad."""
    x = a([-2., -1., 0., 1., 6., 7., 0.5] + at_kinks)
    f = lambda x: (fn(x) * jnp.arange(1., 1. + x.shape[0])).sum()   # noqa: E731
    imp = verify.from_jax(f, x)
    value, grads = run_ours(imp)
    tv, tg = run_jax(f, (x,))
    exact_equal(np.array(value), np.array(tv))
    exact_equal(grads[0], tg[0])
    notes = [imp.origins[k].note for k, _ in imp.nonsmooth()]
    assert notes and all("read from the rule" in n for n in notes)


def test_a_rule_that_is_not_a_derivative_is_refused():
    with pytest.raises(ImportFailure, match="straight-through"):
        verify.from_jax(lambda x: straight_through(x).sum(), a([1., -1.]))


# ------------------------------------------------------------------------------------- stop_gradient

def test_stop_gradient_only_in_a_max_shift():
    x = a([[1., 2., 2.], [0., -1., 3.]])
    for f in (lambda x: jax.nn.log_softmax(x).sum(), lambda x: (jax.nn.softmax(x) ** 2).sum(),
              lambda x: jax.scipy.special.logsumexp(x, axis=0).sum()):
        imp = verify.from_jax(f, x)
        assert not any(e.prim in ("amax", "max") for e in imp.program.eqns)     # the shift is gone
        value, grads = run_ours(imp, "ball")
        tv, tg = run_jax(f, (x,))
        close(np.array(value), np.array(tv))
        close(grads[0], tg[0])
    with pytest.raises(ImportFailure, match="stop_gradient"):
        verify.from_jax(lambda x: (x * lax.stop_gradient(x)).sum(), x)
    with pytest.raises(ImportFailure, match="stop_gradient"):
        verify.from_jax(lambda x: (x - lax.stop_gradient(x.max())).sum(), x)


# ---------------------------------------------------------------------------------------------- models

def mlp(params, x, c):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i + 1 < len(params):
            h = jax.nn.relu(h)
    return (h * c).sum()


def cnn(params, x, c):
    h = lax.conv_general_dilated(x, params["conv"], (1, 1), ((1, 1), (1, 1)),
                                 dimension_numbers=("NCHW", "OIHW", "NCHW")) + params["bias"][None, :, None, None]
    h = pool(jax.nn.relu(h), 2, 2)
    return ((h.reshape(h.shape[0], -1) @ params["fc"]) * c).sum()


def zoo(params, x, c):
    h = x @ params["w"] + params["b"]
    z = jnp.clip(h, -1., 1.) + jax.nn.hard_tanh(h) + jax.nn.relu6(h) + jnp.abs(h) + jax.nn.leaky_relu(h, 0.125)
    z = z + jnp.where(h > 0, h, -h / 2) + jnp.sort(h, axis=1) * c + lax.clamp(-2., h, 2.)
    return (z * c).sum() + jnp.maximum(h, 0.).max(axis=1).sum()


def cross_entropy(params, x, labels):
    logits = jax.nn.relu(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]
    logp = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(logp, labels[:, None], axis=1).mean()


def layer_norm(params, x, c):
    h = x @ params["w1"]
    m = h.mean(-1, keepdims=True)
    v = ((h - m) ** 2).mean(-1, keepdims=True)
    h = (h - m) / jnp.sqrt(v + 1e-5) * params["g"] + params["b"]
    return ((jax.nn.relu(h) @ params["w2"]) * c).sum()


def rand(rng, *shape):
    return a(rng.normal(size=shape))


def dyadic(rng, *shape):
    return a(rng.integers(-8, 9, size=shape) / 4)


_IMPORTED = {}


def check_model(f, args, exact):
    key = f.__name__ + str([np.shape(x) for x in jax.tree_util.tree_leaves(args)])
    if key not in _IMPORTED:
        _IMPORTED[key] = verify.from_jax(f, *args)
        assert_kinks_explicit(_IMPORTED[key].program)
    imp = _IMPORTED[key]
    value, grads = run_ours(imp, "exact" if exact else "ball", leaves(*args))
    tv, tg = run_jax(f, args)
    check = exact_equal if exact else close
    check(np.array(value), np.array(tv), "value")
    for o, g, info in zip(grads, tg, imp.inputs):
        check(o, g, info.source)
    return imp


def test_mlp():
    rng = np.random.default_rng(0)
    sizes = [5, 8, 8, 3]
    params = [(rand(rng, m, n), rand(rng, n)) for m, n in zip(sizes, sizes[1:])]
    imp = check_model(mlp, (params, rand(rng, 4, 5), rand(rng, 4, 3)), exact=False)
    assert [i.source for i in imp.inputs][:2] == ["params[0][0]", "params[0][1]"]
    params = [(dyadic(rng, m, n), dyadic(rng, n)) for m, n in zip(sizes, sizes[1:])]
    x = a(rng.integers(-4, 5, size=(4, 5)) / 2)
    w0, b0 = params[0]
    b0 = b0.at[::2].add(-(x @ w0 + b0)[0, ::2])                 # pre-activations exactly 0 at x
    params[0] = (w0, b0)
    assert int(((x @ w0 + b0) == 0).sum()) >= 4
    check_model(mlp, (params, x, a(rng.integers(-3, 4, size=(4, 3)))), exact=True)


def test_cnn_with_max_pool():
    rng = np.random.default_rng(1)
    params = {"conv": rand(rng, 2, 1, 3, 3), "bias": rand(rng, 2), "fc": rand(rng, 18, 3)}
    check_model(cnn, (params, rand(rng, 2, 1, 6, 6), rand(rng, 2, 3)), exact=False)
    params = {"conv": dyadic(rng, 2, 1, 3, 3), "bias": dyadic(rng, 2), "fc": dyadic(rng, 18, 3)}
    x = a(rng.integers(0, 2, size=(2, 1, 6, 6)))                    # 0/1 pixels: tied windows, zeros
    check_model(cnn, (params, x, a(rng.integers(-3, 4, size=(2, 3)))), exact=True)


def test_sort_where_clip_hard_tanh_relu6_abs_leaky_relu():
    rng = np.random.default_rng(2)
    check_model(zoo, ({"w": rand(rng, 4, 5), "b": rand(rng, 5)}, rand(rng, 3, 4), rand(rng, 3, 5)), exact=False)
    w = np.zeros((4, 5))
    w[0] = 1.
    params = {"w": a(w), "b": a([-1., 0., 1., -2., 6.])}           # h = x0 + b: every kink, ties for sort
    x = a([[0., 1., 2., 3.], [1., 0., 0., 0.], [-1., 0., 0., 0.]])
    check_model(zoo, (params, x, a(rng.integers(-3, 4, size=(3, 5)))), exact=True)


def test_softmax_cross_entropy():
    rng = np.random.default_rng(3)
    labels = jnp.array([0, 2, 1, 2])
    params = {"w1": rand(rng, 4, 6), "b1": rand(rng, 6), "w2": rand(rng, 6, 3), "b2": rand(rng, 3)}
    imp = check_model(cross_entropy, (params, rand(rng, 4, 4), labels), exact=False)
    assert len(imp.inputs) == 5                                      # labels are constants
    x = a(rng.integers(-2, 3, size=(4, 4)))
    params = {"w1": dyadic(rng, 4, 6), "b1": dyadic(rng, 6), "w2": dyadic(rng, 6, 3), "b2": dyadic(rng, 3)}
    params["b1"] = params["b1"].at[:3].add(-(x @ params["w1"] + params["b1"])[0, :3])
    assert int(((x @ params["w1"] + params["b1"]) == 0).sum()) >= 3   # relus on their kink
    check_model(cross_entropy, (params, x, labels), exact=False)


def test_layer_norm():
    rng = np.random.default_rng(4)
    params = {"w1": rand(rng, 4, 3), "g": rand(rng, 3), "b": rand(rng, 3), "w2": rand(rng, 3, 2)}
    check_model(layer_norm, (params, rand(rng, 3, 4), rand(rng, 3, 2)), exact=False)
    params = {"w1": a(np.eye(4)[:, :3]), "g": rand(rng, 3), "b": a(np.zeros(3)), "w2": rand(rng, 3, 2)}
    x = a([[1., 2., 3., 0.], [-1., 5., 2., 1.], [4., 4., 1., 0.]])   # an element equal to its row mean
    check_model(layer_norm, (params, x, rand(rng, 3, 2)), exact=False)


def test_constant_args_and_text_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    params = {"conv": rand(rng, 2, 1, 3, 3), "bias": rand(rng, 2), "fc": rand(rng, 18, 3)}
    x, c = rand(rng, 1, 1, 6, 6), rand(rng, 1, 3)
    imp = verify.from_jax(cnn, params, x, c, constant_args=(0,))
    assert [i.source for i in imp.inputs] == ["x", "c"]
    assert set(imp.program.arrays) >= {"params.conv", "params.bias", "params.fc"}
    P = imp.program
    P.arrays.save(os.path.join(tmp_path, P.arrays.file))
    path = os.path.join(tmp_path, "cnn.prog")
    with open(path, "w") as fh:
        fh.write(verify.to_text(P))
    assert verify.parse(path) == P
    value, grads = run_ours(imp, "exact")
    tv, tg = jax.value_and_grad(cnn, argnums=(1, 2))(params, x, c)
    close(np.array(value), np.array(tv))
    close(grads[0], tg[0])


def test_origins_name_the_call_and_the_source_line():
    imp = verify.from_jax(lambda x: jax.nn.log_softmax(jax.nn.relu(x)).sum(), a([[1., -1.]]))
    (k, origin), = imp.nonsmooth()
    assert origin.op == "max" and origin.module.endswith("relu") and "test_import_jax.py" in origin.source
    assert any(o.module == "log_softmax" for o in imp.origins)


# ---------------------------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("fn, words", [
    (lambda x: jnp.argmax(x).astype(jnp.float64) * x.sum(), "argmax"),
    (lambda x: jnp.nextafter(x, 4.0).sum(), "float format"),
    (lambda x: x.at[jnp.array([0, 0])].set(x[1:3]).sum(), "two updates land on one position"),
    (lambda x: jnp.where(x > 0, x, jnp.nan).sum(), "nan"),
    (lambda x: lax.while_loop(lambda v: v.sum() < 10, lambda v: v * 2, x).sum(), "trip count"),
    (lambda x: jax.scipy.special.gammainc(x * x + 1, 2.0).sum(), "incomplete gamma"),
    (lambda x: x[jnp.argsort(x)].sum(), "argsort"),
])
def test_unsupported_is_a_clear_error(fn, words):
    with pytest.raises(ImportFailure) as err:
        verify.from_jax(fn, a([1., -2., 3., 0.]))
    assert words in str(err.value)


# ----------------------------------------------------------------------------- the measured kink table

TABLE = json.loads((pathlib.Path(__file__).parent / "data" / "kink-conventions.json").read_text())
JAX_CASES = [c for c in TABLE["cases"] if "jax" in c["expressions"]]


@pytest.mark.parametrize("case", JAX_CASES, ids=[c["name"] for c in JAX_CASES])
def test_imported_expressions_reproduce_the_measured_kink_table(case):
    """Every JAX expression of tests/data/kink-conventions.json (measured in JAX 0.10.2), imported on scalars at
    its point: our exact gradient is the table's, whatever the convention."""
    args = ", ".join(f"x{i}" for i in range(len(case["point"])))
    f = eval(f"lambda {args}: {case['expressions']['jax']}", {"jax": jax, "jnp": jnp})   # the table's own text
    imp = verify.from_jax(f, *[jnp.float64(v) for v in case["point"]])
    want = [to_fmpq(g) for g in case["gradient"]["jax"]]
    for conv in ("torch", "jax", "tf"):
        g = verify.grad(imp.program, imp.point, convention=conv)
        ours = [np.asarray(v, dtype=object).item() for v in g.gradient]
        # the table writes a float64 measurement within 1e-6 of a simple fraction as that fraction (its note):
        # a split tie is exactly 1/3 in ours, leaky_relu's slope the double 0.01 (the literal, read exactly)
        assert all(o == w or o == to_fmpq(int(w.p) / int(w.q)) for o, w in zip(ours, want)), (ours, want)


def test_framework_values_sit_beside_the_equations():
    """framework_values runs the imported jaxpr in JAX's float arithmetic: every nonsmooth equation's origin
    names an equation whose first input is the float counterpart of the equation's exact input."""
    from verify.frameworks.jax import framework_values
    rng = np.random.default_rng(6)
    params = {"conv": rand(rng, 2, 1, 3, 3), "bias": rand(rng, 2), "fc": rand(rng, 18, 3)}
    args = (params, rand(rng, 2, 1, 6, 6), rand(rng, 2, 3))
    imp = verify.from_jax(cnn, *args)
    values = framework_values(imp, *args)
    r = verify.evaluate(imp.program, imp.point, number="ball")
    for k, origin in imp.nonsmooth():
        theirs = np.asarray(values[origin.node][0][0])
        ours = np.asarray(r.run.args[k][0])
        close(ours.reshape(1, -1), theirs.reshape(1, -1), origin.node)
