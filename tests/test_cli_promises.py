"""What the command line promises a newcomer, each found by trying it as one (issue 15): --help and --version
with --json print one object, every command's errors name the command, a float computation never says
PROVED, a capped index set says what it proved, a missing point file is reported as missing, a non-scalar
output is named with its shape."""
import json
import os

import pytest

from verify.cli import command_names, main

from test_cli_contract import one_object


def inproc(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_the_command_names_are_the_registered_commands():
    names = command_names()
    for cmd in ("eval", "grad", "index-set", "critical", "spurious", "segment", "integral", "check", "fuzz",
                "reproduce", "audit"):
        assert cmd in names


@pytest.mark.parametrize("argv,command,key", [
    (["--version", "--json"], "verify", "version"),
    (["--help", "--json"], "verify", "help"),
    (["grad", "--help", "--json"], "grad", "help"),
    (["audit", "--json", "--help"], "audit", "help"),
    (["reproduce", "-h", "--json"], "reproduce", "help"),
])
def test_help_and_version_with_json_print_one_object(capsys, argv, command, key):
    rc, out, _ = inproc(capsys, *argv)
    assert rc == 0
    obj = one_object(out)
    assert obj["command"] == command and obj["verdict"] == "PROVED" and obj[key]
    if key == "help":
        assert obj[key].startswith("usage: verify")


def test_audit_errors_name_the_audit_command(capsys):
    rc, out, err = inproc(capsys, "audit", "nosuch.py:make", "--json")
    assert rc == 2 and "nosuch.py" in err
    assert one_object(out) == {"command": "audit", "verdict": "ERROR", "reason": "'nosuch.py': no such script"}


@pytest.mark.parametrize("number", ["float", "float64", "float32", "float16"])
@pytest.mark.parametrize("cmd", ["eval", "grad"])
def test_a_float_computation_never_says_proved(capsys, cmd, number):
    rc, out, _ = inproc(capsys, cmd, "lambda t: relu(t) * 3", "--at", "1/10", "--number", number, "--json")
    obj = one_object(out)
    assert rc == 0 and obj["verdict"] == "UNVERIFIED" and "certifies nothing" in obj["reason"]
    rc, out, _ = inproc(capsys, cmd, "lambda t: relu(t) * 3", "--at", "1/10", "--number", number)
    assert rc == 0 and "UNVERIFIED" in out and "PROVED" not in out
    # exact and ball computations still prove
    rc, out, _ = inproc(capsys, cmd, "lambda t: relu(t) * 3", "--at", "1/10", "--json")
    assert rc == 0 and one_object(out)["verdict"] == "PROVED"


def test_a_capped_index_set_says_what_it_proved(capsys):
    prog = "lambda a, b, c, d: relu(a) + relu(b) + relu(c) + relu(d)"
    rc, out, _ = inproc(capsys, "index-set", prog, "--at", "0,0,0,0", "--cap", "3", "--json")
    obj = one_object(out)
    assert rc == 0 and obj["capped"] is True and obj["count"] == 16 and len(obj["patterns"]) == 3
    assert "exactly 16 pattern(s)" in obj["reason"] and "partial" in obj["reason"]
    rc, out, _ = inproc(capsys, "index-set", prog, "--at", "0,0,0,0", "--cap", "3")
    assert "exactly 16 pattern(s)" in out and "partial" in out and "D_f(x) = conv of" not in out
    rc, out, _ = inproc(capsys, "index-set", prog, "--at", "0,0,0,0", "--json")
    obj = one_object(out)
    assert obj["capped"] is False and "reason" not in obj


def test_a_missing_point_file_is_reported_as_missing(capsys, tmp_path):
    prog = tmp_path / "two.prog"
    prog.write_text("def f(x: [2]):\n    h = relu(x - 1/3)\n    return sum(h, axes=(0,))\n")
    rc, _, err = inproc(capsys, "segment", str(prog), "--from", str(tmp_path / "nosuch.npz"), "--to", "1,1")
    assert rc == 2 and "no such file" in err and "nosuch.npz" in err and "beside the program" not in err
    rc, _, err = inproc(capsys, "grad", str(prog), "--at", os.path.join(str(tmp_path), "gone.npz"))
    assert rc == 2 and "no such file" in err


def test_critical_names_the_shape_of_a_non_scalar_output(capsys, tmp_path):
    prog = tmp_path / "five.prog"
    prog.write_text("def f(x: [5]):\n    h = relu(x)\n    return reshape(h, shape=(5, 1))\n")
    rc, out, err = inproc(capsys, "critical", str(prog), "--at", "0,0,0,0,0", "--json")
    assert rc == 2 and "[5, 1]" in json.loads(out)["reason"] and "[5, 1]" in err


def test_balls_with_astronomical_exponents_give_an_answer_not_a_crash():
    """exp(exp(30)) is about 2^(1.5 * 10^13): its ball prints and differentiates, and where an exact rational
    of its midpoint would be needed (proposing a separator for critical) the answer is UNDECIDED with the reason.
    Building m * 2^e crashed the process with SIGFPE inside FLINT before (found by CI's random programs, in a
    test helper that did the same); a subprocess, so a regression fails this test instead of killing pytest."""
    import subprocess
    import sys

    from flint import arb, fmpq

    from verify.errors import Undecided
    from verify.rational import MAX_BITS, dyadic_q
    prog = "lambda x: relu(exp(exp(x)) - 1)"
    for cmd, rc_want, text in (("grad", 0, "e4641076941768"),
                               ("critical", 3, "UNDECIDED: a ball's midpoint is m * 2^")):
        r = subprocess.run([sys.executable, "-m", "verify", cmd, prog, "--at", "30"], capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == rc_want and text in r.stdout + r.stderr, (r.returncode, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "verify", "eval", "lambda x: exp(exp(x))", "--at", "30", "--number",
                        "interval", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and json.loads(r.stdout)["value"][0]["lo"].startswith("2.73007036473193240142682"), r
    assert dyadic_q(arb(3) / 8) == fmpq(3, 8) and dyadic_q(arb(-5) * 2 ** 70) == fmpq(-5 * 2 ** 70)
    with pytest.raises(Undecided, match="more than"):
        dyadic_q(arb(30).exp().exp().mid())
    assert MAX_BITS < 2 ** 43
    from verify.checker import Invalid, kernel as K           # the checker rejects such a number cleanly
    with pytest.raises(Invalid, match="beyond the checker's exact range"):
        K.arf_q(arb(30).exp().exp().mid())
    assert K.arf_q(arb(-3) / 4) == fmpq(-3, 4)
    import mpmath

    from verify.fuzz.oracles import q_bounds                  # the fuzz oracles compare nothing there
    assert q_bounds(arb(30).exp().exp()) is None and q_bounds(mpmath.iv.exp(mpmath.iv.exp(30))) is None
    assert q_bounds(arb(3) / 4) == (fmpq(3, 4), fmpq(3, 4))
