"""Gradients of the projection on a generic instance whose global point has zero curvature."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.projection._operator import project_cross_learning


@pytest.mark.parametrize("method", ["dual", "primal"])
def test_gradient_matches_finite_differences_on_generic_instance(method):
    rng = np.random.default_rng(0)
    at, ag = jnp.asarray(rng.normal(size=(15, 2))), jnp.asarray(rng.normal(size=2))
    # jitted once: an eager call re-traces the Newton loop on every evaluation
    f = jax.jit(lambda a: jnp.sum(project_cross_learning(a, ag, 0.5, method=method).task_params ** 2))
    g = np.asarray(jax.grad(f)(at))
    assert np.all(np.isfinite(g))
    h = 1e-6
    for idx in [(0, 0), (3, 1), (14, 0)]:
        e = np.zeros((15, 2))
        e[idx] = h
        fd = (float(f(at + e)) - float(f(at - e))) / (2 * h)
        np.testing.assert_allclose(g[idx], fd, rtol=1e-5, atol=1e-8)
