"""Named kink conventions: what PyTorch, JAX and TensorFlow return at the kinks of their nonsmooth
primitives, as parameter sets for our primitives (measured on CPU in float64, torch 2.13, JAX 0.10.2,
TensorFlow 2.21; the table is in docs/programs.md).

A convention only fills params that a program leaves unwritten: ``relu(u, alpha=1/2)`` means alpha = 1/2
under every convention.  Values are either fixed or a function of the number of arguments, because
TensorFlow's binary ``tf.maximum`` gives a tie to its first argument while ``tf.reduce_max`` splits it.

- torch: relu'(0)=0, abs'(0)=0, max/min ties split evenly, clamp/clip derivative 1 at both bounds,
  hardtanh 0 at -1 and 1, relu6 0 at 0 and 6, leaky_relu'(0)=slope, stable sort in both directions.
- jax: relu'(0)=0, abs'(0)=1 (the sign convention of lax.abs' JVP), ties split, jnp.clip 1/2 at both
  bounds (lax.clamp gives 0: write at_lo=0, at_hi=0), hard_tanh 1 at -1 and 1, relu6 0, leaky_relu'(0)=1,
  sort ascending stable, descending reverse-stable (ascending then flipped).
- tf: relu'(0)=0, abs'(0)=0, binary max/min give the tie to the first argument (tf.maximum), n-ary ones
  split (tf.reduce_max), clip_by_value 1 at both bounds, relu6 0, leaky_relu'(0)=slope, stable sort.
  TensorFlow has no hardtanh; ours keeps PyTorch's values there.
- tensor reductions, all three: amax / amin split a tie evenly (torch.amax, jnp.max, tf.reduce_max);
  max_pool2d gives a tied window's gradient to its first maximal element (row-major); sort_axis as sort.
"""
from flint import fmpq

from ..errors import InputError

_HALF = fmpq(1, 2)

CONVENTIONS = {
    "torch": {
        "relu": {"alpha": fmpq(0)},
        "abs": {"at_zero": fmpq(0)},
        "max": {"tie": "split"},
        "min": {"tie": "split"},
        "clamp": {"at_lo": fmpq(1), "at_hi": fmpq(1)},
        "hardtanh": {"at_lo": fmpq(0), "at_hi": fmpq(0)},
        "relu6": {"at_lo": fmpq(0), "at_hi": fmpq(0)},
        "leaky_relu": {"at_zero": None},
        "sort": {"ties": "stable"},
        "amax": {"tie": "split"},
        "amin": {"tie": "split"},
        "max_pool2d": {"tie": "first"},
        "sort_axis": {"ties": "stable"},
    },
    "jax": {
        "relu": {"alpha": fmpq(0)},
        "abs": {"at_zero": fmpq(1)},
        "max": {"tie": "split"},
        "min": {"tie": "split"},
        "clamp": {"at_lo": _HALF, "at_hi": _HALF},
        "hardtanh": {"at_lo": fmpq(1), "at_hi": fmpq(1)},
        "relu6": {"at_lo": fmpq(0), "at_hi": fmpq(0)},
        "leaky_relu": {"at_zero": fmpq(1)},
        "sort": {"ties": lambda n, params: "reverse" if params.get("descending") else "stable"},
        "amax": {"tie": "split"},
        "amin": {"tie": "split"},
        "max_pool2d": {"tie": "first"},
        "sort_axis": {"ties": lambda n, params: "reverse" if params.get("descending") else "stable"},
    },
    "tf": {
        "relu": {"alpha": fmpq(0)},
        "abs": {"at_zero": fmpq(0)},
        "max": {"tie": lambda n, params: "first" if n == 2 else "split"},
        "min": {"tie": lambda n, params: "first" if n == 2 else "split"},
        "clamp": {"at_lo": fmpq(1), "at_hi": fmpq(1)},
        "hardtanh": {"at_lo": fmpq(0), "at_hi": fmpq(0)},
        "relu6": {"at_lo": fmpq(0), "at_hi": fmpq(0)},
        "leaky_relu": {"at_zero": None},
        "sort": {"ties": "stable"},
        "amax": {"tie": "split"},
        "amin": {"tie": "split"},
        "max_pool2d": {"tie": "first"},
        "sort_axis": {"ties": "stable"},
    },
}
DEFAULT = "torch"


def check_convention(name):
    if name not in CONVENTIONS:
        raise InputError(f"convention {name!r} is unknown (choose one of {', '.join(CONVENTIONS)})")
    return name


def resolve(eqn, convention=DEFAULT):
    """Effective params of ``eqn``: the primitive's defaults, then the convention, then what is written."""
    from .prims import PRIMITIVES
    prim = PRIMITIVES[eqn.prim]
    explicit = dict(eqn.params)
    params = {k: d for k, (d, _) in prim.params.items()}
    base = {**params, **explicit}
    for k, v in CONVENTIONS[check_convention(convention)].get(eqn.prim, {}).items():
        if k not in explicit:
            params[k] = v(len(eqn.ins), base) if callable(v) else v
    params.update(explicit)
    return prim.check_params(params, len(eqn.ins), f"{eqn.prim}")
