"""Soundness of the number systems on random programs: exact values lie in the balls (whose width fits the
precision), balls meet mpmath intervals, all three choose the same pattern, and ball gradients contain the
exact gradients."""
from hypothesis import given

from verify.fuzz.claims import CLAIMS, check

CLAIM = CLAIMS["soundness"]


@given(CLAIM.strategy())
def test_soundness_on_random_programs(example):
    check(example)
