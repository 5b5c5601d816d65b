"""QR (LAPACK's Householder convention) and grid_sample in the torch importer, against live PyTorch (float64, CPU).

grid_sample: on dyadic grids whose pixel coordinates sit on integers, half-integers, the image border and
outside it (every kink of the tent weights, of the border clamp and of round), float64 is exact, so torch's
value and gradients must equal ours exactly; at random points to float64 rounding (tests/import_helpers.py).

QR: see the section below.
"""
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import verify  # noqa: E402
from verify.frameworks import ImportFailure  # noqa: E402
from verify.program.arrays import ExactArray  # noqa: E402
from import_helpers import assert_kinks_explicit, close, exact_equal, run_torch  # noqa: E402

D = torch.float64


def weighted(fn):
    """sum(w * fn(...)) with distinct weights, so that a permutation of the outputs shows in the gradient."""
    def f(*args):
        out = fn(*args)
        w = torch.arange(1., 1. + out.numel(), dtype=D).reshape(out.shape) ** 2
        return (out * w).sum()
    return f


def compare(f, args, exact, what):
    imp = verify.from_torch(f, *args)
    assert_kinks_explicit(imp.program)
    g = verify.grad(imp.program, imp.point, number="exact" if exact else "ball")
    tv, tg = run_torch(f, args)
    check = exact_equal if exact else close
    check(np.array(g.values[0]), np.array(tv), f"{what} value")
    for i, (o, tgrad) in enumerate(zip(g.gradient, tg)):
        check(o, tgrad.numpy(), f"{what} gradient {i}")
    return imp


# ------------------------------------------------------------------------------------------- grid_sample

# sizes whose pixel coordinates are dyadic in the grid's normalised coordinates: size - 1 a power of 2 with
# align_corners (i = (g + 1) (size - 1) / 2), size a power of 2 without (i = ((g + 1) size - 1) / 2)
SIZES = {True: (3, 5, 3), False: (2, 4, 4)}


def normalised(c, size, align):
    """The grid coordinate whose pixel coordinate is c along an axis of ``size`` pixels."""
    return 2 * c / (size - 1) - 1 if align else (2 * c + 1) / size - 1


def kink_grid(sizes, align, n_random):
    """(1, P, 1, ..., nd) grid whose per-axis pixel coordinates run over the integers and half-integers from
    -2 size to 2 size and a few quarters (the kinks of the tent, of round, of the border clamp and the folds of
    the reflection, and points between): every value on every axis (in shifted cycles), then ``n_random``
    random combinations."""
    axes = []
    for size in reversed(sizes):                   # the grid's last axis lists x (the last spatial axis) first
        cs = [k / 2 for k in range(-4 * size, 4 * size + 1)] + [-0.75, 0.25, size - 1.25, 2.5 * size + 0.25]
        axes.append([normalised(c, size, align) for c in cs])
    n = max(len(a) for a in axes)
    pts = [[a[(p + 3 * i) % len(a)] for i, a in enumerate(axes)] for p in range(n)]
    rng = np.random.default_rng(len(sizes) * 10 + align)
    pts += [[a[rng.integers(len(a))] for a in axes] for _ in range(n_random)]
    return torch.tensor(pts, dtype=D).reshape((1, len(pts)) + (1,) * (len(sizes) - 1) + (len(sizes),))


def dyadic_input(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-16, 17, shape, generator=gen).to(D) / 8


GRID_CASES = list(itertools.product((2, 3), ("bilinear", "nearest"), ("zeros", "border", "reflection"),
                                     (False, True))) + [(2, "bicubic", "zeros", False), (2, "bicubic", "zeros", True)]


@pytest.mark.parametrize("nd,mode,padding,align", GRID_CASES)
def test_grid_sample_equals_torch_exactly_at_its_kinks(nd, mode, padding, align):
    sizes = SIZES[align][-nd:]
    x = dyadic_input((1, 2) + sizes, nd)
    grid = kink_grid(sizes, align, 20)

    def fn(x, grid):
        return torch.nn.functional.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=align)
    f = weighted(fn)
    imp = compare(f, [x, grid], True, f"{nd}-d {mode} {padding} align={align}")
    gen = torch.Generator().manual_seed(nd * 100 + align)
    xr = torch.randn(x.shape, generator=gen, dtype=D)
    gr = torch.rand(grid.shape, generator=gen, dtype=D) * 2.6 - 1.3
    g = verify.grad(imp.program, [xr.numpy(), gr.numpy()], number="ball")
    tv, tg = run_torch(f, [xr, gr])
    close(np.array(g.values[0]), np.array(tv), "value at a random point")
    for o, tgrad in zip(g.gradient, tg):
        close(o, tgrad.numpy(), "gradient at a random point")


def test_grid_sample_kink_grid_hits_the_kinks():
    """The kink grids hold integer pixel coordinates inside, on and outside the border, and half-integers."""
    for align in (False, True):
        size = SIZES[align][-1]
        g = kink_grid((size,) * 2, align, 0)[..., 0].reshape(-1)
        c = ((g + 1) * (size - 1) / 2 if align else ((g + 1) * size - 1) / 2).tolist()
        assert {0.0, size - 1.0, -1.0, float(size)} <= set(c) and any(v % 1 == 0.5 for v in c)


@pytest.mark.parametrize("mode,padding,what", [("bicubic", "border", "mode='bicubic' and padding_mode='border'"),
                                                ("bicubic", "reflection", "padding_mode='reflection'")])
def test_grid_sample_modes_not_modelled_are_refused_by_name(mode, padding, what):
    x, grid = dyadic_input((1, 1, 3, 3), 1), kink_grid((3, 3), True, 4)
    with pytest.raises(ImportFailure, match=f"grid_sampler_2d.*{what}.*not supported"):
        verify.from_torch(lambda x, g: torch.nn.functional.grid_sample(x, g, mode=mode, padding_mode=padding,
                                                                       align_corners=True).sum(), x, grid)


# ---------------------------------------------------------------------------------------------------------- QR
# torch.linalg.qr is LAPACK's geqrf + orgqr.  The program's values are LAPACK's (its sign convention at
# alpha = 0, its H = I where a column is 0 below the diagonal), its gradient torch's backward (the derivative of
# the factorization with the diagonal signs fixed), at random points and on each jump.  Square roots make the
# values balls: compared with torch to float64 rounding, and Q R = A, Q^T Q = I by containment.

def qr_loss(mode="reduced", with_q=True):
    def f(A):
        Q, R = torch.linalg.qr(A, mode=mode)
        wr = torch.arange(1., 1. + R.numel(), dtype=D).reshape(R.shape)
        if mode == "r" or not with_q:
            return (R * wr).sum()
        wq = torch.arange(1., 1. + Q.numel(), dtype=D).reshape(Q.shape) ** 0.5
        return (Q * wq).sum() + (R * wr).sum()
    return f


def qr_compare(A, mode="reduced", torch_mode=None):
    """verify's value and gradient of qr_loss(mode) at A against torch's (torch_mode: the mode whose backward
    torch computes, when torch has none for ``mode``)."""
    imp = verify.from_torch(qr_loss(mode), A)
    assert_kinks_explicit(imp.program)
    g = verify.grad(imp.program, imp.point, number="ball")
    tv, (tg,) = run_torch(qr_loss(torch_mode or mode, mode != "r"), [A])
    if torch_mode is None:
        close(np.array(g.values[0]), np.array(tv), "value")
    close(g.gradient[0], tg.numpy(), "gradient")
    return imp


def qr_factors(A, mode="reduced"):
    """verify's (Q, R) at A, balls (Q None in mode 'r')."""
    if mode == "r":
        imp = verify.from_torch(lambda A: torch.linalg.qr(A, mode=mode)[1], A)
        (R,) = verify.evaluate(imp.program, imp.point, number="ball").values
        return None, np.asarray(R, dtype=object)
    imp = verify.from_torch(lambda A: torch.linalg.qr(A, mode=mode), A)
    Q, R = verify.evaluate(imp.program, imp.point, number="ball").values
    return np.asarray(Q, dtype=object), np.asarray(R, dtype=object)


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (2, 3, 3), (1, 1), (3, 1)])
def test_qr_equals_torch_at_random_points(shape):
    A = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)), dtype=D)
    qr_compare(A)
    for mode in ("complete", "r"):
        Q, R = torch.linalg.qr(A, mode=mode)
        ours = qr_factors(A, mode)
        close(ours[1], R.numpy(), f"R of mode {mode}")
        if mode == "complete":
            close(ours[0], Q.numpy(), "Q of mode complete")


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
def test_qr_factors_multiply_back_and_q_is_orthogonal(shape):
    """Q R contains A and Q^T Q contains I (ball products of verify's balls), R is exactly 0 below the
    diagonal, and the balls are narrow."""
    A = torch.randn(shape, generator=torch.Generator().manual_seed(3), dtype=D)
    exact_A = ExactArray.from_any(A.numpy()).to_fmpq()
    for mode in ("reduced", "complete"):
        Q, R = qr_factors(A, mode)
        QR, QtQ = Q.dot(R), Q.T.dot(Q)
        target = np.asarray(exact_A, dtype=object)
        assert all(b.contains(a) for a, b in zip(target.ravel(), QR.ravel()))
        eye = np.eye(Q.shape[1], dtype=np.int64)
        assert all(b.contains(int(a)) for a, b in zip(eye.ravel(), QtQ.ravel()))
        assert max(float(v.rad()) for v in np.concatenate([Q.ravel(), R.ravel()])) < 2.0 ** -100
        assert all(R[i, j] == 0 for i in range(R.shape[0]) for j in range(min(i, R.shape[1])))


# matrices on the jumps of LAPACK's convention (their values are exact in float64 where it matters)
QR_JUMPS = {
    "alpha = 0": [[0., 1., 2.], [1., 0., 1.], [2., 1., 0.]],
    "alpha = -0.0": [[-0., 1., 2.], [1., 0., 1.], [2., 1., 0.]],
    "x = 0, alpha > 0": [[2., 1., 2.], [0., 3., 1.], [0., 1., 1.]],
    "x = 0, alpha < 0": [[-2., 1., 2.], [0., 3., 1.], [0., 1., 1.]],
    # H_0 swaps and negates rows 0 and 1 exactly: column 1 then has alpha = 0 (x != 0), resp. x = 0
    "alpha = 0 in column 1": [[0., 0., 1.], [4., 3., -1.], [0., 2., 2.]],
    "x = 0 in column 1, alpha < 0": [[0., 3., 1.], [4., 1., -1.], [0., 0., 2.]],
    "x = 0 in a tall matrix": [[3., 1.], [0., 2.], [0., -1.], [0., 0.5]],
    "upper triangular": [[1., 2., 3.], [0., -4., 5.], [0., 0., 6.]],
}


@pytest.mark.parametrize("name", sorted(QR_JUMPS))
def test_qr_on_its_jumps_equals_torch(name):
    A = torch.tensor(QR_JUMPS[name], dtype=D)
    imp = qr_compare(A)
    Q, R = torch.linalg.qr(A)
    ours = qr_factors(A)
    close(ours[0], Q.numpy(), f"{name}: Q")
    close(ours[1], R.numpy(), f"{name}: R")
    # the jump is a selection in the program: a discontinuous equation chooses its piece there
    assert any(e.prim == "where" for e in imp.program.eqns)


def test_qr_of_a_zero_column_is_not_defined():
    """alpha = 0 and x = 0: LAPACK gives R[j, j] = 0 and torch's gradient is not finite; the program divides
    by 0 there."""
    A = torch.tensor([[0., 1.], [0., 2.]], dtype=D)
    imp = verify.from_torch(qr_loss(), A)
    with pytest.raises(verify.errors.DomainError):
        verify.grad(imp.program, imp.point, number="ball")


def test_qr_modes_torch_cannot_differentiate_have_the_derivative_of_the_factorization():
    """torch refuses backward for mode='r' and for mode='complete' of a tall matrix; verify's gradient of R in
    mode 'r' is torch's in mode 'reduced', of a complete Q its first n columns' are the reduced Q's, and the
    extra columns' gradient is the derivative of LAPACK's Householder product (central differences)."""
    A = torch.randn(4, 2, generator=torch.Generator().manual_seed(5), dtype=D)
    for mode in ("r", "complete"):
        with pytest.raises(RuntimeError, match="(?i)qr"):
            run_torch(qr_loss(mode), [A])
    qr_compare(A, "r", "reduced")

    def first_columns(A):
        Q, R = torch.linalg.qr(A, mode="complete")
        return (Q[:, :2] * torch.arange(1., 9., dtype=D).reshape(4, 2)).sum() + (R * R).sum()
    imp = verify.from_torch(first_columns, A)
    g = verify.grad(imp.program, imp.point, number="ball")

    def reduced(A):
        Q, R = torch.linalg.qr(A)
        return (Q * torch.arange(1., 9., dtype=D).reshape(4, 2)).sum() + (R * R).sum()
    close(g.gradient[0], run_torch(reduced, [A])[1][0].numpy(), "complete Q's first columns")

    def extra(A):
        Q, _ = torch.linalg.qr(A, mode="complete")
        return (Q[:, 2:] * torch.arange(1., 9., dtype=D).reshape(4, 2)).sum()
    imp = verify.from_torch(extra, A)
    g = np.vectorize(float)(np.asarray(verify.grad(imp.program, imp.point, number="ball").gradient[0], dtype=object))
    h = 2.0 ** -20
    fd = np.zeros((4, 2))
    for i in range(4):
        for j in range(2):
            E = torch.zeros(4, 2, dtype=D)
            E[i, j] = h
            fd[i, j] = (extra(A + E) - extra(A - E)).item() / (2 * h)
    assert np.abs(g - fd).max() < 1e-7, (g, fd)


def test_qr_wide_complete_equals_torch():
    A = torch.randn(2, 4, generator=torch.Generator().manual_seed(6), dtype=D)
    qr_compare(A, "complete")


def test_audits_prove_torch_gradients_on_the_jumps_and_kinks():
    """verify.audit proves torch's float64 gradient a selection gradient of the imported program on a QR jump
    (alpha = 0, x = 0) and on a grid whose coordinates sit on the tent's kinks."""
    for name in ("alpha = 0", "x = 0, alpha < 0"):
        rep = verify.audit(qr_loss(), torch.tensor(QR_JUMPS[name], dtype=D), critical="never")
        assert rep.verdict_word == "PROVED", (name, rep.summary())
        assert all(a.agrees for a in rep.agreement)
    x, grid = dyadic_input((1, 2, 3, 5), 2), kink_grid((3, 5), True, 0)
    rep = verify.audit(weighted(lambda x, g: torch.nn.functional.grid_sample(x, g, align_corners=True)), x, grid,
                       critical="never")
    assert rep.verdict_word == "PROVED", rep.summary()
    assert all(a.agrees for a in rep.agreement)


@pytest.mark.parametrize("shape", [(0, 3, 3), (0, 2, 4), (2, 0, 3), (3, 0)])
def test_qr_of_empty_matrices_is_empty(shape):
    """Empty batches and empty matrices give torch's empty factors (shapes equal)."""
    A = torch.zeros(shape, dtype=D)
    Q, R = torch.linalg.qr(A)
    ours = qr_factors(A)
    assert ours[0].shape == tuple(Q.shape) and ours[1].shape == tuple(R.shape)


@pytest.mark.parametrize("some", [True, False])
def test_torch_qr_decomposes_to_linalg_qr_with_its_jumps(some):
    """torch.qr (aten.qr, decomposed into linalg_qr with mode 'reduced' or 'complete') on a jump of each kind."""
    def f(A):
        Q, R = torch.qr(A, some=some)
        return (Q * torch.arange(1., 1. + Q.numel(), dtype=D).reshape(Q.shape)).sum() + (R * R).sum()
    for name in ("alpha = 0", "x = 0, alpha > 0", "alpha = 0 in column 1"):
        A = torch.tensor(QR_JUMPS[name], dtype=D)
        imp = verify.from_torch(f, A)
        g = verify.grad(imp.program, imp.point, number="ball")
        tv, (tg,) = run_torch(f, [A])
        close(np.array(g.values[0]), np.array(tv), f"{name}: value")
        close(g.gradient[0], tg.numpy(), f"{name}: gradient")
