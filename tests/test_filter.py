"""The float filter (interpret/filtered.py) against exact arithmetic: the same pattern, the same exact kinks,
and gradient enclosures that contain the exact selection gradient, on random tensor programs (kink-biased
points, non-dyadic points) and on inputs built to fool floats (pre-activations exactly 0 through cancelling
products, +-1 ulp, +-2**-1074, huge terms cancelling to tiny ones, float32 weights whose exact sums are 0).  A
filter whose bound is made too small is caught by the same comparison.  Every midpoint-radius operation
encloses the exact value, and with a model, every IEEE evaluation (numpy's own, in float32 and float16)."""
import math

import numpy as np
import pytest
from flint import arb, ctx, fmpq
from hypothesis import given, settings, strategies as st

from verify.certify.sites import kinks_of, site_index_set
from verify.errors import DomainError, InputError, Undecided
from verify.interpret import tensor as T
from verify.interpret.cone import plan_missing
from verify.interpret.filtered import filtered_run, gradient
from verify.numbers import midrad
from verify.numbers.midrad import MR, MidRadTensors
from verify.numbers.rounding import FORMATS, Rounding, rounding_for
from verify.numbers.tensor import FloatTensors
from verify.program.models import mlp_loss
from verify.strategies.tensor import tensor_points, tensor_programs

RNG = np.random.default_rng(7)


# ------------------------------------------------------------------------------------------- comparison

def _contains(mr, exact_arr):
    """Indices where the enclosure ``mr`` does not contain the exact value (fmpq or an arb ball)."""
    bad = []
    mid, rad = mr.mid, mr.radius()
    for idx in np.ndindex(mid.shape):
        e = exact_arr[idx]
        m, r = float(mid[idx]), float(rad[idx])
        if not (math.isfinite(m) and math.isfinite(r)):
            continue                     # inf or nan: no information, so no claim (every decision is undecided)
        if isinstance(e, arb):
            ok = (arb(m, r) if r else arb(m)).overlaps(e)
        else:                            # exactly, in rationals
            mq, rq = fmpq(*m.as_integer_ratio()), fmpq(*r.as_integer_ratio())
            ok = mq - rq <= e <= mq + rq
        if not ok:
            bad.append(idx)
    return bad


class BeyondEnumeration(Exception):
    """The exact side's stated limit: I(x) at a tie of a site with too many pieces (a sort of 9 values) is not
    enumerated, so there is nothing exact to compare the filter with."""


def exact_index_set(P, xs, convention):
    """site_index_set, with its enumeration limit raised as BeyondEnumeration (any other InputError stays)."""
    try:
        return site_index_set(P, xs, convention)
    except InputError as e:
        if "too many to enumerate" in str(e):
            raise BeyondEnumeration(str(e)) from None
        raise


def compare_paths(P, point, convention="torch", model=None):
    """Differences between the filtered and the exact evaluation of P at point: pattern, kinks, undecided
    switching functions, gradient containment.  [] when they agree."""
    xs = T.coerce_inputs(P, point)
    try:
        iset = exact_index_set(P, xs, convention)
    except BeyondEnumeration:
        return []
    except (DomainError, Undecided) as e:
        try:
            _, stats = filtered_run(P, xs, convention, model)
        except (DomainError, Undecided):
            return []
        if isinstance(e, Undecided) and stats.tied:
            return []       # labels decided a tie of equal balls (tanh(x) - tanh(x)) that arithmetic cannot
        return [f"exact raised {type(e).__name__}, the filter did not"]
    try:
        fr, stats = filtered_run(P, xs, convention, model)
    except Undecided:
        return []                         # the audit then falls back to exact arithmetic: never a wrong answer
    out = []
    if len(fr.pattern) != len(iset.chosen) or not all(np.array_equal(a, b) for a, b in zip(fr.pattern, iset.chosen)):
        out.append("pattern")
    kf, uf = kinks_of(fr, undecided_ok=True)
    key = lambda ks: sorted((k.eqn, tuple(k.site), k.switch) for k in ks)   # noqa: E731
    kf, uf, ke, ue = key(kf), key(uf), key(iset.kinks), key(iset.undecided_switches)
    if stats.tied:
        # labels prove ties that balls cannot (tanh(w1) - tanh(w2) with w1 = w2 exactly): such a tie is a
        # kink of the filter and an undecided switching function of exact arithmetic, never the reverse
        by_labels = [k for k in kf if k not in ke and k in ue]
        kf = [k for k in kf if k not in by_labels]
        ue = [k for k in ue if k not in by_labels]
    if kf != ke:
        out.append(f"kinks {kf} != {ke}")
    if uf != ue:
        out.append(f"undecided switching functions {uf} != {ue}")
    if out or P.n_outputs != 1 or P.atom_shape(P.outputs[0]) != ():
        return out
    wrt = list(range(P.n_inputs))
    enc = gradient(fr, wrt)
    r = iset.run
    with T.working_precision(r.ns, r.prec):
        ex = T.vjp(r, [r.ns.const(fmpq(1))], wrt)
        ex = [np.asarray(r.ns.to_fq(r.ns.zeros(P.shapes[i]) if c is None else c), dtype=object)
              for i, c in enumerate(ex)]
    for i, (e, x) in enumerate(zip(enc, ex)):
        bad = _contains(e, x)
        if bad:
            out.append(f"gradient of input {i} not enclosed at {bad[:3]}")
    return out


# -------------------------------------------------------------------------------------- random programs

def test_every_primitive_has_a_cone_plan():
    assert plan_missing() == []


@settings(max_examples=min(settings.default.max_examples, 80))
@given(st.data())
def test_filter_agrees_with_exact_arithmetic_on_random_programs(data):
    P = data.draw(tensor_programs(filterable=True))
    x = data.draw(tensor_points(P, kink_bias=data.draw(st.booleans())))
    model = data.draw(st.sampled_from([None, rounding_for("torch", "float32"), rounding_for("jax", "float32")]))
    assert compare_paths(P, x, model=model) == []


def test_a_tie_only_labels_prove_is_a_kink_of_the_filter_and_undecided_in_balls():
    """amin(tanh(w)) with w_1 = w_2 = -1/3: the balls of tanh(-1/3) are equal but not exact, so exact arithmetic
    leaves the switching function undecided; the filter proves the tie by its labels (the same function of equal
    exact inputs) and reports a kink.  Both are sound; the comparison accepts exactly this difference (found by
    CI's random programs with window_min)."""
    import verify
    P = verify.parse("def f(w: [3]):\n    t = tanh(w)\n    return amin(t, axes=(0,))\n")
    x = [np.array(["-3/4", "-1/3", "-1/3"])]
    xs = T.coerce_inputs(P, x)
    iset = exact_index_set(P, xs, "torch")
    fr, stats = filtered_run(P, xs, "torch", None)
    kf, uf = kinks_of(fr, undecided_ok=True)
    assert iset.kinks == [] and len(iset.undecided_switches) == 1 and uf == []
    assert [(k.eqn, tuple(k.site), k.switch) for k in kf] == [(k.eqn, tuple(k.site), k.switch)
                                                              for k in iset.undecided_switches]
    assert stats.tied == 1 and compare_paths(P, x) == []


# ----------------------------------------------------------------------------------- inputs to fool floats

def _mlp(X, params, sizes):
    Y = np.eye(sizes[-1])[RNG.integers(0, sizes[-1], len(X))]
    return mlp_loss(X, Y, sizes), list(params)


def fooling_cases():
    """(name, program, point): MLPs whose pre-activations sit where float64 cannot see them exactly."""
    sizes = [6, 5, 4, 3]
    rng = np.random.default_rng(3)
    base = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        base += [(rng.standard_normal((a, b)) / 2).astype(np.float32), (rng.standard_normal(b) / 4).astype(np.float32)]
    X = (rng.integers(0, 256, (4, 6)) / 256).astype(np.float32)
    cases = []

    p = [a.copy() for a in base]                 # exactly 0 through products that cancel: x0 w - x1 w, x0 == x1
    X1 = X.copy()
    X1[:, 1] = X1[:, 0]
    p[0][:, 2] = 0
    p[0][0, 2], p[0][1, 2], p[1][2] = 0.3, -0.3, 0.0
    cases.append(("cancelling products", X1, p))

    p = [a.copy() for a in base]                 # +-1 ulp of float32 around 0, and a tie at 1 - 1
    p[0][:, 3] = 0
    p[0][0, 3] = 1.0
    X2 = X.copy()
    X2[0, 0], X2[1, 0], X2[2, 0] = 1.0, np.float32(1 + 2 ** -23), np.float32(1 - 2 ** -24)
    p[1][3] = -1.0
    cases.append(("one ulp", X2, p))

    p = [a.astype(np.float64) for a in base]     # +-2**-1074: products of 2**-537
    X3 = X.astype(np.float64)
    X3[:, 4] = 2.0 ** -537 * np.array([1, -1, 0, 3])
    p[0][:, 0] = 0
    p[0][4, 0] = 2.0 ** -537
    p[1][0] = 0.0
    cases.append(("subnormal", X3, p))

    p = [a.copy() for a in base]                 # huge terms cancelling to a tiny one
    p[0][:, 1] = 0
    p[0][0, 1], p[0][1, 1], p[0][2, 1] = 1e30, -1e30, 1e-30
    X4 = X.copy()
    X4[:, 1] = X4[:, 0]
    X4[:, 2] = 1.0
    p[1][1] = 0.0
    cases.append(("huge cancellation", X4, p))

    p = [a.copy() for a in base]                 # float32 weights whose exact sum is 0 (float32 says -2**-24)
    p[0][:, 4] = 0
    p[0][:4, 4] = [1.0, 2.0 ** -24, -1.0, -2.0 ** -24]
    X5 = X.copy()
    X5[:, :4] = 1.0
    p[1][4] = 0.0
    p[2][:, 0] = 0                               # and a second layer whose only input is that exact zero
    p[2][4, 0] = 1.0
    p[3][0] = 0.0
    cases.append(("exact zero sum", X5, p))
    return [(name, *_mlp(Xc, pc, sizes)) for name, Xc, pc in cases]


@pytest.mark.parametrize("case", fooling_cases(), ids=lambda c: c[0])
def test_filter_agrees_on_inputs_built_to_fool_floats(case):
    name, P, point = case
    for model in (None, rounding_for("torch", "float32"), rounding_for("torch", "float64")):
        assert compare_paths(P, point, model=model) == [], name
    xs = T.coerce_inputs(P, point)
    iset = site_index_set(P, xs, "torch")
    assert bool(iset.kinks) == (name != "huge cancellation"), name     # 1e30 - 1e30 + 1e-30 > 0 is no kink
    fr, stats = filtered_run(P, xs, "torch")
    if name in ("cancelling products", "subnormal", "huge cancellation", "exact zero sum"):
        assert stats.sites > 0, name             # floats alone cannot see those: the cone decided them


def test_a_filter_whose_bound_is_too_small_is_caught(monkeypatch):
    """The comparison above is an oracle: shrink every bound of the filter by 2**-40 and it reports the
    difference on the fooling inputs."""
    caught = []
    monkeypatch.setattr(midrad, "U", midrad.U * 2.0 ** -40)
    real_gamma = midrad.gamma
    monkeypatch.setattr(midrad, "gamma", lambda n, *a: real_gamma(n, *a) * 2.0 ** -40)
    monkeypatch.setattr(midrad, "sum_factor", lambda n, *a: 0.0)
    for name, P, point in fooling_cases():
        caught += compare_paths(P, point)
    assert caught


# ------------------------------------------------------------------------ each operation, and IEEE runs

def _mr(ns, vals, rad=None):
    return MR(np.asarray(vals, dtype=np.float64), None if rad is None else np.asarray(rad, dtype=np.float64))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "exp", "log", "sqrt", "tanh", "sigmoid", "erf", "sin",
                                "cos", "pow3", "pow-2", "matmul", "sum"])
def test_each_operation_encloses_the_exact_value(op):
    ns = MidRadTensors()
    for trial in range(20):
        n = 5
        a = RNG.standard_normal(n) * 2.0 ** RNG.integers(-8, 8, n)
        b = RNG.standard_normal(n) * 2.0 ** RNG.integers(-8, 8, n)
        ra = None if trial % 2 else np.abs(a) * 2.0 ** -30
        rb = None if trial % 3 else np.abs(b) * 2.0 ** -20
        if op in ("log", "sqrt"):
            a = np.abs(a) + 2.0 ** -6
        if op in ("div", "pow-2"):
            b = np.where(np.abs(b) < 0.1, 0.5, b)
            a = np.where(np.abs(a) < 0.1, 0.5, a)
        if op == "exp":
            a = np.clip(a, -50, 50)
        A, B = MR(a, ra), MR(b, rb)
        # the exact operands: any points of the enclosures; the extremes and the midpoint (at 300 bits, so
        # that the exact side is sharp)
        for pick in (-1, 0, 1):
            with ctx.workprec(300):
                xa = [arb(v) + pick * arb(r) for v, r in zip(a, A.radius())]
                xb = [arb(v) + pick * arb(r) for v, r in zip(b, B.radius())]
                if op == "matmul":
                    out = ns.matmul(MR(a.reshape(1, n), None if ra is None else ra.reshape(1, n)),
                                    MR(b.reshape(n, 1), None if rb is None else rb.reshape(n, 1)))
                    ex = [sum((p * q for p, q in zip(xa, xb)), arb(0))]
                elif op == "sum":
                    out = ns.sum(A, (0,))
                    ex = [sum(xa, arb(0))]
                elif op in ("add", "sub", "mul", "div"):
                    out = getattr(ns, op)(A, B)
                    ex = [{"add": p + q, "sub": p - q, "mul": p * q, "div": p / q}[op] for p, q in zip(xa, xb)]
                elif op.startswith("pow"):
                    k = int(op[3:])
                    out = ns.pow(A, k)
                    ex = [p ** k if k > 0 else 1 / p ** (-k) for p in xa]
                else:
                    out = getattr(ns, op)(A)
                    f = {"sigmoid": lambda p: 1 / (1 + (-p).exp())}.get(op, lambda p: getattr(p, op)())
                    ex = [f(p) for p in xa]
                mid, rad = np.ravel(out.mid), np.ravel(out.radius())
                for m, r, e in zip(mid, rad, ex):
                    assert arb(float(m), float(r)).contains(e), (op, trial, pick, m, r, e)
                    assert r <= 2.0 ** -15 * (1 + abs(m)) or not math.isfinite(r) or op in ("div", "pow-2", "log"), op


def test_exact_zeros_keep_a_zero_radius():
    ns = MidRadTensors()
    z = ns.sub(_mr(ns, [0.0, 1.5, 2.0 ** -30]), _mr(ns, [0.0, 1.5, 2.0 ** -30]))
    assert z.mid.tolist() == [0, 0, 0] and z.radius().tolist() == [0, 0, 0]
    assert ns.signs(z).tolist() == [0, 0, 0]
    p = ns.matmul(MR(np.zeros((2, 3))), MR(RNG.standard_normal((3, 2))))
    assert p.radius().tolist() == [[0, 0], [0, 0]] and ns.signs(p).tolist() == [[0, 0], [0, 0]]
    near = ns.add(MR(np.array([1.0])), ns.const(fmpq(-1, 3)))
    assert ns.signs(near).tolist() == [1]
    tie = ns.sub(ns.mul(MR(np.array([3.0])), ns.const(fmpq(1, 3))), MR(np.array([1.0])))
    assert ns.signs(tie).tolist() == [2]         # 3 * (1/3) - 1 is 0 but floats cannot tell: undecided


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@settings(max_examples=min(settings.default.max_examples, 40))
@given(data=st.data())
def test_numpy_runs_stay_within_the_model_bound(dtype, data):
    """An IEEE evaluation of a random program (numpy, in float32 or float16) lies within ``dev`` of the exact
    value at every variable, wherever the float run chose the exact pattern."""
    P = data.draw(tensor_programs(conv=False, filterable=True))
    x = data.draw(tensor_points(P, kink_bias=False))
    check_numpy_run_within_bound(P, x, dtype)


def check_numpy_run_within_bound(P, x, dtype):
    """Assert that numpy's IEEE run of P at x in ``dtype`` (FloatTensors: its own gathers and sums) lies within
    the filter's ``dev`` of the exact value at every variable and every gradient entry."""
    xs = T.coerce_inputs(P, x)
    model = Rounding(FORMATS[dtype], FORMATS[dtype], False, "numpy")
    try:
        iset = exact_index_set(P, xs, "torch")
        ns = MidRadTensors(model)                    # every value kept (no release), so every one is checked
        fr = T.run(P, ns, [ns.const_array(a) for a in xs], "torch", pattern=iset.chosen)
        fl = T.run(P, FloatTensors(dtype), [FloatTensors(dtype).const_array(a) for a in xs], "torch")
    except (DomainError, Undecided, BeyondEnumeration):
        return
    if not all(np.array_equal(a, b) for a, b in zip(fl.pattern, iset.chosen)) or fr.ns.peak >= model.storage.max:
        return                                   # a float kink, or a possible overflow: no bound is claimed
    r = iset.run
    with T.working_precision(r.ns, r.prec):
        for v in range(P.n_inputs, P.n_vars):
            if fl.env[v] is None:
                continue
            ex = np.asarray(r.ns.to_fq(r.env[v]), dtype=object)
            got = np.asarray(fl.env[v], dtype=np.float64)
            dev, mid, rad = fr.env[v].deviation(), fr.env[v].mid, fr.env[v].radius()
            for idx in np.ndindex(mid.shape):
                e = ex[idx]
                ball = arb(float(got[idx])) - (e if isinstance(e, arb) else arb(e))
                bound = arb(float(dev[idx]))
                assert not (abs(ball) > bound), (v, idx, float(got[idx]), e, float(dev[idx]), float(mid[idx]),
                                                  float(rad[idx]))
        # and the backward pass: numpy's float gradient (our rules, in the model's format) within dev
        wrt = list(range(P.n_inputs))
        with np.errstate(all="ignore"):
            gf = T.vjp(fl, [FloatTensors(dtype).const(fmpq(1))], wrt)
        ge = T.vjp(r, [r.ns.const(fmpq(1))], wrt)
        for i, (a, e, enc) in enumerate(zip(gf, ge, gradient(fr, wrt))):
            if a is None or e is None:
                continue
            e = np.asarray(r.ns.to_fq(e), dtype=object)
            a = np.asarray(a, dtype=np.float64)
            dev = enc.deviation()
            for idx in np.ndindex(e.shape):
                diff = arb(float(a[idx])) - (e[idx] if isinstance(e[idx], arb) else arb(e[idx]))
                assert not (abs(diff) > arb(float(dev[idx]))), ("gradient", i, idx, float(a[idx]), e[idx])


@pytest.mark.parametrize("prim", ["max", "min"])
@pytest.mark.parametrize("tie", ["split", "first", "last"])
def test_the_vectorised_extremum_choice_is_the_scalar_one(prim, tie):
    """choose_array of max / min (every site at once) against choose (one site at a time), undecided signs
    included."""
    from verify.program.prims import selection_rules
    from verify.program.prims.__init__ import Selection
    sel = selection_rules[prim]
    for n in (2, 3, 4, 5):
        m = 400
        signs = [RNG.choice(np.array([-1, 0, 1, 2], dtype=np.int8), m, p=[0.4, 0.2, 0.35, 0.05])
                 for _ in range(n * (n - 1) // 2)]
        got, und = sel.choose_array({"tie": tie}, n, signs)
        ref, ref_und = Selection.choose_array(sel, {"tie": tie}, n, signs)
        assert np.array_equal(und, ref_und)
        assert np.array_equal(got[~und], np.asarray(ref[~und], dtype=np.int64))


@settings(max_examples=min(settings.default.max_examples, 40))
@given(st.data())
def test_released_values_change_no_gradient(data):
    """A filtered run drops the values no backward rule reads (filtered.releasable): its gradient enclosures
    are those of a run that keeps every value."""
    from verify.interpret.filtered import releasable
    P = data.draw(tensor_programs(filterable=True))
    x = data.draw(tensor_points(P))
    xs = T.coerce_inputs(P, x)
    ns = MidRadTensors(rounding_for("torch", "float32"))
    try:
        iset = exact_index_set(P, xs, "torch")
        runs = [T.run(P, ns, [ns.const_array(a) for a in xs], "torch", pattern=iset.chosen, release=rel)
                for rel in (None, releasable(P, "torch"))]
    except (DomainError, Undecided, BeyondEnumeration):
        return
    wrt = list(range(P.n_inputs))
    for a, b in zip(*(gradient(r, wrt) for r in runs)):
        assert np.array_equal(a.mid, b.mid, equal_nan=True)
        assert np.array_equal(a.radius(), b.radius(), equal_nan=True)
        assert np.array_equal(a.deviation(), b.deviation(), equal_nan=True)


@settings(max_examples=min(settings.default.max_examples, 60))
@given(st.data())
def test_the_cone_computes_exact_values(data):
    """Cone.values of random elements of every variable equal the exact evaluation's (every plan, labels and
    block products included), the pattern given."""
    from verify.interpret.cone import Cone
    P = data.draw(tensor_programs(filterable=True))
    x = data.draw(tensor_points(P, kink_bias=data.draw(st.booleans())))
    xs = T.coerce_inputs(P, x)
    try:
        iset = exact_index_set(P, xs, "torch")
    except (DomainError, Undecided, BeyondEnumeration):
        return
    r = iset.run
    cone = Cone(P, xs, "torch", r.prec or 128)
    steps = T.nonsmooth_steps(P, "torch")
    cone.patterns = {st.k: p for st, p in zip(steps, r.pattern)}
    with T.working_precision(r.ns, r.prec):
        for v in range(P.n_inputs, P.n_vars):
            size = int(np.prod(P.shapes[v]))
            if size == 0:
                continue
            idx = np.array(sorted(set(data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=4)))))
            got = np.ravel(np.asarray(r.ns.to_fq(cone.values(v, idx)), dtype=object))
            want = np.ravel(np.asarray(r.ns.to_fq(r.env[v]), dtype=object))[idx]
            for g, w in zip(got.tolist(), want.tolist()):
                if isinstance(g, arb) or isinstance(w, arb):
                    assert arb(g).overlaps(arb(w)) if not isinstance(g, arb) else g.overlaps(w if isinstance(w, arb)
                                                                                             else arb(w))
                else:
                    assert g == w, (v, idx)


def test_the_filter_refuses_what_it_has_no_bound_for():
    """A primitive without a proved rounding bound (atan, the steps) is named, never run in floats; the audit
    then works exactly (tests/test_import_torch_ops.py)."""
    import verify
    from verify.errors import InputError
    from verify.interpret.filtered import filter_gaps, filtered_run
    P = verify.parse("def f(x: [2]):\n    return sum(atan(x) + floor(x), axes=(0,))\n")
    assert filter_gaps(P) == ["atan", "floor"]
    with pytest.raises(InputError, match="no proved rounding bound for atan, floor"):
        filtered_run(P, [verify.ExactArray.from_any(np.array([fmpq(1, 2), fmpq(3)], dtype=object))])


def test_a_tie_at_a_pads_fill_needs_nothing_of_the_padded_input():
    """leaky_relu of a padded dot at the pad's fill 0 is a tie decided by labels alone; the cone read the padded
    input (the dot) at no element and failed looking it up (a random program found it)."""
    import verify
    from verify.program.arrays import ExactArray
    P = verify.parse("def t(x: [1, 1], w: [1, 1]):\n    v = pad(dot(x, w), lo=(1, 0), hi=(0, 0))\n"
                     "    return sum(relu(leaky_relu(v, slope=1/2)), axes=(0, 1))\n")
    xs = [ExactArray.from_any(np.array([[fmpq(-2)]], dtype=object))] * 2
    assert compare_paths(P, xs) == []


# ------------------------------------------------------- convolutions by window matrices (ns.windows)

CONV_PARAMS = [((1, 1), (0, 0), (1, 1)), ((2, 1), (1, 0), (1, 1)), ((1, 2), (1, 1), (2, 1)),
               ((2, 2), (0, 1, 2, 1), (1, 2)), ((3, 3), (0, 0), (1, 1))]


class GatheringTensors(MidRadTensors):
    """The float filter's number system without window matrices: convolutions gather their patches by index
    (the rules' general path), as before ``windows``."""
    windows = None

    def __getattribute__(self, name):
        if name in ("windows", "place_windows"):
            raise AttributeError(name)
        return super().__getattribute__(name)


@pytest.mark.parametrize("params", CONV_PARAMS, ids=str)
def test_window_matrices_are_the_gathered_patches(params):
    """ns.windows is the index gather of conv_patches with its columns in (i, j, c) order, exactly, for every
    array it gathers (midpoint, radius, deviation); place_windows is its transpose: the scatter of the same
    entries, with the same radius and deviation."""
    from verify.program.prims.tensor import conv_patches
    stride, pads, dil = params
    pads4 = pads if len(pads) == 4 else (pads[0], pads[0], pads[1], pads[1])
    N, C, H, W, kh, kw = 2, 3, 7, 6, 3, 2
    ns = MidRadTensors(rounding_for("torch", "float32"))
    x = MR(RNG.integers(-8, 9, (N, C, H, W)).astype(np.float64), RNG.random((N, C, H, W)) * 2.0 ** -30,
           RNG.random((N, C, H, W)) * 2.0 ** -20)
    idx, (Ho, Wo) = conv_patches((N, C, H, W), kh, kw, stride, dil, pads4)
    perm = np.arange(C * kh * kw).reshape(C, kh, kw).transpose(1, 2, 0).ravel()      # (i, j, c) columns
    P = ns.windows(x, kh, kw, stride, dil, pads4)
    G = ns.take(x, idx[:, perm])
    for a, b in ((P.mid, G.mid), (P.rad, G.rad), (P.dev, G.dev)):
        assert a.shape == (N * Ho * Wo, C * kh * kw) and np.array_equal(a, b)
    blocks = (kh * kw, N * Ho * Wo, C)          # place_windows reads the window matrix by window element
    v = MR(RNG.integers(-8, 9, blocks).astype(np.float64) / 4, RNG.random(blocks) * 2.0 ** -30,
           RNG.random(blocks) * 2.0 ** -20)
    placed = ns.place_windows(v, (N, C, H, W), kh, kw, stride, dil, pads4)
    scattered = ns.scatter(ns.reshape(ns.transpose(v, (1, 0, 2)), P.shape), idx[:, perm], N * C * H * W)
    assert np.array_equal(placed.mid, scattered.mid)         # sums of quarters of small integers: exact
    for a, b in ((placed.rad, scattered.rad), (placed.dev, scattered.dev)):
        assert np.allclose(a, b, rtol=1e-12, atol=0)        # the same bound, its float sums in another order


def conv_program(stride, pads, dil):
    import verify
    pad = ", ".join(map(str, pads))
    return verify.parse(
        "def c(x: [2, 2, 6, 6], w: [3, 2, 2, 2]):\n"
        f"    c = conv2d(x, w, stride=({stride[0]}, {stride[1]}), padding=({pad}), dilation=({dil[0]}, {dil[1]}))\n"
        "    m = max_pool2d(relu(c), kernel=(2, 2), stride=(1, 1))\n"
        "    return sum(m, axes=(0, 1, 2, 3))\n")


CONV_FOOLING = ["cancelling", "one ulp", "absorbed", "huge cancellation"]


def conv_fooling_point(kind):
    """(x, w) float32 arrays whose convolution has outputs exactly 0 through cancelling products, at +-1 ulp of
    float32, or where huge terms cancel to a tiny one; many max-pool windows of equal values (relu's zeros)."""
    rng = np.random.default_rng(11)
    x = rng.integers(-2, 3, (2, 2, 6, 6)).astype(np.float32)
    w = np.zeros((3, 2, 2, 2), np.float32)
    if kind == "cancelling":            # w[0] reads x[i, j] - x[i, j + 1]: 0 on the constant rows
        x[:, :, :3] = 1.0
        w[0, 0, 0, 0], w[0, 0, 0, 1] = 0.3, -0.3
        w[1] = rng.integers(-2, 3, (2, 2, 2)) / 4
    elif kind == "one ulp":             # 1 - (1 + 2**-23) and 1 - (1 - 2**-24)
        x[:, 0, ::2, ::2] = 1.0
        x[0, 0, 1, 0], x[1, 0, 1, 0] = np.float32(1 + 2 ** -23), np.float32(1 - 2 ** -24)
        w[0, 0, 0, 0], w[0, 0, 1, 0] = 1.0, -1.0
        w[2] = rng.integers(-2, 3, (2, 2, 2)) / 2
    elif kind == "absorbed":            # 1 + 2**-60 - 1 - 2**-70 > 0, but 0 - 2**-70 where 2**-60 is absorbed
        x[:, :, :, :] = 1.0
        w[0, 0, 0, 0], w[0, 1, 0, 0], w[0, 0, 0, 1], w[0, 1, 0, 1] = 1.0, 2.0 ** -60, -1.0, -2.0 ** -70
        w[1, 0, 0, 0], w[1, 0, 0, 1], w[1, 0, 1, 0], w[1, 0, 1, 1] = 1.0, 2.0 ** -60, -1.0, -2.0 ** -70
    else:                               # 1e30 - 1e30 + 1e-30
        x[:, :, :, :] = 1.0
        w[0, 0, 0, 0], w[0, 0, 0, 1], w[0, 1, 0, 0] = 1e30, -1e30, 1e-30
        w[1, 0, 0, 0], w[1, 0, 0, 1], w[1, 1, 0, 0] = 1e30, -1e30, -1e-30
    return [x, w]


@pytest.mark.parametrize("kind", CONV_FOOLING)
@pytest.mark.parametrize("params", CONV_PARAMS, ids=str)
def test_windowed_convolutions_agree_with_exact_arithmetic(params, kind):
    """The filter's convolutions (window matrices, one product, col2im placement) against exact arithmetic on
    inputs built to fool floats: the same pattern and kinks, gradients enclosed; with and without a model.
    The gathering path gives the same pattern, enclosures that meet them and the same model bound."""
    P = conv_program(*params)
    point = conv_fooling_point(kind)
    for model in (None, rounding_for("torch", "float32")):
        assert compare_paths(P, point, model=model) == [], (params, kind)
    xs = T.coerce_inputs(P, point)
    runs = []
    for ns_cls in (MidRadTensors, GatheringTensors):
        ns = ns_cls(rounding_for("torch", "float32"))
        with np.errstate(all="ignore"):
            r = T.run(P, ns, [ns.const_array(a) for a in xs], "torch",
                      pattern=site_index_set(P, xs, "torch").chosen)
        runs.append((r, gradient(r, [0, 1])))
    (ra, ga), (rb, gb) = runs
    assert all(np.array_equal(a, b) for a, b in zip(ra.pattern, rb.pattern))
    for a, b in zip(ga, gb):
        assert np.all(np.abs(a.mid - b.mid) <= (a.radius() + b.radius()) * (1 + 2.0 ** -40))   # they meet
        assert np.allclose(a.deviation(), b.deviation(), rtol=2.0 ** -20, atol=2.0 ** -600)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("params", CONV_PARAMS, ids=str)
def test_numpy_convolutions_stay_within_the_model_bound(params, dtype):
    """numpy's IEEE convolution (gathered patches, its own order) within the windowed filter's ``dev``."""
    rng = np.random.default_rng(5)
    point = [(rng.standard_normal((2, 2, 6, 6)) * 2).astype(np.float16).astype(np.float64),
             (rng.standard_normal((3, 2, 2, 2))).astype(np.float16).astype(np.float64)]
    check_numpy_run_within_bound(conv_program(*params), point, dtype)


def test_a_windowed_filter_whose_bound_is_too_small_is_caught(monkeypatch):
    """Shrinking the filter's bounds by 2**-40 makes the convolution comparison fail too."""
    monkeypatch.setattr(midrad, "U", midrad.U * 2.0 ** -40)
    real_gamma = midrad.gamma
    monkeypatch.setattr(midrad, "gamma", lambda n, *a: real_gamma(n, *a) * 2.0 ** -40)
    monkeypatch.setattr(midrad, "sum_factor", lambda n, *a: 0.0)
    caught = []
    for params in CONV_PARAMS:
        for kind in CONV_FOOLING:
            caught += compare_paths(conv_program(*params), conv_fooling_point(kind))
    assert caught


def test_masking_by_multiplication_is_where():
    """midrad.masked (a product by the bool mask) is np.where(m, a, 0.0) bit for bit: +0 for masked negative
    entries, and masked infinities and nans give 0, not nan."""
    a = np.concatenate([RNG.standard_normal(200) * 2.0 ** RNG.integers(-1074, 1000, 200),
                        [np.inf, -np.inf, np.nan, -0.0, 0.0, 5e-324, -5e-324]])
    for trial in range(4):
        m = RNG.random(a.size) < 0.5
        for arr in (a, a[:200], np.abs(a[:200])):
            got, want = midrad.masked(m[:arr.size], arr), np.where(m[:arr.size], arr, 0.0)
            assert np.array_equal(got, want, equal_nan=True)
            assert np.array_equal(np.signbit(got), np.signbit(want))
