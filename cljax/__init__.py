"""cljax: cross-learning, multi-task constrained optimisation, in JAX.

Agorio, Cerviño, Calvo-Fullana, Ribeiro and Bazerque, "Cross-Learning from Scarce
Data via Multi-Task Constrained Optimization", arXiv 2511.13680.

Layers (see docs/architecture.md):

* :mod:`cljax.projection`: the ball and the cross-learning projection P_C;
* :mod:`cljax.solvers`: ADMM, projected gradient and primal-dual, one protocol;
* :mod:`cljax.estimators`: estimators of task means and the choice of ε;
* :mod:`cljax.methods`: sibling multi-task methods behind one fit/predict interface;
* ``cljax.experiments``: the paper's experiments, users of the layers above
  (imported on demand, never by the core).
"""

from cljax import estimators as estimators
from cljax import methods as methods
from cljax import projection as projection
from cljax import solvers as solvers
from cljax.estimators import consensus as consensus
from cljax.estimators import cross_learning as cross_learning
from cljax.estimators import james_stein as james_stein
from cljax.estimators import mean_squared_error as mean_squared_error
from cljax.estimators import sample_means as sample_means
from cljax.estimators import separate as separate
from cljax.projection import CentrePath as CentrePath
from cljax.projection import CentreProjection as CentreProjection
from cljax.projection import ProjectionResult as ProjectionResult
from cljax.projection import centre_path as centre_path
from cljax.projection import cross_learning_objective as cross_learning_objective
from cljax.projection import map_cross_learning_path as map_cross_learning_path
from cljax.projection import project_centre_newton as project_centre_newton
from cljax.projection import project_cross_learning as project_cross_learning
from cljax.projection import project_l2_ball as project_l2_ball
from cljax.projection import projection_divergence as projection_divergence
from cljax.solvers import ADMM as ADMM
from cljax.solvers import ADMMInfo as ADMMInfo
from cljax.solvers import ADMMState as ADMMState
from cljax.solvers import LeastSquaresProx as LeastSquaresProx
from cljax.solvers import OptaxProx as OptaxProx
from cljax.solvers import PrimalDual as PrimalDual
from cljax.solvers import PrimalDualInfo as PrimalDualInfo
from cljax.solvers import PrimalDualState as PrimalDualState
from cljax.solvers import ProjectedGradient as ProjectedGradient
from cljax.solvers import ProjectedGradientInfo as ProjectedGradientInfo
from cljax.solvers import ProjectedGradientState as ProjectedGradientState
from cljax.solvers import QuadraticProx as QuadraticProx
from cljax.solvers import authors_schedule as authors_schedule
from cljax.solvers import l1_distance as l1_distance
from cljax.solvers import softmax_l1_distance as softmax_l1_distance
from cljax.solvers import squared_distance as squared_distance

__version__ = "0.3.0"

__all__ = [
    "projection", "solvers", "estimators", "methods",
    "project_l2_ball", "project_cross_learning", "ProjectionResult", "cross_learning_objective",
    "project_centre_newton", "CentreProjection", "projection_divergence",
    "centre_path", "CentrePath", "map_cross_learning_path",
    "ADMM", "ADMMInfo", "ADMMState", "authors_schedule",
    "ProjectedGradient", "ProjectedGradientInfo", "ProjectedGradientState",
    "PrimalDual", "PrimalDualInfo", "PrimalDualState",
    "QuadraticProx", "OptaxProx", "LeastSquaresProx",
    "l1_distance", "softmax_l1_distance", "squared_distance",
    "sample_means", "separate", "consensus", "cross_learning", "james_stein",
    "mean_squared_error",
]
