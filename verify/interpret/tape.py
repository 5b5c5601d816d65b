"""The lean form of a compiled program (issue 10, item 5) and the loops that walk it: a tape of (kind, function,
input slots, output slot) tuples, walked with direct calls for the number systems whose arithmetic is Python's
operators (``ns.native``: balls, exact rationals, floats).

Every input of every equation is a *slot*: variables are 0..n_vars-1 and literals follow, so a literal is
converted into the number system once per program and precision (``Tape.lit_values``), not once per use.
Smooth binary steps call the number system's function directly (for balls ``operator.add`` on two arbs: no
Python frame in between).  The common nonsmooth primitives (relu, abs, leaky_relu: one switch on the input;
max / min of two arguments) decide strict signs inline; ties, undecided signs and every other primitive go
back to the evaluator (evaluate.py), which decides them exactly as its generic interpreter does.

Four loops walk a tape: ``forward`` (Algorithm 1's evaluation), ``replay`` (recompute some steps with the
pieces already chosen), ``backward`` and ``tangents`` (Algorithm 2's two modes, with the rules of
prims/smooth.py inlined in the same order of operations).  Each is one ``if`` chain on the step's kind: the
commonest kinds (add, sub, mul, relu, abs) are inlined with no call per step, which is what makes the tape
cheap (benchmarks/bench_core.py measures it); the others go through a small helper (one call per step).

The fast paths are optimisations of the registered rules, not replacements: a step is inlined only while its
rule-table entry is the one registered at import (``eval_ok``, ``vjp_ok``, ``jvp_ok``), so whoever patches
a rule (the mutation self-test does) runs the patched rule.  tests/test_tape.py checks the lean and generic
interpreters against each other on random programs, bit for bit.
"""
from flint import ctx, fmpq

from ..errors import DomainError, Undecided
from ..program.prims import eval_rules, jvp_rules, vjp_rules
from ..program.prims.nonsmooth import Extremum, Slopes

# Evaluation kinds.  Smooth: BIN (add, sub, mul of two slots), UN (neg, exp, sin, cos, tanh, sigmoid), DIV
# (a divisor whose sign must be decided), DOM (log, sqrt: a positive argument), POW (the exponent in place of
# the second slot), RULE (through the rule table).  Nonsmooth: SLOPE (relu, abs, leaky_relu: a switch on the
# input), EXT2 (max or min of two slots), NONS (through the selection); SLOPEQ and EXT2Q are SLOPE and EXT2
# bound to the exact system, whose signs are read from the numerator of an fmpq.
BIN, UN, SLOPE, EXT2, DIV, DOM, POW, NONS, RULE, SLOPEQ, EXT2Q = range(11)
# Backward (and tangent) kinds: V_ADD, V_SUB, V_MUL for two variables; V_ADD1, V_SUBA, V_SUBB, V_MULA, V_MULB
# for a variable and a literal (SUBA: the variable is the first argument, MULA: the literal is the second);
# one unary kind per inlined primitive; V_SLOPE, V_EXT2 for the inlined nonsmooth steps; V_NONS through the
# chosen piece, V_RULE through the rule tables, V_SKIP for a step without variable inputs.
(V_MULA, V_ADD, V_SUB, V_SLOPE, V_EXT2, V_MUL, V_TANH, V_SIGMOID, V_EXP, V_ADD1, V_SUBA, V_SUBB, V_MULB, V_NEG,
 V_DIV, V_SIN, V_COS, V_LOG, V_SQRT, V_POW, V_NONS, V_RULE, V_SKIP) = range(23)
# the kinds whose tangent is one input's tangent times a factor (a symbolic zero stays zero)
_ONE_TANGENT = frozenset((V_MULA, V_SLOPE, V_TANH, V_SIGMOID, V_EXP, V_ADD1, V_SUBA, V_SUBB, V_MULB, V_NEG))
# the backward kinds whose cotangent goes to one input through a factor, computed by _one_input_vjp
_V_ONE_INPUT = frozenset((V_TANH, V_SIGMOID, V_EXP, V_SUBB, V_MULB, V_NEG))

DEFAULT_EVAL = dict(eval_rules)     # the rules as registered (before anyone patches a table)
DEFAULT_VJP = dict(vjp_rules)
DEFAULT_JVP = dict(jvp_rules)
_UNARY = ("neg", "exp", "sin", "cos", "tanh", "sigmoid")
_V_UNARY = {"tanh": V_TANH, "sigmoid": V_SIGMOID, "exp": V_EXP, "neg": V_NEG, "sin": V_SIN, "cos": V_COS,
            "log": V_LOG, "sqrt": V_SQRT}
_SMOOTH_KIND = {"add": BIN, "sub": BIN, "mul": BIN, "div": DIV, "log": DOM, "sqrt": DOM, "pow": POW,
                **{p: UN for p in _UNARY}}
FUNCTIONS = ("add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid",
             "const")
Q0, Q1, HALF = fmpq(0), fmpq(1), fmpq(1, 2)


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


class Tape:
    """The program's steps as evaluation code (``code``: (kind, function or data, slot a, slot b, output slot,
    step) per step) and backward code (``vcode``: (kind, slot a, slot b, output slot, data, step)), with the
    slots of every step, each nonsmooth step's position in the pattern (``pos``, -1 for smooth steps) and the
    literals (``lits``, slots n_vars, n_vars + 1, ...)."""

    def __init__(self, program, steps):
        self.n_vars, self.n_inputs = program.n_vars, program.n_inputs
        self.steps = steps
        self.def_step = def_steps(program, steps)
        self.lits, self._lit_slot = [], {}
        self.slots, self.pos, self.code, self.vcode = [], [], [], []
        self.eval_inlined, self.vjp_inlined = set(), set()
        self._nonsmooth_info = {}       # (primitive, arity, explicit params) -> what its fast path needs
        lit, eqns, m = self.lit, program.eqns, 0
        add_slots, add_pos = self.slots.append, self.pos.append
        add_code, add_vcode = self.code.append, self.vcode.append
        smooth, nonsmooth = self._smooth_codes, self._nonsmooth_codes
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
            add_slots(slots)
            if st.sel is None:
                add_pos(-1)
                c, v = smooth(st, slots)
            else:
                add_pos(m)
                c, v = nonsmooth(st, slots, eqns[st.k].params, m)
                m += 1
            add_code(c)
            add_vcode(v)
        self.vcode_rev = self.vcode[::-1]
        self.n_slots = self.n_vars + len(self.lits)
        self._bound, self._lit_cache, self._cones = {}, {}, {}
        self.hint = {}           # number system name -> the precision the last escalation needed
        self.start = {}          # number system name -> the precision a run starts at (see evaluate.run)

    def lit(self, q):
        """The slot of the literal ``q`` (one slot per distinct value)."""
        key = (int(q.p), int(q.q))
        s = self._lit_slot.get(key)
        if s is None:
            s = self._lit_slot[key] = self.n_vars + len(self.lits)
            self.lits.append(q)
        return s

    def _smooth_codes(self, st, slots):
        """The evaluation and backward code of a smooth step."""
        prim, o, k = st.prim, st.outs[0], st.k
        a, b = slots[0], (slots[1] if len(slots) > 1 else 0)
        kind = _SMOOTH_KIND.get(prim, RULE) if st.rule is DEFAULT_EVAL.get(prim) else RULE
        if kind == POW:
            b = st.params["n"]
        if kind != RULE:
            self.eval_inlined.add(prim)
        n = self.n_vars             # a variable's slot is below n_vars, a literal's above
        isvar = (a < n, slots[1] < n) if len(slots) == 2 else tuple(s < n for s in slots)
        return (kind, None if kind == RULE else prim, a, b, o, k), self._vjp_code(st, slots, isvar, o, k)

    def _nonsmooth_codes(self, st, slots, explicit, m):
        """The evaluation and backward code of the nonsmooth step at position ``m`` of the pattern."""
        ins, o, k = st.ins, st.outs[0], st.k
        a, b = slots[0], (slots[1] if len(slots) > 1 else 0)
        key = (st.prim, len(ins), explicit if not explicit else repr(explicit))
        info = self._nonsmooth_info.get(key)
        if info is None:
            info = self._nonsmooth_info[key] = self._fast_path(st)
        if info[0] == SLOPE and len(st.switches[0][0]) == 1:
            _, modes, tie, neg, pos = info
            return (SLOPE, (m, modes, tie, neg, pos), a, b, o, k), \
                ((V_SLOPE, a, b, o, (m, modes), k) if ins[0].__class__ is int else (V_SKIP, 0, 0, o, None, k))
        if info[0] == EXT2 and len(st.switches[0][0]) == 2:
            _, flag, tie = info
            return (EXT2, (m, flag, tie), a, b, o, k), \
                ((V_EXT2 if ins[0].__class__ is int and ins[1].__class__ is int else V_NONS), a, b, o, m, k)
        return (NONS, m, a, b, o, k), (V_NONS, a, b, o, m, k)

    def _fast_path(self, st):
        """(SLOPE, modes, tie piece, piece for u < 0, piece for u > 0) for relu / abs / leaky_relu, where a
        mode is (1, 0) for u, (0, 0) for 0, (-1, 0) for -u or (2, literal slot of c) for c * u; (EXT2, 0 for
        max or 1 for min, tie piece) for max / min of two arguments; (NONS,) otherwise.  The pieces and their
        indices come from the selection itself."""
        if type(st.sel) is Slopes and len(st.ins) == 1:
            modes = []
            for i in range(st.sel.n_pieces(st.params, 1)):
                (rows,) = st.piece(i).rows
                terms, c0 = rows
                c = terms[0][1] if terms else fmpq(0)
                assert c0 == 0
                mode = 1 if c == 1 else (0 if c == 0 else (-1 if c == -1 else 2))
                modes.append((mode, self.lit(c) if mode == 2 else 0))
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
        if prim in _V_UNARY:
            return (_V_UNARY[prim], a, b, o, None, k)
        if prim == "pow":
            return (V_POW, a, b, o, st.params["n"], k)
        both, first = all(isvar), isvar[0]
        if prim == "add":
            return (V_ADD, a, b, o, None, k) if both else (V_ADD1, a if first else b, 0, o, None, k)
        if prim == "sub":
            return (V_SUB if both else (V_SUBA if first else V_SUBB), a, b, o, None, k)
        if prim == "mul":
            return (V_MUL if both else (V_MULA if first else V_MULB), a, b, o, None, k)
        if prim == "div":
            return (V_DIV if both else V_RULE, a, b, o, None, k)
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




# -- the loops

def forward(code, full, ns, frozen, chosen, slow):
    """Algorithm 1 along the bound code (``Tape.bound``): every value into ``full`` (slots), every piece index
    appended to ``chosen``.  Strict signs are decided here by comparing values; whatever they leave open (a
    tie, an undecided ball, a sign a smooth step needs, a step without a fast path) goes to the evaluator
    ``slow``: ``slope_tie(k)``, ``nonsmooth(k)``, ``domain(k)``, ``rule(k)``.  A DomainError or Undecided is
    re-raised as ``slow.located(err, k)``.  ``frozen``: the pattern to follow instead of deciding (or None)."""
    push = chosen.append
    neg, mul, sub = ns.neg, ns.mul, ns.sub
    zero = ns.const(Q0)
    k = -1
    try:
        for kind, f, a, b, o, k in code:
            if kind == BIN:
                full[o] = f(full[a], full[b])
            elif kind == SLOPE or kind == SLOPEQ:      # f = (position, modes, tie, piece if < 0, piece if > 0)
                u = full[a]
                if frozen is not None:
                    i = frozen[f[0]]
                elif kind == SLOPEQ and u.__class__ is fmpq:
                    p = u.p
                    i = f[4] if p > 0 else (f[3] if p < 0 else f[2])
                elif u > 0:
                    i = f[4]
                elif u < 0:
                    i = f[3]
                else:
                    i = slow.slope_tie(k)
                    u = full[a]
                push(i)
                mode, cs = f[1][i]
                full[o] = u if mode == 1 else (zero if mode == 0 else (neg(u) if mode == -1 else mul(full[cs], u)))
            elif kind == UN:
                full[o] = f(full[a])
            elif kind == EXT2 or kind == EXT2Q:        # f = (position, 0 for max or 1 for min, tie)
                if frozen is not None:
                    slow.nonsmooth(k)
                    continue
                x0 = full[a]
                x1 = full[b]
                i = _ext2_piece(kind, f, sub(x0, x1))
                if i is None:
                    slow.nonsmooth(k)
                    continue
                push(i)
                full[o] = x0 if i == 0 else (x1 if i == 1 else (x0 + x1) * HALF)
            else:
                _forward_other(kind, f, a, b, o, k, full, slow)
    except (DomainError, Undecided) as err:
        raise slow.located(err, k) from None


def _ext2_piece(kind, f, d):
    """The piece (0 or 1: the argument chosen) of a max / min of two arguments (an EXT2 or EXT2Q step, ``f`` =
    (position, 0 for max or 1 for min, tie)) from d = x0 - x1; an exact tie of an EXT2Q step gives its tie
    piece.  None when the sign of ``d`` is left open (a ball tie or an undecided ball): the evaluator decides."""
    if kind == EXT2Q and d.__class__ is fmpq:
        p = d.p
        return f[1] if p > 0 else (1 - f[1] if p < 0 else f[2])
    if d > 0:
        return f[1]
    if d < 0:
        return 1 - f[1]
    return None


def _forward_other(kind, f, a, b, o, k, full, slow):
    """None: computes into ``full[o]`` a DIV, DOM, POW or RULE step (the first three when the sign they need
    is strict, else through ``slow.domain(k)``; RULE through ``slow.rule(k)``), or hands a NONS step to
    ``slow.nonsmooth(k)``."""
    if kind == DIV:
        y = full[b]
        full[o] = f(full[a], y) if (y > 0 or y < 0) else slow.domain(k)
    elif kind == DOM:
        x = full[a]
        full[o] = f(x) if x > 0 else slow.domain(k)
    elif kind == POW:
        x = full[a]
        full[o] = f(x, b) if (b >= 0 or x > 0 or x < 0) else slow.domain(k)
    elif kind == NONS:
        slow.nonsmooth(k)
    else:
        full[o] = slow.rule(k)


def replay(code, full, chosen, ns, slow):
    """Recompute the steps of ``code`` (bound code, in order) with the pieces already in ``chosen``: no
    decision is made again.  A step without a fast path (and the mean at a max / min tie) goes to
    ``slow.replay(k)``."""
    neg, mul = ns.neg, ns.mul
    zero = ns.const(Q0)
    for kind, f, a, b, o, k in code:
        if kind == BIN or kind == DIV:
            full[o] = f(full[a], full[b])
        elif kind == UN or kind == DOM:
            full[o] = f(full[a])
        elif kind == SLOPE or kind == SLOPEQ:
            u = full[a]
            mode, cs = f[1][chosen[f[0]]]
            full[o] = u if mode == 1 else (zero if mode == 0 else (neg(u) if mode == -1 else mul(full[cs], u)))
        elif kind == POW:
            full[o] = f(full[a], b)
        elif (kind == EXT2 or kind == EXT2Q) and chosen[f[0]] < 2:     # one argument chosen
            full[o] = full[b] if chosen[f[0]] else full[a]
        else:
            slow.replay(k)


def accumulate(ns, a, b):
    """a + b where None stands for 0 (a symbolic zero)."""
    if a is None:
        return b
    return a if b is None else ns.add(a, b)


def linear(ns, terms, ts):
    """sum(c * ts[j] for j, c in terms), None when every term is a symbolic zero (None)."""
    acc = None
    for j, c in terms:
        t = ts[j]
        if t is None:
            continue
        t = t if c == 1 else (ns.neg(t) if c == -1 else ns.mul(ns.const(c), t))
        acc = t if acc is None else ns.add(acc, t)
    return acc


def piece_vjp(ns, st, slots, i, CT, acc=accumulate):
    """Add the cotangents of the nonsmooth step ``st`` through its piece ``i`` (the piece's linear part,
    transposed) into ``CT`` at ``slots`` (literal inputs get nothing), accumulating with ``acc``."""
    cts = [CT[o] for o in st.outs]
    if all(c is None for c in cts):
        return
    in_cts = [None] * len(st.ins)
    for (terms, _), c in zip(st.piece(i).rows, cts):
        if c is None:
            continue
        for j, coef in terms:
            t = c if coef == 1 else (ns.neg(c) if coef == -1 else ns.mul(ns.const(coef), c))
            in_cts[j] = acc(ns, in_cts[j], t)
    for a, s, c in zip(st.ins, slots, in_cts):
        if a.__class__ is int and c is not None:
            CT[s] = acc(ns, CT[s], c)


def _rule_vjp(ns, st, slots, full, CT):
    """Add the cotangents of the smooth step ``st`` given by its vjp rule into ``CT`` (slots)."""
    in_cts = vjp_rules[st.prim](ns, st.params, [full[s] for s in slots], full[st.outs[0]], CT[st.outs[0]])
    for s, a, g in zip(slots, st.ins, in_cts):
        if a.__class__ is int and g is not None:
            t = CT[s]
            CT[s] = g if t is None else ns.add(t, g)


def backward(tape, full, pattern, ns, CT):
    """Algorithm 2's backward pass along the tape, over the values ``full`` of a run with ``pattern``: ``CT``
    (one cotangent per slot, None = 0, the outputs' already seeded) receives every cotangent.  Each inlined
    kind computes what its rule in prims/smooth.py computes, in the same order; the step's (last) cotangent
    contribution g goes to slot j at the end of the loop body."""
    steps, slots = tape.steps, tape.slots
    add, mul, neg = ns.add, ns.mul, ns.neg
    one, half = ns.const(Q1), ns.const(HALF)
    for vk, a, b, o, x, k in tape.vcode_rev:
        c = CT[o]
        if c is None and vk != V_NONS:     # a nonsmooth step may have several outputs
            continue
        if vk == V_MULA:
            j, g = a, mul(c, full[b])
        elif vk == V_ADD or vk == V_SUB:
            t = CT[a]
            CT[a] = c if t is None else add(t, c)
            j, g = b, (c if vk == V_ADD else neg(c))
        elif vk == V_ADD1 or vk == V_SUBA:
            j, g = a, c
        elif vk == V_SLOPE:                 # x = (position, modes)
            mode, cs = x[1][pattern[x[0]]]
            if mode == 0:
                continue
            j, g = a, (c if mode == 1 else (neg(c) if mode == -1 else mul(full[cs], c)))
        elif vk == V_EXT2:                  # x = position
            i = pattern[x]
            if i > 1:                       # the mean of both (a split tie): 1/2 to each, as the piece says
                j, g = _split_tie_vjp(ns, half, a, b, c, CT)
            else:
                j, g = (b if i else a), c
        elif vk == V_MUL:
            ga, g = mul(c, full[b]), mul(full[a], c)
            t = CT[a]
            CT[a] = ga if t is None else add(t, ga)
            j = b
        elif vk in _V_ONE_INPUT:
            j, g = _one_input_vjp(ns, one, vk, a, b, o, c, full)
        elif vk == V_NONS:                  # x = position
            piece_vjp(ns, steps[k], slots[k], pattern[x], CT)
            continue
        elif vk == V_SKIP:
            continue
        else:
            _rule_vjp(ns, steps[k], slots[k], full, CT)
            continue
        t = CT[j]
        CT[j] = g if t is None else add(t, g)


def _split_tie_vjp(ns, half, a, b, c, CT):
    """(b, 1/2 * c): the half of the cotangent ``c`` of a max / min at a split tie that goes to its second
    argument ``b``, once the same half has been added into ``CT[a]`` (the mean's piece gives 1/2 to each)."""
    g = ns.mul(half, c)
    t = CT[a]
    CT[a] = g if t is None else ns.add(t, g)
    return b, g


def _one_input_vjp(ns, one, vk, a, b, o, c, full):
    """(the slot j, the cotangent contribution g to it) of a backward step of kind ``vk`` in _V_ONE_INPUT
    (tanh, sigmoid, exp, neg, and sub / mul with a literal first argument) for the output cotangent ``c``:
    what the step's rule in prims/smooth.py computes, in the same order; ``one`` is the constant 1."""
    mul, sub = ns.mul, ns.sub
    if vk == V_TANH:
        y = full[o]
        return a, mul(sub(one, mul(y, y)), c)
    if vk == V_SIGMOID:
        y = full[o]
        return a, mul(mul(y, sub(one, y)), c)
    if vk == V_EXP:
        return a, mul(full[o], c)
    if vk == V_SUBB:
        return b, ns.neg(c)
    if vk == V_MULB:
        return b, mul(full[a], c)
    return a, ns.neg(c)                 # V_NEG


def _rule_tangent(ns, st, slots, full, i, T):
    """The tangents of step ``st`` through its jvp rule (smooth) or its piece ``i`` (nonsmooth) into ``T``."""
    ts = [T[s] if a.__class__ is int else None for a, s in zip(st.ins, slots)]
    if all(t is None for t in ts):
        for out in st.outs:
            T[out] = None
    elif st.sel is None:
        T[st.outs[0]] = jvp_rules[st.prim](ns, st.params, [full[s] for s in slots], full[st.outs[0]], ts)
    else:
        for out, (terms, _) in zip(st.outs, st.piece(i).rows):
            T[out] = linear(ns, terms, ts)


def tangents(tape, full, pattern, ns, T):
    """Algorithm 2's forward pass along the tape, over the values ``full`` of a run with ``pattern``: ``T``
    (one tangent per slot, None = 0, the inputs' already set, the literals' None) receives every tangent.
    Each inlined kind computes what its rule in prims/smooth.py computes, in the same order."""
    steps, slots = tape.steps, tape.slots
    add, sub, mul, neg = ns.add, ns.sub, ns.mul, ns.neg
    one, half = ns.const(Q1), ns.const(HALF)
    for vk, a, b, o, x, k in tape.vcode:
        if vk in _ONE_TANGENT:
            t = T[b] if (vk == V_SUBB or vk == V_MULB) else T[a]
            if t is None:
                T[o] = None
            elif vk == V_ADD1 or vk == V_SUBA:
                T[o] = t
            elif vk == V_MULA:
                T[o] = mul(t, full[b])
            elif vk == V_SLOPE:
                mode, cs = x[1][pattern[x[0]]]
                T[o] = t if mode == 1 else (None if mode == 0 else (neg(t) if mode == -1 else mul(full[cs], t)))
            elif vk == V_TANH:
                y = full[o]
                T[o] = mul(sub(one, mul(y, y)), t)
            elif vk == V_SIGMOID:
                y = full[o]
                T[o] = mul(mul(y, sub(one, y)), t)
            elif vk == V_EXP:
                T[o] = mul(full[o], t)
            elif vk == V_MULB:
                T[o] = mul(full[a], t)
            else:                           # V_SUBB, V_NEG
                T[o] = neg(t)
        elif vk == V_ADD:
            ta, tb = T[a], T[b]
            T[o] = tb if ta is None else (ta if tb is None else add(ta, tb))
        elif vk == V_SUB:
            ta, tb = T[a], T[b]
            T[o] = (None if tb is None else neg(tb)) if ta is None else (ta if tb is None else add(ta, neg(tb)))
        elif vk == V_MUL:
            ta, tb = T[a], T[b]
            ga = None if ta is None else mul(ta, full[b])
            gb = None if tb is None else mul(full[a], tb)
            T[o] = gb if ga is None else (ga if gb is None else add(ga, gb))
        elif vk == V_EXT2 and pattern[x] < 2:
            T[o] = T[b] if pattern[x] else T[a]
        elif vk == V_EXT2:                  # the mean: 1/2 * ta + 1/2 * tb, as the piece's affine map computes it
            ta, tb = T[a], T[b]
            ga = None if ta is None else mul(half, ta)
            gb = None if tb is None else mul(half, tb)
            T[o] = gb if ga is None else (ga if gb is None else add(ga, gb))
        elif vk == V_SKIP:
            T[o] = None
        else:
            _rule_tangent(ns, steps[k], slots[k], full, pattern[x] if vk == V_NONS else None, T)


def tape_of(program, steps, convention):
    """The Tape of ``program`` under ``convention`` (cached beside the compiled steps)."""
    cache = program.__dict__.setdefault("_tapes", {})
    t = cache.get(convention)
    if t is None or t.steps is not steps:
        t = cache[convention] = Tape(program, steps)
    return t
