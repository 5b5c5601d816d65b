"""Coverage sweep over PyTorch's own operator test data (OpInfo): which ops import, which audit, and which make
verify raise something other than a clear error.

For every OpInfo of ``torch.testing._internal.common_methods_invocations.op_db`` that supports float64 and
autograd on CPU, the first sample input (or the first ``--samples``) is applied by a small function (every
tensor of the sample's input and positional arguments is an argument of the function, the rest is closed
over; the loss is the sum of every float output), which is imported with ``verify.from_torch`` and, when
that succeeds, audited with ``verify.audit``.  Each sample ends in one of:

- ``audited``: the audit ran (its verdict is counted too: PROVED / REFUTED / UNDECIDED);
- ``refused``: a clear error, an InputError (ImportFailure, ExportError: an op without a faithful
  counterpart, an input the audit cannot take) at import or audit, which the CLI reports in one line;
- ``undecided`` / ``domain``: the audit raised Undecided or DomainError (also one line on the CLI);
- ``crash``: any other exception, an internal error (exit 4 on the CLI): listed with its traceback's last
  verify frame;
- ``skipped``: the sample has no float output, or the framework itself fails on it;
- ``timeout``: over ``--timeout`` seconds.

Needs torch and expecttest.  Informational: the exit status is 0 whatever the counts.  One sample per op
takes about 8 minutes on a 2-core machine; ``--ops`` restricts the sweep to named ops.
"""
import argparse
import collections
import json
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verify.errors import DomainError, InputError, Undecided  # noqa: E402
from verify.truth import FALSE, TRUE  # noqa: E402


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def ops_to_sweep(names=None):
    """The OpInfos with float64 and autograd on CPU (optionally only those named)."""
    import torch
    from torch.testing._internal.common_methods_invocations import op_db
    out = []
    for op in op_db:
        if not op.supports_autograd or torch.float64 not in op.supported_dtypes("cpu"):
            continue
        full = op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")
        if names and op.name not in names and full not in names:
            continue
        out.append((full, op))
    return out


def sample_function(op, sample):
    """(f, args): f applies the op to the sample, args are the sample's top-level tensors (input and positional
    arguments); None when the sample has no float output."""
    import torch
    inp = sample.input
    seq = isinstance(inp, (list, tuple))
    inputs = list(inp) if seq else [inp]
    slots = [("in", i) for i, x in enumerate(inputs) if isinstance(x, torch.Tensor)]
    slots += [("arg", i) for i, x in enumerate(sample.args) if isinstance(x, torch.Tensor)]
    args = tuple((inputs[i] if k == "in" else sample.args[i]).detach().clone() for k, i in slots)

    def f(*ts):
        ins, pos = list(inputs), list(sample.args)
        for (k, i), t in zip(slots, ts):
            (ins if k == "in" else pos)[i] = t
        out = op.op(ins if seq else ins[0], *pos, **sample.kwargs)
        flat = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        floats = [t.sum() for t in flat if t.is_floating_point()]
        if not floats:
            raise LookupError("no float output")
        total = floats[0]
        for t in floats[1:]:
            total = total + t
        return total
    return f, args


def last_verify_frame(e):
    frames = [fr for fr in traceback.extract_tb(e.__traceback__) if "/verify/" in fr.filename]
    fr = frames[-1] if frames else traceback.extract_tb(e.__traceback__)[-1]
    where = fr.filename.split("/verify/")[-1] if "/verify/" in fr.filename else fr.filename
    msg = str(e).splitlines()[0][:200] if str(e) else ""
    return f"verify/{where}:{fr.lineno} in {fr.name}: {type(e).__name__}: {msg}"


def samples(op, n):
    """The first ``n`` sample inputs of an op in float64."""
    import itertools

    import torch
    return list(itertools.islice(op.sample_inputs("cpu", torch.float64, requires_grad=False), n))


def sweep_one(op, sample, timeout):
    """(outcome, detail) for one sample of one op."""
    import verify
    from verify import audit
    f, args = sample_function(op, sample)
    try:
        f(*args)
    except LookupError:
        return "skipped", "no float output"
    except Exception as e:               # the op itself fails on its sample outside verify
        return "skipped", f"torch: {type(e).__name__}"
    signal.alarm(timeout)
    stage = "import"
    try:
        imp = verify.from_torch(f, *args)
        stage = "audit"
        rep = audit(f, *args, framework="torch")
        verdict = {TRUE: "PROVED", FALSE: "REFUTED"}.get(rep.selection_gradient, "UNDECIDED")
        return "audited", f"{verdict} ({len(imp.program.eqns)} equations)"
    except Timeout:
        return "timeout", stage
    except InputError as e:
        return "refused", f"{stage}: {str(e).splitlines()[0][:160]}"
    except Undecided as e:
        return "undecided", f"{stage}: {str(e)[:160]}"
    except DomainError as e:
        return "domain", f"{stage}: {str(e)[:160]}"
    except Exception as e:               # what the sweep is looking for: an internal error
        return "crash", f"{stage}: {last_verify_frame(e)}"
    finally:
        signal.alarm(0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", help="comma-separated op names (default: every op with float64 autograd on CPU)")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per op (import and audit), default 120")
    ap.add_argument("--samples", type=int, default=1, help="samples per op (default 1: the first)")
    ap.add_argument("--json", metavar="FILE", help="write every op's outcome to FILE")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import logging
    logging.disable(logging.CRITICAL)
    signal.signal(signal.SIGALRM, _alarm)
    ops = ops_to_sweep(set(args.ops.split(",")) if args.ops else None)
    print(f"{len(ops)} OpInfos with float64 autograd on CPU, {args.samples} sample(s) each", flush=True)
    results, t0 = {}, time.perf_counter()
    for k, (name, op) in enumerate(ops):
        try:
            todo = samples(op, args.samples)
        except Exception as e:           # OpInfo's own sample generator failing
            results[name] = ("skipped", f"no samples: {type(e).__name__}")
            continue
        if not todo:
            results[name] = ("skipped", "no samples")
        for j, sample in enumerate(todo):
            key = name if args.samples == 1 else f"{name}#{j}"
            outcome, detail = sweep_one(op, sample, args.timeout)
            results[key] = (outcome, detail)
            if outcome in ("crash", "timeout"):
                print(f"[{k + 1}/{len(ops)}] {key}: {outcome}: {detail}", flush=True)
    counts = collections.Counter(o for o, _ in results.values())
    print(f"\n{time.perf_counter() - t0:.0f} s; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    verdicts = collections.Counter(d.split()[0] for o, d in results.values() if o == "audited")
    print("audit verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    crashes = sorted((n, d) for n, (o, d) in results.items() if o == "crash")
    if crashes:
        print("\ncrashes:")
        for n, d in crashes:
            print(f"  {n}: {d}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({n: {"outcome": o, "detail": d} for n, (o, d) in results.items()}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
