"""The spectral family of frameworks/torch_ops.py (eigvalsh, svdvals, norm.nuc, cond, pinv, matrix_exp) and the
``root`` and ``expm`` primitives behind them, against live PyTorch (float64, CPU), mpmath's symmetric
eigensolver, and exact identities in rationals.

Exact oracles: symmetric matrices built as Q D Q^T with a dyadic orthogonal Q (a Householder reflector
I - 2 v v^T / |v|^2 with |v|^2 a power of 2) have the integer eigenvalues D and rational eigenvectors (the
columns of Q), so the eigenvalues are exact rationals and the gradient of sum w_k lambda_k is
sum w_k q_k q_k^T exactly.  At a repeated eigenvalue the value is not a smooth function of the matrix
(torch's gradient there depends on LAPACK's basis): the program is undefined there.
"""
import mpmath
import numpy as np
import pytest
from flint import arb, ctx, fmpq

torch = pytest.importorskip("torch")

import verify  # noqa: E402
from verify.errors import DomainError, ParseError, Undecided  # noqa: E402
from verify.frameworks import ImportFailure  # noqa: E402
from verify.interpret.filtered import filter_gaps  # noqa: E402
from verify.interpret.tensor import evaluate  # noqa: E402
from verify.numbers.roots import isolate, real_root  # noqa: E402
from import_helpers import close  # noqa: E402

D = torch.float64
Q = fmpq


def qf(x):
    """A float as its exact rational."""
    return fmpq(*float(x).as_integer_ratio())


def t(x):
    return torch.tensor(x, dtype=D)


def householder(v):
    """I - 2 v v^T / |v|^2 for an integer vector whose |v|^2 is a power of 2: orthogonal, symmetric, dyadic."""
    v = np.asarray(v, dtype=np.float64)
    return np.eye(len(v)) - 2 * np.outer(v, v) / (v @ v)


H4 = householder([1, 1, 1, 1])                          # entries +-1/2
EIG4 = [5.0, -1.0, 3.0, 2.0]                            # distinct integers (not sorted: Q D Q^T mixes them)
A4 = t(H4 @ np.diag(EIG4) @ H4.T)                        # dyadic, symmetric, eigenvalues -1, 2, 3, 5


def run_torch(f, args):
    args = [a.detach().clone().requires_grad_(True) for a in args]
    out = f(*args)
    out.backward()
    return out.item(), [a.grad for a in args]


def weighted(fn):
    def f(*xs):
        out = fn(*xs)
        w = (torch.arange(1., 1. + out.numel(), dtype=D).reshape(out.shape)) ** 2 / 8
        return (out * w).sum()
    return f


def ours(fn, args, number="ball"):
    """verify's value and gradient of sum(w * fn(args)); balls at 256 bits (a root's ball is about as wide as
    its coefficients' balls divided by p'(root): far narrower than the float64 bound of ``close``)."""
    imp = verify.from_torch(weighted(fn), *args)
    return verify.grad(imp.program, imp.point, number=number, prec=256 if number == "ball" else None)


def compare(fn, args):
    """Value and gradient of sum(w * fn(args)) equal torch's to the float64 bound."""
    g = ours(fn, args)
    tv, tg = run_torch(weighted(fn), args)
    close(np.array(g.values[0]), np.array(tv), "value")
    for i, (o, tgrad) in enumerate(zip(g.gradient, tg)):
        close(o, tgrad.numpy(), f"gradient of input {i}")
    return g


def random_symmetric(n, seed):
    g = torch.Generator().manual_seed(seed)
    B = torch.randn(n, n, dtype=D, generator=g)
    return (B + B.T) / 2


def random_matrix(m, n, seed):
    return torch.randn(m, n, dtype=D, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------ the root primitive

def test_root_is_exact_at_rational_roots_with_the_implicit_function_derivative():
    # (x - 2)(x - 3) = 6 - 5x + x^2: roots 2, 3; d root / d c_j = -root^j / p'(root)
    for k, r, dp in ((0, 2, -1), (1, 3, 1)):
        g = verify.grad(f"lambda a, b, c: root(a, b, c, k={k})", ["6", "-5", "1"], number="exact")
        assert g.values == [r]
        assert g.gradient == [Q(-1, dp), Q(-r, dp), Q(-r * r, dp)]
    fwd = verify.grad("lambda a, b, c: root(a, b, c, k=1)", ["6", "-5", "1"], number="exact", mode="forward")
    assert fwd.gradient == [-1, -3, -9]


def test_root_encloses_irrational_roots_and_agrees_with_floats():
    # x^3 - 2x - 1 = (x + 1)(x^2 - x - 1): roots -phi^-1... exactly (1 - sqrt 5)/2, -1, (1 + sqrt 5)/2
    s5 = arb(5).sqrt()
    want = [-arb(1), (1 - s5) / 2, (1 + s5) / 2]
    for k in range(3):
        v = verify.evaluate(f"lambda a, b, c, d: root(a, b, c, d, k={k})", ["-1", "-2", "0", "1"], number="ball")
        b = v.values[0]
        assert b.overlaps(want[k]) and b.rad() < 2.0 ** -40, (k, b)
        if k == 0:
            ex = verify.evaluate(f"lambda a, b, c, d: root(a, b, c, d, k={k})", ["-1", "-2", "0", "1"])
            assert ex.values == [-1]        # a rational root stays exact
        f = verify.evaluate(f"lambda a, b, c, d: root(a, b, c, d, k={k})", ["-1", "-2", "0", "1"], number="float")
        assert abs(float(f.values[0]) - float(want[k].mid())) < 1e-12
    with ctx.workprec(300):
        r = real_root([Q(-1), Q(-2), Q(0), Q(1)], 2)
        assert r.overlaps(want[2]) and r.rad() < 2.0 ** -280


@pytest.mark.parametrize("coeffs, error", [
    (["1", "-2", "1"], "repeated root"),            # (x - 1)^2
    (["1", "0", "1"], "non-real root"),             # x^2 + 1
    (["1", "2", "0"], "leading coefficient"),
])
def test_root_outside_its_domain_is_a_domain_error(coeffs, error):
    with pytest.raises(DomainError, match=error):
        verify.evaluate("lambda a, b, c: root(a, b, c, k=0)", coeffs)


def test_root_says_undecided_when_balls_cannot_separate_the_roots():
    c0 = arb(1).union(arb(Q(1) + Q(1, 2 ** 200)))     # (x - 1)^2 + [0, 2^-200]: a double root or two close ones
    with pytest.raises(Undecided):
        isolate([c0, arb(-2), arb(1)])
    with pytest.raises(ParseError, match="0 <= k < 2"):
        verify.parse("lambda a, b, c: root(a, b, c, k=2)")


def test_the_float_filter_refuses_root_by_name():
    imp = verify.from_torch(lambda a: torch.linalg.eigvalsh(a).sum(), A4)
    assert "root" in filter_gaps(imp.program)


# ------------------------------------------------------------------------------------------------ eigvalsh

def test_eigvalsh_is_exact_on_integer_eigenvalues_and_its_gradient_is_sum_w_q_qT():
    g = ours(torch.linalg.eigvalsh, [A4], number="exact")
    lam = sorted(EIG4)
    w = [(k + 1) ** 2 / 8 for k in range(4)]
    assert g.values[0] == sum(qf(w[k]) * qf(lam[k]) for k in range(4))
    order = np.argsort(EIG4)
    want = sum(w[k] * np.outer(H4[:, order[k]], H4[:, order[k]]) for k in range(4))
    assert all(isinstance(v, fmpq) for v in np.ravel(g.gradient[0]))
    assert all(a == qf(b) for a, b in zip(np.ravel(g.gradient[0]), np.ravel(want)))
    vals = evaluate(verify.from_torch(lambda a: torch.linalg.eigvalsh(a), A4).program, [A4.numpy()]).values[0]
    assert list(np.ravel(vals)) == [qf(v) for v in lam]
    compare(torch.linalg.eigvalsh, [A4])


@pytest.mark.parametrize("n, seed", [(1, 0), (2, 1), (3, 2), (5, 3)])
def test_eigvalsh_equals_torch_and_mpmath_on_random_symmetric_matrices(n, seed):
    S = random_symmetric(n, seed)
    compare(torch.linalg.eigvalsh, [S])
    compare(lambda a: torch.linalg.eigh(a)[0], [S])
    compare(lambda a: torch.linalg.eigvalsh(a, UPLO="U"), [S])
    imp = verify.from_torch(lambda a: torch.linalg.eigvalsh(a), S)
    balls = evaluate(imp.program, [S.numpy()], number="ball", prec=200).values[0]
    mpmath.mp.prec = 200
    E, _ = mpmath.eigsy(mpmath.matrix(S.numpy().tolist()))
    for b, e in zip(np.ravel(balls), sorted(E)):
        assert abs(float(b.mid()) - float(e)) <= 2.0 ** -150 * max(1, abs(float(e))) + float(b.rad())


def test_eigvalsh_of_a_batch_and_the_symmetrised_gradient():
    # torch's backward treats A as symmetric: at a symmetric A its gradient is symmetric, as ours
    batch = torch.stack([random_symmetric(3, 7), A4[:3, :3] + A4[:3, :3].T])
    compare(torch.linalg.eigvalsh, [batch])


@pytest.mark.parametrize("A", [torch.eye(3, dtype=D), t(H4 @ np.diag([2.0, 2.0, 1.0, 3.0]) @ H4.T)],
                         ids=["identity", "double"])
def test_eigvalsh_at_a_repeated_eigenvalue_is_undefined(A):
    imp = verify.from_torch(lambda a: torch.linalg.eigvalsh(a).sum(), A)
    with pytest.raises(DomainError, match="repeated root"):
        verify.grad(imp.program, imp.point)


def test_eigenvectors_and_singular_vectors_are_refused_clearly():
    with pytest.raises(ImportFailure, match="eigenvectors are defined up to sign"):
        verify.from_torch(lambda a: torch.linalg.eigh(a)[1].sum(), A4)
    with pytest.raises(ImportFailure, match="singular vectors are defined up to sign"):
        verify.from_torch(lambda a: torch.linalg.svd(a)[0].sum(), A4)


# ------------------------------------------------------------------------------------ singular values, norms

@pytest.mark.parametrize("m, n, seed", [(3, 3, 0), (4, 2, 1), (2, 5, 2), (1, 3, 3)])
def test_svdvals_nuclear_norm_and_cond_equal_torch(m, n, seed):
    A = random_matrix(m, n, seed)
    compare(torch.linalg.svdvals, [A])
    compare(lambda a: torch.linalg.svd(a)[1], [A])
    compare(lambda a: torch.linalg.matrix_norm(a, "nuc").reshape(1), [A])
    compare(lambda a: torch.linalg.norm(a, 2).reshape(1), [A])
    compare(lambda a: torch.linalg.cond(a).reshape(1), [A])


def test_singular_values_are_exact_for_a_dyadic_svd():
    # A = H4 diag(s) H4': singular values exactly |s| in descending order
    H = householder([1, -1, 1, 1])
    A = t(H4 @ np.diag([4.0, -0.5, 2.0, 1.0]) @ H)
    imp = verify.from_torch(lambda a: torch.linalg.svdvals(a), A)
    assert list(np.ravel(evaluate(imp.program, [A.numpy()]).values[0])) == [4, 2, 1, Q(1, 2)]


# ------------------------------------------------------------------------------------------------------ pinv

@pytest.mark.parametrize("m, n, seed", [(3, 3, 4), (4, 2, 5), (2, 4, 6)])
def test_pinv_equals_torch_where_full_rank(m, n, seed):
    A = random_matrix(m, n, seed)
    compare(torch.linalg.pinv, [A])
    compare(lambda a: torch.pinverse(a, rcond=1e-3), [A])
    compare(lambda a: torch.linalg.pinv(a, atol=1e-4), [A])
    if m == n:
        compare(lambda a: torch.linalg.pinv(a, hermitian=True), [A + A.T])


def test_at_a_non_symmetric_matrix_torchs_eigvalsh_gradient_is_no_derivative():
    """Why eigvalsh is symmetrised: the forward reads one triangle, the backward is symmetric (V diag(g) V^T), so
    it is not the derivative of the forward: a central difference along an upper entry differs from it."""
    A = random_matrix(3, 3, 9)
    x = A.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.linalg.eigvalsh(x)[0], x)
    h = 1e-6
    E = torch.zeros(3, 3, dtype=D)
    E[0, 2] = h
    fd = (torch.linalg.eigvalsh(A + E)[0] - torch.linalg.eigvalsh(A - E)[0]) / (2 * h)
    assert abs(fd.item()) < 1e-8 and abs(g[0, 2].item()) > 1e-3     # the upper triangle is not read


def test_pinv_of_a_full_rank_dyadic_matrix_is_its_exact_left_inverse():
    A = t([[2.0, -1.0], [0.5, 1.5], [1.0, 0.25]])
    imp = verify.from_torch(lambda a: torch.linalg.pinv(a), A)
    P = np.asarray(evaluate(imp.program, [A.numpy()]).values[0], dtype=object)
    Aq = np.vectorize(qf, otypes=[object])(A.numpy())
    prod = P.dot(Aq)
    assert all(prod[i, j] == (1 if i == j else 0) for i in range(2) for j in range(2))


def test_pinv_is_undefined_where_full_rank_is_not_proved():
    # rank 1: torch truncates (the truncated pinv needs singular vectors); a constant zero matrix is 0
    A = t([[1.0, 2.0], [2.0, 4.0]])
    imp = verify.from_torch(lambda a: torch.linalg.pinv(a).sum(), A)
    with pytest.raises(DomainError):
        verify.grad(imp.program, imp.point)
    # full rank, but an rtol that drops the smaller singular value: torch truncates, the program refuses
    B = t([[1.0, 0.0], [0.0, 0.01]])
    assert torch.linalg.matrix_rank(B, rtol=0.1) == 1
    imp = verify.from_torch(lambda a: torch.linalg.pinv(a, rtol=0.1).sum(), B)
    with pytest.raises(DomainError):
        verify.grad(imp.program, imp.point)
    a0 = torch.zeros(3, 0, dtype=D)
    compare(lambda a, b: torch.linalg.pinv(a @ b.T), [a0, a0.clone()])


# ------------------------------------------------------------------------------------------------ matrix_exp

@pytest.mark.parametrize("shape, seed", [((1, 1), 0), ((2, 2), 1), ((4, 4), 2), ((2, 3, 3), 3)])
def test_matrix_exp_equals_torch(shape, seed):
    A = torch.randn(*shape, dtype=D, generator=torch.Generator().manual_seed(seed))
    compare(torch.linalg.matrix_exp, [A])
    compare(lambda a: torch.matrix_exp(a).sum(-1), [A])


def test_matrix_exp_is_exact_at_zero_and_encloses_known_values():
    Z = torch.zeros(3, 3, dtype=D)
    g = ours(torch.linalg.matrix_exp, [Z], number="exact")
    w = [(k + 1) ** 2 / 8 for k in range(9)]
    assert g.values[0] == sum(qf(w[4 * k]) for k in range(3))           # exp(0) = I: the diagonal weights
    assert list(np.ravel(g.gradient[0])) == [qf(v) for v in w]           # d exp(A) at 0 is the identity map
    # exp([[a, b], [0, a]]) = e^a [[1, b], [0, 1]]; exp(diag) = diag(exp)
    imp = verify.from_torch(lambda a: torch.linalg.matrix_exp(a), t([[0.5, 3.0], [0.0, 0.5]]))
    v = np.ravel(evaluate(imp.program, imp.point, number="ball", prec=128).values[0])
    e = arb(Q(1, 2)).exp()
    for got, want in zip(v, [e, 3 * e, arb(0), e]):
        assert got.overlaps(want) and got.rad() < 2.0 ** -100


def test_matrix_exp_gradient_is_the_adjoint_frechet_derivative():
    """<G, L(A, E)> = <L(A^T, G), E>: verify's gradient of sum(G * exp(A)) in a direction E equals its forward
    derivative (jvp) in that direction, and both equal torch's."""
    A = random_matrix(3, 3, 11)
    imp = verify.from_torch(weighted(torch.linalg.matrix_exp), A)
    back = verify.grad(imp.program, imp.point, number="ball", prec=128).gradient[0]
    fwd = verify.grad(imp.program, imp.point, number="ball", prec=128, mode="forward").gradient[0]
    for b, f in zip(np.ravel(back), np.ravel(fwd)):
        assert b.overlaps(f)
    x = A.clone().requires_grad_(True)
    (tg,) = torch.autograd.grad(weighted(torch.linalg.matrix_exp)(x), x)
    close(back, tg.numpy(), "gradient")


def test_the_float_filter_refuses_expm_by_name():
    imp = verify.from_torch(lambda a: torch.linalg.matrix_exp(a).sum(), A4)
    assert filter_gaps(imp.program) == ["expm"]


# -------------------------------------------------------------------------------- CLI and the checker

def _cli(*args, cwd=None):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "verify", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_refuses_outside_roots_domain_in_one_line_and_the_checker_refuses_their_certificates(tmp_path):
    for at, number, why in (("1,-2,1", "exact", "repeated root"), ("1,0,1", "ball", "non-real root")):
        r = _cli("eval", "lambda a, b, c: root(a, b, c, k=0)", "--at", at, "--number", number)
        assert r.returncode == 2 and why in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = _cli("index-set", "lambda a, b, c: root(a, b, c, k=1) + relu(a - 6)", "--at", "6,-5,1",
             "--certificate", "c.json", cwd=tmp_path)
    assert r.returncode == 0 and "(-1, -3, -9)" in r.stdout and "(0, -3, -9)" in r.stdout, r.stdout + r.stderr
    r = _cli("check", "c.json", cwd=tmp_path)
    assert r.returncode == 1 and "no rule of its own for root" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("fn", [torch.linalg.eigvalsh, torch.linalg.svdvals, torch.linalg.pinv,
                                torch.linalg.matrix_exp], ids=["eigvalsh", "svdvals", "pinv", "matrix_exp"])
def test_an_empty_batch_gives_empty_values_and_gradients(fn):
    # a batch of no matrix (OpInfo's (0, n, n) samples): the products over it are empty, not an error
    A = torch.zeros(0, 3, 3, dtype=D)
    for number in ("exact", "ball", "float"):
        g = ours(fn, [A], number=number)
        assert g.values[0] == 0 and np.shape(g.gradient[0]) == (0, 3, 3)
