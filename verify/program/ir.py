"""Programs as plain immutable data (the paper's Algorithm 1).

A Program has ``n_inputs`` input variables, a tuple of equations and a tuple of output atoms.  Variables
are integers 0..n_vars-1 (inputs first, then equation outputs in order: static single assignment, nothing
is ever overwritten); ``names`` gives each variable its printed name.  An atom is a variable (int), a
literal ``Lit`` holding an exact rational, or ``Arr``, a named exact array constant of the program's
``arrays`` table.  An equation applies one registered primitive to atoms with explicit keyword params and
defines one or more fresh variables (sort defines several).

Tensor programs: a variable may be an array with a static shape.  ``input_shapes`` gives each input's
shape (None: every input is a scalar, shape ``()``); every other shape is inferred by ``typecheck`` from the
primitives' shape rules (``Program.shapes``).  Elementwise primitives broadcast as numpy does.  The paper's
semantics hold element by element: a nonsmooth primitive on arrays is an array of the paper's scalar
elementary selections (its *sites*), one pattern entry each.

Every builder (parser, tracer, strategies) ends in ``typecheck``.  ``to_text`` prints the canonical
.prog form, one primitive per line; ``parse(to_text(P)) == P``.
"""
import keyword
from dataclasses import dataclass, field

from flint import fmpq

from ..errors import ProgramError
from ..rational import fmt_q


@dataclass(frozen=True)
class Lit:
    value: fmpq

    def __repr__(self):
        return f"Lit({fmt_q(self.value)})"


@dataclass(frozen=True)
class Arr:
    """A named exact array constant; its value is ``program.arrays[name]`` (an ExactArray)."""
    name: str

    def __repr__(self):
        return f"Arr({self.name!r})"


@dataclass(frozen=True)
class Eqn:
    prim: str
    ins: tuple          # atoms: int (a variable) or Lit
    params: tuple       # sorted ((name, value), ...) of the params written explicitly
    outs: tuple         # fresh variables defined here
    loc: tuple = field(default=None, compare=False)  # (line, col) in the source text, when known

    @property
    def param_dict(self):
        return dict(self.params)


@dataclass(frozen=True)
class Program:
    name: str
    names: tuple        # printed name of every variable
    n_inputs: int
    eqns: tuple
    outputs: tuple      # atoms
    input_shapes: tuple = None   # one shape (tuple of ints) per input; None: all scalars
    arrays: object = None        # an Arrays table (name -> ExactArray) when the program uses Arr atoms

    @property
    def shapes(self):
        """The shape of every variable (inputs declared, the rest inferred by typecheck)."""
        sh = self.__dict__.get("_shapes")
        if sh is None:
            sh = _infer_shapes(self)
            object.__setattr__(self, "_shapes", sh)
        return sh

    @property
    def is_scalar(self):
        """True when every value is a scalar and every primitive is a scalar one: the paper's setting,
        run by the scalar interpreter."""
        v = self.__dict__.get("_is_scalar")
        if v is None:
            from .prims import PRIMITIVES
            v = all(s == () for s in self.shapes) and not self.arrays and \
                not any(PRIMITIVES[e.prim].tensor for e in self.eqns)
            object.__setattr__(self, "_is_scalar", v)
        return v

    def atom_shape(self, a):
        if isinstance(a, Lit):
            return ()
        if isinstance(a, Arr):
            return tuple(self.arrays[a.name].shape)
        return self.shapes[a]

    @property
    def n_vars(self):
        return len(self.names)

    @property
    def n_outputs(self):
        return len(self.outputs)

    @property
    def input_names(self):
        return self.names[:self.n_inputs]

    def nonsmooth_eqns(self):
        """Indices of the equations whose primitive is nonsmooth: one pattern entry each, in this order."""
        from .prims import PRIMITIVES
        return [k for k, e in enumerate(self.eqns) if not PRIMITIVES[e.prim].smooth]

    def live_eqns(self):
        """The set of indices of the equations whose outputs reach an output of the program (the others cannot
        change the function it computes)."""
        need, live = {a for a in self.outputs if a.__class__ is int}, set()
        for k in reversed(range(len(self.eqns))):
            e = self.eqns[k]
            if any(o in need for o in e.outs):
                live.add(k)
                need.update(a for a in e.ins if a.__class__ is int)
        return live

    def __str__(self):
        return to_text(self)


def typecheck(p):
    """Check single assignment, bound atoms, known primitives, arity and params; return ``p`` unchanged.

    Raises ProgramError naming the equation.  Params are checked by the primitive's own validators.
    """
    from .prims import PRIMITIVES
    if not isinstance(p.name, str) or not p.name.isidentifier() or keyword.iskeyword(p.name):
        raise ProgramError(f"program name {p.name!r} is not an identifier")
    if len(set(p.names)) != len(p.names):
        dup = sorted({n for n in p.names if p.names.count(n) > 1})
        raise ProgramError(f"variable names must be distinct: {dup} repeated")
    for n in p.names:
        if not isinstance(n, str) or not n.isidentifier() or keyword.iskeyword(n):
            raise ProgramError(f"variable name {n!r} is not an identifier")
    if not 0 <= p.n_inputs <= len(p.names):
        raise ProgramError(f"n_inputs={p.n_inputs} does not fit {len(p.names)} variables")
    defined = p.n_inputs

    if p.input_shapes is not None:
        if len(p.input_shapes) != p.n_inputs:
            raise ProgramError(f"{len(p.input_shapes)} input shapes for {p.n_inputs} inputs")
        for sh in p.input_shapes:
            if not isinstance(sh, tuple) or not all(type(d) is int and d >= 0 for d in sh):
                raise ProgramError(f"input shape {sh!r} must be a tuple of non-negative ints")

    def check_atom(a, where):
        if isinstance(a, Lit):
            if not isinstance(a.value, fmpq):
                raise ProgramError(f"{where}: literal {a.value!r} is not an fmpq")
        elif isinstance(a, Arr):
            if p.arrays is None or a.name not in p.arrays:
                raise ProgramError(f"{where}: array constant {a.name!r} is not in the program's arrays")
        elif type(a) is not int or not 0 <= a < defined:
            raise ProgramError(f"{where}: variable {a!r} is used before it is defined")

    for k, e in enumerate(p.eqns):
        where = f"equation {k + 1} ({e.prim})"
        prim = PRIMITIVES.get(e.prim)
        if prim is None:
            raise ProgramError(f"{where}: unknown primitive {e.prim!r}")
        for a in e.ins:
            check_atom(a, where)
        params = prim.check_params(dict(e.params), len(e.ins), where)
        if tuple(sorted(e.params)) != e.params:
            raise ProgramError(f"{where}: params must be sorted by name")
        n_out = prim.n_out(len(e.ins), params)
        if len(e.outs) != n_out:
            raise ProgramError(f"{where}: {e.prim} defines {n_out} value(s), got {len(e.outs)}")
        for o in e.outs:
            if o != defined:
                raise ProgramError(f"{where}: outputs must be fresh variables in order (got {o}, expected {defined})")
            defined += 1
    if defined != len(p.names):
        raise ProgramError(f"{len(p.names) - defined} variable(s) are never defined")
    if not p.outputs:
        raise ProgramError("a program needs at least one output")
    for a in p.outputs:
        check_atom(a, "return")
    object.__setattr__(p, "_shapes", _infer_shapes(p))
    return p


def resolve_arrays(p, params):
    """params with every array-constant param (an Arr) replaced by its ExactArray."""
    if not any(isinstance(v, Arr) for v in params.values()):
        return params
    out = {}
    for k, v in params.items():
        if isinstance(v, Arr):
            if p.arrays is None or v.name not in p.arrays:
                raise ProgramError(f"param {k}: array constant {v.name!r} is not in the program's arrays")
            v = p.arrays[v.name]
        out[k] = v
    return out


def _infer_shapes(p):
    """Every variable's shape from the input shapes and the primitives' shape rules (ProgramError when a
    rule rejects its operands, naming the equation)."""
    from .prims import PRIMITIVES
    shapes = list(p.input_shapes) if p.input_shapes is not None else [()] * p.n_inputs

    def shape_of(a):
        if isinstance(a, Lit):
            return ()
        if isinstance(a, Arr):
            return tuple(p.arrays[a.name].shape)
        return shapes[a]
    for k, e in enumerate(p.eqns):
        prim = PRIMITIVES[e.prim]
        try:
            params = prim.check_params(resolve_arrays(p, dict(e.params)), len(e.ins), e.prim)
            outs = prim.out_shapes([shape_of(a) for a in e.ins], params)
        except ProgramError as err:
            loc = f" (line {e.loc[0]}:{e.loc[1]})" if e.loc else ""
            raise ProgramError(f"equation {k + 1} ({e.prim}){loc}: {err}") from None
        shapes.extend(outs)
    return tuple(shapes)


# ---------------------------------------------------------------------------------------------- printing

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def lit_text(q, wrap=False):
    """A literal as program text; parenthesised in operator context unless it is a non-negative integer."""
    s = fmt_q(q)
    if wrap and (q.q != 1 or q < 0):
        return f"({s})"
    return s


def param_text(v):
    if v is None:
        return "None"
    if isinstance(v, Arr):
        return f"const({v.name!r})"
    if isinstance(v, tuple):
        return "(" + ", ".join(param_text(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, fmpq):
        return lit_text(v)
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return repr(v)
    raise ProgramError(f"param value {v!r} cannot be printed")


def eqn_text(p, e):
    """The right-hand side of one equation as program text."""
    def atom(a, wrap=False):
        if isinstance(a, Lit):
            return lit_text(a.value, wrap)
        return f"const({a.name!r})" if isinstance(a, Arr) else p.names[a]
    params = dict(e.params)
    has_var = any(isinstance(a, int) for a in e.ins)
    if has_var and e.prim in _INFIX:
        return f"{atom(e.ins[0], True)} {_INFIX[e.prim]} {atom(e.ins[1], True)}"
    if has_var and e.prim == "neg":
        return f"-{atom(e.ins[0], True)}"
    if has_var and e.prim == "pow":
        return f"{atom(e.ins[0], True)} ** {params['n']}"
    if e.prim == "where":
        u, v, a, b = (atom(x) for x in e.ins)
        return f"where({u} {params.get('op', '>')} {v}, {a}, {b})"
    args = [atom(a) for a in e.ins] + [f"{k}={param_text(v)}" for k, v in e.params]
    return f"{e.prim}({', '.join(args)})"


def shape_text(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def to_text(p):
    """Canonical .prog text of ``p``: one ``def``, one primitive per line.  Tensor inputs are annotated with
    their shape (``x: [128, 784]``); array constants are ``const("name")``, and the side file holding them is
    named with the arrays' content digest in a first line ``arrays("file.npz", digest="...")``."""
    lines = []
    if p.arrays:
        lines += [f"arrays({(p.arrays.file or p.name + '.npz')!r}, digest={p.arrays.digest!r})", ""]
    if p.input_shapes is not None and any(sh != () for sh in p.input_shapes):
        args = [f"{n}: {shape_text(sh)}" if sh != () else n for n, sh in zip(p.input_names, p.input_shapes)]
    else:
        args = list(p.input_names)
    lines.append(f"def {p.name}({', '.join(args)}):")
    for e in p.eqns:
        lhs = ", ".join(p.names[o] for o in e.outs)
        lines.append(f"    {lhs} = {eqn_text(p, e)}")
    outs = ", ".join(lit_text(a.value) if isinstance(a, Lit) else (f"const({a.name!r})" if isinstance(a, Arr)
                                                                     else p.names[a]) for a in p.outputs)
    lines.append(f"    return {outs}")
    return "\n".join(lines) + "\n"


def eqn_label(p, k):
    """``name = rhs`` of equation k, for messages."""
    e = p.eqns[k]
    return f"{', '.join(p.names[o] for o in e.outs)} = {eqn_text(p, e)}"


def eqn_where(p, k):
    """"equation k+1 `name = rhs` (line L:C)": where a message happened, with the source position if known."""
    e = p.eqns[k]
    loc = f" (line {e.loc[0]}:{e.loc[1]})" if e.loc else ""
    return f"equation {k + 1} `{eqn_label(p, k)}`{loc}"


def switch_text(program, e, terms, const):
    """A switching function sum(c * e.ins[j] for j, c in terms) + const of equation e as text, for messages
    (``v1 - 1/2``)."""
    parts = []
    for j, c in terms:
        a = e.ins[j]
        name = lit_text(a.value, True) if isinstance(a, Lit) else program.names[a]
        coef = "" if c == 1 else ("-" if c == -1 else f"{lit_text(c, True)}*")
        parts.append(f"{coef}{name}")
    if const != 0:
        parts.append(lit_text(const, True))
    return " + ".join(parts).replace("+ -", "- ") or "0"
