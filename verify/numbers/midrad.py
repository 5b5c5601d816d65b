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
import functools
import math

import numpy as np
from flint import arb, fmpq

from ..truth import SIGN_UNDECIDED
from .rounding import (F64, FORMATS, TRIG_RANGE, WORK, dot_inflation, gamma, inflation, product_scale, round_up,
                       sum_factor, ulps)

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
# A radius stated as KAPPA times the deviation (``rad`` is ``_KAPPA``): for a model computing in float32 or a
# coarser format, float64's rounding of a product is below KAPPA times the model's (gamma_n of float64 is 2**-29
# times float32's), so the radius of a product or a sum whose operands' radii are at most KAPPA times their
# deviations is at most KAPPA times the deviation computed for it, term by term (``MidRadTensors.kappa``):
# one bound array and its products instead of two.
KAPPA = 2.0 ** -20
_KAPPA = object()


class MR:
    """A midpoint-radius array (see the module docstring).  ``rad`` / ``dev`` None mean exactly 0.  A value
    gathered from another (``take``: the patches of a convolution) keeps its source (``_src``) and gathers
    its radius and deviation only when they are read: a matrix product gathers, instead, the few arrays it
    derives from them, computed on the (smaller) source."""
    __slots__ = ("mid", "_rad", "_dev", "_small", "_abs", "_peak", "_src", "_kb", "_win")

    def __init__(self, mid, rad=None, dev=None, small=None, peak=None, src=None):
        self.mid = mid
        self._rad = rad
        self._dev = dev
        self._small = small
        self._abs = None        # |mid| + rad rounded up, once
        self._peak = peak       # an upper bound of |mid| + rad + dev over every element, once
        self._src = src         # (source MR, flat indices, padded with a zero) of a gathered value
        self._kb = None         # rad <= KAPPA dev elementwise (kappa_bounded), once
        self._win = None        # (window parameters, the window matrix of mid): built once, read twice

    @property
    def rad(self):
        if self._rad is _LAZY:
            self._rad = gather(self._src, self._src[0].rad)
        elif self._rad is _KAPPA:
            self._rad = self.dev * KAPPA            # a power of two: exact (dev is at least UF)
            self._kb = True
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


def stored_rad(x):
    """The radius of x as stored: an array, None, or the mark that it is KAPPA times the deviation."""
    return _KAPPA if x._rad is _KAPPA else x.rad


def kappa_bounded(x):
    """Is the radius of x at most KAPPA times its deviation, elementwise?  By construction (a KAPPA radius, no
    radius), else by one comparison (cached; a gathered value asks its source)."""
    if x._rad is None or x._rad is _KAPPA:
        return True
    if x._kb is None:
        if x._src is not None:
            x._kb = kappa_bounded(x._src[0])
        elif x.dev is None:
            x._kb = False
        else:
            with np.errstate(invalid="ignore"):
                x._kb = bool(np.all(np.less_equal(x.rad, x.dev * KAPPA)))
    return x._kb


class Windows:
    """The windows of a 2-D convolution over an (N, C, H, W) array, as a matrix: one row per output position
    (n, ho, wo), one column per window element (i, j, c) (the kernel's rows, its columns, then the channel),
    padding read as 0.  ``gather`` builds it by kh * kw strided copies (no index array: a fancy-indexed gather
    of a layer's patches costs twice as much), ``place`` adds such a matrix back into the input elements
    (col2im: the transpose of ``gather``)."""
    __slots__ = ("shape", "kh", "kw", "stride", "dilation", "pads", "out", "counts")

    def __init__(self, shape, kh, kw, stride, dilation, pads):
        N, C, H, W = shape
        (sh, sw), (dh, dw) = stride, dilation
        t, b, left, r = pads
        self.shape, self.kh, self.kw = tuple(shape), kh, kw
        self.stride, self.dilation, self.pads = tuple(stride), tuple(dilation), tuple(pads)
        self.out = ((H + t + b - dh * (kh - 1) - 1) // sh + 1, (W + left + r - dw * (kw - 1) - 1) // sw + 1)
        self.counts = None

    def batch(self, n):
        """The same windows over ``n`` images."""
        return Windows((n,) + self.shape[1:], self.kh, self.kw, self.stride, self.dilation, self.pads)

    def _views(self, padded):
        """(i, j, the strided view of ``padded`` (N, Hp, Wp, ...) read by window element (i, j))."""
        (sh, sw), (dh, dw) = self.stride, self.dilation
        Ho, Wo = self.out
        for i in range(self.kh):
            for j in range(self.kw):
                yield i, j, padded[:, i * dh:i * dh + sh * (Ho - 1) + 1:sh, j * dw:j * dw + sw * (Wo - 1) + 1:sw]

    def gather(self, a):
        """The (N*Ho*Wo, kh*kw*C) matrix of ``a`` (shaped like, or broadcast to, the input)."""
        N, C, H, W = self.shape
        t, b, left, r = self.pads
        a = np.broadcast_to(a, self.shape)
        if t or b or left or r:
            xt = np.zeros((N, H + t + b, W + left + r, C), dtype=a.dtype)
            xt[:, t:t + H, left:left + W] = a.transpose(0, 2, 3, 1)
        else:
            xt = np.ascontiguousarray(a.transpose(0, 2, 3, 1))
        Ho, Wo = self.out
        out = np.empty((N, Ho, Wo, self.kh, self.kw, C), dtype=a.dtype)
        for i, j, v in self._views(xt):
            out[:, :, :, i, j] = v
        return out.reshape(N * Ho * Wo, self.kh * self.kw * C)

    def place(self, v):
        """The flat (N*C*H*W) float64 array of the input elements, each the sum of the entries of ``v`` that
        ``gather`` reads from it (padding dropped): the window elements added one after another (every sum has
        at most ``most()`` terms, the first added to an exact 0).  ``v`` is the window matrix laid out by window
        element: (kh*kw, N*Ho*Wo, C), so that each addition reads a contiguous block."""
        N, C, H, W = self.shape
        t, b, left, r = self.pads
        Ho, Wo = self.out
        v6 = np.reshape(v, (self.kh, self.kw, N, Ho, Wo, C))
        acc = np.zeros((N, H + t + b, W + left + r, C))
        for i, j, view in self._views(acc):
            view += v6[i, j]
        return np.ascontiguousarray(acc[:, t:t + H, left:left + W].transpose(0, 3, 1, 2)).ravel()

    def most(self):
        """The largest number of windows an input element (not padding) is read by."""
        if self.counts is None:
            self.counts = most_windows(self.shape[2:], self.kh, self.kw, self.stride, self.dilation, self.pads)
        return self.counts


@functools.lru_cache(maxsize=64)
def most_windows(hw, kh, kw, stride, dilation, pads):
    """The largest number of convolution windows (Windows' parameters) an element of an H x W input is read by."""
    one = Windows((1, 1) + tuple(hw), kh, kw, stride, dilation, pads)
    Ho, Wo = one.out
    return int(one.place(np.ones((kh * kw, Ho * Wo, 1))).max(initial=0))


def gather(src, a):
    """The array ``a`` (shaped like, or broadcast to, the source of a gathered value) gathered like it."""
    if a is None:
        return None
    x, idx, pad = src
    if idx.__class__ is Windows:
        return idx.gather(a)
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


def _rad(v):
    return v.rad


def _dev(v):
    return v.dev


def _dev_first(rel):
    """(d + (|exact| + d) rel) rounded up: what the deviation of a product reads of its right operand beside the
    left operand's magnitude."""
    def fn(v):
        t = absb(v) + v.dev
        t *= _C1 * rel
        t += v.dev
        t *= _C3
        return t
    return fn


def _dev_second(rel):
    """(|exact| + d)(1 + rel) rounded up: what the deviation of a product reads of its right operand beside the
    left operand's deviation."""
    def fn(v):
        t = absb(v) + v.dev
        t *= _C1 * (1 + rel) * _C1
        return t
    return fn


# Bound products (radii and deviations: nonnegative arrays) of at least this many multiply-adds run in float32:
# sgemm is twice as fast as dgemm and its operands take half the memory.  The operands are rounded up to float32
# (``up32``) and the product scaled by float32's gamma_n (``bound32``): an upper bound still.  Exact products
# (the midpoints) stay in float64.
F32 = FORMATS["float32"]
F32_PRODUCTS = 1 << 16
_UP32 = 1 + 2.0 ** -22
# Every float32 operand is at least 2**-62, so that every product of two is a normal float32 (at least 2**-124):
# subnormal operands or results make x86 arithmetic, BLAS included, a hundred times slower.  A bound may grow by
# at most n 2**-62 times the other operand's largest entry: far below any rounding error of a value of order 1.
FLOOR32 = 2.0 ** -62


def up32(x):
    """A float32 array at least the nonnegative float64 array ``x`` elementwise and at least FLOOR32 (inf beyond
    float32's range): ``max(x (1 + 2**-22), FLOOR32)`` in float64, then rounded to the nearest float32, which
    loses at most a factor 1 - 2**-24 of a normal number."""
    t = np.multiply(x, _UP32)
    np.maximum(t, FLOOR32, out=t)
    with np.errstate(over="ignore"):
        return t.astype(np.float32)


def bound32(x, y, n):
    """A float64 upper bound of the exact product ``x @ y`` of nonnegative float32 arrays with inner dimension n:
    sgemm's result P (any order, FMA or not) satisfies P + n eta32 >= (1 - gamma_n) (x @ y) (Higham, Lemma 3.1,
    with one underflow error of at most eta32 / 2 per product), then one float64 addition and the scaling.
    Overflow gives inf, and inf times 0 gives nan, which becomes inf (an upper bound)."""
    p = np.add(np.matmul(x, y), n * F32.eta, dtype=np.float64)    # float32 to float64 exactly, then one rounding
    p *= product_scale(n, F32, 1)
    if np.isnan(p.max(initial=0.0)):
        p[np.isnan(p)] = np.inf
    return p


def bound_product(a, fa, b, fb, n, f32):
    """A float64 upper bound of ``fa(a) @ fb(b)`` for elementwise functions fa, fb returning nonnegative upper
    bounds (radii, magnitudes, deviations) of operands with inner dimension n: in float32 (``bound32``) when
    ``f32`` and gamma_n of float32 exists, else in float64 scaled by ``dot_inflation(n)``.  The functions run
    on the sources of gathered operands (``prep``)."""
    if f32 and n * F32.u < 0.5:
        return bound32(prep(a, lambda v: up32(fa(v))), prep(b, lambda v: up32(fb(v))), n)
    p = prep(a, fa) @ prep(b, fb)
    p *= dot_inflation(n)
    return p


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
        if x._rad is _KAPPA:                        # |mid| + KAPPA dev, without keeping the radius array
            t = x.dev * KAPPA
            a += t
            a *= _C1
        elif x.rad is not None:
            a += x.rad
            a *= _C1
        x._abs = a
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
        rad = _KAPPA if x._rad is _KAPPA else (None if x.rad is None else fn(_bc(x.rad, x.mid.shape)))
        return MR(fn(x.mid), rad, None if x.dev is None else fn(_bc(x.dev, x.mid.shape)), x._small, x._peak)

    def reshape(self, x, shape):
        return self.struct(x, lambda a: a.reshape(shape))

    def transpose(self, x, perm):
        return self.struct(x, lambda a: a.transpose(perm))

    def broadcast_to(self, x, shape):
        return self.struct(x, lambda a: np.broadcast_to(a, shape))

    def windows(self, x, kh, kw, stride, dilation, pads):
        """The windows of a 2-D convolution over x (N, C, H, W) as a matrix (``Windows``: rows (n, ho, wo),
        columns (i, j, c)), padding exact 0; radius and deviation gathered when read, like ``take``."""
        win = Windows(x.mid.shape, kh, kw, stride, dilation, pads)
        key = (kh, kw, tuple(stride), tuple(dilation), tuple(pads))
        if x._src is not None:
            return self.take(x, win)
        if x._win is not None and x._win[0] == key:      # the backward pass reads the forward's matrix
            mid, x._win = x._win[1], None
        else:
            mid = win.gather(x.mid)
            x._win = (key, mid)
        return MR(mid, None if x._rad is None else (_KAPPA if x._rad is _KAPPA else _LAZY),
                  None if x._dev is None else _LAZY, x._small, x._peak, (x, win, False))

    def place_windows(self, v, shape, kh, kw, stride, dilation, pads):
        """The transpose of ``windows``: the flat array of an input of ``shape`` with every entry of v, a window
        matrix laid out (kh*kw, N*Ho*Wo, C) (window element, output position, channel), added into the element
        it was read from; sums with their rounding, as ``scatter``."""
        win = Windows(shape, kh, kw, stride, dilation, pads)
        kap = v._rad is _KAPPA
        vals = [None if a is None else np.broadcast_to(a, v.mid.shape) for a in (v.mid, None if kap else v.rad, v.dev)]
        return self._accumulate(v, vals, win.place, win.most())

    def take(self, x, idx):
        """x.ravel()[idx] with -1 entries giving exact 0 (radius and deviation gathered when read); ``idx`` may
        be a Windows."""
        if idx.__class__ is Windows:
            pad = False
            if x._src is not None:
                x = MR(x.mid, stored_rad(x), x.dev, x._small, x._peak)
            src = (x, idx, pad)
            return MR(idx.gather(x.mid), None if x._rad is None else (_KAPPA if x._rad is _KAPPA else _LAZY),
                      None if x._dev is None else _LAZY, x._small, x._peak, src)
        idx = np.asarray(idx)
        pad = bool(idx.size and int(idx.min()) < 0)
        if x._src is not None:                   # a gather of a gather: compose the indices
            x = MR(x.mid, stored_rad(x), x.dev, x._small, x._peak)
        src = (x, idx, pad)
        return MR(gather(src, x.mid), None if x._rad is None else (_KAPPA if x._rad is _KAPPA else _LAZY),
                  None if x._dev is None else _LAZY,
                  x._small, x._peak, src)

    def zeros(self, shape):
        return MR(np.zeros(shape))

    def zeros_like(self, x):
        return self.zeros(x.mid.shape)

    def select(self, mask, a, b):
        shape = np.broadcast_shapes(np.shape(mask), a.mid.shape, b.mid.shape)
        pk = None if a._peak is None or b._peak is None else max(a._peak, b._peak)
        dev = _where3(mask, a.dev, b.dev, shape)
        rad = _KAPPA if a._rad is _KAPPA and b._rad is _KAPPA else _where3(mask, a.rad, b.rad, shape)
        return MR(np.where(mask, a.mid, b.mid), rad, dev, None, pk)

    def mask(self, m, x):
        rad = _KAPPA if x._rad is _KAPPA else (None if x.rad is None else masked(m, x.rad))
        return MR(masked(m, x.mid), rad, None if x.dev is None else masked(m, x.dev), x._small,
                  x._peak)

    def concat_flat(self, xs):
        def cat(get):
            parts = [get(x) for x in xs]
            if all(p is None for p in parts):
                return None
            return np.concatenate([np.zeros(x.mid.size) if p is None else np.ravel(np.broadcast_to(p, x.mid.shape))
                                   for p, x in zip(parts, xs)])
        rad = _KAPPA if all(x._rad is _KAPPA for x in xs) else cat(lambda x: x.rad)
        return MR(np.concatenate([np.ravel(x.mid) for x in xs]), rad, cat(lambda x: x.dev))

    def scatter(self, v, idx, size):
        """Flat array of ``size`` zeros plus v added at positions idx (-1 ignored); duplicate positions are
        sums, with their rounding."""
        idx = np.asarray(idx).ravel()
        keep = idx >= 0
        if not keep.all():
            idx = idx[keep]
        kap = v._rad is _KAPPA
        vals = [None if a is None else np.ravel(np.broadcast_to(a, v.mid.shape))
                for a in (v.mid, None if kap else v.rad, v.dev)]
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
            return MR(out[0], _KAPPA if kap else out[1], out[2], v._small, v._peak)
        return self._accumulate(v, vals, lambda w: np.bincount(idx, weights=w, minlength=size), cmax)

    def _accumulate(self, v, vals, summer, cmax):
        """The sums ``summer(w)`` (each output element a sum of at most ``cmax`` entries of w, in any order,
        starting from an exact 0) of v's midpoints, with the radius and deviation of those sums: ``vals`` are
        v's (mid, rad or None when it is KAPPA times dev, dev) shaped alike."""
        kap = v._rad is _KAPPA
        if cmax <= 1:                       # no two entries meet: every sum is one entry, exact
            return MR(summer(vals[0]), _KAPPA if kap else (None if vals[1] is None else summer(vals[1])),
                      None if vals[2] is None else summer(vals[2]), v._small, v._peak)
        m, r, d = vals
        mid = summer(m)
        g = gamma(cmax - 1)
        rel = None if self.model is None else self.model.sum(cmax)[0]
        kappa = v.has_rad() and self.model is not None and self.kappa(g, rel) and kappa_bounded(v)
        w = np.abs(m)                       # one temporary at a time: these arrays are a layer's patches
        rad = None
        if not kappa:
            w *= g
            if r is not None:
                w += r
            rad = summer(w)
            rad *= dot_inflation(cmax) * _C2
            if self._guard(v):
                rad += UF * cmax
        dev = None
        if self.model is not None:
            np.abs(m, out=w)                # |ieee| <= |mid| + rad + dev, then its rel part plus dev
            if kappa:
                w += d * (1 + KAPPA)        # rad <= KAPPA dev
            else:
                if r is not None:
                    w += r
                if d is not None:
                    w += d
            w *= _C2 * rel
            if d is not None:
                w += d
            dev = summer(w)
            dev *= dot_inflation(cmax) * _C3
            dev += UF * cmax / KAPPA if kappa else UF * cmax
            if self.model.flush:
                dev += (cmax - 1) * self.model.accumulate.tiny
        del w
        return self._done(MR(mid, _KAPPA if kappa else rad, dev), self._crude(lambda: 2 * cmax * peak(v)))

    # ---------------------------------------------------------------------------------- arithmetic
    def neg(self, a):
        return MR(-a.mid, stored_rad(a), a.dev, a._small, a._peak)

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
        rel, abs_ = self.model.sum(n) if self.model is not None else (None, None)
        kappa = x.has_rad() and self.model is not None and self.kappa(g, rel) and kappa_bounded(x)
        r = None
        if not kappa:
            w = np.abs(x.mid) * g if x.rad is None else np.abs(x.mid) * g + x.rad
            r = np.sum(w, axis=axes, keepdims=keepdims) * (dot_inflation(max(n, 1)) * _C2)
            if self._guard(x):
                r = r + n * UF
        dev = None
        if self.model is not None:
            a = ieee_abs(x)
            wd = a * rel if x.dev is None else x.dev + a * rel
            dev = np.sum(wd, axis=axes, keepdims=keepdims) * (dot_inflation(max(n, 1)) * _C3) + (max(abs_, UF) + n * UF)
            if kappa:                       # |x| g + r <= KAPPA (|ieee x| rel + d) term by term
                dev = dev + n * UF / KAPPA
        rad = _KAPPA if kappa else _f(r)
        return self._done(MR(_f(m), rad, None if dev is None else _f(dev)), self._crude(lambda: 2 * n * peak(x)))

    def max_value(self, x, axes):
        """A float near the largest element of every slice (keepdims), exact: the shift of a logsumexp (any
        value is correct).  Its ``dev`` is the largest ``dev`` of the slice: the framework shifts by its own
        float maximum."""
        m = np.max(x.mid, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        d = None if x.dev is None or self.model is None else np.max(x.dev, axis=axes, keepdims=True)
        return MR(m, None, d)

    def matmul(self, a, b):
        """Product of a matrix and a matrix (or a stack of matrices: numpy's batched product, each output entry a
        dot product of length n): midpoint by BLAS, radius gamma_n |A| |B| plus the radii's products (one or two extra
        products), and with a model the deviation's products.  Every array an operand contributes is derived
        elementwise (``prep``: on the source of gathered patches).  Bound products of operands with a radius or
        a deviation run in float32 when large (``bound_product``)."""
        n = a.mid.shape[-1]
        m = a.mid @ b.mid
        small = self._guard(a, b)
        g = gamma(n)
        ra, rb = a.has_rad(), b.has_rad()
        f32 = m.size * n >= F32_PRODUCTS
        if (ra or rb) and self.model is not None and self.kappa(g, self.model.dot(n)[0]) and kappa_bounded(a) \
                and kappa_bounded(b):
            # the radius is KAPPA times the deviation: |mid A| r_B + r_A (|mid B| + r_B) + gamma_n |A||B| is, term
            # by term, at most KAPPA (|A| d_B + d_A (|B| + d_B) + rel |A||B|); the underflow allowance 2 n UF is
            # added to the deviation divided by KAPPA
            dev = self._dev_matmul(a, b, n, None, f32, 2 * n * UF / KAPPA)
            return self._done(MR(m, _KAPPA, dev), self._crude(lambda: 2 * n * peak(a) * peak(b)))
        S = None
        if not ra and not rb:
            # exact operands: one float64 product serves the radius and the deviation, and keeps exact zeros
            S = prep(a, _absmid) @ prep(b, _absmid)
            r = S * (g * dot_inflation(n) * _C2)
        elif not ra:
            r = bound_product(a, _absmid, b, _rad_prep(g), n, f32)
        elif not rb:
            r = bound_product(a, _rad_prep(g), b, _absmid, n, f32)
        else:
            r = bound_product(a, _absmid, b, _rad_prep(g), n, f32)
            r += bound_product(a, _rad, b, absb, n, f32)
            r *= _C1
        if small:
            r += 2 * n * UF
        dev = None if self.model is None else self._dev_matmul(a, b, n, S, f32)
        return self._done(MR(m, r, dev), self._crude(lambda: 2 * n * peak(a) * peak(b)))

    def kappa(self, g, rel):
        """May a radius be KAPPA times the deviation in an operation whose float64 rounding factor is ``g`` and
        the model's ``rel``: g is below KAPPA rel, with room for the roundings of both bounds."""
        return self.model is not None and g * (1 + 2.0 ** -10) <= KAPPA * rel

    def _dev_matmul(self, a, b, n, S, f32, extra=0.0):
        """The deviation of an IEEE product: |A| d_B + d_A (|B| + d_B) + rel (|A| + d_A)(|B| + d_B) (+ underflow),
        |A| an upper bound of the exact operand (``absb``), d the deviations, rel the model's gamma_n."""
        rel, abs_ = self.model.dot(n)
        da, db = a.has_dev(), b.has_dev()
        if not da and not db:
            if S is not None:           # exact operands without deviation: |A| = |mid A|, the product above
                G = S * (rel * dot_inflation(n) * _C3)
            else:
                G = bound_product(a, absb, b, absb, n, f32) * (rel * _C2)
        elif not db:
            G = bound_product(a, _dev_prep(rel), b, absb, n, f32)
        elif not da:
            G = bound_product(a, absb, b, _dev_prep(rel), n, f32)
        else:
            G = bound_product(a, absb, b, _dev_first(rel), n, f32)
            G += bound_product(a, _dev, b, _dev_second(rel), n, f32)
        G += max(abs_, UF) + n * UF + extra         # IEEE products may underflow (a larger dev is always sound)
        G *= _C1
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


def masked(m, a):
    """``np.where(m, a, 0.0)`` for a bool array m, by a multiplication (several times faster than where on a
    random mask): a * 1 is a and a * 0 is +-0 for finite a, and + 0.0 turns -0 into +0; where a is not finite
    (a * 0 would be nan) it is where itself."""
    with np.errstate(invalid="ignore"):
        out = np.multiply(a, m)
    out += 0.0
    if not np.isfinite(out.max(initial=0.0)):    # max is nan when any entry is, inf when any is +inf
        return np.where(m, a, 0.0)
    if not np.isfinite(out.min(initial=0.0)):
        return np.where(m, a, 0.0)
    return out


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
