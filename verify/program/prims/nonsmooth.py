"""Nonsmooth primitives as elementary selections: affine pieces with rational data, chosen by the signs of
affine switching functions.  A kink convention that no listed piece yields becomes a *kink piece*, active
only on the kink set: relu'(0) = alpha is the piece alpha*u, valid since alpha*0 = relu(0).  Which value a
framework picks at each kink is not decided here: the params carry it, and kinks.py names the sets of
params that reproduce PyTorch, JAX and TensorFlow."""
import functools
import math

import numpy as np
from flint import fmpq

from . import BOOL, INT, OPT_RATIONAL, RATIONAL, Piece, Primitive, Selection, linear_piece, register, selection_rules
from ...errors import ProgramError, Undecidable
from ...rational import fmt_q
from ...truth import SIGN_UNDECIDED


def _q(x):
    return fmpq(x) if not isinstance(x, fmpq) else x


def _slope_label(c):
    return "0" if c == 0 else ("u" if c == 1 else ("-u" if c == -1 else f"{fmt_q(c)}*u"))


class Slopes(Selection):
    """One input u, one switch u; pieces are the distinct slopes among (left, right, kink): left * u for
    u < 0, right * u for u > 0, kink * u at u = 0.  Pieces that coincide as affine maps are one piece (a
    pattern is a choice of affine maps, so ``leaky_relu(u, slope=1)`` has the single piece u): the list is
    (left, right, kink) with repeats dropped, in that order."""

    def __init__(self, slopes):
        self.slopes = slopes   # params -> (left, right, kink)

    def _list(self, params):
        out = []
        for s in (_q(x) for x in self.slopes(params)):
            if s not in out:
                out.append(s)
        return out

    def switches(self, params, n):
        return [(((0, fmpq(1)),), fmpq(0))]

    def n_pieces(self, params, n):
        return len(self._list(params))

    def piece(self, params, n, i):
        c = self._list(params)[i]
        return linear_piece(_slope_label(c), (c, 0))

    def choose(self, params, n, sign):
        s = sign(0)
        left, right, kink = (_q(x) for x in self.slopes(params))
        return self._list(params).index(left if s < 0 else (right if s > 0 else kink))

    def choose_array(self, params, n, signs):
        s = signs[0]
        lst = self._list(params)
        left, right, kink = (lst.index(_q(x)) for x in self.slopes(params))
        return np.where(s == -1, left, np.where(s == 1, right, kink)).astype(np.int64), s == SIGN_UNDECIDED


relu_p = register(Primitive("relu", (1, 1), False, {"alpha": (fmpq(0), RATIONAL)},
                            doc="max(u, 0); alpha = the derivative chosen at u = 0"))
selection_rules["relu"] = Slopes(lambda p: (0, 1, p["alpha"]))

abs_p = register(Primitive("abs", (1, 1), False, {"at_zero": (fmpq(0), RATIONAL)},
                           doc="|u|; at_zero = the derivative chosen at u = 0"))
selection_rules["abs"] = Slopes(lambda p: (-1, 1, p["at_zero"]))

leaky_p = register(Primitive("leaky_relu", (1, 1), False,
                             {"slope": (fmpq(1, 100), RATIONAL), "at_zero": (None, OPT_RATIONAL)},
                             doc="u if u > 0 else slope*u; at_zero = derivative at 0 (None: slope)"))
selection_rules["leaky_relu"] = Slopes(
    lambda p: (p["slope"], 1, p["slope"] if p["at_zero"] is None else p["at_zero"]))


class Clamp(Selection):
    """clamp(x, lo, hi) with either bound optional.  Switches: x - lo, x - hi.  Pieces: the constant lo,
    x, the constant hi, and kink pieces at_lo*x + (1-at_lo)*lo, at_hi*x + (1-at_hi)*hi where the derivative
    chosen at a bound is neither 0 nor 1."""

    def _bounds(self, params):
        return params.get("lo"), params.get("hi")

    def _list(self, params):
        lo, hi = self._bounds(params)
        out = [("x", 1, 0)]
        if lo is not None:
            out.append((f"lo={fmt_q(lo)}", 0, lo))
        if hi is not None:
            out.append((f"hi={fmt_q(hi)}", 0, hi))
        for b, d, name in ((lo, params["at_lo"], "lo"), (hi, params["at_hi"], "hi")):
            if b is not None and d not in (0, 1):
                out.append((f"{fmt_q(d)}*x+{fmt_q(1 - d)}*{name}", d, (1 - d) * b))
        return out

    def switches(self, params, n):
        return [(((0, fmpq(1)),), -b) for b in self._bounds(params) if b is not None]

    def n_pieces(self, params, n):
        return len(self._list(params))

    def piece(self, params, n, i):
        label, c, k = self._list(params)[i]
        return linear_piece(label, (c, k))

    def _index(self, params, label):
        return [lab for lab, _, _ in self._list(params)].index(label)

    def _at(self, params, bound, d, name):
        if d == 0:
            return self._index(params, f"{name}={fmt_q(bound)}")
        if d == 1:
            return 0
        return self._index(params, f"{fmt_q(d)}*x+{fmt_q(1 - d)}*{name}")

    def choose_array(self, params, n, signs):
        lo, hi = self._bounds(params)
        m = len(signs[0])
        out = np.zeros(m, dtype=np.int64)
        und = np.zeros(m, dtype=bool)
        pending = np.ones(m, dtype=bool)
        k = 0
        if lo is not None:
            s = signs[0]
            out[s == -1] = self._at(params, lo, 0, "lo")
            out[s == 0] = self._at(params, lo, params["at_lo"], "lo")
            und |= s == SIGN_UNDECIDED
            pending = s == 1
            k = 1
        if hi is not None:
            s = signs[k]
            out[pending & (s == 1)] = self._at(params, hi, 0, "hi")
            out[pending & (s == 0)] = self._at(params, hi, params["at_hi"], "hi")
            und |= pending & (s == SIGN_UNDECIDED)
        return out, und

    def choose(self, params, n, sign):
        lo, hi = self._bounds(params)
        k = 0
        if lo is not None:
            s = sign(k)
            if s < 0:
                return self._at(params, lo, 0, "lo")
            if s == 0:
                return self._at(params, lo, params["at_lo"], "lo")
            k += 1
        if hi is not None:
            s = sign(k)
            if s > 0:
                return self._at(params, hi, 0, "hi")
            if s == 0:
                return self._at(params, hi, params["at_hi"], "hi")
        return 0


def _check_bounds(name, lo, hi):
    if lo is None and hi is None:
        raise ProgramError(f"{name} needs lo= or hi= (or both)")
    if lo is not None and hi is not None and not lo < hi:
        raise ProgramError(f"{name} needs lo < hi, got lo={fmt_q(lo)}, hi={fmt_q(hi)}")


class ClampPrimitive(Primitive):
    def check_params(self, explicit, n_in, where):
        out = super().check_params(explicit, n_in, where)
        try:
            _check_bounds(self.name, out["lo"], out["hi"])
        except ProgramError as e:
            raise ProgramError(f"{where}: {e}") from None
        return out


_clamp_params = {"at_lo": (fmpq(1), RATIONAL), "at_hi": (fmpq(1), RATIONAL)}
clamp_p = register(ClampPrimitive("clamp", (1, 1), False,
                                  {"lo": (None, OPT_RATIONAL), "hi": (None, OPT_RATIONAL), **_clamp_params},
                                  doc="min(max(x, lo), hi); at_lo / at_hi = derivative chosen at x = lo / hi"))
selection_rules["clamp"] = Clamp()
hardtanh_p = register(ClampPrimitive("hardtanh", (1, 1), False,
                                     {"lo": (fmpq(-1), OPT_RATIONAL), "hi": (fmpq(1), OPT_RATIONAL),
                                      "at_lo": (fmpq(0), RATIONAL), "at_hi": (fmpq(0), RATIONAL)},
                                     doc="clamp(x, -1, 1) with its own kink defaults"))
selection_rules["hardtanh"] = Clamp()


class Relu6Primitive(Primitive):
    def check_params(self, explicit, n_in, where):
        out = super().check_params(explicit, n_in, where)
        return {**out, "lo": fmpq(0), "hi": fmpq(6)}


relu6_p = register(Relu6Primitive("relu6", (1, 1), False, {"at_lo": (fmpq(0), RATIONAL), "at_hi": (fmpq(0), RATIONAL)},
                                  doc="clamp(x, 0, 6)"))
selection_rules["relu6"] = Clamp()


# ------------------------------------------------------------------------------------- max, min, sort

@functools.lru_cache(maxsize=None)
def _pairs(n):
    """Switch index of the pair (i, j), i < j: switching function x_i - x_j."""
    return {(i, j): k for k, (i, j) in enumerate((i, j) for i in range(n) for j in range(i + 1, n))}


def _pair_switches(n):
    return [(((i, fmpq(1)), (j, fmpq(-1))), fmpq(0)) for (i, j) in _pairs(n)]


def _compare(n, sign, i, j):
    """Decided sign of x_i - x_j."""
    if i == j:
        return 0
    return sign(_pairs(n)[(i, j)]) if i < j else -sign(_pairs(n)[(j, i)])


class Extremum(Selection):
    """max (or min) of n >= 2 arguments.  tie = "split": every tied argument gets 1/k (pieces are the means
    over nonempty subsets, index = bitmask - 1); "first" / "last": the first / last tied argument."""

    def __init__(self, direction):
        self.direction = direction  # 1 for max, -1 for min

    def switches(self, params, n):
        return _pair_switches(n)

    def n_pieces(self, params, n):
        return 2 ** n - 1 if params["tie"] == "split" else n

    def piece(self, params, n, i):
        if params["tie"] != "split":
            return linear_piece(f"x{i}", tuple(1 if j == i else 0 for j in range(n)) + (0,))
        mask = i + 1
        members = [j for j in range(n) if mask >> j & 1]
        w = fmpq(1, len(members))
        label = f"x{members[0]}" if len(members) == 1 else "mean(" + ",".join(f"x{j}" for j in members) + ")"
        return linear_piece(label, tuple(w if j in members else 0 for j in range(n)) + (0,))

    def choose(self, params, n, sign):
        best = [0]
        for j in range(1, n):
            s = _compare(n, sign, j, best[0]) * self.direction
            if s > 0:
                best = [j]
            elif s == 0:
                best.append(j)
        tie = params["tie"]
        if tie == "split":
            return sum(1 << j for j in best) - 1
        return best[0] if tie == "first" else best[-1]

    def choose_array(self, params, n, signs):
        """``choose`` at every site at once (the same scan, one argument at a time over all sites): a max-pool
        layer has hundreds of thousands of sites."""
        if n > 62:
            return super().choose_array(params, n, signs)
        m = len(signs[0]) if signs else 0
        S = np.stack([np.asarray(s, dtype=np.int8) for s in signs]) if signs else np.zeros((0, m), np.int8)
        table = np.zeros((n, n), dtype=np.int64)
        for (i, j), k in _pairs(n).items():
            table[i, j] = k
        at = np.arange(m)
        first = np.zeros(m, dtype=np.int64)
        last = np.zeros(m, dtype=np.int64)
        mask = np.ones(m, dtype=np.int64)
        und = np.zeros(m, dtype=bool)
        for j in range(1, n):
            raw = S[table[first, j], at]          # the sign of x_first - x_j (first < j)
            und |= raw == 2
            s = -raw.astype(np.int64) * self.direction
            up, tie = s > 0, s == 0
            first = np.where(up, j, first)
            last = np.where(up | tie, j, last)
            mask = np.where(up, 1 << j, np.where(tie, mask | (1 << j), mask))
        tie = params["tie"]
        out = mask - 1 if tie == "split" else (first if tie == "first" else last)
        return out.astype(np.int64), und


_TIES = ("split", "first", "last")
max_p = register(Primitive("max", (2, None), False, {"tie": ("split", _TIES)},
                           doc="max of n >= 2 arguments; tie = split | first | last"))
selection_rules["max"] = Extremum(1)
min_p = register(Primitive("min", (2, None), False, {"tie": ("split", _TIES)},
                           doc="min of n >= 2 arguments; tie = split | first | last"))
selection_rules["min"] = Extremum(-1)


def perm_rank(perm):
    """Lexicographic rank of a permutation of range(n): its Lehmer code read in the factorial number system
    (Horner's rule, so no factorial is computed: a sort of thousands of elements ranks its order at once)."""
    n, rank, rest = len(perm), 0, list(range(len(perm)))
    for k, p in enumerate(perm):
        i = rest.index(p)
        rank = rank * (n - k) + i
        rest.pop(i)
    return rank


def perm_unrank(rank, n):
    """The permutation of range(n) of lexicographic rank ``rank`` (the inverse of perm_rank)."""
    code = [0] * n
    for k in range(n - 1, -1, -1):       # the digit of position k has radix n - k
        rank, code[k] = divmod(rank, n - k)
    rest = list(range(n))
    return tuple(rest.pop(i) for i in code)


UNSPECIFIED = ("the framework orders tied elements by its selection algorithm (not by a fixed rule): the "
               "derivative at this tie is not determined")


class Sort(Selection):
    """sort of n >= 2 arguments into n outputs.  Piece = permutation (output r = x[perm[r]]), ranked
    lexicographically.  ties = "stable": tied arguments keep their input order (PyTorch, TensorFlow, and
    JAX ascending); "reverse": tied arguments in reverse input order (JAX descending: it sorts ascending
    and flips); "unspecified": the framework's order of tied arguments is no fixed rule (torch.topk, and
    torch.sort without stable=True beyond 16 elements), so a tie raises Undecidable (the value is the same
    under every order, the derivative is not)."""

    def switches(self, params, n):
        return _pair_switches(n)

    def n_pieces(self, params, n):
        return math.factorial(n)

    def piece(self, params, n, i):
        perm = perm_unrank(i, n)
        rows = [tuple(1 if j == perm[r] else 0 for j in range(n)) + (0,) for r in range(n)]
        return linear_piece("sort[" + ",".join(f"x{j}" for j in perm) + "]", *rows)

    def choose(self, params, n, sign):
        down = -1 if params["descending"] else 1
        order = 1 if params["ties"] == "stable" else -1

        def cmp(i, j):
            c = _compare(n, sign, i, j) * down
            if not c and params["ties"] == "unspecified":
                raise Undecidable(UNSPECIFIED)
            return c if c else (i - j) * order
        return perm_rank(sorted(range(n), key=functools.cmp_to_key(cmp)))


SORT_TIES = ("stable", "reverse", "unspecified")
sort_p = register(Primitive("sort", (2, None), False,
                            {"descending": (False, BOOL), "ties": ("stable", SORT_TIES)},
                            n_out=lambda n, p: n, doc="sort n >= 2 arguments into n outputs"))
selection_rules["sort"] = Sort()


class Kth(Selection):
    """The k-th smallest of n >= 2 arguments (k counted from 0: k = 0 is the min, k = n - 1 the max), the
    order statistic of median, kthvalue and quantiles.  The arguments equal to the value form its *tie
    group*; tie = "split": each member of the group gets 1/|group| (torch.median without dim; pieces are the
    means over nonempty subsets, index = bitmask - 1, as max's); "first" / "last": the group's first / last
    argument; "unspecified": no fixed rule (torch's kthvalue and median(dim) pick a tied element by their
    selection algorithm), so a group of two or more raises Undecidable."""

    def switches(self, params, n):
        return _pair_switches(n)

    def n_pieces(self, params, n):
        return 2 ** n - 1 if params["tie"] == "split" else n

    def piece(self, params, n, i):
        return Extremum.piece(self, params, n, i)

    def choose(self, params, n, sign):
        below = [sum(1 for j in range(n) if _compare(n, sign, j, i) < 0) for i in range(n)]
        equal = [sum(1 for j in range(n) if _compare(n, sign, j, i) == 0) for i in range(n)]
        k = params["k"]
        group = [i for i in range(n) if below[i] <= k < below[i] + equal[i]]
        tie = params["tie"]
        if tie == "split":
            return sum(1 << j for j in group) - 1
        if tie == "unspecified" and len(group) > 1:
            raise Undecidable(UNSPECIFIED)
        return group[-1] if tie == "last" else group[0]


class KthPrimitive(Primitive):
    def check_params(self, explicit, n_in, where):
        out = super().check_params(explicit, n_in, where)
        if not 0 <= out["k"] < n_in:
            raise ProgramError(f"{where}: kth needs 0 <= k < {n_in} (the number of arguments), got k={out['k']}")
        return out


KTH_TIES = ("split", "first", "last", "unspecified")
kth_p = register(KthPrimitive("kth", (2, None), False, {"k": (None, INT), "tie": ("split", KTH_TIES)},
                              required=("k",),
                              doc="the k-th smallest of n >= 2 arguments (k from 0); tie = split | first | last | "
                                  "unspecified (a tie raises: the framework's choice is no fixed rule)"))
selection_rules["kth"] = Kth()


class Mode(Selection):
    """The most frequent of n >= 2 arguments, as torch.mode: among the values that occur most often the smallest;
    tie = "last": of its occurrences the last one (torch up to 16 elements, whose sort is then stable: measured),
    "unspecified": beyond, torch picks an occurrence by its unstable sort, so a value occurring twice or more is
    undecidable.  Pieces are the arguments x_i; the index rule reads the ties of the pairwise switching
    functions.  Discontinuous: a small move that breaks a tie changes which value is most frequent."""

    def switches(self, params, n):
        return _pair_switches(n)

    def n_pieces(self, params, n):
        return n

    def piece(self, params, n, i):
        return linear_piece(f"x{i}", tuple(1 if j == i else 0 for j in range(n)) + (0,))

    def choose(self, params, n, sign):
        groups = []
        for i in range(n):
            for g in groups:
                if _compare(n, sign, i, g[0]) == 0:
                    g.append(i)
                    break
            else:
                groups.append([i])
        most = max(len(g) for g in groups)
        best = None
        for g in groups:
            if len(g) == most and (best is None or _compare(n, sign, g[0], best[0]) < 0):
                best = g
        if len(best) > 1 and params["tie"] == "unspecified":
            raise Undecidable(UNSPECIFIED)
        return best[-1]


mode_p = register(Primitive("mode", (2, None), False, {"tie": ("last", ("last", "unspecified"))},
                            doc="the most frequent argument (the smallest such value; tie = last: its last "
                                "occurrence, as torch.mode up to 16 elements | unspecified); discontinuous",
                            continuous=False))
selection_rules["mode"] = Mode()


class Where(Selection):
    """where(u OP v, a, b): inputs (u, v, a, b), switch u - v, piece 0 = a, piece 1 = b."""

    TESTS = {">": lambda s: s > 0, ">=": lambda s: s >= 0, "<": lambda s: s < 0, "<=": lambda s: s <= 0,
             "==": lambda s: s == 0, "!=": lambda s: s != 0}

    def switches(self, params, n):
        return [(((0, fmpq(1)), (1, fmpq(-1))), fmpq(0))]

    def n_pieces(self, params, n):
        return 2

    def piece(self, params, n, i):
        return linear_piece("then" if i == 0 else "else", (0, 0, 1 - i, i, 0))

    def choose(self, params, n, sign):
        return 0 if self.TESTS[params["op"]](sign(0)) else 1

    def choose_array(self, params, n, signs):
        s = signs[0]
        return np.where(self.TESTS[params["op"]](s), 0, 1).astype(np.int64), s == SIGN_UNDECIDED


where_p = register(Primitive("where", (4, 4), False, {"op": (None, tuple(Where.TESTS))}, required=("op",),
                             doc="where(u OP v, a, b): a where the comparison holds, else b"))
selection_rules["where"] = Where()

__all__ = ["Piece", "perm_rank", "perm_unrank"]
