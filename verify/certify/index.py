"""Index sets I(x) (Definition 5 of the paper) and the conservative field D_f(x) = conv{grad f_s(x) : s in I(x)}.

Local scope: at every nonsmooth equation, the pieces whose value at the equation's actual inputs equals the
primitive's value there; I(x) is their product.  Every pattern of it gives f_s(x) = f(x) (by induction over
the equations), so local is a subset of global.  Global scope: Definition 5 literally, every pattern of the
whole program whose frozen program is defined at x and equals f(x) there (exponential: small programs).

Each membership is proved by exact equality, refuted by a decided nonzero difference, or left UNDECIDED
after precision escalation; an UNDECIDED equation or pattern is reported, never guessed.
"""
import dataclasses
import itertools
import math
from dataclasses import dataclass, field

from ..program import kinks
from ..interpret.ad import jacobian
from ..errors import DomainError, InputError, Undecided
from ..interpret.evaluate import coerce_point, compiled, forms_of_run, output_values, run
from ..interpret.precision import working_precision, certified_ladder
from ..interpret.forms import TooLarge
from ..frontends import as_program
from .. import progress
from ..numbers import get_system
from ..numbers.ball import json_number
from ..program.prims import affine
from .evidence import AtPoint

PATTERN_CAP = 4096
GLOBAL_CAP = 4096
PIECE_CAP = 100_000


def _output_forms(rp, r, xs, table, o):
    """(sign of f_sigma(x) - f(x) at output o by exact forms over atoms shared by the two runs, relation), or
    (None, None): the relation's terms name variables of the run of f_sigma, or with a third entry "x" of the
    run at x."""
    try:
        F = forms_of_run(rp, inputs=xs, table=table)
        G = forms_of_run(r, inputs=xs)
        a = rp.program.outputs[o]
        d = F.sub(F.of_atom(a), G.of_atom(a))
        s = F.sign(d)[0]
    except TooLarge:
        return None, None
    if s is None:
        return None, None
    const, terms = d.const, {}
    for atom, c in d.terms.items():
        env, var, scale, offset = F.source[atom]
        const += c * offset
        key = (var, "pattern" if env is (rp.full if rp.full is not None else rp.env) else "x")
        terms[key] = terms.get(key, 0) + c * scale
    return s, (const, tuple(sorted((k, c) for k, c in terms.items() if c != 0)))


@dataclass
class IndexSet:
    """``patterns``: the patterns proved in I(x) (piece indices per nonsmooth equation, capped);
    ``candidates``: per nonsmooth equation, the piece indices proved to agree (local scope);
    ``undecided``: what could not be decided (equations for local, patterns for global) with the reason;
    ``count``: the size of the proved set; ``capped``: True when ``patterns`` lists only the first ``cap``;
    ``at``: the decisions at x made by exact forms (evidence.AtPoint), ``outputs``: global scope, the
    differences f_sigma(x) - f(x) decided by exact forms ((pattern, output, sign, relation)): certificates
    carry both."""
    program: object
    point: list
    scope: str
    convention: str
    patterns: list
    count: int
    capped: bool
    candidates: list = None
    undecided: list = field(default_factory=list)
    chosen: tuple = None
    prec: int = None
    number: str = "exact"
    cap: int = PATTERN_CAP
    max_patterns: int = GLOBAL_CAP
    at: object = field(default=None, repr=False)
    outputs: list = field(default_factory=list, repr=False)

    @property
    def decided(self):
        return not self.undecided


def _piece_difference(ns, st, p, q, args):
    """p(args) - q(args) row by row, with the terms on one variable merged: exactly 0 when the two pieces
    agree as maps of the distinct variables (the split piece mean(v, v) of max(v, v) is v: a tie of a
    variable with itself is exact, also in balls)."""
    out = []
    for (tp, kp), (tq, kq) in zip(p.rows, q.rows):
        coef = {}
        for terms, w in ((tp, 1), (tq, -1)):
            for j, c in terms:
                a = st.ins[j]
                key = ("v", a) if a.__class__ is int else ("l", j)
                first, tot = coef.get(key, (j, 0))
                coef[key] = (first, tot + w * c)
        out.append(affine(ns, tuple((j, c) for j, c in coef.values() if c != 0), kp - kq, args))
    return out


def _local(program, xs, convention, ns, cap):
    r = run(program, ns, [ns.const(x) for x in xs], convention, inputs=xs)
    at = AtPoint(r, xs)
    cands, undecided = [], []
    for pos, st in enumerate(s for s in compiled(program, convention) if s.sel is not None):
        n = st.sel.n_pieces(st.params, len(st.ins))
        if n > PIECE_CAP:
            raise InputError(f"equation {st.k + 1} ({st.prim}) has {n} pieces, more than {PIECE_CAP}: "
                             "too many to enumerate")
        args, c = r.args[st.k], r.pattern[pos]
        ok, unknown = [], []
        for i in range(n):
            diffs = []
            for row, d in enumerate(_piece_difference(ns, st, st.piece(i), st.piece(c), args)):
                sg = ns.sign(d)
                if sg is None:          # exact forms decide ties that no ball can (issue 9)
                    sg = at.difference(pos, i, c, row)
                diffs.append(None if sg is None else int(sg != 0))
            if any(d == 1 for d in diffs):
                continue
            (unknown if None in diffs else ok).append(i)
        cands.append(ok)
        if unknown:
            undecided.append({"equation": st.k, "pieces": unknown,
                              "reason": f"cannot decide whether pieces {unknown} of equation {st.k + 1} agree "
                                        "with the primitive"})
    total = math.prod(len(c) for c in cands)
    pats = list(itertools.islice(itertools.product(*cands), cap))
    return r, cands, pats, total, undecided, at, []


def _global(program, xs, convention, ns, cap, limit):
    r = run(program, ns, [ns.const(x) for x in xs], convention, inputs=xs)
    fx = output_values(r)
    table = forms_of_run(r, inputs=xs).table        # atoms shared by the forms of every f_sigma at x
    sizes = [s.sel.n_pieces(s.params, len(s.ins)) for s in compiled(program, convention) if s.sel is not None]
    total = math.prod(sizes)
    if total > limit:
        raise InputError(f"the global index set would try {total} patterns, more than the limit {limit} "
                         "(max_patterns=; --max-patterns on the command line): use the local scope or raise it")
    found, undecided, decided = [], [], []
    for n_tried, pat in enumerate(itertools.product(*(range(k) for k in sizes))):
        progress.report("global index set: patterns tried", n_tried, total)
        try:
            rp = run(program, ns, [ns.const(x) for x in xs], convention, pattern=pat, inputs=xs)
        except DomainError:
            continue      # f_sigma is not defined at x: not in I(x)
        except Undecided as u:
            undecided.append({"pattern": list(pat), "reason": str(u)})
            continue
        diffs = []
        for o, (a, b) in enumerate(zip(output_values(rp), fx)):
            s = ns.sign(ns.sub(a, b))
            if s is None:
                s, rel = _output_forms(rp, r, xs, table, o)
                if s is not None:
                    decided.append((tuple(pat), o, s, rel))
            diffs.append(None if s is None else int(s != 0))
        if any(d == 1 for d in diffs):
            continue
        if None in diffs:
            undecided.append({"pattern": list(pat), "reason": "cannot decide whether f_sigma(x) = f(x)"})
        else:
            found.append(pat)
    return r, found[:cap], len(found), undecided, AtPoint(r, xs), decided


def index_set(program, point, scope="local", convention=kinks.DEFAULT, number="exact", prec=None, cap=PATTERN_CAP,
              max_patterns=GLOBAL_CAP):
    """I(x) for ``program`` at ``point`` (see IndexSet).  ``scope`` is "local" or "global"; ``cap`` bounds
    the patterns listed; ``max_patterns`` bounds the global enumeration (a clear InputError above it)."""
    program = as_program(program)
    if not program.is_scalar:
        from .sites import site_index_set
        if scope != "local":
            raise InputError("the global index set of a tensor program enumerates every pattern of every site: "
                             "use verify.scalarize(P) and the scalar program for small ones")
        return site_index_set(program, point, convention, number, prec, cap)
    kinks.check_convention(convention)
    for name, v in (("cap", cap), ("max_patterns", max_patterns)):
        if type(v) is not int or v < 1:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{name}={v!r} must be a positive integer ({flag} on the command line)")
    if scope not in ("local", "global"):
        raise InputError(f"scope {scope!r} must be 'local' or 'global'")
    if number not in ("exact", "ball"):
        raise InputError(f"index sets are certified in exact or ball arithmetic, not {number!r}")
    xs = coerce_point(program, point)
    ns = get_system(number)
    failure = None
    for p in certified_ladder(prec):
        try:
            with working_precision(ns, p):
                if scope == "local":
                    r, cands, pats, total, undecided, at, outs = _local(program, xs, convention, ns, cap)
                else:
                    r, pats, total, undecided, at, outs = _global(program, xs, convention, ns, cap, max_patterns)
                    cands = None
        except Undecided as u:      # the program's own index rule is undecided at x
            failure = u
            continue
        failure = None
        if not undecided:
            break
    if failure is not None:
        raise Undecided(f"{failure} (still undecided at {p} bits)", prec=p)
    return IndexSet(program, xs, scope, convention, [tuple(p) for p in pats], total, total > len(pats), cands,
                    undecided, r.pattern, p, number, cap, max_patterns, at, outs)


@dataclass
class Field:
    """The conservative field's generators: ``gradients`` (distinct Jacobians grad f_s(x), rows = outputs,
    for s in I(x), exact fmpq where possible, else arb balls), ``patterns_of`` (for each gradient the
    patterns giving it), and the IndexSet it came from.  D_f(x) is the convex hull of ``gradients``."""
    index: IndexSet
    gradients: list
    patterns_of: list
    exact: bool


def gradient_key(jac):
    """A hashable key of a Jacobian, as certificates print it: one key for one exact value (an fmpq and a ball
    of radius 0 holding it are one generator), a ball by its printed bounds."""
    def one(v):
        j = json_number(v)
        return j if isinstance(j, str) else (j["lo"], j["hi"])
    return tuple(tuple(one(v) for v in row) for row in jac)


def field_of(iset, patterns):
    """Distinct selection Jacobians over ``patterns`` (computed in the IndexSet's number system)."""
    program, convention = iset.program, iset.convention
    ns = get_system(iset.number)
    grads, where, keys = [], [], {}
    with working_precision(ns, iset.prec):
        base = run(program, ns, [ns.const(x) for x in iset.point], convention) if iset.scope == "local" else None
        for n_done, pat in enumerate(patterns):
            progress.report("field: gradients of patterns", n_done, len(patterns))
            if base is not None:
                # local scope: every pattern's pieces agree with the primitives at x, so every variable has
                # the same value under every pattern; only the linear parts differ
                r = dataclasses.replace(base, pattern=tuple(pat), forms=None)
            else:
                r = run(program, ns, [ns.const(x) for x in iset.point], convention, pattern=pat)
            jac = jacobian(r, "backward")
            k = gradient_key(jac)
            if k not in keys:
                keys[k] = len(grads)
                grads.append(jac)
                where.append([])
            where[keys[k]].append(tuple(pat))
    exact = all(ns.is_exact_value(v) for j in grads for row in j for v in row)
    return grads, where, exact


def conservative_field(program, point, scope="local", convention=kinks.DEFAULT, number="exact", prec=None,
                       cap=PATTERN_CAP, max_patterns=GLOBAL_CAP):
    """The generators of D_f(x) (see Field).  Raises Undecided when I(x) itself is undecided, InputError
    when I(x) has more than ``cap`` patterns (the field would be incomplete)."""
    iset = index_set(program, point, scope, convention, number, prec, cap, max_patterns)
    if not iset.program.is_scalar:
        from .sites import site_field
        return site_field(iset)
    if iset.undecided:
        raise Undecided("the index set is undecided: " + "; ".join(u["reason"] for u in iset.undecided),
                        prec=iset.prec)
    if iset.capped:
        raise InputError(f"I(x) has {iset.count} patterns, more than the cap {cap}: the field would be "
                         "incomplete (raise the cap: cap=, --cap on the command line)")
    grads, where, exact = field_of(iset, iset.patterns)
    return Field(iset, grads, where, exact)
