"""A property over the command line itself: hypothesis draws argv (commands, flags with good and bad values,
valid, random and hostile program text, random bytes, points, file paths); no draw gives exit 4, a
traceback, or a run beyond a time bound; an error is one line on stderr; with --json stdout is exactly one
JSON object valid against verify/commands/output.schema.json.  Quick under the default profile, longer under
HYPOTHESIS_PROFILE=campaign.  The counts of exit codes are printed."""
import contextlib
import io
import json
import os
import signal
import threading
from collections import Counter
from importlib import resources

import jsonschema
from hypothesis import HealthCheck, given, settings, strategies as st

from verify.cli import main

SCHEMA = json.loads(resources.files("verify.commands").joinpath("output.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
CAMPAIGN = os.environ.get("HYPOTHESIS_PROFILE") == "campaign"
BOUND = 120 if CAMPAIGN else 60          # seconds: a run beyond this is a hang

GOOD = ["lambda x: relu(x)", "lambda x, y: max(x, y) + relu(x - y)", "lambda t: t - (relu(-t) + t - relu(t))",
        "lambda x: abs(x) * exp(x)", "lambda a, b, c: sort(a, b, c)", "lambda x: leaky_relu(x, slope=1)",
        "lambda t: where(t > 1/2, 1, 0)", "lambda x: relu(x*x - 1/2)", "lambda x: log(x)", "lambda x: 1 / x",
        "lambda x, y: clamp(x, lo=0, hi=1) + hardtanh(y)", "lambda x: relu(log(exp(x)) - x)",
        "def f(x):\n    a = relu(x)\n    b = where(x >= a, x, a)\n    return relu(x)\n",
        "lambda x: " + " + ".join(["x"] * 300), "lambda x: x ** 7 - relu(x) ** 2", "lambda x: exp(exp(x)) - relu(x)",
        "lambda x: relu(sin(1000000 * x))", "lambda x: sqrt(1 + x * x) * tanh(x)"]
HOSTILE = ["", " ", "lambda", "lambda x:", "def", "def f(x):\n    return", "x + 1", "nosuch.py", "/", ".",
           "lambda x: x ** 10000000000000", "lambda x: x * 1e999999999", "lambda x: (" * 400 + "x" + ")" * 400,
           "lambda x: __import__('os').system('true')", "lambda x: x.__class__", "lambda x: [x]", "\x00",
           "lambda x: relu(x, alpha=nan)", "lambda x: max(x)", "lambda x: sort(x, x)[0]", "lambda *x: x",
           "def relu(x):\n    return x\n", "lambda x: where(x, 1, 0)", "lambda x: 1/0", "lambda x: x ** -1",
           "lambda x: relu(" * 300 + "x" + ")" * 300]
POINTS = ["0", "1", "-1", "1/3", "0.25", "1,2", "1,1,1", "-1/2,3", "", ",", "1,,2", "abc", "nan", "inf", "1/0",
          "1e99999999", "9" * 200, "0x10", "1_000", "--json", " 1 , 2 ", "1e10000", "-1e-9999", "1e308,1e-308"]
FLAGS = {
    "eval": [["--number", ["exact", "ball", "interval", "float", "float32", "float16", "decimal"]],
             ["--prec", ["2", "64", "300", "1", "0", "-5", "x", "99999999"]],
             ["--convention", ["torch", "jax", "tf", "x"]],
             ["--fn", ["f", "g"]]],
    "grad": [["--mode", ["forward", "backward", "sideways"]], ["--number", ["exact", "ball", "interval", "float16"]],
             ["--certify-differentiable", None], ["--certificate", ["CERT", "/nonexistent/c.json"]]],
    "index-set": [["--global", None], ["--cap", ["1", "3", "0", "-1", "x"]], ["--max-patterns", ["2", "0"]],
                  ["--certificate", ["CERT", "/nonexistent/c.json"]]],
    "critical": [["--global", None], ["--cap", ["2", "-1"]], ["--max-leaves", ["1", "0"]],
                 ["--certificate", ["CERT"]]],
    "spurious": [["--shift", ["1", "1,2", "x", ""]], ["--certificate", ["CERT"]]],
    "segment": [["--from", ["0", "-1", "x", ""]], ["--to", ["1", "2", "1,1"]], ["--curve", ["0; 1", "0,0; 1,0", ";"]],
                ["--tol", ["8", "60", "0", "5000"]], ["--method", ["auto", "exact", "ball", "x"]],
                ["--prec", ["128", "4096", "5000"]], ["--certificate", ["CERT"]]],
    "check": [], "fuzz": [["--examples", ["0", "-1", "x", "1"]], ["--claims", ["nosuch", "lemma1"]],
                          ["--workers", ["0", "1"]]],
    "reproduce": [["--out", ["OUT"]]],
}
FLAGS["integral"] = FLAGS["segment"]


SANE = {  # flags with values that make sense, for the draws that should reach the certifiers
    "eval": [["--number", ["exact", "ball", "interval", "float", "float32"]], ["--prec", ["64", "300"]],
             ["--convention", ["torch", "jax", "tf"]]],
    "grad": [["--mode", ["forward", "backward"]], ["--number", ["exact", "ball", "interval", "float16"]],
             ["--certify-differentiable", None], ["--convention", ["jax", "tf"]]],
    "index-set": [["--global", None], ["--cap", ["1", "3"]], ["--certificate", ["CERT"]]],
    "critical": [["--global", None], ["--certificate", ["CERT"]], ["--convention", ["jax", "tf"]]],
    "spurious": [["--certificate", ["CERT"]]],
    "segment": [["--tol", ["8", "30"]], ["--method", ["exact", "ball"]], ["--certificate", ["CERT"]]],
}
SANE["integral"] = SANE["segment"]
SMALL = ["0", "1", "-1", "1/2", "-1/3", "2", "1/10"]


def _arity(prog):
    import verify
    try:
        return verify.parse(prog).n_inputs
    except verify.VerifyError:
        return 1


@st.composite
def argvs(draw, tmp):
    """An argv: a command, a program (good, hostile, random text, or a file of random bytes), points and flags
    (sane, or anything), sometimes --json, sometimes an unknown flag."""
    cmd = draw(st.sampled_from(list(FLAGS) + ["frobnicate", "--version", "-h"]))
    sane = draw(st.integers(0, 9)) < 6 and cmd in SANE
    argv = [cmd]
    if cmd in ("eval", "grad", "index-set", "critical", "spurious", "segment", "integral"):
        kind = 0 if sane else draw(st.integers(0, 9))
        if kind < 5:
            prog = draw(st.sampled_from(GOOD))
        elif kind < 7:
            prog = draw(st.sampled_from(HOSTILE))
        elif kind < 8:
            prog = draw(st.text(max_size=40))
        else:
            path = os.path.join(tmp, f"p{draw(st.integers(0, 3))}.prog")
            with open(path, "wb") as f:
                f.write(draw(st.binary(max_size=200)))
            prog = path
        argv.append(prog)
        n = _arity(prog) if sane else draw(st.integers(1, 3))

        def point():
            return ",".join(draw(st.sampled_from(SMALL)) for _ in range(n)) if sane or draw(st.booleans()) else \
                draw(st.sampled_from(POINTS))
        if cmd in ("segment", "integral"):
            if sane or draw(st.booleans()):
                argv += ["--from", point(), "--to", point()]
        elif sane or draw(st.integers(0, 9)) > 0:
            argv += ["--at", point()]
        if cmd == "spurious" and (sane or draw(st.booleans())):
            argv += ["--shift", point()]
    elif cmd == "check":
        for _ in range(draw(st.integers(1, 3))):
            argv.append(draw(st.sampled_from([os.path.join(tmp, "cert.json"), os.path.join(tmp, "p0.prog"), "/",
                                              "nosuch.json", os.path.join(tmp, "junk.json")])))
    elif cmd == "fuzz":              # never a campaign: hypothesis cannot run inside this hypothesis test
        argv += ["--replay", draw(st.sampled_from(["/", os.path.join(tmp, "junk.json"), "nosuch"]))]
    elif cmd == "reproduce":
        argv.append(draw(st.sampled_from(["nosuch", "figure2", "--help"])))
    table = SANE.get(cmd, []) if sane else FLAGS.get(cmd, [])
    for flag, values in draw(st.lists(st.sampled_from(table or [["--json", None]]), max_size=3, unique_by=str)):
        argv.append(flag)
        if values is not None:
            v = draw(st.sampled_from(values))
            argv.append({"CERT": os.path.join(tmp, "cert.json"), "FILE": os.path.join(tmp, "junk.json"),
                         "OUT": os.path.join(tmp, "out")}.get(v, v))
    if draw(st.booleans()):
        argv.append("--json")
    if not sane and draw(st.integers(0, 9)) == 0:
        argv.append(draw(st.sampled_from(["--nonsense", "-x", "--at", "--json=1", "extra"])))
    return argv


class Hang(BaseException):
    """Raised by the alarm: not an Exception, so the command line cannot turn it into an exit code."""


@contextlib.contextmanager
def bound(seconds):
    def handler(signum, frame):
        f = frame
        while f is not None:                 # never inside acb.integral's Python callback (see fuzz.claims)
            if f.f_code.co_name == "acb_integral":
                signal.setitimer(signal.ITIMER_REAL, 0.05)
                return
            f = f.f_back
        raise Hang(f"the command ran longer than {seconds}s")
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


SLOW = []


def run_cli(argv):
    import time
    out, err = io.StringIO(), io.StringIO()
    t = time.perf_counter()
    with bound(BOUND), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    SLOW.append((time.perf_counter() - t, argv))
    return rc, out.getvalue(), err.getvalue()


def test_no_argv_crashes_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)                # fuzz and reproduce write into the working folder
    (tmp_path / "junk.json").write_text('{"format": "verify-certificate/2", "kind": "index_set"}')
    main(["index-set", "lambda x: relu(x)", "--at", "0", "--certificate", str(tmp_path / "cert.json")])
    capsys.readouterr()
    counts = Counter()

    @settings(max_examples=2000 if CAMPAIGN else 60, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(argvs(str(tmp_path)))
    def prop(argv):
        rc, out, err = run_cli(argv)
        counts[rc] += 1
        assert rc in (0, 1, 2, 3), (argv, rc, err)
        assert "Traceback" not in err and "internal error" not in err, (argv, err)
        lines = err.splitlines()
        if rc == 2 and argv[0] != "check":
            assert lines and lines[-1].startswith("verify: error: "), (argv, err)
            assert not any(line.startswith("verify: error: ") for line in lines[:-1]), (argv, err)
        if "--json" in argv:
            assert out.count("\n") == 1, (argv, out)
            obj = json.loads(out)
            errors = [e.message for e in VALIDATOR.iter_errors(obj)]
            assert not errors, (argv, obj, errors)
            assert obj["verdict"] in {0: ("PROVED", "UNVERIFIED"), 1: ("REFUTED",), 2: ("ERROR",),
                                      3: ("UNDECIDED",)}[rc], (argv, obj)
    prop()
    with capsys.disabled():
        print(f"\nCLI property: {sum(counts.values())} argv, exit codes {dict(sorted(counts.items()))}")
        for t, a in sorted(SLOW, key=lambda x: -x[0])[:8]:
            print(f"  {t:.2f}s {a}"[:200])
