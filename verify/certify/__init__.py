"""Certifiers: the paper's objects at concrete points, each answer backed by evidence a checker re-validates.

- ``index_set`` / ``conservative_field``: I(x) and the generators of D_f(x) (Definition 5, Theorem 3);
- ``clarke``: essential patterns and the Clarke subdifferential's generators;
- ``critical``: selection-critical, Clarke-critical and artificial critical points (Section 5);
- ``spurious``: Theorem 1's construction, a program equal to P with AD's derivative shifted at a point;
- ``segment_partition`` / ``integral_identity``: Claim 1 and Proposition 2 on segments and polynomial curves,
  for every program: scalar programs go to segment.py and integral.py, tensor programs (segments between two
  arrays per input) to segment_net.py, from here only (the one place that tells the two apart for curves);
- ``certify_differentiable``: Proposition 3 at a point (every switching function certified nonzero).
"""
from .clarke import clarke, is_piecewise_linear
from .critical import critical, zero_in_hull
from .index import conservative_field, index_set
from .differentiable import certify_differentiable, differentiable_certificate
from .integral import integral_certificate
from .integral import integral_identity as _scalar_identity
from .segment import DEFAULT_TOL, Curve, segment_certificate
from .segment import segment_partition as _scalar_partition
from .segment_net import MAX_SCALAR, tensor_integral_identity, tensor_segment_partition
from .spurious import spurious
from ..frontends import as_program
from ..program import kinks
from ..program.prims.steps import require_continuous


def segment_partition(program, x=None, y=None, curve=None, convention=kinks.DEFAULT, tol=DEFAULT_TOL,
                      method="auto", prec=None, max_scalar=MAX_SCALAR):
    """Claim 1's partition: ``segment.segment_partition`` for scalar programs (x, y points or a curve),
    ``segment_net.tensor_segment_partition`` for tensor programs (x, y: one array per input)."""
    program = as_program(program)
    require_continuous(program, "the segment partition (Claim 1)")
    if not program.is_scalar:
        return tensor_segment_partition(program, x, y, curve, convention, tol, method, prec, max_scalar)
    return _scalar_partition(program, x, y, curve, convention, tol, method, prec)


def integral_identity(program, x=None, y=None, curve=None, convention=kinks.DEFAULT, tol=DEFAULT_TOL,
                      method="auto", prec=None, max_scalar=MAX_SCALAR):
    """Proposition 2: ``integral.integral_identity`` for scalar programs,
    ``segment_net.tensor_integral_identity`` for tensor programs."""
    program = as_program(program)
    require_continuous(program, "the integral identity (Proposition 2)")
    if not program.is_scalar:
        return tensor_integral_identity(program, x, y, curve, convention, tol, method, prec, max_scalar)
    return _scalar_identity(program, x, y, curve, convention, tol, method, prec)


__all__ = ["index_set", "conservative_field", "clarke", "critical", "spurious", "zero_in_hull",
           "is_piecewise_linear", "segment_partition", "integral_identity", "certify_differentiable", "Curve",
           "segment_certificate", "integral_certificate", "differentiable_certificate"]
