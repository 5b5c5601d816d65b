"""Exact polynomials in t on arrays: the number system of the segment walk on polynomial tensor programs
(segment_net.py), such as a network's loss along a segment between two parameter vectors.

When every smooth equation is a polynomial operation (sums, structure, products and contractions of any two
values, division by a value that does not depend on t, non-negative integer powers), every value on a
frozen pattern is exactly sum_k C_k t^k with exact arrays C_k; a product of two t-dependent values adds the
degrees (a layer whose weights and inputs both move: one more degree per layer).  A value here is
``Pol(cs)``: ``cs`` a list of QT of one shape, the coefficient of t^k at position k.  A contraction is one
integer matrix product per coefficient of its left operand, the right operand's coefficients stacked.

Decisions are exact, at ``t`` an fmpq or a real algebraic number (``algebraic.Alg``: breakpoints are roots
of the switching polynomials).  At a rational t the signs of all elements are computed at once in integers
(mode "at": the value; mode "right": the first nonzero Taylor coefficient at t); at an algebraic t each
element that is not a constant goes through ``algebraic.sign_at`` / ``right_sign`` (an exact test for 0, then
balls refined until they exclude 0).  An operation outside the polynomials raises ``NotAffine``.
"""
import bisect
import math

import numpy as np
from flint import fmpq, fmpq_poly

from ..numbers.tensor import QT, ExactTensors
from . import algebraic as A
from .affine_t import MatCache, NotAffine, as_qt, fit, scalar_of, signs_of


class Pol:
    """sum_k cs[k] t^k (cs: a non-empty list of QT of one shape)."""
    __slots__ = ("cs",)

    def __init__(self, cs):
        self.cs = cs

    @property
    def shape(self):
        return self.cs[0].shape

    def __repr__(self):
        return f"Pol(shape={self.shape}, degree<={len(self.cs) - 1})"


def _ints(cs):
    """(integer numerator arrays of one shape, common denominator) of the coefficients."""
    shape = np.broadcast_shapes(*(c.shape for c in cs))
    L = math.lcm(*(c.den for c in cs))
    return [np.broadcast_to(np.asarray(c.num * (L // c.den), dtype=object), shape) for c in cs], L


def _trim(cs):
    """The coefficients without trailing ones that are zero everywhere."""
    k = len(cs)
    while k > 1 and not np.any(np.asarray(cs[k - 1].num, dtype=object) != 0):
        k -= 1
    return cs[:k]


def _lo(r):
    return r if isinstance(r, fmpq) else r.lo


def _hi(r):
    return r if isinstance(r, fmpq) else r.hi


class Roots:
    """Real roots (fmpq or Alg) ordered by the lower end of their isolating intervals (an fmpq is its own
    interval).  That order is not the order of the numbers when intervals overlap, so ``first_after`` decides
    with exact comparisons, and only among the roots whose intervals can hold the answer: it starts at the
    first root whose interval may lie right of t and stops at the first root certainly above the best found."""

    def __init__(self, roots):
        self.roots = sorted(roots, key=_lo)
        self.los = [_lo(r) for r in self.roots]
        self.width = max((_hi(r) - _lo(r) for r in self.roots), default=fmpq(0))

    def __len__(self):
        return len(self.roots)

    def first_after(self, t):
        # ``los`` and ``width`` are the ends when the table was built: comparisons refine intervals in place
        # (ends only move inward), so they stay valid bounds, and the table stays sorted by them
        i = bisect.bisect_left(self.los, _lo(t) - self.width)     # before i: r <= lo(r) + width < lo(t) <= t
        best = None
        for j in range(i, len(self.roots)):
            if best is not None and self.los[j] >= _hi(best):
                break                                             # r >= best, and so is every later root
            r = self.roots[j]
            if A.cmp(r, t) > 0 and (best is None or A.cmp(r, best) < 0):
                best = r
        return best


class PolyT:
    """The tensor number system of exact polynomials in t (module docstring); ``mode`` ("at" or "right") and
    ``t`` (fmpq or Alg) say where ``signs`` decides; ``constants``: the program's constant arrays (their FLINT
    matrices are converted once per walk)."""
    name = "poly-t"
    exact = True
    tensor = True

    def __init__(self, mode="at", t=fmpq(0), constants=()):
        self.E = ExactTensors()
        self.mode, self.t = mode, t
        self._cached = MatCache(constants)

    # ---------------------------------------------------------------------------------------- helpers
    def _map(self, x, fn):
        return Pol([fn(c) for c in x.cs])

    def _const_only(self, x, what):
        if len(_trim(x.cs)) > 1:
            raise NotAffine(f"{what} of a value that depends on t")
        return x.cs[0]

    def element_polys(self, x):
        """One integer fmpq_poly per element (flattened), a positive multiple of the element's polynomial."""
        ns, _ = _ints(x.cs)
        flat = [n.ravel().tolist() for n in ns]
        return [fmpq_poly([int(col[i]) for col in flat]) for i in range(len(flat[0]))]

    # ------------------------------------------------------------------------------------ conversions
    def line(self, a, d):
        """The input value a + t d (QT a, d; d None when the input does not move)."""
        return Pol([a] if d is None else [a, d])

    def poly(self, x):
        """A 0-d value as an fmpq_poly."""
        return fmpq_poly([scalar_of(c) for c in x.cs])

    def const(self, q):
        return Pol([self.E.const(q)])

    def const_array(self, ea):
        return Pol([self.E.const_array(ea)])

    def is_exact_value(self, x):
        return True

    def out(self, x):
        if isinstance(self.t, fmpq):
            ns, L = _ints(x.cs)
            p, q = int(self.t.p), int(self.t.q)
            d = len(ns) - 1
            num = sum(n * (p ** k * q ** (d - k)) for k, n in enumerate(ns))
            return self.E.to_fq(QT(np.asarray(num, dtype=object), L * q ** d))
        return np.array([str(P) for P in self.element_polys(x)], dtype=object).reshape(x.shape)

    def to_json(self, x):
        return x if isinstance(x, str) else self.E.to_json(x)

    # ------------------------------------------------------------------------------------- arithmetic
    def add(self, x, y):
        shape = np.broadcast_shapes(x.shape, y.shape)
        n = max(len(x.cs), len(y.cs))
        out = []
        for k in range(n):
            a = x.cs[k] if k < len(x.cs) else None
            b = y.cs[k] if k < len(y.cs) else None
            c = self.E.add(a, b) if a is not None and b is not None else (a if b is None else b)
            out.append(fit(c, shape))
        return Pol(out)

    def neg(self, x):
        return self._map(x, self.E.neg)

    def sub(self, x, y):
        return self.add(x, self.neg(y))

    def mul(self, x, y):
        shape = np.broadcast_shapes(x.shape, y.shape)
        xs, ys = _trim(x.cs), _trim(y.cs)
        out = [None] * (len(xs) + len(ys) - 1)
        for i, a in enumerate(xs):
            for j, b in enumerate(ys):
                c = self.E.mul(a, b)
                out[i + j] = c if out[i + j] is None else self.E.add(out[i + j], c)
        return Pol([fit(c, shape) for c in out])

    def div(self, x, y):
        d = self._const_only(y, "a division by a value that depends on t: a quotient")
        cs = [as_qt(self.E.div(c, d), "a quotient") for c in x.cs]
        shape = np.broadcast_shapes(*(c.shape for c in cs))
        return Pol([fit(c, shape) for c in cs])

    def pow(self, x, n):
        if len(_trim(x.cs)) == 1:
            return Pol([as_qt(self.E.pow(x.cs[0], n), "a power")])
        if n < 0:
            raise NotAffine(f"a negative power {n} of a value that depends on t")
        out = Pol([self.E.pow(x.cs[0], 0)])
        for _ in range(n):
            out = self.mul(out, x)
        return out

    def _smooth(self, name):
        def f(x):
            return Pol([as_qt(getattr(self.E, name)(self._const_only(x, name)), f"{name} of a constant")])
        return f

    def __getattr__(self, name):
        if name in ("exp", "log", "sqrt", "sin", "cos", "tanh", "erf", "sigmoid", "atan"):
            return self._smooth(name)
        raise AttributeError(name)

    def pi(self):
        raise NotAffine("pi is not rational")

    # -------------------------------------------------------------------------------------- decisions
    def signs(self, x):
        cs = _trim(x.cs)
        if len(cs) == 1:
            return self.E.signs(cs[0])
        if isinstance(self.t, fmpq):
            return self._rational_signs(cs)
        ns, _ = _ints(cs)
        out, undecided = self._interval_signs(ns)
        flat = out.reshape(-1)
        cols = [n.ravel() for n in ns]
        sign = A.sign_at if self.mode == "at" else A.right_sign
        for i in np.nonzero(undecided.ravel())[0].tolist():
            flat[i] = sign(fmpq_poly([int(c[i]) for c in cols]), self.t)
        return out

    def _interval_signs(self, ns):
        """At an algebraic t with isolating interval [lo, hi]: the sign of every polynomial (integer
        coefficient arrays ``ns``) that has no root in [lo, hi], proved at once in integers: with m the
        midpoint, r = (hi - lo) / 2 and R = max(|lo|, |hi|), |p(x) - p(m)| <= r * sum_k k |c_k| R^(k-1) on the
        interval, so |p(m)| above that bound gives p's sign on all of it, t included (and just right of t).
        Returns (signs, the elements left undecided, for the exact test)."""
        t = self.t
        D = int(math.lcm(int(t.lo.q), int(t.hi.q)))
        lo, hi = int(t.lo.p) * (D // int(t.lo.q)), int(t.hi.p) * (D // int(t.hi.q))
        M, Rr, RR, D2 = lo + hi, hi - lo, 2 * max(abs(lo), abs(hi)), 2 * D        # m = M/D2, r = Rr/D2, R = RR/D2
        d = len(ns) - 1
        V = sum(n * (M ** k * D2 ** (d - k)) for k, n in enumerate(ns))
        B = Rr * sum(abs(n) * (k * RR ** (k - 1) * D2 ** (d - k)) for k, n in enumerate(ns) if k)
        V, B = np.asarray(V, dtype=object), np.asarray(B, dtype=object)
        s = signs_of(V)
        undecided = ~(abs(V) > B).astype(bool)
        nonconst = np.zeros(V.shape, dtype=bool)
        for n in ns[1:]:
            nonconst |= n != 0
        const = ~nonconst
        s[undecided & nonconst] = 0
        s[const] = signs_of(ns[0])[const]
        return s, undecided & nonconst

    def _rational_signs(self, cs):
        ns, _ = _ints(cs)
        p, q = int(self.t.p), int(self.t.q)
        d = len(ns) - 1
        # Taylor coefficient j at t, times the positive q^(d - j) * L: sum_k binom(k, j) n_k p^(k-j) q^(d-k)
        coef = []
        for j in range(d + 1 if self.mode == "right" else 1):
            acc = 0
            for k in range(j, d + 1):
                acc = acc + ns[k] * (math.comb(k, j) * p ** (k - j) * q ** (d - k))
            coef.append(signs_of(acc))
        s = coef[0]
        for c in coef[1:]:
            s = np.where(s == 0, c, s).astype(np.int8)
        return s

    def roots(self, switches):
        """The distinct real roots (fmpq or Alg) of the elements of a group's switching functions, as a
        ``Roots`` table (ordered by the lower ends of their isolating intervals)."""
        out = []
        for x in switches:
            cs = _trim(x.cs)
            if len(cs) == 1:
                continue
            ns, L = _ints(cs)
            cols = [n.ravel() for n in ns]
            lin = len(cs) == 2
            for i in range(len(cols[0])):
                c = [int(col[i]) for col in cols]
                while len(c) > 1 and c[-1] == 0:
                    c.pop()
                if len(c) == 1:
                    continue
                if lin:
                    out.append(fmpq(-c[0], c[1]))
                else:
                    out.extend(A.real_roots(fmpq_poly(c)))
        return Roots(out)

    def first_after(self, roots, t):
        """The smallest of the ``roots`` greater than t (exact comparisons of fmpq and Alg), or None."""
        return roots.first_after(t)

    # -------------------------------------------------------------------------------------- structure
    def struct(self, x, fn):
        return self._map(x, lambda q: self.E.struct(q, fn))

    def reshape(self, x, shape):
        return self._map(x, lambda q: self.E.reshape(q, shape))

    def transpose(self, x, perm):
        return self._map(x, lambda q: self.E.transpose(q, perm))

    def broadcast_to(self, x, shape):
        return self._map(x, lambda q: self.E.broadcast_to(q, shape))

    def take(self, x, idx):
        return self._map(x, lambda q: self.E.take(q, idx))

    def shape(self, x):
        return x.shape

    def zeros(self, shape):
        return Pol([self.E.zeros(shape)])

    def zeros_like(self, x):
        return self.zeros(x.shape)

    def sum(self, x, axes, keepdims=False):
        return self._map(x, lambda q: self.E.sum(q, axes, keepdims))

    def scatter(self, v, idx, size):
        return self._map(v, lambda q: self.E.scatter(q, idx, size))

    def _padded(self, xs):
        n = max(len(x.cs) for x in xs)
        return [x.cs + [self.E.zeros(x.shape)] * (n - len(x.cs)) for x in xs], n

    def concat_flat(self, xs):
        cs, n = self._padded(xs)
        return Pol([self.E.concat_flat([c[k] for c in cs]) for k in range(n)])

    def mask(self, m, x):
        return Pol([self.E.mask(m, c) for c in x.cs])

    def select(self, mask, x, y):
        (cx, cy), n = self._padded([x, y])
        shape = np.broadcast_shapes(x.shape, y.shape, np.shape(mask))
        return Pol([fit(self.E.select(mask, a, b), shape) for a, b in zip(cx, cy)])

    def matmul(self, x, y):
        """2-D product.  A constant operand: one integer matrix product with the other's coefficients stacked
        (side by side on the right, one above the other on the left); else one product per coefficient of x
        with y's coefficients side by side."""
        xs, ys = _trim(x.cs), _trim(y.cs)
        if len(ys) == 1 and len(xs) > 1:
            m = xs[0].shape[0]
            ns, L = _ints(xs)
            c = self.E.matmul(QT(np.concatenate(ns, axis=0), L), self._cached(ys[0]))
            return Pol([QT(c.num[k * m:(k + 1) * m], c.den).reduced() for k in range(len(xs))])
        n = ys[0].shape[1]
        ns, L = _ints(ys)
        stacked = QT(np.concatenate(ns, axis=1), L) if len(ys) > 1 else ys[0]
        out = [None] * (len(xs) + len(ys) - 1)
        for i, a in enumerate(xs):
            c = self.E.matmul(self._cached(a) if len(xs) == 1 else a, stacked)
            for j in range(len(ys)):
                part = QT(c.num[:, j * n:(j + 1) * n], c.den).reduced()
                out[i + j] = part if out[i + j] is None else self.E.add(out[i + j], part)
        return Pol(out)

    def max_value(self, x, axes):
        return Pol([self.E.max_value(self._const_only(x, "logsumexp"), axes)])


__all__ = ["PolyT", "Pol"]
