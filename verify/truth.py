"""Three-valued truth.  ``bool(UNKNOWN)`` raises, so an undecided comparison cannot reach an ``if``."""
import enum

from .errors import UnknownTruth


class Truth(enum.Enum):
    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"

    def __bool__(self):
        if self is Truth.UNKNOWN:
            raise UnknownTruth("an undecided comparison was used as a bool")
        return self is Truth.TRUE

    def __invert__(self):
        return {Truth.TRUE: Truth.FALSE, Truth.FALSE: Truth.TRUE}.get(self, Truth.UNKNOWN)

    def __and__(self, other):
        if Truth.FALSE in (self, other):
            return Truth.FALSE
        return Truth.TRUE if (self, other) == (Truth.TRUE, Truth.TRUE) else Truth.UNKNOWN

    def __or__(self, other):
        if Truth.TRUE in (self, other):
            return Truth.TRUE
        return Truth.FALSE if (self, other) == (Truth.FALSE, Truth.FALSE) else Truth.UNKNOWN

    @staticmethod
    def of(b):
        """TRUE/FALSE from a decided Python bool; UNKNOWN from None."""
        if b is None:
            return Truth.UNKNOWN
        return Truth.TRUE if b else Truth.FALSE


TRUE, FALSE, UNKNOWN = Truth.TRUE, Truth.FALSE, Truth.UNKNOWN

# The code of a sign that arithmetic could not decide, in the int8 sign arrays of the tensor number systems
# and of the site tables, beside the decided signs -1, 0 and 1 (a ball that contains 0 without being 0).
SIGN_UNDECIDED = 2


class Verdict(enum.Enum):
    """The answer to a checked claim; the CLI exit code is ``Verdict.exit_code``."""
    PROVED = 0
    REFUTED = 1
    UNDECIDED = 3

    @property
    def exit_code(self):
        return self.value
