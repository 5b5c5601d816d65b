"""The checker's own exact affine forms: what is known exactly about a value beside its enclosure.

A form is ``const + sum c_i * atom_i`` with rational ``const`` and ``c_i``.  Atoms are the inputs (symbolic
forms: identities of functions on a region of fixed pieces) and the results of operations that are not
affine in their operands; an atom is identified by its operation and the exact forms of its operands, up to
a rational factor, so the same expression computed twice is the same atom:

- ``a * b``: both operands scaled to a first coefficient 1 (the factors multiply the atom), ``u * u`` is
  ``u ** 2``, operands in either order;
- ``a / b``: the same scaling, ``a / (c a)`` is ``1 / c``;
- ``f(u)`` for f in exp, log, sqrt, sin, cos, tanh, sigmoid, erf: ``f(-u)`` is ``-f(u)`` (sin, tanh, erf),
  ``f(u)`` (cos) and ``1 - f(u)`` (sigmoid); exactly known values at 0 (and log 1, sqrt of a square).

At a point (``symbolic=False``) every value the checker knows exactly (a rational, a ball of radius 0) is a
constant.  Nothing here reads a rounded value as exact.  A certificate states a sign decided this way as an
exact affine combination of program variables (``relation``): the checker requires its own form of the
switching function minus that combination to be exactly 0, then reads the sign from the constant, or from
an enclosure of the combination computed with its own values.
"""
from flint import fmpq, fmpz

from . import Invalid
from . import kernel as K

Q0, Q1 = fmpq(0), fmpq(1)
BUDGET = 4_000_000
ODD, EVEN = ("sin", "tanh", "erf"), ("cos",)
SPECIAL = {("exp", 0): Q1, ("log", 1): Q0, ("sin", 0): Q0, ("cos", 0): Q1, ("tanh", 0): Q0,
           ("sigmoid", 0): fmpq(1, 2), ("erf", 0): Q0}


class Form:
    """``const`` (fmpq) and ``terms`` ({atom id: nonzero fmpq})."""
    __slots__ = ("const", "terms")

    def __init__(self, const, terms):
        self.const, self.terms = const, terms

    def key(self):
        return (self.const, tuple(sorted(self.terms.items())))

    def is_zero(self):
        return not self.terms and self.const == 0


def _square_root(q):
    p, d = fmpz(q.p), fmpz(q.q)
    if p < 0 or p.isqrt() ** 2 != p or d.isqrt() ** 2 != d:
        return None
    return fmpq(p.isqrt(), d.isqrt())


class Forms:
    """Forms of the variables of one evaluation of ``P``: ``val`` its values (read for exactly known values at a
    point), ``pieces`` the pieces chosen at its nonsmooth equations so far (a list the walk extends); ``ids``:
    the atom numbering, shared with other evaluations at the same inputs; ``along``: symbolic forms along a
    curve, per input (c0, c1) when it is c0 + c1 t there (one atom t for all of them), None for an atom of its
    own."""

    def __init__(self, P, val, pieces, symbolic, ids=None, along=None):
        self.P, self.val, self.pieces, self.symbolic = P, val, pieces, symbolic
        self.along = along if symbolic else None      # per input (c0, c1): it is c0 + c1 t along the curve
        self.ids = {} if ids is None else ids         # shared by evaluations whose atoms are the same numbers
        self.memo, self.budget = {}, BUDGET
        self.eqn_of, self.pos_of = {}, {}
        m = 0
        for k, e in enumerate(P.eqns):
            for o in e.outs:
                self.eqn_of[o] = k
            if e.prim not in K.SMOOTH:
                self.pos_of[k] = m
                m += 1

    # -- combinations
    def _spend(self, n):
        self.budget -= n
        if self.budget < 0:
            raise K.CannotDecide("the exact forms are too large for the checker")

    def lin(self, pairs, c0=Q0):
        """sum c * F for (c, F) in pairs, plus c0."""
        terms, c = {}, fmpq(c0)
        for coef, F in pairs:
            if coef == 0:
                continue
            c += coef * F.const
            self._spend(len(F.terms) + 1)
            for a, v in F.terms.items():
                w = terms.get(a, Q0) + coef * v
                if w == 0:
                    terms.pop(a, None)
                else:
                    terms[a] = w
        return Form(c, terms)

    def atom(self, key):
        return Form(Q0, {self.ids.setdefault(key, len(self.ids)): Q1})

    def _split(self, F):
        """(s, G) with F = s * G and G's first coefficient (by atom id) 1."""
        s = F.terms[min(F.terms)]
        return s, (F if s == 1 else self.lin(((1 / s, F),)))

    # -- forms of variables
    def of(self, a):
        """The form of an equation input (a variable or a literal)."""
        if not isinstance(a, int):
            return Form(fmpq(a.value), {})
        F = self.memo.get(a)
        if F is None:
            order, stack = [], [a]
            while stack:                          # post-order without recursion: programs can be deep
                u = stack.pop()
                if u in self.memo:
                    continue
                if u < 0:
                    order.append(-u - 1)
                    continue
                stack.append(-u - 1)
                k = self.eqn_of.get(u)
                if k is not None and self._known(u) is None:
                    stack.extend(b for b in self.P.eqns[k].ins if isinstance(b, int) and b not in self.memo)
            for u in order:
                if u not in self.memo:
                    self.memo[u] = self._compute(u)
            F = self.memo[a]
        return F

    def _known(self, u):
        if self.symbolic:
            return None
        v = self.val[u]
        return None if v is None else K.exact_of(v)

    def _compute(self, u):
        q = self._known(u)
        if q is not None:
            return Form(q, {})
        k = self.eqn_of.get(u)
        if k is None:
            line = None if self.along is None else self.along[u]
            if line is None:
                return self.atom(("in", u))
            return self.lin(((line[1], self.atom(("t",))),), line[0])
        e = self.P.eqns[k]
        ins = [self.of(b) for b in e.ins]
        if e.prim not in K.SMOOTH:
            pos = self.pos_of[k]
            if pos >= len(self.pieces):
                raise Invalid("an exact form refers to a variable the walk has not reached")
            coefs, c0 = self.pieces[pos][e.outs.index(u)]
            return self.lin(zip(coefs, ins), c0)
        return self._smooth(e.prim, dict(e.params), ins, u)

    def _smooth(self, prim, params, ins, u):
        if prim in ("add", "sub"):
            return self.lin(((Q1, ins[0]), (Q1 if prim == "add" else -Q1, ins[1])))
        if prim == "neg":
            return self.lin(((-Q1, ins[0]),))
        if prim == "mul":
            return self._mul(*ins)
        if prim == "div":
            return self._div(*ins, u)
        if prim == "pow":
            return self._pow(ins[0], params["n"])
        return self._transcendental(prim, ins[0])

    def _mul(self, A, B):
        if not A.terms:
            return self.lin(((A.const, B),))
        if not B.terms:
            return self.lin(((B.const, A),))
        (sa, ga), (sb, gb) = self._split(A), self._split(B)
        ka, kb = ga.key(), gb.key()
        key = ("pow", 2, ka) if ka == kb else ("mul",) + tuple(sorted((ka, kb)))
        return self.lin(((sa * sb, self.atom(key)),))

    def _div(self, A, B, u):
        if not B.terms:
            if B.const == 0:
                return self.atom(("opaque", u))
            return self.lin(((1 / B.const, A),))
        if not A.terms and A.const == 0:
            return Form(Q0, {})
        sb, gb = self._split(B)
        if not A.terms:
            sa, ka = A.const, Form(Q1, {}).key()
        else:
            sa, ga = self._split(A)
            ka = ga.key()
            if ka == gb.key():
                return Form(sa / sb, {})
        return self.lin(((sa / sb, self.atom(("div", ka, gb.key()))),))

    def _pow(self, A, n):
        if n == 0:
            return Form(Q1, {})
        if n == 1:
            return A
        if not A.terms:
            if abs(n) <= 64 and (n > 0 or A.const != 0):
                return Form(A.const ** n, {})
            return self.atom(("pow", n, A.key()))
        s, g = self._split(A)
        return self.lin(((s ** n, self.atom(("pow", n, g.key()))),))

    def _transcendental(self, prim, A):
        if not A.terms:
            for (p, at), v in SPECIAL.items():
                if p == prim and A.const == at:
                    return Form(v, {})
            if prim == "sqrt" and A.const > 0 and _square_root(A.const) is not None:
                return Form(_square_root(A.const), {})
        flip = (A.const < 0) if not A.terms else (A.terms[min(A.terms)] < 0)
        if flip and prim in ODD + EVEN + ("sigmoid",):
            g = self.atom((prim, self.lin(((-Q1, A),)).key()))
            if prim in EVEN:
                return g
            if prim in ODD:
                return self.lin(((-Q1, g),))
            return self.lin(((-Q1, g),), Q1)
        return self.atom((prim, A.key()))

    def output(self, i):
        a = self.P.outputs[i]
        return self.of(a)

    # -- what certificates state
    def affine(self, e, coefs, const):
        """The form of sum coefs[j] * e.ins[j] + const (a switching function or a piece of equation e)."""
        return self.lin(((c, self.of(a)) for c, a in zip(coefs, e.ins) if c != 0), const)

    def relation(self, rel, before):
        """The form of a stated relation {"const", "terms": [[var, coef]]}: its variables must be defined before
        the variable ``before`` (computed by the walk when the relation is used)."""
        pairs, seen = [], set()
        for var, c in rel["terms"]:
            if not isinstance(var, int) or not 0 <= var < before or var in seen:
                raise Invalid(f"a stated form names variable {var!r}, which is not an earlier variable (once)")
            seen.add(var)
            q = K.q(c)
            if q == 0:
                raise Invalid("a stated form has a zero coefficient")
            pairs.append((q, self.of(var)))
        return self.lin(pairs, K.q(rel["const"]))


def first_out(P, k):
    """The first variable defined by equation k (every variable before it is defined earlier)."""
    return P.eqns[k].outs[0]
