"""Proposition 2 (and Claim 1) on random continuous programs: the integral identity along a segment or a
polynomial curve is certified (never REFUTED), its left side is f(end) - f(start), and the pattern on
every piece of the certified partition is the one the program chooses there."""
import pytest
from flint import fmpq
from hypothesis import given, settings

import verify
from verify.fuzz.claims import CLAIMS, Example, check

CLAIM = CLAIMS["proposition2"]
pytestmark = pytest.mark.skipif(CLAIM.available() is not None, reason=str(CLAIM.available()))


@settings(max_examples=min(settings.default.max_examples, 80))
@given(CLAIM.strategy())
def test_proposition2_on_random_programs(example):
    check(example)


def test_proposition2_across_the_kinks_of_relu3_and_sort():
    Q = fmpq
    P = verify.parse("lambda t: (relu(t) + relu(-t) + t) / 2")
    assert check(Example("proposition2", P, [Q(-1)], "torch", {"to": [Q(2)]})) == "ok"
    S = verify.parse("def f(a, b):\n    lo, hi = sort(a, b)\n    return lo - 2 * hi\n")
    assert check(Example("proposition2", S, [Q(0), Q(1)], "jax", {"to": [Q(1), Q(0)]})) == "ok"
    assert check(Example("proposition2", S, [Q(0), Q(0)], "tf", {"curve": [[Q(0), Q(0)], [Q(1), Q(-1)],
                                                                          [Q(0), Q(2)]]})) == "ok"
