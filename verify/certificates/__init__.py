"""Certificates: JSON documents that state a claim about a program and carry the evidence for it.

Every certificate has the same envelope (see ``schema.json``):

    {"format": "verify-certificate/1",
     "kind": "index_set" | "critical" | "segment" | "integral" | "spurious" | ...,
     "program": {"text": canonical .prog text with every kink param written out, "fn": name},
     "claim": {... what is claimed: point, scope, ...},
     "verdict": "PROVED" | "REFUTED" | "UNDECIDED",
     "result": {... the certified objects ...},
     "evidence": {... what a checker needs to re-validate ...},
     "prec": bits used for balls (or null),
     "meta": {"versions": ..., "seconds": ...}}     # the only part a checker ignores

Numbers are exact strings "p/q" or enclosures {"lo": "...", "hi": "..."} of decimal strings.  The program
text has the convention resolved (every param explicit), so a checker needs no convention table.
``verify check`` (checker.py) re-validates a certificate without importing verify.certify.
"""
import json
import time
from importlib import resources

from ..errors import InputError
from ..ir import Eqn, Program, to_text, typecheck

FORMAT = "verify-certificate/1"


def resolved_program(program, convention):
    """``program`` with every equation's params written out as the convention resolves them."""
    from ..kinks import resolve
    from ..prims import PRIMITIVES
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

    from .. import __version__
    return {"verify": __version__, "python-flint": flint.__version__, "mpmath": mpmath.__version__,
            "python": platform.python_version()}


def make(kind, program, convention, claim, verdict, result, evidence, prec=None, started=None):
    """A certificate dict (see the module docstring).  ``program`` is a Program; its text is written with
    the convention resolved."""
    rp = resolved_program(program, convention)
    meta = {"versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if started is not None:
        meta["seconds"] = round(time.perf_counter() - started, 6)
    return {"format": FORMAT, "kind": kind, "program": {"text": to_text(rp), "fn": rp.name},
            "claim": {**claim, "convention": convention}, "verdict": verdict, "result": result,
            "evidence": evidence, "prec": prec, "meta": meta}


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
