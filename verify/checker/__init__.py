"""The independent checker behind ``verify check``: the trusted kernel.

It re-validates a certificate from the program text, the claim and the evidence, with its own small evaluator
(kernel.py), and never imports verify.certify or verify.interpret (the code that produced the certificate):
a bug there cannot vouch for itself.  Each kind of certificate has one check function in CHECKS (index.py:
index sets, critical points, Theorem 1; segment.py: segments, integrals, differentiability; sites.py: the
tensor kinds, with the checker's own tensor kernel tensor.py; tensor_segment.py: segments and integrals of
piecewise-linear tensor programs; common.py: what they share); it returns None
when the certificate is valid and raises Invalid with the reason otherwise.  The
checker derives the result and the verdict itself and requires the certificate to state exactly that; only
``meta`` is not checked.
"""
from ..errors import InputError, VerifyError
from ..certificates import FORMAT, validate_schema


class Invalid(VerifyError):
    """The certificate does not hold: the message says which part and why."""


CHECKS = {}
SIDE_FILES = set()                              # kinds whose check reads side files beside the certificate
CHECK_MODULES = ("index", "segment", "sites", "tensor_segment")   # each registers its kinds in CHECKS


def register(kind, side_files=False):
    """Register the check of a kind: ``fn(cert)``, or ``fn(cert, base)`` for kinds with side files (.npz files
    named and hashed in the certificate, read from the folder ``base``)."""
    def deco(fn):
        CHECKS[kind] = fn
        if side_files:
            SIDE_FILES.add(kind)
        return fn
    return deco


def check(cert, base=None):
    """Return None when ``cert`` is valid; raise Invalid (with the reason) when it is not, InputError when
    it is not a certificate at all.  ``base``: the folder of the certificate's side files (tensor programs:
    the arrays of the program, the point and the result), default the current folder."""
    if not isinstance(cert, dict) or "format" not in cert:
        raise InputError(f"not a certificate (a {FORMAT} certificate is a JSON object with a format key)")
    if cert.get("format") != FORMAT:
        raise InputError(f"not a {FORMAT} certificate (format {cert.get('format')!r}: regenerate it with this "
                         "version)")
    try:
        validate_schema(cert)
    except InputError as e:
        raise Invalid(str(e)) from None
    _load_checks()
    from ..certificates import digest
    if cert["digest"] != digest(cert):
        raise Invalid("the certificate was changed after it was written (digest mismatch)")
    fn = CHECKS.get(cert["kind"])
    if fn is None:
        raise Invalid(f"no checker for certificates of kind {cert['kind']!r}")
    try:
        if cert["kind"] in SIDE_FILES:
            import os
            fn(cert, os.path.abspath(base if base is not None else os.getcwd()))
        else:
            fn(cert)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError, OverflowError) as e:
        raise Invalid(f"malformed certificate ({type(e).__name__}: {e})") from None
    except RecursionError:
        raise Invalid("the certificate is nested too deeply to be checked") from None


def _load_checks():
    import importlib
    for name in CHECK_MODULES:
        importlib.import_module(f"{__name__}.{name}")
