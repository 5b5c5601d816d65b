"""docs/audit.md runs as written: its Python blocks in order, in one namespace, each printing exactly the
output block that follows it; its console example's lines are lines of the audit's text; its tables of JSON
keys, kink classes and .npz arrays name exactly what the code produces."""
import contextlib
import io
import json
import os
import re
from importlib import resources

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
DOC = os.path.join(ROOT, "docs", "audit.md")


def blocks():
    """[(language, text)] of the fenced blocks of docs/audit.md, in order."""
    text = open(DOC, encoding="utf-8").read()
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w*)\n(.*?)```", text, re.S)]


def table_keys(title):
    """The first-column names of the table that follows the heading ``title``."""
    text = open(DOC, encoding="utf-8").read()
    section = text.split(title, 1)[1].split("\n## ", 1)[0]
    return [name for row in re.findall(r"^\| (.+?) \|", section, re.M) for name in re.findall(r"`(\w+)`", row)]


def test_the_python_examples_run_as_written(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(os.path.abspath(ROOT))
    namespace = {}
    found = blocks()
    ran = 0
    for (lang, code), (next_lang, expected) in zip(found, found[1:] + [("", "")]):
        if lang != "python":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, DOC, "exec"), namespace)          # the documentation's own example code
        assert next_lang == "text", f"the block after\n{code}\nmust be its output (a ```text block)"
        assert out.getvalue() == expected, f"docs/audit.md:\n{code}\nprinted\n{out.getvalue()}"
        ran += 1
    assert ran >= 5


def test_the_json_keys_table_is_the_schema():
    schema = json.loads(resources.files("verify.commands").joinpath("output.schema.json").read_text())
    keys = set(schema["$defs"]["audit"]["properties"])
    documented = set(table_keys("## The JSON (`--json`)"))
    assert keys <= documented, f"undocumented JSON keys: {sorted(keys - documented)}"


def test_the_class_table_is_the_code():
    from verify.auditing.kinks import CLASSES
    assert table_keys("## Kink classes") == list(CLASSES)


def test_the_npz_table_is_the_file(tmp_path):
    torch = pytest.importorskip("torch")
    import verify
    rep = verify.audit(lambda x: torch.relu(x).sum(), torch.tensor([0.0, 1.0], dtype=torch.float64))
    import numpy as np
    z = np.load(rep.save_kinks(str(tmp_path / "k.npz")))
    assert set(table_keys("## Every kink")) == set(z.files)
