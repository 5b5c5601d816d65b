"""The command line: JSON keys, exit codes, and one clear line (never a traceback) on bad input."""
import json
import subprocess
import sys

import pytest

from verify.cli import main


def run(*args):
    p = subprocess.run([sys.executable, "-m", "verify", *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def test_grad_json_keys_and_exact_values(capsys):
    assert main(["grad", "lambda x, y: max(x, y) + relu(x - y)", "--at", "1,1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"value", "jacobian", "gradient", "exact", "pattern", "number", "convention"} <= set(out)
    assert out["value"] == ["1"] and out["gradient"] == ["1/2", "1/2"] and out["exact"] is True
    assert out["pattern"] == [2, 0]


def test_eval_json_and_negative_points(capsys):
    assert main(["eval", "lambda x, y: sort(x, y)", "--at", "-1/2,-3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["value"] == ["-3", "-1/2"] and "jacobian" not in out


def test_ball_json_is_an_outward_enclosure(capsys):
    import fractions
    import mpmath
    assert main(["grad", "lambda x: exp(x)", "--at", "1/3", "--number", "ball", "--prec", "80", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    lo, hi = (fractions.Fraction(s) for s in (out["gradient"][0]["lo"], out["gradient"][0]["hi"]))
    with mpmath.workdps(60):   # an independent oracle: exp(1/3) to 60 digits, within 1e-50
        ref = fractions.Fraction(mpmath.nstr(mpmath.exp(mpmath.mpf(1) / 3), 55))
    eps = fractions.Fraction(1, 10**50)
    assert lo <= ref - eps and ref + eps <= hi
    assert hi - lo < fractions.Fraction(1, 10**18) and out["exact"] is False and out["number"] == "ball"


def test_jacobian_of_several_outputs(capsys):
    assert main(["grad", "lambda x, y: (x * y, relu(x))", "--at", "2,3", "--json", "--mode", "forward"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["jacobian"] == [["3", "2"], ["1", "0"]] and "gradient" not in out


def test_human_output(capsys):
    assert main(["grad", "lambda t: relu(-t) + t", "--at", "0"]) == 0
    text = capsys.readouterr().out
    assert "gradient  1" in text and "piece" in text


@pytest.mark.parametrize("args, code, msg", [
    (["grad", "lambda x: log(x)", "--at", "-1"], 2, "log needs a positive argument, got -1"),
    (["grad", "lambda x: 1 / x", "--at", "0"], 2, "division needs a nonzero divisor"),
    (["grad", "lambda x: sqrt(x)", "--at", "0"], 2, "sqrt needs a positive argument"),
    (["grad", "lambda x: log(x - 1/3)", "--at", "1/3"], 2, "log needs a positive argument, got 0"),
    (["grad", "lambda x: log(sin(x) * sin(x) - (1 - cos(x) * cos(x)))", "--at", "1/3"], 3, "cannot decide"),
    (["grad", "lambda t: relu(log(exp(t)) - t)", "--at", "1/3"], 3, "cannot decide the sign"),
    (["grad", "lambda x: x +", "--at", "1"], 2, "1:"),
    (["grad", "lambda x: y", "--at", "1"], 2, "unknown name 'y'"),
    (["grad", "lambda x: relu(x, x)", "--at", "1"], 2, "relu takes 1 argument(s), got 2"),
    (["grad", "lambda x: x", "--at", "1,2"], 2, "2 coordinate(s)"),
    (["grad", "lambda x: x", "--at", "abc"], 2, "'abc' is not an exact number"),
    (["grad", "lambda x: x", "--at", "1,,2"], 2, "malformed"),
    (["grad", "lambda x: x", "--at", "1/0"], 2, "not an exact number"),
    (["grad", "lambda x: x", "--at", "nan"], 2, "not an exact number"),
    (["grad", "lambda x: x.y", "--at", "1"], 2, "attribute access"),
    (["grad", "lambda x: __import__('os')", "--at", "1"], 2, "unknown function '__import__'"),
    (["grad", "/nonexistent/p.prog", "--at", "1"], 2, "no program file"),
    (["grad", "lambda x: x", "--at", "1", "--prec", "1"], 2, "prec=1"),
])
def test_bad_input_is_one_clear_line(args, code, msg):
    rc, out, err = run(*args)
    assert rc == code, (rc, err)
    assert msg in err and "Traceback" not in err and err.count("\n") == 1 and out == ""


def test_usage_errors_exit_2():
    rc, _, err = run("grad", "lambda x: x")
    assert rc == 2 and "--at" in err and "Traceback" not in err
    rc, _, err = run("grad", "lambda x: x", "--at", "1", "--convention", "pytorch")
    assert rc == 2 and "invalid choice" in err


def test_help_explains():
    rc, out, _ = run("--help")
    assert rc == 0 and "exit codes" in out and "reproduce" in out
    rc, out, _ = run("grad", "--help")
    assert rc == 0 and "--convention" in out and "Lemma 1" in out


def test_python_m_and_console_script_agree(tmp_path):
    f = tmp_path / "p.prog"
    f.write_text("def f(t):\n    return (relu(t) + relu(-t) + t) / 2\n")
    rc, out, _ = run("grad", str(f), "--at", "0", "--json")
    assert rc == 0 and json.loads(out)["gradient"] == ["1/2"]
