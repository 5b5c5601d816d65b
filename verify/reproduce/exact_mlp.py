"""Exact pre-activations of a ReLU MLP at float parameters on a float batch: is the network *exactly* at a kink?

Floats are dyadic rationals, so every pre-activation z = W h + b of a ReLU network evaluated in real arithmetic
at float parameters and float inputs is a dyadic rational too.  Scaling every matrix to integers over a
common power-of-two denominator makes the whole forward pass integer arithmetic: python-flint ``fmpz_mat``
products, exact, with relu applied to exact integers.  A pre-activation is exactly 0 if and only if its integer
is 0: no rounding, no tolerance.

This is deliberately one small, self-contained function (``exact_preactivations`` / ``exact_kinks``), so that the
kink-hit experiment can later call the tensor evaluator of ``verify.audit`` instead, with the same contract:

    exact_kinks(weights, biases, x) -> [number of exactly-zero pre-activations of hidden layer 1, 2, ...]

``weights[l]`` has shape (out, in) (PyTorch's ``nn.Linear.weight``), ``biases[l]`` shape (out,), ``x`` shape
(batch, features); any float dtype (float16 / float32 / float64 numpy arrays); the last layer is the output layer
(no relu), so its pre-activations are not counted unless ``include_output``.
"""
import numpy as np
from flint import fmpz_mat


def dyadic_ints(a):
    """(ints, e): the float array ``a`` (any shape) is exactly ints * 2**e, ints a row-major list of Python ints.
    Raises ValueError for a non-finite entry (inf / nan are not rationals)."""
    a = np.asarray(a)
    if not np.all(np.isfinite(a)):
        raise ValueError("a non-finite float has no exact rational value")
    m, ex = np.frexp(a.astype(np.float64))           # a = m * 2**ex, 1/2 <= |m| < 1: exact for every float type
    mant = (m * 2.0 ** 53).astype(np.int64)            # m * 2**53 is an integer below 2**53: exact
    ex = ex.astype(np.int64) - 53
    nz = mant != 0
    if not nz.any():
        return [0] * a.size, 0
    # drop the trailing zero bits of the mantissas: smaller integers, same values
    low = np.zeros_like(mant)
    low[nz] = mant[nz] & -mant[nz]
    tz = np.zeros_like(mant)
    tz[nz] = np.round(np.log2(low[nz].astype(np.float64))).astype(np.int64)
    mant[nz] >>= tz[nz]
    ex[nz] += tz[nz]
    e = int(ex[nz].min())
    shifts = (ex - e).ravel().tolist()
    return [v << s if v else 0 for v, s in zip(mant.ravel().tolist(), shifts)], e


def _matrix(a):
    ints, e = dyadic_ints(a)
    a = np.asarray(a)
    rows, cols = (a.shape[0], a.shape[1]) if a.ndim == 2 else (a.shape[0], 1)
    return fmpz_mat(rows, cols, ints), e


def exact_preactivations(weights, biases, x):
    """[(Z, e)] per layer: the exact pre-activations of layer l on the batch are Z * 2**e, Z an fmpz_mat of shape
    (out, batch) (column j: sample j).  Hidden layers apply relu to the exact values before the next layer."""
    x = np.asarray(x)
    H, eh = _matrix(x.T)                                # (features, batch)
    n = x.shape[0]
    out = []
    for W, b in zip(weights, biases):
        Wm, ew = _matrix(W)
        Z, ez = Wm * H, ew + eh
        bi, eb = dyadic_ints(np.asarray(b).reshape(-1))
        if eb >= ez:
            col = [v << (eb - ez) for v in bi]
        else:                                           # put the product on the bias's finer denominator
            Z, ez, col = Z * (1 << (ez - eb)), eb, bi
        Z = Z + fmpz_mat(len(col), n, [v for v in col for _ in range(n)])
        out.append((Z, ez))
        H, eh = fmpz_mat(Z.nrows(), n, [v if v > 0 else 0 for v in Z.entries()]), ez
    return out


def exact_kinks(weights, biases, x, include_output=False):
    """Per hidden layer (and the output layer with ``include_output``), how many pre-activations are exactly 0."""
    pre = exact_preactivations(weights, biases, x)
    if not include_output:
        pre = pre[:-1]
    return [sum(1 for v in Z.entries() if v == 0) for Z, _ in pre]
