"""Reproductions of the paper's figures and claims, each certified in exact arithmetic.

    verify.reproduce.reproduce(["figure1"], out_dir="reproduce-out")   # -> {"figure1": {...}}

Each reproduction ``run(out_dir, progress=None, full=False, workers=None, dask=None)`` writes its certificates,
figures and tables into ``out_dir`` and returns a dict with at least ``figure``, ``rows`` (claim / paper /
ours / verdict) and ``ok``.  ``full`` runs the experiments at the paper's scale (the default is bounded: the
whole of ``verify reproduce`` takes a couple of minutes on two cores); ``workers`` / ``dask`` say where the
initialisation campaigns run (verify/executor.py, shared with ``verify fuzz``).  The entries whose
certificates are committed under ``proofs/<name>/`` are regenerated exactly by
``verify reproduce NAME --out proofs/NAME``.
"""
import importlib
import os
from collections.abc import Mapping

from ..errors import InputError

NAMES = ("figure1", "section5", "proposition2", "theorem3", "theorem4", "kinkhit", "maxpool")


class _Registry(Mapping):
    """name -> run, importing a reproduction's module only when it is asked for: the CLI lists the targets in
    its help without importing the certifiers (``verify check`` must never import them)."""

    def __getitem__(self, name):
        if name not in NAMES:
            raise KeyError(name)
        return importlib.import_module(f"{__name__}.{name}").run

    def __iter__(self):
        return iter(NAMES)

    def __len__(self):
        return len(NAMES)


REPRODUCTIONS = _Registry()

# one line per target, for `verify reproduce --help`
DESCRIPTIONS = {
    "figure1": "Figure 1 / Section 1.1: relu, relu2, relu3, zero, t - zero(t), sin with moved derivatives",
    "section5": "Section 5.1 and Theorem 1: D_f = Clarke for relu and sort; an artificial critical point",
    "proposition2": "Claim 1 and Proposition 2 on the paper's examples and a ReLU network's loss along a segment",
    "theorem3": "Theorem 3: the integral identity along a polynomial curve through a kink",
    "theorem4": "Theorem 4: mini-batch SGD in exact and float16/32/64 arithmetic avoids artificial critical points",
    "kinkhit": "Bertoin et al. (2021): relu'(0) = 0 vs 1 in backprop on digits MLPs, exact vs float kinks",
    "maxpool": "Boustany (2024): max-pool Jacobians in a digits CNN, float16/32/64, bifurcation and compensation "
               "zones certified",
}


def reproduce(names=None, out_dir="reproduce-out", progress=None, full=False, workers=None, dask=None):
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
            progress(f"reproducing {name}{' (full scale)' if full else ''}")
        results[name] = REPRODUCTIONS[name](os.path.join(out_dir, name), progress=progress, full=full,
                                            workers=workers, dask=dask)
    return results


__all__ = ["REPRODUCTIONS", "DESCRIPTIONS", "NAMES", "reproduce"] + list(NAMES)


def __getattr__(name):
    if name in NAMES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
