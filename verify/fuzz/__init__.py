"""Random programs against every claim of the paper: the claim checkers (claims.py), fuzz campaigns
(campaign.py, behind ``verify fuzz``) and the mutation self-test (mutants.py, ``verify fuzz --self-test``).
Requires hypothesis (the ``test`` extra)."""
from .claims import CLAIMS, NAMES, Example, check

__all__ = ["CLAIMS", "NAMES", "Example", "check"]
