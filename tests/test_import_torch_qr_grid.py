"""QR (LAPACK's Householder convention) and grid_sample in the torch importer, against live PyTorch (float64, CPU).

grid_sample: on dyadic grids whose pixel coordinates sit on integers, half-integers, the image border and
outside it (every kink of the tent weights, of the border clamp and of round), float64 is exact, so torch's
value and gradients must equal ours exactly; at random points to float64 rounding (tests/import_helpers.py).

QR: see the section below.
"""
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import verify  # noqa: E402
from verify.frameworks import ImportFailure  # noqa: E402
from import_helpers import assert_kinks_explicit, close, exact_equal  # noqa: E402

D = torch.float64


def run_torch(f, args):
    args = [a.detach().clone().requires_grad_(True) for a in args]
    out = f(*args)
    out.backward()
    return out.item(), [a.grad if a.grad is not None else torch.zeros_like(a) for a in args]


def weighted(fn):
    """sum(w * fn(...)) with distinct weights, so that a permutation of the outputs shows in the gradient."""
    def f(*args):
        out = fn(*args)
        w = torch.arange(1., 1. + out.numel(), dtype=D).reshape(out.shape) ** 2
        return (out * w).sum()
    return f


def compare(f, args, exact, what):
    imp = verify.from_torch(f, *args)
    assert_kinks_explicit(imp.program)
    g = verify.grad(imp.program, imp.point, number="exact" if exact else "ball")
    tv, tg = run_torch(f, args)
    check = exact_equal if exact else close
    check(np.array(g.values[0]), np.array(tv), f"{what} value")
    for i, (o, tgrad) in enumerate(zip(g.gradient, tg)):
        check(o, tgrad.numpy(), f"{what} gradient {i}")
    return imp


# ------------------------------------------------------------------------------------------- grid_sample

# sizes whose pixel coordinates are dyadic in the grid's normalised coordinates: size - 1 a power of 2 with
# align_corners (i = (g + 1) (size - 1) / 2), size a power of 2 without (i = ((g + 1) size - 1) / 2)
SIZES = {True: (3, 5, 3), False: (2, 4, 4)}


def normalised(c, size, align):
    """The grid coordinate whose pixel coordinate is c along an axis of ``size`` pixels."""
    return 2 * c / (size - 1) - 1 if align else (2 * c + 1) / size - 1


def kink_grid(sizes, align, n_random):
    """(1, P, 1, ..., nd) grid whose per-axis pixel coordinates run over the integers from -2 to size + 1,
    the half-integers between and a few quarters (the kinks of the tent, of round and of the border clamp, and
    points between): every value on every axis (in shifted cycles), then ``n_random`` random combinations."""
    axes = []
    for size in reversed(sizes):                   # the grid's last axis lists x (the last spatial axis) first
        cs = [k / 2 for k in range(-4, 2 * size + 3)] + [-0.75, 0.25, size - 1.25]
        axes.append([normalised(c, size, align) for c in cs])
    n = max(len(a) for a in axes)
    pts = [[a[(p + 3 * i) % len(a)] for i, a in enumerate(axes)] for p in range(n)]
    rng = np.random.default_rng(len(sizes) * 10 + align)
    pts += [[a[rng.integers(len(a))] for a in axes] for _ in range(n_random)]
    return torch.tensor(pts, dtype=D).reshape((1, len(pts)) + (1,) * (len(sizes) - 1) + (len(sizes),))


def dyadic_input(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-16, 17, shape, generator=gen).to(D) / 8


GRID_CASES = list(itertools.product((2, 3), ("bilinear", "nearest"), ("zeros", "border"), (False, True)))


@pytest.mark.parametrize("nd,mode,padding,align", GRID_CASES)
def test_grid_sample_equals_torch_exactly_at_its_kinks(nd, mode, padding, align):
    sizes = SIZES[align][-nd:]
    x = dyadic_input((1, 2) + sizes, nd)
    grid = kink_grid(sizes, align, 20)

    def fn(x, grid):
        return torch.nn.functional.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=align)
    f = weighted(fn)
    imp = compare(f, [x, grid], True, f"{nd}-d {mode} {padding} align={align}")
    gen = torch.Generator().manual_seed(nd * 100 + align)
    xr = torch.randn(x.shape, generator=gen, dtype=D)
    gr = torch.rand(grid.shape, generator=gen, dtype=D) * 2.6 - 1.3
    g = verify.grad(imp.program, [xr.numpy(), gr.numpy()], number="ball")
    tv, tg = run_torch(f, [xr, gr])
    close(np.array(g.values[0]), np.array(tv), "value at a random point")
    for o, tgrad in zip(g.gradient, tg):
        close(o, tgrad.numpy(), "gradient at a random point")


def test_grid_sample_kink_grid_hits_the_kinks():
    """The kink grids hold integer pixel coordinates inside, on and outside the border, and half-integers."""
    for align in (False, True):
        size = SIZES[align][-1]
        g = kink_grid((size,) * 2, align, 0)[..., 0].reshape(-1)
        c = ((g + 1) * (size - 1) / 2 if align else ((g + 1) * size - 1) / 2).tolist()
        assert {0.0, size - 1.0, -1.0, float(size)} <= set(c) and any(v % 1 == 0.5 for v in c)


@pytest.mark.parametrize("mode,padding,what", [("bicubic", "zeros", "mode='bicubic'"),
                                                ("bilinear", "reflection", "padding_mode='reflection'")])
def test_grid_sample_modes_not_modelled_are_refused_by_name(mode, padding, what):
    x, grid = dyadic_input((1, 1, 3, 3), 1), kink_grid((3, 3), True, 4)
    with pytest.raises(ImportFailure, match=f"grid_sampler_2d.*{what}.*not supported"):
        verify.from_torch(lambda x, g: torch.nn.functional.grid_sample(x, g, mode=mode, padding_mode=padding,
                                                                       align_corners=True).sum(), x, grid)
