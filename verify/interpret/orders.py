"""Sort sites over many elements: the active piece certified by n - 1 comparisons.

A sort of n elements is an elementary selection with n! pieces (the permutations) and n (n - 1) / 2
switching functions x_i - x_j.  Evaluation and AD need only the active piece, and the order of the sorted
values decides it: once x[p_0] <= x[p_1] <= ... <= x[p_{n-1}] is certified by the signs of the n - 1
differences x[p_{r+1}] - x[p_r] (exactly, or in balls), every other switching function's sign follows by
transitivity, so the permutation is the one the index rule picks.  A difference that is exactly 0 is a tie:
the primitive's tie rule orders the tied elements (stable: by input position, reverse: against it) and
``unspecified`` raises Undecidable, as the dense rule does.  The piece's linear part is the permutation, so
values, tangents and cotangents move by one gather (cotangents by its inverse).

Sites over more than ``LISTED`` elements take this path; they do not list their switching functions
(``PairSwitches``): what needs them listed (index sets at ties, certificates, kink audits) gets an
InputError saying so, while evaluation and both AD modes cost O(n log n) comparisons and O(n) storage.
"""
import numpy as np
from flint import arb, fmpq

from ..errors import InputError, Undecidable, Undecided
from ..numbers.tensor import SIGN_UNDECIDED
from ..program.prims.nonsmooth import UNSPECIFIED, perm_rank, perm_unrank

# the most elements a sort site lists its switching functions for (n (n - 1) / 2 of them: 32,640 at 256)
LISTED = 256


class PairSwitches:
    """The switching functions x_i - x_j of a sort site over ``n`` > LISTED elements, not listed: ``len``
    counts them; reading them (and the site's argument list, which the run records as this object too)
    raises InputError (too many to enumerate)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n * (self.n - 1) // 2

    def refuse(self):
        raise InputError(f"a sort over {self.n} > {LISTED} elements: its {len(self)} switching functions are too "
                         "many to enumerate (its value and derivative are computed from the n - 1 comparisons "
                         "of the sorted values; index sets, certificates and kink audits need them all)")

    def __iter__(self):
        self.refuse()

    def __getitem__(self, k):
        self.refuse()


def large(table, g):
    """True for a sort site group that takes the certified-order path."""
    return table.prim == "sort" and g.n > LISTED


def _key(v):
    """A sort key for one value of a number system: exact rationals as they are, a ball by its midpoint (two
    disjoint balls are ordered like their midpoints; overlapping ones are left to the certification)."""
    if isinstance(v, fmpq):
        return v
    if isinstance(v, arb):
        return float(v.mid())
    return float(v.mid) if hasattr(v, "mid") else float(v)


def certified_order(ns, table, g, flat):
    """The permutation at every site of group ``g`` (an int array (sites, n): output r of site s is input
    element p[s, r] of the site), from ``flat``, the sorted input as a flat array of ``ns``.  Raises
    Undecidable at a tie under ties="unspecified", Undecided when a comparison of adjacent sorted values
    cannot be decided."""
    desc, ties = table.params["descending"], table.params["ties"]
    A = np.stack(g.args)                                   # (n, sites): flat input index of argument j at site s
    vals = ns.out(flat).ravel()
    order = -1 if ties == "reverse" else 1
    perms = np.empty((A.shape[1], g.n), dtype=np.int64)
    for s in range(A.shape[1]):
        keys = [_key(vals[i]) for i in A[:, s].tolist()]
        perms[s] = sorted(range(g.n), key=lambda j: (-keys[j] if desc else keys[j], order * j))
    src = np.take_along_axis(A.T, perms, axis=1)           # (sites, n): flat input index of output r
    d = ns.sub(ns.take(flat, src[:, 1:]), ns.take(flat, src[:, :-1]))
    raw = np.asarray(ns.signs(d)).astype(np.int64).reshape(src.shape[0], g.n - 1)
    if (raw == SIGN_UNDECIDED).any():
        s, r = np.argwhere(raw == SIGN_UNDECIDED)[0]
        raise Undecided(f"cannot decide the order of the sorted values {r} and {r + 1} at site {int(s)}")
    signs = raw * (-1 if desc else 1)               # > 0: the pair is in the sort's order
    tied = signs == 0
    if tied.any() and ties == "unspecified":
        raise Undecidable(UNSPECIFIED)
    in_rule = np.sign(perms[:, 1:] - perms[:, :-1]) == order
    bad = (signs < 0) | (tied & ~in_rule)
    if bad.any():      # midpoints ordered two values their balls could not: left to a higher precision
        s, r = np.argwhere(bad)[0]
        raise Undecided(f"cannot decide the order of the sorted values {r} and {r + 1} at site {int(s)}")
    return perms


def ranks(perms):
    """The piece index (the permutation's lexicographic rank) at every site, an object array."""
    out = np.empty(len(perms), dtype=object)
    for s, p in enumerate(perms.tolist()):
        out[s] = perm_rank(p)
    return out


def perms_of(pieces, n):
    """The permutations (sites, n) of the given piece indices."""
    return np.array([perm_unrank(int(i), n) for i in pieces], dtype=np.int64).reshape(len(pieces), n)


def moves(table, g, perms, size):
    """The gather P of the sort (output flat = input flat[P], ``size`` elements): a permutation of range(size)."""
    A, outs = np.stack(g.args), np.stack(g.outs)           # (n, sites) each
    P = np.arange(size)
    P[outs.T.ravel()] = np.take_along_axis(A.T, perms, axis=1).ravel()
    return P
