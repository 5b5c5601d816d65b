"""Every row of the measured kink-conventions table (tests/data/kink-conventions.json, measured in torch
2.13, JAX 0.10.2, TF 2.21) under --convention torch|jax|tf, and live against torch and jax when installed."""
import json
import pathlib

import pytest
from flint import fmpq

import verify
from verify.rational import to_fmpq

DATA = json.loads((pathlib.Path(__file__).parent / "data" / "kink-conventions.json").read_text())
SORTW = "a, b, c = sort(x0, x1, x2{})\n    return a + 10 * b + 100 * c"
OURS = {
    "relu at 0": "relu(x0)",
    "abs at 0": "abs(x0)",
    "maximum tie": "max(x0, x1)",
    "minimum tie": "min(x0, x1)",
    "max of 5 with 3 tied": "max(x0, x1, x2, x3, x4)",
    "relu as maximum(t, 0) at 0": "max(x0, 0)",
    "clamp(t, 0, 1) at 0": "clamp(x0, lo=0, hi=1)",
    "clamp(t, 0, 1) at 1": "clamp(x0, lo=0, hi=1)",
    "lax.clamp(0, t, 1) at 0": "clamp(x0, lo=0, hi=1, at_lo=0, at_hi=0)",
    "clamp(t, min=0) at 0": "clamp(x0, lo=0)",
    "hardtanh at -1": "hardtanh(x0)",
    "hardtanh at 1": "hardtanh(x0)",
    "relu6 at 0": "relu6(x0)",
    "relu6 at 6": "relu6(x0)",
    "leaky_relu(0.01) at 0": "leaky_relu(x0, slope=0.01)",
    "where(t > 0, t, 0) at 0": "where(x0 > 0, x0, 0)",
    "where(t >= 0, t, 0) at 0": "where(x0 >= 0, x0, 0)",
    "sort ascending [2,1,2], sum(w*sorted), w=[1,10,100]": SORTW.format(""),
    "sort descending [2,1,2], sum(w*sorted), w=[1,10,100]": SORTW.format(", descending=True"),
    "relu2(t) = relu(-t) + t at 0": "relu(-x0) + x0",
    "relu3(t) = (relu(t) + relu2(t))/2 at 0": "(relu(x0) + relu(-x0) + x0) / 2",
    "zero(t) = relu2(t) - relu(t) at 0": "relu(-x0) + x0 - relu(x0)",
}
ROWS = [(c, fw) for c in DATA["cases"] for fw in c["gradient"]]


def program(case):
    body = OURS[case["name"]]
    n = len(case["point"])
    args = ", ".join(f"x{i}" for i in range(n))
    text = body if "return" in body else f"return {body}"
    return verify.parse(f"def f({args}):\n    {text}\n")


def point(case):
    return [to_fmpq(x) for x in case["point"]]


def expected(case, fw):
    return [to_fmpq(g) for g in case["gradient"][fw]]


def test_every_case_has_our_program():
    assert {c["name"] for c in DATA["cases"]} == set(OURS)


@pytest.mark.parametrize("mode", ["backward", "forward"])
@pytest.mark.parametrize("case, fw", ROWS, ids=[f"{c['name']}-{fw}" for c, fw in ROWS])
def test_convention_row(case, fw, mode):
    g = verify.grad(program(case), point(case), mode=mode, convention=fw)
    assert g.exact and g.gradient == expected(case, fw)


def test_torch_is_the_default():
    case = next(c for c in DATA["cases"] if c["name"] == "abs at 0")
    assert verify.grad(program(case), [0]).gradient == [0]
    assert verify.grad(program(case), [0], convention="jax").gradient == [1]


def test_explicit_params_win_over_the_convention():
    P = verify.parse("lambda t: relu(t, alpha=1/2) + abs(t, at_zero=1/3)")
    for fw in ("torch", "jax", "tf"):
        assert verify.grad(P, [0], convention=fw).gradient == [fmpq(5, 6)]


def _live(fw, expr, pt):
    """Run the measured framework expression (trusted test data) at the point in float64; return the gradient."""
    if fw == "torch":
        torch = pytest.importorskip("torch")
        xs = [torch.tensor(float(v), dtype=torch.float64, requires_grad=True) for v in pt]
        ns = {f"x{i}": x for i, x in enumerate(xs)}
        ns["torch"] = torch
        y = eval(expr, ns)  # noqa: S307 - oracle expression from the measured table, test-only
        y.backward()
        return [float(x.grad) if x.grad is not None else 0.0 for x in xs]
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    n = len(pt)

    def f(*xs):
        ns = {f"x{i}": x for i, x in enumerate(xs)}
        ns.update(jax=jax, jnp=jnp)
        return eval(expr, ns)  # noqa: S307 - oracle expression from the measured table, test-only
    g = jax.grad(f, argnums=tuple(range(n)))(*[jnp.float64(v) for v in pt])
    return [float(v) for v in g]


LIVE = [(c, fw) for c in DATA["cases"] for fw in ("torch", "jax") if fw in c["expressions"]]


@pytest.mark.parametrize("case, fw", LIVE, ids=[f"{c['name']}-{fw}-live" for c, fw in LIVE])
def test_live_framework_agrees(case, fw):
    theirs = _live(fw, case["expressions"][fw], case["point"])
    ours = verify.grad(program(case), point(case), convention=fw).gradient
    assert len(theirs) == len(ours)
    for t, o in zip(theirs, ours):
        assert abs(to_fmpq(t) - o) <= fmpq(1, 10**6), (theirs, ours)
