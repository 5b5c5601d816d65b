"""Program text: parse(to_text(P)) == P, exact literals, and a clear ParseError with line:column for
everything outside the subset (nothing is ever executed)."""
import pytest
from flint import fmpq
from hypothesis import given

import verify
from verify.errors import InputError, ParseError, ProgramError
from verify.strategies import programs

SRC = """
def relu2(t):
    return relu(-t) + t

def g(x, y):
    \"\"\"a docstring is fine\"\"\"
    a = relu2(x - y)
    lo, hi = sort(a, y, descending=True)
    m = max(lo, hi, 0.1, tie="first")
    w = where(x >= 1/3, m ** 2, -y)
    c = clamp(w, lo=-1, hi=2, at_lo=1/2)
    return c, pow(x, n=-1), 3
"""


def test_multi_def_program_roundtrips_and_evaluates():
    P = verify.parse(SRC)
    assert P.name == "g" and P.n_outputs == 3 and P.input_names == ("x", "y")
    assert verify.parse(verify.to_text(P)) == P
    r = verify.evaluate(P, ["1/2", "1/4"])
    assert r.exact and r.values[1] == 2 and r.values[2] == 3


def test_literals_are_exact():
    P = verify.parse("lambda x: x * 0.1 + 1e-3 - 2/3")
    assert verify.evaluate(P, [1]).values == [fmpq(1, 10) + fmpq(1, 1000) - fmpq(2, 3)]


def test_to_text_is_canonical():
    P = verify.parse("lambda x, y: max(x, y) + relu(x - y, alpha=1/2) * -2")
    text = verify.to_text(P)
    assert text.startswith("def f(x, y):\n") and "alpha=1/2" in text and "(-2)" in text
    assert verify.parse(text) == P


@given(programs(n_inputs=2, max_eqns=10))
def test_random_programs_roundtrip(P):
    assert verify.parse(verify.to_text(P)) == P


@pytest.mark.parametrize("src, msg, line, col", [
    ("def f(x):\n    return x +\n", "syntax error", 2, None),
    ("def f(x):\n    return y\n", "unknown name 'y'", 2, 12),
    ("def f(x):\n    return frob(x)\n", "unknown function 'frob'", 2, 12),
    ("def f(x):\n    return relu(x, x)\n", "relu takes 1 argument(s), got 2", 2, 12),
    ("def f(x):\n    return relu(x, beta=1)\n", "no param 'beta'", 2, 12),
    ("def f(x):\n    return max(x, 1, tie='middle')\n", "tie='middle' must be one of", 2, 12),
    ("def f(x):\n    return x.real\n", "attribute access is not allowed", 2, 12),
    ("import os\ndef f(x):\n    return x\n", "imports are not allowed", 1, 1),
    ("def f(x):\n    import os\n    return x\n", "imports are not allowed", 2, 5),
    ("def f(x):\n    if x > 0:\n        return x\n    return 0\n", "where(cond, a, b)", 2, 5),
    ("def f(x):\n    a = x\n    a = a + 1\n    return a\n", "assigned twice", 3, 5),
    ("def f(x):\n    return x ** x\n", "integer literal", 2, 17),
    ("def f(x):\n    return x ** 0.5\n", "integer literal", 2, 17),
    ("def f(x):\n    return x > 0\n", "only allowed as the first argument of where", 2, 12),
    ("def f(x):\n    return x % 2\n", "operator Mod is not allowed", 2, 12),
    ("def f(x):\n    return relu(sort(x, 1))\n", "sort returns 2 values", 2, 17),
    ("def f(x):\n    a, b, c = sort(x, 1)\n    return a\n", "3 names but the call returns 2", 2, 5),
    ("def f(x):\n    return 1 / 0\n", "division by zero", 2, 12),
    ("def f(x):\n    return __import__('os').system('touch /tmp/verify-pwned')\n", "attribute access", 2, 12),
    ("def f(x):\n    return f(x)\n", "recursion", 1, 1),
    ("def f(x):\n    return where(x, 1, 2)\n", "single comparison", 2, 12),
    ("def f(x):\n    return relu(x, alpha=y)\n", "must be a constant", 2, 26),
    ("def f(x):\n    return clamp(x, lo=1, hi=0)\n", "lo < hi", 2, 12),
    ("def f(x):\n    return clamp(x)\n", "lo= or hi=", 2, 12),
    ("x = 1\n", "only def statements", 1, 1),
    ("def relu(x):\n    return x\n", "shadow the primitive", 1, 1),
    ("def f(x, x):\n    return x\n", "repeated argument name", 1, 1),
    ("def f(x):\n    return 'a'\n", "not a number", 2, 12),
    ("def f(x):\n    y = x\n", "must end with a return", 2, 5),
    ("lambda x: x if x > 0 else 0", "conditional expressions are not allowed", 1, 11),
])
def test_errors_name_the_problem_and_the_place(src, msg, line, col, tmp_path):
    with pytest.raises(ParseError) as e:
        verify.parse(src)
    assert msg in e.value.msg
    assert e.value.line == line
    if col is not None:
        assert e.value.col == col
    assert not (tmp_path / "verify-pwned").exists()


def test_nothing_is_executed(tmp_path):
    marker = tmp_path / "ran"
    src = f"def f(x):\n    return exec(\"open('{marker}', 'w')\")\n"
    with pytest.raises(ParseError):
        verify.parse(src)
    assert not marker.exists()


def test_fn_selects_a_def_and_files_are_read(tmp_path):
    f = tmp_path / "p.prog"
    f.write_text(SRC)
    assert verify.parse(str(f), fn="relu2").name == "relu2"
    with pytest.raises(InputError, match="no def named 'nope'"):
        verify.parse(str(f), fn="nope")
    with pytest.raises(InputError, match="no program file"):
        verify.parse(str(tmp_path / "missing.prog"))
    with pytest.raises(ParseError) as e:
        f.write_text("def f(x):\n    return x +* 2\n")
        verify.parse(str(f))
    assert str(e.value).startswith(f"{f}:2:")


def test_typecheck_rejects_bad_programs():
    from verify.program.ir import Eqn, Lit, Program, typecheck
    ok = Program("f", ("x", "y"), 1, (Eqn("relu", (0,), (), (1,)),), (1,))
    assert typecheck(ok) is ok
    bad = [
        Program("f", ("x", "y"), 1, (Eqn("relu", (1,), (), (1,)),), (1,)),          # use before definition
        Program("f", ("x", "y"), 1, (Eqn("nope", (0,), (), (1,)),), (1,)),          # unknown primitive
        Program("f", ("x", "y"), 1, (Eqn("add", (0,), (), (1,)),), (1,)),           # arity
        Program("f", ("x", "x"), 1, (Eqn("relu", (0,), (), (1,)),), (1,)),          # names
        Program("f", ("x", "y"), 1, (Eqn("relu", (0,), (("alpha", 0.5),), (1,)),), (1,)),  # float param
        Program("f", ("x", "y"), 1, (Eqn("relu", (0,), (), (0,)),), (1,)),          # overwrite an input
        Program("f", ("x", "y"), 1, (Eqn("relu", (Lit(0.5),), (), (1,)),), (1,)),   # float literal
        Program("f", ("x",), 1, (), ()),                                            # no output
    ]
    for p in bad:
        with pytest.raises(ProgramError):
            typecheck(p)
