"""Algorithms 1 and 2 for tensor programs: evaluation with the pattern, forward and backward mode.

Values are arrays of a tensor number system (numbers/tensor.py).  A smooth equation runs its rule on whole
arrays (matrix products on FLINT matrices).  A nonsmooth equation is an array of scalar elementary
selections, its *sites* (prims/tensor.py): for every site the switching functions are computed from its
arguments, their signs decided (exactly, or in balls with escalation of the precision), the index rule
picks a piece, and the piece (an affine map with rational coefficients) gives the values.  The pattern of
the equation is the array of the pieces chosen at its sites.  The linear parts of the chosen pieces, as
per-site coefficient arrays, are all that forward and backward mode need: AD is the selection derivative
element by element, as the paper's model says.
"""
import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from flint import fmpq

from ..errors import DomainError, InputError, Undecided
from ..numbers.tensor import SIGN_UNDECIDED, get_tensor_system
from ..program import kinks
from ..program.arrays import ExactArray
from ..program.ir import Arr, Lit, eqn_where, resolve_arrays
from ..program.prims import PRIMITIVES, eval_rules, jvp_rules, selection_rules, vjp_rules
from ..program.prims.tensor import SELECTIVE_VJP, sites_of, unbroadcast
from . import orders
from .precision import DEFAULT_PREC, PREC_CAP, working_precision  # noqa: F401  (re-exported for the certifiers)
from .precision import escalate as _escalate



@dataclass
class TStep:
    """One equation compiled for a convention: resolved params and either a smooth rule or its sites."""
    k: int
    prim: str
    ins: tuple
    outs: tuple
    params: dict
    in_shapes: list
    out_shapes: list
    rule: object = None
    sites: object = None            # SiteTable (nonsmooth)
    sel: object = None              # the scalar Selection of every site
    switches: list = None           # per group: the switching functions (terms, const) over the site's args
    pieces: dict = field(default_factory=dict)
    moves: bool = False             # a sort over more than orders.LISTED elements: a certified order, a gather

    def piece(self, n, i):
        key = (n, i)
        p = self.pieces.get(key)
        if p is None:
            p = self.pieces[key] = self.sel.piece(self.sites.params, n, int(i))
        return p

    def n_pieces(self, n):
        return self.sel.n_pieces(self.sites.params, n)


def _merged(ins, terms, const, elementwise):
    """Terms on the same elementwise input merged (max(x, x) switches on x - x: exactly 0, a decided tie)."""
    if not elementwise:
        return terms, const
    first, merged = {}, {}
    for j, c in terms:
        a = ins[j]
        key = ("v", a) if isinstance(a, int) else (("a", a.name) if isinstance(a, Arr) else ("l", j))
        j0 = first.setdefault(key, j)
        merged[j0] = merged.get(j0, 0) + c
    return tuple((j, c) for j, c in merged.items() if c != 0), const


def compiled(program, convention):
    """The program's steps under ``convention`` (cached on the program)."""
    cache = program.__dict__.setdefault("_tcompiled", {})
    steps = cache.get(convention)
    if steps is not None:
        return steps
    steps = []
    shapes = program.shapes
    for k, e in enumerate(program.eqns):
        params = resolve_arrays(program, kinks.resolve(e, convention))
        in_shapes = [program.atom_shape(a) for a in e.ins]
        st = TStep(k, e.prim, e.ins, e.outs, params, in_shapes, [shapes[o] for o in e.outs])
        prim = PRIMITIVES[e.prim]
        if prim.smooth:
            st.rule = eval_rules[e.prim]
        else:
            table = sites_of(e.prim, in_shapes, params)
            st.sites = table
            st.sel = selection_rules[table.prim]
            st.moves = any(orders.large(table, g) for g in table.groups)
            st.switches = [orders.PairSwitches(g.n) if orders.large(table, g) else
                           [_merged(e.ins, t, c, table.elementwise) for t, c in st.sel.switches(table.params, g.n)]
                           for g in table.groups]
        steps.append(st)
    cache[convention] = steps
    return steps


def nonsmooth_steps(program, convention):
    return [st for st in compiled(program, convention) if st.sites is not None]


# ------------------------------------------------------------------------------------------------- runs

@dataclass
class TRun:
    """One evaluation: every variable's value (``env``), each equation's input values (``args``), the
    pattern (one piece-index array per nonsmooth equation, shaped like its sites), the number system."""
    program: object
    ns: object
    env: list
    args: list
    pattern: tuple
    prec: int
    convention: str
    site_args: dict = field(default_factory=dict, repr=False)   # (k, group) -> the sites' argument arrays
    _coefs: dict = field(default_factory=dict, repr=False)
    _signs: dict = field(default_factory=dict, repr=False)

    def switch_signs(self, st, gi):
        """The signs (int8 arrays, SIGN_UNDECIDED where undecided) of every switching function of site group
        ``gi`` of step ``st``, one array per switching function over the group's sites."""
        key = (st.k, gi)
        s = self._signs.get(key)
        if s is None:
            if st.moves:
                st.switches[gi].refuse()
            a = self.site_args[key]
            m = len(st.sites.groups[gi].sites)
            s = self._signs[key] = [switch_signs(self.ns, t, c, a, m) for t, c in st.switches[gi]]
        return s

    def with_pattern(self, pattern):
        """The same values with another pattern (valid when its pieces agree with the values at x: a local
        index set's patterns); only the linear parts differ."""
        return dataclasses.replace(self, pattern=tuple(pattern), _coefs={})


def constants(program, ns, prec):
    """Values of the program's array constants in ``ns`` (cached on the program per system and precision)."""
    if not program.arrays:
        return {}
    cache = program.__dict__.setdefault("_tconsts", {})
    key = (ns.name, prec if ns.name in ("ball", "interval") else None)
    vals = cache.get(key)
    if vals is None:
        vals = cache[key] = {}
    return vals


def reader(program, ns, env, prec):
    lits, consts = {}, constants(program, ns, prec)

    def read(a):
        if a.__class__ is int:
            return env[a]
        if isinstance(a, Lit):
            v = lits.get(id(a))
            if v is None:
                v = lits[id(a)] = ns.const(a.value)
            return v
        v = consts.get(a.name)
        if v is None:
            v = consts[a.name] = ns.const_array(program.arrays[a.name])
        return v
    return read


def read_atom(program, ns, atom):
    """The value in ``ns`` of a literal or an array constant of ``program``."""
    return reader(program, ns, [], None)(atom)


def group_args(ns, st, g, xs):
    """The argument arrays (one per scalar argument, each over the group's sites) of a site group."""
    if st.sites.elementwise:
        grid, n = st.sites.grid, st.sites.n_sites
        return [ns.reshape(ns.broadcast_to(x, grid), (n,)) for x in xs]
    flat = xs[0] if len(xs) == 1 else ns.concat_flat(xs)
    return [ns.take(flat, idx) for idx in g.args]


def switch_values(ns, terms, const, args):
    acc = None
    for j, c in terms:
        t = args[j] if c == 1 else (ns.neg(args[j]) if c == -1 else ns.mul(ns.const(c), args[j]))
        acc = t if acc is None else ns.add(acc, t)
    if const != 0 or acc is None:
        k = ns.const(fmpq(const))
        acc = k if acc is None else ns.add(acc, k)
    return acc


def switch_signs(ns, terms, const, args, m):
    """The signs of one switching function over the ``m`` sites of a group: an int8 array of shape (m,), also
    when the function is a constant (``max(x, x)`` switches on x - x, merged to the constant 0)."""
    s = ns.signs(switch_values(ns, terms, const, args))
    return s if s.shape == (m,) else np.broadcast_to(s, (m,))


def choose_pieces(st, g, signs):
    """(the piece index at every site of the site group ``g`` of step ``st``, the bool array of the sites whose
    choice needed an undecided sign) from ``signs``, the decided signs of its switching functions (one int8
    array over the sites each).  Sites without switching functions (a max over one element: a pooling window
    that padding leaves with a single element) have one piece, 0."""
    if not signs:
        return np.zeros(len(g.sites), dtype=pattern_dtype(st)), np.zeros(len(g.sites), dtype=bool)
    return st.sel.choose_array(st.sites.params, g.n, signs)


def pattern_dtype(st):
    return object if any(st.n_pieces(g.n) >= 2 ** 62 for g in st.sites.groups) else np.int64


def run(program, ns, xs, convention=kinks.DEFAULT, pattern=None, prec=None, resolve=None, release=None,
        keep_site_args=True):
    """Evaluate a tensor program at the input arrays ``xs`` (values of ``ns``); with ``pattern`` every site
    is frozen to the given piece (f_sigma).  Raises DomainError / Undecided naming the equation and site.
    ``resolve(st, gi, signs, chosen)``, when given, is asked for the signs of a site group whose switching
    functions ``ns`` left undecided (``chosen``: the pattern arrays of the nonsmooth equations before
    ``st``); it returns the signs with as many undecided ones decided as it can (the float filter decides
    them in exact arithmetic, interpret/filtered.py).  ``release``: variables whose values no later rule
    reads (only their shapes): each is replaced by ``ns.zeros`` of its shape after its last use, to free
    memory on large networks.  ``keep_site_args=False`` (with no ``pattern``): the run keeps the signs it
    decided, not the arguments of every site (``TRun.switch_signs`` answers from the signs)."""
    steps = compiled(program, convention)
    ns_steps = [st for st in steps if st.sites is not None]
    if pattern is not None:
        pattern = _checked_pattern(program, ns_steps, tuple(pattern))
    env = list(xs) + [None] * (program.n_vars - program.n_inputs)
    read = reader(program, ns, env, prec)
    all_args, chosen, site_args, all_signs, all_coefs = [], [], {}, {}, {}
    last = {a: st.k for st in steps for a in st.ins if a.__class__ is int} if release else {}
    done = None
    for st in steps:
        if release and done is not None:
            _release(program, ns, done, env, all_args, last, release)
        args = [read(a) for a in st.ins]
        all_args.append(args)
        done = st
        try:
            if st.rule is not None:
                y = st.rule(ns, st.params, *args)
                env[st.outs[0]] = y
                continue
            given = None if pattern is None else pattern[len(chosen)].ravel()
            if st.moves:
                outs, pat = _run_moves(ns, st, args[0], given, site_args, all_coefs)
            else:
                record = keep_site_args or pattern is not None
                outs, pat = _run_sites(ns, st, args, given, record, resolve, chosen, site_args, all_signs, all_coefs)
            for o, v in zip(st.outs, outs):
                env[o] = v
            chosen.append(pat)
        except (DomainError, Undecided) as err:
            raise type(err)(f"{eqn_where(program, st.k)}: {err}") from None
    return TRun(program, ns, env, all_args, tuple(chosen), prec, convention, site_args, all_coefs, all_signs)


def _checked_pattern(program, ns_steps, pattern):
    """The tuple of ``pattern``'s entries as numpy arrays, one per nonsmooth step in ``ns_steps``, each checked
    against its step's sites; InputError naming the equation for a wrong count, shape or piece index."""
    if len(pattern) != len(ns_steps):
        raise InputError(f"pattern has {len(pattern)} entries, the program has {len(ns_steps)} nonsmooth "
                         "equations")
    checked = []
    for st, p in zip(ns_steps, pattern):
        arr = np.asarray(p)
        if arr.shape != tuple(st.sites.grid):
            raise InputError(f"pattern entry for {eqn_where(program, st.k)} has shape {list(arr.shape)}, its sites "
                             f"have shape {list(st.sites.grid)}")
        flat = arr.ravel()
        for g in st.sites.groups:
            vals = flat[g.sites]
            if vals.size and (min(vals) < 0 or max(vals) >= st.n_pieces(g.n)):
                raise InputError(f"pattern entry for {eqn_where(program, st.k)} holds a piece index outside "
                                 f"0..{st.n_pieces(g.n) - 1}")
        checked.append(arr)
    return tuple(checked)


def _run_moves(ns, st, x, given, site_args, all_coefs):
    """([the sorted output], the pattern array shaped like the sites) of a sort step over many elements at its
    argument ``x`` (the order certified at ``x``, or the one of the ``given`` pieces); records the gather in
    ``all_coefs``."""
    pat, P = _sort_moves(ns, st, x, given)
    all_coefs[("moves", st.k)] = P
    site_args[(st.k, 0)] = st.switches[0]       # what reads the site's arguments is refused
    return [_moved(ns, x, P, st.out_shapes[0])], pat.reshape(st.sites.grid)


def _run_sites(ns, st, args, given, record, resolve, chosen, site_args, all_signs, all_coefs):
    """(the output values of the nonsmooth step ``st``, one per output; its pattern array shaped like the
    sites) at its arguments ``args``: every site group's pieces are ``given`` (a flat pattern entry) or decided
    from the signs of its switching functions (``resolve`` as in ``run``).  Records the groups' arguments in
    ``site_args`` (when ``record``), their decided signs in ``all_signs``, their linear parts in
    ``all_coefs``.  Raises Undecided naming the first site whose piece no sign decides."""
    table = st.sites
    pat = np.zeros(table.n_sites, dtype=pattern_dtype(st))
    outs = [None] * len(st.outs)
    flat_outs = []
    for gi, g in enumerate(table.groups):
        a = group_args(ns, st, g, args)
        if record:
            site_args[(st.k, gi)] = a
        if given is not None:
            piece = given[g.sites]
        else:
            piece = _decided_pieces(ns, st, gi, g, a, resolve, chosen, all_signs)
        pat[g.sites] = piece
        coefs = coef_arrays(st, g, piece)
        all_coefs[(st.k, gi)] = coefs[0]          # the backward pass reads the same linear parts
        vals = piece_values(ns, st, g, piece, a, coefs)
        flat_outs.append((g, vals))
    scatter_outputs(ns, st, flat_outs, outs)
    return outs, pat.reshape(table.grid)


def _decided_pieces(ns, st, gi, g, a, resolve, chosen, all_signs):
    """The piece index at every site of site group ``g`` (number ``gi``) of step ``st``, decided from the signs
    of its switching functions at the group's arguments ``a`` (undecided ones handed to ``resolve`` when
    given); records the signs in ``all_signs``.  Raises Undecided naming the first site left undecided."""
    signs = [switch_signs(ns, t, c, a, len(g.sites)) for t, c in st.switches[gi]]
    if resolve is not None and any(bool((s == SIGN_UNDECIDED).any()) for s in signs):
        signs = resolve(st, gi, signs, chosen)
    all_signs[(st.k, gi)] = signs
    piece, und = choose_pieces(st, g, signs)
    if und.any():
        table = st.sites
        site = int(g.sites[np.argmax(und)])
        idx = list(np.unravel_index(site, table.grid)) if table.grid else []
        raise Undecided(f"cannot decide the index rule at site {[int(i) for i in idx]}")
    return piece


def _sort_moves(ns, st, x, given):
    """(the pattern, the gather of the sort) of a sort step over many elements (orders.py): the order certified
    at ``x``, or the one of the ``given`` pieces."""
    (g,) = st.sites.groups
    size = math.prod(st.in_shapes[0])
    flat = ns.reshape(x, (size,))
    perms = orders.certified_order(ns, st.sites, g, flat) if given is None else orders.perms_of(given[g.sites], g.n)
    pat = np.empty(st.sites.n_sites, dtype=object)
    pat[g.sites] = given[g.sites] if given is not None else orders.ranks(perms)
    return pat, orders.moves(st.sites, g, perms, size)


def _moved(ns, x, P, shape):
    return ns.reshape(ns.take(ns.reshape(x, (len(P),)), P), tuple(shape))


def _moves_of(r, st):
    """The gather of a sort step over many elements in run ``r`` (recomputed from the pattern after
    with_pattern)."""
    P = r._coefs.get(("moves", st.k))
    if P is None:
        pos = [s.k for s in nonsmooth_steps(r.program, r.convention)].index(st.k)
        _, P = _sort_moves(r.ns, st, r.args[st.k][0], np.asarray(r.pattern[pos], dtype=object).ravel())
        r._coefs[("moves", st.k)] = P
    return P


class SiteCoefs(ExactArray):
    """A per-site coefficient array of the chosen pieces: one of a few values (``table``: numerators over
    ``den``) per site (``inv``: the table index of every site).  The object array of numerators is built only
    when a reader asks for ``num``; the number systems that can read it faster use ``unit_mask`` (0/1
    coefficients select instead of multiplying) and ``_float`` (the float64 values, when exact)."""
    __slots__ = ("table", "inv", "_num", "_floats")

    def __init__(self, table, den, inv):
        self.table, self.inv, self._num, self._floats = table, inv, None, False
        self.den, self._digest = den, None

    @property
    def _float(self):
        """The float64 values when they are exact (dyadic, small numerators), built when first read."""
        if self._floats is False:
            small = self.den & (self.den - 1) == 0 and all(abs(v) < 2 ** 53 for v in self.table) and \
                self.den <= 2 ** 1000
            self._floats = (np.array(self.table, dtype=np.float64) / self.den)[self.inv] if small else None
        return self._floats

    @property
    def num(self):
        if self._num is None:
            self._num = np.array(self.table, dtype=object)[self.inv]
        return self._num

    @property
    def shape(self):
        return self.inv.shape

    @property
    def size(self):
        return self.inv.size

    @property
    def ndim(self):
        return self.inv.ndim

    def unit_mask(self):
        """The bool array of the sites whose coefficient is 1, when every coefficient is 0 or 1 (else None)."""
        if self.den != 1 or any(v not in (0, 1) for v in self.table):
            return None
        return np.asarray(self.table, dtype=np.int8)[self.inv].astype(bool)


def _unique_pieces(piece):
    """(the distinct piece indices, the index of every site's piece among them), without sorting when the
    piece indices are small integers."""
    if piece.dtype != object and piece.size and 0 <= int(piece.min()) and int(piece.max()) < 4096:
        seen = np.bincount(piece, minlength=1) > 0
        uniq = np.flatnonzero(seen)
        pos = (np.cumsum(seen) - 1).astype(np.int8 if uniq.size < 128 else np.int32)
        return uniq, pos[piece]
    return np.unique(np.asarray(piece, dtype=object if piece.dtype == object else np.int64), return_inverse=True)


def _release(program, ns, st, env, all_args, last, release):
    """Once step ``st`` is done: replace, in ``env`` and in the recorded arguments, the values whose last use
    was ``st`` and that are in ``release`` by zeros of their shape."""
    for a in set(a for a in st.ins if a.__class__ is int and last.get(a) == st.k and a in release):
        zero = ns.zeros(program.shapes[a])
        env[a] = zero
        for k in range(st.k + 1):
            for j, b in enumerate(program.eqns[k].ins):
                if b.__class__ is int and b == a:
                    all_args[k][j] = zero


def coef_arrays(st, g, piece):
    """Per-site coefficients of the chosen pieces: ``C[r][j]`` and ``K[r]`` as ExactArrays (SiteCoefs) over
    the group's sites (or a single fmpq when every site has the same value; 0 for a group without sites: an
    empty array)."""
    n_out = len(st.outs) if st.sites.elementwise else len(g.outs)
    if not len(piece):
        return [[fmpq(0)] * g.n for _ in range(n_out)], [fmpq(0)] * n_out
    uniq, inv = _unique_pieces(np.asarray(piece))
    inv = np.asarray(inv).reshape(-1)
    rows = []
    for i in uniq.tolist():
        dense = []
        for terms, const in st.piece(g.n, i).rows:
            c = [fmpq(0)] * g.n
            for j, v in terms:
                c[j] += v
            dense.append((c, const))
        rows.append(dense)

    def arr(vals):
        if not vals:              # a group without sites (an empty array): no coefficient is ever read
            return fmpq(0)
        if all(v == vals[0] for v in vals):
            return vals[0]
        den = math.lcm(*(int(v.q) for v in vals))
        table = [int(v.p) * (den // int(v.q)) for v in vals]
        return SiteCoefs(table, den, inv)
    C = [[arr([rows[u][r][0][j] for u in range(len(uniq))]) for j in range(g.n)] for r in range(n_out)]
    K = [arr([rows[u][r][1] for u in range(len(uniq))]) for r in range(n_out)]
    return C, K


def scaled(ns, c, x):
    """c * x for a coefficient (fmpq or ExactArray); None when c is 0.  A 0/1 coefficient array (relu's
    pieces) selects instead of multiplying."""
    if isinstance(c, fmpq):
        if c == 0:
            return None
        return x if c == 1 else (ns.neg(x) if c == -1 else ns.mul(ns.const(c), x))
    if c.den == 1:
        mask = _unit_mask(c)
        if mask is not None:
            shape = tuple(ns.shape(x)) if ns.shape(x) else c.shape
            return ns.mask(np.broadcast_to(mask, shape), ns.broadcast_to(x, shape))
    return ns.mul(ns.const_array(c), x)


def _unit_mask(c):
    """The bool array of a coefficient array whose entries are all 0 or 1 (else None)."""
    if isinstance(c, SiteCoefs):
        return c.unit_mask()
    one = c.num == 1
    return one.astype(bool) if bool((one | (c.num == 0)).all()) else None


def piece_values(ns, st, g, piece, args, coefs=None):
    C, K = coefs or coef_arrays(st, g, piece)
    m = len(g.sites)
    vals = []
    for r in range(len(C)):
        acc = None
        for j in range(g.n):
            t = scaled(ns, C[r][j], args[j])
            acc = t if acc is None else (acc if t is None else ns.add(acc, t))
        k = K[r]
        if not (isinstance(k, fmpq) and k == 0) or acc is None:
            kv = ns.const(k) if isinstance(k, fmpq) else ns.const_array(k)
            acc = kv if acc is None else ns.add(acc, kv)
        vals.append(ns.broadcast_to(acc, (m,)) if tuple(ns.shape(acc)) != (m,) else acc)
    return vals


def scatter_outputs(ns, st, flat_outs, outs):
    table = st.sites
    if table.elementwise:
        (g, vals), = flat_outs
        for r, v in enumerate(vals):
            outs[r] = ns.reshape(v, table.grid)
        return
    sizes = [math.prod(s) for s in st.out_shapes]
    total = sum(sizes)
    acc = None
    for g, vals in flat_outs:
        for r, v in enumerate(vals):
            part = ns.scatter(v, g.outs[r], total)
            acc = part if acc is None else ns.add(acc, part)
    if acc is None:             # no site group at all (a max-pool of an empty batch): empty outputs
        acc = ns.zeros((total,))
    off = 0
    for r, (n, shape) in enumerate(zip(sizes, st.out_shapes)):
        outs[r] = ns.reshape(ns.struct(acc, lambda a, off=off, n=n: a[off:off + n]), shape)
        off += n


def user_value(ns, v):
    """The user-facing form of a value: an array of fmpq / arb / floats, or the number itself for a scalar."""
    out = ns.out(v)
    return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out


def output_values(r):
    read = reader(r.program, r.ns, r.env, r.prec)
    return [read(a) for a in r.program.outputs]


# ---------------------------------------------------------------------------------------------------- AD

def _coefs(r, st, gi, g):
    key = (st.k, gi)
    c = r._coefs.get(key)
    if c is None:
        pos = [s.k for s in nonsmooth_steps(r.program, r.convention)].index(st.k)
        piece = np.asarray(r.pattern[pos]).ravel()[g.sites]
        c = r._coefs[key] = coef_arrays(st, g, piece)[0]
    return c


def _fit(ns, t, shape):
    return t if t is None or tuple(ns.shape(t)) == tuple(shape) else ns.broadcast_to(t, tuple(shape))


def jvp(r, tangents, keep=None, stop=None):
    """Output tangents (None = 0) of the run for input tangents (arrays shaped like the inputs, None = 0).
    ``keep`` ({variable: None}) receives the tangents of those variables too; ``stop`` (an equation index)
    ends the pass before that equation (for the tangents ``keep`` asks for)."""
    prog, ns = r.program, r.ns
    steps = compiled(prog, r.convention)
    if stop is not None:
        steps = steps[:stop]
    T = list(tangents) + [None] * (prog.n_vars - prog.n_inputs)
    for st in steps:
        ts = [T[a] if a.__class__ is int else None for a in st.ins]
        if all(t is None for t in ts):
            continue
        if st.rule is not None:
            T[st.outs[0]] = _fit(ns, jvp_rules[st.prim](ns, st.params, r.args[st.k], r.env[st.outs[0]], ts),
                                 st.out_shapes[0])
            continue
        table = st.sites
        zero = [ns.zeros(s) if t is None else t for t, s in zip(ts, st.in_shapes)]
        if st.moves:
            T[st.outs[0]] = _moved(ns, zero[0], _moves_of(r, st), st.out_shapes[0])
            continue
        flat_outs = []
        for gi, g in enumerate(table.groups):
            targs = group_args(ns, st, g, zero)
            C = _coefs(r, st, gi, g)
            vals = []
            for row in C:
                acc = None
                for j, c in enumerate(row):
                    t = scaled(ns, c, targs[j])
                    acc = t if acc is None else (acc if t is None else ns.add(acc, t))
                vals.append(ns.zeros((len(g.sites),)) if acc is None else _fit(ns, acc, (len(g.sites),)))
            flat_outs.append((g, vals))
        outs = [None] * len(st.outs)
        scatter_outputs(ns, st, flat_outs, outs)
        for o, v in zip(st.outs, outs):
            T[o] = v
    for v in keep or ():
        keep[v] = T[v]
    return [T[a] if a.__class__ is int else None for a in prog.outputs]


def vjp(r, cotangents, wrt=None, seeds=None, stop=None, consume=False, keep=None):
    """Input cotangents (None = 0) of the run for output cotangents (arrays shaped like the outputs, None =
    0).  ``wrt``: the input indices wanted (default all); cotangents that reach no wanted input are not
    computed.  ``seeds`` ({variable: cotangent}) and ``stop`` (an equation index) start the backward pass
    inside the program instead: the gradient of a value computed before equation ``stop``.  ``consume``:
    drop each equation's recorded values once its rule has read them (the run's values are then gone; for
    one backward pass over a large network).  ``keep`` ({variable: None}) receives the cotangents of those
    variables too (None where nothing reached them)."""
    prog, ns = r.program, r.ns
    steps = compiled(prog, r.convention)
    if stop is not None:
        steps = steps[:stop]
    need = _needed(prog, wrt)
    CT = [None] * prog.n_vars

    def acc(a, c, shape):
        if a.__class__ is int and c is not None and need[a]:
            c = unbroadcast(ns, c, shape) if tuple(ns.shape(c)) != tuple(shape) else c
            CT[a] = c if CT[a] is None else ns.add(CT[a], c)
    for a, c in zip(prog.outputs, cotangents):
        if a.__class__ is int and c is not None:
            acc(a, c, prog.shapes[a])
    for a, c in (seeds or {}).items():
        acc(a, c, prog.shapes[a])
    for st in reversed(steps):
        cts = [CT[o] for o in st.outs]
        for o in st.outs:               # every consumer of st's outputs came later: their cotangents are whole
            if keep is not None and o in keep:
                keep[o] = CT[o]
            CT[o] = None
        if consume and st.k + 1 < len(steps):       # the step after st was processed just before it
            _consume(r, steps[st.k + 1])
        if all(c is None for c in cts) or not any(a.__class__ is int and need[a] for a in st.ins):
            continue
        _step_vjp(r, st, cts, need, acc)
    for v in keep or ():
        if CT[v] is not None:       # not cleared above: a program input, or an output of no equation reached
            keep[v] = CT[v]
    return [CT[i] if need[i] else None for i in range(prog.n_inputs)]


def _step_vjp(r, st, cts, need, acc):
    """None: adds the input cotangents of step ``st`` of run ``r`` for its output cotangents ``cts`` (None =
    0) through ``acc(atom, cotangent, shape)``; ``need[v]``: the cotangent of variable v is wanted."""
    ns = r.ns
    if st.rule is not None:
        if st.prim in SELECTIVE_VJP:
            needs = tuple(a.__class__ is int and need[a] for a in st.ins)
            in_cts = vjp_rules[st.prim](ns, st.params, r.args[st.k], r.env[st.outs[0]], cts[0], needs=needs)
        else:
            in_cts = vjp_rules[st.prim](ns, st.params, r.args[st.k], r.env[st.outs[0]], cts[0])
        for a, c, s in zip(st.ins, in_cts, st.in_shapes):
            acc(a, c, s)
        return
    cts = [ns.zeros(s) if c is None else c for c, s in zip(cts, st.out_shapes)]
    if st.moves:            # the transpose of a permutation is its inverse
        acc(st.ins[0], _moved(ns, cts[0], np.argsort(_moves_of(r, st)), st.in_shapes[0]), st.in_shapes[0])
    elif st.sites.elementwise:
        _elementwise_vjp(r, st, cts, need, acc)
    else:
        _grouped_vjp(r, st, cts, acc)


def _elementwise_vjp(r, st, cts, need, acc):
    """None: adds through ``acc`` the input cotangents of the elementwise nonsmooth step ``st`` for its output
    cotangents ``cts`` (arrays), the chosen pieces' coefficients applied site by site."""
    ns, table = r.ns, st.sites
    g = table.groups[0]
    C = _coefs(r, st, 0, g)
    flat = [ns.reshape(c, (table.n_sites,)) for c in cts]
    for j, (a, s) in enumerate(zip(st.ins, st.in_shapes)):
        if a.__class__ is not int or not need[a]:
            continue
        tot = None
        for row, c in zip(C, flat):
            t = scaled(ns, row[j], c)
            tot = t if tot is None else (tot if t is None else ns.add(tot, t))
        if tot is not None:
            acc(a, ns.reshape(_fit(ns, tot, (table.n_sites,)), table.grid), s)


def _grouped_vjp(r, st, cts, acc):
    """None: adds through ``acc`` the input cotangents of the non-elementwise nonsmooth step ``st`` (site groups
    reading elements of its inputs) for its output cotangents ``cts`` (arrays)."""
    ns, table = r.ns, st.sites
    flat_ct = cts[0] if len(cts) == 1 else ns.concat_flat(cts)
    sizes = [math.prod(s) for s in st.in_shapes]
    vals, where = [], []
    for gi, g in enumerate(table.groups):
        C = _coefs(r, st, gi, g)
        for row, idx in zip(C, g.outs):
            ct_row = ns.take(flat_ct, idx)
            for j in range(g.n):
                part = routed(ns, row[j], ct_row, g.args[j])
                if part is not None:
                    vals.append(part[0])
                    where.append(part[1])
    if not vals:
        return
    # one scatter of every contribution: sums where several land on one input element (overlapping windows)
    total = ns.scatter(vals[0] if len(vals) == 1 else ns.concat_flat(vals), np.concatenate(where), sum(sizes))
    off = 0
    for a, n, s in zip(st.ins, sizes, st.in_shapes):
        acc(a, ns.reshape(ns.struct(total, lambda x, off=off, n=n: x[off:off + n]), s), s)
        off += n


def routed(ns, c, ct, args):
    """(values, input indices) of the contribution c * ct of one piece coefficient (an fmpq or a per-site
    array over a site group) to the argument whose flat input indices are ``args``, or None when it is 0: a
    0/1 coefficient (a max's chosen argument) routes the cotangents of its sites only, with no product."""
    if isinstance(c, fmpq):
        if c == 0:
            return None
        return (ct if c == 1 else scaled(ns, c, ct)), np.asarray(args)
    mask = _unit_mask(c) if c.den == 1 else None
    if mask is None:
        return scaled(ns, c, ct), np.asarray(args)
    at = np.flatnonzero(np.broadcast_to(mask, (len(args),)))
    if not at.size:
        return None
    return ns.take(ct, at), np.asarray(args)[at]


def _consume(r, st):
    """Drop what the run recorded for step ``st`` (its arguments and outputs), its rule having run."""
    r.args[st.k] = None
    for o in st.outs:
        r.env[o] = None


def _needed(prog, wrt):
    """need[v]: variable v depends on a wanted input (cotangents are propagated only there)."""
    need = [False] * prog.n_vars
    for i in (range(prog.n_inputs) if wrt is None else wrt):
        need[i] = True
    for e in prog.eqns:
        if any(a.__class__ is int and need[a] for a in e.ins):
            for o in e.outs:
                need[o] = True
    return need


# ------------------------------------------------------------------------------------------ entry points

def escalate(number, prec, job, cap=PREC_CAP):
    """Run ``job(ns, prec)`` in the tensor system ``number``, escalating the precision as for scalar programs
    (interpret/evaluate.py)."""
    return _escalate(number, prec, job, cap, systems=get_tensor_system)


def coerce_inputs(program, point, what="the point"):
    """One ExactArray per input of a tensor program, checked against the input shapes, from: a list (or tuple)
    with one array per input (numpy, torch, nested lists of exact numbers, ExactArray), a dict {input name:
    array}, a path to an .npz file holding one array per input named like the inputs, or a comma-separated
    string of every element of every input (row-major, inputs in order)."""
    import os

    from ..program.arrays import load_npz
    from ..rational import parse_point
    names = list(program.input_names)
    shapes = program.input_shapes or [()] * program.n_inputs
    if isinstance(point, str) and (point.endswith(".npz") or os.path.isfile(point)):
        if not os.path.isfile(point):
            raise InputError(f"{what}: no such file {point!r}")
        arrays = load_npz(point).arrays
        unknown = sorted(set(arrays) - set(names))
        missing = [n for n in names if n not in arrays]
        if unknown or missing:
            raise InputError(f"{what} {point!r} must hold one array per input of {program.name}, named "
                             f"{', '.join(names)}" + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; unknown {', '.join(unknown)}" if unknown else ""))
        point = [arrays[n] for n in names]
    elif isinstance(point, str):
        flat = parse_point(point)
        sizes = [math.prod(s) for s in shapes]
        if len(flat) != sum(sizes):
            raise InputError(f"{what} has {len(flat)} number(s) but the inputs of {program.name} "
                             f"({', '.join(f'{n}: {list(s)}' for n, s in zip(names, shapes))}) have {sum(sizes)} "
                             "element(s): give an .npz file with one array per input (named like the inputs) or "
                             "every element, comma-separated")
        point, k = [], 0
        for n, s in zip(sizes, shapes):
            point.append(np.array(flat[k:k + n], dtype=object).reshape(s))
            k += n
    elif isinstance(point, dict):
        missing = [n for n in names if n not in point]
        if missing or len(point) != len(names):
            raise InputError(f"{what} must give one array per input of {program.name} ({', '.join(names)})")
        point = [point[n] for n in names]
    if not isinstance(point, (list, tuple)):
        raise InputError(f"{what} of a tensor program is a list with one array per input, a dict by input name, "
                         "an .npz file or every element comma-separated")
    if len(point) != program.n_inputs:
        raise InputError(f"{what} has {len(point)} value(s) but {program.name} takes {program.n_inputs} "
                         f"input(s) ({', '.join(names)})")
    out = []
    for name, v, sh in zip(names, point, shapes):
        a = ExactArray.from_any(v, f"input {name}")
        if tuple(a.shape) != tuple(sh):
            raise InputError(f"input {name} has shape {list(a.shape)}, the program declares {list(sh)}")
        out.append(a)
    return out


@dataclass
class TensorEval:
    """``values``: one array per output (object arrays of fmpq when exact, of arb for balls, numpy floats);
    ``pattern``: one piece-index array per nonsmooth equation; ``exact``: every value is rational."""
    values: list
    pattern: tuple
    exact: bool
    number: str
    prec: int
    convention: str
    run: TRun


def evaluate(program, point, number="exact", prec=None, convention=kinks.DEFAULT, pattern=None):
    kinks.check_convention(convention)
    xs = coerce_inputs(program, point)

    def job(ns, p):
        r = run(program, ns, [ns.const_array(x) for x in xs], convention, pattern, p)
        vals = output_values(r)
        exact = all(ns.is_exact_value(v) for v in vals)
        return TensorEval([user_value(ns, v) for v in vals], r.pattern, exact, ns.name, p, convention, r)
    return escalate(number, prec, job)


@dataclass
class TensorGrad:
    """``values`` (one array per output); ``gradient``: for a program with one scalar output, one array per
    input (None for inputs not in ``wrt``), the selection gradient; ``pattern``; ``exact``."""
    values: list
    gradient: list
    pattern: tuple
    exact: bool
    number: str
    prec: int
    convention: str
    mode: str
    run: TRun = field(repr=False, default=None)

    @property
    def jacobian(self):
        return [self.gradient]


def grad(program, point, mode="backward", number="exact", prec=None, convention=kinks.DEFAULT, pattern=None,
         wrt=None):
    """The selection gradient of a tensor program with one scalar output (Algorithm 2 in backward mode;
    forward mode runs one tangent per input element, for small programs and Lemma 1).  ``wrt``: the inputs to
    differentiate, by name or position (default: all); the gradient of the others is None."""
    kinks.check_convention(convention)
    if mode not in ("forward", "backward"):
        raise InputError(f"mode {mode!r} must be 'forward' or 'backward'")
    if program.n_outputs != 1 or program.atom_shape(program.outputs[0]) != ():
        raise InputError(f"{program.name} has outputs of shapes "
                         f"{[list(program.atom_shape(a)) for a in program.outputs]}: a gradient needs one scalar "
                         "output (use vjp for others)")
    wrt = input_positions(program, wrt)
    xs = coerce_inputs(program, point)

    def job(ns, p):
        r = run(program, ns, [ns.const_array(x) for x in xs], convention, pattern, p)
        vals = output_values(r)
        if mode == "backward":
            cts = vjp(r, [ns.const(fmpq(1))], wrt)
        else:
            cts = forward_gradient(r, wrt)
        g = [None if i not in wrt else (ns.zeros(program.shapes[i]) if c is None else c) for i, c in enumerate(cts)]
        exact = all(ns.is_exact_value(v) for v in vals) and all(ns.is_exact_value(c) for c in g if c is not None)
        grads = [None if c is None else user_value(ns, c) for c in g]
        return TensorGrad([user_value(ns, v) for v in vals], grads, r.pattern, exact, ns.name, p, convention, mode, r)
    return escalate(number, prec, job)


def input_positions(program, wrt):
    """The positions of the inputs named in ``wrt`` (names or positions; None: every input), InputError naming
    the inputs for one that is not."""
    names = list(program.input_names)
    if wrt is None:
        return list(range(len(names)))
    if isinstance(wrt, (str, int)):
        wrt = [wrt]
    out = []
    for w in wrt:
        if isinstance(w, str) and w in names:
            out.append(names.index(w))
        elif isinstance(w, int) and not isinstance(w, bool) and 0 <= w < len(names):
            out.append(w)
        else:
            raise InputError(f"wrt={w!r} is not an input of {program.name} (its inputs: {', '.join(names)}; "
                             "give names or positions)")
    return out


def forward_gradient(r, wrt):
    """The gradient by forward mode: one tangent per element of every wanted input."""
    prog, ns = r.program, r.ns
    out = [None] * prog.n_inputs
    for i in wrt:
        shape = prog.shapes[i]
        n = math.prod(shape)
        comps = []
        for e in range(n):
            basis = np.zeros(n, dtype=object)
            basis[e] = 1
            t = ns.const_array(ExactArray(basis.reshape(shape), 1))
            tangents = [t if j == i else None for j in range(prog.n_inputs)]
            (o,) = jvp(r, tangents)
            comps.append(ns.zeros(()) if o is None else o)
        out[i] = ns.reshape(ns.concat_flat(comps), shape) if comps else ns.zeros(shape)
    return out
