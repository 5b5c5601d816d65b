"""PyTorch: run a Program with torch operations (the framework as an oracle for our AD)."""
from flint import fmpq

from . import ExportError, _f

_HALF = fmpq(1, 2)
Q0, Q1 = fmpq(0), fmpq(1)


def _leaky_at_zero(p):
    return p["slope"] if p["at_zero"] is None else p["at_zero"]


SEMANTICS = {
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


class Backend:
    def __init__(self):
        import torch
        import torch.nn.functional as F
        self.t, self.F = torch, F

    def lit(self, q):
        return self.t.tensor(_f(q), dtype=self.t.float64)

    def smooth(self, prim, xs, p):
        t = self.t
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
            cond = {">": u > v, ">=": u >= v, "<": u < v, "<=": u <= v, "==": u == v, "!=": u != v}[p["op"]]
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
