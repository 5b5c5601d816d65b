"""PyTorch: import a model (torch.export), its own gradient, and its own intermediate values.

The importer is an interpreter over torch.export's core ATen graph (``run_decompositions()``), one small entry
per op in ``ATEN`` with the op's backward at its kinks beside it.  Kink facts are those of the op's real
backward (derivatives.yaml / the CPU kernels), measured live in tests/test_import_torch.py at a tie and off
it.  ``gradient`` is what torch's autograd returns for the model, ``framework_values`` what torch computes at
every node of the imported graph: the two things an audit sets beside the exact evaluation.
"""
import math as _math
import operator as _operator

import numpy as _np
from flint import fmpq

from ..errors import InputError
from ..program.ir import Eqn, Lit
from ..program.prims import PRIMITIVES
from . import torch_linalg, torch_ops  # noqa: F401  (torch_linalg registers its ops in torch_ops.OPS)
from .lowering import (Const, Cond, ImportFailure, Imported, InputInfo, Lowering, Masked, NonReal, Origin, Stopped,
                       Tensor, Unavailable, exact_q, point_value)

NAME = "torch"

ATEN = {}      # "relu.default" -> (handler, kink note)


def aten(*names, note=""):
    """Register a handler for the core ATen ops ``names`` (``op.overload``); ``note`` states its kink semantics."""
    def deco(fn):
        for n in names:
            ATEN[n] = (fn, note)
        return fn
    return deco


_FLOAT_DTYPES = ("torch.float16", "torch.bfloat16", "torch.float32", "torch.float64")
# ops that only create or convert constants: with no real operand they are evaluated by torch at import time
# and their result read exactly (a float constant of the program is the float the code produces).  Any other
# float op on constants is lowered like the rest, in exact arithmetic (1 / 3 stays 1/3).  ``empty`` is not
# here: its values are undefined.
_CONCRETE = {"full.default", "scalar_tensor.default", "zeros.default", "ones.default", "arange.default",
             "arange.start", "arange.start_step", "_to_copy.default", "lift_fresh_copy.default"}


class TorchLowering(Lowering):
    def __init__(self, name, inputs):
        super().__init__("torch", name, inputs)
        import torch
        self.torch = torch
        self.node = None
        self.dependent = set()         # the nodes whose values depend on the program's inputs
        self.run_values = None         # () -> {node: torch's value at the example point}, computed once
        # [(atoms, Origin, reason)]: outputs of one op whose gradients torch's backward takes only all together
        # (group norm's saved mean and rstd): the loss must reach all of them differentiably, or none
        self.joint = []

    def constant_value(self, node):
        """torch's own value of a node that does not depend on the program's inputs (so it is the same at every
        point): an index computed in floats from shapes and constants is the index torch uses."""
        if not callable(self.run_values):
            return self.run_values[node]
        self.run_values = self.run_values()
        return self.run_values[node]

    def index_map(self, t, fn):
        """Apply a data-movement op ``fn`` (a function of a torch tensor) to the positions of ``t``: the op's own
        code computes which element lands where, so the result is faithful by construction."""
        pos = self.torch.arange(_math.prod(t.shape), dtype=self.torch.int64).reshape(t.shape)
        return self.take(t, fn(pos).numpy(), "map")


def _op_name(target):
    s = str(target)
    return s[len("aten."):] if s.startswith("aten.") else s


def _source(node):
    """``file:line `code``` of the user's frame that created the node (the last frame outside torch and verify)."""
    import os
    st = node.meta.get("stack_trace") or ""
    lines = [ln.strip() for ln in st.strip().splitlines()]
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for i in range(len(lines) - 1, -1, -1):
        if not lines[i].startswith("File "):
            continue
        try:
            path = lines[i].split('"')[1]
            line = lines[i].split("line ")[1].split(",")[0]
        except IndexError:
            continue
        if os.path.abspath(path).startswith(here) or f"{os.sep}torch{os.sep}" in path:
            continue
        code = lines[i + 1] if i + 1 < len(lines) and not lines[i + 1].startswith("File ") else ""
        short = os.path.basename(path)
        return f"{short}:{line} `{code}`" if code else f"{short}:{line}"
    return ""


def _module_path(node):
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return "" if path in ("", "L__self__") else str(path)


def _is_float(dtype):
    return str(dtype) in _FLOAT_DTYPES


def _live_nodes(graph, user_outputs):
    """The nodes the user's outputs depend on (buffer mutations, such as batch-norm running statistics in
    training mode, are not outputs of the real-number function)."""
    live, todo = set(), [a for a in user_outputs if hasattr(a, "all_input_nodes")]
    while todo:
        n = todo.pop()
        if n in live:
            continue
        live.add(n)
        todo.extend(n.all_input_nodes)
    return live


def from_torch(f, *example_args, params="inputs", name=None):
    """Import a PyTorch model or function as a verify tensor program.

    ``f`` is a ``torch.nn.Module`` or a function of tensors; ``example_args`` its example arguments (they fix the
    shapes, and integer tensors among them, such as labels, become exact constants: integers are not
    differentiated).  The program is read from ``torch.export.export(...).run_decompositions()`` (the core
    ATen opset), one entry of ``ATEN`` per op with its kink semantics taken from the op's real backward
    (``relu`` 0 at 0, ``clamp`` 1 at its bounds, ``hardtanh`` and ``relu6`` 0 at theirs, ``maximum`` 1/2 at a
    tie, ``max_pool2d`` the first maximal element of a window, ...), written as explicit params.

    ``params="inputs"``: the module's parameters are program inputs (before the function's own inputs, in the
    exported order), so ``verify.grad`` differentiates with respect to the weights too; ``"constants"``: they
    are exact array constants named by their qualified names (``const('l1.weight')``).  Buffers (batch-norm
    statistics) are always constants.  Every float is its exact dyadic value: float32 weights are exactly the
    float32 numbers, Python scalars (``x * 0.1``, ``eps``) their double value, and float casts are the
    identity, so the program is the real-number program that the float code approximates.  Constants inside
    a kernel are the kernel's double constants (GELU's M_SQRT1_2 and sqrt(2/pi); a float32 kernel rounds them
    to float32, as it rounds everything else).

    Returns an ``Imported`` (program, the example point as exact arrays, input and constant names, the origin
    of every equation).  Raises ImportFailure naming the op, the module and the source line for anything
    without a faithful counterpart (an unsupported op, ``torch.sort`` without ``stable=True`` along more than
    16 elements, max-pool indices used as data, ``detach``, ...).
    """
    from torch.utils import _pytree as pytree
    if params not in ("inputs", "constants"):
        raise ImportFailure(f"params={params!r} must be 'inputs' or 'constants'")
    ep, name, provenance = export(f, *example_args, name=name)
    return lower_exported(ep, pytree.tree_leaves(tuple(example_args)), params, name, provenance=provenance)


def export(f, *example_args, name=None):
    """(the decomposed ExportedProgram, the model's name, the provenance of nodes from unchecked decompositions
    for ``lower_exported``): ``torch.export.export(...).run_decompositions()``
    with the ops of ``_KEEP`` kept whole, refused (ImportFailure) when the decomposition could change a kink
    or drop a stop-gradient.  The expensive half of an import; ``lower_exported`` is the other."""
    import torch
    if isinstance(f, torch.nn.Module):
        module = f
        name = name or type(f).__name__
    else:
        module = _function_module(f)
        name = name or getattr(f, "__name__", "f")
    table = torch.export.default_decompositions()
    for op in _KEEP:
        table.pop(getattr(torch.ops.aten, op).default, None)
    for op in torch_ops.KEEP:
        base, overload = op.split(".")
        table.pop(getattr(getattr(torch.ops.aten, base), overload), None)
    try:
        with _custom_functions() as custom, _fake_kernels():
            ep = torch.export.export(module, tuple(example_args))
    except Exception as e:     # torch raises many unrelated types here; the message is what matters
        raise ImportFailure(f"torch.export could not export {name}: {type(e).__name__}: {e}".split("\n")[0]) from e
    if custom:
        raise ImportFailure(f"torch.autograd.Function {custom[0].__qualname__} ({name}): torch.export keeps its "
                            "forward and drops its own backward, so torch's gradient is not the derivative of the "
                            "exported program (a custom backward is not checked against its forward)")
    decomposed = _check_decompositions(ep, table)
    try:
        with _fake_kernels():
            ep = ep.run_decompositions(table)
    except Exception as e:
        raise ImportFailure(f"torch.export could not decompose {name}: {type(e).__name__}: {e}".split("\n")[0]) from e
    return ep, name, _provenance(ep, decomposed)


# Decompositions.  ``run_decompositions`` rewrites ops that have their own backward into core ATen ops, and
# the rewrite keeps values, not kinks, nor stop-gradients: hardswish's decomposition x * clamp(x + 3, 0, 6) / 6
# has derivative -1/2 at -3 and 3/2 at 3 where torch's hardswish_backward gives 0 and 1 (measured), detach
# becomes alias (the identity), and a torch.no_grad() block is inlined.  So: the ops of _KEEP are kept whole
# and mapped with their own backward; any higher-order op (no_grad, cond, ...) is an ImportFailure; every
# other op is decomposed, and its decomposition is accepted when it lowers to smooth equations only (a smooth
# function has one derivative, which the op's backward and the decomposition's both compute), or when the op
# is in _DECOMPOSED, whose decompositions have kinks that are checked against the op's own backward at those
# kinks in tests/test_import_torch.py.  A decomposition that yields a nonsmooth or discontinuous equation for
# an op outside _DECOMPOSED is an ImportFailure naming the op, the node and the equation.
_KEEP = ("hardswish", "hardsigmoid", "detach", "detach_")
_DECOMPOSED = {
    # kinks measured against the op's own backward (tests/test_import_torch.py)
    "relu6", "threshold", "softplus", "hardshrink", "softshrink", "prelu", "l1_loss", "smooth_l1_loss", "huber_loss",
    "mse_loss", "celu", "selu", "silu", "mish", "log_sigmoid", "max_pool2d", "cross_entropy_loss", "nll_loss",
    "nll_loss_nd", "logsumexp", "var", "std", "where",
    # linear, structural or smooth
    "linear", "matmul", "einsum", "conv1d", "conv2d", "flatten", "unflatten", "stack", "broadcast_tensors",
    "expand_as", "view_as", "reshape_as", "type_as", "to", "contiguous", "chunk", "split", "unbind", "dropout",
    "layer_norm", "batch_norm", "softmax", "log_softmax", "arange", "zeros_like", "ones_like", "full_like", "zeros",
    "ones", "full", "new_zeros", "new_ones", "new_full", "scalar_tensor", "__and__", "__or__", "__invert__",
    "_assert_tensor_metadata", "lift_fresh_copy", "square", "rsub", "mean", "sum", "adaptive_avg_pool2d", "t",
    "transpose", "squeeze", "unsqueeze", "repeat", "index_select", "gather", "masked_fill", "clamp_min", "clamp_max",
    "roll", "flip", "narrow", "tile", "movedim", "moveaxis", "swapaxes", "take_along_dim", "select", "slice",
    "expand", "view", "permute", "split_with_sizes", "index", "pad", "constant_pad_nd",
    "gelu", "elu", "sigmoid", "tanh", "reciprocal", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "pow", "sign",
} | set(torch_ops.DECOMPOSED)          # and those of the ops added for PyTorch's operator set


class _custom_functions:
    """While exporting, record the torch.autograd.Function subclasses the model applies: torch.export inlines
    their forward and drops their backward (measured: a Function whose backward returns 3 * g exports as
    its forward 2 * x, with derivative 2)."""

    def __enter__(self):
        import torch.autograd.function as fn
        self.fn, self.seen = fn, []
        self.orig = fn.Function.__dict__["apply"]
        orig, seen = self.orig, self.seen

        def apply(cls, *args, **kwargs):
            seen.append(cls)
            return orig.__func__(cls, *args, **kwargs)
        fn.Function.apply = classmethod(apply)
        return self.seen

    def __exit__(self, *exc):
        self.fn.Function.apply = self.orig
        return False


class _fake_kernels:
    """While exporting, the kept ops of ``torch_ops.FAKE`` (cov, corrcoef) get a CompositeImplicitAutograd
    kernel and a meta kernel that give fake tensors an output of the op's shape: torch.export otherwise runs the
    op's own implementation on fake tensors to learn its output, and cov's checks its weights with
    data-dependent branches (aten.equal), which fake tensors cannot decide.  Real tensors still get the op's own
    value.  Everything is restored on exit."""

    def __enter__(self):
        import torch
        from torch._C import DispatchKey
        from torch._decomp import meta_table
        self.meta_table, self.saved = meta_table, []
        for name, kernel in torch_ops.FAKE.items():
            base, overload = name.split(".")
            op = getattr(getattr(torch.ops.aten, base), overload)
            self.saved.append((op, dict(op.py_kernels), meta_table.get(op)))
            op.py_impl(DispatchKey.CompositeImplicitAutograd)(kernel)
            meta_table[op] = kernel
        return self

    def __exit__(self, *exc):
        for op, kernels, meta in self.saved:
            op.py_kernels.clear()
            op.py_kernels.update(kernels)
            op._dispatch_cache.clear()
            if meta is None:
                self.meta_table.pop(op, None)
            else:
                self.meta_table[op] = meta
        return False


def _check_decompositions(ep, table):
    """Refuse a higher-order op (see the note above) and an in-place ``detach_`` of a value the program
    differentiates, which the decomposition removes (measured: ``x * y.detach_()`` exports as ``x * y``);
    return {node name: (op, source)} of the nodes that the table decomposes and whose decompositions are not
    among the checked ones (_DECOMPOSED)."""
    import torch
    from torch.export.graph_signature import InputKind
    out = {}
    # the values computed from the user's inputs or the parameters (what the program may differentiate)
    varying = {spec.arg.name for spec in ep.graph_signature.input_specs
               if spec.kind in (InputKind.USER_INPUT, InputKind.PARAMETER)}
    for node in ep.graph.nodes:
        if node.op != "call_function":
            continue
        if any(a.name in varying for a in node.all_input_nodes):
            varying.add(node.name)
        target = node.target
        if target is torch.ops.aten.detach_.default and node.args[0].name in varying:
            raise ImportFailure(f"torch aten.detach_ ({_source(node) or node.name}): an in-place detach of a value "
                                "computed from the inputs is a stop-gradient, which torch.export's decomposition "
                                "drops: not a real-number function verify can differentiate as torch does")
        if isinstance(target, torch._ops.HigherOrderOperator) and not _is_check(node):
            raise ImportFailure(f"torch {target} ({_source(node) or node.name}): a higher-order op (torch.no_grad(), "
                                "control flow, ...) is not supported: it is not a real-number program with its AD")
        if target in table and str(target).split(".")[1] not in _DECOMPOSED:
            out[node.name] = (_op_name(target), _source(node))
    return out


# error checks that torch.export threads through an effect token: they read integers (linalg's info) and have
# no value; a failing check would raise in torch, and the program is then not defined there either
_CHECKS = ("_linalg_check_errors.default",)


def _is_check(node):
    import torch
    return node.target is torch.ops.higher_order.with_effects and len(node.args) > 1 and \
        _op_name(node.args[1]) in _CHECKS


def _provenance(ep, decomposed):
    """{node of the decomposed graph: (original node name, op, source)} for the nodes that come from the
    decomposition of an op in ``decomposed`` (read from the nodes' ``from_node`` provenance)."""
    out = {}

    def find(sources):
        for s in sources or ():
            if s.name in decomposed and _op_name(s.target) == decomposed[s.name][0]:
                return s.name
            hit = find(getattr(s, "from_node", None))
            if hit:
                return hit
        return None
    for node in ep.graph.nodes:
        if node.op == "call_function":
            hit = find(node.meta.get("from_node"))
            if hit:
                out[node] = (hit,) + decomposed[hit]
    return out


def _check_decomposed(lo, node, provenance, first):
    """An op decomposed by torch.export (and not checked at its kinks) must lower to smooth, continuous
    equations: the equations emitted from index ``first`` on for ``node`` are checked."""
    src = provenance.get(node)
    if src is None or node not in lo.dependent:      # equations on constants only are no kinks of the function
        return
    for k in range(first, len(lo.b.eqns)):
        e = lo.b.eqns[k]
        prim = PRIMITIVES[e.prim]
        if not prim.smooth or not prim.continuous:
            name, op, source = src
            kink = torch_ops.DECOMPOSED_KINKS.get(op.split(".")[0], {}).get(e.prim)
            if kink is not None:        # the op's own backward at this kink (torch_ops.decomposed_kinks)
                lo.b.eqns[k] = Eqn(e.prim, e.ins, tuple(sorted({**e.param_dict, **kink}.items())), e.outs, e.loc)
                continue
            where = ", ".join(p for p in (f"node {name}", source) if p)
            raise ImportFailure(f"torch aten.{op} ({where}): torch.export decomposes it into core ATen ops with a kink "
                                f"(aten.{_op_name(node.target)} became {e.prim}) that has not been checked against "
                                f"aten.{op}'s own backward")


def _function_module(f):
    """A module whose forward is ``f``.  For a Python function the forward is a copy of ``f`` whose code object is
    named ``forward``: torch.export records source lines only for frames of that name, so every node then
    names its line in the user's function (the user's function itself is untouched)."""
    import types

    import torch

    class _Fn(torch.nn.Module):
        def forward(self, *args):
            return f(*args)
    m = _Fn()
    if isinstance(f, types.FunctionType):
        fn = types.FunctionType(f.__code__.replace(co_name="forward"), f.__globals__, "forward", f.__defaults__,
                                f.__closure__)
        fn.__kwdefaults__ = f.__kwdefaults__
        m.forward = fn
    return m


def input_values(ep, user_values, params="inputs", state=None):
    """[(placeholder node, kind, framework name, value)] for every input of the exported graph, in its order:
    kind "input" (the user's arguments, from ``user_values``: the flattened arguments), "parameter" (or
    "parameter constant" when ``params="constants"``), "buffer", "constant" (a tensor constant lifted by
    torch.export).  Parameters and buffers are read from ``state`` ({qualified name: tensor}, the live
    module's) where it has them, else from the exported program (their values at export time)."""
    import torch
    from torch.export.graph_signature import InputKind, TensorArgument
    sig = ep.graph_signature
    placeholders = [n for n in ep.graph.nodes if n.op == "placeholder"]
    users = iter(v for v in user_values if isinstance(v, torch.Tensor))
    state = state or {}

    def stored(target):
        if target in state:
            return state[target]
        return ep.state_dict[target] if target in ep.state_dict else ep.constants[target]
    pending = []
    for node, spec in zip(placeholders, sig.input_specs):
        if spec.kind == InputKind.USER_INPUT:
            v = next(users) if isinstance(spec.arg, TensorArgument) else getattr(spec.arg, "value", None)
            pending.append((node, "input", spec.arg.name, v))
        elif spec.kind == InputKind.PARAMETER:
            pending.append((node, "parameter" if params == "inputs" else "parameter constant", spec.target,
                            stored(spec.target)))
        elif spec.kind == InputKind.BUFFER:
            pending.append((node, "buffer", spec.target, stored(spec.target)))
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            pending.append((node, "constant", spec.target, ep.constants[spec.target]))
        elif spec.kind == InputKind.TOKEN:            # the effect token of error checks (linalg): no value
            pending.append((node, "token", node.name, None))
        else:
            raise ImportFailure(f"torch: input {node.name} of kind {spec.kind.name} is not supported")
    return pending


def _is_float_input(kind, v):
    """Whether a pending input is a float tensor the program takes as an input (a user input or parameter)."""
    import torch
    return kind in ("input", "parameter") and isinstance(v, torch.Tensor) and _is_float(v.dtype)


def _bind_inputs(lo, pending):
    """The lowered value of each pending graph input, the exact point, the InputInfos and the constants' origins
    (name -> (kind, source, dtype)), as (values, point, infos, constants): float inputs and parameters become
    the program's inputs in order, finite float constants exact arrays, other floats constants of the program,
    integers Consts; a complex input raises ImportFailure."""
    import torch
    values, point, infos, constants = {}, [], [], {}
    k = 0
    for node, kind, src, v in pending:
        if not isinstance(v, torch.Tensor):
            values[node] = v
            continue
        t = v.detach()
        if kind in ("input", "parameter") and _is_float(t.dtype):
            values[node] = lo.inputs[k]
            infos.append(InputInfo(lo.b.names[k], kind, src, tuple(t.shape), str(t.dtype)))
            point.append(point_value(_exact_array(t)))
            k += 1
        elif _is_float(t.dtype):
            lo.hint = src
            if bool(torch.isfinite(t).all()):
                arr = lo.add_array(_exact_array(t), src)
                values[node] = Tensor(arr, tuple(t.shape))
                constants[arr.name] = (kind.split()[0], src, str(t.dtype))
            else:
                lo.origin = Origin("torch", "constant", node.name, src)
                values[node] = lo.constant((t.float() if str(t.dtype) == "torch.bfloat16" else t).cpu().numpy(),
                                           src)
        elif t.is_complex():
            raise ImportFailure(f"torch: input {src} is complex: only real numbers are supported")
        else:
            values[node] = Const(t.cpu().numpy())
    return values, point, infos, constants


def _lower_nodes(lo, ep, live, values, provenance):
    """Lower every live call_function node of the graph in order into ``lo``, recording each node's value in
    ``values``; returns nothing (raises ImportFailure on what cannot be lowered)."""
    for node in ep.graph.nodes:
        if node.op != "call_function" or node not in live:
            continue
        # our variables are named after the nodes; a node named like a primitive (mul) becomes mul_0, which
        # torch never uses (its next mul node is mul_1)
        lo.node, lo.hint = node, node.name + ("_0" if node.name in PRIMITIVES else "")
        op = _op_name(node.target)
        lo.origin = Origin("torch", f"aten.{op}" if node.target is not _operator.getitem else "getitem", node.name,
                           _module_path(node), _source(node), ATEN.get(op, (None, ""))[1])
        first = len(lo.b.eqns)
        values[node] = _run_node(lo, node, op, values)
        _check_decomposed(lo, node, provenance or {}, first)
        _check_shape(lo, node, values[node])


def lower_exported(ep, user_values, params="inputs", name="f", state=None, provenance=None):
    """Lower a decomposed ExportedProgram (``export``) at the flattened arguments ``user_values`` to an
    ``Imported`` (see ``from_torch``); parameters and buffers from ``state`` as in ``input_values``;
    ``provenance`` (from ``export``) names the ops whose decompositions must lower to smooth equations.  The cheap
    half of an import: an Auditor runs it again, without exporting, when new integer data (labels) change
    the constants of the program."""
    import torch
    from torch.export.graph_signature import OutputKind
    sig = ep.graph_signature
    pending = input_values(ep, user_values, params, state)
    inputs = [(src, tuple(v.shape)) for node, kind, src, v in pending if _is_float_input(kind, v)]
    lo = TorchLowering(name, inputs)
    values, point, infos, constants = _bind_inputs(lo, pending)
    lo.dependent = _dependent(ep.graph, [node for node, kind, _, v in pending if _is_float_input(kind, v)])
    lo.run_values = lambda: _graph_values(ep, [v for _, _, _, v in pending])
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    user_outputs = [a for a, spec in zip(out_node.args[0], sig.output_specs) if spec.kind == OutputKind.USER_OUTPUT]
    _lower_nodes(lo, ep, _live_nodes(ep.graph, user_outputs), values, provenance)
    outs = []
    for a in user_outputs:
        lo.origin = Origin("torch", "output", getattr(a, "name", ""))
        outs.append(values[a] if isinstance(a, torch.fx.Node) else a)
    program = lo.finish(outs)
    _check_joint(lo, program)
    return Imported(program, point, infos, constants, tuple(lo.origins), "torch", ep, dict(lo.no_gradient))


def _check_joint(lo, program):
    """ImportFailure when the loss (output 0) is differentiated through some but not all of a ``lo.joint`` group
    (a where's comparison operands carry no derivative: they are not followed)."""
    if not lo.joint or not program.outputs:
        return
    reached = {a for a in program.outputs[:1] if isinstance(a, int)}
    for e in reversed(program.eqns):
        if any(o in reached for o in e.outs):
            reached.update(a for a in (e.ins[2:] if e.prim == "where" else e.ins) if isinstance(a, int))
    for atoms, origin, reason in lo.joint:
        hit = [a in reached for a in atoms if isinstance(a, int)]
        if any(hit) and not all(hit):
            raise ImportFailure(f"{origin}: {reason}")


def _dependent(graph, inputs):
    """The nodes of ``graph`` whose values depend on the nodes ``inputs``.  The predicates of
    torch_ops.CONSTANT_ON_REALS (isnan, ...) have one value at every real point: nothing depends on the inputs
    through them (a quantile's ranks computed after its NaN check are constants)."""
    dep = set(inputs)
    for n in graph.nodes:
        if n.op == "call_function" and any(a in dep for a in n.all_input_nodes) and \
                _op_name(n.target) not in torch_ops.CONSTANT_ON_REALS:
            dep.add(n)
    return dep


def _graph_values(ep, placeholder_values):
    """{node: value} of every node of ``ep``'s graph run by torch at the placeholders' values."""
    import torch
    values = {}

    class _Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            values[n] = out
            return out
    with torch.no_grad():
        _Recorder(ep.graph_module).run(*placeholder_values)
    return values


def _exact_array(t):
    from ..program.arrays import ExactArray
    t = t.detach().cpu()
    if str(t.dtype) == "torch.bfloat16":
        t = t.float()
    return ExactArray.from_any(t.numpy())


def _check_shape(lo, node, v):
    meta = node.meta.get("val")
    if meta is None or not hasattr(meta, "shape") or isinstance(v, (list, tuple)):
        return
    if not all(isinstance(d, int) for d in meta.shape):      # a data-dependent size (masked_select): ours is known
        return
    if isinstance(v, (Tensor, Const, Cond, NonReal)) and tuple(v.shape) != tuple(meta.shape):
        lo.fail(f"internal error: the lowering has shape {list(v.shape)}, torch says {list(meta.shape)}")


def _convert(values, a):
    import torch
    if isinstance(a, torch.fx.Node):
        return values[a]
    if isinstance(a, (list, tuple)):
        return type(a)(_convert(values, x) for x in a)
    return a


def _has_real(x):
    if isinstance(x, (Tensor, Cond, NonReal, Unavailable, Masked)):
        return True
    if isinstance(x, (list, tuple)):
        return any(_has_real(y) for y in x)
    return False


def _to_torch_value(x):
    import torch
    if isinstance(x, Const):
        return torch.from_numpy(_np.array(x.value))
    if isinstance(x, (list, tuple)):
        return type(x)(_to_torch_value(y) for y in x)
    return x


def _from_torch_value(lo, x):
    import torch
    if isinstance(x, torch.Tensor):
        if _is_float(x.dtype):
            x = x.detach().cpu()
            return lo.constant((x.float() if str(x.dtype) == "torch.bfloat16" else x).numpy(), f"const.{lo.hint}")
        return Const(x.detach().cpu().numpy())
    if isinstance(x, (list, tuple)):
        return type(x)(_from_torch_value(lo, y) for y in x)
    return x


def _run_node(lo, node, op, values):
    args = _convert(values, node.args)
    kwargs = {k: _convert(values, v) for k, v in node.kwargs.items()}
    if node.target is _operator.getitem:
        seq, i = args
        return seq[i]
    if _is_check(node):            # an error check on integers (linalg's info): the token passes through
        return (args[0],)
    meta = node.meta.get("val")
    float_out = any(_is_float(m.dtype) for m in (meta if isinstance(meta, (list, tuple)) else [meta])
                    if hasattr(m, "dtype"))
    if not _has_real(args) and not _has_real(list(kwargs.values())) and (not float_out or op in _CONCRETE):
        # integers, booleans and constant creation: computed by torch itself, exactly
        out = node.target(*_to_torch_value(args), **{k: _to_torch_value(v) for k, v in kwargs.items()})
        return _from_torch_value(lo, out)
    if any(getattr(m, "dtype", None) is not None and m.dtype.is_complex
           for m in (meta if isinstance(meta, (list, tuple)) else [meta])):
        lo.fail(f"aten.{op} computes complex numbers: verify's programs are real-number programs")
    if not float_out and node not in lo.dependent:
        # integers or booleans computed from constants only (source coordinates of an interpolation, ranks of
        # a quantile): what torch computes, the same at every point
        v = lo.constant_value(node)
        if isinstance(v, (bool, int, float)) and hasattr(meta, "shape"):
            v = lo.torch.tensor(v)
        return _from_torch_value(lo, v)
    if not float_out and op not in _BOOL_OPS:
        lo.fail(f"aten.{op} computes integers from real values (indices, counts): not a real-number function")
    if args and isinstance(args[0], Masked) and op in _MOVEMENT:
        return _move_masked(lo, node, args, kwargs)
    if op in _PARTIAL_MOVES and any(isinstance(x, torch_ops.Partial)
                                    for a in args for x in (a if isinstance(a, (list, tuple)) else (a,))):
        return _move_partial(lo, node, op, args, kwargs)
    entry = ATEN.get(op)
    if entry is None:
        lo.fail(f"the op aten.{op} is not supported by the importer (no mapping to verify's primitives)")
    return entry[0](lo, *args, **kwargs)


# data movement that an attention mask (-inf) goes through between masked_fill and softmax
_MOVEMENT = {"view.default", "_unsafe_view.default", "reshape.default", "permute.default", "expand.default",
             "unsqueeze.default", "squeeze.dim", "squeeze.dims", "squeeze.default", "clone.default", "alias.default",
             "contiguous.default", "slice.Tensor", "select.int", "t.default", "transpose.int", "_to_copy.default"}


def _move_masked(lo, node, args, kwargs):
    """A data-movement op on a Masked array: torch moves the positions, values and mask follow."""
    import torch
    a = args[0]
    n = _math.prod(a.shape)
    pos = torch.arange(n, dtype=torch.int64).reshape(a.shape)
    if _op_name(node.target) == "_to_copy.default":
        return a
    idx = node.target(pos, *args[1:], **kwargs).numpy()
    return lo.masked(lo.take(a.values, idx, "map"), _np.asarray(a.mask).reshape(-1)[idx])


# torch.empty and what is written into it.  An empty's elements are undefined until written; torch's own
# decompositions (circular padding, ...) allocate one and fill it through slices (copy_ into a slice, then
# slice_scatter back) before anything reads it.  Definedness is tracked element by element (a Partial: values
# and a mask): data movement moves both, computed from torch's own op on positions; a Partial that becomes
# fully defined is an ordinary real array, and any other op that meets an undefined element is refused.
_PARTIAL_MOVES = _MOVEMENT | {"copy.default", "slice_scatter.default", "select_scatter.default",
                              "diagonal_scatter.default", "cat.default", "flip.default", "roll.default",
                              "narrow_copy.default", "slice_copy.Tensor", "select_copy.int", "view_copy.default",
                              "expand_copy.default", "permute_copy.default", "unsqueeze_copy.default"}
_IDENTITIES = {"clone.default", "alias.default", "contiguous.default", "_to_copy.default", "lift_fresh_copy.default"}


def _move_partial(lo, node, op, args, kwargs):
    """A data-movement op (``_PARTIAL_MOVES``) on arrays with undefined elements: torch's op on the positions of
    every element says where each lands; values and definedness follow.  (Any other op gets the Partial as
    an Unavailable: refused where it reads it.)"""
    import torch
    if op in _IDENTITIES:
        if op == "_to_copy.default" and kwargs.get("dtype") is not None and not _is_float(kwargs["dtype"]):
            lo.fail(f"a cast to {kwargs['dtype']} of a real value is not a real-number function")
        return args[0]
    parts = []

    def positions(x):
        if isinstance(x, Const):
            return torch.from_numpy(_np.array(x.value))
        if isinstance(x, (Cond, NonReal, Masked)) or isinstance(x, Unavailable) and \
                not isinstance(x, torch_ops.Partial):
            lo.real(x)                       # refused with the value's own reason
        if not isinstance(x, (Tensor, torch_ops.Partial)):
            return x
        vals, mask = (x.values, x.defined) if isinstance(x, torch_ops.Partial) else \
            (x, _np.ones(x.shape, dtype=bool))
        off = sum(_math.prod(v.shape) for v, _ in parts)
        parts.append((vals, _np.asarray(mask, dtype=bool)))
        return torch.arange(off, off + _math.prod(vals.shape), dtype=torch.int64).reshape(vals.shape)
    targs = [type(a)(positions(x) for x in a) if isinstance(a, (list, tuple)) else positions(a) for a in args]
    idx = node.target(*targs, **{k: positions(v) for k, v in kwargs.items()}).numpy()
    flat = [lo.reshape(v, (_math.prod(v.shape),)) for v, _ in parts]
    src = flat[0] if len(flat) == 1 else lo.concat(flat, 0)
    defined = _np.concatenate([m.reshape(-1) for _, m in parts])
    return torch_ops.partial(lo.take(src, idx, "map"), defined[idx])


_BOOL_OPS = set()


def _bool(*names):
    _BOOL_OPS.update(names)
    return names


# ---------------------------------------------------------------------------------------------- arithmetic

@aten("add.Tensor", "add.Scalar")
def _add(lo, a, b, alpha=1):
    return lo.add(a, b if alpha == 1 else lo.mul(b, alpha))


@aten("sub.Tensor", "sub.Scalar")
def _sub(lo, a, b, alpha=1):
    return lo.sub(a, b if alpha == 1 else lo.mul(b, alpha))


@aten("rsub.Tensor", "rsub.Scalar")
def _rsub(lo, a, b, alpha=1):
    return lo.sub(b, a if alpha == 1 else lo.mul(a, alpha))


@aten("mul.Tensor", "mul.Scalar")
def _mul(lo, a, b):
    return lo.mul(a, b)


@aten("div.Tensor", "div.Scalar")
def _div(lo, a, b):
    return lo.div(a, b)


@aten("neg.default")
def _neg(lo, a):
    return lo.neg(a)


@aten("reciprocal.default")
def _reciprocal(lo, a):
    return lo.div(1, a)


def _unary(prim):
    def fn(lo, a):
        return lo.ew(prim, [a])
    return fn


for _p in ("exp", "log", "sqrt", "sigmoid", "tanh", "erf", "sin", "cos"):
    aten(f"{_p}.default")(_unary(_p))


@aten("rsqrt.default")
def _rsqrt(lo, a):
    return lo.div(1, lo.ew("sqrt", [a]))


@aten("expm1.default")
def _expm1(lo, a):
    return lo.sub(lo.ew("exp", [a]), 1)


@aten("log1p.default")
def _log1p(lo, a):
    return lo.ew("log", [lo.add(1, a)])


def _pow_n(lo, a, e):
    q = exact_q(e, "exponent")
    if q.q == 1:
        return lo.ew("pow", [a], {"n": int(q.p)})
    if q == fmpq(1, 2):
        return lo.ew("sqrt", [a])
    if q == fmpq(-1, 2):
        return lo.div(1, lo.ew("sqrt", [a]))
    return lo.ew("exp", [lo.mul(lo.ew("log", [a]), q)])       # x ** q = exp(q log x), defined for x > 0


@aten("pow.Tensor_Scalar")
def _pow(lo, a, e):
    return _pow_n(lo, a, e)


@aten("square.default")
def _square(lo, a):
    return lo.ew("pow", [a], {"n": 2})


# ------------------------------------------------------------------------------------- nonsmooth elementwise

@aten("relu.default", note="threshold_backward: derivative 0 at 0 (relu alpha=0)")
def _relu(lo, a):
    t = lo.real(a)
    (o,) = lo.emit("relu", [t.atom], {"alpha": fmpq(0)})
    return Tensor(o, t.shape)


@aten("leaky_relu.default", note="leaky_relu_backward: x > 0 ? g : slope*g, so slope at 0")
def _leaky(lo, a, slope=0.01):
    t = lo.real(a)
    s = exact_q(slope, "negative_slope")
    (o,) = lo.emit("leaky_relu", [t.atom], {"slope": s, "at_zero": s})
    return Tensor(o, t.shape)


@aten("hardtanh.default", note="hardtanh_backward: 0 where x <= lo or x >= hi, so 0 at both bounds "
                                "(relu6 exports as hardtanh(0, 6))")
def _hardtanh(lo, a, min_val=-1.0, max_val=1.0):
    t = lo.real(a)
    lo_q, hi_q = exact_q(min_val), exact_q(max_val)
    if not lo_q < hi_q:
        lo.fail(f"hardtanh with min_val={min_val} >= max_val={max_val}")
    (o,) = lo.emit("hardtanh", [t.atom], {"lo": lo_q, "hi": hi_q, "at_lo": fmpq(0), "at_hi": fmpq(0)})
    return Tensor(o, t.shape)


def _clamp_eq(lo, a, lo_v, hi_v):
    t = lo.real(a)
    if lo_v is None and hi_v is None:
        return t
    for v in (lo_v, hi_v):
        if v is not None and not isinstance(v, (int, float)):
            lo.fail("clamp with tensor bounds is not supported (only number bounds)")
    lo_q = None if lo_v is None else exact_q(lo_v)
    hi_q = None if hi_v is None else exact_q(hi_v)
    if lo_q is not None and hi_q is not None and not lo_q < hi_q:
        lo.fail(f"clamp with min={lo_v} >= max={hi_v}")
    (o,) = lo.emit("clamp", [t.atom], {"lo": lo_q, "hi": hi_q, "at_lo": fmpq(1), "at_hi": fmpq(1)})
    return Tensor(o, t.shape)


@aten("clamp.default", note="clamp_backward: 1 where lo <= x <= hi, so 1 at both bounds")
def _clamp(lo, a, min=None, max=None):
    return _clamp_eq(lo, a, min, max)


@aten("clamp_min.default", note="clamp_backward: 1 at the bound")
def _clamp_min(lo, a, min):
    return _clamp_eq(lo, a, min, None)


@aten("clamp_max.default", note="clamp_backward: 1 at the bound")
def _clamp_max(lo, a, max):
    return _clamp_eq(lo, a, None, max)


@aten("abs.default", note="abs backward is sgn(x) * g with sgn(0) = 0: 0 at 0")
def _abs(lo, a):
    t = lo.real(a)
    (o,) = lo.emit("abs", [t.atom], {"at_zero": fmpq(0)})
    return Tensor(o, t.shape)


@aten("sign.default", note="sign backward is 0 everywhere (a jump at 0)")
def _sign(lo, a):
    return lo.sign(a)


@aten("maximum.default", note="max/min backward at a tie: 1/2 to each side (tie=split)")
def _maximum(lo, a, b):
    return lo.ew("max", [a, b], {"tie": "split"})


@aten("minimum.default", note="max/min backward at a tie: 1/2 to each side (tie=split)")
def _minimum(lo, a, b):
    return lo.ew("min", [a, b], {"tie": "split"})


# the double constants of ATen's CPU GELU kernels: M_SQRT1_2 and M_SQRT2 * M_2_SQRTPI * 0.5
_SQRT1_2 = 0.70710678118654752440
_GELU_BETA = 1.41421356237309504880 * 1.12837916709551257390 * 0.5


@aten("gelu.default")
def _gelu(lo, a, approximate="none"):
    x = lo.real(a)
    half_x = lo.mul(x, fmpq(1, 2))
    if approximate == "none":
        return lo.mul(half_x, lo.add(1, lo.ew("erf", [lo.mul(x, _SQRT1_2)])))
    if approximate == "tanh":
        inner = lo.mul(_GELU_BETA, lo.add(x, lo.mul(0.044715, lo.ew("pow", [x], {"n": 3}))))
        return lo.mul(half_x, lo.add(1, lo.ew("tanh", [inner])))
    lo.fail(f"gelu with approximate={approximate!r}")


@aten("elu.default", note="elu_backward: x <= 0 takes the exponential branch, so alpha*scale*input_scale at 0 "
                          "(where(x > 0, ...))")
def _elu(lo, a, alpha=1.0, scale=1.0, input_scale=1.0):
    x = lo.real(a)
    pos = lo.mul(x, scale)
    neg = lo.mul(lo.mul(alpha, scale), lo.sub(lo.ew("exp", [lo.mul(x, input_scale)]), 1))
    return lo.select(lo.compare(">", x, 0), pos, neg)


@aten("hardswish.default", note="hardswish_backward: 0 for x <= -3, x/3 + 1/2 for -3 < x < 3, 1 for x >= 3 "
                                "(so 0 at -3 and 1 at 3, measured)")
def _hardswish(lo, a):
    x = lo.real(a)
    mid = lo.div(lo.mul(x, lo.add(x, 3)), 6)
    return lo.select(lo.compare(">", x, -3), lo.select(lo.compare("<", x, 3), mid, x), 0)


@aten("hardsigmoid.default", note="hardsigmoid_backward: 1/6 for -3 < x < 3, else 0 (so 0 at both kinks)")
def _hardsigmoid(lo, a):
    x = lo.real(a)
    mid = lo.add(lo.div(x, 6), fmpq(1, 2))
    return lo.select(lo.compare(">", x, -3), lo.select(lo.compare("<", x, 3), mid, 1), 0)


@aten("where.self", note="where backward: the gradient goes to the selected side")
def _where(lo, c, a, b):
    return lo.select(c, a, b)


def _cmp(op):
    def fn(lo, a, b):
        return lo.compare(op, a, b)
    return fn


for _name, _op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("eq", "=="), ("ne", "!=")):
    aten(*_bool(f"{_name}.Scalar", f"{_name}.Tensor"))(_cmp(_op))


@aten(*_bool("logical_not.default", "bitwise_not.default"))
def _not(lo, a):
    return lo.logical("not", a)


@aten(*_bool("logical_and.default", "bitwise_and.Tensor"))
def _and(lo, a, b):
    return lo.logical("and", a, b)


@aten(*_bool("logical_or.default", "bitwise_or.Tensor"))
def _or(lo, a, b):
    return lo.logical("or", a, b)


# --------------------------------------------------------------------------------------------- reductions

def _dims(t, dim):
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return tuple(range(len(t.shape)))
    return tuple(dim) if isinstance(dim, (list, tuple)) else (dim,)


@aten("sum.dim_IntList", "sum.default")
def _sum(lo, a, dim=None, keepdim=False, dtype=None):
    t = lo.real(a)
    return lo.reduce("sum", t, _dims(t, dim), keepdim)


@aten("mean.dim", "mean.default")
def _mean(lo, a, dim=None, keepdim=False, dtype=None):
    t = lo.real(a)
    return lo.reduce("mean", t, _dims(t, dim), keepdim)


@aten("amax.default", note="amax backward: a tie shares the gradient evenly (tie=split)")
def _amax(lo, a, dim=(), keepdim=False):
    t = lo.real(a)
    return lo.reduce("amax", t, _dims(t, dim), keepdim, tie="split")


@aten("amin.default", note="amin backward: a tie shares the gradient evenly (tie=split)")
def _amin(lo, a, dim=(), keepdim=False):
    t = lo.real(a)
    return lo.reduce("amin", t, _dims(t, dim), keepdim, tie="split")


@aten("max.default", note="max() backward (evenly_distribute_backward): a tie shares the gradient evenly")
def _max_all(lo, a):
    t = lo.real(a)
    return lo.reduce("amax", t, _dims(t, None), False, tie="split")


@aten("min.default", note="min() backward (evenly_distribute_backward): a tie shares the gradient evenly")
def _min_all(lo, a):
    t = lo.real(a)
    return lo.reduce("amin", t, _dims(t, None), False, tie="split")


@aten("max.dim", note="max(dim) backward goes through the returned index, the first maximal element (tie=first)")
def _max_dim(lo, a, dim, keepdim=False):
    t = lo.real(a)
    return (lo.reduce("amax", t, (dim,), keepdim, tie="first"),
            Unavailable("the indices of max(dim) are integers computed from real values"))


@aten("min.dim", note="min(dim) backward goes through the returned index, the first minimal element (tie=first)")
def _min_dim(lo, a, dim, keepdim=False):
    t = lo.real(a)
    return (lo.reduce("amin", t, (dim,), keepdim, tie="first"),
            Unavailable("the indices of min(dim) are integers computed from real values"))


@aten("var.correction")
def _var(lo, a, dim=None, correction=None, keepdim=False):
    t = lo.real(a)
    axes = _dims(t, dim)
    n = _math.prod(t.shape[d % len(t.shape)] for d in axes)
    c = 1 if correction is None else correction
    if n - c <= 0:
        lo.fail(f"variance of {n} element(s) with correction {c}")
    m = lo.reduce("mean", t, axes, True)
    d = lo.sub(t, m)
    s = lo.reduce("sum", lo.mul(d, d), axes, keepdim)
    return lo.div(s, n - c)


@aten("_log_softmax.default")
def _log_softmax(lo, a, dim, half_to_float=False):
    if isinstance(a, Masked):
        return lo.sub(a, _masked_lse(lo, a, (dim,), True))
    t = lo.real(a)
    return lo.sub(t, lo.logsumexp(t, (dim,), True))


@aten("_softmax.default", note="masked positions (-inf) get 0 and no gradient")
def _softmax(lo, a, dim, half_to_float=False):
    if isinstance(a, Masked):
        e = lo.ew("exp", [a])
        return lo.div(e, lo.reduce("sum", e, (dim,), True))
    t = lo.real(a)
    return lo.ew("exp", [lo.sub(t, lo.logsumexp(t, (dim,), True))])


def _masked_lse(lo, a, axes, keepdim):
    """log(sum(exp(x))) over ``axes`` leaving the -inf positions out (a slice with every position masked has no
    real value: log(0) is refused where it is evaluated)."""
    return lo.ew("log", [lo.reduce("sum", lo.ew("exp", [a]), axes, keepdim)])


@aten("logsumexp.default")
def _logsumexp(lo, a, dim, keepdim=False):
    if isinstance(a, Masked):
        return _masked_lse(lo, a, _dims(a, dim), keepdim)
    t = lo.real(a)
    return lo.logsumexp(t, _dims(t, dim), keepdim)


# --------------------------------------------------------------------------------------------- linear maps

@aten("mm.default")
def _mm(lo, a, b):
    return lo.dot(a, b, (1,), (0,))


@aten("bmm.default")
def _bmm(lo, a, b):
    return lo.dot(a, b, (2,), (1,), (0,), (0,))


@aten("dot.default")
def _dot1(lo, a, b):
    return lo.dot(a, b, (0,), (0,))


@aten("addmm.default")
def _addmm(lo, bias, a, b, beta=1, alpha=1):
    p = lo.dot(a, b, (1,), (0,))
    return lo.add(lo.mul(bias, beta), lo.mul(p, alpha))


@aten("convolution.default")
def _convolution(lo, x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    x, w = lo.real(x), lo.real(w)
    nd = len(x.shape) - 2
    if transposed or nd not in (1, 2):          # patches of the input times the weights
        return torch_ops.convolution(lo, x, w, bias, stride, padding, dilation, transposed, output_padding, groups)
    if nd == 1:           # conv1d as conv2d over a height of 1
        N, C, L = x.shape
        x4 = lo.reshape(x, (N, C, 1, L))
        w4 = lo.reshape(w, (w.shape[0], w.shape[1], 1, w.shape[2]))
        stride, padding, dilation = (1, stride[0]), (0, padding[0]), (1, dilation[0])
    elif nd == 2:
        x4, w4 = x, w
    else:
        lo.fail(f"a {nd}-d convolution (only 1-d and 2-d are supported)")
    (o,) = lo.emit("conv2d", [lo.full(x4), lo.full(w4)], {"stride": tuple(stride), "padding": tuple(padding),
                                                          "dilation": tuple(dilation), "groups": int(groups)})
    shape = tuple(lo.shape_of(o))
    y = Tensor(o, shape)
    if nd == 1:
        y = lo.reshape(y, (shape[0], shape[1], shape[3]))
    if bias is not None:
        b = lo.real(bias)
        y = lo.add(y, lo.reshape(b, (b.shape[0],) + (1,) * nd))
    return y


# ----------------------------------------------------------------------------------------- normalisation

def _normalize(lo, t, axes, eps):
    m = lo.reduce("mean", t, axes, True)
    d = lo.sub(t, m)
    var = lo.reduce("mean", lo.mul(d, d), axes, True)
    rstd = lo.div(1, lo.ew("sqrt", [lo.add(var, eps)]))
    return lo.mul(d, rstd), m, rstd


# torch gives the statistics that normalisation kernels save for their backward no grad_fn (derivatives.yaml:
# output_differentiability [True, False, False]): its AD treats them as constants, a stop-gradient.  Returned
# as they are, they are real functions of the inputs whose values verify computes exactly, and torch simply
# has no gradient of them: they are Stopped values, which the program returns and Imported.no_gradient names.
# A computation that uses one is refused: torch differentiates it as if the statistic were a constant, which
# is the derivative of no real-number function (verify would differ from torch, or give a derivative no piece
# has).
_STOPPED = ("{op}'s {what} output has no gradient in torch (its autograd treats it as a constant, a "
            "stop-gradient), so a computation that uses it is not a real-number function verify can "
            "differentiate as torch does (returned as it is, it is a value with no gradient): compute it with "
            "differentiable ops ({how}) instead")


def _stopped(op, what, how, t):
    return Stopped(_STOPPED.format(op=op, what=what, how=how), tuple(t.shape), t)


@aten("native_layer_norm.default", note="mean and rstd outputs: no grad_fn in torch (a stop-gradient): values "
                                        "when returned, refused when used")
def _layer_norm(lo, a, normalized_shape, weight, bias, eps):
    t = lo.real(a)
    k = len(normalized_shape)
    axes = tuple(range(len(t.shape) - k, len(t.shape)))
    y, m, rstd = _normalize(lo, t, axes, eps)
    if weight is not None:
        y = lo.mul(y, weight)
    if bias is not None:
        y = lo.add(y, bias)
    how = "x.mean(dims, keepdim=True), 1 / (x.var(dims, unbiased=False, keepdim=True) + eps).sqrt()"
    return (y, _stopped("native_layer_norm", "mean", how, m), _stopped("native_layer_norm", "rstd", how, rstd))


def _channel(lo, v, nd):
    v = lo.real(v)
    return lo.reshape(v, (v.shape[0],) + (1,) * (nd - 2))


_BN_HOW = "the batch's x.mean and x.var, or the running statistics"


def _bn_stopped(*whats):
    """Statistics refused when used and with no value: the updated running statistics (a buffer's new value,
    a side effect)."""
    return tuple(Unavailable(_STOPPED.format(op="batch norm", what=w, how=_BN_HOW)) for w in whats)


def _bn_eval_saved():
    """Eval mode's saved mean and rstd: torch returns empty tensors (shape (0,)), with no gradient."""
    empty = Tensor(Lit(fmpq(0)), (0,))
    return tuple(_stopped("batch norm", w, _BN_HOW, empty) for w in ("saved mean", "saved rstd"))


@aten("_native_batch_norm_legit_no_training.default")
def _batch_norm_eval(lo, a, weight, bias, running_mean, running_var, momentum, eps):
    t = lo.real(a)
    nd = len(t.shape)
    y = lo.div(lo.sub(t, _channel(lo, running_mean, nd)),
               lo.ew("sqrt", [lo.add(_channel(lo, running_var, nd), eps)]))
    if weight is not None:
        y = lo.mul(y, _channel(lo, weight, nd))
    if bias is not None:
        y = lo.add(y, _channel(lo, bias, nd))
    return (y,) + _bn_eval_saved()


@aten("_native_batch_norm_legit_functional.default")
def _batch_norm_functional(lo, a, weight, bias, running_mean, running_var, training, momentum, eps):
    if not training:
        return _batch_norm_eval(lo, a, weight, bias, running_mean, running_var, momentum, eps) + \
            _bn_stopped("updated running mean", "updated running var")
    return _batch_norm_train(lo, a, weight, bias, eps) + _bn_stopped("updated running mean", "updated running var")


@aten("native_dropout.default")
def _dropout(lo, a, p, train):
    lo.fail("dropout in training mode is random, not a function: call model.eval() before importing")


@aten("_native_batch_norm_legit.default", "_native_batch_norm_legit.no_stats",
      note="saved mean and rstd: no grad_fn in torch (a stop-gradient): values when returned, refused when used")
def _batch_norm_train(lo, a, weight, bias, *rest):
    """Training mode: the batch's own mean and biased variance over (N, H, W) (the running statistics'
    update is a side effect, not part of the function); the saved mean and rstd are Stopped values."""
    t = lo.real(a)
    eps = rest[-1]
    nd = len(t.shape)
    y, m, rstd = _normalize(lo, t, (0,) + tuple(range(2, nd)), eps)
    if weight is not None:
        y = lo.mul(y, _channel(lo, weight, nd))
    if bias is not None:
        y = lo.add(y, _channel(lo, bias, nd))
    c = (t.shape[1],)
    return (y, _stopped("batch norm", "saved mean", _BN_HOW, lo.reshape(m, c)),
            _stopped("batch norm", "saved rstd", _BN_HOW, lo.reshape(rstd, c)))


@aten("_batch_norm_with_update_functional.default",
      note="training batch norm: saved mean and rstd as _native_batch_norm_legit; the updated running statistics "
           "are the buffers' new values (a side effect), refused when used")
def _batch_norm_with_update(lo, a, weight, bias, running_mean, running_var, momentum, eps):
    y, m, rstd = _batch_norm_train(lo, a, weight, bias, eps)
    reserve = Const(_np.zeros((0,), dtype=_np.uint8))       # the kernel's reserve space (cuDNN's): empty on CPU
    return (y, m, rstd, reserve) + _bn_stopped("updated running mean", "updated running var")


# ------------------------------------------------------------------------------------------------ pooling

def _pool_args(lo, x, kernel, stride, padding, dilation, ceil_mode):
    kernel = tuple(kernel) * (2 if len(kernel) == 1 else 1)
    stride = tuple(stride or kernel) * (2 if len(stride or kernel) == 1 else 1)
    padding = tuple(padding) * (2 if len(padding) == 1 else 1) if isinstance(padding, (list, tuple)) \
        else (padding, padding)
    dilation = tuple(dilation) * (2 if len(dilation) == 1 else 1) if isinstance(dilation, (list, tuple)) \
        else (dilation, dilation)
    if ceil_mode:
        H, W = x.shape[2:]
        for n, k, s, p, d in zip((H, W), kernel, stride, padding, dilation):
            eff = d * (k - 1) + 1
            if (n + 2 * p - eff) % s:
                lo.fail("ceil_mode=True changes the output shape here (windows running off the input)")
    return kernel, stride, padding, dilation


@aten("max_pool2d_with_indices.default",
      note="max_pool2d backward goes through the kernel's index, the first maximal element of the window in "
           "row-major order (tie=first)")
def _max_pool(lo, a, kernel, stride=(), padding=0, dilation=1, ceil_mode=False):
    x = lo.real(a)
    if ceil_mode:              # windows running off the input: max over constant index windows
        return (torch_ops.max_pool(lo, x, kernel, stride, padding, dilation, True, 2),
                Unavailable("max-pool indices are integers computed from real values"))
    kernel, stride, padding, dilation = _pool_args(lo, x, kernel, stride, padding, dilation, ceil_mode)
    (o,) = lo.emit("max_pool2d", [lo.full(x)], {"kernel": kernel, "stride": stride, "padding": padding,
                                                "dilation": dilation, "tie": "first"})
    return Tensor(o, lo.shape_of(o)), Unavailable("max-pool indices are integers computed from real values")


@aten("avg_pool2d.default")
def _avg_pool(lo, a, kernel, stride=(), padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    x = lo.real(a)
    if ceil_mode or not count_include_pad:     # windows with their own divisors: sums over constant windows
        return torch_ops.avg_pool(lo, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, 2)
    kernel, stride, padding, _ = _pool_args(lo, x, kernel, stride, padding, 1, ceil_mode)
    if not count_include_pad and any(padding):
        lo.fail("avg_pool2d with count_include_pad=False and padding")
    (o,) = lo.emit("avg_pool2d", [lo.full(x)], {"kernel": kernel, "stride": stride, "padding": padding})
    y = Tensor(o, lo.shape_of(o))
    if divisor_override:
        y = lo.mul(y, fmpq(kernel[0] * kernel[1], int(divisor_override)))
    return y


@aten("_adaptive_avg_pool2d.default")
def _adaptive_avg(lo, a, output_size):
    x = lo.real(a)
    H, W = x.shape[-2:]
    oh, ow = output_size
    if H % oh or W % ow:       # windows of two sizes: sums over constant windows over their sizes
        return torch_ops.adaptive_avg(lo, x, (oh, ow))
    k = (H // oh, W // ow)
    (o,) = lo.emit("avg_pool2d", [lo.full(x)], {"kernel": k, "stride": k, "padding": (0, 0)})
    return Tensor(o, lo.shape_of(o))


# --------------------------------------------------------------------------------------------------- sort

_UNSTABLE_MAX = 16


@aten("sort.stable", "sort.default",
      note="sort backward scatters through the kernel's permutation: stable=True keeps tied elements in input "
           "order (ties=stable, ascending and descending); without stable=True torch's CPU std::sort is "
           "stable (insertion sort) up to 16 elements and not beyond, measured: beyond, ties=unspecified (a tie "
           "is undecidable)")
def _sort(lo, a, dim=-1, descending=False, stable=None):
    t = lo.real(a)
    if not t.shape:
        return t, Unavailable("sort indices are integers computed from real values")
    ax = dim % len(t.shape)
    ties = "unspecified" if not stable and t.shape[ax] > _UNSTABLE_MAX else "stable"
    if t.shape[ax] < 2:
        out = t
    else:
        (o,) = lo.emit("sort_axis", [lo.full(t)], {"axis": ax, "descending": bool(descending), "ties": ties})
        out = Tensor(o, t.shape)
    return out, Unavailable("sort indices are integers computed from real values")


# ---------------------------------------------------------------------------------------------- structure

@aten("view.default", "_unsafe_view.default", "reshape.default")
def _view(lo, a, shape):
    t = lo.real(a)
    shape = list(shape)
    if -1 in shape:
        i = shape.index(-1)
        shape[i] = _math.prod(t.shape) // max(1, _math.prod(d for d in shape if d != -1))
    return lo.reshape(t, shape)


@aten("permute.default")
def _permute(lo, a, dims):
    return lo.transpose(lo.real(a), dims)


@aten("t.default")
def _t(lo, a):
    t = lo.real(a)
    return t if len(t.shape) < 2 else lo.transpose(t, (1, 0))


@aten("transpose.int")
def _transpose(lo, a, d0, d1):
    t = lo.real(a)
    perm = list(range(len(t.shape)))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return lo.transpose(t, perm)


@aten("expand.default")
def _expand(lo, a, size, implicit=False):
    t = lo.real(a)
    lead = len(size) - len(t.shape)
    shape = [(t.shape[i - lead] if s == -1 else s) for i, s in enumerate(size)]
    return lo.broadcast(t, shape)


@aten("squeeze.dims", "squeeze.dim", "squeeze.default")
def _squeeze(lo, a, dims=None):
    t = lo.real(a)
    nd = len(t.shape)
    if dims is None:
        dims = [i for i, d in enumerate(t.shape) if d == 1]
    dims = {d % nd for d in ((dims,) if isinstance(dims, int) else dims)} if nd else set()
    return lo.reshape(t, [d for i, d in enumerate(t.shape) if not (i in dims and d == 1)])


@aten("unsqueeze.default")
def _unsqueeze(lo, a, dim):
    t = lo.real(a)
    shape = list(t.shape)
    shape.insert(dim % (len(shape) + 1), 1)
    return lo.reshape(t, shape)


@aten("clone.default", "alias.default", "lift_fresh_copy.default", "contiguous.default")
def _identity(lo, a, **kw):
    return a


@aten("_to_copy.default", note="a float cast is the identity on exact values")
def _to_copy(lo, a, dtype=None, **kw):
    if dtype is not None and not _is_float(dtype):
        lo.fail(f"a cast to {dtype} of a real value is not a real-number function")
    if isinstance(a, Cond):
        return lo.as_real(a, a.shape)
    return lo.real(a)


def _depends(lo, atom):
    """True when the program variable ``atom`` is computed from the program's inputs."""
    producer = {o: e for e in lo.b.eqns for o in e.outs}
    todo, seen = [atom], set()
    while todo:
        a = todo.pop()
        if not isinstance(a, int) or a in seen:
            continue
        if a < lo.b.n_inputs:
            return True
        seen.add(a)
        todo.extend(producer[a].ins)
    return False


@aten("detach.default", "detach_.default")
def _detach(lo, a):
    if isinstance(a, (Const, NonReal)) or lo.node not in lo.dependent or \
            isinstance(a, Tensor) and not _depends(lo, a.atom):
        return a                  # a constant: nothing to stop
    # usable only where no derivative flows (isnan of it, in nanmean); used as a real value it is refused
    return Unavailable("detach (stop_gradient) of a value computed from the inputs is not a real-number function: "
                       "its derivative is not the derivative of any program verify can represent", tuple(a.shape))


@aten("slice.Tensor")
def _slice(lo, a, dim=0, start=None, end=None, step=1):
    t = lo.real(a)
    nd = len(t.shape)
    dim %= nd
    starts = [0] * nd
    stops = list(t.shape)
    steps = [1] * nd
    starts[dim] = 0 if start is None else start
    stops[dim] = t.shape[dim] if end is None else min(end, t.shape[dim])
    steps[dim] = step
    return lo.slice(t, starts, stops, steps)


@aten("select.int")
def _select(lo, a, dim, index):
    t = lo.real(a)
    nd = len(t.shape)
    dim %= nd
    index %= t.shape[dim]
    starts, stops = [0] * nd, list(t.shape)
    starts[dim], stops[dim] = index, index + 1
    s = lo.slice(t, starts, stops)
    return lo.reshape(s, [d for i, d in enumerate(t.shape) if i != dim])


@aten("cat.default")
def _cat(lo, tensors, dim=0):
    ts = [lo.real(t) for t in tensors if not (isinstance(t, Tensor) and t.shape == (0,))]
    return lo.concat(ts, dim)


@aten("split_with_sizes.default")
def _split_sizes(lo, a, sizes, dim=0):
    t = lo.real(a)
    nd = len(t.shape)
    dim %= nd
    out, off = [], 0
    for s in sizes:
        starts, stops = [0] * nd, list(t.shape)
        starts[dim], stops[dim] = off, off + s
        out.append(lo.slice(t, starts, stops))
        off += s
    return out


@aten("split.Tensor")
def _split(lo, a, size, dim=0):
    t = lo.real(a)
    n = t.shape[dim % len(t.shape)]
    return _split_sizes(lo, t, [min(size, n - i) for i in range(0, n, size)], dim)


@aten("constant_pad_nd.default")
def _pad(lo, a, pad, value=0):
    t = lo.real(a)
    nd = len(t.shape)
    lo_, hi_ = [0] * nd, [0] * nd
    for i in range(len(pad) // 2):
        lo_[nd - 1 - i], hi_[nd - 1 - i] = pad[2 * i], pad[2 * i + 1]
    return lo.pad(t, lo_, hi_, value)


def _const_index(lo, idx, what):
    if isinstance(idx, (Tensor, Cond, NonReal, Unavailable)):
        lo.fail(f"{what} with indices computed from real values: not a real-number function")
    return idx


@aten("gather.default")
def _gather(lo, a, dim, index, sparse_grad=False):
    t = lo.real(a)
    idx = _np.asarray(_const_index(lo, index, "gather").value)
    import torch
    return lo.index_map(t, lambda pos: torch.gather(pos, dim, torch.from_numpy(idx)))


@aten("index_select.default")
def _index_select(lo, a, dim, index):
    t = lo.real(a)
    idx = _np.asarray(_const_index(lo, index, "index_select").value)
    import torch
    return lo.index_map(t, lambda pos: torch.index_select(pos, dim, torch.from_numpy(idx)))


@aten("index.Tensor")
def _index(lo, a, indices):
    t = lo.real(a)
    import torch
    idx = [None if i is None else torch.from_numpy(_np.asarray(_const_index(lo, i, "indexing").value))
           for i in indices]
    return lo.index_map(t, lambda pos: torch.ops.aten.index.Tensor(pos, idx))


@aten("repeat.default")
def _repeat(lo, a, repeats):
    # a list, not unpacked: repeat(()) of a 0-d tensor (x.repeat(()), x.tile(())) has no repeats at all
    return lo.index_map(lo.real(a), lambda pos: pos.repeat(list(repeats)))


@aten("flip.default")
def _flip(lo, a, dims):
    return lo.index_map(lo.real(a), lambda pos: pos.flip(list(dims)))


@aten("roll.default")
def _roll(lo, a, shifts, dims=()):
    return lo.index_map(lo.real(a), lambda pos: pos.roll(list(shifts), list(dims)))


@aten("unbind.int")
def _unbind(lo, a, dim=0):
    t = lo.real(a)
    return [_select(lo, t, dim, i) for i in range(t.shape[dim % len(t.shape)])]


@aten("full_like.default", "zeros_like.default", "ones_like.default")
def _full_like(lo, a, fill_value=None, **kw):
    op = lo.origin.op
    v = 0 if "zeros" in op else (1 if "ones" in op else fill_value)
    shape = tuple(a.shape)
    if isinstance(v, float) and not _math.isfinite(v):
        return NonReal(v, shape)
    return lo.broadcast(lo.real(v, "fill value"), shape)


def framework_values(imported, *args, state=None):
    """Run the graph that was imported, in torch's own float arithmetic, at ``args`` (the model's arguments as
    for from_torch; the weights are ``state``'s, {qualified name: tensor}, where it has them, else those of
    the exported program): {node name: its value} for every node of the decomposed graph (``Origin.node``
    names them), so that an audit can set the framework's floats beside the exact values of the equations
    lowered from each node.  Multi-output nodes give tuples."""
    import torch
    from torch.utils import _pytree as pytree
    ep = imported.source
    inputs = [v for _, _, _, v in input_values(ep, pytree.tree_leaves(tuple(args)), state=state)]
    values = {}

    class _Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            values[n.name] = out
            return out
    with torch.no_grad():
        _Recorder(ep.graph_module).run(*inputs)
    return values


# ------------------------------------------------------------------------------------ what torch returns

def owns(f, args):
    """True when ``f`` is a torch Module or one of ``args`` a torch tensor."""
    import torch
    return isinstance(f, torch.nn.Module) or any(isinstance(a, torch.Tensor) for a in args)


def import_model(f, *args, params="inputs", name=None):
    """The model as a verify program (``from_torch``)."""
    return from_torch(f, *args, params=params, name=name)


def gradient(f, args, imported, params="inputs", name=None):
    """torch's own gradient of the scalar ``f(*args)`` with respect to every input of ``imported`` (float
    arguments and, for a Module, its parameters): one numpy array per program input, None where torch gives
    none.  The module's ``.grad`` fields are left as they were."""
    import torch
    named = dict(f.named_parameters()) if isinstance(f, torch.nn.Module) else {}
    targs = [a.detach().clone().requires_grad_(a.is_floating_point()) if isinstance(a, torch.Tensor) else a
             for a in args]
    users = iter(a for a in targs if isinstance(a, torch.Tensor) and a.is_floating_point())
    leaves = [named[info.source] if info.kind == "parameter" else next(users) for info in imported.inputs]
    try:        # the export ran on these arguments: a RuntimeError here is autograd refusing an input
        out = f(*targs)
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            raise InputError("the audited function must return one scalar (a loss)")
        grads = torch.autograd.grad(out.reshape(()), leaves, allow_unused=True)
    except RuntimeError as e:
        raise InputError(f"torch's autograd cannot differentiate {imported.program.name} with respect to every "
                         f"float argument ({str(e).splitlines()[0]}): pass such an argument as a constant (a "
                         "buffer, or a tensor the function closes over)") from None
    # bfloat16 has no numpy dtype: its values are float32 numbers (exactly)
    return [None if g is None else (g.float() if g.dtype == torch.bfloat16 else g).detach().cpu().numpy()
            for g in grads]


# ------------------------------------------------------------------------------ import once, audit many

class Model:
    """A PyTorch model (or function) exported once and lowered at any arguments of the example's shapes, its
    parameters and buffers read from the live module at every use: the torch side of ``verify.Auditor``.

    ``imported(*args)`` is the model as an ``Imported`` at ``args`` with the module's current weights.  It
    re-uses the program and only rebuilds the point (and the arrays of buffers and constant parameters that
    changed) when the integer data (labels) are those of the last lowering; new integer data are lowered
    again from the same exported graph; new shapes or new non-tensor arguments are exported again
    (``exports`` counts the calls of torch.export).  ``gradient`` and ``values`` are torch's own gradient and
    intermediate values at those arguments with the same live weights."""

    def __init__(self, f, example_args, params="inputs", name=None):
        if params not in ("inputs", "constants"):
            raise ImportFailure(f"params={params!r} must be 'inputs' or 'constants'")
        self.f, self.params, self.name = f, params, name
        self.exports = 0
        self._export(tuple(example_args))

    def _export(self, args):
        self.ep, self.name, self.provenance = export(self.f, *args, name=self.name)
        self.exports += 1
        self.key = _args_key(args)
        self.current = None          # the last Imported, with what it baked in
        self.seen = {}               # framework name -> (the tensor it was read from, its exact value)

    def state(self):
        """{qualified name: tensor}: the live module's parameters and buffers (empty for a function)."""
        import torch
        if not isinstance(self.f, torch.nn.Module):
            return {}
        out = dict(self.f.named_buffers(remove_duplicate=False))
        out.update(self.f.named_parameters(remove_duplicate=False))
        return out

    def imported(self, *args):
        """The model as an ``Imported`` at ``args`` with the live weights (see the class docstring)."""
        from torch.utils import _pytree as pytree
        if _args_key(args) != self.key:
            self._export(args)
        leaves = pytree.tree_leaves(tuple(args))
        pending = input_values(self.ep, leaves, self.params, self.state())
        cur = self.current
        if cur is not None and _same_baked(cur[1], pending):
            imp = self._reuse(cur[0], pending)
            if imp is not None:
                self.current = (imp, cur[1])
                return imp
        imp = lower_exported(self.ep, leaves, self.params, self.name, self.state(), self.provenance)
        self.current = (imp, _baked(pending, imp))
        self._remember(imp, pending)
        return imp

    def _remember(self, imp, pending):
        """Keep the exact weights a lowering read, so that an audit at the same weights converts none again."""
        by_src = {src: v for _, _, src, v in pending}
        read = [(i.source, x) for i, x in zip(imp.inputs, imp.point) if i.kind == "parameter"]
        if imp.program.arrays:
            read += [(src, imp.program.arrays[name]) for name, (_, src, _) in imp.constants.items()]
        for src, ea in read:
            v = by_src.get(src)
            if _is_tensor(v) and not isinstance(ea, fmpq):
                self.seen[src] = (v.detach().clone(), ea)

    def _exact(self, src, v):
        """The exact array of ``v``, re-used when the tensor read for ``src`` last time holds the same floats."""
        import torch
        old = self.seen.get(src)
        if old is not None and old[1] is not None and old[0].dtype == v.dtype and torch.equal(old[0], v.detach()):
            return old[1]
        ea = _exact_array(v)
        if src is not None:
            self.seen[src] = (v.detach().clone(), ea)
        return ea

    def _reuse(self, imp, pending):
        """``imp`` at new inputs and weights without lowering again (None when a constant array became
        non-finite: that needs a new lowering)."""
        import dataclasses

        import torch

        from ..program.arrays import Arrays
        point = [point_value(self._exact(src if kind != "input" else None, v)) for _, kind, src, v in pending
                 if kind in ("input", "parameter") and _is_tensor(v) and _is_float(v.dtype)]
        by_src = {src: v for _, _, src, v in pending}
        arrays = dict(imp.program.arrays.arrays) if imp.program.arrays else {}
        changed = False
        for name, (kind, src, dtype) in imp.constants.items():
            v = by_src.get(src)
            if v is None or not _is_tensor(v):
                continue
            if not bool(torch.isfinite(v).all()):
                return None
            ea = self._exact(src, v)
            if ea is not arrays[name] and ea != arrays[name]:
                arrays[name], changed = ea, True
        program = imp.program
        if changed:
            program = dataclasses.replace(program, arrays=Arrays(arrays, program.arrays.file))
        return dataclasses.replace(imp, program=program, point=point)

    def gradient(self, args, imported):
        """torch's own gradient at ``args`` (see ``gradient``)."""
        return gradient(self.f, args, imported, self.params)

    def values(self, imported, args):
        """torch's own value at every node at ``args`` with the live weights (see ``framework_values``)."""
        return framework_values(imported, *args, state=self.state())


def _is_tensor(v):
    import torch
    return isinstance(v, torch.Tensor)


def _args_key(args):
    """What torch.export bakes into the exported graph: the arguments' structure, every tensor's shape and
    dtype, and every non-tensor argument's value."""
    from torch.utils import _pytree as pytree
    leaves, spec = pytree.tree_flatten(tuple(args))
    return str(spec), tuple((tuple(v.shape), str(v.dtype)) if _is_tensor(v) else ("value", repr(v)) for v in leaves)


def _baked(pending, imp):
    """What a lowering baked into the program besides the program's inputs and its constant arrays: integer
    and boolean tensors (labels, masks) and the inputs that were not finite (imported as non-real constants),
    as {framework name: a copy}."""
    arrays = {src for _, src, _ in imp.constants.values()}
    out = {}
    for _, kind, src, v in pending:
        if not _is_tensor(v):
            continue
        floating = _is_float(v.dtype)
        if (floating and kind in ("input", "parameter")) or src in arrays:
            continue
        out[(kind, src)] = v.detach().clone()
    return out


def _same_baked(baked, pending):
    import torch
    now = {(kind, src): v for _, kind, src, v in pending if (kind, src) in baked}
    return len(now) == len(baked) and all(
        now[k].dtype == b.dtype and now[k].shape == b.shape and bool(torch.equal(now[k].detach(), b))
        for k, b in baked.items())


# the ops of frameworks/torch_ops.py (PyTorch's operator set), and the *_copy ops as their views
ATEN.update(torch_ops.OPS)
_BOOL_OPS.update(torch_ops.BOOL_OPS)
for _copy, _view in torch_ops.COPIES.items():
    ATEN.setdefault(_copy, ATEN[_view])
