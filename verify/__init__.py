"""verify: certified automatic differentiation of nonsmooth programs (Bolte & Pauwels, NeurIPS 2020).

    P = verify.parse("lambda t: relu(-t) + t")
    verify.grad(P, [0]).gradient        # [1]: AD's selection derivative, not relu'(0) = 0
"""
from .interpret.ad import GradResult, grad, jacobian, jvp, vjp
from .errors import DomainError, InputError, ParseError, ProgramError, Undecided, VerifyError
from .interpret.evaluate import EvalResult, evaluate
from .frontends.text import parse
from .frontends.trace import trace
from .program.ir import Eqn, Lit, Program, to_text, typecheck
from .program.kinks import CONVENTIONS
from .program.arrays import Arrays, ExactArray
from .program.scalarize import scalarize
from .truth import FALSE, TRUE, UNKNOWN, Truth, Verdict
from . import ops

from .version import __version__  # noqa: E402,F401
__all__ = ["parse", "trace", "evaluate", "grad", "jvp", "vjp", "jacobian", "to_text", "typecheck", "Program",
           "Eqn", "Lit", "EvalResult", "GradResult", "CONVENTIONS", "Truth", "TRUE", "FALSE", "UNKNOWN",
           "Verdict", "VerifyError", "InputError", "ParseError", "ProgramError", "DomainError", "Undecided", "ops",
           "index_set", "conservative_field", "clarke", "critical", "spurious", "segment_partition",
           "integral_identity", "certify_differentiable", "check", "__version__", "ExactArray", "Arrays",
           "scalarize", "from_torch", "from_jax", "audit", "Auditor", "watch", "watch_jax"]


_CERTIFY = ("index_set", "conservative_field", "clarke", "critical", "spurious", "segment_partition",
            "integral_identity", "certify_differentiable")


def __getattr__(name):
    # the certifiers load on first use, so that `verify check` (the independent checker) runs without
    # ever importing them
    import importlib
    if name in _CERTIFY:
        return getattr(importlib.import_module(".certify", __name__), name)
    if name in ("from_torch", "from_jax"):       # importers load torch / jax only when used
        return getattr(importlib.import_module(".frameworks", __name__), name)
    if name in ("audit", "Auditor"):
        return getattr(importlib.import_module(".auditing", __name__), name)
    if name in ("watch", "watch_jax"):
        return getattr(importlib.import_module(".auditing.watch", __name__), name)
    raise AttributeError(f"module 'verify' has no attribute {name!r}")


def check(certificate, base=None):
    """Re-validate a certificate (a dict, or a path to its JSON file) with the independent checker: returns
    None when valid, raises verify.checker.Invalid with the reason when not.  Side files (tensor programs) are
    read beside the JSON file, or from the folder ``base`` for a dict (default: the current folder)."""
    import os

    from .certificates import load
    from .checker import check as _check
    if isinstance(certificate, str):
        return _check(load(certificate), base if base is not None else os.path.dirname(os.path.abspath(certificate)))
    return _check(certificate, base)
