"""Algorithm 1 of the paper: evaluate a program in a number system and record the pattern (the piece chosen
by each nonsmooth equation's index rule).

In balls an index rule may be undecided (a switching function whose ball contains 0 but is not exactly 0):
the run is repeated at twice the precision, up to a cap, and then the honest answer is Undecided, naming
the equation.  A value that is exactly rational decides exactly, at any precision.
"""
import contextlib
from dataclasses import dataclass

from flint import ctx

from ..program import kinks
from ..errors import DomainError, InputError, Undecided
from ..program.ir import Lit, eqn_label
from ..numbers import get_system
from ..numbers.interval import IntervalSystem
from ..program.prims import PRIMITIVES, affine, eval_rules, selection_rules
from ..rational import parse_point

DEFAULT_PREC = 128
PREC_CAP = 4096


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
        for k, e in enumerate(program.eqns):
            params = kinks.resolve(e, convention)
            st = Step(k, e.prim, e.ins, e.outs, params)
            if PRIMITIVES[e.prim].smooth:
                st.rule = eval_rules[e.prim]
            else:
                st.sel = selection_rules[e.prim]
                st.switches = [_merge(e.ins, terms, const) for terms, const in st.sel.switches(params, len(e.ins))]
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
    pattern, and the number system and precision used."""
    program: object
    ns: object
    env: list
    args: list
    pattern: tuple
    prec: int
    convention: str


def _where(program, k):
    e = program.eqns[k]
    loc = f" (line {e.loc[0]}:{e.loc[1]})" if e.loc else ""
    return f"equation {k + 1} `{eqn_label(program, k)}`{loc}"


def _switch_text(program, e, terms, const):
    from ..program.ir import lit_text
    parts = []
    for j, c in terms:
        a = e.ins[j]
        name = lit_text(a.value, True) if isinstance(a, Lit) else program.names[a]
        coef = "" if c == 1 else ("-" if c == -1 else f"{lit_text(c, True)}*")
        parts.append(f"{coef}{name}")
    if const != 0:
        parts.append(lit_text(const, True))
    return " + ".join(parts).replace("+ -", "- ") or "0"


def run(program, ns, xs, convention=kinks.DEFAULT, pattern=None, prec=None):
    """Evaluate ``program`` at the values ``xs`` (already in ``ns``), inside the caller's precision context.

    With ``pattern`` (one piece index per nonsmooth equation) every nonsmooth equation is frozen to that
    piece: this evaluates f_sigma, the program's own representation.  Raises DomainError / Undecided with
    the equation and its source position.
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
                raise InputError(f"pattern entry {i!r} for {_where(program, st.k)} must be a piece index 0..{n - 1}")
    env = list(xs) + [None] * (program.n_vars - program.n_inputs)
    lits = {}
    all_args, chosen = [], []
    for st in steps:
        args = []
        for a in st.ins:
            if a.__class__ is int:
                args.append(env[a])
            else:
                # keyed by the Lit object: hashing an fmpq builds a fractions.Fraction (~4 us)
                v = lits.get(id(a))
                if v is None:
                    v = lits[id(a)] = ns.const(a.value)
                args.append(v)
        all_args.append(args)
        try:
            if st.rule is not None:
                env[st.outs[0]] = st.rule(ns, st.params, *args)
                continue
            if pattern is not None:
                i = pattern[len(chosen)]
            else:
                signs = {}

                def sign(j, st=st, args=args, signs=signs):
                    s = signs.get(j, 2)
                    if s == 2:
                        terms, const = st.switches[j]
                        s = signs[j] = ns.sign(affine(ns, terms, const, args))
                    if s is None:
                        e = program.eqns[st.k]
                        raise Undecided(f"cannot decide the sign of {_switch_text(program, e, *st.switches[j])}")
                    return s
                i = st.sel.choose(st.params, len(args), sign)
            chosen.append(i)
            for o, v in zip(st.outs, st.piece(i).apply(ns, args)):
                env[o] = v
        except (DomainError, Undecided) as err:
            msg = f"{_where(program, st.k)}: {err}"
            raise type(err)(msg) from None
    return Run(program, ns, env, all_args, tuple(chosen), prec, convention)


def output_values(r):
    """The output values of a Run (literal outputs become constants of the run's number system)."""
    return [r.env[a] if a.__class__ is int else r.ns.const(a.value) for a in r.program.outputs]


@contextlib.contextmanager
def _precision(ns, bits):
    if bits is None:
        yield
    elif isinstance(ns, IntervalSystem):
        with ns.precision(bits):
            yield
    else:
        with ctx.workprec(bits):
            yield


def escalate(number, prec, job, cap=PREC_CAP):
    """Run ``job(ns, prec)`` in number system ``number`` at ``prec`` bits (default 128), doubling the
    precision on Undecided up to ``cap`` bits.  Floats run once.  Returns job's result."""
    ns = get_system(number)
    if ns.name.startswith("float"):
        return job(ns, None)
    if prec is not None and (type(prec) is not int or prec < 2):
        raise InputError(f"prec={prec!r} must be an integer number of bits >= 2")
    p = prec or DEFAULT_PREC
    cap = max(cap, p)
    while True:
        try:
            with _precision(ns, p):
                return job(ns, p)
        except Undecided as u:
            if p >= cap:
                raise Undecided(f"{u} (still undecided at {p} bits)", prec=p) from None
            p = min(2 * p, cap)


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
        r = run(program, ns, [ns.const(x) for x in xs], convention, pattern, p)
        vals = output_values(r)
        return EvalResult(vals, r.pattern, all(ns.is_exact_value(v) for v in vals), ns.name, p, convention, r)
    return escalate(number, prec, job)
