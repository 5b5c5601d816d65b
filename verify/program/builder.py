"""Building programs equation by equation: what the parser, the tracer, the importers, the strategies and
scalarisation have in common.  Every builder ends in ``typecheck``."""
import keyword

from flint import fmpq

from .ir import Arr, Eqn, Lit, Program, typecheck


class Builder:
    """Accumulates equations with fresh variables; ``finish`` returns a typechecked Program."""

    def __init__(self, name, input_names, input_shapes=None, arrays=None):
        self.name = name
        self.input_shapes = None if input_shapes is None else tuple(tuple(s) for s in input_shapes)
        self.arrays = arrays
        self.names = list(input_names)
        self.n_inputs = len(self.names)
        self.eqns = []
        self.taken = set(self.names)
        self._shapes = list(self.input_shapes) if self.input_shapes is not None else [()] * self.n_inputs
        self._shaped = 0        # equations whose output shapes are in _shapes

    def shape_of(self, atom):
        """The shape of an atom of the program built so far (inferred on demand; ProgramError when an
        equation's operands do not fit)."""
        from .ir import resolve_arrays
        from .prims import PRIMITIVES
        if isinstance(atom, Lit):
            return ()
        if isinstance(atom, Arr):
            return tuple(self.arrays[atom.name].shape)
        while self._shaped < len(self.eqns) and len(self._shapes) <= atom:
            e = self.eqns[self._shaped]
            prim = PRIMITIVES[e.prim]
            params = prim.check_params(resolve_arrays(self, dict(e.params)), len(e.ins), e.prim)
            self._shapes.extend(prim.out_shapes([self.shape_of(a) for a in e.ins], params))
            self._shaped += 1
        return self._shapes[atom]

    def fresh(self, hint=None):
        """A new variable name that no other variable uses: ``hint`` (then hint_2, ...) or v1, v2, ..."""
        if hint is None or not hint.isidentifier() or keyword.iskeyword(hint):
            self._k = getattr(self, "_k", 0) + 1
            name = f"v{self._k}"
            while name in self.taken:
                self._k += 1
                name = f"v{self._k}"
        else:
            name, k = hint, 1
            while name in self.taken:
                k += 1
                name = f"{hint}_{k}"
        self.taken.add(name)
        return name

    def reserve(self, names):
        self.taken.update(names)

    def emit(self, prim, ins, params=None, n_out=1, names=None, loc=None):
        """Append ``prim(ins, **params)``; return its output variables (ints)."""
        ins = tuple(a if isinstance(a, (int, Lit, Arr)) else Lit(a) for a in ins)
        params = tuple(sorted((params or {}).items()))
        outs = []
        for i in range(n_out):
            nm = names[i] if names else self.fresh()
            if names:
                self.taken.add(nm)
            self.names.append(nm)
            outs.append(len(self.names) - 1)
        self.eqns.append(Eqn(prim, ins, params, tuple(outs), loc))
        return tuple(outs)

    def finish(self, outputs):
        outputs = tuple(a if isinstance(a, (int, Lit, Arr)) else Lit(fmpq(a)) for a in outputs)
        shapes = self.input_shapes
        if shapes is not None and all(s == () for s in shapes):
            shapes = None
        return typecheck(Program(self.name, tuple(self.names), self.n_inputs, tuple(self.eqns), outputs, shapes,
                                 self.arrays or None))
