"""Exporting: run a verify Program with a framework's own operations, as an oracle for our AD.

``to_torch``, ``to_jax`` and ``framework_grad`` run a Program with torch / jax.numpy operations, so that the
framework's AD can be compared with ours on the same program (the ``frameworks`` claim of ``verify fuzz``).

Each primitive maps to the framework operation whose behaviour at the kink is the one measured in the
table of docs/programs.md: torch.relu / jax.nn.relu, torch.abs / jnp.abs, torch.maximum / jnp.maximum for two
arguments and torch.max(torch.stack) / jnp.max(jnp.stack) for more (ties split 1/k), torch.sort(stable) /
jnp.sort, torch.where / jnp.where, torch.clamp / jnp.clip, hardtanh (jax.nn.hard_tanh rescaled to [lo, hi]),
relu6, leaky_relu.  A program is exportable to a framework only when every kink param, as the convention
resolves it, is what that framework's operation does (``SEMANTICS``, an independent copy of the measured
table, not kinks.py): ``relu(u, alpha=1/2)`` has no PyTorch counterpart and raises ExportError.

Values are float64 (torch.float64; JAX with ``jax_enable_x64``).  Literals are rounded to float64, so at a
kink the framework may see a different side than the exact rationals do: the claim compares the framework's
own pattern with ours before comparing derivatives.
"""
from flint import fmpq

from ..errors import InputError
from ..program import kinks
from ..program.ir import Lit, eqn_label
from ..program.prims import PRIMITIVES

Q0, Q1 = fmpq(0), fmpq(1)


class ExportError(InputError):
    """The program has no faithful counterpart in the framework (a kink param the framework cannot express)."""


def _f(q):
    return int(q.p) / int(q.q)


def _leaky_at_zero(p):
    return p["slope"] if p["at_zero"] is None else p["at_zero"]


# What each framework operation does at its kinks (measured: torch 2.13, JAX 0.10.2, float64 CPU):
# primitive -> function of (resolved params, number of args) -> whether the operation has exactly those params.
TORCH_SEMANTICS = {
    "relu": lambda p, n: p["alpha"] == Q0,
    "abs": lambda p, n: p["at_zero"] == Q0,
    "leaky_relu": lambda p, n: _leaky_at_zero(p) == p["slope"],
    "max": lambda p, n: p["tie"] == "split",
    "min": lambda p, n: p["tie"] == "split",
    "sort": lambda p, n: p["ties"] == "stable",
    "clamp": lambda p, n: p["at_lo"] == Q1 and p["at_hi"] == Q1,
    "hardtanh": lambda p, n: p["at_lo"] == Q0 and p["at_hi"] == Q0,
    "relu6": lambda p, n: p["at_lo"] == Q0 and p["at_hi"] == Q0,
    "where": lambda p, n: True,
}


# the operations both frameworks spell as Python operators on their arrays
ARITHMETIC = {
    "add": lambda xs, p: xs[0] + xs[1],
    "sub": lambda xs, p: xs[0] - xs[1],
    "mul": lambda xs, p: xs[0] * xs[1],
    "div": lambda xs, p: xs[0] / xs[1],
    "neg": lambda xs, p: -xs[0],
    "pow": lambda xs, p: xs[0] ** p["n"],
}
COMPARISONS = {">": lambda u, v: u > v, ">=": lambda u, v: u >= v, "<": lambda u, v: u < v,
               "<=": lambda u, v: u <= v, "==": lambda u, v: u == v, "!=": lambda u, v: u != v}


class TorchBackend:
    """Runs a program's primitives with torch operations in float64."""

    def __init__(self):
        import torch
        import torch.nn.functional as F
        self.t, self.F = torch, F

    def lit(self, q):
        return self.t.tensor(_f(q), dtype=self.t.float64)

    def smooth(self, prim, xs, p):
        t = self.t
        if prim in ARITHMETIC:
            return ARITHMETIC[prim](xs, p)
        if prim in ("polygamma", "bessel_i", "erfinv"):
            fn = {"polygamma": lambda x: t.polygamma(p["n"], x), "erfinv": t.erfinv,
                  "bessel_i": lambda x: {0: t.special.i0, 1: t.special.i1}[p["n"]](x)}[prim]
            return fn(xs[0])
        return getattr(t, prim)(xs[0])

    def nonsmooth(self, prim, xs, p):
        t, F = self.t, self.F
        x = xs[0]
        if prim == "relu":
            return [t.relu(x)]
        if prim == "abs":
            return [t.abs(x)]
        if prim == "leaky_relu":
            return [F.leaky_relu(x, _f(p["slope"]))]
        if prim in ("max", "min"):
            if len(xs) == 2:
                return [(t.maximum if prim == "max" else t.minimum)(xs[0], xs[1])]
            return [(t.max if prim == "max" else t.min)(t.stack(xs))]
        if prim == "sort":
            s = t.sort(t.stack(xs), descending=p["descending"], stable=True).values
            return [s[i] for i in range(len(xs))]
        if prim == "where":
            u, v, a, b = xs
            cond = COMPARISONS[p["op"]](u, v)
            return [t.where(cond, a, b)]
        if prim == "clamp":
            lo, hi = p["lo"], p["hi"]
            return [t.clamp(x, min=None if lo is None else _f(lo), max=None if hi is None else _f(hi))]
        if prim == "hardtanh":
            return [F.hardtanh(x, _f(p["lo"]), _f(p["hi"]))]
        if prim == "relu6":
            return [F.relu6(x)]
        raise ExportError(f"no torch counterpart for {prim}")

    def inputs(self, xs):
        return [self.t.tensor(float(v), dtype=self.t.float64, requires_grad=True) for v in xs]

    def value_and_jacobian(self, fn, xs):
        ins = self.inputs(xs)
        outs, env = fn(ins)
        vals = [float(o.detach()) for o in outs]
        jac = []
        for o in outs:
            if not o.requires_grad:
                jac.append([0.0] * len(ins))
                continue
            gs = self.t.autograd.grad(o, ins, retain_graph=True, allow_unused=True)
            jac.append([0.0 if g is None else float(g) for g in gs])
        return vals, jac, [None if v is None else float(v.detach()) for v in env]


JAX_SEMANTICS = {
    "relu": lambda p, n: p["alpha"] == Q0,
    "abs": lambda p, n: p["at_zero"] == Q1,
    "leaky_relu": lambda p, n: _leaky_at_zero(p) == Q1,
    "max": lambda p, n: p["tie"] == "split",
    "min": lambda p, n: p["tie"] == "split",
    "sort": lambda p, n: p["ties"] == ("reverse" if p["descending"] else "stable"),
    "clamp": lambda p, n: p["at_lo"] == fmpq(1, 2) and p["at_hi"] == fmpq(1, 2),
    "hardtanh": lambda p, n: p["at_lo"] == Q1 and p["at_hi"] == Q1,
    "relu6": lambda p, n: p["at_lo"] == Q0 and p["at_hi"] == Q0,
    "where": lambda p, n: True,
}


class JaxBackend:
    """Runs a program's primitives with jax.numpy operations in float64 (switches on jax_enable_x64)."""

    def __init__(self):
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        self.jax, self.jnp = jax, jnp

    def lit(self, q):
        return self.jnp.float64(_f(q))

    def smooth(self, prim, xs, p):
        jnp, jax = self.jnp, self.jax
        if prim in ARITHMETIC:
            return ARITHMETIC[prim](xs, p)
        if prim == "sigmoid":
            return jax.nn.sigmoid(xs[0])
        if prim == "erf":
            return jax.scipy.special.erf(xs[0])
        if prim in ("lgamma", "polygamma", "erfinv", "bessel_i"):
            sp = jax.scipy.special
            fn = {"lgamma": sp.gammaln, "polygamma": lambda x: sp.polygamma(p["n"], x), "erfinv": sp.erfinv,
                  "bessel_i": lambda x: {0: sp.i0, 1: sp.i1}[p["n"]](x)}[prim]
            return fn(xs[0])
        return getattr(jnp, prim)(xs[0])

    def nonsmooth(self, prim, xs, p):
        jnp, jax = self.jnp, self.jax
        x = xs[0]
        if prim == "relu":
            return [jax.nn.relu(x)]
        if prim == "abs":
            return [jnp.abs(x)]
        if prim == "leaky_relu":
            return [jax.nn.leaky_relu(x, _f(p["slope"]))]
        if prim in ("max", "min"):
            if len(xs) == 2:
                return [(jnp.maximum if prim == "max" else jnp.minimum)(xs[0], xs[1])]
            return [(jnp.max if prim == "max" else jnp.min)(jnp.stack(xs))]
        if prim == "sort":
            s = jnp.sort(jnp.stack(xs), descending=p["descending"])
            return [s[i] for i in range(len(xs))]
        if prim == "where":
            u, v, a, b = xs
            cond = COMPARISONS[p["op"]](u, v)
            return [jnp.where(cond, a, b)]
        if prim == "clamp":
            lo, hi = p["lo"], p["hi"]
            return [jnp.clip(x, None if lo is None else _f(lo), None if hi is None else _f(hi))]
        if prim == "hardtanh":
            lo, hi = p["lo"], p["hi"]
            if lo == -1 and hi == 1:
                return [jax.nn.hard_tanh(x)]
            c, s = _f((lo + hi) / 2), _f((hi - lo) / 2)     # dyadic bounds make both exact
            return [c + s * jax.nn.hard_tanh((x - c) / s)]
        if prim == "relu6":
            return [jax.nn.relu6(x)]
        raise ExportError(f"no jax counterpart for {prim}")

    def value_and_jacobian(self, fn, xs):
        jax, jnp = self.jax, self.jnp
        ins = [jnp.float64(float(v)) for v in xs]

        def f(*args):
            outs, env = fn(list(args))
            return tuple(outs), env
        outs, vjp, env = jax.vjp(f, *ins, has_aux=True)
        vals = [float(o) for o in outs]
        jac = []
        for k in range(len(outs)):
            ct = tuple(jnp.float64(1.0 if j == k else 0.0) for j in range(len(outs)))
            jac.append([float(g) for g in vjp(ct)])
        return vals, jac, [None if v is None else float(v) for v in env]


SEMANTICS = {"torch": TORCH_SEMANTICS, "jax": JAX_SEMANTICS}
BACKENDS = {"torch": TorchBackend, "jax": JaxBackend}


def semantics(framework):
    """The kink table of ``framework`` (see the module docstring)."""
    if framework not in SEMANTICS:
        raise InputError(f"framework {framework!r} is not supported (choose one of {', '.join(SEMANTICS)})")
    return SEMANTICS[framework]


def check_exportable(program, framework, convention):
    """Raise ExportError naming the first equation whose resolved kink params the framework cannot express."""
    table = semantics(framework)
    kinks.check_convention(convention)
    for k, e in enumerate(program.eqns):
        ok = table.get(e.prim)
        if ok is None:
            continue
        p = kinks.resolve(e, convention)
        if not ok(p, len(e.ins)):
            shown = {a: b for a, b in p.items() if a not in ("lo", "hi")}
            raise ExportError(f"equation {k + 1} `{eqn_label(program, k)}` with {shown} (convention {convention}) "
                              f"has no {framework} counterpart")


def _interpreter(program, backend, convention):
    """``fn(xs) -> (outputs, env)``: ``program`` run with ``backend``'s operations (kink params resolved by
    ``convention``)."""
    params = [kinks.resolve(e, convention) for e in program.eqns]

    def fn(xs):
        env = list(xs) + [None] * (program.n_vars - program.n_inputs)
        lits = {}

        def read(a):
            if isinstance(a, Lit):
                if id(a) not in lits:
                    lits[id(a)] = backend.lit(a.value)
                return lits[id(a)]
            return env[a]
        for e, p in zip(program.eqns, params):
            xs_ = [read(a) for a in e.ins]
            ys = [backend.smooth(e.prim, xs_, p)] if PRIMITIVES[e.prim].smooth else backend.nonsmooth(e.prim, xs_, p)
            for o, y in zip(e.outs, ys):
                env[o] = y
        return [read(a) for a in program.outputs], env
    return fn


def to_torch(program, convention="torch"):
    """A callable ``f(xs) -> (outputs, env)`` over float64 torch scalars (``xs``: one per input; ``env``:
    every variable's value) computing ``program`` with torch operations.  Raises ExportError when a kink
    param (as ``convention`` resolves it) differs from what torch does."""
    from ..frontends import as_program
    program = as_program(program)
    check_exportable(program, "torch", convention)
    return _interpreter(program, TorchBackend(), convention)


def to_jax(program, convention="jax"):
    """As ``to_torch`` for JAX (jax.numpy scalars; switches on jax_enable_x64)."""
    from ..frontends import as_program
    program = as_program(program)
    check_exportable(program, "jax", convention)
    return _interpreter(program, JaxBackend(), convention)


def framework_grad(program, point, framework, convention=None):
    """(values, jacobian, env) as floats, computed by ``framework``'s own AD in float64 at ``point`` (exact
    numbers are rounded to float64 first).  ``convention`` defaults to the framework's own."""
    from ..interpret.evaluate import coerce_point
    from ..frontends import as_program
    program = as_program(program)
    convention = convention or framework
    check_exportable(program, framework, convention)
    backend = BACKENDS[framework]()
    xs = coerce_point(program, point)
    return backend.value_and_jacobian(_interpreter(program, backend, convention), [_f(x) for x in xs])


