"""Section 5.1 of Bolte & Pauwels (NeurIPS 2020) and Theorem 1, as certificates.

- relu at 0: D_relu(0) = conv{0, 1}, the convex subdifferential, and the Clarke subdifferential is the same;
- sorting (descending) at a tie x: D_F(x) = conv{P permutation matrix : P x = F(x)}, equal to the Clarke
  Jacobian (the permutation matrices are found here by brute force, independently of the certifier);
- t - zero(t) at 0: an artificial critical point (0 in D_f(0), 0 not in the Clarke subdifferential {1});
- Theorem 1: sin(t) + 1 * zero(t) is sin as a function, with AD derivative cos(0) + 1 = 2 at 0.

``run(out_dir)`` writes one certificate per claim (re-validated by the independent checker before it is
reported) and returns the table rows claim / paper / ours / verdict.
"""
import itertools
import json
import os

from flint import fmpq

from ..certificates import write
from ..checker import check
from ..certify import clarke, conservative_field, critical, spurious
from ..certify.certs import critical_certificate, index_certificate, spurious_certificate
from ..frontends.text import parse
from ..program.ir import to_text
from ..rational import fmt_q
from ..truth import TRUE

SORT_POINT = [fmpq(2), fmpq(1), fmpq(2)]


def _mat(j):
    return [[fmt_q(v) for v in row] for row in j]


def _sorted_perms(x):
    """Permutation matrices P with P x sorted in descending order (brute force)."""
    n = len(x)
    want = sorted(x, reverse=True)
    out = []
    for perm in itertools.permutations(range(n)):
        if [x[p] for p in perm] == want:
            out.append([[fmpq(int(j == perm[r])) for j in range(n)] for r in range(n)])
    return out


def run(out_dir, progress=None, **scale):
    say = progress or (lambda m: None)
    os.makedirs(out_dir, exist_ok=True)
    rows, certs = [], {}

    say("section5: relu at 0")
    relu = parse("def relu_(t):\n    return relu(t)\n")
    f, c = conservative_field(relu, [0]), clarke(relu, [0])
    ours = sorted(fmt_q(g[0][0]) for g in f.gradients)
    ok = ours == ["0", "1"] and sorted(fmt_q(g[0][0]) for g in c.gradients) == ours
    certs["relu_field"] = index_certificate(f.index)
    certs["relu_critical"] = critical_certificate(critical(relu, [0]))
    rows.append({"claim": "D_relu(0) = Clarke(0)", "paper": "conv{0, 1}", "ours": "conv{" + ", ".join(ours) + "}",
                 "verdict": "PROVED" if ok else "REFUTED"})

    say("section5: sorting at a tie")
    sort = parse("def sort3(a, b, c):\n    return sort(a, b, c, descending=True)\n")
    f, c = conservative_field(sort, SORT_POINT), clarke(sort, SORT_POINT)
    want = sorted(map(repr, _sorted_perms(SORT_POINT)))
    ok = sorted(map(repr, f.gradients)) == want == sorted(map(repr, c.gradients))
    certs["sort_field"] = index_certificate(f.index)
    rows.append({"claim": "D_F(2,1,2) = Clarke Jacobian of sort", "paper": "conv{P : Px = F(x)}",
                 "ours": f"conv of {len(f.gradients)} permutation matrices = Clarke",
                 "verdict": "PROVED" if ok else "REFUTED"})

    say("section5: artificial critical point of t - zero(t)")
    ident = parse("def zero(t):\n    return relu(-t) + t - relu(t)\n\ndef ident(t):\n    return t - zero(t)\n")
    cr = critical(ident, [0])
    ok = cr.selection.truth is TRUE and cr.artificial is TRUE
    certs["artificial"] = critical_certificate(cr)
    rows.append({"claim": "t - zero(t) at 0 is artificial", "paper": "0 in D_f(0), 0 not in Clarke",
                 "ours": f"D_f(0) = conv{{{', '.join(sorted(fmt_q(g[0]) for g in cr.field))}}}, Clarke = "
                         f"{{{', '.join(fmt_q(g[0]) for g in cr.clarke)}}}",
                 "verdict": "PROVED" if ok else "REFUTED"})

    say("section5: Theorem 1 on sin")
    sin = parse("def s(t):\n    return sin(t)\n")
    Q, ev = spurious(sin, [0], [1])
    from ..interpret.ad import grad
    g = grad(Q, [0]).gradient[0]
    ok = fmt_q(g) == "2" if isinstance(g, fmpq) else False
    certs["theorem1"] = spurious_certificate(sin, Q, ev, "torch")
    rows.append({"claim": "sin + zero: same function, AD'(0) = cos(0) + 1", "paper": "2 (any shift)",
                 "ours": fmt_q(g) if isinstance(g, fmpq) else str(g), "verdict": "PROVED" if ok else "REFUTED"})

    for name, cert in certs.items():
        path = os.path.join(out_dir, f"{name}.json")
        write(cert, path)
        check(json.loads(open(path).read()))     # the independent checker re-validates what we report
    with open(os.path.join(out_dir, "theorem1.prog"), "w") as fh:
        fh.write(to_text(Q))
    return {"rows": rows, "ok": all(r["verdict"] == "PROVED" for r in rows),
            "certificates": sorted(certs), "figure": None}
