"""The linear algebra of the torch importer: elimination (det, slogdet, solve, inverse, cholesky, triangular
solves), LU with LAPACK's partial pivoting, Householder reflectors and QR with LAPACK's sign convention, and the
spectral family (eigenvalues, singular values, norms and condition numbers built on them, the pseudo-inverse,
the matrix exponential).

Each op registers in ``torch_ops.OPS`` through ``torch_ops.op``, as the rest of PyTorch's operator set does;
frameworks/torch.py imports this module so that the registrations happen.  Where LAPACK makes a choice on the
values (a pivot row, the sign of a reflector), the program makes the same choice explicitly, as a selection
whose pieces the audit sees; where the result is not a function of the matrix (eigenvectors, singular vectors:
LAPACK's choice of basis) the importer refuses.
"""
import math
from dataclasses import dataclass

import numpy as np
from flint import fmpq

from ..program.ir import Lit
from .lowering import Const, Tensor, Unavailable, exact_q
from .torch_ops import abs_of, checked_decomposition, const_array, op, product_of, stack_last


# --------------------------------------------------------------------------------------------- linear algebra

def _sl(lo, t, axis_slices):
    """t[..., a0:b0, a1:b1] for the last two axes (``axis_slices``: ((a0, b0), (a1, b1)))."""
    nd = len(t.shape)
    start, stop = [0] * nd, list(t.shape)
    for i, (a, b) in zip((nd - 2, nd - 1), axis_slices):
        start[i], stop[i] = a, b
    return lo.slice(t, start, stop)


def gauss_jordan(lo, A, B):
    """A^-1 B for square matrices A (..., n, n) and B (..., n, m) by Gauss-Jordan elimination without pivoting:
    exact on rationals, smooth where every leading principal minor of A is nonzero (a division by 0 elsewhere
    is refused there, where the function itself may be defined: a limitation, not a kink)."""
    n = A.shape[-1]
    aug = lo.concat([lo.broadcast(A, lo.bshape(A.shape[:-2], B.shape[:-2]) + (n, n)),
                     lo.broadcast(B, lo.bshape(A.shape[:-2], B.shape[:-2]) + tuple(B.shape[-2:]))], len(A.shape) - 1)
    w = aug.shape[-1]
    for k in range(n):
        row = _sl(lo, aug, ((k, k + 1), (0, w)))                          # (..., 1, w)
        p = _sl(lo, row, ((0, 1), (k, k + 1)))                             # (..., 1, 1)
        row = lo.div(row, p)
        col = _sl(lo, aug, ((0, n), (k, k + 1)))                           # (..., n, 1)
        unit = np.zeros((n, 1), dtype=np.int64)
        unit[k, 0] = 1
        col = lo.sub(col, lo.constant(unit, f"unit.{lo.hint}"))
        aug = lo.sub(aug, lo.mul(col, row))
    return _sl(lo, aug, ((0, n), (n, w)))


def det(lo, A):
    """det(A) as the product of the pivots of elimination without pivoting (smooth where the leading principal
    minors are nonzero)."""
    n = A.shape[-1]
    if n == 0:
        return Tensor(lo.lit(1).atom, tuple(A.shape[:-2]))
    pivots, M = [], A
    for k in range(n):
        m = n - k
        p = _sl(lo, M, ((0, 1), (0, 1)))
        pivots.append(lo.reshape(p, tuple(A.shape[:-2])))
        if m == 1:
            break
        row = _sl(lo, M, ((0, 1), (1, m)))
        col = lo.div(_sl(lo, M, ((1, m), (0, 1))), p)
        M = lo.sub(_sl(lo, M, ((1, m), (1, m))), lo.mul(col, row))
    return product_of(lo, pivots)


def _eye(lo, n):
    return lo.constant(np.eye(n, dtype=np.int64), f"eye.{lo.hint}", fold=False)


@op("linalg_inv_ex.default", note="Gauss-Jordan without pivoting: exact, smooth where the leading principal minors "
                                  "are nonzero")
def _inv_ex(lo, A, check_errors=False):
    A = lo.real(A)
    return gauss_jordan(lo, A, _eye(lo, A.shape[-1])), Unavailable("linalg info is an integer")


@op("_linalg_solve_ex.default", note="Gauss-Jordan without pivoting on [A | B]")
def _solve_ex(lo, A, B, left=True, check_errors=False):
    A, B = lo.real(A), lo.real(B)
    vector = len(B.shape) == len(A.shape) - 1
    if vector:
        B = lo.reshape(B, tuple(B.shape) + (1,))
    if not left:                                      # X A = B  <=>  A^T X^T = B^T
        X = gauss_jordan(lo, _mT(lo, A), _mT(lo, B))
        X = _mT(lo, X)
    else:
        X = gauss_jordan(lo, A, B)
    if vector:
        X = lo.reshape(X, tuple(X.shape[:-1]))
    rest = Unavailable("the LU factors of solve are not imported")
    return X, rest, Unavailable("pivots are integers"), Unavailable("linalg info is an integer")


def _mT(lo, t):
    nd = len(t.shape)
    return lo.transpose(t, tuple(range(nd - 2)) + (nd - 1, nd - 2))


@op("_linalg_det.default", note="the product of elimination pivots (smooth where the leading principal minors are "
                                "nonzero)")
def _det(lo, A):
    A = lo.real(A)
    return det(lo, A), Unavailable("the LU factors of det are not imported"), Unavailable("pivots are integers")


@op("_linalg_slogdet.default", note="sign(det) (derivative 0) and log|det| (abs at_zero=0: det must be nonzero)")
def _slogdet(lo, A):
    d = det(lo, lo.real(A))
    return (lo.sign(d), lo.ew("log", [abs_of(lo, d)]), Unavailable("the LU factors of slogdet are not imported"),
            Unavailable("pivots are integers"))


@op("logdet.default", keep=True, note="log(det), defined where det > 0 (torch gives nan below)")
def _logdet(lo, A):
    return lo.ew("log", [det(lo, lo.real(A))])


def _tri(lo, A, upper, unit=False):
    """The lower (or upper) triangle of A (the part LAPACK reads), with a unit diagonal when ``unit``."""
    n = A.shape[-1]
    m = np.triu(np.ones((n, n), dtype=np.int64), 1 if unit else 0) if upper else \
        np.tril(np.ones((n, n), dtype=np.int64), -1 if unit else 0)
    T = lo.mul(A, lo.constant(m, f"triangle.{lo.hint}"))
    return lo.add(T, _eye(lo, n)) if unit else T


def cholesky(lo, A, upper=False):
    """The Cholesky factor of (A + A^T) / 2, column by column (smooth on symmetric positive definite matrices,
    the op's domain: torch's backward treats A as symmetric, so the symmetrised input gives its gradient; for a
    matrix that is not symmetric torch reads one triangle and the values differ)."""
    A = lo.real(A)
    S = lo.mul(lo.add(A, _mT(lo, A)), fmpq(1, 2))
    n = A.shape[-1]
    batch = tuple(A.shape[:-2])
    cols = []
    for j in range(n):
        v = _sl(lo, S, ((j, n), (j, j + 1)))                                   # (..., n-j, 1)
        if j:
            Lj = lo.concat(cols, len(batch) + 1)                                # (..., n, j)
            left = _sl(lo, Lj, ((j, n), (0, j)))                               # (..., n-j, j)
            rowj = _sl(lo, Lj, ((j, j + 1), (0, j)))                           # (..., 1, j)
            v = lo.sub(v, lo.reduce("sum", lo.mul(left, rowj), (len(batch) + 1,), True))
        d = lo.ew("sqrt", [_sl(lo, v, ((0, 1), (0, 1)))])
        col = lo.div(v, d)
        if j:
            col = lo.pad(col, [0] * len(batch) + [j, 0], [0] * (len(batch) + 2))
        cols.append(col)
    L = lo.concat(cols, len(batch) + 1) if n > 1 else cols[0]
    return _mT(lo, L) if upper else L


@op("linalg_cholesky_ex.default", note="column by column on the symmetrised input (sqrt of positive pivots)")
def _cholesky_ex(lo, A, upper=False, check_errors=False):
    return cholesky(lo, A, upper), Unavailable("linalg info is an integer")


@op("cholesky.default")
def _cholesky(lo, A, upper=False):
    return cholesky(lo, A, upper)


# cholesky_solve and cholesky_inverse read one triangle of L, but their backward differentiates L L^T with the
# whole of L (measured: the unread triangle gets a gradient): the program uses the whole of L, so value and
# gradient are torch's for a triangular L (a Cholesky factor, the op's domain), the value differs elsewhere
@op("cholesky_solve.default", note="(L L^T)^-1 B, L triangular (torch's backward differentiates all of L)")
def _cholesky_solve(lo, B, L, upper=False):
    T = lo.real(L)
    M = _matmul(lo, _mT(lo, T), T) if upper else _matmul(lo, T, _mT(lo, T))
    return gauss_jordan(lo, M, lo.real(B))


@op("cholesky_inverse.default", note="(L L^T)^-1, L triangular (torch's backward differentiates all of L)")
def _cholesky_inverse(lo, L, upper=False):
    T = lo.real(L)
    M = _matmul(lo, _mT(lo, T), T) if upper else _matmul(lo, T, _mT(lo, T))
    return gauss_jordan(lo, M, _eye(lo, T.shape[-1]))


def _matmul(lo, a, b):
    """a @ b for (..., n, k) and (..., k, m) with equal batch shapes."""
    nb = len(a.shape) - 2
    return lo.dot(a, b, (nb + 1,), (nb,), tuple(range(nb)), tuple(range(nb)))


@op("triangular_solve.default", note="elimination on the triangle of A that LAPACK reads")
def _triangular_solve(lo, B, A, upper=True, transpose=False, unitriangular=False):
    A = lo.real(A)
    T = _tri(lo, A, upper, unitriangular)
    if transpose:
        T = _mT(lo, T)
    return gauss_jordan(lo, T, lo.real(B)), A


@op("linalg_solve_triangular.default", note="elimination on the triangle of A that LAPACK reads")
def _solve_triangular(lo, A, B, upper, left=True, unitriangular=False):
    T = _tri(lo, lo.real(A), upper, unitriangular)
    B = lo.real(B)
    if left:
        return gauss_jordan(lo, T, B)
    return _mT(lo, gauss_jordan(lo, _mT(lo, T), _mT(lo, B)))


# LU with partial pivoting.  LAPACK's getrf picks, for each column j, the first row i >= j of largest |a_ij| in
# the current Schur complement (idamax: ties go to the first row).  That choice is a selection on the values:
# the program makes it with where(a_ij^2 > a_lj^2, ...) on the squares (smooth switching functions, the same
# order as the absolute values), strict against earlier rows and non-strict against later ones, so a tie goes
# to the first row as in LAPACK and a tie that ball arithmetic cannot decide is UNDECIDED, never a float
# decision made at import.  The permutation is piecewise constant (derivative 0) and torch's backward treats
# it as a constant, so both differentiate the piece that is chosen.

@dataclass(frozen=True)
class Pivots(Unavailable):
    """LAPACK's pivots of an LU factorization that depend on real values: integers, so not a value of the
    program (any use but lu_unpack's and lu_solve's is an ImportFailure with ``reason``).  ``perm`` is the
    permutation matrix P of A = P L U (a piecewise-constant real Tensor) that those two ops use instead."""
    perm: object = None


def _pivot_indicators(lo, M, j):
    """[e_j, ..., e_{m-1}]: real 0/1 Tensors of shape batch + (1, 1), e_i = 1 where row i is LAPACK's pivot of
    column j of M, the first row i >= j of largest |M[i, j]|: its square beats the largest square before it
    strictly and is at least the largest after it (running maxima by where: O(m) selections per column)."""
    m = M.shape[-2]
    squares = []
    for i in range(j, m):
        x = _sl(lo, M, ((i, i + 1), (j, j + 1)))
        squares.append(lo.mul(x, x))
    c = len(squares)

    def running(order):
        best, out = None, {}
        for a in order:
            out[a] = best
            s = squares[a]
            best = s if best is None else lo.select(lo.compare(">", s, best), s, best)
        return out
    before, after = running(range(c)), running(reversed(range(c)))
    indicators = []
    for a, s in enumerate(squares):
        cond = Const(np.array(True))
        if before[a] is not None:
            cond = lo.logical("and", cond, lo.compare(">", s, before[a]))
        if after[a] is not None:
            cond = lo.logical("and", cond, lo.compare(">=", s, after[a]))
        indicators.append(lo.as_real(cond, s.shape))
    return indicators


def _swap_matrix(m, j, i):
    t = np.eye(m, dtype=np.int64)
    t[[j, i]] = t[[i, j]]
    return t


def _bmm(lo, a, b):
    """a @ b for (..., n, k) and (..., k, m) with broadcast batch shapes."""
    batch = lo.bshape(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    return _matmul(lo, lo.broadcast(a, batch + tuple(a.shape[-2:])), lo.broadcast(b, batch + tuple(b.shape[-2:])))


def _eliminate(lo, M, j):
    """One step of Gaussian elimination on M (..., m, n) at the pivot M[j, j]: the multipliers replace column
    j below the diagonal (LAPACK's packed L), the rows below lose multiplier * row j to the right of it."""
    m, n = M.shape[-2:]
    p = _sl(lo, M, ((j, j + 1), (j, j + 1)))
    below = (np.arange(m) > j).astype(np.int64).reshape(m, 1)
    right = (np.arange(n) > j).astype(np.int64).reshape(1, n)
    col_j = _sl(lo, M, ((0, m), (j, j + 1)))
    mult = lo.mul(lo.div(col_j, p), lo.constant(below, f"below.{lo.hint}"))             # (..., m, 1)
    row = lo.mul(_sl(lo, M, ((j, j + 1), (0, n))), lo.constant(right, f"right.{lo.hint}"))  # (..., 1, n)
    at_col = np.zeros((m, n), dtype=np.int64)
    at_col[j + 1:, j] = 1
    M = lo.sub(M, lo.mul(mult, row))
    return lo.add(M, lo.mul(lo.sub(mult, col_j), lo.constant(at_col, f"column.{lo.hint}")))


def lu_factor(lo, A):
    """(LU, P) of A (..., m, n) by Gaussian elimination with LAPACK's partial pivoting: LU packed as getrf
    returns it (unit lower L strictly below the diagonal, U on and above), P (..., m, m) with A = P L U, a
    piecewise-constant selection.  Exact on rationals; a column whose candidates are all 0 divides by 0, which
    the program refuses there (LAPACK skips that column and reports it in info)."""
    A = lo.real(A)
    m, n = A.shape[-2:]
    batch = tuple(A.shape[:-2])
    M, P = A, None
    for j in range(min(m, n)):
        if j == m - 1:
            break
        swaps = [lo.mul(e, lo.constant(_swap_matrix(m, j, j + a), f"swap.{lo.hint}"))
                 for a, e in enumerate(_pivot_indicators(lo, M, j))]
        Pj = swaps[0]
        for s in swaps[1:]:
            Pj = lo.add(Pj, s)
        Pj = lo.broadcast(Pj, batch + (m, m))
        M = _matmul(lo, Pj, M)
        P = Pj if P is None else _matmul(lo, P, Pj)    # P_0 P_1 ... (each swap is its own inverse)
        M = _eliminate(lo, M, j)
    if P is None:
        P = lo.broadcast(_eye(lo, m), batch + (m, m))
    return M, P


def lu_unpacked(lo, LU):
    """(L, U) of LAPACK's packed LU (..., m, n): L (..., m, k) unit lower, U (..., k, n) upper, k = min(m, n)."""
    m, n = LU.shape[-2:]
    k = min(m, n)
    L = lo.mul(_sl(lo, LU, ((0, m), (0, k))), lo.constant(np.tril(np.ones((m, k), dtype=np.int64), -1),
                                                          f"lower.{lo.hint}"))
    L = lo.add(L, lo.constant(np.eye(m, k, dtype=np.int64), f"eye.{lo.hint}"))
    U = lo.mul(_sl(lo, LU, ((0, k), (0, n))), lo.constant(np.triu(np.ones((k, n), dtype=np.int64)),
                                                          f"upper.{lo.hint}"))
    return L, U


def _perm_of(lo, LU, pivots):
    """P (..., m, m) of ``pivots``: the Pivots' own selection, or, for pivots known at import (an integer
    input), the permutation torch.lu_unpack computes from them (exact: 0s and 1s)."""
    import torch
    if isinstance(pivots, Pivots):
        return pivots.perm
    piv = torch.from_numpy(np.asarray(const_array(lo, pivots, "LU pivots")).astype(np.int32))
    P = torch.lu_unpack(torch.zeros(tuple(LU.shape), dtype=torch.float64), piv)[0]
    return lo.constant(P.numpy().astype(np.int64), f"perm.{lo.hint}", fold=False)


_PIVOTS = ("LU pivots are integers computed from real values (the rows partial pivoting chose): only lu_unpack "
           "and lu_solve can use them")


@op("linalg_lu_factor_ex.default", note="Gaussian elimination with LAPACK's partial pivoting: per column, the "
                                        "first row of largest |a| (ties: the first row, as idamax), a selection")
def _lu_factor_ex(lo, A, pivot=True, check_errors=False):
    if not pivot:
        lo.fail("LU without pivoting: torch computes it on CUDA only")
    LU, P = lu_factor(lo, A)
    k = min(LU.shape[-2:])
    return LU, Pivots(_PIVOTS, tuple(LU.shape[:-2]) + (k,), P), Unavailable("linalg info is an integer")


@op("linalg_lu.default", note="P L U with LAPACK's partial pivoting (first row of largest |a|; P piecewise "
                              "constant, derivative 0)")
def _linalg_lu(lo, A, pivot=True):
    if not pivot:
        lo.fail("LU without pivoting: torch computes it on CUDA only")
    LU, P = lu_factor(lo, A)
    return (P, *lu_unpacked(lo, LU))


@op("lu_unpack.default", note="P from the pivots (a constant, or the selection of the LU that computed them), "
                              "L and U from the triangles of LU")
def _lu_unpack(lo, LU, pivots, unpack_data=True, unpack_pivots=True):
    if not (unpack_data and unpack_pivots):
        lo.fail("lu_unpack with unpack_data=False or unpack_pivots=False returns empty tensors")
    LU = lo.real(LU)
    return (_perm_of(lo, LU, pivots), *lu_unpacked(lo, LU))


def _lu_solve_left(lo, L, U, P, B, adjoint):
    """A^-1 B (A^-T B when ``adjoint``) for A = P L U: elimination on the triangular factors."""
    if adjoint:                                           # A^T = U^T L^T P^T
        Y = gauss_jordan(lo, _mT(lo, U), B)
        return _bmm(lo, P, gauss_jordan(lo, _mT(lo, L), Y))
    Y = gauss_jordan(lo, L, _bmm(lo, _mT(lo, P), B))
    return gauss_jordan(lo, U, Y)


@op("linalg_lu_solve.default", note="elimination on the triangles of LU after the permutation of the pivots")
def _lu_solve(lo, LU, pivots, B, left=True, adjoint=False):
    LU, B = lo.real(LU), lo.real(B)
    P = _perm_of(lo, LU, pivots)
    L, U = lu_unpacked(lo, LU)
    if left:
        return _lu_solve_left(lo, L, U, P, B, adjoint)
    # X A = B  <=>  A^T X^T = B^T;  X A^T = B  <=>  A X^T = B^T
    return _mT(lo, _lu_solve_left(lo, L, U, P, _mT(lo, B), not adjoint))


# ------------------------------------------------------------------------------- Householder reflectors

def householder_q(lo, A, tau):
    """H_0 H_1 ... H_{k-1} (..., m, m), H_i = I - tau_i v_i v_i^T with v_i = e_i + the part of column i of A
    (..., m, n) below the diagonal (LAPACK's geqrf storage), k = tau.shape[-1]: a polynomial in A and tau,
    exact.  The diagonal and upper triangle of A are not read."""
    A, tau = lo.real(A), lo.real(tau)
    m = A.shape[-2]
    batch = lo.bshape(tuple(A.shape[:-2]), tuple(tau.shape[:-1]))
    Q = lo.broadcast(_eye(lo, m), batch + (m, m))
    for i in range(tau.shape[-1]):
        below = (np.arange(m) > i).astype(np.int64).reshape(m, 1)
        unit = (np.arange(m) == i).astype(np.int64).reshape(m, 1)
        v = lo.add(lo.mul(_sl(lo, A, ((0, m), (i, i + 1))), lo.constant(below, f"below.{lo.hint}")),
                   lo.constant(unit, f"unit.{lo.hint}"))
        v = lo.broadcast(v, batch + (m, 1))
        nt = len(tau.shape)
        t = lo.reshape(lo.slice(tau, [0] * (nt - 1) + [i], list(tau.shape[:-1]) + [i + 1]),
                       tuple(tau.shape[:-1]) + (1, 1))
        Qv = _matmul(lo, Q, v)                                                   # (..., m, 1)
        Q = lo.sub(Q, lo.mul(t, lo.mul(Qv, _mT(lo, v))))
    return Q


@op("linalg_householder_product.default", note="the product of the Householder reflectors: polynomial, exact")
def _householder_product(lo, A, tau):
    Q = householder_q(lo, A, tau)
    m, n = lo.real(A).shape[-2:]
    return _sl(lo, Q, ((0, m), (0, n)))


@op("ormqr.default", note="C times Q (or Q^T), Q the product of the Householder reflectors: polynomial, exact")
def _ormqr(lo, A, tau, C, left=True, transpose=False):
    Q = householder_q(lo, A, tau)
    if transpose:
        Q = _mT(lo, Q)
    C = lo.real(C)
    return _bmm(lo, Q, C) if left else _bmm(lo, C, Q)


@op("frexp.Tensor", note="refused: the exponent is an integer computed from real values")
def _frexp(lo, a):
    lo.fail("aten.frexp computes integers from real values (the exponent), and its mantissa x * 2^-exponent jumps "
            "at every power of 2 (unboundedly many pieces): not a real-number function verify models")


@op("addmv.default")
def _addmv(lo, bias, mat, vec, beta=1, alpha=1):
    p = lo.dot(mat, vec, (1,), (0,))
    return lo.add(lo.mul(bias, beta), lo.mul(p, alpha))


@op("addbmm.default")
def _addbmm(lo, bias, b1, b2, beta=1, alpha=1):
    p = lo.dot(b1, b2, (0, 2), (0, 1))
    return lo.add(lo.mul(bias, beta), lo.mul(p, alpha))


# ---------------------------------------------------------------------------------------------------- QR
# linalg_qr is LAPACK's geqrf (Householder reflectors, one per column) followed by orgqr (their product).  For
# column j, dlarfg reads alpha = M[j, j] and x = M[j+1:, j] of the current matrix: where x = 0 it takes H = I
# (tau = 0, R[j, j] = alpha, of either sign); elsewhere beta = -sign(alpha) ||(alpha, x)|| (Fortran's SIGN: +
# for alpha = 0, also -0.0: measured), tau = (beta - alpha) / beta, v = x / (alpha - beta), H = I - tau (1, v)
# (1, v)^T, R[j, j] = beta.  So QR jumps where alpha crosses 0 and where x becomes 0.  torch's backward is the
# derivative of the QR whose diagonal signs are held fixed (the unique such factorization near a full-rank A).
# Away from the jumps that is the derivative of the program above; at x = 0 it is not (the piece H = I does
# not depend on x, the factorization does), so the program writes every column with the reflector of the
# x != 0 formula (defined at x = 0 for alpha != 0, where it is diag(1, ..., -1, ..., 1)) and multiplies column
# j of Q and row j of R by d_j = -1 where x = 0: the same values as LAPACK's H = I (the flip commutes with the
# later reflectors), and the derivative of the sign-fixed factorization.  sign(alpha) and d_j are selections
# with constant pieces (derivative 0, discontinuous); a zero column (alpha = 0, x = 0) divides by 0, refused
# there (LAPACK gives R[j, j] = 0 and torch's gradient is not finite).

checked_decomposition("qr")     # linalg_qr with mode 'reduced' or 'complete' (some=False)


def householder_qr(lo, A):
    """(Q, R) of A (..., m, n) as LAPACK computes them: Q (..., m, m) the product of the reflectors, R (..., m,
    n) upper triangular, with dlarfg's sign convention and its H = I where the part of a column below the
    diagonal is 0 (see the note above).  Exact on rationals up to the square roots (balls beyond)."""
    A = lo.real(A)
    m, n = A.shape[-2:]
    batch = tuple(A.shape[:-2])
    if math.prod(batch) == 0:                      # an empty batch: empty factors
        return Tensor(Lit(fmpq(0)), batch + (m, m)), Tensor(Lit(fmpq(0)), batch + (m, n))
    M = A
    Q = lo.broadcast(_eye(lo, m), batch + (m, m))
    flips = []
    for j in range(min(m - 1, n)):                 # the last row's reflector is H = I (dlarfg of order 1)
        alpha = _sl(lo, M, ((j, j + 1), (j, j + 1)))                           # (..., 1, 1)
        x = _sl(lo, M, ((j + 1, m), (j, j + 1)))                               # (..., m-j-1, 1)
        xx = lo.reduce("sum", lo.mul(x, x), (len(batch),), True)              # (..., 1, 1)
        s = lo.select(lo.compare(">=", alpha, 0), 1, -1)
        beta = lo.neg(lo.mul(s, lo.ew("sqrt", [lo.add(lo.mul(alpha, alpha), xx)])))
        tau = lo.div(lo.sub(beta, alpha), beta)
        v = lo.div(x, lo.sub(alpha, beta))
        u = lo.concat([lo.constant(np.zeros(batch + (j, 1), dtype=np.int64), f"zero.{lo.hint}"),
                       lo.constant(np.ones(batch + (1, 1), dtype=np.int64), f"one.{lo.hint}"), v], len(batch))
        M = lo.sub(M, lo.mul(tau, lo.mul(u, _matmul(lo, _mT(lo, u), M))))
        Q = lo.sub(Q, lo.mul(tau, lo.mul(_matmul(lo, Q, u), _mT(lo, u))))
        flips.append(lo.select(lo.compare("==", xx, 0), -1, 1))
    if flips:
        ones = [lo.constant(np.ones(batch + (1, 1), dtype=np.int64), f"one.{lo.hint}")] * (m - len(flips))
        d = lo.broadcast(lo.concat([lo.broadcast(f, batch + (1, 1)) for f in flips] + ones, len(batch) + 1),
                         batch + (1, m))
        Q = lo.mul(Q, d)
        M = lo.mul(M, _mT(lo, d))
    R = lo.mul(M, lo.constant(np.triu(np.ones((m, n), dtype=np.int64)), f"upper.{lo.hint}"))
    return Q, R


@op("linalg_qr.default", note="LAPACK's Householder QR (geqrf + orgqr): R[j, j] = -sign(alpha) ||(alpha, x)|| "
                              "(+ at alpha = 0), H = I where x = 0; derivative of the factorization with its "
                              "diagonal signs fixed, as torch's backward")
def _linalg_qr(lo, A, mode="reduced"):
    if mode not in ("reduced", "complete", "r"):
        lo.fail(f"linalg.qr with mode={mode!r}")
    Q, R = householder_qr(lo, A)
    m, n = Q.shape[-1], R.shape[-1]
    k = min(m, n)
    if mode == "r":
        return (Unavailable("linalg.qr with mode='r' computes no Q (an empty tensor)", (0,)),
                _sl(lo, R, ((0, k), (0, n))))
    if mode == "reduced":
        return _sl(lo, Q, ((0, m), (0, k))), _sl(lo, R, ((0, k), (0, n)))
    return Q, R


# ------------------------------------------------------------------------ spectral: eigenvalues, singular values
#
# An eigenvalue of a symmetric matrix S is a root of its characteristic polynomial det(x I - S), whose
# coefficients are a polynomial program in S (Faddeev-LeVerrier: exact on rationals).  The eigenvalues are the
# ``root`` primitive of those coefficients (verify/program/prims/spectral.py), defined where they are distinct:
# at a repeated eigenvalue torch's gradient depends on the basis LAPACK returns, not on the matrix, and ``root``
# says DomainError (exactly) or Undecided (balls).  Singular values are the square roots of the eigenvalues of
# the smaller Gram matrix (A^T A or A A^T), defined where they are distinct and nonzero.  Eigenvectors and
# singular vectors are defined up to sign (LAPACK's choice): the importer refuses to use them.

def trace_last(lo, M):
    """The trace of the last two axes of M (..., n, n): a tensor of the batch shape."""
    n = M.shape[-1]
    nd = len(M.shape)
    return lo.reduce("sum", lo.mul(M, _eye(lo, n)), (nd - 2, nd - 1))


def charpoly(lo, S):
    """[c_0, ..., c_n] with det(x I - S) = sum c_j x^j for S (..., n, n) (c_n = 1), each of S's batch shape:
    Faddeev-LeVerrier, M_1 = I, c_(n-k) = -tr(S M_k) / k, M_(k+1) = S M_k + c_(n-k) I (n matrix products)."""
    n = S.shape[-1]
    batch = tuple(S.shape[:-2])
    cs = [None] * n + [Tensor(lo.lit(1).atom, batch)]
    M = None
    for k in range(1, n + 1):
        SM = S if M is None else _matmul(lo, S, M)
        c = lo.mul(trace_last(lo, SM), fmpq(-1, k))
        cs[n - k] = c
        if k < n:
            M = lo.add(SM, lo.mul(lo.reshape(c, batch + (1, 1)), _eye(lo, n)))
    return cs


def eigvals_sym(lo, S):
    """The eigenvalues of the symmetric S (..., n, n) in ascending order, (..., n): ``root`` of the
    characteristic polynomial (distinct eigenvalues only)."""
    n = S.shape[-1]
    batch = tuple(S.shape[:-2])
    if n == 0:
        return lo.constant(np.zeros(batch + (0,)), "empty")
    cs = charpoly(lo, S)
    return stack_last(lo, [lo.broadcast(lo.ew("root", cs, {"k": k}), batch) for k in range(n)])


def symmetrised(lo, A):
    """(A + A^T) / 2: the symmetric matrix whose eigen-decomposition torch's eigh backward differentiates."""
    return lo.mul(lo.add(A, _mT(lo, A)), fmpq(1, 2))


def singular_values(lo, A):
    """The singular values of A (..., m, n) in descending order, (..., min(m, n)): sqrt of the eigenvalues of the
    smaller Gram matrix (distinct and nonzero singular values only: sqrt needs a positive argument)."""
    m, n = A.shape[-2:]
    G = _matmul(lo, _mT(lo, A), A) if n <= m else _matmul(lo, A, _mT(lo, A))
    lam = eigvals_sym(lo, G)
    k = min(m, n)
    if k == 0:
        return lam
    nd = len(lam.shape)
    parts = [_sl1(lo, lam, nd - 1, k - 1 - i) for i in range(k)]
    return stack_last(lo, [lo.ew("sqrt", [p]) for p in parts])


def _sl1(lo, t, axis, i):
    """t[..., i] along ``axis`` (the axis removed)."""
    start, stop = [0] * len(t.shape), list(t.shape)
    start[axis], stop[axis] = i, i + 1
    s = lo.slice(t, start, stop)
    return lo.reshape(s, tuple(d for j, d in enumerate(t.shape) if j != axis))


def _vectors(what):
    return Unavailable(f"{what} are defined up to sign (LAPACK's choice of basis): the importer does not model them")


@op("_linalg_eigh.default", note="eigenvalues of (A + A^T) / 2 (torch's backward treats A as symmetric), as roots "
                                 "of the characteristic polynomial; distinct eigenvalues only; vectors refused")
def _linalg_eigh(lo, A, UPLO="L", compute_v=True):
    A = lo.real(A)
    L = eigvals_sym(lo, symmetrised(lo, A))
    return L, _vectors("eigenvectors") if compute_v else lo.constant(np.zeros((0,)), "empty")


def _empty_svd(lo, A, full_matrices):
    """U, S, Vh of a matrix with no element (min(m, n) = 0): empty factors (None when U or Vh would not be)."""
    m, n = A.shape[-2:]
    batch = tuple(A.shape[:-2])
    if full_matrices and (m or n):
        return None
    z = lambda *s: lo.constant(np.zeros(batch + s), "empty")   # noqa: E731
    return z(m, 0), z(0), z(0, n)


@op("_linalg_svd.default", note="singular values: sqrt of the eigenvalues of the smaller Gram matrix (distinct and "
                                "nonzero only); singular vectors refused (empty factors of an empty matrix kept)")
def _linalg_svd(lo, A, full_matrices=False, compute_uv=True, driver=None):
    A = lo.real(A)
    if min(A.shape[-2:]) == 0 and compute_uv:
        out = _empty_svd(lo, A, full_matrices)
        if out is not None:
            return out
    S = singular_values(lo, A)
    if not compute_uv:
        empty = lo.constant(np.zeros((0,)), "empty")
        return empty, S, empty
    return _vectors("left singular vectors"), S, _vectors("right singular vectors")


# --------------------------------------------------------------------------------------- pseudo-inverse
#
# torch keeps the singular values s > max(atol, rtol * s_max) (defaults: atol = 0, rtol = eps * max(m, n), and
# rtol = 0 when only atol > 0 is given) and inverts them.  Where every singular value is kept (full rank), pinv
# is the smooth (A^T A)^-1 A^T (or A^T (A A^T)^-1).  The program is that formula with a guard that makes it
# undefined wherever full rank is not proved: with G the k x k Gram matrix, lambda_max <= tr G and lambda_min >=
# det G / tr(G)^(k-1), so det G - rtol^2 tr(G)^k > 0 and det G - atol^2 tr(G)^(k-1) > 0 imply torch keeps every
# singular value; the program adds 0 / where(guard > 0, guard, 0), a division by 0 (DomainError) where a guard is
# not positive, exactly 0 with derivative 0 elsewhere.  A rank-deficient matrix (the
# truncated pinv needs singular vectors) and a full-rank one too close to the threshold for these bounds are
# refused at evaluation.  hermitian=True is the same function on symmetric matrices (its singular values are
# the |eigenvalues|), and torch's gradient there is that of the plain formula (measured).

# pinverse and linalg_pinv's other overloads become linalg_pinv.atol_rtol_tensor, mapped here: its only selection
# is the guard's where, which does not change the value or the derivative where the program is defined
checked_decomposition("pinverse", "linalg_pinv")


def _tolerance(lo, v, what):
    """An exact rational tolerance (a float, an int, or a constant tensor with one value), None when absent."""
    if v is None:
        return None
    if isinstance(v, Tensor) and isinstance(v.atom, Lit):
        return v.atom.value
    if isinstance(v, (int, float, np.number)):
        return exact_q(v, what)
    if isinstance(v, Const) and np.size(v.value) and np.all(np.asarray(v.value) == np.ravel(v.value)[0]):
        return exact_q(np.ravel(v.value)[0], what)
    lo.fail(f"pinv with a {what} that is not one constant number is not supported")


def _full_rank_guard(lo, G, k, tol, power):
    """0 / where(d > 0, d, 0) with d = det G - tol^2 tr(G)^power: exactly 0 with derivative 0 where d > 0, a
    division by 0 (DomainError) elsewhere (see above)."""
    d = det(lo, G)
    if tol:
        d = lo.sub(d, lo.mul(lo.ew("pow", [trace_last(lo, G)], {"n": power}), tol * tol))
    return lo.div(0, lo.select(lo.compare(">", d, 0), d, 0))


def pinv(lo, A, atol=None, rtol=None):
    """torch.linalg.pinv of A (..., m, n) where every singular value is kept (see above): (..., n, m)."""
    m, n = A.shape[-2:]
    k = min(m, n)
    batch = tuple(A.shape[:-2])
    if k == 0 or (isinstance(A.atom, Lit) and A.atom.value == 0):
        # no singular value, or a constant zero matrix: none is kept and pinv is the constant 0
        return lo.constant(np.zeros(batch + (n, m)), "zeros")
    if rtol is None:
        rtol = fmpq(0) if atol is not None and atol > 0 else fmpq(max(m, n), 2 ** 52)
    if n <= m:
        G = _matmul(lo, _mT(lo, A), A)
        X = gauss_jordan(lo, G, _mT(lo, A))
    else:
        G = _matmul(lo, A, _mT(lo, A))
        X = _mT(lo, gauss_jordan(lo, G, A))
    guard = _full_rank_guard(lo, G, k, rtol, k)
    if atol:
        guard = lo.add(guard, _full_rank_guard(lo, G, k, atol, k - 1))
    return lo.add(X, lo.reshape(guard, batch + (1, 1)))


@op("linalg_pinv.atol_rtol_tensor", "linalg_pinv.atol_rtol_float",
    note="full rank only: (A^T A)^-1 A^T, undefined where det G - rtol^2 tr(G)^k > 0 (G the Gram matrix) does not "
         "prove that torch keeps every singular value")
def _linalg_pinv(lo, A, atol=None, rtol=None, hermitian=False):
    return pinv(lo, lo.real(A), _tolerance(lo, atol, "atol"), _tolerance(lo, rtol, "rtol"))


@op("linalg_matrix_exp.default", note="entire: each entry is the expm primitive of the matrix's entries (FLINT's "
                                      "arb_mat.exp; gradient the adjoint Frechet derivative)")
def _matrix_exp(lo, A):
    A = lo.real(A)
    n = A.shape[-1]
    batch = tuple(A.shape[:-2])
    if n == 0:
        return A
    nd = len(A.shape)
    entries = [_sl1(lo, _sl1(lo, A, nd - 2, k), nd - 2, m) for k in range(n) for m in range(n)]
    rows = [stack_last(lo, [lo.broadcast(lo.ew("expm", entries, {"i": i, "j": j}), batch) for j in range(n)])
            for i in range(n)]
    return lo.concat([lo.reshape(r, batch + (1, n)) for r in rows], len(batch))
