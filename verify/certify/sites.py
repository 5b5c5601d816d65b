"""The paper's objects for tensor programs, site by site: index sets and the exact kink set,
differentiability (Proposition 3), the conservative field, Clarke's generalized gradient and critical
points, at network scale.

A nonsmooth tensor equation is an array of scalar elementary selections (its sites, prims/tensor.py), so
every definition of the paper applies element by element: I(x) is the product over sites of the pieces that
agree with the primitive at the site's arguments; x is a differentiability point when no switching function
of any site vanishes; the field is the hull of the selection gradients over I(x).

Gradients here live in the space of all inputs (a network's parameters: hundreds of thousands of numbers),
so every hull question is asked of the Gram matrix of the vectors instead of the vectors: for
V = (v_1..v_m), sum l_i v_i = 0 exactly when G l = 0 (G = V V^T is positive semidefinite), and w = V^T y
separates when G y > 0.  The exact simplex (lp.py) then works in m dimensions, and a certificate states m
weights, not a vector per parameter.  Clarke's subdifferential uses the same reduction: the tied switching
functions' gradients R, a strict direction d = R^T y with R d = (R R^T) y > 0, or a Gordan certificate
(R R^T) l = 0, l >= 0.
"""
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from flint import arb, arb_mat, fmpq, fmpq_mat, fmpz_mat

from ..errors import InputError, Undecidable, Undecided
from ..interpret import tensor as T
from ..interpret.forms import exact_value
from ..interpret.precision import working_precision
from ..numbers.tensor import QT, SIGN_UNDECIDED
from ..program import kinks
from ..program.prims import PRIMITIVES
from ..truth import FALSE, TRUE, UNKNOWN
from .lp import hull_weights, separate_or_weights, strict_direction

PATTERN_CAP = 4096
SMALL_PIECES = 16        # selections with more pieces (n-ary max, sort) are compared at their tied sites only


def _solve(program, point, convention, number, prec, job):
    """Run ``job(run)`` on an evaluation at ``point``, escalating the precision on Undecided."""
    kinks.check_convention(convention)
    if number not in ("exact", "ball"):
        raise InputError(f"tensor certificates are computed in exact or ball arithmetic, not {number!r}")
    xs = T.coerce_inputs(program, point)

    def run_job(ns, p):
        return job(T.run(program, ns, [ns.const_array(x) for x in xs], convention, None, p), xs)
    return T.escalate(number, prec, run_job)


def _site_index(st, s):
    return [int(i) for i in np.unravel_index(int(s), st.sites.grid)] if st.sites.grid else []


def _label(program, st):
    e = program.eqns[st.k]
    loc = f" (line {e.loc[0]}:{e.loc[1]})" if e.loc else ""
    return f"equation {st.k + 1} ({e.prim}){loc}"


# -------------------------------------------------------------------------------------- the kink set

@dataclass
class Kink:
    """A switching function that is exactly 0 at x: equation ``eqn`` (index in program.eqns), ``site``
    (index in its site grid), ``switch`` (which switching function of the site)."""
    eqn: int
    site: tuple
    switch: int

    def json(self):
        return {"equation": self.eqn, "site": list(self.site), "switch": self.switch}


def kinks_of(r, undecided_ok=False):
    """(kinks, undecided): every switching function that is exactly 0, and those whose sign is undecided."""
    out, und = [], []
    for st in T.nonsmooth_steps(r.program, r.convention):
        for gi, g in enumerate(st.sites.groups):
            for j, s in enumerate(r.switch_signs(st, gi)):
                for loc, bucket in ((np.nonzero(s == 0)[0], out), (np.nonzero(s == SIGN_UNDECIDED)[0], und)):
                    for i in loc.tolist():
                        bucket.append(Kink(st.k, tuple(_site_index(st, g.sites[i])), j))
    if und and not undecided_ok:
        k = und[0]
        raise Undecided(f"cannot decide the sign of switching function {k.switch + 1} at site {list(k.site)} of "
                        f"{_label(r.program, T.compiled(r.program, r.convention)[k.eqn])}")
    return out, und


# ------------------------------------------------------------------------------------------ index sets

@dataclass
class SiteIndexSet:
    """I(x) of a tensor program (local scope): ``chosen`` (the pattern at x, one piece array per nonsmooth
    equation), ``multi`` (the sites where more than one piece agrees: (position, flat site, pieces)),
    ``undecided`` (sites where agreement could not be decided), ``kinks`` (switching functions exactly 0),
    ``undecided_switches`` (switching functions whose sign is undecided at the precision cap),
    ``count`` (|I(x)|), ``patterns`` (the first ``cap`` of them), ``run`` (the evaluation at x)."""
    program: object
    point: list
    convention: str
    number: str
    prec: int
    chosen: tuple
    multi: list
    undecided: list
    kinks: list
    count: int
    cap: int
    run: object = field(repr=False)
    scope: str = "local"
    undecided_switches: list = field(default_factory=list)    # Kinks whose sign is undecided at the cap


    @property
    def decided(self):
        return not self.undecided

    @property
    def capped(self):
        return self.count > self.cap

    @property
    def patterns(self):
        """The patterns of I(x), at most ``cap`` of them (built on first use)."""
        pats = self.__dict__.get("_patterns")
        if pats is None:
            pats = self.__dict__["_patterns"] = list(itertools.islice(self.iter_patterns(), self.cap))
        return pats

    def iter_patterns(self):
        """Every pattern of I(x): the pattern at x with the multi-candidate sites varied."""
        where = [(pos, s) for pos, s, _ in self.multi]
        for combo in itertools.product(*(p for _, _, p in self.multi)):
            pat = [np.array(c, copy=True) for c in self.chosen]
            flats = [p.reshape(-1) for p in pat]
            for (pos, s), i in zip(where, combo):
                flats[pos][s] = i
            yield tuple(pat)

    def candidates_json(self):
        steps = T.nonsmooth_steps(self.program, self.convention)
        return [{"equation": steps[pos].k, "site": _site_index(steps[pos], s), "pieces": [int(p) for p in ps]}
                for pos, s, ps in self.multi]


def _coef_minus(q, c):
    """q - c for a piece's coefficient q (fmpq) and a per-site coefficient c (fmpq or ExactArray)."""
    if isinstance(c, fmpq):
        return q - c
    L = math.lcm(int(q.q), c.den)
    return _ea(int(q.p) * (L // int(q.q)) - c.num * (L // c.den), L)


def _minus_chosen(ns, st, g, i, C, Kc, args):
    """Per output row: piece i minus the chosen piece at the sites' arguments, computed as
    sum_j (p_j - c_j) a_j + (p_0 - c_0): exactly 0 where they are the same affine map (a ball minus itself
    would be a ball around 0, never decided)."""
    out = []
    for r, (terms, const) in enumerate(st.piece(g.n, i).rows):
        p = [fmpq(0)] * g.n
        for j, c in terms:
            p[j] += c
        acc = None
        for j in range(g.n):
            t = T.scaled(ns, _coef_minus(p[j], C[r][j]), args[j])
            acc = t if acc is None else (acc if t is None else ns.add(acc, t))
        k = _coef_minus(const, Kc[r])
        if not (isinstance(k, fmpq) and k == 0) or acc is None:
            kv = ns.const(k) if isinstance(k, fmpq) else ns.const_array(k)
            acc = kv if acc is None else ns.add(acc, kv)
        out.append(acc)
    return out


def _at(c, loc):
    return c if isinstance(c, fmpq) else fmpq(int(c.num[loc]), c.den)


def _agreeing(r, pos, st, gi, g):
    """Per site of the group: the pieces that agree with the primitive at the site's arguments (proved),
    and the sites where some comparison is undecided."""
    ns = r.ns
    a = r.site_args[(st.k, gi)]
    chosen = np.asarray(r.pattern[pos]).ravel()[g.sites]
    C, Kc = T.coef_arrays(st, g, chosen)
    n_p = st.n_pieces(g.n)
    m = len(g.sites)
    multi, und = [], []
    if n_p <= SMALL_PIECES:
        agree = np.zeros((n_p, m), dtype=bool)
        unknown = np.zeros(m, dtype=bool)
        for i in range(n_p):
            eq = np.ones(m, dtype=bool)
            differ = np.zeros(m, dtype=bool)
            und_i = np.zeros(m, dtype=bool)
            for d in _minus_chosen(ns, st, g, i, C, Kc, a):
                sg = np.broadcast_to(ns.signs(d), (m,))
                eq &= sg == 0
                differ |= (sg == 1) | (sg == -1)
                und_i |= sg == SIGN_UNDECIDED
            agree[i] = eq
            unknown |= und_i & ~differ
        counts = agree.sum(axis=0)
        for loc in np.nonzero(counts >= 2)[0].tolist():
            multi.append((pos, int(g.sites[loc]), [i for i in range(n_p) if agree[i, loc]]))
        for loc in np.nonzero(unknown)[0].tolist():
            und.append((pos, int(g.sites[loc])))
        return multi, und
    # many pieces (n-ary max / min, sort): two pieces agree only where arguments tie, i.e. where some
    # switching function (a difference of two arguments) is 0 or undecided; compare every piece there
    signs = r.switch_signs(st, gi)
    tied = np.zeros(m, dtype=bool)
    for s in signs:
        tied |= (s == 0) | (s == SIGN_UNDECIDED)
    if n_p > 100_000 and tied.any():
        raise InputError(f"{_label(r.program, st)}: a site with {g.n} arguments has {n_p} pieces, too many to "
                         "enumerate at a tie")
    for loc in np.nonzero(tied)[0].tolist():
        args = [ns.struct(x, lambda arr, loc=loc: arr[loc:loc + 1]) for x in a]
        Cl = [[_at(c, loc) for c in row] for row in C]
        Kl = [_at(c, loc) for c in Kc]
        ok, unknown = [], False
        for i in range(n_p):
            diffs = [int(ns.signs(d).ravel()[0]) for d in _minus_chosen(ns, st, g, i, Cl, Kl, args)]
            if any(d in (1, -1) for d in diffs):
                continue
            if SIGN_UNDECIDED in diffs:
                unknown = True
            else:
                ok.append(i)
        if len(ok) >= 2:
            multi.append((pos, int(g.sites[loc]), ok))
        if unknown:
            und.append((pos, int(g.sites[loc])))
    return multi, und


def site_index_set(program, point, convention=kinks.DEFAULT, number="exact", prec=None, cap=PATTERN_CAP):
    """The local index set I(x) of a tensor program (see SiteIndexSet).  Undecided comparisons escalate the
    precision; those left at the cap are reported in ``undecided``."""
    def job(r, xs):
        multi, und = [], []
        for pos, st in enumerate(T.nonsmooth_steps(program, convention)):
            for gi, g in enumerate(st.sites.groups):
                m, u = _agreeing(r, pos, st, gi, g)
                multi += m
                und += u
        knk, und_sw = kinks_of(r, undecided_ok=True)
        if (und or und_sw) and r.prec is not None and r.prec < T.PREC_CAP:
            raise Undecided("an index set comparison or a switching function's sign is undecided")
        multi.sort(key=lambda m: (m[0], m[1]))           # the canonical order: equations, then flat sites
        count = math.prod(len(p) for _, _, p in multi)
        steps = T.nonsmooth_steps(program, convention)
        undecided = [{"equation": steps[pos].k, "site": _site_index(steps[pos], s),
                      "reason": "cannot decide whether the pieces agree with the primitive here"}
                     for pos, s in sorted(und)]
        return SiteIndexSet(program, xs, convention, r.ns.name, r.prec, r.pattern, multi, undecided, knk, count,
                            cap, r, undecided_switches=und_sw)
    return _solve(program, point, convention, number, prec, job)


# ------------------------------------------------------------------------------------ gradients, Gram

def _flat_exact(grads):
    """One exact gradient (a list of arrays, one per input) as (numerators list, common denominator), or None
    when some entry is a ball."""
    nums, dens = [], []
    for g in grads:
        if g is None:
            continue
        if isinstance(g, QT):
            nums.append(np.ravel(g.num))
            dens.append(g.den)
        else:
            return None
    L = math.lcm(*dens) if dens else 1
    out = []
    for n, d in zip(nums, dens):
        out.extend((n * (L // d)).tolist())
    return out, L


def _flat_ball(ns, grads):
    out = []
    for g in grads:
        if g is None:
            continue
        b = ns.to_ball(g) if hasattr(ns, "to_ball") else g
        out.extend(np.ravel(b).tolist())
    return out


def gram(ns, vectors):
    """The Gram matrix <v_i, v_j> of gradients (lists of arrays): exact fmpq entries when every vector is
    exact, else arb balls."""
    m = len(vectors)
    flats = [_flat_exact(v) for v in vectors]
    if all(f is not None for f in flats):
        if not flats or not flats[0][0]:
            return [[fmpq(0)] * m for _ in range(m)]
        M = fmpz_mat([f[0] for f in flats])
        G = M * M.transpose()
        return [[fmpq(int(G[i, j]), flats[i][1] * flats[j][1]) for j in range(m)] for i in range(m)]
    rows = [_flat_ball(ns, v) for v in vectors]
    if not rows[0]:
        return [[arb(0)] * m for _ in range(m)]
    A = arb_mat(rows)
    G = A * A.transpose()
    return [[G[i, j] for j in range(m)] for i in range(m)]


def _exact(G):
    return all(isinstance(v, fmpq) for row in G for v in row)


def gradients_key(grads):
    """A hashable key of a tensor gradient (a list of arrays, None for inputs outside wrt): exact arrays by
    their reduced numerators and denominator, ball arrays by their printed entries."""
    parts = []
    for g in grads:
        if g is None:
            parts.append(None)
        elif isinstance(g, QT):
            q = g.reduced()
            parts.append(("q", q.den, tuple(int(v) for v in np.ravel(q.num).tolist())))
        else:
            parts.append(("b", tuple(str(v) for v in np.ravel(g).tolist())))
    return tuple(parts)


def _gradient(r, wrt):
    ns = r.ns
    cts = T.vjp(r, [ns.const(fmpq(1))], wrt)
    return [None if i not in wrt else (ns.zeros(r.program.shapes[i]) if c is None else c) for i, c in enumerate(cts)]


@dataclass
class SiteField:
    """Generators of the conservative field D_f(x): ``gradients`` (distinct selection gradients, each a
    list of arrays, one per input in ``wrt``), ``patterns_of`` (the patterns giving each)."""
    index: SiteIndexSet
    gradients: list
    patterns_of: list
    exact: bool
    wrt: list


def site_field(iset, wrt=None):
    """The selection gradients over I(x) (one backward pass per pattern, values shared)."""
    program = iset.program
    _one_scalar_output(program)
    if iset.undecided:
        raise Undecided("the index set is undecided: " + "; ".join(u["reason"] for u in iset.undecided))
    if iset.capped:
        raise InputError(f"I(x) has {iset.count} patterns, more than the cap: the field would be incomplete")
    wrt = list(range(program.n_inputs)) if wrt is None else list(wrt)
    grads, where, keys = [], [], {}
    with working_precision(iset.run.ns, iset.prec):
        for pat in iset.patterns:
            g = _gradient(iset.run.with_pattern(pat), wrt)
            k = gradients_key(g)
            if k not in keys:
                keys[k] = len(grads)
                grads.append(g)
                where.append([])
            where[keys[k]].append(pat)
    exact = all(isinstance(c, QT) for g in grads for c in g if c is not None)
    return SiteField(iset, grads, where, exact, wrt)


def _one_scalar_output(program):
    if program.n_outputs != 1 or program.atom_shape(program.outputs[0]) != ():
        shapes = ", ".join(str(list(program.atom_shape(o))) for o in program.outputs)
        raise InputError(f"{program.name} needs one scalar output here; it has {program.n_outputs} output(s) of "
                         f"shape {shapes} (sum them, or pick one element, for a scalar loss)")


# ------------------------------------------------------------------------------------ differentiability

@dataclass
class SiteDifferentiability:
    """``differentiable``: TRUE when no switching function vanishes at any site (Proposition 3: then f is
    differentiable at x and its gradient is the selection gradient), UNKNOWN otherwise with the ``kinks``."""
    differentiable: object
    kinks: list
    pattern: tuple
    prec: int
    number: str
    reason: str


def site_differentiable(program, point, convention=kinks.DEFAULT, number="exact", prec=None):
    def job(r, xs):
        knk, _ = kinks_of(r)            # undecided signs escalate the precision, then say UNDECIDED
        if knk:
            k = knk[0]
            st = T.compiled(program, convention)[k.eqn]
            reason = (f"{len(knk)} switching function(s) vanish at the point, first at site {list(k.site)} of "
                      f"{_label(program, st)}: Proposition 3 does not apply there (f may or may not be "
                      "differentiable)")
            return SiteDifferentiability(UNKNOWN, knk, r.pattern, r.prec, r.ns.name, reason)
        return SiteDifferentiability(TRUE, [], r.pattern, r.prec, r.ns.name,
                                     "no switching function vanishes: f equals f_s near x, so it is "
                                     "differentiable there and its gradient is the selection gradient")
    return _solve(program, point, convention, number, prec, job)


# ---------------------------------------------------------------------------------------------- Clarke

LINEAR = {"add", "sub", "neg", "sum", "mean", "reshape", "transpose", "broadcast_to", "slice", "pad", "concat",
          "take_along", "avg_pool2d"}


def is_piecewise_linear(program, moving=None):
    """Every smooth equation is linear in the values that depend on the inputs (sums, structure, products
    and contractions with at most one input-dependent operand): then every switching function is affine on
    each region of the pattern.  ``moving``: only those inputs count (along a segment on which the others are
    constant, every value is then affine in t on a piece)."""
    return _linear_over(program, range(len(program.eqns)), moving)


def _linear_over(program, eqns, moving=None):
    """Every equation in ``eqns`` is linear in its input-dependent operands (see ``is_piecewise_linear``)."""
    dep = [True if moving is None else bool(moving[i]) for i in range(program.n_inputs)]
    dep += [False] * (program.n_vars - program.n_inputs)
    eqns = set(eqns)
    for k, e in enumerate(program.eqns):
        d = [isinstance(a, int) and dep[a] for a in e.ins]
        if any(d):
            for o in e.outs:
                dep[o] = True
        if k not in eqns or not PRIMITIVES[e.prim].smooth or e.prim in LINEAR:
            continue
        if e.prim in ("mul", "dot", "conv2d") and sum(d) <= 1:
            continue
        if e.prim == "div" and not d[1]:
            continue
        if e.prim == "pow" and dict(e.params)["n"] in (0, 1):
            continue
        if any(d):
            return False
    return True


@dataclass
class SiteClarke:
    """Clarke's generalized gradient at x: ``gradients`` (distinct gradients of the essential patterns),
    ``leaves`` (each essential pattern: its pattern, the sign vector, its gradient and, for piecewise-linear
    programs, a strict direction in Gram coordinates over the tied gradients of its path), ``pruned`` (sign
    vectors proved empty near x, with the Gordan weights), ``piecewise_linear``, ``tree`` (the walk: a node
    per nonsmooth equation with tied switching functions, its branches, leaves by index)."""
    gradients: list
    leaves: list
    pruned: list
    piecewise_linear: bool
    exact: bool
    tied: list
    wrt: list
    tree: dict = None


def _switch_gradient(r, st, gi, g, loc, j, wrt):
    """The gradient (w.r.t. the inputs in ``wrt``) of switching function j of site ``loc`` of group gi."""
    ns = r.ns
    terms, _ = st.switches[gi][j]
    seeds = {}
    if st.sites.elementwise:
        grid = st.sites.grid
        for jj, c in terms:
            a = st.ins[jj]
            if not isinstance(a, int):
                continue
            onehot = np.zeros(math.prod(grid), dtype=object)
            onehot[g.sites[loc]] = int(c.p)
            ct = ns.const_array(_ea(onehot.reshape(grid), int(c.q)))
            ct = T.unbroadcast(ns, ct, r.program.shapes[a])
            seeds[a] = ct if a not in seeds else ns.add(seeds[a], ct)
    else:
        sizes = [math.prod(s) for s in st.in_shapes]
        flat = np.zeros(sum(sizes), dtype=object)
        den = 1
        for jj, c in terms:
            den = math.lcm(den, int(c.q))
        for jj, c in terms:
            flat[g.args[jj][loc]] += int(c.p) * (den // int(c.q))
        off = 0
        for a, n, s in zip(st.ins, sizes, st.in_shapes):
            if isinstance(a, int):
                ct = ns.const_array(_ea(flat[off:off + n].reshape(s), den))
                seeds[a] = ct if a not in seeds else ns.add(seeds[a], ct)
            off += n
    cts = T.vjp(r, [None] * r.program.n_outputs, wrt, seeds=seeds, stop=st.k)
    return [None if i not in wrt else (ns.zeros(r.program.shapes[i]) if c is None else c) for i, c in enumerate(cts)]


def _ea(num, den):
    from ..program.arrays import ExactArray
    return ExactArray(num, den)


def _independent(G):
    """Decided: the vectors with Gram matrix G are linearly independent (G nonsingular)."""
    if not G:
        return True
    if _exact(G):
        return fmpq_mat(G).rank() == len(G)
    d = arb_mat(G).det()
    if d > 0:
        return True
    if d.is_zero():
        return False
    raise Undecided("cannot decide whether the tied switching functions have independent gradients")


class SiteClarkeWalk:
    """The walk of ``site_clarke`` over the run ``r`` at x: tied (site, switch) pairs branched equation by
    equation (``visit``); a tie with a zero gradient is identically zero on the branch when the program is
    piecewise linear or the equation's dependency cone is affine (``affine_cone``), else Undecidable; a sign
    vector is realized (``realize``) by independent rows (programs that are not piecewise linear), a strict
    direction of exact rows (in Gram coordinates), or pruned by Gordan weights on rows of affine cones only;
    ``leaf`` records the essential pattern with its gradient.  ``tree`` is the node dict the certificate
    states (certs_tensor.py)."""

    def __init__(self, r, wrt, pl, max_leaves, point=None):
        self.r, self.ns, self.wrt, self.pl, self.max_leaves = r, r.ns, wrt, pl, max_leaves
        self.point = point
        self.program = r.program
        self.steps = T.nonsmooth_steps(r.program, r.convention)
        live = self.program.live_eqns()      # a tie of an equation that reaches no output is no branch of f
        self.ties = [self.ties_at_x(st) if st.k in live else [] for st in self.steps]
        self.leaves, self.pruned, self.tied_all = [], [], []
        self._affine = {}

    def ties_at_x(self, st):
        """[(group, loc, switch)] of the switching functions exactly 0 at x (not structurally 0), by (site,
        switch)."""
        here = []
        for gi, g in enumerate(st.sites.groups):
            for j, s in enumerate(self.r.switch_signs(st, gi)):
                if (s == SIGN_UNDECIDED).any():
                    raise Undecided(f"cannot decide a switching function of {_label(self.program, st)}")
                terms, const = st.switches[gi][j]
                for loc in np.nonzero(s == 0)[0].tolist():
                    if terms or const != 0:         # structurally zero (max(v, v)): zero everywhere, no branch
                        here.append((gi, loc, j))
        here.sort(key=lambda t, st=st: (int(st.sites.groups[t[0]].sites[t[1]]), t[2]))
        return here

    def tie_json(self, st, tie):
        gi, loc, j = tie
        return [int(st.sites.groups[gi].sites[loc]), j]

    def walk(self):
        return self.visit(0, list(self.r.pattern), [], [], [])

    def visit(self, pos, pattern, rows, flags, taus):
        """The walk from nonsmooth position pos: its tree node (see certs_tensor.py)."""
        while pos < len(self.steps) and not self.ties[pos]:
            pos += 1
        if pos == len(self.steps):
            return self.leaf(pattern, rows, taus)
        st = self.steps[pos]
        keep, zero, grads, generic, how = self.classify(pos, st, pattern)
        self.tied_all.extend((st.k, self.ties[pos][i]) for i in keep)
        node = {"eqn": st.k, "tied": [self.tie_json(st, self.ties[pos][i]) for i in keep],
                "zero": [self.tie_json(st, self.ties[pos][i]) for i in zero], "branches": []}
        if generic:
            node["generic"] = [self.tie_json(st, self.ties[pos][i]) + [c] for i, c in generic]
        if how:
            node["degenerate"] = [{"site": self.tie_json(st, self.ties[pos][i])[0],
                                   "switch": self.ties[pos][i][2], **how[i]} for i in sorted(how)]
        affine = self.affine_cone(st.k)
        for tau in itertools.product((-1, 1), repeat=len(keep)):
            new_rows = rows + [grads[i] if t > 0 else [None if c is None else self.ns.neg(c) for c in grads[i]]
                               for t, i in zip(tau, keep)]
            new_flags = flags + [affine] * len(keep)
            lam = self.realize(st, new_rows, new_flags, bool(keep))
            if lam is not None:
                self.pruned.append({"equation": st.k, "signs": list(tau), "gordan": lam})
                node["branches"].append({"signs": list(tau), "gordan": lam})
                continue
            child = self.visit(pos + 1, self.take(pos, st, pattern, keep, zero, tau, generic), new_rows, new_flags,
                               taus + list(tau))
            node["branches"].append({"signs": list(tau), "next": child})
        return node

    def classify(self, pos, st, pattern):
        """(tied, zero, gradients) at equation ``st`` on the branch of ``pattern``: a zero gradient is a tie that
        is identically zero on the branch when the cone is affine, else Undecidable."""
        rr = self.r.with_pattern(pattern)
        grads = [_switch_gradient(rr, st, gi, st.sites.groups[gi], loc, j, self.wrt) for gi, loc, j in self.ties[pos]]
        Gs = gram(self.ns, grads)
        keep, zero = [], []
        for i in range(len(grads)):
            gz = Gs[i][i]
            s = (gz > 0) - (gz < 0) if isinstance(gz, fmpq) else (1 if gz > 0 else (0 if gz.is_zero() else None))
            if s is None:
                raise Undecided(f"cannot decide whether a tied switching function of {_label(self.program, st)} "
                                "has a zero gradient")
            (keep if s else zero).append(i)
        generic, how = [], {}
        if zero and not (self.pl or self.affine_cone(st.k)):
            for i in list(zero):
                kind, ev = self.degenerate(pos, st, self.ties[pos][i], pattern)
                how[i] = ev
                if kind[0] == "generic":
                    zero.remove(i)
                    generic.append((i, kind[1]))
        return keep, zero, grads, generic, how

    def degenerate(self, pos, st, tie, pattern):
        """A tie with zero gradient whose equation's cone is not affine: its lowest-order part through the
        elementwise cone of its site (site_germs.py), or Undecidable."""
        from .site_germs import site_germ
        gi, loc, j = tie
        terms, const = st.switches[gi][j]
        n = st.sites.groups[gi].n
        coefs = [fmpq(0)] * n
        for jj, c in terms:
            coefs[jj] += c
        steps_of = {s_.k: q for q, s_ in enumerate(self.steps)}
        got = None
        if st.sites.elementwise:
            got = site_germ(self.program, self.point, self.r.convention, st.k, int(st.sites.groups[gi].sites[loc]),
                            coefs, const, lambda m, site: int(np.asarray(pattern[steps_of[m]]).ravel()[site]))
        if got is None:
            raise Undecidable(f"a switching function of {_label(self.program, st)} vanishes at x with zero gradient: "
                              "its sign near x depends on higher-order terms (not decided through an elementwise "
                              "rational cone)")
        return got

    def realize(self, st, rows, flags, tied):
        """None when the branch's constraints are realized next to x (independent rows, or a strict direction
        of exact rows, found again at the leaf); Gordan weights when they are not (all on affine rows);
        Undecidable otherwise."""
        if not tied:
            return None
        G = gram(self.ns, rows) if rows else []
        if not self.pl and _independent(G):
            return None
        if not _exact(G):
            if self.pl:
                raise Undecided("the program is piecewise linear but its tied gradients are not exact")
        elif strict_direction(G) is not None:
            return None
        else:
            lam = hull_weights(G)
            assert lam is not None, "Gordan's alternative failed: a bug in the simplex"
            if all(f for f, w in zip(flags, lam) if w != 0):
                return lam
        raise Undecidable(f"tied switching functions (up to {_label(self.program, st)}) have linearly dependent "
                          "gradients and are not all affine: the linearised cone cannot decide which patterns are "
                          "essential")

    def take(self, pos, st, pattern, keep, zero, tau, generic=()):
        """The pattern after equation ``st`` takes, at every tied site, the piece its signs choose (a generic
        tie its generic sign; the program must not jump there)."""
        ties = self.ties[pos]
        sign_of = {ties[i]: t for i, t in zip(keep, tau)}
        sign_of.update((ties[i], 0) for i in zero)
        sign_of.update((ties[i], c) for i, c in generic)
        new_pat = list(pattern)
        arr = np.array(new_pat[pos], copy=True).reshape(-1)
        for gi, g in enumerate(st.sites.groups):
            base = self.r.switch_signs(st, gi)
            for loc in sorted({loc for (g2, loc, _) in ties if g2 == gi and (g2, loc, _) in sign_of}):
                def sign(j, gi=gi, loc=loc, base=base):
                    return sign_of.get((gi, loc, j), int(base[j][loc]))
                piece = st.sel.choose(st.sites.params, g.n, sign)
                _continuous(self.r, pos, st, gi, g, loc, piece)
                arr[g.sites[loc]] = piece
        new_pat[pos] = arr.reshape(st.sites.grid)
        return new_pat

    def leaf(self, pattern, rows, taus):
        """An essential pattern: its gradient and, for piecewise-linear programs and dependent rows, a strict
        direction in Gram coordinates over its path's rows."""
        if len(self.leaves) >= self.max_leaves:
            raise InputError(f"more than {self.max_leaves} essential patterns near x")
        G = gram(self.ns, rows) if rows else []
        direction = None
        if self.pl or (rows and not _independent(G)):
            direction = strict_direction(G) if rows else []
            assert direction is not None, "a branch shown realizable has no direction at its leaf"
        rr = self.r.with_pattern(pattern)
        self.leaves.append({"pattern": tuple(pattern), "signs": list(taus), "gradient": _gradient(rr, self.wrt),
                            "direction": direction})
        return {"leaf": len(self.leaves) - 1}

    def affine_cone(self, k):
        if k not in self._affine:
            self._affine[k] = affine_cone(self.program, k)
        return self._affine[k]


def affine_cone(program, k):
    """True when every equation equation k depends on is linear in its input-dependent operands (see
    ``is_piecewise_linear``): then its switching functions are affine on each region of the pattern."""
    dstep = {o: i for i, e in enumerate(program.eqns) for o in e.outs}
    need, todo = set(), [a for a in program.eqns[k].ins if isinstance(a, int)]
    while todo:
        i = dstep.get(todo.pop())
        if i is not None and i not in need:
            need.add(i)
            todo.extend(a for a in program.eqns[i].ins if isinstance(a, int))
    return _linear_over(program, need)


def site_clarke(program, point, convention=kinks.DEFAULT, number="exact", prec=None, wrt=None, max_leaves=PATTERN_CAP):
    """The essential patterns near x and Clarke's generalized gradient, for a program with one scalar output
    (``SiteClarkeWalk``): a SiteClarke and the run at x."""
    _one_scalar_output(program)
    pl = is_piecewise_linear(program)
    wrt = list(range(program.n_inputs)) if wrt is None else list(wrt)

    def job(r, xs):
        w = SiteClarkeWalk(r, wrt, pl, max_leaves, xs)
        tree = w.walk()
        grads, keys = [], {}
        for leaf in w.leaves:
            k = gradients_key(leaf["gradient"])
            if k not in keys:
                keys[k] = len(grads)
                grads.append(leaf["gradient"])
        exact = all(isinstance(c, QT) for g in grads for c in g if c is not None)
        return SiteClarke(grads, w.leaves, w.pruned, pl, exact, w.tied_all, wrt, tree), r
    return _solve(program, point, convention, number, prec, job)


def _continuous(r, pos, st, gi, g, loc, piece):
    """The piece chosen on a branch must agree with the value at x.  Else Undecidable: the equation jumps on a
    realizable branch, and this walk does not follow jumps to decide whether f itself does (an equation whose
    jump reaches no output, or cancels, leaves f continuous)."""
    ns = r.ns
    a = [ns.struct(x, lambda arr: arr[loc:loc + 1]) for x in r.site_args[(st.k, gi)]]
    chosen = np.asarray(r.pattern[pos]).ravel()[g.sites[loc]]
    C, Kc = T.coef_arrays(st, g, np.array([chosen]))
    for d in _minus_chosen(ns, st, g, piece, C, Kc, a):
        s = int(ns.signs(d).ravel()[0])
        if s == SIGN_UNDECIDED:
            raise Undecided("cannot decide whether the program is continuous at x")
        if s:
            raise Undecidable(f"{_label(r.program, st)} jumps between pieces at x: the tensor Clarke walk does "
                              "not follow jumps, so whether f is continuous there is not decided")


# ---------------------------------------------------------------------------------------------- critical

@dataclass
class HullAnswer:
    """Is 0 in conv(vectors)?  ``truth``; ``weights`` (convex weights, exact) or ``separator`` (in Gram
    coordinates: w = sum y_j v_j has <w, v_i> = (G y)_i > 0); ``gram`` the Gram matrix used."""
    truth: object
    weights: list = None
    separator: list = None
    gram: list = None
    reason: str = None


def zero_in_hull(ns, vectors):
    """Decide 0 in conv(vectors) (gradients as lists of arrays) through their Gram matrix."""
    if not vectors:
        raise InputError("no vectors")
    G = gram(ns, vectors)
    if not _exact(G):       # balls of radius 0 are exact values (atan'(0) = 1): the checker decides them exactly
        known = [[exact_value(v) for v in row] for row in G]
        if all(v is not None for row in known for v in row):
            G = known
    if _exact(G):
        kind, sol = separate_or_weights(G)
        return HullAnswer(TRUE, weights=sol, gram=G) if kind == "weights" else HullAnswer(FALSE, separator=sol, gram=G)
    for i in range(len(G)):
        if G[i][i].is_zero():
            return HullAnswer(TRUE, weights=[fmpq(int(j == i)) for j in range(len(G))], gram=G)
    from ..numbers.ball import arb_exact_q
    mids = [[arb_exact_q(v.mid()) for v in row] for row in G]
    y = strict_direction(mids)
    if y is not None and all(sum((yj * gij for yj, gij in zip(y, row)), arb(0)) > 0 for row in G):
        return HullAnswer(FALSE, separator=y, gram=G)
    return HullAnswer(UNKNOWN, gram=G, reason="the gradients are balls: membership of 0 in their hull cannot be "
                                              "proved, and no separating vector was found")


@dataclass
class SiteCritical:
    field: SiteField
    clarke: SiteClarke
    selection: HullAnswer
    clarke_critical: HullAnswer
    artificial: object
    clarke_error: str = None


def site_critical(program, point, convention=kinks.DEFAULT, number="exact", prec=None, wrt=None,
                  max_leaves=PATTERN_CAP):
    """Selection-, Clarke- and artificial criticality of a tensor program at ``point``."""
    iset = site_index_set(program, point, convention, number, prec)
    fld = site_field(iset, wrt)
    ns = iset.run.ns
    with working_precision(ns, iset.prec):
        sel = zero_in_hull(ns, fld.gradients)
    try:
        cl, r = site_clarke(program, point, convention, number, prec, wrt, max_leaves)
        with working_precision(r.ns, r.prec):
            cc = zero_in_hull(r.ns, cl.gradients)
        err = None
    except Undecided as u:
        cl, err = None, str(u)
        cc = HullAnswer(UNKNOWN, reason=str(u))
    return SiteCritical(fld, cl, sel, cc, sel.truth & ~cc.truth, err)
