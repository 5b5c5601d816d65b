"""The MaxPool study of Boustany ("On the numerical reliability of nonsmooth autodiff: a MaxPool case study",
TMLR 2024) at laptop scale, with the zones certified at the exact point instead of estimated by a threshold.

A LeNet-style CNN (two 3x3 convolutions with relu and 2x2 max-pool, a linear layer) on scikit-learn's digits,
trained with SGD from PyTorch's default initialisation in float16, float32 and float64 (torch, CPU, one
thread).  At every step, at the current parameters and mini-batch:

- the float measure, Boustany's: backpropagation through torch's max-pool (beta = 0: a tied window's gradient
  to its first maximal element) and through a max-pool whose backward shares a tie evenly (beta = 1, his
  "minimal" Jacobian), compared bit for bit (his notebook compares the sum of the max-norms of the parameter
  gradients' differences against a threshold per precision);
- the audit of the gradient the optimizer uses (``verify.Auditor``, the exact point: floats read as the dyadic
  rationals they are) and its zones (auditing/zones.py): the **bifurcation zone** (the exact selection
  gradient with the max-pool Jacobian beta = 1, or with relu'(0) = 1, differs from the exact one with torch's
  choices: AD depends on the convention over the reals) and the **compensation zone** (a float kink: float
  arithmetic decided a max-pool comparison or a relu sign otherwise than the exact point).

Boustany's published figures (github ryanboustany/MaxPool-numerical, notebooks/volume_estimation_by_architecture
.ipynb, "volume by precision"): VGG11 on CIFAR-10, batch 128, one pass over the 391 mini-batches at the initial
weights (the optimizer's learning rate is 0 there), the share of mini-batches whose gradients differ between
beta = 0 and beta = 1: 16 bits 391/391, 32 bits 216/391, 64 bits 0/391.  **The data, the network and the
method differ**: 8x8 digits and a two-layer CNN here, CIFAR-10 and VGG11 there; a float threshold there, zones
certified at the exact point here.  Their figures are printed beside ours for orientation, not as a target.

Needs scikit-learn (the data ship with it) and torch: ``pip install -e '.[paper]'``.
"""
import os

from ..errors import InputError
from .common import campaign, figure, md_table, save_figure, write_json, write_text
from .digits import digits
from .digits import missing as digits_missing

PRECISIONS = ("float16", "float32", "float64")
LR = 0.1
SCALES = {"default": {"seeds": 1, "steps": 4, "batch": 16}, "full": {"seeds": 6, "steps": 56, "batch": 32}}
PAPER = {"float16": (391, 391), "float32": (216, 391), "float64": (0, 391)}      # VGG11, CIFAR-10, batch 128
# his notebook's thresholds on the sum over parameter tensors of max |gradient(beta 0) - gradient(beta 1)|
THRESHOLDS = {"float16": 1e-3, "float32": 1e-7, "float64": 1e-15}
PAPER_SOURCE = ("Boustany (TMLR 2024), github ryanboustany/MaxPool-numerical, "
                "notebooks/volume_estimation_by_architecture.ipynb, 'volume by precision': VGG11 on CIFAR-10, "
                "batch 128, 391 mini-batches at the initial weights")


def missing():
    """None when scikit-learn and torch import, else what to install."""
    return digits_missing("the MaxPool study")


def data():
    """(X, y): the digits as (N, 1, 8, 8) pixels / 16 (exact dyadic values) and labels, numpy."""
    X, y = digits()
    return X.reshape(-1, 1, 8, 8), y


def warm():
    """Worker warm-up: one torch thread, the data loaded, torch.export's deprecation noise silenced."""
    import warnings

    import torch
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)
    data()


def lenet():
    """The network: conv 3x3 (6 channels), relu, 2x2 max-pool, conv 3x3 (16), relu, 2x2 max-pool, linear 64 ->
    10, cross-entropy; ``model.split = True`` uses the beta = 1 max-pool (a float computation only)."""
    import torch
    import torch.nn.functional as F

    class SplitPool(torch.autograd.Function):
        """2x2 max-pool whose backward shares a tied window's gradient evenly (Boustany's beta = 1)."""

        @staticmethod
        def forward(ctx, x):
            n, c, h, w = x.shape
            r = x.reshape(n, c, h // 2, 2, w // 2, 2)
            out = r.amax(dim=(3, 5))
            ctx.save_for_backward(r, out)
            return out

        @staticmethod
        def backward(ctx, g):
            r, out = ctx.saved_tensors
            mask = (r == out[:, :, :, None, :, None]).to(g.dtype)
            share = mask / mask.sum(dim=(3, 5), keepdim=True)
            n, c, h, _, w, _ = r.shape
            return (share * g[:, :, :, None, :, None]).reshape(n, c, 2 * h, 2 * w)

    class LeNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 6, 3, padding=1)
            self.conv2 = torch.nn.Conv2d(6, 16, 3, padding=1)
            self.fc = torch.nn.Linear(16 * 2 * 2, 10)
            self.split = False

        def pool(self, x):
            return SplitPool.apply(x) if self.split else F.max_pool2d(x, 2)

        def forward(self, x, labels):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            return F.cross_entropy(self.fc(x.flatten(1)), labels)
    return LeNet()


def _gradients(model, x, y):
    model.zero_grad()
    loss = model(x, y)
    loss.backward()
    return loss, {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def train(seed, precision, steps, batch):
    """SGD from seed ``seed`` in ``precision``: one record per step (the float measure, the audit's verdict,
    kinks, float kinks and zones)."""
    import time

    import torch

    from ..auditing.auditor import Auditor
    from ..auditing.zones import STUDIES, zones
    torch.set_num_threads(1)
    dtype = getattr(torch, precision)
    X, y = data()
    torch.manual_seed(seed)
    model = lenet().to(dtype)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed + 1))
    auditor, out = None, []
    for step in range(steps):
        start = (step * batch) % (len(y) // batch * batch)          # epochs of whole batches
        idx = order[start:start + batch]
        xb, yb = torch.tensor(X[idx.numpy()], dtype=dtype), torch.tensor(y[idx.numpy()])
        model.split = True
        _, beta1 = _gradients(model, xb, yb)
        model.split = False
        loss, beta0 = _gradients(model, xb, yb)         # torch's max-pool: what training uses, audited
        t0 = time.perf_counter()
        auditor = auditor or Auditor(model, xb, yb)
        rep = auditor.audit(xb, yb, gradient=beta0)
        z = zones(rep, STUDIES)
        out.append(step_record(step, loss, beta0, beta1, rep, z, time.perf_counter() - t0, precision))
        with torch.no_grad():
            for n, p in model.named_parameters():
                p -= LR * beta0[n]
    return out


def step_record(step, loss, beta0, beta1, rep, z, seconds, precision):
    zj = z.json()
    by = {c["convention"]: c["outcome"] for c in zj["conventions"]}
    norm = sum(float((beta0[n].double() - beta1[n].double()).abs().max()) for n in beta0)
    return {"step": step, "loss": float(loss.detach()),
            "float_differs": any(not beta0[n].equal(beta1[n]) for n in beta0),
            "float_difference": norm, "threshold_differs": norm > THRESHOLDS[precision],
            "verdict": rep.verdict_word, "exact_kinks": len(rep.exact_kinks),
            "kinked_sites": rep.kinks().kinked_sites, "float_kinks": len(rep.float_kinks),
            "float_kinds": zj["float_kinks"], "bifurcation": zj["bifurcation"], "maxpool": by["max-pool split"],
            "relu": by["relu'(0)=1"], "compensation": zj["compensation"], "seconds": round(seconds, 3)}


def run_task(task):
    """One seed in one precision (what a campaign worker runs)."""
    return {"index": task["index"], "seed": task["seed"], "precision": task["precision"],
            "steps": train(task["seed"], task["precision"], task["steps"], task["batch"])}


def summarise(results):
    """One row per precision: steps, the float measure, the zones, the verdicts."""
    rows = []
    for precision in PRECISIONS:
        steps = [s for r in results if r["precision"] == precision for s in r["steps"]]
        n = len(steps)
        rows.append({
            "precision": precision, "steps": n,
            "float_differs": sum(s["float_differs"] for s in steps),
            "threshold_differs": sum(s["threshold_differs"] for s in steps),
            "bifurcation": sum(s["bifurcation"] is True for s in steps),
            "bifurcation_undecided": sum(s["bifurcation"] is None for s in steps),
            "maxpool_differs": sum(s["maxpool"] == "differs" for s in steps),
            "relu_differs": sum(s["relu"] == "differs" for s in steps),
            "compensation": sum(bool(s["compensation"]) for s in steps),
            "float_kinks": sum(s["float_kinks"] for s in steps),
            "float_ties": sum(s["float_kinds"]["float_tie"] for s in steps),
            "either": sum(s["bifurcation"] is True or bool(s["compensation"]) for s in steps),
            "kinked_sites_mean": round(sum(s["kinked_sites"] for s in steps) / max(n, 1), 1),
            "verdicts": {v: sum(s["verdict"] == v for s in steps) for v in ("PROVED", "REFUTED", "UNDECIDED")},
            "seconds_per_audit": round(sum(s["seconds"] for s in steps) / max(n, 1), 3),
            "paper": f"{PAPER[precision][0]}/{PAPER[precision][1]}"})
    return rows


def _pct(a, n):
    return f"{a}/{n} ({100 * a / n:.0f}%)" if n else "0/0"


def table_md(rows, sc):
    head = ["precision", "steps", "beta 0 / 1 gradients differ: bit for bit", "... beyond Boustany's threshold",
            "Boustany (VGG11, CIFAR-10)", "bifurcation zone (certified)", "... max-pool split", "... relu'(0) = 1",
            "undecided", "compensation zone (certified)", "float kinks (float ties)", "mean kinked sites",
            "verdicts P/R/U"]
    body = [[r["precision"], r["steps"], _pct(r["float_differs"], r["steps"]), _pct(r["threshold_differs"], r["steps"]),
             r["paper"], _pct(r["bifurcation"], r["steps"]), r["maxpool_differs"], r["relu_differs"],
             r["bifurcation_undecided"], _pct(r["compensation"], r["steps"]), f"{r['float_kinks']} ({r['float_ties']})",
             r["kinked_sites_mean"], "/".join(str(r["verdicts"][v]) for v in ("PROVED", "REFUTED", "UNDECIDED"))]
            for r in rows]
    thresholds = ", ".join(f"{THRESHOLDS[p]:g} ({p})" for p in PRECISIONS)
    return "\n".join([
        "# The MaxPool study (Boustany, TMLR 2024) on digits, with certified zones", "",
        f"LeNet-style CNN (conv 3x3 x6, relu, max-pool 2, conv 3x3 x16, relu, max-pool 2, linear) on scikit-learn's "
        f"digits (8x8, pixels/16), SGD (step {LR}, batch {sc['batch']}) from {sc['seeds']} seeded initialisation(s), "
        f"{sc['steps']} steps each, every step audited at its exact point.  The float measure compares "
        "backpropagation through torch's max-pool (beta = 0: a tie's gradient to the first maximal element) and "
        "through one that shares a tie evenly (beta = 1), bit for bit and as Boustany does: the sum over parameter "
        f"tensors of max |difference| beyond {thresholds}.  Boustany's column is his measure on another network "
        f"and data set ({PAPER_SOURCE}): printed for orientation, not as a target.", "", md_table(head, body),
        "Bifurcation zone: the exact selection gradient at the step's exact point changes when the max-pool ties "
        "are split evenly (or relu'(0) = 1): AD depends on the convention over the reals.  Compensation zone: "
        "a float kink, where float arithmetic decided a max-pool comparison or a relu sign otherwise than the "
        "exact point (a float tie: floats see equal values where the exact ones differ).  Both are decided "
        "exactly (undecided: neither proved in nor out).  A step can differ bit for bit without being in either "
        "zone: splitting a tie of equal values reorders the float sums that follow.  Verdicts: the audit of the "
        "gradient the optimizer used (PROVED: the exact selection gradient to float rounding; UNDECIDED: a float "
        "kink makes the agreement possibly a coincidence)."]) + "\n"


def draw(rows, results, path):
    fig, axes = figure(1, 2, (14, 5))
    ax = axes[0][0]
    xs = range(len(rows))
    n = [max(r["steps"], 1) for r in rows]
    series = [("bit for bit (ours, digits CNN)", [r["float_differs"] / k for r, k in zip(rows, n)], "#c7c7c7"),
              ("float measure, Boustany's thresholds (ours)", [r["threshold_differs"] / k for r, k in zip(rows, n)],
               "#1f77b4"),
              ("Boustany's float measure (VGG11, CIFAR-10)", [PAPER[r["precision"]][0] / PAPER[r["precision"]][1]
                                                              for r in rows], "#aec7e8"),
              ("bifurcation zone (certified)", [r["bifurcation"] / k for r, k in zip(rows, n)], "#9467bd"),
              ("compensation zone (certified)", [r["compensation"] / k for r, k in zip(rows, n)], "#ff7f0e")]
    w = 0.16
    for k, (label, vals, colour) in enumerate(series):
        pos = [x + (k - 2) * w for x in xs]
        ax.bar(pos, vals, w, label=label, color=colour)
        for p_, v in zip(pos, vals):
            ax.text(p_, v + 0.01, f"{100 * v:.0f}%", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([r["precision"] for r in rows])
    ax.set_ylim(0, 1.3)
    ax.set_ylabel("share of training steps")
    ax.set_title("steps where the max-pool Jacobian matters: float measure and certified zones", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax = axes[0][1]
    colours = {"float16": "tab:red", "float32": "tab:blue", "float64": "tab:green"}
    for p in PRECISIONS:
        pts = [(s["step"], s["float_kinks"]) for r in results if r["precision"] == p for s in r["steps"]]
        if pts:
            ax.plot([a for a, _ in pts], [b for _, b in pts], "o", ms=4, alpha=0.7, color=colours[p],
                    label=f"{p}: {sum(b for _, b in pts)} float kink(s)")
    ax.set_xlabel("training step (every seed)")
    ax.set_ylabel("float kinks at the step")
    ax.set_title("float kinks (the compensation zone) per audited step", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle("MaxPool study at laptop scale: digits CNN, SGD, float16/32/64, zones certified exactly", fontsize=11)
    return save_figure(fig, path)


def _claims(rows):
    out = []
    for r in rows:
        n = r["steps"]
        out.append({
            "claim": f"{r['precision']}: steps where the max-pool Jacobian (beta 0 vs 1) changes the gradient "
                     "(another network and data set)",
            "paper": f"{r['paper']} mini-batches (VGG11, CIFAR-10, float threshold)",
            "ours": f"float measure {r['threshold_differs']}/{n} (bit for bit {r['float_differs']}/{n}); certified: "
                    f"bifurcation zone {r['bifurcation']}/{n} "
                    f"({r['bifurcation_undecided']} undecided), compensation zone {r['compensation']}/{n} "
                    f"({r['float_kinks']} float kinks)",
            "verdict": "MEASURED"})
    return out


def run(out_dir, progress=None, full=False, workers=None, dask=None, scale=None):
    say = progress or (lambda m: None)
    why = missing()
    if why:
        say(f"maxpool: skipped: {why}")
        return {"rows": [{"claim": "MaxPool study (Boustany 2024)", "paper": "-", "ours": why,
                          "verdict": "SKIPPED"}], "ok": True, "skipped": why, "figure": None, "figures": [],
                "certificates": [], "out_dir": out_dir}
    sc = scale or SCALES["full" if full else "default"]
    for k in ("seeds", "steps", "batch"):
        if sc[k] < 1:
            raise InputError(f"{k}={sc[k]!r} must be at least 1")
    os.makedirs(out_dir, exist_ok=True)
    tasks = [{"index": i, "seed": s, "precision": p, "steps": sc["steps"], "batch": sc["batch"]}
             for i, (s, p) in enumerate((s, p) for s in range(sc["seeds"]) for p in PRECISIONS)]
    say(f"maxpool: {sc['seeds']} seed(s) x {len(PRECISIONS)} precisions x {sc['steps']} SGD steps (batch "
        f"{sc['batch']}), every step audited")
    results = campaign(run_task, tasks, workers, dask, progress, unit="runs", counts=("steps", "steps in a zone"),
                       warm=warm, count=lambda r: (len(r["steps"]), sum(s["bifurcation"] is True or
                                                                        s["compensation"] for s in r["steps"])))
    rows = summarise(results)
    fig = draw(rows, results, os.path.join(out_dir, "figure.png"))
    write_text(table_md(rows, sc), os.path.join(out_dir, "table.md"))
    claims = _claims(rows)
    write_json({"scale": sc, "lr": LR, "paper": {p: list(v) for p, v in PAPER.items()}, "paper_source": PAPER_SOURCE,
                "rows": claims, "table": rows, "runs": results}, os.path.join(out_dir, "results.json"))
    return {"rows": claims, "ok": True, "figure": fig, "figures": [fig], "certificates": [], "table": rows,
            "out_dir": out_dir}
