"""Certificates for segment partitions, integral identities and differentiability points: valid ones pass the
independent checker, and every single-field change is rejected (as written, by the digest; re-signed, by the
checker's own re-derivation)."""
import copy
import json

import pytest

import verify
from verify.certificates import sign
from verify.checker import Invalid, check
from verify.certify.differentiable import certify_differentiable, differentiable_certificate
from verify.certify.integral import integral_certificate, integral_identity
from verify.certify.segment import segment_certificate, segment_partition
from verify.cli import main


SEGMENTS = [("lambda t: relu(t - 1/3) - relu(t - 2/3)", "0", "1", None),             # exact, rational
            ("lambda x: relu(x*x - 1/2)", "0", "1", None),                             # exact, algebraic
            ("lambda x, y: max(x, y, 0) + abs(x - 2*y)", "-1,1", "2,-1/2", None),
            ("lambda x, y: relu(x*y - 1/4)", None, None, "0,0; 1,0; 0,1"),             # a curve
            ("lambda t: relu(exp(t) - 2) + relu(t - 1/2)", "0", "1", None),            # ball: simple + exact
            ("lambda t: relu((exp(t) - 2)**2)", "0", "1", None)]                       # ball: a cluster
INTEGRALS = SEGMENTS[:5] + [("lambda t: where(t > 1/2, 1, 0)", "0", "1", None),      # REFUTED, exact
                            ("lambda t: where(exp(t) > 2, 1, 0)", "0", "1", None),     # REFUTED in a cell
                            ("lambda t: 1 / where(t > 1/2, t - 1/2, 1)", "0", "1", None),  # a pole: no rhs
                            ("lambda t: relu(t) / (1 + t*t)", "-1", "1", None)]        # acb.integral, exact ends
POINTS = [("lambda x, y: max(x, y) + relu(x - y) + x * y", "1,2"),
          ("lambda x, y: max(x, y) + relu(x - y)", "1,1"),
          ("lambda t: relu(exp(t) - 2) + t", "1"),
          ("lambda t: relu(log(exp(t)) - t)", "1/3")]


def _certs():
    out = []
    for src, a, b, c in SEGMENTS:
        out.append(segment_certificate(segment_partition(verify.parse(src), a, b, c)))
    for src, a, b, c in INTEGRALS:
        out.append(integral_certificate(integral_identity(verify.parse(src), a, b, c)))
    for src, pt in POINTS:
        out.append(differentiable_certificate(certify_differentiable(verify.parse(src), pt)))
    return [json.loads(json.dumps(c)) for c in out]


CERTS = _certs()
IDS = [f"{c['kind']}-{c['verdict']}-{i}" for i, c in enumerate(CERTS)]


@pytest.mark.parametrize("cert", CERTS, ids=IDS)
def test_certificates_are_valid(cert):
    check(cert)


def test_verdicts_are_the_expected_ones():
    assert [c["verdict"] for c in CERTS] == ["PROVED"] * 5 + ["UNDECIDED"] + ["PROVED"] * 5 + ["REFUTED"] * 3 + \
        ["PROVED", "PROVED", "UNDECIDED", "PROVED", "UNDECIDED"]


def test_cli_certificates_and_check(tmp_path, capsys):
    seg, integ = tmp_path / "s.json", tmp_path / "i.json"
    assert main(["segment", "lambda x: relu(x*x - 1/2)", "--from", "0", "--to", "1", "--certificate", str(seg)]) == 0
    assert main(["integral", "lambda t: where(t > 1/2, 1, 0)", "--from", "0", "--to", "1",
                 "--certificate", str(integ)]) == 1
    assert main(["check", str(seg), str(integ)]) == 0
    bad = json.loads(integ.read_text())
    bad["result"]["discontinuity"]["t"] = "1/3"
    integ.write_text(json.dumps(sign(bad)))
    assert main(["check", str(integ)]) == 1
    assert "INVALID" in capsys.readouterr().err


def test_the_checker_never_imports_the_certifiers(tmp_path):
    import subprocess
    import sys
    paths = []
    for k, c in enumerate(CERTS):
        p = tmp_path / f"c{k}.json"
        p.write_text(json.dumps(c))
        paths.append(str(p))
    code = ("import sys; from verify.cli import main; rc = main(['check'] + %r); "
            "bad = [m for m in sys.modules if m.startswith('verify.certify')]; "
            "print(rc, bad)" % paths)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300).stdout.split("\n")
    assert out[-2] == "0 []", out
    import ast
    import verify.checker.segment as cs        # and its own imports avoid the certifiers' code
    tree = ast.parse(open(cs.__file__).read())
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in mods if m and (m.lstrip(".").split(".")[0] in ("certify", "interpret")
                                          or m.lstrip(".").startswith("program.prims"))}


def test_ball_segment_certificates_carry_what_the_checker_needs(tmp_path):
    """The ball method's certificate checks with the command line alone: the cells, their signs and the
    precision are in it, and the checker needs no search (abs(cos(x)) crosses its kink twice on [-2, 3])."""
    path = tmp_path / "s.json"
    assert main(["segment", "lambda x: abs(cos(x))", "--from=-2", "--to=3", "--certificate", str(path)]) == 0
    assert main(["check", str(path)]) == 0
    cert = json.loads(path.read_text())
    assert cert["prec"] == 128 and [c["kind"] for c in cert["evidence"]["cells"]].count("simple") == 2


def test_a_jump_by_a_rational_amount_under_transcendental_values_is_refuted():
    """where(t > 1/2, exp(t), exp(t) + 1/10^40) jumps by exactly 10^-40 at 1/2: balls cannot see it at 128
    bits, exact affine forms over atoms (exp(t) is one atom on both sides) decide it."""
    res = integral_identity(verify.parse("lambda t: where(t > 1/2, exp(t), exp(t) + 1/10**40)"), "0", "1")
    assert res.verdict is verify.Verdict.REFUTED and res.discontinuity["t"] == "1/2"
    cert = json.loads(json.dumps(integral_certificate(res)))
    check(cert)
    bad = copy.deepcopy(cert)        # the same certificate claiming PROVED: the checker finds the jump itself
    bad["verdict"] = bad["result"]["verdict"] = "PROVED"
    del bad["result"]["discontinuity"], bad["result"]["reason"]
    with pytest.raises(Invalid, match="verdict|discontinuity"):
        check(sign(bad))
    res = integral_identity(verify.parse("lambda t: where(t > 1/2, exp(t), exp(t) + 0)"), "0", "1")
    assert res.verdict is verify.Verdict.PROVED
