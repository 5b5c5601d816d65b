"""Tensor programs of common models, built equation by equation (benchmarks, tests and examples share them).

``mlp_loss(X, Y, sizes)``: a ReLU MLP with softmax cross-entropy summed over the batch; its inputs are the
parameters W1, b1, W2, b2, ... (shapes (sizes[i], sizes[i+1]) and (sizes[i+1],)), so its gradient is the
gradient with respect to every weight, and the batch X and the one-hot labels Y are exact array constants.
"""
from .arrays import Arrays, ExactArray
from .builder import Builder
from .ir import Arr


def mlp_loss(X, Y, sizes, name="mlp"):
    names = [f"{k}{i + 1}" for i in range(len(sizes) - 1) for k in ("W", "b")]
    shapes = [s for a, b in zip(sizes[:-1], sizes[1:]) for s in ((a, b), (b,))]
    bld = Builder(name, names, shapes, Arrays({"x": ExactArray.from_any(X), "y": ExactArray.from_any(Y)}))
    h = Arr("x")
    for i in range(len(sizes) - 1):
        z = bld.emit("add", [bld.emit("dot", [h, 2 * i], {})[0], 2 * i + 1])[0]
        h = bld.emit("relu", [z])[0] if i < len(sizes) - 2 else z
    lse = bld.emit("sum", [bld.emit("logsumexp", [h], {"axes": (1,)})[0]], {"axes": (0,)})[0]
    picked = bld.emit("sum", [bld.emit("mul", [h, Arr("y")])[0]], {"axes": (0, 1)})[0]
    return bld.finish([bld.emit("sub", [lse, picked])[0]])
