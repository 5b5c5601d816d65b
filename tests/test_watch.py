"""The training-run sanitizer: verify.watch inside a user's own torch loop (it audits p.grad, the gradient the
optimizer uses: a corrupted one is REFUTED), verify.watch_jax around jax.value_and_grad, the JSON lines and the
summary, and `verify watch` on a digits MLP and CNN (worker processes, in-process, errors, the Dask path)."""
import os
import textwrap

import jsonschema
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import verify  # noqa: E402
from verify.auditing.watch import Summary, read_log  # noqa: E402
from verify.cli import main  # noqa: E402

from test_cli_contract import SCHEMA, one_object  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "examples", "train_digits.py")
STEP = jsonschema.Draft202012Validator({"$ref": "#/$defs/watch-step", "$defs": SCHEMA["$defs"]})


def _valid_lines(records):
    for r in records:
        errors = [e.message for e in STEP.iter_errors(r)]
        assert not errors, (r, errors)


def _examples():
    import importlib.util
    spec = importlib.util.spec_from_file_location("train_digits", TRAIN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_hook_audits_p_grad_in_the_users_loop_and_refutes_a_corrupted_one(tmp_path):
    ex = _examples()
    model, opt, batches = ex.mlp()
    log = tmp_path / "mlp.jsonl"
    w = verify.watch(model, every=2, log=str(log))
    seen = []
    for step, (x, labels) in enumerate(batches[:5]):
        opt.zero_grad()
        model(x, labels).backward()
        if step == 4:
            model.out.bias.grad[3] += 1e-3                 # what the optimizer will use is no longer AD's output
        used = {n: p.grad.clone() for n, p in model.named_parameters()}
        audit = w.step(x, labels)
        opt.step()
        if step % 2:
            assert audit is None
            continue
        seen.append(audit.verdict_word)
        rep = audit.report
        for i, g in zip(rep.wrt, rep.float_gradient):    # the audited gradient is p.grad, bit for bit
            assert np.array_equal(g, used[rep.inputs[i].source].numpy())
    assert seen == ["PROVED", "PROVED", "REFUTED"]
    bad = w.last.report
    assert [a.name for a in bad.agreement if a.outside] == ["out_bias"]
    assert w.steps == 5 and w.auditor.exports == 1
    lines = read_log(log)
    assert [r["step"] for r in lines] == [0, 2, 4] and lines == w.records
    _valid_lines(lines)
    assert lines[2]["verdict"] == "REFUTED" and lines[2]["gradient"]["outside"] == 1 and "reason" in lines[2]
    s = w.summary()
    assert s.verdicts() == {"PROVED": 2, "REFUTED": 1, "UNDECIDED": 0} and s.steps == 5
    assert "5 step(s), 3 audited (every 2): 2 PROVED, 1 REFUTED, 0 UNDECIDED" in s.text()
    w.plot(str(tmp_path / "w.png"))
    assert (tmp_path / "w.png").stat().st_size > 10_000


def test_the_hook_counts_kinks_per_layer_in_a_cnn(tmp_path):
    ex = _examples()
    model, opt, batches = ex.cnn()
    w = verify.watch(model, every=1)
    for x, labels in batches[:2]:
        opt.zero_grad()
        model(x, labels).backward()
        audit = w.step(x, labels)
        opt.step()
        agg = audit.report.kinks()
        line = audit.record
        assert [lay["kinked_sites"] for lay in line["layers"]] == [lay.kinked for lay in agg.layers]
        assert line["exact_kinks"]["sites"] == agg.kinked_sites > 0     # max-pool windows of relu's zeros
        assert {c["convention"] for c in line["zones"]["conventions"]} == {"jax", "tf", "relu'(0)=1",
                                                                           "max-pool split"}
    s = w.summary().json()
    pools = [lay for lay in s["layers"] if lay["kind"] == "max"]
    assert len(pools) == 2 and all(len(lay["kinked_sites"]["series"]) == 2 for lay in pools)


def test_watch_refuses_what_it_cannot_audit():
    with pytest.raises(verify.InputError, match="torch.nn.Module"):
        verify.watch(lambda x: x)
    with pytest.raises(verify.InputError, match="every"):
        verify.watch(torch.nn.Linear(2, 1), every=0)
    with pytest.raises(verify.InputError, match="watch_jax"):
        verify.watch(torch.nn.Linear(2, 1), framework="jax")
    w = verify.watch(torch.nn.Linear(2, 1))
    with pytest.raises(verify.InputError, match="backward"):
        w.step(torch.zeros(1, 2))


def test_watch_jax_wraps_value_and_grad_and_audits_what_it_returns():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    def loss(params, x, labels):
        h = jax.nn.relu(x @ params["w1"] + params["b1"])
        return -jnp.mean(jax.nn.log_softmax(h @ params["w2"])[jnp.arange(labels.shape[0]), labels])
    rng = np.random.default_rng(0)
    params = {"w1": jnp.asarray(rng.standard_normal((4, 5)), jnp.float32), "b1": jnp.zeros(5, jnp.float32),
              "w2": jnp.asarray(rng.standard_normal((5, 3)), jnp.float32)}
    step = verify.watch_jax(loss, every=2)
    values = []
    for i in range(3):
        x = jnp.asarray(rng.standard_normal((6, 4)), jnp.float32)
        labels = jnp.asarray(rng.integers(0, 3, 6))
        value, grads = step(params, x, labels)
        values.append(float(value))
        v2, g2 = jax.value_and_grad(loss)(params, x, labels)
        assert float(value) == float(v2) and all(np.array_equal(grads[k], g2[k]) for k in grads)
        if i % 2 == 0:
            rep = step.last.report
            assert step.last.step == i and rep.verdict_word == "PROVED"
            audited = {rep.inputs[k].source: g for k, g in zip(rep.wrt, rep.float_gradient)}
            assert {k: np.array_equal(audited[f"params['{k}']"], np.asarray(grads[k])) for k in grads} == \
                {k: True for k in grads}
        params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
    assert [r["step"] for r in step.records] == [0, 2] and step.auditor.exports == 1
    _valid_lines(step.records)
    assert [r["loss"] for r in step.records] == [values[0], values[2]]
    with pytest.raises(verify.InputError, match="argnums"):
        verify.watch_jax(loss, argnums=5)


def test_the_summary_aggregates_lines():
    def line(step, verdict, kinked, bif, comp, kinds=(0, 0, 0)):
        return {"step": step, "verdict": verdict, "seconds": 0.5, "gradient": {"elements": 3, "outside": 0},
                "exact_kinks": {"count": kinked, "sites": kinked, "classes": {"plateau": kinked} if kinked else {}},
                "layers": [{"layer": "pool (a.py:3)", "kind": "max", "sites": 10, "kinked_sites": kinked,
                            "classes": {}, "float_kinks": sum(kinds)}],
                "float_kinks": {"count": sum(kinds), "float_tie": kinds[0], "missed_tie": kinds[1], "flip": kinds[2]},
                "zones": {"bifurcation": bif, "compensation": comp,
                          "conventions": [{"convention": "max-pool split",
                                           "outcome": {True: "differs", False: "same", None: "undecided"}[bif],
                                           "sites": kinked, "elements": 0, "undecided": 0}]}}
    lines = [line(4, "UNDECIDED", 2, None, True, (1, 0, 0)), line(0, "PROVED", 3, False, False),
             line(2, "REFUTED", 5, True, True, (0, 1, 1))]
    _valid_lines(lines)
    s = Summary(lines, steps=6, every=2).json()
    assert s["audited_steps"] == [0, 2, 4] and s["verdicts"] == {"PROVED": 1, "REFUTED": 1, "UNDECIDED": 1}
    assert s["zones"] == {"bifurcation": {"in": 1, "out": 1, "undecided": 1}, "compensation": 2,
                          "conventions": {"max-pool split": {"differs": 1, "same": 1, "undecided": 1}}}
    assert s["float_kinks"] == {"count": 3, "steps": 2, "float_tie": 1, "missed_tie": 1, "flip": 1}
    assert s["layers"][0]["kinked_sites"] == {"first": 3, "last": 2, "min": 2, "max": 5, "mean": 3.33,
                                              "series": [3, 5, 2]}
    assert s["seconds"] == {"audits": 1.5, "per_audit": 0.5}
    summary = jsonschema.Draft202012Validator({"$ref": "#/$defs/watch-summary", "$defs": SCHEMA["$defs"]})
    assert not list(summary.iter_errors(s))


# ------------------------------------------------------------------------------------------ the command line

def test_verify_watch_on_the_mlp_audits_in_worker_processes(tmp_path, capsys):
    log = tmp_path / "mlp.jsonl"
    rc = main(["watch", f"{TRAIN}:mlp", "--steps", "5", "--every", "2", "--log", str(log), "--workers", "1",
               "--json"])
    out = one_object(capsys.readouterr().out)
    assert rc == 0 and out["verdict"] == "PROVED" and out["workers"] == 1 and out["steps"] == 5
    lines = read_log(log)
    _valid_lines(lines)
    assert [r["step"] for r in lines] == [0, 2, 4] == out["summary"]["audited_steps"]
    pids = {r["worker"] for r in lines}
    assert len(pids) == 1 and os.getpid() not in pids            # audited in a worker process, not here
    assert all(r["verdict"] == "PROVED" and r["loss"] > 0 for r in lines)


def test_verify_watch_on_the_cnn_in_process_with_its_figure(tmp_path, capsys):
    log, png = tmp_path / "cnn.jsonl", tmp_path / "cnn.png"
    rc = main(["watch", f"{TRAIN}:cnn", "--steps", "3", "--every", "2", "--log", str(log), "--plot", str(png),
               "--workers", "0"])
    out = capsys.readouterr().out
    lines = read_log(log)
    assert [r["step"] for r in lines] == [0, 2] and {r["worker"] for r in lines} == {os.getpid()}
    # step 2 has a float kink (a relu whose float pre-activation has the other sign): UNDECIDED, exit 3
    assert [r["verdict"] for r in lines] == ["PROVED", "UNDECIDED"] and rc == 3
    assert lines[1]["float_kinks"]["count"] == lines[1]["layers"][2]["float_kinks"] > 0
    assert lines[1]["zones"]["compensation"] is True and lines[0]["zones"]["compensation"] is False
    assert "watch: 3 step(s), 2 audited (every 2): 1 PROVED, 0 REFUTED, 1 UNDECIDED" in out
    assert "max_pool2d_with_indices (train_digits.py:42)" in out and f"log: {log}; figure: {png}" in out
    assert png.stat().st_size > 10_000 and lines[0]["exact_kinks"]["classes"]["plateau"] > 0


def test_a_gradient_hook_the_export_cannot_see_is_refuted(tmp_path, capsys):
    script = tmp_path / "hooked.py"
    script.write_text(textwrap.dedent(f"""\
        import importlib.util
        spec = importlib.util.spec_from_file_location("train_digits", {TRAIN!r})
        ex = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ex)

        def make():
            model, opt, batches = ex.mlp()
            model.out.bias.register_hook(lambda g: g * 1.5)     # p.grad is no longer the loss's gradient
            return model, opt, batches
        """))
    rc = main(["watch", f"{script}:make", "--steps", "2", "--log", str(tmp_path / "h.jsonl"), "--workers", "0",
               "--json"])
    out = one_object(capsys.readouterr().out)
    assert rc == 1 and out["verdict"] == "REFUTED" and out["reason"].startswith("2 audited step(s) REFUTED")


@pytest.mark.parametrize("argv, words", [
    (["watch", "nosuch.py:make", "--steps", "2", "--log", "x.jsonl"], "no such script"),
    (["watch", "TRAIN:nosuch", "--steps", "2", "--log", "x.jsonl"], "has no function 'nosuch'"),
    (["watch", "TRAIN:batches", "--steps", "2", "--log", "x.jsonl"], "must return (model, optimizer, batches)"),
    (["watch", "TRAIN:mlp", "--steps", "0", "--log", "x.jsonl"], "--steps=0 must be at least 1"),
    (["watch", "TRAIN:mlp", "--steps", "2", "--every", "0", "--log", "x.jsonl"], "--every=0"),
    (["watch", "TRAIN:mlp", "--steps", "2", "--log", "x.txt"], "must end with .jsonl"),
    (["watch", "TRAIN:mlp", "--steps", "2", "--log", "x.jsonl", "--plot", "x.pdf"], "must end with .png"),
    (["watch", "TRAIN:mlp", "--steps", "2", "--log", "x.jsonl", "--workers", "-1"], "--workers=-1"),
    (["watch", "TRAIN:mlp", "--steps", "2", "--log", "x.jsonl", "--workers", "1", "--dask", "tcp://x:1"],
     "not allowed with argument"),
    (["watch", "TRAIN:mlp", "--steps", "2"], "--log"),
])
def test_bad_input_is_one_line_and_exit_2(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("TRAIN", TRAIN) for a in argv]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and words in err and err.count("\n") == 1, err
    rc = main(argv + ["--json"])
    assert one_object(capsys.readouterr().out)["verdict"] == "ERROR"


def test_dask_without_distributed_is_named(tmp_path, capsys):
    try:
        import distributed  # noqa: F401
        pytest.skip("distributed is installed: the Dask path is tested below")
    except ImportError:
        pass
    rc = main(["watch", f"{TRAIN}:mlp", "--steps", "1", "--log", str(tmp_path / "d.jsonl"), "--dask", "tcp://x:1"])
    assert rc == 2 and "--dask needs the 'distributed' package" in capsys.readouterr().err


def test_the_dask_path_audits_on_a_local_cluster(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True) as cluster:
        rc = main(["watch", f"{TRAIN}:mlp", "--steps", "3", "--every", "2", "--log", str(tmp_path / "d.jsonl"),
                   "--dask", cluster.scheduler_address, "--json"])
    out = one_object(capsys.readouterr().out)
    assert rc == 0 and out["workers"] == "dask" and out["summary"]["audited_steps"] == [0, 2]


SCRIPTS = {
    "raises": ("def forward(self, x, labels):\n        raise ValueError('no forward today')", "--workers", "0",
               "step 0: model(*batch) raised ValueError: no forward today"),
    "vector": ("def forward(self, x, labels):\n        return self.out(x.flatten(1)).sum(0)", "--workers", "0",
               "step 0: model(*batch) must return a scalar loss tensor"),
    "differs": ("def __init__(self):\n        super().__init__()\n"
                "        import multiprocessing\n"
                "        self.out = torch.nn.Linear(64, 10 if multiprocessing.parent_process() is None else 9)",
                "--workers", "1", "the script must build the same model every time"),
}


@pytest.mark.parametrize("case", sorted(SCRIPTS))
def test_what_the_users_script_does_wrong_is_one_line_and_exit_2(case, tmp_path, capsys):
    method, flag, value, words = SCRIPTS[case]
    script = tmp_path / f"{case}.py"
    script.write_text(textwrap.dedent("""\
        import torch
        import torch.nn.functional as F


        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.out = torch.nn.Linear(64, 10)

            def forward(self, x, labels):
                return F.cross_entropy(self.out(x.flatten(1)), labels)

            METHOD


        def make():
            torch.manual_seed(0)
            net = Net()
            x, labels = torch.rand(4, 64), torch.tensor([0, 1, 2, 3])
            return net, torch.optim.SGD(net.parameters(), lr=0.1), [(x, labels)]
        """).replace("METHOD", method.replace("\n", "\n    ")))
    rc = main(["watch", f"{script}:make", "--steps", "2", "--log", str(tmp_path / "l.jsonl"), flag, value])
    err = capsys.readouterr().err.splitlines()
    errors = [line for line in err if not line.startswith("[")]       # (the progress lines before it)
    assert rc == 2 and len(errors) == 1 and errors[0].startswith("verify: error: ") and words in errors[0], err
