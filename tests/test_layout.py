"""The package layout is the architecture: source -> Program -> interpreters -> certificates -> checker.

Every import inside verify/ (module level or inside a function) is read from the source with ``ast`` and
checked against the allowed dependencies between layers; lower layers never import higher ones, no two
modules import each other through any chain, and the checker (the trusted kernel) never reaches the
certifiers or the interpreters.
"""
import ast
import os

import verify

ROOT = os.path.dirname(verify.__file__)

# layer -> the layers it may import (besides itself)
BASE = {"base"}
ALLOWED = {
    "base": set(),
    "program": BASE,
    "numbers": BASE,
    "frontends": BASE | {"program"},
    "interpret": BASE | {"program", "numbers", "frontends"},
    "certificates": BASE | {"program", "numbers"},
    "checker": BASE | {"program", "numbers", "frontends", "certificates"},
    "frameworks": BASE | {"program", "numbers", "frontends", "interpret"},
    "certify": BASE | {"program", "numbers", "frontends", "interpret", "certificates"},
    "strategies": BASE | {"program", "numbers", "frontends", "interpret"},
}
ALLOWED["audit"] = set(ALLOWED) - {"audit"}
ALLOWED["fuzz"] = set(ALLOWED) - {"fuzz"}
ALLOWED["reproduce"] = set(ALLOWED) - {"reproduce"}
ALLOWED["commands"] = set(ALLOWED) - {"commands"}
ALLOWED["top"] = set(ALLOWED)
TOP = {"verify", "verify.cli", "verify.__main__"}


def layer(mod):
    if mod in TOP:
        return "top"
    parts = mod.split(".")
    # executor: the campaign executor of fuzz and reproduce (standard library only), base so both can use it
    if len(parts) == 2 and parts[1] in ("errors", "truth", "rational", "version", "progress", "executor"):
        return "base"
    if parts[1] == "ops":
        return "frontends"
    return parts[1]


def modules():
    out = {}
    for d, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                out[rel[:-9] if rel.endswith(".__init__") else rel] = path
    return out


def imports(mod, path, known):
    pkg = mod if path.endswith("__init__.py") else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            hits = [n for n in names if n in known]
            found.update(hits or ([target] if target in known else []))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
    found.discard(mod)
    return found


def graph():
    mods = modules()
    return {m: imports(m, p, mods) for m, p in mods.items()}


def test_layers_import_only_lower_layers():
    bad = []
    for m, deps in graph().items():
        for d in deps:
            lm, ld = layer(m), layer(d)
            if ld != lm and ld not in ALLOWED[lm] and d not in TOP - {"verify"}:
                bad.append(f"{m} ({lm}) imports {d} ({ld})")
            if d == "verify" and lm != "top":
                bad.append(f"{m} imports the top-level package")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles():
    g = graph()
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in g[m]:
            if d.startswith(m + "."):        # a package registering its own submodules is not a cycle
                continue
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2
    for m in sorted(g):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(cycles)


def test_checker_never_reaches_the_certifiers():
    g = graph()
    seen, todo = set(), [m for m in g if m.startswith("verify.checker")]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(g[m])
    assert not {m for m in seen if layer(m) in ("certify", "interpret", "frameworks", "fuzz")}, sorted(seen)
    # the tensor kernel has its own arithmetic: not the interpreter's number systems, not scalarisation
    assert not {m for m in seen if m in ("verify.numbers.tensor", "verify.program.scalarize")}, sorted(seen)
    assert "verify.checker.tensor" in seen and "verify.checker.sites" in seen


def test_checker_modules_share_only_public_helpers():
    """verify/checker/common.py holds what the checks share: no checker module imports a private name (one
    starting with _) of another."""
    bad = []
    for mod, path in modules().items():
        if not mod.startswith("verify.checker"):
            continue
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.ImportFrom) and node.level and any(a.name.startswith("_") for a in node.names):
                bad.append(f"{mod} imports {[a.name for a in node.names]} from .{node.module or ''}")
    assert not bad, bad
