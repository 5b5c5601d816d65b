"""verify's own certificates always check: every certificate any certifier writes for random programs, points
and segments passes the independent checker (a checker that cannot decide what the certifier decided is a
failure, not an undecided)."""
from hypothesis import given, settings

from verify.fuzz.claims import CLAIMS, check

CLAIM = CLAIMS["certificates"]


@settings(max_examples=min(settings.default.max_examples, 100))
@given(CLAIM.strategy())
def test_every_certificate_verify_writes_checks(example):
    check(example)
