"""Every claim of the paper as a property of random programs: one checker per claim, shared by the property
tests (tests/properties/, through hypothesis ``@given``) and by ``verify fuzz`` (campaigns and the mutation
self-test).

A checker takes an ``Example`` (program, point, convention and the claim's extra data) and returns "ok" or
"undecided" (the arithmetic, or a missing capability, could not decide: an honest answer, never a pass in
disguise), and raises AssertionError with a message naming the claim and the numbers when the claim fails.
Any other exception is a failure too (the programs are valid by construction, so e.g. a DomainError is a
bug).  Each claim also has a hypothesis strategy of examples, so a failure shrinks to a minimal program.

Oracles are independent of the code under test wherever possible: the certificate checker's kernel (its
own primitive values, index rules, pieces and forward mode), exact germs of the program along lines
(rational functions of t: derivatives without any jvp/vjp rule), mpmath intervals (not arb), and PyTorch /
JAX themselves.

  lemma1        forward and backward mode give the same Jacobian (exactly in rationals)
  theorem1      Theorem 1's construction: the same function, AD's derivative shifted by r exactly where
                x_i = a_i
  theorem2      AD returns grad f_sigma(x) for the pattern sigma chosen at x (checked by the kernel), sigma is
                in I(x) and the AD output is a generator of D_f(x)
  proposition2  the integral identity along a segment or a polynomial curve is certified (never REFUTED for
                a continuous program), its left side is f(y) - f(x), and the pattern on every piece of
                Claim 1's partition is the one the program chooses there
  proposition3  where every switching function is certified nonzero (the pattern is constant near x), AD
                equals the gradient: exact germ derivatives (rational programs) or mpmath central
                differences at high precision
  proposition4  chain rule: AD of outer o inner equals J_outer(inner(x)) J_inner(x)
  soundness     the exact value lies in the ball, the ball meets the mpmath interval, same patterns; ball
                gradients contain exact gradients
  frameworks    our torch / jax conventions agree with torch and jax on the same program (verify.frameworks)
  certificates  every certificate a certifier writes (index sets, critical points, differentiability, Theorem
                1, segments, integrals) passes the independent checker (verify.checker)
"""
import contextlib
import json
from dataclasses import dataclass, field

from flint import arb, ctx, fmpq
from hypothesis import strategies as st

from .. import strategies as S
from ..interpret.ad import grad
from ..errors import DomainError, InputError, Undecided, VerifyError
from ..interpret.evaluate import compiled, evaluate, run
from ..program.ir import Program, to_text
from ..numbers import get_system
from ..program.prims import affine
from ..rational import fmt_q, to_fmpq
from ..truth import Verdict
from .oracles import (NotRational, contains, dense_piece, germ_partials, meets, q_bounds, same, show, width)

# what checking one example gives (the campaign counts them): a failure raises AssertionError
EXAMPLE_OK, EXAMPLE_UNDECIDED = "ok", "undecided"
CONVENTIONS = ("torch", "jax", "tf")


# ------------------------------------------------------------------------------------------- examples

@dataclass
class Example:
    """One random instance of a claim.  ``extra`` holds the claim's other data: Programs (a second program),
    vectors (lists of fmpq), curves (lists of vectors), strings and ints."""
    claim: str
    program: Program
    point: list
    convention: str = "torch"
    extra: dict = field(default_factory=dict)

    def __repr__(self):
        parts = [f"claim={self.claim}", f"convention={self.convention}",
                 f"point=[{', '.join(fmt_q(q) for q in self.point)}]"]
        for k, v in self.extra.items():
            if isinstance(v, Program):
                continue
            parts.append(f"{k}={_plain(v)}")
        progs = [to_text(self.program)] + [f"# {k}:\n{to_text(v)}" for k, v in self.extra.items()
                                            if isinstance(v, Program)]
        return "Example(" + ", ".join(parts) + ")\n" + "\n".join(progs)

    def to_json(self):
        return {"claim": self.claim, "program": to_text(self.program), "point": [fmt_q(q) for q in self.point],
                "convention": self.convention, "extra": {k: _encode(v) for k, v in self.extra.items()}}

    @classmethod
    def from_json(cls, d):
        from ..frontends.text import parse
        return cls(d["claim"], parse(d["program"]), [to_fmpq(q) for q in d["point"]], d["convention"],
                   {k: _decode(v) for k, v in d.get("extra", {}).items()})


def _plain(v):
    if isinstance(v, fmpq):
        return fmt_q(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_plain(x) for x in v) + "]"
    return repr(v)


def _encode(v):
    if isinstance(v, Program):
        return {"program": to_text(v)}
    if isinstance(v, list) and v and all(isinstance(x, list) for x in v):
        return {"curve": [[fmt_q(q) for q in row] for row in v]}
    if isinstance(v, list):
        return {"vector": [fmt_q(q) for q in v]}
    return {"value": v}


def _decode(d):
    from ..frontends.text import parse
    if "program" in d:
        return parse(d["program"])
    if "curve" in d:
        return [[to_fmpq(q) for q in row] for row in d["curve"]]
    if "vector" in d:
        return [to_fmpq(q) for q in d["vector"]]
    return d["value"]


def dumps(example):
    return json.dumps(example.to_json(), indent=1)


# ------------------------------------------------------------------------------------------- registry

@dataclass
class Claim:
    name: str
    paper: str
    make: object            # (draw, **options) -> Example, wrapped by st.composite
    check: object           # Example -> "ok" | "undecided"
    needs: tuple = ()       # optional capabilities: "integral", "torch|jax"

    def strategy(self, **options):
        """A hypothesis strategy of Examples (``options``: e.g. primitives=... to focus the programs)."""
        return st.composite(self.make)(**options)

    def available(self):
        """None when the claim can run here, else the reason it cannot."""
        if "integral" in self.needs and certify_function("integral_identity") is None:
            return "verify.certify.integral_identity is not available"
        if "frameworks" in self.needs and not framework_list():
            return "neither torch nor jax is installed"
        return None


CLAIMS = {}


def claim(name, paper, needs=()):
    def deco(fn):
        CLAIMS[name] = Claim(name, paper, fn.make, fn, needs)
        return fn
    return deco


def maker(fn):
    """Attach a strategy body to the checker defined next (``check_x.make = ...``)."""
    def attach(check):
        check.make = fn
        return check
    return attach


def certify_function(name):
    """The certifier ``name`` from verify.certify (or its module, while it is not exported yet), or None."""
    import importlib
    try:
        mod = importlib.import_module("verify.certify")
        fn = getattr(mod, name, None)
        if fn is not None:
            return fn
    except ImportError:
        pass
    for modname in ("integral", "segment", "differentiable"):   # before they are exported
        try:
            fn = getattr(importlib.import_module(f"verify.certify.{modname}"), name, None)
        except ImportError:
            continue
        if fn is not None:
            return fn
    return None


def framework_list():
    from ..frameworks import FRAMEWORKS, available
    return tuple(fw for fw in FRAMEWORKS if available(fw))


def _fail(claim_name, msg):
    raise AssertionError(f"{claim_name}: {msg}")


def _vec(v):
    return "(" + ", ".join(show(x) for x in v) + ")"


def _mat(m):
    return "[" + "; ".join(_vec(r) for r in m) + "]"


# ----------------------------------------------------------------------------------- shared generation

def _program(draw, n_inputs=None, max_eqns=8, primitives=None, rational=None, max_outputs=2, kink_params=True,
             exclude=()):
    n = draw(st.integers(1, 3)) if n_inputs is None else n_inputs
    if rational is None:
        rational = draw(st.integers(0, 3)) > 0          # rational three times in four: exact answers
    prims = [p for p in (primitives or S.ALL) if p not in exclude]
    if rational and not any(p in S.RATIONAL_SMOOTH or p in S.NONSMOOTH for p in prims):
        rational = False
    return draw(S.programs(n_inputs=n, max_eqns=max_eqns, primitives=tuple(prims), rational_only=rational,
                           max_outputs=max_outputs, kink_params=kink_params))


def _convention(draw):
    return draw(st.sampled_from(CONVENTIONS))


# ------------------------------------------------------------------------------------------- Lemma 1

def _make_lemma1(draw, primitives=None, max_eqns=10):
    P = _program(draw, max_eqns=max_eqns, primitives=primitives)
    return Example("lemma1", P, draw(S.points(P)), _convention(draw))


@claim("lemma1", "Lemma 1: forward and backward mode compute the same selection derivative")
@maker(_make_lemma1)
def check_lemma1(ex):
    P, x, c = ex.program, ex.point, ex.convention
    number = ex.extra.get("number", "exact")         # "ball": the two modes in balls (overlapping enclosures)
    try:
        f = grad(P, x, mode="forward", convention=c, number=number)
        b = grad(P, x, mode="backward", convention=c, number=number)
    except Undecided:
        return EXAMPLE_UNDECIDED
    if f.pattern != b.pattern:
        _fail("lemma1", f"forward chose pattern {f.pattern}, backward {b.pattern}")
    for o, (rf, rb) in enumerate(zip(f.jacobian, b.jacobian)):
        for i, (u, v) in enumerate(zip(rf, rb)):
            if not same(u, v):
                _fail("lemma1", f"d out{o} / d {P.input_names[i]}: forward mode gives {show(u)}, backward mode "
                                f"{show(v)} (Jacobians forward {_mat(f.jacobian)}, backward {_mat(b.jacobian)})")
    if f.exact != b.exact:
        _fail("lemma1", f"forward mode exact={f.exact} but backward mode exact={b.exact}")
    for u, v in zip(f.values, b.values):
        if not same(u, v):
            _fail("lemma1", f"the two runs give different values {show(u)} and {show(v)}")
    return EXAMPLE_OK


# ------------------------------------------------------------------------------------------- Theorem 2

def _make_theorem2(draw, primitives=None, max_eqns=8):
    P = _program(draw, max_eqns=max_eqns, primitives=primitives)
    return Example("theorem2", P, draw(S.points(P)), _convention(draw))


def _kernel_signs(K, prim, params, args):
    signs = [K.sign(K.affine_value(f, args)) for f in K.switches(prim, params, len(args))]
    return None if any(s is None for s in signs) else signs


@claim("theorem2", "Theorem 2: AD outputs grad f_s(x) for the pattern s chosen at x, an element of D_f(x)")
@maker(_make_theorem2)
def check_theorem2(ex, pattern_cap=64):
    from ..certificates import resolved_program
    P, x, c = ex.program, ex.point, ex.convention
    try:
        g = grad(P, x, convention=c)
    except Undecided:
        return EXAMPLE_UNDECIDED
    R = resolved_program(P, c)
    steps = [s for s in compiled(P, c) if s.sel is not None]
    status = _theorem2_by_the_kernel(R, x, g, steps)
    if status is None:
        return EXAMPLE_UNDECIDED
    return status if _theorem2_in_the_field(P, x, c, g, R, steps, pattern_cap) else EXAMPLE_UNDECIDED


def _theorem2_by_the_kernel(R, x, g, steps):
    """The checker kernel's own reading of the resolved program ``R`` agrees with AD's result ``g``: the values,
    each chosen piece is the index rule's, f_sigma(x) = f(x) and its Jacobian is AD's.  EXAMPLE_OK, or
    EXAMPLE_UNDECIDED when an index rule's signs are undecided, None when the kernel cannot evaluate f."""
    from ..checker import kernel as K
    status = EXAMPLE_OK
    ours = [dense_piece(s.piece(i), len(s.ins)) for s, i in zip(steps, g.pattern)]
    with ctx.workprec(max(g.prec or 128, 128)):
        try:
            full = K.Frozen(R, x)                     # the primitives' own definitions, no pieces
        except K.CannotDecide:
            return None
        for o, (u, v) in enumerate(zip(full.outputs(), g.values)):
            if not same(u, v):
                _fail("theorem2", f"output {o}: the program's value is {show(v)} but the primitives' definitions "
                                  f"give {show(u)}")
        for s, piece, e in zip(steps, ours, [R.eqns[s.k] for s in steps]):
            params = dict(e.params)
            if piece not in K.pieces(e.prim, params, len(e.ins)):
                _fail("theorem2", f"equation {s.k + 1} ({e.prim}) chose {piece}, which is not one of its pieces")
            signs = _kernel_signs(K, e.prim, params, full.args[s.k])
            if signs is None:
                status = EXAMPLE_UNDECIDED
                continue
            want = K.choose(e.prim, params, len(e.ins), signs)
            if want != piece:
                _fail("theorem2", f"equation {s.k + 1} ({e.prim} at {_vec(full.args[s.k])}): AD used the piece "
                                  f"{piece} but the index rule picks {want}")
        frozen = K.Frozen(R, x, ours)                 # f_sigma and its gradient, by the kernel's forward mode
        for o, (u, v) in enumerate(zip(frozen.outputs(), g.values)):
            if not same(u, v):
                _fail("theorem2", f"f_sigma(x) = {show(u)} differs from f(x) = {show(v)} for sigma = {g.pattern}")
        kj = frozen.jacobian()
        for o, (rk, rg) in enumerate(zip(kj, g.jacobian)):
            for i, (u, v) in enumerate(zip(rk, rg)):
                if not same(u, v):
                    _fail("theorem2", f"AD gives {_mat(g.jacobian)} but grad f_sigma(x) = {_mat(kj)} "
                                      f"(sigma = {g.pattern})")
    return status


def _theorem2_in_the_field(P, x, c, g, R, steps, pattern_cap):
    """D_f(x): AD's pattern is in I(x), its output among the generators, and every pattern of I(x) agrees with
    f at x.  False when the field cannot be computed (undecided, or over ``pattern_cap`` patterns)."""
    from ..certify import conservative_field
    from ..checker import kernel as K
    try:
        fld = conservative_field(P, x, convention=c, cap=pattern_cap)
    except (Undecided, InputError):
        return False
    pats = fld.index.patterns
    if tuple(g.pattern) not in pats:
        _fail("theorem2", f"the chosen pattern {g.pattern} is not in I(x) = {pats}")
    if not any(all(same(u, v) for ru, rv in zip(jac, g.jacobian) for u, v in zip(ru, rv))
               for jac in fld.gradients):
        _fail("theorem2", f"AD's output {_mat(g.jacobian)} is not a generator of D_f(x): "
                          f"{[_mat(j) for j in fld.gradients]}")
    with ctx.workprec(max(fld.index.prec or 128, 128)):
        for pat in pats:
            pieces = [dense_piece(s.piece(i), len(s.ins)) for s, i in zip(steps, pat)]
            vals = K.Frozen(R, x, pieces, want_grad=False).outputs()
            for u, v in zip(vals, g.values):
                if not same(u, v):
                    _fail("theorem2", f"pattern {pat} is in I(x) but f_s(x) = {show(u)} != f(x) = {show(v)}")
    return True


# ------------------------------------------------------------------------------------------- Theorem 1

def _make_theorem1(draw, primitives=None, max_eqns=6):
    P = _program(draw, max_eqns=max_eqns, primitives=primitives, max_outputs=1)
    a = draw(S.points(P))
    n = P.n_inputs
    r = draw(S.vectors(n))
    # a second point sharing some coordinates with a: the shift lands exactly where x_i = a_i
    y = [ai if draw(st.booleans()) else draw(S.small_rationals()) for ai in a]
    return Example("theorem1", P, a, _convention(draw), {"shift": r, "other": y})


@claim("theorem1", "Theorem 1: a program for the same function whose AD derivative is shifted by any r at a")
@maker(_make_theorem1)
def check_theorem1(ex):
    from ..certify import spurious
    from ..frontends.text import parse
    P, a, c = ex.program, ex.point, ex.convention
    r, y = ex.extra["shift"], ex.extra["other"]
    Q, _ = spurious(P, a, r, convention=c)
    if parse(to_text(Q)) != Q:
        _fail("theorem1", "the constructed program does not survive its own text round trip")
    status = EXAMPLE_OK
    for pt in (a, y):
        try:
            gp, gq = grad(P, pt, convention=c), grad(Q, pt, convention=c)
        except Undecided:
            status = EXAMPLE_UNDECIDED
            continue
        for u, v in zip(gp.values, gq.values):
            if not same(u, v):
                _fail("theorem1", f"P({_vec(pt)}) = {show(u)} but P'({_vec(pt)}) = {show(v)}: not the same function")
        want = [gp.gradient[i] + (r[i] if pt[i] == a[i] else 0) for i in range(P.n_inputs)]
        for i, (u, v) in enumerate(zip(want, gq.gradient)):
            if not same(u, v):
                _fail("theorem1", f"at {_vec(pt)} (a = {_vec(a)}, r = {_vec(r)}) AD of P' gives {_vec(gq.gradient)}, "
                                  f"expected grad P + the shift where x_i = a_i: {_vec(want)}")
    return status


# ------------------------------------------------------------------------------------------- Proposition 2

def _make_proposition2(draw, primitives=None, max_eqns=6):
    # where(u > v, a, b) jumps unless a = b on the switch: leave it out, so that every program is in S.
    # Rational programs take the exact method (identically zero switching functions are decided exactly);
    # analytic ones come from strategies_segment.generic_programs, whose switching functions cannot vanish
    # identically (balls cannot decide that, so such programs would only measure how long giving up takes).
    if primitives is None and draw(st.integers(0, 3)) == 0:
        from ..strategies.segment import generic_programs
        P = draw(generic_programs(n_inputs=draw(st.integers(1, 2)), max_eqns=4, smooth=("exp", "log", "sin", "tanh"),
                                  nonsmooth=("relu", "abs", "max", "min")))
    else:
        P = _program(draw, max_eqns=max_eqns, primitives=primitives, max_outputs=1, exclude=("where",),
                     rational=True)
    if draw(st.integers(0, 3)) == 0:
        curve = draw(S.curves(P))
        return Example("proposition2", P, curve[0], _convention(draw), {"curve": curve})
    x, y = draw(S.segments(P))
    return Example("proposition2", P, x, _convention(draw), {"to": y})


def _interior(a, b):
    """A rational strictly inside the open interval between breakpoints a < b (fmpq, algebraic, or a rational
    enclosure (lo, hi)), or None."""
    from ..certify import algebraic as A
    lo = a[1] if isinstance(a, tuple) else a
    hi = b[0] if isinstance(b, tuple) else b
    if isinstance(lo, tuple) or isinstance(hi, tuple):
        return None
    try:
        m = A.between(lo, hi)
    except Exception:          # noqa: BLE001 - an algebraic pair we cannot separate: no point to test
        return None
    return m


@claim("proposition2", "Proposition 2 (and Claim 1): f(y) - f(x) = integral of <y - x, grad^s f> along the segment",
       needs=("integral",))
@maker(_make_proposition2)
def check_proposition2(ex):
    integral_identity = certify_function("integral_identity")
    if integral_identity is None:
        return EXAMPLE_UNDECIDED
    from ..certify.segment import Curve
    P, c = ex.program, ex.convention
    if "curve" in ex.extra:
        coeffs = ex.extra["curve"]
        curve = Curve(coeffs)
        res = integral_identity(P, curve=curve, convention=c)
    else:
        x, y = ex.point, ex.extra["to"]
        curve = Curve.from_segment(x, y)
        res = integral_identity(P, x, y, convention=c)
    if res.verdict is Verdict.REFUTED:
        _fail("proposition2", f"the identity is REFUTED for a continuous program ({res.reason}): lhs {res.lhs}, "
                              f"rhs {res.rhs}")
    _left_side_is_the_difference(P, c, res, curve.at(fmpq(0)), curve.at(fmpq(1)))
    _claim1_patterns(P, c, curve, res.partition)
    if res.verdict is not Verdict.PROVED:
        return EXAMPLE_UNDECIDED
    return _integral_certificate_checks(res)


def _left_side_is_the_difference(P, c, res, start, end):
    """The identity's left side is f(end) - f(start), as evaluated (nothing to compare when undecided)."""
    try:
        fx, fy = evaluate(P, start, convention=c).values[0], evaluate(P, end, convention=c).values[0]
        lhs = res.lhs_value
        if isinstance(fx, fmpq) and isinstance(fy, fmpq) and isinstance(lhs, fmpq):
            if lhs != fy - fx:
                _fail("proposition2", f"left side {show(lhs)} != f(end) - f(start) = {show(fy - fx)}")
        else:
            with ctx.workprec(256):
                d = (arb(fy) if isinstance(fy, fmpq) else fy) - (arb(fx) if isinstance(fx, fmpq) else fx)
            if not meets(lhs if not isinstance(lhs, fmpq) else lhs, d):
                _fail("proposition2", f"left side {show(lhs)} does not meet f(end) - f(start) = {d}")
    except Undecided:
        pass


def _claim1_patterns(P, c, curve, part):
    """Claim 1: the certified pattern on each piece and at each exact breakpoint is the program's own choice."""
    for b in part.breakpoints:
        if b.status == "exact" and isinstance(b.t, fmpq) and b.pattern is not None:
            try:
                got = evaluate(P, curve.at(b.t), convention=c).pattern
            except Undecided:
                continue
            if tuple(got) != tuple(b.pattern):
                _fail("proposition2", f"at the breakpoint t = {show(b.t)} the partition says pattern {b.pattern}, "
                                      f"the program chooses {got}")
    for pc in part.pieces:
        ta, tb = part.breakpoints[pc.lo].t, part.breakpoints[pc.hi].t
        t = _interior(ta, tb)
        if t is None:
            continue
        try:
            got = evaluate(P, curve.at(t), convention=c).pattern
        except Undecided:
            continue
        if tuple(got) != tuple(pc.pattern):
            _fail("proposition2", f"inside the piece around t = {show(t)} the partition says pattern {pc.pattern}, "
                                  f"the program chooses {got}")


def _integral_certificate_checks(res):
    """A PROVED identity comes with a certificate that the independent checker must accept: EXAMPLE_OK, or
    EXAMPLE_UNDECIDED when the checker's arithmetic cannot decide."""
    integral_certificate = certify_function("integral_certificate")
    if integral_certificate is not None:
        from ..checker import Invalid, check as check_certificate
        from ..checker.kernel import CannotDecide
        try:
            check_certificate(integral_certificate(res))
        except CannotDecide:
            return EXAMPLE_UNDECIDED
        except Invalid as e:
            _fail("proposition2", f"the independent checker rejects the PROVED identity's certificate: {e}")
    return EXAMPLE_OK


# ------------------------------------------------------------------------------------------- Proposition 3

def _make_proposition3(draw, primitives=None, max_eqns=8):
    P = _program(draw, max_eqns=max_eqns, primitives=primitives)
    plain = S.vectors(P.n_inputs)
    x = draw(st.one_of(plain, S.points(P, kink_bias=False), S.points(P)))
    return Example("proposition3", P, x, _convention(draw))


def locally_constant(program, x, convention):
    """True when every switching function of the run at x is decided nonzero (or is constant): then by
    continuity the pattern is the same on a neighbourhood of x, f = f_sigma there and f is differentiable
    at x with grad f(x) = grad f_sigma(x) (Proposition 3's sets U_i).  False when some switching function
    vanishes at x; None when a sign is undecided."""
    try:
        r = evaluate(program, x, convention=convention).run
    except Undecided:
        return None
    ns = r.ns
    with ctx.workprec(max(r.prec or 128, 128)):
        for s in compiled(program, convention):
            if s.sel is None:
                continue
            for terms, const in s.switches:
                if not terms:
                    continue
                sg = ns.sign(affine(ns, terms, const, r.args[s.k]))
                if sg is None:
                    return None
                if sg == 0:
                    return False
    return True


def _central_differences(P, x, c, g, h_bits=100, prec=512):
    """Jacobian by mpmath interval central differences at x +- 2^-h_bits e_i (prec bits); the pattern at every
    evaluation point must be g.pattern.  Returns a list of rows of fmpq (midpoints) or None."""
    h = fmpq(1, 2 ** h_bits)
    cols = []
    for i in range(P.n_inputs):
        vals = []
        for sgn in (1, -1):
            xh = [q + sgn * h if j == i else q for j, q in enumerate(x)]
            r = evaluate(P, xh, number="interval", prec=prec, convention=c)
            if tuple(r.pattern) != tuple(g.pattern):
                return None
            bs = [q_bounds(v) for v in r.values]
            if any(b is None for b in bs):
                return None
            vals.append([(lo + hi) / 2 for lo, hi in bs])
        cols.append([(p - m) / (2 * h) for p, m in zip(*vals)])
    return [[cols[i][o] for i in range(P.n_inputs)] for o in range(P.n_outputs)]


@claim("proposition3", "Proposition 3: where the pattern is locally constant, AD returns the gradient")
@maker(_make_proposition3)
def check_proposition3(ex):
    P, x, c = ex.program, ex.point, ex.convention
    lc = locally_constant(P, x, c)
    try:
        g = grad(P, x, convention=c)
    except Undecided:
        return EXAMPLE_UNDECIDED
    certified = lc is True
    certify_differentiable = certify_function("certify_differentiable")
    if certify_differentiable is not None:     # the certifier of verify.certify, checked against our own test
        d = certify_differentiable(P, x, convention=c)
        if getattr(d, "verdict", None) is Verdict.PROVED:
            if lc is False:
                _fail("proposition3", f"certify_differentiable PROVED a differentiability point where a switching "
                                      f"function vanishes (pattern {g.pattern})")
            jac = getattr(d, "jacobian", None)
            if jac is not None and not all(same(u, v) for ru, rv in zip(jac, g.jacobian) for u, v in zip(ru, rv)):
                _fail("proposition3", f"certify_differentiable gives the gradient {_mat(jac)}, AD {_mat(g.jacobian)}")
            certified = True
    if not certified:
        return EXAMPLE_UNDECIDED
    try:
        J, pat = germ_partials(P, x, c)         # the germ of f itself: index rules decided at x, no pattern given
    except NotRational:
        J = None
    if J is not None:
        if tuple(pat) != tuple(g.pattern):
            _fail("proposition3", f"the germ of f along the axes chose pattern {pat}, AD chose {g.pattern}")
        if J != g.jacobian:
            _fail("proposition3", f"at a point where the pattern is locally constant AD gives {_mat(g.jacobian)} "
                                  f"but the exact derivative (limit of difference quotients) is {_mat(J)}")
        return EXAMPLE_OK
    # transcendental: mpmath interval central differences; moderate values only (the truncation error is
    # h^2 f'''/6 with h = 2^-100, far below the tolerance unless f''' is astronomically large)
    if any(q_bounds(v) is None or max(abs(b) for b in q_bounds(v)) > 2 ** 30 for v in g.values):
        return EXAMPLE_UNDECIDED
    if any(q_bounds(v) is None or max(abs(b) for b in q_bounds(v)) > 2 ** 30 for row in g.jacobian for v in row):
        return EXAMPLE_UNDECIDED
    try:
        D = _central_differences(P, x, c, g)
    except (Undecided, DomainError):
        return EXAMPLE_UNDECIDED
    if D is None:
        return EXAMPLE_UNDECIDED
    for o, (rd, rg) in enumerate(zip(D, g.jacobian)):
        for i, (d, v) in enumerate(zip(rd, rg)):
            lo, hi = q_bounds(v)
            mid = (lo + hi) / 2
            tol = fmpq(1, 2 ** 40) * (1 + abs(mid)) + (hi - lo)
            if abs(d - mid) > tol:
                _fail("proposition3", f"d out{o} / d {P.input_names[i]}: AD gives {show(v)} but mpmath central "
                                      f"differences give {_float(d):.17g}")
    return EXAMPLE_OK


# ------------------------------------------------------------------------------------------- Proposition 4

def _make_proposition4(draw, primitives=None, max_eqns=5):
    inner = _program(draw, max_eqns=max_eqns, primitives=primitives, rational=True, max_outputs=3)
    outer = _program(draw, n_inputs=inner.n_outputs, max_eqns=max_eqns, primitives=primitives, max_outputs=2)
    return Example("proposition4", inner, draw(S.points(inner)), _convention(draw), {"outer": outer})


@claim("proposition4", "Proposition 4 (chain rule): J_{g o F}(x) = J_g(F(x)) J_F(x) for selection Jacobians")
@maker(_make_proposition4)
def check_proposition4(ex):
    from .programs import compose
    F, x, c, G = ex.program, ex.point, ex.convention, ex.extra["outer"]
    H = compose(G, F)
    try:
        jf = grad(F, x, mode="forward", convention=c)
        if not all(isinstance(v, fmpq) for v in jf.values):
            return EXAMPLE_UNDECIDED
        jg = grad(G, jf.values, mode="backward", convention=c)
        jh = grad(H, x, mode="backward", convention=c)
    except Undecided:
        return EXAMPLE_UNDECIDED
    if tuple(jh.pattern) != tuple(jf.pattern) + tuple(jg.pattern):
        _fail("proposition4", f"the composition chose {jh.pattern}, its parts {jf.pattern} and {jg.pattern}")
    for u, v in zip(jh.values, jg.values):
        if not same(u, v):
            _fail("proposition4", f"(g o F)(x) = {show(u)} but g(F(x)) = {show(v)}")
    n, q = F.n_inputs, F.n_outputs
    ns = get_system("exact")
    with ctx.workprec(max(jg.prec or 128, jh.prec or 128)):
        prod = [[sum((ns.mul(jg.jacobian[o][k], jf.jacobian[k][i]) for k in range(q)), fmpq(0)) for i in range(n)]
                for o in range(G.n_outputs)]
        for o in range(G.n_outputs):
            for i in range(n):
                if not same(jh.jacobian[o][i], prod[o][i]):
                    _fail("proposition4", f"AD of the composition gives {_mat(jh.jacobian)} but J_g(F(x)) J_F(x) = "
                                          f"{_mat(prod)} (J_g = {_mat(jg.jacobian)}, J_F = {_mat(jf.jacobian)})")
    return EXAMPLE_OK


# ------------------------------------------------------------------------------------------- soundness

def _make_soundness(draw, primitives=None, max_eqns=8):
    P = _program(draw, max_eqns=max_eqns, primitives=primitives, rational=draw(st.booleans()))
    return Example("soundness", P, draw(S.points(P)), _convention(draw),
                   {"prec": draw(st.sampled_from([64, 128, 256]))})


def _env(P, x, system, prec, c):
    """A run at ``prec`` bits (balls and the exact system escalate an undecided cone themselves; mpmath
    intervals re-run at doubled precision)."""
    from ..interpret.evaluate import escalate
    return escalate(system, prec, lambda ns, p: run(P, ns, [ns.const(q) for q in x], c, inputs=x))


@claim("soundness", "soundness: exact values lie in the balls, balls meet mpmath intervals, patterns agree")
@maker(_make_soundness)
def check_soundness(ex):
    P, x, c, prec = ex.program, ex.point, ex.convention, ex.extra.get("prec", 128)
    try:
        exact = _env(P, x, "exact", 512, c)
    except Undecided:
        return EXAMPLE_UNDECIDED
    status = EXAMPLE_OK
    try:
        ball = _env(P, x, "ball", prec, c)
    except Undecided:
        ball, status = None, EXAMPLE_UNDECIDED      # undecided is honest; then nothing is claimed
    mags = [max(abs(b) for b in q_bounds(e)) for e in exact.env if q_bounds(e) is not None]
    scale = 1 + (max(mags) if mags else 0)
    if ball is not None:
        if ball.pattern != exact.pattern:
            _fail("soundness", f"balls at {prec} bits chose pattern {ball.pattern}, exact arithmetic {exact.pattern}")
        for k, (e, bv) in enumerate(zip(exact.env, ball.env)):
            if isinstance(e, fmpq):
                if not contains(bv, e):
                    _fail("soundness", f"variable {P.names[k]}: the exact value {show(e)} is not in the ball {bv}")
                if width(bv) > fmpq(1, 2 ** (prec // 2)) * scale:
                    _fail("soundness", f"variable {P.names[k]}: the ball {bv} is far wider than {prec} bits allow")
            elif not meets(e, bv):
                _fail("soundness", f"variable {P.names[k]}: the enclosures {e} (exact system) and {bv} (balls) "
                                   "are disjoint")
    try:
        iv = _env(P, x, "interval", prec, c)
    except Undecided:
        return EXAMPLE_UNDECIDED
    if iv.pattern != exact.pattern:
        _fail("soundness", f"mpmath intervals chose pattern {iv.pattern}, exact arithmetic {exact.pattern}")
    for k, (e, v) in enumerate(zip(exact.env, iv.env)):
        if not meets(e, v):
            _fail("soundness", f"variable {P.names[k]}: the exact value {show(e)} and the mpmath interval {v} "
                               "are disjoint")
    if ball is not None:
        for k, (bv, v) in enumerate(zip(ball.env, iv.env)):
            if not meets(bv, v):
                _fail("soundness", f"variable {P.names[k]}: the ball {bv} and the mpmath interval {v} are disjoint")
    # gradients: the ball Jacobian contains the exact one
    try:
        ge = grad(P, x, convention=c)
        gb = grad(P, x, number="ball", prec=prec, convention=c)
    except Undecided:
        return EXAMPLE_UNDECIDED
    if gb.pattern != ge.pattern:
        _fail("soundness", f"ball AD chose pattern {gb.pattern}, exact AD {ge.pattern}")
    for re_, rb in zip(ge.jacobian, gb.jacobian):
        for e, v in zip(re_, rb):
            ok = contains(v, e) if isinstance(e, fmpq) else meets(e, v)
            if not ok:
                _fail("soundness", f"the ball gradient {_mat(gb.jacobian)} misses the exact {_mat(ge.jacobian)}")
    return status


# ------------------------------------------------------------------------------------------- frameworks

def _make_frameworks(draw, primitives=None, max_eqns=8):
    fws = framework_list() or ("torch",)
    fw = draw(st.sampled_from(fws))
    P = _program(draw, max_eqns=max_eqns, primitives=primitives, kink_params=False)
    return Example("frameworks", P, draw(S.points(P)), fw, {"framework": fw})


def _close(a, b, rel):
    return abs(a - b) <= rel * (1 + abs(b))


def _float(v):
    b = q_bounds(v)
    if b is None:
        return float("nan")
    m = (b[0] + b[1]) / 2
    return int(m.p) / int(m.q) if max(abs(int(m.p)), int(m.q)) < 2 ** 1000 else float(arb(m))


@claim("frameworks", "our torch / jax conventions reproduce torch and jax AD on the same random programs",
       needs=("frameworks",))
@maker(_make_frameworks)
def check_frameworks(ex):
    import math

    from ..frameworks import ExportError, available, framework_grad
    from ..numbers.floats import FloatSystem
    P, x, fw = ex.program, ex.point, ex.extra.get("framework", ex.convention)
    c = ex.convention
    if not available(fw):
        return EXAMPLE_UNDECIDED
    try:
        g = grad(P, x, convention=c)
    except Undecided:
        return EXAMPLE_UNDECIDED
    try:
        vals, jac, env = framework_grad(P, x, fw, c)
    except ExportError as e:
        # the program writes no kink param, so every kink follows our convention for this framework: if
        # that is not what the framework's operation does, the convention table is wrong
        _fail("frameworks", f"our {c} convention disagrees with {fw}'s own operations: {e}")
    if not all(math.isfinite(v) for v in vals + [u for r in jac for u in r]):
        return EXAMPLE_UNDECIDED
    # the framework's own pattern: our index rules applied to the framework's float64 values
    ns = FloatSystem()
    fpat = []
    for s in compiled(P, c):
        if s.sel is None:
            continue
        args = [ns.const(a.value) if not isinstance(a, int) else ns.dtype(env[a]) for a in s.ins]
        signs = [ns.sign(affine(ns, t, k, args)) for t, k in s.switches]
        if any(sg is None for sg in signs):
            return EXAMPLE_UNDECIDED
        fpat.append(s.sel.choose(s.params, len(args), lambda j: signs[j]))
    if tuple(fpat) != tuple(g.pattern):
        return EXAMPLE_UNDECIDED             # float64 rounding put the framework on another side of a kink
    ours_f = grad(P, x, number="float64", convention=c, pattern=g.pattern)
    status = EXAMPLE_OK
    for what, theirs, exact, flt in (("value", vals, g.values, ours_f.values),
                                     ("Jacobian", [u for r in jac for u in r], [v for r in g.jacobian for v in r],
                                      [float(v) for r in ours_f.jacobian for v in r])):
        for t, e, f in zip(theirs, exact, flt):
            e = _float(e)
            f = float(f)
            if _close(t, e, 1e-7):
                continue
            if _close(t, f, 1e-9) and not _close(f, e, 1e-7):
                # ill-conditioned: the framework matches our float64 run, rounding moved both
                status = EXAMPLE_UNDECIDED
                continue
            _fail("frameworks", f"{fw}: {what} {theirs} but our {c} convention gives "
                                f"{[show(v) for v in exact]} (our float64 run: {flt}; pattern {g.pattern})")
    return status


# ---------------------------------------------------------------------------------------- certificates

CERT_KINDS = ("index_set", "global", "critical", "differentiable", "spurious", "segment", "integral")


def _make_certificates(draw, primitives=None, max_eqns=6):
    if primitives is None and draw(st.integers(0, 3)) == 0:
        from ..strategies.segment import generic_programs
        P = draw(generic_programs(n_inputs=draw(st.integers(1, 2)), max_eqns=4, smooth=("exp", "log", "sin", "tanh"),
                                  nonsmooth=("relu", "abs", "max", "min")))
    else:
        P = _program(draw, max_eqns=max_eqns, primitives=primitives)
    x = draw(S.points(P))
    _, y = draw(S.segments(P))
    kinds = draw(st.lists(st.sampled_from(CERT_KINDS), min_size=1, max_size=3, unique=True))
    shift = [draw(st.sampled_from([fmpq(0), fmpq(1), fmpq(-1, 2)])) for _ in range(P.n_inputs)]
    return Example("certificates", P, x, _convention(draw), {"to": y, "kinds": ",".join(kinds), "shift": shift})


def written_certificates(ex):
    """Every certificate the certifiers write for the example (a certifier that answers Undecided, or refuses
    the input, writes none): [(kind, certificate)]."""
    from ..certify import critical, index_set, spurious
    from ..certify.certs import critical_certificate, index_certificate, spurious_certificate
    from ..certify.differentiable import certify_differentiable, differentiable_certificate
    from ..certify.integral import integral_certificate, integral_identity
    from ..certify.segment import segment_certificate, segment_partition
    P, x, c = ex.program, ex.point, ex.convention
    y = ex.extra["to"]
    makers = {
        "index_set": lambda: index_certificate(index_set(P, x, convention=c, cap=64)),
        "global": lambda: index_certificate(index_set(P, x, "global", c, cap=64, max_patterns=256)),
        "critical": lambda: critical_certificate(critical(P, x, c)) if P.n_outputs == 1 else None,
        "differentiable": lambda: differentiable_certificate(certify_differentiable(P, x, convention=c)),
        "spurious": lambda: spurious_certificate(P, *spurious(P, x, ex.extra["shift"], convention=c), c)
        if P.n_outputs == 1 else None,
        "segment": lambda: segment_certificate(segment_partition(P, x, y, convention=c)),
        "integral": lambda: integral_certificate(integral_identity(P, x, y, convention=c))
        if P.n_outputs == 1 else None,
    }
    out = []
    for kind in ex.extra["kinds"].split(","):
        try:
            cert = makers[kind]()
        except (Undecided, InputError, DomainError):
            continue
        if cert is not None:
            out.append((kind, json.loads(json.dumps(cert))))
    return out


@claim("certificates", "verify's own certificates always check: every certificate a certifier writes passes the "
                       "independent checker")
@maker(_make_certificates)
def check_certificates(ex):
    from ..checker import Invalid, check as check_certificate
    certs = written_certificates(ex)
    for kind, cert in certs:
        try:
            check_certificate(cert)
        except Invalid as e:          # CannotDecide included: the checker must decide what the certifier did
            _fail("certificates", f"the checker rejects verify's own {kind} certificate ({cert['verdict']}): {e}")
    return EXAMPLE_OK if certs else EXAMPLE_UNDECIDED


# ------------------------------------------------------------------------------------------------ API

NAMES = ("lemma1", "theorem1", "theorem2", "proposition2", "proposition3", "proposition4", "soundness", "frameworks",
         "certificates")
assert set(NAMES) == set(CLAIMS), (NAMES, sorted(CLAIMS))


class TimeLimit(Undecided):
    """A claim's time budget ran out (only enforced in the main thread: SIGALRM)."""


# Per-example time budgets in seconds: the ball method of the integral identity can spend tens of seconds
# on one program before answering UNDECIDED; a budget turns that into "undecided" at once.
BUDGET = {"proposition2": 3.0, "certificates": 6.0}
_NO_INTERRUPT = {"acb_integral"}        # verify/certify/integral.py: wraps acb.integral


@contextlib.contextmanager
def time_limit(seconds):
    """Raise TimeLimit after ``seconds`` (wall clock) when running in the main thread of a process with
    SIGALRM; elsewhere (e.g. Dask worker threads) no limit is enforced."""
    import signal
    import threading
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        # never raise inside a Python callback of a C routine (acb.integral calls its integrand from C and
        # keeps calling it after an exception): wait until the C routine has returned
        f = frame
        while f is not None:
            if f.f_code.co_name in _NO_INTERRUPT:
                signal.setitimer(signal.ITIMER_REAL, 0.05)
                return
            f = f.f_back
        raise TimeLimit(f"over the {seconds:g}s budget")
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check(example, budget=None):
    """Run the claim's checker on ``example``: "ok" / "undecided", AssertionError on a failure.  ``budget``:
    seconds before the example counts as undecided (default BUDGET for the claim, if any)."""
    try:
        with time_limit(BUDGET.get(example.claim) if budget is None else budget):
            return CLAIMS[example.claim].check(example)
    except Undecided:
        return EXAMPLE_UNDECIDED
    except VerifyError as e:
        from ..checker.kernel import CannotDecide
        if isinstance(e, (CannotDecide, NotRational)):
            return EXAMPLE_UNDECIDED
        raise


__all__ = ["CLAIMS", "NAMES", "Example", "Claim", "check", "EXAMPLE_OK", "EXAMPLE_UNDECIDED", "locally_constant",
           "certify_function", "framework_list", "dumps"]
