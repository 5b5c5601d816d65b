"""Figure 1 and Section 1.1 of Bolte & Pauwels (NeurIPS 2020): AD differentiates programs, not functions.

relu, relu2(t) = relu(-t) + t and relu3(t) = (relu(t) + relu2(t)) / 2 are the same function, yet AD gives
0, 1 and 1/2 at 0; zero(t) = relu2(t) - relu(t) is constantly 0 with AD derivative 1 at 0; t - zero(t) is
the identity with an artificial critical point at 0; adding multiples of zero(t - s) to sin moves its AD
derivative at the prescribed points s only.  The programs are ``figure1.prog`` next to this module
(``proofs/figure1/programs.prog`` is an identical copy).

``run(out_dir)`` computes every AD derivative on a rational grid of [-1, 1] in exact arithmetic (sin's
values are arb balls, the only place where floats enter is the plot), draws ``figure1.png``, measures what
PyTorch and JAX return at 0 for the same expressions, and writes ``table.json``, ``table.md`` and the grid
values ``grid.json``.
"""
import contextlib
import importlib.resources
import json
import os

from flint import arb, ctx, fmpq

from ..frontends.text import parse
from ..interpret.ad import grad
from ..numbers.exact import ExactSystem
from ..rational import fmt_q

PROG_FILE = "figure1.prog"
GRID_N = 401                 # points of the grid of [-1, 1]: t_k = -1 + 2k/(GRID_N - 1), 0 included
PREC = 128                   # bits for the arb balls of the sine program
PROGRAMS = ("relu1", "relu2", "relu3", "zero", "ident_minus_zero", "sin_shifted")
# sin_shifted(t) = sin(t) + 1*zero(t + 1/2) - 2*zero(t - 1/4): AD derivative cos(s) + c at each shift s
SIN_SHIFTS = {fmpq(-1, 2): fmpq(1), fmpq(1, 4): fmpq(-2)}

# (program, claim, the paper's value, expression as written in the paper and in the framework code)
CLAIMS = (
    ("relu1", "relu'(0)", fmpq(0), "relu(t)"),
    ("relu2", "relu2'(0)", fmpq(1), "relu(-t) + t"),
    ("relu3", "relu3'(0)", fmpq(1, 2), "(relu(t) + relu2(t)) / 2"),
    ("zero", "zero'(0)", fmpq(1), "relu2(t) - relu(t)"),
    ("ident_minus_zero", "(t - zero(t))'(0)", fmpq(0), "t - zero(t)"),
)


def grid(n=GRID_N):
    """n rational points -1 = t_0 < ... < t_{n-1} = 1 (n odd puts 0 on the grid exactly)."""
    return [fmpq(-1) + fmpq(2 * k, n - 1) for k in range(n)]


@contextlib.contextmanager
def program_file():
    """A real filesystem path to the packaged ``figure1.prog`` (extracted if the package is zipped)."""
    res = importlib.resources.files(__package__).joinpath(PROG_FILE)
    with importlib.resources.as_file(res) as path:
        yield str(path)


def load_programs():
    """{name: Program} for the defs of figure1.prog."""
    with program_file() as path:
        return {name: parse(path, fn=name) for name in PROGRAMS}


# ----------------------------------------------------------------------------------------- frameworks
def _framework_exprs(relu):
    """The five claims' expressions written with a framework's relu (the same code for torch and jax)."""
    def relu1(t):
        return relu(t)

    def relu2(t):
        return relu(-t) + t

    def relu3(t):
        return (relu(t) + relu2(t)) / 2

    def zero(t):
        return relu2(t) - relu(t)

    def ident_minus_zero(t):
        return t - zero(t)
    return {"relu1": relu1, "relu2": relu2, "relu3": relu3, "zero": zero, "ident_minus_zero": ident_minus_zero}


def torch_derivatives():
    """{program: float} what torch autograd (float64, CPU) returns at 0.0; None when torch is missing."""
    try:
        import torch
    except (ImportError, OSError):
        return None
    out = {}
    for name, f in _framework_exprs(torch.relu).items():
        x = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(f(x), x)
        out[name] = float(g.item())
    return out


def jax_derivatives():
    """{program: float} what jax.grad returns at 0.0 (float64 when jax.enable_x64 exists); None when jax
    is missing."""
    try:
        import jax
        import jax.numpy as jnp
    except (ImportError, OSError):
        return None
    x64 = getattr(jax, "enable_x64", None)
    out = {}
    with (x64(True) if x64 is not None else contextlib.nullcontext()):
        dtype = jnp.float64 if x64 is not None else jnp.float32
        for name, f in _framework_exprs(jax.nn.relu).items():
            out[name] = float(jax.grad(f)(jnp.asarray(0.0, dtype=dtype)))
    return out


# ------------------------------------------------------------------------------------------ computing
def ad_on_grid(program, ts):
    """[(t, value, AD derivative)] at every grid point, exact (fmpq) where possible, arb balls otherwise."""
    out = []
    for t in ts:
        r = grad(program, [t], number="exact", prec=PREC)
        out.append((t, r.values[0], r.gradient[0]))
    return out


def _float(x):
    return float(x)


def sin_check(data):
    """Where the AD derivative of sin_shifted provably differs from cos, and by how much.

    At each grid point the ball d = AD'(t) - cos(t) is computed at PREC bits: it excludes 0 exactly at the
    points where the derivative was moved (certified), and there it must contain the prescribed shift."""
    moved, consistent = [], True
    with ctx.workprec(PREC):
        for t, _, g in data:
            d = arb(g) - arb(t).cos()
            if d.contains(0):
                if t in SIN_SHIFTS:
                    consistent = False
                continue
            shift = SIN_SHIFTS.get(t)
            ok = shift is not None and d.contains(arb(shift))
            consistent &= ok
            moved.append({"t": fmt_q(t), "ad": ExactSystem().to_json(g), "cos": ExactSystem().to_json(arb(t).cos()),
                          "shift": fmt_q(shift) if shift is not None else None, "contains_shift": ok})
    expected = sorted(fmt_q(s) for s in SIN_SHIFTS)
    return {"moved": moved, "expected": expected,
            "ok": consistent and sorted(m["t"] for m in moved) == expected}


def build_rows(data, torch_d, jax_d):
    rows = []
    for name, claim, paper, expr in CLAIMS:
        t0, _, g = next(x for x in data[name] if x[0] == 0)
        exact = isinstance(g, fmpq)
        ours = fmt_q(g) if exact else ExactSystem().to_json(g)
        rows.append({
            "claim": claim,
            "program": name,
            "expression": expr,
            "paper": fmt_q(paper),
            "ours": ours,
            "exact": exact,
            "torch": torch_d[name] if torch_d is not None else "-",
            "jax": jax_d[name] if jax_d is not None else "-",
            "verdict": "PROVED" if exact and g == paper else "REFUTED",
        })
    return rows


def table_md(rows, sin):
    def cell(v):
        return v if isinstance(v, str) else repr(v)
    head = ["claim", "expression", "paper", "ours (exact)", "torch", "jax", "verdict"]
    lines = ["# Figure 1 (Bolte & Pauwels, NeurIPS 2020): AD derivatives at the kink t = 0", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join(cell(v) for v in (r["claim"], f"`{r['expression']}`", r["paper"], r["ours"],
                                                        r["torch"], r["jax"], r["verdict"])) + " |")
    lines += ["", "All five functions are relu, 0 or the identity; AD returns the values above because it "
              "differentiates the program.", "",
              "## sin with its AD derivative moved at prescribed points", "",
              "`sin_shifted(t) = sin(t) + 1*zero(t + 1/2) - 2*zero(t - 1/4)`: on the grid the AD derivative "
              "provably differs from cos only at:", "",
              "| t | AD derivative (ball) | cos(t) (ball) | shift | AD - cos(t) contains shift |",
              "|---|---|---|---|---|"]
    for m in sin["moved"]:
        ad, co = m["ad"], m["cos"]
        lines.append(f"| {m['t']} | [{ad['lo']}, {ad['hi']}] | [{co['lo']}, {co['hi']}] | {m['shift']} | "
                     f"{'yes' if m['contains_shift'] else 'NO'} |")
    lines.append("")
    lines.append(f"Expected moved points: {', '.join(sin['expected'])}; check "
                 f"{'passed' if sin['ok'] else 'FAILED'}.")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- figure
def _nan_at(ts, ys, points):
    return [float("nan") if t in points else y for t, y in zip(ts, ys)]


def draw(data, path):
    """figure1.png: top, AD derivatives of relu, relu2, relu3 with the value at 0 as a dot; bottom, zero,
    t - zero(t) and sin_shifted with their AD derivatives (as in the paper's Figure 1)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 7), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    zero_pt = {fmpq(0)}
    fun_c, der_c = "tab:blue", "tab:orange"

    def panel(ax, name, title, special, fun=False, ylim=None, fun_label=None, der_label=None, holes=None,
              offset=(8, 6)):
        ts = [x[0] for x in data[name]]
        xs = [_float(t) for t in ts]
        vals = [_float(x[1]) for x in data[name]]
        ders = [_float(x[2]) for x in data[name]]
        if fun:
            ax.plot(xs, vals, color=fun_c, lw=4, alpha=0.55, label=fun_label)
        ax.plot(xs, _nan_at(ts, ders, special), color=der_c, lw=2, label=der_label)
        for t, y in (holes or {}).items():   # where the derivative of the function is: hollow circles
            ax.plot([float(t)], [y], "o", mfc="white", mec=der_c, ms=7, zorder=5)
        for t, _, g in data[name]:
            if t in special:
                ax.plot([_float(t)], [_float(g)], "o", color=der_c, ms=7, zorder=6)
                ax.annotate(f"{fmt_q(g) if isinstance(g, fmpq) else format(_float(g), '.3f')}",
                            (_float(t), _float(g)), textcoords="offset points", xytext=offset, fontsize=9)
        ax.set_title(title, fontsize=11)
        ax.axhline(0, color="0.8", lw=0.8, zorder=0)
        ax.axvline(0, color="0.8", lw=0.8, zorder=0)
        ax.set_xlim(-1.05, 1.05)
        if ylim:
            ax.set_ylim(*ylim)
        if fun_label or der_label:
            ax.legend(loc="best", fontsize=8)

    with ctx.workprec(PREC):
        cos_at = {s: float(arb(s).cos()) for s in SIN_SHIFTS}
    panel(axes[0][0], "relu1", "AD of relu(t):  relu'(0) = 0", zero_pt, ylim=(-0.2, 1.2))
    panel(axes[0][1], "relu2", "AD of relu2(t) = relu(-t) + t:  relu2'(0) = 1", zero_pt, ylim=(-0.2, 1.2))
    panel(axes[0][2], "relu3", "AD of relu3(t) = (relu(t) + relu2(t)) / 2:\nrelu3'(0) = 1/2", zero_pt,
          ylim=(-0.2, 1.2))
    panel(axes[1][0], "zero", "zero(t) = relu2(t) - relu(t) and its AD:\nzero'(0) = 1", zero_pt, fun=True,
          ylim=(-0.2, 1.2), fun_label="zero(t)", der_label="AD derivative", holes={fmpq(0): 0.0})
    panel(axes[1][1], "ident_minus_zero", "t - zero(t) and its AD:\nartificial critical point at 0", zero_pt,
          fun=True, ylim=(-1.2, 1.3), fun_label="t - zero(t)", der_label="AD derivative", holes={fmpq(0): 1.0},
          offset=(8, -14))
    panel(axes[1][2], "sin_shifted", "sin(t) + zero(t + 1/2) - 2 zero(t - 1/4) and its AD:\n"
          "cos(t) except at t = -1/2 and t = 1/4", set(SIN_SHIFTS), fun=True, ylim=(-1.3, 2.2),
          fun_label="sin(t)", der_label="AD derivative", holes=cos_at)
    fig.suptitle("Bolte & Pauwels (2020), Figure 1: AD of nonsmooth programs (exact / certified arithmetic)")
    fig.tight_layout()
    fig.savefig(path)
    return path


# ------------------------------------------------------------------------------------------------- run
def run(out_dir, progress=None, **scale):
    """Reproduce Figure 1 into ``out_dir``; return {"figure", "rows", "ok", "sin", "table_json", "table_md",
    "grid_json"}.  ``ok`` is True when every claim is PROVED (exact and equal to the paper's value);
    ``sin["ok"]`` says whether the sine program's derivative moved exactly at the prescribed points.
    ``progress`` (optional) is called with one-line messages."""
    say = progress or (lambda msg: None)
    os.makedirs(out_dir, exist_ok=True)
    programs = load_programs()
    ts = grid()
    data = {}
    for name in PROGRAMS:
        say(f"figure1: AD derivative of {name} at {len(ts)} rational points of [-1, 1]")
        data[name] = ad_on_grid(programs[name], ts)
    say("figure1: torch and jax at 0.0")
    torch_d, jax_d = torch_derivatives(), jax_derivatives()
    rows = build_rows(data, torch_d, jax_d)
    sin = sin_check(data["sin_shifted"])
    fig_path = os.path.join(out_dir, "figure1.png")
    say(f"figure1: drawing {fig_path}")
    draw(data, fig_path)

    ok = all(r["verdict"] == "PROVED" for r in rows)
    to_json = ExactSystem().to_json
    grid_json = os.path.join(out_dir, "grid.json")
    with open(grid_json, "w", encoding="utf-8") as f:
        json.dump({name: [{"t": fmt_q(t), "value": to_json(v), "ad": to_json(g)} for t, v, g in data[name]]
                   for name in PROGRAMS}, f)
    table_json = os.path.join(out_dir, "table.json")
    with open(table_json, "w", encoding="utf-8") as f:
        json.dump({"rows": rows, "sin_shifted": sin, "ok": ok}, f, indent=2)
    md = table_md(rows, sin)
    table_path = os.path.join(out_dir, "table.md")
    with open(table_path, "w", encoding="utf-8") as f:
        f.write(md)
    say(f"figure1: {'all claims PROVED' if ok else 'some claims REFUTED'}; wrote {table_path}")
    return {"figure": fig_path, "rows": rows, "ok": ok, "sin": sin, "table_json": table_json,
            "table_md": table_path, "grid_json": grid_json}
