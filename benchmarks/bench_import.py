"""Import benchmark: verify.from_torch / verify.from_jax on the 784-256-256-10 ReLU MLP with softmax
cross-entropy and a batch of 128 (float32 weights and pixels, integer labels), beside the framework's own
forward + backward on the same batch, and the exact selection gradient of the imported program.

Rows: the first import in the process (includes torch.export's and JAX's own warm-up), the median of
--repeat warm imports with the weights as program inputs and as exact constants, the framework's float32
forward + backward (median), and verify.grad of the imported program (exact where it can be, balls at 128
bits for the transcendental parts of the loss).  Informational: nothing is asserted, the exit status is 0.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import verify  # noqa: E402
from verify.frameworks import available  # noqa: E402


def timed(fn, repeat):
    out, times = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def data(batch, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [784, 256, 256, 10]
    ws = [(rng.normal(size=(m, n)) / np.sqrt(m)).astype(np.float32) for m, n in zip(sizes, sizes[1:])]
    bs = [(rng.normal(size=n) / 10).astype(np.float32) for n in sizes[1:]]
    x = (rng.integers(0, 256, size=(batch, 784)) / 255).astype(np.float32)
    y = rng.integers(0, 10, size=batch)
    return ws, bs, x, y


def bench_torch(batch, repeat, rows):
    import torch
    import torch.nn as nn
    ws, bs, x, y = data(batch)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(w.shape[0], w.shape[1]) for w in ws)
            with torch.no_grad():
                for layer, w, b in zip(self.layers, ws, bs):
                    layer.weight.copy_(torch.from_numpy(w.T))
                    layer.bias.copy_(torch.from_numpy(b))

        def forward(self, x, y):
            for i, layer in enumerate(self.layers):
                x = layer(x)
                if i < 2:
                    x = torch.relu(x)
            return nn.functional.cross_entropy(x, y)

    model, xt, yt = MLP(), torch.from_numpy(x), torch.from_numpy(y)
    t0 = time.perf_counter()
    verify.from_torch(model, xt, yt)
    rows.append(("torch", "first import (with torch.export warm-up)", time.perf_counter() - t0))
    imp, t = timed(lambda: verify.from_torch(model, xt, yt), repeat)
    rows.append(("torch", f"import, weights as inputs ({len(imp.program.eqns)} equations)", t))
    _, t = timed(lambda: verify.from_torch(model, xt, yt, params="constants"), repeat)
    rows.append(("torch", "import, weights as constants", t))

    def fwd_bwd():
        model.zero_grad()
        model(xt, yt).backward()
    _, t = timed(fwd_bwd, max(repeat, 5))
    rows.append(("torch", "float32 forward + backward (the framework)", t))
    g, t = timed(lambda: verify.grad(imp.program, imp.point), 1)
    rows.append(("torch", f"verify.grad of the imported program (exact={g.exact})", t))


def bench_jax(batch, repeat, rows):
    import jax
    import jax.numpy as jnp
    ws, bs, x, y = data(batch)
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in zip(ws, bs)]
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def loss(params, x, y):
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i < 2:
                h = jax.nn.relu(h)
        return -jnp.take_along_axis(jax.nn.log_softmax(h), y[:, None], axis=1).mean()

    t0 = time.perf_counter()
    verify.from_jax(loss, params, xj, yj)
    rows.append(("jax", "first import (with make_jaxpr warm-up)", time.perf_counter() - t0))
    imp, t = timed(lambda: verify.from_jax(loss, params, xj, yj), repeat)
    rows.append(("jax", f"import, weights as inputs ({len(imp.program.eqns)} equations)", t))
    _, t = timed(lambda: verify.from_jax(loss, params, xj, yj, constant_args=(0,)), repeat)
    rows.append(("jax", "import, weights as constants", t))
    grad = jax.jit(jax.value_and_grad(loss))
    jax.block_until_ready(grad(params, xj, yj))
    _, t = timed(lambda: jax.block_until_ready(grad(params, xj, yj)), max(repeat, 5))
    rows.append(("jax", "float32 forward + backward (jit, the framework)", t))
    g, t = timed(lambda: verify.grad(imp.program, imp.point), 1)
    rows.append(("jax", f"verify.grad of the imported program (exact={g.exact})", t))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-jax", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    for name, fn, skip in (("torch", bench_torch, args.no_torch), ("jax", bench_jax, args.no_jax)):
        if skip or not available(name):
            continue
        fn(args.batch, args.repeat, rows)
    print(f"784-256-256-10 MLP, softmax cross-entropy, batch {args.batch}; medians of {args.repeat} runs")
    for fw, what, t in rows:
        print(f"{fw:6s} {what:58s} {t * 1000:10.1f} ms")


if __name__ == "__main__":
    main()
