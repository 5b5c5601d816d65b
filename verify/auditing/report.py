"""The audit's report: what it found, as Python objects, as one screen of text, as JSON, as an .npz of every
kink and as a figure.

An ``AuditReport`` holds the framework's float gradient beside the exact selection gradient, the exact and
float kinks with their places in the model, differentiability, criticality when it was computed, and the
verdict.  ``summary()`` is the text a person reads (one screen: the verdict word, the gradient's agreement per
input, a table of kinks per layer and class, every float kink up to a screenful), ``json()`` the object
``verify audit --json`` prints (kinks aggregated per layer, every float kink one by one; numbers as "p/q" or
{"lo", "hi"}, as everywhere in verify; its keys are documented in docs/audit.md), ``save_kinks(path)`` every
kink into an .npz, ``plot(path)`` the figure, and ``repr()`` a one-line summary (a report can hold gradients
with millions of entries: printing it never dumps them).
"""
import textwrap
from dataclasses import dataclass, field

from ..numbers.ball import json_number
from ..truth import FALSE, TRUE, UNKNOWN

VERDICT_WORDS = {TRUE: "PROVED", FALSE: "REFUTED", UNKNOWN: "UNDECIDED"}


@dataclass
class Site:
    """A site of a nonsmooth equation: ``eqn`` (index in the program), ``index`` (in its site grid), the
    switching function ``switch``, where it came from in the model (``origin``), and the sign of the
    switching function exactly and in floats ("<0", "0", ">0", the float one with where it came from)."""
    eqn: int
    index: tuple
    switch: int
    origin: str
    exact: str = ""
    float: str = ""

    @property
    def equation(self):
        """The equation's number, counted from 1 as every message of verify counts (``eqn`` is its index in
        ``program.eqns``)."""
        return self.eqn + 1

    def json(self):
        return {"equation": self.equation, "site": list(self.index), "switch": self.switch, "origin": self.origin,
                "exact": self.exact, "float": self.float}

    @property
    def float_sign(self):
        """The float sign alone ("<0", "0", ">0" or "?"), without where it came from."""
        return (self.float or "?").split(" ")[0]

    @property
    def float_source(self):
        """Where the float sign came from: "framework" (its own value), "replay" (verify's float replay) or ""."""
        return self.float.split("(")[1].rstrip(")") if "(" in (self.float or "") else ""


@dataclass
class FloatAgreement:
    """Element-by-element comparison of the framework's float gradient with the exact one, for one input:
    ``max_error`` (largest |float - exact|), ``worst`` (that error over the bound), ``outside`` (how many
    elements are proved beyond the bound: REFUTED) and ``examples`` (a few of them: index, float, exact value).
    The bound is that of any IEEE evaluation of the program in the model's format (``rule`` names it; ``bound``
    is its largest value, ``bounds`` the array): ``undecided`` elements could not be placed inside or outside
    it (``reason``), ``escalated`` were compared with the exact gradient because the enclosure of the exact
    side (radius at most ``exact_radius``) was too wide; ``truth`` is TRUE (every element within the bound),
    FALSE (some element provably beyond it) or UNKNOWN; ``errors`` holds |float - exact side's midpoint|."""
    name: str
    max_error: float
    worst: float
    outside: int
    size: int
    examples: list
    undecided: int = 0
    bound: float = 0.0
    rule: str = ""
    exact_radius: float = 0.0
    escalated: int = 0
    truth: object = None
    reason: str = ""
    errors: object = field(default=None, repr=False)
    bounds: object = field(default=None, repr=False)

    @property
    def agrees(self):
        return self.outside == 0

    def json(self):
        return {"input": self.name, "size": self.size, "outside": self.outside,
                "max_error": json_number(self.max_error), "worst": json_number(self.worst),
                "examples": [{"index": list(i), "float": json_number(f), "exact": json_number(e)}
                             for i, f, e in self.examples],
                "undecided": self.undecided, "bound": json_number(self.bound), "rule": self.rule,
                "exact_radius": json_number(self.exact_radius), "escalated": self.escalated}


def truth_json(t):
    return True if t is TRUE else (False if t is FALSE else None)


def truth_text(v):
    return {TRUE: "yes", FALSE: "no", UNKNOWN: "undecided"}.get(v, str(v))


@dataclass(repr=False)
class AuditReport:
    """What an audit found (see the module docstring); ``verdict_word`` is PROVED, REFUTED or UNDECIDED and
    ``verdict`` the sentence that explains it."""
    framework: str
    model: str
    dtype: str
    inputs: list                   # InputInfo of every program input
    wrt: list                      # indices of the inputs differentiated
    float_gradient: list           # numpy arrays, per input in wrt order (None where the framework gave none)
    exact_gradient: list           # arrays of fmpq / arb, per input
    agreement: list                # FloatAgreement per input
    exact_kinks: list              # Site
    float_kinks: list              # Site: float decisions that differ from the exact ones
    differentiable: object         # TRUE / UNKNOWN
    critical: dict = None          # {"selection": ..., "clarke": ..., "artificial": ...} when computed
    verdict: str = ""
    selection_gradient: object = UNKNOWN    # is the float gradient a selection gradient at x (to rounding)?
    max_gradient: float = 0.0               # the largest |entry| of the exact gradient (its midpoint for a ball)
    imported: object = field(default=None, repr=False)
    iset: object = field(default=None, repr=False)
    notes: list = field(default_factory=list)

    @property
    def verdict_word(self):
        return VERDICT_WORDS.get(self.selection_gradient, "UNDECIDED")

    def __repr__(self):
        return (f"<AuditReport {self.verdict_word}: {self.model} ({self.framework}, {self.dtype}), "
                f"{len(self.exact_kinks)} exact kink(s), {len(self.float_kinks)} float kink(s)>")

    def kinks(self):
        """The kinks aggregated per layer and class (``kinks.Kinks``, computed once)."""
        from .kinks import aggregate
        return aggregate(self)

    def summary(self, rows=18, float_rows=12):
        """The report for people, on one screen: the verdict word and its reason; the gradient's agreement per
        input (the inputs with elements outside first, at most 8); the exact kinks per layer and class (at
        most ``rows`` layers: those with kinks first); every float kink with its place in the model (at most
        ``float_rows``, then a count: the JSON and ``save_kinks`` list them all); criticality and the notes."""
        lines = [f"{self.verdict_word}: audit of {self.model} ({self.framework}, {self.dtype}) at the exact example "
                 "point"]
        lines += textwrap.wrap(self.verdict, 110, initial_indent="  ", subsequent_indent="  ")
        lines += self._gradient_lines()
        lines += self._kink_lines(rows)
        lines += self._float_kink_lines(float_rows)
        if self.critical:
            lines.append("critical: " + ", ".join(f"{k} {truth_text(v)}" for k, v in self.critical.items()))
        lines += [textwrap.shorten(f"note: {n}", 160, placeholder=" ...") for n in self.notes]
        return "\n".join(lines)

    def _gradient_lines(self, most=8):
        total = sum(a.size for a in self.agreement)
        bad = sum(a.outside for a in self.agreement)
        und = sum(a.undecided for a in self.agreement)
        rules = sorted({a.rule for a in self.agreement if a.rule})
        lines = [f"gradient: {total:,} element(s) in {len(self.agreement)} input(s), {bad:,} provably beyond the "
                 f"rounding bound" + (f", {und:,} undecided" if und else "")
                 + f"; largest |exact entry| {self.max_gradient:.3g}"]
        if rules:
            lines += textwrap.wrap("bound: " + "; ".join(rules), 110, initial_indent="  ", subsequent_indent="    ")
        order = sorted(self.agreement, key=lambda a: (-a.outside, -a.undecided))
        width = max([len(a.name) for a in order[:most]] + [5])
        lines.append(f"  {'input':<{width}}  {'elements':>10}  {'outside':>8}  {'max |float - exact|':>19}  "
                     f"{'largest bound':>13}  {'worst error / bound':>19}")
        for a in order[:most]:
            lines.append(f"  {a.name:<{width}}  {a.size:>10,}  {a.outside:>8,}  {a.max_error:>19.3g}  "
                         f"{a.bound:>13.3g}  {a.worst:>19.3g}")
        if len(order) > most:
            lines.append(f"  ... {len(order) - most} more input(s), none outside" if not order[most].outside else
                         f"  ... {len(order) - most} more input(s)")
        return lines

    def _kink_lines(self, rows):
        from .kinks import CLASSES
        agg = self.kinks()
        lines = [f"kinks: {len(self.exact_kinks):,} switching function(s) exactly 0 at {agg.kinked_sites:,} site(s) "
                 f"(differentiable: {truth_text(self.differentiable)}); {len(self.float_kinks):,} float kink(s)"]
        if not agg.layers:
            return lines
        shown = [c for c in CLASSES if c in agg.site_classes]
        width = min(60, max(len(lay.label) for lay in agg.layers))
        lines.append(f"  {'layer':<{width}}  {'sites':>9}  {'kinked':>8}" + "".join(f"  {c:>8}" for c in shown) +
                     f"  {'float':>6}")
        order = sorted(range(len(agg.layers)), key=lambda i: (not (agg.layers[i].kinked or agg.layers[i].float_kinks),
                                                              i))
        for i in sorted(order[:rows]):
            lay = agg.layers[i]
            label = lay.label if len(lay.label) <= width else lay.label[:width - 3] + "..."
            lines.append(f"  {label:<{width}}  {lay.sites:>9,}  {lay.kinked:>8,}" +
                         "".join(f"  {lay.classes.get(c, 0):>8,}" for c in shown) + f"  {lay.float_kinks:>6,}")
        if len(order) > rows:
            lines.append(f"  ... {len(order) - rows} more layer(s) without kinks")
        return lines

    def _float_kink_lines(self, most):
        if not self.float_kinks:
            return []
        n = len(self.float_kinks)
        lines = [f"float kinks: {n:,}, where floats decide a switching function otherwise than the exact point"]
        agg = self.kinks()
        layer = None
        for s in self.float_kinks[:most]:
            here = agg.layer_of.get(s.eqn)
            if here != layer:
                layer = here
                src = self.imported.origins[s.eqn].source
                code = " `" + src.split(" `", 1)[1] if " `" in src else ""
                lines.append(f"  {agg.layers[here].label}{code}: {agg.layers[here].float_kinks:,}" if here is not None
                             else f"  {s.origin}")
            lines.append(f"    site {list(s.index)}, switching function {s.switch + 1}: exact {s.exact}, "
                         f"float {s.float}")
        if n > most:
            lines.append(f"  ... {n - most:,} more (--json or --kinks FILE.npz lists them all)")
        return lines

    def json(self):
        """The keys ``verify audit --json`` prints besides command, verdict and reason (docs/audit.md lists
        them): the kinks aggregated per layer, every float kink one by one."""
        from .kinks import CLASSES
        agg = self.kinks()
        origins = self.imported.origins
        return {
            "framework": self.framework, "model": self.model, "dtype": self.dtype,
            "inputs": [{"name": i.name, "source": i.source, "kind": i.kind, "shape": list(i.shape),
                        "dtype": i.dtype} for i in self.inputs],
            "wrt": [self.inputs[i].name for i in self.wrt],
            "exact_kinks": {"count": len(self.exact_kinks), "sites": agg.kinked_sites,
                            "classes": {c: agg.site_classes[c] for c in CLASSES if c in agg.site_classes}},
            "layers": [lay.json() for lay in agg.layers],
            "float_kinks": [{"equation": s.equation, "site": list(s.index), "switch": s.switch,
                             "layer": agg.layer_of.get(s.eqn),
                             "kind": agg.layers[agg.layer_of[s.eqn]].family if s.eqn in agg.layer_of else "",
                             "module": origins[s.eqn].module, "op": origins[s.eqn].op, "source": origins[s.eqn].source,
                             "exact": s.exact, "float": s.float_sign, "float_from": s.float_source}
                            for s in self.float_kinks],
            "differentiable": truth_json(self.differentiable),
            "agreement": [a.json() for a in self.agreement],
            "critical": None if self.critical is None else {k: truth_json(v) for k, v in self.critical.items()},
            "selection_gradient": truth_json(self.selection_gradient),
            "max_gradient": json_number(self.max_gradient),
            "notes": list(self.notes),
        }

    def save_kinks(self, path):
        """Write every exact and float kink to ``path`` (.npz; see ``kinks.save_kinks`` for its arrays)."""
        from .kinks import save_kinks
        return save_kinks(self, path)

    def plot(self, path):
        """Draw the report's figure into ``path`` (PNG; see ``figure.plot``)."""
        from .figure import plot
        return plot(self, path)

