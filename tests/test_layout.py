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
ALLOWED["auditing"] = set(ALLOWED) - {"auditing"}
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


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


# Reach-ins still open in code that other work is reshaping (issue 20, item 3): each entry must disappear
# from this list when its module gives the name a public home.  An entry that no longer occurs fails too,
# so the list only shrinks.
KNOWN_REACH_INS = set()       # none left: a new one fails the test below


def reach_ins(mod, path):
    """Where ``mod`` uses another module's private name: ``from m import _x`` (m a verify module) and
    ``M._x`` with M a name bound to a verify module or to a name imported from one."""
    pkg = mod if path.endswith("__init__.py") else mod.rpartition(".")[0]
    tree = ast.parse(open(path, encoding="utf-8").read())
    bound, found = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                target = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "verify":
                continue
            for a in node.names:
                if _private(a.name):
                    found.add(f"{mod}: {a.name} from {target}")
                bound[a.asname or a.name] = f"{target}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "verify":
                    bound[a.asname or a.name.split(".")[0]] = a.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name) \
                and node.value.id in bound:
            found.add(f"{mod}: {node.value.id}.{node.attr}")
    return found


def test_no_module_reaches_into_another_modules_private_names():
    """What another module needs is public and named for what it is (STYLE rule 11)."""
    found = set()
    for mod, path in modules().items():
        found |= reach_ins(mod, path)
    assert not found - KNOWN_REACH_INS, "private names used from another module:\n" + "\n".join(
        sorted(found - KNOWN_REACH_INS))
    assert not KNOWN_REACH_INS - found, "gone (remove from KNOWN_REACH_INS):\n" + "\n".join(
        sorted(KNOWN_REACH_INS - found))


def test_the_reach_in_scan_sees_both_forms(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from ..interpret.evaluate import _where, run\nfrom ..interpret import tensor as T\n"
                 "from . import ok as _alias\nT._precision(1)\nT.run(2)\nrun._cache\n")
    assert reach_ins("verify.certify.m", str(p)) == {
        "verify.certify.m: _where from verify.interpret.evaluate", "verify.certify.m: T._precision",
        "verify.certify.m: run._cache"}


def test_one_meaning_per_name():
    """UNDECIDED is the verdict (truth.Verdict); the int8 code of an undecided sign is truth.SIGN_UNDECIDED and
    a fuzz example's outcome is EXAMPLE_UNDECIDED.  K is the checker's kernel, never program.kinks."""
    own_copy = {"verify.checker.tensor"}        # the checker's kernel keeps its own arithmetic, on purpose
    bad = []
    for mod, path in modules().items():
        tree = ast.parse(open(path, encoding="utf-8").read())
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            if "UNDECIDED" in names and mod not in own_copy:
                bad.append(f"{mod} binds UNDECIDED")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and any(a.name == "kinks" and a.asname == "K" for a in node.names):
                bad.append(f"{mod} imports program.kinks as K")
    assert not bad, bad
