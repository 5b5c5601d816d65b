"""The lean form of a compiled program (issue 10, item 5): a tape of (kind, function, input slots, output slot)
tuples that the interpreters walk with direct calls, for the number systems whose arithmetic is Python's
operators (``ns.native``: balls, exact rationals, floats).

Every input of every equation is a *slot*: variables are 0..n_vars-1 and literals follow, so a literal is
converted into the number system once per program and precision (``Tape.lit_values``), not once per use.
Smooth binary steps call the number system's function directly (for balls ``operator.add`` on two arbs: no
Python frame in between).  The common nonsmooth primitives (relu, abs, leaky_relu: one switch on the input;
max / min of two arguments) decide strict signs inline; ties, undecided signs and every other primitive go
through the rule tables, exactly as the generic interpreter does.

The fast paths are optimisations of the registered rules, not replacements: a step is inlined only while its
rule-table entry is the one registered at import (``inlined_rules_ok``), so whoever patches a rule (the
mutation self-test does) runs the patched rule.  tests/test_tape.py checks the lean and generic interpreters
against each other on random programs.
"""
from flint import ctx, fmpq

from ..program.prims import eval_rules, jvp_rules, vjp_rules
from ..program.prims.nonsmooth import Extremum, Slopes

# evaluation kinds (SLOPEQ, EXT2Q: SLOPE, EXT2 for the exact system, signs read from the numerator of an fmpq)
BIN, UN, SLOPE, EXT2, DIV, DOM, POW, NONS, RULE, SLOPEQ, EXT2Q = range(11)
# backward kinds
(V_MULA, V_ADD, V_SUB, V_SLOPE, V_EXT2, V_MUL, V_TANH, V_SIGMOID, V_EXP, V_ADD1, V_SUBA, V_SUBB, V_MULB, V_NEG,
 V_DIV, V_SIN, V_COS, V_LOG, V_SQRT, V_POW, V_NONS, V_RULE, V_SKIP) = range(23)

DEFAULT_EVAL = dict(eval_rules)     # the rules as registered (before anyone patches a table)
DEFAULT_VJP = dict(vjp_rules)
DEFAULT_JVP = dict(jvp_rules)
_UNARY = ("neg", "exp", "sin", "cos", "tanh", "sigmoid")
_V_UNARY = {"tanh": V_TANH, "sigmoid": V_SIGMOID, "exp": V_EXP, "neg": V_NEG, "sin": V_SIN, "cos": V_COS,
            "log": V_LOG, "sqrt": V_SQRT}
FUNCTIONS = ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid",
             "const")


def _zero(j):
    return 0


def def_steps(program, steps):
    """The step defining each variable (-1 for inputs), cached beside the steps."""
    cache = program.__dict__.setdefault("_def_steps", {})
    out = cache.get(id(steps))
    if out is None:
        out = [-1] * program.n_vars
        for st in steps:
            for o in st.outs:
                out[o] = st.k
        cache[id(steps)] = out
    return out


def _slot_key(q):
    return (int(q.p), int(q.q))


class Tape:
    def __init__(self, program, steps):
        self.n_vars, self.n_inputs = program.n_vars, program.n_inputs
        self.steps = steps
        self.def_step = def_steps(program, steps)
        self.lits, lit_slot = [], {}

        def lit(q):
            key = _slot_key(q)
            s = lit_slot.get(key)
            if s is None:
                s = lit_slot[key] = self.n_vars + len(self.lits)
                self.lits.append(q)
            return s

        self.slots, self.pos, code, vcode = [], [], [], []
        self.eval_inlined, self.vjp_inlined = set(), set()
        smooth_kind = {p: (BIN if p in ("add", "sub", "mul") else UN if p in _UNARY else DIV if p == "div" else
                           DOM if p in ("log", "sqrt") else POW if p == "pow" else RULE) for p in DEFAULT_EVAL}
        nonsmooth_info = {}         # (primitive, explicit params): what its fast path needs (the same for all)
        eqns = program.eqns
        m = 0
        for st in steps:
            ins = st.ins
            if len(ins) == 2:
                x0, x1 = ins
                slots = (x0 if x0.__class__ is int else lit(x0.value), x1 if x1.__class__ is int else lit(x1.value))
            elif len(ins) == 1:
                x0 = ins[0]
                slots = (x0 if x0.__class__ is int else lit(x0.value),)
            else:
                slots = tuple(x if x.__class__ is int else lit(x.value) for x in ins)
            self.slots.append(slots)
            o = st.outs[0]
            k = st.k
            a = slots[0]
            b = slots[1] if len(slots) > 1 else 0
            if st.sel is None:
                self.pos.append(-1)
                prim = st.prim
                kind = smooth_kind.get(prim, RULE) if st.rule is DEFAULT_EVAL.get(prim) else RULE
                if kind == POW:
                    b = st.params["n"]
                code.append((kind, None if kind == RULE else prim, a, b, o, k))
                if kind != RULE:
                    self.eval_inlined.add(prim)
                vcode.append(self._vjp_code(st, slots, [x.__class__ is int for x in ins], o, k))
                continue
            self.pos.append(m)
            explicit = eqns[k].params
            key = (st.prim, len(ins), explicit if not explicit else repr(explicit))
            info = nonsmooth_info.get(key)
            if info is None:
                info = nonsmooth_info[key] = self._nonsmooth_info(st, lit)
            if info[0] == SLOPE and len(st.switches[0][0]) == 1:
                _, modes, tie, neg, pos = info
                code.append((SLOPE, (m, modes, tie, neg, pos), a, b, o, k))
                vcode.append((V_SLOPE, a, b, o, (m, modes), k) if ins[0].__class__ is int else
                             (V_SKIP, 0, 0, o, None, k))
            elif info[0] == EXT2 and len(st.switches[0][0]) == 2:
                _, flag, tie = info
                code.append((EXT2, (m, flag, tie), a, b, o, k))
                vcode.append((V_EXT2, a, b, o, m, k) if ins[0].__class__ is int and ins[1].__class__ is int else
                             (V_NONS, a, b, o, m, k))
            else:
                code.append((NONS, m, a, b, o, k))
                vcode.append((V_NONS, a, b, o, m, k))
            m += 1
        self.code = code
        self.vcode = vcode
        self.vcode_rev = vcode[::-1]
        self.n_slots = self.n_vars + len(self.lits)
        self._bound, self._bound_v, self._lit_cache = {}, {}, {}
        self.hint = {}           # number system name -> the precision the last escalation needed
        self.start = {}          # number system name -> the precision a run starts at (see evaluate.run)
        self._cones = {}

    @staticmethod
    def _nonsmooth_info(st, lit):
        """(SLOPE, modes, tie piece) for relu / abs / leaky_relu, (EXT2, 0 for max or 1 for min, tie piece) for
        max / min of two arguments, (NONS,) otherwise; the selection's own pieces and index rule."""
        if type(st.sel) is Slopes and len(st.ins) == 1:
            modes = []
            for i in range(st.sel.n_pieces(st.params, 1)):
                (rows,) = st.piece(i).rows
                terms, c0 = rows
                c = terms[0][1] if terms else fmpq(0)
                assert c0 == 0
                mode = 1 if c == 1 else (0 if c == 0 else (-1 if c == -1 else 2))
                modes.append((mode, lit(c) if mode == 2 else 0))
            # the pieces for u < 0, u > 0 and u = 0: pieces that coincide are one piece (leaky_relu with slope 1
            # has the single piece u), so the indices come from the index rule, not from a fixed layout
            neg = st.sel.choose(st.params, 1, lambda j: -1)
            pos = st.sel.choose(st.params, 1, lambda j: 1)
            return SLOPE, tuple(modes), st.sel.choose(st.params, 1, _zero), neg, pos
        if type(st.sel) is Extremum and len(st.ins) == 2:
            # the piece at a tie: 0, 1 or 2 (the mean)
            return EXT2, (0 if st.sel.direction == 1 else 1), st.sel.choose(st.params, 2, _zero)
        return (NONS,)

    def _vjp_code(self, st, slots, isvar, o, k):
        prim = st.prim
        a = slots[0]
        b = slots[1] if len(slots) > 1 else 0
        if vjp_rules.get(prim) is not DEFAULT_VJP.get(prim):
            return (V_RULE, a, b, o, None, k)
        self.vjp_inlined.add(prim)
        if not any(isvar):
            return (V_SKIP, a, b, o, None, k)
        if prim == "add":
            if all(isvar):
                return (V_ADD, a, b, o, None, k)
            return (V_ADD1, a if isvar[0] else b, 0, o, None, k)
        if prim == "sub":
            if all(isvar):
                return (V_SUB, a, b, o, None, k)
            return (V_SUBA, a, b, o, None, k) if isvar[0] else (V_SUBB, a, b, o, None, k)
        if prim == "mul":
            if all(isvar):
                return (V_MUL, a, b, o, None, k)
            return (V_MULA, a, b, o, None, k) if isvar[0] else (V_MULB, a, b, o, None, k)
        if prim == "div":
            return (V_DIV, a, b, o, None, k) if all(isvar) else (V_RULE, a, b, o, None, k)
        if prim == "pow":
            return (V_POW, a, b, o, st.params["n"], k)
        if prim in _V_UNARY:
            return (_V_UNARY[prim], a, b, o, None, k)
        self.vjp_inlined.discard(prim)
        return (V_RULE, a, b, o, None, k)

    # -- validity and binding to a number system
    def eval_ok(self):
        return all(eval_rules.get(p) is DEFAULT_EVAL.get(p) for p in self.eval_inlined)

    def vjp_ok(self):
        return all(vjp_rules.get(p) is DEFAULT_VJP.get(p) for p in self.vjp_inlined)

    def jvp_ok(self):
        """The forward pass reads the same codes: the same primitives are inlined."""
        return all(jvp_rules.get(p) is DEFAULT_JVP.get(p) and vjp_rules.get(p) is DEFAULT_VJP.get(p)
                   for p in self.vjp_inlined)

    @staticmethod
    def _ns_key(ns):
        """Number systems of one class and name are interchangeable (their only state is the name's dtype);
        the functions are in the key so that patching one (the mutation self-test) rebinds the code."""
        cls = type(ns)
        return (cls, ns.name) + tuple(getattr(cls, f) for f in FUNCTIONS)

    def bound(self, ns):
        """The evaluation code with the number system's functions in place of their names."""
        key = self._ns_key(ns)
        code = self._bound.get(key)
        if code is None:
            fns = {f: getattr(ns, f) for f in FUNCTIONS}
            exact = {SLOPE: SLOPEQ, EXT2: EXT2Q} if ns.name == "exact" else {}
            code = [(exact.get(kind, kind), fns[f] if kind in (BIN, UN, DIV, DOM, POW) else f, a, b, o, k)
                    for kind, f, a, b, o, k in self.code]
            self._bound[key] = code
        return code

    def lit_values(self, ns):
        """The literals as values of ``ns`` at the current precision (cached per precision)."""
        key = self._ns_key(ns) + (ctx.prec,)
        vals = self._lit_cache.get(key)
        if vals is None:
            vals = self._lit_cache[key] = [ns.const(q) for q in self.lits]
        return vals

    def cone(self, k):
        """The steps that step k depends on, in order (cached: it depends on the program only).  When the search
        has visited a third of the steps before k, it stops and returns all of them: replaying a few steps too
        many costs less than finishing a search in Python."""
        c = self._cones.get(k)
        if c is None:
            dstep, n, slots = self.def_step, self.n_vars, self.slots
            seen = bytearray(k + 1)
            todo = [k]
            budget = k // 3
            while todo:
                for s in slots[todo.pop()]:
                    if s < n:
                        d = dstep[s]
                        if d >= 0 and not seen[d]:
                            seen[d] = 1
                            todo.append(d)
                            budget -= 1
                if budget < 0:
                    c = self._cones[k] = list(range(k))
                    return c
            c = self._cones[k] = [j for j in range(k) if seen[j]]
        return c


def tape_of(program, steps, convention):
    """The Tape of ``program`` under ``convention`` (cached beside the compiled steps)."""
    cache = program.__dict__.setdefault("_tapes", {})
    t = cache.get(convention)
    if t is None or t.steps is not steps:
        t = cache[convention] = Tape(program, steps)
    return t
