"""Certificates for index sets, critical points and the Theorem 1 construction (see verify.certificates
for the envelope).  Piece indices in patterns are ours; the ``pieces`` table maps every index used to the
piece's affine rows, which is what the checker compares against its own piece sets."""
import time

from flint import fmpq

from ..certificates import make
from ..interpret.evaluate import compiled, values_only
from ..numbers.ball import json_number
from ..rational import fmt_q
from ..truth import FALSE, TRUE

VERDICT = {True: "PROVED", False: "UNDECIDED"}


def num(v):
    return json_number(v)


def vec(v):
    return [num(x) for x in v]


def truth_json(t):
    return True if t is TRUE else (False if t is FALSE else None)


def _dense(piece, n):
    out = []
    for terms, const in piece.rows:
        row = [fmpq(0)] * n
        for j, c in terms:
            row[j] = c
        out.append([fmt_q(c) for c in row] + [fmt_q(const)])
    return out


def pieces_table(program, convention, patterns, extra=None, complete=False):
    """[{index: rows}] per nonsmooth equation, for every index in ``patterns`` (and the ``extra`` lists per
    equation); with ``complete`` every piece of every nonsmooth equation."""
    steps = [s for s in compiled(program, convention) if s.sel is not None]
    used = [set(range(st.sel.n_pieces(st.params, len(st.ins)))) if complete else set() for st in steps]
    for pat in patterns:
        for m, i in enumerate(pat):
            used[m].add(i)
    for m, lst in enumerate(extra or []):
        used[m].update(lst)
    return [{str(i): _dense(st.piece(i), len(st.ins)) for i in sorted(u)} for st, u in zip(steps, used)]


def _undecided_json(iset):
    """The undecided entries without their free-text reasons (the checker re-derives them)."""
    return [{"pattern": list(u["pattern"])} if "pattern" in u else {"equation": u["equation"],
                                                                       "pieces": list(u["pieces"])}
            for u in iset.undecided]


def _index_pieces(iset, extra_patterns=()):
    n_eq = len(iset.candidates) if iset.candidates is not None else None
    extra = [list(c) for c in iset.candidates] if iset.candidates is not None else []
    if n_eq is not None:
        for u in iset.undecided:
            if "equation" in u:
                m = [st.k for st in compiled(iset.program, iset.convention) if st.sel is not None].index(u["equation"])
                extra[m].extend(u["pieces"])
    pats = list(iset.patterns) + [tuple(u["pattern"]) for u in iset.undecided if "pattern" in u]
    return pieces_table(iset.program, iset.convention, pats + list(extra_patterns), extra,
                        complete=iset.scope == "global")


def _replayable_index(iset):
    """The index set as the certificate checker derives it: a result that used exact forms (issue 9) is
    recomputed from values alone (evaluate.values_only), since the checker requires a certificate's result to
    be exactly what it derives.  Raises Undecided when values alone cannot decide it (then no certificate)."""
    if not iset.beyond:
        return iset
    from .index import index_set
    with values_only():
        return index_set(iset.program, iset.point, iset.scope, iset.convention, iset.number, iset.prec, iset.cap,
                         iset.max_patterns)


def index_certificate(iset, started=None):
    iset = _replayable_index(iset)
    claim = {"point": [fmt_q(x) for x in iset.point], "scope": iset.scope, "cap": iset.cap}
    result = {"patterns": [list(p) for p in iset.patterns], "count": iset.count, "capped": iset.capped,
              "undecided": _undecided_json(iset)}
    evidence = {"pieces": _index_pieces(iset)}
    if iset.scope == "local":
        evidence["candidates"] = [list(c) for c in iset.candidates]
    return make("index_set", iset.program, iset.convention, claim, VERDICT[iset.decided], result, evidence,
                None, started)


def _membership(m):
    if m.weights is not None:
        return {"weights": [fmt_q(w) for w in m.weights]}
    if m.separator is not None:
        return {"separator": [fmt_q(w) for w in m.separator]}
    return {"undecided": True}


def _tree_json(node, pieces, pos_of):
    """The Clarke walk's tree without the nodes where nothing is tied (the index rule decides there, and the
    checker replays it): one node per equation with tied switching functions."""
    if "leaf" in node:
        return node
    if not node["tied"]:
        return _tree_json(node["branches"][0]["next"], pieces, pos_of)
    out = {"eqn": node["eqn"], "tied": node["tied"], "zero": node["zero"], "branches": []}
    for b in node["branches"]:
        bj = {"signs": b["signs"]}
        if "gordan" in b:
            bj["gordan"] = [fmt_q(y) for y in b["gordan"]]
        else:
            bj["piece"] = b["piece"]
            pieces.append((pos_of[node["eqn"]], b["piece"]))
            bj["next"] = _tree_json(b["next"], pieces, pos_of)
        out["branches"].append(bj)
    return out


def _key(jac):
    return tuple(tuple(str(v) for v in row) for row in jac)


def _generators(jacobians, gradients):
    """For each Jacobian (in order), the index of its generator among ``gradients`` (distinct, in order of
    first occurrence, as the certifiers list them)."""
    index = {_key(g): i for i, g in enumerate(gradients)}
    return [index[_key(j)] for j in jacobians]


def critical_certificate(c, started=None):
    from ..certificates import has_balls
    iset = c.field_result.index
    if iset.beyond or (c.clarke_result is not None and not c.clarke_result.replayable):
        # as the checker derives it (see _replayable_index): index set and Clarke walk from values alone
        from .critical import critical
        with values_only():
            c = critical(iset.program, iset.point, iset.convention, iset.scope, iset.number, iset.prec, iset.cap,
                         iset.max_patterns)
        iset = c.field_result.index
    claim = {"point": [fmt_q(x) for x in iset.point], "scope": iset.scope}
    result = {"field": [vec(g) for g in c.field], "clarke": None if c.clarke is None else [vec(g) for g in c.clarke],
              "selection_critical": truth_json(c.selection.truth),
              "clarke_critical": truth_json(c.clarke_critical.truth), "artificial": truth_json(c.artificial)}
    by_pattern = {p: i for i, ps in enumerate(c.field_result.patterns_of) for p in ps}
    evidence = {"field": [by_pattern[tuple(p)] for p in iset.patterns], "selection": _membership(c.selection),
                "clarke_membership": _membership(c.clarke_critical)}
    extra_patterns, tree_pieces = [], []
    cl = c.clarke_result
    if cl is not None:
        pos_of = {st.k: m for m, st in enumerate(s for s in compiled(iset.program, iset.convention)
                                                 if s.sel is not None)}
        tree = _tree_json(cl.tree, tree_pieces, pos_of)
        gens = _generators([leaf.gradient for leaf in cl.leaves], cl.gradients)
        evidence["clarke"] = {"piecewise_linear": cl.piecewise_linear, "tree": tree,
                              "leaves": [{"pattern": list(leaf.pattern), "generator": g,
                                          "direction": None if leaf.direction is None else
                                          [fmt_q(v) for v in leaf.direction]}
                                         for leaf, g in zip(cl.leaves, gens)]}
        extra_patterns = [leaf.pattern for leaf in cl.leaves]
    else:
        evidence["clarke"] = {"undecided": True}
    table = _index_pieces(iset, extra_patterns)
    steps = [s for s in compiled(iset.program, iset.convention) if s.sel is not None]
    for m, i in tree_pieces:
        if str(i) not in table[m]:
            table[m][str(i)] = _dense(steps[m].piece(i), len(steps[m].ins))
    evidence["pieces"] = [dict(sorted(t.items(), key=lambda kv: int(kv[0]))) for t in table]
    if iset.scope == "local":
        evidence["candidates"] = [list(cd) for cd in iset.candidates]
    decided = None not in (result["selection_critical"], result["clarke_critical"])
    prec = iset.prec if has_balls(result) else None
    return make("critical", iset.program, iset.convention, claim, VERDICT[decided], result, evidence,
                prec, started)


def spurious_certificate(P, Q, evidence, convention, started=None):
    from ..program.ir import to_text
    claim = {"original": to_text(P), "at": evidence["at"], "shift": evidence["shift"]}
    return make("spurious", Q, convention, claim, "PROVED", {"same_function": True},
                {"zero": evidence["zero"]["program"]}, None, started)


def now():
    return time.perf_counter()
