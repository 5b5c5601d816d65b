"""The documentation runs: every code block of README.md and of every docs/*.md page, in order, as written.

Per page, one namespace and one temporary working folder (with `examples/` linked in):

- ```python blocks are executed; ```pycon blocks are doctests (`>>>` lines, their printed reprs compared,
  `...` standing for omitted text) run in the same namespace;
- ```console blocks: every `$ ` line is run by bash, with `verify` meaning `python -m verify` of this
  checkout, and its output (stdout and stderr, as a terminal shows them) is compared with the lines written
  under it.  A line that is exactly `...` stands for any number of lines; `...` inside a line stands for
  omitted text (at its end: an omitted tail).  Nothing else is fuzzy.  The exit code must be 0 unless the
  command's comment says `exit N`;
- every other block must say what it is (```prog, ```text, ```bash, ```json ...): a fence without a
  language fails, so text that is not meant to run cannot pass for an example.

Marks: a Python block whose first line is `# needs: torch, jax` (`>>> # needs: ...` in pycon) is skipped
when one of those modules is missing (as is a block preceded by the comment `<!-- docs: needs torch -->`);
`<!-- docs: campaign -->` before a block runs it only under HYPOTHESIS_PROFILE=campaign (long examples).
DOCS_WITHOUT=torch,jax pretends modules are missing, to check that the pages still run without them.
"""
import doctest
import glob
import importlib.util
import os
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass, field

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
RUN = {"python", "pycon", "console"}
TEXT = {"prog", "text", "bash", "json", "toml", "yaml", "ini"}
CAMPAIGN = os.environ.get("HYPOTHESIS_PROFILE") == "campaign"
COMMAND_TIMEOUT = 900


@dataclass
class Block:
    page: str
    line: int                       # 1-based line of the opening fence
    lang: str
    text: str
    marks: dict = field(default_factory=dict)

    @property
    def where(self):
        return f"{self.page}:{self.line}"


def parse_marks(comment):
    """`needs torch, jax; campaign` -> {"needs": ["torch", "jax"], "campaign": True}."""
    marks = {}
    for part in filter(None, (p.strip() for p in comment.split(";"))):
        word, _, rest = part.partition(" ")
        if word == "needs":
            marks["needs"] = [m.strip() for m in rest.replace(",", " ").split()]
        elif word == "campaign":
            marks["campaign"] = True
        else:
            raise ValueError(f"unknown docs mark {part!r}")
    return marks


def blocks(page):
    """The fenced blocks of a page, in order, with their marks.  Fences are top-level ``` lines."""
    lines = open(os.path.join(ROOT, page), encoding="utf-8").read().splitlines()
    out, i, prev = [], 0, ""
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if not m:
            if lines[i].strip():
                prev = lines[i].strip()
            i += 1
            continue
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i] != "```":
            body.append(lines[i])
            i += 1
        assert i < len(lines), f"{page}:{start + 1}: unclosed fence"
        mark = re.fullmatch(r"<!--\s*docs:(.*?)-->", prev)
        marks = parse_marks(mark.group(1)) if mark else {}
        text = "\n".join(body) + "\n"
        first = re.match(r"(?:>>> )?#\s*needs:(.*)", body[0]) if body else None
        if first and m.group(1) in ("python", "pycon"):
            marks.setdefault("needs", []).extend(n.strip() for n in first.group(1).split(","))
        out.append(Block(page, start + 1, m.group(1), text, marks))
        prev = ""
        i += 1
    return out


def missing(names):
    pretend = set(filter(None, os.environ.get("DOCS_WITHOUT", "").split(",")))
    return [n for n in names if n in pretend or importlib.util.find_spec(n) is None]


# -- console examples ---------------------------------------------------------------------------------------

def commands(block):
    """[(command, expected output lines)] of a console block."""
    out = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        else:
            assert out, f"{block.where}: a console block starts with a `$ ` line"
            out[-1][1].append(line)
    return out


def line_matches(pattern, line):
    if "..." not in pattern:
        return pattern == line
    parts = [re.escape(p) for p in pattern.split("...")]
    return re.fullmatch(".*".join(parts), line, re.S) is not None


def output_matches(expected, got):
    """Line by line; an `...` line matches any run of lines (shortest first, backtracking)."""
    def match(i, j):
        if i == len(expected):
            return j == len(got)
        if expected[i] == "...":
            return any(match(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and line_matches(expected[i], got[j]) and match(i + 1, j + 1)
    return match(0, 0)


def expected_exit(command):
    m = re.search(r"#.*\bexit (\d+)", command)
    return int(m.group(1)) if m else 0


def run_console(block, cwd, env):
    """Run every command of the block; return the list of mismatches (each command is run, whatever the
    previous one did, so that one run reports every difference)."""
    problems = []
    for command, expected in commands(block):
        proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=COMMAND_TIMEOUT)
        got = proc.stdout.splitlines()
        shown = "\n".join(got[:80])
        if proc.returncode != expected_exit(command):
            problems.append(f"{block.where}: `$ {command}` exited {proc.returncode}, the page says "
                            f"{expected_exit(command)}\n{shown}")
        elif not output_matches(expected, got):
            problems.append(f"{block.where}: `$ {command}` printed\n{shown}\n--- the page says\n"
                            + "\n".join(expected))
    return problems


# -- Python -------------------------------------------------------------------------------------------------

def run_python(block, namespace):
    # padded so that line numbers in tracebacks and source locations are the page's own
    code = compile("\n" * block.line + block.text, os.path.join(ROOT, block.page), "exec")
    exec(code, namespace)


def run_pycon(block, namespace):
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block.text, namespace, block.where, block.page, block.line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = []
    runner.run(test, out=report.append, clear_globs=False)
    namespace.update(test.globs)           # DocTest works on a copy of the namespace: keep what it defined
    assert runner.failures == 0, "".join(report)


def console_env(tmp):
    bindir = os.path.join(tmp, ".bin")
    os.makedirs(bindir, exist_ok=True)
    shim = os.path.join(bindir, "verify")
    with open(shim, "w") as f:
        f.write(f'#!/bin/sh\nexec "{sys.executable}" -m verify "$@"\n')
    os.chmod(shim, 0o755)
    env = dict(os.environ)
    env["PATH"] = bindir + os.pathsep + os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"      # stdout and stderr interleaved as on a terminal
    env.pop("COLUMNS", None)
    return env


@pytest.mark.parametrize("page", PAGES)
def test_page_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    env = console_env(str(tmp_path))
    namespace = {"__name__": "__docs__"}
    skipped, problems = [], []
    for block in blocks(page):
        if block.lang not in RUN:
            continue
        if block.marks.get("campaign") and not CAMPAIGN:
            skipped.append(f"{block.where} (campaign profile only)")
            continue
        absent = missing(block.marks.get("needs", []))
        if absent:
            skipped.append(f"{block.where} (needs {', '.join(absent)})")
            continue
        if block.lang == "console":
            problems += run_console(block, str(tmp_path), env)
            continue
        try:
            (run_python if block.lang == "python" else run_pycon)(block, namespace)
        except Exception as e:     # noqa: BLE001 -- every block's failure is reported, with where it is
            problems.append(f"{block.where}: {type(e).__name__}: {e}\n" + "".join(traceback.format_exc(limit=-3)))
    if skipped:
        print(f"{page}: not run: " + "; ".join(skipped))
    assert not problems, f"{len(problems)} example(s) of {page} do not run as written:\n\n" + "\n\n".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_every_block_says_what_it_is(page):
    for block in blocks(page):
        assert block.lang in RUN | TEXT, (
            f"{block.where}: a ```{block.lang} block; say what it is: ```python or ```console (run and "
            f"compared), or ```prog / ```text / ... (not run)")


def test_readme_first_bash_block_is_the_two_commands():
    """.ci/run runs the two non-comment lines of the README's first ```bash block, verbatim."""
    first = next(b for b in blocks("README.md") if b.lang == "bash")
    lines = [ln for ln in first.text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) == 2 and all(ln.startswith("python3 -m venv .venv && ") for ln in lines), lines
    assert lines[0].endswith("verify reproduce") and lines[1].endswith("python -m pytest -q"), lines


def test_the_harness_compares_output_strictly():
    assert output_matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert output_matches(["a", "..."], ["a"])
    assert output_matches(["x = ...", "y"], ["x = 1/2 (exact)", "y"])
    assert output_matches(['{"a": 1, ..., "c": 3}'], ['{"a": 1, "b": 2, "c": 3}'])
    assert not output_matches(["a"], ["a", "b"])
    assert not output_matches(["a", "b"], ["a", "c"])
    assert not output_matches(["x = 1..."], ["x = 2/3"])
    assert not output_matches([], ["anything"])
    assert expected_exit("verify grad P --at 1   # exit 3: undecided") == 3
    assert expected_exit("verify grad P --at 1") == 0


def test_mkdocs_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout


def schema_keys(definition, defs):
    """The top-level keys a --json object of one command may have (command, verdict, reason left out)."""
    if "$ref" in definition:
        return schema_keys(defs[definition["$ref"].split("/")[-1]], defs)
    if "else" in definition:                      # scalar programs; tensor programs are under "then"
        return schema_keys(definition["else"], defs)
    return set(definition.get("properties", {})) - {"command", "verdict", "reason"}


def key_tables():
    """{(command, tensor?): the backticked words of its row} from docs/cli.md's two key tables."""
    rows = {}
    for line in open(os.path.join(ROOT, "docs", "cli.md"), encoding="utf-8"):
        if line.startswith("| command"):
            tensor = "tensor" in line
        m = re.match(r"\| `([a-z-]+)` \|(.*)\|\s*$", line)
        if m:
            rows[(m.group(1), tensor)] = set(re.findall(r"`([a-z_]+)`", m.group(2)))
    return rows


def test_cli_key_tables_match_the_output_schema():
    import json
    schema = json.load(open(os.path.join(ROOT, "verify", "commands", "output.schema.json"), encoding="utf-8"))
    defs, rows = schema["$defs"], key_tables()
    commands = [c for c in schema["properties"]["command"]["enum"] if c != "verify"]
    for command in commands:
        assert (command, False) in rows, f"docs/cli.md: no row for `{command}`"
        missing_keys = schema_keys(defs[command], defs) - rows[(command, False)]
        assert not missing_keys, f"docs/cli.md: the `{command}` row does not name {sorted(missing_keys)}"
    for (command, tensor), words in rows.items():
        if tensor:
            missing_keys = schema_keys(defs[f"tensor-{command}"], defs) - words
            assert not missing_keys, f"docs/cli.md: the tensor `{command}` row does not name {sorted(missing_keys)}"


def test_layout_page_names_every_folder_of_the_package():
    text = open(os.path.join(ROOT, "docs", "layout.md"), encoding="utf-8").read()
    folders = sorted(d for d in os.listdir(os.path.join(ROOT, "verify"))
                     if os.path.isfile(os.path.join(ROOT, "verify", d, "__init__.py")))
    unnamed = [d for d in folders if f"`verify/{d}/`" not in text]
    assert not unnamed, f"docs/layout.md does not say what these folders hold: {unnamed}"


def slug(heading):
    """The anchor mkdocs (and GitHub) give a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return re.sub(r"\s+", "-", text)


def test_readme_links_lead_somewhere():
    """README.md's relative links name files that exist, and their #anchors headings that exist.  A docs page
    the site's nav lists but that has not landed yet is reported as a skip (mkdocs --strict fails on it)."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    nav = open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8").read()
    pending = []
    for target in re.findall(r"\]\(([^)\s]+)\)", readme):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.join(ROOT, path)
        if not os.path.exists(full):
            assert path.startswith("docs/") and f" {os.path.basename(path)}\n" in nav, f"README.md links to {target}"
            pending.append(path)
            continue
        if anchor:
            headings = re.findall(r"^#+ (.*)$", open(full, encoding="utf-8").read(), re.M)
            assert anchor in {slug(h) for h in headings}, f"README.md links to {target}: no such heading"
    if pending:
        pytest.skip(f"pages in the site's nav, not written yet: {sorted(set(pending))}")


def test_the_harness_reads_fences_and_marks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n```\nnot marked\n```\n\n<!-- docs: needs torch; campaign -->\n"
                    "```console\n$ verify x\n```\n```pycon\n>>> # needs: jax\n>>> 1\n1\n```\n")
    unmarked, console, pycon = blocks(str(page))
    assert (unmarked.lang, unmarked.line, unmarked.text) == ("", 3, "not marked\n")
    assert unmarked.lang not in RUN | TEXT          # test_every_block_says_what_it_is fails on it
    assert console.marks == {"needs": ["torch"], "campaign": True} and console.line == 8
    assert pycon.marks == {"needs": ["jax"]}
    assert commands(console) == [("verify x", [])]
