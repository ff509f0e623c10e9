"""Shared problems with known answers and the solvers that apply to them (optimistix style).

Every problem is multi-task least squares, L_t(θ) = mean_i (x_ti·θ − y_ti)², so that
each solver can take it: ADMM and ProjectedGradient as the parametric P_CL
(‖θ_t − θ_g‖ ≤ ε), PrimalDual as the functional P_CLF with the squared output
distance, where the two problems coincide (ε = ∞, T = 1).  Each reference is
computed independently of the solvers: the cross-learning projection of the
minimisers (quadratic losses with identity design), NumPy least squares (ε = 0:
pooled; ε = ∞ and T = 1: separate), CVXPY/Clarabel otherwise.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import cvxpy as cp
import jax.numpy as jnp
import numpy as np
import optax

from cljax.estimators import cross_learning
from cljax.solvers import ADMM, PrimalDual, ProjectedGradient, QuadraticProx, squared_distance


class Problem(NamedTuple):
    name: str
    x: np.ndarray  # (T, N, d)
    y: np.ndarray  # (T, N)
    eps: float
    expected: np.ndarray  # (T, d) optimal task parameters
    functional: bool  # P_CLF with the squared output distance has the same answer
    atol: float = 1e-6  # accuracy of the reference (Clarabel: variables to ~1e-5)


class SolverCase(NamedTuple):
    name: str
    make: Callable[[], Any]
    num_steps: int
    applies: Callable[[Problem], bool]
    atol: float


def ls_loss(params, data):
    x, y = data
    return jnp.mean((x @ params - y) ** 2)


def linear(params, x):
    return x @ params


def squared_error(out, y):
    return (out - y) ** 2


def _separate(x, y):
    return np.stack([np.linalg.lstsq(x[t], y[t], rcond=None)[0] for t in range(x.shape[0])])


def _pooled(x, y):
    d = x.shape[-1]
    return np.linalg.lstsq(x.reshape(-1, d), y.reshape(-1), rcond=None)[0]


def _clarabel(x, y, eps):
    t, _, d = x.shape
    w, g = cp.Variable((t, d)), cp.Variable(d)
    objective = sum(cp.sum_squares(x[i] @ w[i] - y[i]) / x.shape[1] for i in range(t))
    problem = cp.Problem(cp.Minimize(objective), [cp.norm(w[i] - g) <= eps for i in range(t)])
    problem.solve(solver=cp.CLARABEL)
    return w.value


def _data(seed, t, n, d):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(t, n, d))
    theta = rng.normal(size=d) + rng.normal(size=(t, d))
    return x, np.einsum("tnd,td->tn", x, theta) + 0.3 * rng.normal(size=(t, n))


def problems() -> list[Problem]:
    out = []
    # quadratic losses ‖θ − ȳ_t‖²/d (identity design): P_CL = projection of the means
    means = np.random.default_rng(0).normal(size=(5, 2)) * 2.0
    eye = np.broadcast_to(np.eye(2), (5, 2, 2)).copy()
    out.append(Problem("means_projection", eye, means, 0.7,
                       np.asarray(cross_learning(jnp.asarray(means), 0.7)), False))
    x, y = _data(1, 4, 12, 3)
    out.append(Problem("least_squares_cvxpy", x, y, 0.4, _clarabel(x, y, 0.4), False, 1e-4))
    out.append(Problem("eps_zero_pooled", x, y, 0.0, np.tile(_pooled(x, y), (4, 1)), False))
    out.append(Problem("eps_inf_separate", x, y, float("inf"), _separate(x, y), True))
    x1, y1 = _data(2, 1, 10, 2)
    out.append(Problem("single_task", x1, y1, 0.3, _separate(x1, y1), True))
    return out


def solvers() -> list[SolverCase]:
    return [
        SolverCase("admm", lambda: ADMM(QuadraticProx(ls_loss)), 300, lambda p: True, 1e-6),
        SolverCase("projected_gradient_wg0",
                   lambda: ProjectedGradient(ls_loss, optax.sgd(0.1), global_weight=0.0),
                   1500, lambda p: True, 1e-6),
        SolverCase("projected_gradient_wg1",
                   lambda: ProjectedGradient(ls_loss, optax.sgd(0.1), global_weight=1.0),
                   1500, lambda p: True, 1e-6),
        SolverCase("primal_dual",
                   lambda: PrimalDual(linear, squared_error, optax.sgd(0.2),
                                      distance=squared_distance, dual_every=1),
                   3000, lambda p: p.functional, 1e-6),
    ]


def cases():
    """(solver, problem) pairs where the solver applies."""
    return [(s, p) for s in solvers() for p in problems() if s.applies(p)]
