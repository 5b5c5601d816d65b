"""Essential patterns and the Clarke subdifferential; critical points (selection, Clarke, artificial).

Near x, the program's index rule partitions space into regions R_s = {y : s(y) = s}.  The union of their
interiors is dense, and on int R_s the function is f_s, so the Clarke subdifferential at x is the convex
hull of grad f_s(x) over the *essential* patterns s: those with x in the closure of int R_s.

We find them by a depth-first walk over the nonsmooth equations.  At each equation, a switching function
whose value at x is nonzero keeps its sign near x; a *tied* one (value exactly 0 at x) takes either strict
sign on an open set next to x, as long as the strict inequalities collected along the branch are jointly
satisfiable.  For piecewise-linear programs with rational data (only + - neg, products and quotients by
literals besides the nonsmooth primitives) every switching function is affine on a branch, so:
  - a direction d with <tau_j grad h_j, d> > 0 for all constraints proves the branch's region has interior
    arbitrarily close to x (essential),
  - a Gordan certificate y >= 0, sum y = 1, sum y_j tau_j grad h_j = 0 proves it has none (pruned),
both exact (verify.certify.lp).  A tied switching function with zero gradient is identically zero on the
branch (sign 0 there).  For other programs we use the linearised cone when the tied switching functions
along a branch have linearly independent gradients (then every strict sign vector is realised on an open
set next to x, by the submersion theorem); otherwise the answer is UNDECIDED.
"""
import itertools
from dataclasses import dataclass

from flint import arb_mat, fmpq, fmpq_mat

from ..program import kinks
from ..errors import DomainError, InputError, Undecidable, Undecided
from ..interpret.evaluate import coerce_point, compiled, forms_of_run, run, structure_allowed
from ..interpret.precision import at_precision, certified_ladder
from ..interpret.forms import TooLarge
from ..frontends import as_program
from ..program.ir import Lit
from ..numbers import get_system
from ..program.prims import affine, jvp_rules
from . import germs
from .lp import hull_weights, strict_direction

LEAF_CAP = 4096


def is_piecewise_linear(program):
    """True when every smooth equation is + - neg, a product with a literal, a quotient by a literal or
    pow with n in {0, 1}: then every switching function is affine on each pattern's region."""
    for e in program.eqns:
        if e.prim in ("add", "sub", "neg"):
            continue
        if e.prim == "mul" and any(isinstance(a, Lit) for a in e.ins):
            continue
        if e.prim == "div" and isinstance(e.ins[1], Lit):
            continue
        if e.prim == "pow" and dict(e.params)["n"] in (0, 1):
            continue
        if e.prim in ("exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "erf", "mul", "div", "pow"):
            return False
    return True


@dataclass
class Leaf:
    pattern: tuple          # piece index per nonsmooth equation
    gradient: list          # Jacobian of f_pattern at x (rows = outputs)
    direction: list         # PL: d with every branch constraint > 0 at d; None otherwise
    constraints: list       # the rows tau_j grad h_j collected along the branch


@dataclass
class ClarkeResult:
    """``gradients``: distinct Jacobians of the essential patterns (their hull is the Clarke
    subdifferential / generalized Jacobian); ``leaves``: every essential pattern with its witness;
    ``tree``: the walk (nodes at equations with tied switching functions, branches with the sign vector
    and either the next node/leaf or a Gordan certificate), for certificates; ``piecewise_linear``.
    ``beyond``: the decisions made beyond values and the linearised cone (signs at x and ties that are linear
    identities, higher-order germs, witness directions, one-input sides); empty when the certificate checker
    can replay the walk."""
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
    beyond: tuple = ()

    @property
    def replayable(self):
        return not self.beyond


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


def _value_sign(ns, r, xs, v, form, beyond):
    """The sign of the value ``v`` at x, from the exact forms when the value does not decide it (recorded in
    ``beyond``)."""
    s = ns.sign(v)
    if s is None and structure_allowed():
        try:
            F = forms_of_run(r, inputs=xs)
            s = F.sign(form(F))[0]
        except TooLarge:
            s = None
        if s is not None:
            beyond.append("value")
    return s


def _identically_zero(r, pattern, st, terms, const):
    """True when the switching function is the zero function on the branch (its exact form over input atoms,
    for the branch's pieces, is 0): a linear identity such as tanh(t) - tanh(t)."""
    if not structure_allowed():
        return False
    try:
        F = forms_of_run(r, symbolic=True, pattern=pattern)
        f = F.affine(st.ins, terms, const)
    except TooLarge:
        return False
    return f.is_const and f.const == 0


def _witness(ns, n, rows, polys):
    """A rational direction e with <row, e> > 0 for every row and sgn * H(e) > 0 for every (H, sgn) in
    ``polys`` (decided signs only), or None (see germs.py)."""
    for e in germs.directions(n):
        if all(sgn * H(*e) > 0 for H, sgn in polys) and \
                all(ns.sign(sum((ns.mul(ns.const(c), v) for c, v in zip(e, row)), ns.const(fmpq(0)))) == 1
                    for row in rows):
            return e
    return None


def live_equations(program):
    """Indices of the equations whose outputs reach an output of the program: the others cannot change f."""
    need, live = {a for a in program.outputs if a.__class__ is int}, set()
    for k in reversed(range(len(program.eqns))):
        e = program.eqns[k]
        if any(o in need for o in e.outs):
            live.add(k)
            need.update(a for a in e.ins if a.__class__ is int)
    return live


def _walk(program, ns, xs, convention, pl, leaf_cap):
    r = run(program, ns, [ns.const(x) for x in xs], convention, inputs=xs)
    steps = compiled(program, convention)
    n = program.n_inputs
    zero, one = ns.const(fmpq(0)), ns.const(fmpq(1))
    G = [[one if j == i else zero for j in range(n)] for i in range(n)] + [None] * (program.n_vars - n)
    live = live_equations(program)
    pos_of = {st.k: m for m, st in enumerate(st for st in steps if st.sel is not None)}
    fx = [r.env[a] if a.__class__ is int else ns.const(a.value) for a in program.outputs]
    leaves = []
    beyond = ["value"] if r.beyond else []      # decisions beyond values and the linearised cone (replayable)

    def grad_of(atom, G):
        return [zero] * n if isinstance(atom, Lit) else G[atom]

    def args_of(st, env):
        return [env[a] if a.__class__ is int else ns.const(a.value) for a in st.ins]

    # Continuity is a property of the function the outputs compute.  A branch carries its own values: when a
    # piece's value differs from the primitive's at x (the equation jumps there), the branch continues with
    # the piece's value, and only outputs that differ from f(x) are a jump of f.  Equations that reach no
    # output never branch (they keep the piece chosen at x).  The exact value forms describe the run at x,
    # so they decide signs on branches that have not jumped.
    def visit(k, env, jumped, G, pattern, rows, indep_rows, polys=()):
        G = G[:]        # this branch's own copy (branches share the values, not the gradients)
        while k < len(steps) and (steps[k].sel is None or k not in live):
            st = steps[k]
            if k not in live:
                if st.sel is not None:
                    pattern = pattern + [r.pattern[pos_of[k]]]
                k += 1
                continue
            args = r.args[k] if not jumped else args_of(st, env)
            if jumped:
                env = env[:]
                try:
                    env[st.outs[0]] = st.rule(ns, st.params, *args)
                except DomainError as e:
                    raise DomainError(f"the program is not defined next to x on a branch where an equation jumps "
                                      f"({e})") from None
            gs = [grad_of(a, G) for a in st.ins]
            out = []
            for j in range(n):      # exact zero tangents are symbolic zeros: 0 times a ball is not exact
                ts = [None if g[j].__class__ is fmpq and g[j] == 0 else g[j] for g in gs]
                t = jvp_rules[st.prim](ns, st.params, args, env[st.outs[0]], ts)
                out.append(zero if t is None else t)
            G[st.outs[0]] = out
            k += 1
        if k == len(steps):
            if len(leaves) >= leaf_cap:
                raise InputError(f"more than {leaf_cap} essential patterns (the limit max_leaves={leaf_cap}; "
                                 "--max-leaves on the command line)")
            if jumped:
                outs = [env[a] if a.__class__ is int else ns.const(a.value) for a in program.outputs]
                for u, v in zip(outs, fx):
                    s = ns.sign(ns.sub(u, v))
                    if s is None:
                        raise Undecided("cannot decide whether f jumps at x (an equation jumps there)")
                    if s != 0:
                        raise DomainError("the program is not continuous at x (its output jumps between pieces "
                                          "there): the Clarke subdifferential is not defined")
            jac = [grad_of(a, G) for a in program.outputs]
            d = None
            if pl:
                d = strict_direction(rows) if rows else [fmpq(0)] * n
                assert d is not None
            leaves.append(Leaf(tuple(pattern), jac, d, rows))
            return {"leaf": len(leaves) - 1}
        st = steps[k]
        args = r.args[k] if not jumped else args_of(st, env)
        gs = [grad_of(a, G) for a in st.ins]
        signs, tied, ident, higher, generic = [], [], [], {}, []
        grads = []
        for j, (terms, const) in enumerate(st.switches):
            v = affine(ns, terms, const, args)
            s = ns.sign(v) if jumped else _value_sign(
                ns, r, xs, v, lambda F, terms=terms, const=const: F.affine(st.ins, terms, const), beyond)
            if s is None:
                raise Undecided(f"cannot decide the sign of a switching function of equation {st.k + 1} at x")
            g = [affine(ns, tuple((i, c) for i, c in terms), fmpq(0), [gg[jj] for gg in gs]) for jj in range(n)]
            grads.append(g)
            signs.append(s)
            if s == 0 and not terms and const == 0:
                ident.append(j)         # structurally zero (max(v, v) switches on v - v): zero everywhere
            elif s == 0:
                gz = [ns.sign(v) for v in g]
                if (None in gz or (all(v == 0 for v in gz) and not pl)) and \
                        _identically_zero(r, pattern, st, terms, const):
                    ident.append(j)     # zero on the branch by a linear identity (tanh(t) - tanh(t))
                    beyond.append("identity")
                    continue
                if None in gz:
                    raise Undecided(f"cannot decide whether a tied switching function of equation {st.k + 1} "
                                    "has a zero gradient")
                if all(v == 0 for v in gz):
                    if pl:
                        ident.append(j)     # affine with zero value and gradient: identically zero on the branch
                        continue
                    frac = germs.switch_fraction(program, steps, xs, pattern, k, terms, const) \
                        if structure_allowed() else None
                    if frac is None:
                        raise Undecidable(f"a switching function of equation {st.k + 1} vanishes at x with zero "
                                          "gradient: its sign near x depends on higher-order terms, and its "
                                          "dependency cone is not polynomial")
                    kind = germs.classify(*frac, n)
                    beyond.append(kind[0])
                    if kind[0] == "zero":
                        ident.append(j)
                    elif kind[0] == "generic":
                        signs[j] = kind[1]      # that sign on an open dense set near x: no constraint
                        generic.append([j, kind[1]])
                    else:
                        higher[j] = (kind[1], kind[2])
                        tied.append(j)
                else:
                    tied.append(j)
        lin = [j for j in tied if j not in higher]
        witness = bool(polys or higher)
        if not pl and not witness:
            indep = indep_rows + [grads[j] for j in lin]
            if _independent(ns, indep):
                indep_rows = indep
            elif n == 1 and structure_allowed():
                witness = True          # one input: the two sides of x are all there is
            else:
                raise Undecidable(f"tied switching functions (up to equation {st.k + 1}) have linearly dependent "
                                "gradients and the program is not piecewise linear: the linearised cone "
                                "cannot decide which patterns are essential")
        node = {"eqn": st.k, "tied": tied, "zero": ident, "branches": []}
        if generic:
            node["generic"] = generic
        for tau in itertools.product((-1, 1), repeat=len(tied)):
            new = rows + [[v if t > 0 else ns.neg(v) for v in grads[j]] for t, j in zip(tau, tied) if j not in higher]
            new_polys = tuple(polys) + tuple((higher[j][0], t * higher[j][1]) for t, j in zip(tau, tied)
                                             if j in higher)
            branch = {"signs": list(tau)}
            if pl and tied:
                if strict_direction(new) is None:
                    y = hull_weights(new)
                    assert y is not None, "Gordan's alternative failed: a bug in the simplex"
                    branch["gordan"] = y
                    node["branches"].append(branch)
                    continue
            if witness and not pl:
                e = _witness(ns, n, new, new_polys)
                if e is None:
                    if n > 1:
                        raise Undecidable(f"tied switching functions up to equation {st.k + 1}: no direction "
                                          "realises the signs " + str(list(tau)) + " to lowest order, and "
                                          "nothing proves that none does")
                    branch["empty"] = "one input: neither side of x has these signs"
                    beyond.append("side")
                    node["branches"].append(branch)
                    continue
                branch["witness"] = e
                beyond.append("witness")
            sign_of = dict(enumerate(signs))
            sign_of.update(zip(tied, tau))
            i = st.sel.choose(st.params, len(args), lambda j: sign_of[j])
            piece = st.piece(i)
            env2, jumped2 = env, jumped
            for row, (v, o) in enumerate(zip(piece.apply(ns, args), st.outs)):
                d = ns.sub(v, env[o])
                s = ns.sign(d) if jumped else _value_sign(ns, r, xs, d, lambda F, row=row, o=o: F.sub(
                    F.affine(st.ins, *piece.rows[row]), F.of_var(o)), beyond)
                if s is None:
                    raise Undecided(f"cannot decide whether equation {st.k + 1} jumps at x")
                if s != 0:
                    if env2 is env:
                        env2 = env[:]
                    env2[o], jumped2 = v, True
            G2 = G[:]
            for o, (terms, _) in zip(st.outs, piece.rows):
                G2[o] = [affine(ns, terms, fmpq(0), [g[jj] for g in gs]) if terms else zero for jj in range(n)]
            branch["piece"] = i
            branch["next"] = visit(k + 1, env2, jumped2, G2, pattern + [i], new, indep_rows, new_polys)
            node["branches"].append(branch)
        return node

    tree = visit(0, r.env, False, G, [], [], [])
    return leaves, tree, beyond


def clarke(program, point, convention=kinks.DEFAULT, number="exact", prec=None, max_leaves=LEAF_CAP):
    """The essential patterns at ``point`` and the Clarke generalized Jacobian's generators (see
    ClarkeResult).  Raises Undecided when essentiality cannot be decided (non-PL programs with dependent
    tied gradients, undecided signs after precision escalation) and DomainError when f (the function the
    outputs compute) jumps at x."""
    program = as_program(program)
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
            with at_precision(ns, p):
                leaves, tree, beyond = _walk(program, ns, xs, convention, pl, max_leaves)
            failure = None
            break
        except Undecidable:
            raise
        except Undecided as u:
            failure = u
    if failure is not None:
        raise Undecided(f"{failure} (still undecided at {p} bits)", prec=p)
    grads, where, keys = [], [], {}
    for leaf in leaves:
        key = tuple(tuple(str(v) for v in row) for row in leaf.gradient)
        if key not in keys:
            keys[key] = len(grads)
            grads.append(leaf.gradient)
            where.append([])
        where[keys[key]].append(leaf.pattern)
    exact = all(ns.is_exact_value(v) for g in grads for row in g for v in row)
    return ClarkeResult(program, xs, convention, grads, where, leaves, tree, pl, exact, p, number,
                        tuple(sorted(set(beyond))))
