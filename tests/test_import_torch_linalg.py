"""The LU family (lu_factor, lu, lu_unpack, lu_solve) and the Householder products (householder_product,
ormqr) of frameworks/torch_ops.py against live PyTorch (float64, CPU), and exact identities in rationals.

LU with partial pivoting is a selection: which row becomes the pivot depends on the values.  The tests put
the pivot choice on both sides of a switch and on a tie (|a| equal in two rows, where LAPACK takes the first
row), compare torch's permutation, values and gradient with the imported program's, and check the factors
through the exact identity P L U = A in rationals.  Values elsewhere are rationals that float64 rounds, so
the comparison with torch is to the float64 bound of tests/import_helpers.py; at the dyadic tie point
float64 is exact and the gradient must equal torch's exactly.
"""
import numpy as np
from flint import fmpq
import pytest

torch = pytest.importorskip("torch")

import verify  # noqa: E402
from verify.errors import DomainError  # noqa: E402
from verify.interpret.tensor import evaluate  # noqa: E402
from verify.frameworks import ImportFailure, torch_ops  # noqa: E402
from import_helpers import assert_kinks_explicit, close, exact_equal, run_torch  # noqa: E402

D = torch.float64


def t(x):
    return torch.tensor(x, dtype=D)


# the largest |a| of column 0 is in row 2, of the Schur complement's column 1 in its last row: two swaps
A3 = t([[0.5, 1.25, -2.0], [1.5, -0.75, 0.25], [-3.0, 1.0, 0.5]])
B3 = t([[1.0, -0.5], [0.25, 2.0], [-1.5, 0.75]])
TIE = t([[1.0, 2.0], [-1.0, -1.0]])             # |1| = |-1| in column 0: LAPACK keeps row 0
TIE_B = t([[0.5], [-1.25]])


def weighted(fn):
    """sum over the outputs of fn of w * output with distinct weights per element (a permuted or wrong element
    shows in the gradient)."""
    def f(*xs):
        total = 0
        for k, out in enumerate(fn(*xs)):
            w = (torch.arange(1., 1. + out.numel(), dtype=D).reshape(out.shape) + k) ** 2 / 8
            total = total + (out * w).sum()
        return total
    return f


def compare(fn, args, exact=False):
    """Import sum(w * fn(args)) and check its value and gradient against torch's (exactly when ``exact``);
    returns the import."""
    f = weighted(fn)
    imp = verify.from_torch(f, *args)
    assert_kinks_explicit(imp.program)
    g = verify.grad(imp.program, imp.point, number="exact" if exact else "ball")
    tv, tg = run_torch(f, args)
    check = exact_equal if exact else close
    check(np.array(g.values[0]), np.array(tv), "value")
    for i, (o, tgrad) in enumerate(zip(g.gradient, tg)):
        check(o, tgrad.numpy(), f"gradient of input {i}")
    return imp


def exact_outputs(fn, *args):
    """The exact values of fn's outputs in the imported program (fn returns a tuple of tensors)."""
    imp = verify.from_torch(lambda *xs: tuple(fn(*xs)), *args)
    return [np.asarray(v, dtype=object) for v in evaluate(imp.program, imp.point).values]


def q_matmul(a, b):
    return np.array([[sum((a[i, k] * b[k, j] for k in range(a.shape[1])), fmpq(0)) for j in range(b.shape[1])]
                     for i in range(a.shape[0])], dtype=object)


def q(x):
    from verify.program.arrays import ExactArray
    return ExactArray.from_any(x.numpy()).to_fmpq()


# ------------------------------------------------------------------------------------------------------ LU

@pytest.mark.parametrize("A", [A3, TIE, t([[2.0, -1.0, 0.5, 1.5], [-4.0, 0.25, 1.0, -0.5], [1.0, 3.0, -2.0, 0.75]]),
                               t([[0.5, 1.0], [-2.0, 0.25], [1.5, -1.0], [3.0, 0.5]])],
                         ids=["square", "tie", "wide", "tall"])
def test_lu_is_exact_and_pivots_as_lapack(A):
    """P L U = A exactly in rationals, L unit lower, U upper, and P is torch's (the same pivot rows)."""
    P, L, U = exact_outputs(lambda a: torch.linalg.lu(a), A)
    tP, tL, tU = torch.linalg.lu(A)
    exact_equal(P, tP.numpy(), "P")
    assert (q_matmul(q_matmul(P, L), U) == q(A)).all()
    m, k = L.shape
    assert all(L[i, j] == (1 if i == j else 0) for i in range(m) for j in range(k) if j >= i)
    assert all(U[i, j] == 0 for i in range(U.shape[0]) for j in range(U.shape[1]) if j < i)
    close(L, tL.numpy(), "L")
    close(U, tU.numpy(), "U")


def test_lu_values_and_gradients_equal_torchs():
    compare(lambda a: torch.linalg.lu(a), [A3])
    compare(lambda a: torch.linalg.lu_factor_ex(a)[:1], [A3])
    compare(lambda a: torch.linalg.lu_factor(a)[:1], [A3])
    compare(lambda a: torch.lu(a)[:1], [A3])
    batch = torch.stack([A3, A3.flip(0), A3.T])       # a different pivot order in each matrix
    compare(lambda a: torch.linalg.lu(a), [batch])


def test_at_a_pivot_tie_the_first_row_is_chosen_and_the_gradient_is_torchs_exactly():
    """On the tie |a_00| = |a_10| LAPACK keeps row 0; float64 is exact on this dyadic matrix, so torch's value
    and gradient (the derivative of the chosen piece) equal ours exactly."""
    assert torch.equal(torch.linalg.lu(TIE)[0], torch.eye(2, dtype=D))
    compare(lambda a: torch.linalg.lu(a), [TIE], exact=True)
    compare(lambda a, b: (torch.linalg.lu_solve(*torch.linalg.lu_factor(a), b),), [TIE, TIE_B], exact=True)
    # past the tie, on either side, the other row is chosen or kept, as in torch
    for s in (1.0 + 2.0 ** -10, 1.0 - 2.0 ** -10):
        A = TIE.clone()
        A[1, 0] = -s
        compare(lambda a: torch.linalg.lu(a), [A])


def test_the_pivot_choice_is_a_selection_in_the_program():
    """The imported program chooses the pivot rows itself: at another point it chooses as torch does there."""
    f = weighted(lambda a: torch.linalg.lu(a))
    gen = torch.Generator().manual_seed(17)
    imp = verify.from_torch(f, torch.rand(5, 5, generator=gen, dtype=D))
    assert imp.nonsmooth(), "the pivot choice is not a selection of the program"
    for _ in range(4):
        A = torch.rand(5, 5, generator=gen, dtype=D) * 4 - 2
        g = verify.grad(imp.program, [A.numpy()], number="ball")
        tv, tg = run_torch(f, [A])
        close(np.array(g.values[0]), np.array(tv), "value at a random point")
        close(g.gradient[0], tg[0].numpy(), "gradient at a random point")


def test_the_pivot_selection_grows_as_m_squared():
    """Running maxima keep the selection to O(m) comparisons per column (not one per pair of rows)."""
    m = 16
    A = torch.rand(m, m, generator=torch.Generator().manual_seed(3), dtype=D)
    imp = verify.from_torch(lambda a: torch.linalg.lu_factor(a)[0].sum(), A)
    assert len(imp.nonsmooth()) <= 4 * m * m


def test_lu_unpack_and_lu_solve_with_pivots_from_the_same_graph():
    """Pivots computed from the values are usable by lu_unpack and lu_solve (the program's own selection)."""
    compare(lambda a: torch.lu_unpack(*torch.linalg.lu_factor(a)), [A3])
    compare(lambda a, b: (torch.linalg.lu_solve(*torch.linalg.lu_factor(a), b),), [A3, B3])
    compare(lambda a, b: (torch.lu_solve(b, *torch.lu(a)),), [A3, B3])


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
def test_lu_solve_with_constant_pivots(left, adjoint):
    """Pivots given as integers (known at import) make P a constant; LU and B are the program's inputs."""
    LU, piv = torch.linalg.lu_factor(A3)
    B = B3 if left else B3.T.contiguous()
    compare(lambda lu, b: (torch.linalg.lu_solve(lu, piv, b, left=left, adjoint=adjoint),), [LU, B])
    compare(lambda lu: torch.lu_unpack(lu, piv), [LU])
    X = exact_outputs(lambda lu, b: (torch.linalg.lu_solve(lu, piv, b, left=left, adjoint=adjoint),), LU, B)[0]
    P, L, U = exact_outputs(lambda lu: torch.lu_unpack(lu, piv), LU)
    A = q_matmul(q_matmul(P, L), U)
    A = A.T if adjoint else A
    assert ((q_matmul(A, X) if left else q_matmul(X, A)) == q(B)).all()


def test_pivots_used_as_numbers_are_refused():
    with pytest.raises(ImportFailure, match="LU pivots are integers computed from real values"):
        verify.from_torch(lambda a: torch.linalg.lu_factor(a)[1].double().sum() * a.sum(), A3)


def test_lu_of_a_singular_column_is_undefined_not_guessed():
    """A column whose candidates are all 0 divides by 0 (LAPACK skips it and reports info > 0): refused."""
    A = t([[0.0, 1.0], [0.0, 2.0]])
    imp = verify.from_torch(weighted(lambda a: torch.linalg.lu(a)), A)
    with pytest.raises(DomainError, match="division needs a nonzero divisor"):
        verify.grad(imp.program, imp.point)


def test_lu_decompositions_are_checked():
    """torch.export turns linalg_lu_factor and _lu_with_info into linalg_lu_factor_ex, the same kernel: the
    tie test above measures it; both are accepted only because they are listed."""
    assert {"linalg_lu_factor", "_lu_with_info"} <= set(torch_ops.DECOMPOSED)
    compare(lambda a: torch.linalg.lu_factor(a)[:1], [TIE], exact=True)
    compare(lambda a: torch.lu(a)[:1], [TIE], exact=True)


# ------------------------------------------------------------------------------------- Householder products

H_A = t([[0.5, 1.0, -0.25], [0.75, -1.5, 2.0], [-1.25, 0.5, 1.0], [2.0, -0.75, 0.5]])    # (4, 3)


def test_householder_product_equals_torchs():
    tau = t([0.5, -1.25, 0.75])
    compare(lambda a, tau: (torch.linalg.householder_product(a, tau),), [H_A, tau])
    compare(lambda a, tau: (torch.linalg.householder_product(a, tau),), [H_A, tau[:2]])
    compare(lambda a, tau: (torch.linalg.householder_product(a, tau),), [torch.stack([H_A, H_A.flip(0)]),
                                                                         torch.stack([tau, -tau])])


def test_householder_product_of_unit_reflectors_is_orthogonal_exactly():
    """With tau_i = 2 / (v_i^T v_i) every reflector is orthogonal: at those exact (non-dyadic) taus the
    imported program's Q has orthonormal columns, exactly in rationals."""
    A = t([[0.0, 0.0], [1.0, 0.0], [-1.0, 3.0]])           # v_0 = (1, 1, -1), v_1 = (0, 1, 3)
    tau = t([2 / 3, 1 / 5])

    imp = verify.from_torch(lambda a, tau: torch.linalg.householder_product(a, tau), A, tau)
    point = [imp.point[0], np.array([fmpq(2, 3), fmpq(1, 5)], dtype=object)]
    Q = np.asarray(evaluate(imp.program, point).values[0], dtype=object)
    assert (q_matmul(Q.T, Q) == np.eye(2, dtype=np.int64).astype(object)).all()
    close(exact_outputs(lambda a, tau: (torch.linalg.householder_product(a, tau),), A, tau)[0],
          torch.linalg.householder_product(A, tau).numpy(), "Q at the float taus")


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
def test_ormqr_equals_torchs(left, transpose):
    A = t([[0.5, 1.0, -0.25], [0.75, -1.5, 2.0], [-1.25, 0.5, 1.0]])
    tau = t([0.5, -1.25, 0.75])
    C = t([[1.0, -0.5, 0.25, 2.0], [0.5, 1.5, -1.0, 0.75], [-2.0, 0.25, 1.0, -1.5]])
    C = C if left else C.T.contiguous()
    compare(lambda a, tau, c: (torch.ormqr(a, tau, c, left=left, transpose=transpose),), [A, tau, C])


def test_ormqr_is_the_product_with_householder_q_exactly():
    A = t([[0.5, 1.0], [0.75, -1.5], [-1.25, 0.5]])
    tau = t([0.5, -1.25])
    C = t([[1.0, -0.5], [0.5, 1.5], [-2.0, 0.25]])
    Q = exact_outputs(lambda a, tau: (torch.linalg.householder_product(
        torch.cat([a, torch.zeros(3, 1, dtype=D)], 1), tau),), A, tau)[0]
    QC, QtC = exact_outputs(lambda a, tau, c: (torch.ormqr(a, tau, c), torch.ormqr(a, tau, c, transpose=True)),
                            A, tau, C)
    assert (q_matmul(Q, q(C)) == QC).all()
    assert (q_matmul(Q.T, q(C)) == QtC).all()


def test_frexp_is_refused_as_integer_valued():
    with pytest.raises(ImportFailure, match="frexp computes integers from real values"):
        verify.from_torch(lambda x: torch.frexp(x).mantissa.sum(), t([0.75, 3.0]))
