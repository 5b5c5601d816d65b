"""The audit's report: what it found, as Python objects, as one screen of text and as JSON.

An ``AuditReport`` holds the framework's float gradient beside the exact selection gradient, the exact and
float kinks with their places in the model, differentiability, criticality when it was computed, and the
verdict.  ``summary()`` is the text a person reads, ``json()`` the object ``verify audit --json`` prints
(numbers as "p/q" or {"lo", "hi"}, as everywhere in verify), and ``repr()`` a one-line summary (a report can
hold gradients with millions of entries: printing it never dumps them).
"""
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

    def text(self, what):
        return (f"{what}: equation {self.equation} site {list(self.index)} (exact {self.exact or '?'}, "
                f"float {self.float or '?'}): {self.origin}")


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
        return {"input": self.name, "size": self.size, "outside": self.outside, "max_error": self.max_error,
                "worst": self.worst, "examples": [{"index": list(i), "float": json_number(f),
                                                   "exact": json_number(e)} for i, f, e in self.examples],
                "undecided": self.undecided, "bound": self.bound, "rule": self.rule,
                "exact_radius": self.exact_radius, "escalated": self.escalated}


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

    def summary(self):
        """The report for people: the verdict word first, then kinks, differentiability, the agreement of the
        gradients per input, criticality, the verdict's reason, the first sites of each kind and the notes."""
        lines = [f"{self.verdict_word}: audit of {self.model} ({self.framework}, {self.dtype}) at the exact "
                 "example point",
                 f"exact kinks: {len(self.exact_kinks)}; float kinks: {len(self.float_kinks)}",
                 f"differentiable: {truth_text(self.differentiable)}; largest |gradient entry|: "
                 f"{self.max_gradient:.6g}"]
        for a in self.agreement:
            lines.append(f"  {a.name}: float vs exact gradient: {a.outside} of {a.size} element(s) outside float "
                         f"rounding (max |diff| {a.max_error:.3g}, worst {a.worst:.3g} x tolerance)")
        if self.critical:
            lines.append("critical: " + ", ".join(f"{k} {truth_text(v)}" for k, v in self.critical.items()))
        lines.append(self.verdict)
        for title, sites in (("exact kinks", self.exact_kinks), ("float kinks", self.float_kinks)):
            lines += ["  " + s.text(title[:-1]) for s in sites[:10]]
            if len(sites) > 10:
                lines.append(f"  ... {len(sites) - 10} more {title} (--json lists them all)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def json(self):
        """The keys ``verify audit --json`` prints besides command, verdict and reason."""
        return {
            "framework": self.framework, "model": self.model, "dtype": self.dtype,
            "inputs": [{"name": i.name, "source": i.source, "kind": i.kind, "shape": list(i.shape),
                        "dtype": i.dtype} for i in self.inputs],
            "wrt": [self.inputs[i].name for i in self.wrt],
            "exact_kinks": [s.json() for s in self.exact_kinks],
            "float_kinks": [s.json() for s in self.float_kinks],
            "differentiable": truth_json(self.differentiable),
            "agreement": [a.json() for a in self.agreement],
            "critical": None if self.critical is None else {k: truth_json(v) for k, v in self.critical.items()},
            "selection_gradient": truth_json(self.selection_gradient),
            "max_gradient": self.max_gradient,
            "notes": list(self.notes),
        }
