"""The ``verify`` command line: a thin layer over the Python API (commands live in verify/commands/).

Exit codes: 0 done / PROVED, 1 REFUTED, 2 bad input or a program not defined at the point, 3 UNDECIDED,
4 internal error (a bug: please report it).  Errors are one line on stderr, never a traceback.
"""
import argparse
import importlib
import sys

from .commands import EPILOG, modules
from .errors import Undecided, VerifyError


def build_parser():
    ap = argparse.ArgumentParser(
        prog="verify", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Certified automatic differentiation of nonsmooth programs (Bolte & Pauwels 2020): "
                    "evaluate programs exactly or in ball arithmetic and compute the selection derivative "
                    "that AD returns, under PyTorch, JAX or TensorFlow kink conventions.")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True
    for name in modules():
        importlib.import_module(f".commands.{name}", __package__).add(sub)
    return ap


def _fix_negative_values(argv):
    """Let ``--at -1,2`` through: argparse would read -1,2 as an option."""
    out, it = [], iter(argv)
    for a in it:
        if a in ("--at", "--from", "--to", "--curve", "--shift"):
            nxt = next(it, None)
            out.append(a if nxt is None else f"{a}={nxt}")
        else:
            out.append(a)
    return out


def main(argv=None):
    argv = _fix_negative_values(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except Undecided as e:
        print(f"verify: UNDECIDED: {e}", file=sys.stderr)
        return 3
    except VerifyError as e:
        print(f"verify: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("verify: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input: one line, and a distinct exit code
        print(f"verify: internal error (please report): {type(e).__name__}: {e}", file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(main())
