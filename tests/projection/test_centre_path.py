"""Warm-started certified path solver for P̄_CL against the cold solver and the general projection."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.projection._centre_newton import project_centre_newton
from cljax.projection._centre_path import centre_path, map_cross_learning_path
from cljax.projection._operator import project_cross_learning


def theta_of(fn_points, eps_grid, weights=None, **options):
    return map_cross_learning_path(fn_points, eps_grid, lambda a, th, c, e: th, weights, **options)


def cold_theta(points, eps_grid, weights=None):
    """Reference: the cold solver with many iterations, float64."""
    w = None if weights is None else jnp.asarray(weights, jnp.float64)
    return np.asarray(jax.jit(jax.vmap(jax.vmap(
        lambda p, e: project_centre_newton(p, e, w, iterations=40).task_params, (None, 0)),
        (0, None)))(jnp.asarray(points, jnp.float64), jnp.asarray(eps_grid, jnp.float64)))


def degenerate_points(rng, tasks, dim):
    base = rng.normal(size=(6, tasks, dim)) * 2.0
    base[0] = 0.0                                   # all tasks coincide
    base[1, 1:] = base[1, :1]                       # all but one coincide
    base[2] = np.outer(np.linspace(-2, 3, tasks), np.ones(dim))  # collinear
    base[3, :, 1:] = 0.0                            # on one axis
    base[4] *= 1e-4                                 # tiny spread
    base[5] *= 50.0                                 # wide spread
    return base


@pytest.mark.parametrize("tasks,dim", [(4, 2), (3, 1), (1, 2), (5, 3)])
def test_matches_cold_solver_float64(tasks, dim):
    rng = np.random.default_rng(100 + tasks * 10 + dim)
    points = np.concatenate([rng.normal(size=(60, tasks, dim)) * 2.0,
                             degenerate_points(rng, tasks, dim)])
    grid = np.concatenate([np.linspace(0.0, 8.0, 81), [np.inf]])
    ours, ok = jax.jit(lambda p: theta_of(p, grid, chunk=32))(jnp.asarray(points))
    ref = cold_theta(points, grid)
    np.testing.assert_allclose(ours, ref, atol=1e-10)
    assert ours.shape == (len(points), len(grid), tasks, dim)
    assert np.mean(np.asarray(ok)) > 0.9  # the warm start does most of the work


def test_float32_example2_within_1e5_of_float64():
    rng = np.random.default_rng(7)
    theta = np.array([[2.0, 0], [-2, 0], [0, 2], [0, -2]])
    points = (theta + 2.0 * rng.normal(size=(400, 4, 2))).astype(np.float32)
    grid = np.linspace(0.0, 10.0, 201).astype(np.float32)
    ours, ok = jax.jit(lambda p: theta_of(p, grid))(jnp.asarray(points))
    ref = cold_theta(points.astype(np.float64), grid.astype(np.float64))
    assert ours.dtype == jnp.float32
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    # the certificate alone (no repair needed) accounts for nearly every entry
    assert np.mean(np.asarray(ok)) > 0.99


def test_weights_unsorted_grid_and_general_projection():
    rng = np.random.default_rng(3)
    points = jnp.asarray(rng.normal(size=(12, 5, 2)) * 2.0)
    weights = jnp.asarray(rng.uniform(0.5, 2.0, size=5))
    grid = jnp.asarray(rng.permutation(np.concatenate([np.linspace(0, 5, 30), [np.inf, 0.7, 0.7]])))
    (theta, centre, eps_used), _ = jax.jit(lambda p: map_cross_learning_path(
        p, grid, lambda a, th, c, e: (th, c, e), weights, chunk=5))(points)
    ref = jax.jit(jax.vmap(jax.vmap(
        lambda p, e, w: project_cross_learning(p, None, e, task_weights=w, global_weight=0.0,
                                               max_iter=200).task_params, (None, 0, None)),
        (0, None, None)))(points, grid, weights)
    np.testing.assert_allclose(theta, ref, atol=1e-5)
    np.testing.assert_allclose(theta, cold_theta(points, grid, weights), atol=1e-10)
    # feasibility: ‖θ_t − c‖ ≤ ε at every entry
    dist = np.linalg.norm(np.asarray(theta) - np.asarray(centre)[:, :, None], axis=-1)
    assert np.all(dist <= np.asarray(eps_used)[..., None] + 1e-9)
    # centre_path returns the same centres (c is not unique where F = 0: same grid, same path)
    path = centre_path(points[:2], grid, weights)
    np.testing.assert_allclose(path.centre, centre[:2], atol=1e-10)


def test_limits_exact():
    rng = np.random.default_rng(11)
    points = jnp.asarray(rng.normal(size=(5, 4, 2)))
    theta, _ = jax.jit(lambda p: theta_of(p, jnp.array([0.0, np.inf, 100.0])))(points)
    mean = np.asarray(points).mean(1, keepdims=True)
    np.testing.assert_allclose(theta[:, 0], np.broadcast_to(mean, points.shape), atol=1e-12)
    np.testing.assert_array_equal(theta[:, 1], points)
    np.testing.assert_array_equal(theta[:, 2], points)


def test_repair_path_is_exact_when_certificate_always_fails():
    # tol = 0 and steps = 1: only rounding-level steps certify, the cold solver does the rest
    rng = np.random.default_rng(5)
    points = rng.normal(size=(8, 4, 2)) * 2.0
    grid = np.linspace(0.0, 4.0, 9)
    ours, ok = jax.jit(lambda p: theta_of(p, grid, steps=1, tol=0.0, fallback_batch=7))(
        jnp.asarray(points))
    assert np.mean(np.asarray(ok)) < 0.5
    np.testing.assert_allclose(ours, cold_theta(points, grid), atol=1e-10)


def test_bad_input():
    with pytest.raises(ValueError, match="points"):
        centre_path(jnp.ones((3, 2)), jnp.ones(2))
    with pytest.raises(ValueError, match="eps_grid"):
        centre_path(jnp.ones((2, 3, 2)), jnp.ones(()))
    with pytest.raises(ValueError, match="weights"):
        centre_path(jnp.ones((2, 3, 2)), jnp.ones(2), jnp.ones(2))
    with pytest.raises(ValueError, match="steps"):
        centre_path(jnp.ones((2, 3, 2)), jnp.ones(2), steps=0)
    with pytest.raises(TypeError, match="points"):
        centre_path(jnp.ones((2, 3, 2), jnp.int32), jnp.ones(2))
