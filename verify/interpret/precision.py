"""Precision: the one escalation ladder of the interpreters and certifiers, and running a job at a precision.

A ball at any precision is a sound enclosure, and a sign it decides stays true at every other precision; so
when a sign is undecided the work is redone at more bits, along ``ladder``: the start, then ``step`` times the
bits each time (2 for whole jobs, ``CONE_STEP`` for the evaluator's re-run of one undecided cone, which is
cheap), up to ``PREC_CAP``.  Certificates state powers of two (``certified_start``), so that a stated
precision is one of a few values.  The certificate checker keeps its own ladder (verify/checker/common.py).
"""
import contextlib

from flint import ctx

from ..errors import InputError, Undecidable, Undecided
from ..numbers import get_system

DEFAULT_PREC = 128
PREC_CAP = 4096
CONE_STEP = 4           # the evaluator's cone re-runs: a cone is small, so take bigger steps
POWERS = (64, 128, 256, 512, 1024, 2048, 4096)


def next_precision(p, cap=PREC_CAP, step=2):
    """The rung after ``p`` bits: ``step * p``, at most ``cap``."""
    return min(step * p, cap)


def ladder(start=DEFAULT_PREC, cap=PREC_CAP, step=2):
    """The precisions start, step * start, ... up to and including ``cap`` (just ``start`` when start >= cap)."""
    p = start
    while True:
        yield p
        if p >= cap:
            return
        p = next_precision(p, cap, step)


def certified_start(bits=None, tol=None):
    """The starting precision a certifier states: the power of two at least ``bits`` (default 128) and at least
    tol + 64 when a tolerance of 2^-tol is asked for."""
    need = max(bits or DEFAULT_PREC, (tol + 64) if tol is not None else 0)
    return 1 << (need - 1).bit_length()


def certified_ladder(prec=None, cap=PREC_CAP):
    """``ladder`` from ``prec`` for certifiers, whose certificates state one of POWERS: ``prec`` must be one."""
    if prec is not None and prec not in POWERS:
        raise InputError(f"prec={prec!r}: certifiers work at a power of two from 64 to 4096 bits")
    return ladder(prec or DEFAULT_PREC, cap)


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
    """Run ``job(ns, prec)`` in number system ``number`` along ``ladder`` from ``prec`` bits (default 128) while
    it raises Undecided; an Undecidable (more precision cannot help) stops at once.  Floats run once.
    ``systems`` maps a name to a system (default: the scalar systems; the tensor interpreter passes its own).
    Returns job's result."""
    ns = (systems or get_system)(number)
    if ns.name.startswith("float"):
        return job(ns, None)
    if prec is not None and (type(prec) is not int or prec < 2):
        raise InputError(f"prec={prec!r} must be an integer number of bits >= 2")
    start = prec or DEFAULT_PREC
    for p in ladder(start, max(cap, start)):
        try:
            with working_precision(ns, p):
                return job(ns, p)
        except Undecidable:
            raise
        except Undecided as u:
            # a run that escalated its own undecided cone up to the cap has tried every precision
            if p >= max(cap, start) or getattr(u, "cap_reached", False):
                top = max(p, u.prec or p)
                raise Undecided(f"{u} (still undecided at {top} bits)", prec=top) from None
