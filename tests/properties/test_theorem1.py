"""Theorem 1 on random programs: P'(x) = P(x) + sum_i r_i zero(x_i - a_i) is the same function as P, and its
AD derivative is AD's derivative of P shifted by r_i exactly where x_i = a_i."""
from flint import fmpq
from hypothesis import given

import verify
from verify.fuzz.claims import CLAIMS, Example, check

CLAIM = CLAIMS["theorem1"]
Q = fmpq


@given(CLAIM.strategy())
def test_theorem1_on_random_programs(example):
    check(example)


def test_theorem1_shifts_relu_at_zero_by_any_amount():
    P = verify.parse("lambda t: relu(t)")
    for r in (Q(1), Q(-7, 3), Q(0)):
        ex = Example("theorem1", P, [Q(0)], "torch", {"shift": [r], "other": [Q(1, 2)]})
        assert check(ex) == "ok"
        P2, _ = verify.spurious(P, [0], [r])
        assert verify.grad(P2, [0]).gradient == [r]
