"""Proposition 4 (chain rule) on random pairs of programs: AD of the composition outer(inner(x)) equals the
product J_outer(inner(x)) J_inner(x) of the two AD Jacobians, exactly, with the pattern of the composition
being inner's followed by outer's."""
from flint import fmpq
from hypothesis import given

import verify
from verify.fuzz.claims import CLAIMS, Example, check

CLAIM = CLAIMS["proposition4"]


@given(CLAIM.strategy())
def test_proposition4_on_random_pairs(example):
    check(example)


def test_chain_rule_through_a_tie():
    inner = verify.parse("def F(x, y):\n    lo, hi = sort(x, y)\n    return hi, lo * x\n")
    outer = verify.parse("lambda u, v: max(u, v) + relu(u - v)")
    for conv in ("torch", "jax", "tf"):
        assert check(Example("proposition4", inner, [fmpq(1), fmpq(1)], conv, {"outer": outer})) == "ok"
