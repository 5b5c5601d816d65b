"""Progress of long runs on stderr, only when the command line asks for it and stderr is a terminal.

Library code calls ``report(what, done, total)`` inside its long loops (global index sets, fields over many
patterns, segment walks, the checker); it costs one dictionary lookup when progress is off (the default, and
always in the Python API and with --json), and redraws at most five times a second when it is on.
"""
import sys
import time

_state = {"on": False, "last": 0.0, "width": 0}


def enable(on=True):
    """Show progress from now on when ``on`` and stderr is a terminal."""
    _state["on"] = bool(on) and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def report(what, done, total=None):
    if not _state["on"]:
        return
    now = time.monotonic()
    if now - _state["last"] < 0.2:
        return
    _state["last"] = now
    msg = f"verify: {what} {done}" + (f"/{total}" if total else "")
    msg = msg[:110]
    try:
        sys.stderr.write("\r" + msg.ljust(_state["width"]))
        sys.stderr.flush()
    except (OSError, ValueError):
        _state["on"] = False
        return
    _state["width"] = len(msg)


def clear():
    """Erase the progress line (before the command prints its own lines)."""
    if _state["width"]:
        try:
            sys.stderr.write("\r" + " " * _state["width"] + "\r")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        _state["width"] = 0
