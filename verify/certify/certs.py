"""Certificates for index sets, critical points and the Theorem 1 construction (see verify.certificates
for the envelope).  Piece indices in patterns are ours; the ``pieces`` table maps every index used to the
piece's affine rows, which is what the checker compares against its own piece sets."""
import time

from flint import fmpq

from ..certificates import make
from ..interpret.evaluate import compiled
from ..numbers.ball import json_number
from ..rational import fmt_q
from ..truth import FALSE, TRUE, UNKNOWN

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


def pieces_table(program, convention, patterns, extra=None):
    """[{index: rows}] per nonsmooth equation, for every index in ``patterns`` (and ``extra`` lists)."""
    steps = [s for s in compiled(program, convention) if s.sel is not None]
    used = [set() for _ in steps]
    for pat in patterns:
        for m, i in enumerate(pat):
            used[m].add(i)
    for m, lst in enumerate(extra or []):
        used[m].update(lst)
    return [{str(i): _dense(st.piece(i), len(st.ins)) for i in sorted(u)} for st, u in zip(steps, used)]


def index_evidence(iset):
    return {"scope": iset.scope, "patterns": [list(p) for p in iset.patterns], "count": iset.count,
            "capped": iset.capped, "candidates": iset.candidates,
            "pieces": pieces_table(iset.program, iset.convention, iset.patterns, iset.candidates)}


def index_certificate(iset, started=None):
    claim = {"point": [fmt_q(x) for x in iset.point], "scope": iset.scope}
    result = {"patterns": [list(p) for p in iset.patterns], "count": iset.count, "capped": iset.capped,
              "undecided": iset.undecided}
    return make("index_set", iset.program, iset.convention, claim, VERDICT[iset.decided], result,
                index_evidence(iset), iset.prec, started)


def _membership(m):
    if m.weights is not None:
        return {"weights": [fmt_q(w) for w in m.weights]}
    if m.separator is not None:
        return {"separator": [fmt_q(w) for w in m.separator]}
    return {"undecided": m.reason}


def _tree_json(node):
    if "leaf" in node:
        return node
    out = {"eqn": node["eqn"], "tied": node["tied"], "zero": node["zero"], "branches": []}
    for b in node["branches"]:
        bj = {"signs": b["signs"]}
        if "gordan" in b:
            bj["gordan"] = [fmt_q(y) for y in b["gordan"]]
        else:
            bj["piece"] = b["piece"]
            bj["next"] = _tree_json(b["next"])
        out["branches"].append(bj)
    return out


def clarke_evidence(cl):
    leaves = [{"pattern": list(leaf.pattern), "gradient": [vec(r) for r in leaf.gradient],
               "direction": None if leaf.direction is None else [fmt_q(v) for v in leaf.direction]}
              for leaf in cl.leaves]
    return {"piecewise_linear": cl.piecewise_linear, "tree": _tree_json(cl.tree), "leaves": leaves,
            "pieces": pieces_table(cl.program, cl.convention, [leaf.pattern for leaf in cl.leaves])}


def critical_certificate(c, started=None):
    iset = c.field_result.index
    claim = {"point": [fmt_q(x) for x in iset.point], "scope": iset.scope}
    cl, clarke_critical, artificial, error = c.clarke_result, c.clarke_critical, c.artificial, c.clarke_error
    if cl is not None and not cl.replayable:
        # decided beyond the linearised cone (issue 9): the checker cannot replay that walk, so the certificate
        # states the Clarke part as undecided rather than carry evidence nobody can check
        error = (f"the Clarke walk used decisions the checker cannot replay yet ({', '.join(cl.beyond)}): "
                 "run `verify critical` for the answer")
        cl, clarke_critical, artificial = None, None, c.selection.truth & UNKNOWN
    result = {"field": [vec(g) for g in c.field],
              "clarke": None if cl is None or c.clarke is None else [vec(g) for g in c.clarke],
              "selection_critical": truth_json(c.selection.truth),
              "clarke_critical": None if clarke_critical is None else truth_json(clarke_critical.truth),
              "artificial": None if artificial is None else truth_json(artificial)}
    evidence = {"index": index_evidence(iset), "field_patterns": [[list(p) for p in ps] for ps in
                                                                  c.field_result.patterns_of],
                "selection": _membership(c.selection),
                "clarke": clarke_evidence(cl) if cl is not None else {"undecided": error},
                "clarke_membership": {"undecided": error} if clarke_critical is None else _membership(clarke_critical)}
    decided = None not in (result["selection_critical"], result["clarke_critical"])
    prec = max(iset.prec or 0, (cl.prec if cl else 0) or 0) or None
    return make("critical", iset.program, iset.convention, claim, VERDICT[decided], result, evidence,
                prec, started)


def spurious_certificate(P, Q, evidence, convention, started=None):
    claim = {"original": P and __import__("verify").to_text(P), "at": evidence["at"], "shift": evidence["shift"]}
    result = {"same_function": True}
    return make("spurious", Q, convention, claim, "PROVED", result, evidence, None, started)


def now():
    return time.perf_counter()
