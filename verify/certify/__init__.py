"""Certifiers: the paper's objects at concrete points, each answer backed by evidence a checker re-validates.

- ``index_set`` / ``conservative_field``: I(x) and the generators of D_f(x) (Definition 5, Theorem 3);
- ``clarke``: essential patterns and the Clarke subdifferential's generators;
- ``critical``: selection-critical, Clarke-critical and artificial critical points (Section 5);
- ``spurious``: Theorem 1's construction, a program equal to P with AD's derivative shifted at a point;
- ``segment_partition`` / ``integral_identity``: Claim 1 and Proposition 2 on segments and polynomial curves
  (tensor programs: segments between two arrays per input, segment_net.py);
- ``certify_differentiable``: Proposition 3 at a point (every switching function certified nonzero).
"""
from .clarke import clarke, is_piecewise_linear
from .critical import critical, zero_in_hull
from .index import conservative_field, index_set
from .differentiable import certify_differentiable, differentiable_certificate
from .integral import integral_certificate
from .segment import Curve, segment_certificate
from .segment_net import integral_identity, segment_partition     # scalar programs, and tensor programs
from .spurious import spurious

__all__ = ["index_set", "conservative_field", "clarke", "critical", "spurious", "zero_in_hull",
           "is_piecewise_linear", "segment_partition", "integral_identity", "certify_differentiable", "Curve",
           "segment_certificate", "integral_certificate", "differentiable_certificate"]
