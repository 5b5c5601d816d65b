"""A last reduction pass over a failing example, after hypothesis's shrinker: delete equations one at a time
(a deleted equation's outputs are replaced by its first argument) and simplify point coordinates, keeping
each change only when the claim still fails the same way.  Hypothesis's shrinker works on the choices that
generated the example and can stop in a local minimum; this pass works on the program itself."""
from flint import fmpq

from ..frontends import Builder
from ..program.ir import Lit, Program


def drop_equation(program, k):
    """``program`` without equation k: every use of its outputs reads its first argument instead."""
    e = program.eqns[k]
    repl = e.ins[0]
    b = Builder(program.name, program.input_names)
    env = {i: i for i in range(program.n_inputs)}

    def atom(a):
        return a if isinstance(a, Lit) else env[a]

    for j, f in enumerate(program.eqns):
        if j == k:
            for o in f.outs:
                env[o] = atom(repl)
            continue
        names = [program.names[o] for o in f.outs]
        outs = b.emit(f.prim, [atom(a) for a in f.ins], dict(f.params), n_out=len(f.outs), names=names)
        for o, v in zip(f.outs, outs):
            env[o] = v
    return b.finish([atom(a) for a in program.outputs])


def _size(q):
    return int(q.q), abs(int(q.p)), q < 0


def _simpler(q):
    """Strictly simpler replacements for a coordinate (smaller denominator, then numerator), simplest first."""
    out = [fmpq(0), fmpq(1), fmpq(-1), fmpq(int(q.p) // int(q.q)), fmpq(-(-int(q.p) // int(q.q)))]
    return sorted({c for c in out if _size(c) < _size(q)}, key=_size)


def reduce_example(example, fails, budget=200):
    """A smaller example on which ``fails(example)`` still holds (``fails`` returns True when the claim fails
    the same way).  At most ``budget`` calls of ``fails``."""
    import dataclasses
    calls = [0]

    def attempt(candidate):
        if calls[0] >= budget:
            return False
        calls[0] += 1
        try:
            return fails(candidate)
        except Exception:               # noqa: BLE001 - a candidate that breaks differently is not kept
            return False

    ex = example
    changed = True
    while changed and calls[0] < budget:
        changed = False
        # equations of every program in the example, from the last one (dead code first)
        slots = [("program", None)] + [("extra", k) for k, v in ex.extra.items() if isinstance(v, Program)]
        for where, key in slots:
            prog = ex.program if where == "program" else ex.extra[key]
            k = len(prog.eqns) - 1
            while k >= 0 and calls[0] < budget:
                prog = ex.program if where == "program" else ex.extra[key]
                if k >= len(prog.eqns):
                    k -= 1
                    continue
                try:
                    smaller = drop_equation(prog, k)
                except Exception:       # noqa: BLE001 - e.g. an argument that no longer typechecks
                    k -= 1
                    continue
                cand = (dataclasses.replace(ex, program=smaller) if where == "program"
                        else dataclasses.replace(ex, extra={**ex.extra, key: smaller}))
                if attempt(cand):
                    ex, changed = cand, True
                k -= 1
        for i, q in enumerate(ex.point):
            for c in _simpler(q):
                pt = list(ex.point)
                pt[i] = c
                cand = dataclasses.replace(ex, point=pt)
                if attempt(cand):
                    ex, changed = cand, True
                    break
    return ex
