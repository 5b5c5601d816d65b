"""Certificates: JSON documents that state a claim about a program and carry the evidence for it.

Every certificate has the same envelope (``schema.json``, closed at every level: an unknown key is an error):

    {"format": "verify-certificate/2",
     "kind": "index_set" | "critical" | "spurious" | "segment" | "integral" | "differentiable" |
             "tensor_index_set" | "tensor_differentiable" | "tensor_critical" | "tensor_segment" |
             "tensor_integral",
     "program": {"text": canonical .prog text with every kink param written out,
                 "source": the program as given, "fn": name},
     "claim": {... what is claimed about: point, scope, curve, tol, convention ...},
     "verdict": "PROVED" | "REFUTED" | "UNDECIDED",
     "result": {... the certified objects: the checker re-derives all of it and compares ...},
     "evidence": {... what the checker needs, and nothing it does not check ...},
     "prec": precision of the balls (null when the kind has none, see below),
     "meta": {"versions": ..., "created": ..., "seconds": ...},     # the only part a checker ignores
     "digest": sha256 of the rest (any edit after writing is visible)}

Numbers are exact strings "p/q" or enclosures {"lo": "...", "hi": "..."} of decimal strings.  ``prec`` per
kind: index_set and spurious certificates hold no balls (null; the checker decides signs with its own
precision ladder); critical and differentiable: null exactly when every number is exact, else the power of
two at which the certifier computed the balls (the checker recomputes them there: a stated ball must contain
the checker's own and be about as wide); segment and integral: null for the exact method, else the precision
at which the checker starts re-evaluating every cell and cell end, a power of two from max(128, tol + 64)
(where the certifier starts) to 4096 (4096 when a cluster is left: clusters are certified at the cap).  The
checker raises it along its own ladder wherever its rounding needs more, so by definition every value in that
range proves the same cells: editing it within the range is harmless (it changes the checker's work, never
what is proved), outside it is rejected; tensor_index_set and tensor_differentiable: null unless the result
states a ball (the value beside a gradient), then its precision; tensor_critical, tensor_segment and
tensor_integral: null (exact).
``verify check`` (verify/checker/) re-validates a certificate without importing verify.certify.

Certificates of tensor programs (kinds tensor_*) keep their arrays in .npz side files beside the JSON file,
each named and hashed in it (the program's arrays file in its text; ``claim.point``, ``claim.from``,
``claim.to`` and ``result.arrays`` as {"file", "digest"}): see verify/certify/certs_tensor.py for the format.
A local index set of any size is the product of per-equation (scalar: ``evidence.candidates``) or per-site
(tensor: the ``multi`` rows) lists of agreeing pieces, with ``count`` its size; a scalar certificate lists
its first ``cap`` patterns (``capped``) in that product's order.
"""
import json
import time
from importlib import resources

from ..errors import InputError
from ..program.ir import Eqn, Program, to_text, typecheck

FORMAT = "verify-certificate/2"
KINDS = ("index_set", "critical", "spurious", "segment", "integral", "differentiable", "tensor_index_set",
         "tensor_differentiable", "tensor_critical", "tensor_segment", "tensor_integral")


def resolved_program(program, convention):
    """``program`` with every equation's params written out as the convention resolves them."""
    from ..program.kinks import resolve
    from ..program.prims import PRIMITIVES
    eqns = []
    for e in program.eqns:
        full = resolve(e, convention)
        params = tuple(sorted((k, v) for k, v in full.items() if k in PRIMITIVES[e.prim].params))
        eqns.append(Eqn(e.prim, e.ins, params, e.outs, e.loc))
    return typecheck(Program(program.name, program.names, program.n_inputs, tuple(eqns), program.outputs,
                             program.input_shapes, program.arrays))


def versions():
    import platform

    import flint
    import mpmath

    from ..version import __version__
    return {"verify": __version__, "python-flint": flint.__version__, "mpmath": mpmath.__version__,
            "python": platform.python_version()}


def make(kind, program, convention, claim, verdict, result, evidence, prec=None, started=None):
    """A certificate dict (see the module docstring).  ``program`` is a Program; its text is written with
    the convention resolved.  ``prec`` is stored as given: each certifier states the precision its kind
    means (see the module docstring)."""
    rp = resolved_program(program, convention)
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
    """Set ``cert["digest"]``: a record of exactly what was certified.  The digest makes any later edit
    visible; the checker still re-derives every claim from the evidence on its own."""
    cert = dict(cert)
    cert["digest"] = digest(cert)
    return cert


def has_balls(o):
    """True when the JSON value ``o`` holds an enclosure {"lo", "hi"} somewhere."""
    if isinstance(o, dict):
        return ("lo" in o and "hi" in o and isinstance(o["lo"], str)) or any(has_balls(v) for v in o.values())
    return isinstance(o, list) and any(has_balls(v) for v in o)


_SCHEMA = None
_INLINE = ("index", "exact", "decimal", "convention", "exact_vector", "pattern", "ball", "number")


def _inlined(node, defs):
    """The schema with references to the small leaf definitions replaced by their content (the same schema;
    jsonschema resolves a $ref per array item otherwise, which dominates checking a large certificate)."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if len(node) == 1 and ref.startswith("#/$defs/") and ref[8:] in _INLINE:
            return _inlined(defs[ref[8:]], defs)
        return {k: _inlined(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inlined(v, defs) for v in node]
    return node


def schema():
    """The certificate schema (schema.json), with leaf definitions inlined for speed."""
    global _SCHEMA
    if _SCHEMA is None:
        raw = json.loads(resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8"))
        _SCHEMA = _inlined(raw, raw["$defs"])
    return _SCHEMA


def schema_error(doc, sch, what="certificate"):
    """None when ``doc`` matches the JSON Schema ``sch``, else one line naming the place and the problem (an
    unknown key is named as such)."""
    import jsonschema
    cls = jsonschema.validators.validator_for(sch)
    err = jsonschema.exceptions.best_match(cls(sch).iter_errors(doc))
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path) or "the top level"
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        import re
        known = set(err.schema.get("properties", {}))
        pats = [re.compile(p) for p in err.schema.get("patternProperties", {})]
        extra = sorted(k for k in err.instance if k not in known and not any(p.search(k) for p in pats))
        if extra:
            return f"{what}: unknown key {extra[0]!r} at {where}"
    if err.validator == "propertyNames":
        return f"{what}: unknown key {err.instance!r} at {where}"
    if err.validator == "required":
        return f"{what}: {err.message} at {where}"
    return f"{what} does not match the schema at {where}: {err.message[:300]}"


def validate_schema(cert):
    """Raise InputError naming the first schema violation (an unknown key by name)."""
    msg = schema_error(cert, schema())
    if msg is not None:
        raise InputError(msg)


def check_writable(path):
    """Fail early, before any work, when ``path`` cannot be written: InputError naming the folder."""
    import os
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise InputError(f"cannot write {path!r}: it is a folder")
    if not os.path.isdir(folder):
        raise InputError(f"cannot write {path!r}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {path!r}: the folder {folder!r} is not writable")


def write(cert, path):
    """Validate against the schema, then write ``cert`` as JSON to ``path`` (InputError when it cannot)."""
    validate_schema(cert)
    check_writable(path)
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cert, f, indent=1, sort_keys=True)
            f.write("\n")
    except OSError as e:
        raise InputError(f"cannot write {path!r}: {e.strerror}") from None


MAX_BYTES = 256 * 2 ** 20


def load(path):
    """The JSON object in the file ``path``; InputError (one line) when it cannot be read, is not UTF-8 text,
    is larger than MAX_BYTES or is not JSON."""
    import os
    try:
        if os.path.isdir(path):
            raise InputError(f"cannot read certificate {path!r}: it is a folder")
        if os.path.getsize(path) > MAX_BYTES:
            raise InputError(f"certificate {path!r} is larger than the limit of {MAX_BYTES} bytes")
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise InputError(f"cannot read certificate {path!r}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"certificate {path!r} is not UTF-8 text (a binary file?)") from None
    except json.JSONDecodeError as e:
        raise InputError(f"certificate {path!r} is not JSON: line {e.lineno}:{e.colno}: {e.msg}") from None
    except RecursionError:
        raise InputError(f"certificate {path!r} is nested too deeply to be a certificate") from None
