"""How much of JAX's own primitive test data verify imports (float64), checked against live JAX.

Reads JAX's primitive harnesses (``jax._src.internal_test_util.test_harnesses``, which needs ``absl-py``),
keeps those whose dtype is float64, and for each: imports ``dyn_fun`` at the harness's arguments with
``verify.frameworks.from_jax``, evaluates the program exactly, and compares every float output with JAX's own
float64 result, and the gradient of the sum of the float outputs with ``jax.grad`` (float64 rounding bound of
tests/import_helpers.py, scaled by the size of the values).  A harness *imports* when all of that holds; a
group (a primitive) imports when one of its float64 harnesses imports (harnesses are tried in JAX's order
until one does; those where JAX's own result is not finite, or has no float output, are skipped).  Integer
outputs beside float ones (top_k's indices) are left out: the float outputs are what is imported.

    python benchmarks/coverage_jax.py [--json] [--limit N] [--groups g1,g2] [--verbose] [--expect PATH]
                                      [--write docs/coverage-jax.md]

``--expect tests/data/jax_harnesses.json`` writes each group's outcome and reason: the expectations
tests/test_coverage_jax.py holds the importer to (a group recorded as imported stays imported).

Prints a table per group (imported / refused with the reason / crashed / disagrees) and the totals.
``verify.frameworks.coverage`` is not involved: this script is the measurement, and tests/test_coverage_jax.py
runs a sample of it against live JAX.
"""
import argparse
import collections
import json
import sys
import time
import traceback

import numpy as np


def harnesses(groups=None):
    """{group: [harness, ...]} of JAX's float64 primitive harnesses (in JAX's order)."""
    import jax
    jax.config.update("jax_enable_x64", True)
    from jax._src.internal_test_util import test_harnesses as th
    out = collections.OrderedDict()
    for h in th.all_harnesses:
        if h.dtype != np.float64 or (groups and h.group_name not in groups):
            continue
        out.setdefault(h.group_name, []).append(h)
    return out


def _floats(x):
    from flint import arb, fmpq
    o = np.asarray(x, dtype=object)

    def f(v):
        if isinstance(v, fmpq):
            return int(v.p) / int(v.q)
        if isinstance(v, arb):
            return float(v.mid())
        return float(v)
    return np.vectorize(f, otypes=[float])(o) if o.size else np.zeros(o.shape)


def _close(ours, theirs):
    """ours against JAX's array, to JAX's rounding in its output dtype (2^-30 relative in float64; a float32
    output, from a cast, to float32 rounding): the imported program is the exact real-number one."""
    t = np.asarray(theirs)
    rel = 2.0 ** -30 if t.dtype == np.float64 else 2.0 ** -18
    o, t = _floats(ours), t.astype(np.float64)
    if o.shape != t.shape:
        return False, f"shape {o.shape} != {t.shape}"
    scale = max(1.0, float(np.max(np.abs(t))) if t.size else 1.0)
    err = float(np.max(np.abs(o - t))) if t.size else 0.0
    return err <= rel * scale, f"max error {err:.3g} (scale {scale:.3g})"


# where a harness's random arguments lie outside the function's domain (log, sqrt, acos, ... of normal samples),
# the same harness is tried again with its float arguments moved inside: into (1/4, 3/4), then above 1
MOVES = (("into (1/4, 3/4)", lambda x: 0.25 + 0.5 * (np.abs(x) % 1.0)),
         ("above 1", lambda x: 1.25 + np.abs(x)))


def check(h, rng, move=None):
    """(outcome, detail) for one harness: outcome is imported, refused, disagrees, crashed, skipped, or domain
    (the arguments lie outside the function's domain: JAX gives nan / inf and verify refuses the point, so
    nothing was compared).  ``move`` maps each float argument elsewhere (see MOVES)."""
    import jax
    import jax.numpy as jnp

    import verify
    from verify.errors import VerifyError
    from verify.frameworks import from_jax
    args = h.dyn_args_maker(rng)
    if move is not None:
        args = [move(np.asarray(x)).astype(np.asarray(x).dtype) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)
                else x for x in args]
    fun = h.dyn_fun
    try:
        expected = fun(*args)
    except Exception as e:          # JAX itself cannot run it on this machine
        return "skipped", f"JAX: {type(e).__name__}"
    outs = expected if isinstance(expected, (list, tuple)) else [expected]
    outs = jax.tree_util.tree_leaves(outs)
    finite = all(not jnp.issubdtype(jnp.asarray(o).dtype, jnp.inexact) or bool(jnp.all(jnp.isfinite(o)))
                 for o in outs)
    float_out = [i for i, o in enumerate(outs) if jnp.issubdtype(jnp.asarray(o).dtype, jnp.floating)]
    float_in = [i for i, x in enumerate(args) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
    if not float_out:
        return "skipped", "no float output"
    if len(float_out) < len(outs):
        # integer outputs (top_k's indices, ...) are piecewise constant integers, not real-number functions:
        # the float outputs are imported, and the comparison below is output by output among them
        def floats_only(*xs, whole=fun, keep=tuple(float_out)):
            r = jax.tree_util.tree_leaves(whole(*xs))
            return [r[i] for i in keep]
        fun, outs = floats_only, [outs[i] for i in float_out]
        float_out = list(range(len(outs)))
    try:
        imp = from_jax(fun, *args)
    except VerifyError as e:
        return "refused", str(e).split(": ", 2)[-1][:160]
    except Exception as e:          # noqa: BLE001 - a crash of the importer is what this script looks for
        return "crashed", f"{type(e).__name__}: {e} | {traceback.format_exc().splitlines()[-3].strip()}"[:300]
    if not finite:
        # JAX computes nan or inf here (e.g. log of a negative): the real function is not defined at this point,
        # and verify must say so rather than compute a number
        from verify.errors import DomainError
        try:
            verify.evaluate(imp.program, imp.point)
        except DomainError as e:
            return "domain", f"outside the domain where JAX gives nan / inf: {str(e)[:100]}"
        except VerifyError as e:
            return "refused", f"evaluation: {str(e)[:160]}"
        return "disagrees", "JAX's result is not finite, verify computed a real number"
    try:
        res = verify.evaluate(imp.program, imp.point)
        for k, i in enumerate(float_out):
            ok, why = _close(res.values[i], outs[i])
            if not ok:
                return "disagrees", f"value of output {i}: {why}"
        if float_in and imp.inputs:
            def loss(*xs):
                full = list(args)
                for j, x in zip(float_in, xs):
                    full[j] = x
                r = jax.tree_util.tree_leaves(fun(*full))
                return sum(jnp.sum(r[i]) for i in float_out)
            xs = [args[j] for j in float_in]
            try:
                jg = jax.grad(loss, argnums=tuple(range(len(xs))))(*xs)
            except Exception as e:   # JAX cannot differentiate it: values only
                return "imported", f"values only (JAX has no gradient: {type(e).__name__})"
            limp = from_jax(loss, *xs)
            g = verify.grad(limp.program, limp.point)
            for j, (ours, theirs) in enumerate(zip(g.gradient, jg)):
                ok, why = _close(ours, theirs)
                if not ok:
                    return "disagrees", f"gradient of input {j}: {why}"
        return "imported", ""
    except VerifyError as e:
        return "refused", f"evaluation: {str(e)[:160]}"
    except Exception as e:          # noqa: BLE001
        return "crashed", f"evaluation: {type(e).__name__}: {e}"[:300]


def run(groups=None, limit=None, verbose=False, first_only=True):
    rng = np.random.RandomState(0)
    table = {}
    for g, hs in harnesses(groups).items():
        rows = []
        for h in hs[: (limit or len(hs))]:
            t0 = time.perf_counter()
            outcome, detail = check(h, rng)
            for how, move in MOVES if outcome == "domain" else ():
                o2, d2 = check(h, rng, move)
                if o2 != "domain":
                    outcome, detail = o2, f"arguments moved {how} (the harness's own lie outside the domain)" + \
                        (f"; {d2}" if d2 else "")
                    break
            rows.append({"harness": h.name, "outcome": outcome, "detail": detail,
                         "seconds": round(time.perf_counter() - t0, 3)})
            if verbose:
                print(f"{g:28s} {outcome:10s} {h.name[:50]:50s} {detail[:100]}", file=sys.stderr)
            if first_only and outcome == "imported":
                break
        decided = [r for r in rows if r["outcome"] != "skipped"]
        best = next((r for r in decided if r["outcome"] == "imported"),
                    next((r for r in decided if r["outcome"] == "domain"), decided[0] if decided else None))
        table[g] = {"outcome": best["outcome"] if best else "skipped",
                    "detail": best["detail"] if best else (rows[0]["detail"] if rows else ""),
                    "harnesses": rows}
    return table


def summary(counts):
    total = sum(counts.values()) - counts["skipped"]
    share = 100 * counts["imported"] / max(total, 1)
    return (f"{counts['imported']} of {total} float64 harness groups import ({share:.0f}%); refused "
            f"{counts['refused']}, disagree {counts['disagrees']}, crashed {counts['crashed']}, skipped "
            f"{counts['skipped']}")


def page(table, counts):
    """The documentation page: how it was made, the totals, and every group with its outcome and reason."""
    import jax
    out = ["# JAX's operator coverage", "",
           f"Generated by `python benchmarks/coverage_jax.py --write docs/coverage-jax.md` (jax {jax.__version__}): "
           "every group of JAX's own primitive test harnesses (`jax._src.internal_test_util.test_harnesses`) "
           "with a float64 harness, imported with `verify.from_jax` and compared with JAX live: every float "
           "output, and the gradient of their sum against `jax.grad`, to 2^-30 relative.  A group imports when "
           "one of its harnesses does; a harness whose random arguments lie outside the function's domain is "
           "tried with them moved inside.  tests/test_coverage_jax.py holds the importer to these outcomes "
           "(tests/data/jax_harnesses.json).  The torch side: [coverage.md](coverage.md).", "",
           "```text", summary(counts), "```", "", "| group | outcome | detail |", "|---|---|---|"]
    for g, v in sorted(table.items()):
        detail = v["detail"].replace("|", "\\|").replace("\n", " ")[:160]
        out.append(f"| `{g}` | {v['outcome']} | {detail} |")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--limit", type=int, help="harnesses tried per group")
    ap.add_argument("--groups", help="comma-separated group names")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--expect", help="write {group: {status, reason}} to this JSON file")
    ap.add_argument("--write", help="write the documentation page (docs/coverage-jax.md) to this file")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    table = run(a.groups.split(",") if a.groups else None, a.limit, a.verbose)
    counts = collections.Counter(v["outcome"] for v in table.values())
    if a.expect:
        with open(a.expect, "w", encoding="utf-8") as fh:
            json.dump({g: {"status": v["outcome"], "reason": v["detail"][:200]} for g, v in sorted(table.items())},
                      fh, indent=0, sort_keys=True)
            fh.write("\n")
    if a.write:
        with open(a.write, "w", encoding="utf-8") as fh:
            fh.write(page(table, counts))
    if a.json:
        print(json.dumps({"groups": table, "counts": counts, "seconds": time.perf_counter() - t0}))
        return 0
    for g, v in table.items():
        print(f"{g:30s} {v['outcome']:10s} {v['detail'][:110]}")
    print(f"\n{summary(counts)}; {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
