"""The audit's numerics: REFUTED is a theorem (issue 16) and the float filter decides what floats can decide
(issue 18).  Correct gradients that differ from the exact one by rounding are never REFUTED (cross-entropy
over logits with a constant difference, layer_norm's weight gradient 0, softmax at [0, 500, 3]); a wrong
constant is REFUTED beyond the proved bound (torch's float64 hardsigmoid backward uses the float32 1/6); random
small PyTorch models with dyadic weights are REFUTED only where a float kink changed the pieces; the filtered
audit and the exact audit agree (kinks, float kinks, verdicts, and the exact gradient inside the enclosure);
and the certificates a filtered audit writes still check."""
import numpy as np
import pytest
from flint import arb, fmpq
from hypothesis import given, settings, strategies as st

from verify.truth import FALSE, TRUE, UNKNOWN

torch = pytest.importorskip("torch")
F = torch.nn.functional
from verify import audit  # noqa: E402
from verify.auditing import audit_certificates, audit_imported  # noqa: E402
from verify.frameworks import get as framework  # noqa: E402

torch.set_num_threads(1)


def _words(rep):
    return rep.verdict_word, [(a.name, a.truth) for a in rep.agreement]


# ------------------------------------------------------------------------------------------ issue 16

def test_cross_entropy_over_logits_with_a_constant_difference_is_not_refuted():
    lin = torch.nn.Linear(1, 2).double()
    with torch.no_grad():
        lin.weight[:] = torch.tensor([[-1.0], [-1.0]])
        lin.bias[:] = torch.tensor([0.5, -1.0])

    def loss(x, y):
        return F.cross_entropy(lin(x), y, reduction="sum")
    x = torch.tensor([[2.0], [0.0], [0.25]], dtype=torch.float64)
    rep = audit(loss, x, torch.tensor([0, 0, 0]), wrt=["x"])
    assert rep.verdict_word in ("PROVED", "UNDECIDED"), rep.verdict
    (a,) = rep.agreement
    assert a.outside == 0 and a.bound > 0 and "float64" in a.rule
    assert all(v == 0 for v in np.asarray(rep.exact_gradient[0], dtype=object).ravel()
               if not isinstance(v, arb)) or a.exact_radius < 1e-15


def test_layer_norm_weight_gradient_zero_is_not_refuted():
    def f(x, w, b):
        return (F.layer_norm(x, (1,), w, b) * 1.75).sum()
    args = [torch.tensor([v], dtype=torch.float64) for v in (-0.6044921875, -4.8271484375, -7.58203125)]
    rep = audit(f, *args)
    assert rep.verdict_word in ("PROVED", "UNDECIDED"), rep.verdict
    w = next(a for a in rep.agreement if a.name == "w")
    assert w.outside == 0 and w.bound >= 5e-15            # torch's 5.4e-15 lies inside the proved bound


def test_softmax_at_0_500_3_is_not_refuted():
    def f(x, w):
        return (torch.softmax(x, 0) * w).sum()
    rep = audit(f, torch.tensor([0.0, 500.0, 3.0], dtype=torch.float64),
                torch.tensor([1.5, -0.5, 0.25], dtype=torch.float64))
    assert rep.verdict_word in ("PROVED", "UNDECIDED"), rep.verdict
    assert all(a.outside == 0 for a in rep.agreement)


def test_float64_hardsigmoid_backward_is_refuted_beyond_the_proved_bound():
    def f(x):
        return F.hardsigmoid(x).sum()
    rep = audit(f, torch.tensor([0.5, -1.25, 2.0], dtype=torch.float64))
    assert rep.verdict_word == "REFUTED" and not rep.float_kinks
    assert "beyond the proved bound" in rep.verdict
    (a,) = rep.agreement
    assert a.outside == 3 and a.truth is FALSE
    assert a.max_error > 1e-9 > 1e6 * a.bound              # 3e-8 relative against float64 rounding
    idx, fv, ex = a.examples[0]
    assert abs(fv - float(ex.mid() if isinstance(ex, arb) else ex)) > a.bound
    # in float32 the same constant is within rounding
    rep32 = audit(f, torch.tensor([0.5, -1.25, 2.0], dtype=torch.float32))
    assert rep32.verdict_word == "PROVED"


# --------------------------------------------------------------------- random small models, dyadic weights

ACTS = {"relu": torch.nn.ReLU, "leaky": lambda: torch.nn.LeakyReLU(0.125), "hardtanh": torch.nn.Hardtanh,
        "relu6": torch.nn.ReLU6, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "elu": torch.nn.ELU,
        "gelu": torch.nn.GELU}


@st.composite
def small_models(draw):
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    B, Fi, H, Fo = (draw(st.integers(lo, hi)) for lo, hi in ((1, 3), (1, 3), (1, 4), (1, 3)))
    act = ACTS[draw(st.sampled_from(sorted(ACTS)))]
    loss = draw(st.sampled_from(["sum", "ce", "mse"] if Fo >= 2 else ["sum", "mse"]))
    net = torch.nn.Sequential(torch.nn.Linear(Fi, H), act(), torch.nn.Linear(H, Fo)).to(dtype)
    dyadic = st.integers(-8, 8).map(lambda k: k / 8)
    with torch.no_grad():
        for p in net.parameters():
            p[...] = torch.tensor(draw(st.lists(dyadic, min_size=p.numel(), max_size=p.numel())),
                                  dtype=dtype).reshape(p.shape)
    x = torch.tensor(draw(st.lists(st.integers(-8, 8).map(lambda k: k / 4), min_size=B * Fi, max_size=B * Fi)),
                     dtype=dtype).reshape(B, Fi)
    if loss == "ce":
        y = torch.tensor(draw(st.lists(st.integers(0, Fo - 1), min_size=B, max_size=B)))

        def f(x, y):
            return F.cross_entropy(net(x), y, reduction="sum")
        return f, (x, y)
    if loss == "mse":
        t = torch.tensor(draw(st.lists(dyadic, min_size=B * Fo, max_size=B * Fo)), dtype=dtype).reshape(B, Fo)
        return (lambda x: F.mse_loss(net(x), t, reduction="sum")), (x,)
    return (lambda x: net(x).sum()), (x,)


@settings(max_examples=min(settings.default.max_examples, 16))
@given(small_models())
def test_torch_gradients_of_small_models_are_refuted_only_through_float_kinks(model):
    """torch's own float32 and float64 gradients: REFUTED only when a float kink changed the pieces."""
    f, args = model
    rep = audit(f, *args, framework="torch", critical="never")
    assert rep.verdict_word != "REFUTED" or rep.float_kinks, rep.summary()
    for a in rep.agreement:
        assert a.truth in (TRUE, FALSE, UNKNOWN) and a.size == a.errors.size


# ---------------------------------------------------------------------------- filtered against exact

def _imported(f, args):
    mod = framework("torch").module()
    imp = mod.import_model(f, *args)
    return mod, imp, mod.gradient(f, args, imp)


def _same(rep_f, rep_e):
    key = lambda sites: sorted((s.eqn, s.index, s.switch, s.exact, s.float) for s in sites)   # noqa: E731
    assert key(rep_f.exact_kinks) == key(rep_e.exact_kinks)
    assert key(rep_f.float_kinks) == key(rep_e.float_kinks)
    assert rep_f.verdict_word == rep_e.verdict_word and rep_f.verdict == rep_e.verdict
    for a, b in zip(rep_f.agreement, rep_e.agreement):
        assert (a.truth, a.outside, a.undecided) == (b.truth, b.outside, b.undecided)
    for enc, ex in zip(rep_f.exact_gradient, rep_e.exact_gradient):      # the exact gradient lies inside
        if isinstance(enc, np.ndarray):
            continue                                                     # the filter escalated: exact itself
        ex = np.asarray(ex, dtype=object)
        rad = enc.radius()
        for idx in np.ndindex(enc.mid.shape):
            e, m, r = ex[idx], float(enc.mid[idx]), float(rad[idx])
            if isinstance(e, arb):
                assert arb(m, r).overlaps(e)
            else:
                assert fmpq(*m.as_integer_ratio()) - fmpq(*r.as_integer_ratio()) <= e <= \
                    fmpq(*m.as_integer_ratio()) + fmpq(*r.as_integer_ratio())


def test_filtered_and_exact_audits_agree_on_a_float_kink():
    """1 + 2**-30 - 1 - 2**-30 = 0 exactly; float32 says otherwise; a relu that float32 sends to 0."""
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(4, 2)
            self.out = torch.nn.Linear(2, 2)

        def forward(self, x, labels):
            return F.cross_entropy(self.out(torch.relu(self.hidden(x))), labels, reduction="sum")
    torch.manual_seed(1)
    net = Net()
    with torch.no_grad():
        net.hidden.weight[:] = torch.tensor([[1.0, 1.0, -1.0, -1.0], [0.5, 0.25, 0.0, 0.0]])
        net.hidden.bias[:] = torch.tensor([0.0, 0.125])
    args = (torch.tensor([[1.0, 2.0 ** -30, 1.0, 2.0 ** -30], [0.5, 0.5, 0.5, 0.5], [2.0 ** -30, 1.0, -1.0, 0.0]]),
            torch.tensor([0, 1, 1]))
    mod, imp, fg = _imported(net, args)
    fv = mod.framework_values(imp, *args)
    from verify.auditing.floats import var_values
    fv = var_values(imp, fv)
    rep_f = audit_imported(imp, fg, framework_vars=fv)
    rep_e = audit_imported(imp, fg, framework_vars=fv, exact=True)
    _same(rep_f, rep_e)
    assert rep_f.exact_kinks and rep_f.iset.stats.sites > 0       # the tie went through the cone
    assert rep_e.iset.number == "exact" and rep_f.iset.number == "filter"


@settings(max_examples=min(settings.default.max_examples, 8))
@given(small_models())
def test_filtered_and_exact_audits_agree_on_small_models(model):
    f, args = model
    mod, imp, fg = _imported(f, args)
    _same(audit_imported(imp, fg, critical="never"), audit_imported(imp, fg, critical="never", exact=True))


def test_certificates_of_a_filtered_audit_check(tmp_path):
    import verify
    from verify.certificates import load

    def f(x):
        return (x - (torch.relu(-x) + x - torch.relu(x))).sum() + (torch.relu(x - 0.5) * 3).sum()
    rep = audit(f, torch.tensor([0.0, 0.5, 0.75], dtype=torch.float64), critical="never")
    assert rep.iset.number == "filter"
    (suffix, tc), = audit_certificates(rep)
    path = tmp_path / "a.json"
    tc.write(str(path))
    verify.check(str(path))
    d = load(str(path))
    assert d["kind"] == "tensor_differentiable" and d["result"]["kinks"] == len(rep.exact_kinks) == 3


def test_an_overflow_makes_nothing_impossible():
    """exp(100) overflows float32: an IEEE evaluation can return inf, so the audit claims no REFUTED."""
    def f(x):
        return torch.exp(x * 50).sum()
    rep = audit(f, torch.tensor([2.0, 0.5], dtype=torch.float32))
    assert rep.verdict_word != "REFUTED"
    assert any("overflow" in n for n in rep.notes)
