"""Certificates for index sets, critical points and the Theorem 1 construction (see verify.certificates
for the envelope).  Piece indices in patterns are ours; the ``pieces`` table maps every index used to the
piece's affine rows, which is what the checker compares against its own piece sets."""
import time

from flint import fmpq

from ..certificates import make
from ..errors import Undecided
from ..interpret.evaluate import compiled
from ..program.prims import affine
from .index import gradient_key
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


def decide_all_at_x(at):
    """Every switching function's sign at x (the checker decides all of them, not only those an index rule
    reads): by its value, else by its exact form there, recorded in the AtPoint ``at``; Undecided when
    neither decides one (no certificate can then state the pattern at x)."""
    r = at.r
    for pos, st in enumerate(at.steps):
        for j, (terms, const) in enumerate(st.switches):
            if r.ns.sign(affine(r.ns, terms, const, r.args[st.k])) is None and at.switch(pos, j) is None:
                raise Undecided(f"cannot write a certificate: switching function {j + 1} of equation {st.k + 1} "
                                "is undecided at x (its index rule does not need it)")


def _at_json(*ats):
    """The decisions at x by exact forms of one or more AtPoints at the same point (merged)."""
    merged = ats[0]
    for other in ats[1:]:
        for key, e in other.switches.items():
            merged.switches.setdefault(key, e)
        for key, d in other.differences.items():
            merged.differences.setdefault(key, d)
    return merged.json(), merged.pieces()


def _outputs_json(iset):
    return [{"pattern": list(pat), "output": o, "sign": sgn,
             "form": {"const": fmt_q(const), "terms": [[v, fmt_q(c)] if tag == "pattern" else [v, fmt_q(c), "x"]
                                                       for (v, tag), c in terms]}}
            for pat, o, sgn, (const, terms) in iset.outputs]


def index_certificate(iset, started=None):
    decide_all_at_x(iset.at)
    claim = {"point": [fmt_q(x) for x in iset.point], "scope": iset.scope, "cap": iset.cap}
    result = {"patterns": [list(p) for p in iset.patterns], "count": iset.count, "capped": iset.capped,
              "undecided": _undecided_json(iset)}
    at_ev, named = _at_json(iset.at)
    evidence = {"pieces": _named(_index_pieces(iset), iset, named), **at_ev}
    if iset.scope == "local":
        evidence["candidates"] = [list(c) for c in iset.candidates]
    if iset.outputs:
        evidence["outputs"] = _outputs_json(iset)
    return make("index_set", iset.program, iset.convention, claim, VERDICT[iset.decided], result, evidence,
                None, started)


def _named(table, iset, named):
    """The piece table with the pieces that the evidence at x names added."""
    steps = [s for s in compiled(iset.program, iset.convention) if s.sel is not None]
    for m, idx in named.items():
        for i in idx:
            if str(i) not in table[m]:
                table[m][str(i)] = _dense(steps[m].piece(i), len(steps[m].ins))
    return [dict(sorted(t.items(), key=lambda kv: int(kv[0]))) for t in table]


def _membership(m):
    if m.weights is not None:
        return {"weights": [fmt_q(w) for w in m.weights]}
    if m.separator is not None:
        return {"separator": [fmt_q(w) for w in m.separator]}
    return {"undecided": True}


def _generators(jacobians, gradients):
    """For each Jacobian (in order), the index of its generator among ``gradients`` (distinct, in order of
    first occurrence, as the certifiers list them)."""
    index = {gradient_key(g): i for i, g in enumerate(gradients)}
    return [index[gradient_key(j)] for j in jacobians]


def critical_certificate(c, started=None):
    from ..certificates import has_balls
    iset = c.field_result.index
    decide_all_at_x(iset.at)
    claim = {"point": [fmt_q(x) for x in iset.point], "scope": iset.scope}
    result = {"field": [vec(g) for g in c.field], "clarke": None if c.clarke is None else [vec(g) for g in c.clarke],
              "selection_critical": truth_json(c.selection.truth),
              "clarke_critical": truth_json(c.clarke_critical.truth), "artificial": truth_json(c.artificial)}
    by_pattern = {p: i for i, ps in enumerate(c.field_result.patterns_of) for p in ps}
    evidence = {"field": [by_pattern[tuple(p)] for p in iset.patterns], "selection": _membership(c.selection),
                "clarke_membership": _membership(c.clarke_critical)}
    extra_patterns, tree_pieces = [], []
    cl = c.clarke_result
    ats = [iset.at]
    if cl is not None:
        pos_of = {st.k: m for m, st in enumerate(s for s in compiled(iset.program, iset.convention)
                                                 if s.sel is not None)}
        if not isinstance(cl.tree, int):
            cl.tree.pieces(pos_of, tree_pieces)
        gens = _generators([leaf.gradient for leaf in cl.leaves], cl.gradients)
        evidence["clarke"] = {"piecewise_linear": cl.piecewise_linear, "tree": cl.tree_json(),
                              "leaves": [{"pattern": list(leaf.pattern), "generator": g,
                                          "direction": None if leaf.direction is None else
                                          [fmt_q(v) for v in leaf.direction]}
                                         for leaf, g in zip(cl.leaves, gens)]}
        extra_patterns = [leaf.pattern for leaf in cl.leaves]
        ats.append(cl.at)
    else:
        evidence["clarke"] = {"undecided": True}
    at_ev, named = _at_json(*ats)
    evidence.update(at_ev)
    table = _index_pieces(iset, extra_patterns)
    for m, i in tree_pieces:
        named.setdefault(m, set()).add(i)
    evidence["pieces"] = _named(table, iset, named)
    if iset.scope == "local":
        evidence["candidates"] = [list(cd) for cd in iset.candidates]
    if iset.outputs:
        evidence["outputs"] = _outputs_json(iset)
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
