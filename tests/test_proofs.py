"""Every committed certificate under proofs/ is valid, and a fresh regeneration certifies the same claims
(same digest: the digest covers everything but the metadata)."""
import json
import pathlib

import pytest

from verify.checker import check
from verify.cli import main
from verify.reproduce import proposition2, section5, theorem3

ROOT = pathlib.Path(__file__).resolve().parent.parent / "proofs"
DATA = {"results.json"}            # the reproductions' machine-readable tables, not certificates
CERTS = sorted(p for p in ROOT.glob("**/*.json") if p.name not in DATA)


def test_there_are_committed_certificates():
    assert len(CERTS) >= 5
    for entry in ("section5", "proposition2", "theorem3", "theorem4"):
        assert any(entry in p.parts for p in CERTS), entry


@pytest.mark.parametrize("path", CERTS, ids=[f"{p.parent.name}/{p.name}" for p in CERTS])
def test_committed_certificate_is_valid(path):
    check(json.loads(path.read_text()))
    assert main(["check", str(path)]) == 0


def _same_digests(fresh_dir, entry, names):
    for name in names:
        fresh = json.loads((fresh_dir / name).read_text())
        committed = json.loads((ROOT / entry / name).read_text())
        assert fresh["digest"] == committed["digest"], f"{entry}/{name}"


def _committed_certificates(entry):
    return sorted(p.name for p in (ROOT / entry).glob("*.json") if p.name not in DATA)


def test_regeneration_reproduces_the_committed_certificates(tmp_path):
    res = section5.run(str(tmp_path))
    assert res["ok"] and all(r["verdict"] == "PROVED" for r in res["rows"])
    _same_digests(tmp_path, "section5", [f"{n}.json" for n in res["certificates"]])
    assert (tmp_path / "theorem1.prog").read_text() == (ROOT / "section5" / "theorem1.prog").read_text()


@pytest.mark.parametrize("module", [proposition2, theorem3], ids=["proposition2", "theorem3"])
def test_regeneration_of_segment_entries(tmp_path, module):
    entry = module.__name__.rsplit(".", 1)[1]
    res = module.run(str(tmp_path))
    assert res["ok"] and all(r["verdict"] == "PROVED" for r in res["rows"])
    # exactly the committed certificates, with the same digests, and the same programs
    assert sorted(res["certificates"]) == _committed_certificates(entry)
    _same_digests(tmp_path, entry, res["certificates"])
    for prog in (ROOT / entry).glob("*.prog"):
        assert (tmp_path / prog.name).read_text() == prog.read_text(), prog.name
    for fig in res["figures"]:
        assert pathlib.Path(fig).stat().st_size > 10_000


def test_proposition2_verdicts_in_the_committed_certificates():
    d = ROOT / "proposition2"
    for p in d.glob("*.integral.json"):
        cert = json.loads(p.read_text())
        want = "REFUTED" if p.name.startswith("jump.") else "PROVED"
        assert cert["verdict"] == want, p.name
        if want == "REFUTED":
            assert cert["result"]["discontinuity"]["t"] == "1/3"
    net = json.loads((d / "network.segment.json").read_text())
    bps = net["result"]["breakpoints"]
    assert net["verdict"] == "PROVED" and len(bps) >= 10
    assert any(isinstance(b, dict) for b in bps) and any(isinstance(b, str) and "/" in b for b in bps)


def test_packaged_programs_are_the_committed_copies():
    import importlib.resources
    for entry in ("proposition2", "theorem3"):
        packaged = importlib.resources.files("verify.reproduce").joinpath(f"{entry}.prog").read_text()
        assert packaged == (ROOT / entry / "programs.prog").read_text(), entry
