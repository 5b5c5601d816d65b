"""Exact linear feasibility over the rationals (a small dense simplex, Bland's rule, fmpq throughout).

Two questions, both answered with a certificate that is re-checked by plain exact arithmetic:

- ``hull_weights(V)``: convex weights lambda >= 0, sum 1, sum lambda_i v_i = 0 (0 is in conv V), or None;
- ``strict_direction(A)``: a vector d with <a_i, d> > 0 for every row a_i (scaled so each is >= 1), or None.

By Gordan's theorem exactly one of ``strict_direction(A)`` and ``hull_weights(A)`` exists, so a None from
one is always backed by an answer from the other; ``separate_or_weights`` returns whichever exists.
Sizes here are small (tens of rows and columns); exactness matters more than speed.
"""
from flint import fmpq

Q0, Q1 = fmpq(0), fmpq(1)


def nonneg_solution(A, b):
    """Some x >= 0 with A x = b (exact), or None when there is none.  Phase I of the simplex method."""
    kind, v = solution_or_farkas(A, b)
    return v if kind == "x" else None


def solution_or_farkas(A, b):
    """("x", x) with x >= 0, A x = b, or ("y", y) with y.A <= 0 columnwise and y.b > 0 (Farkas: then no
    such x exists), read off the final phase-I tableau (y = the objective row under the artificial
    columns, with the sign of rows whose b was negated put back)."""
    m = len(A)
    n = len(A[0]) if m else 0
    if m == 0:
        return "x", [Q0] * n
    rows, flip = [], []
    for row, bi in zip(A, b):
        row = [fmpq(v) for v in row]
        bi = fmpq(bi)
        flip.append(bi < 0)
        if bi < 0:
            row, bi = [-v for v in row], -bi
        rows.append(row)
        rows[-1] = row + [Q1 if j == len(rows) - 1 else Q0 for j in range(m)] + [bi]
    width = n + m
    basis = [n + i for i in range(m)]
    obj = [sum((r[j] for r in rows), Q0) for j in range(width + 1)]
    for j in range(n, width):
        obj[j] = Q0
    while True:
        enter = next((j for j in range(n) if obj[j] > 0), None)     # Bland: smallest improving column
        if enter is None:
            break
        best, leave = None, None
        for i, r in enumerate(rows):
            if r[enter] > 0:
                ratio = r[width] / r[enter]
                if best is None or ratio < best or (ratio == best and basis[i] < basis[leave]):
                    best, leave = ratio, i
        if leave is None:   # unbounded direction: cannot happen in phase I (objective bounded below by 0)
            break
        piv = rows[leave][enter]
        rows[leave] = [v / piv for v in rows[leave]]
        for i, r in enumerate(rows):
            if i != leave and r[enter] != 0:
                f = r[enter]
                rows[i] = [a - f * c for a, c in zip(r, rows[leave])]
        f = obj[enter]
        obj = [a - f * c for a, c in zip(obj, rows[leave])]
        basis[leave] = enter
    if obj[width] != 0:
        # obj = y.[A' | I | b'] - [0 | 1 | 0] for y = c_B B^-1: obj[j] = y.A'_j <= 0 for j < n, obj[n + i] =
        # y_i - 1, and y.b' = obj[width] > 0; undo the negated rows to state it for A and b
        y = [obj[n + i] + 1 for i in range(m)]
        return "y", [-v if f else v for v, f in zip(y, flip)]
    x = [Q0] * n
    for i, j in enumerate(basis):
        if j < n:
            x[j] = rows[i][width]
    return "x", x


def hull_weights(V):
    """Convex weights lambda with sum lambda_i V[i] = 0, or None when 0 is not in conv(V)."""
    if not V:
        return None
    dim = len(V[0])
    A = [[v[k] for v in V] for k in range(dim)] + [[Q1] * len(V)]
    lam = nonneg_solution(A, [Q0] * dim + [Q1])
    return lam


def strict_direction(A):
    """d with <a, d> >= 1 for every row a of A (so every product is > 0), or None when none exists."""
    if not A:
        return None
    dim = len(A[0])
    m = len(A)
    # d = p - q with p, q >= 0, and slacks s >= 0:  A p - A q - s = 1
    M = [[fmpq(v) for v in a] + [-fmpq(v) for v in a] + [-Q1 if j == i else Q0 for j in range(m)]
         for i, a in enumerate(A)]
    z = nonneg_solution(M, [Q1] * m)
    if z is None:
        return None
    return [z[k] - z[dim + k] for k in range(dim)]


def dot(a, b):
    return sum((x * y for x, y in zip(a, b)), Q0)


def check_weights(V, lam):
    """True when lam are convex weights with sum lam_i V[i] = 0 exactly."""
    if len(lam) != len(V) or any(w < 0 for w in lam) or sum(lam, Q0) != 1:
        return False
    return all(sum((w * v[k] for w, v in zip(lam, V)), Q0) == 0 for k in range(len(V[0]) if V else 0))


def check_direction(A, d):
    """True when <a, d> > 0 for every row a of A exactly."""
    return all(dot(a, d) > 0 for a in A)


def separate_or_weights(V):
    """("weights", lambda) when 0 is in conv(V), else ("separator", w) with <w, v> > 0 for all v in V.
    One phase-I run decides: its Farkas vector y for [V^T; 1] lambda = (0, 1) gives w = -y[:dim], with
    <w, v_i> >= y_last > 0.  Both answers are verified exactly before they are returned."""
    if not V:
        raise ValueError("no vectors")
    dim = len(V[0])
    A = [[v[k] for v in V] for k in range(dim)] + [[Q1] * len(V)]
    kind, sol = solution_or_farkas(A, [Q0] * dim + [Q1])
    if kind == "x":
        assert check_weights(V, sol), "the simplex returned wrong weights: a bug"
        return "weights", sol
    w = [-v for v in sol[:dim]]
    assert check_direction(V, w), "Farkas' alternative failed: a bug in the simplex"
    return "separator", w
