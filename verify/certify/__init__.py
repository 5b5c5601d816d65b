"""Certifiers: the paper's objects at concrete points, each answer backed by evidence a checker re-validates.

- ``index_set`` / ``conservative_field``: I(x) and the generators of D_f(x) (Definition 5, Theorem 3);
- ``clarke``: essential patterns and the Clarke subdifferential's generators;
- ``critical``: selection-critical, Clarke-critical and artificial critical points (Section 5);
- ``spurious``: Theorem 1's construction, a program equal to P with AD's derivative shifted at a point.
"""
from .clarke import clarke, is_piecewise_linear
from .critical import critical, zero_in_hull
from .index import conservative_field, index_set
from .spurious import spurious

__all__ = ["index_set", "conservative_field", "clarke", "critical", "spurious", "zero_in_hull",
           "is_piecewise_linear"]
