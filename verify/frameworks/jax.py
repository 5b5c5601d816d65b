"""JAX: run a Program with jax.numpy operations (the framework as an oracle for our AD)."""
from flint import fmpq

from . import ExportError, _f

_HALF = fmpq(1, 2)
Q0, Q1 = fmpq(0), fmpq(1)


def _leaky_at_zero(p):
    return p["slope"] if p["at_zero"] is None else p["at_zero"]


SEMANTICS = {
    "relu": lambda p, n: p["alpha"] == Q0,
    "abs": lambda p, n: p["at_zero"] == Q1,
    "leaky_relu": lambda p, n: _leaky_at_zero(p) == Q1,
    "max": lambda p, n: p["tie"] == "split",
    "min": lambda p, n: p["tie"] == "split",
    "sort": lambda p, n: p["ties"] == ("reverse" if p["descending"] else "stable"),
    "clamp": lambda p, n: p["at_lo"] == _HALF and p["at_hi"] == _HALF,
    "hardtanh": lambda p, n: p["at_lo"] == Q1 and p["at_hi"] == Q1,
    "relu6": lambda p, n: p["at_lo"] == Q0 and p["at_hi"] == Q0,
    "where": lambda p, n: True,
}


class Backend:
    def __init__(self):
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        self.jax, self.jnp = jax, jnp

    def lit(self, q):
        return self.jnp.float64(_f(q))

    def smooth(self, prim, xs, p):
        jnp, jax = self.jnp, self.jax
        if prim == "add":
            return xs[0] + xs[1]
        if prim == "sub":
            return xs[0] - xs[1]
        if prim == "mul":
            return xs[0] * xs[1]
        if prim == "div":
            return xs[0] / xs[1]
        if prim == "neg":
            return -xs[0]
        if prim == "pow":
            return xs[0] ** p["n"]
        if prim == "sigmoid":
            return jax.nn.sigmoid(xs[0])
        if prim == "erf":
            return jax.scipy.special.erf(xs[0])
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
            cond = {">": u > v, ">=": u >= v, "<": u < v, "<=": u <= v, "==": u == v, "!=": u != v}[p["op"]]
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
