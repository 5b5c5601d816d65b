"""The paper's Section 1.1 examples, exactly, in both modes."""
import json

import pytest
from flint import fmpq

import verify
from verify.cli import main

RELU3 = """
def relu2(t):
    return relu(-t) + t

def relu3(t):
    return (relu(t) + relu2(t)) / 2

def zero(t):
    return relu2(t) - relu(t)

def ident(t):
    return t - zero(t)
"""


@pytest.mark.parametrize("mode", ["forward", "backward"])
@pytest.mark.parametrize("fn, expected", [("relu2", 1), ("relu3", fmpq(1, 2)), ("zero", 1), ("ident", 0)])
def test_kink_derivatives_at_zero(fn, expected, mode):
    g = verify.grad(verify.parse(RELU3, fn=fn), [0], mode=mode)
    assert g.gradient == [expected] and g.exact
    assert all(isinstance(v, fmpq) for v in g.gradient)


@pytest.mark.parametrize("fn", ["relu2", "relu3"])
def test_same_function_as_relu_away_from_zero(fn):
    P = verify.parse(RELU3, fn=fn)
    for t in ["-3/2", "-1/7", "1/7", "5"]:
        q = fmpq(*map(int, t.split("/"))) if "/" in t else fmpq(int(t))
        assert verify.evaluate(P, [t]).values == [max(q, fmpq(0))]
        assert verify.grad(P, [t]).gradient == [fmpq(1) if q > 0 else fmpq(0)]


def test_zero_is_zero_but_its_ad_derivative_is_one():
    P = verify.parse(RELU3, fn="zero")
    assert [verify.evaluate(P, [t]).values[0] for t in ("-1", "0", "1/3")] == [0, 0, 0]
    assert verify.grad(P, [0]).gradient == [1]
    assert verify.grad(P, ["1/3"]).gradient == [0]


def test_cli_json_prints_exact_half(capsys, tmp_path):
    f = tmp_path / "r.prog"
    f.write_text(RELU3)
    assert main(["grad", str(f), "--fn", "relu3", "--at", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gradient"] == ["1/2"] and out["jacobian"] == [["1/2"]] and out["exact"] is True
    assert out["value"] == ["0"] and out["convention"] == "torch" and out["number"] == "exact"
    for mode in ("forward", "backward"):
        assert main(["grad", str(f), "--fn", "ident", "--at", "0", "--json", "--mode", mode]) == 0
        assert json.loads(capsys.readouterr().out)["gradient"] == ["0"]
