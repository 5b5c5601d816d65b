"""The ``verify`` command line: a thin layer over the Python API (commands live in verify/commands/).

Exit codes: 0 done / PROVED, 1 REFUTED, 2 bad input, a usage error or a program not defined at the point
(ERROR), 3 UNDECIDED, 4 internal error (a bug: please report it), 130 interrupted, 141 stdout closed early
(e.g. piped into head).  An error is one line on stderr, never a traceback; with --json, stdout also gets
exactly one JSON object whatever the outcome (verify/commands/output.schema.json).
"""
import argparse
import importlib
import json
import os
import sys

from .commands import FMT, modules
from .errors import InputError, Undecided, VerifyError


class UsageError(InputError):
    """A command line argparse rejects (a missing or unknown flag, a bad value)."""


class Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (raised, so that --json can report them too)."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser():
    from .version import __version__
    ap = Parser(prog="verify", formatter_class=FMT,
                description="Certified automatic differentiation of nonsmooth programs (Bolte & Pauwels 2020): "
                            "evaluate programs exactly or in ball arithmetic and compute the selection derivative "
                            "that AD returns, under PyTorch, JAX or TensorFlow kink conventions; certify index "
                            "sets, conservative fields, Clarke subdifferentials, critical points, segment "
                            "partitions and the integral identity, with certificates an independent checker "
                            "re-validates.",
                epilog="exit codes: 0 done / PROVED, 1 REFUTED, 2 bad input or ERROR, 3 UNDECIDED, 4 internal error "
                       "(a bug).\n`verify COMMAND --help` describes each command and its flags.")
    ap.add_argument("--version", action="version", version=f"verify {__version__}")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in modules():
        importlib.import_module(f".commands.{name}", __package__).add(sub)
    ap.commands = dict(sub.choices)     # command name -> its parser, as registered (aliases included)
    return ap


def _fix_negative_values(argv):
    """Let ``--at -1,2`` through: argparse would read -1,2 as an option."""
    out, it = [], iter(argv)
    for a in it:
        if a in ("--at", "--from", "--to", "--curve", "--shift"):
            nxt = next(it, None)
            if nxt is None or nxt.startswith("--"):
                out.append(a)
                if nxt is not None:
                    out.append(nxt)
            else:
                out.append(f"{a}={nxt}")
        else:
            out.append(a)
    return out


def command_names():
    """The names of the registered commands (from verify/commands/, as ``verify --help`` lists them)."""
    return tuple(build_parser().commands)


def _command(argv, names=None):
    """The command named on the command line (the first argument that is one), else "verify"."""
    names = names if names is not None else command_names()
    return next((a for a in argv if a in names), "verify")


def _about_json(argv):
    """``--help --json`` / ``--version --json``: one JSON object holding the help text or the version."""
    from .version import __version__
    ap = build_parser()
    cmd = _command(argv, ap.commands)
    if "--version" in argv and cmd == "verify":
        out = {"command": "verify", "verdict": "PROVED", "version": f"verify {__version__}"}
    else:
        out = {"command": cmd, "verdict": "PROVED",
               "help": (ap if cmd == "verify" else ap.commands[cmd]).format_help()}
    print(json.dumps(out))
    return 0


def _one_line(msg):
    return " ".join(str(msg).split()) or "(no message)"


def _fail(argv, verdict, msg, code):
    """Report an outcome that has no result: one line on stderr; with --json also one JSON object on stdout."""
    msg = _one_line(msg)
    print(f"verify: {'UNDECIDED' if verdict == 'UNDECIDED' else 'error'}: {msg}", file=sys.stderr)
    if "--json" in argv:
        try:
            cmd = _command(argv)
        except Exception:       # noqa: BLE001 - reporting a failure must not fail: the generic name then
            cmd = "verify"
        print(json.dumps({"command": cmd, "verdict": verdict, "reason": msg}))
    return code


def main(argv=None):
    argv = _fix_negative_values(sys.argv[1:] if argv is None else list(argv))
    import warnings

    from . import progress
    # the unverified float systems overflow to inf by design: the value says so, numpy need not warn
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"verify\.numbers\.floats")
    # torch.export's own deprecation noise (torch 2.13), not the user's concern nor ours
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)
    try:
        if "--json" in argv and any(a in ("-h", "--help", "--version") for a in argv):
            return _about_json(argv)
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:          # --help, --version
            return e.code if isinstance(e.code, int) else 0
        from .commands import check_certificate_path
        check_certificate_path(args)
        progress.enable(not getattr(args, "json", False))
        try:
            return args.run(args)
        finally:
            progress.clear()
            progress.enable(False)
    except Undecided as e:
        return _fail(argv, "UNDECIDED", e, 3)
    except VerifyError as e:
        return _fail(argv, "ERROR", e, 2)
    except RecursionError:
        return _fail(argv, "ERROR", "the program is nested too deeply for this command (Python's recursion limit): "
                                    "split it into smaller defs or equations", 2)
    except MemoryError:
        return _fail(argv, "ERROR", "out of memory: the program, the numbers or the enumeration is too large for "
                                    "this machine", 2)
    except BrokenPipeError:
        # stdout was closed early (e.g. `verify ... | head`): stop quietly, and keep Python from complaining
        # again when it flushes stdout at exit
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except KeyboardInterrupt:
        return _fail(argv, "ERROR", "interrupted", 130)
    except Exception as e:  # a bug, not bad input: one line, and a distinct exit code
        return _fail(argv, "ERROR", f"internal error (please report): {type(e).__name__}: {e}", 4)


if __name__ == "__main__":
    sys.exit(main())
