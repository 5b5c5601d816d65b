"""verify audit SCRIPT.py:NAME."""
import os

from ..frameworks import FRAMEWORKS
from . import FMT, emit, footer

SCRIPT_HELP = ("SCRIPT.py:NAME names a function NAME in your own Python script that returns (model, args) or (model, "
               "args, options): the model (a torch.nn.Module, or a function of tensors, or a JAX function) "
               "returning a scalar loss, its example arguments as a tuple, and optionally a dict of audit options "
               "(wrt, framework, and the framework's import options: params for torch, constant_args for JAX).  "
               "The script is your code and is imported as such; program "
               "text elsewhere in verify is never executed.")


def add(sub):
    a = sub.add_parser("audit", help="audit what PyTorch or JAX returned: exact kinks, the exact selection gradient, "
                                     "differentiability, artificial critical points",
                       description="Import the model (through torch.export or jax.make_jaxpr, with the framework's "
                                   "kink semantics), evaluate it exactly at the example arguments (floats are the "
                                   "dyadic rationals they are), and report: the framework's float gradient beside "
                                   "the exact selection gradient its kink convention defines, element by element; "
                                   "the exact kinks (switching functions exactly 0), per layer and class (plateau, "
                                   "zero, bound, tie, below, sort, compare), and every float kink (a decision the "
                                   "float computation made otherwise) with its place in the model; whether "
                                   "the point is certified differentiable; and when the gradient is zero or tiny, "
                                   "whether the point is selection-critical, Clarke-critical, artificial.  Exit 0 "
                                   "when the framework's gradient is (to float rounding) a selection gradient at "
                                   "the exact point, 1 when it is not, 3 when that is undecided.",
                       epilog=footer(SCRIPT_HELP), formatter_class=FMT)
    a.add_argument("target", metavar="SCRIPT.py:NAME", help="the script and the function returning (model, args)")
    a.add_argument("--framework", choices=sorted(FRAMEWORKS), help="default: from the model's type")
    a.add_argument("--wrt", metavar="NAMES", help="comma-separated inputs to differentiate (program names such as "
                                                   "l1_weight, or framework names such as l1.weight; default all)")
    a.add_argument("--exact", action="store_true", help="the exact rational selection gradient: the index set and "
                                                         "the gradient in exact arithmetic throughout (slower), and "
                                                         "with --json every element of it")
    a.add_argument("--critical", default="auto", choices=("auto", "always", "never"),
                   help="criticality: when the gradient is tiny (auto, default), always, or never")
    a.add_argument("--certificate", metavar="FILE", help="write a certificate that `verify check` re-validates "
                                                         "(the program and the point go to .npz files beside it)")
    a.add_argument("--kinks", metavar="FILE.npz", help="write every exact and float kink (equation, site, switching "
                                                       "function, class, signs) to this .npz (docs/audit.md)")
    a.add_argument("--plot", metavar="FILE.png", help="draw the kinks per layer and every gradient element's "
                                                      "|float - exact| against its bound into this PNG")
    a.add_argument("--json", action="store_true", help="print one JSON object (whatever the outcome): kinks "
                                                       "aggregated per layer and class, every float kink listed")
    a.set_defaults(run=run)


def call_script(target):
    """What NAME() returns, for SCRIPT.py:NAME (the user's own script, imported as a module and its function
    called; anything it raises becomes one InputError line)."""
    import importlib.util
    import sys

    from ..errors import InputError
    path, sep, name = target.rpartition(":")
    if not sep or not path.endswith(".py") or not name.isidentifier():
        raise InputError(f"{target!r}: write SCRIPT.py:NAME, e.g. model.py:make")
    if not os.path.isfile(path):
        raise InputError(f"{path!r}: no such script")
    spec = importlib.util.spec_from_file_location(f"verify_audit_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(module)     # the user's own code, run as the user asked
        fn = getattr(module, name, None)
        if not callable(fn):
            raise InputError(f"{path} has no function {name!r}")
        return fn()
    except InputError:
        raise
    except Exception as e:                  # anything the user's script raises, reported in one line
        raise InputError(f"{target}: the script raised {type(e).__name__}: {e}".split("\n")[0]) from None
    finally:
        sys.path.pop(0)


def load_target(target):
    """(model, args, options) from SCRIPT.py:NAME (the user's own script, imported as a module)."""
    from ..errors import InputError
    out = call_script(target)
    if not isinstance(out, tuple) or len(out) not in (2, 3) or not isinstance(out[1], (tuple, list)):
        raise InputError(f"{target} must return (model, args) or (model, args, options), args a tuple")
    return out[0], tuple(out[1]), dict(out[2]) if len(out) == 3 else {}


def run(args):
    import sys

    from ..auditing import audit, audit_certificates
    from ..certificates import check_writable
    for path, ext in ((args.certificate, None), (args.kinks, ".npz"), (args.plot, ".png")):
        if path:
            check_writable(path)
            if ext and not path.lower().endswith(ext):
                from ..errors import InputError
                raise InputError(f"{path!r}: the file name must end with {ext}")
    model, margs, opts = load_target(args.target)
    wrt = args.wrt.split(",") if args.wrt else opts.pop("wrt", None)
    opts.pop("wrt", None)
    framework = args.framework or opts.pop("framework", None)
    opts.pop("framework", None)
    rep = audit(model, *margs, framework=framework, wrt=wrt, critical=args.critical, exact=args.exact, **opts)
    if args.kinks:
        rep.save_kinks(args.kinks)
        print(f"kinks written to {args.kinks}", file=sys.stderr)
    if args.plot:
        rep.plot(args.plot)
        print(f"figure written to {args.plot}", file=sys.stderr)
    if args.certificate:
        stem, ext = os.path.splitext(args.certificate)
        for suffix, tc in audit_certificates(rep):
            path = stem + suffix + (ext or ".json")
            tc.write(path)
            print(f"certificate written to {path}", file=sys.stderr)
    return emit(args, rep.verdict_word, rep.json(), rep.summary(), rep.verdict)
