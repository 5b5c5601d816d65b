"""Theorem 3 of Bolte & Pauwels (NeurIPS 2020) on a polynomial curve through a kink.

D_f (Definition 5) is a conservative field for f in S: along every absolutely continuous curve gamma, for
almost every t, (f o gamma)'(t) = <v, gamma'(t)> for every v in D_f(gamma(t)); integrating,

    f(gamma(1)) - f(gamma(0)) = int_0^1 <gamma'(t), AD f(gamma(t))> dt.

``theorem3.prog``'s f is nonsmooth along two lines, a parabola and the axes; gamma(t) = (2t - 1, (2t - 1)^3)
runs through the corner (0, 0), where three switching functions vanish at once (one of them, x*y = (2t-1)^4,
only touches 0), and crosses the parabola at three algebraic points.  ``run`` certifies the partition of
[0, 1] (exact: rational and algebraic breakpoints), both sides of the identity, and D_f at the corner (whose
generators give four different slopes <v, gamma'(1/2)>: there AD's value is one arbitrary choice, on a null
set), and draws the curve over f's kinks and f o gamma with its AD derivative.
"""
import contextlib
import importlib.resources
import os

from flint import fmpq

from ..certify import conservative_field, integral_certificate, integral_identity, segment_certificate
from ..certify import segment_partition
from ..certify.certs import index_certificate
from ..frontends.text import parse
from ..interpret.ad import grad
from ..interpret.evaluate import evaluate
from ..rational import fmt_q
from .common import figure, md_table, relu_inputs, save_certificate, save_figure, write_json, write_text
from .proposition2 import breakpoint_floats, broken_polyline, jnum_float, jnum_text

PROG_FILE = "theorem3.prog"
CURVE = "-1,-1; 2,6; 0,-12; 0,8"      # gamma(t) = (2t - 1, (2t - 1)^3) = c0 + c1 t + c2 t^2 + c3 t^3
CURVE_TEXT = "gamma(t) = (2t - 1, (2t - 1)^3)"
CORNER_T = fmpq(1, 2)
GRID = 400
PLANE = 161                          # grid of the (x, y) picture, floats: drawing only


@contextlib.contextmanager
def program_file():
    res = importlib.resources.files(__package__).joinpath(PROG_FILE)
    with importlib.resources.as_file(res) as path:
        yield str(path)


def load():
    with program_file() as path:
        return parse(path, fn="f")


def gamma(part, t):
    return part.curve.at(t)


def gamma_prime(part, t):
    return [p(t) for p in part.curve.dpolys]


def samples(P, part, ts):
    """[(t, f(gamma(t)), <gamma'(t), AD f(gamma(t))>)], exact."""
    out = []
    for t in ts:
        g = grad(P, gamma(part, t))
        out.append((t, g.values[0], sum((a * b for a, b in zip(gamma_prime(part, t), g.gradient)), fmpq(0))))
    return out


def draw(P, part, res, data, path):
    fig, axes = figure(1, 2, (14, 5.8))
    ax = axes[0][0]
    # f over the plane (floats, a picture) and the zero sets of its switching functions
    lo, hi = -1.25, 1.25
    xs = [lo + (hi - lo) * i / (PLANE - 1) for i in range(PLANE)]
    F, S = [], []
    for yv in xs:
        frow, srow = [], []
        for xv in xs:
            r = evaluate(P, [xv, yv], number="float")
            frow.append(float(r.values[0]))
            srow.append([float(v) for v in relu_inputs(r)])
        F.append(frow)
        S.append(srow)
    cs = ax.contourf(xs, xs, F, levels=24, cmap="Greys", alpha=0.55)
    fig.colorbar(cs, ax=ax, label="f(x, y)")
    names = ["x + y = 0", "x - y = 0", "y - x^2 + 1/10 = 0", "x y = 0"]
    colours = ["tab:green", "tab:purple", "tab:brown", "tab:cyan"]
    for k, (nm, col) in enumerate(zip(names, colours)):
        ax.contour(xs, xs, [[v[k] for v in row] for row in S], levels=[0], colors=[col], linewidths=1.2)
        ax.plot([], [], color=col, lw=1.2, label=f"kink set {nm}")
    ts = [k / 400 for k in range(401)]
    ax.plot([2 * t - 1 for t in ts], [(2 * t - 1) ** 3 for t in ts], color="tab:red", lw=2.2, label=CURVE_TEXT)
    bps = breakpoint_floats(part)
    ax.plot([2 * t - 1 for t in bps], [(2 * t - 1) ** 3 for t in bps], "o", color="tab:red", ms=6, mfc="white",
            label="certified breakpoints")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("the curve over the kinks of f", fontsize=10)
    ax.legend(fontsize=7, loc="lower right", framealpha=0.7)

    ax = axes[0][1]
    tt = [float(d[0]) for d in data]
    inner = bps[1:-1]
    ax.plot(tt, [float(d[1]) for d in data], color="tab:blue", lw=2, label="f(gamma(t))")
    dx, dy, dat = broken_polyline(tt, [float(d[2]) for d in data], bps)
    ax.plot(dx, dy, color="tab:orange", lw=1.6, label="<gamma'(t), AD f(gamma(t))>")
    if dat:
        ax.plot([a for a, _ in dat], [b for _, b in dat], "o", color="tab:orange", mfc="white", ms=5,
                label="AD at a breakpoint")
    for i, b in enumerate(inner):
        ax.axvline(b, color="0.55", ls=":", lw=1, label="certified breakpoint" if i == 0 else None)
    ax.set_xlabel("t")
    ax.set_ylabel("value")
    ax.set_title(f"f(gamma(1)) - f(gamma(0)) = {jnum_text(res.lhs)} = integral of AD {jnum_text(res.rhs)}", fontsize=10)
    ax.legend(fontsize=7, loc="best", framealpha=0.6)
    fig.suptitle("Theorem 3 (Bolte & Pauwels 2020): the integral identity along a polynomial curve through a kink",
                 fontsize=11)
    return save_figure(fig, path)


def run(out_dir, progress=None, full=False, workers=None, dask=None):
    say = progress or (lambda m: None)
    os.makedirs(out_dir, exist_ok=True)
    P = load()
    say(f"theorem3: partition and integral identity along {CURVE_TEXT}")
    part = segment_partition(P, curve=CURVE)
    res = integral_identity(P, curve=CURVE)
    certs = [save_certificate(segment_certificate(part), os.path.join(out_dir, "curve.segment.json")),
             save_certificate(integral_certificate(res), os.path.join(out_dir, "curve.integral.json"))]
    corner = gamma(part, CORNER_T)
    say(f"theorem3: D_f at the corner gamma(1/2) = ({', '.join(map(fmt_q, corner))})")
    fld = conservative_field(P, corner)
    certs.append(save_certificate(index_certificate(fld.index), os.path.join(out_dir, "corner.field.json")))
    gp = gamma_prime(part, CORNER_T)
    slopes = sorted({sum((a * b for a, b in zip(gp, v[0])), fmpq(0)) for v in fld.gradients})
    ad = grad(P, corner).gradient
    ad_slope = sum((a * b for a, b in zip(gp, ad)), fmpq(0))
    bj = part.json()["breakpoints"]
    algebraic = [b for b in bj if not isinstance(b, str)]
    ok = res.verdict.name == "PROVED" and part.complete and part.exact
    rows = [{"claim": f"Theorem 3 along {CURVE_TEXT}", "paper": "f(gamma(1)) - f(gamma(0)) = int <gamma', AD f>",
             "ours": f"Claim 1 on the curve: {len(part.pieces)} pieces, breakpoints "
                     f"{', '.join(b if isinstance(b, str) else '~' + format(jnum_float(b), '.6f') for b in bj)} "
                     f"({len(algebraic)} algebraic, exact); lhs {jnum_text(res.lhs)}, integral {jnum_text(res.rhs)}",
             "verdict": "PROVED" if ok else res.verdict.name},
            {"claim": "at the corner gamma(1/2) = (0, 0): D_f is not a singleton",
             "paper": "(f o gamma)' = <v, gamma'> for a.e. t only",
             "ours": f"D_f(0, 0) = conv of {len(fld.gradients)} gradients; <v, gamma'(1/2)> in "
                     f"{{{', '.join(map(fmt_q, slopes))}}}; AD picks {fmt_q(ad_slope)}",
             "verdict": "PROVED" if len(slopes) > 1 and ad_slope in slopes else "REFUTED"}]
    data = samples(P, part, [fmpq(k, GRID) for k in range(GRID + 1)])
    say("theorem3: drawing")
    fig = draw(P, part, res, data, os.path.join(out_dir, "figure.png"))
    with program_file() as path, open(path, encoding="utf-8") as f:
        write_text(f.read(), os.path.join(out_dir, "programs.prog"))
    write_json({"rows": rows, "curve": part.curve.json(), "breakpoints": bj, "integral": res.json(),
                "corner": {"point": [fmt_q(v) for v in corner], "field": [[fmt_q(c) for c in v[0]]
                                                                         for v in fld.gradients],
                           "slopes": [fmt_q(s) for s in slopes], "ad_slope": fmt_q(ad_slope)},
                "certificates": certs}, os.path.join(out_dir, "results.json"))
    write_text("# Theorem 3 (Bolte & Pauwels 2020) along a polynomial curve\n\n" +
               md_table(["claim", "paper", "ours", "verdict"],
                        [[r["claim"], r["paper"], r["ours"], r["verdict"]] for r in rows]),
               os.path.join(out_dir, "table.md"))
    return {"rows": rows, "ok": all(r["verdict"] == "PROVED" for r in rows), "figure": fig, "figures": [fig],
            "certificates": certs, "out_dir": out_dir}
