"""Precision: run a job in a number system at a precision, and escalate it while signs stay undecided.
Shared by the scalar interpreter (evaluate.py) and the tensor interpreter (tensor.py)."""
import contextlib

from flint import ctx

from ..errors import InputError, Undecidable, Undecided
from ..numbers import get_system

DEFAULT_PREC = 128
PREC_CAP = 4096


@contextlib.contextmanager
def working_precision(ns, bits):
    """Run inside ``bits`` of precision for ``ns`` (scalar or tensor system): flint's workprec for balls,
    mpmath's iv precision for intervals, nothing for exact-only and float systems."""
    if bits is None or ns.name.startswith("float"):
        yield
    elif ns.name == "interval":
        with ns.precision(bits):
            yield
    else:
        with ctx.workprec(bits):
            yield


def escalate(number, prec, job, cap=PREC_CAP, systems=None):
    """Run ``job(ns, prec)`` in number system ``number`` at ``prec`` bits (default 128), doubling the
    precision on Undecided up to ``cap`` bits; an Undecidable (more precision cannot help) stops at once.
    Floats run once.  ``systems`` maps a name to a system (default: the scalar systems; the tensor
    interpreter passes its own).  Returns job's result."""
    ns = (systems or get_system)(number)
    if ns.name.startswith("float"):
        return job(ns, None)
    if prec is not None and (type(prec) is not int or prec < 2):
        raise InputError(f"prec={prec!r} must be an integer number of bits >= 2")
    p = prec or DEFAULT_PREC
    cap = max(cap, p)
    while True:
        try:
            with working_precision(ns, p):
                return job(ns, p)
        except Undecidable:
            raise
        except Undecided as u:
            # a run that escalated its own undecided cone up to the cap has tried every precision
            if p >= cap or getattr(u, "cap_reached", False):
                top = max(p, u.prec or p)
                raise Undecided(f"{u} (still undecided at {top} bits)", prec=top) from None
            p = min(2 * p, cap)
