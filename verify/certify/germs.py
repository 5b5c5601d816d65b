"""The sign pattern near x of a tied switching function whose gradient vanishes (issue 9, item 4).

On a branch of the Clarke walk every piece is fixed, so a switching function h whose dependency cone is
rational (+ - * /, integer powers, affine pieces) is a rational function N / D of the displacement d = y - x,
computed exactly here with ``fmpq_mpoly`` (D(0) != 0: every divisor was nonzero at x).  With N(0) = 0 and
grad N(0) = 0, the sign of h near x is read from N:

- N = 0: h is identically zero on the branch (``"zero"``);
- ``"generic"`` sign c: h has sign c on an open dense subset of a neighbourhood of x, so the opposite sign is
  never essential and sign c adds no constraint.  Proved when the lowest-order homogeneous part H of N is
  definite (a sum of even powers with one sign covering every variable, or a definite quadratic form by
  Sylvester's criterion: then h has sign c on a punctured neighbourhood), or when N is c times a product of
  squares and of factors that keep one sign near x (the zero set of a nonzero polynomial has no interior);
- ``"higher"`` H: otherwise.  A direction e with tau * H(e) > 0 proves that the sign tau is taken on an open
  set next to x (h(x + s e') = s^m (H(e') + O(s)) uniformly for e' near e); with one input the two
  directions +1 and -1 are all there is, so no direction proves the sign is never taken there.

Programs with a transcendental primitive in the cone return None (the caller says UNDECIDED).
"""
import itertools

from flint import fmpq, fmpq_mat, fmpq_mpoly_ctx

from ..program.prims import PRIMITIVES

RATIONAL = ("add", "sub", "mul", "div", "neg", "pow")
MAX_DEGREE = 64


class NotPolynomial(Exception):
    pass


def context(n):
    return fmpq_mpoly_ctx.get(tuple(f"d{i}" for i in range(n)), "deglex")


def switch_fraction(program, steps, xs, pieces, k, terms, const):
    """(N, D) with the switching function sum(c * ins[j]) + const of step k equal to N / D near x, as
    polynomials in the displacement, for the pieces ``pieces`` of the nonsmooth steps before k; or None when
    a transcendental primitive (or a huge power) is in the cone."""
    C = context(program.n_inputs)
    gens = C.gens()
    one = C.from_dict({(0,) * program.n_inputs: fmpq(1)}) if program.n_inputs else None
    if one is None:
        return None
    need = set()
    todo = [a for j, _ in terms for a in [steps[k].ins[j]] if a.__class__ is int]
    dstep = {o: st.k for st in steps for o in st.outs}
    while todo:
        v = todo.pop()
        d = dstep.get(v)
        if d is not None and d not in need:
            need.add(d)
            todo.extend(a for a in steps[d].ins if a.__class__ is int)
    val = {i: (gens[i] + xs[i], one) for i in range(program.n_inputs)}

    def atom(a):
        return val[a] if a.__class__ is int else (one * a.value, one)

    def lin(pairs, c0):
        num, den = one * c0, one
        for c, (n_, d_) in pairs:
            if c == 0:
                continue
            if d_ == den:
                num = num + n_ * c
            else:
                num, den = num * d_ + n_ * c * den, den * d_
        return num, den
    pos = 0
    try:
        for st in steps[:k]:
            if st.sel is not None:
                p = pieces[pos]
                pos += 1
                if st.k not in need:
                    continue
                rows = st.piece(p).rows
                ins = [atom(a) for a in st.ins]
                for o, (tm, c0) in zip(st.outs, rows):
                    val[o] = lin(((c, ins[j]) for j, c in tm), c0)
                continue
            if st.k not in need:
                continue
            if st.prim not in RATIONAL or not PRIMITIVES[st.prim].smooth:
                raise NotPolynomial(st.prim)
            xs_ = [atom(a) for a in st.ins]
            val[st.outs[0]] = _smooth(st, xs_)
    except NotPolynomial:
        return None
    N, D = lin(((c, atom(steps[k].ins[j])) for j, c in terms), const)      # only the arguments it reads
    return N, D


def _smooth(st, xs):
    (a, da) = xs[0]
    if st.prim == "neg":
        return -a, da
    if st.prim == "pow":
        n = st.params["n"]
        if abs(n) > MAX_DEGREE:
            raise NotPolynomial("pow")
        if n >= 0:
            return a ** n, da ** n
        return da ** (-n), a ** (-n)
    (b, db) = xs[1]
    if st.prim == "add":
        return (a + b, da) if da == db else (a * db + b * da, da * db)
    if st.prim == "sub":
        return (a - b, da) if da == db else (a * db - b * da, da * db)
    if st.prim == "mul":
        return a * b, da * db
    return a * db, da * b                   # div


def lowest_part(N):
    """(m, H): the lowest total degree m of N's terms and their sum H."""
    terms = N.to_dict()
    m = min(sum(e) for e in terms)
    H = N.context().from_dict({e: c for e, c in terms.items() if sum(e) == m})
    return m, H


def _definite(H, m, n):
    """+1 / -1 when the homogeneous H (degree m) is positive / negative definite by a sufficient test, else 0."""
    if m % 2:
        return 0
    terms = H.to_dict()
    signs = {(c > 0) - (c < 0) for c in terms.values()}
    if n == 1:
        return signs.pop()
    if len(signs) == 1 and all(all(x % 2 == 0 for x in e) for e in terms):
        pure = {tuple(m if i == j else 0 for i in range(n)) for j in range(n)}
        if pure <= set(terms):
            return signs.pop()
    if m == 2:
        M = [[fmpq(0)] * n for _ in range(n)]
        for e, c in terms.items():
            idx = [i for i in range(n) for _ in range(e[i])]
            i, j = idx
            if i == j:
                M[i][i] = fmpq(c)
            else:
                M[i][j] = M[j][i] = fmpq(c) / 2
        for s in (1, -1):
            minors = [fmpq_mat([[s * M[a][b] for b in range(r)] for a in range(r)]).det() for r in range(1, n + 1)]
            if all(v > 0 for v in minors):
                return s
    return 0


def classify(N, D, n):
    """("zero",), ("generic", c) or ("higher", H, sD) for N / D near d = 0 (N(0) = 0, grad N(0) = 0);
    ``sD`` is the sign of D(0), by which H's sign is multiplied."""
    if N.is_zero():
        return ("zero",)
    d0 = D(*([fmpq(0)] * n))
    sD = 1 if d0 > 0 else -1
    m, H = lowest_part(N)
    s = _definite(H, m, n)
    if s:
        return ("generic", s * sD)
    c, factors = N.factor()
    sign = 1 if c > 0 else -1
    fixed = True
    for f, e in factors:
        if e % 2 == 0:
            continue
        f0 = f(*([fmpq(0)] * n))
        if f0 != 0:
            sign *= 1 if f0 > 0 else -1
            continue
        mf, Hf = lowest_part(f)
        sf = _definite(Hf, mf, n)
        if not sf:
            fixed = False
            break
        sign *= sf
    if fixed:
        return ("generic", sign * sD)
    return ("higher", H, sD)


def germ_json(N, D, kind, n):
    """The evidence of a classified degenerate tie (see ``classify``): its kind, the sign it takes on an open
    dense set (generic), and for a nonzero numerator its lowest degree m, the lowest-order homogeneous part of
    N / D (H / D(0)) as [[exponents, coefficient], ...] by exponents, and the sign of D at x."""
    from ..rational import fmt_q
    out = {"kind": kind[0]}
    if kind[0] == "zero":
        return out
    m, H = lowest_part(N)
    d0 = fmpq(D(*([fmpq(0)] * n)))       # N / D's lowest part is H / D(0): the same however N / D was built
    out["degree"] = int(m)
    out["lowest"] = [[[int(v) for v in e], fmt_q(fmpq(c) / d0)] for e, c in sorted(H.to_dict().items())]
    out["den_sign"] = 1 if d0 > 0 else -1
    if kind[0] == "generic":
        out["sign"] = kind[1]
    return out


def directions(n, bound=2):
    """Candidate witness directions: the coordinate directions, then small integer vectors."""
    if n == 1:
        return [[fmpq(1)], [fmpq(-1)]]
    out = []
    for v in itertools.product(range(-bound, bound + 1), repeat=n):
        if any(v):
            out.append([fmpq(x) for x in v])
    out.sort(key=lambda v: sum(abs(x) for x in v))
    return out[:2000]
