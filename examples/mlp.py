"""A small tensor program with array constants, for the docs:  python examples/mlp.py

Writes into the current folder mlp.prog (a 4-8-3 ReLU MLP with softmax cross-entropy over a batch of 5),
mlp.npz (its constants: the second layer and the one-hot labels, stored exactly and named in the text by
their digest) and params.npz (a point: one array per input, x, W1, b1).  The first unit of sample 0 sits
exactly on relu's kink: x[0] = e_0 and W1[0, 0] = 0, b1 = 0.
"""
import numpy as np

import verify

rng = np.random.default_rng(0)
constants = verify.Arrays({
    "W2": verify.ExactArray.from_any(rng.standard_normal((8, 3)).astype(np.float32)),
    "b2": verify.ExactArray.from_any(np.zeros(3, np.float32)),
    "onehot": verify.ExactArray.from_any(np.eye(3)[[0, 2, 1, 1, 0]]),
})
constants.save("mlp.npz")
with open("mlp.prog", "w", encoding="utf-8") as f:
    f.write(f'''arrays("mlp.npz", digest="{constants.digest}")

def mlp(x: [5, 4], W1: [4, 8], b1: [8]):
    h = relu(x @ W1 + b1)
    z = h @ const("W2") + const("b2")
    return sum(logsumexp(z, axes=(1,)), axes=(0,)) - sum(z * const("onehot"), axes=(0, 1))
''')

x = rng.standard_normal((5, 4)).astype(np.float32)
W1 = rng.standard_normal((4, 8)).astype(np.float32)
x[0] = [1, 0, 0, 0]
W1[0, 0] = 0
np.savez("params.npz", x=x, W1=W1, b1=np.zeros(8, np.float32))
print("wrote mlp.prog, mlp.npz, params.npz")
