"""The CLI's subcommands.  Each module here defines ``add(sub)``, which adds its parser(s) to the argparse
subparsers ``sub`` with ``set_defaults(run=...)``; ``run(args)`` returns the exit code.  ``modules()`` finds
them; ORDER fixes the order ``verify --help`` shows (others follow alphabetically)."""
import argparse

from ..program import kinks
from ..numbers import SYSTEMS

ORDER = ("core", "index", "segment", "check", "fuzz", "reproduce")


def modules():
    import pkgutil
    found = {m.name for m in pkgutil.iter_modules(__path__)}
    return [m for m in ORDER if m in found] + sorted(found - set(ORDER))

EPILOG = """\
PROGRAM is a .prog file (a Python subset: defs of assignments and a return; --fn picks a def, default the
last) or a lambda string such as 'lambda x, y: max(x, y) + relu(x - y)'.  POINT is comma-separated exact
numbers: --at 1/3,-2,0.25 (decimals are exact: 0.1 is 1/10).

exit codes: 0 done / proved, 1 refuted, 2 bad input / not defined at the point, 3 undecided, 4 internal error
"""
FMT = argparse.RawDescriptionHelpFormatter


def add_program(p, at=True):
    """The arguments every program command shares."""
    p.add_argument("program", metavar="PROGRAM", help="a .prog file or a lambda string")
    if at:
        p.add_argument("--at", required=True, metavar="POINT", help="the point, e.g. 1/3,-2,0.25")
    p.add_argument("--fn", metavar="NAME", help="which def of the file to use (default: the last)")
    p.add_argument("--convention", default=kinks.DEFAULT, choices=sorted(kinks.CONVENTIONS),
                   help="whose derivatives at kinks: torch, jax or tf (default torch); params written in the "
                        "program win")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_numbers(p):
    p.add_argument("--number", default="exact", choices=SYSTEMS,
                   help="exact rationals (values that stop being rational become balls), ball (arb), "
                        "interval (mpmath, a cross-check), float/float64/float32/float16 (unverified); "
                        "default: exact")
    p.add_argument("--prec", type=int, metavar="BITS",
                   help="starting ball precision in bits (default 128; raised up to 4096 when a sign is undecided)")


def write_certificate(cert, path):
    """Validate and write a certificate; say where on stderr (stdout stays the command's output)."""
    import sys

    from ..certificates import write
    write(cert, path)
    print(f"certificate written to {path}", file=sys.stderr)
