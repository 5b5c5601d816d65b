"""Network scale: certified selection gradients of tensor programs against PyTorch, in one run.

    python benchmarks/bench_network.py [--batch 128] [--repeat 3] [--quick]

1. The 784-256-256-10 ReLU MLP with float32 weights, a batch of dyadic inputs (pixels k/256) and softmax
   cross-entropy summed over the batch: the exact kink set (every pre-activation that is exactly 0, from the
   local index set) and the exact selection gradient with respect to all parameters (balls only where exp and
   log enter, in the loss), against torch float32 forward + backward on the same model and batch.  Also a
   batch built so that neurons sit exactly at 0, where the gradient is torch's convention, exactly.
2. A small CNN (conv 3x3 -> relu -> maxpool 2 -> conv 3x3 -> relu -> linear) on 28x28 inputs, batch 16:
   certified gradient and index set; max-pool ties get the first-element rule.

3. Certificates of both (verify/certify/certs_tensor.py) and their independent check (``verify check``, the
   checker's own tensor kernel): the index set with the exact kink set, the same with the selection gradient
   in its side file (what an audit writes), and for the MLP the critical-point certificate; each written to a
   temporary folder, then checked: seconds to certify (and write) and to check, and check / certify.

Prints seconds (median of --repeat runs), the ratio to torch (one thread, as we run) measured in the same run,
and the peak memory of the certified computation's Python objects (tracemalloc; FLINT's own buffers are not
traced) and of the process (max RSS).  Never fails on time: the figures are for reading.
"""
import argparse
import os
import sys
import tempfile
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from flint import fmpq  # noqa: E402

from verify.certify.sites import site_index_set  # noqa: E402
from verify.interpret import tensor as T  # noqa: E402
from verify.program.arrays import Arrays, ExactArray  # noqa: E402
from verify.program.builder import Builder  # noqa: E402
from verify.program.ir import Arr  # noqa: E402
from verify.program.models import mlp_loss  # noqa: E402


def cnn(X, Y):
    names = ["w1", "b1", "w2", "b2", "W", "b"]
    shapes = [(8, 1, 3, 3), (1, 8, 1, 1), (16, 8, 3, 3), (1, 16, 1, 1), (16 * 11 * 11, 10), (10,)]
    bld = Builder("cnn", names, shapes, Arrays({"x": ExactArray.from_any(X), "y": ExactArray.from_any(Y)}))
    c1 = bld.emit("relu", [bld.emit("add", [bld.emit("conv2d", [Arr("x"), 0], {})[0], 1])[0]])[0]
    p = bld.emit("max_pool2d", [c1], {"kernel": (2, 2)})[0]
    c2 = bld.emit("relu", [bld.emit("add", [bld.emit("conv2d", [p, 2], {})[0], 3])[0]])[0]
    f = bld.emit("reshape", [c2], {"shape": (X.shape[0], 16 * 11 * 11)})[0]
    z = bld.emit("add", [bld.emit("dot", [f, 4], {})[0], 5])[0]
    lse = bld.emit("sum", [bld.emit("logsumexp", [z], {"axes": (1,)})[0]], {"axes": (0,)})[0]
    picked = bld.emit("sum", [bld.emit("mul", [z, Arr("y")])[0]], {"axes": (0, 1)})[0]
    return bld.finish([bld.emit("sub", [lse, picked])[0]])


def certify(P, params, number="exact"):
    """The exact kink set and the selection gradient: one evaluation (with the index set), one backward pass."""
    iset = site_index_set(P, params, number=number)
    r = iset.run
    with T.working_precision(r.ns, r.prec):
        g = T.vjp(r, [r.ns.const(fmpq(1))])
    return iset, g


def certificates(P, params, kinds, repeat):
    """Certify (and write) then check each kind of certificate: (name, certify seconds, check seconds)."""
    import verify
    from verify.certify.certs_tensor import tensor_critical_certificate, tensor_index_certificate
    makers = {"index set + kinks": lambda: tensor_index_certificate(P, params),
              "index set + gradient": lambda: tensor_index_certificate(P, params, gradient=True),
              "critical": lambda: tensor_critical_certificate(P, params)}
    folder = tempfile.mkdtemp(prefix="bench-cert-")
    out = []
    for name in kinds:
        path = os.path.join(folder, name.replace(" ", "").replace("+", "-") + ".json")
        sec, _ = timed(lambda: makers[name]().write(path), repeat)
        chk, _ = timed(lambda: verify.check(path), repeat)
        out.append((name, sec, chk))
    return out


def print_certificates(rows):
    for name, sec, chk in rows:
        print(f"  certificate {name:<22} certify + write {sec:.3f} s   check {chk:.3f} s   check / certify "
              f"{chk / sec:.2f}")


def timed(fn, repeat):
    ts, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), out


def peak_mb(fn):
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2 ** 20


def torch_step(model_fn, params, repeat):
    import torch
    # one thread, as our code runs: on a shared 2-core machine torch's second thread makes it 80x slower
    # (measured: 160 ms against 1.9 ms for the MLP), which would flatter every ratio
    torch.set_num_threads(1)
    tp = [torch.tensor(p, requires_grad=True) for p in params]

    def step():
        for p in tp:
            p.grad = None
        model_fn(tp).backward()
    for _ in range(3):
        step()
    ts = []
    for _ in range(max(20, repeat)):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a smaller MLP (784-64-64-10, batch 32) and CNN batch 4")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    sizes = [784, 64, 64, 10] if args.quick else [784, 256, 256, 10]
    B = 32 if args.quick else args.batch
    X = (rng.integers(0, 256, (B, 784)) / 256).astype(np.float32)
    labels = rng.integers(0, 10, B)
    params = [(rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32) if len(s) == 2 else
              (rng.standard_normal(s) * 0.01).astype(np.float32)
              for a, b in zip(sizes[:-1], sizes[1:]) for s in ((a, b), (b,))]
    P = mlp_loss(X, np.eye(10, dtype=np.float32)[labels], sizes)
    print(f"MLP {'-'.join(map(str, sizes))}, batch {B}, float32 weights, softmax cross-entropy summed")
    certify(P, params)                                    # warm: constants converted once per program
    sec, (iset, g) = timed(lambda: certify(P, params), args.repeat)
    mem = peak_mb(lambda: certify(P, params))
    try:
        import torch

        def model(tp):
            h = torch.tensor(X)
            for i in range(len(tp) // 2):
                h = h @ tp[2 * i] + tp[2 * i + 1]
                h = torch.relu(h) if i < len(tp) // 2 - 1 else h
            return torch.nn.functional.cross_entropy(h, torch.tensor(labels), reduction="sum")
        tsec = torch_step(model, params, args.repeat)
    except ImportError:
        tsec = None
    n_pre = sum(int(np.prod(st.sites.grid)) for st in T.nonsmooth_steps(P, "torch"))
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  certified (index set + exact kink set + gradient): {sec:.3f} s, peak {mem:.0f} MB "
          f"(process {rss:.0f} MB); {len(iset.kinks)} exact kinks among {n_pre} pre-activations; "
          f"|I(x)| = {iset.count}")
    if tsec:
        print(f"  torch float32 forward + backward: {tsec * 1e3:.2f} ms;  ratio {sec / tsec:.0f}x")
    print_certificates(certificates(P, params, ["index set + kinks", "index set + gradient", "critical"],
                                    args.repeat))
    # a batch that puts neurons exactly at 0: x @ W1 + b1 = 0 for the first 8 neurons
    P0, params0 = at_zero(X, labels, params, sizes)
    sec0, (iset0, _) = timed(lambda: certify(P0, params0), 1)
    print(f"  with neurons placed exactly at 0: {len(iset0.kinks)} exact kinks, {sec0:.3f} s")
    print_certificates(certificates(P0, params0, ["index set + kinks", "index set + gradient"], 1))

    Bc = 4 if args.quick else 16
    Xc = (rng.integers(0, 256, (Bc, 1, 28, 28)) / 256).astype(np.float32)
    lc = rng.integers(0, 10, Bc)
    pc = [(rng.standard_normal(s) * 0.2).astype(np.float32) for s in
          [(8, 1, 3, 3), (1, 8, 1, 1), (16, 8, 3, 3), (1, 16, 1, 1), (16 * 11 * 11, 10), (10,)]]
    C = cnn(Xc, np.eye(10, dtype=np.float32)[lc])
    certify(C, pc)
    secc, (isetc, gc) = timed(lambda: certify(C, pc), args.repeat)
    print(f"CNN conv3x3(8)-relu-maxpool2-conv3x3(16)-relu-linear, 28x28, batch {Bc}: certified {secc:.3f} s, "
          f"{len(isetc.kinks)} exact kinks (max-pool ties included), |I(x)| = "
          f"{isetc.count if isetc.count < 10 ** 6 else f'about 10^{len(str(isetc.count)) - 1}'}")
    try:
        import torch
        F = torch.nn.functional

        def cmodel(tp):
            h = F.relu(F.conv2d(torch.tensor(Xc), tp[0]) + tp[1])
            h = F.relu(F.conv2d(F.max_pool2d(h, 2), tp[2]) + tp[3])
            return F.cross_entropy(h.reshape(Bc, -1) @ tp[4] + tp[5], torch.tensor(lc), reduction="sum")
        tc = torch_step(cmodel, pc, args.repeat)
        print(f"  torch float32 forward + backward: {tc * 1e3:.2f} ms;  ratio {secc / tc:.0f}x")
    except ImportError:
        pass
    print_certificates(certificates(C, pc, ["index set + kinks", "index set + gradient"], args.repeat))


def at_zero(X, labels, params, sizes):
    """The same model with b1 chosen so that x_0 @ W1 + b1 = 0 exactly for 8 neurons of sample 0."""
    params = [p.copy() for p in params]
    z = X[:1].astype(np.float64) @ params[0].astype(np.float64)
    params[0][:, :8] = 0
    params[0][0, :8] = 1                  # column j of W1: e_0, so x @ W1[:, j] = x_0 (a dyadic pixel)
    params[1][:8] = -X[0, 0]              # b1 = -x_00: neuron j of sample 0 (and of every sample with x_i0 = x_00)
    del z
    return mlp_loss(X, np.eye(10, dtype=np.float32)[labels], sizes), params


if __name__ == "__main__":
    main()
