"""Checks for index_set, critical and spurious certificates, re-derived with kernel.py (and the checker's own exact
forms, forms.py) only.

At x (``AtX``): the checker walks the program choosing every nonsmooth equation's piece from the signs of all
its switching functions, each decided by its value (exact where rational, else a ball), or else by the exact
form at x the certificate states (evidence "at_x"), which the checker re-derives; a piece's row agrees with the
chosen piece's or not by values, or by a stated exact form (evidence "agree").

Index sets: the checker enumerates its own piece set of every nonsmooth equation and keeps the pieces that
agree with the chosen one at the actual inputs (local scope), or tries every combination of pieces, with
f_sigma(x) = f(x) decided by values or by stated exact forms of the difference (global scope); the result
(patterns, count, capped, undecided) and the verdict must be exactly what it derives.  Critical points: the
same index set; every pattern's gradient by one reverse sweep over values computed once (kernel.Tape); the
field's generators and the patterns giving each; convex weights and separating vectors checked exactly; the
Clarke walk replayed equation by equation (``ClarkeWalk``, the checker's own copy of the certifier's walk,
kept apart on purpose): the tied switching functions and their classification (structurally zero, affine
with a zero gradient, a stated identity or lowest-order part re-derived), Gordan certificates at pruned
branches (their weights only on rows of affine switching functions), one-input sides, and at every essential
pattern a strict direction for every constraint of its path (or independent rows), continuity judged on the
outputs; every flag and the verdict re-derived.
"""
import itertools
import math

from flint import arb, arb_mat, ctx, fmpq, fmpq_mat

from .. import progress
from ..errors import InputError
from . import Invalid, register
from . import cells as S
from . import common as C
from . import germs as G
from . import kernel as K
from .forms import Forms

MAX_PATTERNS = 2 ** 16         # no certifier enumerates more (their caps are 4096)
LEAF_CAP = 4096


def _sign(v, what):
    s = K.sign(v)
    if s is None:
        raise K.CannotDecide(f"the checker cannot decide {what}")
    return s


def _nonsmooth(P):
    return [k for k, e in enumerate(P.eqns) if e.prim not in K.SMOOTH]


def merged_switches(e):
    """The switching functions of e with the coefficients on one variable added up: max(v, v) switches on
    v - v, exactly 0 even when v is only known as a ball."""
    return [(K.merged(coefs, e.ins), const) for coefs, const in K.switches(e.prim, dict(e.params), len(e.ins))]


# ------------------------------------------------------------------------------------------------- at x

class AtX:
    """The evaluation at x: the pieces chosen there (every switching function decided by its value, or by the
    stated exact form "at_x"), the values and gradients with those pieces (``F``), and the stated "agree"
    decisions.  Every stated decision is re-derived, whether or not values decide it too."""

    def __init__(self, P, x, ev, table):
        self.P, self.x, self.table = P, x, table
        self.stated = S.Evidence(ev.get("at_x"), "evidence/at_x")
        self.chosen = S.ball_walk(P, x, [K.Q0] * len(x), S.PointDecider(P, self.stated))[0]
        self.F = K.Frozen(P, x, list(self.chosen))
        self.forms = Forms(P, self.F.val, list(self.chosen), symbolic=False)
        self.agree = {}
        keys = [(a["equation"], a["piece"], a["row"]) for a in ev.get("agree") or []]
        if keys != sorted(keys):
            raise Invalid("evidence/agree must be listed by equation, piece and row")
        for a in ev.get("agree") or []:
            m = a["equation"]
            key = (m, table.piece(m, a["piece"]), a["row"])
            if key in self.agree:
                raise Invalid("evidence/agree decides a piece's row twice")
            self.agree[key] = self._agreement(m, key[1], a)
        for pos, j in self.stated.by:
            self._check_stated(pos, j)

    def _check_stated(self, pos, j):
        e = self.stated.by[(pos, j)]
        if "form" not in e:
            raise Invalid("evidence/at_x states exact forms only")
        k = _nonsmooth(self.P)[pos]
        v = K.affine_value(merged_switches(self.P.eqns[k])[j], self.F.args[k])
        if S.form_sign(self.forms, self.P, pos, j, e["form"], self.F.val) != e["sign"] or \
                K.sign(v) not in (None, e["sign"]):
            raise Invalid(f"evidence/at_x: the sign of switching function {j + 1} of nonsmooth equation {pos + 1} "
                          "is wrong")

    def _agreement(self, m, piece, a):
        """The sign a stated agreement proves: the piece's row minus the chosen piece's is the stated form."""
        k = _nonsmooth(self.P)[m]
        e, row = self.P.eqns[k], a["row"]
        if not 0 <= row < len(piece):
            raise Invalid("evidence/agree names a row the piece does not have")
        F = self.forms
        d = F.lin(((K.Q1, F.affine(e, *piece[row])), (-K.Q1, F.affine(e, *self.chosen[m][row]))))
        g = F.relation(a["form"], e.outs[0])
        if not F.lin(((K.Q1, d), (-K.Q1, g))).is_zero():
            raise Invalid("evidence/agree: the stated form is not the difference of the two pieces")
        s = S.relation_sign(a["form"], self.F.val)
        if s != a["sign"]:
            raise Invalid("evidence/agree: the stated sign is wrong")
        return s

    def difference(self, m, piece, row, value):
        """The sign of ``piece``'s row minus the chosen piece's at x: the value's, else a stated agreement."""
        s = K.sign(value)
        got = self.agree.get((m, piece, row))
        if got is not None and s is not None and s != got:
            raise Invalid("evidence/agree contradicts the values")
        return s if s is not None else got

    def tape(self):
        return K.Tape(self.P, self.x, list(self.chosen))


# ------------------------------------------------------------------------------------------ index sets

def _local(P, at):
    """(Tape, agreeing pieces, undecided pieces) per nonsmooth equation, at the ambient precision.  A piece
    agrees when its value equals the chosen piece's: the two maps are compared term by term on the distinct
    variables (a tie of one variable with itself is exact: mean(v, v) is v), else by a stated exact form."""
    T = at.tape()
    agree, unknown = [], []
    for m, (k, c) in enumerate(zip(_nonsmooth(P), at.chosen)):
        e = P.eqns[k]
        ok, unk = [], []
        for p in K.pieces(e.prim, dict(e.params), len(e.ins)):
            d = [at.difference(m, p, row, v) for row, v in enumerate(K.difference(p, c, e.ins, T.args[k]))]
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


def local_index(P, x, ev, table, cands):
    """Validate the stated candidates (the agreeing pieces of every nonsmooth equation, in the order the
    patterns enumerate them); return (Tape, candidate piece lists, undecided entries, precision)."""
    def fn():
        at = AtX(P, x, ev, table)
        T, agree, unknown = _local(P, at)
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


def _outputs(ev, table):
    """The stated global decisions f_sigma(x) - f(x): {(pattern pieces, output): entry}."""
    out = {}
    keys = [(o["pattern"], o["output"]) for o in ev.get("outputs") or []]
    if keys != sorted(keys):
        raise Invalid("evidence/outputs must be listed by pattern and output")
    for o in ev.get("outputs") or []:
        key = (table.pattern(o["pattern"], "evidence/outputs"), o["output"])
        if key in out:
            raise Invalid("evidence/outputs decides one difference twice")
        out[key] = o
    return out


def _output_difference(P, at, combo, G_, o, entry):
    """The sign of f_sigma(x) - f(x) at output o that a stated exact form proves (forms of the two
    evaluations over shared atoms)."""
    ids = {}
    Fs = Forms(P, G_.val, list(combo), symbolic=False, ids=ids)
    Fx = Forms(P, at.F.val, list(at.chosen), symbolic=False, ids=ids)
    d = Fs.lin(((K.Q1, Fs.output(o)), (-K.Q1, Fx.output(o))))
    pairs = []
    for t in entry["form"]["terms"]:
        var, c = t[0], K.q(t[1])
        if not isinstance(var, int) or not 0 <= var < P.n_vars or c == 0 or (len(t) == 3 and t[2] != "x"):
            raise Invalid("evidence/outputs: a malformed term")
        pairs.append((c, (Fx if len(t) == 3 else Fs).of(var)))
    g = Fs.lin(pairs, K.q(entry["form"]["const"]))
    if not Fs.lin(((K.Q1, d), (-K.Q1, g))).is_zero():
        raise Invalid("evidence/outputs: the stated form is not f_sigma(x) - f(x)")
    if not entry["form"]["terms"]:
        s = K.sign(g.const)
    else:
        acc = K.q(entry["form"]["const"])
        for t in entry["form"]["terms"]:
            acc = acc + K.q(t[1]) * (at.F.val if len(t) == 3 else G_.val)[t[0]]
        s = _sign(acc, "a stated difference of outputs")
    if s != entry["sign"]:
        raise Invalid("evidence/outputs: the stated sign is wrong")
    return s


def global_index(P, x, ev, table):
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
    stated = _outputs(ev, table)

    def fn():
        at = AtX(P, x, ev, table)
        fx = at.F.outputs()
        found, unknown, used = [], [], set()
        for combo in itertools.product(*orders):
            try:
                G_ = K.Frozen(P, x, list(combo), want_grad=False)
                d = [K.sign(a - b) for a, b in zip(G_.outputs(), fx)]
            except K.Undefined:
                continue
            except K.CannotDecide:
                unknown.append(combo)
                continue
            for o, s in enumerate(d):
                if (combo, o) in stated:
                    used.add((combo, o))
                    se = _output_difference(P, at, combo, G_, o, stated[(combo, o)])
                    if s not in (None, se):
                        raise Invalid("evidence/outputs contradicts the values")
                    d[o] = se
            if any(s not in (0, None) for s in d):
                continue
            (unknown if None in d else found).append(combo)
        if set(stated) - used:
            raise Invalid("evidence/outputs decides a difference of no pattern the checker evaluates")
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
        if "candidates" not in ev or "outputs" in ev:
            raise Invalid("a local index set states its candidates (evidence.candidates) and no outputs")
        _, lists, undecided, _ = local_index(P, x, ev, table, ev["candidates"])
        total = math.prod(len(c) for c in lists)
        L = min(cap, total)
        pats = [[table.index_of(m, q, "a pattern") for m, q in enumerate(c)]
                for c in itertools.islice(itertools.product(*lists), L)]
    else:
        if "candidates" in ev:
            raise Invalid("the global scope has no per-equation candidates")
        found, undecided = global_index(P, x, ev, table)
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


def independent(rows):
    """Decided linear independence of ``rows`` (exact rank, or a Gram determinant ball excluding 0)."""
    if not rows:
        return True
    if all(isinstance(v, fmpq) for r in rows for v in r):
        return fmpq_mat(rows).rank() == len(rows)
    gram = [[arb(sum((a * b for a, b in zip(r, s)), K.Q0)) for s in rows] for r in rows]
    return _sign(arb_mat(gram).det(), "the independence of the tied gradients") != 0


def _cached(fn):
    """fn() computed once per precision (ball numbers are recomputed at the certificate's precision)."""
    memo = {}
    return lambda: memo[ctx.prec] if ctx.prec in memo else memo.setdefault(ctx.prec, fn())


def _field_part(P, x, claim, ev, table):
    """Every pattern of I(x) with its own gradient and a recomputation of it: [(gradient, compute)]."""
    if claim["scope"] == "local":
        if "candidates" not in ev or "outputs" in ev:
            raise Invalid("a local index set states its candidates (evidence.candidates) and no outputs")
        T, lists, undecided, _ = local_index(P, x, ev, table, ev["candidates"])
        if undecided:
            raise Invalid("the index set is undecided: the field is not defined")
        if math.prod(len(c) for c in lists) != len(ev["field"]):
            raise Invalid("evidence.field must give the generator of every pattern of I(x)")
        pats = list(itertools.product(*lists))
        progress.report("check: gradients of I(x)", 0, len(pats))
        tape = _cached(lambda: K.Tape(P, x, list(T.pieces)))
        return [(jac[0], (lambda pc=pc: tape().jacobian(pc)[0])) for jac, pc in zip(T.jacobians(pats), pats)]
    if "candidates" in ev:
        raise Invalid("the global scope has no per-equation candidates")
    pats, undecided = global_index(P, x, ev, table)
    if undecided:
        raise Invalid("the index set is undecided: the field is not defined")
    if len(pats) != len(ev["field"]):
        raise Invalid("evidence.field must give the generator of every pattern of I(x)")
    return [(K.Frozen(P, x, list(pc)).jacobian()[0], (lambda pc=pc: K.Frozen(P, x, list(pc)).jacobian()[0]))
            for pc in pats]


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

    def body(p):
        field = _group(_field_part(P, x, claim, ev, table), res["field"], ev["field"], prec, "the field")
        sel = _membership(field, ev["selection"], "selection")
        if "undecided" in ev["clarke"]:
            if pl:
                raise Invalid("a piecewise-linear program's Clarke subdifferential is always decided")
            if "undecided" not in ev["clarke_membership"]:
                raise Invalid("an undecided Clarke part has no membership witness")
            return sel, None, False
        if ev["clarke"]["piecewise_linear"] is not pl:
            raise Invalid("the piecewise_linear flag is wrong")
        seen = ClarkeWalk(P, AtX(P, x, ev, table), table, ev["clarke"], pl).run()
        if res["clarke"] is None:
            raise Invalid("result.clarke must list the Clarke generators")
        own = [(jac[0], (lambda pc=pc: K.Frozen(P, x, list(pc)).jacobian()[0])) for _, pc, jac in seen]
        cvals = _group(own, res["clarke"], [leaf["generator"] for leaf in ev["clarke"]["leaves"]], prec,
                       "the Clarke generators")
        return sel, _membership(cvals, ev["clarke_membership"], "Clarke"), True

    sel, cl, walked = C.decided(body)
    if not walked:
        C.confirm_undecided(lambda: ClarkeWalk(P, AtX(P, x, ev, table), table, None, pl).run())
    art = C.artificial(sel, cl)
    own = {"field": res["field"], "clarke": res["clarke"] if walked else None,
           "selection_critical": sel, "clarke_critical": cl, "artificial": art}
    C.same(res, own, "result")
    C.same(cert["verdict"], "PROVED" if sel is not None and cl is not None else "UNDECIDED", "verdict")
    table.check_used()


# ------------------------------------------------------------------------------------- the Clarke walk

class Path:
    """A branch in progress: the next equation ``k``, its values ``val`` (its own copy once a piece jumps),
    forward-mode gradients ``G``, the pieces ``chosen``, the constraint rows with their ``affine`` flags and
    the lowest-order constraints ``polys`` ((H, sign))."""
    __slots__ = ("k", "val", "jumped", "G", "chosen", "rows", "affine", "polys")

    def __init__(self, k, val, jumped, G, chosen, rows, affine, polys):
        self.k, self.val, self.jumped, self.G, self.chosen = k, val, jumped, G, chosen
        self.rows, self.affine, self.polys = rows, affine, polys


class ClarkeWalk:
    """Replay the essential-pattern walk of ``ev`` (its tree and leaves), or with ``ev`` None walk it without a
    tree (every sign vector of the tied switching functions, independent rows required: the confirmation of
    an UNDECIDED Clarke part).  ``run()`` returns [(leaf index, pattern pieces, Jacobian)]."""

    def __init__(self, P, at, table, ev, pl):
        self.P, self.at, self.table, self.ev, self.pl = P, at, table, ev, pl
        self.n = P.n_inputs
        self.live = C.live_equations(P)
        self.pos_of = {k: m for m, k in enumerate(_nonsmooth(P))}
        self.leaves = None if ev is None else ev["leaves"]
        self.seen = []
        self._affine = {}

    def run(self):
        n, F = self.n, self.at.F
        G0 = [[K.Q1 if j == i else K.Q0 for j in range(n)] for i in range(n)] + [None] * (self.P.n_vars - n)
        self.visit(Path(0, F.val, False, G0, [], [], [], ()), None if self.ev is None else self.ev["tree"])
        if self.ev is not None and len(self.seen) != len(self.leaves):
            raise Invalid("some listed leaves are not reached by the walk")
        return sorted(self.seen, key=lambda s: s[0])

    def visit(self, path, node):
        self.advance(path)
        if path.k == len(self.P.eqns):
            return self.leaf(path, node)
        e = self.P.eqns[path.k]
        stated = node if isinstance(node, dict) and node.get("eqn") == path.k else None
        ties = self.classify(path, e, stated)
        if not ties.shown():
            if stated is not None:
                raise Invalid(f"the Clarke tree states a node at equation {path.k + 1}, where nothing is tied")
            piece = K.choose(e.prim, dict(e.params), len(e.ins), ties.signs)
            return self.visit(self.take(path, e, piece, path.rows, path.affine, path.polys), node)
        if self.ev is not None:
            ties.check_against(stated, path.k)
        taus = list(itertools.product((-1, 1), repeat=len(ties.tied)))
        branches = stated["branches"] if stated is not None else [None] * len(taus)
        if self.ev is not None and (not isinstance(branches, list) or
                                    [b.get("signs") for b in branches] != [list(t) for t in taus]):
            raise Invalid(f"the branches at equation {path.k + 1} are not every sign vector of its tied functions")
        for tau, b in zip(taus, branches):
            self.branch(path, e, ties, tau, b)

    def advance(self, path):
        """Through the smooth equations and those that reach no output (they keep the piece chosen at x)."""
        P, n = self.P, self.n
        while path.k < len(P.eqns) and (P.eqns[path.k].prim in K.SMOOTH or path.k not in self.live):
            e = P.eqns[path.k]
            if path.k not in self.live:
                if e.prim not in K.SMOOTH:
                    path.chosen = path.chosen + [self.at.chosen[self.pos_of[path.k]]]
                path.k += 1
                continue
            xs = self.args(path, e)
            params = dict(e.params)
            if path.jumped:
                path.val = path.val[:]
                path.val[e.outs[0]] = K.smooth_value(e.prim, xs, params)
            ps = K.smooth_partials(e.prim, xs, path.val[e.outs[0]], params)
            gs = [self.grad_of(a, path.G) for a in e.ins]
            path.G = path.G[:]
            path.G[e.outs[0]] = [K.dot(ps, [g[j] for g in gs]) for j in range(n)]
            path.k += 1

    def leaf(self, path, node):
        P = self.P
        if path.jumped:
            outs = [a.value if not isinstance(a, int) else path.val[a] for a in P.outputs]
            if any(_sign(a - b, "whether f jumps at x") != 0 for a, b in zip(outs, self.at.F.outputs())):
                raise Invalid("f jumps at x (a branch's output differs from f(x)): no Clarke subdifferential")
        jac = [self.grad_of(a, path.G) for a in P.outputs]
        if self.ev is None:
            if path.polys or (path.rows and not independent(path.rows)):
                raise C.Undecidable("dependent tied gradients or lowest-order constraints without a direction")
            if len(self.seen) >= LEAF_CAP:
                raise Invalid(f"more than {LEAF_CAP} essential patterns")
            self.seen.append((len(self.seen), tuple(path.chosen), jac))
            return
        i = node.get("leaf") if isinstance(node, dict) else None
        if not isinstance(i, int) or not 0 <= i < len(self.leaves) or i in [s[0] for s in self.seen]:
            raise Invalid("a leaf of the Clarke tree is missing, repeated or out of range")
        leaf = self.leaves[i]
        if self.table.pattern(leaf["pattern"], f"leaf {i}") != tuple(path.chosen):
            raise Invalid(f"leaf {i}: its pattern is not the one the walk reaches")
        self.realized(path, leaf["direction"], i)
        self.seen.append((i, tuple(path.chosen), jac))

    def realized(self, path, direction, i):
        """The leaf's path is realized next to x: a strict direction for every row and lowest-order part (always
        stated for piecewise-linear programs), or independent rows and no lowest-order part."""
        if direction is None:
            if self.pl or path.polys or not independent(path.rows):
                raise Invalid(f"leaf {i}: no direction, and its constraints are not independent rows")
            return
        d = [K.q(v) for v in direction]
        if len(d) != self.n or any(_sign(sum((a * b for a, b in zip(r, d)), K.Q0), "a constraint at a direction")
                                   <= 0 for r in path.rows) or any(s * H(*d) <= 0 for H, s in path.polys):
            raise Invalid(f"leaf {i}: the direction does not satisfy the branch's strict inequalities")

    # -- the switching functions of an equation
    def classify(self, path, e, stated):
        """The Ties of equation e on ``path``: signs at x (values, or stated forms on branches that did not
        jump), gradients, and each tie classified (module docstring), with the stated evidence ``degenerate``."""
        k, m = path.k, self.pos_of[path.k]
        xs = self.args(path, e)
        gs = [self.grad_of(a, path.G) for a in e.ins]
        how = {}
        for d in (stated or {}).get("degenerate", []):
            if d["switch"] in how:
                raise Invalid(f"equation {k + 1}: a degenerate tie is stated twice")
            how[d["switch"]] = d
        ties = Ties(how)
        for j, form in enumerate(merged_switches(e)):
            v = K.affine_value(form, xs)
            s = K.sign(v)
            if s is None and not path.jumped:
                e_ = self.at.stated.by.get((m, j))
                s = None if e_ is None else e_["sign"]          # re-derived when AtX was built
            if s is None:
                raise K.CannotDecide(f"the checker cannot decide a switching function of equation {k + 1}")
            g = [K.dot(form[0], [gg[jj] for gg in gs]) for jj in range(self.n)]
            ties.signs.append(s)
            ties.grads.append(g)
            if s == 0:
                self.tie(path, e, j, form, g, ties)
            elif j in how:
                raise Invalid(f"equation {k + 1}: a degenerate tie is stated for a switching function that is not 0")
        return ties

    def tie(self, path, e, j, form, g, ties):
        k = path.k
        if not any(form[0]) and form[1] == 0:
            ties.zero.append(j)
            return
        d = ties.how.get(j)
        if d is not None:
            ties.used.add(j)
            if "identity" in d:
                F = Forms(self.P, path.val, list(path.chosen), symbolic=True)
                if not F.affine(e, *form).is_zero():
                    raise Invalid(f"equation {k + 1}: the stated identity of switching function {j + 1} does not hold")
                ties.zero.append(j)
                return
            self.germ(path, e, j, form, d["germ"], ties)
            return
        gz = [_sign(v, "a switching gradient") for v in g]
        if any(gz):
            ties.tied.append(j)
            ties.affine[j] = self.is_affine(k, j, form)
        elif self.is_affine(k, j, form):
            ties.zero.append(j)
        else:
            raise C.Undecidable(f"equation {k + 1}: a tie with zero gradient whose switching function is not "
                                "affine, and nothing stated about it")

    def germ(self, path, e, j, form, stated, ties):
        """A stated lowest-order part, re-derived from the checker's own rational function of the displacement."""
        frac = G.switch_fraction(self.P, self.at.x, path.chosen, path.k, form)
        kind = G.classify(*frac, self.n)
        if G.germ_json(*frac, kind, self.n) != stated:
            raise Invalid(f"equation {path.k + 1}: the stated lowest-order part of switching function {j + 1} is not "
                          "the checker's")
        if kind[0] == "zero":
            ties.zero.append(j)
        elif kind[0] == "generic":
            ties.signs[j] = kind[1]
            ties.generic.append([j, kind[1]])
        else:
            ties.higher[j] = (kind[1], kind[2])
            ties.tied.append(j)
            ties.affine[j] = False

    def is_affine(self, k, j, form):
        if (k, j) not in self._affine:
            self._affine[(k, j)] = K.affine_switch(self.P, k, form[0])
        return self._affine[(k, j)]

    # -- branching
    def branch(self, path, e, ties, tau, b):
        m = self.pos_of[path.k]
        rows = path.rows + [[v if t > 0 else -v for v in ties.grads[j]] for t, j in zip(tau, ties.tied)
                            if j not in ties.higher]
        flags = path.affine + [ties.affine[j] for j in ties.tied if j not in ties.higher]
        polys = tuple(path.polys) + tuple((ties.higher[j][0], t * ties.higher[j][1])
                                          for t, j in zip(tau, ties.tied) if j in ties.higher)
        if b is not None and "gordan" in b:
            self.gordan(b["gordan"], rows, flags, path.k)
            return
        if b is not None and "empty" in b:
            self.empty(rows, polys, path.k)
            return
        sg = list(ties.signs)
        for t, j in zip(tau, ties.tied):
            sg[j] = t
        piece = K.choose(e.prim, dict(e.params), len(e.ins), sg)
        if b is not None and self.table.piece(m, b["piece"]) != piece:
            raise Invalid(f"the piece chosen at equation {path.k + 1} for signs {list(tau)} is not the stated one")
        self.visit(self.take(path, e, piece, rows, flags, polys), None if b is None else b["next"])

    def gordan(self, weights, rows, flags, k):
        """A pruned branch: y >= 0, sum 1, sum y_i row_i = 0 exactly, weights only on affine switching functions'
        rows: their strict inequalities have no solution near x."""
        y = [K.q(v) for v in weights]
        if len(y) != len(rows) or any(v < 0 for v in y) or sum(y, K.Q0) != 1 or \
                any(not f for f, w in zip(flags, y) if w != 0) or \
                any(sum((w * r[jj] for w, r in zip(y, rows) if w != 0), K.Q0) != 0 for jj in range(self.n)):
            raise Invalid(f"a Gordan certificate at equation {k + 1} is not valid")

    def empty(self, rows, polys, k):
        """One input: neither side of x realizes the branch's signs (some constraint fails to first or lowest
        order in each of the two directions)."""
        if self.n != 1:
            raise Invalid(f"equation {k + 1}: an empty branch is stated for a program of more than one input")
        for d in (K.Q1, -K.Q1):
            if all(_sign(r[0] * d, "a constraint on one side") > 0 for r in rows) and \
                    all(s * H(d) > 0 for H, s in polys):
                raise Invalid(f"equation {k + 1}: a branch stated empty is realized on one side of x")

    def take(self, path, e, piece, rows, flags, polys):
        """The child path after equation e takes ``piece``: the branch's own values where it jumps (its value
        differs from the value at x), and the pieces' gradients."""
        m, xs, n = self.pos_of[path.k], self.args(path, e), self.n
        val, jumped = path.val, path.jumped
        for row, (y, o) in enumerate(zip(K.apply_piece(piece, xs), e.outs)):
            d = y - path.val[o]
            s = self.at.difference(m, piece, row, d) if not path.jumped else K.sign(d)
            if s is None:
                raise K.CannotDecide(f"the checker cannot decide whether equation {path.k + 1} jumps")
            if s != 0:
                if val is path.val:
                    val = val[:]
                val[o], jumped = y, True
        gs = [self.grad_of(a, path.G) for a in e.ins]
        Gn = path.G[:]
        for o, (coefs, _) in zip(e.outs, piece):
            Gn[o] = [K.dot(coefs, [g[jj] for g in gs]) for jj in range(n)]
        return Path(path.k + 1, val, jumped, Gn, path.chosen + [piece], rows, flags, polys)

    def args(self, path, e):
        return [a.value if not isinstance(a, int) else path.val[a] for a in e.ins]

    def grad_of(self, a, Gs):
        return [K.Q0] * self.n if not isinstance(a, int) else Gs[a]


class Ties:
    """One equation's switching functions on a path: ``signs``, gradients ``grads``, ``tied`` (with ``affine``
    flags), ``zero``, ``generic``, ``higher`` (j -> (H, sign)); ``how``: the stated degenerate ties, each
    used."""

    def __init__(self, how):
        self.signs, self.grads, self.tied, self.zero, self.generic = [], [], [], [], []
        self.affine, self.higher, self.how, self.used = {}, {}, how, set()

    def shown(self):
        return bool(self.tied or self.generic or self.used)

    def check_against(self, stated, k):
        if stated is None or stated.get("tied") != self.tied or stated.get("zero") != self.zero or \
                stated.get("generic", []) != self.generic:
            raise Invalid(f"the Clarke tree's node at equation {k + 1} does not match its tied switching functions")
        if set(self.how) != self.used:
            raise Invalid(f"equation {k + 1}: a degenerate tie is stated for a switching function that needs none")


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
    chosen = S.ball_walk(P, x, [K.Q0] * len(x), S.strict)[0]
    return K.Frozen(P, x, list(chosen)).jacobian()[0]


def _check_zero_identity():
    """zero(t) = 0 for all t: switching functions -t and t vanish only at 0; on each side the pattern is
    constant and the frozen program is affine (piecewise linear) with value 0 and slope 0; zero(0) = 0."""
    from ..frontends.text import parse
    Z = parse(ZERO_TEXT)
    for t in (fmpq(-1), fmpq(1)):
        fz = K.Frozen(Z, [t], _ad_pieces(Z, [t]))
        if fz.outputs() != [0] or fz.jacobian() != [[0]]:
            raise Invalid("zero(t) is not 0 on one side of 0")
    if K.Frozen(Z, [fmpq(0)]).outputs() != [0]:
        raise Invalid("zero(0) is not 0")


def _ad_pieces(P, x):
    return list(S.ball_walk(P, x, [K.Q0] * len(x), S.strict)[0])
