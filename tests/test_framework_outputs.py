"""Every op the importers map, every one of its float outputs: verify's gradient is the framework's, or the
import is refused with a reason.  Never a silent difference.

For each entry of the mapping tables (``ATEN`` in frameworks/torch.py, ``RULES`` in frameworks/jax.py) a
sample calls the op at a point off its kinks; for each float output k the loss sum(w * output_k) (w fixed
and generic) is imported and verify's exact (or ball) gradient is compared with the framework's own in
float64.  An output the framework does not differentiate (torch gives it no grad_fn: a stop-gradient, such
as native_layer_norm's mean and rstd or batch norm's saved statistics) must be refused at import, or have
verify's gradient exactly 0 (an output that does not depend on the inputs, such as zeros_like).  The tables
are walked in full: an op without a sample here is a failure naming it.
"""
import math

import numpy as np
import pytest
from flint import arb

import verify
from verify.errors import VerifyError

torch = pytest.importorskip("torch")
from verify.frameworks import torch as vtorch  # noqa: E402

aten = torch.ops.aten
D = torch.float64


def _t(rows):
    return torch.tensor(rows, dtype=D)


# points off every kink of the mapped ops (relu at 0, clamp and hardtanh at +-0.5 / +-1, hardswish at +-3,
# ties of max, min and sort)
X = _t([[0.3, -1.2, 1.7], [-0.45, 0.8, -1.9]])
Y = _t([[1.1, 0.35, -0.7], [0.6, -1.4, 0.25]])
POS = X.abs() + 0.5
X4 = torch.linspace(-1.7, 1.9, 2 * 3 * 4 * 4, dtype=D).reshape(2, 3, 4, 4) * \
    torch.tensor([1.0, -1.3, 0.7], dtype=D).reshape(1, 3, 1, 1) + 0.013 * torch.arange(16, dtype=D).reshape(4, 4)
C3 = torch.tensor([0.5, -0.25, 1.5], dtype=D)
IDX = torch.tensor([[2, 0, 1], [1, 1, 0]])
MASK = torch.tensor([[True, False, True], [False, True, True]])
W_CONV = torch.linspace(-0.9, 1.1, 2 * 3 * 2 * 2, dtype=D).reshape(2, 3, 2, 2)
X5 = X4.reshape(1, 2, 3, 4, 4)                    # (N, C, D, H, W) for the 3-d pools
UNIT = X / 2                                      # inside (-1, 1): acos, asin, atanh, erfinv
PROB = X.sigmoid()                                # inside (0, 1): ndtri
SQ = _t([[2.0, 0.3, -0.5], [0.4, 1.5, 0.2], [-0.1, 0.6, 1.8]])      # well conditioned, det > 0
SPD = SQ @ SQ.T + torch.eye(3, dtype=D)                                # symmetric positive definite
LOW = torch.linalg.cholesky(SPD)                                       # a Cholesky factor (lower, diag > 0)
UP = LOW.T.contiguous()
LU_SQ, PIV_SQ = torch.linalg.lu_factor(SQ.flip(0))                    # an LU with row swaps, its integer pivots
TABLE = torch.linspace(-1.3, 1.6, 5 * 4, dtype=D).reshape(5, 4) ** 3   # embedding rows, no two equal
COL = torch.tensor([2, 0])


def _elementwise(op):
    """A sample for ops whose schema is (Tensor self[, Tensor other | Scalar other]) with defaults after."""
    args = [a for a in op._schema.arguments if not a.kwarg_only and not a.has_default_value()]
    types = [str(a.type) for a in args]
    if types == ["Tensor"]:
        return (X,), {}
    if types == ["Tensor", "Tensor"]:
        return (X, Y), {}
    if types in (["Tensor", "Scalar"], ["Tensor", "number"]):
        return (X, 0.75), {}
    return None


# op -> (args, kwargs): the tensors of float64 dtype among args are the inputs differentiated
SAMPLES = {
    "_adaptive_avg_pool2d.default": ((X4, [2, 2]), {}),
    "_log_softmax.default": ((X, 1, False), {}),
    "_softmax.default": ((X, 1, False), {}),
    "_native_batch_norm_legit.default": ((X4, C3, C3 + 1, torch.zeros(3, dtype=D), torch.ones(3, dtype=D), True,
                                          0.1, 1e-5), {}),
    "_native_batch_norm_legit.no_stats": ((X4, C3, C3 + 1, True, 0.1, 1e-5), {}),
    "_native_batch_norm_legit_functional.default": ((X4, C3, C3 + 1, C3.abs(), C3.abs() + 1, True, 0.1, 1e-5), {}),
    "_native_batch_norm_legit_no_training.default": ((X4, C3, C3 + 1, C3, C3.abs() + 1, 0.1, 1e-5), {}),
    "_to_copy.default": ((X,), {"dtype": D}),
    "_unsafe_view.default": ((X, [3, 2]), {}),
    "addmm.default": ((C3[:2], X, Y.T), {}),
    "amax.default": ((X, [1]), {}),
    "amin.default": ((X, [1]), {}),
    "avg_pool2d.default": ((X4, [2, 2]), {}),
    "bmm.default": ((X.reshape(1, 2, 3), Y.T.reshape(1, 3, 2)), {}),
    "cat.default": (([X, Y], 1), {}),
    "clamp.Tensor": ((X, -POS, POS), {}),
    "clamp.default": ((X, -0.5, 0.5), {}),
    "clamp_max.default": ((X, 0.5), {}),
    "clamp_min.default": ((X, -0.5), {}),
    "constant_pad_nd.default": ((X, [1, 2], 0.5), {}),
    "convolution.default": ((X4, W_CONV, C3[:2], [1, 1], [1, 0], [1, 1], False, [0, 0], 1), {}),
    "div.Scalar_mode": ((X, 0.5), {"rounding_mode": "floor"}),
    "div.Tensor_mode": ((X, POS), {"rounding_mode": "trunc"}),
    "div.Tensor": ((X, POS), {}),
    "dot.default": ((X[0], Y[0]), {}),
    "expand.default": ((X[:1], [3, 3]), {}),
    "flip.default": ((X, [1]), {}),
    "full_like.default": ((X, 2.5), {}),
    "gather.default": ((X, 1, IDX), {}),
    "hardsigmoid.default": ((X * 2,), {}),
    "hardswish.default": ((X * 2,), {}),
    "hardtanh.default": ((X,), {}),
    "index.Tensor": ((X, [torch.tensor([1, 0, 1])]), {}),
    "index_select.default": ((X, 1, torch.tensor([2, 0])), {}),
    "log.default": ((POS,), {}),
    "log1p.default": ((POS,), {}),
    "logsumexp.default": ((X, [1]), {}),
    "max.dim": ((X, 1), {}),
    "min.dim": ((X, 1), {}),
    "max_pool2d_with_indices.default": ((X4, [2, 2]), {}),
    "mean.dim": ((X, [1]), {}),
    "mm.default": ((X, Y.T), {}),
    "native_dropout.default": ((X, 0.5, True), {}),
    "native_layer_norm.default": ((X, [3], C3, C3 + 1, 0.5), {}),
    "permute.default": ((X, [1, 0]), {}),
    "pow.Tensor_Scalar": ((X, 3), {}),
    "reciprocal.default": ((POS,), {}),
    "repeat.default": ((X, [2, 1]), {}),
    "reshape.default": ((X, [3, 2]), {}),
    "roll.default": ((X, [1], [1]), {}),
    "rsqrt.default": ((POS,), {}),
    "select.int": ((X, 0, 1), {}),
    "slice.Tensor": ((X, 1, 0, 2), {}),
    "sort.default": ((X, 1), {}),
    "sort.stable": ((X,), {"stable": True, "dim": 1}),
    "split.Tensor": ((X, 1, 1), {}),
    "split_with_sizes.default": ((X, [1, 2], 1), {}),
    "sqrt.default": ((POS,), {}),
    "squeeze.default": ((X.reshape(2, 1, 3),), {}),
    "squeeze.dim": ((X.reshape(2, 1, 3), 1), {}),
    "squeeze.dims": ((X.reshape(2, 1, 3), [1]), {}),
    "sum.dim_IntList": ((X, [1]), {}),
    "t.default": ((X,), {}),
    "transpose.int": ((X, 0, 1), {}),
    "unbind.int": ((X,), {}),
    "unsqueeze.default": ((X, 0), {}),
    "var.correction": ((X, [1]), {}),
    "view.default": ((X, [3, 2]), {}),
    "where.self": ((MASK, X, Y), {}),
    "bitwise_and.Tensor": ((MASK, ~MASK), {}),
    "bitwise_or.Tensor": ((MASK, ~MASK), {}),
    "bitwise_not.default": ((MASK,), {}),
    "logical_and.default": ((MASK, ~MASK), {}),
    "logical_or.default": ((MASK, ~MASK), {}),
    "logical_not.default": ((MASK,), {}),
    # elementwise ops off the real line elsewhere: a point inside the domain
    "acos.default": ((UNIT,), {}),
    "asin.default": ((UNIT,), {}),
    "atanh.default": ((UNIT,), {}),
    "erfinv.default": ((UNIT,), {}),
    "acosh.default": ((POS + 1,), {}),
    "log2.default": ((POS,), {}),
    "log10.default": ((POS,), {}),
    "special_entr.default": ((POS,), {}),
    "special_ndtri.default": ((PROB,), {}),
    "digamma.default": ((POS,), {}),
    "polygamma.default": ((2, POS), {}),
    "special_polygamma.default": ((1, POS), {}),
    "special_xlog1py.default": ((X, POS), {}),
    "special_xlog1py.self_scalar": ((0.75, POS), {}),
    "xlogy.Tensor": ((X, POS), {}),
    "xlogy.Scalar_Self": ((0.75, POS), {}),
    "pow.Tensor_Tensor": ((POS, X), {}),
    "pow.Scalar": ((2.5, X), {}),
    "float_power.Tensor_Tensor": ((POS, X), {}),
    "float_power.Scalar": ((2.5, X), {}),
    "round.decimals": ((X * 7,), {"decimals": 1}),
    # pools, resampling
    "_adaptive_avg_pool3d.default": ((X5, [2, 3, 2]), {}),
    "adaptive_max_pool2d.default": ((X4, [2, 3]), {}),
    "adaptive_max_pool3d.default": ((X5, [2, 2, 3]), {}),
    "avg_pool3d.default": ((X5, [2, 2, 2], [1, 2, 1]), {}),
    "max_pool3d_with_indices.default": ((X5, [2, 2, 2], [1, 2, 1]), {}),
    "_upsample_bilinear2d_aa.default": ((X4, [3, 6], False), {}),
    "_upsample_bicubic2d_aa.default": ((X4, [3, 6], False), {}),
    "upsample_bilinear2d.vec": ((X4, [5, 7], True, None), {}),
    # products, distances, normalisation
    "addbmm.default": ((Y[:, :2], torch.stack([X, Y]), torch.stack([Y.T, X.T])), {"beta": 0.5, "alpha": 2}),
    "addmv.default": ((C3[:2], X, C3), {"beta": 0.5, "alpha": 2}),
    "_trilinear.default": ((X, W_CONV.reshape(2, 3, 4)[:, :, :3], Y, [1, 3], [0], [1, 2], [2, 3]), {}),
    "_cdist_forward.default": ((X, Y[:1] + 0.1, 2.0, None), {}),
    "native_group_norm.default": ((X4, C3, C3 + 1, 2, 3, 16, 3, 1e-5), {}),
    # linear algebra at well-conditioned points
    "_linalg_det.default": ((SQ,), {}),
    "_linalg_slogdet.default": ((SQ,), {}),
    "logdet.default": ((SQ,), {}),
    "_linalg_solve_ex.default": ((SQ, X.T), {}),
    "linalg_inv_ex.default": ((SQ,), {}),
    "cholesky.default": ((SPD,), {}),
    "linalg_cholesky_ex.default": ((SPD,), {}),
    "cholesky_inverse.default": ((LOW,), {}),
    "cholesky_solve.default": ((X.T, UP, True), {}),
    "linalg_solve_triangular.default": ((LOW, X.T), {"upper": False}),
    "linalg_lu_factor_ex.default": ((SQ,), {}),
    "linalg_lu.default": ((SQ.flip(0),), {}),                   # pivots on rows 2 and 1
    "lu_unpack.default": ((LU_SQ, PIV_SQ), {}),                 # integer pivots: a constant permutation
    "linalg_lu_solve.default": ((LU_SQ, PIV_SQ, X.T), {"adjoint": True}),
    "linalg_householder_product.default": ((X.T, C3[:2]), {}),
    "ormqr.default": ((SQ, C3, X.T), {"transpose": True}),
    "triangular_solve.default": ((X.T, UP), {}),
    # cumulative, order statistics (no ties in X)
    "cumsum.default": ((X, 1), {}),
    "cumprod.default": ((X, 1), {}),
    "logcumsumexp.default": ((X, 1), {}),
    "cummax.default": ((X, 1), {}),
    "cummin.default": ((X, 1), {}),
    "kthvalue.default": ((X, 2, 1), {}),
    "median.dim": ((X, 1), {}),
    "nanmedian.dim": ((X, 0), {}),
    "topk.default": ((X, 2, 1), {}),
    "prod.dim_int": ((X, 1), {}),
    # indexing, scattering
    "embedding.default": ((TABLE, IDX), {}),
    "_embedding_bag.default": ((TABLE, torch.tensor([4, 0, 2, 2, 1]), torch.tensor([0, 2]), False, 1), {}),
    "_embedding_bag_forward_only.default": ((TABLE, torch.tensor([4, 0, 2, 2, 1]), torch.tensor([0, 2]), False,
                                             0), {}),
    "take.default": ((X, torch.tensor([[5, 0], [3, 3]])), {}),
    "put.default": ((X, torch.tensor([4, 1, 4]), C3, True), {}),
    "masked_select.default": ((X, MASK), {}),
    "masked_scatter.default": ((X, MASK, Y), {}),
    "index_add.default": ((X, 1, COL, Y[:, :2]), {"alpha": 2}),
    "index_copy.default": ((X, 1, COL, Y[:, :2]), {}),
    "index_fill.int_Scalar": ((X, 1, COL, 0.5), {}),
    "index_fill.int_Tensor": ((X, 1, COL, torch.tensor(0.5, dtype=D)), {}),
    "index_put.default": ((X, [torch.tensor([1, 1])], Y, True), {}),
    "index_reduce.default": ((X, 1, torch.tensor([2, 0, 2]), Y, "prod"), {}),
    "scatter.src": ((X, 1, torch.tensor([[2, 0], [1, 0]]), Y[:, :2]), {}),
    "scatter.value": ((X, 1, torch.tensor([[2, 0], [1, 0]]), 0.5), {}),
    "scatter_add.default": ((X, 1, IDX, Y), {}),
    "scatter_reduce.two": ((X, 1, IDX, Y, "amax"), {"include_self": True}),
    "segment_reduce.default": ((X.T, "sum"), {"lengths": torch.tensor([2, 1])}),
    "diagonal_scatter.default": ((SQ, C3), {}),
    "select_scatter.default": ((X, C3, 0, 1), {}),
    "as_strided_scatter.default": ((X, Y[:, :2], [2, 2], [1, 2], 1), {}),
    # views and their copies (as_strided overlapping: the gradient sums)
    "as_strided.default": ((X, [2, 2], [1, 1], 1), {}),
    "as_strided_copy.default": ((X, [2, 2], [1, 1], 1), {}),
    "unfold.default": ((X, 1, 2, 1), {}),
    "unfold_copy.default": ((X, 1, 2, 1), {}),
    "narrow_copy.default": ((X, 1, 1, 2), {}),
    "expand_copy.default": ((X[:1], [3, 3]), {}),
    "permute_copy.default": ((X, [1, 0]), {}),
    "select_copy.int": ((X, 0, 1), {}),
    "split_with_sizes_copy.default": ((X, [1, 2], 1), {}),
    "squeeze_copy.dims": ((X.reshape(2, 1, 3), [1]), {}),
    "transpose_copy.int": ((X, 0, 1), {}),
    "unsqueeze_copy.default": ((X, 0), {}),
    "view_copy.default": ((X, [3, 2]), {}),
    "copy.default": ((X, Y[:1]), {}),
    # QR (LAPACK's Householder convention)
    "linalg_qr.default": ((SQ,), {}),
    # grid sampling (off integer pixel coordinates)
    "grid_sampler_2d.default": ((X4, torch.linspace(-1.1, 0.9, 2 * 3 * 2 * 2, dtype=D).reshape(2, 3, 2, 2) * 1.07,
                                 0, 0, False), {}),
    "grid_sampler_3d.default": ((X5, torch.linspace(-0.9, 1.1, 2 * 2 * 3, dtype=D).reshape(1, 2, 2, 1, 3) * 1.07,
                                 0, 1, True), {}),
    # losses with constant labels, chunked losses, a max-pool backward with constant indices (misc1)
    "max_pool2d_with_indices_backward.default": ((X4[:, :, :2, :2], X4, [2, 2], [2, 2], [0, 0], [1, 1], True,
                                                  torch.nn.functional.max_pool2d_with_indices(X4, 2, 2)[1]), {}),
    "multilabel_margin_loss.default": ((X, torch.tensor([[2, 0, -1], [1, -1, 0]]), 1), {}),
    "torch_nn._linear_cross_entropy_batch_chunked.default": (
        (X, SQ, torch.tensor([2, 0]), C3, None, "mean", -100, 0.0, 1, "compact", D, True, True, True, True), {}),
    "torch_nn._linear_cross_entropy_batch_chunked_no_reduction.default": (
        (X, SQ, torch.tensor([1, -100]), C3, None, -100, 1, "compact", D), {}),
    # spectral (eigenvalues and singular values as roots of characteristic polynomials; vectors refused)
    "_linalg_eigh.default": ((SPD,), {}),
    "_linalg_svd.default": ((SQ,), {}),
    "linalg_pinv.atol_rtol_tensor": ((SQ,), {}),
    "linalg_pinv.atol_rtol_float": ((X,), {"rtol": 1e-10}),
    "linalg_matrix_exp.default": ((SQ,), {}),
    # normalisation kernels' saved statistics (misc2)
    "_batch_norm_with_update_functional.default": ((X4, C3, C3 + 1, C3.abs(), C3.abs() + 1, 0.1, 1e-5), {}),
    # covariance, kept whole (misc2): weights of both kinds, aweights differentiated
    "cov.default": ((X,), {"correction": 1, "fweights": torch.tensor([1, 3, 2]), "aweights": POS[0]}),
    "corrcoef.default": ((torch.cat([X, Y]),), {}),
    # creation ops: no input (see test_every_torch_op_output)
    "empty.memory_format": (([2, 3],), {"dtype": D}),
    "empty_permuted.default": (([2, 3], [1, 0]), {"dtype": D}),
    "empty_strided.default": (([2, 3], [1, 2]), {"dtype": D}),
}
def _strided_scatter(self, src, size, stride, storage_offset=None):
    out = self.clone()
    out.as_strided(size, stride, storage_offset).copy_(src)
    return out


# the framework's float64 gradient differs from the real derivative by more than float64 rounding, for a
# stated reason: (relative difference expected)
KNOWN = {"hardsigmoid.default": ("torch's float64 hardsigmoid backward multiplies by the float32 constant 1/6",
                                 abs(float(np.float32(1 / 6)) - 1 / 6) * 6),
         # measured against mpmath.polygamma(1, x) at POS: torch 2.2994741385247255, mpmath 2.2994741375017 at 0.8
         "digamma.default": ("torch's float64 trigamma (digamma's backward) is a short asymptotic series, "
                             "accurate to about 5e-10 relative", 4.45e-10)}
# torch's own backward of the op is absent or is not the derivative of its function: (reason, a torch function
# with the op's values whose torch gradient is the derivative; it is the oracle for verify's gradient)
REFERENCE = {
    "copy.default": ("torch has no derivative for aten.copy (only for the in-place copy_)",
                     lambda self, src, non_blocking=False: self.clone().copy_(src)),
    "_embedding_bag_forward_only.default": ("torch's autograd refuses the forward-only op; _embedding_bag has "
                                            "its values", aten._embedding_bag.default),
    # measured at the sample: torch's self gradient is w at the four scattered positions and 0 at the other
    # two, finite differences (and verify) give the reverse: [-0.4375, 0, 0, 0, 0, -0.4375]
    "as_strided_scatter.default": ("torch's as_strided_scatter backward gives self the gradient of the "
                                   "scattered positions instead of the kept ones", _strided_scatter)}


def torch_sample(name):
    """(op, args, kwargs) of the ATEN entry ``name``, or None when there is no sample."""
    base, overload = name.rsplit(".", 1)
    space, _, base = base.rpartition(".")          # a custom op's namespace (torch_nn.), else aten
    if space == "torch_nn":
        import torch.nn.modules.linear_cross_entropy  # noqa: F401  (registers the torch_nn ops)
    op = getattr(getattr(getattr(torch.ops, space) if space else aten, base), overload)
    if name in SAMPLES:
        return op, *SAMPLES[name]
    auto = _elementwise(op)
    return None if auto is None else (op, *auto)


def _outputs(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _weights(shape, k):
    n = math.prod(shape)
    return (torch.arange(n, dtype=D).reshape(shape) % 5 - 1.75) * (k + 1) / 4


def _real_floats(g):
    """A gradient entry (fmpq or arb) as a float64 array."""
    flat = [float(v.mid()) if isinstance(v, arb) else float(v) for v in np.ravel(np.asarray(g, dtype=object))]
    return np.array(flat, dtype=np.float64).reshape(np.shape(g))


def _differentiable(op, leaves, spec, i):
    """False when torch refuses to differentiate ``op`` with respect to leaf ``i`` (running statistics): such
    an argument is closed over (a constant of the program), as a module's buffer is."""
    from torch.utils import _pytree as pytree
    full = list(leaves)
    full[i] = full[i].clone().requires_grad_(True)
    a, kw = pytree.tree_unflatten(full, spec)
    try:
        op(*a, **kw)
    except RuntimeError as e:
        if "not differentiable" in str(e):
            return False
        raise
    return True


class TorchCall:
    """The sample (op, args, kwargs) as a function of its float64 tensors (the inputs differentiated, those
    torch refuses to differentiate left as constants): ``call(fn, *xs)`` is the list of outputs of ``fn``
    (the op, or its REFERENCE) at the sample with ``xs`` for them."""

    def __init__(self, op, args, kwargs, reference=None):
        from torch.utils import _pytree as pytree
        self.unflatten = pytree.tree_unflatten
        self.leaves, self.spec = pytree.tree_flatten((list(args), kwargs))
        floats = [i for i, a in enumerate(self.leaves) if isinstance(a, torch.Tensor) and a.dtype == D]
        self.floats = [i for i in floats if _differentiable(reference or op, self.leaves, self.spec, i)]

    def call(self, fn, *xs):
        full = list(self.leaves)
        for i, x in zip(self.floats, xs):
            full[i] = x
        a, kw = self.unflatten(full, self.spec)
        return _outputs(fn(*a, **kw))

    def inputs(self):
        return [self.leaves[i].clone().requires_grad_(True) for i in self.floats]


def _import(loss, xs, name, k):
    """verify's gradient of ``loss`` at ``xs`` as float64 arrays, or None when verify refuses the import (which
    must be an InputError)."""
    try:
        imp = verify.from_torch(loss, *[x.detach() for x in xs])
    except VerifyError as e:
        assert isinstance(e, verify.InputError), f"{name} output {k}: {type(e).__name__}: {e}"
        return None
    return [_real_floats(g) for g in imp.grad().gradient]


def _relative(a, b):
    scale = float(np.max(np.abs(a))) if a.size else 0.0
    return float(np.max(np.abs(a - b))) / max(scale, 1e-300) if a.size else 0.0


def _torch_grad(loss, xs):
    return [np.zeros(x.shape) if g is None else g.detach().numpy()
            for x, g in zip(xs, torch.autograd.grad(loss(*xs), xs, allow_unused=True))]


def _check_reference(op, ref, s, k, name, theirs):
    """The REFERENCE of ``name`` has the op's values at the sample, and torch's own gradient of the op is
    absent or differs from the reference's (else the entry is stale)."""
    at = [s.leaves[i] for i in s.floats]
    assert all(torch.equal(u, v) for u, v in zip(s.call(op, *at), s.call(ref, *at)) if u.is_floating_point()), \
        f"{name}: the REFERENCE does not have the op's values"
    w = _weights(s.call(op, *at)[k].shape, k)
    try:
        own = _torch_grad(lambda *t: (w * s.call(op, *t)[k]).sum(), s.inputs())
    except RuntimeError:            # torch has no backward for the op
        return
    assert max(_relative(a, b) for a, b in zip(theirs, own)) > 1e-6, \
        f"{name}: torch's own gradient is now the REFERENCE's: remove the entry"


def compare_torch_output(op, args, kwargs, k, name):
    """Check float output ``k`` of ``op`` at ``args``: "gradient" (verify's gradient is torch's, or that of the
    op's REFERENCE), "zero" (torch does not differentiate it and verify's gradient is exactly 0) or "refused"
    (an ImportFailure)."""
    ref = REFERENCE.get(name, (None, None))[1]
    s = TorchCall(op, args, kwargs, ref)
    xs = s.inputs()
    outs = s.call(ref or op, *xs)
    w = _weights(outs[k].shape, k)
    ours = _import(lambda *t: (w * s.call(op, *t)[k]).sum(), xs, name, k)
    if ours is None:
        return "refused"
    if not outs[k].requires_grad:
        assert all(np.all(g == 0) for g in ours), \
            f"{name} output {k}: torch does not differentiate it (no grad_fn), verify's gradient is not 0"
        return "zero"
    theirs = _torch_grad(lambda *t: (w * s.call(ref or op, *t)[k]).sum(), xs)
    if ref is not None:
        _check_reference(op, ref, s, k, name, theirs)
    expected = KNOWN[name][1] if name in KNOWN else 0.0
    for i, (a, b) in enumerate(zip(ours, theirs)):
        err = _relative(a, b)
        assert err <= 1e-13 + 2 * expected and (expected == 0 or err >= expected / 2), \
            f"{name} output {k}, input {i}: verify {a.ravel()[:4]} vs torch {b.ravel()[:4]} (relative {err:.3g})"
    return "gradient"


def compare_torch_mask(op, args, kwargs, k, name):
    """Check bool output ``k`` of ``op``: "mask" when verify's value of it is torch's, read through the gradient
    of sum(w * where(mask, a, b)) in a and b (w where the mask holds, 0 elsewhere; the op's float inputs are
    inputs too, gradient 0 in both), or "refused" (an ImportFailure)."""
    s = TorchCall(op, args, kwargs)
    xs = s.inputs()
    mask = s.call(op, *xs)[k]
    w = _weights(mask.shape, k)
    a = (w + 0.375).detach().clone().requires_grad_(True)
    b = (0.625 - w).detach().clone().requires_grad_(True)

    def loss(*t):
        return (w * torch.where(s.call(op, *t[:-2])[k], t[-2], t[-1])).sum()
    ours = _import(loss, xs + [a, b], name, k)
    if ours is None:
        return "refused"
    for i, (u, v) in enumerate(zip(ours, _torch_grad(loss, xs + [a, b]))):
        assert np.array_equal(u, v), f"{name} output {k}, input {i}: verify {u.ravel()} vs torch {v.ravel()}"
    return "mask"


def compare_torch_created(op, args, kwargs, k, name):
    """Check float output ``k`` of an op with no real input (a creation op): used as a value it is refused when
    its values are undefined (empty) or has gradient 0, and overwritten in place (``copy_``) it imports with
    torch's shape, value and gradient."""
    assert compare_torch_output(op, args, kwargs, k, name) in ("refused", "zero")
    shape = _outputs(op(*args, **kwargs))[k].shape
    w = _weights(shape, k)

    def loss(x):
        return (w * _outputs(op(*args, **kwargs))[k].copy_(x)).sum()
    x = (_weights(shape, k + 1) + 0.125).requires_grad_(True)
    imp = verify.from_torch(loss, x.detach())
    res = imp.grad()
    assert float(_real_floats(res.values[0])) == float(loss(x.detach())), f"{name} output {k}: value"
    ours = _real_floats(res.gradient[0])
    assert ours.shape == tuple(shape) and np.array_equal(ours, _torch_grad(loss, [x])[0]), \
        f"{name} output {k}: verify {ours.ravel()} vs torch {w.ravel()}"
    return "created"


@pytest.mark.parametrize("name", sorted(vtorch.ATEN))
def test_every_torch_op_output(name):
    sample = torch_sample(name)
    assert sample is not None, f"no sample for aten.{name}: add one to SAMPLES in {__file__}"
    op, args, kwargs = sample
    outs = _outputs(op(*args, **kwargs))
    floats = [k for k, o in enumerate(outs) if isinstance(o, torch.Tensor) and o.is_floating_point()]
    masks = [k for k, o in enumerate(outs) if isinstance(o, torch.Tensor) and o.dtype == torch.bool]
    real_inputs = any(isinstance(a, torch.Tensor) and a.dtype == D for a in _leaves((args, kwargs)))
    if not floats:
        assert name.split(".")[0] in BOOLEAN and masks, f"aten.{name} has no float output"
    for k in masks:         # a predicate must import; a random mask (dropout's) may be refused
        result = compare_torch_mask(op, args, kwargs, k, name)
        assert result == "mask" or name.split(".")[0] not in BOOLEAN, f"aten.{name}: the predicate is refused"
    for k in floats:
        if real_inputs:
            compare_torch_output(op, args, kwargs, k, name)
        else:
            compare_torch_created(op, args, kwargs, k, name)


def _leaves(tree):
    from torch.utils import _pytree as pytree
    return pytree.tree_leaves(tree)


BOOLEAN = {"eq", "ne", "gt", "ge", "lt", "le", "logical_and", "logical_or", "logical_not", "bitwise_and",
           "bitwise_or", "bitwise_not", "isnan", "isinf", "isposinf", "isneginf", "isfinite"}


def test_the_stopped_statistics_are_refused_not_differentiated():
    # issue 16: verify used to differentiate native_layer_norm's mean and rstd ([0.484, 0.371, 0.145]) where
    # torch treats them as constants ([0, 1e-16, 2e-16])
    def f(x):
        y, mean, rstd = torch.native_layer_norm(x, (3,), None, None, 0.5)
        return y.sum() + mean.sum() + rstd.sum()
    x = _t([[1, 2, 4]])
    with pytest.raises(verify.InputError, match="mean output has no gradient in torch"):
        verify.from_torch(f, x)
    for k in (1, 2):
        assert compare_torch_output(aten.native_layer_norm.default, (x, [3], None, None, 0.5), {}, k,
                                    "native_layer_norm.default") == "refused"
    assert compare_torch_output(aten.native_layer_norm.default, (x, [3], None, None, 0.5), {}, 0,
                                "native_layer_norm.default") == "gradient"


# ------------------------------------------------------------------------------------------------- JAX

def _jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def jax_samples():
    """{primitive name: (function, args)}: each function's jaxpr holds the primitive; its float arguments
    are the inputs differentiated."""
    jax = _jax()
    jnp, lax = jax.numpy, jax.lax
    x, y, pos = (jnp.asarray(t.numpy()) for t in (X, Y, POS))
    x4 = jnp.asarray(X4.numpy())

    @jax.custom_vjp
    def cube(t):
        return t * t * t

    def cube_fwd(t):
        return cube(t), t

    def cube_bwd(t, g):
        return (3 * t * t * g,)
    cube.defvjp(cube_fwd, cube_bwd)

    @jax.custom_jvp
    def soft(t):
        return jnp.log1p(jnp.exp(t))

    @soft.defjvp
    def soft_jvp(p, tg):
        return soft(p[0]), jax.nn.sigmoid(p[0]) * tg[0]

    def pool(t, op, init):
        return lax.reduce_window(t, init, op, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    labels = jnp.array([2, 0])
    return {
        "abs": (jnp.abs, (x,)), "add": (jnp.add, (x, y)), "sub": (jnp.subtract, (x, y)),
        "mul": (jnp.multiply, (x, y)), "div": (jnp.divide, (x, pos)), "neg": (jnp.negative, (x,)),
        "exp": (jnp.exp, (x,)), "log": (jnp.log, (pos,)), "sqrt": (jnp.sqrt, (pos,)), "tanh": (jnp.tanh, (x,)),
        "erf": (jax.scipy.special.erf, (x,)), "erfc": (jax.scipy.special.erfc, (x,)), "sin": (jnp.sin, (x,)),
        "cos": (jnp.cos, (x,)), "logistic": (jax.nn.sigmoid, (x,)), "rsqrt": (lax.rsqrt, (pos,)),
        "log1p": (jnp.log1p, (pos,)), "expm1": (jnp.expm1, (x,)), "square": (jnp.square, (x,)),
        "integer_pow": (lambda t: t ** 3, (x,)), "pow": (lambda t: lax.pow(t, 2.0), (pos,)),
        "add_any": (jax.grad(lambda t: jnp.sum(jnp.sin(t) * t)), (x,)),
        "copy": (jnp.copy, (x,)), "optimization_barrier": (lambda a, b: lax.optimization_barrier((a, b)), (x, y)),
        "max": (jnp.maximum, (x, y)), "min": (jnp.minimum, (x, y)), "sign": (jnp.sign, (x,)),
        "clamp": (lambda t: lax.clamp(-0.5, t, 0.5), (x,)),
        "gt": (lambda a, b: jnp.where(a > b, a, b), (x, y)), "ge": (lambda a, b: jnp.where(a >= b, a, b), (x, y)),
        "lt": (lambda a, b: jnp.where(a < b, a, b), (x, y)), "le": (lambda a, b: jnp.where(a <= b, a, b), (x, y)),
        "eq": (lambda a, b: jnp.where(a == b, a, b), (x, y)), "ne": (lambda a, b: jnp.where(a != b, a, b), (x, y)),
        "and": (lambda a, b: jnp.where((a > 0) & (b > 0), a, b), (x, y)),
        "or": (lambda a, b: jnp.where((a > 0) | (b > 0), a, b), (x, y)),
        "not": (lambda a, b: jnp.where(~(a > 0), a, b), (x, y)),
        "is_finite": (lambda a, b: jnp.where(jnp.isfinite(a), a, b), (x, y)),
        "select_n": (lambda a, b: lax.select_n(a > b, a, b), (x, y)),
        "convert_element_type": (lambda t: t.astype(jnp.float32).astype(jnp.float64), (x,)),
        "stop_gradient": (jax.nn.log_softmax, (x,)),
        "broadcast_in_dim": (lambda t: jnp.broadcast_to(t, (2, 2, 3)), (x,)),
        "reshape": (lambda t: t.reshape(3, 2), (x,)), "squeeze": (lambda t: jnp.squeeze(t[:, None]), (x,)),
        "transpose": (jnp.transpose, (x,)),
        "slice": (lambda t: t[:, 1:], (x,)), "dynamic_slice": (lambda t: lax.dynamic_slice(t, (0, 1), (2, 2)), (x,)),
        "concatenate": (lambda a, b: jnp.concatenate([a, b], 1), (x, y)),
        "iota": (lambda t: t * jnp.arange(3.0), (x,)), "stack": (lambda a, b: jnp.stack([a, b]), (x, y)),
        "pad": (lambda t: lax.pad(t, 0.5, ((1, 0, 0), (0, 2, 0))), (x,)),
        "split": (lambda t: jnp.split(t, [1], axis=1), (x,)), "rev": (lambda t: jnp.flip(t, 1), (x,)),
        "tile": (lambda t: jnp.tile(t, (2, 1)), (x,)),
        "gather": (lambda t: t[jnp.arange(2), labels], (x,)),
        "reduce_sum": (lambda t: jnp.sum(t, 1), (x,)), "reduce_max": (lambda t: jnp.max(t, 1), (x,)),
        "reduce_min": (lambda t: jnp.min(t, 1), (x,)),
        "dot_general": (jnp.matmul, (x, y.T)),
        "conv_general_dilated": (lambda a, w: lax.conv(a, w, (1, 1), "VALID"), (x4, jnp.asarray(W_CONV.numpy()))),
        "reduce_window_max": (lambda t: pool(t, lax.max, -jnp.inf), (x4,)),
        "reduce_window_sum": (lambda t: pool(t, lax.add, 0.0), (x4,)),
        "sort": (lambda t: jnp.sort(t, axis=1), (x,)),
        "argmax": (lambda t: t[jnp.arange(2), jnp.argmax(t, 1)], (x,)),
        "argmin": (lambda t: t[jnp.arange(2), jnp.argmin(t, 1)], (x,)),
        "jit": (jax.jit(lambda a, b: jnp.sin(a) * b), (x, y)),
        "custom_jvp_call": (lambda t: jax.nn.relu(t) + soft(t), (x,)),
        "custom_vjp_call": (cube, (x,)),
        # control flow: scan unrolled, cond a selection, a while_loop on reals refused
        "scan": (lambda a, b: lax.scan(lambda c, r: (jnp.sin(c) * r, c * r), a[0], b)[1], (x, y)),
        "cond": (lambda a, b: lax.cond(a[0, 0] > b[0, 0], lambda u: u * 2, lambda u: jnp.sin(u), a), (x, y)),
        "while": (lambda t: lax.while_loop(lambda c: c.sum() < 10.0, lambda c: c * 2 + 1, t), (x,)),
        "device_put": (lambda t: jax.device_put(t) * t, (x,)),
        "reduce_precision": (lambda t: lax.reduce_precision(t, exponent_bits=11, mantissa_bits=52) * t, (x,)),
        "dynamic_update_slice": (lambda a, b: lax.dynamic_update_slice(a, b[:1, :2], (1, 1)), (x, y)),
        "reduce": (lambda t: lax.reduce(t, 3.0, lax.add, (1,)), (x,)),
        "reduce_window_min": (lambda t: lax.reduce_window(t, jnp.inf, lax.min, (1, 2), (1, 1), ((0, 0), (1, 0))),
                              (x,)),
        "reduce_window": (lambda t: lax.reduce_window(t, 1.0, lax.mul, (1, 2), (1, 1), "VALID"), (x,)),
        # JAX's operator set (issue 17)
        "atan": (jnp.arctan, (x,)), "asin": (jnp.arcsin, (x / 2,)), "acos": (jnp.arccos, (x / 2,)),
        "atanh": (jnp.arctanh, (x / 2,)), "asinh": (jnp.arcsinh, (x,)), "acosh": (jnp.arccosh, (pos + 1,)),
        "sinh": (jnp.sinh, (x,)), "cosh": (jnp.cosh, (x,)), "tan": (jnp.tan, (x,)), "cbrt": (jnp.cbrt, (x,)),
        "atan2": (jnp.arctan2, (x, y)), "rem": (lambda a, b: lax.rem(a, b), (x, pos)),
        "lgamma": (jax.scipy.special.gammaln, (pos,)), "digamma": (jax.scipy.special.digamma, (pos,)),
        "polygamma": (lambda t: jax.scipy.special.polygamma(1, t), (pos,)),
        "erf_inv": (jax.scipy.special.erfinv, (x / 2,)),
        "bessel_i0e": (jax.scipy.special.i0e, (x,)), "bessel_i1e": (jax.scipy.special.i1e, (x,)),
        "floor": (lambda t: jnp.floor(t) * t, (x,)), "ceil": (lambda t: jnp.ceil(t) * t, (x,)),
        "round": (lambda t: lax.round(t, lax.RoundingMethod.AWAY_FROM_ZERO) * t + jnp.round(t * 2), (x,)),
        "nextafter": (lambda t: jnp.nextafter(t, 3.0), (x,)),
        "bitcast_convert_type": (lambda t: lax.bitcast_convert_type(lax.bitcast_convert_type(t, jnp.int64),
                                                                    jnp.float64), (x,)),
        "igamma": (lambda t: jax.scipy.special.gammainc(t, 2.0), (pos,)),
        "igammac": (lambda t: jax.scipy.special.gammaincc(t, 2.0), (pos,)),
        "igamma_grad_a": (lambda t: lax.igamma_grad_a(t, pos), (pos,)),
        "regularized_incomplete_beta": (lambda t: jax.scipy.special.betainc(t, 2.0, 0.5), (pos,)),
        "zeta": (lambda t: jax.scipy.special.zeta(t + 1.5, 2.0), (pos,)),
        "cumsum": (lambda t: jnp.cumsum(t, 1), (x,)), "cumprod": (lambda t: jnp.cumprod(t, 0), (x,)),
        "cummax": (lambda t: lax.cummax(t, 1, reverse=True), (x,)), "cummin": (lambda t: lax.cummin(t, 1), (x,)),
        "cumlogsumexp": (lambda t: lax.cumlogsumexp(t, 1), (x,)), "reduce_prod": (lambda t: jnp.prod(t, 1), (x,)),
        "top_k": (lambda t: lax.top_k(t, 2), (x,)), "approx_top_k": (lambda t: lax.approx_min_k(t, 2), (x,)),
        "scatter": (lambda a, b: a.at[jnp.array([1, 0])].set(b[0, :3]), (x, y)),
        "scatter-add": (lambda a, b: a.at[jnp.array([1, 1])].add(b[0, :3]), (x, y)),
        "scatter-mul": (lambda a, b: a.at[jnp.array([1, 0])].multiply(b[0, :3]), (x, y)),
        "scatter-max": (lambda a, b: a.at[jnp.array([1, 1])].max(b[0, :3]), (x, y)),
        "scatter-min": (lambda a, b: a.at[jnp.array([0, 0])].min(b[0, :3]), (x, y)),
        "select_and_gather_add": (jax.jacfwd(lambda t: pool(t, lax.max, -jnp.inf)), (x4[:1, :1],)),
        "select_and_scatter_add": (jax.grad(lambda t: jnp.sum(pool(t, lax.max, -jnp.inf) ** 2)), (x4,)),
        "remat2": (jax.checkpoint(lambda t: jnp.sin(t) * t), (x,)),
    }


# names in RULES that JAX 0.10 no longer gives its primitives (older names kept for older jaxprs)
JAX_OLD_NAMES = {"pjit", "closed_call", "core_call", "remat", "checkpoint", "copy_p", "custom_vjp_call_jaxpr",
                 "expand_dims"}


def _primitives(jaxpr):
    out = set()
    for e in jaxpr.eqns:
        out.add(e.primitive.name)
        for p in e.params.values():
            for j in (p if isinstance(p, (list, tuple)) else [p]):
                sub = getattr(j, "jaxpr", j)
                if hasattr(sub, "eqns"):
                    out |= _primitives(sub)
    return out


def compare_jax_output(fn, args, k, name):
    """As compare_torch_output, for output ``k`` of the JAX function ``fn``: "gradient" or "refused"."""
    jax = _jax()
    jnp = jax.numpy
    outs = jax.tree_util.tree_leaves(fn(*args))
    w = jnp.asarray(_weights(tuple(outs[k].shape), k).numpy())
    floats = [i for i, a in enumerate(args) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating)]

    def loss(*xs):
        return jnp.sum(w * jax.tree_util.tree_leaves(fn(*xs))[k])
    try:
        imp = verify.from_jax(loss, *args)
    except VerifyError as e:
        assert isinstance(e, verify.InputError), f"{name} output {k}: {type(e).__name__}: {e}"
        return "refused"
    ours = [_real_floats(g) for g in imp.grad().gradient]
    try:
        theirs = jax.tree_util.tree_leaves(jax.grad(loss, argnums=tuple(floats))(*args))
    except (ValueError, NotImplementedError, TypeError):
        # JAX has no reverse mode for this primitive (a generic window product): forward mode, or else the value
        try:
            theirs = [np.asarray(jax.jacfwd(loss, argnums=i)(*args)) for i in floats]
        except (ValueError, NotImplementedError, TypeError):
            value = _real_floats(imp.grad().values[0])
            assert abs(float(value) - float(loss(*args))) <= 1e-13 * max(1.0, abs(float(value))), name
            return "value"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        b = np.asarray(b)
        scale = float(np.max(np.abs(a))) if a.size else 0.0
        err = float(np.max(np.abs(a - b))) / max(scale, 1e-300) if a.size else 0.0
        assert err <= 1e-13, f"{name} output {k}, input {i}: verify {a.ravel()[:4]} vs JAX {b.ravel()[:4]}"
    return "gradient"


def _jax_rules():
    try:
        from verify.frameworks import jax as vjax
    except ImportError:
        return []
    return sorted(vjax.RULES)


@pytest.mark.parametrize("name", _jax_rules())
def test_every_jax_primitive_output(name):
    jax = _jax()
    if name in JAX_OLD_NAMES:
        return
    samples = jax_samples()
    assert name in samples, f"no sample for the JAX primitive {name!r}: add one to jax_samples in {__file__}"
    fn, args = samples[name]
    assert name in _primitives(jax.make_jaxpr(fn)(*args).jaxpr), f"the sample of {name!r} does not use it"
    outs = jax.tree_util.tree_leaves(fn(*args))
    floats = [k for k, o in enumerate(outs) if jax.numpy.issubdtype(o.dtype, jax.numpy.floating)]
    assert floats, f"{name}: the sample has no float output"
    for k in floats:
        compare_jax_output(fn, args, k, name)


def test_jax_stop_gradient_is_refused_where_the_result_depends_on_it():
    jax = _jax()
    x = jax.numpy.asarray(X.numpy())
    assert compare_jax_output(lambda t: t * jax.lax.stop_gradient(t), (x,), 0, "stop_gradient") == "refused"
    assert compare_jax_output(jax.nn.log_softmax, (x,), 0, "stop_gradient") == "gradient"


def test_stop_gradients_torch_export_would_drop_are_refused():
    x = _t([1, 2, 3])

    def detached_in_place(t):          # torch.export's decomposition removes detach_: verify saw x * x
        y = t * 1
        y.detach_()
        return (t * y).sum()

    class Triple(torch.autograd.Function):        # a backward that is not the forward's derivative
        @staticmethod
        def forward(ctx, t):
            return t * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3

    def custom(t):
        return Triple.apply(t).sum()
    import torch.autograd.function as fn
    apply = fn.Function.__dict__["apply"]
    with pytest.raises(verify.InputError, match="in-place detach"):
        verify.from_torch(detached_in_place, x)
    with pytest.raises(verify.InputError, match="autograd.Function .*Triple.*drops its own backward"):
        verify.from_torch(custom, x)
    assert fn.Function.__dict__["apply"] is apply          # the recording during export is undone


def test_a_buffer_detached_in_place_is_a_constant():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", _t([2, 3, 4]))

        def forward(self, t):
            return (t * self.scale.detach_()).sum()
    imp = verify.from_torch(M(), _t([1, 1, 1]))
    assert [int(v) for v in imp.grad().gradient[0]] == [2, 3, 4]
