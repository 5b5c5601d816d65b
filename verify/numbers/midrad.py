"""Midpoint-radius tensors: float64 midpoints with radii rounded up, on numpy and BLAS.

A value ``MR(mid, rad, dev)`` encloses, element by element, the exact real value of a variable of a tensor
program: ``|exact - mid| <= rad``.  With a ``model`` (a ``rounding.Rounding``), it also carries ``dev``, a
bound on ``|ieee - exact|`` for *every* IEEE evaluation of the same program in the model's format: each
operation the program (and its backward rules) performs, in that format, in any summation order, with or
without FMA, with elementary functions within the model's ulp table.  ``rad`` and ``dev`` may be None,
meaning exactly 0: exact data (a network's weights and inputs) costs one matrix product, not three.

The rules are Rump's midpoint-radius arithmetic ("Fast and parallel interval arithmetic", BIT 1999) without
directed rounding: numpy rounds to nearest, so every radius adds the rounding error of its midpoint
(``u |mid|`` per operation, ``gamma_n |A| |B|`` per matrix product: numbers/rounding.py) and is itself
inflated by a proved factor for the roundings of its own computation.  Underflow: when an operand holds a
nonzero magnitude below ``SMALL`` (2**-400), products of operands could underflow and every bound adds the
subnormal spacing per rounding; otherwise no product of two operand magnitudes and a constant >= 2**-60 can
leave the normal range, and exact zeros keep a radius of exactly 0.  Non-finite midpoints or radii make a
comparison false both ways: a sign is then UNDECIDED, never a guess.

``signs`` is the float filter's predicate: 1 when ``mid > rad``, -1 when ``mid < -rad``, 0 when mid and rad are
both exactly 0 (then the exact value is 0), UNDECIDED otherwise.
"""
import math

import numpy as np
from flint import arb, fmpq

from ..truth import SIGN_UNDECIDED
from .rounding import (F64, TRIG_RANGE, WORK, dot_inflation, gamma, inflation, round_up, sum_factor,
                       ulps)

SMALL = 2.0 ** -400          # below this, products of magnitudes may underflow: bounds add eta terms
ETA = F64.eta
# What a bound adds per product that may underflow: at least the subnormal spacing (2**-1074, or the model's own
# spacing), and itself far from the subnormal range, so that no bound array ever holds a subnormal number
# (subnormal arithmetic is a hundred times slower on x86, BLAS included) and products of it with magnitudes
# above 2**-200 stay normal.
UF = 2.0 ** -800
U = F64.u
_C1, _C2, _C3, _C4, _C6 = (inflation(k) for k in (1, 2, 3, 4, 6))
_LIPSCHITZ = {"tanh": 1.0, "sigmoid": 0.25, "erf": 1.1283791670955128, "sin": 1.0, "cos": 1.0}


_LAZY = object()


class MR:
    """A midpoint-radius array (see the module docstring).  ``rad`` / ``dev`` None mean exactly 0.  A value
    gathered from another (``take``: the patches of a convolution) keeps its source (``_src``) and gathers
    its radius and deviation only when they are read: a matrix product gathers, instead, the few arrays it
    derives from them, computed on the (smaller) source."""
    __slots__ = ("mid", "_rad", "_dev", "_small", "_abs", "_peak", "_src")

    def __init__(self, mid, rad=None, dev=None, small=None, peak=None, src=None):
        self.mid = mid
        self._rad = rad
        self._dev = dev
        self._small = small
        self._abs = None        # |mid| + rad rounded up, once
        self._peak = peak       # an upper bound of |mid| + rad + dev over every element, once
        self._src = src         # (source MR, flat indices, padded with a zero) of a gathered value

    @property
    def rad(self):
        if self._rad is _LAZY:
            self._rad = gather(self._src, self._src[0].rad)
        return self._rad

    @rad.setter
    def rad(self, v):
        self._rad = v

    @property
    def dev(self):
        if self._dev is _LAZY:
            self._dev = gather(self._src, self._src[0].dev)
        return self._dev

    @dev.setter
    def dev(self, v):
        self._dev = v

    def has_rad(self):
        return self._rad is not None

    def has_dev(self):
        return self._dev is not None

    @property
    def shape(self):
        return self.mid.shape

    @property
    def size(self):
        return self.mid.size

    @property
    def ndim(self):
        return self.mid.ndim

    def small(self):
        """Does the midpoint hold a nonzero magnitude below SMALL (or a non-finite entry)?  Cached."""
        if self._small is None:
            self._small = self._src[0].small() if self._src is not None else _has_small(self.mid)
        return self._small

    def radius(self):
        """The radius as an array (zeros when exact)."""
        return np.zeros(self.mid.shape) if self.rad is None else np.broadcast_to(self.rad, self.mid.shape)

    def deviation(self):
        return np.zeros(self.mid.shape) if self.dev is None else np.broadcast_to(self.dev, self.mid.shape)

    def ball(self, index=()):
        """The arb ball of one element (an index tuple; () for a 0-d value)."""
        m = float(self.mid[index])
        r = 0.0 if self.rad is None else float(np.broadcast_to(self.rad, self.mid.shape)[index])
        if not (math.isfinite(m) and math.isfinite(r)):
            return arb("nan")
        return arb(m, r) if r else arb(m)

    def balls(self):
        """An object array of arb balls, one per element (for small arrays and reports)."""
        out = np.empty(self.mid.shape, dtype=object)
        r = self.radius()
        for i in np.ndindex(self.mid.shape):
            m, ri = float(self.mid[i]), float(r[i])
            out[i] = arb(m, ri) if (math.isfinite(m) and math.isfinite(ri) and ri) else (arb(m) if math.isfinite(m)
                                                                                        and ri == 0 else arb("nan"))
        return out

    def __getitem__(self, index):
        return MR(self.mid[index], None if self.rad is None else np.broadcast_to(self.rad, self.mid.shape)[index],
                  None if self.dev is None else np.broadcast_to(self.dev, self.mid.shape)[index])

    def __array__(self, dtype=None, copy=None):
        """As an object array of arb balls (what code written for exact / ball arrays reads)."""
        out = self.balls()
        return out if dtype in (None, object, np.dtype(object)) else out.astype(dtype)

    def __repr__(self):
        return f"MR(shape={self.mid.shape}, rad={'0' if self.rad is None else 'array'}, " \
               f"dev={'0' if self.dev is None else 'array'})"


def gather(src, a):
    """The array ``a`` (shaped like, or broadcast to, the source of a gathered value) gathered like it."""
    if a is None:
        return None
    x, idx, pad = src
    flat = np.ravel(np.broadcast_to(a, x.mid.shape))
    if pad:
        flat = np.append(flat, 0.0)
    return flat[idx]


def prep(x, fn):
    """``fn(x)`` for an elementwise function of a value that is 0 where the value is exactly 0: computed on
    the source and gathered when x is a gathered value (the arrays a matrix product derives from patches)."""
    if x._src is not None:
        return gather(x._src, fn(x._src[0]))
    return fn(x)


def _absmid(x):
    return np.abs(x.mid)


def _rad_prep(g):
    """(|mid| g + rad) rounded up, with one temporary: what a product's radius reads of an operand."""
    def fn(v):
        t = np.abs(v.mid)
        t *= g
        t += v.rad
        t *= _C2
        return t
    return fn


def _dev_prep(rel):
    """(|exact| rel + dev (1 + rel)) rounded up: what a product's deviation reads of an operand with a dev."""
    def fn(v):
        t = absb(v) * rel
        t += v.dev * (1 + rel)
        t *= _C3
        return t
    return fn


def _has_small(a):
    a = np.abs(a)
    return bool(np.any((a < SMALL) & (a != 0))) or not bool(np.all(np.isfinite(a)))


def _f(x):
    return np.asarray(x, dtype=np.float64)


def _add0(a, b):
    """a + b where None is 0."""
    if a is None:
        return b
    return a if b is None else a + b


def _bc(a, shape):
    return None if a is None else np.broadcast_to(a, shape)


def absb(x):
    """An upper bound of |exact| elementwise: |mid| + rad, rounded up (computed once per value)."""
    if x._abs is None:
        a = np.abs(x.mid)
        x._abs = a if x.rad is None else (a + x.rad) * _C1
    return x._abs


def peak(x):
    """An upper bound of |mid| + rad + dev over every element of x (computed once per value)."""
    if x._peak is None:
        top = 0.0
        if x.mid.size:
            with np.errstate(all="ignore"):
                top = float(np.max(np.abs(x.mid)))
                for a in (x.rad, x.dev):
                    if a is not None:
                        top += float(np.max(a))
        x._peak = math.inf if top != top else top
    return x._peak


def ieee_abs(x):
    """An upper bound of |ieee value| elementwise: |mid| + rad + dev, rounded up."""
    a = absb(x)
    return a if x.dev is None else (a + x.dev) * _C1


class MidRadTensors:
    """The number system of MR arrays (the tensor protocol of numbers/tensor.py).  ``model``: a Rounding whose
    IEEE evaluations ``dev`` bounds (None: no ``dev``)."""
    name = "midrad"
    exact = False
    tensor = True

    def __init__(self, model=None):
        self.model = model
        self.work = WORK
        self.peak = 0.0         # with a model: the largest |ieee value| any operation can produce (overflow check)

    def _done(self, out, crude=None):
        """Record, with a model, how large an IEEE value of ``out`` can be (beyond the format's largest finite
        number an evaluation may overflow, and the bounds, which assume it does not, are void).  ``crude``: an
        upper bound from the operands' peaks (twice the worst case of the operation, so that it covers the
        radius and the deviation too); the exact maximum is computed only when it is not below the format's
        largest number."""
        if self.model is not None:
            if crude is not None and crude < self.model.storage.max:
                out._peak = crude
            self.peak = max(self.peak, peak(out))
        return out

    # ---------------------------------------------------------------------------------- conversions
    def const(self, q):
        """The rational ``q`` (fmpq): its nearest float64 with the conversion error as radius."""
        from fractions import Fraction
        fq = Fraction(int(q.p), int(q.q))
        try:
            m = float(fq)
        except OverflowError:
            m = math.inf if fq > 0 else -math.inf
        r = None if math.isfinite(m) and Fraction(m) == fq else np.float64(round_up(abs(fq - Fraction(m)))
                                                                           if math.isfinite(m) else math.inf)
        d = None
        if self.model is not None and not self.model.storage.representable(fq):
            d = np.float64(round_up(abs(fq) * self.model.storage.u_q) + max(self.model.small, UF))
        return self._done(MR(np.asarray(m, dtype=np.float64), None if r is None else np.asarray(r),
                             None if d is None else np.asarray(d)))

    def const_array(self, ea):
        """An ExactArray: exact when its entries are float64 numbers (weights, data, dyadic coefficients);
        others get their conversion error as radius.  The model's ``dev``: 0 when the entries are numbers of
        the model's storage format, else its rounding."""
        mid, exact = _exact_floats(ea)
        rad = None
        if not exact:
            rad = np.abs(mid) * (2 * U) + UF
        dev = None
        if self.model is not None and not (exact and _all_fit(mid, self.model.storage)):
            dev = np.abs(mid) * (2 * self.model.u) + max(self.model.small, UF)
        elif self.model is not None and self.model.flush:
            # subnormal inputs are read as 0 by an evaluation that flushes them
            tiny = self.model.storage.tiny
            if bool(np.any((np.abs(mid) < tiny) & (mid != 0))):
                dev = np.where((np.abs(mid) < tiny) & (mid != 0), tiny, 0.0)
        return self._done(MR(mid, rad, dev))

    def from_floats(self, a):
        """Exact float data (any float dtype) as an MR of radius 0."""
        return MR(_f(a))

    def is_exact_value(self, x):
        return False

    def is_qt(self, x):
        return False

    # ------------------------------------------------------------------------------------- structure
    def shape(self, x):
        return x.mid.shape

    def struct(self, x, fn):
        return MR(fn(x.mid), None if x.rad is None else fn(_bc(x.rad, x.mid.shape)),
                  None if x.dev is None else fn(_bc(x.dev, x.mid.shape)), x._small, x._peak)

    def reshape(self, x, shape):
        return self.struct(x, lambda a: a.reshape(shape))

    def transpose(self, x, perm):
        return self.struct(x, lambda a: a.transpose(perm))

    def broadcast_to(self, x, shape):
        return self.struct(x, lambda a: np.broadcast_to(a, shape))

    def take(self, x, idx):
        """x.ravel()[idx] with -1 entries giving exact 0 (radius and deviation gathered when read)."""
        idx = np.asarray(idx)
        pad = bool(idx.size and int(idx.min()) < 0)
        if x._src is not None:                   # a gather of a gather: compose the indices
            x = MR(x.mid, x.rad, x.dev, x._small, x._peak)
        src = (x, idx, pad)
        return MR(gather(src, x.mid), None if x._rad is None else _LAZY, None if x._dev is None else _LAZY,
                  x._small, x._peak, src)

    def zeros(self, shape):
        return MR(np.zeros(shape))

    def zeros_like(self, x):
        return self.zeros(x.mid.shape)

    def select(self, mask, a, b):
        shape = np.broadcast_shapes(np.shape(mask), a.mid.shape, b.mid.shape)
        pk = None if a._peak is None or b._peak is None else max(a._peak, b._peak)
        return MR(np.where(mask, a.mid, b.mid), _where3(mask, a.rad, b.rad, shape), _where3(mask, a.dev, b.dev, shape),
                  None, pk)

    def mask(self, m, x):
        return MR(np.where(m, x.mid, 0.0), None if x.rad is None else np.where(m, x.rad, 0.0),
                  None if x.dev is None else np.where(m, x.dev, 0.0), x._small, x._peak)

    def concat_flat(self, xs):
        def cat(get):
            parts = [get(x) for x in xs]
            if all(p is None for p in parts):
                return None
            return np.concatenate([np.zeros(x.mid.size) if p is None else np.ravel(np.broadcast_to(p, x.mid.shape))
                                   for p, x in zip(parts, xs)])
        return MR(np.concatenate([np.ravel(x.mid) for x in xs]), cat(lambda x: x.rad), cat(lambda x: x.dev))

    def scatter(self, v, idx, size):
        """Flat array of ``size`` zeros plus v added at positions idx (-1 ignored); duplicate positions are
        sums, with their rounding."""
        idx = np.asarray(idx).ravel()
        keep = idx >= 0
        if not keep.all():
            idx = idx[keep]
        vals = [None if a is None else np.ravel(np.broadcast_to(a, v.mid.shape)) for a in (v.mid, v.rad, v.dev)]
        if not keep.all():
            vals = [None if a is None else a[keep] for a in vals]
        counts = np.bincount(idx, minlength=size) if idx.size else np.zeros(size, np.int64)
        cmax = int(counts.max()) if counts.size else 0
        if cmax <= 1:
            out = []
            for a in vals:
                if a is None:
                    out.append(None)
                    continue
                o = np.zeros(size)
                o[idx] = a
                out.append(o)
            return MR(out[0], out[1], out[2], v._small, v._peak)
        m, r, d = vals
        mid = np.bincount(idx, weights=m, minlength=size)
        g = gamma(cmax - 1) if cmax > 1 else 0.0
        w = np.abs(m)                       # one temporary at a time: these arrays are a layer's patches
        w *= g
        if r is not None:
            w += r
        rad = np.bincount(idx, weights=w, minlength=size)
        rad *= dot_inflation(cmax) * _C2
        if self._guard(v):
            rad += UF * cmax
        dev = None
        if self.model is not None:
            rel, _ = self.model.sum(cmax)
            np.abs(m, out=w)                # |ieee| <= |mid| + rad + dev, then its rel part plus dev
            if r is not None:
                w += r
            if d is not None:
                w += d
            w *= _C2 * rel
            if d is not None:
                w += d
            dev = np.bincount(idx, weights=w, minlength=size)
            dev *= dot_inflation(cmax) * _C3
            dev += UF * cmax
            if self.model.flush:
                dev += (cmax - 1) * self.model.accumulate.tiny
        del w
        return self._done(MR(mid, rad, dev), self._crude(lambda: 2 * cmax * peak(v)))

    # ---------------------------------------------------------------------------------- arithmetic
    def neg(self, a):
        return MR(-a.mid, a.rad, a.dev, a._small, a._peak)

    def add(self, a, b):
        m = np.add(a.mid, b.mid, order="C")     # C order: later reshapes (a site table's) are views
        # |fl(x + y) - (x + y)| <= u |fl(x + y)|: 0 when the sum is exactly 0 (a sum of floats that is not 0 is
        # at least eta in magnitude and never rounds to 0)
        r = np.abs(m) * U
        if a.rad is not None or b.rad is not None:
            r = _add0(_add0(a.rad, b.rad), r) * _C2
        else:
            r = r * _C1
        # a sum involves no product but u |m|: with both midpoints 0 or at least SMALL (hence multiples of
        # 2**-452), a nonzero sum is at least that, and u |m| is a normal number
        if a.small() or b.small():
            r += UF
        return self._done(MR(m, r, self._dev_add(a, b, m)), self._crude(lambda: 2 * (peak(a) + peak(b))))

    @staticmethod
    def _guard(*ops):
        """Could a product in an operation on ``ops`` underflow?  Radii can be arbitrarily small, so operands
        with a radius always add the subnormal spacing per product to the result's radius (no scan of their
        arrays); exact operands (no radius) are scanned once for midpoints below SMALL, so that products of
        exact data keep exact zeros."""
        return any(o.has_rad() for o in ops) or any(o.small() for o in ops)

    def sub(self, a, b):
        return self.add(a, self.neg(b))

    def _dev_add(self, a, b, m):
        if self.model is None:
            return None
        rel, abs_ = self.model.op()
        # relative to the operands' magnitudes, not the result's: a bound that survives any reassociation of
        # the sums a framework performs (x * alpha + beta for (x - mean) / std * w + b)
        mag = ieee_abs(a) + ieee_abs(b)
        d = _add0(_add0(a.dev, b.dev), mag * rel)
        d *= _C3
        d += UF                             # rel * mag may underflow
        if self.model.flush:
            d += self.model.accumulate.tiny
        return d

    def _crude(self, fn):
        return None if self.model is None else fn()

    def mul(self, a, b):
        m = np.multiply(a.mid, b.mid, order="C")
        terms = np.abs(m) * U
        k = 1
        if b.rad is not None:
            terms = terms + np.abs(a.mid) * b.rad
            k += 2
        if a.rad is not None:
            bb = np.abs(b.mid) if b.rad is None else np.abs(b.mid) + b.rad
            terms = terms + a.rad * bb
            k += 3
        r = terms * inflation(k)
        if self._guard(a, b):
            r += 4 * UF
        dev = None
        if self.model is not None:
            rel, abs_ = self.model.op()
            A, B = absb(a), absb(b)
            prop = None
            if b.dev is not None:
                prop = A * b.dev
            if a.dev is not None:
                t = a.dev * B if b.dev is None else a.dev * (B + b.dev)
                prop = _add0(prop, t)
            mag = np.abs(m) + r
            dev = mag * rel if prop is None else prop * (1 + rel) + mag * rel
            dev *= _C6
            dev += max(abs_, UF)            # an IEEE product may underflow (a larger dev is always sound)
        return self._done(MR(m, r, dev), self._crude(lambda: 2 * peak(a) * peak(b)))

    def div(self, a, b):
        """a / b for b whose enclosure excludes 0 (the primitive checked the divisor)."""
        m = a.mid / b.mid
        am = np.abs(m)
        bl = np.abs(b.mid) if b.rad is None else (np.abs(b.mid) - b.rad) * (1 - 4 * U)
        num = am * U
        if a.rad is not None or b.rad is not None:
            prop = _add0(a.rad, None if b.rad is None else am * (1 + 4 * U) * b.rad)
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.where(bl > 0, prop / bl, np.inf)
            num = num + q
        r = num * _C4
        if self._guard(a, b):
            r += 2 * UF
        dev = None
        if self.model is not None:
            rel, abs_ = self.model.op()
            rel = 2 * rel + rel * rel          # x / c may be computed as x * (1 / c): two roundings
            Az = am + r * _C1
            prop = None
            if a.dev is not None or b.dev is not None:
                p = _add0(a.dev, None if b.dev is None else Az * b.dev)
                den = bl if b.dev is None else (bl - b.dev) * (1 - 4 * U)
                with np.errstate(divide="ignore", invalid="ignore"):
                    prop = np.where(den > 0, p / den, np.inf) * _C2
            dev = (Az * rel if prop is None else prop * (1 + rel) + Az * rel) * _C3 + 2 * max(abs_, UF)
        return self._done(MR(m, r, dev))

    def pow(self, a, n):
        if n == 0:
            return MR(np.ones(a.mid.shape))
        if n < 0:
            return self.div(MR(np.ones(a.mid.shape)), self.pow(a, -n))
        result, base = None, a
        while n:
            if n & 1:
                result = base if result is None else self.mul(result, base)
            n >>= 1
            if n:
                base = self.mul(base, base)
        return result

    # ------------------------------------------------------------------------------- elementary functions
    def _func(self, name, x, y, lip, zero_exact=None):
        """The MR of f(x) given y = numpy's f(mid) and ``lip``, a function of the interval (lo, hi) returning an
        upper bound of |f'| on it (None when f' is bounded by a constant)."""
        k = ulps("numpy", "float64", name)
        ay = np.abs(y)
        # k ulps of the exact f(mid), and ulp(f) <= 2 u |f| + eta with |f| <= |y| + err: hence the factor
        err = (ay * (2 * k * U) + k * UF) * (1 + 4 * k * U)
        if zero_exact is not None:
            err = np.where(zero_exact, 0.0, err)
        if x.rad is not None:
            lo, hi = _interval(x, None)
            err = err + lip(lo, hi) * x.rad
        r = err * _C4
        dev = None
        if self.model is not None:
            rel, abs_ = self.model.func(name)
            lo, hi = _interval(x, x.dev)
            mag = ay + r * _C1
            prop = None if x.dev is None else lip(lo, hi) * x.dev
            mag_hat = mag if prop is None else mag + prop
            abs_ = max(abs_, UF)
            dev = (mag_hat * rel + abs_) if prop is None else prop + mag_hat * rel + abs_
            dev = dev * _C4
        return self._done(MR(y, r, dev))

    def exp(self, x):
        with np.errstate(over="ignore"):
            y = np.exp(x.mid)
            return self._func("exp", x, y, lambda lo, hi: np.exp(hi) * (1 + 8 * U),
                              zero_exact=(x.mid == 0) if x.rad is None else None)

    def log(self, x):
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log(x.mid)
            return self._func("log", x, y, lambda lo, hi: np.where(lo > 0, 1 / lo, np.inf) * (1 + 4 * U),
                              zero_exact=(x.mid == 1) if x.rad is None else None)

    def sqrt(self, x):
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.sqrt(x.mid)
            return self._func("sqrt", x, y,
                              lambda lo, hi: np.where(lo > 0, 0.5 / np.sqrt(np.maximum(lo, 0)), np.inf) * (1 + 8 * U))

    def _bounded(self, name, fn, x, zero_at_zero=True):
        """A function with a bounded derivative (tanh, sigmoid, erf, sin, cos)."""
        L = _LIPSCHITZ[name] * (1 + 2 ** -40)
        y = fn(x.mid)
        out = self._func(name, x, y, lambda lo, hi: L, zero_exact=(x.mid == 0) if (zero_at_zero and x.rad is None)
                         else None)
        if name in ("sin", "cos"):
            far = np.abs(x.mid) > TRIG_RANGE
            if far.any():
                out.rad = np.where(far, np.inf, out.rad)
        return out

    def tanh(self, x):
        return self._bounded("tanh", np.tanh, x)

    def sin(self, x):
        return self._bounded("sin", np.sin, x)

    def cos(self, x):
        out = self._bounded("cos", np.cos, x, zero_at_zero=False)
        return out

    def erf(self, x):
        from scipy.special import erf
        return self._bounded("erf", erf, x)

    def sigmoid(self, x):
        with np.errstate(over="ignore"):
            y = 1 / (1 + np.exp(-x.mid))
        return self._func("sigmoid", x, y, lambda lo, hi: 0.25 * (1 + 2 ** -40), zero_exact=None)

    def pi(self):
        return MR(np.asarray(math.pi), np.asarray(4 * U),
                  None if self.model is None else np.asarray(4 * self.model.u))

    # ------------------------------------------------------------------------------------ reductions
    def sum(self, x, axes, keepdims=False):
        axes = tuple(axes) if axes is not None else tuple(range(x.mid.ndim))
        n = math.prod(x.mid.shape[a] for a in axes) if axes else 1
        m = np.sum(x.mid, axis=axes, keepdims=keepdims)
        g = sum_factor(n)
        w = np.abs(x.mid) * g if x.rad is None else np.abs(x.mid) * g + x.rad
        r = np.sum(w, axis=axes, keepdims=keepdims) * (dot_inflation(max(n, 1)) * _C2)
        if self._guard(x):
            r = r + n * UF
        dev = None
        if self.model is not None:
            rel, abs_ = self.model.sum(n)
            a = ieee_abs(x)
            wd = a * rel if x.dev is None else x.dev + a * rel
            dev = np.sum(wd, axis=axes, keepdims=keepdims) * (dot_inflation(max(n, 1)) * _C3) + (max(abs_, UF) + n * UF)
        return self._done(MR(_f(m), _f(r), None if dev is None else _f(dev)), self._crude(lambda: 2 * n * peak(x)))

    def max_value(self, x, axes):
        """A float near the largest element of every slice (keepdims), exact: the shift of a logsumexp (any
        value is correct).  Its ``dev`` is the largest ``dev`` of the slice: the framework shifts by its own
        float maximum."""
        m = np.max(x.mid, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        d = None if x.dev is None or self.model is None else np.max(x.dev, axis=axes, keepdims=True)
        return MR(m, None, d)

    def matmul(self, a, b):
        """2-D product: midpoint by BLAS, radius gamma_n |A| |B| plus the radii's products (one or two extra
        products), and with a model the deviation's products.  Every array an operand contributes is derived
        elementwise (``prep``: on the source of gathered patches)."""
        n = a.mid.shape[1]
        m = a.mid @ b.mid
        small = self._guard(a, b)
        g, di = gamma(n), dot_inflation(n)
        ra, rb = a.has_rad(), b.has_rad()
        S = None
        if not ra and not rb:
            S = prep(a, _absmid) @ prep(b, _absmid)
            r = S * (g * di * _C2)
        elif not ra:
            r = prep(a, _absmid) @ prep(b, _rad_prep(g))
            r *= di * _C1
        elif not rb:
            r = prep(a, _rad_prep(g)) @ prep(b, _absmid)
            r *= di * _C1
        else:
            r = prep(a, _absmid) @ prep(b, _rad_prep(g))
            r += prep(a, lambda v: v.rad) @ prep(b, absb)
            r *= di * _C2
        if small:
            r += 2 * n * UF
        dev = None if self.model is None else self._dev_matmul(a, b, n, S, ra or rb)
        return self._done(MR(m, r, dev), self._crude(lambda: 2 * n * peak(a) * peak(b)))

    def _dev_matmul(self, a, b, n, S, radii):
        rel, abs_ = self.model.dot(n)
        c = dot_inflation(n) * _C4
        da, db = a.has_dev(), b.has_dev()
        if not da and not db:
            if S is None or radii:
                S = prep(a, absb) @ prep(b, absb)
            G = S * (rel * c)
        elif not db:
            G = prep(a, _dev_prep(rel)) @ prep(b, absb)
            G *= c
        elif not da:
            G = prep(a, absb) @ prep(b, _dev_prep(rel))
            G *= c
        else:
            G = prep(a, absb) @ prep(b, lambda v: (v.dev + (absb(v) + v.dev) * _C1 * rel) * _C3)
            G += prep(a, lambda v: v.dev) @ prep(b, lambda v: (absb(v) + v.dev) * (_C1 * (1 + rel) * _C1))
            G *= c
        G += max(abs_, UF) + n * UF                 # IEEE products may underflow (a larger dev is always sound)
        return G

    # --------------------------------------------------------------------------------------- decisions
    def signs(self, x):
        m = x.mid
        if x.rad is None:
            pos, neg = m > 0, m < 0
            zero = m == 0
        else:
            r = np.broadcast_to(x.rad, m.shape)
            pos, neg = m > r, -m > r
            zero = (m == 0) & (r == 0)
        s = pos.view(np.int8) - neg.view(np.int8)
        und = ~(pos | neg | zero)            # nan, or a radius reaching 0
        if und.any():
            s[und] = SIGN_UNDECIDED
        return s

    def out(self, x):
        return x

    def to_ball(self, x):
        return x.balls()

    def to_json(self, x):
        from .ball import json_number
        return json_number(x.ball(()) if x.mid.ndim == 0 else x.ball(tuple(0 for _ in x.mid.shape)))


def _interval(x, extra):
    """(lo, hi) float arrays enclosing [mid - rad - extra, mid + rad + extra], rounded outward."""
    w = x.rad if extra is None else (extra if x.rad is None else (x.rad + extra) * _C1)
    if w is None:
        return x.mid, x.mid
    lo = x.mid - w
    hi = x.mid + w
    lo = lo - np.abs(lo) * (2 * U) - UF
    hi = hi + np.abs(hi) * (2 * U) + UF
    return lo, hi


def _where3(mask, a, b, shape):
    if a is None and b is None:
        return None
    return np.where(mask, 0.0 if a is None else a, 0.0 if b is None else b)


def _exact_floats(ea):
    """(float64 array, every entry exact) of an ExactArray."""
    fl = getattr(ea, "_float", None)
    if fl is not None:
        return np.asarray(fl, dtype=np.float64), True
    den, num = ea.den, ea.num
    if num.size == 0:
        return np.zeros(num.shape), True
    flat = num.ravel().tolist()
    k = den.bit_length() - 1
    if den & (den - 1) == 0 and k <= 1074 and max(abs(int(v)) for v in flat) < 2 ** 53:
        # |num| < 2**53 and den = 2**k, k <= 1074: num * 2**-k is a float64 number, and so is each factor
        return np.array(flat, dtype=np.float64).reshape(num.shape) * 2.0 ** -k, True
    from fractions import Fraction
    vals = [Fraction(int(v), den) for v in flat]
    with np.errstate(over="ignore"):
        mid = np.array([_to_float(v) for v in vals], dtype=np.float64).reshape(num.shape)
    exact = all(math.isfinite(float(m)) and Fraction(float(m)) == v for m, v in zip(mid.ravel().tolist(), vals))
    return mid, exact


def _to_float(q):
    try:
        return float(q)
    except OverflowError:
        return math.inf if q > 0 else -math.inf


def _all_fit(mid, fmt):
    """Every entry of the float64 array is a number of the format ``fmt``."""
    if fmt.name == "float64":
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        if fmt.name == "float16":
            return bool(np.all(mid.astype(np.float16).astype(np.float64) == mid))
        f32 = mid.astype(np.float32)
        if not bool(np.all(f32.astype(np.float64) == mid)):
            return False
        return fmt.name == "float32" or bool(np.all((f32.view(np.uint32) & 0xFFFF) == 0))


def exact_value_q(x, index=()):
    """The exact rational of an element whose radius is 0 (an fmpq), else None."""
    r = 0.0 if x.rad is None else float(np.broadcast_to(x.rad, x.mid.shape)[index])
    if r != 0:
        return None
    p, q = float(x.mid[index]).as_integer_ratio()
    return fmpq(p, q)


__all__ = ["MR", "MidRadTensors", "SMALL", "absb", "ieee_abs", "exact_value_q"]
