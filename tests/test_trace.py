"""verify.trace: ordinary Python on tracer values."""
import pytest
from flint import fmpq

import verify
from verify import ops
from verify.frontends.trace import TracingError


def test_trace_builds_the_same_program_as_text():
    def relu3(t):
        return (ops.relu(t) + ops.relu(-t) + t) / 2
    P = verify.trace(relu3, 1)
    assert verify.grad(P, [0]).gradient == [fmpq(1, 2)]
    assert verify.parse(verify.to_text(P)) == P and P.name == "relu3" and P.input_names == ("t",)


def test_floats_become_exact_binary_rationals():
    P = verify.trace(lambda x: x * 0.1, 1)
    assert verify.evaluate(P, [1]).values == [fmpq(*(0.1).as_integer_ratio())]


def test_all_ops_trace():
    def f(x, y):
        lo, hi = ops.sort(x, y, descending=True)
        return (ops.max(x, y, 1, tie="first") + ops.min(x, y) + abs(x) + ops.clamp(y, lo=0, hi=1)
                + ops.where(x > y, lo, hi) + ops.exp(ops.tanh(x)) + ops.log(1 + y * y) + x ** 2 - 3 / (1 + x * x)
                + ops.leaky_relu(x, slope=0.25) + ops.hardtanh(x) + ops.relu6(y) + ops.sigmoid(x)
                + ops.sin(x) * ops.cos(y) + ops.sqrt(2 + y * y))
    P = verify.trace(f, 2)
    assert verify.parse(verify.to_text(P)) == P
    a, b = verify.grad(P, ["1/3", "1/2"]), verify.grad(P, ["1/3", "1/2"], mode="forward")
    assert a.pattern == b.pattern


@pytest.mark.parametrize("fn, msg", [
    (lambda x: x if x > 0 else -x, "where"),
    (lambda x: max(x, 0), "where"),
    (lambda x: ops.where(x, 1, 2), "comparison"),
    (lambda x: x ** 0.5, "integer exponents"),
    (lambda x: 2 ** x, "exponent"),
    (lambda x: x + "a", "cannot be traced"),
])
def test_tracing_errors_point_to_the_fix(fn, msg):
    with pytest.raises(TracingError, match=msg):
        verify.trace(fn, 1)


def test_ops_outside_trace_is_an_error():
    with pytest.raises(TracingError, match="outside verify.trace"):
        ops.relu(1)
