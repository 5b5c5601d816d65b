"""Algorithm 1 with the sign of every switching function supplied by the caller: the walk the segment cells,
the exact point decisions and the differentiability certifier share (they decide signs in their own ways and
record how)."""
from ..interpret.evaluate import Run
from ..program.prims import affine


class Open(Exception):
    """An undecided switching function: nonsmooth equation ``pos`` (its position among the nonsmooth ones),
    switch ``j``, its series ``value`` over the cell, and the pieces chosen upstream (``prefix``); ``env``:
    the walk's values so far; ``path``: the signs decided on the way, {(pos, j): sign}."""

    def __init__(self, pos, j, value, prefix):
        super().__init__(pos, j)
        self.pos, self.j, self.value, self.prefix = pos, j, value, prefix
        self.env, self.path = None, {}


def walk(program, steps, ns, xs, decide, pattern=None, stop=None, with_env=False):
    """Algorithm 1 with signs from ``decide(pos, j, value, chosen, env)`` (every switch of a nonsmooth equation
    is decided, not only those its index rule reads).  ``pattern`` freezes the first nonsmooth equations; with
    ``stop=(pos, j)`` the value of that switching function is returned instead of a Run (with ``with_env``, the
    pair (value, the walk's values so far))."""
    env = list(xs) + [None] * (program.n_vars - program.n_inputs)
    all_args, chosen = [], []
    for st in steps:
        args = [env[a] if a.__class__ is int else ns.const(a.value) for a in st.ins]
        all_args.append(args)
        if st.rule is not None:
            env[st.outs[0]] = st.rule(ns, st.params, *args)
            continue
        pos = len(chosen)
        if stop is not None and stop[0] == pos:
            v = affine(ns, *st.switches[stop[1]], args)
            return (v, env) if with_env else v
        if pattern is not None and pos < len(pattern):
            i = pattern[pos]
        else:
            try:
                signs = [decide(pos, j, affine(ns, terms, const, args), chosen, env)
                         for j, (terms, const) in enumerate(st.switches)]
            except Open as o:
                o.env = env
                raise
            i = st.sel.choose(st.params, len(args), signs.__getitem__)
        chosen.append(i)
        for o, v in zip(st.outs, st.piece(i).apply(ns, args)):
            env[o] = v
    return Run(program, ns, env, all_args, tuple(chosen), None, None)
