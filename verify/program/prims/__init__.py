"""Primitives.  One primitive = one ``Primitive`` object, registered with its rules right below it.

Smooth primitives (elementary functions, Definition 1 of the paper, plus sin/cos/tanh/sigmoid as the
analytic extension of its Remark 1) have three rules: ``eval_rules[name](ns, params, *xs)``,
``jvp_rules[name](ns, params, xs, y, ts) -> t_out`` and ``vjp_rules[name](ns, params, xs, y, ct) ->
cts`` (one cotangent per input).  A smooth rule checks its own domain and raises DomainError (outside) or
Undecided (the sign needed cannot be decided in this number system at this precision).

Nonsmooth primitives are elementary selections (Definition 3) and have one rule, a ``Selection`` in
``selection_rules``: every piece is an affine map with rational coefficients of the primitive's inputs,
and the index rule is a function of the signs of a finite list of affine *switching functions* of the
inputs.  Evaluation, forward and backward mode of a nonsmooth primitive all go through the chosen piece,
so AD is exactly the selection derivative.

Piecewise constant primitives (floor, ceil, round, trunc: steps.py) have the three rules of a smooth one
(derivative 0): only the chosen step agrees with the value at a jump, so their local index set is one
piece.  They are discontinuous (``continuous=False``), as is the nonsmooth ``mode``.
"""
from dataclasses import dataclass

import numpy as np
from flint import fmpq

from ...errors import ProgramError
from ...truth import SIGN_UNDECIDED

PRIMITIVES = {}
eval_rules, jvp_rules, vjp_rules, selection_rules = {}, {}, {}, {}
RULE_TABLES = {"eval": eval_rules, "jvp": jvp_rules, "vjp": vjp_rules, "selection": selection_rules}

RATIONAL, OPT_RATIONAL, BOOL, INT = "rational", "rational or None", "bool", "int"
INTS, OPT_INTS = "tuple of ints", "tuple of ints or None"
ARRAY = "array constant (const(\"name\"))"


def broadcast_shapes(shapes):
    """numpy's broadcasting of the input shapes (ProgramError when they do not broadcast)."""
    try:
        return tuple(np.broadcast_shapes(*shapes)) if shapes else ()
    except ValueError:
        raise ProgramError("shapes " + ", ".join(str(list(s)) for s in shapes) + " do not broadcast") from None


def elementwise_shapes(prim, in_shapes, params):
    """The default shape rule: every output has the broadcast shape of the inputs."""
    out = broadcast_shapes(in_shapes)
    return [out] * prim.n_out(len(in_shapes), params)


class Primitive:
    """A named primitive: arity (min, max or None), its params {name: (default, kind)} and whether smooth.

    ``kind`` is RATIONAL, OPT_RATIONAL, BOOL, INT or a tuple of allowed strings.  ``required`` params have
    no default and must be written explicitly (pow's ``n``, where's ``op``).
    """

    def __init__(self, name, arity, smooth, params=None, required=(), doc="", n_out=None, shape_rule=None,
                 tensor=False, continuous=True):
        self.name, self.arity, self.smooth, self.doc = name, arity, smooth, doc
        self.params = params or {}
        self.required = tuple(required)
        self._n_out = n_out
        self._shape_rule = shape_rule
        self.tensor = tensor      # a primitive of tensor programs only (matmul, sum, reshape, ...)
        # False for a primitive with jumps (floor, ...; mode): claims that need a continuous program refuse it
        self.continuous = continuous

    def __repr__(self):
        return f"<primitive {self.name}>"

    def n_out(self, n_in, params):
        return self._n_out(n_in, params) if self._n_out else 1

    def out_shapes(self, in_shapes, params):
        """The shapes of the outputs for these input shapes (ProgramError when they do not fit)."""
        if self._shape_rule is None:
            return elementwise_shapes(self, in_shapes, params)
        return self._shape_rule(in_shapes, params)

    def check_params(self, explicit, n_in, where):
        """Validate arity and explicit params; return the params with defaults filled in."""
        lo, hi = self.arity
        if n_in < lo or (hi is not None and n_in > hi):
            want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
            raise ProgramError(f"{where}: {self.name} takes {want} argument(s), got {n_in}")
        for k in self.required:
            if k not in explicit:
                raise ProgramError(f"{where}: {self.name} needs the param {k}=")
        out = {k: d for k, (d, _) in self.params.items()}
        for k, v in explicit.items():
            if k not in self.params:
                known = ", ".join(sorted(self.params)) or "none"
                raise ProgramError(f"{where}: {self.name} has no param {k!r} (params: {known})")
            out[k] = check_value(self.params[k][1], v, f"{where}: {self.name} param {k}")
        return out


def check_value(kind, v, what):
    """Validate one param value against its kind; return it."""
    ok = {
        RATIONAL: isinstance(v, fmpq),
        OPT_RATIONAL: v is None or isinstance(v, fmpq),
        BOOL: isinstance(v, bool),
        INT: isinstance(v, int) and not isinstance(v, bool),
        INTS: isinstance(v, tuple) and all(isinstance(x, int) and not isinstance(x, bool) for x in v),
        OPT_INTS: v is None or isinstance(v, tuple) and all(isinstance(x, int) and not isinstance(x, bool) for x in v),
        ARRAY: type(v).__name__ in ("Arr", "ExactArray"),
    }.get(kind) if isinstance(kind, str) else v in kind
    if not ok:
        want = kind if isinstance(kind, str) else "one of " + ", ".join(repr(c) for c in kind)
        raise ProgramError(f"{what}={v!r} must be {want}")
    return v


def register(prim):
    PRIMITIVES[prim.name] = prim
    return prim


@dataclass(frozen=True)
class Piece:
    """An affine map with rational data: output r = sum(c * x[j] for j, c in rows[r][0]) + rows[r][1].

    ``rows[r][0]`` is a sparse tuple of (input index, fmpq coefficient) with nonzero coefficients.
    """
    rows: tuple
    label: str

    def apply(self, ns, xs):
        return [affine(ns, terms, const, xs) for terms, const in self.rows]


def affine(ns, terms, const, xs):
    """sum(c * xs[j]) + const in the number system ns; coefficients 1 and -1 cost no multiplication."""
    acc = None
    for j, c in terms:
        x = xs[j]
        if x is None:          # a symbolic zero tangent
            continue
        t = x if c == 1 else (ns.neg(x) if c == -1 else ns.mul(ns.const(c), x))
        acc = t if acc is None else ns.add(acc, t)
    if const != 0 or acc is None:
        k = ns.const(const)
        acc = k if acc is None else ns.add(acc, k)
    return acc


def linear_piece(label, *rows):
    """Piece from dense rows of (coefficients..., constant)."""
    out = []
    for row in rows:
        *coefs, const = row
        out.append((tuple((j, fmpq(c)) for j, c in enumerate(coefs) if c != 0), fmpq(const)))
    return Piece(tuple(out), label)


class Selection:
    """The elementary selection of one nonsmooth primitive.  Subclasses implement:

    - ``switches(params, n)``: list of affine forms (terms, const) of the inputs whose signs decide the piece;
    - ``choose(params, n, sign)``: the piece index picked by the index rule, where ``sign(k)`` is the
      decided sign (-1, 0, 1) of switching function k (it raises Undecided when it cannot decide);
    - ``n_pieces(params, n)`` and ``piece(params, n, i)``: the pieces, indexed 0..n_pieces-1.

    Invariant (tested): the chosen piece's value equals the primitive's value at every input, and every
    piece agrees with the primitive wherever the index rule can choose it.
    """

    def pieces(self, params, n):
        return [self.piece(params, n, i) for i in range(self.n_pieces(params, n))]

    def choose_array(self, params, n, signs):
        """``choose`` at many sites at once: ``signs`` holds one int8 array per switching function (-1, 0, 1,
        or SIGN_UNDECIDED).  Returns (piece index array, bool array of the sites whose choice needed an
        undecided sign).  This generic version calls ``choose`` site by site, so a site is undecided exactly
        when ``choose`` consults an undecided sign; selections with a vectorised rule override it."""
        m = len(signs[0]) if signs else 0
        out = np.zeros(m, dtype=object if self.n_pieces(params, n) >= 2 ** 62 else np.int64)
        und = np.zeros(m, dtype=bool)
        cols = [s.tolist() for s in signs]

        class _Und(Exception):
            pass

        for i in range(m):
            def sign(j, i=i):
                v = cols[j][i]
                if v == SIGN_UNDECIDED:
                    raise _Und
                return v
            try:
                out[i] = self.choose(params, n, sign)
            except _Und:
                und[i] = True
        return out, und


from . import nonsmooth as _nonsmooth, smooth as _smooth, steps as _steps, tensor as _tensor  # noqa: E402,F401,I001  (registers everything)
from . import spectral as _spectral  # noqa: E402,F401,I001
