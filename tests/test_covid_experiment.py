"""COVID SIR estimators against independent references (scipy least_squares, a grid search,
the cross-learning limits) on a small subset of the shipped windows."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import least_squares

from cljax import covid_data as cd
from cljax import covid_experiment as ce
from cljax import sir

FIT = ce.SIRFit(fit_steps=60, admm_iterations=40, prox_steps=3)


@pytest.fixture(scope="module")
def problem():
    windows = cd.build_windows()
    small = [w for w in windows if w.iso_code in ("ARG", "ESP", "COL", "PER", "CHL")]
    return ce.make_problem(small, "ARG", 10)


@pytest.fixture(scope="module")
def tasks(problem):
    return ce.task_arrays(problem)


@pytest.fixture(scope="module")
def separate(tasks):
    return np.asarray(jax.jit(lambda t: ce.fit_separate(t, FIT))(tasks))


def scipy_residual(theta, window, n):
    """Residuals of one country, written independently with solve_ivp."""
    y0 = [window.susceptible[0] / window.population, window.infected[0] / window.population]
    beta, gamma = theta
    sol = solve_ivp(lambda t, y: [-beta * y[0] * y[1], beta * y[0] * y[1] - gamma * y[1]],
                    (0, n - 1), y0, t_eval=np.arange(n), rtol=1e-10, atol=1e-14)
    obs = window.infected[:n] / window.population
    return (sol.y[1] - obs) / np.sqrt(np.sum(obs**2))


def test_problem_setup_and_errors(problem, tasks):
    assert problem.iso_codes[0] == "ARG" and problem.target.days == 30
    assert problem.horizon == 300
    np.testing.assert_array_equal(np.asarray(tasks.weight[0] > 0),
                                  np.arange(problem.num_days) < 10)
    for k, w in enumerate(problem.windows):  # each country's weights normalise its loss
        mask = np.asarray(tasks.weight[k]) > 0
        obs = np.asarray(tasks.observed[k])[mask]
        np.testing.assert_allclose(np.sum((tasks.weight[k][mask] * obs) ** 2), 1.0)
    assert ce.make_problem(problem.windows, "COL", 5).iso_codes[0] == "COL"
    with pytest.raises(ValueError, match="target 'ARH' is not one of.*ARG"):
        ce.make_problem(problem.windows, "ARH", 10)
    with pytest.raises(ValueError, match="n_train = 31 must be between 2"):
        ce.make_problem(problem.windows, "ARG", 31)
    remasked = ce._with_target_days(tasks, 7)
    np.testing.assert_allclose(remasked.weight, ce.task_arrays(problem, n_train=7).weight)


def test_separate_matches_scipy_least_squares(problem, separate):
    for k, w in enumerate(problem.windows):
        n = problem.n_train if k == 0 else w.days
        ref = least_squares(scipy_residual, np.array(FIT.theta0), bounds=([0, 0], np.inf),
                            args=(w, n), xtol=1e-12, ftol=1e-12, gtol=1e-12)
        ours = 2 * 0.5 * np.sum(scipy_residual(separate[k], w, n) ** 2)
        # our optimum is at least as good as scipy's (to solver accuracy), and close to it
        assert ours <= 2 * ref.cost + 1e-7
        np.testing.assert_allclose(separate[k], ref.x, atol=2e-3)
    assert separate[0][1] == 0.0  # ARG at N = 10: γ collapses onto its bound


def test_consensus_is_no_worse_than_a_grid_search(tasks):
    con = np.asarray(jax.jit(lambda t: ce.fit_consensus(t, FIT))(tasks))
    residual = FIT.residual_fn(tasks.observed.shape[1])
    total = jax.jit(jax.vmap(lambda th: jnp.sum(jax.vmap(residual, (None, 0))(th, tasks) ** 2)))
    b, g = np.meshgrid(np.linspace(0.0, 1.5, 31), np.linspace(0.0, 1.5, 31))
    grid = total(jnp.stack([b.ravel(), g.ravel()], 1))
    assert np.all(con >= 0)
    assert float(total(con[None])[0]) <= float(jnp.min(grid)) + 1e-9


def test_cross_learning_limits_and_feasibility(tasks, separate):
    solve = jax.jit(lambda t, e, init: ce.fit_cross_learning(t, e, FIT, init))
    eps = 0.1
    cl = solve(tasks, eps, separate)
    dist = np.linalg.norm(np.asarray(cl.task_params - cl.global_params), axis=1)
    assert np.all(dist <= eps * (1 + 1e-6))
    assert np.all(np.asarray(cl.task_params) >= 0)
    np.testing.assert_allclose(cl.x_params, cl.task_params, atol=1e-3)  # x ≈ z
    # a radius no constraint reaches: ADMM stays at the separate fits
    wide = solve(tasks, 100.0, separate)
    np.testing.assert_allclose(wide.task_params, separate, atol=1e-6)


def test_eps_sweep_is_the_vmap_of_single_solves(problem, tasks, separate):
    grid = np.array([0.05, 0.3])
    sweep = ce.eps_sweep(problem, grid, FIT)
    single = jax.jit(lambda t, e, init: ce.fit_cross_learning(t, e, FIT, init))(
        tasks, 0.3, jnp.asarray(separate))
    np.testing.assert_allclose(sweep["task_params"][1], single.task_params, rtol=1e-6,
                               atol=1e-9)
    m = ce.peak_metrics(single.task_params[0], tasks, ce.truth_fraction(problem),
                        problem.horizon)
    assert sweep["peak_error_percent"][1] == pytest.approx(100 * float(m.peak_error))
    assert sweep["lag_days"][1] == int(m.lag)


def test_peak_metrics_against_an_independent_simulation(problem, tasks):
    theta = np.array([0.65, 0.43])
    m = ce.peak_metrics(jnp.asarray(theta), tasks, ce.truth_fraction(problem), 300,
                        sir.ADAPTIVE_SOLVER)
    w = problem.target
    y0 = [w.susceptible[0] / w.population, w.infected[0] / w.population]
    sol = solve_ivp(lambda t, y: [-0.65 * y[0] * y[1], 0.65 * y[0] * y[1] - 0.43 * y[1]],
                    (0, 299), y0, t_eval=np.arange(300), rtol=1e-10, atol=1e-14)
    peak = sol.y[1].max() * w.population
    # relative peak error to 1e-7 (the solvers' accuracy)
    assert float(m.peak_error) == pytest.approx(abs(peak - 1_558_670) / 1_558_670, abs=1e-7)
    assert int(m.lag) == abs(int(np.argmax(sol.y[1])) - 21)
