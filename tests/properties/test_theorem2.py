"""Theorem 2 on random programs: AD returns grad f_s(x) for the pattern s chosen at x, recomputed by the
certificate checker's independent kernel (its own primitive values, index rules, pieces and forward mode);
s is in I(x), every pattern of I(x) agrees with f at x, and AD's output is a generator of D_f(x)."""
from flint import fmpq
from hypothesis import given

import verify
from verify.fuzz.claims import CLAIMS, Example, check

CLAIM = CLAIMS["theorem2"]


@given(CLAIM.strategy())
def test_theorem2_on_random_programs(example):
    check(example)


def test_theorem2_on_the_artificial_critical_point():
    P = verify.parse("lambda t: t - (relu(-t) + t - relu(t))")
    for conv in ("torch", "jax", "tf"):
        assert check(Example("theorem2", P, [fmpq(0)], conv)) == "ok"
