"""Segment partition (Claim 1) and integral identity (Proposition 2): time against the number of breakpoints.

Programs: random ReLU networks 1 -> W -> W -> 1 with rational weights (k/8, k in [-16, 16] \\ {0}), evaluated
along the segment x in [-R, R] of the input; biases centre every unit on the segment, so it crosses the first
layer's W kinks and every second-layer unit's zero set (each is piecewise linear in t: it may switch several
times).  Every breakpoint is rational and the walk finds it exactly.

For each network the script prints the number of breakpoints N, the number of equations E, the time of
``segment_partition`` (the exact walk), of ``integral_identity`` (the walk plus the exact integral), and the
walk's time per breakpoint per equation, which stays roughly constant: the walk is linear in N x E.  Beside it,
a naive method finds the same breakpoints: the exact pattern on a fixed grid of G points, then bisection on each
grid cell whose ends differ until the cell is narrower than 2^-tol (it encloses, never hits, a breakpoint whose
denominator is not a power of 2, and misses breakpoints that come in pairs inside one grid cell).  The table
gives its time, the grid cells it brackets, how many of them hold an exact breakpoint (agree: all of them),
and how many exact breakpoints it misses.  Timings are informational: the exit status is 0.

    python benchmarks/bench_segment.py [--widths 4,8,16,32,64] [--grid 512] [--seed 0] [--tol 40] [--radius 4]

The default run takes about 5 minutes on 2 cores (most of it the naive method at width 64); --widths 4,8,16,32
takes about one.
"""
import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flint import fmpq  # noqa: E402

from verify.certify.integral import integral_identity  # noqa: E402
from verify.certify.segment import segment_partition  # noqa: E402
from verify.interpret.evaluate import run  # noqa: E402
from verify.frontends import Builder  # noqa: E402
from verify.program.ir import Lit  # noqa: E402
from verify.numbers import get_system  # noqa: E402


def network(width, rng, R):
    """1 -> width -> width -> 1 ReLU network as a Program.  Every unit is centred on the segment: its bias puts
    its kink (first layer) or a zero of its pre-activation (second layer) at a random t in (-R, R), so the
    segment crosses all of them, and second-layer units usually more than once."""
    def w():
        return fmpq(rng.choice([k for k in range(-16, 17) if k]), 8)

    def where():
        return fmpq(rng.randint(-999, 999), 1000) * R
    b = Builder("net", ["t"])
    h1, first = [], []
    for _ in range(width):
        a, t0 = w(), where()
        first.append((a, -a * t0))
        pre = b.emit("add", [b.emit("mul", [0, Lit(a)])[0], Lit(-a * t0)])[0]
        h1.append(b.emit("relu", [pre])[0])
    h2 = []
    for _ in range(width):
        ws, t0 = [w() / width for _ in range(width)], where()
        centre = -sum((c * max(a * t0 + d, fmpq(0)) for c, (a, d) in zip(ws, first)), fmpq(0))
        acc = Lit(centre)
        for h, c in zip(h1, ws):
            acc = b.emit("add", [acc, b.emit("mul", [h, Lit(c)])[0]])[0]
        h2.append(b.emit("relu", [acc])[0])
    out = Lit(fmpq(0))
    for h in h2:
        out = b.emit("add", [out, b.emit("mul", [h, Lit(w())])[0]])[0]
    return b.finish([out])


def naive(P, R, grid, tol):
    """Breakpoints by the exact pattern on a fixed grid, then bisection on every cell whose ends differ."""
    ns = get_system("exact")

    def pattern(t):
        return run(P, ns, [-R + 2 * R * t]).pattern
    pts = [fmpq(k, grid) for k in range(grid + 1)]
    pats = [pattern(t) for t in pts]
    width = fmpq(1, 2 ** tol)
    found = []
    for a, b, pa, pb in zip(pts, pts[1:], pats, pats[1:]):
        if pa == pb:
            continue
        while b - a > width:
            m = (a + b) / 2
            pm = pattern(m)
            if pm == pa:
                a = m
            elif pm == pb:
                b = m
            else:          # a third pattern: a breakpoint on each side; follow the left one (the naive way)
                b, pb = m, pm
        found.append((a, b))
    return found


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="4,8,16,32,64")
    ap.add_argument("--grid", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=int, default=40)
    ap.add_argument("--radius", default="4")
    args = ap.parse_args(argv)
    R = fmpq(int(args.radius))
    print(f"{'width':>5} {'eqns':>6} {'bkpts':>6} {'segment s':>10} {'integral s':>11} {'us/(bkpt*eqn)':>14} "
          f"{'naive s':>8} {'naive cells':>12} {'agree':>6} {'missed':>7}")
    for width in (int(w) for w in args.widths.split(",")):
        rng = random.Random(args.seed * 1000 + width)
        P = network(width, rng, R)
        E = len(P.eqns)
        t0 = time.perf_counter()
        part = segment_partition(P, [-R], [R], tol=args.tol)
        t1 = time.perf_counter()
        res = integral_identity(P, [-R], [R], tol=args.tol)
        t2 = time.perf_counter()
        N = len(part.breakpoints) - 2
        found = naive(P, R, args.grid, args.tol)
        t3 = time.perf_counter()
        exact = [b.t for b in part.breakpoints]
        agree = sum(1 for a, b in found if any(a <= x <= b for x in exact))
        missed = sum(1 for x in exact[1:-1] if not any(a <= x <= b for a, b in found))
        per = 1e6 * (t1 - t0) / max(1, N + 1) / E
        print(f"{width:>5} {E:>6} {N:>6} {t1 - t0:>10.3f} {t2 - t1:>11.3f} {per:>14.2f} {t3 - t2:>8.3f} "
              f"{len(found):>12} {agree:>6} {missed:>7}   identity {res.verdict.name} (lhs = rhs = {res.lhs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
