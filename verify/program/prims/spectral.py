"""``root``: the k-th smallest real root of a polynomial, a smooth primitive of its coefficients; ``expm``: an
entry of the matrix exponential, a smooth (entire) primitive of the matrix's entries.

``root(c_0, c_1, ..., c_n, k=k)`` is the k-th smallest (k = 0 first) of the roots of c_0 + c_1 x + ... + c_n x^n,
defined where c_n != 0 and the n roots are real and simple.  That set is open and the roots are analytic
there (implicit function theorem), with derivative d lambda / d c_j = -lambda^j / p'(lambda).  An eigenvalue
of a symmetric matrix is not a finite composition of + - * / sqrt, so the importers write eigenvalues
(eigvalsh, singular values, ...) as ``root`` of a characteristic polynomial whose coefficients are a
polynomial program in the matrix (frameworks/torch_ops.py).

The value rule encloses the root rigorously (numbers/roots.py: disjoint intervals with decided sign changes,
one per root): DomainError where a repeated or non-real root is proved, Undecided where isolation fails at
this precision.  The float systems use numpy's roots (unverified, as every float rule); the interval
cross-check has no rule for it, and the float filter has no rounding bound for it (it refuses it by name).

``expm(a_00, ..., a_(n-1)(n-1), i=i, j=j)`` is exp(A)[i, j], enclosed by FLINT's arb_mat.exp; its gradient is
the adjoint of the Frechet derivative, L(A^T, E_ij) (numbers/matfun.py).  Same status as ``root`` for the
interval cross-check and the float filter.
"""
import math

from flint import fmpq

from . import INT, Primitive, eval_rules, jvp_rules, register, vjp_rules


class RootPrimitive(Primitive):
    def check_params(self, explicit, n_in, where):
        from ...errors import ProgramError
        out = super().check_params(explicit, n_in, where)
        if not 0 <= out["k"] < n_in - 1:
            raise ProgramError(f"{where}: root of a degree-{n_in - 1} polynomial needs 0 <= k < {n_in - 1}, "
                               f"got k={out['k']}")
        return out


root_p = register(RootPrimitive(
    "root", (2, None), True, params={"k": (None, INT)}, required=("k",),
    doc="root(c_0, ..., c_n, k=k): the k-th smallest root (k = 0 first) of c_0 + c_1 x + ... + c_n x^n, defined "
        "where c_n != 0 and all n roots are real and simple"))


def _powers(ns, y, n):
    """[1, y, y^2, ..., y^n] in ns (repeated products)."""
    out = [None, y]
    for _ in range(2, n + 1):
        out.append(ns.mul(out[-1], y))
    return out


def _dp(ns, cs, pw):
    """p'(y) = sum_j j c_j y^(j-1), from the powers of y."""
    acc = cs[1]
    for j in range(2, len(cs)):
        acc = ns.add(acc, ns.mul(ns.mul(ns.const(fmpq(j)), cs[j]), pw[j - 1]))
    return acc


def _plus(ns, a, b):
    return b if a is None else ns.add(a, b)


def _root_eval(ns, p, *cs):
    return ns.root(list(cs), p["k"])


def _root_jvp(ns, p, xs, y, ts):
    """d lambda = -(sum_j lambda^j dc_j) / p'(lambda)."""
    pw = _powers(ns, y, len(xs) - 1)
    num = None
    for j, t in enumerate(ts):
        if t is not None:
            num = _plus(ns, num, t if j == 0 else ns.mul(pw[j], t))
    return None if num is None else ns.neg(ns.div(num, _dp(ns, xs, pw)))


def _root_vjp(ns, p, xs, y, ct):
    pw = _powers(ns, y, len(xs) - 1)
    g = ns.neg(ns.div(ct, _dp(ns, xs, pw)))
    return tuple(g if j == 0 else ns.mul(g, pw[j]) for j in range(len(xs)))


eval_rules["root"] = _root_eval
jvp_rules["root"] = _root_jvp
vjp_rules["root"] = _root_vjp


class ExpmPrimitive(Primitive):
    def check_params(self, explicit, n_in, where):
        from ...errors import ProgramError
        out = super().check_params(explicit, n_in, where)
        n = math.isqrt(n_in)
        if n * n != n_in:
            raise ProgramError(f"{where}: expm takes the n^2 entries of a square matrix, got {n_in} arguments")
        if not (0 <= out["i"] < n and 0 <= out["j"] < n):
            raise ProgramError(f"{where}: expm of a {n} x {n} matrix needs 0 <= i, j < {n}, got i={out['i']}, "
                               f"j={out['j']}")
        return out


expm_p = register(ExpmPrimitive(
    "expm", (1, None), True, params={"i": (None, INT), "j": (None, INT)}, required=("i", "j"),
    doc="expm(a_00, a_01, ..., a_(n-1)(n-1), i=i, j=j): the entry (i, j) of the matrix exponential of the n x n "
        "matrix given row by row (entire)"))


def _expm_jvp(ns, p, xs, y, ts):
    g = ns.expm_grad(list(xs), p["i"], p["j"])
    out = None
    for gk, t in zip(g, ts):
        if t is not None:
            out = _plus(ns, out, ns.mul(gk, t))
    return out


eval_rules["expm"] = lambda ns, p, *xs: ns.expm(list(xs), p["i"], p["j"])
jvp_rules["expm"] = _expm_jvp
vjp_rules["expm"] = lambda ns, p, xs, y, ct: tuple(ns.mul(ct, g) for g in ns.expm_grad(list(xs), p["i"], p["j"]))
