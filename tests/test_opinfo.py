"""PyTorch's own operator test data (OpInfo's op_db) as a differential suite for verify.from_torch, against torch
live (verify/frameworks/opinfo.py: the first sample of each op, values and gradients compared to float64
rounding).

The default (quick / ci) profiles run a fixed sample of ops across the families (elementwise, reductions,
order statistics, index ops, pooling, losses, linear algebra, attention) and audit a few; the campaign profile
(HYPOTHESIS_PROFILE=campaign) runs every float64-autograd op.  Every op must do at least as well as
tests/data/torch_opinfo.json records (benchmarks/coverage_torch.py --expect writes it): an op recorded as
imported must import with torch's values and gradients, none may crash, and a mismatch is allowed only where
torch's gradient is not the derivative of its own function (opinfo.KNOWN_MISMATCHES).  Skipped without torch or
expecttest (which torch's test data imports).
"""
import json
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")

import verify  # noqa: E402
from verify.frameworks import opinfo  # noqa: E402

EXPECTED = json.load(open(os.path.join(os.path.dirname(__file__), "data", "torch_opinfo.json"), encoding="utf-8"))
QUICK = ["atan2", "acosh", "floor", "remainder", "clamp", "cummax", "logcumsumexp", "prod", "topk", "median",
         "linalg.vector_norm", "cdist", "nn.functional.embedding", "scatter_reduce.amax", "index_put",
         "nn.functional.max_pool3d", "nn.functional.adaptive_max_pool2d", "nn.functional.conv_transpose2d",
         "nn.functional.huber_loss", "nn.functional.scaled_dot_product_attention", "fft.rfft", "masked.median"]
AUDITED = ["nn.functional.leaky_relu", "cummax", "clamp", "nn.functional.max_pool2d", "topk"]
CAMPAIGN = os.environ.get("HYPOTHESIS_PROFILE") == "campaign"


def _ops(names):
    by = {opinfo.op_name(op): op for op in opinfo.float64_autograd_ops()}
    return [by[n] for n in names]


def _judge(res):
    want = EXPECTED.get(res.name, {}).get("status")
    assert res.status != "crashed", f"{res.name} crashed: {res.detail}"
    if res.status == "mismatch":
        assert res.name in opinfo.KNOWN_MISMATCHES, f"{res.name}: {res.detail}"
    if want == "imported":
        assert res.status == "imported", f"{res.name} was imported, now {res.status}: {res.reason} {res.detail}"


def test_the_quick_sample_of_operators_matches_torch():
    """Well under a minute: one import and one exact or ball evaluation per op."""
    results = [opinfo.check(op) for op in _ops(QUICK)]
    for res in results:
        _judge(res)
    assert sum(r.status == "imported" for r in results) >= len(QUICK) - 2      # fft.rfft (complex), masked.median


def test_refusals_name_the_op_and_why():
    """Complex results and data-dependent shapes are refused by name, never imported wrongly."""
    res = {r.name: r for r in (opinfo.check(op) for op in _ops(["fft.rfft", "masked_select"]))}
    assert res["fft.rfft"].status == "refused" and res["fft.rfft"].reason == "complex"
    assert "complex" in res["fft.rfft"].detail and "aten._fft_r2c" in res["fft.rfft"].detail


@pytest.mark.parametrize("name", AUDITED)
def test_an_audit_of_an_operator_sample(name):
    """verify.audit of the op's own sample (a weighted sum of its outputs as the loss): torch's float64 gradient is
    proved a selection gradient at that point."""
    (op,) = _ops([name])
    case = opinfo.Case(op, next(iter(op.sample_inputs("cpu", torch.float64, requires_grad=False))))
    opinfo.torch_run(case)
    rep = verify.audit(case.module(loss_only=True), *case.inputs(), critical="never")
    assert rep.verdict_word == "PROVED", rep.summary()
    assert all(a.agrees for a in rep.agreement)


@pytest.mark.skipif(not CAMPAIGN, reason="every operator runs under HYPOTHESIS_PROFILE=campaign")
def test_every_operator_against_torch():
    failures = []
    for op in opinfo.float64_autograd_ops():
        res = opinfo.check(op)
        try:
            _judge(res)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n".join(failures)


def test_the_importer_docs_run():
    """docs/importers.md's Python blocks run as written."""
    import re
    path = os.path.join(os.path.dirname(__file__), "..", "docs", "importers.md")
    blocks = re.findall(r"```python\n(.*?)```", open(path, encoding="utf-8").read(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, path, "exec"), {})
