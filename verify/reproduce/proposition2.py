"""Claim 1 and Proposition 2 of Bolte & Pauwels (NeurIPS 2020), certified on the paper's examples and on the
"linear interpolation" picture of a small ReLU network's loss.

Claim 1: along a segment z(t) = x + t (y - x) the pattern the program chooses is constant on the open pieces
of a finite partition 0 = a_0 < ... < a_N = 1.  Proposition 2: for f in the class S,

    f(y) - f(x) = int_0^1 <y - x, AD f(z(t))> dt,

although AD's derivative is wrong at the kinks (it is only wrong on a finite set of t).  For every example
``run`` certifies the partition (``segment_partition``: exact rational or algebraic breakpoints, or balls for
sin) and both sides of the identity (``integral_identity``), writes both certificates (re-validated by the
independent checker), and draws the function along the segment, its AD derivative and the breakpoints.
A program with a jumping branch (``jump``) is not in S: its identity is REFUTED at the jump, as it must be.

The network: a 1 -> 4 -> 4 -> 1 ReLU network on six rational data points, its mean squared loss written as
a scalar program whose inputs are the 33 parameters (``network.prog``), along the segment from a random
initialisation theta0 to parameters theta1 reached by 200 exact gradient steps (the data fitted).  Its second layer's
switching functions are quadratic in t, so most breakpoints are algebraic numbers, certified exactly.
"""
import contextlib
import importlib.resources
import os
import random

from flint import arb, fmpq

from ..certify import integral_certificate, integral_identity, segment_certificate, segment_partition
from ..frontends.text import parse
from ..interpret.ad import grad
from ..rational import fmt_q, parse_point
from .common import figure, md_table, save_certificate, save_figure, write_json, write_text

PROG_FILE = "proposition2.prog"
# (def, from, to): segments of the paper's examples; every one crosses the program's kinks
EXAMPLES = (
    ("relu2", ["-1"], ["1"]),
    ("relu3", ["-1"], ["1"]),
    ("zero", ["-1"], ["1"]),
    ("ident_minus_zero", ["-1"], ["1"]),
    ("sin_shifted", ["-1"], ["1"]),
    ("sort_weighted", ["0", "1", "2"], ["3", "2", "0"]),
    ("jump", ["0"], ["1"]),
)
CONTINUOUS = {"jump": False}
GRID = 240                  # plotting grid of [0, 1]: t = k / GRID

# the network: data (u_i, y_i), widths, initialisation and training
NET_DATA = [(fmpq(-1) + fmpq(2 * i, 5), y) for i, y in
            enumerate([fmpq(1, 2), fmpq(-1, 4), fmpq(-1, 2), fmpq(-1, 4), fmpq(1, 4), fmpq(3, 4)])]
NET_WIDTHS = (4, 4)
NET_SEED = 0
NET_STEPS, NET_LR, NET_BITS = 200, fmpq(1, 2), 10


@contextlib.contextmanager
def program_file():
    res = importlib.resources.files(__package__).joinpath(PROG_FILE)
    with importlib.resources.as_file(res) as path:
        yield str(path)


def load(fn):
    with program_file() as path:
        return parse(path, fn=fn)


# ------------------------------------------------------------------------------------------- network

def mlp_loss_text(data, widths, name="loss"):
    """The mean squared loss (1/2n) sum_i (net(u_i) - y_i)^2 of a scalar-input, scalar-output ReLU network with
    hidden ``widths``, as program text whose inputs are the parameters (w<layer>_<unit>_<input>, b<layer>_<unit>,
    layer by layer) and whose data are literals.  Returns (text, parameter names)."""
    sizes = [1] + list(widths) + [1]
    params = []
    for layer in range(len(sizes) - 1):
        for j in range(sizes[layer + 1]):
            params += [f"w{layer + 1}_{j + 1}_{k + 1}" for k in range(sizes[layer])] + [f"b{layer + 1}_{j + 1}"]
    lines = [f"def {name}({', '.join(params)}):",
             f'    """Mean squared loss of a {"-".join(map(str, sizes))} ReLU network on {len(data)} data points."""']
    squares = []
    for i, (u, y) in enumerate(data):
        h = [fmt_q(u) if u >= 0 else f"({fmt_q(u)})"]
        for layer in range(len(sizes) - 1):
            nxt = []
            for j in range(sizes[layer + 1]):
                s = " + ".join(f"w{layer + 1}_{j + 1}_{k + 1} * {h[k]}" for k in range(sizes[layer]))
                z = f"z{layer + 1}_{j + 1}_s{i + 1}"
                lines.append(f"    {z} = {s} + b{layer + 1}_{j + 1}")
                if layer < len(sizes) - 2:
                    lines.append(f"    a{layer + 1}_{j + 1}_s{i + 1} = relu({z})")
                    nxt.append(f"a{layer + 1}_{j + 1}_s{i + 1}")
                else:
                    nxt.append(z)
            h = nxt
        lines.append(f"    e{i + 1} = {h[0]} - {fmt_q(y) if y >= 0 else '(' + fmt_q(y) + ')'}")
        squares.append(f"e{i + 1} * e{i + 1}")
    lines.append(f"    return ({' + '.join(squares)}) / {2 * len(data)}")
    return "\n".join(lines) + "\n", params


def _round(q, bits):
    """The dyadic rational with ``bits`` fractional bits nearest to q (ties up): exact, platform-free."""
    s = q * 2 ** bits
    return fmpq((s + fmpq(1, 2)).floor(), 2 ** bits)


def network():
    """(program text, Program, theta0, theta1): theta0 random (dyadic, seeded), theta1 after NET_STEPS exact
    gradient steps of size NET_LR, each rounded to NET_BITS fractional bits (deterministic everywhere)."""
    text, params = mlp_loss_text(NET_DATA, NET_WIDTHS)
    P = parse(text)
    rng = random.Random(NET_SEED)
    theta0 = [fmpq(rng.randrange(-16, 17), 16) for _ in params]
    theta = list(theta0)
    for _ in range(NET_STEPS):
        g = grad(P, theta).gradient
        theta = [_round(a - NET_LR * b, NET_BITS) for a, b in zip(theta, g)]
    return text, P, theta0, theta


# ---------------------------------------------------------------------------------------------- certify

def jnum_float(j):
    """A plotting float for a JSON number ("p/q", or {"lo", "hi"} bounds: their midpoint)."""
    if isinstance(j, str):
        return float(parse_point(j)[0])
    return (float(j["lo"]) + float(j["hi"])) / 2


def breakpoint_floats(part):
    return [jnum_float(j) for j in part.json()["breakpoints"]]


def _num(v):
    """A plotting float for an fmpq or arb value (midpoint; floats never enter a certified step)."""
    return float(v) if isinstance(v, fmpq) else float(arb(v).mid())


def curve_samples(P, x, y, ts):
    """[(t, f(z(t)), AD directional derivative <y - x, AD f(z(t))>)] at the rational t's."""
    d = [b - a for a, b in zip(x, y)]
    out = []
    for t in ts:
        z = [a + t * e for a, e in zip(x, d)]
        g = grad(P, z)
        out.append((t, g.values[0], sum((e * gi for e, gi in zip(d, g.gradient)), fmpq(0))
                    if g.exact else sum(arb(e) * arb(gi) for e, gi in zip(d, g.gradient))))
    return out


def certify_example(P, name, x, y, out_dir):
    """Partition + identity for one segment; both certificates written and re-checked.  Returns a record."""
    x, y = parse_point(x), parse_point(y)
    part = segment_partition(P, x, y)
    res = integral_identity(P, x, y)
    seg = save_certificate(segment_certificate(part), os.path.join(out_dir, f"{name}.segment.json"))
    itg = save_certificate(integral_certificate(res), os.path.join(out_dir, f"{name}.integral.json"))
    return {"name": name, "program": P, "x": x, "y": y, "partition": part, "integral": res,
            "certificates": [seg, itg]}


def jnum_text(j):
    """A JSON number for a table: exact "p/q" as it is when short, else its first digits."""
    if isinstance(j, str):
        return j if len(j) <= 16 else f"{float(parse_point(j)[0]):.12g} (exact p/q)"
    return f"[{j['lo'][:14]}, {j['hi'][:14]}]"


def _bp_text(part):
    out = []
    for b, j in zip(part.breakpoints, part.json()["breakpoints"]):
        if isinstance(j, str):
            out.append(j)
        elif b.status == "exact":
            out.append(f"{jnum_float(j):.9f} (algebraic, exact)")
        else:
            out.append(f"{jnum_float(j):.9f} (ball, {b.status})")
    return out


def row_of(rec):
    part, res = rec["partition"], rec["integral"]
    name = rec["name"]
    inner = len(part.breakpoints) - 2
    claim1 = f"Claim 1: {len(part.pieces)} pieces, {inner} inner breakpoint(s)"
    if CONTINUOUS.get(name, True):
        ok = res.verdict.name == "PROVED" and part.complete
        ours = (f"{claim1}; f(y)-f(x) = {jnum_text(res.lhs)}, integral = {jnum_text(res.rhs)}"
                f"{' (exact)' if res.exact else ''}")
        return {"claim": f"Claim 1 + Prop. 2 on {name}", "paper": "f(y) - f(x) = int <y-x, AD f>",
                "ours": ours, "verdict": "PROVED" if ok else res.verdict.name}
    disc = res.discontinuity or {}
    ok = res.verdict.name == "REFUTED" and bool(disc)
    t = disc.get("t")
    ours = f"identity REFUTED: discontinuous at t = {jnum_text(t) if t is not None else '?'} " \
           f"(lhs {jnum_text(res.lhs)}, rhs {jnum_text(res.rhs) if res.rhs is not None else '-'})"
    return {"claim": f"{name} is not in S: Prop. 2 must fail", "paper": "needs f in S (continuous)",
            "ours": ours, "verdict": "PROVED" if ok else "REFUTED"}


# ---------------------------------------------------------------------------------------------- drawing

def broken_polyline(ts, vs, bps):
    """The polyline of (ts, vs) cut at every breakpoint (NaN separators), without the points that lie on a
    breakpoint; and those points apart."""
    xs, ys, at = [], [], []
    for t, v in zip(ts, vs):
        if any(abs(t - b) < 1e-12 for b in bps):
            at.append((t, v))
            continue
        if xs and any(xs[-1] < b < t for b in bps):
            xs.append(float("nan"))
            ys.append(float("nan"))
        xs.append(t)
        ys.append(v)
    return xs, ys, at


def _panel(ax, rec, samples, title, continuous=True):
    part = rec["partition"]
    ts = [float(s[0]) for s in samples]
    fv = [_num(s[1]) for s in samples]
    dv = [_num(s[2]) for s in samples]
    allb = breakpoint_floats(part)
    bps = allb[1:-1]
    if continuous:
        ax.plot(ts, fv, color="tab:blue", lw=2, label="f(x + t(y - x))")
    else:
        fx, fy, fat = broken_polyline(ts, fv, bps)
        ax.plot(fx, fy, color="tab:blue", lw=2, label="f(x + t(y - x))")
        for t, v in fat:
            ax.plot([t], [v], "o", color="tab:blue", ms=5)
    dx, dy, dat = broken_polyline(ts, dv, allb)
    ax.plot(dx, dy, color="tab:orange", lw=1.6, label="AD derivative d/dt along the segment")
    if dat:
        ax.plot([t for t, _ in dat], [v for _, v in dat], "o", color="tab:orange", ms=5, mfc="white",
                label="AD derivative at a breakpoint")
    for i, b in enumerate(bps):
        ax.axvline(b, color="0.55", ls=":", lw=1, label="certified breakpoint" if i == 0 else None)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("t  (z = x + t (y - x))", fontsize=8)
    ax.set_ylabel("value", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6.5, loc="best", framealpha=0.5)


def draw_examples(recs, samples, path):
    fig, axes = figure(2, 4, (16, 7.5))
    for ax, rec in zip([a for row in axes for a in row], recs):
        res = rec["integral"]
        if CONTINUOUS.get(rec["name"], True):
            sub = f"lhs = rhs = {jnum_text(res.lhs) if res.exact else format(_num(res.lhs_value), '.6f')}"
        else:
            sub = "REFUTED: not continuous (not in S)"
        _panel(ax, rec, samples[rec["name"]], f"{rec['name']}: {sub}", CONTINUOUS.get(rec["name"], True))
    axes[1][3].axis("off")
    fig.suptitle("Claim 1 and Proposition 2 (Bolte & Pauwels 2020): certified partitions along segments, "
                 "f and its AD derivative", fontsize=11)
    return save_figure(fig, path)


def draw_network(rec, samples, path):
    fig, axes = figure(1, 2, (14, 5))
    res, part = rec["integral"], rec["partition"]
    _panel(axes[0][0], rec, samples, f"ReLU network loss from theta0 (t = 0) to theta1 (t = 1): "
                                     f"{len(part.breakpoints) - 2} certified breakpoints")
    # Proposition 2 piece by piece: f(x) + the certified integral up to each breakpoint equals f there
    ax = axes[0][1]
    ts = [float(s[0]) for s in samples]
    ax.plot(ts, [_num(s[1]) for s in samples], color="tab:blue", lw=2, label="loss along the segment")
    acc = _num(samples[0][1])
    xs, ys = [0.0], [acc]
    ends = [p["interval"][1] for p in part.json()["pieces"]]
    for term, end in zip(res.terms, ends):          # exact method: one term per piece
        acc += _num(term.value)
        xs.append(jnum_float(end))
        ys.append(acc)
    ax.plot(xs, ys, "x", color="tab:red", ms=6, label="f(x) + certified integral of AD up to each breakpoint")
    ax.set_xlabel("t  (theta = theta0 + t (theta1 - theta0))", fontsize=8)
    ax.set_ylabel("loss", fontsize=8)
    ax.set_title(f"Proposition 2 piece by piece: lhs = {_num(res.lhs_value):.9f}, "
                 f"rhs = {_num(res.rhs_value):.9f}", fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------------- run

def run(out_dir, progress=None, full=False, workers=None, dask=None):
    """Certify every example and the network into ``out_dir`` (certificates, programs, figures, table)."""
    say = progress or (lambda m: None)
    os.makedirs(out_dir, exist_ok=True)
    recs, samples = [], {}
    ts = [fmpq(k, GRID) for k in range(GRID + 1)]
    for name, x, y in EXAMPLES:
        say(f"proposition2: {name} along [{', '.join(x)}] -> [{', '.join(y)}]")
        P = load(name)
        rec = certify_example(P, name, x, y, out_dir)
        recs.append(rec)
        samples[name] = curve_samples(P, rec["x"], rec["y"], ts)
    with program_file() as path, open(path, encoding="utf-8") as f:
        write_text(f.read(), os.path.join(out_dir, "programs.prog"))
    say("proposition2: the ReLU network's loss along a segment of parameter space")
    text, P, th0, th1 = network()
    write_text(text, os.path.join(out_dir, "network.prog"))
    write_text("theta0 = " + ",".join(fmt_q(v) for v in th0) + "\ntheta1 = " + ",".join(fmt_q(v) for v in th1)
               + "\n", os.path.join(out_dir, "endpoints.txt"))
    net = certify_example(P, "network", [fmt_q(v) for v in th0], [fmt_q(v) for v in th1], out_dir)
    recs.append(net)
    net_samples = curve_samples(P, net["x"], net["y"], ts)
    rows = [row_of(r) for r in recs]
    fig1 = draw_examples(recs[:-1], samples, os.path.join(out_dir, "figure.png"))
    fig2 = draw_network(net, net_samples, os.path.join(out_dir, "network.png"))
    results = [{"name": r["name"], "from": [fmt_q(v) for v in r["x"]], "to": [fmt_q(v) for v in r["y"]],
                "breakpoints": r["partition"].json()["breakpoints"], "integral": r["integral"].json(),
                "certificates": r["certificates"]} for r in recs]
    write_json({"rows": rows, "examples": results}, os.path.join(out_dir, "results.json"))
    md = ["# Claim 1 and Proposition 2 (Bolte & Pauwels 2020)", "",
          md_table(["claim", "paper", "ours", "verdict"], [[r["claim"], r["paper"], r["ours"], r["verdict"]]
                                                           for r in rows]),
          "Breakpoints (t in [0, 1]) of each certified partition:", ""]
    for r in recs:
        md.append(f"- `{r['name']}`: " + ", ".join(_bp_text(r["partition"])))
    write_text("\n".join(md) + "\n", os.path.join(out_dir, "table.md"))
    certs = [c for r in recs for c in r["certificates"]]
    return {"rows": rows, "ok": all(r["verdict"] == "PROVED" for r in rows), "figure": fig1,
            "figures": [fig1, fig2], "certificates": certs, "out_dir": out_dir}
