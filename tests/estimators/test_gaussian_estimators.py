"""Separate, consensus and cross-learning estimators of Gaussian means: their limits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.estimators._means import (consensus, cross_learning, mean_squared_error, sample_means,
                              separate)

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def means():
    return jnp.asarray(np.random.default_rng(0).normal(size=(5, 3)) * 2.0)


def test_cross_learning_at_zero_eps_is_consensus(means):
    np.testing.assert_allclose(cross_learning(means, 0.0), consensus(means), atol=1e-12)


def test_weighted_cross_learning_at_zero_eps_is_weighted_consensus(means):
    w = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0])
    expected = np.sum(np.asarray(means) * np.asarray(w)[:, None], axis=0) / 15.0
    np.testing.assert_allclose(cross_learning(means, 0.0, w), np.tile(expected, (5, 1)),
                               atol=1e-12)


@pytest.mark.parametrize("eps", [np.inf, 1e3])
def test_cross_learning_at_large_eps_is_separate(means, eps):
    np.testing.assert_allclose(cross_learning(means, eps), separate(means), atol=1e-12)


def test_cross_learning_is_separate_once_eps_covers_the_spread(means):
    # with w_g = 0 the centre may be anywhere: the minimal enclosing ball decides.
    centre = jnp.mean(means, axis=0)
    radius = float(jnp.max(jnp.linalg.norm(means - centre, axis=1)))
    np.testing.assert_allclose(cross_learning(means, radius * 1.0001), means, atol=1e-9)


def test_cross_learning_error_interpolates_between_the_baselines(means):
    truth = jnp.zeros_like(means)
    errors = jax.vmap(lambda e: mean_squared_error(cross_learning(means, e), truth))(
        jnp.linspace(0.0, 20.0, 41))
    np.testing.assert_allclose(errors[0], mean_squared_error(consensus(means), truth), rtol=1e-12)
    np.testing.assert_allclose(errors[-1], mean_squared_error(means, truth), rtol=1e-12)


def test_sample_means_with_mask_match_per_task_means():
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(3, 6, 2))
    mask = np.ones((3, 6))
    mask[0, 4:] = 0
    mask[2, 1:] = 0
    got = sample_means(jnp.asarray(samples), jnp.asarray(mask))
    np.testing.assert_allclose(got[0], samples[0, :4].mean(axis=0))
    np.testing.assert_allclose(got[1], samples[1].mean(axis=0))
    np.testing.assert_allclose(got[2], samples[2, 0])


def test_example2_closed_forms_by_monte_carlo():
    # E_S = 2σ², E_C = μ² + σ²/2 for Example 2 (DESIGN §5), σ = 1, μ = 2.
    mu, sigma, n = 2.0, 1.0, 20000
    theta = jnp.array([[mu, 0.0], [-mu, 0.0], [0.0, mu], [0.0, -mu]])
    draws = theta + sigma * jax.random.normal(jax.random.PRNGKey(0), (n, 4, 2))
    e_s = jax.vmap(lambda d: mean_squared_error(separate(d), theta))(draws)
    e_c = jax.vmap(lambda d: mean_squared_error(consensus(d), theta))(draws)
    for values, exact in [(e_s, 2 * sigma**2), (e_c, mu**2 + sigma**2 / 2)]:
        se = float(jnp.std(values)) / np.sqrt(n)
        assert abs(float(jnp.mean(values)) - exact) < 4 * se
