"""The kink-hit experiment of Bertoin, Bolte, Gerchinovitz & Pauwels, "Numerical influence of ReLU'(0) on
backpropagation" (NeurIPS 2021), on scikit-learn's digits, with an exact audit of every kink.

For MLPs of depth 1 to 6 (hidden layers of WIDTH units, PyTorch's default initialisation) and many random
initialisations, one epoch of mini-batch SGD (trained with relu'(0) = 0, PyTorch's choice) in float16, float32
and float64 (torch on CPU, one thread).  On every mini-batch, at the current parameters, backpropagation is
computed with relu'(0) = 0 and with relu'(0) = 1 and the two outputs compared bit for bit.  They can differ only
where a pre-activation is exactly 0.0 in the float forward pass (a *float kink*); when no pre-activation is 0.0
the two backward passes perform identical operations on identical values, so the second one is run only when
the forward pass met a float kink.  An initialisation *differs* when the outputs differ on some mini-batch of
the epoch; we count initialisations (Bertoin et al.'s statistic) and mini-batches.

The audit: floats are dyadic rationals, so the pre-activations of the network at the float parameters on the
float batch have exact rational values (``exact_mlp.exact_kinks``, integer matrix products).  For every
mini-batch with a float kink we decide whether the network is *exactly* at a kink there (some exact
pre-activation is 0) or only in floating point (the exact value is nonzero, rounding made it 0.0).  Every
mini-batch of the first AUDIT initialisations (all of them with --full) is audited too, with or without a float
kink, which explains the float64 row: no float kink, and no exact kink either.

The data set differs from the paper's (MNIST, 60000 images of 784 pixels; here digits, 1797 images of 8 x 8
pixels, values k/16, exact in every float type), and so do the network sizes, mini-batch counts and hardware
(CPU here): their published fractions are printed beside ours for orientation, not as a target.

Needs scikit-learn (the data ships with it) and torch: ``pip install -e '.[paper]'``.
"""
import os

from ..errors import InputError
from .common import campaign, figure, md_table, save_figure, write_json, write_text
from .digits import digits
from .digits import missing as digits_missing

PRECISIONS = ("float16", "float32", "float64")
DEPTHS = (1, 2, 3, 4, 5, 6)
WIDTH = 64
BATCH = 64
LR = 0.05
SCALES = {"default": {"inits": 8, "audit": 1}, "full": {"inits": 1000, "audit": 20}}
# Bertoin et al. (NeurIPS 2021), MNIST: initialisations (of 1000) whose two backprop outputs differ, at depth
# 1 and depth 6 (the values the issue quotes; intermediate depths are not reproduced here)
PAPER = {"float16": {1: 871, 6: 1000}, "float32": {1: 54, 6: 697}, "float64": {1: 0, 6: 0}}
PAPER_N = 1000


def missing():
    """None when scikit-learn and torch import, else what to install."""
    return digits_missing("the kink-hit experiment")


def data():
    """(X, y): digits, X = pixels / 16 (exact dyadic values), as float64 numpy arrays."""
    return digits()


def warm():
    """Worker warm-up: one torch thread per process, data loaded once."""
    import torch
    torch.set_num_threads(1)
    data()


def _relu_one():
    """relu with relu'(0) = 1 (PyTorch's torch.relu has relu'(0) = 0)."""
    import torch

    class ReluOne(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return torch.relu(z)

        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            return g * (z >= 0).to(g.dtype)
    return ReluOne.apply


def one_epoch(seed, depth, precision, audit=False):
    """Train one epoch; return counts for this (initialisation, depth, precision)."""
    import torch

    from .exact_mlp import exact_kinks
    torch.set_num_threads(1)
    dtype = getattr(torch, precision)
    X, y = data()
    torch.manual_seed(seed)                              # the initialisation: PyTorch's default for nn.Linear
    sizes = [X.shape[1]] + [WIDTH] * depth + [10]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layer = torch.nn.Linear(a, b)
        params += [layer.weight.detach().to(dtype).requires_grad_(), layer.bias.detach().to(dtype).requires_grad_()]
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed + 1))
    Xt, yt = torch.tensor(X, dtype=dtype), torch.tensor(y)
    relu1 = _relu_one()
    out = {"batches": 0, "float_kink_batches": 0, "float_kinks": 0, "differing_batches": 0,
           "exact_kink_batches": 0, "float_only_batches": 0, "audited_batches": 0, "audited_exact_kink_batches": 0,
           "exact_kink_without_float_kink_batches": 0, "nonfinite": False}

    def forward(xb, yb, relu):
        h, zs = xb, []
        for i in range(depth):
            z = torch.addmm(params[2 * i + 1], h, params[2 * i].t())
            zs.append(z)
            h = relu(z)
        logits = torch.addmm(params[-1], h, params[-2].t())
        return torch.nn.functional.cross_entropy(logits, yb), zs

    for start in range(0, len(X), BATCH):
        idx = order[start:start + BATCH]
        xb, yb = Xt[idx], yt[idx]
        loss, zs = forward(xb, yb, torch.relu)
        g0 = torch.autograd.grad(loss, params)
        if not torch.isfinite(loss):
            out["nonfinite"] = True
            break
        out["batches"] += 1
        nf = sum(int((z == 0).sum()) for z in zs)
        exact = None
        if nf or audit:
            ws = [params[2 * i].detach().numpy() for i in range(depth + 1)]
            bs = [params[2 * i + 1].detach().numpy() for i in range(depth + 1)]
            exact = sum(exact_kinks(ws, bs, xb.numpy()))
        if nf:
            out["float_kink_batches"] += 1
            out["float_kinks"] += nf
            loss1, _ = forward(xb, yb, relu1)
            g1 = torch.autograd.grad(loss1, params)
            out["differing_batches"] += any(not torch.equal(a, b) for a, b in zip(g0, g1))
            out["exact_kink_batches" if exact else "float_only_batches"] += 1
        if audit:
            out["audited_batches"] += 1
            out["audited_exact_kink_batches"] += bool(exact)
            out["exact_kink_without_float_kink_batches"] += bool(exact) and not nf
        with torch.no_grad():
            for p, g in zip(params, g0):
                p -= LR * g
    return out


def run_task(task):
    """Every depth and precision for one initialisation (what a campaign worker runs)."""
    res = []
    for precision in PRECISIONS:
        for depth in DEPTHS:
            r = one_epoch(task["seed"], depth, precision, audit=task["audit"])
            r.update({"precision": precision, "depth": depth, "seed": task["seed"]})
            res.append(r)
    return {"index": task["index"], "runs": res}


def summarise(runs):
    rows = []
    for precision in PRECISIONS:
        for depth in DEPTHS:
            rs = [r for r in runs if r["precision"] == precision and r["depth"] == depth]
            aud = [r for r in rs if r["audited_batches"]]
            rows.append({
                "precision": precision, "depth": depth, "inits": len(rs),
                "differing_inits": sum(1 for r in rs if r["differing_batches"]),
                "float_kink_inits": sum(1 for r in rs if r["float_kink_batches"]),
                "batches": sum(r["batches"] for r in rs),
                "float_kink_batches": sum(r["float_kink_batches"] for r in rs),
                "differing_batches": sum(r["differing_batches"] for r in rs),
                "exact_kink_batches": sum(r["exact_kink_batches"] for r in rs),
                "float_only_batches": sum(r["float_only_batches"] for r in rs),
                "audited_inits": len(aud), "audited_batches": sum(r["audited_batches"] for r in rs),
                "audited_exact_kink_batches": sum(r["audited_exact_kink_batches"] for r in rs),
                "exact_kink_without_float_kink_batches": sum(r["exact_kink_without_float_kink_batches"] for r in rs),
                "nonfinite": sum(1 for r in rs if r["nonfinite"]),
                "paper": (f"{PAPER[precision][depth]}/{PAPER_N}" if depth in PAPER[precision] else "-")})
    return rows


def table_md(rows, scale):
    head = ["precision", "depth", "initialisations differing (ours, digits)", "paper (MNIST)",
            "mini-batches with a float kink / all", "differing mini-batches", "... exactly at a kink",
            "... only a float kink", "audited mini-batches: exact kinks (without a float kink)"]
    body = [[r["precision"], r["depth"], f"{r['differing_inits']}/{r['inits']}", r["paper"],
             f"{r['float_kink_batches']}/{r['batches']}", r["differing_batches"], r["exact_kink_batches"],
             r["float_only_batches"],
             f"{r['audited_exact_kink_batches']}/{r['audited_batches']} ({r['exact_kink_without_float_kink_batches']})"]
            for r in rows]
    return "\n".join([
        "# Kink hits: relu'(0) = 0 vs relu'(0) = 1 in backpropagation (Bertoin, Bolte, Gerchinovitz, Pauwels 2021)",
        "", f"Digits (scikit-learn, 1797 images 8x8, pixels/16), MLPs with depth hidden layers of {WIDTH} units, "
        f"one epoch of SGD (batch {BATCH}, step {LR}, relu'(0) = 0), {scale['inits']} initialisations per depth and "
        f"precision; every mini-batch of the first {scale['audit']} initialisations audited exactly.  The paper's "
        "column is their MNIST result (1000 initialisations, depth 1 and 6 only): a different data set, "
        "different sizes and hardware.", "", md_table(head, body),
        "A float kink is a pre-activation equal to 0.0 in the float forward pass; an exact kink, a pre-activation "
        "whose exact value (the network in real arithmetic at the float parameters, on the float batch) is 0.  "
        "Differing mini-batches are counted among those with a float kink (elsewhere the two backward passes are "
        "identical operations on identical values)."]) + "\n"


def draw(rows, path):
    fig, axes = figure(1, 2, (14, 5))
    colours = {"float16": "tab:red", "float32": "tab:blue", "float64": "tab:green"}
    ax = axes[0][0]
    for p in PRECISIONS:
        rs = [r for r in rows if r["precision"] == p]
        ax.plot([r["depth"] for r in rs], [r["differing_inits"] / max(r["inits"], 1) for r in rs],
                {"float16": "o-", "float32": "^-", "float64": "v--"}[p], color=colours[p], label=f"{p}, digits (ours)")
        ds = sorted(PAPER[p])
        ax.plot(ds, [PAPER[p][d] / PAPER_N for d in ds], "s", color=colours[p], alpha=0.6, mfc="white", ms=8,
                label=f"{p}, MNIST (Bertoin et al.; depths 1 and 6 only)")
    ax.set_xlabel("depth (hidden layers)")
    ax.set_ylabel("fraction of initialisations where the two backprops differ")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("relu'(0) = 0 vs 1: initialisations with some differing mini-batch (one epoch)", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[0][1]
    labels, ex, fo, aud = [], [], [], []
    for r in rows:
        labels.append(f"{r['precision'][5:]}/{r['depth']}")
        ex.append(r["exact_kink_batches"])
        fo.append(r["float_only_batches"])
        aud.append(r["exact_kink_without_float_kink_batches"])
    xs = range(len(rows))
    ax.bar(xs, ex, color="tab:purple", label="float kink, and exactly at a kink (exact audit)")
    ax.bar(xs, fo, bottom=ex, color="tab:orange", label="float kink only (exact pre-activations nonzero)")
    ax.bar(xs, aud, bottom=[a + b for a, b in zip(ex, fo)], color="tab:gray",
           label="exact kink missed by the float run (audited mini-batches)")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_xlabel("precision (float16 / float32 / float64) / depth")
    ax.set_ylabel("mini-batches (all initialisations)")
    ax.set_title("mini-batches meeting a kink: exact or only in floating point", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle("Kink hits in backpropagation (digits, CPU torch) with an exact audit of the float parameters",
                 fontsize=11)
    return save_figure(fig, path)


def run(out_dir, progress=None, full=False, workers=None, dask=None, scale=None):
    say = progress or (lambda m: None)
    why = missing()
    if why:
        say(f"kinkhit: skipped: {why}")
        return {"rows": [{"claim": "kink-hit experiment (Bertoin et al. 2021)", "paper": "-", "ours": why,
                          "verdict": "SKIPPED"}], "ok": True, "skipped": why, "figure": None, "figures": [],
                "certificates": [], "out_dir": out_dir}
    sc = scale or SCALES["full" if full else "default"]
    if sc["inits"] < 1:
        raise InputError(f"inits={sc['inits']!r} must be at least 1")
    os.makedirs(out_dir, exist_ok=True)
    tasks = [{"index": i, "seed": i, "audit": i < sc["audit"]} for i in range(sc["inits"])]
    say(f"kinkhit: {sc['inits']} initialisations x {len(DEPTHS)} depths x {len(PRECISIONS)} precisions, one epoch "
        f"each; exact audit of every mini-batch of {min(sc['audit'], sc['inits'])} initialisation(s)")
    res = campaign(run_task, tasks, workers, dask, progress, unit="initialisations",
                   counts=("epochs", "epochs with a float kink"), warm=warm,
                   count=lambda r: (len(r["runs"]), sum(1 for x in r["runs"] if x["float_kink_batches"])))
    runs = [x for r in res for x in r["runs"]]
    rows = summarise(runs)
    fig = draw(rows, os.path.join(out_dir, "figure.png"))
    write_text(table_md(rows, sc), os.path.join(out_dir, "table.md"))
    table_rows = []
    for p in PRECISIONS:
        rs = [r for r in rows if r["precision"] == p]
        d1, d6 = rs[0], rs[-1]
        fk = sum(r["float_kink_batches"] for r in rs)
        table_rows.append({
            "claim": f"{p}: inits where relu'(0)=0 and =1 backprops differ, depth 1 -> 6 (another data set)",
            "paper": f"{PAPER[p][1]}/{PAPER_N} -> {PAPER[p][6]}/{PAPER_N} (MNIST)",
            "ours": f"{d1['differing_inits']}/{d1['inits']} -> {d6['differing_inits']}/{d6['inits']} (digits); "
                    f"{fk} mini-batches with a float kink: {sum(r['exact_kink_batches'] for r in rs)} exact, "
                    f"{sum(r['float_only_batches'] for r in rs)} float only",
            "verdict": "MEASURED"})
    f64 = [r for r in rows if r["precision"] == "float64"]
    audited = sum(r["audited_batches"] for r in f64)
    exact64 = sum(r["audited_exact_kink_batches"] for r in f64)
    diff64 = sum(r["differing_inits"] for r in f64)
    table_rows.append({
        "claim": "float64 row explained by the exact audit", "paper": "0 differing (MNIST)",
        "ours": f"{diff64} differing; {sum(r['float_kink_batches'] for r in f64)} float kinks; exact audit of "
                f"{audited} mini-batches: {exact64} exact kinks",
        "verdict": "CONSISTENT" if diff64 == 0 and exact64 == 0 else "MEASURED"})
    write_json({"scale": sc, "width": WIDTH, "batch": BATCH, "lr": LR, "depths": list(DEPTHS),
                "paper": {p: {str(d): v for d, v in PAPER[p].items()} for p in PRECISIONS}, "paper_n": PAPER_N,
                "rows": table_rows, "table": rows, "runs": runs}, os.path.join(out_dir, "results.json"))
    return {"rows": table_rows, "ok": True, "figure": fig, "figures": [fig], "certificates": [], "table": rows,
            "out_dir": out_dir}
