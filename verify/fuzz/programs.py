"""Small program transformations the claims need: composition (Proposition 4)."""
from ..frontends import Builder
from ..program.ir import Lit


def compose(outer, inner, name=None):
    """The program x -> outer(inner(x)): inner's equations, then outer's with its inputs replaced by inner's
    outputs (outer.n_inputs must equal inner.n_outputs).  Variables are renamed apart; the pattern of the
    composition is inner's pattern followed by outer's."""
    if outer.n_inputs != inner.n_outputs:
        raise ValueError(f"{outer.name} takes {outer.n_inputs} input(s) but {inner.name} has {inner.n_outputs} "
                         "output(s)")
    b = Builder(name or f"{outer.name}_of_{inner.name}", inner.input_names)

    def copy(prog, env):
        for e in prog.eqns:
            ins = [a if isinstance(a, Lit) else env[a] for a in e.ins]
            hints = [prog.names[o] for o in e.outs]
            names = [b.fresh(h) for h in hints]
            outs = b.emit(e.prim, ins, dict(e.params), n_out=len(e.outs), names=names)
            for o, v in zip(e.outs, outs):
                env[o] = v
        return [a if isinstance(a, Lit) else env[a] for a in prog.outputs]

    mid = copy(inner, {i: i for i in range(inner.n_inputs)})
    outs = copy(outer, {i: mid[i] for i in range(outer.n_inputs)})
    return b.finish(outs)
