"""Lemma 1 of the paper on random programs: forward mode and backward mode over the frozen pattern give
the same Jacobian, exactly in rational arithmetic (overlapping balls once a transcendental appears)."""
from hypothesis import given

import verify
from verify.fuzz.claims import CLAIMS, Example, check

CLAIM = CLAIMS["lemma1"]


@given(CLAIM.strategy())
def test_lemma1_on_random_programs(example):
    check(example)


def test_lemma1_on_the_paper_examples_at_their_kinks():
    for src in ("lambda t: relu(-t) + t", "lambda t: (relu(t) + relu(-t) + t) / 2", "lambda t: relu(-t) + t - relu(t)",
                "lambda a, b, c: sort(a, b, c, descending=True)", "lambda x, y: max(x, y, x * y)"):
        P = verify.parse(src)
        for conv in ("torch", "jax", "tf"):
            assert check(Example("lemma1", P, [verify.rational.to_fmpq(0)] * P.n_inputs, conv)) == "ok"
