"""Everything that builds a Program: .prog text and lambda strings (``text``), Python tracing (``trace``).
All of them go through ``Builder`` and end in ``typecheck``."""
from ..errors import ProgramError
from ..program.builder import Builder
from ..program.ir import Program


__all__ = ["Builder", "as_program"]


def as_program(source, fn=None):
    """A Program from a Program, .prog text, a path to a .prog file, or a lambda string."""
    if isinstance(source, Program):
        return source
    if isinstance(source, str):
        from .text import parse
        return parse(source, fn=fn)
    raise ProgramError(f"expected a Program, program text, a .prog path or a lambda string, got "
                       f"{type(source).__name__}")
