"""Segments on networks (issue 10, item 7): the native walk on tensor programs against the scalar walk.

Two families of 1 -> W -> W -> 1 ReLU networks as TENSOR programs (x: [1], dot with constant matrices, relu,
a scalar output), along the input segment x in [-R, R]:

- ``issue``: the very networks of bench_segment.py (rational weights k/8, biases centring every unit on the
  segment), so the segment crosses every first-layer kink and every second-layer unit's zero set; the scalar
  figure is that benchmark's scalar program (one equation per weight), the issue's "82 s for 313
  breakpoints" at W = 128;
- ``dyadic``: small random dyadic float32 weights and biases (kinks centred at dyadic points), exact as read
  from float32; the scalar figure is the walk on the tensor program's scalarisation.

For each: the number of breakpoints N, the native segment partition's time, the native integral identity's
time (it walks again, then integrates exactly), the scalar walk's time when affordable (``--scalar-max``), the
ratio scalar / native measured in this run, whether both give the same breakpoints and patterns, and the
passes' work (equation evaluations per pass).  Then the "linear interpolation of the loss" picture: a segment
between two PARAMETER vectors of a 1 -> W -> W -> 1 network (inputs = all weights and biases, a constant batch,
loss sum |net(x) - y|), which is not piecewise linear in t (products of weights) but polynomial: the native
walk on polynomials in t (algebraic breakpoints), against the exact scalar walk on the scalarised program
where affordable (``--param-scalar-max``).  Timings are informational: the exit status is 0.

    python benchmarks/bench_segment_net.py [--widths 8,16,32,64,128] [--scalar-max 64] [--seed 0] [--radius 4]
                                           [--params 2,4,8,16,32] [--param-scalar-max 8] [--batch 8]
"""
import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from flint import fmpq  # noqa: E402

from bench_segment import network as scalar_network  # noqa: E402
from verify.certify import algebraic as A  # noqa: E402
from verify.certify import segment_net as N  # noqa: E402
from verify.certify.segment import segment_partition as scalar_segment_partition  # noqa: E402
from verify.program.arrays import Arrays, ExactArray  # noqa: E402
from verify.program.builder import Builder  # noqa: E402
from verify.program.ir import Arr  # noqa: E402


def mlp(arrays, name="net"):
    """x: [1] -> relu(W0 x + b0) -> relu(W1 h + b1) -> w2 . h + b2, a tensor program over ExactArrays."""
    b = Builder(name, ["x"], [(1,)], Arrays(arrays))
    h = 0
    for i in range(2):
        h = b.emit("relu", [b.emit("add", [b.emit("dot", [Arr(f"W{i}"), h], {"ca": (1,), "cb": (0,)})[0],
                                           Arr(f"b{i}")])[0]])[0]
    out = b.emit("add", [b.emit("dot", [Arr("w2"), h], {"ca": (0,), "cb": (0,)})[0], Arr("b2")])[0]
    return b.finish([out])


def issue_net(width, seed, R):
    """bench_segment.network's weights (same random draws) as a tensor program, and that scalar program."""
    rng = random.Random(seed * 1000 + width)
    P = scalar_network(width, rng, R)
    W0, b0, W1, b1, w2 = [], [], [[] for _ in range(width)], [fmpq(0)] * width, []
    # read the weights back from the scalar program: unit i of layer 1 is relu(x * a + c); of layer 2,
    # relu(centre + sum_j h_j * w_ij); the output sum_i h_i * v_i
    lits = iter(e for e in P.eqns)
    for _ in range(width):
        mul, add, _relu = next(lits), next(lits), next(lits)
        W0.append([mul.ins[1].value])
        b0.append(add.ins[1].value)
    for i in range(width):
        first = True
        for _ in range(width):
            mul, add = next(lits), next(lits)
            if first:
                b1[i] = add.ins[0].value
                first = False
            W1[i].append(mul.ins[1].value)
        next(lits)                                    # the relu
    for _ in range(width):
        mul, _add = next(lits), next(lits)
        w2.append(mul.ins[1].value)
    arrays = {"W0": W0, "b0": b0, "W1": W1, "b1": b1, "w2": w2, "b2": [fmpq(0)]}
    arrays = {k: ExactArray.from_any(np.array([[str(v) for v in r] if isinstance(r, list) else str(r) for r in a],
                                              dtype=object)) for k, a in arrays.items()}
    arrays["b2"] = ExactArray.from_any(np.array("0", dtype=object))
    return mlp(arrays), P


def dyadic_net(width, seed, R):
    """Small dyadic float32 weights; biases put each unit's kink (first layer) or a zero of its
    pre-activation (second layer) at a random dyadic point of (-R, R)."""
    rng = np.random.default_rng(seed * 1000 + width)
    f32 = np.float32
    a = (rng.integers(1, 17, width) * rng.choice([-1, 1], width) / 8).astype(f32)
    t0 = (rng.integers(-255, 256, width) / 256 * R).astype(f32)
    b0 = (-a.astype(np.float64) * t0).astype(f32)
    W1 = (rng.integers(-16, 17, (width, width)) / (8 * width)).astype(f32)
    s0 = (rng.integers(-255, 256, width) / 256 * R).astype(f32)
    h = np.maximum(np.outer(s0.astype(np.float64), a) + b0, 0)            # first layer at s0 (float64, exact)
    b1 = (-(h * W1.astype(np.float64)).sum(axis=1)).astype(f32)           # rounded to float32: still exact
    w2 = (rng.integers(-16, 17, width) / 8).astype(f32)
    arrays = {"W0": a.reshape(width, 1), "b0": b0, "W1": W1, "b1": b1, "w2": w2, "b2": f32(0.25)}
    return mlp({k: ExactArray.from_any(v) for k, v in arrays.items()})


def param_net(width, batch, seed):
    """The loss of a 1 -> W -> W -> 1 ReLU network as a function of its PARAMETERS (inputs W0, b0, W1, b1, w2,
    b2) on a constant batch: sum |net(x_k) - y_k|.  Not piecewise linear in the parameters: along a segment of
    parameters a layer's pre-activation is a polynomial in t whose degree grows by one per layer."""
    rng = np.random.default_rng(seed)
    xs = ExactArray.from_any((rng.integers(-8, 9, (batch,)) / 4).astype(np.float32))
    ys = ExactArray.from_any((rng.integers(-8, 9, (batch,)) / 4).astype(np.float32))
    shapes = [(width, 1), (width,), (width, width), (width,), (width,), ()]
    b = Builder("loss", ["W0", "b0", "W1", "b1", "w2", "b2"], shapes, Arrays({"X": xs, "Y": ys}))
    h = b.emit("reshape", [Arr("X")], {"shape": (1, batch)})[0]
    for i in range(2):                                                                 # (width, batch)
        pre = b.emit("dot", [2 * i, h], {"ca": (1,), "cb": (0,)})[0]
        h = b.emit("relu", [b.emit("add", [pre, b.emit("reshape", [2 * i + 1], {"shape": (width, 1)})[0]])[0]])[0]
    out = b.emit("add", [b.emit("dot", [4, h], {"ca": (0,), "cb": (0,)})[0], 5])[0]        # (batch,)
    err = b.emit("abs", [b.emit("sub", [out, Arr("Y")])[0]])[0]
    P = b.finish([b.emit("sum", [err], {"axes": (0,)})[0]])

    def point():
        return [(rng.integers(-16, 17, s) / (8 * (s[-1] if len(s) == 2 else 1))).astype(np.float32) for s in shapes]
    return P, point(), point()


def timed(fn, *a, **k):
    t0 = time.perf_counter()
    out = fn(*a, **k)
    return out, time.perf_counter() - t0


def same(part, ref):
    return [b.t for b in part.breakpoints] == [b.t for b in ref.breakpoints] and \
        all(p.pattern == q.pattern for p, q in zip(part.pieces, ref.pieces))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="8,16,32,64,128")
    ap.add_argument("--scalar-max", type=int, default=64, help="run the scalar walk up to this width")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--radius", default="4")
    ap.add_argument("--params", default="2,4,8,16,32", help="widths of the parameter-segment networks")
    ap.add_argument("--param-scalar-max", type=int, default=8, help="run the scalar walk up to this width")
    ap.add_argument("--batch", type=int, default=8, help="the parameter-segment networks' batch")
    ap.add_argument("--families", default="issue,dyadic")
    args = ap.parse_args(argv)
    R = fmpq(int(args.radius))
    print(f"{'net':>7} {'width':>5} {'sites':>6} {'bkpts':>6} {'segment s':>10} {'integral s':>11} {'scalar s':>9} "
          f"{'scalar/native':>14} {'agree':>6} {'eval/pass':>10}   identity")
    for fam in args.families.split(","):
        for width in (int(w) for w in args.widths.split(",")):
            if fam == "issue":
                P, S = issue_net(width, args.seed, R)
                x, y = [[-R]], [[R]]
            else:
                P, S = dyadic_net(width, args.seed, int(R)), None
                x, y = [np.array([-float(R)])], [np.array([float(R)])]
            part, ts = timed(N.tensor_segment_partition, P, x, y)
            res, ti = timed(N.tensor_integral_identity, P, x, y)
            nb = len(part.breakpoints) - 2
            sc, ratio, agree = "-", "-", "-"
            if width <= args.scalar_max:
                if S is not None:
                    ref, tsc = timed(scalar_segment_partition, S, [-R], [R])
                    agree = [b.t for b in part.breakpoints] == [b.t for b in ref.breakpoints] and \
                        [tuple(np.concatenate([a.ravel() for a in q.pattern]).tolist()) for q in part.pieces] == \
                        [tuple(q.pattern) for q in ref.pieces]
                else:
                    sp = N._scalarised(P, "torch", 10 ** 7, "timed")
                    seg = part.curve
                    ref, tsc = timed(scalar_segment_partition, sp.program, sp.flat_point(seg.segment[0]),
                                     sp.flat_point(seg.segment[1]))
                    agree = same(part, N._from_scalar(P, seg, ref, sp))
                sc, ratio = f"{tsc:.3f}", f"{tsc / ts:.1f}x"
            ev = sum(part.stats["evaluations"]) / part.stats["passes"]
            print(f"{fam:>7} {width:>5} {2 * width:>6} {nb:>6} {ts:>10.3f} {ti:>11.3f} {sc:>9} {ratio:>14} "
                  f"{str(agree):>6} {ev:>5.2f}/{len(P.eqns):<4}   {res.verdict.name} (lhs = rhs = {res.lhs})",
                  flush=True)
    print(f"\nsegment between two parameter vectors: the loss of a 1 -> W -> W -> 1 net on a batch of {args.batch}, "
          "inputs = all weights and biases (polynomial in t: the native walk on polynomials)")
    print(f"{'width':>5} {'params':>6} {'sites':>6} {'bkpts':>6} {'algebraic':>9} {'segment s':>10} {'integral s':>11} "
          f"{'scalar eqns':>11} {'scalar s':>9} {'scalar/native':>14} {'agree':>6}   identity")
    for width in (int(w) for w in args.params.split(",") if w):
        P, a, b = param_net(width, args.batch, args.seed + width)
        part, ts = timed(N.tensor_segment_partition, P, a, b)
        res, ti = timed(N.tensor_integral_identity, P, a, b)
        n_alg = sum(isinstance(bp.t, A.Alg) for bp in part.breakpoints)
        n_par = sum(int(np.prod(s)) for s in P.input_shapes)
        sites = sum(s["grid"] and int(np.prod(s["grid"])) or 1 for s in part.sites_json())
        eqns, sc, ratio, agree = "-", "-", "-", "-"
        if width <= args.param_scalar_max:
            sp = N._scalarised(P, "torch", 10 ** 7, "timed")
            seg = part.curve
            ref, tsc = timed(scalar_segment_partition, sp.program, sp.flat_point(seg.segment[0]),
                             sp.flat_point(seg.segment[1]))
            ref = N._from_scalar(P, seg, ref, sp)
            pairs = list(zip(part.breakpoints, ref.breakpoints))
            agree = len(ref.breakpoints) == len(part.breakpoints) and \
                all(type(u.t) is type(v.t) and A.cmp(u.t, v.t) == 0 for u, v in pairs) and \
                all(p.pattern == q.pattern for p, q in zip(part.pieces, ref.pieces))
            eqns, sc, ratio = len(sp.program.eqns), f"{tsc:.3f}", f"{tsc / ts:.1f}x"
        print(f"{width:>5} {n_par:>6} {sites:>6} {len(part.breakpoints) - 2:>6} {n_alg:>9} {ts:>10.3f} {ti:>11.3f} "
              f"{eqns:>11} {sc:>9} {ratio:>14} {str(agree):>6}   {res.verdict.name} ({part.route}, {part.values})",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
