"""Checks for index_set, critical and spurious certificates, re-derived with kernel.py only.

Index sets: the checker evaluates the primitives itself, enumerates its own piece set of every nonsmooth
equation and keeps the pieces that agree with the primitive at the actual inputs (local scope), or tries
every combination of pieces (global scope); the certificate's patterns must be exactly these.  Critical
points: every field gradient is recomputed by forward mode over the frozen pieces; convex weights and
separating vectors are checked by exact arithmetic; the Clarke walk is replayed equation by equation with
the checker's own switching functions and index rules, Gordan certificates are checked at pruned branches
and a strictly feasible direction at every essential pattern.
"""
import itertools

from flint import arb, arb_mat, ctx, fmpq, fmpq_mat

from ..errors import VerifyError
from . import kernel as K
from . import Invalid, register


PRECS = (64, 128, 256, 512, 1024, 2048, 4096)


def _program(cert):
    """The certified program: its text must be canonical and be the source with the claimed convention
    resolved (so the convention, too, is checked)."""
    from ..frontends.text import parse
    from ..program.ir import to_text
    from ..program.kinks import CONVENTIONS
    prog = cert["program"]
    try:
        P = parse(prog["text"], fn=prog["fn"])
        S = parse(prog["source"], fn=prog["fn"])
    except VerifyError as e:
        raise Invalid(f"the program text does not parse: {e}") from None
    if to_text(P) != prog["text"] or to_text(S) != prog["source"]:
        raise Invalid("the program text is not in canonical form")
    conv = cert["claim"].get("convention")
    if conv not in CONVENTIONS:
        raise Invalid(f"unknown convention {conv!r}")
    if _resolve(S, conv) != P:
        raise Invalid(f"the program is not the source with the {conv} convention resolved")
    return P


def _resolve(S, conv):
    """S with every kink param written out as the convention ``conv`` resolves it."""
    from ..program.ir import Eqn, Program
    from ..program.kinks import resolve
    from ..program.prims import PRIMITIVES
    eqns = tuple(Eqn(e.prim, e.ins, tuple(sorted((k, v) for k, v in resolve(e, conv).items()
                                                 if k in PRIMITIVES[e.prim].params)), e.outs) for e in S.eqns)
    return Program(S.name, S.names, S.n_inputs, eqns, S.outputs)


def _exact_prec(cert):
    """prec must be null exactly when every number of the certificate is exact."""
    def balls(o):
        if isinstance(o, dict):
            return ("lo" in o and "hi" in o) or any(balls(v) for v in o.values())
        return isinstance(o, list) and any(balls(v) for v in o)
    has = balls(cert["result"]) or balls(cert["evidence"])
    if (cert.get("prec") is None) == has:
        raise Invalid("prec must be given exactly when the certificate holds ball enclosures")
    if has and cert["prec"] not in PRECS:
        raise Invalid(f"prec must be one of the certifiers' precisions {PRECS}")


def _decided(cert, body):
    """Run the check ``body``; an UNDECIDED verdict is valid exactly when the checker cannot decide either."""
    try:
        body()
    except K.CannotDecide:
        if cert["verdict"] != "UNDECIDED":
            raise
        return
    if cert["verdict"] == "UNDECIDED" and cert["kind"] == "index_set":
        raise Invalid("the checker decides everything: the verdict should be PROVED")


def _point(cert, P):
    x = [K.q(v) for v in cert["claim"].get("point", [])]
    if len(x) != P.n_inputs:
        raise Invalid("the point does not match the program's inputs")
    return x


def _num_ok(stated, own, prec):
    """A stated number agrees with the checker's own value: an exact string must equal an exact value; a
    stated ball must contain the checker's value (a ball or an exact number) and be at most about four
    times as wide as the checker's ball (plus 2^-(prec-8) relative), so no loose enclosure passes."""
    from fractions import Fraction
    if isinstance(own, arb) and own.is_finite() and own.is_exact():
        own = _arf(own.mid())
    if isinstance(stated, str):
        return isinstance(own, fmpq) and K.q(stated) == own
    if not isinstance(stated, dict):
        return False
    try:
        lo, hi = Fraction(stated["lo"]), Fraction(stated["hi"])
    except (KeyError, ValueError, TypeError):
        return False
    lo, hi = fmpq(lo.numerator, lo.denominator), fmpq(hi.numerator, hi.denominator)
    if isinstance(own, fmpq):
        m, r = own, K.Q0
    else:
        m, r = _arf(own.mid()), _arf(own.rad())
    slack = fmpq(1, 2 ** max(prec - 8, 1)) * (1 + abs(m))
    return lo <= m - r and m + r <= hi and hi - lo <= 4 * r + slack


def _arf(a):
    man, exp = (int(t) for t in a.man_exp())
    return fmpq(man) * fmpq(2) ** exp if exp >= 0 else fmpq(man, 2 ** (-exp))


def _vec_ok(stated, own, prec):
    return isinstance(stated, list) and len(stated) == len(own) and \
        all(_num_ok(s, o, prec) for s, o in zip(stated, own))


def _sign(v, what):
    s = K.sign(v)
    if s is None:
        raise K.CannotDecide(f"the checker cannot decide {what}")
    return s


def _pieces_of(ev, P):
    """The certificate's piece table, as {eqn position: {index: piece}}, each piece checked to be one of the
    primitive's own pieces."""
    table = ev.get("pieces")
    eqs = K.nonsmooth_eqns(P)
    if not isinstance(table, list) or len(table) != len(eqs):
        raise Invalid("evidence.pieces must list one table per nonsmooth equation")
    out = []
    for m, (e, t) in enumerate(zip(eqs, table)):
        own = K.pieces(e.prim, dict(e.params), len(e.ins))
        got = {}
        for i, rows in t.items():
            p = K.piece_from_json(rows)
            if p not in own:
                raise Invalid(f"piece {i} of nonsmooth equation {m + 1} ({e.prim}) is not one of its pieces")
            got[int(i)] = p
        out.append(got)
    return out


def _lookup(table, m, i):
    try:
        return table[m][int(i)]
    except (KeyError, ValueError, TypeError, IndexError):
        raise Invalid(f"piece index {i!r} of nonsmooth equation {m + 1} is not in the piece table") from None


def check_index(P, x, ev, prec):
    """Validate an index-set evidence block; return (patterns as piece tuples, the piece table, count)."""
    table = _pieces_of(ev, P)
    scope = ev.get("scope")
    pats = ev.get("patterns")
    if not isinstance(pats, list):
        raise Invalid("evidence.patterns must be a list")
    stated = [tuple(_lookup(table, m, i) for m, i in enumerate(p)) for p in pats]
    if len(set(stated)) != len(stated):
        raise Invalid("a pattern is listed twice")
    F = K.Frozen(P, x)
    eqs = [k for k, e in enumerate(P.eqns) if e.prim not in K.SMOOTH]
    if scope == "local":
        cands = ev.get("candidates")
        if not isinstance(cands, list) or len(cands) != len(eqs):
            raise Invalid("evidence.candidates must list the agreeing pieces of every nonsmooth equation")
        own_sets = []
        for m, k in enumerate(eqs):
            e = P.eqns[k]
            val = [F.val[o] for o in e.outs]
            agree = [p for p in K.pieces(e.prim, dict(e.params), len(e.ins))
                     if all(_sign(a - b, f"whether a piece of nonsmooth equation {m + 1} agrees") == 0
                            for a, b in zip(K.apply_piece(p, F.args[k]), val))]
            mine = [_lookup(table, m, i) for i in cands[m]]
            if len(set(mine)) != len(mine) or set(mine) != set(agree):
                raise Invalid(f"the agreeing pieces of nonsmooth equation {m + 1} ({e.prim}) are not the ones stated")
            own_sets.append(mine)
        count = 1
        for s in own_sets:
            count *= len(s)
        expected = list(itertools.islice(itertools.product(*own_sets), len(stated) or 0))
        if ev.get("count") != count or stated != expected or ev.get("capped") is not (count > len(stated)):
            raise Invalid("the patterns are not the product of the agreeing pieces (or count/capped is wrong)")
    elif scope == "global":
        if ev.get("candidates") is not None:
            raise Invalid("the global scope has no per-equation candidates")
        fx = F.outputs()
        found = []
        for combo in itertools.product(*(K.pieces(P.eqns[k].prim, dict(P.eqns[k].params), len(P.eqns[k].ins))
                                         for k in eqs)):
            try:
                G = K.Frozen(P, x, list(combo), want_grad=False)
            except Invalid as err:
                if "not defined" in str(err):
                    continue
                raise
            if all(_sign(a - b, "whether f_s(x) = f(x)") == 0 for a, b in zip(G.outputs(), fx)):
                found.append(combo)
        if ev.get("count") != len(found) or set(stated) != set(found[:len(stated)]) or \
                ev.get("capped") is not (len(found) > len(stated)):
            raise Invalid("the patterns are not exactly the global index set")
    else:
        raise Invalid(f"unknown scope {scope!r}")
    return stated, table


def _prec(cert):
    p = cert.get("prec")
    return p if isinstance(p, int) and p >= 2 else 128


@register("index_set")
def check_index_set(cert):
    P = _program(cert)
    x = _point(cert, P)
    _exact_prec(cert)
    ev, res = cert["evidence"], cert["result"]
    if cert["claim"].get("scope") != ev.get("scope"):
        raise Invalid("claim and evidence disagree on the scope")
    if res.get("patterns") != ev.get("patterns") or res.get("count") != ev.get("count") or \
            res.get("capped") != ev.get("capped"):
        raise Invalid("result and evidence disagree")
    if bool(res.get("undecided")) != (cert["verdict"] == "UNDECIDED"):
        raise Invalid("the verdict must be UNDECIDED exactly when something is listed as undecided")

    def body():
        with ctx.workprec(_prec(cert)):
            check_index(P, x, ev, _prec(cert))
    _decided(cert, body)


def _jac(P, x, piece_tuple):
    return K.Frozen(P, x, list(piece_tuple)).jacobian()


def _check_membership(vectors, block, claimed, what):
    """vectors: the checker's own generators.  Returns the truth (True/False) the block proves."""
    if "weights" in block:
        lam = [K.q(w) for w in block["weights"]]
        if len(lam) != len(vectors) or any(w < 0 for w in lam) or sum(lam, K.Q0) != 1:
            raise Invalid(f"{what}: the weights are not convex weights over the generators")
        for k in range(len(vectors[0]) if vectors else 0):
            s = sum((w * v[k] for w, v in zip(lam, vectors)), K.Q0)
            if not (isinstance(s, fmpq) and s == 0):
                raise Invalid(f"{what}: the weighted sum of the generators is not exactly 0")
        truth = True
    elif "separator" in block:
        w = [K.q(v) for v in block["separator"]]
        for v in vectors:
            if len(w) != len(v) or _sign(sum((a * b for a, b in zip(w, v)), K.Q0), f"{what}: <w, v>") <= 0:
                raise Invalid(f"{what}: the separating vector does not separate 0 from every generator")
        truth = False
    else:
        truth = None
    if claimed is not truth:
        raise Invalid(f"{what}: the claimed answer {claimed!r} is not what the evidence proves")
    return truth


def _independent(rows):
    if not rows:
        return True
    if all(isinstance(v, fmpq) for r in rows for v in r):
        return fmpq_mat(rows).rank() == len(rows)
    gram = [[arb(sum((a * b for a, b in zip(r, s)), K.Q0)) for s in rows] for r in rows]
    return _sign(arb_mat(gram).det(), "the independence of the tied gradients") != 0


def replay_clarke(P, x, ev, prec):
    """Replay the essential-pattern walk; return the list of (pattern pieces, Jacobian) at its leaves."""
    pl = ev.get("piecewise_linear")
    if pl is not K.piecewise_linear(P):
        raise Invalid("the piecewise_linear flag is wrong")
    table = _pieces_of(ev, P)
    leaves = ev.get("leaves")
    if not isinstance(leaves, list):
        raise Invalid("evidence.leaves must be a list")
    F = K.Frozen(P, x)
    n = P.n_inputs
    G0 = [[K.Q1 if j == i else K.Q0 for j in range(n)] for i in range(n)] + [None] * (P.n_vars - n)
    seen = []

    def gof(a, G):
        return [K.Q0] * n if not isinstance(a, int) else G[a]

    def visit(k, m, G, node, rows, indep, chosen):
        while k < len(P.eqns) and P.eqns[k].prim in K.SMOOTH:
            e = P.eqns[k]
            xs = F.args[k]
            ps = K.smooth_partials(e.prim, xs, F.val[e.outs[0]], dict(e.params))
            gs = [gof(a, G) for a in e.ins]
            G = G[:]
            G[e.outs[0]] = [sum((p * g[j] for p, g in zip(ps, gs)), K.Q0) for j in range(n)]
            k += 1
        if not isinstance(node, dict):
            raise Invalid("malformed Clarke tree")
        if k == len(P.eqns):
            i = node.get("leaf")
            if not isinstance(i, int) or not 0 <= i < len(leaves) or i in [s[0] for s in seen]:
                raise Invalid("a leaf of the Clarke tree is missing, repeated or out of range")
            leaf = leaves[i]
            if [tuple(_lookup(table, mm, j) for mm, j in enumerate(leaf.get("pattern", [])))] != [tuple(chosen)]:
                raise Invalid(f"leaf {i}: its pattern is not the one the walk reaches")
            if pl:
                d = [K.q(v) for v in (leaf.get("direction") or [])]
                if len(d) != n or any(sum((a * b for a, b in zip(r, d)), K.Q0) <= 0 for r in rows):
                    raise Invalid(f"leaf {i}: the direction does not satisfy the branch's strict inequalities")
            elif leaf.get("direction") is not None:
                raise Invalid(f"leaf {i}: a direction is only used for piecewise-linear programs")
            jac = [gof(a, G) for a in P.outputs]
            if not isinstance(leaf.get("gradient"), list) or len(leaf["gradient"]) != len(jac) or \
                    not all(_vec_ok(s, o, prec) for s, o in zip(leaf["gradient"], jac)):
                raise Invalid(f"leaf {i}: the gradient is wrong")
            seen.append((i, tuple(chosen), jac))
            return
        e = P.eqns[k]
        params, args = dict(e.params), F.args[k]
        gs = [gof(a, G) for a in e.ins]
        sws = [_merged(form, e.ins) for form in K.switches(e.prim, params, len(e.ins))]
        signs, grads, tied, zero = [], [], [], []
        higher_order = False
        for j, form in enumerate(sws):
            s = _sign(K.affine_value(form, args), f"a switching function of equation {k + 1}")
            g = [sum((c * gg[jj] for c, gg in zip(form[0], gs)), K.Q0) for jj in range(n)]
            signs.append(s)
            grads.append(g)
            structural = all(c == 0 for c in form[0]) and form[1] == 0
            if s == 0 and structural:
                zero.append(j)
            elif s == 0:
                gz = [_sign(v, "a switching gradient") for v in g]
                if all(v == 0 for v in gz):
                    zero.append(j)
                    higher_order = True
                else:
                    tied.append(j)
        if node.get("eqn") != k or node.get("tied") != tied or node.get("zero") != zero:
            raise Invalid(f"the Clarke tree's node at equation {k + 1} does not match its tied switching functions")
        if higher_order and not pl:
            raise Invalid("a zero-gradient tie in a non-piecewise-linear program cannot be decided")
        if not pl:
            indep = indep + [grads[j] for j in tied]
            if not _independent(indep):
                raise Invalid("the tied gradients are dependent: the linearised cone does not decide")
        branches = node.get("branches")
        taus = list(itertools.product((-1, 1), repeat=len(tied)))
        if not isinstance(branches, list) or [b.get("signs") for b in branches] != [list(t) for t in taus]:
            raise Invalid(f"the branches at equation {k + 1} are not every sign vector of its tied functions")
        for tau, b in zip(taus, branches):
            new = rows + [[v if t > 0 else -v for v in grads[j]] for t, j in zip(tau, tied)]
            if "gordan" in b:
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
            if _lookup(table, m, b.get("piece")) != piece:
                raise Invalid(f"the piece chosen at equation {k + 1} for signs {list(tau)} is not the stated one")
            for v, o in zip(K.apply_piece(piece, args), e.outs):
                if _sign(v - F.val[o], "continuity") != 0:
                    raise Invalid(f"the program jumps at equation {k + 1}: no Clarke subdifferential")
            G2 = G[:]
            for o, (coefs, _) in zip(e.outs, piece):
                G2[o] = [sum((c * g[jj] for c, g in zip(coefs, gs)), K.Q0) for jj in range(n)]
            visit(k + 1, m + 1, G2, b.get("next"), new, indep, chosen + [piece])

    visit(0, 0, G0, ev.get("tree"), [], [], [])
    if len(seen) != len(leaves):
        raise Invalid("some listed leaves are not reached by the walk")
    return seen


def _merged(form, ins):
    """The switching function with coefficients on the same variable added up (max(v, v) switches on
    v - v, which is exactly 0 whatever v is, even when v is only known as a ball)."""
    coefs, const = form
    out = list(coefs)
    for j, a in enumerate(ins):
        if isinstance(a, int):
            first = ins.index(a)
            if first != j:
                out[first], out[j] = out[first] + out[j], K.Q0
    return tuple(out), const


def _distinct(vectors, stated, prec, what):
    """Every generator the checker finds is stated (exactly once when it is exact: whether two balls are
    the same number is not decidable, so ball generators may repeat), and every stated one is found."""
    if not isinstance(stated, list):
        raise Invalid(f"{what} must be a list")
    if len({repr(s) for s in stated}) != len(stated):
        raise Invalid(f"{what}: a generator is listed twice")
    hit = [False] * len(stated)
    for v in vectors:
        idx = [i for i, s in enumerate(stated) if _vec_ok(s, v, prec)]
        exact = all(isinstance(a, fmpq) for a in v)
        if not idx or (exact and len(idx) != 1):
            raise Invalid(f"{what}: a generator is missing or listed twice")
        for i in idx:
            hit[i] = True
    if not all(hit):
        raise Invalid(f"{what}: a listed generator is not a gradient of any pattern")


@register("critical")
def check_critical(cert):
    P = _program(cert)
    _exact_prec(cert)
    _decided(cert, lambda: _check_critical(cert, P))


def _check_critical(cert, P):
    x = _point(cert, P)
    if P.n_outputs != 1:
        raise Invalid("critical points need one output")
    ev, res = cert["evidence"], cert["result"]
    prec = _prec(cert)
    if cert["claim"].get("scope") != ev.get("index", {}).get("scope"):
        raise Invalid("claim and evidence disagree on the scope")
    with ctx.workprec(prec):
        pats, table = check_index(P, x, ev["index"], prec)
        if ev["index"].get("capped"):
            raise Invalid("the field of a capped index set is incomplete")
        grads = [_jac(P, x, p)[0] for p in pats]
        _distinct(_dedupe(grads), res.get("field"), prec, "the field")
        fp = ev.get("field_patterns")
        if not isinstance(fp, list) or len(fp) != len(res["field"]):
            raise Invalid("evidence.field_patterns must give the patterns of each field gradient")
        covered = []
        for stated, plist in zip(res["field"], fp):
            for p in plist:
                pt = tuple(_lookup(table, m, i) for m, i in enumerate(p))
                if pt not in pats or not _vec_ok(stated, _jac(P, x, pt)[0], prec):
                    raise Invalid("a field pattern does not give its stated gradient")
                covered.append(pt)
        if sorted(map(repr, covered)) != sorted(map(repr, pats)):
            raise Invalid("the field patterns do not cover the index set exactly once")
        own_field = [_own_vector(s, grads, prec) for s in res["field"]]
        sel = _check_membership(own_field, ev.get("selection", {}), res.get("selection_critical"), "selection")
        cl = ev.get("clarke", {})
        if "undecided" in cl:
            if res.get("clarke") is not None or res.get("clarke_critical") is not None:
                raise Invalid("an undecided Clarke part must not state generators or an answer")
            clarke = None
        else:
            seen = replay_clarke(P, x, cl, prec)
            cgrads = _dedupe([jac[0] for _, _, jac in seen])
            _distinct(cgrads, res.get("clarke"), prec, "the Clarke generators")
            own_cl = [_own_vector(s, cgrads, prec) for s in res["clarke"]]
            clarke = _check_membership(own_cl, ev.get("clarke_membership", {}), res.get("clarke_critical"),
                                       "Clarke")
    art = None if sel is None or clarke is None else (sel and not clarke)
    if sel is True and clarke is True:
        art = False
    if sel is False:
        art = False
    if res.get("artificial") is not art:
        raise Invalid("the artificial flag does not follow from the two memberships")
    decided = sel is not None and clarke is not None
    if cert["verdict"] != ("PROVED" if decided else "UNDECIDED"):
        raise Invalid("the verdict does not match what is decided")


def _dedupe(vectors):
    out = []
    for v in vectors:
        if not any(all(_same(a, b) for a, b in zip(v, w)) for w in out):
            out.append(v)
    return out


def _same(a, b):
    if isinstance(a, fmpq) and isinstance(b, fmpq):
        return a == b
    return str(a) == str(b)


def _own_vector(stated, own, prec):
    for v in own:
        if _vec_ok(stated, v, prec):
            return v
    raise Invalid("a stated generator is not one of the checker's")


@register("spurious")
def check_spurious(cert):
    from ..frontends.text import parse
    P2 = _program(cert)
    _exact_prec(cert)
    claim = cert["claim"]
    try:
        P = parse(claim["original"])
        if __import__("verify").to_text(P) != claim["original"]:
            raise Invalid("the original program is not in canonical form")
    except (VerifyError, KeyError, TypeError) as e:
        raise Invalid(f"the original program does not parse: {e}") from None
    a = [K.q(v) for v in claim.get("at", [])]
    r = [K.q(v) for v in claim.get("shift", [])]
    ev = cert["evidence"]
    if ev.get("at") != claim.get("at") or ev.get("shift") != claim.get("shift") or \
            ev.get("construction") != "P'(x) = P(x) + sum_i r_i * zero(x_i - a_i)" or set(ev) != \
            {"at", "shift", "construction", "zero"} or set(ev.get("zero", {})) != {"program"}:
        raise Invalid("claim and evidence disagree")
    P = _resolve(P, claim.get("convention"))
    if len(a) != P.n_inputs or len(r) != P.n_inputs:
        raise Invalid("the point or the shift does not match the program's inputs")
    if P2.eqns[:len(P.eqns)] != P.eqns or P2.names[:len(P.names)] != P.names or P2.n_inputs != P.n_inputs:
        raise Invalid("the new program does not start with the original program")
    # the rest must be exactly: for each nonzero shift, zero(x_i - a_i) scaled and added to the output
    from ..program.ir import Lit
    eqs = list(P2.eqns[len(P.eqns):])
    acc = P.outputs[0]
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
    _check_zero_identity(ev.get("zero", {}))
    if cert["result"] != {"same_function": True} or cert["verdict"] != "PROVED":
        raise Invalid("the result must be same_function: true, PROVED")
    # the shift lands: AD of the new program at a minus AD of the original = r (forward mode, pieces chosen
    # by the index rule at a)
    with ctx.workprec(_prec(cert)):
        d = [_ad_at(P2, a)[j] - _ad_at(P, a)[j] for j in range(len(a))]
    if any(not isinstance(v, fmpq) for v in d):
        return      # transcendental gradients: the shift is structural (checked above)
    if d != r:
        raise Invalid("the AD derivative is not shifted by the stated amount")


def _ad_at(P, x):
    """AD's gradient at x with the pieces the index rule chooses there (the checker's own rules)."""
    F = K.Frozen(P, x)
    chosen = []
    for k, e in enumerate(P.eqns):
        if e.prim in K.SMOOTH:
            continue
        sg = [_sign(K.affine_value(f, F.args[k]), "a switching function")
              for f in K.switches(e.prim, dict(e.params), len(e.ins))]
        chosen.append(K.choose(e.prim, dict(e.params), len(e.ins), sg))
    return K.Frozen(P, x, chosen).jacobian()[0]


ZERO_TEXT = "def zero(t):\n    a = relu(-t, alpha=0)\n    b = relu(t, alpha=0)\n    return a + t - b\n"


def _check_zero_identity(ev):
    """zero(t) = 0 for all t: switching functions -t and t vanish only at 0; on each side the pattern is
    constant and the frozen program is affine (piecewise linear) with value 0 and slope 0; zero(0) = 0."""
    from ..frontends.text import parse
    if ev.get("program") != ZERO_TEXT:
        raise Invalid("the zero gadget's program is not zero(t) = relu(-t) + t - relu(t)")
    Z = parse(ZERO_TEXT)
    for t in (fmpq(-1), fmpq(1)):
        F = K.Frozen(Z, [t])
        pcs = []
        for k, e in enumerate(Z.eqns):
            if e.prim in K.SMOOTH:
                continue
            pcs.append(K.choose(e.prim, dict(e.params), len(e.ins),
                                [K.sign(K.affine_value(f, F.args[k])) for f in K.switches(e.prim, dict(e.params), 1)]))
        fz = K.Frozen(Z, [t], pcs)
        if fz.outputs() != [0] or fz.jacobian() != [[0]]:
            raise Invalid("zero(t) is not 0 on one side of 0")
    if K.Frozen(Z, [fmpq(0)]).outputs() != [0]:
        raise Invalid("zero(0) is not 0")
