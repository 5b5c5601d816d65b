"""The checker's own lowest-order parts of degenerate Clarke ties (its copy of the certifier's germs.py, kept
apart on purpose): a tied switching function with a zero gradient at x whose dependency cone is rational is
N / D, polynomials in the displacement d = y - x (fmpq_mpoly), and the lowest-order homogeneous part H of N
decides its sign pattern near x:

- N = 0: zero on the branch ("zero");
- "generic" sign c: H is definite (a sum of even powers of every variable with one sign, or a definite
  quadratic form by Sylvester's criterion), or N is c times a product of factors of even multiplicity and of
  factors that keep one sign near x: then c is its sign on an open dense set near x;
- "higher": otherwise, H constrains the branch's directions to lowest order.

A certificate states the kind, the degree and H / D(0) (the lowest-order part of N / D, whatever the
representation of the fraction), the sign of D at x and the generic sign; the checker computes its own N / D
from the program and the branch's pieces and requires the same statement.  ``site_fraction`` is the same for
one site of a tensor program through its elementwise cone (the input elements it reads are the variables)."""
from flint import fmpq, fmpq_mat, fmpq_mpoly_ctx

from . import Invalid
from . import kernel as K

RATIONAL = ("add", "sub", "mul", "div", "neg", "pow")
MAX_DEGREE = 64


def combine(one, pairs, c0):
    """c0 + sum c * a / b over (c, (a, b)) as one fraction (num, den) of polynomials (``one``: the ring's 1)."""
    num, den = one * c0, one
    for c, (a, b) in pairs:
        if c != 0:
            num, den = (num + a * c, den) if b == den else (num * b + a * c * den, den * b)
    return num, den


def switch_fraction(P, x, pieces, k, form):
    """(N, D) with the switching function ``form`` = (coefficients, constant) of equation k equal to N / D near x,
    with ``pieces`` at the nonsmooth equations before k; Invalid when a value it depends on is not rational."""
    n = P.n_inputs
    ctx = fmpq_mpoly_ctx.get(tuple(f"d{i}" for i in range(n)), "deglex")
    gens, one = ctx.gens(), ctx.from_dict({(0,) * n: fmpq(1)})
    val = {i: (gens[i] + x[i], one) for i in range(n)}

    def atom(a):
        if isinstance(a, int):
            if a not in val:
                raise Invalid("a stated lowest-order part: the switching function's cone is not rational")
            return val[a]
        return (one * a.value, one)

    m = 0
    for e in P.eqns[:k]:
        if e.prim not in K.SMOOTH:
            if all(not isinstance(a, int) or a in val for a in e.ins):
                ins = [atom(a) for a in e.ins]
                for o, (coefs, c0) in zip(e.outs, pieces[m]):
                    val[o] = combine(one, zip(coefs, ins), c0)
            m += 1
        elif e.prim in RATIONAL and all(not isinstance(a, int) or a in val for a in e.ins):
            val[e.outs[0]] = _smooth(e, [atom(a) for a in e.ins])
    coefs, const = form
    return combine(one, ((c, atom(a)) for c, a in zip(coefs, P.eqns[k].ins) if c != 0), const)


def _smooth(e, xs):
    (a, da) = xs[0]
    if e.prim == "neg":
        return -a, da
    if e.prim == "pow":
        n = dict(e.params)["n"]
        if abs(n) > MAX_DEGREE:
            raise Invalid("a stated lowest-order part: a power too large to expand")
        return (a ** n, da ** n) if n >= 0 else (da ** (-n), a ** (-n))
    (b, db) = xs[1]
    if e.prim in ("add", "sub"):
        s = 1 if e.prim == "add" else -1
        return (a + s * b, da) if da == db else (a * db + s * b * da, da * db)
    if e.prim == "mul":
        return a * b, da * db
    return a * db, da * b


def lowest_part(N):
    terms = N.to_dict()
    m = min(sum(e) for e in terms)
    return m, N.context().from_dict({e: c for e, c in terms.items() if sum(e) == m})


def definite(H, m, n):
    """+1 / -1 when the homogeneous H (degree m) is positive / negative definite by a sufficient test, else 0."""
    if m % 2:
        return 0
    terms = H.to_dict()
    signs = {(c > 0) - (c < 0) for c in terms.values()}
    if n == 1:
        return signs.pop()
    if len(signs) == 1 and all(all(v % 2 == 0 for v in e) for e in terms):
        if {tuple(m if i == j else 0 for i in range(n)) for j in range(n)} <= set(terms):
            return signs.pop()
    if m == 2:
        M = [[fmpq(0)] * n for _ in range(n)]
        for e, c in terms.items():
            i, j = [i for i in range(n) for _ in range(e[i])]
            M[i][j] = M[j][i] = fmpq(c) if i == j else fmpq(c) / 2
        for s in (1, -1):
            if all(fmpq_mat([[s * M[a][b] for b in range(r)] for a in range(r)]).det() > 0 for r in range(1, n + 1)):
                return s
    return 0


def classify(N, D, n):
    """("zero",), ("generic", c) or ("higher", H, sign of D at x)."""
    if N.is_zero():
        return ("zero",)
    zero = [fmpq(0)] * n
    sD = 1 if D(*zero) > 0 else -1
    m, H = lowest_part(N)
    s = definite(H, m, n)
    if s:
        return ("generic", s * sD)
    c, factors = N.factor()
    sign = 1 if c > 0 else -1
    for f, mult in factors:
        if mult % 2 == 0:
            continue
        f0 = f(*zero)
        if f0 != 0:
            sign *= 1 if f0 > 0 else -1
            continue
        mf, Hf = lowest_part(f)
        sf = definite(Hf, mf, n)
        if not sf:
            return ("higher", H, sD)
        sign *= sf
    return ("generic", sign * sD)


def germ_json(N, D, kind, n):
    """The statement a certificate makes of a classified degenerate tie (as the certifier writes it)."""
    out = {"kind": kind[0]}
    if kind[0] == "zero":
        return out
    m, H = lowest_part(N)
    d0 = fmpq(D(*([fmpq(0)] * n)))       # N / D's lowest part is H / D(0): the same however N / D was built
    out["degree"] = int(m)
    out["lowest"] = [[[int(v) for v in e], K.qs(fmpq(c) / d0)] for e, c in sorted(H.to_dict().items())]
    out["den_sign"] = 1 if d0 > 0 else -1
    if kind[0] == "generic":
        out["sign"] = kind[1]
    return out


ELEMENTWISE = ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid",
               "erf", "relu", "abs", "leaky_relu", "clamp", "hardtanh", "relu6", "max", "min", "where")


def _broadcast(idx, shape):
    off = len(idx) - len(shape)
    return tuple(0 if n == 1 else idx[off + d] for d, n in enumerate(shape))


def _flat(idx, shape):
    out = 0
    for i, n in zip(idx, shape):
        out = out * n + i
    return out


def site_fraction(P, point, k, idx, form, piece_at):
    """(N, D, variables) for the switching function ``form`` = (coefficients, constant) of the elementwise site
    at element ``idx`` of equation k of the tensor program P at ``point`` (flat fmpq lists per input), with
    ``piece_at(m, flat site)`` the branch's piece (rows) at the cone's nonsmooth sites; variables are the input
    elements it reads, [input, flat index], sorted.  None when the cone is not elementwise or not rational."""
    from ..program.ir import Arr
    eq_of = {o: m for m, e in enumerate(P.eqns) for o in e.outs}
    seen, todo = set(), [(a, idx) for a in P.eqns[k].ins if isinstance(a, int)]
    while todo:
        v, i = todo.pop()
        key = (v, _broadcast(i, P.shapes[v]))
        if key in seen:
            continue
        seen.add(key)
        m = eq_of.get(v)
        if m is not None:
            if P.eqns[m].prim not in ELEMENTWISE:
                return None
            todo.extend((a, key[1]) for a in P.eqns[m].ins if isinstance(a, int))
    inputs = sorted((v, _flat(i, P.shapes[v])) for v, i in seen if v < P.n_inputs)
    n = max(1, len(inputs))
    ctx = fmpq_mpoly_ctx.get(tuple(f"d{i}" for i in range(n)), "deglex")
    gens, one = ctx.gens(), ctx.from_dict({(0,) * n: fmpq(1)})
    pos = {key: r for r, key in enumerate(inputs)}
    val = {}


    def atom(a, i):
        if isinstance(a, int):
            return val[(a, _broadcast(i, P.shapes[a]))]
        if isinstance(a, Arr):
            arr = P.arrays[a.name]
            return (one * fmpq(arr.to_fmpq()[_broadcast(i, arr.shape)]), one)
        return (one * a.value, one)
    for v, i in sorted(seen, key=lambda key: key[0]):
        m = eq_of.get(v)
        if m is None:
            val[(v, i)] = (gens[pos[(v, _flat(i, P.shapes[v]))]] + point[v][_flat(i, P.shapes[v])], one)
            continue
        e = P.eqns[m]
        xs = [atom(a, i) for a in e.ins]
        if e.prim in K.SMOOTH:
            if e.prim not in RATIONAL:
                return None
            val[(v, i)] = _smooth(e, xs)
        else:
            rows = piece_at(m, _flat(i, P.shapes[e.outs[0]]))
            coefs, c0 = rows[e.outs.index(v)]
            val[(v, i)] = combine(one, zip(coefs, xs), c0)
    coefs, const = form
    N, D = combine(one, ((c, atom(a, idx)) for c, a in zip(coefs, P.eqns[k].ins) if c != 0), const)
    return N, D, [list(key) for key in inputs]
