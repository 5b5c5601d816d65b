"""Reproductions of the paper's figures and claims, each certified in exact arithmetic.

    verify.reproduce.reproduce(["figure1"], out_dir="reproduce-out")   # -> {"figure1": {...}}

Each reproduction ``run(out_dir, progress=None)`` writes its figure and tables into ``out_dir`` and returns
a dict with at least ``figure``, ``rows`` and ``ok``.
"""
import os

from ..errors import InputError
from . import figure1, section5

REPRODUCTIONS = {"figure1": figure1.run, "section5": section5.run}


def reproduce(names=None, out_dir="reproduce-out", progress=None):
    """Run the named reproductions (default: all), each into ``out_dir/<name>``; return {name: result}.
    An unknown name is an InputError listing the known ones."""
    if names is None:
        names = list(REPRODUCTIONS)
    elif isinstance(names, str):
        names = [names]
    else:
        names = list(names)
    unknown = [n for n in names if n not in REPRODUCTIONS]
    if unknown:
        raise InputError(f"unknown reproduction(s) {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(REPRODUCTIONS)})")
    results = {}
    for name in names:
        if progress:
            progress(f"reproducing {name}")
        results[name] = REPRODUCTIONS[name](os.path.join(out_dir, name), progress=progress)
    return results


__all__ = ["REPRODUCTIONS", "reproduce", "figure1", "section5"]
