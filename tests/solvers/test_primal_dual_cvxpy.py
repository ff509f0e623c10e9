"""PrimalDual against Clarabel on convex P_CLF instances, for each multiplier update (issue 17).

A linear model f(x, θ) = x θ, squared loss, and the constraint
mean_i d(f(x_i, θ_t), f(x_i, θ_g)) ≤ ε with d squared or L1; T = 2–5, 6–14 samples,
d = 1–3, ε from tight to slack.  The objective, the violation and the multipliers are
compared with CVXPY's primal value and constraint duals.  One jitted run per
configuration, vmapped over the instances.
"""

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax.solvers import (PrimalDual, l1_distance, method_of_multipliers, momentum_ascent,
                           nupi_ascent, optimistic_ascent, paper_dual_ascent, squared_distance)

jax.config.update("jax_enable_x64", True)

SQUARED_EPS = (0.02, 0.1, 0.3, 2.0)  # tight ... slack (λ* = 0 at 2.0 on every instance)


def linear(params, x):
    return x @ params


def squared_error(out, y):
    return (out - y) ** 2


def make_instance(seed, t, n, d):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(t, n, d))
    theta = rng.normal(size=d) + 0.5 * rng.normal(size=(t, d))
    y = np.einsum("tnd,td->tn", x, theta) + 0.3 * rng.normal(size=(t, n))
    return x, y


def clarabel(x, y, eps, kind):
    """Optimal value, task parameters and constraint multipliers of P_CLF."""
    t, n, d = x.shape
    w, g = cp.Variable((t, d)), cp.Variable(d)
    objective = sum(cp.sum_squares(x[i] @ w[i] - y[i]) / n for i in range(t)) / t
    diffs = [x[i] @ (w[i] - g) for i in range(t)]
    cons = [(cp.sum(cp.abs(r)) if kind == "l1" else cp.sum_squares(r)) / n <= eps for r in diffs]
    problem = cp.Problem(cp.Minimize(objective), cons)
    problem.solve(solver=cp.CLARABEL)
    return problem.value, w.value, np.array([c.dual_value for c in cons]).ravel()


def solve_batch(solver, t, d, cases, steps):
    x = jnp.asarray(np.stack([c[0] for c in cases]))
    y = jnp.asarray(np.stack([c[1] for c in cases]))
    eps = jnp.asarray([c[2] for c in cases])
    run = jax.jit(jax.vmap(lambda xx, yy, e: solver.run(jnp.zeros((t, d)), (xx, yy), e, steps)))
    return run(x, y, eps)


def errors(state, info, cases, kind, last=1):
    """Per instance: relative objective gap, violation, max multiplier error, max |Δθ_t|.

    ``last`` > 1 averages the objective, constraints and λ over the last iterates.
    """
    out = []
    for i, (x, y, eps) in enumerate(cases):
        value, w, lam = clarabel(x, y, eps, kind)
        objective = float(jnp.mean(info.loss[i, -last:]))
        constraints = np.asarray(jnp.mean(info.constraints[i, -last:], axis=0))
        duals = np.asarray(jnp.mean(info.duals[i, -last:], axis=0))
        out.append((abs(objective - value) / abs(value), max(np.max(constraints - eps), 0.0),
                    np.max(np.abs(duals - lam)), np.max(np.abs(np.asarray(state.task_params[i]) - w))))
    return np.array(out)


@pytest.mark.parametrize("shape", [(2, 6, 1), (3, 10, 2), (5, 14, 3)], ids=str)
def test_default_reaches_cvxpy_saddle_point_in_5000_steps(shape):
    """Must show (issue 17): the default with sgd(0.05), ≤ 5,000 full-batch steps."""
    t, n, d = shape
    cases = [(*make_instance(seed, t, n, d), eps) for seed in (0, 1) for eps in SQUARED_EPS]
    solver = PrimalDual(linear, squared_error, optax.sgd(0.05), distance=squared_distance)
    assert solver.dual_rule.name == "method_of_multipliers"
    state, info = solve_batch(solver, t, d, cases, 5000)
    err = errors(state, info, cases, "squared")
    assert np.all(err[:, 0] <= 1e-4), err[:, 0]   # objective gap, relative
    assert np.all(err[:, 1] <= 1e-4), err[:, 1]   # violation
    assert np.all(err[:, 2] <= 1e-3), err[:, 2]   # multipliers against Clarabel's duals
    assert np.all(err[:, 3] <= 1e-3), err[:, 3]   # task parameters
    # the residuals the solver reports agree: a KKT point
    assert np.all(np.asarray(info.stationarity[:, -1]) <= 1e-4)
    assert np.all(np.asarray(info.complementarity[:, -1]) <= 1e-4)


# Each update on the (3, 10, 2) instances with its measured accuracy after 5,000 steps
# (benchmarks/bench_primal_dual.py has the steps to 1e-4 on all shapes).
# Tolerances: (gap, violation, multiplier error).  Plain and heavy-ball ascent on the
# plain Lagrangian stall on the tight instances: they are held to what they reach.
RULES = {
    "method_of_multipliers_rho3": (method_of_multipliers(3.0), 1e-4, 1e-4, 1e-3),
    "nupi_ascent": (nupi_ascent(1.0, kp=5.0, ki=1.0), 1e-4, 1e-4, 1e-3),
    "optimistic_ascent": (optimistic_ascent(1.0), 1e-4, 1e-4, 1e-3),
    "plain_ascent_eta1": (paper_dual_ascent(1.0), 3e-2, 3e-2, 0.1),
    "momentum_ascent": (momentum_ascent(0.2, 0.5), 3e-2, 3e-2, 0.1),
}


@pytest.fixture(scope="module")
def medium_cases():
    return [(*make_instance(seed, 3, 10, 2), eps) for seed in (0, 1) for eps in SQUARED_EPS]


@pytest.fixture(scope="module")
def default_errors(medium_cases):
    solver = PrimalDual(linear, squared_error, optax.sgd(0.05), distance=squared_distance)
    state, info = solve_batch(solver, 3, 2, medium_cases, 5000)
    return errors(state, info, medium_cases, "squared")


@pytest.mark.parametrize("name", list(RULES))
def test_each_dual_update_against_cvxpy(name, medium_cases):
    rule, gap, violation, dual = RULES[name]
    solver = PrimalDual(linear, squared_error, optax.sgd(0.05), distance=squared_distance,
                        dual=rule)
    state, info = solve_batch(solver, 3, 2, medium_cases, 5000)
    err = errors(state, info, medium_cases, "squared")
    assert np.all(np.isfinite(err))
    assert np.all(err[:, 0] <= gap) and np.all(err[:, 1] <= violation), err
    assert np.all(err[:, 2] <= dual), err[:, 2]


def test_paper_dual_ascent_stalls_where_the_default_converges(medium_cases, default_errors):
    """Issue 17: η_D = 10 plain ascent (the paper, full batch) stays far from the saddle."""
    solver = PrimalDual(linear, squared_error, optax.sgd(0.05), distance=squared_distance,
                        dual=paper_dual_ascent())
    state, info = solve_batch(solver, 3, 2, medium_cases, 5000)
    err = errors(state, info, medium_cases, "squared")
    assert np.max(err[:, 2]) > 1e-2  # multipliers off by > 1e-2 on a tight instance
    assert np.max(default_errors[:, 2]) <= 1e-3


def test_l1_distance_default_reaches_cvxpy_on_averaged_iterates():
    """L1 is nonsmooth: fixed primal steps chatter across the kinks x_i·(θ_t − θ_g) = 0,
    so the last iterate is accurate to ~2e-3, the average of the last 1,000 to ~4e-4.
    At a tight ε (0.05 here) the chatter η_P λ |x| exceeds ε and λ runs away: not tested,
    documented in docs/solvers.md."""
    cases = [(*make_instance(seed, 3, 10, 2), eps) for seed in (0, 1) for eps in (0.2, 0.5, 3.0)]
    solver = PrimalDual(linear, squared_error, optax.sgd(0.05), distance=l1_distance)
    state, info = solve_batch(solver, 3, 2, cases, 5000)
    averaged = errors(state, info, cases, "l1", last=1000)
    assert np.all(averaged[:, 0] <= 1e-3), averaged[:, 0]
    assert np.all(averaged[:, 1] <= 1e-4), averaged[:, 1]
    assert np.all(averaged[:, 2] <= 1e-3), averaged[:, 2]
    assert np.all(averaged[:, 3] <= 5e-3), averaged[:, 3]
    # the slack instance (ε = 3) has λ* = 0 and converges like a smooth problem
    assert np.all(averaged[2::3, 2] <= 1e-6)
