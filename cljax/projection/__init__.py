"""Projections: the Euclidean ball and the cross-learning set P_C (DESIGN §2).

One operator, :func:`project_cross_learning`, returns one :class:`ProjectionResult`
whatever the algorithm (``solver="auto" | "dual" | "primal" | "fixed"``);
:func:`project_cross_learning_path` is the same operator along an ε grid.  The
algorithms are private modules sharing one module of terms (``_terms.py``).
:func:`project_centre_newton` and :func:`centre_path` /
:func:`map_cross_learning_path` are specialisations for many small w_g = 0
problems given as plain (T, d) arrays (the Gaussian studies).
"""

from cljax.projection._ball import project_l2_ball as project_l2_ball
from cljax.projection._centre_newton import CentreProjection as CentreProjection
from cljax.projection._centre_newton import project_centre_newton as project_centre_newton
from cljax.projection._centre_newton import projection_divergence as projection_divergence
from cljax.projection._centre_path import CentrePath as CentrePath
from cljax.projection._centre_path import centre_path as centre_path
from cljax.projection._centre_path import map_cross_learning_path as map_cross_learning_path
from cljax.projection._operator import ProjectionResult as ProjectionResult
from cljax.projection._operator import cross_learning_objective as cross_learning_objective
from cljax.projection._operator import project_cross_learning as project_cross_learning
from cljax.projection._operator import (
    project_cross_learning_path as project_cross_learning_path,
)

__all__ = [
    "project_l2_ball",
    "project_cross_learning", "project_cross_learning_path", "ProjectionResult",
    "cross_learning_objective",
    "project_centre_newton", "CentreProjection", "projection_divergence",
    "centre_path", "CentrePath", "map_cross_learning_path",
]
