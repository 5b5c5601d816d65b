"""Core benchmark: evaluation and AD of random straight-line scalar programs of N equations.

Two program families (every row of the table says which one it uses):

  mixed     add, sub, mul (by a literal in [-1, 1] or by a tanh/sigmoid output), relu, abs, max, tanh,
            sigmoid, exp(tanh(.)).  Timed in balls (128 bits), float64, and torch float64 autograd.
            relu / abs / max act on u + c for a fresh random rational c with a large prime denominator,
            so no kink is hit by coincidence and every decision is made in balls at 128 bits.
  rational  add, sub, mul by 1/2, -1 or 2, relu, abs, max: no transcendental primitive, every value is an
            exact rational.  Timed in exact arithmetic (and float64 for comparison; not in balls: exact
            ties such as max(u, u') with u = u' occur here and are undecidable in balls).

Operands are drawn among the 16 most recently defined variables (an input now and then; the oldest unused
variable first, so there is no dead code); every 8 steps a residual sum acc = acc + latest is updated and
acc is the output, so the backward pass reaches most of the program (the table's notes give the share).
Times are minima over --repeat runs (time.perf_counter, garbage collector off, as timeit recommends: on a
shared machine the minimum is the least disturbed figure), after an untimed warm-up; compiling a program's
steps and building its tape (with the code bound to balls and the literals converted at 128 bits) happen
once per program and are rows of their own.

A *bare tape* baseline does the same arithmetic with nothing else: a list of (kind, function, input slots,
output slot) tuples walked by one loop that decides kinks by Python comparisons, and a reverse loop for the
gradient (no precision escalation, no error handling, no exact forms, no pattern API): over arb balls for the
mixed program, over fmpq for the rational one.  It is the floor a Python interpreter of these programs can
reach.

Targets, reported PASS/MISS (informational: the exit status is 0 unless something raises):
  ball vjp pass alone / ball eval alone <= 2.5;
  torch float64 (forward + backward) / ours (verify.grad backward, balls at 128 bits) >= 10;
  ours (verify.grad backward) / bare tape (eval + gradient), balls and exact <= 2.
The torch gradient is also compared with ours in float64 (relative 1e-9; printed, never fatal).
"""
import argparse
import gc
import operator
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flint import arb, ctx, fmpq  # noqa: E402

import verify  # noqa: E402
from verify.interpret.ad import vjp  # noqa: E402
from verify.interpret.evaluate import compiled, run  # noqa: E402
from verify.frontends import Builder  # noqa: E402
from verify.program.ir import Lit  # noqa: E402
from verify.program.kinks import DEFAULT  # noqa: E402
from verify.numbers import get_system  # noqa: E402

N_INPUTS, WINDOW, TAP, PREC = 4, 16, 8, 128
TARGET_VJP_OVER_EVAL, TARGET_TORCH_SPEEDUP, TARGET_OVER_BARE = 2.5, 10.0, 2.0


# ------------------------------------------------------------------------------------ random programs

class Gen:
    """A Builder (variables named v<equation index>) and the operand rules below."""

    def __init__(self, name, rng):
        self.rng, self.b = rng, Builder(name, [f"x{i}" for i in range(N_INPUTS)])
        self.recent = list(range(N_INPUTS))
        self.unused = list(self.recent)    # variables of the window that no equation uses yet, oldest first
        self.bounded = []   # recent tanh / sigmoid outputs: values in [-1, 1]

    def __len__(self):
        return len(self.b.eqns)

    def pick(self, avoid=None):
        """An operand: one of the WINDOW most recent variables (an input with probability 1/50)."""
        if self.rng.random() < 0.02:
            return self.rng.randrange(N_INPUTS)
        return self.rng.choice([v for v in self.recent if v != avoid] or self.recent)

    def first(self):
        """The first operand: the oldest variable of the window that nothing uses yet, if any (no dead code)."""
        return self.unused[0] if self.unused else self.pick()

    def offset(self):
        """A generic rational in [-2, 2] (prime denominator 2**31 - 1): no coincidental ties."""
        return Lit(fmpq(self.rng.randint(-2 * BIG, 2 * BIG), BIG))

    def emit(self, prim, *ins, window=True):
        (v,) = self.b.emit(prim, ins, names=[f"v{len(self.b.eqns)}"])
        if not window:
            self.unused = [u for u in self.unused if u not in ins]
            return v
        self.recent = (self.recent + [v])[-WINDOW:]
        self.unused = [u for u in self.unused if u not in ins and u in self.recent] + [v]
        if prim in ("tanh", "sigmoid"):
            self.bounded = (self.bounded + [v])[-WINDOW:]
        return v


BIG = 2 ** 31 - 1
MUL_LITS = [fmpq(k, 4) for k in (-3, -2, -1, 1, 2, 3)]   # in [-1, 1]: with these weights balls stay tight


def mixed_step(g, r):
    a = g.first()
    if r < 0.12:
        g.emit("add", a, g.pick(a))
    elif r < 0.24:
        g.emit("sub", a, g.pick(a))
    elif r < 0.46:
        g.emit("mul", a, Lit(g.rng.choice(MUL_LITS)))
    elif r < 0.54:
        g.emit("mul", a, g.rng.choice(g.bounded) if g.bounded else Lit(fmpq(1, 2)))
    elif r < 0.66:
        g.emit("relu", g.emit("add", a, g.offset()))
    elif r < 0.74:
        g.emit("abs", g.emit("add", a, g.offset()))
    elif r < 0.84:
        b = g.pick(a)
        g.emit("max", g.emit("add", a, g.offset()), b)
    elif r < 0.92:
        g.emit("tanh", a)
    elif r < 0.97:
        g.emit("sigmoid", a)
    else:
        g.emit("exp", g.emit("tanh", a))


def rational_step(g, r):
    a = g.first()
    if r < 0.15:
        g.emit("add", a, g.pick(a))
    elif r < 0.30:
        g.emit("sub", a, g.pick(a))
    elif r < 0.63:
        g.emit("mul", a, Lit(fmpq(1, 2)))
    elif r < 0.69:
        g.emit("mul", a, Lit(fmpq(-1)))
    elif r < 0.71:
        g.emit("mul", a, Lit(fmpq(2)))
    elif r < 0.81:
        g.emit("relu", a)
    elif r < 0.90:
        g.emit("abs", a)
    else:
        g.emit("max", a, g.pick(a))


def build(kind, n, seed):
    """A program of exactly n equations.  Every TAP steps, acc = acc + (latest variable), outside the
    window; the output is acc (a residual sum).  Without it relu and max kill the backward cone of a deep,
    narrow program within a few thousand equations, and vjp (which skips symbolic zeros) would do
    almost nothing."""
    g = Gen(kind, random.Random(f"{kind}-{seed}-{n}"))
    step = mixed_step if kind == "mixed" else rational_step
    acc, k = 0, 0    # acc starts as the input x0
    while len(g) < n - 1:
        k += 1
        if k % TAP == 0:
            acc = g.emit("add", acc, g.recent[-1], window=False)
        else:
            step(g, g.rng.random() if n - 1 - len(g) > 1 else 0.0)   # 0.0: add, a one-equation step
    acc = g.emit("add", acc, g.recent[-1], window=False)
    return g.b.finish([acc])


def random_point(seed):
    rng = random.Random(f"point-{seed}")
    return [fmpq(rng.choice([-1, 1]) * rng.randint(1, 20), rng.choice([3, 5, 7])) for _ in range(N_INPUTS)]


# ------------------------------------------------------------------------------------------- timing

def timed(fn, repeat):
    """(minimum seconds, last result) over ``repeat`` calls of fn(), garbage collector off (as timeit)."""
    ts, out = [], None
    for _ in range(repeat):
        out = None
        gc.collect()
        gc.disable()
        try:
            t = time.perf_counter()
            out = fn()
            ts.append(time.perf_counter() - t)
        finally:
            gc.enable()
    return min(ts), out


def ball_eval_and_vjp(P, x, repeat):
    """Median seconds of one ball run (Algorithm 1) and of one vjp pass alone, at PREC bits."""
    ns = get_system("ball")
    with ctx.workprec(PREC):
        xs = [ns.const(q) for q in x]
        t_eval, r = timed(lambda: run(P, ns, xs), repeat)
        one = [ns.const(fmpq(1))]
        t_vjp, _ = timed(lambda: vjp(r, one), repeat)
    return t_eval, t_vjp, r


def live_fraction(r):
    """Fraction of equations whose outputs get a nonzero cotangent in backward mode (the others are
    skipped by vjp's symbolic zeros; torch's backward does all of them)."""
    steps, P = compiled(r.program, r.convention), r.program
    live = [False] * P.n_vars
    for a in P.outputs:
        if a.__class__ is int:
            live[a] = True
    pat, n_live = list(r.pattern), 0
    for st in reversed(steps):
        piece = st.piece(pat.pop()) if st.rule is None else None
        if not any(live[o] for o in st.outs):
            continue
        n_live += 1
        used = range(len(st.ins)) if piece is None else {j for terms, _ in piece.rows for j, _ in terms}
        for j in used:
            if st.ins[j].__class__ is int:
                live[st.ins[j]] = True
    return n_live / len(steps)


def torch_forward_backward(P, x, repeat):
    """Median seconds of torch float64 forward and backward (0-d tensors, autograd), and the gradient."""
    import torch
    torch.set_num_threads(1)
    table = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "relu": torch.relu, "abs": torch.abs,
             "max": torch.maximum, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "exp": torch.exp}
    code = [(table[e.prim], e.outs[0], [(a, True) if a.__class__ is int else (float(a.value), False) for a in e.ins])
            for e in P.eqns]

    def forward():
        xs = [torch.tensor(float(q), dtype=torch.float64, requires_grad=True) for q in x]
        env = xs + [None] * (P.n_vars - P.n_inputs)
        for f, o, ins in code:
            env[o] = f(*[env[a] if var else a for a, var in ins])
        return xs, env[P.outputs[0]]

    fwd, bwd, grads = [], [], None
    for _ in range(repeat):
        t_f, (xs, y) = timed(forward, 1)
        t_b, grads = timed(lambda: torch.autograd.grad(y, xs), 1)
        fwd.append(t_f)
        bwd.append(t_b)
    return min(fwd), min(bwd), [float(g) for g in grads]


# ------------------------------------------------------------------------------------------ bare tape

def bare_tape(P, const):
    """The bare tape of P: (kind, function, a, b, out) with literal operands as extra slots (values by
    ``const``), built once; the functions are the values' own operations."""
    n = P.n_vars
    lits, code = [], []

    def slot(a):
        if a.__class__ is int:
            return a
        lits.append(const(a.value))
        return n + len(lits) - 1
    binary = {"add": operator.add, "sub": operator.sub, "mul": operator.mul}
    for e in P.eqns:
        s = [slot(a) for a in e.ins] + [0]
        if e.prim in binary:
            code.append((0, binary[e.prim], s[0], s[1], e.outs[0]))
        elif e.prim in ("tanh", "exp"):
            code.append((1, e.prim, s[0], 0, e.outs[0]))
        elif e.prim == "sigmoid":
            code.append((1, e.prim, s[0], 0, e.outs[0]))
        else:
            code.append(({"relu": 2, "abs": 3, "max": 4}[e.prim], None, s[0], s[1], e.outs[0]))
    return code, lits


def bare_grad(P, code, lits, xs, zero, one, half=None):
    """Evaluate and differentiate (reverse mode) along the bare tape; returns the input gradient.  In exact
    arithmetic (``half`` given) a sign that is neither > 0 nor < 0 is a tie, with torch's kink values."""
    exact = half is not None
    env = list(xs) + [None] * (P.n_vars - len(xs)) + lits
    pat = []
    push = pat.append
    for k, f, a, b, o in code:
        if k == 0:
            env[o] = f(env[a], env[b])
        elif k == 1:
            u = env[a]
            env[o] = u.tanh() if f == "tanh" else (u.exp() if f == "exp" else one / (one + (-u).exp()))
        elif k == 2:
            u = env[a]
            s = u.p if exact else u              # an fmpq's sign is its numerator's (and faster to read)
            if s > 0:
                env[o] = u
                push(1)
            elif s < 0:
                env[o] = zero
                push(0)
            elif exact:                 # torch: relu'(0) = 0
                env[o] = zero
                push(2)
            else:
                raise ValueError("an undecided sign")
        elif k == 3:
            u = env[a]
            s = u.p if exact else u
            if s > 0:
                env[o] = u
                push(1)
            elif s < 0:
                env[o] = -u
                push(0)
            elif exact:                 # torch: abs'(0) = 0
                env[o] = zero
                push(2)
            else:
                raise ValueError("an undecided sign")
        else:
            u, v = env[a], env[b]
            d = u - v
            s = d.p if exact else d
            if s > 0:
                env[o] = u
                push(0)
            elif s < 0:
                env[o] = v
                push(1)
            elif exact:                 # torch: a tie splits
                env[o] = (u + v) * half
                push(2)
            else:
                raise ValueError("an undecided sign")
    ct = [None] * len(env)
    ct[P.outputs[0]] = one
    m = len(pat)
    for k, f, a, b, o in reversed(code):
        if k >= 2:
            m -= 1
        c = ct[o]
        if c is None:
            continue
        if k == 0:
            if f is operator.add:
                ga, gb = c, c
            elif f is operator.sub:
                ga, gb = c, -c
            else:
                ga, gb = c * env[b], env[a] * c
            ct[a] = ga if ct[a] is None else ct[a] + ga
            ct[b] = gb if ct[b] is None else ct[b] + gb
        elif k == 1:
            y = env[o]
            g = c * (one - y * y) if f == "tanh" else (c * y if f == "exp" else c * (y * (one - y)))
            ct[a] = g if ct[a] is None else ct[a] + g
        elif k == 2:
            if pat[m] == 1:
                ct[a] = c if ct[a] is None else ct[a] + c
        elif k == 3:
            if pat[m] < 2:
                g = c if pat[m] == 1 else -c
                ct[a] = g if ct[a] is None else ct[a] + g
        elif pat[m] == 2:
            g = c * half
            ct[a] = g if ct[a] is None else ct[a] + g
            ct[b] = g if ct[b] is None else ct[b] + g
        else:
            j = b if pat[m] == 1 else a
            ct[j] = c if ct[j] is None else ct[j] + c
    return ct[:P.n_inputs]


def timed_bare(P, x, system, repeat):
    """Median seconds of the bare tape's eval + gradient in ``system`` ("ball" at PREC bits, or "exact")."""
    if system == "ball":
        with ctx.workprec(PREC):
            code, lits = bare_tape(P, arb)
            xs = [arb(q) for q in x]
            return timed(lambda: bare_grad(P, code, lits, xs, arb(0), arb(1)), repeat)
    code, lits = bare_tape(P, lambda q: q)
    return timed(lambda: bare_grad(P, code, lits, list(x), fmpq(0), fmpq(1), fmpq(1, 2)), repeat)


# -------------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000",
                    help="comma-separated numbers of equations N (default 1000,10000,100000)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random programs and point (default 0)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per measurement; the minimum is shown")
    ap.add_argument("--no-torch", action="store_true", help="skip the torch comparison")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    try:
        import torch  # noqa: F401
        have_torch = not args.no_torch
    except ImportError:
        have_torch = False

    x = random_point(args.seed)
    print(f"point x = ({', '.join(str(q) for q in x)}), {N_INPUTS} inputs, operand window {WINDOW}, "
          f"ball precision {PREC} bits, minimum of {args.repeat}")
    rows, notes, checks = [], [], []

    def row(n, prog, system, what, secs):
        rows.append((n, prog, system, what, secs, 1e6 * secs / n))

    for n in sizes:
        t = time.perf_counter()
        M = build("mixed", n, args.seed)
        t_build = time.perf_counter() - t
        R = build("rational", n, args.seed)
        nm, nr = len(M.eqns), len(R.eqns)
        row(nm, "mixed", "-", "generate + Builder + typecheck", t_build)
        t = time.perf_counter()
        compiled(M, DEFAULT)
        row(nm, "mixed", "-", "compile steps (once)", time.perf_counter() - t)
        from verify.interpret.tape import tape_of      # here: bench_decide imports this file with older code
        t = time.perf_counter()
        tape = tape_of(M, compiled(M, DEFAULT), DEFAULT)
        with ctx.workprec(PREC):
            tape.bound(get_system("ball"))
            tape.lit_values(get_system("ball"))
        row(nm, "mixed", "ball128", "tape, bound, literals (once)", time.perf_counter() - t)
        compiled(R, DEFAULT)

        # rational program, exact
        warm = verify.evaluate(R, x, number="exact")
        bits = max((v.p.bit_length() + v.q.bit_length()) for v in warm.run.env)
        notes.append(f"N={nr}: rational program: exact values use at most {bits} bits (numerator + denominator), "
                     f"{len(warm.pattern)} nonsmooth equations")
        row(nr, "rational", "exact", "eval", timed(lambda: verify.evaluate(R, x, number="exact"), args.repeat)[0])
        t_egrad = timed(lambda: verify.grad(R, x, mode="backward", number="exact"), args.repeat)[0]
        row(nr, "rational", "exact", "grad backward (eval + vjp)", t_egrad)
        t_ebare, bg = timed_bare(R, x, "exact", args.repeat)
        row(nr, "rational", "exact", "bare tape (eval + gradient)", t_ebare)
        assert [fmpq(0) if v is None else v for v in bg] == verify.grad(R, x, number="exact").gradient, \
            "the bare tape disagrees with verify"
        checks.append((f"N={nr}: ours exact grad / bare exact tape", f"{t_egrad / t_ebare:.2f}",
                       f"<= {TARGET_OVER_BARE}", t_egrad / t_ebare <= TARGET_OVER_BARE))
        row(nr, "rational", "float64", "eval",
            timed(lambda: verify.evaluate(R, x, number="float"), args.repeat)[0])

        # mixed program, balls
        g = verify.grad(M, x, mode="backward", number="ball", prec=PREC)
        t_eval, t_vjp, r = ball_eval_and_vjp(M, x, args.repeat)
        radius = max(float(v.rad()) / max(1.0, abs(float(v.mid()))) for v in r.env if isinstance(v, arb))
        magnitude = max(abs(float(v.mid())) for v in r.env)
        escalated = "no escalation" if g.prec == PREC else "ESCALATED"
        notes.append(f"N={nm}: mixed program: balls decided at {g.prec} bits ({escalated}), "
                     f"max |value| {magnitude:.3g}, max relative radius {radius:.1e}, {len(r.pattern)} nonsmooth "
                     f"equations; the backward pass reaches {live_fraction(r):.0%} of the equations")
        row(nm, "mixed", "ball128", "eval (run)", t_eval)
        row(nm, "mixed", "ball128", "vjp pass alone", t_vjp)
        t_grad, _ = timed(lambda: verify.grad(M, x, mode="backward", number="ball", prec=PREC), args.repeat)
        row(nm, "mixed", "ball128", "grad backward (eval + vjp)", t_grad)
        t_bare, bg = timed_bare(M, x, "ball", args.repeat)
        row(nm, "mixed", "ball128", "bare tape (eval + gradient)", t_bare)
        assert all(v == 0 if u is None else u.overlaps(v) for u, v in zip(bg, g.gradient)), \
            "the bare tape disagrees with verify"
        checks.append((f"N={nm}: ours ball128 grad / bare ball128 tape", f"{t_grad / t_bare:.2f}",
                       f"<= {TARGET_OVER_BARE}", t_grad / t_bare <= TARGET_OVER_BARE))
        t_fwd, _ = timed(lambda: verify.grad(M, x, mode="forward", number="ball", prec=PREC), args.repeat)
        row(nm, "mixed", "ball128", f"grad forward (eval + {N_INPUTS} jvp)", t_fwd)
        ratio = t_vjp / t_eval
        checks.append((f"N={nm}: ball vjp / ball eval", f"{ratio:.2f}", f"<= {TARGET_VJP_OVER_EVAL}",
                       ratio <= TARGET_VJP_OVER_EVAL))

        # mixed program, float64
        row(nm, "mixed", "float64", "eval", timed(lambda: verify.evaluate(M, x, number="float"), args.repeat)[0])
        t_fgrad, fg = timed(lambda: verify.grad(M, x, mode="backward", number="float"), args.repeat)
        row(nm, "mixed", "float64", "grad backward (eval + vjp)", t_fgrad)

        if have_torch:
            t_tf, t_tb, tg = torch_forward_backward(M, x, args.repeat)
            row(nm, "mixed", "torch f64", "forward", t_tf)
            row(nm, "mixed", "torch f64", "backward", t_tb)
            row(nm, "mixed", "torch f64", "forward + backward", t_tf + t_tb)
            speedup = (t_tf + t_tb) / t_grad
            checks.append((f"N={nm}: torch f64 (fwd+bwd) / ours ball128 grad backward", f"{speedup:.2f}",
                           f">= {TARGET_TORCH_SPEEDUP}", speedup >= TARGET_TORCH_SPEEDUP))
            ours = [float(v) for v in fg.gradient]
            scale = max(max(abs(v) for v in tg), 1e-300)
            err = max(abs(a - b) for a, b in zip(ours, tg)) / scale
            notes.append(f"N={nm}: torch gradient vs ours (float64): max rel. difference {err:.1e} "
                         f"({'agree' if err <= 1e-9 else 'DISAGREE'} to 1e-9); torch grad = "
                         f"[{', '.join(f'{v:.6g}' for v in tg)}]")

    print()
    print(f"{'N':>8}  {'program':<8}  {'numbers':<9}  {'what':<30}  {'seconds':>9}  {'us/eqn':>8}")
    for i, (n, prog, system, what, secs, us) in enumerate(rows):
        if i == 0 or n != rows[i - 1][0]:
            print("-" * 84)
        print(f"{n:>8}  {prog:<8}  {system:<9}  {what:<30}  {secs:>9.4f}  {us:>8.2f}")
    print()
    for line in notes:
        print(line)
    print()
    for name, value, target, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {name} = {value} (target {target})")
    if not have_torch:
        print("torch not importable (or --no-torch): no torch comparison")
    return 0


if __name__ == "__main__":
    sys.exit(main())
