"""Is a ReLU MLP *exactly* at a kink at float parameters on a float batch?

Floats are dyadic rationals, so every pre-activation z = W h + b of the network, evaluated in real arithmetic at
float parameters and float inputs, is a dyadic rational too.  The network is written as a tensor program with
the weights, biases and batch as exact array constants (``mlp_program``) and evaluated by verify's tensor
interpreter in exact arithmetic (integer numerators over a common power-of-two denominator, FLINT matrix
products): a pre-activation is exactly 0 if and only if its switching function is exactly 0 (no rounding, no
tolerance).  The same evaluation is what ``verify audit`` runs on imported models.

    exact_kinks(weights, biases, x) -> [number of exactly-zero pre-activations of hidden layer 1, 2, ...]

``weights[l]`` has shape (out, in) (PyTorch's ``nn.Linear.weight``), ``biases[l]`` shape (out,), ``x`` shape
(batch, features); any float dtype (float16 / float32 / float64 numpy arrays); the last layer is the output layer
(no relu), so its pre-activations are counted only with ``include_output`` (through an identity ``relu`` of the
output that the loss does not see).
"""
import numpy as np

from ..numbers.tensor import ExactTensors
from ..program.arrays import Arrays, ExactArray
from ..program.builder import Builder
from ..program.ir import Arr


def mlp_program(weights, biases, x, include_output=False):
    """The MLP's forward pass on the batch as a tensor program with no inputs: every weight, bias and the batch
    are exact constants; hidden layers apply relu (and the output too with ``include_output``)."""
    arrays = {"x": ExactArray.from_any(np.asarray(x), "the batch")}
    for i, (W, b) in enumerate(zip(weights, biases)):
        arrays[f"W{i}"] = ExactArray.from_any(np.asarray(W).T, f"weights of layer {i + 1}")   # (in, out)
        arrays[f"b{i}"] = ExactArray.from_any(np.asarray(b).reshape(-1), f"biases of layer {i + 1}")
    bld = Builder("mlp", [], [], Arrays(arrays))
    h = Arr("x")
    n = len(weights)
    for i in range(n):
        z = bld.emit("add", [bld.emit("dot", [h, Arr(f"W{i}")], {})[0], Arr(f"b{i}")])[0]
        h = bld.emit("relu", [z])[0] if i < n - 1 or include_output else z
    return bld.finish([bld.emit("sum", [h], {"axes": (0, 1)})[0]])


def exact_kinks(weights, biases, x, include_output=False):
    """Per hidden layer (and the output layer with ``include_output``), how many pre-activations are exactly 0.
    Raises InputError for a non-finite entry (inf / nan are not rationals)."""
    from ..interpret import tensor as T
    P = mlp_program(weights, biases, x, include_output)
    r = T.run(P, ExactTensors(), [])
    out = []
    for st in T.nonsmooth_steps(P, r.convention):
        (s,) = r.switch_signs(st, 0)
        out.append(int((s == 0).sum()))
    return out
