"""The errors verify raises.  The CLI maps each class to an exit code (see cli.py)."""


class VerifyError(Exception):
    """Base class: a clear, one-line message meant for the user."""


class InputError(VerifyError):
    """Bad input (a point, a flag, a parameter): exit code 2."""


class ParseError(InputError):
    """Program text that is not in the accepted Python subset.  Carries line and column (1-based)."""

    def __init__(self, msg, line=None, col=None, filename=None):
        self.msg, self.line, self.col, self.filename = msg, line, col, filename
        where = ""
        if line is not None:
            where = f"{line}:{col}: " if col is not None else f"{line}: "
            if filename:
                where = f"{filename}:{where}"
        super().__init__(where + msg)


class ProgramError(InputError):
    """A Program that fails typecheck (unbound variable, wrong arity, bad parameter...)."""


class DomainError(VerifyError):
    """The program is not defined at the point (log of a non-positive number, division by zero...)."""


class Undecided(VerifyError):
    """Arithmetic could not decide a sign even at the precision cap: the honest answer is UNDECIDED."""

    def __init__(self, msg, prec=None):
        self.prec = prec
        super().__init__(msg)


class Undecidable(Undecided):
    """Undecided for a reason that more precision cannot fix (e.g. a tie decided only by higher-order
    terms): precision escalation stops at once."""


class UnknownTruth(VerifyError, TypeError):
    """Raised by bool() of an UNKNOWN truth value: an undecided comparison never becomes True or False."""
