"""Sorts of any size, quantiles with a constant q, the margin losses and binary cross-entropy, the chunked
linear_cross_entropy ops: imported and compared with live PyTorch (float64, CPU).

Sorts and the margin losses are piecewise linear: at dyadic points float64 is exact, so torch's value and
gradient must equal ours exactly, at the kinks (ties, hinges at 0) as elsewhere.  The smooth losses are compared
to float64 rounding.  Ties whose order torch does not fix (an unstable sort beyond 16 elements) must be
refused as undecidable; what needs a large sort's switching functions listed (an index set) is an InputError.
"""
import itertools
import math
import random

import numpy as np
import pytest
from flint import fmpq

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import verify  # noqa: E402
from verify.errors import InputError, Undecidable  # noqa: E402
from verify.frameworks import ImportFailure  # noqa: E402
from verify.interpret import orders, tensor as T  # noqa: E402
from verify.program.prims.nonsmooth import perm_rank, perm_unrank  # noqa: E402
from import_helpers import assert_kinks_explicit, close, exact_equal  # noqa: E402

D = torch.float64


def t(x):
    return torch.tensor(x, dtype=D)


def torch_grad(f, args):
    args = [a.detach().clone().requires_grad_(True) for a in args]
    out = f(*args)
    out.backward()
    return out.item(), [a.grad if a.grad is not None else torch.zeros_like(a) for a in args]


def check(f, args, exact):
    """verify's value and gradient of ``f`` at ``args`` against torch's: the gradient exactly (``exact``: a
    piecewise linear function with dyadic weights) or to float64 rounding, the value to float64 rounding (torch
    rounds its sums)."""
    imp = verify.from_torch(f, *args)
    assert_kinks_explicit(imp.program)
    g = verify.grad(imp.program, imp.point, number="exact" if exact else "ball")
    tv, tg = torch_grad(f, args)
    close(np.array(g.values[0]), np.array(tv), "value")
    same = exact_equal if exact else close
    for k, (ours, theirs) in enumerate(zip(g.gradient, tg)):
        same(ours, theirs.numpy(), f"gradient {k}")
    return imp


def weights(n):
    return torch.arange(1., n + 1, dtype=D) ** 2


# ---------------------------------------------------------------------------------------------- sorts

def test_an_8000_element_sort_equals_torch_exactly():
    x = torch.randn(8000, generator=torch.Generator().manual_seed(1), dtype=D)
    imp = check(lambda x: (torch.sort(x).values * weights(8000)).sum(), [x], True)
    (st,) = T.nonsmooth_steps(imp.program, "torch")
    # the site does not list its 31,996,000 switching functions: it certifies 7,999 comparisons
    assert st.moves and isinstance(st.switches[0], orders.PairSwitches) and len(st.switches[0]) == 8000 * 7999 // 2


@pytest.mark.parametrize("descending", [False, True])
def test_large_stable_sorts_at_ties_equal_torch_exactly(descending):
    x = (torch.randn(3, 400, generator=torch.Generator().manual_seed(2), dtype=D) * 4).round() / 4   # many ties
    check(lambda x: (torch.sort(x, dim=1, descending=descending, stable=True).values
                     * weights(1200).reshape(3, 400)).sum(), [x], True)
    check(lambda x: (torch.sort(x.T, dim=0, descending=descending, stable=True).values
                     * weights(1200).reshape(400, 3)).sum(), [x], True)
    with pytest.raises(Undecidable):            # msort is not stable: beyond 16 elements its ties are no rule
        imp = verify.from_torch(lambda x: (torch.msort(x.T) * weights(1200).reshape(400, 3)).sum(), x)
        verify.grad(imp.program, imp.point)
    check(lambda x: (torch.msort(x.T) * weights(1200).reshape(400, 3)).sum(), [x + torch.arange(1200, dtype=D)
                                                                               .reshape(3, 400) / 2 ** 20], True)


def test_topk_of_a_large_vector_equals_torch_exactly():
    x = torch.randn(1000, generator=torch.Generator().manual_seed(3), dtype=D)
    check(lambda x: (torch.topk(x, 7).values * weights(7)).sum() + (torch.topk(x, 3, largest=False).values).sum(),
          [x], True)


def test_forward_and_backward_mode_agree_on_a_large_sort():
    x = torch.randn(2, 500, generator=torch.Generator().manual_seed(4), dtype=D)
    imp = verify.from_torch(lambda x: (torch.sort(x, dim=1).values * weights(1000).reshape(2, 500)).sum(), x)
    fwd = verify.grad(imp.program, imp.point, mode="forward")
    bwd = verify.grad(imp.program, imp.point, mode="backward")
    assert all(a == b for a, b in zip(np.ravel(fwd.gradient[0]), np.ravel(bwd.gradient[0])))


def test_a_tie_in_an_unstable_large_sort_is_undecidable_and_off_ties_it_imports():
    x = torch.arange(300, dtype=D).flip(0)
    f = lambda x: (torch.sort(x).values * weights(300)).sum()  # noqa: E731
    check(f, [x], True)
    x[5] = x[7]
    imp = verify.from_torch(f, x)
    for number in ("exact", "ball"):
        with pytest.raises(Undecidable, match="tied elements"):
            verify.grad(imp.program, imp.point, number=number)


def test_the_index_set_of_a_large_sort_is_refused_as_beyond_enumeration():
    x = torch.arange(300, dtype=D)
    imp = verify.from_torch(lambda x: torch.sort(x, stable=True).values.sum(), x)
    with pytest.raises(InputError, match="too many to enumerate"):
        verify.index_set(imp.program, imp.point)


def test_permutation_ranks_are_lexicographic_and_invertible():
    for n in range(1, 7):
        for r, p in enumerate(itertools.permutations(range(n))):
            assert perm_rank(p) == r and perm_unrank(r, n) == p
    p = list(range(3000))
    random.Random(5).shuffle(p)
    assert perm_unrank(perm_rank(p), 3000) == tuple(p) and perm_rank(range(3000)) == 0
    assert perm_rank(range(2999, -1, -1)) == math.factorial(3000) - 1


# ------------------------------------------------------------------------------------------- quantiles

X = t([[0.5, -1., 2., 0.5, 3.], [1.5, 1.5, -2., 0.25, 1.5], [0., 4., 1., -0.5, 2.]])


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantiles_with_a_constant_q_equal_torch_at_ties(interpolation):
    q = t([0.25, 0.5, 0.6, 1.0])
    check(lambda x: (torch.quantile(x, q, dim=1, interpolation=interpolation) * weights(12).reshape(4, 3)).sum()
          + torch.quantile(x, 0.3, interpolation=interpolation), [X], False)
    check(lambda x: (torch.nanquantile(x, q, dim=0, interpolation=interpolation) * weights(20).reshape(4, 5)).sum(),
          [X], False)


def test_a_quantile_at_random_points_equals_torch():
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(6), dtype=D)
    check(lambda x: (torch.quantile(x, t([0.1, 0.9]), dim=1) * weights(8).reshape(2, 4)).sum(), [x], False)


def test_a_quantile_differentiated_in_q_is_refused():
    with pytest.raises(ImportFailure, match="computes integers from real values"):
        verify.from_torch(lambda x, q: torch.quantile(x, q), X, t(0.3))


def test_a_quantile_at_a_tie_of_more_than_16_elements_is_undecidable():
    x = torch.arange(20, dtype=D)
    x[3] = x[4]
    imp = verify.from_torch(lambda x: torch.quantile(x, 0.2), x)
    with pytest.raises(Undecidable):
        verify.grad(imp.program, imp.point)


# --------------------------------------------------------------------------------------- margin losses

M = t([[0., 1., 0.5, 2.], [2., 1., 3., 2.], [-1., 0., 0., 1.]])      # hinges at exactly 0 below


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multi_margin_loss_equals_torch_exactly_at_its_hinges(reduction):
    y = torch.tensor([1, 0, 3])
    cw = t([0.5, 2., 1., 0.25])
    w = weights(3) if reduction == "none" else 1
    for p, margin, weight in ((1, 1., None), (2, 1., None), (1, 1., cw), (2, 0.5, cw), (1, 2., None)):
        check(lambda x: (F.multi_margin_loss(x, y, p=p, margin=margin, weight=weight, reduction=reduction) * w).sum(),
              [M], False)


def test_multi_margin_loss_hinge_has_torch_backward_not_clamp_convention():
    # z = 1 - x[y] + x[j] = 0 for j = 0: multi_margin_loss_backward gives 0 there, clamp_min would give 1
    imp = check(lambda x: F.multi_margin_loss(x, torch.tensor([1])), [t([[0., 1., -3.]])], False)
    g = verify.grad(imp.program, imp.point)
    assert np.array_equal(np.array(g.gradient[0], dtype=object), np.array([[0, 0, 0]], dtype=object))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multilabel_margin_loss_equals_torch_exactly_with_ended_rows_and_repeats(reduction):
    # rows ended by -1 (torch's own decomposition ignores the end: a wrong value), a repeated label, hinges at 0
    y = torch.tensor([[1, -1, 0, 2], [0, 0, 3, -1], [2, 1, 0, 3]])
    w = weights(3) if reduction == "none" else 1
    check(lambda x: (F.multilabel_margin_loss(x, y, reduction=reduction) * w).sum(), [M], False)
    check(lambda x: F.multilabel_margin_loss(x, torch.tensor([3, 0, -1, 1]), reduction=reduction).sum(), [M[1]],
          False)


def test_margin_losses_at_random_points_equal_torch():
    x = torch.rand(3, 4, generator=torch.Generator().manual_seed(7), dtype=D) * 2
    check(lambda x: F.multi_margin_loss(x, torch.tensor([3, 0, 1]), p=2), [x], False)
    check(lambda x: F.multilabel_margin_loss(x, torch.tensor([[3, 0, -1, 1], [2, -1, 0, 0], [0, 1, 2, 3]])),
          [x], False)


# ------------------------------------------------------------------------------------ binary cross-entropy

P = t([[0.25, 0.5, 0.75], [0.125, 0.875, 0.5]])
Y = t([[0., 1., 0.5], [0.25, 1., 0.]])


def test_binary_cross_entropy_equals_torch_in_input_target_and_weight():
    check(lambda p, y: F.binary_cross_entropy(p, y), [P, Y], False)
    check(lambda p, y: (F.binary_cross_entropy(p, y, weight=t([1., 2., 0.5]), reduction="none") * weights(6)
                        .reshape(2, 3)).sum(), [P, Y], False)
    check(lambda p: F.binary_cross_entropy(p, Y, reduction="sum"), [t([[1e-9, 0.5, 0.999], [0.3, 1e-5, 0.2]])],
          False)


def test_binary_cross_entropy_where_torch_clamps_its_backward_differs_from_the_derivative():
    # torch's backward divides by max(x (1 - x), 1e-12): below that its gradient is not the derivative of the
    # loss it computes, which is what the import returns (the one known difference)
    p, y = t([1e-13]), t([0.25])
    imp = verify.from_torch(lambda p: F.binary_cross_entropy(p, y, reduction="sum"), p)
    ours = verify.grad(imp.program, imp.point, number="ball").gradient[0][0]
    x = fmpq(*(1e-13).as_integer_ratio())
    want = (x - fmpq(1, 4)) / (x * (1 - x))
    assert abs(float(ours.mid()) / float(want) - 1) < 1e-12
    _, tg = torch_grad(lambda p: F.binary_cross_entropy(p, y, reduction="sum"), [p])
    assert abs(float(tg[0][0]) - float(want)) > 0.5 * abs(float(want))


# ------------------------------------------------------------------------------- chunked linear cross-entropy

def _options(chunk=2):
    from torch.nn.modules.linear_cross_entropy_options import LinearCrossEntropyOptions
    return LinearCrossEntropyOptions(batch_chunk_size=chunk)


XS = torch.randn(5, 3, generator=torch.Generator().manual_seed(8), dtype=D)
WS = torch.randn(4, 3, generator=torch.Generator().manual_seed(9), dtype=D)
BS = torch.randn(4, generator=torch.Generator().manual_seed(10), dtype=D)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_chunked_linear_cross_entropy_equals_torch(reduction):
    y = torch.tensor([0, 3, -100, 1, 3])
    w = weights(5) if reduction == "none" else 1
    for cw in (None, t([1., 0.5, 2., 3.])):
        check(lambda x, W, b: (F.linear_cross_entropy(x, W, y, linear_bias=b, weight=cw, reduction=reduction,
                                                      options=_options()) * w).sum(), [XS, WS, BS], False)
    check(lambda x, W: (F.linear_cross_entropy(x, W, torch.tensor([2, 2, 0, 1, 1]), ignore_index=1,
                                               reduction=reduction, options=_options(3)) * w).sum(), [XS, WS], False)
    check(lambda x, W: F.linear_cross_entropy(x, W, torch.tensor(2), reduction=reduction, options=_options()),
          [XS[0], WS], False)


def test_chunked_linear_cross_entropy_with_a_class_weight_it_does_not_differentiate_is_refused():
    with pytest.raises(ImportFailure, match="class weight"):
        verify.from_torch(lambda x, W, c: F.linear_cross_entropy(x, W, torch.tensor([0, 1, 2, 3, 0]), weight=c,
                                                                 options=_options()), XS, WS, t([1., 2., 3., 4.]))


# ---------------------------------------------------------------------------------------- max-pool backward

def test_max_pool_backward_with_constant_indices_is_a_scatter_add_with_no_derivative_in_self():
    x = torch.randn(1, 2, 5, 6, generator=torch.Generator().manual_seed(11), dtype=D)
    out, ind = F.max_pool2d_with_indices(x, 3, 2, padding=1, ceil_mode=True)
    go = torch.randn(out.shape, generator=torch.Generator().manual_seed(12), dtype=D)
    def f(g, s):
        back = torch.ops.aten.max_pool2d_with_indices_backward(g, s, [3, 3], [2, 2], [1, 1], [1, 1], True, ind)
        return (back * weights(60).reshape(x.shape)).sum()
    imp = check(f, [go, x], False)
    assert all(v == 0 for v in np.ravel(verify.grad(imp.program, imp.point).gradient[1]))


XT = t([[[[1., 1., 0., 2., 2., -1.], [0., 1., 1., 2., 0., 2.], [3., 3., -1., 0., 3., 3.]]]])   # tied windows


@pytest.mark.parametrize("kernel, stride, padding, ceil_mode", [(3, 2, 0, True), (2, 1, 1, False), ((2, 3), (1, 2), 0,
                                                                                                    False)])
def test_max_pool_backward_of_a_pool_of_self_equals_torch_exactly_at_ties(kernel, stride, padding, ceil_mode):
    # the OpInfo sample's form: the indices come from max_pool2d_with_indices of self, so the result is the
    # scatter of grad_output at each window's first maximal element, piecewise constant in self
    k2, s2 = (kernel if isinstance(kernel, tuple) else (kernel,) * 2), (stride if isinstance(stride, tuple)
                                                                         else (stride,) * 2)

    def f(s, g):
        out, ind = F.max_pool2d_with_indices(s, kernel, stride, padding, ceil_mode=ceil_mode)
        back = torch.ops.aten.max_pool2d_with_indices_backward(g[..., :out.shape[2], :out.shape[3]], s, k2, s2,
                                                               [padding] * 2, [1, 1], ceil_mode, ind)
        return (back * weights(18).reshape(1, 1, 3, 6)).sum()
    g = t(np.arange(28).reshape(1, 1, 4, 7) / 4 - 3)
    check(f, [XT, g], True)
    x = torch.randn(1, 2, 3, 6, generator=torch.Generator().manual_seed(14), dtype=D)
    check(f, [x, g.expand(1, 2, 4, 7).contiguous()], True)


def test_max_pool_backward_with_the_indices_of_another_tensor_is_refused():
    x = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(13), dtype=D)
    with pytest.raises(ImportFailure, match="indices"):
        verify.from_torch(lambda s, u: torch.ops.aten.max_pool2d_with_indices_backward(
            torch.ones(1, 1, 2, 2, dtype=D), s, [2, 2], [2, 2], [0, 0], [1, 1], False,
            F.max_pool2d_with_indices(u, 2, 2)[1]).sum(), x, x + 1)
