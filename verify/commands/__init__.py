"""The CLI's subcommands.  Each module here defines ``add(sub)``, which adds its parser(s) to the argparse
subparsers ``sub`` with ``set_defaults(run=...)``; ``run(args)`` returns the exit code.  ``modules()`` finds
them; ORDER fixes the order ``verify --help`` shows (others follow alphabetically).

One output contract for every command (``output.schema.json``, tested): with --json, exactly one JSON object
on stdout whatever the outcome, with "command", "verdict" (PROVED, REFUTED, UNDECIDED or ERROR, mirroring
the exit code 0, 1, 3, 2) and "reason" whenever the verdict is not PROVED, plus the command's own keys.
"""
import argparse
import json
import sys

from ..numbers import SYSTEMS
from ..program import kinks

ORDER = ("core", "index", "segment", "check", "fuzz", "reproduce")
EXIT = {"PROVED": 0, "REFUTED": 1, "ERROR": 2, "UNDECIDED": 3, "UNVERIFIED": 0}
VERIFIED_SYSTEMS = ("exact", "ball", "interval")


def float_verdict(number, verdict, reason):
    """(verdict, reason) of a command that computed in the number system ``number``: a float system certifies
    nothing, so what would be PROVED is UNVERIFIED (exit 0: the computation was done, nothing was proved)."""
    if verdict == "PROVED" and number not in VERIFIED_SYSTEMS:
        return "UNVERIFIED", (f"number={number}: a float computation, as a framework does it; it certifies nothing "
                              "(use --number exact or ball for a certified answer)")
    return verdict, reason
FMT = argparse.RawDescriptionHelpFormatter


def modules():
    import pkgutil
    found = {m.name for m in pkgutil.iter_modules(__path__)}
    return [m for m in ORDER if m in found] + sorted(found - set(ORDER))


PROGRAM_HELP = ("PROGRAM is a .prog file (a Python subset: defs of assignments and a return; --fn picks a def, "
                "default the last) or a lambda string such as 'lambda x, y: max(x, y) + relu(x - y)'.")
POINT_HELP = "POINT is comma-separated exact numbers: --at 1/3,-2,0.25 (decimals are exact: 0.1 is 1/10)."
EXIT_HELP = ("exit codes: 0 done / PROVED, 1 REFUTED, 2 bad input or ERROR (one line on stderr), 3 UNDECIDED, "
             "4 internal error (a bug: please report it).  With --json: one JSON object on stdout whatever the "
             "outcome, with verdict (PROVED, REFUTED, UNDECIDED, ERROR) and reason.")


def footer(*parts):
    """An epilog made of the given paragraphs and the exit codes (each command describes only its own flags)."""
    import textwrap
    return "\n\n".join(textwrap.fill(p, 110) for p in parts + (EXIT_HELP,)) + "\n"


def add_program(p, at=True):
    """The arguments every program command shares."""
    p.add_argument("program", metavar="PROGRAM", help="a .prog file or a lambda string")
    if at:
        p.add_argument("--at", required=True, metavar="POINT", help="the point, e.g. 1/3,-2,0.25")
    p.add_argument("--fn", metavar="NAME", help="which def of the file to use (default: the last)")
    p.add_argument("--convention", default=kinks.DEFAULT, choices=sorted(kinks.CONVENTIONS),
                   help="whose derivatives at kinks: torch, jax or tf (default torch); params written in the "
                        "program win")
    p.add_argument("--json", action="store_true", help="print one JSON object (whatever the outcome)")


PREC_MAX = 65536


def positive(name, limit=None):
    """An argparse type: an integer >= 1 (and <= limit), with a message naming the flag."""
    def conv(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}={s!r} is not an integer") from None
        if v < 1 or (limit is not None and v > limit):
            raise argparse.ArgumentTypeError(f"{name}={v} must be between 1 and {limit}" if limit else
                                             f"{name}={v} must be at least 1")
        return v
    return conv


def add_numbers(p):
    p.add_argument("--number", default="exact", choices=SYSTEMS,
                   help="exact rationals (values that stop being rational become balls), ball (arb), "
                        "interval (mpmath, a cross-check), float/float64/float32/float16 (unverified); "
                        "default: exact")
    p.add_argument("--prec", type=positive("--prec", PREC_MAX), metavar="BITS",
                   help=f"starting ball precision in bits (default 128; raised up to 4096 when a sign is undecided; "
                        f"at most {PREC_MAX})")


def emit(args, verdict, payload=None, text=None, reason=None):
    """Print the outcome (one JSON object with --json, else ``text``); return the exit code of ``verdict``."""
    from .. import progress
    progress.clear()
    if getattr(args, "json", False):
        out = {"command": args.cmd, "verdict": verdict}
        if reason and verdict != "PROVED":
            out["reason"] = reason
        out.update(payload or {})
        if verdict != "PROVED" and not out.get("reason"):
            out["reason"] = reason or verdict.lower()
        print(json.dumps(out))
    elif text is not None:
        print(text)
    sys.stdout.flush()          # a closed pipe shows here, inside main, not at exit
    return EXIT[verdict]


def check_certificate_path(args):
    """--certificate into a folder that does not exist (or is not writable) fails before any work."""
    path = getattr(args, "certificate", None)
    if path:
        from ..certificates import check_writable
        check_writable(path)


def write_certificate(cert, path):
    """Validate and write a certificate (a dict, or a tensor program's certificate with its side files); say
    where on stderr (stdout stays the command's output)."""
    if hasattr(cert, "write"):
        cert.write(path)
        print(f"certificate written to {path} (with its .npz side files beside it)", file=sys.stderr)
        return
    from ..certificates import write
    write(cert, path)
    print(f"certificate written to {path}", file=sys.stderr)
