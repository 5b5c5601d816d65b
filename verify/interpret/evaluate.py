"""Algorithm 1 of the paper: evaluate a program in a number system and record the pattern (the piece chosen
by each nonsmooth equation's index rule).

In balls an index rule may be undecided (a switching function whose ball contains 0 but is not exactly 0).
Then, cheapest first: the exact affine form of the switching function over atoms (forms.py: ties that hold
by a linear identity are exact, also in balls), and the undecided equation's dependency cone recomputed at
a higher precision (balls at any precision are sound enclosures, and the decisions already made stay true),
up to a cap; then the honest answer is Undecided, naming the equation.  A value that is exactly rational
decides exactly, at any precision.

For the number systems whose arithmetic is Python's operators (balls, exact, floats) the run walks the
program's tape (tape.forward: literals converted once per precision, direct calls, strict signs compared
inline) and comes back here for every sign the values leave open; for the others this module walks the rule
tables, equation by equation.  Both make the same decisions in the same order (tests/test_tape.py).
"""
from dataclasses import dataclass, field

from flint import ctx, fmpq

from ..program import kinks
from ..errors import DomainError, InputError, Undecided
from ..program.ir import eqn_where, switch_text  # noqa: F401  (switch_text: part of this interface)
from ..program.prims import PRIMITIVES, affine, eval_rules, selection_rules
from ..program.prims.smooth import value_text
from ..rational import parse_point
from .forms import Forms, TooLarge
from .precision import CONE_STEP, DEFAULT_PREC, PREC_CAP, escalate, next_precision, working_precision  # noqa: F401  (part of this interface)
from .tape import Q0, Q1, def_steps, forward, replay, tape_of  # noqa: F401  (def_steps: part of this interface)
FORMS_FIRST = 2000      # an undecided sign whose cone has at most this many steps tries the full forms first



@dataclass
class Step:
    """One equation compiled for a convention: resolved params, its rule, and (nonsmooth) its selection."""
    k: int
    prim: str
    ins: tuple
    outs: tuple
    params: dict
    rule: object = None
    sel: object = None
    switches: list = None
    pieces: dict = None

    def piece(self, i):
        p = self.pieces.get(i)
        if p is None:
            p = self.pieces[i] = self.sel.piece(self.params, len(self.ins), i)
        return p


def compiled(program, convention):
    """The program's steps under ``convention`` (cached on the program object)."""
    cache = program.__dict__.setdefault("_compiled", {})
    steps = cache.get(convention)
    if steps is None:
        steps = []
        shared = {}         # (primitive, arity, explicit params) -> resolved params and raw switches
        for k, e in enumerate(program.eqns):
            key = (e.prim, len(e.ins), e.params if not e.params else repr(e.params))
            got = shared.get(key)
            if got is None:
                params = kinks.resolve(e, convention)
                smooth = PRIMITIVES[e.prim].smooth
                raw = None if smooth else selection_rules[e.prim].switches(params, len(e.ins))
                got = shared[key] = (params, smooth, raw)
            params, smooth, raw = got
            st = Step(k, e.prim, e.ins, e.outs, params)
            if smooth:
                st.rule = eval_rules[e.prim]
            else:
                st.sel = selection_rules[e.prim]
                st.switches = [_merge(e.ins, terms, const) for terms, const in raw]
                st.pieces = {}
            steps.append(st)
        cache[convention] = steps
    return steps


def _merge(ins, terms, const):
    """A switching function with the terms on the same variable merged: max(v, v) switches on v - v, which is
    exactly 0 (a decided tie), not a ball around 0 that no precision can decide."""
    first, merged = {}, {}
    for j, c in terms:
        a = ins[j]
        key = ("v", a) if a.__class__ is int else ("l", j)
        j0 = first.setdefault(key, j)
        merged[j0] = merged.get(j0, 0) + c
    return tuple((j, c) for j, c in merged.items() if c != 0), const


@dataclass
class Run:
    """What one evaluation produced: every variable's value, the argument values of every equation, the
    pattern, and the number system and precision used (the highest precision any value was computed at).

    ``full`` (the values followed by the literals', for the lean backward pass), ``forms`` (the exact forms
    computed while deciding, see forms.py) and ``tape`` are the interpreter's own: absent on runs built by
    other walks."""
    program: object
    ns: object
    env: list
    args: object
    pattern: tuple
    prec: int
    convention: str
    full: list = field(default=None, repr=False, compare=False)
    forms: object = field(default=None, repr=False, compare=False)
    tape: object = field(default=None, repr=False, compare=False)
    beyond: bool = field(default=False, repr=False, compare=False)     # a sign was decided by exact forms


class Args:
    """The argument values of every equation of a run, built on demand (``args[k]`` is a fresh list)."""
    __slots__ = ("full", "slots")

    def __init__(self, full, slots):
        self.full, self.slots = full, slots

    def __getitem__(self, k):
        full = self.full
        return [full[s] for s in self.slots[k]]

    def __len__(self):
        return len(self.slots)

    def __iter__(self):
        return (self[k] for k in range(len(self.slots)))




# the smooth primitives whose argument must have a sign: (argument index, allowed signs, what is needed)
_DOMAIN = {"div": (1, (-1, 1), "division needs a nonzero divisor"),
           "log": (0, (1,), "log needs a positive argument"),
           "sqrt": (0, (1,), "sqrt needs a positive argument (it is not Lipschitz at 0)"),
           "pow": (0, (-1, 1), "a negative power needs a nonzero base")}


class _Runner:
    """One evaluation (Algorithm 1).  Signs are decided by the values first; when they cannot decide, by the
    exact forms (forms.py), then by re-evaluating only the undecided equation's dependency cone at a higher
    precision (``escalating``: balls at any precision are sound enclosures, and decisions already made stay
    valid), four times the bits at each step, starting at the precision this run or the last escalation of
    this program needed."""

    def __init__(self, program, steps, tape, ns, full, frozen, inputs, cap):
        self.program, self.steps, self.tape, self.ns, self.full = program, steps, tape, ns, full
        self.frozen = frozen
        self.chosen = []
        self._forms = None
        self.use_forms = not ns.name.startswith("float")
        self.beyond = False         # a sign was decided by exact forms
        self.base = self.hp = ctx.prec
        self.cap = cap
        self.step_prec = {}
        # cone escalation: balls (exact inputs given) and the hybrid exact system (rational inputs)
        self.inputs = inputs
        self.escalating = (ns.name in ("ball", "exact") and inputs is not None and tape is not None)
        self.cur, self.cache = -1, {}
        self.code = None            # the bound tape, when the run is lean

    # -- exact forms and precision
    def forms(self):
        if self._forms is None:
            self._forms = Forms(self.program, self.steps, self.ns, self.full, self.chosen, self.tape.def_step,
                                inputs=self.inputs)
        return self._forms

    def args_of(self, k):
        full = self.full
        return [full[s] for s in self.tape.slots[k]]

    def resolve(self, k, value, form, quick):
        """The sign of a quantity of step k that its value (``value()``, recomputed on demand) does not decide,
        or None when nothing decides it.  In order of cost: the quick exact form (``quick()``, a sweep of the
        linear cone), the full exact form (``form()``) when the cone is small, then the cone re-evaluated at
        higher precision, with the full form tried once after the first escalation (a near tie needs bits, an
        identity needs algebra: neither pays much for the other)."""
        ns = self.ns
        s = ns.sign(value())
        if s is not None:
            return s
        F, tried = None, not self.use_forms
        if self.use_forms:
            try:
                s = self.forms().sign(quick())[0]
            except TooLarge:
                s = None
            if s is not None:
                self.beyond = True
                return s
            if not self.escalating or len(self.tape.cone(k)) <= FORMS_FIRST:
                F, s, tried = self.full_sign(form)
                if s is not None:
                    self.beyond = True
                    return s
        if not self.escalating:
            return None
        # the first level: what this run or the program's last escalation needed, else 4x the base
        level = max(self.hp, self.tape.hint.get(ns.name, 0))
        if level <= self.base:
            level = next_precision(self.base, self.cap, CONE_STEP)
        level = min(level, self.cap)
        if level <= self.base:
            return None             # already at the cap
        while True:
            self.escalate_cone(k, level)
            with ctx.workprec(level):
                s = ns.sign(value())
                if s is None and F is not None:
                    s = self.forms().sign(F)[0]
                    self.beyond = self.beyond or s is not None
                if s is None and not tried:
                    F, s, tried = self.full_sign(form)
                    self.beyond = self.beyond or s is not None
            if s is not None or level >= self.cap:
                return s
            level = next_precision(level, self.cap, CONE_STEP)

    def full_sign(self, form):
        """(form, its sign or None, True) for the full exact form; (None, None, True) when it is too large."""
        try:
            F = form()
            return F, self.forms().sign(F)[0], True
        except TooLarge:
            return None, None, True

    def escalate_cone(self, k, p):
        """Recompute the values step k depends on at ``p`` bits (those not computed at ``p`` bits yet)."""
        tape, ns, full = self.tape, self.ns, self.full
        steps = tape.cone(k)
        with ctx.workprec(p):
            if ns.name == "ball":
                for i in range(tape.n_inputs):
                    full[i] = ns.const(self.inputs[i])
            full[tape.n_vars:] = tape.lit_values(ns)        # every literal, at the new precision
            sp = self.step_prec
            todo = [j for j in steps if sp.get(j, 0) < p] if sp else steps
            self.replay_steps(todo)
            for j in todo:
                self.step_prec[j] = p
        self.hp = max(self.hp, p)
        tape.hint[ns.name] = max(tape.hint.get(ns.name, 0), p)
        if 2 * len(steps) >= len(self.steps):
            # most of the program had to be recomputed: its next run starts at this precision
            tape.start[ns.name] = max(tape.start.get(ns.name, 0), p)

    def replay_steps(self, js):
        """Recompute the steps ``js`` (in order) at the current precision with the pieces already chosen (no
        decision is made again: every sign used was decided, and stays true): along the tape when the run is
        lean, else one step at a time."""
        if self.code is not None:
            code = self.code
            replay([code[j] for j in js], self.full, self.chosen, self.ns, self)
        else:
            for j in js:
                self.replay(j)

    def replay(self, j):
        """Recompute step j at the current precision with the piece already chosen."""
        st, ns, full = self.steps[j], self.ns, self.full
        args = self.args_of(j)
        if st.sel is not None:
            piece = st.piece(self.chosen[self.tape.pos[j]])
            for o, v in zip(st.outs, piece.apply(ns, args)):
                full[o] = v
            return
        prim = st.prim
        if prim in _DOMAIN:
            full[st.outs[0]] = ns.pow(args[0], st.params["n"]) if prim == "pow" else getattr(ns, prim)(*args)
        else:
            full[st.outs[0]] = st.rule(ns, st.params, *args)

    # -- slow paths
    def sign(self, j):
        """The decided sign of switching function j of the current nonsmooth step (``Selection.choose``
        calls this); raises Undecided."""
        s = self.cache.get(j)
        if s is None:
            k = self.cur
            st = self.steps[k]
            terms, const = st.switches[j]
            ns = self.ns
            s = self.resolve(k, lambda: affine(ns, terms, const, self.args_of(k)),
                             lambda: self.forms().affine(st.ins, terms, const),
                             lambda: self.forms().quick(st.ins, terms, const))
            if s is None:
                e = self.program.eqns[k]
                raise self.undecided(f"cannot decide the sign of {switch_text(self.program, e, terms, const)}")
            self.cache[j] = s
        return s

    def undecided(self, msg):
        u = Undecided(msg, prec=self.hp)
        u.cap_reached = self.escalating and self.hp >= self.cap
        return u

    def nonsmooth(self, k):
        """A nonsmooth step through its selection: choose (or the frozen piece), then apply the piece."""
        st = self.steps[k]
        if self.frozen is not None:
            i = self.frozen[self.tape.pos[k] if self.tape is not None else len(self.chosen)]
        else:
            self.cur, self.cache = k, {}
            i = st.sel.choose(st.params, len(st.ins), self.sign)
        self.chosen.append(i)
        full = self.full
        for o, v in zip(st.outs, st.piece(i).apply(self.ns, self.args_of(k))):
            full[o] = v

    def slope_tie(self, k):
        """relu / abs / leaky_relu when the input is not strictly signed: the piece index."""
        st = self.steps[k]
        self.cur, self.cache = k, {}
        return st.sel.choose(st.params, 1, self.sign)

    def domain(self, k):
        """A smooth step whose argument's sign its value does not decide: decide it, then compute."""
        st, ns = self.steps[k], self.ns
        j, allowed, need = _DOMAIN[st.prim]
        slot = self.tape.slots[k][j]
        atom = st.ins[j]
        s = self.resolve(k, lambda: self.full[slot], lambda: self.forms().of_atom(atom),
                         lambda: self.forms().quick((atom,), ((0, Q1),), Q0))
        x = self.full[slot]
        if s is None:
            raise self.undecided(f"cannot decide whether {value_text(ns, x)} is allowed ({need})")
        if s not in allowed:
            raise DomainError(f"{need}, got {value_text(ns, x)}")
        args = self.args_of(k)
        if st.prim == "pow":
            return ns.pow(args[0], st.params["n"])
        return getattr(ns, st.prim)(*args)

    def rule(self, k):
        st = self.steps[k]
        try:
            return st.rule(self.ns, st.params, *self.args_of(k))
        except Undecided:
            if st.prim in _DOMAIN:
                return self.domain(k)
            raise

    # -- the two interpreters
    def lean(self):
        """The tape walk (native number systems): tape.forward, with this runner deciding what the values
        leave open."""
        self.code = self.tape.bound(self.ns)
        forward(self.code, self.full, self.ns, self.frozen, self.chosen, self)

    def generic(self):
        """The rule-table walk (every number system)."""
        full = self.full
        k = -1
        try:
            for st in self.steps:
                k = st.k
                if st.rule is not None:
                    full[st.outs[0]] = self.rule(k)
                else:
                    self.nonsmooth(k)
        except (DomainError, Undecided) as err:
            raise self.located(err, k) from None

    def located(self, err, k):
        """The error re-raised with the equation it happened in (and its source position)."""
        new = type(err)(f"{eqn_where(self.program, k)}: {err}")
        new.__dict__.update(err.__dict__)
        return new


def run(program, ns, xs, convention=kinks.DEFAULT, pattern=None, prec=None, inputs=None, cap=PREC_CAP):
    """Evaluate ``program`` at the values ``xs`` (already in ``ns``), inside the caller's precision context.

    With ``pattern`` (one piece index per nonsmooth equation) every nonsmooth equation is frozen to that
    piece: this evaluates f_sigma, the program's own representation.  ``inputs``: the exact point (fmpq),
    which lets a ball run re-evaluate an undecided equation's dependency cone at a higher precision, up to
    ``cap`` bits (the exact system escalates from its own rational inputs).  Raises DomainError / Undecided
    with the equation and its source position.
    """
    steps = compiled(program, convention)
    nonsmooth = [st for st in steps if st.sel is not None]
    if pattern is not None:
        pattern = tuple(pattern)
        if len(pattern) != len(nonsmooth):
            raise InputError(f"pattern has {len(pattern)} entries, the program has {len(nonsmooth)} "
                             "nonsmooth equations")
        for st, i in zip(nonsmooth, pattern):
            n = st.sel.n_pieces(st.params, len(st.ins))
            if type(i) is not int or not 0 <= i < n:
                raise InputError(f"pattern entry {i!r} for {eqn_where(program, st.k)} must be a piece index 0..{n - 1}")
    tape = tape_of(program, steps, convention)
    if inputs is None and ns.name == "exact" and all(x.__class__ is fmpq for x in xs):
        inputs = xs
    start = tape.start.get(ns.name, 0)
    if start > ctx.prec and inputs is not None and ns.name in ("ball", "exact") and start <= cap:
        # the last run of this program recomputed most of it at ``start`` bits: begin there
        with ctx.workprec(start):
            return run(program, ns, [ns.const(x) for x in inputs], convention, pattern, start, inputs, cap)
    lean = getattr(ns, "native", False) and tape.eval_ok()
    lits = tape.lit_values(ns) if lean else [ns.const(q) for q in tape.lits]
    full = list(xs) + [None] * (program.n_vars - program.n_inputs) + lits
    runner = _Runner(program, steps, tape, ns, full, pattern, inputs, cap)
    if lean:
        runner.lean()
    else:
        runner.generic()
    used = prec if runner.hp == runner.base else runner.hp
    return Run(program, ns, full[:program.n_vars], Args(full, tape.slots), tuple(runner.chosen), used, convention,
               full=full, forms=runner._forms, tape=tape, beyond=runner.beyond)


def forms_of_run(r, inputs=None, symbolic=False, pattern=None, table=None):
    """Exact forms (forms.py) over a completed Run's values.  Value forms (the inputs constant when the run or
    ``inputs`` knows them exactly) are created once and kept on the Run.  ``symbolic=True`` gives forms over
    input atoms (identities of functions near the point, for the pieces of ``pattern``: by default the
    run's own) in a fresh object.  ``table``: share atoms with the forms of other runs at the same point."""
    if not symbolic and r.forms is not None and table is None:
        return r.forms
    steps = compiled(r.program, r.convention)
    env = r.full if r.full is not None else r.env
    F = Forms(r.program, steps, r.ns, env, list(r.pattern if pattern is None else pattern),
              def_steps(r.program, steps), inputs=inputs, symbolic=symbolic, table=table)
    if not symbolic and table is None:
        r.forms = F
    return F


def output_values(r):
    """The output values of a Run (literal outputs become constants of the run's number system)."""
    return [r.env[a] if a.__class__ is int else r.ns.const(a.value) for a in r.program.outputs]


def coerce_point(program, point):
    """The point as a list of fmpq, checked against the program's inputs."""
    xs = parse_point(point)
    if len(xs) != program.n_inputs:
        names = ", ".join(program.input_names)
        raise InputError(f"the point has {len(xs)} coordinate(s) but {program.name} takes {program.n_inputs} "
                         f"input(s) ({names})")
    return xs


@dataclass
class EvalResult:
    """``values``: one per output (fmpq when exact, arb for balls, mpmath iv, numpy floats); ``pattern``:
    piece index per nonsmooth equation; ``exact``: every value is an exact rational."""
    values: list
    pattern: tuple
    exact: bool
    number: str
    prec: int
    convention: str
    run: Run


def evaluate(program, point, number="exact", prec=None, convention=kinks.DEFAULT, pattern=None):
    """Evaluate ``program`` at ``point`` (Algorithm 1); see EvalResult.  Raises DomainError when the
    program is not defined at the point and Undecided when a sign stays undecided up to 4096 bits.  A tensor
    program takes one array per input (numpy arrays, nested lists, ExactArray) and gives a TensorEval."""
    from ..frontends import as_program
    program = as_program(program)
    if not program.is_scalar:
        from . import tensor
        return tensor.evaluate(program, point, number, prec, convention, pattern)
    kinks.check_convention(convention)
    xs = coerce_point(program, point)

    def job(ns, p):
        r = run(program, ns, [ns.const(x) for x in xs], convention, pattern, p, inputs=xs)
        vals = output_values(r)
        return EvalResult(vals, r.pattern, all(ns.is_exact_value(v) for v in vals), ns.name, r.prec, convention, r)
    return escalate(number, prec, job)
