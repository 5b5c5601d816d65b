"""Essential patterns and the Clarke subdifferential; critical points (selection, Clarke, artificial).

Near x, the program's index rule partitions space into regions R_s = {y : s(y) = s}.  The union of their
interiors is dense, and on int R_s the function is f_s, so the Clarke subdifferential at x is the convex
hull of grad f_s(x) over the *essential* patterns s: those with x in the closure of int R_s.

``ClarkeWalk`` finds them depth first over the nonsmooth equations.  At each equation, a switching function
whose value at x is nonzero keeps its sign near x; a *tied* one (value exactly 0 at x) takes either strict
sign on an open set next to x, as long as the strict inequalities collected along the branch are jointly
satisfiable.  Each tied switching function is classified first:

- it is identically zero on the branch (no constraint, sign 0): structurally (max(v, v) switches on v - v),
  affine with a zero gradient (its dependency cone is piecewise linear: + - neg, products and quotients by
  literals, pieces), a linear identity of its exact form over input atoms (tanh(t) - tanh(t)), or a rational
  cone whose numerator vanishes (germs.py);
- its gradient vanishes and its cone is rational: the lowest-order homogeneous part H of its numerator decides
  (germs.py): a sign on an open dense set near x (no constraint), or a constraint tau * H > 0 to lowest order;
- otherwise its gradient is a constraint row.

A sign vector of a node's tied switching functions (with the rows and lowest-order parts collected above it)
is then realized on an open set next to x, or proved empty:

- a strict direction d (every row . d > 0, every tau * H(d) > 0) proves it realized (the inequalities hold
  to first, or lowest, order on a cone of directions); for affine rows this is exact (verify.certify.lp);
- linearly independent rows (and no lowest-order part) prove every sign vector realized (the submersion
  theorem), without a direction;
- a Gordan certificate y >= 0, sum y = 1, sum y_j row_j = 0 proves it empty when every row it weighs comes
  from a switching function that is affine on the branch (their strict inequalities are then infeasible near
  x), even beside smooth nonlinear parts of the program;
- with one input the two sides of x are all there is: no side realizing the signs proves them empty.

Otherwise the answer is UNDECIDED.  The walk's tree of typed nodes (``Node``, ``Branch``) serialises to the
certificate's JSON with the evidence the checker re-derives: the decisions at x that exact forms made
(evidence.AtPoint), identities and lowest-order parts of degenerate ties, Gordan weights, directions.
"""
import itertools
from dataclasses import dataclass, field

from flint import arb_mat, fmpq, fmpq_mat

from ..errors import DomainError, InputError, Undecidable, Undecided
from ..program.prims.steps import require_continuous
from ..frontends import as_program
from ..interpret.evaluate import coerce_point, compiled, forms_of_run, run
from ..interpret.forms import TooLarge
from ..interpret.precision import working_precision, certified_ladder
from ..numbers import get_system
from ..program import kinks
from ..program.ir import Lit
from ..program.prims import affine, jvp_rules
from ..rational import fmt_q
from . import germs
from .evidence import AtPoint
from .index import gradient_key
from .lp import hull_weights, strict_direction

LEAF_CAP = 4096
LINEAR = ("add", "sub", "neg")


def _linear_step(e):
    """An equation affine in its variable operands: + - neg, a product with a literal, a quotient by a literal,
    pow 0 or 1, or a nonsmooth primitive (affine on each piece)."""
    from ..program.prims import PRIMITIVES
    if e.prim in LINEAR or not PRIMITIVES[e.prim].smooth:
        return True
    if e.prim == "mul":
        return any(isinstance(a, Lit) for a in e.ins)
    if e.prim == "div":
        return isinstance(e.ins[1], Lit)
    return e.prim == "pow" and dict(e.params)["n"] in (0, 1)


def is_piecewise_linear(program):
    """True when every equation is affine in its operands on each piece (see ``_linear_step``): then every
    switching function is affine on each pattern's region."""
    return all(_linear_step(e) for e in program.eqns)


def affine_switch(program, k, terms):
    """True when the switching function sum(c * ins[j] for j, c in terms) of equation k is affine on every
    pattern's region: every equation it depends on is affine in its operands (``_linear_step``)."""
    dstep = {o: i for i, e in enumerate(program.eqns) for o in e.outs}
    todo = [program.eqns[k].ins[j] for j, _ in terms]
    seen = set()
    while todo:
        a = todo.pop()
        i = dstep.get(a) if a.__class__ is int else None
        if i is None or i in seen:
            continue
        seen.add(i)
        if not _linear_step(program.eqns[i]):
            return False
        todo.extend(program.eqns[i].ins)
    return True


@dataclass
class Leaf:
    pattern: tuple          # piece index per nonsmooth equation
    gradient: list          # Jacobian of f_pattern at x (rows = outputs)
    direction: list         # d with every branch constraint > 0 at d (exact), or None (independent rows)
    constraints: list       # the rows tau_j grad h_j collected along the branch


@dataclass
class Branch:
    """One sign vector of a node's tied switching functions: pruned (``gordan``: weights over the path's
    constraint rows, all from affine switching functions; or ``empty``: one input, and neither side of x has
    these signs), or taken (``piece`` at the node's equation, then ``next``: a Node or a leaf index)."""
    signs: list
    piece: int = None
    next: object = None
    gordan: list = None
    empty: bool = False

    def json(self):
        out = {"signs": list(self.signs)}
        if self.gordan is not None:
            out["gordan"] = [fmt_q(y) for y in self.gordan]
        elif self.empty:
            out["empty"] = True
        else:
            out["piece"] = self.piece
            out["next"] = {"leaf": self.next} if isinstance(self.next, int) else self.next.json()
        return out


@dataclass
class Node:
    """A nonsmooth equation where switching functions vanish at x on this branch: ``tied`` (indices of those
    that branch), ``zero`` (identically zero on the branch), ``generic`` ([j, sign]: that sign on an open
    dense set near x), ``how`` (j -> the evidence of an identity or of a lowest-order part), ``branches``."""
    eqn: int
    tied: list
    zero: list
    generic: list = field(default_factory=list)
    how: dict = field(default_factory=dict)
    branches: list = field(default_factory=list)

    def shown(self):
        """Whether the certificate states this node: something branches, or a decision needs its evidence."""
        return bool(self.tied or self.generic or self.how)

    def json(self):
        if not self.shown():            # the index rule decides here: the checker replays it
            return self.branches[0].next.json() if isinstance(self.branches[0].next, Node) else \
                {"leaf": self.branches[0].next}
        out = {"eqn": self.eqn, "tied": self.tied, "zero": self.zero, "branches": [b.json() for b in self.branches]}
        if self.generic:
            out["generic"] = self.generic
        if self.how:
            out["degenerate"] = [{"switch": j, **self.how[j]} for j in sorted(self.how)]
        return out

    def pieces(self, pos_of, out):
        """(position, piece) of every piece the stated tree names (for the certificate's piece table)."""
        for b in self.branches:
            if b.piece is not None and self.shown():
                out.append((pos_of[self.eqn], b.piece))
            if isinstance(b.next, Node):
                b.next.pieces(pos_of, out)
        return out


@dataclass
class Path:
    """A branch of the walk in progress: the next equation ``k``, the branch's values ``env`` (its own copy once
    a piece jumps), ``G`` the forward-mode gradients, the pieces so far, the constraint ``rows`` (with
    ``affine`` flags) and lowest-order parts ``polys`` ((H, sign)) collected."""
    k: int
    env: list
    jumped: bool
    G: list
    pattern: list
    rows: list
    affine: list
    polys: tuple = ()


@dataclass
class Ties:
    """The switching functions of one equation at x on a path: their ``signs``, gradients ``grads``, which are
    ``tied`` (and ``affine``), ``zero``, ``generic`` and ``higher`` (j -> (H, sign of the denominator)), with the
    evidence ``how``."""
    signs: list
    grads: list
    tied: list = field(default_factory=list)
    affine: dict = field(default_factory=dict)
    zero: list = field(default_factory=list)
    generic: list = field(default_factory=list)
    higher: dict = field(default_factory=dict)
    how: dict = field(default_factory=dict)


class ClarkeWalk:
    """The walk of the module docstring at the exact point ``xs`` in number system ``ns`` (at the caller's
    precision): ``walk()`` returns the tree; ``leaves`` the essential patterns; ``at`` the decisions at x."""

    def __init__(self, program, ns, xs, convention, pl, leaf_cap):
        self.program, self.ns, self.xs, self.pl, self.leaf_cap = program, ns, xs, pl, leaf_cap
        self.r = run(program, ns, [ns.const(x) for x in xs], convention, inputs=xs)
        self.steps = compiled(program, convention)
        self.n = program.n_inputs
        self.zero, self.one = ns.const(fmpq(0)), ns.const(fmpq(1))
        self.live = program.live_eqns()
        self.pos_of = {st.k: m for m, st in enumerate(st for st in self.steps if st.sel is not None)}
        self.fx = [self.r.env[a] if a.__class__ is int else ns.const(a.value) for a in program.outputs]
        self.leaves = []
        self.at = AtPoint(self.r, xs)
        self._affine = {}

    def walk(self):
        n = self.n
        G = [[self.one if j == i else self.zero for j in range(n)] for i in range(n)]
        G += [None] * (self.program.n_vars - n)
        return self.visit(Path(0, self.r.env, False, G, [], [], []))

    # -- the steps
    def visit(self, path):
        """The subtree from ``path``: a Node, or a leaf index."""
        self.advance(path)
        if path.k == len(self.steps):
            return self.leaf(path)
        st = self.steps[path.k]
        ties = self.classify(path, st)
        node = Node(st.k, ties.tied, ties.zero, ties.generic, ties.how)
        for tau in itertools.product((-1, 1), repeat=len(ties.tied)):
            node.branches.append(self.branch(path, st, ties, tau))
        return node

    def advance(self, path):
        """Through the smooth equations (forward-mode gradients) and those that reach no output (they keep the
        piece chosen at x), up to the next live nonsmooth equation."""
        steps, ns, n = self.steps, self.ns, self.n
        path.G = path.G[:]          # this branch's own copy (branches share the values, not the gradients)
        while path.k < len(steps) and (steps[path.k].sel is None or path.k not in self.live):
            st = steps[path.k]
            if path.k not in self.live:
                if st.sel is not None:
                    path.pattern = path.pattern + [self.r.pattern[self.pos_of[path.k]]]
                path.k += 1
                continue
            args = self.args(path, st)
            if path.jumped:
                path.env = path.env[:]
                try:
                    path.env[st.outs[0]] = st.rule(ns, st.params, *args)
                except DomainError as e:
                    raise DomainError(f"the program is not defined next to x on a branch where an equation jumps "
                                      f"({e})") from None
            gs = [self.grad_of(a, path.G) for a in st.ins]
            out = []
            for j in range(n):      # exact zero tangents are symbolic zeros: 0 times a ball is not exact
                ts = [None if g[j].__class__ is fmpq and g[j] == 0 else g[j] for g in gs]
                t = jvp_rules[st.prim](ns, st.params, args, path.env[st.outs[0]], ts)
                out.append(self.zero if t is None else t)
            path.G[st.outs[0]] = out
            path.k += 1

    def leaf(self, path):
        """An essential pattern: continuity of the outputs, the Jacobian, the direction proving the branch."""
        if len(self.leaves) >= self.leaf_cap:
            raise InputError(f"more than {self.leaf_cap} essential patterns (the limit max_leaves={self.leaf_cap}; "
                             "--max-leaves on the command line)")
        ns = self.ns
        if path.jumped:
            outs = [path.env[a] if a.__class__ is int else ns.const(a.value) for a in self.program.outputs]
            for u, v in zip(outs, self.fx):
                s = ns.sign(ns.sub(u, v))
                if s is None:
                    raise Undecided("cannot decide whether f jumps at x (an equation jumps there)")
                if s != 0:
                    raise DomainError("the program is not continuous at x (its output jumps between pieces "
                                      "there): the Clarke subdifferential is not defined")
        jac = [self.grad_of(a, path.G) for a in self.program.outputs]
        self.leaves.append(Leaf(tuple(path.pattern), jac, self.direction(path), path.rows))
        return len(self.leaves) - 1

    def direction(self, path):
        """The leaf's direction, for every constraint of its path at once: a strict one for piecewise-linear
        programs and for dependent rows, a witness when lowest-order parts constrain; None for independent
        rows (the branches above found each of these on the same constraints)."""
        rows, polys = path.rows, path.polys
        if self.pl:
            d = strict_direction(rows) if rows else [fmpq(0)] * self.n
        elif polys:
            d = _witness(self.ns, self.n, rows, polys)
        elif _independent(self.ns, rows):
            return None
        elif all(v.__class__ is fmpq for r in rows for v in r):
            d = strict_direction(rows)
        else:
            d = _witness(self.ns, self.n, rows, ())
        assert d is not None, "a branch shown realizable has no direction at its leaf"
        return d

    # -- classifying the switching functions at an equation
    def classify(self, path, st):
        """The Ties of equation ``st`` on ``path`` (see the module docstring)."""
        ns, args = self.ns, self.args(path, st)
        gs = [self.grad_of(a, path.G) for a in st.ins]
        ties = Ties([], [])
        for j, (terms, const) in enumerate(st.switches):
            v = affine(ns, terms, const, args)
            s = ns.sign(v)
            if s is None and not path.jumped:
                s = self.at.switch(self.pos_of[st.k], j)
            if s is None:
                raise Undecided(f"cannot decide the sign of a switching function of equation {st.k + 1} at x")
            g = [affine(ns, tuple((i, c) for i, c in terms), fmpq(0), [gg[jj] for gg in gs]) for jj in range(self.n)]
            ties.grads.append(g)
            ties.signs.append(s)
            if s == 0:
                self.tie(path, st, j, terms, const, g, ties)
        return ties

    def tie(self, path, st, j, terms, const, g, ties):
        """Classify switching function j of ``st``, exactly 0 at x (module docstring)."""
        if not terms and const == 0:
            ties.zero.append(j)     # structurally zero (max(v, v) switches on v - v): zero everywhere
            return
        gz = [self.ns.sign(v) for v in g]
        flat = None not in gz and all(v == 0 for v in gz)
        if not flat and None not in gz:
            ties.tied.append(j)
            ties.affine[j] = self.is_affine(st.k, j, terms)
            return
        if flat and self.is_affine(st.k, j, terms):
            ties.zero.append(j)     # affine with zero value and gradient: identically zero on the branch
            return
        if self.identically_zero(path, st, terms, const):
            ties.zero.append(j)     # zero on the branch by a linear identity (tanh(t) - tanh(t))
            ties.how[j] = {"identity": True}
            return
        if not flat:
            raise Undecided(f"cannot decide whether a tied switching function of equation {st.k + 1} has a zero "
                            "gradient")
        self.degenerate(path, st, j, terms, const, ties)

    def degenerate(self, path, st, j, terms, const, ties):
        """A tie with zero gradient: the lowest-order part of its numerator (germs.py), or Undecidable."""
        frac = germs.switch_fraction(self.program, self.steps, self.xs, path.pattern, path.k, terms, const)
        if frac is None:
            raise Undecidable(f"a switching function of equation {st.k + 1} vanishes at x with zero gradient: its "
                              "sign near x depends on higher-order terms, and its dependency cone is not polynomial")
        kind = germs.classify(*frac, self.n)
        ties.how[j] = {"germ": germs.germ_json(*frac, kind, self.n)}
        if kind[0] == "zero":
            ties.zero.append(j)
        elif kind[0] == "generic":
            ties.signs[j] = kind[1]         # that sign on an open dense set near x: no constraint
            ties.generic.append([j, kind[1]])
        else:
            ties.higher[j] = (kind[1], kind[2])
            ties.tied.append(j)
            ties.affine[j] = False

    def identically_zero(self, path, st, terms, const):
        """True when the switching function is the zero function on the branch (its exact form over input
        atoms, for the branch's pieces, is 0): a linear identity such as tanh(t) - tanh(t)."""
        try:
            F = forms_of_run(self.r, symbolic=True, pattern=path.pattern)
            f = F.affine(st.ins, terms, const)
        except TooLarge:
            return False
        return f.is_const and f.const == 0

    def is_affine(self, k, j, terms):
        if (k, j) not in self._affine:
            self._affine[(k, j)] = affine_switch(self.program, k, terms)
        return self._affine[(k, j)]

    # -- branching
    def branch(self, path, st, ties, tau):
        """The Branch of sign vector ``tau`` over the tied switching functions: pruned, or its subtree."""
        ns = self.ns
        rows = path.rows + [[v if t > 0 else ns.neg(v) for v in ties.grads[j]]
                            for t, j in zip(tau, ties.tied) if j not in ties.higher]
        flags = path.affine + [ties.affine[j] for j in ties.tied if j not in ties.higher]
        polys = tuple(path.polys) + tuple((ties.higher[j][0], t * ties.higher[j][1]) for t, j in zip(tau, ties.tied)
                                          if j in ties.higher)
        shown = self.realize(st, rows, flags, polys, bool(ties.tied))
        if shown[0] == "gordan":
            return Branch(list(tau), gordan=shown[1])
        if shown[0] == "empty":
            return Branch(list(tau), empty=True)
        sign_of = dict(enumerate(ties.signs))
        sign_of.update(zip(ties.tied, tau))
        i = st.sel.choose(st.params, len(st.ins), lambda j: sign_of[j])
        child = self.take(path, st, i, rows, flags, polys)
        return Branch(list(tau), piece=i, next=self.visit(child))

    def realize(self, st, rows, flags, polys, tied):
        """How the constraints of a branch are shown realizable next to x, or not: ("ok",) (to be proved at the
        leaf: a strict direction, or independent rows), ("witness", e), ("gordan", y) or ("empty",); raises
        Undecidable when nothing decides (see the module docstring)."""
        if not tied:
            return ("ok",)
        exact = all(v.__class__ is fmpq for r in rows for v in r)
        if self.pl or (exact and not polys):
            if not self.pl and not polys and _independent(self.ns, rows):
                return ("ok",)
            if exact and strict_direction(rows) is not None:
                return ("ok",)
            y = hull_weights(rows) if exact else None
            assert not self.pl or y is not None, "Gordan's alternative failed: a bug in the simplex"
            if y is not None and all(f for f, w in zip(flags, y) if w != 0):
                return ("gordan", y)
        elif not polys and _independent(self.ns, rows):
            return ("ok",)
        if self.n == 1 or polys:
            e = _witness(self.ns, self.n, rows, polys)
            if e is not None:
                return ("witness", e)
            if self.n == 1:
                return ("empty",)
        raise Undecidable(f"tied switching functions (up to equation {st.k + 1}) have linearly dependent gradients "
                          "and are not all affine: the linearised cone cannot decide which patterns are essential, "
                          "and no direction realises the signs to lowest order")

    def take(self, path, st, i, rows, flags, polys):
        """The child path after equation ``st`` takes piece i: the branch's values where the piece jumps (its
        value differs from the primitive's at x), the pieces' gradients."""
        ns, args, piece = self.ns, self.args(path, st), st.piece(i)
        env, jumped = path.env, path.jumped
        for row, (v, o) in enumerate(zip(piece.apply(ns, args), st.outs)):
            d = ns.sub(v, path.env[o])
            s = ns.sign(d)
            if s is None and not path.jumped:
                s = self.at.difference(self.pos_of[st.k], i, self.r.pattern[self.pos_of[st.k]], row)
            if s is None:
                raise Undecided(f"cannot decide whether equation {st.k + 1} jumps at x")
            if s != 0:
                if env is path.env:
                    env = env[:]
                env[o], jumped = v, True
        G = path.G[:]
        gs = [self.grad_of(a, path.G) for a in st.ins]
        for o, (terms, _) in zip(st.outs, piece.rows):
            G[o] = [affine(ns, terms, fmpq(0), [g[jj] for g in gs]) if terms else self.zero for jj in range(self.n)]
        return Path(path.k + 1, env, jumped, G, path.pattern + [i], rows, flags, polys)

    # -- helpers
    def args(self, path, st):
        if not path.jumped:
            return self.r.args[st.k]
        return [path.env[a] if a.__class__ is int else self.ns.const(a.value) for a in st.ins]

    def grad_of(self, atom, G):
        return [self.zero] * self.n if isinstance(atom, Lit) else G[atom]


def _independent(ns, rows):
    """Decided linear independence of ``rows`` (exact rank, or a Gram determinant ball excluding 0)."""
    if not rows:
        return True
    if all(ns.is_exact_value(v) for r in rows for v in r):
        return fmpq_mat([[fmpq(v) for v in r] for r in rows]).rank() == len(rows)
    gram = [[sum((ns.mul(a, b) for a, b in zip(r, s)), ns.const(fmpq(0))) for s in rows] for r in rows]
    det = arb_mat([[v if not isinstance(v, fmpq) else v for v in row] for row in gram]).det()
    s = ns.sign(det)
    if s is None:
        raise Undecided("cannot decide whether the tied switching functions have independent gradients")
    return s != 0


def _witness(ns, n, rows, polys):
    """A rational direction e with <row, e> > 0 for every row and sgn * H(e) > 0 for every (H, sgn) in
    ``polys`` (decided signs only), or None (see germs.py)."""
    for e in germs.directions(n):
        if all(sgn * H(*e) > 0 for H, sgn in polys) and \
                all(ns.sign(sum((ns.mul(ns.const(c), v) for c, v in zip(e, row)), ns.const(fmpq(0)))) == 1
                    for row in rows):
            return e
    return None


@dataclass
class ClarkeResult:
    """``gradients``: distinct Jacobians of the essential patterns (their hull is the Clarke
    subdifferential / generalized Jacobian); ``leaves``: every essential pattern with its witness;
    ``tree``: the walk (a Node, or a leaf index when nothing is tied); ``at``: the decisions at x made by exact
    forms (evidence.AtPoint); ``piecewise_linear``."""
    program: object
    point: list
    convention: str
    gradients: list
    patterns_of: list
    leaves: list
    tree: object
    piecewise_linear: bool
    exact: bool
    prec: int
    number: str
    at: object = None

    def tree_json(self):
        return {"leaf": self.tree} if isinstance(self.tree, int) else self.tree.json()


def clarke(program, point, convention=kinks.DEFAULT, number="exact", prec=None, max_leaves=LEAF_CAP):
    """The essential patterns at ``point`` and the Clarke generalized Jacobian's generators (see
    ClarkeResult).  Raises Undecided when essentiality cannot be decided (dependent tied gradients that are
    not all affine, undecided signs after precision escalation) and DomainError when f (the function the
    outputs compute) jumps at x."""
    program = as_program(program)
    require_continuous(program, "the Clarke subdifferential")
    if not program.is_scalar:
        from .sites import site_clarke
        return site_clarke(program, point, convention, number, prec, max_leaves=max_leaves)[0]
    kinks.check_convention(convention)
    if number not in ("exact", "ball"):
        raise InputError(f"the Clarke subdifferential is certified in exact or ball arithmetic, not {number!r}")
    xs = coerce_point(program, point)
    pl = is_piecewise_linear(program)
    ns = get_system(number)
    failure = None
    for p in certified_ladder(prec):
        try:
            with working_precision(ns, p):
                w = ClarkeWalk(program, ns, xs, convention, pl, max_leaves)
                tree = w.walk()
            failure = None
            break
        except Undecidable:
            raise
        except Undecided as u:
            failure = u
    if failure is not None:
        raise Undecided(f"{failure} (still undecided at {p} bits)", prec=p)
    grads, where, keys = [], [], {}
    for leaf in w.leaves:
        key = gradient_key(leaf.gradient)
        if key not in keys:
            keys[key] = len(grads)
            grads.append(leaf.gradient)
            where.append([])
        where[keys[key]].append(leaf.pattern)
    exact = all(ns.is_exact_value(v) for g in grads for row in g for v in row)
    return ClarkeResult(program, xs, convention, grads, where, w.leaves, tree, pl, exact, p, number, w.at)
