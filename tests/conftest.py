"""Hypothesis profiles: ``quick`` (default, for a developer's run), ``ci`` (picked when CI=true), and
``campaign`` (long runs: HYPOTHESIS_PROFILE=campaign)."""
import os

from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("quick", max_examples=60, **_common)
settings.register_profile("ci", max_examples=200, print_blob=True, derandomize=False, **_common)
settings.register_profile("campaign", max_examples=5000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "quick"))
