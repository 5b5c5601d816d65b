"""The audit at the framework's speed (issue 18): the float filter against torch's own float32 forward + backward.

    python benchmarks/bench_filter.py [--models mlp,net,resnet] [--repeat 5] [--exact]

Three models, each audited with respect to every input (parameters and data) as ``verify.audit`` does:

- mlp:    784-256-256-10 ReLU MLP, batch 128 of dyadic pixels, softmax cross-entropy summed;
- net:    pytorch/examples' MNIST ``Net`` (conv 1->32, conv 32->64, relu, max_pool2d 2, dropout, fc 9216->128,
          fc 128->10, log_softmax, nll_loss; eval mode) on 64 scikit-learn digits upsampled to 28x28;
- resnet: a ResNet-8 (a 3x3 stem, three stages of one basic block with BatchNorm, 16/32/64 channels, global
          average pooling, a linear layer; eval mode with non-trivial running statistics), 32x32 inputs, batch 32.

For each: torch float32 forward + backward (median, torch on one thread); the first ``verify.audit`` (export,
import and audit, once); the cached audit: the model imported once, then the framework's gradient, its own
intermediate values and ``audit_imported`` (the float filter, the cone, the gradient enclosure, the proved
bound, the verdict), median of --repeat runs (``verify.Auditor.audit`` when that API exists); the ratio to
torch measured in the same run; how many sites floats could not decide (decided exactly through their cone);
the peak memory of the process.  --exact also times the exact path (``exact=True``: exact arithmetic
throughout, as before the filter).  numpy's BLAS runs on one thread too (threadpoolctl), as torch does.
Never fails on time: the figures are for reading.
"""
import argparse
import os
import resource
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def median(fn, repeat):
    ts, out = [], None
    for _ in range(repeat):
        out = None                              # one result alive at a time (reports hold a network's values)
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), out


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -------------------------------------------------------------------------------------------------- models

def mlp_case():
    import torch
    rng = np.random.default_rng(0)
    X = torch.tensor((rng.integers(0, 256, (128, 784)) / 256).astype(np.float32))
    y = torch.tensor(rng.integers(0, 10, 128))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                              torch.nn.ReLU(), torch.nn.Linear(256, 10))

    class Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x, y):
            return torch.nn.functional.cross_entropy(self.net(x), y, reduction="sum")
    return "MLP 784-256-256-10, batch 128", Loss(), (X, y)


def net_case(n=64):
    """pytorch/examples' MNIST Net and its loss, as examples/mnist_net.py writes them (seed 1, eval mode)."""
    from examples.mnist_net import make
    model, args = make(n, seed=1)
    return f"MNIST Net, {n} digits", model, args


def resnet_case(batch=32):
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.short = None
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + (x if self.short is None else self.short(x)))

    class ResNet8(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            self.layers = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
            self.fc = nn.Linear(64, 10)

        def forward(self, x, y):
            out = self.layers(F.relu(self.bn(self.conv(x))))
            out = F.adaptive_avg_pool2d(out, 1).flatten(1)
            return F.cross_entropy(self.fc(out), y)
    torch.manual_seed(2)
    model = ResNet8()
    with torch.no_grad():                           # running statistics as after training, not the defaults
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    model.eval()
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.standard_normal((batch, 3, 32, 32)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 10, batch))
    return f"ResNet-8, 32x32, batch {batch}", model, (x, y)


CASES = {"mlp": mlp_case, "net": net_case, "resnet": resnet_case}


# ------------------------------------------------------------------------------------------------- timing

def torch_step(model, args, repeat):
    def step():
        model.zero_grad(set_to_none=True)
        model(*args).backward()
    for _ in range(3):
        step()
    return median(step, max(repeat, 20))[0]


def cached_audit(model, args, repeat, exact=False):
    """(seconds per audit with the import done once, the report, how it was timed)."""
    import verify
    if hasattr(verify, "Auditor") and not exact:
        aud = verify.Auditor(model, *args)
        aud.audit()
        t, rep = median(lambda: aud.audit(*args), repeat)
        return t, rep, "verify.Auditor.audit"
    from verify.auditing import audit_imported
    from verify.auditing.floats import var_values
    from verify.frameworks import get
    mod = get("torch").module()
    imp = mod.import_model(model, *args)

    def once():
        g = mod.gradient(model, args, imp)
        fv = var_values(imp, mod.framework_values(imp, *args))
        return audit_imported(imp, g, framework_vars=fv, exact=exact)
    once()
    t, rep = median(once, repeat)
    return t, rep, "audit_imported on a prepared Imported (+ torch's gradient and values)"


def run_case(name, args):
    import torch

    import verify
    title, model, margs = CASES[name]()
    t_fw = torch_step(model, margs, args.repeat)
    t0 = time.perf_counter()
    first = verify.audit(model, *margs)
    t_first = time.perf_counter() - t0
    first_word = first.verdict_word
    del first                                   # one report alive at a time
    t_cached, rep, how = cached_audit(model, margs, args.repeat)
    stats = getattr(rep.iset, "stats", None)
    cone = f"{stats.sites} site(s) through their cone" if stats is not None else "exact path"
    print(f"{title}")
    print(f"  torch float32 forward + backward   {t_fw * 1e3:9.2f} ms")
    print(f"  first verify.audit (export+audit)  {t_first:9.2f} s   verdict {first_word}")
    print(f"  cached audit                       {t_cached * 1e3:9.1f} ms = {t_cached / t_fw:6.1f}x torch   "
          f"[{how}]")
    print(f"  exact kinks {len(rep.exact_kinks)}, float kinks {len(rep.float_kinks)}, undecided in floats: {cone}; "
          f"verdict {rep.verdict_word}; elements compared with the exact gradient: "
          f"{sum(a.escalated for a in rep.agreement)}")
    if args.exact:
        t_ex, rep_ex, _ = cached_audit(model, margs, 1, exact=True)
        print(f"  exact path (exact=True)            {t_ex * 1e3:9.1f} ms = {t_ex / t_fw:6.1f}x torch; "
              f"filter / exact {t_cached / t_ex:.3f}; verdict {rep_ex.verdict_word}")
    print(f"  process peak memory so far         {rss_mb():9.0f} MB")
    del torch
    return t_cached, t_fw


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mlp,net,resnet")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--exact", action="store_true", help="also time the exact path (slow for the CNNs)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch
    from threadpoolctl import threadpool_limits
    torch.set_num_threads(1)
    with threadpool_limits(1):
        for name in args.models.split(","):
            run_case(name, args)


if __name__ == "__main__":
    main()
