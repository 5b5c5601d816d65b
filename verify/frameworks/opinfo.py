"""PyTorch's own operator test data (OpInfo's ``op_db``) as a differential suite for the torch importer.

For every OpInfo that supports float64 and autograd on the CPU, the first sample of ``op.sample_inputs("cpu",
torch.float64, requires_grad=False)`` becomes a function of the sample's tensors: it applies the op through
its ``gradcheck_wrapper`` (as torch's gradient tests do) and returns a scalar loss, the sum of every real
output weighted by fixed small integers (distinct weights, so that a permutation or a wrong element changes
the loss), followed by the real outputs themselves. An output that torch gives no gradient (no grad_fn on
torch's own run, such as native_layer_norm's saved mean and rstd: a stop-gradient) is left out of the loss and
compared as a value only. ``check`` imports that function with ``from_torch``, evaluates the program (exact
rationals, balls where values stop being rational) and runs its reverse mode, and sets the result beside
torch's own float64 values and autograd gradient. The result is one of:

- ``imported``: every output and every gradient element equal torch's to float64 rounding
  (``agrees``: |ours - torch| <= 2^-30 * max(1, |ours|) elementwise);
- ``mismatch``: imported, but a value or a gradient differs from torch's (a wrong mapping or convention);
- ``refused``: an ImportFailure, with a reason class (``REASONS``) and the message;
- ``undefined`` / ``undecided``: the program is not defined at the sample (DomainError), or a sign could
  not be decided at the precision cap;
- ``crashed``: any other exception (a bug: the goal is zero);
- ``no real output`` / ``no sample``: the sample has no floating-point or complex output, or torch itself cannot
  run it as a function of its tensors (sparse layouts): not counted as imported.

Needs the ``expecttest`` package (torch's test data imports it).  Nothing here is used by the rest of
verify: tests/test_opinfo.py and benchmarks/coverage_torch.py are its users.
"""
import re
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

RTOL = 2.0 ** -30

# ops whose first sample imports but where torch's gradient is not the derivative of the function it computes
# (measured: tests/test_import_torch_ops.py and tests/test_import_torch.py say why), so no faithful program
# can equal it
KNOWN_MISMATCHES = {
    "as_strided_scatter": "torch's backward gives the gradient to self at the positions src overwrites too",
    "nn.functional.hardsigmoid": "torch's float64 backward multiplies by the float32 constant 1/6",
}

# reason classes of refusals: (class, pattern of the ImportFailure message), first match wins
REASONS = (
    ("complex", r"complex"),
    ("random", r"random|dropout|bernoulli|normal\b"),
    ("unchecked decomposition", r"would decompose it into core ATen ops|decomposes it into core ATen ops with a kink"),
    ("higher-order op", r"higher-order op"),
    ("integer from reals", r"computes integers from real values|indices computed from real values|"
                           r"indices are integers computed|indices of max|data-dependent"),
    ("no mapping", r"is not supported by the importer"),
    ("export failed", r"torch\.export could not"),
    ("not a real function", r"not a real-number function|not a real number"),
)


@dataclass
class Outcome:
    """The result of one op: ``name`` (op name and variant), ``status`` (see the module docstring),
    ``reason`` (a class of REASONS for a refusal, else ""), ``detail`` (the message, first line), the sizes of
    the sample (``n_inputs`` real inputs, ``n_eqns`` equations when imported) and the ``seconds`` it took."""
    name: str
    status: str
    reason: str = ""
    detail: str = ""
    n_inputs: int = 0
    n_eqns: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict, repr=False)


def op_name(op):
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


def float64_autograd_ops():
    """The OpInfos of op_db that support float64 and autograd on the CPU, in op_db's order."""
    import torch
    from torch.testing._internal.common_methods_invocations import op_db
    return [op for op in op_db if torch.float64 in op.supported_dtypes("cpu") and op.supports_autograd]


def reason_class(message):
    for name, pat in REASONS:
        if re.search(pat, message, re.IGNORECASE):
            return name
    return "other"


class Case:
    """One sample of an op as a function of its tensors: ``args`` (the sample's tensor leaves: input, args
    and kwargs, in that order), ``fn(*args)`` -> (loss, *real outputs)."""

    def __init__(self, op, sample):
        import torch
        from torch.utils import _pytree as pytree
        self.op, self.sample = op, sample
        leaves, self.spec = pytree.tree_flatten((sample.input, sample.args, sample.kwargs))
        self.slots = [i for i, v in enumerate(leaves) if isinstance(v, torch.Tensor)]
        self.leaves = leaves
        self.args = [leaves[i].detach().clone() for i in self.slots]
        self.weights = None
        self.stopped = None      # indices of the real outputs torch gives no gradient (no grad_fn): not in the loss
        self.frozen = set()      # positions in args that torch does not differentiate (running statistics)

    def inputs(self):
        """The arguments of ``fn``: the sample's tensors except the frozen ones (those are constants of fn)."""
        return [a for i, a in enumerate(self.args) if i not in self.frozen]

    def rebuild(self, tensors, frozen=None):
        from torch.utils import _pytree as pytree
        leaves = list(self.leaves)
        given = iter(tensors)
        frozen = frozen or {}
        for k, i in enumerate(self.slots):
            leaves[i] = frozen.get(k, self.args[k]) if k in self.frozen else next(given)
        return pytree.tree_unflatten(leaves, self.spec)

    def module(self, loss_only=False):
        """``fn`` as a torch Module whose buffers are the frozen arguments (an op may update them in place, as
        batch norm in training mode updates its running statistics); ``loss_only``: it returns the loss alone
        (what an audit takes)."""
        import torch
        case = self

        class Sample(torch.nn.Module):
            def __init__(self):
                super().__init__()
                for k in sorted(case.frozen):
                    self.register_buffer(f"frozen{k}", case.args[k].detach().clone())

            def forward(self, *tensors):
                out = case.apply(tensors, {k: getattr(self, f"frozen{k}") for k in case.frozen})
                return out[0] if loss_only else out
        return Sample()

    def outputs(self, out):
        """The real (floating-point) tensors of an op's output, in pytree order; a complex tensor as its real and
        imaginary parts (torch.view_as_real), so that an op with complex results is judged on them."""
        import torch
        from torch.utils import _pytree as pytree
        return [torch.view_as_real(v) if v.is_complex() else v for v in pytree.tree_leaves(out)
                if isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex())]

    def fn(self, *tensors):
        return self.apply(tensors, {k: self.args[k].detach().clone() for k in self.frozen})

    def apply(self, tensors, frozen):
        import torch
        inp, args, kwargs = self.rebuild(tensors, frozen)
        # the function torch's own gradient tests differentiate: OpInfo's gradcheck_wrapper (the identity for most
        # ops; for ops defined on Hermitian matrices it passes input + input^H, as eigvalsh's gradient is the
        # derivative of no function of the whole matrix that reads one triangle; masked ops zero the outputs
        # their mask leaves out)
        outs = self.outputs(self.op.gradcheck_wrapper(self.op.op, inp, *args, **kwargs))
        if self.weights is None:
            g = torch.Generator().manual_seed(0)
            self.weights = [torch.randint(1, 17, tuple(o.shape), generator=g).to(o.dtype) for o in outs]
        if self.stopped is None and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors):
            # read once, on torch's own run with gradients: outputs with no grad_fn (a stop-gradient such as
            # native_layer_norm's mean) have no gradient in torch, so they are compared as values only
            self.stopped = {i for i, o in enumerate(outs) if not o.requires_grad}
        stopped = self.stopped or set()
        loss = sum(((w * o).sum() for i, (w, o) in enumerate(zip(self.weights, outs)) if i not in stopped),
                   torch.zeros((), dtype=torch.float64))
        self.rtol = max([RTOL] + [8 * float(torch.finfo(o.dtype).eps) for o in outs])
        return (loss, *outs)


def torch_run(case):
    """torch's float64 outputs and gradient of the loss (one array per floating-point argument of ``fn``,
    zeros where the loss does not depend on it).  Arguments that torch refuses to differentiate (batch-norm
    running statistics) are frozen, one at a time from the last, until torch accepts: they become constants
    of ``fn``."""
    import torch

    def attempt():
        args = [a.detach().clone().requires_grad_(a.is_floating_point()) for a in case.inputs()]
        return args, case.fn(*args)
    try:
        args, res = attempt()
    except RuntimeError as e:
        if "not differentiable with respect to argument" not in str(e):
            raise
        args = res = None
        free = [k for k in range(len(case.args)) if case.args[k].is_floating_point()]
        for k in reversed(free):
            case.frozen.add(k)
            try:
                args, res = attempt()
                break
            except RuntimeError as e2:
                if "not differentiable with respect to argument" not in str(e2):
                    raise
        if res is None:
            raise
    floats = [a for a in args if a.is_floating_point()]
    if res[0].requires_grad and floats:
        grads = torch.autograd.grad(res[0], floats, allow_unused=True)
    else:
        grads = [None] * len(floats)
    grads = [np.zeros(tuple(a.shape)) if g is None or g._is_zerotensor() else g.detach().numpy()
             for a, g in zip(floats, grads)]
    return [r.detach().to(torch.float64).numpy() for r in res], grads


def as_floats(a):
    """An array of fmpq / arb (or a number) as float64 (a ball's midpoint)."""
    from flint import arb, fmpq

    def one(v):
        if isinstance(v, fmpq):
            return int(v.p) / int(v.q)
        if isinstance(v, arb):
            return float(v.mid()) if v.is_finite() else float("nan")
        return float(v)
    return np.vectorize(one, otypes=[float])(np.asarray(a, dtype=object))


def agrees(ours, theirs, rtol=RTOL):
    """|ours - theirs| <= rtol * max(1, |ours|) element by element (also False on a shape mismatch)."""
    o, t = as_floats(ours), np.asarray(theirs, dtype=np.float64)
    if o.shape != t.shape:
        return False
    both_nan = np.isnan(o) & np.isnan(t)
    return bool(np.all(both_nan | (np.abs(o - t) <= rtol * np.maximum(1.0, np.abs(o)))))


def ours_run(imported):
    """Our outputs and gradient of output 0 (the loss) at the imported example point."""
    from flint import fmpq

    from ..interpret.tensor import coerce_inputs, escalate, output_values, run, user_value, vjp
    prog = imported.program
    xs = coerce_inputs(prog, imported.point)

    def job(ns, p):
        r = run(prog, ns, [ns.const_array(x) for x in xs], "torch", None, p)
        vals = output_values(r)
        cts = vjp(r, [ns.const(fmpq(1))] + [None] * (prog.n_outputs - 1))
        grads = [ns.zeros(prog.shapes[i]) if c is None else c for i, c in enumerate(cts)]
        return [user_value(ns, v) for v in vals], [user_value(ns, g) for g in grads]
    return escalate("exact", None, job)


def check(op, sample=None):
    """The Outcome of one OpInfo (its first sample unless ``sample`` is given)."""
    from ..errors import DomainError, InputError, Undecided
    from .torch import from_torch
    name = op_name(op)
    t0 = time.perf_counter()

    def done(status, reason="", detail="", **kw):
        return Outcome(name, status, reason, detail.split("\n")[0][:300], seconds=time.perf_counter() - t0, **kw)
    try:
        if sample is None:
            sample = next(iter(op.sample_inputs("cpu", __import__("torch").float64, requires_grad=False)))
        case = Case(op, sample)
        theirs, tgrads = torch_run(case)
    except Exception as e:      # the sample itself does not run in torch: not ours to judge
        return done("no sample", "torch", f"{type(e).__name__}: {e}")
    n_in = sum(1 for a in case.inputs() if a.is_floating_point())
    if len(theirs) == 1:
        return done("no real output", "", "the op's first sample has no floating-point output", n_inputs=n_in)
    try:
        imp = from_torch(case.module(), *case.inputs(), name=name.replace(".", "_"))
    except InputError as e:
        return done("refused", reason_class(str(e)), str(e), n_inputs=n_in)
    except Exception as e:
        return done("crashed", "import", f"{type(e).__name__}: {e} @ {_where(e)}", n_inputs=n_in)
    n_eq = len(imp.program.eqns)
    try:
        vals, grads = ours_run(imp)
    except DomainError as e:
        return done("undefined", "", str(e), n_inputs=n_in, n_eqns=n_eq)
    except Undecided as e:
        return done("undecided", "", str(e), n_inputs=n_in, n_eqns=n_eq)
    except InputError as e:
        return done("refused", reason_class(str(e)), str(e), n_inputs=n_in, n_eqns=n_eq)
    except Exception as e:
        return done("crashed", "evaluate", f"{type(e).__name__}: {e} @ {_where(e)}", n_inputs=n_in, n_eqns=n_eq)
    # the program's inputs are the floating-point arguments, in order
    if len(vals) != len(theirs):
        return done("mismatch", "outputs", f"{len(vals)} outputs, torch has {len(theirs)}", n_inputs=n_in,
                    n_eqns=n_eq)
    for i, (o, t) in enumerate(zip(vals, theirs)):
        if not agrees(o, t, case.rtol):
            return done("mismatch", "value", f"output {i} differs from torch's", n_inputs=n_in, n_eqns=n_eq,
                        extra={"ours": as_floats(o), "torch": t})
    for i, (o, t) in enumerate(zip(grads, tgrads)):
        if not agrees(o, t, case.rtol):
            return done("mismatch", "gradient", f"the gradient of input {i} differs from torch's", n_inputs=n_in,
                        n_eqns=n_eq, extra={"ours": as_floats(o), "torch": t})
    return done("imported", n_inputs=n_in, n_eqns=n_eq, extra={"imported": imp, "case": case})


def _where(e):
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return "?"
    f = tb[-1]
    return f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}"
