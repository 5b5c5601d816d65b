"""The exact comparisons of tests/helpers.py: the sign of a sum of terms m * 2^e equals fmpq arithmetic's, and
balls whose exponents are astronomically large (CI's random programs met exp(exp(x)) near 2^(2^43), where
building 2^e crashed the process) compare exactly, agreeing with arb's own exact overlap test."""
import random

import mpmath
import pytest
from flint import arb, ctx, fmpq

import helpers
from helpers import contains, meets


def _exact(terms):
    return sum((fmpq(m) * fmpq(2) ** e if e >= 0 else fmpq(m, 2 ** -e) for m, e in terms), fmpq(0))


def test_the_sign_of_a_sum_of_dyadic_terms_is_exact(monkeypatch):
    rng = random.Random(5)
    for spread in (1 << 14, 4, 1):          # small spreads force the split into high and low terms
        monkeypatch.setattr(helpers, "_SPREAD", spread)
        for _ in range(5000):
            terms = [(rng.randint(-40, 40), rng.randint(-30, 30)) for _ in range(rng.randint(1, 7))]
            v = _exact(terms)
            assert helpers._sign_of_sum(terms) == (v > 0) - (v < 0), terms
    assert helpers._sign_of_sum([(1, 10 ** 15), (-1, 10 ** 15), (1, -(10 ** 15))]) == 1
    assert helpers._sign_of_sum([(3, 10 ** 15), (-1, 10 ** 15 + 1), (-1, 10 ** 15)]) == 0


def test_balls_with_huge_exponents_meet_as_arb_says():
    a = arb(30).exp().exp()                     # about 2^(1.5 * 10^13)
    assert a.is_finite() and int(a.mid().man_exp()[1]) > 10 ** 13
    for k in (2, 5, 8, 20, 100):
        b = a * (1 + arb(2) ** -k)
        assert meets(a, b) is a.overlaps(b)
    assert not meets(a, -a) and meets(a, a)


def test_rationals_and_intervals():
    assert contains(arb("1/3"), fmpq(1, 3)) and not contains(arb(1) / 4, fmpq(1, 3))
    iv = mpmath.iv.mpf([1, 2])
    assert meets(iv, arb("1.5")) and meets(fmpq(2), iv) and not meets(fmpq(5, 2), iv) and not meets(iv, arb(3))


def test_infinite_enclosures_claim_nothing_and_nan_is_no_enclosure():
    """exp(exp(exp(5))) at 64 bits is [+/- inf] (CI's random programs met it): it meets everything."""
    with ctx.workprec(64):
        big = arb(5).exp().exp().exp()
    assert not big.is_finite() and meets(big, arb(1)) and contains(big, fmpq(-7, 3))
    assert meets(mpmath.iv.mpf([1, mpmath.inf]), fmpq(10 ** 9)) and not meets(mpmath.iv.mpf([1, 2]), fmpq(3))
    with pytest.raises(AssertionError):
        meets(arb("nan"), arb(1))
