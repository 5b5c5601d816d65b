"""First contact: what a new user tries first gives a correct answer or one clear error, never an exception
from inside verify (issue 15, item 4).

Each case was once a crash: a 0-d tensor input anywhere in an audit; a kinked op on an empty tensor; a
max-pool whose padding leaves a single element in a window; ``repeat(())`` / ``tile(())`` on a 0-d tensor;
``jax.random`` inside the function; an audit of a non-scalar function or of one without a float input.  The
oracles are the frameworks themselves (values and gradients at float64 rounding, exactly at dyadic tie
points), exact rationals for the number systems, and the independent checker for the certificates.  The
torch and JAX cases skip when the framework is absent.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from flint import arb, fmpq

import verify
from verify.errors import InputError
from verify.numbers.tensor import QT, get_tensor_system
from verify.program.arrays import ExactArray
from verify.truth import TRUE, Verdict
from import_helpers import close, exact_equal

SYSTEMS = ("exact", "ball", "interval", "float64", "float32", "float16")


# ---------------------------------------------------------------------------------- 0-d constants

def _scalar_of(ns, v):
    """The one element of a 0-d value of ``ns`` as an fmpq (exact), arb (ball), mpmath iv or float."""
    if isinstance(v, QT):
        assert v.shape == ()
        return fmpq(int(v.num[()]), v.den)
    assert isinstance(v, np.ndarray) and v.shape == (), (type(v), getattr(v, "shape", None))
    return v[()]


@pytest.mark.parametrize("number", SYSTEMS)
@pytest.mark.parametrize("given", ["fmpq", "ExactArray", "object array of fmpq", "int"])
def test_const_array_takes_a_scalar_in_every_form(number, given):
    """A scalar input of an imported program is an fmpq in ``Imported.point``: every system reads it (and a
    0-d ExactArray, a 0-d object array of fmpq, an int) as a 0-d array of the same number."""
    q = fmpq(-5, 8) if given != "int" else fmpq(3)
    value = {"fmpq": q, "ExactArray": ExactArray(np.array(-5, dtype=object), 8),
             "object array of fmpq": np.array(q, dtype=object), "int": 3}[given]
    ns = get_tensor_system(number)
    got = _scalar_of(ns, ns.const_array(value))
    if number == "exact":
        assert got == q
    elif number == "ball":
        assert isinstance(got, arb) and got.contains(q) and got.rad() == 0
    elif number == "interval":
        assert got.a == got.b == float(q)
    else:
        assert isinstance(got, np.floating) and got.dtype == np.dtype(number) and got == float(q)


@pytest.mark.parametrize("number", ("ball", "interval", "float64"))
def test_const_array_takes_balls(number):
    """A 0-d or 1-d array of arb balls (a value that stopped being rational) enters the non-exact systems as
    the same ball, an interval around it, or its midpoint."""
    b = arb(1) / 3
    ns = get_tensor_system(number)
    for value in (np.array(b, dtype=object), np.array([b, -b], dtype=object)):
        out = np.asarray(ns.const_array(value), dtype=object)
        assert out.shape == value.shape
        first = out.ravel()[0]
        if number == "ball":
            assert first.contains(b) and b.contains(first)
        elif number == "interval":
            assert first.a <= float(b.mid()) <= first.b
        else:
            assert abs(float(first) - 1 / 3) < 1e-15


def test_const_array_of_exact_arrays_is_unchanged():
    ea = ExactArray(np.array([[1, -2], [3, 0]], dtype=object), 4)
    for number in SYSTEMS:
        ns = get_tensor_system(number)
        out = ns.const_array(ea)
        assert tuple(ns.shape(out)) == (2, 2)
    q = get_tensor_system("exact").const_array(ea)
    assert q.den == 4 and q.num.tolist() == [[1, -2], [3, 0]]


# ------------------------------------------------------------------------------------------- torch

def _torch():
    return pytest.importorskip("torch")


def _torch_value_and_grad(f, args):
    """torch's float64 value of ``f`` at ``args`` and its gradient with respect to every float argument."""
    torch = _torch()
    xs = [a.detach().clone().requires_grad_(a.is_floating_point()) for a in args]
    out = f(*xs)
    floats = [x for x in xs if x.is_floating_point()]
    grads = torch.autograd.grad(out, floats, allow_unused=True) if floats else []
    return float(out), [np.zeros(tuple(x.shape)) if g is None else g.numpy() for x, g in zip(floats, grads)]


def _check_import_and_audit(f, args, framework):
    """Import ``f`` (value and gradient equal the framework's to float64 rounding), then audit it: the audit
    reports every gradient element within float rounding of the exact one."""
    from verify import audit
    if framework == "torch":
        imp = verify.from_torch(f, *args)
        value, grads = _torch_value_and_grad(f, args)
    else:
        imp = verify.from_jax(f, *args)
        value, grads = _jax_value_and_grad(f, args)
    g = verify.grad(imp.program, imp.point)
    close([g.values[0]], [value], "value")
    assert len(g.gradient) == len(grads)
    for ours, theirs in zip(g.gradient, grads):
        close(ours, theirs, "gradient")
    rep = audit(f, *args, framework=framework)
    assert all(a.agrees for a in rep.agreement), rep.summary()
    return imp, rep


def _check_certificates(rep, tmp_path):
    """The audit's certificates, written and re-validated by the independent checker."""
    from verify.auditing import audit_certificates
    for suffix, tc in audit_certificates(rep):
        path = tmp_path / f"audit{suffix}.json"
        tc.write(str(path))
        verify.check(str(path))


def _zero_d_cases():
    torch = _torch()
    F = torch.nn.functional
    D = torch.float64
    x = torch.tensor([[0.5, -1.25, 2.0], [1.5, 0.75, -0.5]], dtype=D)
    s = torch.tensor(0.625, dtype=D)
    t = torch.tensor(-0.375, dtype=D)
    return {
        "add": (lambda x, s: (x + s).sum(), (x, s)),
        "mul": (lambda x, s: (x * s).sum(), (x, s)),
        "maximum": (lambda x, s: torch.maximum(x, s).sum(), (x, s)),
        "sum of a 0-d tensor": (lambda s: torch.sum(s * s), (s,)),
        "mean of a 0-d tensor": (lambda s: torch.mean(s * 3), (s,)),
        "logsumexp": (lambda x, s: torch.logsumexp(x * s, 1).sum(), (x, s)),
        "logsumexp of a 0-d tensor": (lambda s: torch.logsumexp(s, 0), (s,)),
        "mse_loss": (lambda s, t: F.mse_loss(s, t), (s, t)),
        "l1_loss": (lambda s, t: F.l1_loss(s, t), (s, t)),
        "smooth_l1_loss": (lambda s, t: F.smooth_l1_loss(s, t), (s, t)),
        "mse_loss to 0-d": (lambda x, s: F.mse_loss(x, s.expand(2, 3)), (x, s)),
        "cross_entropy, 0-d target": (lambda x, y: F.cross_entropy(x[0], y), (x, torch.tensor(2))),
        "nll_loss, 0-d target": (lambda x, y: F.nll_loss(torch.log_softmax(x[1], 0), y), (x, torch.tensor(1))),
        "relu of a 0-d tensor": (lambda s, t: torch.relu(s) + torch.relu(t) * s, (s, t)),
    }


@pytest.mark.parametrize("case", ["add", "mul", "maximum", "sum of a 0-d tensor", "mean of a 0-d tensor",
                                  "logsumexp", "logsumexp of a 0-d tensor", "mse_loss", "l1_loss",
                                  "smooth_l1_loss", "mse_loss to 0-d", "cross_entropy, 0-d target",
                                  "nll_loss, 0-d target", "relu of a 0-d tensor"])
def test_torch_ops_with_a_0d_operand_import_and_audit(case):
    f, args = _zero_d_cases()[case]
    _check_import_and_audit(f, args, "torch")


def test_a_0d_tie_is_an_exact_kink_of_the_audit():
    torch = _torch()
    s = torch.tensor(0.0, dtype=torch.float64)
    x = torch.tensor([0.0, 1.0], dtype=torch.float64)
    imp, rep = _check_import_and_audit(lambda x, s: torch.maximum(x, s).sum(), (x, s), "torch")
    assert [tuple(k.index) for k in rep.exact_kinks] == [(0,)]      # maximum(0, 0): a tie, split by torch
    assert rep.float_kinks == [] and rep.selection_gradient is TRUE
    # the filtered audit encloses the exact gradient (exact arithmetic on request): 1/2 inside, narrowly
    g = np.asarray(rep.exact_gradient[1], dtype=object)[()]
    assert arb(g).contains(fmpq(1, 2)) and arb(g).rad() < 2.0 ** -50


OPINFO_CASES = ("add", "mul", "maximum", "sum", "mean", "logsumexp", "nn.functional.mse_loss",
                "nn.functional.l1_loss", "nn.functional.smooth_l1_loss")


def test_opinfo_samples_with_a_0d_operand():
    """PyTorch's own operator samples (OpInfo): the first sample of each op with a 0-d tensor among its
    operands imports and audits, and the audit's exact gradient is within float rounding of torch's."""
    torch = _torch()
    pytest.importorskip("expecttest")
    from torch.testing._internal.common_methods_invocations import op_db
    done = 0
    for op in (o for o in op_db if o.name in OPINFO_CASES and o.variant_test_name == ""):
        for sample in op.sample_inputs("cpu", torch.float64, requires_grad=False):
            tensors = [sample.input] + [a for a in sample.args if isinstance(a, torch.Tensor)]
            if not any(t.dim() == 0 for t in tensors):
                continue

            def f(x, *ts, op=op, pos=sample.args, kw=sample.kwargs):
                it = iter(ts)          # the tensor arguments back in their places among the others
                return op.op(x, *(next(it) if isinstance(a, torch.Tensor) else a for a in pos), **kw).sum()
            _check_import_and_audit(f, tuple(t.detach().clone() for t in tensors), "torch")
            done += 1
            break
    assert done == len(OPINFO_CASES)


# ------------------------------------------------------------------------------------- empty arrays

def test_torch_kinked_ops_on_empty_tensors(tmp_path):
    torch = _torch()
    F = torch.nn.functional
    D = torch.float64
    e = torch.zeros(1, 0, 3, dtype=D)
    cases = {
        "relu": (lambda x: torch.relu(x).sum(), (e,)),
        "abs and clamp": (lambda x: (x.abs() + torch.clamp(x, 0., 1.)).sum(), (e,)),
        "maximum": (lambda x, y: torch.maximum(x, y).sum(), (e, torch.zeros(3, dtype=D))),
        "amax over a full axis": (lambda x: x.amax(2).sum(), (e,)),
        "sort": (lambda x: (torch.sort(x, dim=2, stable=True).values * torch.arange(3.)).sum(), (e,)),
        "relu and a weight": (lambda x, w: (torch.relu(x) * w).sum() + w.sum(), (e, torch.ones(3, dtype=D))),
        "max-pool of an empty batch": (lambda x: F.max_pool2d(x, 2, 1, 1).sum(), (torch.zeros(0, 1, 4, 4, dtype=D),)),
        "conv and relu, empty batch": (lambda x, k: torch.relu(F.conv2d(x, k)).sum(),
                                       (torch.zeros(0, 1, 4, 4, dtype=D), torch.ones(2, 1, 2, 2, dtype=D))),
        "logsumexp": (lambda x: torch.logsumexp(x, 2).sum(), (e,)),
        "cross-entropy of an empty batch": (lambda x, y: F.cross_entropy(x, y, reduction="sum"),
                                            (torch.zeros(0, 3, dtype=D), torch.zeros(0, dtype=torch.int64))),
        "where": (lambda x: torch.where(x > 0, x, -x).sum(), (e,)),
    }
    for name, (f, args) in cases.items():
        imp, rep = _check_import_and_audit(f, args, "torch")
        assert rep.exact_kinks == [] and rep.float_kinks == [], name
        assert rep.differentiable is TRUE and rep.selection_gradient is TRUE, name
        _check_certificates(rep, tmp_path)


def test_empty_arrays_flow_through_index_sets_and_certificates(tmp_path):
    """An empty site grid: no kinks, one pattern, a certified differentiable point; the checker agrees."""
    torch = _torch()
    from verify import audit
    e = torch.zeros(1, 0, 3, dtype=torch.float64)
    w = torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64)

    def f(x, w):
        return (torch.relu(x) * w).sum() + torch.relu(w).sum()
    imp = verify.from_torch(f, e, w)
    iset = verify.index_set(imp.program, imp.point)
    assert len(iset.kinks) == 1                                   # relu(w) at w[2] = 0, not the empty relu
    for number in ("exact", "ball", "interval", "float64"):
        r = verify.evaluate(imp.program, imp.point, number=number)
        assert float(r.values[0] if number != "interval" else r.values[0].mid) == 1.0
    g = verify.grad(imp.program, imp.point, mode="forward")
    assert np.asarray(g.gradient[0]).shape == (1, 0, 3)
    _check_certificates(audit(f, e, w, critical="always"), tmp_path)


# ------------------------------------------------------------------------------------ max-pool padding

def _pool_points():
    """Inputs where padding matters: all negative (a padded 0 would win), ties across a window and with the
    border, and a random point."""
    rng = np.random.default_rng(3)
    return {
        "negative": -1.0 - np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4) / 8,
        "ties": np.array([[[[-1., -1., 0., 0.], [-1., -1., 0., 0.], [2., 2., -3., -3.], [2., 2., -3., -3.]]]]),
        "constant": np.full((1, 1, 4, 4), -0.5),
        "random": rng.standard_normal((2, 2, 5, 4)),
    }


@pytest.mark.parametrize("point", ["negative", "ties", "constant", "random"])
def test_torch_max_pool_with_padding(point, tmp_path):
    torch = _torch()
    F = torch.nn.functional
    x = torch.tensor(_pool_points()[point])
    w = torch.arange(1., 1. + F.max_pool2d(x, 2, 1, 1).numel(), dtype=torch.float64)

    def f(x):
        return (F.max_pool2d(x, 2, 1, 1).reshape(-1) * w).sum()
    imp, rep = _check_import_and_audit(f, (x,), "torch")
    if point != "random":                          # dyadic ties: torch's float64 gradient is exact
        exact_equal(verify.grad(imp.program, imp.point).gradient[0], _torch_value_and_grad(f, (x,))[1][0])
    _check_certificates(rep, tmp_path)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(stride=(1, 2), padding=(1, 0)),
                                dict(stride=3, padding=1), dict(stride=1, padding=1, dilation=2),
                                dict(kernel_size=(2, 3), stride=(1, 2), padding=1)])
def test_torch_max_pool_padding_variants(kw):
    torch = _torch()
    F = torch.nn.functional
    x = torch.tensor(_pool_points()["ties"])

    def f(x):
        y = F.max_pool2d(x, **{"kernel_size": 2, **kw})
        return (y.reshape(-1) * torch.arange(1., 1. + y.numel(), dtype=torch.float64)).sum()
    imp, _ = _check_import_and_audit(f, (x,), "torch")
    exact_equal(verify.grad(imp.program, imp.point).gradient[0], _torch_value_and_grad(f, (x,))[1][0])


def test_segments_through_padding_and_empty_arrays():
    """Claim 1 and Proposition 2 on tensor programs with a one-element pooling window and with an empty input:
    the breakpoints are those of the non-empty part, and the integral identity holds."""
    torch = _torch()
    F = torch.nn.functional
    x = torch.tensor(np.arange(16.).reshape(1, 1, 4, 4) - 7)
    imp = verify.from_torch(lambda x: F.max_pool2d(x, 2, 1, 1).sum(), x)
    y = [ExactArray.from_any(np.ones((1, 1, 4, 4)))]
    part = verify.segment_partition(imp.program, list(imp.point), y)
    assert [b.t for b in part.breakpoints] == [0, 1]      # x + t (1 - x): every window keeps its maximum
    assert verify.integral_identity(imp.program, list(imp.point), y).verdict is Verdict.PROVED
    e, w = torch.zeros(1, 0, 3, dtype=torch.float64), torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64)
    imp = verify.from_torch(lambda x, w: (torch.relu(x) * w).sum() + torch.relu(w).sum(), e, w)
    y = [ExactArray.from_any(np.zeros((1, 0, 3))), ExactArray.from_any(np.array([-1.0, 1.0, 2.0]))]
    part = verify.segment_partition(imp.program, list(imp.point), y)
    assert [b.t for b in part.breakpoints] == [0, fmpq(1, 2), fmpq(2, 3), 1]
    assert verify.integral_identity(imp.program, list(imp.point), y).verdict is Verdict.PROVED


# ------------------------------------------------------------------------------------ repeat and tile

@pytest.mark.parametrize("how", ["repeat", "tile", "repeat(1, 2)", "tile((2,))"])
def test_repeat_and_tile_of_a_0d_tensor(how):
    torch = _torch()
    s = torch.tensor(1.5, dtype=torch.float64)
    fn = {"repeat": lambda s: s.repeat(()), "tile": lambda s: s.tile(()), "repeat(1, 2)": lambda s: s.repeat(1, 2),
          "tile((2,))": lambda s: s.tile((2,))}[how]

    def f(s):
        y = fn(s)
        return (y * (torch.arange(y.numel(), dtype=torch.float64) + 1).reshape(y.shape)).sum() * s
    _check_import_and_audit(f, (s,), "torch")


# ------------------------------------------------------------------------------------------------ JAX

def _jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def _jax_value_and_grad(f, args):
    jax = _jax()
    import jax.numpy as jnp
    pos = [i for i, a in enumerate(args) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating)
           and not jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)]
    v, g = jax.value_and_grad(f, argnums=tuple(pos))(*args) if pos else (f(*args), ())
    return float(v), [np.asarray(t) for t in g]


def test_jax_ops_with_a_0d_operand_import_and_audit():
    jax = _jax()
    import jax.numpy as jnp
    x, s, t = jnp.array([0.5, -1.25, 2.0]), jnp.asarray(0.625), jnp.asarray(-0.25)
    cases = [(lambda x, s: (x * s).sum(), (x, s)), (lambda x, s: jnp.maximum(x, s).sum(), (x, s)),
             (lambda s: jax.nn.relu(s), (s,)), (lambda s, t: jnp.mean((s - t) ** 2), (s, t)),
             (lambda x, y: -jax.nn.log_softmax(x)[y], (x, jnp.asarray(1))), (lambda s: jax.nn.logsumexp(s), (s,))]
    for f, args in cases:
        _check_import_and_audit(f, args, "jax")
    _, rep = _check_import_and_audit(lambda s: jnp.abs(s), (jnp.asarray(0.0),), "jax")
    assert len(rep.exact_kinks) == 1 and rep.selection_gradient is TRUE        # |.|'(0) = 1 in JAX


def test_jax_relu_on_an_empty_array(tmp_path):
    jax = _jax()
    import jax.numpy as jnp
    e = jnp.zeros((1, 0, 3))
    imp, rep = _check_import_and_audit(lambda x: jax.nn.relu(x).sum(), (e,), "jax")
    assert rep.exact_kinks == [] and rep.differentiable is TRUE
    _check_certificates(rep, tmp_path)
    imp, rep = _check_import_and_audit(lambda x, y: jnp.maximum(x, y).sum() + jnp.abs(y).sum(),
                                       (e, jnp.array([1.0, -2.0, 0.5])), "jax")
    _check_certificates(rep, tmp_path)


def _jax_pool(x, padding, stride=(1, 1), init=None):
    import jax.numpy as jnp
    from jax import lax
    return lax.reduce_window(x, -jnp.inf if init is None else init, lax.max, (1, 1, 2, 2), (1, 1) + stride,
                             ((0, 0), (0, 0)) + padding)


@pytest.mark.parametrize("point", ["negative", "ties", "constant", "random"])
@pytest.mark.parametrize("padding", [((1, 1), (1, 1)), ((1, 0), (0, 1)), "SAME"])
def test_jax_max_pool_with_padding(point, padding, tmp_path):
    _jax()
    import jax.numpy as jnp
    from jax import lax
    x = jnp.asarray(_pool_points()[point])
    if padding == "SAME":
        def pool(x):
            return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 1, 1), "SAME")
    else:
        def pool(x):
            return _jax_pool(x, padding)
    n = pool(x).size

    def f(x):
        return (pool(x).reshape(-1) * jnp.arange(1., 1. + n)).sum()
    imp, rep = _check_import_and_audit(f, (x,), "jax")
    if point != "random":
        exact_equal(verify.grad(imp.program, imp.point).gradient[0], _jax_value_and_grad(f, (x,))[1][0])
    _check_certificates(rep, tmp_path)


def test_jax_pooling_without_a_faithful_counterpart_is_a_clear_import_failure():
    """reduce_window with a finite init (max(0, window): the padding and the init take part) is JAX's generic
    reduce_window; padding wider than half the window makes windows of padding only (-inf): both are refused
    by name, never imported approximately."""
    _jax()
    import jax.numpy as jnp
    from verify.frameworks import ImportFailure
    x = jnp.asarray(_pool_points()["negative"])
    with pytest.raises(ImportFailure, match="'reduce_window' is not supported"):
        verify.from_jax(lambda x: _jax_pool(x, ((1, 1), (1, 1)), init=0.0).sum(), x)
    with pytest.raises(ImportFailure, match="at most half the kernel"):
        verify.from_jax(lambda x: _jax_pool(x, ((2, 2), (2, 2))).sum(), x)


def _random_cases():
    jax = _jax()
    import jax.numpy as jnp
    x = jnp.array([0.5, -1.25, 2.0])
    return {
        "normal, key(0)": (lambda x: (x * jax.random.normal(jax.random.key(0), (3,))).sum(), (x,)),
        "normal, PRNGKey(0)": (lambda x: (x * jax.random.normal(jax.random.PRNGKey(0), (3,))).sum(), (x,)),
        "uniform, split key": (lambda x: (x * jax.random.uniform(jax.random.split(jax.random.key(7))[1],
                                                                 (3,))).sum(), (x,)),
        "dropout mask": (lambda x: jnp.where(jax.random.bernoulli(jax.random.key(1), 0.5, (3,)),
                                             jax.nn.relu(x) / 0.5, 0.0).sum(), (x,)),
        "key as an argument": (lambda x, k: (x * jax.random.normal(k, (3,))).sum(), (x, jax.random.key(3))),
        "PRNGKey as an argument": (lambda x, k: (x * jax.random.normal(k, (3,))).sum(),
                                   (x, jax.random.PRNGKey(3))),
        "permutation": (lambda x: (x * jax.random.permutation(jax.random.key(2), x)).sum(), (x,)),
    }


@pytest.mark.parametrize("case", ["normal, key(0)", "normal, PRNGKey(0)", "uniform, split key", "dropout mask",
                                  "key as an argument", "PRNGKey as an argument", "permutation"])
def test_jax_random_values_are_constants_at_the_key(case):
    f, args = _random_cases()[case]
    imp, rep = _check_import_and_audit(f, args, "jax")
    assert len(imp.inputs) == 1                     # only x: the key and the random values are constants


def test_random_values_with_real_parameters():
    """uniform(key, minval=x0, maxval=x0 + x1^2) is u * (maxval - minval) + minval with u the constant drawn at
    the key: a real-number function of x, imported as such."""
    jax = _jax()
    import jax.numpy as jnp

    def f(x):
        u = jax.random.uniform(jax.random.key(1), (3,), minval=x[0], maxval=x[0] + x[1] * x[1])
        return (u * x).sum()
    imp, rep = _check_import_and_audit(f, (jnp.array([0.5, 1.5, -2.0]),), "jax")
    assert len(imp.inputs) == 1


# --------------------------------------------------------------------------------- audit input checks

def test_audit_of_a_non_scalar_jax_function_is_an_input_error():
    _jax()
    import jax.numpy as jnp
    from verify import audit
    with pytest.raises(InputError, match="one scalar"):
        audit(lambda x: x * 2, jnp.ones(3))


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_audit_without_a_float_input_is_an_input_error(framework):
    from verify import audit
    if framework == "torch":
        torch = _torch()
        args = (torch.arange(3),)

        def f(x):
            return (x * 2).sum()
    else:
        _jax()
        import jax.numpy as jnp
        args = (jnp.arange(3),)

        def f(x):
            return (x * 2).sum()
    with pytest.raises(InputError, match="nothing to differentiate: every input is an integer"):
        audit(f, *args, framework=framework)


def test_audit_of_an_argument_torch_cannot_differentiate_is_an_input_error():
    """F.batch_norm with its running statistics passed as arguments: the importer reads them as float inputs,
    torch's autograd refuses them (the OpInfo sweep's one crash)."""
    torch = _torch()
    from verify import audit
    x = torch.arange(12, dtype=torch.float64).reshape(3, 4) / 8
    mean, var = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)

    def f(x, mean, var):
        return torch.nn.functional.batch_norm(x, mean, var, training=True, momentum=0.5).square().sum()
    with pytest.raises(InputError, match="cannot differentiate"):
        audit(f, x, mean, var)


SCRIPTS = {
    "jax_vector": "import jax.numpy as jnp\ndef make():\n    return (lambda x: x * 2), (jnp.ones(3),)\n",
    "jax_ints": "import jax.numpy as jnp\ndef make():\n    return (lambda x: (x * 2).sum()), (jnp.arange(3),)\n",
    "torch_ints": "import torch\ndef make():\n    return (lambda x: (x * 2).sum()), (torch.arange(3),)\n",
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_cli_audit_input_errors_are_one_line(script, tmp_path):
    pytest.importorskip("torch" if script.startswith("torch") else "jax")
    path = tmp_path / f"{script}.py"
    path.write_text(SCRIPTS[script])
    out = subprocess.run([sys.executable, "-m", "verify", "audit", f"{path}:make"], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 2, out.stdout + out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert ("one scalar" in lines[0]) if script.endswith("vector") else ("nothing to differentiate" in lines[0])
