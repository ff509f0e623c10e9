"""EUSIPCO eq. 8 (two scalar tasks): numerical integration, limits, Claims 1-2, Monte Carlo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from cljax.projection._centre_newton import project_centre_newton
from cljax.estimators._two_task import two_task_draws, two_task_mse, two_task_mse_slope


def mse_by_quadrature(eps, eps0, sigma_m):
    """σ_M²/2 + ∫ (clip(w, −ε/2, ε/2) − ε0/2)² N(w; ε0/2, σ_M²/2) dw, by scipy quad."""
    s = sigma_m / np.sqrt(2.0)
    dens = stats.norm(eps0 / 2, s).pdf
    f = lambda w: (np.clip(w, -eps / 2, eps / 2) - eps0 / 2) ** 2 * dens(w)  # noqa: E731
    pts = [-eps / 2, eps / 2] if eps > 0 else [0.0]
    val = sum(integrate.quad(f, a, b, limit=200)[0]
              for a, b in zip([-np.inf] + pts, pts + [np.inf]))
    return sigma_m**2 / 2 + val


@pytest.mark.parametrize("eps0,sigma_m", [(0.0, 1.0), (0.5, 1.0), (2.0, 1.0), (3.0, 0.5), (1.0, 2.5)])
@pytest.mark.parametrize("eps", [0.0, 0.3, 1.0, 2.0, 5.0])
def test_closed_form_matches_quadrature(eps, eps0, sigma_m):
    assert float(two_task_mse(eps, eps0, sigma_m)) == pytest.approx(
        mse_by_quadrature(eps, eps0, sigma_m), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("eps0,sigma_m", [(0.7, 1.0), (2.0, 0.5), (0.0, 1.3)])
def test_limits_consensus_and_separate(eps0, sigma_m):
    assert float(two_task_mse(0.0, eps0, sigma_m)) == pytest.approx(sigma_m**2 / 2 + eps0**2 / 4)
    assert float(two_task_mse(1e3, eps0, sigma_m)) == pytest.approx(sigma_m**2, rel=1e-12)


@pytest.mark.parametrize("eps0,sigma_m", [(0.7, 1.0), (2.0, 0.5), (4.0, 2.0)])
def test_slope_matches_autodiff_and_finite_differences(eps0, sigma_m):
    eps = jnp.linspace(0.05, 6.0, 13)
    grad = jax.vmap(jax.grad(lambda e: two_task_mse(e, eps0, sigma_m)))(eps)
    np.testing.assert_allclose(two_task_mse_slope(eps, eps0, sigma_m), grad, rtol=1e-10, atol=1e-13)
    h = 1e-6
    fd = (two_task_mse(eps + h, eps0, sigma_m) - two_task_mse(eps - h, eps0, sigma_m)) / (2 * h)
    np.testing.assert_allclose(two_task_mse_slope(eps, eps0, sigma_m), fd, rtol=1e-6, atol=1e-9)


def test_claims_1_and_2_on_a_grid():
    # ε0/σ_M up to 5: beyond ~7 the gap ¾σ_M² − mse(ε0) (a Gaussian tail) is below
    # float64 resolution, so the strict upper bound cannot be checked there.
    ratio, sigma_m = np.meshgrid(np.geomspace(0.01, 5.0, 40), np.geomspace(0.1, 10.0, 15))
    sigma_m = sigma_m.ravel()
    eps0 = ratio.ravel() * sigma_m
    at_eps0 = np.asarray(two_task_mse(eps0, eps0, sigma_m))
    assert np.all(at_eps0 > sigma_m**2 / 2)  # Claim 1, lower bound
    assert np.all(at_eps0 < 0.75 * sigma_m**2)  # Claim 1, upper bound
    assert np.all(np.asarray(two_task_mse_slope(0.0, eps0, sigma_m)) < 0)  # Claim 2
    # and the slope at 0 is the one-sided finite difference
    fd = (two_task_mse(1e-7, eps0, sigma_m) - two_task_mse(0.0, eps0, sigma_m)) / 1e-7
    np.testing.assert_allclose(two_task_mse_slope(0.0, eps0, sigma_m), fd, rtol=1e-3, atol=1e-7)
    # ε0 = 0: no gain, slope exactly 0
    assert float(two_task_mse_slope(0.0, 0.0, 1.0)) == 0.0


def test_cljax_two_task_estimator_is_the_clip():
    # P̄_CL of two scalars at radius ε/2 is Z + clip(W, −ε/2, ε/2) (what eq. 8 integrates).
    pts = two_task_draws(jax.random.PRNGKey(3), 1.5, 1.0, 200)[:, :, None]
    project = jax.jit(jax.vmap(lambda p, e: project_centre_newton(p, e / 2).task_params[:, 0],
                               in_axes=(0, None)))
    for eps in [0.0, 0.4, 1.5, 3.0, np.inf]:
        got = project(pts, eps)
        z = pts[:, :, 0].mean(1)
        w = (pts[:, 0, 0] - pts[:, 1, 0]) / 2
        np.testing.assert_allclose(got[:, 0], z + np.clip(w, -eps / 2, eps / 2), atol=1e-12)
        np.testing.assert_allclose(got[:, 1], z - np.clip(w, -eps / 2, eps / 2), atol=1e-12)


@pytest.mark.parametrize("eps0,sigma_m", [(1.0, 1.0), (3.0, 1.0), (0.5, 2.0)])
def test_closed_form_matches_100k_monte_carlo(eps0, sigma_m):
    draws = 100_000
    grid = jnp.linspace(0.0, 4.0 * max(eps0, sigma_m), 21)
    pts = two_task_draws(jax.random.PRNGKey(7), eps0, sigma_m, draws)[:, :, None]

    @jax.jit
    def mc(pts):
        def at(eps):
            # T = 2: the start plus the two-task closed form is exact (no Newton steps needed)
            est = jax.vmap(lambda p: project_centre_newton(p, eps / 2, iterations=0)
                           .task_params[0, 0])(pts)
            sq = (est - eps0 / 2) ** 2
            return jnp.mean(sq), jnp.std(sq) / np.sqrt(draws)
        return jax.lax.map(at, grid)

    mean, se = mc(pts)
    z = (np.asarray(mean) - np.asarray(two_task_mse(grid, eps0, sigma_m))) / np.asarray(se)
    assert np.all(np.abs(z) < 4), z
