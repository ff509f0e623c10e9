"""Solvers for cross-learning, all with one protocol (``init`` / ``step`` / ``run``).

* :class:`ADMM`: parametric constraints, Algorithm 1, with a proximal x-step from
  :class:`QuadraticProx`, :class:`OptaxProx` or :class:`LeastSquaresProx`.
* :class:`ProjectedGradient`: parametric constraints, a gradient step then P_C.
* :class:`PrimalDual`: functional (output) constraints, Algorithm 2, with an
  output distance such as :func:`l1_distance`, and a multiplier update
  (:func:`method_of_multipliers`, the default; :func:`paper_dual_ascent`, the
  paper's; :func:`momentum_ascent`, :func:`nupi_ascent`, :func:`optimistic_ascent`),
  and optionally resilient constraints (``resilience=α``: ḡ_t ≤ ε + u_t at cost α u_t²/2,
  Hounie et al. 2023).
"""

from cljax.solvers._admm import ADMM as ADMM
from cljax.solvers._admm import ADMMInfo as ADMMInfo
from cljax.solvers._admm import ADMMState as ADMMState
from cljax.solvers._admm import authors_schedule as authors_schedule
from cljax.solvers._distances import l1_distance as l1_distance
from cljax.solvers._dual import DualUpdate as DualUpdate
from cljax.solvers._dual import method_of_multipliers as method_of_multipliers
from cljax.solvers._dual import momentum_ascent as momentum_ascent
from cljax.solvers._dual import nupi as nupi
from cljax.solvers._dual import nupi_ascent as nupi_ascent
from cljax.solvers._dual import optimistic_ascent as optimistic_ascent
from cljax.solvers._dual import paper_dual_ascent as paper_dual_ascent
from cljax.solvers._distances import softmax_l1_distance as softmax_l1_distance
from cljax.solvers._distances import squared_distance as squared_distance
from cljax.solvers._primal_dual import PrimalDual as PrimalDual
from cljax.solvers._primal_dual import PrimalDualInfo as PrimalDualInfo
from cljax.solvers._primal_dual import PrimalDualState as PrimalDualState
from cljax.solvers._projected_gradient import ProjectedGradient as ProjectedGradient
from cljax.solvers._projected_gradient import ProjectedGradientInfo as ProjectedGradientInfo
from cljax.solvers._projected_gradient import ProjectedGradientState as ProjectedGradientState
from cljax.solvers._prox import LeastSquaresProx as LeastSquaresProx
from cljax.solvers._prox import OptaxProx as OptaxProx
from cljax.solvers._prox import QuadraticProx as QuadraticProx

__all__ = [
    "ADMM", "ADMMInfo", "ADMMState", "authors_schedule",
    "ProjectedGradient", "ProjectedGradientInfo", "ProjectedGradientState",
    "PrimalDual", "PrimalDualInfo", "PrimalDualState",
    "DualUpdate", "method_of_multipliers", "paper_dual_ascent", "momentum_ascent",
    "nupi", "nupi_ascent", "optimistic_ascent",
    "QuadraticProx", "OptaxProx", "LeastSquaresProx",
    "l1_distance", "softmax_l1_distance", "squared_distance",
]
