"""Reproductions of the paper's figures and claims, each certified in exact arithmetic.

    verify.reproduce.reproduce(["figure1"], out_dir="reproduce-out")   # -> {"figure1": {...}}

Each reproduction ``run(out_dir, progress=None)`` writes its figure and tables into ``out_dir`` and returns
a dict with at least ``figure``, ``rows`` and ``ok``.  TARGETS names them (the modules load on first use, so
that listing them, e.g. in ``verify reproduce --help``, imports no certifier).
"""
import importlib
import os

from ..errors import InputError

TARGETS = {
    "figure1": "Figure 1 and Section 1.1: relu, relu2, relu3 and zero have AD derivatives 0, 1, 1/2, 1 at 0; "
               "sin shifted by zero(t - s); beside live PyTorch and JAX",
    "section5": "Section 5.1 and Theorem 1 as certificates: relu and sorting fields equal Clarke, the artificial "
                "critical point of t - zero(t), AD's derivative shifted at a point",
}


def _module(name):
    return importlib.import_module(f".{name}", __name__)


def __getattr__(name):
    if name == "REPRODUCTIONS":
        return {n: _module(n).run for n in TARGETS}
    if name in TARGETS:
        return _module(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def reproduce(names=None, out_dir="reproduce-out", progress=None):
    """Run the named reproductions (default: all), each into ``out_dir/<name>``; return {name: result}.
    An unknown name is an InputError listing the known ones."""
    if names is None:
        names = list(TARGETS)
    elif isinstance(names, str):
        names = [names]
    else:
        names = list(names)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise InputError(f"unknown reproduction(s) {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(TARGETS)})")
    results = {}
    for name in names:
        if progress:
            progress(f"reproducing {name}")
        results[name] = _module(name).run(os.path.join(out_dir, name), progress=progress)
    return results


__all__ = ["TARGETS", "REPRODUCTIONS", "reproduce", "figure1", "section5"]
