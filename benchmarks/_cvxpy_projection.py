"""The cross-learning projection as a CVXPY problem (an SOCP), solved by Clarabel.

For many small instances the problem is built once with parameters (DPP), so a new
instance skips CVXPY's compilation: the fastest way to use CVXPY on a batch.  For one
large instance the data go in as constants (DPP compilation of a large parameterised
problem is far slower than the solve).
"""

from __future__ import annotations

import time

import numpy as np

# Tight tolerances for the accuracy check (Clarabel's defaults give ~1e-5 in the variables).
TIGHT = dict(tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10, tol_ktratio=1e-8,
             max_iter=200)


def _build(cp, a, a_g, eps, tasks, size, task_weights, global_weight):
    theta = cp.Variable((tasks, size))
    c = cp.Variable(size)
    tw = np.ones(tasks) if task_weights is None else np.asarray(task_weights, float)
    objective = (cp.sum(cp.multiply(tw, cp.sum(cp.square(theta - a), axis=1)))
                 + global_weight * cp.sum_squares(c - a_g))
    centre = np.ones((tasks, 1)) @ cp.reshape(c, (1, size), order="C")
    constraints = [cp.norm(theta - centre, 2, axis=1) <= eps]
    return cp.Problem(cp.Minimize(objective), constraints), theta, c


class CvxpyProjection:
    """min Σ_t w_t ‖θ_t − a_t‖² + w_g ‖θ_g − a_g‖²  s.t. ‖θ_t − θ_g‖ ≤ ε, for (T, S) data.

    Built once with parameters; :meth:`solve` sets them and re-solves.
    """

    def __init__(self, tasks: int, size: int, task_weights=None, global_weight=1.0):
        import cvxpy as cp

        self.cp = cp
        self.a = cp.Parameter((tasks, size))
        self.a_g = cp.Parameter(size)
        self.eps = cp.Parameter(nonneg=True)
        self.problem, self.theta, self.c = _build(
            cp, self.a, self.a_g, self.eps, tasks, size, task_weights, global_weight)

    def solve(self, a_tasks, a_global, eps, **settings):
        """Returns (θ, c, status, wall seconds, Clarabel's own solve seconds)."""
        self.a.value = np.asarray(a_tasks, float)
        self.a_g.value = np.asarray(a_global, float)
        self.eps.value = float(eps)
        start = time.perf_counter()
        self.problem.solve(solver=self.cp.CLARABEL, **settings)
        wall = time.perf_counter() - start
        stats = self.problem.solver_stats
        return (self.theta.value, self.c.value, self.problem.status, wall,
                getattr(stats, "solve_time", None))


def solve_once(a_tasks, a_global, eps, task_weights=None, global_weight=1.0):
    """Build (data as constants) and solve one instance, Clarabel default settings."""
    import cvxpy as cp

    a_tasks = np.asarray(a_tasks, float)
    start = time.perf_counter()
    problem, theta, c = _build(cp, a_tasks, np.asarray(a_global, float), float(eps),
                               *a_tasks.shape, task_weights, global_weight)
    problem.solve(solver=cp.CLARABEL)
    total = time.perf_counter() - start
    return {"theta": theta.value, "c": c.value, "status": problem.status, "total_s": total,
            "clarabel_solve_s": getattr(problem.solver_stats, "solve_time", None),
            "cvxpy_compile_s": getattr(problem, "compilation_time", None)}
