"""The matrix exponential entry by entry (the value of the ``expm`` primitive, verify/program/prims/spectral.py)
and its gradient, with rigorous enclosures (FLINT's arb_mat.exp) or floats (scipy, unverified).

The inputs are the n^2 entries of A, row by row; ``expm_entry(xs, i, j)`` is exp(A)[i, j] and
``expm_gradient(xs, i, j)`` the n^2 partial derivatives d exp(A)[i, j] / d A[k, l], row by row.  The gradient
is the Frechet derivative's adjoint: <G, L(A, E)> = <L(A^T, G), E>, so the gradient of entry (i, j) is
L(A^T, E_ij), the top-right block of exp([[A^T, E_ij], [0, A^T]]) (Higham, Functions of Matrices, 3.2).  At
A = 0 (exact) the value is the identity's entry and the gradient E_ij, exactly.
"""
import math

from flint import arb, arb_mat, fmpq


def _order(xs):
    n = math.isqrt(len(xs))
    if n * n != len(xs):
        raise ValueError(f"expm needs the n^2 entries of a square matrix, got {len(xs)}")
    return n


def _zero(xs):
    return all(isinstance(x, fmpq) and x == 0 for x in xs)


def _ball(x):
    return x if isinstance(x, arb) else arb(x)


def expm_entry(xs, i, j):
    """exp(A)[i, j] for A given by its entries ``xs`` (fmpq or arb): an arb ball (fmpq at A = 0)."""
    n = _order(xs)
    if _zero(xs):
        return fmpq(1 if i == j else 0)
    return arb_mat(n, n, [_ball(x) for x in xs]).exp()[i, j]


def expm_gradient(xs, i, j):
    """[d exp(A)[i, j] / d A[k, l] for k, l row by row] (arb balls; exact fmpq at A = 0)."""
    n = _order(xs)
    if _zero(xs):
        return [fmpq(1 if (k, c) == (i, j) else 0) for k in range(n) for c in range(n)]
    B = arb_mat(2 * n, 2 * n)
    for k in range(n):
        for c in range(n):
            B[k, c] = B[n + k, n + c] = _ball(xs[c * n + k])         # A^T in both diagonal blocks
    B[i, n + j] = arb(1)
    E = B.exp()
    return [E[k, n + c] for k in range(n) for c in range(n)]


def float_expm_entry(xs, i, j):
    import numpy as np
    from scipy.linalg import expm
    n = _order(xs)
    return np.float64(expm(np.array([float(x) for x in xs], dtype=np.float64).reshape(n, n))[i, j])


def float_expm_gradient(xs, i, j):
    import numpy as np
    from scipy.linalg import expm_frechet
    n = _order(xs)
    A = np.array([float(x) for x in xs], dtype=np.float64).reshape(n, n)
    E = np.zeros((n, n))
    E[i, j] = 1.0
    return [np.float64(v) for v in expm_frechet(A.T, E, compute_expm=False).ravel()]
