"""The command line's contract: every bad input is one line on stderr and exit 2 (never 4, never a
traceback), limits are named, --json prints exactly one JSON object valid against the published output schema
for every outcome, help describes only the flags a command has."""
import json
import os
import re
import subprocess
import sys
from importlib import resources

import jsonschema
import pytest

from verify.cli import build_parser, main

SCHEMA = json.loads(resources.files("verify.commands").joinpath("output.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def run(*args, stdin=None):
    p = subprocess.run([sys.executable, "-m", "verify", *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def inproc(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def one_object(out):
    """stdout holds exactly one JSON object, valid against the output schema."""
    obj = json.loads(out)
    assert isinstance(obj, dict) and out.strip().count("\n") == 0, out
    errors = sorted(VALIDATOR.iter_errors(obj), key=lambda e: e.path)
    assert not errors, (obj, [e.message for e in errors])
    return obj


BAD = [  # (argv, exit code, words the one-line message must contain)
    (["grad", "lambda x: x**1000000000000", "--at", "3"], 2, "exceeds the limit |n| <= 100000"),
    (["grad", "lambda x: x**100000000000000000000", "--at", "3"], 2, "exceeds the limit"),
    (["eval", "lambda x: (2**100000)**100 * x", "--at", "3"], 2, "more than the limit 10000000"),
    (["eval", "lambda x: (x**100000)**100", "--at", "3"], 2, "more than the limit 10000000"),
    (["eval", "lambda x: x * 1e100000000", "--at", "3"], 2, "exceeds the limit of 10000 digits"),
    (["eval", "lambda x: x", "--at", "1e100000000"], 2, "exceeds the limit of 10000 digits"),
    (["index-set", "lambda x: relu(x)", "--at", "0", "--cap", "-1"], 2, "--cap"),
    (["index-set", "lambda x: relu(x)", "--at", "0", "--cap", "0"], 2, "--cap=0 must be at least 1"),
    (["critical", "lambda x: relu(x)", "--at", "0", "--max-leaves", "x"], 2, "--max-leaves"),
    (["grad", "nosuch.py", "--at", "1"], 2, "no program file 'nosuch.py'"),
    (["grad", "lambda x: x", "--at", "1", "--prec", "100000000"], 2, "--prec"),
    (["segment", "lambda x: relu(x)", "--from", "0", "--to", "1", "--tol", "5000"], 2, "--tol"),
    (["critical", "lambda x: relu(x)", "--at", "0", "--certificate", "/nonexistent-folder/c.json"], 2,
     "does not exist"),
    (["fuzz", "--replay", "/"], 2, "is not a reproducer"),
    (["grad", "lambda x: x", "--at"], 2, "expected one argument"),
    (["grad", "--nonsense"], 2, "see verify grad --help"),
    (["frobnicate"], 2, "invalid choice"),
    (["check"], 2, "required"),
]


@pytest.mark.parametrize("argv, code, words", BAD, ids=[" ".join(a)[:50] for a, _, _ in BAD])
def test_every_bad_input_is_one_line_and_exit_2(argv, code, words, capsys):
    rc, out, err = inproc(capsys, *argv)
    assert rc == code and words in err and err.count("\n") == 1 and "Traceback" not in err and out == "", (rc, err)
    rc, out, err = inproc(capsys, *argv, "--json")
    obj = one_object(out)
    assert rc == code and obj["verdict"] == "ERROR" and words in obj["reason"]


def test_measured_crashes_are_answers_now(tmp_path, capsys):
    # a series division over a wide cell (was: internal error)
    rc, out, err = inproc(capsys, "segment", "lambda x: relu(x) + tanh(100*x)", "--from", "0", "--to", "3", "--json")
    assert rc in (0, 3) and one_object(out)["command"] == "segment"
    # mpmath intervals (was: internal error on printing)
    rc, out, err = inproc(capsys, "eval", "lambda x: relu(x)", "--at", "1/3", "--number", "interval")
    assert rc == 0 and "value     [0.333" in out
    rc, out, err = inproc(capsys, "grad", "lambda x: exp(x) + relu(x)", "--at", "1/3", "--number", "interval", "--json")
    obj = one_object(out)
    assert rc == 0 and obj["gradient"][0]["lo"].startswith("2.39")
    # 500 terms in one expression (was: RecursionError)
    rc, out, err = inproc(capsys, "grad", "lambda x: " + " + ".join(["x"] * 500), "--at", "1", "--json")
    assert rc == 0 and one_object(out)["gradient"] == ["500"]
    # binary files, as a program and as a certificate (was: UnicodeDecodeError)
    binary = tmp_path / "b.prog"
    binary.write_bytes(bytes(range(256)) * 4)
    rc, out, err = inproc(capsys, "grad", str(binary), "--at", "1")
    assert rc == 2 and "not UTF-8 text" in err and err.count("\n") == 1
    rc, out, err = inproc(capsys, "check", str(binary))
    assert rc == 2 and "not UTF-8 text" in err and err.count("\n") == 1


def test_fuzz_without_hypothesis_is_a_clear_error():
    code = ("import sys; sys.modules['hypothesis'] = None; from verify.cli import main; "
            "sys.exit(main(['fuzz', '--examples', '1']))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "needs the hypothesis package" in p.stderr and p.stderr.count("\n") == 1


def test_output_into_a_closed_pipe_is_quiet():
    p = subprocess.Popen([sys.executable, "-m", "verify", "index-set", "lambda a, b, c, d, e: sort(a, b, c, d, e)",
                          "--at", "1,1,1,1,1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()                                      # like `| head` exiting at once
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and err == "", err


def test_check_reports_every_file(tmp_path, capsys):
    good = tmp_path / "good.json"
    assert main(["index-set", "lambda x: relu(x)", "--at", "0", "--certificate", str(good)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    forged = tmp_path / "forged.json"
    cert = json.loads(good.read_text())
    cert["verdict"] = "UNDECIDED"
    from verify.certificates import sign
    forged.write_text(json.dumps(sign(cert)))
    capsys.readouterr()
    rc, out, err = inproc(capsys, "check", str(good), str(bad), str(forged))
    assert rc == 2 and f"{good}: valid" in out
    assert f"{bad}: ERROR" in err and f"{forged}: INVALID" in err and err.count("\n") == 2
    rc, out, err = inproc(capsys, "check", str(good), str(bad), str(forged), "--json")
    obj = one_object(out)
    assert [obj["files"][str(f)]["verdict"] for f in (good, bad, forged)] == ["PROVED", "ERROR", "REFUTED"]
    rc, out, err = inproc(capsys, "check", str(good), str(forged))
    assert rc == 1


OUTCOMES = [  # one run per command and outcome: stdout is one object valid against the schema
    (["eval", "lambda x, y: max(x, y)", "--at", "1,1"], 0),
    (["eval", "lambda x: exp(x)", "--at", "1/3", "--number", "float32"], 0),
    (["eval", "lambda x: exp(x)", "--at", "1000", "--number", "float16"], 0),
    (["eval", "lambda x: exp(x)", "--at", "1e10000", "--number", "float"], 0),
    (["eval", "lambda x: exp(x)", "--at", "1e10000"], 3),            # an infinite enclosure certifies nothing
    (["grad", "lambda x, y: (x * y, relu(x))", "--at", "2,3", "--number", "ball"], 0),
    (["grad", "lambda t: relu(log(exp(t)) - t)", "--at", "1/3"], 3),
    (["grad", "lambda x: log(x)", "--at", "-1"], 2),
    (["grad", "lambda x, y: max(x, y) + relu(x - y)", "--at", "1,1", "--certify-differentiable"], 3),
    (["grad", "lambda x, y: max(x, y) + relu(x - y)", "--at", "1,2", "--certify-differentiable"], 0),
    (["index-set", "lambda a, b: sort(a, b)", "--at", "1,1", "--global"], 0),
    (["critical", "lambda t: t - (relu(-t) + t - relu(t))", "--at", "0"], 0),
    (["critical", "lambda x, y: relu(x*x - y*y*y)", "--at", "0,0"], 3),     # relu(x*x) is decided (issue 9)
    (["critical", "lambda t: where(t > 0, 1, 0) + t", "--at", "0"], 2),
    (["spurious", "lambda x: x * x", "--at", "1", "--shift", "2"], 0),
    (["segment", "lambda x: relu(x*x - 1/2)", "--from", "0", "--to", "1"], 0),
    (["segment", "lambda t: relu((exp(t) - 2)**2)", "--from", "0", "--to", "1"], 3),
    (["integral", "lambda t: where(t > 1/2, 1, 0)", "--from", "0", "--to", "1"], 1),
    (["integral", "lambda t: relu(exp(t) - 2)", "--from", "0", "--to", "1"], 0),
    (["check", "/nonexistent.json"], 2),
    (["reproduce", "nosuch"], 2),
]


@pytest.mark.parametrize("argv, code", OUTCOMES, ids=[" ".join(a)[:60] for a, _ in OUTCOMES])
def test_json_is_one_object_for_every_outcome(argv, code, capsys):
    rc, out, err = inproc(capsys, *argv, "--json")
    obj = one_object(out)
    assert rc == code and obj["command"] == argv[0]
    assert obj["verdict"] in {0: ("PROVED", "UNVERIFIED"), 1: ("REFUTED",), 2: ("ERROR",), 3: ("UNDECIDED",)}[rc]
    assert ("reason" in obj) == (obj["verdict"] != "PROVED")
    assert (obj["verdict"] == "UNVERIFIED") == ("--number" in argv and argv[argv.index("--number") + 1] not in
                                                ("exact", "ball", "interval"))


def test_numbers_carry_the_precision_of_their_ball(capsys):
    for prec, digits in ((128, 38), (400, 120)):
        rc, out, _ = inproc(capsys, "eval", "lambda x: exp(x)", "--at", "1", "--number", "ball", "--prec", str(prec),
                            "--json")
        lo = one_object(out)["value"][0]["lo"]
        assert len(lo) - 2 >= digits, (prec, lo)
        rc, out, _ = inproc(capsys, "eval", "lambda x: exp(x)", "--at", "1", "--number", "ball", "--prec", str(prec))
        assert lo in out                                  # the human output prints the same bounds


def _flags(parser):
    return {s for a in parser._actions for s in a.option_strings}


def _subparsers():
    ap = build_parser()
    sub = next(a for a in ap._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices


def test_help_names_only_flags_the_command_has_and_version(capsys):
    for name, p in _subparsers().items():
        text = p.format_help()
        named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))
        assert named <= _flags(p) | {"--help"}, (name, named - _flags(p))
        assert "exit codes" in text, name
    rc, out, _ = inproc(capsys, "--version")
    assert rc == 0 and re.match(r"verify \d+\.\d+", out)
    rc, out, _ = inproc(capsys, "reproduce", "--help")
    assert rc == 0 and "figure1" in out and "section5" in out


ERRORS = [["critical", "lambda a, b, c, d, e: max(a, b, c, d, e)", "--at", "1,1,1,1,1", "--cap", "7"],
          ["index-set", "lambda a, b, c, d: sort(a, b, c, d)", "--at", "1,2,3,4", "--global", "--max-patterns", "5"],
          ["segment", "lambda x: x", "--from", "0"], ["grad", "lambda x: x", "--at", "1", "--certificate", "c.json"]]


@pytest.mark.parametrize("argv", ERRORS, ids=[a[0] for a in ERRORS])
def test_error_messages_name_flags_the_command_has(argv, capsys):
    rc, out, err = inproc(capsys, *argv)
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", err))
    assert rc == 2 and named and named <= _flags(_subparsers()[argv[0]]), (err, named)


def test_progress_goes_to_a_terminal_only(monkeypatch, capsys):
    from verify import progress
    progress.enable(True)                   # stderr is captured here, not a terminal: nothing is shown
    progress.report("something", 1, 2)
    assert capsys.readouterr().err == ""

    class TTY:
        def __init__(self):
            self.text = ""

        def isatty(self):
            return True

        def write(self, s):
            self.text += s

        def flush(self):
            pass
    tty = TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    progress.enable(True)
    progress._state["last"] = 0.0
    progress.report("global index set: patterns tried", 5, 10)
    progress.clear()
    progress.enable(False)
    assert "patterns tried 5/10" in tty.text and tty.text.endswith("\r")


def test_docs_document_the_json_contract_and_exit_codes():
    page = open(os.path.join(os.path.dirname(__file__), "..", "docs", "cli.md"), encoding="utf-8").read()
    for words in ("output.schema.json", '"verdict"', "ERROR", "exit code", "141"):
        assert words in page, words


TENSOR = "def f(x: [3], w: [3]):\n    return sum(relu(x * w) + max(x, 1/2), axes=(0,))\n"
TENSOR_OUTCOMES = [
    (["eval", "P", "--at", "0,2,-1,1,1,1"], 0),
    (["grad", "P", "--at", "0,2,-1,1,1,1"], 0),
    (["grad", "P", "--at", "0,2,-1,1,1,1", "--number", "ball", "--certify-differentiable"], 3),
    (["grad", "P", "--at", "1,2,-1,1,1,1", "--certify-differentiable"], 0),
    (["index-set", "P", "--at", "1/2,2,-1,1,1,1"], 0),
    (["critical", "P", "--at", "0,0,0,1,1,1"], 0),
    (["critical", "P", "--at", "0,0,0,0,0,0"], 3),
    (["segment", "P", "--from", "0,0,0,1,1,1", "--to", "1,1,1,1,1,1"], 0),
    (["integral", "P", "--from", "0,0,0,1,1,1", "--to", "1,1,1,1,1,1"], 0),
    (["grad", "P", "--at", "1,2"], 2),
    (["index-set", "P", "--at", "1,2,3,1,1,1", "--global"], 2),
]


@pytest.mark.parametrize("argv, code", TENSOR_OUTCOMES, ids=[" ".join(a)[:60] for a, _ in TENSOR_OUTCOMES])
def test_tensor_programs_keep_the_json_contract(argv, code, tmp_path, capsys):
    prog = tmp_path / "p.prog"
    prog.write_text(TENSOR)
    argv = [str(prog) if a == "P" else a for a in argv]
    rc, out, err = inproc(capsys, *argv, "--json")
    obj = one_object(out)
    assert rc == code and obj["command"] == argv[0]
    if rc == 0 and argv[0] in ("eval", "grad", "index-set", "critical"):
        assert obj["tensor"] is True


def test_tensor_points_from_npz(tmp_path, capsys):
    import numpy as np
    prog = tmp_path / "p.prog"
    prog.write_text(TENSOR)
    np.savez(tmp_path / "pt.npz", x=np.array([0.5, 2.0, -1.0]), w=np.array([1.0, 0.0, 1.0]))
    rc, out, err = inproc(capsys, "grad", str(prog), "--at", str(tmp_path / "pt.npz"), "--json")
    obj = one_object(out)
    assert rc == 0 and obj["gradient"] == {"x": ["3/2", "1", "0"], "w": ["1/2", "0", "0"]}   # max ties at 1/2
    np.savez(tmp_path / "bad.npz", x=np.array([0.5, 2.0, -1.0]))
    rc, out, err = inproc(capsys, "grad", str(prog), "--at", str(tmp_path / "bad.npz"))
    assert rc == 2 and "missing w" in err
