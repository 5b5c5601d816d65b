"""The tamper suite (tests/tamper.py): every single change of every sample certificate, re-signed, is
rejected, except the few listed acceptances (another valid witness, a true certificate of a changed claim).
A sample by default; every mutation with HYPOTHESIS_PROFILE=campaign or TAMPER=full."""
import os

import pytest

import tamper

FULL = os.environ.get("HYPOTHESIS_PROFILE") == "campaign" or os.environ.get("TAMPER") == "full"
CERTS = tamper.sample_certificates()


@pytest.mark.parametrize("kind", sorted(CERTS))
def test_every_mutation_is_rejected_or_an_allowed_witness(kind, capsys):
    counts, failures = tamper.run({kind: CERTS[kind]}, sample=None if FULL else 12, seed=sum(map(ord, kind)))
    with capsys.disabled():
        print(f"\n{tamper.table(counts)}")
    assert not failures, "\n".join(failures)
    c = counts[kind]
    assert c["tried"] >= 12 * len(CERTS[kind]) or FULL
    assert c["rejected"] + sum(c["allowed"].values()) == c["tried"]
    assert sum(c["allowed"].values()) <= c["tried"] // 8          # the allowed list stays small


def test_every_kind_has_samples_and_every_verdict_is_swapped():
    from verify.certificates import KINDS
    assert set(CERTS) == set(KINDS)
    for kind, lst in CERTS.items():
        ops = {op for c in lst for _, op, _, _ in tamper.mutations(c)}
        assert any(op.startswith("verdict") for op in ops) and "add a key" in ops and "delete the key" in ops, kind


def test_an_index_set_re_signed_as_refuted_is_rejected():
    """The measured hole: an index-set certificate with its verdict changed to REFUTED and re-signed."""
    from verify.certificates import sign
    from verify.checker import Invalid, check
    cert = dict(CERTS["index_set"][0], verdict="REFUTED")
    with pytest.raises(Invalid):
        check(sign(cert), tamper.SIDE)


def test_unknown_keys_are_named():
    from verify.certificates import sign
    from verify.checker import Invalid, check
    for kind, lst in CERTS.items():
        cert = dict(lst[0], result=dict(lst[0]["result"], extra="gradient is [7, 7]"))
        with pytest.raises(Invalid, match="unknown key 'extra' at result"):
            check(sign(cert), tamper.SIDE)


@pytest.mark.parametrize("kind", ["differentiable", "segment", "integral", "critical", "index_set", "tensor_index_set",
                                  "tensor_differentiable", "tensor_critical"])
def test_prec_is_validated_per_kind(kind):
    """The measured holes: null -> 0 and 128 -> 127 passed for differentiable, segment and integral
    certificates.  prec is null exactly when nothing is a ball, else the precision the checker re-derives at."""
    from verify.certificates import sign
    from verify.checker import Invalid, check
    for cert in CERTS[kind]:
        p = cert["prec"]
        check(cert, tamper.SIDE)
        for bad in ([0, 128] if p is None else [None, 0, p - 1, p + 1, 127]):
            with pytest.raises((Invalid, __import__("verify").InputError), match="prec|schema"):
                check(sign(dict(cert, prec=bad)), tamper.SIDE)


def test_a_changed_side_file_is_rejected_through_its_digest(capsys):
    """Every array of every side file of the tensor certificates (the program's weights, the point, the
    claimed site lists and gradients): one element changed, the array deleted, an array added."""
    counts, failures = tamper.side_file_run({k: v for k, v in CERTS.items() if k.startswith("tensor_")})
    with capsys.disabled():
        print(f"\nside files: {counts['tried']} changes tried, {counts['rejected']} rejected")
    assert not failures, "\n".join(failures)
    assert counts["tried"] == counts["rejected"] > 100


def test_forged_side_files_are_rejected(capsys):
    """A forger changes a point or result file and states its new name and digest, consistently, re-signed:
    the checker re-derives the claim at the point and every list, so only a true certificate of a changed
    point (exactly what the certifier writes there) is accepted."""
    counts, failures = tamper.forged_side_file_run({k: v for k, v in CERTS.items() if k.startswith("tensor_")})
    with capsys.disabled():
        print(f"\nforged side files: {counts['tried']} tried, {counts['rejected']} rejected, {counts['allowed']} "
              "true certificates of a changed point")
    assert not failures, "\n".join(failures)
    assert counts["rejected"] + counts["allowed"] == counts["tried"] > 100 and counts["allowed"] <= counts["tried"] // 8


def _keys(o, path=()):
    if isinstance(o, dict):
        for k, v in o.items():
            yield path + (k,)
            yield from _keys(v, path + (k,))
    elif isinstance(o, list):
        for v in o:
            yield from _keys(v, path)


def test_the_samples_carry_every_kind_of_exact_evidence():
    """Issue 21: every evidence field for a decision beyond values is in some sample certificate, so the
    mutations above forge each of them (and each forgery is rejected)."""
    seen = {p[-1] for lst in CERTS.values() for c in lst for p in _keys(c["evidence"])}
    cells = {p[-2:] for lst in CERTS.values() for c in lst for p in _keys(c["evidence"])
             if p[:1] == ("cells",) or p[:1] == ("points",)}
    assert {"form", "multiple", "monotone", "rational", "germ", "end", "order", "num", "den", "of", "factor",
            "at_x", "agree", "outputs", "degenerate", "identity", "generic", "empty", "lowest", "den_sign",
            "degree", "kind"} <= seen, seen
    assert ("cells", "exact") in cells and ("points", "exact") in cells
    tensor = {p[-1] for c in CERTS["tensor_critical"] for p in _keys(c["evidence"])}
    assert {"degenerate", "generic", "variables", "germ", "lowest", "undecided"} <= tensor, tensor
