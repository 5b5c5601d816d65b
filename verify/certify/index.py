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
from ..interpret.evaluate import (DEFAULT_PREC, PREC_CAP, _precision, coerce_point, compiled, forms_of_run,
                                  output_values, run)
from ..interpret.forms import TooLarge
from ..frontends import as_program
from ..numbers import get_system

PATTERN_CAP = 4096
GLOBAL_CAP = 4096
PIECE_CAP = 100_000


def precisions(prec=None, cap=PREC_CAP):
    """128, 256, ... up to cap (or from ``prec``, a power of two from 64 to 4096, so that certificates
    state one of a few precisions)."""
    if prec is not None and prec not in (64, 128, 256, 512, 1024, 2048, 4096):
        raise InputError(f"prec={prec!r}: certifiers work at a power of two from 64 to 4096 bits")
    p = prec or DEFAULT_PREC
    while True:
        yield p
        if p >= cap:
            return
        p = min(2 * p, cap)


def _differ(ns, a, b, forms=None):
    """1 when a != b is decided, 0 when a == b is decided, None when undecided.  ``forms``: a function
    returning (Forms, form of a, form of b), called only when the values do not decide (exact forms decide
    ties that hold by a linear identity, which no ball can)."""
    s = ns.sign(ns.sub(a, b))
    if s is None and forms is not None:
        try:
            F, fa, fb = forms()
            s = F.sign(F.sub(fa, fb))[0]
        except TooLarge:
            s = None
    return None if s is None else int(s != 0)


@dataclass
class IndexSet:
    """``patterns``: the patterns proved in I(x) (piece indices per nonsmooth equation, capped);
    ``candidates``: per nonsmooth equation, the piece indices proved to agree (local scope);
    ``undecided``: what could not be decided (equations for local, patterns for global) with the reason;
    ``count``: the size of the proved set; ``capped``: True when ``patterns`` lists only the first ``cap``."""
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

    @property
    def decided(self):
        return not self.undecided


def _local(program, xs, convention, ns, cap):
    r = run(program, ns, [ns.const(x) for x in xs], convention, inputs=xs)
    cands, undecided = [], []

    def forms(st, i, row):
        F = forms_of_run(r, inputs=xs)
        terms, const = st.piece(i).rows[row]
        return F, F.affine(st.ins, terms, const), F.of_var(st.outs[row])
    for st in (s for s in compiled(program, convention) if s.sel is not None):
        n = st.sel.n_pieces(st.params, len(st.ins))
        if n > PIECE_CAP:
            raise InputError(f"equation {st.k + 1} ({st.prim}) has {n} pieces, more than {PIECE_CAP}: "
                             "too many to enumerate")
        args, val = r.args[st.k], [r.env[o] for o in st.outs]
        ok, unknown = [], []
        for i in range(n):
            diffs = [_differ(ns, a, b, lambda st=st, i=i, row=row: forms(st, i, row))
                     for row, (a, b) in enumerate(zip(st.piece(i).apply(ns, args), val))]
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
    return r, cands, pats, total, undecided


def _global(program, xs, convention, ns, cap, limit):
    r = run(program, ns, [ns.const(x) for x in xs], convention, inputs=xs)
    fx = output_values(r)
    table = forms_of_run(r, inputs=xs).table        # atoms shared by the forms of every f_sigma at x
    out_forms = {}

    def forms(rp, o):
        F = forms_of_run(rp, inputs=xs, table=table)
        a = rp.program.outputs[o]
        if "f" not in out_forms:
            out_forms["f"] = forms_of_run(r, inputs=xs)
        return F, F.of_atom(a), out_forms["f"].of_atom(a)
    sizes = [s.sel.n_pieces(s.params, len(s.ins)) for s in compiled(program, convention) if s.sel is not None]
    total = math.prod(sizes)
    if total > limit:
        raise InputError(f"the global index set would try {total} patterns, more than the limit {limit}: "
                         "use the local scope, or raise max_patterns")
    found, undecided = [], []
    for pat in itertools.product(*(range(k) for k in sizes)):
        try:
            rp = run(program, ns, [ns.const(x) for x in xs], convention, pattern=pat, inputs=xs)
        except DomainError:
            continue      # f_sigma is not defined at x: not in I(x)
        except Undecided as u:
            undecided.append({"pattern": list(pat), "reason": str(u)})
            continue
        diffs = [_differ(ns, a, b, lambda rp=rp, o=o: forms(rp, o))
                 for o, (a, b) in enumerate(zip(output_values(rp), fx))]
        if any(d == 1 for d in diffs):
            continue
        if None in diffs:
            undecided.append({"pattern": list(pat), "reason": "cannot decide whether f_sigma(x) = f(x)"})
        else:
            found.append(pat)
    return r, found[:cap], len(found), undecided


def index_set(program, point, scope="local", convention=kinks.DEFAULT, number="exact", prec=None, cap=PATTERN_CAP,
              max_patterns=GLOBAL_CAP):
    """I(x) for ``program`` at ``point`` (see IndexSet).  ``scope`` is "local" or "global"; ``cap`` bounds
    the patterns listed; ``max_patterns`` bounds the global enumeration (a clear InputError above it)."""
    program = as_program(program)
    kinks.check_convention(convention)
    if scope not in ("local", "global"):
        raise InputError(f"scope {scope!r} must be 'local' or 'global'")
    if number not in ("exact", "ball"):
        raise InputError(f"index sets are certified in exact or ball arithmetic, not {number!r}")
    xs = coerce_point(program, point)
    ns = get_system(number)
    failure = None
    for p in precisions(prec):
        try:
            with _precision(ns, p):
                if scope == "local":
                    r, cands, pats, total, undecided = _local(program, xs, convention, ns, cap)
                else:
                    r, pats, total, undecided = _global(program, xs, convention, ns, cap, max_patterns)
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
                    undecided, r.pattern, p, number)


@dataclass
class Field:
    """The conservative field's generators: ``gradients`` (distinct Jacobians grad f_s(x), rows = outputs,
    for s in I(x), exact fmpq where possible, else arb balls), ``patterns_of`` (for each gradient the
    patterns giving it), and the IndexSet it came from.  D_f(x) is the convex hull of ``gradients``."""
    index: IndexSet
    gradients: list
    patterns_of: list
    exact: bool


def _key(jac):
    return tuple(tuple(str(v) for v in row) for row in jac)


def field_of(iset, patterns):
    """Distinct selection Jacobians over ``patterns`` (computed in the IndexSet's number system)."""
    program, convention = iset.program, iset.convention
    ns = get_system(iset.number)
    grads, where, keys = [], [], {}
    with _precision(ns, iset.prec):
        base = run(program, ns, [ns.const(x) for x in iset.point], convention) if iset.scope == "local" else None
        for pat in patterns:
            if base is not None:
                # local scope: every pattern's pieces agree with the primitives at x, so every variable has
                # the same value under every pattern; only the linear parts differ
                r = dataclasses.replace(base, pattern=tuple(pat), forms=None)
            else:
                r = run(program, ns, [ns.const(x) for x in iset.point], convention, pattern=pat)
            jac = jacobian(r, "backward")
            k = _key(jac)
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
    if iset.undecided:
        raise Undecided("the index set is undecided: " + "; ".join(u["reason"] for u in iset.undecided),
                        prec=iset.prec)
    if iset.capped:
        raise InputError(f"I(x) has {iset.count} patterns, more than the cap {cap}: the field would be "
                         "incomplete (raise cap)")
    grads, where, exact = field_of(iset, iset.patterns)
    return Field(iset, grads, where, exact)
