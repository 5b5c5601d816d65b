"""The tamper suite: for every certificate kind, mutate every leaf, delete every key, add a key at every
level and swap every verdict, re-sign each mutant (recompute the digest the way verify.certificates does)
and require the checker to reject it.  The only acceptances allowed are listed in ALLOWED, each with its
reason (another equally valid witness); everything else accepted is a failure.  Certificates of tensor
programs keep their arrays in .npz side files (written to SIDE): ``side_file_run`` changes one element of
every array of every side file, deletes every array and adds one, and requires rejection through the digest.

    python tests/tamper.py            # every mutation of every sample certificate, and the counts per kind
    python tests/tamper.py --sample 40

tests/test_tamper.py runs a sample of the mutations (all of them with HYPOTHESIS_PROFILE=campaign or
TAMPER=full).
"""
import copy
import json
import os
import random
import sys
import tempfile
from collections import Counter, defaultdict
from fractions import Fraction

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import verify  # noqa: E402
from verify.certificates import sign  # noqa: E402
from verify.checker import Invalid, check  # noqa: E402

VERDICTS = ("PROVED", "REFUTED", "UNDECIDED")
ZERO = "lambda t: t - (relu(-t) + t - relu(t))"
SIDE = tempfile.mkdtemp(prefix="verify-tamper-")      # the side files of the tensor certificates
SAME_EXP = "lambda t: max(exp(t), exp(t))"
DEPENDENT = ("def f(x0, x1):\n    v1 = relu(x1)\n    v2 = abs(x1)\n    v3 = abs(v1, at_zero=-1)\n    v4 = abs(v3)\n"
             "    v5 = relu(x1)\n    v6 = v2 * v2\n    return 1 * v4 + 2 * v5 + 5 * v6\n")
TENSOR_DEPENDENT = ("def f(x: [2]):\n    a = relu(x)\n    b = abs(x)\n    c = abs(a, at_zero=-1)\n    d = abs(c)\n"
                    "    e = relu(x)\n    g = b * b\n    return sum(d + 2 * e + 5 * g, axes=(0,))\n")
TENSOR_JUMP = "def g(x: [3]):\n    return sum(where(x > 0, x, x - 1), axes=(0,))\n"
TENSOR_ZERO = "def f(x: [2]):\n    a = relu(-x)\n    b = relu(x)\n    return sum(x - (a + x - b), axes=(0,))\n"


# ------------------------------------------------------------------------------------- the samples

def sample_certificates():
    """A few certificates of every kind, chosen to exercise every part of the format: local and global
    scope, caps, undecided parts, ball numbers, Clarke trees with Gordan certificates, exact and ball
    partitions (simple cells, clusters), algebraic breakpoints, curves, REFUTED integrals, and every kind of
    exact evidence (forms, multiples, monotone ends, rational functions and germs on cells; forms at points
    and at x, agreements, outputs; identities, lowest-order parts and empty sides in Clarke trees)."""
    from verify.certify import critical, index_set, spurious
    from verify.certify.certs import critical_certificate, index_certificate, spurious_certificate
    from verify.certify.differentiable import certify_differentiable, differentiable_certificate
    from verify.certify.integral import integral_certificate, integral_identity
    from verify.certify.segment import segment_certificate, segment_partition
    P = verify.parse
    out = {
        "index_set": [
            index_certificate(index_set("lambda t: relu(t)", [0])),
            index_certificate(index_set(ZERO, [0], scope="global")),
            index_certificate(index_set("lambda a, b, c: sort(a, b, c, descending=True)", [2, 1, 2], convention="jax")),
            index_certificate(index_set("lambda a, b, c, d: max(a, b, c, d)", [1, 1, 1, 0], cap=3)),
            index_certificate(index_set("lambda t: relu(t - 1) * (log(exp(t)) - t)", ["1/3"], scope="global")),
            index_certificate(index_set(SAME_EXP, ["1/3"])),                       # at_x, agree: exact forms
            index_certificate(index_set(SAME_EXP, ["1/3"], scope="global")),       # outputs
        ],
        "critical": [
            critical_certificate(critical(ZERO, [0])),
            critical_certificate(critical("lambda x, y: abs(x) + abs(y)", [0, 0])),
            critical_certificate(critical("lambda x, y: max(x, y) + relu(x - y, alpha=1/2)", [1, 1], convention="tf")),
            critical_certificate(critical("lambda x, y: relu(x * y) - y", [1, 0])),
            critical_certificate(critical("lambda x, y: exp(x) * y + relu(y)", ["1/3", 0])),
            critical_certificate(critical("lambda x: relu(x * x)", [0])),
            critical_certificate(critical("lambda a, b: max(a, b) - min(a, b)", [1, 1], scope="global")),
            critical_certificate(critical("lambda x, y: relu(x) + 0*where(x >= relu(x), y, relu(x))", [0, 2])),
            critical_certificate(critical("lambda t: relu(tanh(t) - tanh(t)) + t", ["1/3"])),      # identity
            critical_certificate(critical("lambda x: relu((x+1)*(x+1) - x*x - 2*x - 1) + x", [0])),  # germ: zero
            critical_certificate(critical("lambda x, y: relu(x * y) + x", [0, 0])),   # germ: higher, a direction
            critical_certificate(critical("lambda x: relu(x) + relu(x + x * x)", [0])),   # one input: empty sides
            critical_certificate(critical(DEPENDENT, [0, 0], convention="jax")),     # Gordan beside x1 * x1
        ],
        "spurious": [],
        "segment": [
            segment_certificate(segment_partition(P("lambda t: relu(t - 1/3) - relu(t - 2/3)"), "0", "1")),
            segment_certificate(segment_partition(P("lambda x: relu(x*x - 1/2)"), "0", "1")),
            segment_certificate(segment_partition(P("lambda x, y: max(x, y, 0) + abs(x - 2*y)"), "-1,1", "2,-1/2")),
            segment_certificate(segment_partition(P("lambda x, y: relu(x*y - 1/4)"), curve="0,0; 1,0; 0,1")),
            segment_certificate(segment_partition(P("lambda t: relu(exp(t) - 2) + relu(t - 1/2)"), "0", "1")),
            segment_certificate(segment_partition(P("lambda t: relu((exp(t) - 2)**2)"), "0", "1")),
            segment_certificate(segment_partition(P("lambda x, y: max(x, x, sin(y))"), "-1,0", "0,-1")),
            segment_certificate(segment_partition(P("lambda x: min(tanh(x), 1/2) + max(tanh(x), 1/2)"), "-2", "1")),
            segment_certificate(segment_partition(P("lambda x: min(cos(x), cos(x) * x, cos(x)) + relu6(x)"), "0", "2")),
            segment_certificate(segment_partition(P("lambda x: min(cos(x*x*x), cos(abs(x)))"), "0", "1")),
            segment_certificate(segment_partition(P("lambda x0, x1: min(x0, clamp(x0, lo=0, hi=1)) + cos(x1)"),
                                                  "-2,0", "1/2,1")),
        ],
        "integral": [
            integral_certificate(integral_identity(P("lambda t: relu(t - 1/3) - relu(t - 2/3)"), "0", "1")),
            integral_certificate(integral_identity(P("lambda x: relu(x*x - 1/2)"), "0", "1")),
            integral_certificate(integral_identity(P("lambda t: relu(exp(t) - 2) + relu(t - 1/2)"), "0", "1")),
            integral_certificate(integral_identity(P("lambda t: where(t > 1/2, 1, 0)"), "0", "1")),
            integral_certificate(integral_identity(P("lambda t: where(exp(t) > 2, 1, 0)"), "0", "1")),
            integral_certificate(integral_identity(P("lambda t: 1 / where(t > 1/2, t - 1/2, 1)"), "0", "1")),
            integral_certificate(integral_identity(P("lambda t: where(t > 1/2, exp(t), exp(t) + 1/10**40)"), "0", "1")),
            integral_certificate(integral_identity(P("lambda x: max(exp(clamp(x, lo=0, hi=1)), cos(tanh(x)))"), "-1",
                                                   "0")),
            integral_certificate(integral_identity(P("lambda x: max(cos(x), relu(cos(x)))"), "1", "3")),
        ],
        "differentiable": [
            differentiable_certificate(certify_differentiable(P("lambda x, y: max(x, y) + relu(x - y) + x*y"), "1,2")),
            differentiable_certificate(certify_differentiable(P("lambda x, y: max(x, y) + relu(x - y)"), "1,1")),
            differentiable_certificate(certify_differentiable(P("lambda t: relu(exp(t) - 2) + t"), "1")),
            differentiable_certificate(certify_differentiable(P("lambda t: relu(log(exp(t)) - t)"), "1/3")),
        ],
    }
    out.update(tensor_certificates())
    prog = P("lambda x: x * x + relu(x)")
    Q, ev = spurious(prog, ["1/2"], ["5/3"])
    out["spurious"].append(spurious_certificate(prog, Q, ev, "torch"))
    prog = P("lambda x, y: max(x, y) * exp(y)")
    Q, ev = spurious(prog, [0, "1/3"], [1, 0], convention="jax")
    out["spurious"].append(spurious_certificate(prog, Q, ev, "jax"))
    return {k: [json.loads(json.dumps(c)) for c in v] for k, v in out.items()}


def tensor_certificates():
    """Sample certificates of the tensor kinds, their side files written to SIDE: multi sites and kinks, exact
    and bounded gradients with exact and ball values, PROVED and UNDECIDED differentiability, critical points
    of piecewise-linear programs (Gordan certificates, directions), of a network with a softmax loss (tied
    gradients independent, ball gradients, a separator), degenerate ties decided through their elementwise cones
    (relu(x * x) at 0, a generic sign; relu(|x|^2 - x^2), zero) and an undecided Clarke part (relu(x * y) at 0)."""
    import numpy as np

    from verify.certify.certs_tensor import (tensor_critical_certificate, tensor_differentiable_certificate,
                                             tensor_index_certificate, tensor_integral_certificate,
                                             tensor_segment_certificate)
    P = verify.parse
    mlp = P("def m(x: [2], w: [2, 2]):\n    h = relu(dot(w, x))\n    return logsumexp(h, axes=(0,))\n")
    mx = [np.array([1, -1]), np.array([[1, 1], [2, 1]])]
    layer = P("def l(x: [2], w: [2, 2]):\n    h = relu(dot(w, x))\n    return sum(h - 1/2, axes=(0,))\n")
    pool = P("def p(x: [1, 1, 2, 4]):\n    y = max_pool2d(relu(x), kernel=(2, 2))\n"
             "    return sum(y * y, axes=(0, 1, 2, 3))\n")
    px = [np.array([[[[0, -1, 2, 2], [-1, -1, 0, 1]]]])]
    clamp = P("def c(x: [3]):\n    return sum(clamp(x, lo=-1/2, hi=1), axes=(0,))\n")
    cx = [np.array(["-1/2", "1/3", "1"], dtype=object)]
    sq = P("def s(x: [1]):\n    return sum(relu(x * x), axes=(0,))\n")
    tz = P(TENSOR_ZERO)
    certs = {
        "tensor_index_set": [
            tensor_index_certificate(pool, px),
            tensor_index_certificate(mlp, mx, gradient=True),
            tensor_index_certificate(clamp, cx, "jax", gradient=True),
        ],
        "tensor_differentiable": [
            tensor_differentiable_certificate(pool, px, gradient=True),
            tensor_differentiable_certificate(mlp, [np.array([1, 2]), mx[1]], gradient=True),
            tensor_differentiable_certificate(tz, [np.array([1, -1])]),
        ],
        "tensor_critical": [
            tensor_critical_certificate(tz, [np.array([0, 0])]),
            tensor_critical_certificate(mlp, mx),
            tensor_critical_certificate(sq, [np.array([0])]),
            tensor_critical_certificate(P("def z(x: [2]):\n    return sum(relu(abs(x) * abs(x) - x * x) + x, "
                                          "axes=(0,))\n"), [np.array([0, 1])]),
            tensor_critical_certificate(P("def u(x: [1], y: [1]):\n    return sum(relu(x * y) + x, axes=(0,))\n"),
                                        [np.array([0]), np.array([0])]),
            tensor_critical_certificate(clamp, cx, "tf"),
            tensor_critical_certificate(P(TENSOR_DEPENDENT), [np.array([0, 0])], "jax"),   # Gordan beside b * b
        ],
        "tensor_segment": [tensor_segment_certificate(verify.segment_partition(layer, mx, [np.array([-1, 2]), mx[1]]))],
        "tensor_integral": [
            tensor_integral_certificate(verify.integral_identity(layer, mx, [np.array([-1, 2]), mx[1]])),
            tensor_integral_certificate(verify.integral_identity(P(TENSOR_JUMP), [np.array([-1, -1, 2])],
                                                                 [np.array([1, 1, 3])])),
        ],
    }
    for kind, lst in certs.items():
        for i, tc in enumerate(lst):
            tc.write(os.path.join(SIDE, f"{kind}-{i}.json"))
    return {kind: [tc.cert for tc in lst] for kind, lst in certs.items()}


def _side_refs(cert):
    """((part, role), {"file", "digest"}) of the side files a tensor certificate names in its JSON."""
    out = []
    for part, role in (("claim", "point"), ("claim", "from"), ("claim", "to"), ("result", "arrays")):
        if role in cert[part]:
            out.append(((part, role), cert[part][role]))
    return out


def side_file_run(certs):
    """Every change of every array of every side file of the tensor certificates (one element changed, the
    array deleted, an array added), the JSON unchanged: each must be rejected (the digests).  Returns
    ({"tried", "rejected"}, failures)."""
    import numpy as np

    from verify.program.arrays import read_npz, save_entries
    counts, failures = {"tried": 0, "rejected": 0}, []
    for kind, lst in certs.items():
        for cert in lst:
            if not kind.startswith("tensor_"):
                continue
            names = [ref["file"] for _, ref in _side_refs(cert)]
            if "arrays(" in cert["program"]["source"]:
                names.append(verify.parse(cert["program"]["source"], base=SIDE).arrays.file)
            for name in names:
                path = os.path.join(SIDE, name)
                raw = read_npz(path)
                changes = [("add", "extra", None)]
                for key, a in raw.items():
                    changes.append(("delete", key, None))
                    if a.size:
                        changes.append(("element", key, a))
                for op, key, a in changes:
                    m = dict(raw)
                    if op == "add":
                        m[key] = np.zeros(1)
                    elif op == "delete":
                        del m[key]
                    else:
                        b = np.array(a, copy=True).ravel()
                        b[0] = b[0] + 1 if b.dtype.kind in "fiu" else str(int(b[0]) + 1)
                        m[key] = b.reshape(a.shape)
                    save_entries(path, m)
                    counts["tried"] += 1
                    try:
                        check(cert, SIDE)
                        failures.append(f"{kind} {name} {op} {key}: accepted")
                    except (Invalid, verify.InputError):
                        counts["rejected"] += 1
                    finally:
                        save_entries(path, raw)
            check(cert, SIDE)
    return counts, failures


def forged_side_file_run(certs):
    """Forgeries: every change of ``side_file_run`` to the point and result files, written as a new side file
    whose name and digest the JSON then states, re-signed: the certificate claims something else, consistently,
    and the checker must re-derive that it is false (or that the changed claim holds: a changed point whose
    certificate is exactly what the certifier writes there).  Returns ({"tried", "rejected", "allowed"},
    failures)."""
    import numpy as np

    from verify.program.arrays import read_npz, save_entries, stored_digest
    counts, failures = {"tried": 0, "rejected": 0, "allowed": 0}, []
    for kind, lst in certs.items():
        if not kind.startswith("tensor_"):
            continue
        for n, cert in enumerate(lst):
            for (part, role), _ in _side_refs(cert):
                raw = read_npz(os.path.join(SIDE, cert[part][role]["file"]))
                changes = [("add", "extra")] + [(op, k) for k in raw for op in ("delete", "element", "drop row")]
                for op, key in changes:
                    m = dict(raw)
                    if op == "add":
                        m[key] = np.zeros((1, 2), dtype=np.int64)
                    elif op == "delete":
                        del m[key]
                    elif m[key].size == 0 or (op == "drop row" and (m[key].ndim != 2 or m[key].dtype != np.int64)):
                        continue
                    elif op == "drop row":
                        m[key] = m[key][:-1]
                    else:
                        b = np.array(m[key], copy=True).ravel()
                        b[-1] = b[-1] + 1 if b.dtype.kind in "fiu" else str(int(b[-1]) + 1)
                        m[key] = b.reshape(raw[key].shape)
                    digest = stored_digest(m)
                    name = f"forged-{digest[:16]}.npz"
                    save_entries(os.path.join(SIDE, name), m)
                    forged = copy.deepcopy(cert)
                    forged[part][role] = {"file": name, "digest": digest}
                    forged = sign(forged)
                    counts["tried"] += 1
                    try:
                        check(forged, SIDE)
                    except (Invalid, verify.InputError):
                        counts["rejected"] += 1
                        continue
                    fresh = recertify(forged) if part == "claim" else None
                    if fresh is not None and fresh["result"] == forged["result"]:
                        counts["allowed"] += 1
                    else:
                        failures.append(f"{kind}[{n}] forged {role} file ({op} {key}): accepted")
    return counts, failures


# ------------------------------------------------------------------------------------- the mutations

def _paths(o, path=()):
    """(path, value) of every node of the JSON value o (dicts, lists and leaves), depth first."""
    yield path, o
    if isinstance(o, dict):
        for k, v in o.items():
            yield from _paths(v, path + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from _paths(v, path + (i,))


def _decimal(s):
    try:
        Fraction(s)
    except (ValueError, ZeroDivisionError, TypeError):
        return False
    return "." in s or "e" in s


def _q(f):
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def _leaf_changes(path, v):
    """(operation, new value, size) for a leaf or a list: size "tiny" marks a change below the last digit of
    a decimal bound (the only changes that can be another valid enclosure)."""
    if isinstance(v, list):
        out = [("list: drop last", v[:-1], "large")] if v else []
        if v:
            out.append(("list: repeat first", v + [v[0]], "large"))
        if len(v) > 1 and v[::-1] != v:
            out.append(("list: reverse", v[::-1], "large"))
        return out
    if isinstance(v, bool):
        return [("bool: flip", not v, "large"), ("bool: null", None, "large")]
    if v is None:
        return [("null: true", True, "large"), ("null: string", "0", "large"), ("null: list", [], "large")]
    if isinstance(v, int):
        out = [("int: +1", v + 1, "large"), ("int: -1", v - 1, "large"), ("int: string", str(v), "large")]
        if path == ("prec",):
            out += [("prec: double", 2 * v, "large"), ("prec: halve", v // 2, "large")]
        return out
    if isinstance(v, str):
        if _decimal(v):
            f = Fraction(v)
            g = f + abs(f) / 10 ** 12 + Fraction(1, 10 ** 12)
            return [("decimal: +1e-12 relative", f"{float(g):.17e}", "large"),
                    ("decimal: sign", v[1:] if v.startswith("-") else "-" + v, "large" if f != 0 else "tiny"),
                    ("decimal: append a digit", v + "1" if "e" not in v else v.replace("e", "1e"), "tiny"),
                    ("decimal: drop the last digit", v[:-1] if "e" not in v and len(v) > 2 and v[-2] != "."
                     else v, "tiny")]
        try:
            f = Fraction(v)
            return [("exact: +1", _q(f + 1), "large"), ("exact: +1e-30", _q(f + Fraction(1, 10 ** 30)), "large"),
                    ("exact: negate", _q(-f), "large" if f != 0 else "tiny")]
        except (ValueError, ZeroDivisionError):
            pass
        out = [("string: append", v + "x", "large")]
        if "relu" in v:
            out.append(("string: relu -> abs", v.replace("relu", "abs", 1), "large"))
        if "1" in v:
            out.append(("string: 1 -> 2", v.replace("1", "2", 1), "large"))
        return out
    return []


def mutations(cert):
    """Every single change of the certificate: (path, operation, size, make) where make() builds the mutant.
    ``meta`` values are outside the digest and never checked (only its keys are: the schema is closed there
    too); ``digest`` itself is recomputed by re-signing."""
    for path, v in _paths(cert):
        if path[:1] == ("digest",):
            continue
        if isinstance(v, dict):
            for k in v:
                if path + (k,) == ("digest",):
                    continue            # re-signing puts it back
                yield path + (k,), "delete the key", "large", _maker(cert, path, k, _DELETE)
            yield path + ("extra",), "add a key", "large", _maker(cert, path, "extra", "gradient is [7, 7]")
            continue
        if path[:1] == ("meta",) or not path:
            continue
        if path[-1] == "verdict":
            for w in VERDICTS:
                if w != v:
                    yield path, f"verdict: {v} -> {w}", "large", _maker(cert, path[:-1], path[-1], w)
            continue
        for op, new, size in _leaf_changes(path, v):
            if new == v and type(new) is type(v):
                continue
            yield path, op, size, _maker(cert, path[:-1], path[-1], new)


_DELETE = object()


def _maker(cert, parent, key, new):
    def make():
        m = copy.deepcopy(cert)
        if new is _DELETE:
            _at(m, parent).pop(key)
        else:
            _at(m, parent)[key] = new
        return m
    return make


def _at(o, path):
    for p in path:
        o = o[p]
    return o


# ------------------------------------------------------------------------------- allowed acceptances

WITNESSES = ("direction", "separator", "weights", "gordan")
BALL_NUMBERS = {"critical": ("result",), "differentiable": ("result",), "integral": ("result", "evidence"),
                "tensor_index_set": ("result",), "tensor_differentiable": ("result",)}

ALLOWED = [
    ("claim", "the changed claim still holds with the same result: the mutant is exactly the certificate the "
              "certifier writes for that claim, up to another valid witness or enclosure (a true certificate of "
              "another claim)"),
    ("witness", "another valid witness: a strictly feasible direction, separating vector, convex weights or "
                "Gordan certificate is not unique, any other valid one proves the same"),
    ("enclosure", "a decimal bound moved below its last digit: the enclosure still contains the checker's and "
                  "is as narrow, another valid enclosure of the same number"),
    ("precision", "the ball cells re-derived at another power of two above tol + 64: another precision at which "
                  "every cell's signs are proved"),
]


def recertify(cert):
    """The certificate the certifier writes for the claim of ``cert`` (None when it cannot: the claim is
    malformed or the certifier refuses it)."""
    from verify.certify import critical, index_set, spurious
    from verify.certify.certs import critical_certificate, index_certificate, spurious_certificate
    from verify.certify.differentiable import certify_differentiable, differentiable_certificate
    claim, src = cert["claim"], cert["program"]["source"]
    conv = claim["convention"]
    try:
        if cert["kind"] == "index_set":
            return index_certificate(index_set(src, claim["point"], claim["scope"], conv, cap=claim["cap"]))
        if cert["kind"] == "critical":
            return critical_certificate(critical(src, claim["point"], conv, claim["scope"]))
        if cert["kind"] == "spurious":
            P = verify.parse(claim["original"])
            Q, ev = spurious(P, claim["at"], claim["shift"], convention=conv)
            return spurious_certificate(P, Q, ev, conv)
        if cert["kind"] == "differentiable":
            return differentiable_certificate(certify_differentiable(src, claim["point"], convention=conv))
        if cert["kind"].startswith("tensor_"):
            return _recertify_tensor(cert)
    except verify.VerifyError:
        return None
    return None


def _recertify_segment(cert, P):
    """The certificate the certifier writes for the (changed) ends of a tensor segment, or None."""
    from verify.certify import certs_tensor as CT
    from verify.checker import sites
    from verify.program.arrays import decode
    ends = []
    for key in ("from", "to"):
        try:
            pt = decode(sites.side(cert["claim"][key], SIDE, key))
        except Invalid:
            return None
        if set(pt) != set(P.input_names):
            return None
        ends.append([pt[n] for n in P.input_names])
    conv = cert["claim"]["convention"]
    if cert["kind"] == "tensor_segment":
        return CT.tensor_segment_certificate(verify.segment_partition(P, *ends, convention=conv)).cert
    return CT.tensor_integral_certificate(verify.integral_identity(P, *ends, convention=conv)).cert


def _recertify_tensor(cert):
    from verify.certify import certs_tensor as CT
    from verify.checker import sites
    claim = cert["claim"]
    P = verify.parse(cert["program"]["source"], base=SIDE)
    if cert["kind"] in ("tensor_segment", "tensor_integral"):
        return _recertify_segment(cert, P)
    try:
        from verify.program.arrays import decode
        pt = decode(sites.side(claim["point"], SIDE, "point"))
    except Invalid:
        return None
    x = [pt[n] for n in P.input_names] if set(pt) == set(P.input_names) else None
    if x is None:
        return None
    g = cert["result"].get("gradient")
    kw = {} if not g else {"gradient": True, "wrt": g["wrt"]}
    if cert["kind"] == "tensor_index_set":
        return CT.tensor_index_certificate(P, x, claim["convention"], **kw).cert
    if cert["kind"] == "tensor_differentiable":
        return CT.tensor_differentiable_certificate(P, x, claim["convention"], **kw).cert
    return CT.tensor_critical_certificate(P, x, claim["convention"], wrt=claim["wrt"]).cert


def _without_witnesses(o):
    """The JSON value with every witness (a direction, separator, weights, Gordan certificate) and every
    enclosure's bounds blanked (another valid enclosure of the same number, at another point)."""
    if isinstance(o, dict) and set(o) == {"lo", "hi"}:
        return "an enclosure"
    if isinstance(o, dict):
        return {k: (None if k in WITNESSES else _without_witnesses(v)) for k, v in o.items()
                if k not in ("meta", "digest")}
    if isinstance(o, list):
        return [_without_witnesses(v) for v in o]
    return o


def allowed(kind, path, op, size, mutant=None):
    """The ALLOWED reason that covers an accepted mutant, or None (a failure)."""
    if path[0] == "claim" and mutant is not None:
        fresh = recertify(mutant)
        if fresh is not None and fresh["digest"] == sign(mutant)["digest"]:
            return "claim"
        if fresh is not None and _without_witnesses(fresh) == _without_witnesses(mutant):
            return "claim"
    if any(w in path for w in WITNESSES):
        return "witness"
    if size == "tiny" and path[-1] in ("lo", "hi") and path[0] in BALL_NUMBERS.get(kind, ()) and \
            "breakpoints" not in path and "discontinuity" not in path:
        return "enclosure"
    if kind in ("segment", "integral") and path == ("prec",) and op in ("prec: double", "prec: halve"):
        return "precision"
    return None


# ------------------------------------------------------------------------------------------- running

def run(certs, sample=None, seed=0, progress=None):
    """Apply the mutations (a random sample of ``sample`` per certificate, all when None); return
    ({kind: {"tried", "rejected", "allowed": Counter(reason)}}, [failures])."""
    counts = defaultdict(lambda: {"tried": 0, "rejected": 0, "allowed": Counter()})
    failures = []
    rng = random.Random(seed)
    for kind, lst in certs.items():
        for n, cert in enumerate(lst):
            check(cert, SIDE)
            muts = list(mutations(cert))
            if sample is not None and len(muts) > sample:
                verdicts = [m for m in muts if m[1].startswith("verdict")]
                rest = [m for m in muts if not m[1].startswith("verdict")]
                muts = verdicts + rng.sample(rest, max(0, sample - len(verdicts)))
            for path, op, size, make in muts:
                m = make()
                c = counts[kind]
                c["tried"] += 1
                try:
                    check(sign(m), SIDE)
                except (Invalid, verify.InputError):
                    c["rejected"] += 1
                    continue
                except Exception as e:  # noqa: BLE001 - any other exception is a bug in the checker
                    failures.append(f"{kind}[{n}] {'/'.join(map(str, path))} ({op}): the checker raised "
                                    f"{type(e).__name__}: {e}")
                    continue
                why = allowed(kind, path, op, size, m)
                if why is None:
                    failures.append(f"{kind}[{n}] {'/'.join(map(str, path))} ({op}): accepted")
                else:
                    c["allowed"][why] += 1
            if progress:
                progress(kind, n)
    return dict(counts), failures


def table(counts):
    lines = [f"{'kind':<15} {'tried':>6} {'rejected':>9} {'allowed':>8}  reasons"]
    for kind, c in counts.items():
        why = ", ".join(f"{r} {k}" for r, k in sorted(c["allowed"].items())) or "-"
        lines.append(f"{kind:<15} {c['tried']:>6} {c['rejected']:>9} {sum(c['allowed'].values()):>8}  {why}")
    tot = [sum(c[k] for c in counts.values()) for k in ("tried", "rejected")]
    lines.append(f"{'all':<15} {tot[0]:>6} {tot[1]:>9} {sum(sum(c['allowed'].values()) for c in counts.values()):>8}")
    return "\n".join(lines)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=int, default=None, help="mutations per certificate (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    certs = sample_certificates()
    counts, failures = run(certs, args.sample, args.seed,
                           progress=lambda k, n: print(f"  {k}[{n}] done", file=sys.stderr, flush=True))
    side, side_failures = side_file_run(certs)
    forged, forged_failures = forged_side_file_run(certs)
    failures += side_failures + forged_failures
    print(table(counts))
    print(f"{'side files':<15} {side['tried']:>6} {side['rejected']:>9} {0:>8}  -")
    print(f"{'forged files':<15} {forged['tried']:>6} {forged['rejected']:>9} {forged['allowed']:>8}  "
          f"{'claim ' + str(forged['allowed']) if forged['allowed'] else '-'}")
    for reason, text in ALLOWED:
        print(f"allowed '{reason}': {text}")
    for f in failures:
        print("FAILURE", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
