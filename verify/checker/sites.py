"""Checks for tensor_index_set, tensor_differentiable and tensor_critical certificates (written by
verify/certify/certs_tensor.py: the format is described there), re-derived with the checker's own tensor kernel
(tensor.py) and the scalar kernel's index rules (kernel.py).

Side files: the program's arrays file (named in its text), ``claim.point`` and ``result.arrays`` are .npz
files beside the certificate, read without pickles and checked against the content digests the certificate
states; a changed weight, point or claim array is a changed digest, hence an invalid certificate.

What is re-derived: the program's values at the point (exact, balls where values stop being rational), the
piece every site's index rule chooses, every switching function exactly 0 (the kinks), the signs undecided at
the precision cap, the sites where several pieces agree with the primitive and which pieces; the selection
gradient (compared with the stated exact arrays, or required inside the stated float64 bounds and within a
few ulps of the checker's own enclosure) and the output value; differentiability (Proposition 3); for
critical points every pattern of I(x) and its gradient, convex weights or a separator in Gram coordinates, the
Clarke walk node by node (the tied switching functions and their gradients under the branch's pattern, Gordan
certificates, strict directions, independence for programs that are not piecewise linear, continuity at
every branch), the essential patterns as changes from the pattern at x, and every flag and verdict.
"""
import itertools
import math
import os

import numpy as np
from flint import arb, arb_mat, ctx, fmpq, fmpq_mat

from ..certificates import has_balls
from ..errors import InputError
from ..program.arrays import decode, read_npz, stored_digest
from . import Invalid, register
from . import common as C
from . import germs as G_
from . import kernel as K
from . import tensor as TK

CAP = 4096        # patterns of I(x) a critical-point certificate may have (the certifiers' cap)


# ------------------------------------------------------------------------------------- side files, point

def side(ref, base, what):
    """The npz entries of a side file named in the certificate: a plain file name beside it, the digest of
    its stored content checked."""
    name = ref["file"]
    if os.path.basename(name) != name or name.startswith("."):
        raise Invalid(f"{what}: the side file {name!r} must be a file name beside the certificate")
    try:
        raw = read_npz(os.path.join(base, name))
        if stored_digest(raw) != ref["digest"]:
            raise Invalid(f"{what}: the side file {name!r} was changed (its digest is not the stated one)")
        return raw
    except InputError as e:
        raise Invalid(f"{what}: {e}") from None


def setup(cert, base):
    """The certified program (its arrays read beside the certificate) and the point (one Q per input)."""
    P = C.program(cert, base)
    try:
        arrays = decode(side(cert["claim"]["point"], base, "claim.point"))
    except InputError as e:
        raise Invalid(f"claim.point: {e}") from None
    names = list(P.input_names)
    if sorted(arrays) != sorted(names):
        raise Invalid(f"claim.point must hold one array per input ({', '.join(names)}), named like the inputs")
    shapes = P.input_shapes or [()] * P.n_inputs
    xs = []
    for n, s in zip(names, shapes):
        if tuple(arrays[n].shape) != tuple(s):
            raise Invalid(f"claim.point: input {n} has shape {list(arrays[n].shape)}, the program declares {list(s)}")
        xs.append(TK.exact(arrays[n]))
    return P, xs


def ladder_run(P, xs, undecided=None):
    """The checker's run at 128, 256, ... 4096 bits: the first precision where the index rules decide every
    site and ``undecided(run)`` is false (at the cap, whatever is left undecided).  Returns (run, prec)."""
    for p in C.ladder():
        with ctx.workprec(p):
            try:
                run = TK.Run(P, xs)
                left = undecided(run) if undecided else False
            except K.CannotDecide:
                if p >= C.PREC_CAP:
                    raise
                continue
        if not left or p >= C.PREC_CAP:
            return run, p


# ----------------------------------------------------------------------------------------- piece table

class SitePieces:
    """evidence.pieces: per nonsmooth equation, {n: {i: rows}}: each piece one of the checker kernel's own
    pieces of that equation's scalar primitive with n arguments, listed once; every entry used."""

    def __init__(self, table, run):
        eqs = run.nonsmooth()
        if len(table) != len(eqs):
            raise Invalid(f"evidence.pieces has {len(table)} table(s) for {len(eqs)} nonsmooth equation(s)")
        self.eqs, self.by_index, self.by_piece, self.used = eqs, {}, {}, set()
        for pos, (S, t) in enumerate(zip(eqs, table)):
            arities = {G.n for G in S.groups}
            for n_s, entries in t.items():
                n = int(n_s)
                if n not in arities:
                    raise Invalid(f"evidence.pieces of nonsmooth equation {pos + 1} names sites of {n} arguments: "
                                  "it has none")
                own = K.pieces(S.prim, S.params, n)
                for i_s, rows in entries.items():
                    piece = K.piece_from_json(rows)
                    if piece not in own:
                        raise Invalid(f"piece {i_s} of nonsmooth equation {pos + 1} ({S.e.prim}) is not one of its "
                                      "pieces")
                    if (pos, n, piece) in self.by_piece:
                        raise Invalid(f"nonsmooth equation {pos + 1} lists one piece twice")
                    self.by_index[(pos, n, int(i_s))] = piece
                    self.by_piece[(pos, n, piece)] = int(i_s)
        self.pos = {S.k: pos for pos, S in enumerate(eqs)}

    def piece(self, k, n, i):
        key = (self.pos[k], n, i)
        if key not in self.by_index:
            raise Invalid(f"piece index {i} of equation {k + 1} (sites of {n} arguments) is not in evidence.pieces")
        self.used.add(key)
        return self.by_index[key]

    def index(self, k, n, piece, what):
        i = self.by_piece.get((self.pos[k], n, piece))
        if i is None:
            raise Invalid(f"{what}: a piece the checker derives at equation {k + 1} is not in evidence.pieces")
        self.used.add((self.pos[k], n, i))
        return i

    def check_used(self):
        for key in self.by_index:
            if key not in self.used:
                raise Invalid(f"piece {key[2]} of nonsmooth equation {key[0] + 1} is listed but nothing uses it")


def locate(S, s):
    """(group, position in the group) of the flat site s of a SiteEqn."""
    for gi, G in enumerate(S.groups):
        i = int(np.searchsorted(G.sites, s))
        if i < len(G.sites) and int(G.sites[i]) == s:
            return gi, i
    raise Invalid(f"site {s} is not a site of equation {S.k + 1}")


# ------------------------------------------------------------------------------------------- site lists

def rows_of(arrays, key, what):
    if key not in arrays:
        raise Invalid(f"{what}: the result file has no array {key!r}")
    a = arrays[key]
    if a.dtype != np.int64 or a.ndim != 2 or a.shape[1] != 2:
        raise Invalid(f"{what}: {key} must be int64 rows (site, index)")
    return [(int(u), int(v)) for u, v in a.tolist()]


def same_rows(arrays, key, own, what):
    stated = rows_of(arrays, key, what)
    if stated != own:
        diff = next((i for i, (a, b) in enumerate(zip(stated, own)) if a != b), min(len(stated), len(own)))
        raise Invalid(f"{what}/{key}: row {diff} is {stated[diff] if diff < len(stated) else '(nothing)'}, the "
                      f"checker derives {own[diff] if diff < len(own) else '(nothing)'}")


def own_lists(run, table=None, agree=None, und_sites=None, switches_only=False):
    """{key: rows} of the kinks, undecided and (with ``table``) multi rows per nonsmooth equation."""
    zero, und = run.kinks()
    out = {}
    for S in run.nonsmooth():
        k = S.k
        out[f"kinks.{k}"] = zero[k]
        out[f"undecided.{k}"] = sorted(und[k] + ([] if switches_only else [(s, -1) for s in und_sites[k]]))
        if table is not None:
            rows = []
            for s in sorted(agree[k]):
                n = S.groups[locate(S, s)[0]].n
                rows += sorted((s, table.index(k, n, p, "result.arrays multi")) for p in agree[k][s])
            out[f"multi.{k}"] = rows
    return out


def check_lists(arrays, own, extra, what):
    keys = set(own) | set(extra)
    if set(arrays) != keys:
        bad = sorted(set(arrays) ^ keys)
        raise Invalid(f"{what}: the result file must hold exactly {sorted(keys)[:6]}...: {bad[0]!r} is "
                      f"{'missing' if bad[0] in keys else 'not one of them'}")
    for key, rows in own.items():
        same_rows(arrays, key, rows, what)


# -------------------------------------------------------------------------------------------- gradients

def _wrt(P, names, what):
    if not names or names != [n for n in P.input_names if n in names] or len(set(names)) != len(names):
        raise Invalid(f"{what} must list inputs of the program, once each, in their order")
    return [P.input_names.index(n) for n in names]


_arb = np.frompyfunc(arb, 1, 1)
TIGHT = 4         # a stated float bound lies within this many float64 steps of the checker's enclosure
SLACK = 2.0 ** -100


def _in_float_bounds(own, lo_a, hi_a):
    """(contained, tight): every element of the checker's enclosure ``own`` inside the stated float64 bounds
    (floats are exact dyadic numbers), and each bound within TIGHT floats of the enclosure (bounds that a
    float64 statement of the enclosure could not improve by much)."""
    lo, hi = lo_a, hi_a
    if lo.dtype != np.float64 or hi.dtype != np.float64 or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise Invalid("stated gradient bounds must be finite float64 arrays")
    if lo.shape != own.shape or hi.shape != own.shape:
        raise Invalid("stated gradient bounds do not have the input's shape")
    b = TK.balls(own)
    if b.size == 0:
        return True, True
    # arb's comparisons are True only when decided for every point of the ball: b >= lo means b's lower end
    # is at least lo, so an undecided comparison counts as not contained (the caller retries more precisely)
    contained = bool(np.all(b >= _arb(lo))) and bool(np.all(b <= _arb(hi)))
    # tightness is a tolerance, not a proof: TIGHT float steps, plus 2^-100 (1 + |bound|) for enclosures that
    # the certifier's order of operations made wider than the checker's (a ball around an exact 0)
    up, down = lo, hi
    for _ in range(TIGHT):
        up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
    up, down = up + (1 + np.abs(lo)) * SLACK, down - (1 + np.abs(hi)) * SLACK
    tight = not bool(np.any(b >= _arb(up))) and not bool(np.any(b <= _arb(down)))
    return contained, tight


def _stated_gradient(P, wrt, arrays):
    """(keys of the result file the gradient occupies, {input: ("exact", array) or ("bounds", lo, hi)})."""
    keys, todo = set(), {}
    for i in wrt:
        n = f"grad.{P.input_names[i]}"
        if f"{n}.lo" in arrays and f"{n}.hi" in arrays:
            keys |= {f"{n}.lo", f"{n}.hi"}
            todo[i] = ("bounds", arrays[f"{n}.lo"], arrays[f"{n}.hi"])
            continue
        mine = {k: v for k, v in arrays.items() if k in (n, f"{n}.num", f"{n}.den")}
        try:
            exact = decode(mine).get(n)
        except InputError as e:
            raise Invalid(f"result.arrays: {e}") from None
        if exact is None:
            raise Invalid(f"result.arrays has no gradient for input {P.input_names[i]}")
        keys |= set(mine)
        todo[i] = ("exact", exact)
    return keys, todo


def check_gradient(cert, P, xs, run, p, arrays, part):
    """The stated selection gradient (in the result file) and value, against the checker's own at x; returns
    the keys the gradient occupies in the result file."""
    if part is None:
        return set()
    if P.n_outputs != 1 or P.atom_shape(P.outputs[0]) != ():
        raise Invalid("a stated gradient needs one scalar output")
    wrt = _wrt(P, part["wrt"], "result/gradient/wrt")
    keys, todo = _stated_gradient(P, wrt, arrays)
    for prec in C.ladder(p):
        with ctx.workprec(prec):
            r = run if prec == p else TK.Run(P, xs)
            own = r.gradient(wrt)
            pending = False
            for i, g in zip(wrt, own):
                t = todo[i]
                if t[0] == "exact":
                    a = t[1]
                    if not TK.is_exact(g) or a.shape != g.shape or \
                            not bool(np.all(g.num * a.den == a.num * g.den)):
                        raise Invalid(f"result.arrays grad.{P.input_names[i]} is not the checker's exact gradient")
                    continue
                contained, tight = _in_float_bounds(g, t[1], t[2])
                if not contained:
                    pending = True
                elif not tight:
                    raise Invalid(f"result.arrays grad.{P.input_names[i]}: the bounds are wider than float64 "
                                  "rounding of the checker's enclosure")
        if not pending:
            break
    else:
        raise Invalid("the stated gradient bounds do not contain the checker's enclosure")

    memo = {p: run}

    def value():
        r = memo.get(ctx.prec)
        if r is None:
            r = memo[ctx.prec] = TK.Run(P, xs)
        return TK.flat_values(r.outputs()[0])[0]
    vp = cert["prec"]
    if isinstance(part["value"], str):
        with ctx.workprec(p):
            own = value()
        C.contains(part["value"], own, "result/gradient/value")
    elif not C.number_ok(part["value"], value, vp):
        raise Invalid("result/gradient/value is not the checker's enclosure of the output at the stated precision")
    return keys


def _prec(cert):
    """null exactly when nothing stated in the JSON result is a ball (the gradient's float bounds are exact
    numbers), else one of PRECS."""
    C.prec_of_balls(cert, has_balls(cert["result"]))


# ------------------------------------------------------------------------------------- index sets, kinks

def _index(cert, base, multi):
    P, xs = setup(cert, base)
    _prec(cert)
    res = cert["result"]
    cache = {}

    def undecided(run):
        zero, und = run.kinks()
        agree, und_sites = run.agreeing() if multi else ({}, {S.k: [] for S in run.nonsmooth()})
        cache["facts"] = (agree, und_sites)
        return any(und.values()) or any(und_sites.values())
    run, p = ladder_run(P, xs, undecided)
    agree, und_sites = cache["facts"]
    table = SitePieces(cert["evidence"]["pieces"], run) if multi else None
    arrays = side(res["arrays"], base, "result.arrays")
    with ctx.workprec(p):
        own = own_lists(run, table, agree, und_sites, switches_only=not multi)
    gkeys = check_gradient(cert, P, xs, run, p, arrays, res["gradient"])
    check_lists(arrays, own, gkeys, "result.arrays")
    counts = {"kinks": sum(len(v) for k, v in own.items() if k.startswith("kinks.")),
              "undecided": sum(len(v) for k, v in own.items() if k.startswith("undecided."))}
    if multi:
        counts["multi"] = sum(len(v) for v in agree.values())
    return counts, table


@register("tensor_index_set", side_files=True)
def check_tensor_index_set(cert, base):
    counts, table = _index(cert, base, multi=True)
    res = cert["result"]
    C.same({k: res[k] for k in ("kinks", "multi", "undecided")}, counts, "result")
    C.same(cert["verdict"], "PROVED" if not counts["undecided"] else "UNDECIDED", "verdict")
    table.check_used()


@register("tensor_differentiable", side_files=True)
def check_tensor_differentiable(cert, base):
    counts, _ = _index(cert, base, multi=False)
    res = cert["result"]
    diff = counts["kinks"] == 0 and counts["undecided"] == 0
    C.same({k: res[k] for k in ("kinks", "undecided", "differentiable")}, {**counts, "differentiable": diff},
           "result")
    C.same(cert["verdict"], "PROVED" if diff else "UNDECIDED", "verdict")


# ------------------------------------------------------------------------------------- critical points

class Vectors:
    """Gradients as flat vectors for hull questions: exact integer rows over denominators, or balls."""

    def __init__(self, grads):
        flats = [TK.flat_vector(g) for g in grads]
        self.exact = all(f[0] == "q" for f in flats)
        if self.exact:
            self.rows = [np.array(f[1], dtype=object) for f in flats]
            self.dens = [f[2] for f in flats]
        else:
            self.rows = [np.array(f[1] if f[0] == "b" else [arb(fmpq(int(v), f[2])) for v in f[1]], dtype=object)
                         for f in flats]

    def combination(self, coefs):
        """sum c_i v_i (exact: (integer numerators, denominator); balls: an arb array)."""
        pairs = [(c, i) for i, c in enumerate(coefs) if c != 0]
        if self.exact:
            D = math.lcm(*(int(c.q) * self.dens[i] for c, i in pairs)) if pairs else 1
            acc = np.zeros(len(self.rows[0]) if self.rows else 0, dtype=object)
            for c, i in pairs:
                acc = acc + self.rows[i] * (int(c.p) * (D // (int(c.q) * self.dens[i])))
            return acc, D
        acc = np.array([TK.ZERO] * (len(self.rows[0]) if self.rows else 0), dtype=object)
        for c, i in pairs:
            acc = acc + self.rows[i] * arb(c)
        return acc, None

    def dot_sign(self, w, i):
        v = np.dot(w[0], self.rows[i]) if len(self.rows[i]) else 0
        if self.exact:
            return (v > 0) - (v < 0)
        return K.sign(v if isinstance(v, arb) else arb(v))


def membership(vecs, block, what):
    """The truth (True / False / None) that the witness proves about 0 in the hull of the vectors: convex
    weights with sum l_i v_i exactly 0, or a separator y (Gram coordinates) with <sum y_j v_j, v_i> > 0."""
    n = len(vecs.rows)
    if "weights" in block:
        lam = [K.q(w) for w in block["weights"]]
        if len(lam) != n or any(w < 0 for w in lam) or sum(lam, K.Q0) != 1:
            raise Invalid(f"{what}: the weights are not convex weights over the {n} gradients")
        w, _ = vecs.combination(lam)
        if vecs.exact:
            ok = all(v == 0 for v in w.tolist())
        else:
            ok = all(v.is_zero() for v in w.tolist())
        if not ok:
            raise Invalid(f"{what}: the weighted sum of the gradients is not exactly 0")
        return True
    if "separator" in block:
        y = [K.q(v) for v in block["separator"]]
        if len(y) != n:
            raise Invalid(f"{what}: the separator has {len(y)} coordinates for {n} gradients")
        w = vecs.combination(y)
        for i in range(n):
            s = vecs.dot_sign(w, i)
            if s is None:
                raise K.CannotDecide(f"{what}: the checker cannot decide a product with the separator")
            if s <= 0:
                raise Invalid(f"{what}: the separator does not separate 0 from gradient {i}")
        return False
    if vecs.exact:
        raise Invalid(f"{what}: with exact gradients membership is always decided (weights or a separator)")
    return None


LINEAR = {"add", "sub", "neg", "sum", "mean", "reshape", "transpose", "broadcast_to", "slice", "pad", "concat",
          "take_along", "avg_pool2d"}


def is_piecewise_linear(P, moving=None):
    """Every smooth equation is linear in the input-dependent values (sums, structure, products and
    contractions with at most one input-dependent operand, quotients by constants, pow 0 or 1); ``moving``:
    only those inputs count (the others are constant along a segment)."""
    return _linear_over(P, range(len(P.eqns)), moving)


def affine_cone(P, k):
    """Every equation that equation k depends on is linear in its input-dependent values: its switching
    functions are affine on each region of the pattern (a tie with zero gradient is zero there)."""
    dstep = {o: i for i, e in enumerate(P.eqns) for o in e.outs}
    need, todo = set(), [a for a in P.eqns[k].ins if isinstance(a, int)]
    while todo:
        i = dstep.get(todo.pop())
        if i is not None and i not in need:
            need.add(i)
            todo.extend(a for a in P.eqns[i].ins if isinstance(a, int))
    return _linear_over(P, need)


def _linear_over(P, eqns, moving=None):
    from ..program.prims import PRIMITIVES
    dep = [True if moving is None else bool(moving[i]) for i in range(P.n_inputs)]
    dep += [False] * (P.n_vars - P.n_inputs)
    eqns = set(eqns)
    for k, e in enumerate(P.eqns):
        d = [isinstance(a, int) and dep[a] for a in e.ins]
        for o in e.outs:
            dep[o] = any(d)
        if k not in eqns or not PRIMITIVES[e.prim].smooth or e.prim in LINEAR or not any(d):
            continue
        if (e.prim in ("mul", "dot", "conv2d") and sum(d) <= 1) or (e.prim == "div" and not d[1]) or \
                (e.prim == "pow" and dict(e.params)["n"] in (0, 1)):
            continue
        return False
    return True


def _changes_of(run, sites):
    """{eqn: {group: {loc: piece}}} for the {(eqn, flat site): piece} given."""
    out = {}
    for (k, s), piece in sites.items():
        gi, loc = locate(run.sites[k], s)
        out.setdefault(k, {}).setdefault(gi, {})[loc] = piece
    return out


def _gram_sign(g):
    s = K.sign(g)
    if s is None:
        raise K.CannotDecide("the checker cannot decide whether a tied switching function has a zero gradient")
    return s


class Walk:
    """The Clarke walk replayed by the checker: from the first nonsmooth equation with a tied switching
    function (exactly 0 at x, not structurally 0) to the last, every sign vector of the tied functions with
    nonzero gradient, the index rules choosing the branch's pieces; returns the leaves (changes, gradient)."""

    def __init__(self, run, wrt, pl, ev, table):
        self.run, self.wrt, self.pl, self.ev, self.table = run, wrt, pl, ev, table
        self.steps = run.nonsmooth()
        self.ties = []
        live = C.live_equations(run.P)      # a tie of an equation that reaches no output is no branch of f
        for S in self.steps:
            here = []
            if S.k not in live:
                self.ties.append(here)
                continue
            for gi, G in enumerate(S.groups):
                for j, (coefs, const) in enumerate(G.forms):
                    if all(c == 0 for c in coefs) and const == 0:
                        continue
                    here += [(int(G.sites[loc]), j, gi, loc) for loc in np.nonzero(G.signs[j] == 0)[0].tolist()]
            self.ties.append(sorted(here))
        self.leaves = []

    def switch_gradient(self, S, gi, loc, j, changes):
        G = S.groups[gi]
        seeds = {}
        for a, c in zip(S.e.ins, S.seeds(gi, loc, G.forms[j][0])):
            if c is not None and isinstance(a, int):
                seeds[a] = c if a not in seeds else TK.add(seeds[a], c)
        cts = self.run.vjp([], self.wrt, _changes_of(self.run, changes), seeds=seeds, stop=S.k)
        return [TK.zeros(self.run.P.shapes[i]) if cts[i] is None else cts[i] for i in self.wrt]

    def visit(self, pos, changes, rows, node, flags=()):
        while pos < len(self.steps) and not self.ties[pos]:
            pos += 1
        if pos == len(self.steps):
            return self.leaf(changes, rows, node)
        S = self.steps[pos]
        ties = self.ties[pos]
        grads = [self.switch_gradient(S, gi, loc, j, changes) for _, j, gi, loc in ties]
        norms = TK.gram(grads, grads)
        keep = [i for i in range(len(ties)) if _gram_sign(norms[i][i]) != 0]
        zero = [i for i in range(len(ties)) if i not in keep]
        affine = self.pl or affine_cone(self.run.P, S.k)
        generic = []
        if zero and not affine:
            zero, generic = self.degenerate(S, ties, zero, changes, node)
        elif node is not None and ("generic" in node or "degenerate" in node):
            raise Invalid(f"equation {S.k + 1}: degenerate ties are stated where the cone is affine")
        if node is not None and (node.get("eqn") != S.k or node.get("tied") != [list(ties[i][:2]) for i in keep] or
                                 node.get("zero") != [list(ties[i][:2]) for i in zero] or
                                 node.get("generic", []) != [list(ties[i][:2]) + [c] for i, c in generic]):
            raise Invalid(f"the Clarke tree's node at equation {S.k + 1} does not match its tied switching functions")
        taus = list(itertools.product((-1, 1), repeat=len(keep)))
        branches = node.get("branches") if node is not None else [None] * len(taus)
        if node is not None and (not isinstance(branches, list) or [b.get("signs") for b in branches] !=
                                 [list(t) for t in taus]):
            raise Invalid(f"the branches at equation {S.k + 1} are not every sign vector of its tied functions")
        for tau, b in zip(taus, branches):
            new_rows = rows + [grads[i] if t > 0 else [TK.neg(c) for c in grads[i]] for t, i in zip(tau, keep)]
            new_flags = tuple(flags) + (affine,) * len(keep)
            if b is not None and "gordan" in b:
                self.gordan(S, b["gordan"], new_rows, new_flags)
                continue
            self.visit(pos + 1, self.take(S, ties, keep, zero, tau, changes, generic), new_rows,
                       None if b is None else b["next"], new_flags)

    def degenerate(self, S, ties, zero, changes, node):
        """Zero-gradient ties whose cone is not affine: each stated lowest-order part (evidence "degenerate") is
        the checker's own through the elementwise cone of its site (germs.site_fraction); (zero, generic)."""
        stated = {(d["site"], d["switch"]): d for d in (node or {}).get("degenerate", [])}
        if node is None or len(stated) != len(zero) or set(stated) != {tuple(ties[i][:2]) for i in zero}:
            raise C.Undecidable(f"equation {S.k + 1}: a tied switching function has zero gradient and its cone is "
                                "not affine, without a stated lowest-order part")
        point = [x.fmpqs().ravel().tolist() for x in self.run.env[:self.run.P.n_inputs]]
        out_zero, generic = [], []
        for i in zero:
            s, j, gi, loc = ties[i]
            d = stated[(s, j)]
            G = S.groups[gi]
            if not S.table.elementwise:
                raise Invalid(f"equation {S.k + 1}: a lowest-order part is stated for a site that is not elementwise")
            grid = S.table.grid
            idx = tuple(int(v) for v in np.unravel_index(s, grid)) if grid else ()
            got = G_.site_fraction(self.run.P, point, S.k, idx, G.forms[j], lambda m, site: self.piece_at(m, site,
                                                                                                           changes))
            if got is None:
                raise Invalid(f"equation {S.k + 1}: the cone of site {s} is not elementwise and rational")
            N, D, variables = got
            kind = G_.classify(N, D, max(1, len(variables)))
            if kind[0] not in ("zero", "generic") or d["variables"] != variables or \
                    d["germ"] != G_.germ_json(N, D, kind, max(1, len(variables))):
                raise Invalid(f"equation {S.k + 1}: the stated lowest-order part of site {s} is not the checker's")
            (out_zero.append(i) if kind[0] == "zero" else generic.append((i, kind[1])))
        return out_zero, generic

    def piece_at(self, m, site, changes):
        """The branch's piece (rows) at flat ``site`` of nonsmooth equation m."""
        if (m, site) in changes:
            return changes[(m, site)]
        S = self.run.sites[m]
        gi, loc = locate(S, site)
        G = S.groups[gi]
        return G.pieces[G.ids[loc]]

    def gordan(self, S, weights, rows, flags):
        """A pruned branch: convex weights, only on rows of affine cones, whose combination of the rows is 0
        (in Gram coordinates: lam^T G lam = 0)."""
        G = _exact_gram(rows)
        lam = [K.q(v) for v in weights]
        if len(lam) != len(rows) or any(v < 0 for v in lam) or sum(lam, K.Q0) != 1 or \
                any(not f for f, w in zip(flags, lam) if w != 0) or \
                sum((lam[i] * G[i][j] * lam[j] for i in range(len(lam)) for j in range(len(lam))), K.Q0) != 0:
            raise Invalid(f"a Gordan certificate at equation {S.k + 1} is not valid")

    def take(self, S, ties, keep, zero, tau, changes, generic=()):
        """The changes after equation S takes, at every tied site, the piece its signs choose (a generic tie its
        generic sign; the program must not jump there)."""
        sign_of = {(ties[i][0], ties[i][1]): t for t, i in zip(tau, keep)}
        sign_of.update(((ties[i][0], ties[i][1]), c) for i, c in generic)
        new = dict(changes)
        for s in sorted({ties[i][0] for i in keep + zero + [i for i, _ in generic]}):
            gi, loc = locate(S, s)
            G = S.groups[gi]
            sg = [sign_of.get((s, j), int(G.signs[j][loc])) for j in range(len(G.forms))]
            piece = K.choose(S.prim, S.params, G.n, sg)
            _continuous(S, G, loc, piece)
            new[(S.k, s)] = piece
        return new

    def leaf(self, changes, rows, node):
        ev = self.ev
        if ev is not None:
            leaves = ev["leaves"]
            i = node.get("leaf") if isinstance(node, dict) else None
            if not isinstance(i, int) or not 0 <= i < len(leaves) or i != len(self.leaves):
                raise Invalid("the Clarke tree's leaves must be numbered in the order of the walk")
            leaf = leaves[i]
            own = []
            for (k, s), piece in sorted(changes.items()):
                S = self.run.sites[k]
                gi, loc = locate(S, s)
                G = S.groups[gi]
                if piece != G.pieces[G.ids[loc]]:
                    own.append([k, s, self.table.index(k, G.n, piece, f"leaf {i}")])
            C.same(leaf["changes"], own, f"evidence/clarke/leaves/{i}/changes")
            self.realized(rows, leaf["direction"], i)
        elif rows and not _independent(TK.gram(rows, rows)):
            raise C.Undecidable("the tied gradients are dependent and no direction is stated")
        if len(self.leaves) >= CAP:
            raise Invalid(f"more than {CAP} essential patterns")
        self.leaves.append(self.run.gradient(self.wrt, _changes_of(self.run, changes)))

    def realized(self, rows, direction, i):
        """The leaf's path is realized next to x: a strict direction in Gram coordinates (G y > 0, exact rows;
        always stated for piecewise-linear programs), or independent rows."""
        if direction is None:
            if self.pl or (rows and not _independent(TK.gram(rows, rows))):
                raise Invalid(f"leaf {i}: no direction, and its constraints are not independent rows")
            return
        y = [K.q(v) for v in direction]
        G = _exact_gram(rows) if rows else []
        if len(y) != len(rows) or any(sum((g * v for g, v in zip(row, y)), K.Q0) <= 0 for row in G):
            raise Invalid(f"leaf {i}: the direction does not satisfy the branch's strict inequalities")


def _exact_gram(rows):
    G = TK.gram(rows, rows)
    if not all(isinstance(v, fmpq) for r in G for v in r):
        raise Invalid("the program is piecewise linear but its tied gradients are not exact")
    return G


def _independent(G):
    if all(isinstance(v, fmpq) for r in G for v in r):
        return fmpq_mat(G).rank() == len(G)
    d = arb_mat(G).det()
    if d > 0:
        return True
    if d.is_zero():
        return False
    raise K.CannotDecide("the checker cannot decide whether the tied gradients are independent")


def _continuous(S, G, loc, piece):
    """The branch's piece has the value at x of the piece chosen at x.  Else Undecidable: this walk does not
    follow an equation that jumps (f itself may still be continuous, and the branch may not be realizable when
    the walk replays an UNDECIDED part without pruning), so a certificate that decides through it is rejected."""
    base = G.pieces[G.ids[loc]]
    args = [TK.restructure(a, lambda v: v[loc:loc + 1]) for a in G.args]
    for (c1, k1), (c0, k0) in zip(piece, base):
        d = TK.affine(tuple(a - b for a, b in zip(c1, c0)), k1 - k0, args)
        s = int(np.ravel(TK.signs(d))[0])
        if s == TK.UNDECIDED:
            raise K.CannotDecide("the checker cannot decide whether the program is continuous at x")
        if s:
            raise C.Undecidable(f"equation {S.k + 1} jumps at x on a branch of the walk: the checker does not "
                                "walk through jumps")


@register("tensor_critical", side_files=True)
def check_tensor_critical(cert, base):
    P, xs = setup(cert, base)
    if P.n_outputs != 1 or P.atom_shape(P.outputs[0]) != ():
        raise Invalid("critical points need one scalar output")
    claim, res, ev = cert["claim"], cert["result"], cert["evidence"]
    wrt = _wrt(P, claim["wrt"], "claim.wrt")
    arrays = side(res["arrays"], base, "result.arrays")
    pl = is_piecewise_linear(P)
    out = {}

    def body(p):
        out.clear()
        run = TK.Run(P, xs)
        agree, und_sites = run.agreeing()
        if any(und_sites.values()):
            raise K.CannotDecide("the checker cannot decide which pieces agree at some site: no field")
        table = SitePieces(ev["pieces"], run)
        own = own_lists(run, table, agree, und_sites)
        check_lists(arrays, {k: v for k, v in own.items() if k.startswith("multi.")}, set(), "result.arrays")
        sites = []
        for S in run.nonsmooth():
            for s in sorted(agree[S.k]):
                n = S.groups[locate(S, s)[0]].n
                sites.append(((S.k, s), [table.piece(S.k, n, i) for ss, i in rows_of(arrays, f"multi.{S.k}", "")
                                         if ss == s]))
        count = math.prod(len(ps) for _, ps in sites)
        if count > CAP:
            raise Invalid(f"I(x) has {count} patterns: a critical-point certificate needs at most {CAP}")
        grads = [run.gradient(wrt, _changes_of(run, {key: p for (key, _), p in zip(sites, combo)}))
                 for combo in itertools.product(*(ps for _, ps in sites))]
        sel = membership(Vectors(grads), ev["selection"], "evidence/selection")
        if "undecided" in ev["clarke"]:
            if "undecided" not in ev["clarke_membership"]:
                raise Invalid("an undecided Clarke part has no membership witness")
            out.update(count=count, walked=False)
            return sel, None, table
        if ev["clarke"]["piecewise_linear"] is not pl:
            raise Invalid("evidence/clarke/piecewise_linear is wrong")
        W = Walk(run, wrt, pl, ev["clarke"], table)
        W.visit(0, {}, [], ev["clarke"]["tree"])
        if len(W.leaves) != len(ev["clarke"]["leaves"]):
            raise Invalid("some listed leaves are not reached by the walk")
        cl = membership(Vectors(W.leaves), ev["clarke_membership"], "evidence/clarke_membership")
        out.update(count=count, walked=True, essential=len(W.leaves))
        return sel, cl, table

    sel, cl, table = C.decided(body)
    if not out["walked"]:
        _confirm_undecided(P, xs, wrt, pl)
    art = C.artificial(sel, cl)
    C.same(res, {"arrays": res["arrays"], "count": out["count"], "selection_critical": sel, "clarke_critical": cl,
                 "artificial": art, "essential": out.get("essential")}, "result")
    C.same(cert["verdict"], "PROVED" if sel is not None and cl is not None else "UNDECIDED", "verdict")
    table.check_used()


def _confirm_undecided(P, xs, wrt, pl):
    """An UNDECIDED Clarke part: the checker's own walk (every branch) meets an undecidable tie, or signs it
    cannot decide at 4096 bits."""
    C.confirm_undecided(lambda: Walk(TK.Run(P, xs), wrt, pl, None, None).visit(0, {}, [], None))
