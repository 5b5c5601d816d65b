"""The audit's figure: where the model's kinks are, and where its gradient stands against the bound.

Left: per layer, the exact kinks (kinked sites) and the float kinks as bars (log scale: a layer has from none
to hundreds of thousands).  Right: per gradient element, |float - exact| against the bound it is compared
with (log-log), with the bound drawn as the diagonal: an element above it is outside.  Elements whose float
value is the exact value sit on the bottom edge.  ``element_bounds`` is the one place that says which bound
that is.
"""
import numpy as np
from flint import arb

MAX_POINTS = 60000         # elements drawn per figure (all the elements outside the bound, then a sample)
SLACK = 2 ** 10            # the float tolerance of floats.agreement (floats.SLACK; not imported: floats imports
                           # the report, which draws this figure), used until the agreement states its bound


def element_bounds(report, i):
    """The bound |float - exact| of every element of the ``i``-th audited input is compared with, as a float64
    array of its shape: the proved bound the agreement states when it states one (``bound``), else the float
    tolerance the agreement used."""
    a = report.agreement[i]
    bound = getattr(a, "bound", None)
    if bound is not None:
        return np.broadcast_to(np.asarray(bound, dtype=np.float64), _exact_floats(report, i).shape)
    mids = _exact_floats(report, i)
    dtype = np.dtype(report.dtype)
    u = float(np.finfo(dtype).eps) / 2
    scale = float(np.max(np.abs(mids))) if mids.size else 0.0
    return SLACK * u * (np.abs(mids) + scale) + float(np.finfo(dtype).tiny)


def _exact_floats(report, i):
    cache = report.__dict__.setdefault("_exact_floats", {})
    if i not in cache:
        ex = np.asarray(report.exact_gradient[i], dtype=object)
        cache[i] = np.array([float(v.mid()) if isinstance(v, arb) else float(v) for v in ex.ravel().tolist()],
                            dtype=np.float64).reshape(ex.shape)
    return cache[i]


def errors(report, i):
    """(|float - exact|, bound) of every element of the ``i``-th audited input, flattened."""
    ex = _exact_floats(report, i)
    fg = report.float_gradient[i]
    fl = np.zeros(ex.shape) if fg is None else np.asarray(fg, dtype=np.float64).reshape(ex.shape)
    return np.abs(fl - ex).ravel(), element_bounds(report, i).ravel()


def plot(report, path, seed=0):
    """Draw the figure of ``report`` into ``path`` (PNG); returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(14, 6), dpi=110)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.1]})
    _kink_bars(left, report)
    _error_scatter(right, report, np.random.default_rng(seed))
    fig.suptitle(f"{report.verdict_word}: {report.model} ({report.framework}, {report.dtype})", fontsize=12,
                 fontweight="bold")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    return path


def _kink_bars(ax, report):
    agg = report.kinks()
    layers = agg.layers
    if not layers:
        ax.text(0.5, 0.5, "no nonsmooth operation", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    x = np.arange(len(layers))
    exact = np.array([lay.kinked for lay in layers])
    flt = np.array([lay.float_kinks for lay in layers])
    ax.bar(x - 0.2, np.maximum(exact, 0), 0.4, label="exact kinks (sites)", color="#4c72b0")
    ax.bar(x + 0.2, np.maximum(flt, 0), 0.4, label="float kinks", color="#dd5555")
    for xi, e, f in zip(x, exact, flt):
        for v, dx in ((e, -0.2), (f, 0.2)):
            if v:
                ax.text(xi + dx, v, f"{v:,}", ha="center", va="bottom", fontsize=7)
    ax.set_xlim(-0.7, len(layers) - 0.3)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(0, max(10, exact.max(initial=0), flt.max(initial=0)) * 3)
    ax.set_xticks(x)
    ax.set_xticklabels([_short(lay) for lay in layers], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("count (log scale)")
    ax.set_title("kinks per layer")
    ax.legend(fontsize=8, loc="upper left")


def _short(layer):
    from .kinks import short_op, short_source
    o = layer.origin
    src = short_source(o.source).split(":")[-1] if o.source else ""
    return (f"{o.module} " if o.module else "") + short_op(o.op) + (f" :{src}" if src else "")


def _error_scatter(ax, report, rng):
    colors = ["#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd", "#dd8452", "#937860"]
    pts = [(a.name,) + errors(report, i) for i, a in enumerate(report.agreement)]
    pts = [p for p in pts if p[1].size]
    if not pts:
        ax.text(0.5, 0.5, "no gradient", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    total = sum(len(e) for _, e, _ in pts)
    keep = min(1.0, MAX_POINTS / total)
    bmin = min(float(b.min()) for _, _, b in pts)
    bmax = max(float(b.max()) for _, _, b in pts)
    emax = max(float(e.max()) for _, e, _ in pts)
    nonzero = [float(e[e > 0].min()) for _, e, _ in pts if np.any(e > 0)]
    floor = min([bmin] + nonzero) / 30               # where the exact elements are drawn
    size = 14 if total < 1000 else 4
    zeros = outside = drawn = 0
    for rank, i in enumerate(sorted(range(len(pts)), key=lambda i: -len(pts[i][1]))):
        name, err, bound = pts[i]
        out = err > bound
        pick = out | (rng.random(err.size) < keep)
        zeros += int(np.sum(err == 0))
        outside += int(out.sum())
        drawn += int(pick.sum())
        color = colors[rank] if rank < len(colors) else "#999999"
        label = name if rank < len(colors) else ("other inputs" if rank == len(colors) else None)
        ax.scatter(bound[pick], np.where(err[pick] == 0, floor, err[pick]), s=size, alpha=0.6, color=color,
                   label=label, linewidths=0, rasterized=True)
    lo, hi = floor / 3, max(bmax, emax) * 3
    ax.plot([lo, hi], [lo, hi], color="black", lw=1.2, label="the bound: |float - exact| = bound")
    ax.axhline(floor, color="#999999", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)                              # the same range on both axes: the bound is the diagonal
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("bound for the element (what float rounding may change)")
    ax.set_ylabel("|float gradient - exact selection gradient|")
    sample = f"\n{drawn:,} drawn: every element above the bound and a sample of the rest" if drawn < total else ""
    ax.set_title(f"{outside:,} of {total:,} gradient elements above the bound; {zeros:,} exact (dotted line)"
                 + sample, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), markerscale=2, borderaxespad=0)
