"""JAX's own primitive harnesses (``jax._src.internal_test_util.test_harnesses``) as a differential suite for
verify.from_jax, against JAX live: benchmarks/coverage_jax.py's check of a group (values, and the gradient of
the sum of the float outputs, to float64 rounding).

The default profiles run a fixed sample of groups across the families (inverse trigonometric, rounding,
cumulative, top_k, scatter, the pooling gradient primitives, control of refusals) and audit a few; the campaign
profile (HYPOTHESIS_PROFILE=campaign) runs every float64 group.  Every group must do at least as well as
tests/data/jax_harnesses.json records (``python benchmarks/coverage_jax.py --expect`` writes it): a group
recorded as imported imports, none crashes, and a disagreement is allowed only where JAX is the one that is
wrong (KNOWN_JAX_ERRORS, each checked against mpmath below).  Skipped without JAX or absl-py (the harnesses
import it).
"""
import importlib.util
import json
import os

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("absl")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

import verify  # noqa: E402

HERE = os.path.dirname(__file__)
EXPECTED = json.load(open(os.path.join(HERE, "data", "jax_harnesses.json"), encoding="utf-8"))
_spec = importlib.util.spec_from_file_location("coverage_jax", os.path.join(HERE, "..", "benchmarks",
                                                                             "coverage_jax.py"))
coverage_jax = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(coverage_jax)

QUICK = ["acos", "atanh", "cbrt", "round", "rem", "atan2", "bessel_i0e", "erf_inv", "cummax", "cumlogsumexp",
         "reduce_prod", "top_k", "approx_top_k", "scatter_add", "scatter_max", "select_and_gather_add",
         "select_and_scatter_add", "sort", "nextafter", "cholesky"]
# groups where verify and JAX disagree because JAX's result is not the function's (checked below against mpmath)
KNOWN_JAX_ERRORS = {"digamma": "JAX's derivative of digamma (polygamma(1, x)) is off by up to ~1% at negative x"}
CAMPAIGN = os.environ.get("HYPOTHESIS_PROFILE") == "campaign"


def _judge(group, row):
    want = EXPECTED.get(group, {}).get("status")
    assert row["outcome"] != "crashed", f"{group} crashed: {row['detail']}"
    if row["outcome"] == "disagrees":
        assert group in KNOWN_JAX_ERRORS, f"{group}: {row['detail']}"
    if want == "imported":
        assert row["outcome"] == "imported", f"{group} was imported, now {row['outcome']}: {row['detail']}"


def test_the_quick_sample_of_harness_groups_matches_jax():
    table = coverage_jax.run(QUICK, limit=3)
    assert sorted(table) == sorted(QUICK)
    for g, row in table.items():
        _judge(g, row)
    refused = {g for g, row in table.items() if row["outcome"] == "refused"}
    assert refused == {"nextafter", "cholesky"}, refused


def test_refusals_name_the_primitive_and_why():
    table = coverage_jax.run(["nextafter", "igamma", "bitcast_convert_type"], limit=1)
    assert "float format" in table["nextafter"]["detail"]
    assert "incomplete gamma" in table["igamma"]["detail"]
    assert "bits" in table["bitcast_convert_type"]["detail"]


def test_jax_is_the_one_off_where_digamma_disagrees():
    """The digamma group disagrees on the gradient: verify's polygamma(1, x) is the one mpmath computes, JAX's is
    not (so the disagreement is JAX's error, not an import error)."""
    mpmath = pytest.importorskip("mpmath")
    (h, *_) = coverage_jax.harnesses(["digamma"])["digamma"]
    args = h.dyn_args_maker(np.random.RandomState(0))

    def loss(t):
        return jnp.sum(h.dyn_fun(t))
    theirs = np.asarray(jax.grad(loss)(*args)).ravel()
    imp = verify.from_jax(loss, *args)
    ours = np.asarray(verify.grad(imp.program, imp.point).gradient[0]).ravel()
    x = np.asarray(args[0]).ravel()
    i = int(np.argmax(np.abs(np.array([float(v.mid()) for v in ours]) - theirs)))
    mpmath.mp.dps = 40
    exact = mpmath.polygamma(1, mpmath.mpf(float(x[i])))
    mid, rad = (mpmath.mpf(b.str(40, radius=False)) for b in (ours[i].mid(), ours[i].rad()))
    assert abs(mid - exact) <= rad + mpmath.mpf(10) ** -25 * abs(exact)      # ours encloses the true value
    assert abs(theirs[i] - float(exact)) > 1e-6 * abs(float(exact))        # JAX's value is the one off


@pytest.mark.parametrize("group", ["cummax", "top_k", "select_and_gather_add", "scatter_max"])
def test_an_audit_of_a_harness_sample(group):
    """verify.audit of the harness's own function (the sum of its float outputs as the loss): JAX's float64
    gradient is proved a selection gradient there."""
    (h, *_) = coverage_jax.harnesses([group])[group]
    args = h.dyn_args_maker(np.random.RandomState(0))
    floats = [i for i, x in enumerate(args) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]

    def loss(*xs):
        full = list(args)
        for j, x in zip(floats, xs):
            full[j] = x
        outs = jax.tree_util.tree_leaves(h.dyn_fun(*full))
        return sum(jnp.sum(o) for o in outs if jnp.issubdtype(o.dtype, jnp.floating))
    rep = verify.audit(loss, *[jnp.asarray(args[i]) for i in floats], framework="jax", critical="never")
    assert rep.verdict_word == "PROVED", rep.summary()
    assert all(a.agrees for a in rep.agreement)


@pytest.mark.skipif(not CAMPAIGN, reason="every harness group runs under HYPOTHESIS_PROFILE=campaign")
def test_every_harness_group_against_jax():
    failures = []
    for g, row in coverage_jax.run().items():
        try:
            _judge(g, row)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n".join(failures)


def test_the_expectations_hold_the_coverage_goal():
    """The recorded table: at least 80% of the decided float64 groups import, and nothing crashes."""
    decided = {g: v for g, v in EXPECTED.items() if v["status"] != "skipped"}
    imported = sum(v["status"] == "imported" for v in decided.values())
    assert imported >= 0.8 * len(decided), (imported, len(decided))
    assert not [g for g, v in EXPECTED.items() if v["status"] == "crashed"]
