"""Certificates: JSON documents that state a claim about a program and carry the evidence for it.

Every certificate has the same envelope (see ``schema.json``):

    {"format": "verify-certificate/1",
     "kind": "index_set" | "critical" | "segment" | "integral" | "spurious" | ...,
     "program": {"text": canonical .prog text with every kink param written out,
                 "source": the program as given, "fn": name},
     "claim": {... what is claimed: point, scope, ...},
     "verdict": "PROVED" | "REFUTED" | "UNDECIDED",
     "result": {... the certified objects ...},
     "evidence": {... what a checker needs to re-validate ...},
     "prec": bits used for balls (or null),
     "meta": {"versions": ..., "seconds": ...},     # the only part a checker ignores
     "digest": sha256 of the rest (any edit after writing is visible)}

Numbers are exact strings "p/q" or enclosures {"lo": "...", "hi": "..."} of decimal strings.  The program
text has the convention resolved (every param explicit); the checker re-resolves the source to confirm it.
``verify check`` (checker.py) re-validates a certificate without importing verify.certify.
"""
import json
import time
from importlib import resources

from ..errors import InputError
from ..program.ir import Eqn, Program, to_text, typecheck

FORMAT = "verify-certificate/1"


def resolved_program(program, convention):
    """``program`` with every equation's params written out as the convention resolves them."""
    from ..program.kinks import resolve
    from ..program.prims import PRIMITIVES
    eqns = []
    for e in program.eqns:
        full = resolve(e, convention)
        params = tuple(sorted((k, v) for k, v in full.items() if k in PRIMITIVES[e.prim].params))
        eqns.append(Eqn(e.prim, e.ins, params, e.outs, e.loc))
    return typecheck(Program(program.name, program.names, program.n_inputs, tuple(eqns), program.outputs))


def versions():
    import platform

    import flint
    import mpmath

    from ..version import __version__
    return {"verify": __version__, "python-flint": flint.__version__, "mpmath": mpmath.__version__,
            "python": platform.python_version()}


def make(kind, program, convention, claim, verdict, result, evidence, prec=None, started=None):
    """A certificate dict (see the module docstring).  ``program`` is a Program; its text is written with
    the convention resolved."""
    rp = resolved_program(program, convention)
    if prec is not None and not _has_balls(result) and not _has_balls(evidence):
        prec = None            # every number is exact: precision played no part
    meta = {"versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if started is not None:
        meta["seconds"] = round(time.perf_counter() - started, 6)
    cert = {"format": FORMAT, "kind": kind,
            "program": {"text": to_text(rp), "source": to_text(program), "fn": rp.name},
            "claim": {**claim, "convention": convention}, "verdict": verdict, "result": result,
            "evidence": evidence, "prec": prec, "meta": meta}
    return sign(cert)


def digest(cert):
    """sha256 of the canonical JSON of everything but ``meta`` and ``digest``."""
    import hashlib
    body = {k: v for k, v in cert.items() if k not in ("meta", "digest")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sign(cert):
    """Set ``cert["digest"]``: a record of exactly what was certified.  Witnesses (directions, weights,
    separators) are not unique, so the digest is what makes any later edit visible; the checker still
    re-validates every claim and witness on its own."""
    cert = dict(cert)
    cert["digest"] = digest(cert)
    return cert


def _has_balls(o):
    if isinstance(o, dict):
        return ("lo" in o and "hi" in o) or any(_has_balls(v) for v in o.values())
    return isinstance(o, list) and any(_has_balls(v) for v in o)


def schema():
    return json.loads(resources.files(__package__).joinpath("schema.json").read_text())


def validate_schema(cert):
    """Raise InputError naming the first schema violation."""
    import jsonschema
    try:
        jsonschema.validate(cert, schema())
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise InputError(f"certificate does not match the schema at {where}: {e.message}") from None


def write(cert, path):
    """Validate against the schema, then write ``cert`` as JSON to ``path``."""
    validate_schema(cert)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cert, f, indent=1, sort_keys=True)
        f.write("\n")


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise InputError(f"cannot read certificate {path!r}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"certificate {path!r} is not JSON: line {e.lineno}:{e.colno}: {e.msg}") from None
