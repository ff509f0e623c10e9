"""cljax: cross-learning, multi-task constrained optimisation, in JAX.

Agorio, Cerviño, Calvo-Fullana, Ribeiro and Bazerque, "Cross-Learning from Scarce
Data via Multi-Task Constrained Optimization", arXiv 2511.13680.
"""

from cljax.admm import ADMM, ADMMInfo, ADMMState, authors_schedule
from cljax.ball import project_l2_ball
from cljax.distances import l1_distance, softmax_l1_distance, squared_distance
from cljax.centre_newton import CentreProjection, project_centre_newton, projection_divergence
from cljax.centre_path import CentrePath, centre_path, map_cross_learning_path
from cljax.estimators import (consensus, cross_learning, james_stein, mean_squared_error,
                              sample_means, separate)
from cljax.primal_dual import PrimalDual, PrimalDualInfo, PrimalDualState
from cljax.projected_gradient import ProjectedGradient, ProjectedGradientState
from cljax.projection import ProjectionResult, cross_learning_objective, project_cross_learning
from cljax.prox import LeastSquaresProx, OptaxProx, QuadraticProx

__version__ = "0.1.0"

__all__ = [
    "ADMM", "ADMMInfo", "ADMMState", "authors_schedule",
    "project_l2_ball",
    "l1_distance", "softmax_l1_distance", "squared_distance",
    "CentreProjection", "project_centre_newton", "projection_divergence",
    "CentrePath", "centre_path", "map_cross_learning_path",
    "consensus", "cross_learning", "james_stein", "mean_squared_error", "sample_means",
    "separate",
    "PrimalDual", "PrimalDualInfo", "PrimalDualState",
    "ProjectedGradient", "ProjectedGradientState",
    "ProjectionResult", "cross_learning_objective", "project_cross_learning",
    "LeastSquaresProx", "OptaxProx", "QuadraticProx",
]
