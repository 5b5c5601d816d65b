"""What every check shares (index.py, segment.py): the certified program and point, the piece table,
numbers (exact strings and enclosures), precision, and the comparison of what a certificate states with what
the checker derives from its evidence.

The rule throughout: the checker derives the result and the verdict itself, from the claim, the program and
the evidence, and the certificate must state exactly that (``same``).  The evidence holds witnesses the
checker verifies but cannot find on its own without search (directions, separators, convex weights, Gordan
certificates, cells with proofs of their signs) and nothing it does not check.
"""
from fractions import Fraction

from flint import arb, ctx, fmpq

from ..errors import InputError
from . import Invalid
from . import kernel as K

PREC_CAP = 4096
WIDE, NARROW = 2 ** 8, 2 ** 16       # a stated enclosure is within these factors of the checker's own width


# ------------------------------------------------------------------------------------- program, point

def program(cert, base=None):
    """The certified program.  Its text must be canonical and be the source with the claimed convention
    resolved (so the convention, too, is checked).  A tensor program's arrays file is read from the folder
    ``base`` (the certificate's), with its content digest checked."""
    from ..frontends.text import parse
    from ..program.ir import to_text
    from ..program.kinks import CONVENTIONS
    prog = cert["program"]
    if "\n" not in prog["source"]:
        raise Invalid("program.source must be program text, not a path")
    try:
        S = parse(prog["source"], fn=prog["fn"], base=base)
    except InputError as e:         # only what bad text raises: a time budget running out is not "invalid"
        raise Invalid(f"the program source does not parse: {e}") from None
    if to_text(S) != prog["source"] or S.name != prog["fn"]:
        raise Invalid("the program source is not in canonical form")
    no_rule = sorted({e.prim for e in S.eqns} & set(K.NO_RULE))
    if no_rule:
        raise Invalid(f"the checker has no rule of its own for {', '.join(no_rule)}: a certificate of a program that "
                      "uses it cannot be checked")
    conv = cert["claim"]["convention"]
    if conv not in CONVENTIONS:
        raise Invalid(f"unknown convention {conv!r}")
    P = resolve(S, conv)
    if to_text(P) != prog["text"]:              # one parse: the text must print exactly as the resolved source
        raise Invalid(f"the program text is not the source with the {conv} convention resolved")
    return P


def resolve(S, conv):
    """S with every kink param written out as the convention ``conv`` resolves it."""
    from ..program.ir import Eqn, Program
    from ..program.kinks import resolve as resolve_params
    from ..program.prims import PRIMITIVES
    eqns = tuple(Eqn(e.prim, e.ins, tuple(sorted((k, v) for k, v in resolve_params(e, conv).items()
                                                 if k in PRIMITIVES[e.prim].params)), e.outs) for e in S.eqns)
    return Program(S.name, S.names, S.n_inputs, eqns, S.outputs, S.input_shapes, S.arrays)


def exact(s):
    return K.q(s)


def exact_vector(v, n, what):
    out = [K.q(s) for s in v]
    if len(out) != n:
        raise Invalid(f"{what} has {len(out)} coordinate(s), the program takes {n} input(s)")
    return out


def point(cert, P, key="point"):
    return exact_vector(cert["claim"][key], P.n_inputs, f"claim.{key}")


def live_equations(P):
    """Indices of the equations whose outputs reach an output of P (the others cannot change f)."""
    need = {a for a in P.outputs if isinstance(a, int)}
    live = set()
    for k in reversed(range(len(P.eqns))):
        e = P.eqns[k]
        if any(o in need for o in e.outs):
            live.add(k)
            need.update(a for a in e.ins if isinstance(a, int))
    return live


# ---------------------------------------------------------------------------------------- piece table

class PieceTable:
    """evidence.pieces: for every nonsmooth equation, piece index -> affine rows.  Every listed piece must be
    one of the primitive's own pieces (the kernel's), listed once; ``index_of`` maps a piece the checker
    derives back to the certificate's index, and ``check_used`` rejects entries nothing refers to."""

    def __init__(self, ev, P):
        table = ev["pieces"]
        eqs = K.nonsmooth_eqns(P)
        if len(table) != len(eqs):
            raise Invalid(f"evidence.pieces has {len(table)} table(s) for {len(eqs)} nonsmooth equation(s)")
        self.eqs, self.by_index, self.by_piece, self.used = eqs, [], [], set()
        for m, (e, t) in enumerate(zip(eqs, table)):
            own = K.pieces(e.prim, dict(e.params), len(e.ins))
            got, back = {}, {}
            for i, rows in t.items():
                p = K.piece_from_json(rows)
                if p not in own:
                    raise Invalid(f"piece {i} of nonsmooth equation {m + 1} ({e.prim}) is not one of its pieces")
                if p in back:
                    raise Invalid(f"nonsmooth equation {m + 1} lists the same piece as {back[p]} and {i}")
                got[int(i)], back[p] = p, int(i)
            self.by_index.append(got)
            self.by_piece.append(back)

    def __len__(self):
        return len(self.by_index)

    def piece(self, m, i):
        p = self.by_index[m].get(i)
        if p is None:
            raise Invalid(f"piece index {i!r} of nonsmooth equation {m + 1} is not in the piece table")
        self.used.add((m, i))
        return p

    def pattern(self, pat, what):
        """The pieces of a stated pattern (a list of indices, one per nonsmooth equation)."""
        if len(pat) != len(self.by_index):
            raise Invalid(f"{what}: the pattern has {len(pat)} entries for {len(self.by_index)} nonsmooth equations")
        return tuple(self.piece(m, i) for m, i in enumerate(pat))

    def index_of(self, m, piece, what):
        i = self.by_piece[m].get(piece)
        if i is None:
            raise Invalid(f"{what}: the piece the checker derives at nonsmooth equation {m + 1} is not in the "
                          "piece table")
        self.used.add((m, i))
        return i

    def indices(self, pieces, what):
        return [self.index_of(m, p, what) for m, p in enumerate(pieces)]

    def check_used(self):
        for m, t in enumerate(self.by_index):
            for i in t:
                if (m, i) not in self.used:
                    raise Invalid(f"piece {i} of nonsmooth equation {m + 1} is listed but nothing uses it")


# ------------------------------------------------------------------------------ comparing with own

def first_difference(a, b, path=()):
    """The path of the first place where the JSON values a and b differ (None when equal; True is not 1)."""
    if type(a) is not type(b):
        return path
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return path + (k,)
            d = first_difference(a[k], b[k], path + (k,))
            if d is not None:
                return d
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, path + (i,))
            if d is not None:
                return d
        return None if len(a) == len(b) else path + (min(len(a), len(b)),)
    return None if a == b else path


def same(stated, own, what):
    """The stated JSON must be exactly what the checker derives; else Invalid naming the first difference."""
    d = first_difference(stated, own)
    if d is None:
        return

    def at(o):
        for k in d:
            try:
                o = o[k]
            except (KeyError, IndexError, TypeError):
                return "(nothing)"
        return repr(o)[:120]
    where = "/".join([what] + [str(k) for k in d])
    raise Invalid(f"{where} is {at(stated)}, the checker derives {at(own)}")


# --------------------------------------------------------------------------------------------- precision

def ladder(start=128, cap=PREC_CAP):
    """The checker's own precision ladder (kept apart from the certifiers' on purpose): start, 2 start, ... up
    to ``cap``.  PRECS, the precisions a certificate may state, are its rungs from 64."""
    p = start
    while True:
        yield p
        if p >= cap:
            return
        p = min(2 * p, cap)


PRECS = tuple(ladder(64))


class Undecidable(Invalid):
    """A Clarke walk meets a tie it cannot decide (higher-order terms, dependent gradients): fine for an
    UNDECIDED Clarke part, a reason to reject a certificate that claims a decision."""


def artificial(sel, cl):
    """An artificial critical point: selection-critical and not Clarke-critical, in three-valued logic (None:
    undecided): False as soon as one side rules it out, whatever the other."""
    if sel is False or cl is True:
        return False
    return None if sel is None or cl is None else True


def confirm_undecided(attempt):
    """An UNDECIDED Clarke part: ``attempt()`` (the checker's own walk, on every branch) must meet an
    undecidable tie, or signs it cannot decide at the precision cap; else Invalid."""
    for p in ladder():
        with ctx.workprec(p):
            try:
                attempt()
            except Undecidable:
                return
            except K.CannotDecide:
                if p >= PREC_CAP:
                    return
                continue
        raise Invalid("the checker decides the Clarke subdifferential: the certificate must not say undecided")


def decided(body, start=128):
    """Run ``body(p)`` inside ctx.workprec(p) for p = start, 2 start, ... 4096 until it does not raise
    CannotDecide (the checker's own decisions of signs may need more precision than the certifier's did:
    more precision never makes a decided sign wrong); re-raise at the cap."""
    for p in ladder(start):
        try:
            with ctx.workprec(p):
                return body(p)
        except K.CannotDecide:
            if p >= PREC_CAP:
                raise


def prec_null(cert, why):
    if cert["prec"] is not None:
        raise Invalid(f"prec must be null: {why}")


def prec_of_balls(cert, has_balls):
    """critical / differentiable: prec is null exactly when no number of the result is a ball, else one of
    PRECS (the precision at which the checker recomputes every ball)."""
    p = cert["prec"]
    if not has_balls:
        prec_null(cert, "every number of the result is exact")
        return None
    if p not in PRECS:
        raise Invalid(f"prec {p!r} must be the precision of the result's balls, one of {PRECS}")
    return p


# ------------------------------------------------------------------------------------------- numbers

arf_q = K.arf_q


def own_bounds(x):
    """Exact rational (lo, hi) of a value of the checker (fmpq or finite arb)."""
    if isinstance(x, fmpq):
        return x, x
    if not x.is_finite():
        raise K.CannotDecide("the checker's own enclosure is not finite")
    m, r = arf_q(x.mid()), arf_q(x.rad())
    return m - r, m + r


def fraction_q(s):
    try:
        f = Fraction(s)
    except (TypeError, ValueError, ZeroDivisionError):
        raise Invalid(f"{s!r} is not a number") from None
    return fmpq(f.numerator, f.denominator)


def stated_bounds(j):
    """(lo, hi) exact rationals of a JSON number ("p/q" or {"lo", "hi"}); lo > hi is Invalid."""
    if isinstance(j, str):
        x = K.q(j)
        return x, x
    lo, hi = fraction_q(j["lo"]), fraction_q(j["hi"])
    if lo > hi:
        raise Invalid(f"the enclosure {j!r} has lo > hi")
    return lo, hi


def exact_value(x):
    """An fmpq for an exact value of the checker (an fmpq, or an arb of radius 0), else None."""
    return K.exact_of(x)


def number_ok(stated, compute, prec):
    """Does the stated JSON number hold the value ``compute()`` computes (called inside ctx.workprec)?  An
    exact string must equal the checker's exact value.  An enclosure must contain the checker's own (at
    ``prec`` bits, or at 2 prec and 4 prec when the two computations round differently): then it holds the
    true value; and be as wide as an enclosure at ``prec`` bits: at most WIDE times the checker's width there
    (plus 2^-(prec-8) relative) and at least 1/NARROW of it, so a changed precision does not pass."""
    with ctx.workprec(prec):
        own = compute()
    q = exact_value(own)
    if isinstance(stated, str):
        return q is not None and K.q(stated) == q
    lo, hi = stated_bounds(stated)
    olo, ohi = own_bounds(own)
    width = 2 * arf_q(own.rad()) if q is None else fmpq(0)
    mid = abs(olo + ohi) / 2
    if hi - lo > WIDE * width + (1 + mid) / fmpq(2) ** (prec - 8) or (width > 0 and (hi - lo) * NARROW < width):
        return False
    for p in ladder(prec, 4 * prec):
        if p > prec:
            with ctx.workprec(p):
                olo, ohi = own_bounds(compute())
        if lo <= olo and ohi <= hi:
            return True
    return False


def contains(stated, own, what, max_width=None):
    """The stated JSON number holds the true value: an exact string equals the checker's exact value; an
    enclosure contains the checker's own (and is at most ``max_width`` wide)."""
    if isinstance(stated, str):
        q = exact_value(own) if not isinstance(own, fmpq) else own
        if q is None or K.q(stated) != q:
            raise Invalid(f"{what}: the stated exact value {stated} is not the checker's ({own})")
        return
    lo, hi = stated_bounds(stated)
    olo, ohi = own_bounds(own)
    if not (lo <= olo and ohi <= hi):
        raise Invalid(f"{what}: the stated enclosure does not contain the checker's")
    if max_width is not None and hi - lo > max_width:
        raise Invalid(f"{what}: the stated enclosure is wider than the tolerance allows")


def ball_of(lo, hi):
    return arb(lo) if lo == hi else arb(lo).union(arb(hi))
