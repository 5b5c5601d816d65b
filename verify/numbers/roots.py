"""The k-th smallest real root of a polynomial whose roots are all real and simple (the value of the ``root``
primitive, verify/program/prims/spectral.py), with rigorous enclosures.

The polynomial is c_0 + c_1 x + ... + c_n x^n with coefficients that are rationals (fmpq) or balls (arb).
Its domain is the open set of coefficient vectors with c_n != 0 and n distinct real roots; there every root
is an analytic function of the coefficients (implicit function theorem), so ``root`` is smooth.

How a root is certified (``isolate``): approximate roots come from FLINT's complex root finder on the
midpoints; around the sorted approximations r_1 < ... < r_n the code looks for n pairwise disjoint intervals
[a_i, b_i] at whose ends p has decided opposite signs (ball evaluation, which holds for every polynomial in
the coefficient balls).  By the intermediate value theorem each interval holds a real root, and n disjoint
intervals of a degree-n polynomial hold all of its roots, each simple: the k-th interval encloses the k-th
root.  Nothing else is trusted: the root finder only proposes where to look.

When the isolation fails, the answer is DomainError where the failure is proved (exact coefficients with a
repeated root, gcd(p, p') != 1, or a root whose imaginary part is certified nonzero; a leading coefficient
that is exactly 0) and Undecided otherwise (balls too wide, or roots too close for this precision).
"""
from flint import acb, acb_poly, arb, ctx, fmpq, fmpq_poly

from ..errors import DomainError, Undecided
from ..rational import dyadic_q


def arb_sign(x):
    """-1, 0, 1 when decided, None otherwise (numbers/ball.py's rule; not imported from there: ball.py's
    systems import this module)."""
    if x > 0:
        return 1
    if x < 0:
        return -1
    return 0 if x.is_zero() else None


def _horner(cs, t):
    """p(t) as an arb: ``cs`` are arb coefficients, ``t`` an fmpq (rounded into a ball that contains it)."""
    x = arb(t)
    acc = cs[-1]
    for c in reversed(cs[:-1]):
        acc = acc * x + c
    return acc


def _approximations(cs, exact):
    """Approximate real parts of the roots, sorted (fmpq), or None when FLINT's root finder fails."""
    try:
        if exact is not None:
            roots = [r for r, m in exact.complex_roots() for _ in range(m)]
        else:
            roots = acb_poly([acb(c.mid()) for c in cs]).roots()
    except (ValueError, ArithmeticError):
        return None
    return sorted(dyadic_q(r.real.mid()) for r in roots)


def _nonreal_proved(exact):
    """True when an exact polynomial has a root whose imaginary part is certified nonzero."""
    try:
        return any(not r.imag.contains(0) for r, _ in exact.complex_roots())
    except (ValueError, ArithmeticError):
        return False


def _interval(cs, r, lo_gap, hi_gap, prec):
    """(a, b) around r with a decided sign change of p, inside (r - lo_gap, r + hi_gap); None if not found."""
    eps = fmpq(1, 2 ** max(prec - 4, 8)) * max(fmpq(1), abs(r))
    limit = min(lo_gap, hi_gap) / 2
    while eps < limit:
        sa, sb = arb_sign(_horner(cs, r - eps)), arb_sign(_horner(cs, r + eps))
        if sa is not None and sb is not None and sa * sb < 0:
            return r - eps, r + eps
        eps *= 4
    return None


def _refine(cs, a, b, prec):
    """Shrink the sign-change interval [a, b] (bisection; where the sign at the midpoint is undecided, the points
    at 3/8 and 5/8 are tried) down to a width of 2^-(prec - 4) max(1, |a|): FLINT's approximations are often far
    less accurate than the precision.  Returns (a, b), with a == b when p(a) = 0 exactly."""
    target = fmpq(1, 2 ** max(prec - 4, 8)) * max(fmpq(1), abs(a))
    sa, sb = arb_sign(_horner(cs, a)), arb_sign(_horner(cs, b))
    while b - a > target:
        w = b - a
        pts = [(a, sa)]
        for t in (a + 3 * w / 8, a + w / 2, a + 5 * w / 8):
            st = arb_sign(_horner(cs, t))
            if st == 0:
                return t, t
            if st is not None:
                pts.append((t, st))
        pts.append((b, sb))
        best = None
        for (x, sx), (y, sy) in zip(pts, pts[1:]):
            if sx != sy and (best is None or y - x < best[1] - best[0]):
                best = (x, y, sx, sy)
        if best is None or best[1] - best[0] >= w:
            break
        a, b, sa, sb = best
    return a, b


def isolate(cs):
    """Pairwise disjoint rational intervals [(a_1, b_1), ...], one around each root of the polynomial with
    coefficients ``cs`` (fmpq or arb, c_0 first), in increasing order, with decided opposite signs of p at the
    ends of each: a proof that all roots are real and simple.  Raises DomainError (proved outside the domain)
    or Undecided."""
    n = len(cs) - 1
    # exact coefficients (rationals, or balls of radius 0) allow proofs that the polynomial is outside the domain
    exact = fmpq_poly([c if isinstance(c, fmpq) else dyadic_q(c.mid()) for c in cs]) \
        if all(isinstance(c, fmpq) or (c.is_finite() and c.is_exact()) for c in cs) else None
    lead = cs[-1]
    s = (lead > 0) - (lead < 0) if isinstance(lead, fmpq) else arb_sign(lead)
    if s == 0:
        raise DomainError("root needs a nonzero leading coefficient")
    if s is None:
        raise Undecided("cannot decide whether the leading coefficient of root's polynomial is nonzero")
    if exact is not None:
        if exact.gcd(exact.derivative()).degree() > 0:
            raise DomainError("root needs simple roots: the polynomial has a repeated root (its value there is not "
                              "a smooth function of the coefficients)")
    balls = [c if isinstance(c, arb) else arb(c) for c in cs]
    approx = _approximations(balls, exact)
    if approx is not None and len(approx) == n:
        big = fmpq(2) ** 64 * (1 + sum(abs(r) for r in approx))
        out = []
        for i, r in enumerate(approx):
            lo_gap = r - out[-1][1] if out else big
            hi_gap = approx[i + 1] - r if i + 1 < n else big
            iv = _interval(balls, r, lo_gap, hi_gap, ctx.prec)
            if iv is None:
                break
            out.append(_refine(balls, iv[0], iv[1], ctx.prec))
        else:
            return out
    if exact is not None and _nonreal_proved(exact):
        raise DomainError("root needs a polynomial whose roots are all real: it has a non-real root")
    raise Undecided(f"cannot isolate the {n} real roots of root's polynomial at {ctx.prec} bits (roots too close, "
                    "not all real, or coefficient balls too wide)")


def real_root(cs, k):
    """The k-th smallest root (k = 0 first) of the polynomial with coefficients ``cs`` (c_0 first): an fmpq when
    every coefficient is and the root is rational, else an arb ball that contains it (see ``isolate``)."""
    n = len(cs) - 1
    if not 0 <= k < n:
        raise DomainError(f"root index k={k} is outside 0..{n - 1} for a polynomial of degree {n}")
    a, b = isolate(cs)[k]
    if a == b:                        # p(a) = 0 exactly: a is the root
        return a if all(isinstance(c, fmpq) for c in cs) else arb(a)
    if all(isinstance(c, fmpq) for c in cs):
        _, factors = fmpq_poly(list(cs)).factor()
        for f, _ in factors:
            if f.degree() == 1:
                q = -f[0] / f[1]
                if a <= q <= b:
                    return q
    return arb(a).union(arb(b))


def float_root(cs, k):
    """The k-th smallest of the real parts of numpy's roots of the polynomial (floats: unverified)."""
    import numpy as np
    c = np.array([float(v) for v in cs], dtype=np.float64)
    if not np.all(np.isfinite(c)) or c[-1] == 0:
        return np.float64(np.nan)
    r = np.sort(np.roots(c[::-1]).real)
    return np.float64(r[k]) if len(r) == len(c) - 1 else np.float64(np.nan)
