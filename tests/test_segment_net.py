"""Claim 1 and Proposition 2 on tensor programs (verify/certify/segment_net.py).  Oracles: the scalarised
program's exact walk (the reference semantics of a tensor program), the tensor interpreter's own pattern on a
fine rational grid, and exact rationals."""
import numpy as np
from flint import fmpq

from verify.interpret import tensor as T
from verify.program.arrays import ExactArray
from verify.program.builder import Builder


def Q(*a):
    return fmpq(*a)


# ------------------------------------------------------------------------------- regressions found on the way

def test_a_zero_dimensional_float_array_is_exact():
    a = ExactArray.from_any(np.float32(0.75))
    assert a.shape == () and a.item(()) == Q(3, 4)


def test_a_structurally_zero_switching_function_is_decided_at_every_site():
    b = Builder("f", ["x"], [(3,)])
    m = b.emit("max", [0, 0])[0]
    P = b.finish([b.emit("sum", [b.emit("relu", [m])[0]], {"axes": (0,)})[0]])
    r = T.evaluate(P, [np.array([1.0, -1.0, 0.0])])
    assert r.pattern[0].tolist() == [2, 2, 2] and r.values[0] == 1       # max(x, x): a tie everywhere, split
