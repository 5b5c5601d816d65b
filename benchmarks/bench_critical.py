"""Critical-point benchmark: index_set, conservative_field, clarke and critical on a ReLU network with ties.

The network is 2 -> 32 -> 32 -> 1 with seeded random rational weights (small denominators), built with
verify.frontends.Builder from mul-by-literal, add and relu:

    h1_i = relu(sum_j W1_ij x_j + b1_i),  h2_i = relu(sum_j W2_ij h1_j + b2_i),  out = sum_i w3_i h2_i + b3.

For each k the biases of k neurons of one layer are set so that their pre-activation is exactly 0 at a
rational point x (b_i = -W_i . input); every other pre-activation (both layers) is checked to be nonzero at
x, and the k tied hyperplanes through x are checked to be pairwise non-parallel (otherwise the draw is
repeated).  Near x the plane R^2 is then cut by k distinct lines into 2k sectors, so

  - the local index set I(x) has 2^k patterns (each tied relu admits both pieces at 0),
  - but only about 2k of them are essential (one per sector; 1 when k = 0).

conservative_field runs the program once per pattern of I(x): it follows 2^k.  clarke walks only the
sectors (pruning empty sign combinations with exact LP certificates): it should follow ~2k.  critical does
both, then two exact convex-hull tests.  "layer 1" ties first-layer neurons; "layer 2" ties second-layer
neurons (the first layer then has no tie, so near x each tied layer-2 pre-activation is affine in x).

Columns: |I| = index_set(...).count, field = distinct gradients of D_f(x), ess = essential patterns
(len(clarke(...).leaves)), clk = distinct Clarke gradients, then the verdicts of critical(...) (sel =
selection-critical, clk = Clarke-critical, art = artificial; T/F/?), then median seconds over --repeat
runs of index_set / conservative_field / clarke / critical, of writing a certificate (critical_certificate,
through a JSON round trip) and of checking it with the independent checker (verify.checker),
the ratio of checking to certifying (chk/crit, target <= 2: the checker computes the values at x once and
sweeps every pattern in reverse mode with symbolic zeros) and the certificate's size.  A measurement stops
repeating once it has used --budget seconds, so slow cells are a single run.  The checker parses the program
text once; the time of one parse is printed at the end (--no-check skips the checker).  The exit status is
0 unless something raises; nothing here fails on time.
"""
import argparse
import gc
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flint import fmpq  # noqa: E402

import verify  # noqa: E402
from verify.checker import check  # noqa: E402
from verify.certify import clarke, conservative_field, critical, index_set  # noqa: E402
from verify.certify.certs import critical_certificate  # noqa: E402
from verify.frontends import Builder  # noqa: E402
from verify.program.ir import Lit  # noqa: E402
from verify.truth import FALSE, TRUE  # noqa: E402

N_IN, WIDTH = 2, 32


# ------------------------------------------------------------------------------------------- network

def rat(rng, num=6, dens=(1, 2, 3, 4)):
    """A nonzero rational with a small numerator and denominator."""
    return fmpq(rng.choice([-1, 1]) * rng.randint(1, num), rng.choice(dens))


def draw(rng):
    return {"W1": [[rat(rng) for _ in range(N_IN)] for _ in range(WIDTH)],
            "b1": [rat(rng) for _ in range(WIDTH)],
            "W2": [[rat(rng, 3, (2, 3, 4, 5)) for _ in range(WIDTH)] for _ in range(WIDTH)],
            "b2": [rat(rng) for _ in range(WIDTH)],
            "w3": [rat(rng, 3, (2, 3, 4)) for _ in range(WIDTH)],
            "b3": rat(rng)}


def dot(w, v):
    return sum((a * b for a, b in zip(w, v)), fmpq(0))


def forward(net, x):
    """Exact pre-activations z1, z2 and the output at x."""
    z1 = [dot(w, x) + b for w, b in zip(net["W1"], net["b1"])]
    h1 = [max(z, fmpq(0)) for z in z1]
    z2 = [dot(w, h1) + b for w, b in zip(net["W2"], net["b2"])]
    h2 = [max(z, fmpq(0)) for z in z2]
    return z1, z2, dot(net["w3"], h2) + net["b3"]


def build(net):
    """The network as a Program; also returns the variables of the pre-activations (z1, z2)."""
    b = Builder("relu_net", [f"x{j}" for j in range(N_IN)])

    def affine(ins, w, c):
        acc = None
        for v, wj in zip(ins, w):
            (t,) = b.emit("mul", (v, Lit(wj)))
            acc = t if acc is None else b.emit("add", (acc, t))[0]
        return b.emit("add", (acc, Lit(c)))[0]

    def layer(ins, W, bias):
        zs = [affine(ins, w, c) for w, c in zip(W, bias)]
        return zs, [b.emit("relu", (z,))[0] for z in zs]

    z1, h1 = layer(list(range(N_IN)), net["W1"], net["b1"])
    z2, h2 = layer(h1, net["W2"], net["b2"])
    out = affine(h2, net["w3"], net["b3"])
    return b.finish([out]), z1, z2


def local_gradients(net, x, layer, tied):
    """The x-gradients of the tied pre-activations near x (layer 1: rows of W1; layer 2: W2_i D1 W1)."""
    if layer == 1:
        return [net["W1"][i] for i in tied]
    z1 = forward(net, x)[0]
    act = [z > 0 for z in z1]
    return [[sum((net["W2"][i][j] * net["W1"][j][c] for j in range(WIDTH) if act[j]), fmpq(0))
             for c in range(N_IN)] for i in tied]


def tied_instance(seed, layer, k, max_tries=200):
    """(net, x, tied) with exactly k pre-activations of ``layer`` equal to 0 at x, all others nonzero, and
    pairwise non-parallel nonzero local gradients for the tied ones."""
    for attempt in range(max_tries):
        rng = random.Random(f"critical-{seed}-{layer}-{k}-{attempt}")
        net = draw(rng)
        x = [fmpq(rng.randint(-9, 9), rng.choice([3, 5, 7])) for _ in range(N_IN)]
        tied = sorted(rng.sample(range(WIDTH), k))
        if layer == 1:
            for i in tied:
                net["b1"][i] = -dot(net["W1"][i], x)
        else:
            z1 = forward(net, x)[0]
            h1 = [max(z, fmpq(0)) for z in z1]
            for i in tied:
                net["b2"][i] = -dot(net["W2"][i], h1)
        z1, z2, _ = forward(net, x)
        zeros = [(1, i) for i, z in enumerate(z1) if z == 0] + [(2, i) for i, z in enumerate(z2) if z == 0]
        if zeros != [(layer, i) for i in tied]:
            continue            # an unintended tie (or a layer-2 tie undone by a layer-1 change)
        g = local_gradients(net, x, layer, tied)
        if any(all(c == 0 for c in v) for v in g):
            continue
        if any(g[a][0] * g[b][1] == g[a][1] * g[b][0] for a in range(k) for b in range(a + 1, k)):
            continue            # parallel hyperplanes: fewer than 2k sectors
        return net, x, tied
    raise RuntimeError(f"no instance with {k} ties in layer {layer} after {max_tries} draws")


# ------------------------------------------------------------------------------------------- timing

def timed(fn, repeat, budget=float("inf")):
    """(median seconds, last result) over ``repeat`` calls of fn() (fewer once ``budget`` seconds are
    used, at least one), garbage collector off (as timeit)."""
    ts, out = [], None
    while len(ts) < repeat and (not ts or sum(ts) < budget):
        gc.collect()
        gc.disable()
        try:
            t = time.perf_counter()
            out = fn()
            ts.append(time.perf_counter() - t)
        finally:
            gc.enable()
    return statistics.median(ts), out


def tf(t):
    return "T" if t is TRUE else ("F" if t is FALSE else "?")


def bench(seed, layer, k, repeat, budget, do_check):
    net, x, tied = tied_instance(seed, layer, k)
    P, z1v, z2v = build(net)
    z1, z2, out = forward(net, x)
    ev = verify.evaluate(P, x)                  # the program agrees with the exact forward pass
    assert ev.values[0] == out and [ev.run.env[v] for v in z1v] == z1 and [ev.run.env[v] for v in z2v] == z2
    t_idx, iset = timed(lambda: index_set(P, x), repeat, budget)
    t_fld, fld = timed(lambda: conservative_field(P, x), repeat, budget)
    t_clk, cl = timed(lambda: clarke(P, x), repeat, budget)
    t_crit, c = timed(lambda: critical(P, x), repeat, budget)
    t_cert, cert = timed(lambda: json.loads(json.dumps(critical_certificate(c))), repeat, budget)
    t_chk = timed(lambda: check(cert), repeat, budget)[0] if do_check else float("nan")
    return {"P": P, "layer": layer, "k": k, "I": iset.count, "field": len(fld.gradients),
            "ess": len(cl.leaves), "clk": len(cl.gradients), "sel": tf(c.selection.truth),
            "cc": tf(c.clarke_critical.truth), "art": tf(c.artificial), "bytes": len(json.dumps(cert)),
            "t": [t_idx, t_fld, t_clk, t_crit, t_cert, t_chk]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kmax", type=int, default=10, help="largest number of tied neurons k (default 10)")
    ap.add_argument("--layers", default="1,2", help="comma-separated layers to tie: 1, 2 or 1,2 (default 1,2)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random networks and points (default 0)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement; the median is shown")
    ap.add_argument("--budget", type=float, default=10.0,
                    help="stop repeating a measurement once it has used this many seconds (default 10)")
    ap.add_argument("--no-check", action="store_true", help="do not time the certificate checker")
    args = ap.parse_args()
    layers = [int(s) for s in args.layers.split(",")]

    print(f"ReLU network {N_IN} -> {WIDTH} -> {WIDTH} -> 1, exact rationals, seed {args.seed}, "
          f"median of {args.repeat} (seconds)")
    head = (f"{'layer':>5} {'k':>3} {'|I|':>5} {'field':>5} {'ess':>4} {'clk':>4}  {'sel':>3} {'clk':>3} "
            f"{'art':>3}  {'index_set':>9} {'field':>8} {'clarke':>8} {'critical':>8} {'cert':>7} "
            f"{'check':>7} {'chk/crit':>8} {'cert kB':>7}")
    print(head)
    print("-" * len(head))
    for layer in layers:
        for k in range(args.kmax + 1):
            r = bench(args.seed, layer, k, args.repeat, args.budget, not args.no_check)
            ti, tfl, tc, tcr, tce, tch = r["t"]
            print(f"{layer:>5} {k:>3} {r['I']:>5} {r['field']:>5} {r['ess']:>4} {r['clk']:>4}  {r['sel']:>3} "
                  f"{r['cc']:>3} {r['art']:>3}  {ti:>9.4f} {tfl:>8.3f} {tc:>8.3f} {tcr:>8.3f} {tce:>7.3f} "
                  f"{'-' if tch != tch else f'{tch:.3f}':>7} {'-' if tch != tch else f'{tch / tcr:.2f}':>8} "
                  f"{r['bytes'] / 1000:>7.1f}", flush=True)
        print("-" * len(head))
    P = r["P"]
    print(f"{len(P.eqns)} equations per program; |I| = 2^k and ess = 2k (1 at k = 0) are expected")
    if not args.no_check:
        text = verify.to_text(P)
        t_parse, _ = timed(lambda: verify.parse(text), 1)
        print(f"one verify.parse of the program text ({len(text) / 1000:.0f} kB): {t_parse:.2f} s "
              "(the checker parses it once per check)")
        print("chk/crit: checking the critical-point certificate over certifying it (critical), same run; "
              "target <= 2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
