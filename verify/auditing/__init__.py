"""Audit what a framework's AD returned for a real model at a real point.

``verify.audit(f, *args, framework=None, wrt=None)`` imports the model through the framework registry
(``verify.frameworks``: the exact real-number program the float code approximates, with the framework's kink
choices written out), then answers, with certainty where certainty is possible:

- the framework's float gradient, and the exact selection gradient that the framework's kink convention
  defines at the exact point (floats read as the dyadic rationals they are), and element by element whether
  the float gradient is within float rounding of it;
- the exact kinks (sites whose switching function is exactly 0 at the exact point) and the float kinks (sites
  where a float evaluation of the same program in the model's precision decides otherwise: 0 in floats and
  not exactly, or the reverse, or the opposite sign), with their locations in the model;
- whether the point is certified differentiable (Proposition 3), and when the gradient is zero or tiny,
  whether it is selection-critical, Clarke-critical, artificial (Section 5);
- a verdict: is the framework's gradient a selection gradient of the exact function at this exact point.

The audit knows no framework by name: ``frameworks.get`` / ``frameworks.guess`` give the framework's module,
whose ``Model`` exports the model once, lowers it, computes the framework's own gradient and its own
intermediate values.  The modules here: ``auditor.py`` (``Auditor``: import once, audit many), ``engine.py``
(the certified side and the verdict), ``floats.py`` (the float side), ``report.py`` (the report: its text, its
JSON, the kink classes, the .npz of every kink and the figure).
"""
from .auditor import Auditor
from .engine import TINY, audit_certificates, audit_imported
from .report import AuditReport, FloatAgreement, Site

__all__ = ["audit", "Auditor", "audit_imported", "audit_certificates", "AuditReport", "FloatAgreement", "Site",
           "TINY"]


def audit(f, *args, framework=None, wrt=None, prec=None, tiny=TINY, critical="auto", exact=False, **options):
    """Audit the framework's gradient of ``f`` at ``args``: ``f`` is a torch.nn.Module or a function of
    tensors, or a JAX function, returning a scalar loss.  ``framework``: a registered name (default: guessed
    from ``f`` and ``args``); ``wrt``: names (or indices) of the program inputs to differentiate (default:
    every float input and, for torch, every parameter); ``exact``: the exact rational selection gradient (and
    the index set) in exact arithmetic throughout, instead of the float filter's enclosures (slower; then
    ``report.exact_gradient`` holds exact arrays); ``options``: the framework's import options (torch:
    ``params``; JAX: ``constant_args``).  Returns an AuditReport.  A one-shot ``Auditor``: to audit the same
    model again (new batches, new weights), keep an Auditor instead, which exports the model once."""
    return Auditor(f, *args, framework=framework, wrt=wrt, prec=prec, tiny=tiny, critical=critical, exact=exact,
                   **options).audit(*args)
