"""Index sets, conservative fields, Clarke, critical points and Theorem 1, with certificates the independent
checker re-validates; a tamper suite shows that every single-field change is rejected."""
import copy
import json

import pytest
from flint import fmpq
from hypothesis import given, strategies as st

import verify
from verify.certificates import sign
from verify.checker import Invalid, check
from verify.certify import clarke, conservative_field, critical, index_set, spurious
from verify.certify.certs import critical_certificate, index_certificate, spurious_certificate
from verify.cli import main

from helpers import json_paths
from verify.strategies import points, programs
from verify.truth import FALSE, TRUE, UNKNOWN

Q = fmpq
ZERO = "lambda t: t - (relu(-t) + t - relu(t))"


def as_set(grads):
    return sorted(tuple(tuple(r) for r in g) for g in grads)


def test_relu_at_zero_field_equals_clarke():
    f, c = conservative_field("lambda t: relu(t)", [0]), clarke("lambda t: relu(t)", [0])
    assert as_set(f.gradients) == as_set(c.gradients) == [((0,),), ((1,),)]
    assert f.exact and c.exact and c.piecewise_linear


def test_sort_at_a_tie_field_is_the_permutation_matrices_and_equals_clarke():
    x = [2, 2, 1]
    f, c = conservative_field("lambda a, b, c: sort(a, b, c)", x), clarke("lambda a, b, c: sort(a, b, c)", x)
    perms = [((0, 0, 1), (1, 0, 0), (0, 1, 0)), ((0, 0, 1), (0, 1, 0), (1, 0, 0))]   # P x = F(x) = (1, 2, 2)
    assert as_set(f.gradients) == as_set(c.gradients) == sorted(perms)
    f = conservative_field("lambda a, b, c: sort(a, b, c)", [1, 1, 1])
    assert len(f.gradients) == 6 and len(clarke("lambda a, b, c: sort(a, b, c)", [1, 1, 1]).gradients) == 6


def test_t_minus_zero_is_an_artificial_critical_point():
    c = critical(ZERO, [0])
    assert c.selection.truth is TRUE and c.clarke_critical.truth is FALSE and c.artificial is TRUE
    assert sorted(g[0] for g in c.field) == [0, 1, 2] and c.clarke == [[1]]
    assert c.selection.weights is not None and c.clarke_critical.separator == [1]


def test_abs_sum_at_zero_is_clarke_critical_and_max_at_a_tie_is_not_critical():
    c = critical("lambda x, y: abs(x) + abs(y)", [0, 0])
    assert c.clarke_critical.truth is TRUE and c.selection.truth is TRUE and c.artificial is FALSE
    assert as_set([[g] for g in c.clarke]) == as_set([[[a, b]] for a in (-1, 1) for b in (-1, 1)])
    m = critical("lambda x, y: max(x, y)", [1, 1])
    assert m.selection.truth is FALSE and m.clarke_critical.truth is FALSE and m.artificial is FALSE


def test_a_tie_balls_cannot_decide_is_undecided_never_wrong():
    with pytest.raises(verify.Undecided, match="cannot decide"):
        index_set("lambda t: relu(log(exp(t)) - t)", ["1/3"])
    with pytest.raises(verify.Undecided):
        critical("lambda t: relu(log(exp(t)) - t)", ["1/3"])
    c = critical("lambda x: relu(sin(x) * sin(x))", [0])   # second-order terms of a non-polynomial cone
    assert c.clarke_critical.truth is UNKNOWN and c.artificial is UNKNOWN and "higher-order" in c.clarke_error
    c = critical("lambda x, y: relu(x * x - y * y * y)", [0, 0])   # lowest-order part x^2 does not decide
    assert c.clarke_critical.truth is UNKNOWN and c.artificial is UNKNOWN and "no direction" in c.clarke_error


def test_nonlinear_clarke_through_independent_gradients():
    c = clarke("lambda x, y: relu(x * y)", [1, 0])
    assert not c.piecewise_linear and as_set(c.gradients) == [((0, 0),), ((0, 1),)]
    assert critical("lambda x: exp(x) - relu(x)", [0]).clarke_critical.truth is TRUE


def test_global_contains_local_on_the_paper_example():
    loc, glo = index_set(ZERO, [0]), index_set(ZERO, [0], scope="global")
    assert set(loc.patterns) <= set(glo.patterns)
    with pytest.raises(verify.InputError, match="more than the limit"):
        index_set("lambda a, b, c, d: sort(a, b, c, d) ", [1, 2, 3, 4], scope="global", max_patterns=10)


def test_caps_are_reported():
    s = index_set("lambda a, b, c, d, e: sort(a, b, c, d, e)", [1, 1, 1, 1, 1], cap=7)
    assert s.count == 120 and len(s.patterns) == 7 and s.capped
    with pytest.raises(verify.InputError, match="cap"):
        conservative_field("lambda a, b, c, d, e: sort(a, b, c, d, e)", [1, 1, 1, 1, 1], cap=7)


def test_theorem1_spurious_shift():
    Q2, ev = spurious("lambda x, y: x * y + relu(x)", [0, "1/2"], [3, "-1/4"])
    assert verify.grad(Q2, [0, "1/2"]).gradient == [Q(1, 2) + 3, 0 - Q(1, 4)]
    for pt in (["1/3", "1/2"], ["-1", "5"], [0, 0]):
        assert verify.evaluate(Q2, pt).values == verify.evaluate("lambda x, y: x * y + relu(x)", pt).values
    assert verify.grad(Q2, ["1/3", "1/7"]).gradient == [Q(1, 7) + 1, Q(1, 3)]
    for conv in ("jax", "tf"):
        assert verify.grad(Q2, [0, "1/2"], convention=conv).gradient == \
            [v + s for v, s in zip(verify.grad("lambda x, y: x * y + relu(x)", [0, "1/2"], convention=conv).gradient,
                                   [3, Q(-1, 4)])]


SMALL_PL = programs(n_inputs=2, max_eqns=5, rational_only=True,
                    primitives=("add", "sub", "neg", "relu", "abs", "max", "min", "sort", "clamp", "leaky_relu"))


@given(st.data())
def test_global_contains_local_and_field_gradients_are_ad_outputs(data):
    P = data.draw(programs(n_inputs=2, max_eqns=4, rational_only=True))
    x = data.draw(points(P))
    loc = index_set(P, x)
    assert loc.chosen in loc.patterns                     # the pattern AD uses is in I(x)
    try:
        glo = index_set(P, x, scope="global", max_patterns=512)
    except verify.InputError:
        glo = None
    if glo is not None:
        assert set(loc.patterns) <= set(glo.patterns)
    f = conservative_field(P, x)
    for g, pats in zip(f.gradients, f.patterns_of):
        for p in pats:
            assert verify.grad(P, x, pattern=p).jacobian == g


@given(st.data())
def test_clarke_generators_are_among_the_field_and_checked(data):
    P = data.draw(SMALL_PL)
    x = data.draw(points(P))
    if P.n_outputs != 1:
        return
    f, c = conservative_field(P, x), clarke(P, x)
    assert {repr(g) for g in c.gradients} <= {repr(g) for g in f.gradients}
    assert all(set(map(tuple, [leaf.pattern])) <= set(f.index.patterns) for leaf in c.leaves)
    cert = critical_certificate(critical(P, x))
    check(json.loads(json.dumps(cert)))


# ------------------------------------------------------------------------------------------- certificates

def _certs():
    out = [index_certificate(index_set("lambda t: relu(t)", [0])),
           index_certificate(index_set(ZERO, [0], scope="global")),
           index_certificate(index_set("lambda a, b, c: sort(a, b, c, descending=True)", [2, 1, 2],
                                       convention="jax")),
           critical_certificate(critical(ZERO, [0])),
           critical_certificate(critical("lambda x, y: abs(x) + abs(y)", [0, 0])),
           critical_certificate(critical("lambda x, y: max(x, y) + relu(x - y, alpha=1/2)", [1, 1],
                                         convention="tf")),
           critical_certificate(critical("lambda x, y: relu(x * y) - y", [1, 0])),
           critical_certificate(critical("lambda x, y: exp(x) * y + relu(y)", ["1/3", 0]))]
    P = verify.parse("lambda x: x * x + relu(x)")
    Q2, ev = spurious(P, ["1/2"], ["5/3"])
    out.append(spurious_certificate(P, Q2, ev, "torch"))
    return [json.loads(json.dumps(c)) for c in out]


CERTS = _certs()


@pytest.mark.parametrize("cert", CERTS, ids=[f"{c['kind']}-{i}" for i, c in enumerate(CERTS)])
def test_certificates_are_valid(cert):
    check(cert)


def _mutants(cert):
    for path, what in json_paths(cert):
        parent = cert
        for p in path[:-1]:
            parent = parent[p]
        key, val = path[-1], parent[path[-1]]
        changes = []
        if what == "list":
            changes = [val[:-1], val + [val[0]]]
        elif isinstance(val, bool):
            changes = [not val, None]
        elif val is None:
            changes = [True, False]
        elif isinstance(val, int):
            changes = [val + 1, val - 1]
        elif isinstance(val, str):
            if val and (val[0].isdigit() or val[0] == "-"):
                f = verify.rational.to_fmpq(val) if "e" not in val else None
                changes = [str(f + 1) if f is not None else val + "1", val + "1"]
            else:
                changes = [val + "x", val.replace("relu", "abs") if "relu" in val else val[::-1]]
        for ch in changes:
            m = copy.deepcopy(cert)
            target = m
            for p in path[:-1]:
                target = target[p]
            if target[key] == ch:
                continue
            target[key] = ch
            yield path, ch, m


WITNESSES = ("direction", "separator", "weights", "gordan")


@pytest.mark.parametrize("cert", CERTS, ids=[f"{c['kind']}-{i}" for i, c in enumerate(CERTS)])
def test_tamper_every_field_is_rejected(cert):
    """Every single-field change is rejected: as written (the digest), and re-signed, by the semantic checks,
    except a change of a witness (another direction / separator / weights can be just as valid) or a
    last-digit widening of a ball bound (the checker accepts enclosures up to ~4x its own width)."""
    n = 0
    for path, ch, m in _mutants(cert):
        n += 1
        with pytest.raises((Invalid, verify.InputError)):
            check(m)
            pytest.fail(f"accepted a certificate with {'/'.join(map(str, path))} changed to {ch!r}")
        if path[0] == "digest":
            continue
        tolerated = any(w in path for w in WITNESSES) or (path[-1] in ("lo", "hi") and isinstance(ch, str)
                                                          and "/" not in ch and len(ch) > 40)
        try:
            check(sign(m))
        except (Invalid, verify.InputError):
            continue
        assert tolerated, f"semantic checks accept {'/'.join(map(str, path))} changed to {ch!r}"
    assert n > 20


def test_cli_index_set_and_critical_json_and_check(tmp_path, capsys):
    cert = tmp_path / "c.json"
    assert main(["critical", ZERO, "--at", "0", "--json", "--certificate", str(cert)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["selection_critical"] is True and out["clarke_critical"] is False and out["artificial"] is True
    assert out["clarke"] == [["1"]] and sorted(out["field"]) == [["0"], ["1"], ["2"]]
    assert main(["check", str(cert)]) == 0
    bad = json.loads(cert.read_text())
    bad["result"]["artificial"] = False
    cert.write_text(json.dumps(bad))
    assert main(["check", str(cert)]) == 1
    capsys.readouterr()
    assert main(["index-set", "lambda a, b: sort(a, b)", "--at", "1,1", "--json", "--global"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["patterns"] == [[0], [1]]
    assert sorted(out["field"]) == [[["0", "1"], ["1", "0"]], [["1", "0"], ["0", "1"]]]
    assert main(["critical", "lambda t: relu(log(exp(t)) - t)", "--at", "1/3"]) == 3
    assert main(["critical", "lambda x: relu(x*x)", "--at", "0", "--json"]) == 0      # decided by x^2 >= 0
    out = json.loads(capsys.readouterr().out)
    assert out["clarke"] == [["0"]] and out["clarke_critical"] is True and out["artificial"] is False
    assert main(["critical", "lambda x, y: relu(x*x - y*y*y)", "--at", "0,0", "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["artificial"] is None
    assert main(["check", str(tmp_path / "missing.json")]) == 2


def test_the_checker_never_imports_the_certifiers(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "c.json"
    path.write_text(json.dumps(CERTS[3]))
    code = ("import sys, json; from verify.cli import main; rc = main(['check', %r]); "
            "bad = [m for m in sys.modules if m.startswith('verify.certify')]; "
            "print(rc, bad)" % str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.split("\n")
    assert out[-2] == "0 []", out


def test_a_tie_on_one_variable_twice_is_certified_in_balls():
    P = verify.parse("def f(v, w):\n    u = exp(v) * w\n    return max(u, u) + relu(w)\n")
    c = critical(P, ["1/3", 0])
    assert c.clarke_critical.truth is FALSE
    cert = json.loads(json.dumps(critical_certificate(c)))
    check(cert)


def test_a_jump_has_no_clarke_subdifferential():
    with pytest.raises(verify.DomainError, match="not continuous"):
        clarke("lambda t: where(t > 0, 1, 0) + t", [0])
    assert main(["critical", "lambda t: where(t > 0, 1, 0) + t", "--at", "0"]) == 2


def test_farkas_separator_and_weights_from_one_simplex_run():
    from verify.certify.lp import check_direction, check_weights, separate_or_weights, solution_or_farkas
    V = [[Q(1), Q(2)], [Q(3), Q(1)], [Q(2), Q(5)]]
    kind, w = separate_or_weights(V)
    assert kind == "separator" and check_direction(V, w)
    kind, lam = separate_or_weights(V + [[Q(-2), Q(-3)]])
    assert kind == "weights" and check_weights(V + [[Q(-2), Q(-3)]], lam)
    kind, y = solution_or_farkas([[Q(1), Q(1)], [Q(1), Q(-1)]], [Q(-1), Q(0)])   # x >= 0 cannot sum to -1
    assert kind == "y" and y[0] * -1 + y[1] * 0 > 0 and all(y[0] * a + y[1] * b <= 0 for a, b in [(1, 1), (1, -1)])
