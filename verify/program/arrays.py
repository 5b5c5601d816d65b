"""Exact array constants (weights, data, labels) of tensor programs.

An ``ExactArray`` is an array of rationals stored as integer numerators over one common positive
denominator: value = num / den elementwise, reduced so that gcd(den, every numerator) = 1.  Floats are
dyadic rationals, so float16/32/64 data (a network's weights) are represented exactly; rationals such as
1/3 are exact too.

Large arrays live in a side file (``.npz``, read with ``allow_pickle=False``: nothing in it is executed).
A program's text names that file and the sha256 ``digest`` of the arrays' exact content (not of the file's
bytes, which hold timestamps): a changed weight is a different program, and a certificate that names the
digest cannot be replayed against other weights.
"""
import hashlib
import math
import os
from fractions import Fraction

import numpy as np
from flint import fmpq, fmpz

from ..errors import InputError

_I64 = 2 ** 62


def _as_int(v):
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, fmpz):
        return int(v)
    raise TypeError


class ExactArray:
    """An immutable exact array: ``num`` (numpy object array of Python ints), ``den`` (Python int > 0)."""

    __slots__ = ("num", "den", "_digest", "_float")

    def __init__(self, num, den=1):
        num = np.asarray(num, dtype=object)
        den = int(den)
        if den <= 0:
            raise InputError(f"denominator {den} must be positive")
        g = math.gcd(den, *num.ravel().tolist()) if num.size else den
        if g > 1:
            num = np.asarray(num // g, dtype=object)     # (a 0-d array // g is a scalar)
            den //= g
        num.flags.writeable = False
        self.num, self.den = num, den
        self._digest = None
        self._float = None

    # ------------------------------------------------------------------------------------ construction
    @classmethod
    def from_any(cls, value, what="array"):
        """From a numpy float/int array (floats are read exactly), nested lists of int / str ("1/3",
        "0.25") / Fraction / fmpq / float, or an ExactArray.  Raises InputError naming ``what``."""
        if isinstance(value, ExactArray):
            return value
        if hasattr(value, "detach") and hasattr(value, "numpy"):       # a torch tensor
            value = value.detach().cpu().numpy()
        elif type(value).__module__.startswith(("jax", "jaxlib")):
            value = np.asarray(value)
        arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
        if arr.dtype.kind == "f":
            return cls._from_float(arr)
        if arr.dtype.kind in "iu":
            return cls(arr.astype(object), 1)
        if arr.dtype.kind == "b":
            raise InputError(f"{what}: booleans are not numbers")
        flat = [_exact(v, what) for v in np.asarray(value, dtype=object).ravel().tolist()]
        if not flat:
            return cls(np.zeros(arr.shape, dtype=object), 1)
        den = math.lcm(*(f.denominator for f in flat))
        num = np.array([f.numerator * (den // f.denominator) for f in flat], dtype=object).reshape(arr.shape)
        return cls(num, den)

    @classmethod
    def _from_float(cls, arr):
        a = np.asarray(arr, dtype=np.float64)      # float16/32 -> float64 is exact
        if not np.all(np.isfinite(a)):
            raise InputError("an array holds inf or nan: only finite numbers are real numbers")
        m, e = np.frexp(a)                         # a = m * 2**e, 0.5 <= |m| < 1 (or m = 0)
        mi = (m * 2.0 ** 53).astype(np.int64)      # exact: m has at most 53 significant bits
        e = e.astype(np.int64) - 53
        nz = mi != 0
        # strip trailing zero bits (a float32 has at most 24 significant bits): small odd mantissas
        tz = np.zeros_like(mi)
        low = np.where(nz, mi & -mi, 1)
        tz = np.round(np.log2(low.astype(np.float64))).astype(np.int64)
        mi, e = mi >> tz, e + tz
        emin = int(e[nz].min()) if nz.any() else 0
        shift = np.where(nz, e - emin, 0)
        bits = np.where(nz, np.floor(np.log2(np.abs(np.where(nz, mi, 1)).astype(np.float64))) + 1, 0)
        if emin <= 0 and (not nz.any() or int((bits + shift).max()) <= 61):
            num = (mi << shift).astype(object)        # fits int64: numpy does the shifts
            out = cls(num, 1 << -emin)
        elif emin >= 0:
            num = np.array([int(v) << int(s + emin) for v, s in zip(mi.ravel().tolist(), shift.ravel().tolist())],
                           dtype=object).reshape(a.shape)
            out = cls(num, 1)
        else:
            num = np.array([int(v) << int(s) for v, s in zip(mi.ravel().tolist(), shift.ravel().tolist())],
                           dtype=object).reshape(a.shape)
            out = cls(num, 1 << -emin)
        if arr.dtype in (np.float16, np.float32, np.float64):
            out._float = np.array(arr, copy=True)
        return out

    # ------------------------------------------------------------------------------------------ reading
    @property
    def shape(self):
        return self.num.shape

    @property
    def size(self):
        return self.num.size

    @property
    def ndim(self):
        return self.num.ndim

    def to_fmpq(self):
        """An object array of fmpq."""
        d = self.den
        out = np.empty(self.shape, dtype=object)
        out.ravel()[:] = [fmpq(int(v), d) for v in self.num.ravel().tolist()] if self.size else []
        return out

    def to_float(self, dtype=np.float64):
        """Nearest floats (exact when the array came from floats of this or a narrower type)."""
        if self._float is not None and np.dtype(dtype).itemsize >= self._float.dtype.itemsize:
            return self._float.astype(dtype)
        d = self.den
        vals = [float(Fraction(int(v), d)) for v in self.num.ravel().tolist()]
        return np.array(vals, dtype=np.float64).reshape(self.shape).astype(dtype)

    def is_integer(self):
        return self.den == 1

    def item(self, index):
        return fmpq(int(self.num[index]), self.den)

    @property
    def digest(self):
        """sha256 of the exact content: shape, denominator, numerators (independent of how it is stored)."""
        if self._digest is None:
            h = hashlib.sha256()
            h.update(repr((tuple(self.shape), self.den)).encode())
            flat = self.num.ravel()
            if flat.size and max(abs(int(v)) for v in (flat.max(), flat.min())) < _I64:
                h.update(b"i64")
                h.update(flat.astype(np.int64).astype("<i8").tobytes())
            else:
                h.update(b"dec")
                h.update(",".join(str(int(v)) for v in flat.tolist()).encode())
            self._digest = h.hexdigest()
        return self._digest

    def __eq__(self, other):
        return isinstance(other, ExactArray) and self.digest == other.digest

    def __hash__(self):
        return hash(self.digest)

    def __repr__(self):
        return f"ExactArray(shape={self.shape}, den={self.den})"

    # ------------------------------------------------------------------------------------------ storage
    def npz_entries(self, name):
        """{key: numpy array} storing this array exactly in an npz (floats when they are exact)."""
        if self._float is not None:
            return {name: self._float}
        flat = self.num.ravel()
        fits = not flat.size or max(abs(int(flat.max())), abs(int(flat.min()))) < _I64
        num = flat.astype(np.int64) if fits else np.array([str(v) for v in flat.tolist()])
        num = num.reshape(self.shape)
        return {f"{name}.num": num, f"{name}.den": np.array(str(self.den))}


def _exact(v, what):
    if isinstance(v, fmpq):
        return Fraction(int(v.p), int(v.q))
    if isinstance(v, Fraction):
        return v
    if isinstance(v, (bool, np.bool_)):
        raise InputError(f"{what}: booleans are not numbers")
    if isinstance(v, (int, np.integer, fmpz)):
        return Fraction(int(v))
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            raise InputError(f"{what}: {v!r} is not a finite number")
        return Fraction(float(v))
    if isinstance(v, str):
        try:
            return Fraction(v.strip())
        except (ValueError, ZeroDivisionError):
            raise InputError(f"{what}: {v!r} is not an exact number (write 3, -1/3 or 0.25)") from None
    raise InputError(f"{what}: {v!r} ({type(v).__name__}) is not a number")


class Arrays:
    """The array constants of a program: name -> ExactArray, and the side file they are stored in
    (``file``, relative to the program text).  ``digest`` covers every name and array."""

    def __init__(self, arrays, file=None):
        self.arrays = dict(arrays)
        for k in self.arrays:
            if not isinstance(k, str) or not k or any(c in k for c in "\"'\\\n"):
                raise InputError(f"array name {k!r} must be a non-empty string without quotes or newlines")
        self.file = file

    def __getitem__(self, name):
        return self.arrays[name]

    def __contains__(self, name):
        return name in self.arrays

    def __iter__(self):
        return iter(self.arrays)

    def __len__(self):
        return len(self.arrays)

    @property
    def digest(self):
        h = hashlib.sha256()
        for k in sorted(self.arrays):
            h.update(k.encode() + b"\0" + self.arrays[k].digest.encode() + b"\0")
        return h.hexdigest()

    def __eq__(self, other):
        return isinstance(other, Arrays) and self.digest == other.digest

    def __hash__(self):
        return hash(self.digest)

    def __repr__(self):
        return f"Arrays({len(self.arrays)} arrays, file={self.file!r})"

    def save(self, path):
        """Write the arrays to ``path`` (.npz, exact)."""
        entries = {}
        for k, a in self.arrays.items():
            entries.update(a.npz_entries(k))
        with open(path, "wb") as f:
            np.savez(f, **entries)


def read_npz(path):
    """{key: numpy array} of an npz file as stored, read without pickles (InputError when it cannot be)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise InputError(f"array file {path!r} not found (it must sit beside the program text)") from None
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read array file {path!r}: {e}") from None


def decode(raw, path="the array file"):
    """{name: ExactArray} of npz entries written by ExactArray.npz_entries (floats and integers as they are,
    other rationals as name.num / name.den)."""
    arrays = {}
    for k, v in raw.items():
        if k.endswith(".den"):
            if f"{k[:-4]}.num" not in raw:
                raise InputError(f"array file {path!r}: {k} has no {k[:-4]}.num")
            continue
        if k.endswith(".num"):
            name = k[:-4]
            if f"{name}.den" not in raw:
                raise InputError(f"array file {path!r}: {name}.num has no {name}.den")
            try:
                den = int(str(raw[f"{name}.den"]))
                num = np.array([int(str(x)) for x in v.ravel().tolist()], dtype=object).reshape(v.shape)
            except ValueError:
                raise InputError(f"array file {path!r}: {name} is not made of integers") from None
            arrays[name] = ExactArray(num, den)
        elif v.dtype.kind in "fiu":
            arrays[k] = ExactArray.from_any(v, f"array {k!r} of {path!r}")
        else:
            raise InputError(f"array file {path!r}: {k} has dtype {v.dtype}, not a number type")
    return arrays


def load_npz(path, digest=None):
    """Arrays read from an npz file (no pickles), checked against ``digest`` when given."""
    out = Arrays(decode(read_npz(path), path), os.path.basename(path))
    if digest is not None and out.digest != digest:
        raise InputError(f"array file {path!r} does not match the program: its content digest is {out.digest}, "
                         f"the program names {digest}")
    return out


def stored_digest(entries):
    """sha256 of npz entries as stored: every key with its array's dtype, shape and bytes.  The digest of a
    certificate's side files (a point, certified site lists, gradient bounds): the stored numbers are exact
    (floats and integers are exact rationals, other rationals numerator / denominator pairs), so equal
    digests mean equal exact content, and no conversion is needed to compute it."""
    h = hashlib.sha256()
    for k in sorted(entries):
        a = np.ascontiguousarray(entries[k])
        if a.dtype.kind not in "fiuU":
            raise InputError(f"array {k!r} has dtype {a.dtype}: a side file holds numbers or number strings")
        h.update(f"{k}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_entries(path, entries):
    """Write npz entries ({key: numpy array}) to ``path``."""
    with open(path, "wb") as f:
        np.savez(f, **entries)
