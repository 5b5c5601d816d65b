"""Import + audit of a 784-256-256-10 ReLU MLP (float32, batch of dyadic pixels, softmax cross-entropy) from
PyTorch and JAX, against the framework's own forward + backward, in one run.

    python benchmarks/bench_audit.py [--batch 128] [--width 256] [--framework torch|jax|both]

Prints seconds for the import, the audit (exact evaluation, index set and exact kinks, exact selection
gradient, the framework's gradient and float values), and the framework's forward + backward, with ratios.
Never fails on time.
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def median(fn, repeat):
    ts = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), out


def torch_case(X, labels, sizes, repeat):
    import torch
    torch.set_num_threads(1)      # as we run (a second thread on a shared 2-core machine is pathological)

    from verify import audit
    from verify.frameworks import from_torch
    torch.manual_seed(0)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])

    class Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x, y):
            return torch.nn.functional.cross_entropy(self.net(x), y, reduction="sum")
    model, args = Loss(), (torch.tensor(X), torch.tensor(labels))
    t_imp, _ = median(lambda: from_torch(model, *args), 1)
    t_aud, rep = median(lambda: audit(model, *args), 1)

    def step():
        for p in model.parameters():
            p.grad = None
        model(*args).backward()
    for _ in range(3):
        step()
    t_fw, _ = median(step, max(repeat, 20))
    return t_imp, t_aud, t_fw, rep


def jax_case(X, labels, sizes, repeat):
    import jax
    import jax.numpy as jnp

    from verify import audit
    from verify.frameworks import from_jax
    rng = np.random.default_rng(0)
    params = [{"w": jnp.array((rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)),
               "b": jnp.array(np.zeros(b, np.float32))} for a, b in zip(sizes[:-1], sizes[1:])]

    def loss(params, x, y):
        h = x
        for i, p in enumerate(params):
            h = h @ p["w"] + p["b"]
            if i < len(params) - 1:
                h = jax.nn.relu(h)
        return -jnp.sum(jax.nn.log_softmax(h)[jnp.arange(y.shape[0]), y])
    args = (params, jnp.array(X), jnp.array(labels))
    t_imp, _ = median(lambda: from_jax(loss, *args), 1)
    t_aud, rep = median(lambda: audit(loss, *args), 1)
    g = jax.jit(jax.grad(loss))
    jax.block_until_ready(g(*args))
    t_fw, _ = median(lambda: jax.block_until_ready(g(*args)), max(repeat, 20))
    return t_imp, t_aud, t_fw, rep


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--framework", default="both", choices=("torch", "jax", "both"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(0)
    X = (rng.integers(0, 256, (args.batch, 784)) / 256).astype(np.float32)
    labels = rng.integers(0, 10, args.batch)
    sizes = [784, args.width, args.width, 10]
    print(f"MLP {'-'.join(map(str, sizes))}, batch {args.batch}, float32, softmax cross-entropy summed")
    cases = ("torch", "jax") if args.framework == "both" else (args.framework,)
    for fw in cases:
        fn = torch_case if fw == "torch" else jax_case
        try:
            t_imp, t_aud, t_fw, rep = fn(X, labels, sizes, args.repeat)
        except ImportError:
            print(f"  {fw}: not installed")
            continue
        print(f"  {fw:5s} import {t_imp:.2f} s;  import + audit {t_aud:.2f} s;  {fw} forward + backward "
              f"{t_fw * 1e3:.2f} ms;  audit / framework {t_aud / t_fw:.0f}x;  exact kinks {len(rep.exact_kinks)}, "
              f"float kinks {len(rep.float_kinks)}, verdict: {rep.selection_gradient.name}")


if __name__ == "__main__":
    main()
