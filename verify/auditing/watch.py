"""A sanitizer for training runs: audit, every few steps, the gradient the optimizer is about to use.

    w = verify.watch(model, every=10, log="audit.jsonl")
    for x, y in batches:
        opt.zero_grad()
        model(x, y).backward()
        w.step(x, y)            # the gradients in p.grad, at the current parameters
        opt.step()
    print(w.summary())

``Watch.step`` audits what ``p.grad`` holds (never a recomputation) with a ``verify.Auditor`` that exports the
model once, and decides the step's zones (zones.py): whether the exact selection gradient depends on the
kink convention (bifurcation) and whether floats decided a kink otherwise than the exact point (compensation).
Every audited step is one JSON line (``step_record``) in the log; ``summary()`` aggregates the lines, so the
same summary serves ``verify watch``, whose audits run in worker processes and come back as lines.  JAX:
``watch_jax(loss_fn)`` is a step built on ``jax.value_and_grad`` that audits the gradient it returns.

Limits: the audit replays the model's own computation, so a model whose forward pass draws random numbers
(dropout in training mode) cannot be audited; the parameters must still be those the gradient was computed at
(call ``step`` before ``optimizer.step()``).
"""
import inspect
import json
import math
import time
from dataclasses import dataclass, field

from ..errors import InputError
from .kinks import CLASSES
from .zones import alternatives as default_alternatives
from .zones import zones as step_zones

VERDICTS = ("PROVED", "REFUTED", "UNDECIDED")
OUTCOMES = ("differs", "same", "undecided")


def step_record(step, report, zones, seconds, loss=None):
    """The JSON line of an audited step: step, verdict (and its reason when not PROVED), seconds, the
    gradient's agreement (elements, outside), the exact kinks (count, sites, classes) and per layer, the float
    kinks by kind, and the zones.  The keys are documented in docs/watch.md."""
    agg = report.kinks()
    out = {"step": int(step), "verdict": report.verdict_word, "seconds": round(float(seconds), 4)}
    if loss is not None:
        out["loss"] = float(loss) if math.isfinite(float(loss)) else None     # JSON has no NaN
    if report.verdict_word != "PROVED":
        out["reason"] = report.verdict
    out["gradient"] = {"elements": sum(a.size for a in report.agreement),
                       "outside": sum(a.outside for a in report.agreement)}
    out["exact_kinks"] = {"count": len(report.exact_kinks), "sites": agg.kinked_sites,
                          "classes": {c: agg.site_classes[c] for c in CLASSES if c in agg.site_classes}}
    out["layers"] = [{"layer": lay.label, "kind": lay.family, "sites": lay.sites, "kinked_sites": lay.kinked,
                      "classes": dict(lay.classes), "float_kinks": lay.float_kinks} for lay in agg.layers]
    zj = zones.json()
    out["float_kinks"] = {"count": len(report.float_kinks), **zj.pop("float_kinks")}
    out["zones"] = zj
    return out


@dataclass
class StepAudit:
    """The audit of one training step: ``step`` (counted from 0), ``report`` (the AuditReport), ``zones``
    (zones.Zones), ``seconds`` (audit and zones), and ``record`` (its JSON line, a dict)."""
    step: int
    report: object
    zones: object
    seconds: float
    record: dict = field(repr=False, default=None)

    @property
    def verdict_word(self):
        return self.report.verdict_word

    def __repr__(self):
        z = self.zones
        bif = {True: "in", False: "out", None: "undecided"}[z.json()["bifurcation"]]
        return (f"<StepAudit step {self.step} {self.verdict_word}: {len(self.report.exact_kinks)} exact kink(s), "
                f"{len(self.report.float_kinks)} float kink(s); bifurcation zone {bif}, compensation zone "
                f"{'in' if z.compensation else 'out'}>")


class Log:
    """The JSON lines of a watch: kept in memory, and appended to ``path`` (truncated when opened) when given."""

    def __init__(self, path=None):
        self.path, self.records = path, []
        if path:
            with open(path, "w", encoding="utf-8"):
                pass

    def write(self, record):
        self.records.append(record)
        if self.path:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


def check_every(every):
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise InputError(f"every={every!r} must be an integer >= 1 (audit every k-th step)")
    return every


class Watch:
    """Audits a torch model's gradients inside the user's own training loop (see the module docstring).
    ``every``: audit steps 0, k, 2k, ...; ``log``: a .jsonl path for the lines; ``framework``: "torch" (the
    default guess for a torch.nn.Module); ``alternatives``: the conventions the bifurcation zone compares
    (default: zones.alternatives); ``options``: the Auditor's import options (torch ``params``)."""

    def __init__(self, model, every=1, framework=None, log=None, alternatives=None, **options):
        if not hasattr(model, "named_parameters"):
            raise InputError(f"watch needs a torch.nn.Module (its p.grad are what is audited), not "
                             f"{type(model).__name__}; for JAX use verify.watch_jax(loss_fn)")
        self._start(model, every, framework, log, alternatives, options)

    def _start(self, model, every, framework, log, alternatives, options):
        self.model, self.every, self.framework = model, check_every(every), framework
        self.alternatives, self.options = alternatives, options
        self.auditor = None                  # made on the first audited step (its batch fixes the shapes)
        self.steps = 0
        self.log = Log(log)
        self.last = None

    def __repr__(self):
        return f"<Watch of {type(self.model).__name__}: {self.steps} step(s), {len(self.log.records)} audited>"

    def step(self, *batch):
        """Count a training step; on steps 0, every, 2 every, ... audit the gradients in ``p.grad`` at the current
        parameters for this batch and return the StepAudit (else None).  Call it after ``loss.backward()`` and
        before ``optimizer.step()``."""
        n = self.steps
        self.steps += 1
        if n % self.every:
            return None
        grads = {name: p.grad for name, p in self.model.named_parameters() if p.grad is not None}
        if not grads:
            raise InputError(f"step {n}: no parameter has a gradient (call step() after loss.backward())")
        t0 = time.perf_counter()
        if self.auditor is None:
            from .auditor import Auditor
            self.auditor = Auditor(self.model, *batch, framework=self.framework, **self.options)
        return self._audited(n, self.auditor.audit(*batch, gradient=grads), t0)

    def _audited(self, n, report, t0, loss=None):
        table = self.alternatives if self.alternatives is not None else default_alternatives(report.framework)
        z = step_zones(report, table)
        seconds = time.perf_counter() - t0
        rec = step_record(n, report, z, seconds, loss)
        self.log.write(rec)
        self.last = StepAudit(n, report, z, seconds, rec)
        return self.last

    @property
    def records(self):
        """The JSON lines of the audited steps so far (dicts)."""
        return self.log.records

    def summary(self):
        """The Summary of the steps so far."""
        return Summary(self.log.records, self.steps, self.every)

    def plot(self, path):
        """Draw kinks per layer and zone counts over the audited steps into ``path`` (PNG)."""
        from .watch_figure import plot
        return plot(self.log.records, path)


class JaxWatch(Watch):
    """A training step for JAX: ``loss, grads = w(*args)`` is ``jax.value_and_grad(loss_fn, argnums)(*args)``,
    and on steps 0, every, 2 every, ... the gradient it returns is audited at ``args`` (``w.last`` holds the
    StepAudit).  ``w.summary()``, ``w.records`` and ``w.plot(path)`` as for ``Watch``."""

    def __init__(self, loss_fn, every=1, log=None, argnums=0, alternatives=None, **options):
        import jax
        if not callable(loss_fn):
            raise InputError(f"watch_jax needs a function returning a scalar loss, not {type(loss_fn).__name__}")
        self._start(loss_fn, every, "jax", log, alternatives, options)
        self.argnums = argnums
        self.names = self._argument_names(loss_fn, argnums)
        self.value_and_grad = jax.value_and_grad(loss_fn, argnums)

    @staticmethod
    def _argument_names(fn, argnums):
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        for k in nums:
            if not isinstance(k, int) or not 0 <= k < len(params):
                raise InputError(f"argnums={argnums!r}: {getattr(fn, '__name__', 'the function')} has "
                                 f"{len(params)} positional argument(s)")
        return [params[k] for k in nums]

    def __repr__(self):
        return (f"<JaxWatch of {getattr(self.model, '__name__', 'loss')}: {self.steps} step(s), "
                f"{len(self.log.records)} audited>")

    def __call__(self, *args):
        value, grads = self.value_and_grad(*args)
        n = self.steps
        self.steps += 1
        if n % self.every == 0:
            t0 = time.perf_counter()
            if self.auditor is None:
                from .auditor import Auditor
                self.auditor = Auditor(self.model, *args, framework="jax", **self.options)
            given = dict(zip(self.names, (grads,) if isinstance(self.argnums, int) else grads))
            self._audited(n, self.auditor.audit(*args, gradient=given), t0, loss=float(value))
        return value, grads

    def step(self, *args):
        """The same as calling the watch: (loss, grads)."""
        return self(*args)


def watch(model, every=1, framework="torch", log=None, alternatives=None, **options):
    """A Watch of the torch model ``model`` (see Watch): call ``w.step(*batch)`` after ``loss.backward()`` and
    before ``optimizer.step()``."""
    if framework == "jax":
        raise InputError("for JAX, watch the loss function: verify.watch_jax(loss_fn, every=k)")
    return Watch(model, every, framework, log, alternatives, **options)


def watch_jax(loss_fn, every=1, log=None, argnums=0, alternatives=None, **options):
    """A JaxWatch: a step ``loss, grads = w(*args)`` built on ``jax.value_and_grad(loss_fn, argnums)`` that
    audits the gradient it returns every ``every`` steps.  ``options``: the Auditor's (``constant_args``)."""
    return JaxWatch(loss_fn, every, log, argnums, alternatives, **options)


# ------------------------------------------------------------------------------------------ the summary

class Summary:
    """What a watch found, aggregated from its JSON lines (``records``): steps run and audited, verdict counts,
    the zones (bifurcation: proved in / proved out / undecided, per alternative convention; compensation:
    steps with a float kink), the float kinks by kind, and per layer the kinked sites over the audited
    steps.  ``text()`` (also ``str()``) is the screen a person reads, ``json()`` the object ``verify watch
    --json`` prints under "summary"."""

    def __init__(self, records, steps=None, every=None):
        self.records = sorted(records, key=lambda r: r["step"])
        self.steps = steps if steps is not None else (self.records[-1]["step"] + 1 if self.records else 0)
        self.every = every

    def __str__(self):
        return self.text()

    def __repr__(self):
        v = self.verdicts()
        return (f"<Summary: {self.steps} step(s), {len(self.records)} audited: "
                + ", ".join(f"{v[k]} {k}" for k in VERDICTS) + ">")

    def verdicts(self):
        return {k: sum(1 for r in self.records if r["verdict"] == k) for k in VERDICTS}

    def zones(self):
        bif = {"in": 0, "out": 0, "undecided": 0}
        conv = {}
        for r in self.records:
            z = r["zones"]
            bif[{True: "in", False: "out", None: "undecided"}[z["bifurcation"]]] += 1
            for c in z["conventions"]:
                d = conv.setdefault(c["convention"], {k: 0 for k in OUTCOMES})
                d[c["outcome"]] += 1
        return {"bifurcation": bif, "compensation": sum(1 for r in self.records if r["zones"]["compensation"]),
                "conventions": conv}

    def float_kinks(self):
        out = {"count": 0, "steps": 0, "float_tie": 0, "missed_tie": 0, "flip": 0}
        for r in self.records:
            f = r["float_kinks"]
            out["steps"] += bool(f["count"])
            for k in ("count", "float_tie", "missed_tie", "flip"):
                out[k] += f[k]
        return out

    def layers(self):
        """Per layer (by position in the model; the label of its first appearance): its kind, the kinked sites
        at every audited step (the series), and its float kinks in all."""
        out = []
        for r in self.records:
            for i, lay in enumerate(r["layers"]):
                if i == len(out):
                    out.append({"layer": lay["layer"], "kind": lay["kind"], "kinked_sites": [], "float_kinks": 0})
            for i, lay in enumerate(out):
                here = r["layers"][i] if i < len(r["layers"]) else None
                lay["kinked_sites"].append(here["kinked_sites"] if here else 0)
                lay["float_kinks"] += here["float_kinks"] if here else 0
        return out

    def json(self):
        seconds = [r["seconds"] for r in self.records]
        layers = self.layers()
        for lay in layers:
            s = lay["kinked_sites"]
            lay["kinked_sites"] = {"first": s[0], "last": s[-1], "min": min(s), "max": max(s),
                                   "mean": round(sum(s) / len(s), 2), "series": s} if s else \
                {"first": 0, "last": 0, "min": 0, "max": 0, "mean": 0, "series": []}
        return {"steps": self.steps, "audited": len(self.records), "every": self.every,
                "audited_steps": [r["step"] for r in self.records], "verdicts": self.verdicts(),
                "zones": self.zones(), "float_kinks": self.float_kinks(), "layers": layers,
                "seconds": {"audits": round(sum(seconds), 3),
                            "per_audit": round(sum(seconds) / len(seconds), 4) if seconds else 0.0}}

    def text(self, rows=16):
        """One screen: steps and verdicts, the zones per alternative convention, the kinked sites per layer
        over the audited steps, the float kinks, the time per audit."""
        s = self.json()
        v = s["verdicts"]
        lines = [f"watch: {s['steps']} step(s), {s['audited']} audited"
                 + (f" (every {s['every']})" if s["every"] else "") + ": "
                 + ", ".join(f"{v[k]} {k}" for k in VERDICTS)]
        z = s["zones"]
        b = z["bifurcation"]
        lines.append(f"bifurcation zone (the exact gradient depends on the kink convention): {b['in']} step(s) in, "
                     f"{b['out']} out, {b['undecided']} undecided")
        lines.append(f"compensation zone (floats decided a kink otherwise than the exact point): {z['compensation']} "
                     "step(s)")
        if z["conventions"]:
            width = max(len(n) for n in z["conventions"]) + 2
            lines.append(f"  {'convention':<{width}}" + "".join(f"{k:>11}" for k in OUTCOMES))
            for name, d in z["conventions"].items():
                lines.append(f"  {name:<{width}}" + "".join(f"{d[k]:>11,}" for k in OUTCOMES))
        lines += self._layer_lines(s["layers"], rows)
        f = s["float_kinks"]
        lines.append(f"float kinks: {f['count']:,} in {f['steps']:,} step(s): {f['float_tie']:,} float tie(s) (0 in "
                     f"floats, not exactly), {f['missed_tie']:,} missed tie(s) (exactly 0, not in floats), "
                     f"{f['flip']:,} flip(s)")
        lines.append(f"audit time: {s['seconds']['per_audit']:.3g} s per audited step, {s['seconds']['audits']:.3g} s "
                     "in all")
        return "\n".join(lines)

    @staticmethod
    def _layer_lines(layers, rows):
        if not layers:
            return ["no nonsmooth layer"]
        width = min(50, max(len(lay["layer"]) for lay in layers))
        lines = ["exact kinks per layer (kinked sites over the audited steps)",
                 f"  {'layer':<{width}}  {'first':>8}  {'min':>8}  {'mean':>10}  {'max':>8}  {'last':>8}  "
                 f"{'float':>6}"]
        for lay in layers[:rows]:
            k = lay["kinked_sites"]
            label = lay["layer"] if len(lay["layer"]) <= width else lay["layer"][:width - 3] + "..."
            lines.append(f"  {label:<{width}}  {k['first']:>8,}  {k['min']:>8,}  {k['mean']:>10,.1f}  {k['max']:>8,}  "
                         f"{k['last']:>8,}  {lay['float_kinks']:>6,}")
        if len(layers) > rows:
            lines.append(f"  ... {len(layers) - rows} more layer(s)")
        return lines


def read_log(path):
    """The JSON lines of a watch log (a list of dicts); InputError naming the line that is not JSON."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}:{n}: not a JSON line ({e})") from None
    return out
