"""Exact affine forms beside the values: what a run knows *exactly* about each value (issue 9).

Balls lose identity: for one arb ``a``, ``a - a`` is a ball around 0 at every precision, so a switching
function such as ``tanh(t) - tanh(t)`` can never be decided by enclosures.  A ``Form`` is an exact affine
combination ``sum c_i * atom_i + const`` with fmpq coefficients over *atoms*: the program's inputs and the
results of nonlinear equations.  A nonlinear equation applied to the same canonical operands is the same atom
(``tanh(a)`` computed twice, ``sin(t)`` twice, ``x * y`` and ``y * x``, ``u * u`` and ``u ** 2``), with the
exact symmetries of the primitive folded in (``tanh(-u) = -tanh(u)``, ``cos(-u) = cos(u)``,
``sigmoid(-u) = 1 - sigmoid(u)``, constants pulled out of products and quotients).  A value that is exactly
known (an fmpq, or a ball of radius 0) is a constant.

Soundness: every form is an identity of real numbers that holds for the pieces the run chose (a piece equals
its primitive at the actual inputs, so a variable's value is exactly the piece's affine map of its inputs);
coefficients are fmpq and never a float or a ball; two atoms are merged only when their keys (primitive,
exact params and exact operand forms) are equal.  A form that needs nonlinear algebra (``log(exp(t)) - t``)
keeps its atoms, and is never claimed zero.

Forms are computed lazily, only when a sign is undecided in balls: they depend only on the program's structure
and the pieces already chosen, so a run with no undecided sign pays nothing.  ``Forms.sign`` decides a form
exactly when it is constant, else from an enclosure of ``sum c_i * value(atom_i) + const`` computed in the
run's number system (tighter than the run's own value: the dependency on repeated atoms is gone).

Two ways to compute them, cheap first:

- ``quick``: a reverse sweep from the switching function down its *linear* cone (sums, scalings, pieces),
  latest variable first so that every variable is substituted once with its total coefficient (that is where
  u - u cancels); every nonlinear result it reaches is an atom, and two such atoms are merged when they are
  the same expression (same primitive, params and chosen piece, operands the same variables or, recursively,
  the same expressions): the same subexpression computed twice.  Its cost is the size of the linear cone
  plus the part where two compared expressions differ, without storing a form per variable.
- ``of_var`` (full forms): forms of every variable of the cone, memoised, nonlinear atoms keyed by the exact
  forms of their operands, so tanh(u + 0) and tanh(u) or exp(2 x) and exp(x + x) are the same atom.  A form
  with more than MAX_TERMS terms is replaced by its value-number atom (a running sum over a whole program
  would otherwise cost quadratic time): an identity that cancels inside such a sum is missed, never claimed.
"""
from flint import arb, fmpq

from ..numbers.ball import arb_exact_q

Q0, Q1 = fmpq(0), fmpq(1)
BUDGET = 2_000_000            # terms created per Forms object before giving up (the answer is then "undecided")
MAX_TERMS = 48                # a larger full form is replaced by its variable's value-number atom
QUICK_BUDGET = 200_000        # substitutions per quick sweep
_ODD = ("sin", "tanh", "erf", "atan")
_EVEN = ("cos",)


class TooLarge(Exception):
    """The forms would exceed the budget: no exact answer (never a wrong one)."""


def _qk(q):
    return (int(q.p), int(q.q))


class Form:
    """``terms``: {atom id: nonzero fmpq}; ``const``: fmpq.  Immutable by convention."""
    __slots__ = ("terms", "const", "_key")

    def __init__(self, terms, const):
        self.terms, self.const, self._key = terms, const, None

    def key(self):
        """A canonical hashable key: equal keys mean equal forms."""
        if self._key is None:
            self._key = (_qk(self.const), tuple(sorted((a, _qk(c)) for a, c in self.terms.items())))
        return self._key

    @property
    def is_const(self):
        return not self.terms

    def __repr__(self):
        parts = [f"{c}*a{a}" for a, c in sorted(self.terms.items())]
        return "Form(" + " + ".join(parts + [str(self.const)]) + ")"


ZERO = Form({}, Q0)


def const(q):
    return Form({}, q)


def exact_value(v):
    """The exact rational value of ``v`` when it is known exactly (fmpq, or a finite arb of radius 0 with a
    moderate exponent), else None."""
    if v.__class__ is fmpq:
        return v
    if v.__class__ is arb and v.is_exact() and v.is_finite():
        e = int(v.mid().man_exp()[1])
        if abs(e) <= 4096:
            return arb_exact_q(v)
    return None


def sign_q(q):
    return (q > 0) - (q < 0)


class Forms:
    """Forms of the variables of one run (memoised).  ``steps``: the compiled steps; ``env``: the run's value
    list (read for exactly known values and to enclose atoms); ``chosen``: the piece index chosen at each
    nonsmooth equation so far (by position); ``def_step``: the step defining each variable (-1 for inputs).

    ``inputs`` (the exact point, fmpq): the inputs are constants, so every value computed rationally from them
    is a constant too (a tie at a rational point is exact).  ``symbolic=True``: inputs are atoms and no value
    is read as a constant, so a form is an identity of functions of the inputs on the region where the chosen
    pieces hold (what "identically zero near x" needs), not only of the values at this point."""

    def __init__(self, program, steps, ns, env, chosen, def_step, inputs=None, symbolic=False, table=None,
                 budget=BUDGET, along=None):
        self.program, self.steps, self.ns, self.env, self.chosen = program, steps, ns, env, chosen
        self.along = along if symbolic else None      # see _input
        self.def_step = def_step
        self.inputs = None if symbolic else inputs
        self.symbolic = symbolic
        self.memo = {}
        # shared by the Forms of runs of one program at one point (their atoms are the same real numbers):
        # key -> atom id, atom id -> (env, var, scale, offset) with value(atom) = scale * env[var] + offset,
        # and the value-number interning (a value number must mean one expression in every run sharing it)
        self.atoms, self.source, self._vn_ids = table if table is not None else ({}, [], {})
        self.table = (self.atoms, self.source, self._vn_ids)
        self.budget = budget
        self._pos = None
        self._vn, self._same = {}, {}

    # -- building blocks
    def _spend(self, n):
        self.budget -= n
        if self.budget < 0:
            raise TooLarge("the exact forms of this run are too large")

    def _lin(self, pairs, c0):
        """sum(c * F for c, F in pairs) + c0."""
        terms, c = {}, c0
        for coef, F in pairs:
            if coef == 0:
                continue
            c += coef * F.const
            self._spend(len(F.terms))
            for a, v in F.terms.items():
                w = terms.get(a, Q0) + coef * v
                if w == 0:
                    terms.pop(a, None)
                else:
                    terms[a] = w
        return Form(terms, c)

    def _scale(self, F, s):
        return self._lin(((s, F),), Q0)

    def _atom(self, key, var, scale, offset):
        """The atom id of ``key`` (new: its value is scale * env[var] + offset)."""
        a = self.atoms.get(key)
        if a is None:
            a = self.atoms[key] = len(self.source)
            self.source.append((self.env, var, scale, offset))
        return a

    @staticmethod
    def _lead(F):
        """The coefficient of F's first atom (F not constant)."""
        return F.terms[min(F.terms)]

    def _split(self, F):
        """F = s * G with G's first coefficient 1."""
        s = self._lead(F)
        return s, (F if s == 1 else self._scale(F, 1 / s))

    # -- forms of atoms and variables
    def of_atom(self, a):
        """The form of an atom of the program (an int variable or a Lit)."""
        if a.__class__ is int:
            return self.of_var(a)
        return const(a.value)

    def of_var(self, v):
        F = self.memo.get(v)
        if F is not None:
            return F
        # post-order over the variables not known yet (iterative: programs can be 10^5 equations deep)
        order, stack, seen = [], [v], set()
        while stack:
            u = stack[-1]
            if u in self.memo:
                stack.pop()
                continue
            if u in seen:
                stack.pop()
                order.append(u)
                continue
            seen.add(u)
            k = self.def_step[u]
            if k >= 0 and (self.symbolic or exact_value(self.env[u]) is None):
                for a in self.steps[k].ins:
                    if a.__class__ is int and a not in self.memo and a not in seen:
                        stack.append(a)
        for u in order:
            if u not in self.memo:
                F = self._compute(u)
                if len(F.terms) > MAX_TERMS:
                    F = Form({self._atom(("vn", self.vn(u)), u, Q1, Q0): Q1}, Q0)
                self.memo[u] = F
        return self.memo[v]

    # -- value numbers
    def _known(self, u):
        """The exact value of variable u when the run knows it (an input of the exact point, an exact value),
        else None; always None for symbolic forms."""
        if self.symbolic:
            return None
        if self.def_step[u] < 0 and self.inputs is not None:
            return self.inputs[u]
        return exact_value(self.env[u])

    def vn(self, v):
        """The value number of variable v: equal numbers mean the same expression of the inputs (with the same
        pieces), hence the same value."""
        out = self._vn.get(v)
        if out is not None:
            return out
        stack = [v]
        while stack:
            u = stack[-1]
            if u in self._vn:
                stack.pop()
                continue
            k = self.def_step[u]
            q = self._known(u)
            if q is not None:
                key = ("q", _qk(q))
            elif k < 0:
                key = ("in", u)
            else:
                st = self.steps[k]
                todo = [a for a in st.ins if a.__class__ is int and a not in self._vn]
                if todo:
                    stack.extend(todo)
                    continue
                ops = tuple(("q", _qk(a.value)) if a.__class__ is not int else self._vn[a] for a in st.ins)
                if st.prim in ("add", "mul"):
                    ops = tuple(sorted(ops, key=repr))
                piece = None
                if st.sel is not None:
                    piece = (self.chosen[self._positions()[k]], st.outs.index(u))
                params = tuple(sorted((n, repr(x)) for n, x in st.params.items()))
                key = (st.prim, params, piece, ops)
            stack.pop()
            self._vn[u] = self._vn_ids.setdefault(key, len(self._vn_ids))
        return self._vn[v]

    # -- the quick sweep
    def quick(self, ins, terms, c0):
        """The form of sum(c * ins[j]) + c0 by the reverse sweep over its linear cone (see the module
        docstring)."""
        import heapq
        coef, heap, c = {}, [], fmpq(c0)
        for j, cj in terms:
            a = ins[j]
            if a.__class__ is int:
                if a not in coef:
                    heapq.heappush(heap, -a)
                coef[a] = coef.get(a, Q0) + cj
            else:
                c += cj * a.value
        atoms = {}                  # atom variable -> coefficient
        budget = QUICK_BUDGET
        while heap:
            u = -heapq.heappop(heap)
            cu = coef.pop(u)
            if cu == 0:
                continue
            budget -= 1
            if budget < 0:
                raise TooLarge("the linear cone is too large for the quick sweep")
            q = self._known(u)
            if q is not None:
                c += cu * q
                continue
            lin = self._linear(u)
            if lin is None:
                atoms[u] = atoms.get(u, Q0) + cu
                continue
            pairs, k0 = lin
            c += cu * k0
            for cj, a in pairs:
                if a.__class__ is not int:
                    c += cu * cj * a.value
                    continue
                if a not in coef:
                    heapq.heappush(heap, -a)
                coef[a] = coef.get(a, Q0) + cu * cj
        # merge atoms that are the same expression
        groups = {}
        for u in atoms:
            groups.setdefault(self._shape(u), []).append(u)
        for members in groups.values():
            for i, u in enumerate(members):
                if atoms.get(u, Q0) == 0:
                    continue
                for v in members[i + 1:]:
                    if atoms.get(v, Q0) != 0 and self.same(u, v):
                        atoms[u] += atoms.pop(v)
        out = {}
        for u, x in atoms.items():
            if x != 0:
                out[self._atom(("var", id(self.env), u), u, Q1, Q0)] = x     # this run's variable u
        return Form(out, c)

    def _shape(self, u):
        k = self.def_step[u]
        if k < 0:
            return ("in", u)
        st = self.steps[k]
        return (st.prim, len(st.ins), st.outs.index(u))

    def same(self, u, v):
        """True when variables u and v are proved to be the same expression of the inputs (hence the same
        value); False means not proved."""
        memo = self._same
        todo = [(u, v)]
        pending = []                # pairs to confirm once every pair they need is confirmed
        while todo:
            a, b = todo.pop()
            if a == b or memo.get((a, b)):
                continue
            if (a, b) in memo:
                return False
            ka, kb = self.def_step[a], self.def_step[b]
            qa, qb = self._known(a), self._known(b)
            if qa is not None or qb is not None:
                if qa is None or qb is None or qa != qb:
                    memo[(a, b)] = False
                    return False
                continue
            if ka < 0 or kb < 0:
                memo[(a, b)] = False
                return False
            sa, sb = self.steps[ka], self.steps[kb]
            if sa.prim != sb.prim or sa.params != sb.params or sa.outs.index(a) != sb.outs.index(b) or \
                    len(sa.ins) != len(sb.ins):
                memo[(a, b)] = False
                return False
            if sa.sel is not None:
                pos = self._positions()
                if self.chosen[pos[ka]] != self.chosen[pos[kb]]:
                    memo[(a, b)] = False
                    return False
            pairs = list(zip(sa.ins, sb.ins))
            if sa.prim in ("add", "mul") and not self._operands_match(pairs):
                pairs = list(zip(sa.ins, reversed(sb.ins)))
            for x, y in pairs:
                if x.__class__ is not int or y.__class__ is not int:
                    if x.__class__ is int or y.__class__ is int or x.value != y.value:
                        memo[(a, b)] = False
                        return False
                elif x != y:
                    todo.append((x, y))
            pending.append((a, b))
            if len(pending) > QUICK_BUDGET:
                return False
        for pair in pending:
            memo[pair] = True
        return True

    @staticmethod
    def _operands_match(pairs):
        return all(x == y if x.__class__ is int and y.__class__ is int else
                   (x.__class__ is not int and y.__class__ is not int and x.value == y.value) for x, y in pairs)

    def _linear(self, u):
        """u's definition as ([(coefficient, atom)], constant) when it is affine in its operands (sums, a
        product or quotient by a literal or an exactly known value, powers 0 and 1, a piece), else None."""
        k = self.def_step[u]
        if k < 0:
            return None
        st = self.steps[k]
        ins = st.ins
        if st.sel is not None:
            tm, c0 = st.piece(self.chosen[self._positions()[k]]).rows[st.outs.index(u)]
            return [(cj, ins[j]) for j, cj in tm], c0
        prim = st.prim
        if prim == "add":
            return [(Q1, ins[0]), (Q1, ins[1])], Q0
        if prim == "sub":
            return [(Q1, ins[0]), (-Q1, ins[1])], Q0
        if prim == "neg":
            return [(-Q1, ins[0])], Q0
        if prim == "pow" and st.params["n"] in (0, 1):
            return ([], Q1) if st.params["n"] == 0 else ([(Q1, ins[0])], Q0)
        if prim in ("mul", "div"):
            qs = [a.value if a.__class__ is not int else self._known(a) for a in ins]
            if prim == "mul" and qs[0] is not None:
                return [(qs[0], ins[1])], Q0
            if prim == "mul" and qs[1] is not None:
                return [(qs[1], ins[0])], Q0
            if prim == "div" and qs[1] is not None and qs[1] != 0:
                return [(1 / qs[1], ins[0])], Q0
        return None

    def _positions(self):
        if self._pos is None:
            self._pos, m = {}, 0
            for st in self.steps:
                if st.sel is not None:
                    self._pos[st.k] = m
                    m += 1
        return self._pos

    def _compute(self, u):
        k = self.def_step[u]
        if not self.symbolic:
            if k < 0 and self.inputs is not None:
                return const(self.inputs[u])
            q = exact_value(self.env[u])
            if q is not None:
                return const(q)
        if k < 0:
            return self._input(u)
        st = self.steps[k]
        ins = [self.of_atom(a) for a in st.ins]
        if st.sel is not None:
            piece = st.piece(self.chosen[self._positions()[k]])
            terms, c0 = piece.rows[st.outs.index(u)]
            return self._lin(((c, ins[j]) for j, c in terms), c0)
        return self._smooth(st, ins, u)

    def _input(self, u):
        """An input's form: its own atom, or along a curve (``along``: per input (c0, c1) when the input is
        c0 + c1 t there, else None) c0 + c1 * t with one atom t for every input, so that inputs related along
        the curve (a constant coordinate, the diagonal x = y) are related in their forms too."""
        line = self.along[u] if self.along is not None else None
        if line is None:
            return Form({self._atom(("in", u), u, Q1, Q0): Q1}, Q0)
        c0, c1 = line
        if c1 == 0:
            return const(c0)
        i = next(i for i, v in enumerate(self.along) if v is not None and v[1] != 0)
        return Form({self._atom(("t",), i, 1 / self.along[i][1], -self.along[i][0] / self.along[i][1]): c1}, c0)

    def _smooth(self, st, ins, u):
        prim = st.prim
        if prim == "add":
            return self._lin(((Q1, ins[0]), (Q1, ins[1])), Q0)
        if prim == "sub":
            return self._lin(((Q1, ins[0]), (-Q1, ins[1])), Q0)
        if prim == "neg":
            return self._scale(ins[0], -Q1)
        if prim == "mul":
            A, B = ins
            if A.is_const:
                return self._scale(B, A.const)
            if B.is_const:
                return self._scale(A, B.const)
            sa, ga = self._split(A)
            sb, gb = self._split(B)
            ka, kb = ga.key(), gb.key()
            key = ("pow", 2, ka) if ka == kb else ("mul",) + tuple(sorted((ka, kb)))
            s = sa * sb
            return Form({self._atom(key, u, 1 / s, Q0): s}, Q0)
        if prim == "div":
            A, B = ins
            if B.is_const:
                if B.const == 0:            # the run would have refused: no identity to claim
                    return Form({self._atom(("var", id(self.env), u), u, Q1, Q0): Q1}, Q0)
                return self._scale(A, 1 / B.const)
            if A.is_const and A.const == 0:
                return ZERO
            sb, gb = self._split(B)
            if A.is_const:
                sa, ka = A.const, const(Q1).key()
            else:
                sa, ga = self._split(A)
                ka = ga.key()
                if ka == gb.key():          # a / (c a) with a != 0 (the run checked the divisor)
                    return const(sa / sb)
            s = sa / sb
            return Form({self._atom(("div", ka, gb.key()), u, 1 / s, Q0): s}, Q0)
        if prim == "pow":
            n = st.params["n"]
            A = ins[0]
            if n == 0:
                return const(Q1)
            if n == 1:
                return A
            if A.is_const:
                if abs(n) <= 64 and (n > 0 or A.const != 0):
                    return const(A.const ** n)
                return Form({self._atom(("pow", n, A.key()), u, Q1, Q0): Q1}, Q0)
            sa, ga = self._split(A)
            s = sa ** n
            return Form({self._atom(("pow", n, ga.key()), u, 1 / s, Q0): s}, Q0)
        return self._transcendental(prim, ins[0], u)

    def _transcendental(self, prim, A, u):
        if A.is_const:
            c = A.const
            special = {("exp", 0): Q1, ("log", 1): Q0, ("sin", 0): Q0, ("cos", 0): Q1, ("tanh", 0): Q0,
                       ("sigmoid", 0): fmpq(1, 2), ("erf", 0): Q0, ("atan", 0): Q0}
            for (p, at), val in special.items():
                if p == prim and c == at:
                    return const(val)
            if prim == "sqrt" and c > 0:
                from ..numbers.exact import rational_sqrt
                r = rational_sqrt(c)
                if r is not None:
                    return const(r)
        flip = (A.const < 0) if A.is_const else (self._lead(A) < 0)     # f(-u) in terms of f(u)
        if flip and prim in _ODD + _EVEN + ("sigmoid",):
            key = (prim, self._scale(A, -Q1).key())
            if prim in _EVEN:
                return Form({self._atom(key, u, Q1, Q0): Q1}, Q0)
            if prim in _ODD:                # f(A) = -f(-A)
                return Form({self._atom(key, u, -Q1, Q0): -Q1}, Q0)
            # sigmoid(A) = 1 - sigmoid(-A)
            return Form({self._atom(key, u, -Q1, Q1): -Q1}, Q1)
        return Form({self._atom((prim, A.key()), u, Q1, Q0): Q1}, Q0)

    # -- switching functions and decisions
    def sub(self, A, B):
        return self._lin(((Q1, A), (-Q1, B)), Q0)

    def affine(self, ins, terms, c0):
        """The form of sum(c * ins[j] for j, c in terms) + c0 over an equation's input atoms."""
        return self._lin(((c, self.of_atom(ins[j])) for j, c in terms), c0)

    def enclose(self, F):
        """F's value in the run's number system, from the atoms' values."""
        ns = self.ns
        acc = None
        c0 = F.const
        for a, c in F.terms.items():
            env, var, scale, offset = self.source[a]
            c0 += c * offset
            cs = c * scale
            v = env[var]
            t = v if cs == 1 else (ns.neg(v) if cs == -1 else ns.mul(ns.const(cs), v))
            acc = t if acc is None else ns.add(acc, t)
        if acc is None:
            return ns.const(c0)
        return acc if c0 == 0 else ns.add(acc, ns.const(c0))

    def sign(self, F):
        """(sign, exact): the sign of F when decided (exactly for a constant form, else from ``enclose``), or
        (None, False)."""
        if F.is_const:
            return sign_q(F.const), True
        return self.ns.sign(self.enclose(F)), False
