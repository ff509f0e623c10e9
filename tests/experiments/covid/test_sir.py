"""The diffrax SIR model against scipy's solve_ivp, and its derivatives against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from cljax.experiments.covid import sir as sir
RK4 = sir.SIRSolver()
TSIT5_FIXED = sir.SIRSolver(fixed_solver="tsit5")
ADAPTIVE = sir.SIRSolver(method="adaptive")
ADAPTIVE_REVERSE = sir.SIRSolver(method="adaptive", adjoint="reverse")

# one jitted simulate for the module: one compilation per (days, solver), shared by the
# four θ of each solver (θ is traced)
SIMULATE = jax.jit(sir.simulate, static_argnums=(2, 3))

THETAS = [(0.66, 0.44), (0.15, 0.0), (2.08, 1.88), (0.3, 1.0)]
Y0 = np.array([0.87, 0.006])


def reference(theta, y0, days):
    beta, gamma = theta

    def f(t, y):
        return [-beta * y[0] * y[1], beta * y[0] * y[1] - gamma * y[1]]

    sol = solve_ivp(f, (0, days - 1), y0, t_eval=np.arange(days), method="DOP853",
                    rtol=1e-12, atol=1e-15)
    return sol.y.T


@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("solver,tol,tol_fast", [(RK4, 1e-5, 2e-3), (TSIT5_FIXED, 1e-7, 4e-5),
                                                  (ADAPTIVE, 1e-6, 1e-6)],
                         ids=["rk4", "tsit5-fixed", "adaptive"])
def test_matches_solve_ivp(theta, solver, tol, tol_fast):
    """Fixed daily steps: ~1e-6 for the rates of the data (net rate |β s − γ| ≲ 0.3/day),
    ~1e-3 (RK4) for a decay at γ = 1/day; adaptive: ~rtol everywhere."""
    days = 150
    got = np.asarray(SIMULATE(jnp.array(theta), Y0, days, solver))
    want = reference(theta, Y0, days)
    assert got.shape == (days, 2)
    # relative to each state's scale
    fast = theta[1] >= 1.0
    assert np.max(np.abs(got - want) / np.max(np.abs(want), axis=0)) < (tol_fast if fast
                                                                         else tol)


def test_counts_conserve_population_and_peak_where_beta_s_equals_gamma():
    theta = jnp.array([0.6, 0.3])
    pop = 1e6
    y = np.asarray(sir.simulate_counts(theta, jnp.array([990000.0, 5000.0, 5000.0]), pop, 200,
                                       ADAPTIVE))
    np.testing.assert_allclose(y.sum(axis=1), pop, rtol=1e-12)
    assert np.all(np.diff(y[:, 0]) <= 1e-9 * pop) and np.all(np.diff(y[:, 2]) >= -1e-9 * pop)
    k = int(np.argmax(y[:, 1]))
    # β s/N − γ changes sign at the peak
    assert 0.6 * y[k - 1, 0] / pop >= 0.3 >= 0.6 * y[k + 1, 0] / pop
    day, top = sir.peak(theta, jnp.array([0.99, 0.005]), 200, ADAPTIVE)
    assert int(day) == k and float(top) * pop == pytest.approx(y[k, 1], rel=1e-9)


def test_zero_rates_and_one_day():
    y = sir.simulate(jnp.array([0.0, 0.0]), jnp.array(Y0), 20)
    np.testing.assert_allclose(y, np.broadcast_to(Y0, (20, 2)))
    y1 = sir.simulate(jnp.array([0.5, 0.1]), jnp.array(Y0), 1)
    np.testing.assert_allclose(y1, Y0[None])


def _fd_jacobian(fun, theta, h=1e-6):
    cols = []
    for k in range(2):
        e = np.zeros(2)
        e[k] = h
        cols.append((np.asarray(fun(theta + e)) - np.asarray(fun(theta - e))) / (2 * h))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("solver,tol", [(RK4, 1e-5), (ADAPTIVE, 1e-5)], ids=["rk4", "adaptive"])
def test_forward_jacobian_matches_finite_differences(solver, tol):
    """jacfwd of the solver against central differences of scipy's accurate solution
    (the true derivative of the ODE), and of the solver itself."""
    theta = np.array([0.66, 0.44])

    def fun(th):
        return sir.infected(th, jnp.array(Y0), 60, solver)

    # one compiled program gives the solution and its jacobian (the finite differences of
    # the solver below read the solution part)
    both = jax.jit(lambda th: (fun(th), jax.jacfwd(fun)(th)))
    jac = np.asarray(both(theta)[1])
    fd_true = _fd_jacobian(lambda th: reference(th, Y0, 60)[:, 1], theta, h=1e-5)
    assert np.max(np.abs(jac - fd_true)) < tol * np.max(np.abs(fd_true))
    fd_self = _fd_jacobian(lambda th: both(th)[0], theta)
    assert np.max(np.abs(jac - fd_self)) < tol * np.max(np.abs(fd_self))


@pytest.mark.parametrize("solver", [RK4, ADAPTIVE_REVERSE], ids=["rk4", "adaptive"])
def test_gradient_matches_finite_differences(solver):
    # the data: an accurate solution at another θ (scipy, no compilation)
    data = reference((0.7, 0.5), Y0, 40)[:, 1]

    def loss(th):
        return jnp.sum((sir.infected(th, jnp.array(Y0), 40, solver) - data) ** 2) / np.sum(
            data**2)

    theta = np.array([0.62, 0.41])
    # one compiled program: the loss (for the finite differences) and its gradient
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    grad = np.asarray(value_and_grad(theta)[1])
    fd = _fd_jacobian(lambda th: value_and_grad(th)[0], theta)
    np.testing.assert_allclose(grad, fd, rtol=1e-6)
    assert np.all(np.abs(grad) > 1e-3)  # a real, non-zero gradient


def test_vmap_matches_single_solves_and_float32_is_close():
    thetas = jnp.array(THETAS[:3])  # the default solver (RK4, daily steps)
    batched = jax.jit(jax.vmap(lambda th: sir.infected(th, jnp.array(Y0), 50)))(thetas)
    for th, row in zip(thetas, batched):
        np.testing.assert_allclose(row, sir.infected(th, jnp.array(Y0), 50), rtol=1e-12)
    f32 = sir.infected(jnp.array([0.66, 0.44], jnp.float32), jnp.array(Y0, jnp.float32), 50)
    assert f32.dtype == jnp.float32
    np.testing.assert_allclose(f32, batched[0], rtol=2e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="theta must be"):
        sir.simulate(jnp.ones(3), jnp.array(Y0), 10)
    with pytest.raises(ValueError, match="initial must be"):
        sir.simulate(jnp.ones(2), jnp.ones(3), 10)
    with pytest.raises(ValueError, match="num_days must be >= 1"):
        sir.simulate(jnp.ones(2), jnp.array(Y0), 0)
    with pytest.raises(ValueError, match="method"):
        sir.SIRSolver(method="euler")
    with pytest.raises(ValueError, match="steps_per_day"):
        sir.SIRSolver(steps_per_day=0)
    with pytest.raises(ValueError, match="adjoint"):
        sir.SIRSolver(adjoint="backward")


@pytest.mark.parametrize("kwargs,message", [
    ({"fixed_solver": "euler"}, "fixed_solver must be 'rk4' or 'tsit5', got 'euler'"),
    ({"rtol": 0.0}, "rtol must be > 0, got 0.0"),
    ({"atol": -1e-9}, "atol must be > 0, got -1e-09"),
    ({"rtol": float("nan")}, "rtol must be > 0, got nan"),
])
def test_bad_solver_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sir.SIRSolver(**kwargs)
