"""The figure of a watch: over the audited steps, the kinked sites per layer (top) and the zones (bottom).

Top: one line per layer with a nonsmooth operation, the exact kinks (kinked sites) at every audited step, and
a red mark where the step had float kinks in that layer.  Bottom: the running count of steps in the
bifurcation zone (proved), in the compensation zone, and undecided, with each step's verdict on a strip
(green PROVED, red REFUTED, grey UNDECIDED).  Drawn from the watch's JSON lines only.
"""
import numpy as np

COLOURS = {"PROVED": "#3a923a", "REFUTED": "#d62728", "UNDECIDED": "#8c8c8c"}


def plot(records, path, title=None):
    """Draw the figure of the JSON lines ``records`` into ``path`` (PNG); returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    records = sorted(records, key=lambda r: r["step"])
    fig = Figure(figsize=(12, 8), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1.4, 1]})
    steps = np.array([r["step"] for r in records])
    _kinks(top, records, steps)
    _zones(bottom, records, steps)
    bottom.set_xlabel("training step")
    fig.suptitle(title or f"verify watch: {len(records)} audited step(s)", fontsize=12, fontweight="bold")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    return path


def _kinks(ax, records, steps):
    n_layers = max((len(r["layers"]) for r in records), default=0)
    drawn = False
    for i in range(n_layers):
        ys = np.array([r["layers"][i]["kinked_sites"] if i < len(r["layers"]) else 0 for r in records])
        fl = np.array([r["layers"][i]["float_kinks"] if i < len(r["layers"]) else 0 for r in records])
        label = next(r["layers"][i]["layer"] for r in records if i < len(r["layers"]))
        line, = ax.plot(steps, ys, "o-", ms=3, lw=1.2, label=f"{label} ({records[0]['layers'][i]['kind']})"
                        if i < len(records[0]["layers"]) else label)
        at = fl > 0
        if at.any():
            ax.plot(steps[at], ys[at], "x", color="#d62728", ms=8, mew=2)
        drawn = True
    if any(r["float_kinks"]["count"] for r in records):
        ax.plot([], [], "x", color="#d62728", ms=8, mew=2, label="float kinks at that step")
    if not drawn:
        ax.text(0.5, 0.5, "no nonsmooth layer", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("exact kinks (kinked sites)")
    ax.set_title("exact kinks per layer", fontsize=10)
    if drawn:
        top = max((lay["kinked_sites"] for r in records for lay in r["layers"]), default=0)
        ax.set_ylim(-0.03 * max(top, 1), max(top, 1) * (1.2 + 0.07 * n_layers))      # room for the legend
        ax.legend(fontsize=7, loc="upper left", ncol=2)
    ax.grid(alpha=0.3)


def _zones(ax, records, steps):
    bif = np.cumsum([r["zones"]["bifurcation"] is True for r in records])
    und = np.cumsum([r["zones"]["bifurcation"] is None for r in records])
    comp = np.cumsum([bool(r["zones"]["compensation"]) for r in records])
    ax.step(steps, bif, where="post", color="#9467bd", lw=2, label="bifurcation zone (proved): gradient depends on "
                                                                     "the kink convention")
    ax.step(steps, comp, where="post", color="#ff7f0e", lw=2, label="compensation zone: float kinks")
    if und[-1:].sum():
        ax.step(steps, und, where="post", color="#8c8c8c", lw=1.5, ls="--", label="bifurcation undecided")
    top = max(1, int(max(bif[-1:].sum(), comp[-1:].sum(), und[-1:].sum())))
    for r in records:
        ax.plot([r["step"]], [-0.08 * top], "s", ms=4, color=COLOURS.get(r["verdict"], "#000000"))
    for v, c in COLOURS.items():
        if any(r["verdict"] == v for r in records):
            ax.plot([], [], "s", ms=4, color=c, label=f"verdict {v}")
    ax.set_ylim(-0.15 * top, top * 1.15 + 0.5)
    ax.set_ylabel("audited steps (running count)")
    ax.set_title("zones over the run", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
