"""What a certificate carries for a sign decided beyond values (issue 21): the evidence the checker re-derives.

A switching function's sign is decided by its enclosure (or its exact value) when it can be; otherwise by exact
structure, and each such decision is an ``Exact`` with the data the checker needs to re-derive it:

- ``form``: the switching function is an exact affine combination ``const + sum c_i * v_i`` of program
  variables (the value numbering of forms.py: every atom is the value of a variable, scaled and shifted), an
  identity of functions on the cell (symbolic forms) or of numbers at the point; the sign is that of the
  constant when there are no terms, else of the combination's enclosure;
- ``multiple``: the switching function is exactly ``c`` times an earlier one on the same path (shared switching
  functions: ``min(tanh(x), 1/2)`` beside ``max(tanh(x), 1/2)``), so its sign is ``sign(c)`` times that one's;
- ``monotone``: its t-derivative's enclosure over the cell has a sign and its signs at the cell's ends (one of
  them possibly 0) agree, an end's sign decided by its exact form at that point where its value cannot (the
  relation is stated per end, None for a value);
- ``rational``: on the cell it is the exact rational function ``num / den`` of t (its cone is rational), with
  no root inside the cell;
- ``germ``: at the cell end ``end`` it vanishes with its Taylor coefficients up to order k - 1 (exactly), and
  its k-th Taylor coefficient over the whole cell has one sign (Lagrange's remainder gives the sign).

``point_walk`` is Algorithm 1 at an exact point that records these decisions (its ``form`` ones) for every
switching function of every nonsmooth equation, as the checker replays them.
"""
from dataclasses import dataclass

from flint import fmpq

from ..errors import Undecided
from ..interpret.forms import Forms, TooLarge
from ..interpret.tape import def_steps
from ..rational import fmt_q
from .walk import walk

HOWS = ("form", "multiple", "monotone", "rational", "germ")


@dataclass(frozen=True)
class Exact:
    """The sign of switching function ``j`` of nonsmooth equation ``pos`` proved ``how`` (see the module
    docstring); ``data``: form: (const, ((var, coef), ...)); multiple: ((pos, j), c); monotone: (relation at lo
    or None, relation at hi or None); rational: (num, den) as tuples of fmpq coefficients from the constant
    term; germ: ("lo" or "hi", order)."""
    pos: int
    j: int
    sign: int
    how: str
    data: tuple

    def json(self):
        out = {"switch": [self.pos, self.j], "sign": self.sign}
        if self.how == "form":
            out["form"] = relation_json(*self.data)
        elif self.how == "multiple":
            (p, j), c = self.data
            out["multiple"] = {"of": [p, j], "factor": fmt_q(c)}
        elif self.how == "monotone":
            out["monotone"] = {end: None if r is None else relation_json(*r) for end, r in zip(("lo", "hi"), self.data)}
        elif self.how == "rational":
            num, den = self.data
            out["rational"] = {"num": [fmt_q(c) for c in num], "den": [fmt_q(c) for c in den]}
        else:
            end, k = self.data
            out["germ"] = {"end": end, "order": k}
        return out


def relation_json(const, terms):
    return {"const": fmt_q(const), "terms": [[v, fmt_q(c)] for v, c in terms]}


def relation(F, f):
    """The form ``f`` of the Forms ``F`` as (const, ((var, coef), ...)) over program variables: each atom is the
    value of the variable it was made at, value(atom) = scale * var + offset (forms.py); terms on one variable
    are added up and sorted by variable."""
    const, terms = f.const, {}
    for a, c in f.terms.items():
        _, var, scale, offset = F.source[a]
        const += c * offset
        terms[var] = terms.get(var, fmpq(0)) + c * scale
    return const, tuple(sorted((v, c) for v, c in terms.items() if c != 0))


def form_sign(F, f):
    """(sign or None, relation) of the form f."""
    return F.sign(f)[0], relation(F, f)


# ------------------------------------------------------------------------------------------ at a point

class Stuck(Undecided):
    """A switching function at a point that neither its value nor its exact form decides (at this precision)."""


def point_walk(program, steps, ns, xs, inputs, pattern=None):
    """Algorithm 1 at the exact point ``inputs`` (values ``xs`` in ``ns``): (Run, [Exact]).  Every switching
    function of every nonsmooth equation is decided, by its value, else by its exact form at the point (the
    inputs and every exactly known value are constants: ties that hold by a linear identity); ``pattern``
    freezes the first nonsmooth equations.  Raises Stuck when neither decides (more precision may)."""
    made, state = [], {}

    def decide(pos, j, v, chosen, env):
        s = ns.sign(v)
        if s is not None:
            return s
        F = state.get("forms")
        if F is None:
            F = state["forms"] = Forms(program, steps, ns, env, chosen, def_steps(program, steps), inputs=inputs)
        st = [x for x in steps if x.sel is not None][pos]
        try:
            s, rel = form_sign(F, F.affine(st.ins, *st.switches[j]))
        except TooLarge:
            s = None
        if s is None:
            raise Stuck(f"cannot decide the sign of switching function {j + 1} of nonsmooth equation {pos + 1} "
                        "at the point")
        made.append(Exact(pos, j, s, "form", rel))
        return s
    return walk(program, steps, ns, xs, decide, pattern), made


# ------------------------------------------------------------------------------- decisions at x

class AtPoint:
    """The decisions at the point x that values do not make, recorded for certificates (index sets, critical
    points): a switching function's sign at x (``switch``), and whether a piece's row differs from the chosen
    piece's at x (``difference``: local index sets, continuity in the Clarke walk), both by exact forms at x
    (forms.py with the inputs and every exactly known value constant).  ``r``: the run at x; ``xs``: the exact
    point.  ``json`` gives the evidence: "at_x" (switch signs) and "agree" (piece differences)."""

    def __init__(self, r, xs):
        self.r, self.xs = r, xs
        self.steps = [st for st in compiled_steps(r) if st.sel is not None]
        self.switches, self.differences = {}, {}
        self._forms = None

    def forms(self):
        if self._forms is None:
            from ..interpret.evaluate import forms_of_run
            self._forms = forms_of_run(self.r, inputs=self.xs)
        return self._forms

    def switch(self, pos, j):
        """The sign of switching function j of nonsmooth equation ``pos`` at x by its exact form (recorded), or
        None."""
        key = (pos, j)
        if key not in self.switches:
            st = self.steps[pos]
            try:
                F = self.forms()
                s, rel = form_sign(F, F.affine(st.ins, *st.switches[j]))
            except TooLarge:
                s = None
            self.switches[key] = None if s is None else Exact(pos, j, s, "form", rel)
        e = self.switches[key]
        return None if e is None else e.sign

    def difference(self, pos, i, c, row):
        """The sign at x of row ``row`` of piece i minus the same row of piece c (the chosen one) of nonsmooth
        equation ``pos``, by exact forms (recorded), or None."""
        key = (pos, i, row)
        if key not in self.differences:
            st = self.steps[pos]
            try:
                F = self.forms()
                f = F.sub(F.affine(st.ins, *st.piece(i).rows[row]), F.affine(st.ins, *st.piece(c).rows[row]))
                s, rel = form_sign(F, f)
            except TooLarge:
                s = None
            self.differences[key] = None if s is None else (s, rel)
        got = self.differences[key]
        return None if got is None else got[0]

    def pieces(self):
        """{pos: piece indices} the recorded differences name (the certificate's piece table must list them)."""
        out = {}
        for pos, i, _ in (k for k, v in self.differences.items() if v is not None):
            out.setdefault(pos, set()).add(i)
        return out

    def json(self):
        out = {}
        at = [e.json() for _, e in sorted(self.switches.items()) if e is not None]
        if at:
            out["at_x"] = at
        agree = [{"equation": pos, "piece": i, "row": row, "sign": s, "form": relation_json(*rel)}
                 for (pos, i, row), v in sorted(self.differences.items()) if v is not None for s, rel in [v]]
        if agree:
            out["agree"] = agree
        return out


def compiled_steps(r):
    from ..interpret.evaluate import compiled
    return compiled(r.program, r.convention)
