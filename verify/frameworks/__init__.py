"""Run a Program in PyTorch or JAX, with the framework's own operations, so that the framework's AD can be
compared with ours on the same program (the ``frameworks`` claim of ``verify fuzz``).

Each primitive maps to the framework operation whose behaviour at the kink is the one measured in the
README's table: torch.relu / jax.nn.relu, torch.abs / jnp.abs, torch.maximum / jnp.maximum for two
arguments and torch.max(torch.stack) / jnp.max(jnp.stack) for more (ties split 1/k), torch.sort(stable) /
jnp.sort, torch.where / jnp.where, torch.clamp / jnp.clip, hardtanh (jax.nn.hard_tanh rescaled to [lo, hi]),
relu6, leaky_relu.  A program is exportable to a framework only when every kink param, as the convention
resolves it, is what that framework's operation does (each framework module's ``SEMANTICS``, an
independent copy of the measured table, not kinks.py): ``relu(u, alpha=1/2)`` has no PyTorch
counterpart and raises ExportError.

Values are float64 (torch.float64; JAX with ``jax_enable_x64``, which ``to_jax`` switches on).  Literals are
rounded to float64, so at a kink the framework may see a different side than the exact rationals do: the
claim compares the framework's own pattern with ours before comparing derivatives.
"""
from flint import fmpq

from ..program import kinks
from ..errors import InputError
from ..program.ir import Lit

_HALF = fmpq(1, 2)
Q0, Q1 = fmpq(0), fmpq(1)


class ExportError(InputError):
    """The program has no faithful counterpart in the framework (a kink param the framework cannot express)."""


def _leaky_at_zero(p):
    return p["slope"] if p["at_zero"] is None else p["at_zero"]


# What each framework operation does at its kinks (measured: torch 2.13, JAX 0.10.2, float64 CPU), one table
# per framework module: primitive -> function of (resolved params, number of args) -> whether the operation
# has exactly those params.
FRAMEWORKS = ("torch", "jax")


def _module(framework):
    import importlib
    if framework not in FRAMEWORKS:
        raise InputError(f"framework {framework!r} is not supported (choose one of {', '.join(FRAMEWORKS)})")
    return importlib.import_module(f"{__name__}.{framework}")


def semantics(framework):
    """The kink table of ``framework`` (see the module docstring)."""
    return _module(framework).SEMANTICS



def check_exportable(program, framework, convention):
    """Raise ExportError naming the first equation whose resolved kink params the framework cannot express."""
    from ..program.ir import eqn_label
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


def available(framework):
    """True when the framework can be imported."""
    try:
        if framework == "torch":
            import torch  # noqa: F401
        elif framework == "jax":
            import jax  # noqa: F401
        else:
            return False
    except ImportError:
        return False
    return True




def _f(q):
    return int(q.p) / int(q.q)


def _interpreter(program, backend, convention):
    from ..program.prims import PRIMITIVES
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
    return _interpreter(program, _module("torch").Backend(), convention)


def to_jax(program, convention="jax"):
    """As ``to_torch`` for JAX (jax.numpy scalars; switches on jax_enable_x64)."""
    from ..frontends import as_program
    program = as_program(program)
    check_exportable(program, "jax", convention)
    return _interpreter(program, _module("jax").Backend(), convention)


def framework_grad(program, point, framework, convention=None):
    """(values, jacobian, env) as floats, computed by ``framework``'s own AD in float64 at ``point`` (exact
    numbers are rounded to float64 first).  ``convention`` defaults to the framework's own."""
    from ..interpret.evaluate import coerce_point
    from ..frontends import as_program
    program = as_program(program)
    convention = convention or framework
    check_exportable(program, framework, convention)
    backend = _module(framework).Backend()
    xs = coerce_point(program, point)
    return backend.value_and_jacobian(_interpreter(program, backend, convention), [_f(x) for x in xs])


__all__ = ["to_torch", "to_jax", "framework_grad", "check_exportable", "available", "ExportError", "semantics",
           "FRAMEWORKS"]
