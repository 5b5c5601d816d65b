"""Import once, audit many: ``Auditor(model, *example_args)`` exports the model once (torch.export, or
jax.make_jaxpr) and ``auditor.audit(*args)`` audits new batches with the model's current weights.

The framework side is the framework module's ``Model`` (frameworks/torch.py, frameworks/jax.py): it keeps
the exported graph, reads the parameters (and buffers) of the live model at every audit, and lowers the
graph again only when what a lowering bakes in changed (integer data such as labels); new shapes export
again.  ``verify.audit`` is a one-shot Auditor.  A training loop audits the gradient its optimizer will use
(``audit(*batch, gradient={name: p.grad ...})``) instead of having the framework recompute one.
"""
import math
from collections.abc import Mapping


from .. import frameworks
from ..errors import InputError
from .engine import TINY, audit_imported
from .floats import host_array


class Auditor:
    """An exported model, audited at any batch of the example's shapes with the live weights.

    ``model`` is a torch.nn.Module or a function of tensors, or a JAX function, returning a scalar loss;
    ``example_args`` its example arguments (they fix the shapes).  ``framework``: a registered name (default:
    guessed from the model and the arguments); ``wrt``, ``prec``, ``tiny``, ``critical``, ``exact``: the
    defaults of every ``audit`` (see ``verify.audit``); ``options``: the framework's import options (torch
    ``params``, JAX ``constant_args``).  ``exports`` counts the framework imports so far (one, until the shapes
    change).
    """

    def __init__(self, model, *example_args, framework=None, wrt=None, prec=None, tiny=TINY, critical="auto",
                 exact=False, **options):
        fw = frameworks.get(framework) if framework else frameworks.guess(model, example_args)
        fw.check_options(options)
        self.framework = fw.name
        self.model = fw.module().Model(model, example_args, **options)
        self.example_args = tuple(example_args)
        self.defaults = {"wrt": wrt, "prec": prec, "tiny": tiny, "critical": critical, "exact": exact}

    def __repr__(self):
        return f"<Auditor of {self.model.name} ({self.framework}), {self.exports} export(s)>"

    @property
    def exports(self):
        """How many times the framework exported (traced) the model."""
        return self.model.exports

    def imported(self, *args):
        """The model as a verify program at ``args`` (default: the example arguments) with its current
        weights: an ``Imported`` (program, exact point, inputs, origins)."""
        return self.model.imported(*(args or self.example_args))

    def audit(self, *args, gradient=None, **overrides):
        """The AuditReport at ``args`` (default: the example arguments) with the model's current weights.

        ``gradient``: the gradient to audit instead of the framework's own (for example what a training
        step's optimizer will use): a mapping from input names (the framework's, such as ``fc1.weight`` or
        ``x``, or the program's, such as ``fc1_weight``; for JAX an argument's name maps to a pytree like the
        argument) to arrays, or a sequence with one array (or None) per program input.  Only the inputs it
        gives are audited unless ``wrt`` says otherwise.  ``overrides``: ``wrt``, ``prec``, ``tiny``,
        ``critical``, ``exact`` for this audit (``exact=True``: the index set and the selection gradient in
        exact rational arithmetic throughout; ``report.exact_gradient`` then holds exact arrays)."""
        opts = {**self.defaults, **overrides}
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise InputError(f"audit() got unknown option(s) {', '.join(sorted(unknown))} (it takes gradient, "
                             f"{', '.join(self.defaults)})")
        args = args or self.example_args
        imp = self.model.imported(*args)
        check_auditable(imp)
        if gradient is None:
            fgrad = self.model.gradient(args, imp)
        else:
            fgrad, given = given_gradient(imp, gradient, self.model)
            if opts["wrt"] is None:
                opts["wrt"] = given
        try:
            from .floats import var_values
            fvals, note = var_values(imp, self.model.values(imp, args)), None
        except Exception as e:      # the framework's own run of its graph: any failure leaves the replay alone
            fvals = {}
            note = (f"the framework's own intermediate values are not available ({type(e).__name__}: {e}); "
                    "float decisions come from a replay")
        rep = audit_imported(imp, fgrad, framework_vars=fvals, **opts)
        if note:
            rep.notes.append(note)
        return rep


def check_auditable(imp):
    """InputError unless the imported program returns one scalar that the framework differentiates (not a
    stop-gradient it returns as a value: ``Imported.no_gradient``) and has a float input to differentiate."""
    P = imp.program
    shapes = [P.atom_shape(a) for a in P.outputs]
    if len(shapes) != 1 or math.prod(shapes[0]) != 1:
        raise InputError(f"the audited function must return one scalar (a loss); {P.name} returns "
                         + ", ".join(f"an array of shape {list(s)}" for s in shapes))
    if 0 in getattr(imp, "no_gradient", {}):
        raise InputError(f"{P.name} returns a value its framework gives no gradient, so there is no framework "
                         f"gradient to audit: {imp.no_gradient[0]}")
    if not imp.inputs:
        raise InputError(f"nothing to differentiate: every input is an integer or a constant in {P.name} (the "
                         "audit needs a float argument or parameter)")


def given_gradient(imp, gradient, model=None):
    """(one array or None per program input, the indices of the inputs given) from a gradient given as a
    mapping of input names to arrays (an argument's name to a pytree for JAX) or as a sequence with one entry
    per program input.  InputError naming an unknown input or an array of the wrong shape."""
    names = [i.name for i in imp.inputs]
    out = [None] * len(names)
    if isinstance(gradient, Mapping):
        index = {}
        for k, info in enumerate(imp.inputs):
            index[info.name] = index[info.source] = k
        for key, value in flat_gradient(gradient, imp):
            if key not in index:
                raise InputError(f"gradient: {key!r} is not an input of the imported program (inputs: "
                                 f"{', '.join(i.source for i in imp.inputs)})")
            out[index[key]] = value
    else:
        gradient = list(gradient)
        if len(gradient) != len(names):
            raise InputError(f"gradient: {len(gradient)} array(s) for {len(names)} program input(s) "
                             f"({', '.join(names)})")
        out = gradient
    given = []
    for k, (info, g) in enumerate(zip(imp.inputs, out)):
        if g is None:
            continue
        arr = host_array(g)
        if tuple(arr.shape) != tuple(info.shape):
            raise InputError(f"gradient of {info.source}: shape {list(arr.shape)}, the input has "
                             f"{list(info.shape)}")
        out[k] = arr
        given.append(k)
    return out, given


def flat_gradient(gradient, imp):
    """[(input name, array)] of a mapping: an entry whose key names an argument whose inputs are named
    ``key[...]`` / ``key.…`` and whose value is a pytree (JAX) is flattened with the same paths."""
    known = {i.source for i in imp.inputs} | {i.name for i in imp.inputs}
    out = []
    for key, value in gradient.items():
        if key in known or not isinstance(value, (Mapping, list, tuple)):
            out.append((key, value))
            continue
        import jax
        for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
            out.append((key + jax.tree_util.keystr(path), leaf))
    return out
