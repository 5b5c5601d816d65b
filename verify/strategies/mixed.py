"""Mixed programs: rational nonsmooth parts (+ - * /, powers, relu, max, sort, where, clamp, ...) beside cos, exp
and tanh, the family on which ball-method segments are measured (issue 21): every switching function is then
decided by the most exact method its own dependencies allow, and what stays undecided is a genuine multiple
root."""
from . import NONSMOOTH, RATIONAL_SMOOTH, programs

MIXED = RATIONAL_SMOOTH + NONSMOOTH + ("cos", "exp", "tanh")


def mixed_programs(n_inputs=2, max_eqns=12):
    """Random programs over MIXED with one output (see ``verify.strategies.programs``)."""
    return programs(n_inputs=n_inputs, max_eqns=max_eqns, primitives=MIXED, max_outputs=1)
