"""PyTorch and JAX, both directions: import their programs into verify, and run ours in them as an oracle.

- ``lowering.py``: what both importers share (the values of the interpretation, the ``Lowering`` that emits
  equations with their origins, the ``Imported`` result);
- ``torch.py``, ``jax.py``: one module per framework, holding its importer, its own gradient of a model and
  its own intermediate values (what an audit sets beside the exact evaluation);
- ``export.py``: running a verify Program with a framework's operations (``to_torch``, ``to_jax``,
  ``framework_grad``), the oracle of the ``frameworks`` fuzz claim.

``FRAMEWORKS`` is the one registry of frameworks: every other module (the audit, the CLI, the fuzz claims)
asks it instead of naming a framework.  A framework module provides ``NAME``, ``owns(f, args)``,
``import_model(f, *args, **options)``, ``gradient(f, args, imported, **options)``,
``framework_values(imported, *args)`` and ``Model(f, example_args, **options)`` (exported once, then
``imported(*args)``, ``gradient(args, imported)``, ``values(imported, args)`` at new arguments with the live
weights: what ``verify.Auditor`` uses); ``options`` are the framework's own import options (torch:
``params``; JAX: ``constant_args``).
"""
import importlib
from dataclasses import dataclass

from ..errors import InputError
from .export import ExportError, check_exportable, framework_grad, semantics, to_jax, to_torch
from .lowering import ImportFailure, Imported, InputInfo, Origin


@dataclass(frozen=True)
class Framework:
    """A framework verify imports from: its ``name`` (also its kink convention's name), the Python package
    that must be installed (``package``) and the options its importer takes."""
    name: str
    package: str
    options: tuple

    def available(self):
        """True when the framework's package can be imported."""
        try:
            importlib.import_module(self.package)
        except ImportError:
            return False
        return True

    def module(self):
        """The framework's module (frameworks/torch.py, frameworks/jax.py); ImportFailure when not installed."""
        if not self.available():
            raise ImportFailure(f"{self.name} is not installed (pip install 'verify-ad[frameworks]')")
        return importlib.import_module(f"{__name__}.{self.name}")

    def check_options(self, options):
        """Raise InputError naming an import option this framework does not take."""
        for k in options:
            if k not in self.options:
                raise InputError(f"option {k!r} is not an option of {self.name} models "
                                 f"(they take: {', '.join(self.options) or 'none'})")


FRAMEWORKS = {
    "torch": Framework("torch", "torch", ("params",)),
    "jax": Framework("jax", "jax", ("constant_args",)),
}


def get(name):
    """The registered Framework called ``name``; InputError naming the choices otherwise."""
    if name not in FRAMEWORKS:
        raise InputError(f"framework {name!r} is not supported (choose one of {', '.join(FRAMEWORKS)})")
    return FRAMEWORKS[name]


def guess(f, args):
    """The Framework that ``f`` and its arguments belong to (InputError when none or several claim them)."""
    import sys
    # a model of a framework means the framework is already imported: never import one just to ask
    found = [fw for fw in FRAMEWORKS.values() if fw.package in sys.modules and fw.module().owns(f, args)]
    if len(found) != 1:
        raise InputError("cannot tell the framework from the model and its arguments: pass framework="
                         + " or ".join(repr(n) for n in FRAMEWORKS))
    return found[0]


def available(name):
    """True when the framework ``name`` is registered and installed."""
    return name in FRAMEWORKS and FRAMEWORKS[name].available()


def from_torch(f, *example_args, params="inputs", name=None):
    """See ``verify.frameworks.torch.from_torch``."""
    return get("torch").module().from_torch(f, *example_args, params=params, name=name)


def from_jax(f, *example_args, constant_args=(), name=None):
    """See ``verify.frameworks.jax.from_jax``."""
    return get("jax").module().from_jax(f, *example_args, constant_args=constant_args, name=name)


__all__ = ["FRAMEWORKS", "Framework", "get", "guess", "available", "from_torch", "from_jax", "to_torch", "to_jax",
           "framework_grad", "check_exportable", "semantics", "ExportError", "ImportFailure", "Imported", "Origin",
           "InputInfo"]
