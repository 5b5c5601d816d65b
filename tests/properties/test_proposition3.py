"""Proposition 3 on random programs: where every switching function is certified nonzero (the pattern is
constant on a neighbourhood), AD equals the gradient, against an independent derivative: the exact germ of
the program along each axis (rational functions of t, no jvp/vjp rule involved) for rational programs, mpmath
interval central differences at 512 bits otherwise."""
from flint import fmpq
from hypothesis import given

import verify
from verify.fuzz.claims import CLAIMS, Example, check, locally_constant

CLAIM = CLAIMS["proposition3"]
Q = fmpq


@given(CLAIM.strategy())
def test_proposition3_on_random_programs(example):
    check(example)


def test_proposition3_only_where_the_pattern_is_locally_constant():
    zero = verify.parse("lambda t: relu(-t) + t - relu(t)")      # f = 0, AD says 1 at the kink
    assert locally_constant(zero, [Q(0)], "torch") is False
    assert check(Example("proposition3", zero, [Q(0)], "torch")) == "undecided"
    assert check(Example("proposition3", zero, [Q(1, 3)], "torch")) == "ok"
    smooth = verify.parse("lambda x, y: exp(x) * relu(y - 1) + sin(x * y)")
    assert check(Example("proposition3", smooth, [Q(1, 2), Q(3)], "jax")) == "ok"
