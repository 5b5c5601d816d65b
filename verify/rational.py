"""Exact rationals at the boundary: every number that enters an exact path goes through ``to_fmpq``."""
import fractions
import math
import numbers as _numbers

from flint import fmpq, fmpz

from .errors import InputError, Undecided


def to_fmpq(x, what="number"):
    """Return ``x`` as an exact ``fmpq``.

    Accepts int, fmpz, fmpq, fractions.Fraction, a string ("1/3", "-2", "0.25", "1e-3": decimals are read
    exactly, so "0.1" is 1/10) and float (its exact binary value: 0.1 becomes 3602879701896397/2**55).
    Anything else, or a non-finite float, is an InputError naming the value.
    """
    if isinstance(x, bool):
        raise InputError(f"{what} {x!r} is a bool, not a number")
    if isinstance(x, fmpq):
        return x
    if isinstance(x, (int, fmpz)):
        return fmpq(int(x))
    if isinstance(x, fractions.Fraction):
        return fmpq(x.numerator, x.denominator)
    if isinstance(x, float):
        if not math.isfinite(x):
            raise InputError(f"{what} {x!r} is not a finite number")
        p, q = x.as_integer_ratio()
        return fmpq(p, q)
    if isinstance(x, str):
        s = x.strip()
        check_literal(s, what)
        try:
            f = fractions.Fraction(s)
        except (ValueError, ZeroDivisionError):
            raise InputError(f"{what} {x!r} is not an exact number (write e.g. 1/3, -2, 0.25, 1e-3)") from None
        return fmpq(f.numerator, f.denominator)
    if isinstance(x, _numbers.Rational):
        return fmpq(int(x.numerator), int(x.denominator))
    if isinstance(x, _numbers.Real) and type(x).__module__ == "numpy":
        return to_fmpq(float(x), what)
    raise InputError(f"{what} {x!r} of type {type(x).__name__} is not a number")


MAX_DIGITS = 10000      # digits or decimal exponent of one number written in text
MAX_BITS = 10 ** 7      # size of an exact rational (numerator and denominator bits) verify computes at most


def dyadic_q(a, what="a ball's midpoint"):
    """The exact value m * 2^e of a dyadic number ``a`` (an arb of radius 0, such as a ball's ``mid()``, ``rad()``,
    ``lower()``, or an arf) as an fmpq, with no rounding.  Undecided when |e| exceeds MAX_BITS: such a rational
    (exp(exp(30)) has e near 2^43) is not formed (building 2^e would exhaust memory or crash FLINT)."""
    m, e = a.man_exp()
    m, e = int(m), int(e)
    if abs(e) > MAX_BITS:
        raise Undecided(f"{what} is m * 2^{e}: an exact rational of more than {MAX_BITS} bits "
                        "(verify.rational.MAX_BITS) is not formed")
    return fmpq(m << e) if e >= 0 else fmpq(m, 1 << -e)


def check_literal(s, what="number"):
    """Refuse a number written with more than MAX_DIGITS digits or a decimal exponent beyond MAX_DIGITS
    (fractions.Fraction("1e1000000000") would build a billion-digit integer)."""
    import re
    m = re.search(r"[eE]\s*([+-]?\d+)\s*$", s)
    if (m and abs(int(m.group(1)[:12])) > MAX_DIGITS) or len(s) > 2 * MAX_DIGITS + 2:
        raise InputError(f"{what} {s[:40]!r}{'...' if len(s) > 40 else ''} exceeds the limit of {MAX_DIGITS} digits "
                         "or a decimal exponent of 10^" + str(MAX_DIGITS) + " (verify.rational.MAX_DIGITS)")


def parse_point(text):
    """Parse a comma-separated point such as "1/3,-2,0.25" into a list of fmpq."""
    if isinstance(text, str):
        parts = [p for p in text.split(",")]
        if not text.strip() or any(not p.strip() for p in parts):
            raise InputError(f"point {text!r} is malformed: write comma-separated numbers such as 1/3,-2,0.25")
        return [to_fmpq(p, "coordinate") for p in parts]
    try:
        items = list(text)
    except TypeError:
        items = [text]
    return [to_fmpq(p, "coordinate") for p in items]


def fmt_q(q):
    """"p/q" (or "n") for an fmpq."""
    return str(q.p) if q.q == 1 else f"{q.p}/{q.q}"


