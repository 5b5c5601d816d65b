"""Number systems behind one protocol.

A number system ``ns`` provides ``const(q)`` (an fmpq literal as a value of the system), the operations
``add sub mul div neg pow exp log sqrt sin cos tanh sigmoid erf atan lgamma erfinv``,
``polygamma(a, n)``, ``bessel_i(a, n)`` and the constant ``pi()`` (pure; domain
checks are the primitives' job), and ``sign(x)``, which returns -1, 0 or 1 when the sign is *decided* and
None when it is not.  Only ``sign`` turns a value into a decision, and it never guesses: a ball containing 0
that is not exactly 0 has sign None.

Systems: ``exact`` (fmpq, with values that stop being rational moved to arb balls: hybrid), ``ball``
(arb), ``interval`` (mpmath iv, an independent cross-check only), ``float`` / ``float64`` / ``float32`` /
``float16`` (what frameworks compute; unverified by definition).
"""
from ..errors import InputError
from .ball import BallSystem
from .exact import ExactSystem
from .floats import FloatSystem
from .interval import IntervalSystem

SYSTEMS = ("exact", "ball", "interval", "float", "float64", "float32", "float16")


def get_system(name):
    """Return the number system called ``name`` (one of SYSTEMS)."""
    if name == "exact":
        return ExactSystem()
    if name == "ball":
        return BallSystem()
    if name == "interval":
        return IntervalSystem()
    if name in ("float", "float64", "float32", "float16"):
        return FloatSystem("float64" if name == "float" else name)
    raise InputError(f"number system {name!r} is unknown (choose one of {', '.join(SYSTEMS)})")


__all__ = ["get_system", "SYSTEMS", "ExactSystem", "BallSystem", "IntervalSystem", "FloatSystem"]
