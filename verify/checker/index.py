"""Checks for index_set, critical and spurious certificates, re-derived with kernel.py only.

Index sets: the checker evaluates the primitives itself, enumerates its own piece set of every nonsmooth
equation and keeps the pieces that agree with the primitive at the actual inputs (local scope), or tries
every combination of pieces (global scope); the result (patterns, count, capped, undecided) and the verdict
must be exactly what it derives.  Critical points: the same index set; every pattern's gradient by one
reverse sweep over values computed once (kernel.Tape); the field's generators and the patterns giving each;
convex weights and separating vectors checked exactly; the Clarke walk replayed equation by equation with
the checker's own switching functions and index rules (Gordan certificates at pruned branches, a strictly
feasible direction at every essential pattern), continuity judged on the outputs; every flag and the verdict
re-derived.
"""
import itertools
import math

from flint import arb, arb_mat, ctx, fmpq, fmpq_mat

from .. import progress
from ..errors import InputError
from . import Invalid, register
from . import common as C
from . import kernel as K

MAX_PATTERNS = 2 ** 16         # no certifier enumerates more (their caps are 4096)
LEAF_CAP = 4096


def _sign(v, what):
    s = K.sign(v)
    if s is None:
        raise K.CannotDecide(f"the checker cannot decide {what}")
    return s


def _nonsmooth(P):
    return [k for k, e in enumerate(P.eqns) if e.prim not in K.SMOOTH]


def _chosen_at(P, F):
    """The pieces the index rules choose at the point of the Frozen run F (every sign decided)."""
    out = []
    for k in _nonsmooth(P):
        e = P.eqns[k]
        params = dict(e.params)
        signs = [_sign(K.affine_value(f, F.args[k]), f"a switching function of equation {k + 1}")
                 for f in _merged_switches(e)]
        out.append(K.choose(e.prim, params, len(e.ins), signs))
    return out


def _merged_switches(e):
    """The switching functions of e with the coefficients on one variable added up: max(v, v) switches on
    v - v, exactly 0 even when v is only known as a ball."""
    return [(K.merged(coefs, e.ins), const) for coefs, const in K.switches(e.prim, dict(e.params), len(e.ins))]


# ------------------------------------------------------------------------------------------ index sets

def _local(P, x):
    """(Tape, agreeing pieces, undecided pieces) per nonsmooth equation, at the ambient precision.  A piece
    agrees when its value equals the primitive's, that is the value of the piece the index rule chooses:
    the two maps are compared term by term on the distinct variables, so a tie of one variable with itself is
    exact (mean(v, v) is v)."""
    T = K.Tape(P, x)
    agree, unknown = [], []
    for k, c in zip(_nonsmooth(P), _chosen_at(P, T)):
        e = P.eqns[k]
        ok, unk = [], []
        for p in K.pieces(e.prim, dict(e.params), len(e.ins)):
            d = [K.sign(v) for v in K.difference(p, c, e.ins, T.args[k])]
            if any(s not in (0, None) for s in d):
                continue
            (unk if None in d else ok).append(p)
        agree.append(ok)
        unknown.append(unk)
    return T, agree, unknown


def _escalate(fn):
    """fn() at 128, 256, ... 4096 bits until it reports nothing undecided (fn returns (value, undecided));
    CannotDecide at the cap propagates."""
    for p in C.ladder():
        with ctx.workprec(p):
            try:
                out, undecided = fn()
            except K.CannotDecide:
                if p >= C.PREC_CAP:
                    raise
                continue
        if not undecided or p >= C.PREC_CAP:
            return out, undecided, p


def local_index(P, x, table, cands):
    """Validate the stated candidates (the agreeing pieces of every nonsmooth equation, in the order the
    patterns enumerate them); return (Tape, candidate piece lists, undecided entries, precision)."""
    def fn():
        T, agree, unknown = _local(P, x)
        return (T, agree, unknown), any(unknown)
    (T, agree, unknown), _, p = _escalate(fn)
    if len(cands) != len(agree):
        raise Invalid(f"evidence.candidates lists {len(cands)} equation(s) for {len(agree)} nonsmooth one(s)")
    eqs = _nonsmooth(P)
    lists, undecided = [], []
    for m, (stated, own) in enumerate(zip(cands, agree)):
        if stated != sorted(set(stated)):
            raise Invalid(f"the candidates of nonsmooth equation {m + 1} must be listed once each, by index")
        mine = [table.piece(m, i) for i in stated]
        if len(set(mine)) != len(mine) or set(mine) != set(own):
            raise Invalid(f"the agreeing pieces of nonsmooth equation {m + 1} ({P.eqns[eqs[m]].prim}) are not "
                          "the ones stated")
        lists.append(mine)
        if unknown[m]:
            undecided.append({"equation": eqs[m],
                              "pieces": sorted(table.index_of(m, q, "an undecided piece") for q in unknown[m])})
    return T, lists, undecided, p


def global_index(P, x, table):
    """Every combination of pieces (in the order of the table's indices, which must list every piece) whose
    frozen program is defined at x with f_s(x) = f(x): (found as piece tuples, undecided entries)."""
    eqs = _nonsmooth(P)
    orders = []
    for m, k in enumerate(eqs):
        e = P.eqns[k]
        own = K.pieces(e.prim, dict(e.params), len(e.ins))
        if set(table.by_index[m].values()) != set(own):
            raise Invalid(f"the global scope lists every piece of every nonsmooth equation: equation {m + 1} does not")
        orders.append([table.piece(m, i) for i in sorted(table.by_index[m])])
    if math.prod(len(o) for o in orders) > MAX_PATTERNS:
        raise Invalid(f"a global index set of more than {MAX_PATTERNS} patterns is not checked")

    def fn():
        fx = K.Frozen(P, x, want_grad=False).outputs()
        found, unknown = [], []
        for combo in itertools.product(*orders):
            try:
                G = K.Frozen(P, x, list(combo), want_grad=False)
                d = [K.sign(a - b) for a, b in zip(G.outputs(), fx)]
            except K.Undefined:
                continue
            except K.CannotDecide:
                unknown.append(combo)
                continue
            if any(s not in (0, None) for s in d):
                continue
            (unknown if None in d else found).append(combo)
        return (found, unknown), unknown
    (found, unknown), _, _ = _escalate(fn)
    return found, [{"pattern": table.indices(c, "an undecided pattern")} for c in unknown]


@register("index_set")
def check_index_set(cert):
    P = C.program(cert)
    x = C.point(cert, P)
    C.prec_null(cert, "an index set holds no balls")
    claim, ev, res = cert["claim"], cert["evidence"], cert["result"]
    table = C.PieceTable(ev, P)
    cap = claim["cap"]
    if claim["scope"] == "local":
        if "candidates" not in ev:
            raise Invalid("a local index set states its candidates (evidence.candidates)")
        _, lists, undecided, _ = local_index(P, x, table, ev["candidates"])
        total = math.prod(len(c) for c in lists)
        L = min(cap, total)
        pats = [[table.index_of(m, q, "a pattern") for m, q in enumerate(c)]
                for c in itertools.islice(itertools.product(*lists), L)]
    else:
        if "candidates" in ev:
            raise Invalid("the global scope has no per-equation candidates")
        found, undecided = global_index(P, x, table)
        total = len(found)
        L = min(cap, total)
        pats = [table.indices(c, "a pattern") for c in found[:L]]
    own = {"patterns": pats, "count": total, "capped": total > L, "undecided": undecided}
    C.same(res, own, "result")
    C.same(cert["verdict"], "UNDECIDED" if undecided else "PROVED", "verdict")
    table.check_used()


# ------------------------------------------------------------------------------------------- critical

def _group(own, generators, assign, prec, what):
    """Every pattern's own gradient (``own``, in pattern order) against the stated generators, with
    ``assign[i]`` the index of pattern i's generator.  Generators are numbered in order of first use, each is
    used, an exact one is listed once; returns the checker's own value of each generator."""
    if len(assign) != len(own):
        raise Invalid(f"{what}: {len(assign)} generator indices for {len(own)} patterns")
    seen = []
    for g in assign:
        if g > len(seen):
            raise Invalid(f"{what}: generators must be numbered in order of first use")
        if g == len(seen):
            seen.append(g)
    if len(seen) != len(generators):
        raise Invalid(f"{what}: {len(generators)} generators stated, {len(seen)} used")
    values = [None] * len(generators)
    for i, (g, (vec, compute)) in enumerate(zip(assign, own)):
        stated = generators[g]
        if len(stated) != len(vec) or not all(
                _num(s, v, (lambda j=j, compute=compute: compute()[j]), prec)
                for j, (s, v) in enumerate(zip(stated, vec))):
            raise Invalid(f"{what}: pattern {i} does not give its stated generator {g}")
        if values[g] is None:
            values[g] = vec
    exact = [tuple(v) for v in values if all(isinstance(a, fmpq) for a in v)]
    if len(set(exact)) != len(exact):
        raise Invalid(f"{what}: an exact generator is listed twice")
    return values


def _num(stated, own, compute, prec):
    """A stated number against the checker's own value ``own`` (computed at the decision precision): exact
    strings must be equal; balls go through common.number_ok at the certificate's precision."""
    if isinstance(stated, str):
        q = C.exact_value(own) if not isinstance(own, fmpq) else own
        return q is not None and K.q(stated) == q
    if prec is None:
        return False
    return C.number_ok(stated, compute, prec)


def _membership(vectors, block, what):
    """The truth (True / False / None) that the membership block proves about 0 in conv(vectors)."""
    if "weights" in block:
        lam = [K.q(w) for w in block["weights"]]
        if len(lam) != len(vectors) or any(w < 0 for w in lam) or sum(lam, K.Q0) != 1:
            raise Invalid(f"{what}: the weights are not convex weights over the generators")
        for k in range(len(vectors[0]) if vectors else 0):
            s = sum((w * v[k] for w, v in zip(lam, vectors) if w != 0), K.Q0)
            if C.exact_value(s) != 0:
                raise Invalid(f"{what}: the weighted sum of the generators is not exactly 0")
        return True
    if "separator" in block:
        w = [K.q(v) for v in block["separator"]]
        for v in vectors:
            if len(w) != len(v) or _sign(sum((a * b for a, b in zip(w, v)), K.Q0), f"{what}: <w, v>") <= 0:
                raise Invalid(f"{what}: the separating vector does not separate 0 from every generator")
        return False
    if all(isinstance(a, fmpq) for v in vectors for a in v):
        raise Invalid(f"{what}: with exact generators membership is always decided (weights or a separator)")
    return None


def _independent(rows):
    if not rows:
        return True
    if all(isinstance(v, fmpq) for r in rows for v in r):
        return fmpq_mat(rows).rank() == len(rows)
    gram = [[arb(sum((a * b for a, b in zip(r, s)), K.Q0)) for s in rows] for r in rows]
    return _sign(arb_mat(gram).det(), "the independence of the tied gradients") != 0


class Undecidable(Invalid):
    """The Clarke walk meets a tie it cannot decide (higher-order, dependent gradients): fine for an
    UNDECIDED Clarke part, a reason to reject a certificate that claims a decision."""


def clarke_walk(P, x, ev, table, pl):
    """Replay the essential-pattern walk of ``ev`` (tree and leaves), or with ``ev`` None walk it without a
    tree (every sign vector of the tied switching functions: the non-piecewise-linear case, where the tied
    gradients must be independent).  Branches carry their own values: a branch whose piece jumps continues
    with the branch's values, and only a difference in the outputs is a jump of f (no Clarke subdifferential
    then).  Equations that reach no output do not branch: they keep the piece chosen at x.  Returns
    [(leaf index, pattern pieces, Jacobian)]."""
    F = K.Frozen(P, x)
    n = P.n_inputs
    live = C.live_equations(P)
    at_x = _chosen_at(P, F)
    fx = F.outputs()
    leaves = None if ev is None else ev["leaves"]
    G0 = [[K.Q1 if j == i else K.Q0 for j in range(n)] for i in range(n)] + [None] * (P.n_vars - n)
    pos_of = {k: m for m, k in enumerate(_nonsmooth(P))}
    seen = []

    def gof(a, G):
        return [K.Q0] * n if not isinstance(a, int) else G[a]

    def _branch_values(k, piece, xs, val, jumped):
        """The branch's values after equation k takes ``piece``: a piece whose value differs from the
        primitive's at x (a jump) starts the branch's own copy of the values."""
        v2, j2 = val, jumped
        for y, o in zip(K.apply_piece(piece, xs), P.eqns[k].outs):
            if _sign(y - val[o], f"whether equation {k + 1} jumps") != 0:
                if v2 is val:
                    v2 = val[:]
                v2[o], j2 = y, True
        return v2, j2

    def args(e, val):
        return [a.value if not isinstance(a, int) else val[a] for a in e.ins]

    def visit(k, val, jumped, G, node, rows, indep, chosen):
        while k < len(P.eqns) and (P.eqns[k].prim in K.SMOOTH or k not in live):
            e = P.eqns[k]
            if k not in live:
                if e.prim not in K.SMOOTH:
                    chosen = chosen + [at_x[pos_of[k]]]
                k += 1
                continue
            xs = F.args[k] if not jumped else args(e, val)
            params = dict(e.params)
            if jumped:
                val = val[:]
                val[e.outs[0]] = K.smooth_value(e.prim, xs, params)
            ps = K.smooth_partials(e.prim, xs, val[e.outs[0]], params)
            gs = [gof(a, G) for a in e.ins]
            G = G[:]
            G[e.outs[0]] = [K.dot(ps, [g[j] for g in gs]) for j in range(n)]
            k += 1
        if k == len(P.eqns):
            if jumped:
                outs = [a.value if not isinstance(a, int) else val[a] for a in P.outputs]
                if any(_sign(a - b, "whether f jumps at x") != 0 for a, b in zip(outs, fx)):
                    raise Invalid("f jumps at x (a branch's output differs from f(x)): no Clarke subdifferential")
            jac = [gof(a, G) for a in P.outputs]
            if ev is None:
                if len(seen) >= LEAF_CAP:
                    raise Invalid(f"more than {LEAF_CAP} essential patterns")
                seen.append((len(seen), tuple(chosen), jac))
                return
            i = node.get("leaf") if isinstance(node, dict) else None
            if not isinstance(i, int) or not 0 <= i < len(leaves) or i in [s[0] for s in seen]:
                raise Invalid("a leaf of the Clarke tree is missing, repeated or out of range")
            leaf = leaves[i]
            if table.pattern(leaf["pattern"], f"leaf {i}") != tuple(chosen):
                raise Invalid(f"leaf {i}: its pattern is not the one the walk reaches")
            if pl:
                d = [K.q(v) for v in (leaf["direction"] or [])]
                if len(d) != n or any(sum((a * b for a, b in zip(r, d)), K.Q0) <= 0 for r in rows):
                    raise Invalid(f"leaf {i}: the direction does not satisfy the branch's strict inequalities")
            elif leaf["direction"] is not None:
                raise Invalid(f"leaf {i}: a direction is only used for piecewise-linear programs")
            seen.append((i, tuple(chosen), jac))
            return
        e = P.eqns[k]
        m = pos_of[k]
        params = dict(e.params)
        xs = F.args[k] if not jumped else args(e, val)
        gs = [gof(a, G) for a in e.ins]
        signs, grads, tied, zero = [], [], [], []
        higher_order = False
        for j, form in enumerate(_merged_switches(e)):
            s = _sign(K.affine_value(form, xs), f"a switching function of equation {k + 1}")
            g = [K.dot(form[0], [gg[jj] for gg in gs]) for jj in range(n)]
            signs.append(s)
            grads.append(g)
            if s == 0 and all(c == 0 for c in form[0]) and form[1] == 0:
                zero.append(j)
            elif s == 0:
                if all(_sign(v, "a switching gradient") == 0 for v in g):
                    zero.append(j)
                    higher_order = True
                else:
                    tied.append(j)
        if higher_order and not pl:
            raise Undecidable(f"equation {k + 1}: a tie with zero gradient in a program that is not piecewise "
                              "linear is decided by higher-order terms")
        if not tied:            # the index rule decides: the tree has no node here
            piece = K.choose(e.prim, params, len(e.ins), signs)
            v2, j2 = _branch_values(k, piece, xs, val, jumped)
            G2 = G[:]
            for o, (coefs, _) in zip(e.outs, piece):
                G2[o] = [K.dot(coefs, [g[jj] for g in gs]) for jj in range(n)]
            return visit(k + 1, v2, j2, G2, node, rows, indep, chosen + [piece])
        if ev is not None and (node.get("eqn") != k or node.get("tied") != tied or node.get("zero") != zero):
            raise Invalid(f"the Clarke tree's node at equation {k + 1} does not match its tied switching functions")
        if not pl:
            indep = indep + [grads[j] for j in tied]
            if not _independent(indep):
                raise Undecidable("the tied gradients are dependent: the linearised cone does not decide")
        taus = list(itertools.product((-1, 1), repeat=len(tied)))
        branches = node.get("branches") if ev is not None else [None] * len(taus)
        if ev is not None and (not isinstance(branches, list) or [b.get("signs") for b in branches] !=
                               [list(t) for t in taus]):
            raise Invalid(f"the branches at equation {k + 1} are not every sign vector of its tied functions")
        for tau, b in zip(taus, branches):
            new = rows + [[v if t > 0 else -v for v in grads[j]] for t, j in zip(tau, tied)]
            if b is not None and "gordan" in b:
                if not pl:
                    raise Invalid("Gordan certificates are only used for piecewise-linear programs")
                y = [K.q(v) for v in b["gordan"]]
                if len(y) != len(new) or any(v < 0 for v in y) or sum(y, K.Q0) != 1 or \
                        any(sum((w * r[jj] for w, r in zip(y, new)), K.Q0) != 0 for jj in range(n)):
                    raise Invalid(f"a Gordan certificate at equation {k + 1} is not valid")
                continue
            sg = list(signs)
            for t, j in zip(tau, tied):
                sg[j] = t
            piece = K.choose(e.prim, params, len(e.ins), sg)
            if b is not None and table.piece(m, b["piece"]) != piece:
                raise Invalid(f"the piece chosen at equation {k + 1} for signs {list(tau)} is not the stated one")
            v2, j2 = _branch_values(k, piece, xs, val, jumped)
            G2 = G[:]
            for o, (coefs, _) in zip(e.outs, piece):
                G2[o] = [K.dot(coefs, [g[jj] for g in gs]) for jj in range(n)]
            visit(k + 1, v2, j2, G2, None if b is None else b["next"], new, indep, chosen + [piece])

    visit(0, F.val, False, G0, None if ev is None else ev["tree"], [], [], [])
    if ev is not None and len(seen) != len(leaves):
        raise Invalid("some listed leaves are not reached by the walk")
    return sorted(seen, key=lambda s: s[0])


def _confirm_undecided(P, x, table):
    """An UNDECIDED Clarke part: the checker's own walk (no tree: a program that is not piecewise linear
    branches on every sign vector) must meet an undecidable tie, or signs it cannot decide at 4096 bits."""
    for p in C.ladder():
        with ctx.workprec(p):
            try:
                clarke_walk(P, x, None, table, False)
            except Undecidable:
                return
            except K.CannotDecide:
                if p >= C.PREC_CAP:
                    return
                continue
        raise Invalid("the checker decides the Clarke subdifferential: the certificate must not say undecided")


def _cached(fn):
    """fn() computed once per precision (ball numbers are recomputed at the certificate's precision)."""
    memo = {}
    return lambda: memo[ctx.prec] if ctx.prec in memo else memo.setdefault(ctx.prec, fn())


@register("critical")
def check_critical(cert):
    P = C.program(cert)
    x = C.point(cert, P)
    if P.n_outputs != 1:
        raise Invalid("critical points need one output")
    claim, ev, res = cert["claim"], cert["evidence"], cert["result"]
    from ..certificates import has_balls
    prec = C.prec_of_balls(cert, has_balls(res))
    table = C.PieceTable(ev, P)
    pl = K.piecewise_linear(P)
    tape = _cached(lambda: K.Tape(P, x))

    def index_part():
        if claim["scope"] == "local":
            if "candidates" not in ev:
                raise Invalid("a local index set states its candidates (evidence.candidates)")
            T, lists, undecided, _ = local_index(P, x, table, ev["candidates"])
            if undecided:
                raise Invalid("the index set is undecided: the field is not defined")
            if math.prod(len(c) for c in lists) != len(ev["field"]):
                raise Invalid("evidence.field must give the generator of every pattern of I(x)")
            pats = list(itertools.product(*lists))
            progress.report("check: gradients of I(x)", 0, len(pats))
            own = [(jac[0], (lambda pc=pc: tape().jacobian(pc)[0])) for jac, pc in zip(T.jacobians(pats), pats)]
        else:
            if "candidates" in ev:
                raise Invalid("the global scope has no per-equation candidates")
            pats, undecided = global_index(P, x, table)
            if undecided:
                raise Invalid("the index set is undecided: the field is not defined")
            if len(pats) != len(ev["field"]):
                raise Invalid("evidence.field must give the generator of every pattern of I(x)")
            own = [(K.Frozen(P, x, list(pc)).jacobian()[0], (lambda pc=pc: K.Frozen(P, x, list(pc)).jacobian()[0]))
                   for pc in pats]
        return own

    def body(p):
        field = _group(index_part(), res["field"], ev["field"], prec, "the field")
        sel = _membership(field, ev["selection"], "selection")
        if "undecided" in ev["clarke"]:
            if pl:
                raise Invalid("a piecewise-linear program's Clarke subdifferential is always decided")
            if "undecided" not in ev["clarke_membership"]:
                raise Invalid("an undecided Clarke part has no membership witness")
            return sel, None, False
        if ev["clarke"]["piecewise_linear"] is not pl:
            raise Invalid("the piecewise_linear flag is wrong")
        seen = clarke_walk(P, x, ev["clarke"], table, pl)
        if res["clarke"] is None:
            raise Invalid("result.clarke must list the Clarke generators")
        own = [(jac[0], (lambda pc=pc: K.Frozen(P, x, list(pc)).jacobian()[0])) for _, pc, jac in seen]
        cvals = _group(own, res["clarke"], [leaf["generator"] for leaf in ev["clarke"]["leaves"]], prec,
                       "the Clarke generators")
        return sel, _membership(cvals, ev["clarke_membership"], "Clarke"), True

    sel, cl, walked = C.decided(body)
    if not walked:
        _confirm_undecided(P, x, table)
    art = None if sel is None or cl is None else (sel and not cl)
    if sel is False:
        art = False
    own = {"field": res["field"], "clarke": res["clarke"] if walked else None,
           "selection_critical": sel, "clarke_critical": cl, "artificial": art}
    C.same(res, own, "result")
    C.same(cert["verdict"], "PROVED" if sel is not None and cl is not None else "UNDECIDED", "verdict")
    table.check_used()


# ------------------------------------------------------------------------------------------- Theorem 1

ZERO_TEXT = "def zero(t):\n    a = relu(-t, alpha=0)\n    b = relu(t, alpha=0)\n    return a + t - b\n"


@register("spurious")
def check_spurious(cert):
    from ..frontends.text import parse
    from ..program.ir import Lit, to_text
    P2 = C.program(cert)
    C.prec_null(cert, "Theorem 1's construction holds no balls")
    claim = cert["claim"]
    try:
        P = parse(claim["original"])
    except InputError as e:
        raise Invalid(f"the original program does not parse: {e}") from None
    if to_text(P) != claim["original"]:
        raise Invalid("the original program is not in canonical form")
    P = C.resolve(P, claim["convention"])
    a = C.exact_vector(claim["at"], P.n_inputs, "claim.at")
    r = C.exact_vector(claim["shift"], P.n_inputs, "claim.shift")
    C.same(cert["evidence"], {"zero": ZERO_TEXT}, "evidence")
    if P2.eqns[:len(P.eqns)] != P.eqns or P2.names[:len(P.names)] != P.names or P2.n_inputs != P.n_inputs:
        raise Invalid("the new program does not start with the original program")
    # the rest must be exactly: for each nonzero shift, zero(x_i - a_i) scaled and added to the output
    eqs = list(P2.eqns[len(P.eqns):])
    acc = P.outputs[0]
    if P.n_outputs != 1:
        raise Invalid("Theorem 1's construction is for programs with one output")
    for i, (ai, ri) in enumerate(zip(a, r)):
        if ri == 0:
            continue
        want = []
        if ai != 0:
            want.append(("sub", (i, Lit(ai)), ()))
        take = len(want) + 7
        block, eqs = eqs[:take], eqs[take:]
        if len(block) != take:
            raise Invalid("the zero gadget is incomplete")
        u = block[0].outs[0] if ai != 0 else i
        o = [b.outs[0] for b in block]
        off = 1 if ai != 0 else 0
        want += [("neg", (u,), ()), ("relu", (o[off],), (("alpha", fmpq(0)),)),
                 ("relu", (u,), (("alpha", fmpq(0)),)), ("add", (o[off + 1], u), ()),
                 ("sub", (o[off + 3], o[off + 2]), ()), ("mul", (Lit(ri), o[off + 4]), ()),
                 ("add", (acc, o[off + 5]), ())]
        if [(b.prim, b.ins, b.params) for b in block] != want:
            raise Invalid(f"the gadget for input {i} is not r_i * zero(x_i - a_i) added to the output")
        acc = o[-1]
    if eqs or tuple(P2.outputs) != (acc,):
        raise Invalid("the new program has extra equations or the wrong output")
    _check_zero_identity()
    C.same(cert["result"], {"same_function": True}, "result")
    C.same(cert["verdict"], "PROVED", "verdict")
    # the shift lands: AD of the new program at a minus AD of the original = r (forward mode, pieces chosen
    # by the index rule at a); with transcendental gradients the shift is structural (checked above)

    def body(p):
        return [u - v for u, v in zip(_ad_at(P2, a), _ad_at(P, a))]
    d = C.decided(body)
    if all(isinstance(v, fmpq) for v in d) and d != r:
        raise Invalid("the AD derivative is not shifted by the stated amount")


def _ad_at(P, x):
    """AD's gradient at x with the pieces the index rule chooses there (the checker's own rules)."""
    F = K.Frozen(P, x)
    return K.Frozen(P, x, _chosen_at(P, F)).jacobian()[0]


def _check_zero_identity():
    """zero(t) = 0 for all t: switching functions -t and t vanish only at 0; on each side the pattern is
    constant and the frozen program is affine (piecewise linear) with value 0 and slope 0; zero(0) = 0."""
    from ..frontends.text import parse
    Z = parse(ZERO_TEXT)
    for t in (fmpq(-1), fmpq(1)):
        F = K.Frozen(Z, [t])
        fz = K.Frozen(Z, [t], _chosen_at(Z, F))
        if fz.outputs() != [0] or fz.jacobian() != [[0]]:
            raise Invalid("zero(t) is not 0 on one side of 0")
    if K.Frozen(Z, [fmpq(0)]).outputs() != [0]:
        raise Invalid("zero(0) is not 0")
