"""Program text: a small Python subset read with ``ast`` and never executed.

Accepted: one or more ``def``s whose bodies are assignments (``a = expr``, ``lo, hi = sort(a, b)``) and a
final ``return`` of one or more expressions; expressions are numbers (read exactly from their source
text: 0.1 is 1/10), names, unary -, + - * /, ``** n`` with an integer literal n, calls of registered
primitives with keyword params (``relu(u, alpha=1/2)``, ``where(u > v, a, b)``) and calls of earlier
``def``s, which are inlined.  Arithmetic on literals alone is folded.  Everything else is a ParseError
with line and column.  A lambda string ``lambda x, y: max(x, y) + relu(x - y)`` is accepted too.

Tensor programs: an argument annotated with a list of sizes is an array input (``def f(x: [128, 784]):``);
``a @ b`` (or ``matmul(a, b)``) is a matrix product; params may be tuples of ints (``axes=(0, 1)``); large
constant arrays live in an .npz file beside the program, named once at the top with the digest of their
exact content, ``arrays("model.npz", digest="...")``, and used as ``const("name")``.  The file is read
with ``allow_pickle=False``; a digest that does not match is an error.
"""
import ast
import fractions
import os

from flint import fmpq

from ..errors import InputError, ParseError, ProgramError
from ..program.ir import Arr, Lit
from ..program.prims import INT, INTS, OPT_INTS, PRIMITIVES
from ..program.prims.smooth import MAX_EXPONENT
from ..rational import MAX_BITS, check_literal
from . import Builder

MAX_SOURCE_BYTES = 64 * 2 ** 20      # program text (a file or a string)

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}
_CMP = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}
_STMT_HINTS = {
    ast.If: "if statements are not allowed: branch with where(cond, a, b)",
    ast.For: "loops are not allowed: programs are straight-line",
    ast.While: "loops are not allowed: programs are straight-line",
    ast.Import: "imports are not allowed in program text",
    ast.ImportFrom: "imports are not allowed in program text",
    ast.AugAssign: "augmented assignment is not allowed: programs assign each name once",
}


def _fold(op, a, b, node, err):
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if b == 0:
        raise err("division by zero in a constant", node)
    return a / b


class _Compiler:
    def __init__(self, source, filename, defs):
        self.source, self.filename, self.defs = source, filename, defs
        self.arrays = None
        self.tensor = False     # a tensor program: shapes are checked equation by equation
        # split once: ast.get_source_segment re-splits the whole source on every call (quadratic)
        self.lines = source.splitlines(keepends=True) if source else []

    def segment(self, node):
        """The source text of a one-line node (a number literal), or None."""
        if not self.lines or node.lineno != node.end_lineno or node.lineno > len(self.lines):
            return None
        line = self.lines[node.lineno - 1].encode("utf-8")
        return line[node.col_offset:node.end_col_offset].decode("utf-8")

    def err(self, msg, node):
        return ParseError(msg, getattr(node, "lineno", None),
                          getattr(node, "col_offset", -1) + 1 if hasattr(node, "col_offset") else None,
                          self.filename)

    # ------------------------------------------------------------------------ functions and statements
    def function(self, fdef, b, arg_atoms, top, stack=()):
        """Compile ``fdef`` into builder ``b`` with its parameters bound to ``arg_atoms``; return the
        returned atoms.  At top level, assigned names are kept exactly; in inlined calls they get fresh
        names."""
        if fdef.name in stack:
            raise self.err(f"{fdef.name} calls itself: recursion is not allowed", fdef)
        stack = stack + (fdef.name,)
        args = self.arg_names(fdef)
        if len(args) != len(arg_atoms):
            raise self.err(f"{fdef.name} takes {len(args)} argument(s), got {len(arg_atoms)}", fdef)
        env = dict(zip(args, arg_atoms))
        body = list(fdef.body)
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]  # docstring
        if not body or not isinstance(body[-1], ast.Return):
            raise self.err(f"{fdef.name} must end with a return statement", body[-1] if body else fdef)
        if top:
            b.reserve(n.id for st in body for n in ast.walk(st) if isinstance(n, ast.Name)
                      and isinstance(n.ctx, ast.Store))
        for st in body[:-1]:
            self.statement(st, b, env, top, stack)
        ret = body[-1].value
        if ret is None:
            raise self.err("return needs a value", body[-1])
        if isinstance(ret, ast.Tuple):
            return [self.expr(e, b, env, stack) for e in ret.elts]
        return self.multi(ret, b, env, stack)   # one value, or every output of sort / a multi-return def

    def arg_names(self, fdef):
        a = fdef.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs or fdef.decorator_list:
            raise self.err(f"{fdef.name}: only plain positional arguments are allowed", fdef)
        names = [x.arg for x in a.args]
        if len(set(names)) != len(names):
            raise self.err(f"{fdef.name}: repeated argument name", fdef)
        return names

    def arg_shapes(self, fdef):
        """The declared shape of every argument: () unless annotated with a list of sizes."""
        out = []
        for x in fdef.args.args:
            ann = x.annotation
            if ann is None:
                out.append(())
                continue
            if not isinstance(ann, (ast.List, ast.Tuple)) or not all(
                    isinstance(d, ast.Constant) and type(d.value) is int and d.value >= 0 for d in ann.elts):
                raise self.err(f"the annotation of {x.arg} must be a list of sizes, e.g. {x.arg}: [128, 784]", ann)
            out.append(tuple(d.value for d in ann.elts))
        return out

    def statement(self, st, b, env, top, stack):
        if isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant) and isinstance(st.value.value, str):
            return
        if isinstance(st, ast.Return):
            raise self.err("return must be the last statement", st)
        if not isinstance(st, ast.Assign):
            hint = _STMT_HINTS.get(type(st), f"{type(st).__name__} statements are not allowed: only assignments "
                                             f"and a final return")
            raise self.err(hint, st)
        if len(st.targets) != 1:
            raise self.err("chained assignment is not allowed", st)
        target = st.targets[0]
        if isinstance(target, ast.Name):
            names = [target]
        elif isinstance(target, (ast.Tuple, ast.List)) and all(isinstance(t, ast.Name) for t in target.elts):
            names = list(target.elts)
        else:
            raise self.err("assign to a name or a tuple of names", target)
        for t in names:
            if t.id in env:
                raise self.err(f"{t.id!r} is assigned twice: programs are single-assignment", t)
        wanted = [t.id if top else b.fresh(t.id) for t in names]
        if isinstance(target, ast.Name):
            atoms = [self.expr(st.value, b, env, stack, name=wanted[0])]
        elif isinstance(st.value, (ast.Tuple, ast.List)):
            if len(st.value.elts) != len(names):
                raise self.err(f"{len(names)} names but {len(st.value.elts)} values", st)
            atoms = [self.expr(v, b, env, stack, name=w) for v, w in zip(st.value.elts, wanted)]
        else:
            atoms = self.multi(st.value, b, env, stack, wanted)
            if len(atoms) != len(names):
                raise self.err(f"{len(names)} names but the call returns {len(atoms)} value(s)", st)
        for t, a in zip(names, atoms):
            env[t.id] = a

    # ------------------------------------------------------------------------------------- expressions
    def expr(self, node, b, env, stack, name=None):
        atoms = self.multi(node, b, env, stack, [name] if name else None)
        if len(atoms) != 1:
            what = node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else "it"
            raise self.err(f"{what} returns {len(atoms)} values: unpack them (a, b = ...)", node)
        return atoms[0]

    def number(self, node):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.err(f"constant {v!r} is not a number", node)
        text = self.segment(node)
        try:
            check_literal(text.replace("_", "") if text else str(v), "the literal")
        except InputError as e:
            raise self.err(str(e), node) from None
        try:
            f = fractions.Fraction(text.replace("_", "")) if text else fractions.Fraction(v)
        except (ValueError, ZeroDivisionError):
            f = fractions.Fraction(v)
        return fmpq(f.numerator, f.denominator)

    def multi(self, node, b, env, stack, names=None):
        """Compile an expression; return its atoms (one, or several for sort and multi-return defs)."""
        nm = names[0] if names else None
        loc = (node.lineno, node.col_offset + 1) if hasattr(node, "lineno") else None
        if isinstance(node, ast.Constant):
            return [Lit(self.number(node))]
        if isinstance(node, ast.Name):
            if node.id in env:
                return [env[node.id]]
            if node.id in PRIMITIVES:
                raise self.err(f"{node.id} is a primitive: call it, e.g. {node.id}(x)", node)
            raise self.err(f"unknown name {node.id!r}", node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.multi(node.operand, b, env, stack, names)
            if not isinstance(node.op, ast.USub):
                raise self.err(f"operator {type(node.op).__name__} is not allowed", node)
            a = self.expr(node.operand, b, env, stack)
            if isinstance(a, Lit):
                return [Lit(-a.value)]
            return list(b.emit("neg", [a], names=[nm] if nm else None, loc=loc))
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                return [self.power(node, b, env, stack, nm, loc)]
            # a + b + c + ... is a left-deep chain: walk down its spine without recursion (a generated sum of
            # hundreds of terms would exhaust Python's recursion limit)
            spine = []
            while isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Pow):
                op = "matmul" if isinstance(node.op, ast.MatMult) else _BINOPS.get(type(node.op))
                if op is None:
                    raise self.err(f"operator {type(node.op).__name__} is not allowed (use + - * / @ and ** n)",
                                   node)
                spine.append((op, node))
                node = node.left
            x = self.expr(node, b, env, stack)
            for i, (op, n) in enumerate(reversed(spine)):
                y = self.expr(n.right, b, env, stack)
                last = i == len(spine) - 1
                at = (n.lineno, n.col_offset + 1)
                if op == "matmul":
                    x = self.matmul(x, y, b, n, nm if last else None, at)
                elif isinstance(x, Lit) and isinstance(y, Lit):
                    x = Lit(_fold(op, x.value, y.value, n, self.err))
                else:
                    x = b.emit(op, [x, y], names=[nm] if nm and last else None, loc=at)[0]
                    if self.tensor:
                        self.shaped(b, x, n)
            return [x]
        if isinstance(node, ast.Call):
            return self.call(node, b, env, stack, names, loc)
        hints = {
            ast.Attribute: "attribute access is not allowed (write relu(x), not torch.relu(x))",
            ast.Compare: "a comparison is only allowed as the first argument of where(u > v, a, b)",
            ast.IfExp: "conditional expressions are not allowed: use where(cond, a, b)",
            ast.BoolOp: "and/or are not allowed: use where, min and max",
            ast.Lambda: "lambda is only allowed as the whole program",
        }
        raise self.err(hints.get(type(node), f"{type(node).__name__} expressions are not allowed"), node)

    def power(self, node, b, env, stack, nm, loc):
        e = self.expr(node.right, b, env, stack)
        if not isinstance(e, Lit) or e.value.q != 1:
            raise self.err("the exponent of ** must be an integer literal (use exp(y*log(x)) otherwise)", node.right)
        n = int(e.value.p)
        if abs(n) > MAX_EXPONENT:
            raise self.err(f"the exponent {n} exceeds the limit |n| <= {MAX_EXPONENT} "
                           "(verify.program.prims.smooth.MAX_EXPONENT)", node.right)
        x = self.expr(node.left, b, env, stack)
        if isinstance(x, Lit):
            if x.value == 0 and n < 0:
                raise self.err("0 to a negative power in a constant", node)
            if x.value.height_bits() * abs(n) > MAX_BITS:
                raise self.err(f"the constant would need about {x.value.height_bits() * abs(n)} bits, more than "
                               f"the limit {MAX_BITS} (verify.rational.MAX_BITS)", node)
            return Lit(x.value ** n)
        return b.emit("pow", [x], {"n": n}, names=[nm] if nm else None, loc=loc)[0]

    def param(self, node):
        if isinstance(node, ast.Constant) and (isinstance(node.value, (str, bool)) or node.value is None):
            return node.value
        if isinstance(node, (ast.Tuple, ast.List)):
            vals = [self.param(e) for e in node.elts]
            if not all(isinstance(v, fmpq) and v.q == 1 for v in vals):
                raise self.err("a tuple param holds integers only, e.g. axes=(0, 1)", node)
            return tuple(int(v.p) for v in vals)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "const":
            return self.const(node)
        for n in ast.walk(node):
            if not isinstance(n, (ast.Constant, ast.UnaryOp, ast.BinOp, ast.operator, ast.unaryop)):
                raise self.err("only numbers, strings, True/False and None are allowed", n)
        return self.expr(node, None, {}, ()).value

    def call(self, node, b, env, stack, names, loc):
        if not isinstance(node.func, ast.Name):
            raise self.err("attribute access is not allowed (write relu(x), not torch.relu(x))", node.func)
        fname = node.func.id
        if fname == "const":
            return [self.const(node)]
        if fname == "matmul":
            if len(node.args) != 2 or node.keywords:
                raise self.err("matmul takes two arrays: matmul(a, b)", node)
            x, y = (self.expr(a, b, env, stack) for a in node.args)
            return [self.matmul(x, y, b, node, names[0] if names else None, loc)]
        if fname in self.defs:
            if node.keywords:
                raise self.err(f"{fname} is a def: it takes no keyword arguments", node)
            args = [self.expr(a, b, env, stack) for a in node.args]
            return self.function(self.defs[fname], b, args, False, stack)
        prim = PRIMITIVES.get(fname)
        if prim is None:
            raise self.err(f"unknown function {fname!r} (primitives: {', '.join(sorted(PRIMITIVES))})", node.func)
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.err("*args is not allowed", a)
        params = self.call_params(node, prim)
        arg_nodes = self.where_args(node, params) if fname == "where" else node.args
        ins = [self.expr(a, b, env, stack) for a in arg_nodes]
        try:
            full = prim.check_params(params, len(ins), fname)
        except ProgramError as e:
            raise self.err(str(e), node) from None
        n_out = prim.n_out(len(ins), full)
        outs = list(b.emit(fname, ins, params, n_out=n_out,
                           names=names if names and len(names) == n_out else None, loc=loc))
        if self.tensor or prim.tensor:
            self.shaped(b, outs[0], node)
        return outs

    def call_params(self, node, prim):
        """The keyword params of a call of primitive ``prim`` as a dict (integral numbers made ints, or 1-tuples
        where the param takes a tuple of ints); a ParseError for **kwargs, a repeated or a non-constant param."""
        params = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise self.err("**kwargs is not allowed", kw)
            if kw.arg in params:
                raise self.err(f"param {kw.arg} given twice", kw.value)
            try:
                v = self.param(kw.value)
            except ParseError as e:
                raise self.err(f"param {kw.arg}= must be a constant ({e.msg})", kw.value) from None
            if kw.arg in prim.params and prim.params[kw.arg][1] == INT and isinstance(v, fmpq) and v.q == 1:
                v = int(v.p)
            kind = prim.params[kw.arg][1] if kw.arg in prim.params else None
            if kind in (INTS, OPT_INTS) and isinstance(v, fmpq) and v.q == 1:
                v = (int(v.p),)
            params[kw.arg] = v
        return params

    def where_args(self, node, params):
        """The four argument nodes of ``where(u > v, a, b)``: [u, v, a, b]; sets ``params["op"]`` from the
        comparison; a ParseError unless the condition is a single allowed comparison and op= is not given."""
        if len(node.args) != 3 or not isinstance(node.args[0], ast.Compare) or len(node.args[0].ops) != 1:
            raise self.err("where takes a single comparison and two values: where(u > v, a, b)", node)
        cmp = node.args[0]
        if "op" in params:
            raise self.err("write the comparison in the condition, not op=", node)
        params["op"] = _CMP.get(type(cmp.ops[0]))
        if params["op"] is None:
            raise self.err(f"comparison {type(cmp.ops[0]).__name__} is not allowed", cmp)
        return [cmp.left, cmp.comparators[0], node.args[1], node.args[2]]

    def shaped(self, b, atom, node):
        """The shape of ``atom``; a shape error of the equation that defines it is a ParseError here."""
        try:
            return b.shape_of(atom)
        except ProgramError as e:
            raise self.err(str(e), node) from None

    def const(self, node):
        if len(node.args) != 1 or node.keywords or not isinstance(node.args[0], ast.Constant) or \
                not isinstance(node.args[0].value, str):
            raise self.err('const takes the name of an array constant: const("w1")', node)
        name = node.args[0].value
        if self.arrays is None:
            raise self.err('const() needs the arrays of the program: write arrays("file.npz", digest="...") '
                           "at the top", node)
        if name not in self.arrays:
            known = ", ".join(sorted(self.arrays)[:10])
            raise self.err(f"no array constant named {name!r} (the arrays file holds {known})", node)
        return Arr(name)

    def matmul(self, x, y, b, node, nm, loc):
        sx, sy = self.shaped(b, x, node), self.shaped(b, y, node)
        if len(sx) in (1, 2) and len(sy) in (1, 2):
            params = {"ca": (len(sx) - 1,), "cb": (0,)}
        elif len(sx) == len(sy) == 3:
            params = {"ca": (2,), "cb": (1,), "ba": (0,), "bb": (0,)}
        else:
            raise self.err(f"@ multiplies 1-D and 2-D arrays (or batches of matrices); got shapes {list(sx)} and "
                           f"{list(sy)}: use dot(a, b, ca=, cb=, ba=, bb=)", node)
        out = b.emit("dot", [x, y], params, names=[nm] if nm else None, loc=loc)[0]
        self.shaped(b, out, node)
        return out


def _read_source(source):
    """(text, filename): a lambda string or program text as it is; anything else on one line is a path (a
    mistyped path is an error, not program text)."""
    if len(source) > MAX_SOURCE_BYTES:
        raise InputError(f"the program text is larger than the limit of {MAX_SOURCE_BYTES} bytes")
    s = source.strip()
    if s.startswith("lambda") or "\n" in source or s.startswith("def ") or not s:
        return source, None
    try:
        if os.path.isdir(s):
            raise InputError(f"cannot read program file {s!r}: it is a folder")
        if not os.path.exists(s):
            raise InputError(f"no program file {s!r} (PROGRAM is a .prog file, a lambda string, or program text "
                             "with a def)")
        if os.path.getsize(s) > MAX_SOURCE_BYTES:
            raise InputError(f"program file {s!r} is larger than the limit of {MAX_SOURCE_BYTES} bytes")
        with open(s, encoding="utf-8") as f:
            return f.read(), s
    except OSError as e:
        raise InputError(f"cannot read program file {s!r}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"program file {s!r} is not UTF-8 text (a binary file?)") from None


def parse(source, fn=None, base=None):
    """Program from .prog text, a path to a .prog file, or a lambda string.

    ``fn`` picks a def by name (default: the last one).  ``base``: the folder of the arrays file named by
    ``arrays(...)`` when ``source`` is text (default: the current folder; a file's own folder for a path).
    Raises ParseError with line:column.
    """
    text, filename = _read_source(source)
    try:
        return _parse(text, filename, fn, base)
    except RecursionError:
        raise ParseError("the program is nested too deeply to be read (an expression nested hundreds of levels "
                         "deep: Python's recursion limit)", None, None, filename) from None
    except MemoryError:
        raise ParseError("the program is too large to be read in this much memory", None, None, filename) from None


def _parse(text, filename, fn, base=None):
    try:
        tree = ast.parse(text.strip() if text.strip().startswith("lambda") else text, filename or "<program>")
    except SyntaxError as e:
        raise ParseError(f"syntax error: {e.msg}", e.lineno, e.offset, filename) from None
    except ValueError as e:           # e.g. "source code string cannot contain null bytes"
        raise ParseError(f"not program text: {e}", None, None, filename) from None
    comp = _Compiler(text.strip() if text.strip().startswith("lambda") else text, filename, {})
    body = tree.body
    if len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Lambda):
        lam = body[0].value
        fdef = ast.FunctionDef(name="f", args=lam.args, body=[ast.Return(value=lam.body)], decorator_list=[],
                               lineno=lam.lineno, col_offset=lam.col_offset)
        if fn not in (None, "f"):
            raise InputError(f"--fn {fn!r}: a lambda has no named defs")
        names = comp.arg_names(fdef)
        b = Builder("f", names)
        return b.finish(comp.function(fdef, b, list(range(len(names))), True))
    defs = {}
    for st in body:
        if isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant) and isinstance(st.value.value, str):
            continue
        if isinstance(st, ast.Expr) and isinstance(st.value, ast.Call) and isinstance(st.value.func, ast.Name) \
                and st.value.func.id == "arrays":
            if comp.arrays is not None:
                raise comp.err("arrays(...) is given twice", st)
            comp.arrays = _load_arrays(comp, st.value, filename, base)
            continue
        if not isinstance(st, ast.FunctionDef):
            hint = _STMT_HINTS.get(type(st), "only def statements are allowed at the top level")
            raise comp.err(hint, st)
        if st.name in defs:
            raise comp.err(f"def {st.name} is defined twice", st)
        if st.name in PRIMITIVES:
            raise comp.err(f"def {st.name} would shadow the primitive {st.name}", st)
        defs[st.name] = st
    if not defs:
        raise ParseError("no def found: write `def f(x): ...` or a lambda string", 1, 1, filename)
    if fn is None:
        fn = list(defs)[-1]
    if fn not in defs:
        raise InputError(f"no def named {fn!r} (found: {', '.join(defs)})")
    # a def may call only defs written before it, so the inlining order is the reading order
    order = list(defs)
    comp.defs = {}
    for name in order:
        comp.defs[name] = defs[name]
        if name == fn:
            break
    fdef = defs[fn]
    names = comp.arg_names(fdef)
    shapes = comp.arg_shapes(fdef)
    comp.tensor = bool(comp.arrays) or any(sh != () for sh in shapes)
    b = Builder(fn, names, shapes, comp.arrays)
    return b.finish(comp.function(fdef, b, list(range(len(names))), True))


def _load_arrays(comp, call, filename, base=None):
    """The Arrays named by ``arrays("file.npz", digest="...")`` (the file beside the program text)."""
    from ..program.arrays import load_npz
    if len(call.args) != 1 or not isinstance(call.args[0], ast.Constant) or not isinstance(call.args[0].value, str) \
            or [k.arg for k in call.keywords] != ["digest"] or not isinstance(call.keywords[0].value, ast.Constant) \
            or not isinstance(call.keywords[0].value.value, str):
        raise comp.err('write arrays("file.npz", digest="<sha256 of the content>")', call)
    name, digest = call.args[0].value, call.keywords[0].value.value
    if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        raise comp.err(f"the arrays file {name!r} must be a path beside the program, not above it", call)
    if base is None:
        base = os.path.dirname(os.path.abspath(filename)) if filename else os.getcwd()
    try:
        return load_npz(os.path.join(base, name), digest)
    except InputError as e:
        raise comp.err(str(e), call) from None
