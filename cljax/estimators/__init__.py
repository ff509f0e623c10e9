"""Estimators of task means (paper §III): separate, consensus, cross-learning, James–Stein;
choosing ε without an oracle (SURE, K-fold CV); the two-task closed form (EUSIPCO eq. 8);
the penalty family (FedProx / Ditto / pFedMe / MR-MTL coupling μ/2 ‖θ_t − θ_g‖²) and
resilient cross-learning (Hounie et al. 2023), for means and least squares."""

from cljax.estimators._eps_selection import cv_curve as cv_curve
from cljax.estimators._eps_selection import divergence_autodiff as divergence_autodiff
from cljax.estimators._eps_selection import fold_masks as fold_masks
from cljax.estimators._eps_selection import select as select
from cljax.estimators._eps_selection import sure as sure
from cljax.estimators._eps_selection import sure_curve as sure_curve
from cljax.estimators._means import consensus as consensus
from cljax.estimators._means import cross_learning as cross_learning
from cljax.estimators._means import james_stein as james_stein
from cljax.estimators._means import mean_squared_error as mean_squared_error
from cljax.estimators._means import sample_means as sample_means
from cljax.estimators._means import separate as separate
from cljax.estimators._penalty import least_squares_terms as least_squares_terms
from cljax.estimators._penalty import penalty_descent as penalty_descent
from cljax.estimators._penalty import penalty_least_squares as penalty_least_squares
from cljax.estimators._penalty import penalty_means as penalty_means
from cljax.estimators._penalty import penalty_objective as penalty_objective
from cljax.estimators._penalty import projection_multipliers as projection_multipliers
from cljax.estimators._penalty import resilient_alpha as resilient_alpha
from cljax.estimators._penalty import resilient_least_squares as resilient_least_squares
from cljax.estimators._penalty import resilient_means as resilient_means
from cljax.estimators._two_task import two_task_draws as two_task_draws
from cljax.estimators._two_task import two_task_mse as two_task_mse
from cljax.estimators._two_task import two_task_mse_slope as two_task_mse_slope

__all__ = [
    "sample_means", "separate", "consensus", "cross_learning", "james_stein",
    "mean_squared_error",
    "sure", "sure_curve", "divergence_autodiff", "cv_curve", "fold_masks", "select",
    "two_task_mse", "two_task_mse_slope", "two_task_draws",
    "penalty_means", "penalty_least_squares", "least_squares_terms", "penalty_descent",
    "penalty_objective", "projection_multipliers",
    "resilient_alpha", "resilient_means", "resilient_least_squares",
]
