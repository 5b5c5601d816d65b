"""Certificates for tensor programs: kinds ``tensor_index_set``, ``tensor_differentiable`` and
``tensor_critical`` (see verify.certificates for the envelope and the checker's part in verify/checker/sites.py).

A certificate for a network stays small and exact: every array lives in an .npz side file beside the
certificate, named and hashed (sha256 of the exact content, verify.program.arrays) in the certificate:

- the program's constants: the file its text names, ``arrays("mlp.npz", digest="...")``;
- ``claim.point``: {"file", "digest"}, one array per input, named like the inputs;
- ``result.arrays``: {"file", "digest"}, the certified site lists, one int64 array of rows per nonsmooth
  equation k (k its index in the program, sites by their flat index in the equation's site grid):
  ``kinks.k`` (site, switch) for every switching function exactly 0, ``undecided.k`` (site, switch) for
  every sign undecided at the precision cap and (site, -1) for every site where the agreement of its pieces
  is undecided, ``multi.k`` (site, piece) for every site where several pieces agree with the primitive (index
  sets and critical points); and the selection gradient when one is stated: ``grad.NAME`` (exact), or
  ``grad.NAME.lo`` and ``grad.NAME.hi``: float64 bounds, exact dyadic numbers rounded outward from the balls.

Piece indices are the certifier's; ``evidence.pieces`` maps each index used to the piece's affine rows, per
nonsmooth equation and number of site arguments: [{"n": {"i": rows}}].  The patterns of I(x) (critical) are
the pattern at x with the multi sites varied: the product, in row order, of the listed pieces.  Hull
questions are answered in Gram coordinates: weights (convex, over the patterns of I(x) or the essential
leaves) with sum l_i g_i = 0, or a separator y with <sum y_j g_j, g_i> > 0 for every i; the Clarke walk as a
tree (a node per nonsmooth equation with tied switching functions: the tied (site, switch) pairs, those with
zero gradient, a branch per sign vector: a Gordan certificate, or the next node), and leaves with their
pattern as changes from the pattern at x and, for piecewise-linear programs, a strict direction in Gram
coordinates over the tied gradients of their path.
"""
import dataclasses
import os

import numpy as np
from flint import arb, fmpq

from ..certificates import check_writable, has_balls, make, validate_schema
from ..errors import InputError, Undecided
from ..interpret import tensor as T
from ..interpret.precision import working_precision
from ..numbers.ball import json_number
from ..numbers.tensor import QT
from ..program import kinks
from ..program.prims.steps import require_continuous
from ..program.arrays import Arrays, ExactArray, load_npz, read_npz, save_entries, stored_digest
from ..rational import fmt_q
from .certs import truth_json
from .sites import PATTERN_CAP, gradients_key, site_critical, site_index_set

VERDICT = {True: "PROVED", False: "UNDECIDED"}


@dataclasses.dataclass
class TensorCertificate:
    """A certificate (``cert``, a dict) and its side files (``files``: {file name: an Arrays (the program's
    constants) or a dict of npz entries}); ``write(path)`` writes every side file into the folder of ``path``
    (a file already there must have the same content) and then the JSON."""
    cert: dict
    files: dict

    def write(self, path):
        validate_schema(self.cert)
        check_writable(path)
        folder = os.path.dirname(os.path.abspath(path))
        for name, content in self.files.items():
            target = os.path.join(folder, name)
            if os.path.exists(target):
                try:
                    same = load_npz(target).digest == content.digest if isinstance(content, Arrays) else \
                        stored_digest(read_npz(target)) == stored_digest(content)
                except InputError:
                    same = False
                if not same:
                    raise InputError(f"cannot write the side file {target!r}: a different file of that name is there")
                continue
            content.save(target) if isinstance(content, Arrays) else save_entries(target, content)
        from ..certificates import write
        write(self.cert, path)


def _side(program, role, entries, files):
    """Register the side file ``entries`` ({key: numpy array}) in ``files``; its {"file", "digest"}."""
    digest = stored_digest(entries)
    name = f"{program.name}.{role}-{digest[:16]}.npz"
    files[name] = entries
    return {"file": name, "digest": digest}


def _with_named_arrays(program):
    """The program with its arrays file named (programs built in Python have none: one named by content)."""
    if not program.arrays or program.arrays.file:
        return program
    arrays = Arrays(program.arrays.arrays, f"{program.name}.arrays-{program.arrays.digest[:16]}.npz")
    return dataclasses.replace(program, arrays=arrays)


def _rows(pairs):
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _site_lists(iset, multi=True):
    """{key: ExactArray} of the kinks, undecided and multi rows per nonsmooth equation."""
    steps = T.nonsmooth_steps(iset.program, iset.convention)
    flat = {st.k: st for st in steps}

    def site(k, idx):
        return int(np.ravel_multi_index(tuple(idx), flat[k].sites.grid)) if idx else 0
    out = {}
    for st in steps:
        kk = sorted((site(st.k, kn.site), kn.switch) for kn in iset.kinks if kn.eqn == st.k)
        und = sorted([(site(st.k, kn.site), kn.switch) for kn in iset.undecided_switches if kn.eqn == st.k] +
                     [(site(st.k, u["site"]), -1) for u in iset.undecided if u["equation"] == st.k])
        out[f"kinks.{st.k}"] = _rows(kk)
        out[f"undecided.{st.k}"] = _rows(und)
        if multi:
            pos = steps.index(st)
            out[f"multi.{st.k}"] = _rows([(s, p) for q, s, ps in iset.multi if q == pos for p in ps])
    return out


def _dense(piece, n):
    out = []
    for terms, const in piece.rows:
        row = [fmpq(0)] * n
        for j, c in terms:
            row[j] += c
        out.append([fmt_q(c) for c in row] + [fmt_q(const)])
    return out


def _piece_table(iset, used):
    """evidence.pieces: per nonsmooth equation {n: {i: rows}} for the (position, n, i) in ``used``."""
    steps = T.nonsmooth_steps(iset.program, iset.convention)
    table = [{} for _ in steps]
    for pos, n, i in sorted(used):
        table[pos].setdefault(str(n), {})[str(i)] = _dense(steps[pos].piece(n, i), n)
    return table


def _group_n(st, s):
    for g in st.sites.groups:
        if s in g.sites:
            return g.n
    raise AssertionError("a site outside its table")


def _multi_used(iset):
    steps = T.nonsmooth_steps(iset.program, iset.convention)
    return {(pos, _group_n(steps[pos], s), p) for pos, s, ps in iset.multi for p in ps}


# -------------------------------------------------------------------------------------------- gradients

_lower = np.frompyfunc(lambda v: v.lower(), 1, 1)
_upper = np.frompyfunc(lambda v: v.upper(), 1, 1)
_float = np.frompyfunc(float, 1, 1)
_arb = np.frompyfunc(arb, 1, 1)
_exact = np.frompyfunc(lambda v: v.is_exact(), 1, 1)


def _float_bounds(arr):
    """float64 arrays (lo, hi): lo the largest float below every ball's lower end, hi the smallest above its
    upper end (decided exactly), one float further out for a ball of positive radius (so that an enclosure
    computed in another order still fits)."""
    flat = np.ravel(arr)
    if flat.size == 0:
        return np.zeros(np.shape(arr)), np.zeros(np.shape(arr))
    L, U = _lower(flat), _upper(flat)
    lo, hi = np.asarray(_float(L), dtype=np.float64), np.asarray(_float(U), dtype=np.float64)
    for bound, ends, ok, step in ((lo, L, lambda e, b: e >= b, -np.inf), (hi, U, lambda e, b: e <= b, np.inf)):
        for _ in range(8):
            bad = ~np.asarray(ok(ends, _arb(bound)), dtype=bool)
            if not bad.any():
                break
            bound[bad] = np.nextafter(bound[bad], step)
        else:
            raise AssertionError("float bounds: rounding did not converge")
    inexact = ~np.asarray(_exact(flat), dtype=bool)
    lo[inexact] = np.nextafter(lo[inexact], -np.inf)
    hi[inexact] = np.nextafter(hi[inexact], np.inf)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise InputError("a gradient element is too large for float64 bounds")
    return lo.reshape(np.shape(arr)), hi.reshape(np.shape(arr))


def _gradient_arrays(program, wrt, grads):
    """npz entries of a gradient given as one array per input in wrt: QT or fmpq arrays exactly (grad.NAME),
    arb arrays as float64 bounds (grad.NAME.lo, grad.NAME.hi)."""
    out = {}
    for i, g in zip(wrt, grads):
        name = program.input_names[i]
        if isinstance(g, QT):
            out.update(ExactArray(g.num, g.den).npz_entries(f"grad.{name}"))
            continue
        a = np.asarray(g, dtype=object)
        if a.size == 0 or all(isinstance(v, fmpq) for v in a.ravel().tolist()):
            out.update(ExactArray.from_any(a).npz_entries(f"grad.{name}"))
            continue
        lo, hi = _float_bounds(np.frompyfunc(lambda v: v if isinstance(v, arb) else arb(v), 1, 1)(a))
        out[f"grad.{name}.lo"], out[f"grad.{name}.hi"] = lo, hi
    return out


def _selection_gradient(iset, wrt):
    """The selection gradient at x (one backward pass over the run of the index set) and the output value."""
    r = iset.run
    with working_precision(r.ns, r.prec):
        cts = T.vjp(r, [r.ns.const(fmpq(1))], wrt)
        value = T.output_values(r)[0]
    grads = [r.ns.zeros(iset.program.shapes[i]) if cts[i] is None else cts[i] for i in wrt]
    if isinstance(value, QT):
        return grads, fmpq(int(value.num.ravel()[0]), value.den)
    return grads, np.asarray(value, dtype=object).ravel()[0]


def _wrt(program, wrt):
    if wrt is None:
        return list(range(program.n_inputs))
    out = []
    for w in wrt:
        i = program.input_names.index(w) if isinstance(w, str) else int(w)
        if not 0 <= i < program.n_inputs:
            raise InputError(f"wrt: {w!r} is not an input of {program.name}")
        out.append(i)
    return sorted(set(out))


def _gradient_part(program, iset, gradient, wrt, value, prec):
    """(result.gradient JSON, side arrays, prec of the balls) for ``gradient`` (None, True: computed at x, or
    the arrays already computed, with ``value`` and ``prec``)."""
    if gradient is None or gradient is False:
        return None, {}, None
    if program.n_outputs != 1 or program.atom_shape(program.outputs[0]) != ():
        raise InputError(f"a gradient needs one scalar output ({program.name} has {program.n_outputs})")
    wrt = _wrt(program, wrt)
    if gradient is True:
        grads, value = _selection_gradient(iset, wrt)
        prec = iset.prec
    elif value is None or len(gradient) != len(wrt):
        raise InputError("a given gradient needs one array per input in wrt and its value (the program's output at "
                         "the point)")
    else:
        grads = list(gradient)
    number = json_number(value)
    part = {"wrt": [program.input_names[i] for i in wrt], "value": number}
    return part, _gradient_arrays(program, wrt, grads), (prec if not isinstance(number, str) else None)


# ---------------------------------------------------------------------------------------------- builders

def _envelope(program, xs, convention):
    """(program with a named arrays file, side files, claim with the point's side file)."""
    program = _with_named_arrays(program)
    files = {program.arrays.file: program.arrays} if program.arrays else {}
    entries = {}
    for n, x in zip(program.input_names, xs):
        entries.update(x.npz_entries(n))
    return program, files, {"point": _side(program, "point", entries, files)}


def _prec_of(result, prec):
    return prec if has_balls(result) else None


def tensor_index_certificate(program, point, convention=kinks.DEFAULT, gradient=None, wrt=None, value=None,
                             prec=None, iset=None, started=None):
    """The certificate of the local index set I(x) of a tensor program and its exact kink set (kind
    tensor_index_set).  ``gradient``: None, True (the selection gradient at x, computed here) or the gradient
    already computed (one array per input in ``wrt`` as verify.grad returns it, with ``value`` the output at
    x and ``prec`` the precision of its balls): stated in the result file.  ``iset``: a SiteIndexSet already
    computed at this point (else computed here).  Returns a TensorCertificate."""
    xs = T.coerce_inputs(program, point)
    iset = iset or site_index_set(program, xs, convention)
    program, files, claim = _envelope(program, xs, convention)
    gpart, garrays, gprec = _gradient_part(program, iset, gradient, wrt, value, prec)
    lists = _site_lists(iset)
    n_und = len(iset.undecided) + len(iset.undecided_switches)
    result = {"arrays": _side(program, "result", {**lists, **garrays}, files), "kinks": len(iset.kinks),
              "multi": len(iset.multi), "undecided": n_und, "gradient": gpart}
    evidence = {"pieces": _piece_table(iset, _multi_used(iset))}
    cert = make("tensor_index_set", program, convention, claim, VERDICT[n_und == 0], result, evidence,
                _prec_of(result, gprec), started)
    return TensorCertificate(cert, files)


def tensor_differentiable_certificate(program, point, convention=kinks.DEFAULT, gradient=None, wrt=None,
                                      value=None, prec=None, iset=None, started=None):
    """Proposition 3 for a tensor program (kind tensor_differentiable): PROVED when no switching function of
    any site vanishes at x (then f is differentiable there and its gradient is the selection gradient),
    UNDECIDED otherwise, with the kinks (and signs undecided at the cap) in the result file; ``gradient`` as in
    tensor_index_certificate.  Refused (Undecided) when the pattern at x itself cannot be decided."""
    require_continuous(program, "certifying differentiability")
    xs = T.coerce_inputs(program, point)
    iset = iset or site_index_set(program, xs, convention)
    program, files, claim = _envelope(program, xs, convention)
    gpart, garrays, gprec = _gradient_part(program, iset, gradient, wrt, value, prec)
    lists = _site_lists(iset, multi=False)
    for st in T.nonsmooth_steps(iset.program, iset.convention):      # only signs count here, not agreement
        rows = lists[f"undecided.{st.k}"]
        lists[f"undecided.{st.k}"] = rows[rows[:, 1] >= 0]
    n_und = len(iset.undecided_switches)
    diff = not iset.kinks and n_und == 0
    result = {"arrays": _side(program, "result", {**lists, **garrays}, files), "differentiable": diff,
              "kinks": len(iset.kinks), "undecided": n_und, "gradient": gpart}
    cert = make("tensor_differentiable", program, convention, claim, VERDICT[diff], result, {},
                _prec_of(result, gprec), started)
    return TensorCertificate(cert, files)


def _membership(h, first_of, size):
    """A HullAnswer over distinct gradients as a witness over ``size`` vectors: generator g's weight (or
    separator coordinate) on the first vector with that gradient (first_of[g]), 0 elsewhere."""
    if h.weights is None and h.separator is None:
        return {"undecided": True}
    vals = h.weights if h.weights is not None else h.separator
    out = [fmpq(0)] * size
    for g, v in enumerate(vals):
        out[first_of[g]] = fmpq(v)
    return {"weights" if h.weights is not None else "separator": [fmt_q(v) for v in out]}


def tensor_critical_certificate(program, point, convention=kinks.DEFAULT, wrt=None, max_leaves=PATTERN_CAP,
                                crit=None, started=None):
    """Selection-, Clarke- and artificial criticality of a tensor program at x (kind tensor_critical), with
    the witnesses in Gram coordinates (module docstring).  I(x) must have at most PATTERN_CAP patterns.
    ``crit``: the SiteCritical already computed at this point for these inputs (else computed here)."""
    xs = T.coerce_inputs(program, point)
    wrt_i = _wrt(program, wrt)
    if crit is None:
        crit = site_critical(program, xs, convention, wrt=wrt_i, max_leaves=max_leaves)
    iset, fld, sel, cl = crit.field.index, crit.field, crit.selection, crit.clarke
    if iset.undecided or iset.undecided_switches:
        raise Undecided("the index set is undecided at the point: no critical-point certificate")
    index = {id(p): n for n, p in enumerate(iset.patterns)}
    first = [index[id(ps[0])] for ps in fld.patterns_of]
    steps = T.nonsmooth_steps(iset.program, convention)
    used = _multi_used(iset)
    clarke, cmem, essential = {"undecided": True}, {"undecided": True}, None
    if cl is not None:
        leaves, keys = [], {}
        for n, leaf in enumerate(cl.leaves):
            keys.setdefault(gradients_key(leaf["gradient"]), n)
            changes = []
            for pos, (arr, base) in enumerate(zip(leaf["pattern"], iset.run.pattern)):
                a, b = np.asarray(arr).ravel(), np.asarray(base).ravel()
                for s in np.nonzero(a != b)[0].tolist():
                    changes.append([steps[pos].k, int(s), int(a[s])])
                    used.add((pos, _group_n(steps[pos], s), int(a[s])))
            leaves.append({"changes": changes, "direction": None if leaf["direction"] is None else
                           [fmt_q(v) for v in leaf["direction"]]})
        clarke = {"piecewise_linear": cl.piecewise_linear, "tree": _tree(cl.tree), "leaves": leaves}
        cmem = _membership(crit.clarke_critical, [keys[gradients_key(g)] for g in cl.gradients], len(cl.leaves))
        essential = len(cl.leaves)
    program2, files, claim = _envelope(program, xs, convention)
    claim["wrt"] = [program.input_names[i] for i in wrt_i]
    lists = {k: v for k, v in _site_lists(iset).items() if k.startswith("multi.")}
    s, c = truth_json(sel.truth), truth_json(crit.clarke_critical.truth) if cl is not None else None
    art = False if s is False or c is True else (None if s is None or c is None else True)   # three-valued
    result = {"arrays": _side(program2, "result", lists, files), "count": iset.count, "selection_critical": s,
              "clarke_critical": c, "artificial": art, "essential": essential}
    evidence = {"pieces": _piece_table(iset, used), "selection": _membership(sel, first, iset.count),
                "clarke": clarke, "clarke_membership": cmem}
    cert = make("tensor_critical", program2, convention, claim, VERDICT[s is not None and c is not None], result,
                evidence, None, started)
    return TensorCertificate(cert, files)


def _tree(node):
    if "leaf" in node:
        return {"leaf": node["leaf"]}
    out = {"eqn": node["eqn"], "tied": node["tied"], "zero": node["zero"],
           "branches": [{"signs": b["signs"], "gordan": [fmt_q(v) for v in b["gordan"]]} if "gordan" in b else
                        {"signs": b["signs"], "next": _tree(b["next"])} for b in node["branches"]]}
    for key in ("generic", "degenerate"):         # degenerate ties decided by their lowest-order parts
        if key in node:
            out[key] = node[key]
    return out



# ------------------------------------------------------------------------------------ segments, integrals
# Kinds tensor_segment and tensor_integral, for piecewise-linear tensor programs (the native exact walk of
# segment_net.py, every value affine in t on a piece): ``claim.from`` and ``claim.to`` are side files (one array
# per input, like ``claim.point``); ``result`` is the partition's (or the identity's) JSON without its curve
# (the two side files are the curve); ``evidence.points`` the fine partition's rational points and
# ``evidence.patterns`` the pattern at each point and on each open piece between them, in order (the first
# written in full, every later one as the sites that change, as TensorPartition.json writes them), with
# ``evidence.pieces`` the piece table.  The checker re-derives every pattern with the index rules at the point
# (and at each piece's midpoint), proves that no switching function of a piece's frozen program has a root
# inside the piece (they are affine in t: their signs at the piece's ends and midpoint, exactly), merges, and
# for the integral recomputes every side exactly.

def _segment_envelope(part):
    """(program, side files, claim) of a native piecewise-linear tensor partition; InputError otherwise."""
    if getattr(part, "route", None) != "native" or part.values != "affine":
        how = "the native walk on polynomials in t" if getattr(part, "route", None) == "native" else \
            "the scalarised route"
        raise InputError("certificates of tensor segments and integrals are written for piecewise-linear tensor "
                         f"programs along the segment (every value affine in t); {part.program.name} takes {how}")
    program = _with_named_arrays(part.program)
    files = {program.arrays.file: program.arrays} if program.arrays else {}
    claim = {"tol": part.tol}
    for key, xs in (("from", part.curve.segment[0]), ("to", part.curve.segment[1])):
        entries = {}
        for n, x in zip(program.input_names, xs):
            entries.update(x.npz_entries(n))
        claim[key] = _side(program, key, entries, files)
    return program, files, claim


def _fine_evidence(part):
    """evidence.points / patterns / pieces of a native partition (see above)."""
    steps = T.nonsmooth_steps(part.program, part.convention)
    seq, points = [], []
    for a in part.atoms:
        if a[0] == "P":
            points.append(fmt_q(a[1]))
            seq.append(a[2])
        else:
            seq.append(a[1])
    used, enc, last = set(), [], None
    for p in seq:
        for pos, (st, arr) in enumerate(zip(steps, p)):
            flat = np.asarray(arr).ravel()
            for gi, g in enumerate(st.sites.groups):
                used |= {(pos, g.n, int(i)) for i in np.unique(flat[np.asarray(g.sites)]).tolist()}
        enc.append(p.full_json() if last is None else {"changes": p.changes(last)})
        last = p
    table = [{} for _ in steps]
    for pos, n, i in sorted(used):
        table[pos].setdefault(str(n), {})[str(i)] = _dense(steps[pos].piece(n, i), n)
    return {"pieces": table, "points": points, "patterns": enc}


def tensor_segment_certificate(part, started=None):
    """The certificate of a tensor program's segment partition (kind tensor_segment; see above)."""
    program, files, claim = _segment_envelope(part)
    result = {k: v for k, v in part.json().items() if k != "curve"}
    cert = make("tensor_segment", program, part.convention, claim, "PROVED", result, _fine_evidence(part), None,
                started)
    return TensorCertificate(cert, files)


def tensor_integral_certificate(res, started=None):
    """The certificate of a tensor program's integral identity (kind tensor_integral; see above)."""
    part = res.partition
    program, files, claim = _segment_envelope(part)
    result = {k: v for k, v in res.json().items() if k != "curve"}
    cert = make("tensor_integral", program, part.convention, claim, res.verdict.name, result, _fine_evidence(part),
                None, started)
    return TensorCertificate(cert, files)
