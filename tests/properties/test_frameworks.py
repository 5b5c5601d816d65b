"""Our torch and jax conventions against torch and jax themselves on random programs (exported with
verify.frameworks, kink params left to the convention), at random points and at points constructed on kinks.
Where float64 rounding puts the framework on another side of a kink than the exact rationals, the example is
undecided, not compared."""
import pytest
from flint import fmpq
from hypothesis import given, settings

import verify
from verify.frameworks import ExportError, framework_grad, to_torch
from verify.fuzz.claims import CLAIMS, Example, check, framework_list

CLAIM = CLAIMS["frameworks"]
pytestmark = pytest.mark.skipif(not framework_list(), reason="neither torch nor jax is installed")


@settings(max_examples=min(settings.default.max_examples, 100))
@given(CLAIM.strategy())
def test_frameworks_on_random_programs(example):
    check(example)


@pytest.mark.parametrize("fw", framework_list())
def test_frameworks_at_the_kinks_of_every_nonsmooth_primitive(fw):
    src = ("def f(a, b, c):\n    s1, s2, s3 = sort(a, b, c, descending=True)\n    m = max(a, b) + min(a, b, c)\n"
           "    w = where(a >= b, relu(a) + abs(b), leaky_relu(c, slope=1/5))\n"
           "    k = clamp(a, lo=0, hi=1) + hardtanh(b, lo=-1/2, hi=1) + relu6(c)\n"
           "    return s1 + 10 * s2 + 100 * s3 + m + w + k\n")
    P = verify.parse(src)
    for x in ([0, 0, 0], [1, 1, 6], [-1, -1, 0], [fmpq(1, 2), fmpq(-1, 2), 2]):
        assert check(Example("frameworks", P, [fmpq(v) for v in x], fw, {"framework": fw})) == "ok"


def test_a_kink_param_without_framework_counterpart_is_not_exportable():
    pytest.importorskip("torch")
    with pytest.raises(ExportError, match="no torch counterpart"):
        to_torch(verify.parse("lambda t: relu(t, alpha=1/2)"))
    with pytest.raises(ExportError, match="abs"):
        framework_grad("lambda t: abs(t)", [0], "torch", convention="jax")
    assert framework_grad("lambda t: relu(t, alpha=0)", [0], "torch")[1] == [[0.0]]
