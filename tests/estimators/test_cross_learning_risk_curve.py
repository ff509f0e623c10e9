"""The cross-learning risk curve E_CL(ε) between its baselines (issue 18, item 6).

``test_gaussian_estimators.py::test_cross_learning_error_interpolates_between_the_baselines``
checks the two ends (ε = 0 is consensus, a large ε is separate).  Here the interior, on
Monte Carlo draws of Example 2 (T = 4, d = 2, θ*_t = (±μ, 0), (0, ±μ)):

* θ̂(ε) is the Euclidean projection of y onto K_ε = {θ : ∃c, ‖θ_t − c‖ ≤ ε ∀t}, a convex
  set that holds θ* once ε ≥ ε* (ε* = μ here, the radius of the truth's smallest enclosing
  ball).  A projection onto a convex set holding θ* moves y closer to θ*, so for every
  ε ≥ ε* and *every realisation*: E_CL(ε) ≤ E_S (no Monte Carlo error involved).
* The minimum over ε of the Monte Carlo mean of E_CL is below both E_S and E_C, beyond
  4 standard errors of the paired differences (computed here).
"""

import jax
import jax.numpy as jnp
import numpy as np

from cljax.estimators._means import consensus, cross_learning, mean_squared_error


def _example2_errors(r=1000, mu=2.0, sigma=1.0, grid=np.linspace(0.0, 6.0, 25)):
    theta = jnp.array([[mu, 0.0], [-mu, 0.0], [0.0, mu], [0.0, -mu]])
    draws = theta + sigma * jax.random.normal(jax.random.PRNGKey(7), (r, 4, 2))

    @jax.jit
    def errors(y):
        e_cl = jax.vmap(lambda e: mean_squared_error(cross_learning(y, e), theta))(grid)
        return e_cl, mean_squared_error(y, theta), mean_squared_error(consensus(y), theta)

    e_cl, e_s, e_c = (np.asarray(a) for a in jax.lax.map(errors, draws, batch_size=500))
    return grid, e_cl, e_s, e_c


def test_cross_learning_risk_curve_between_the_baselines():
    mu = 2.0
    grid, e_cl, e_s, e_c = _example2_errors(mu=mu)
    r = e_s.size
    # ends, realisation by realisation
    np.testing.assert_allclose(e_cl[:, 0], e_c, rtol=1e-10)
    # interior: ε ≥ ε* = μ holds θ*, so E_CL(ε) ≤ E_S in every realisation
    inside = grid >= mu
    assert inside.sum() >= 10
    assert np.all(e_cl[:, inside] <= e_s[:, None] * (1 + 1e-9) + 1e-12)
    # ... which does not hold below ε*, where θ* is outside K_ε (the check above can fail)
    assert np.any(e_cl[:, grid < mu / 2] > e_s[:, None])
    # the minimum of the mean curve is below both baselines beyond Monte Carlo error
    k = int(np.argmin(e_cl.mean(axis=0)))
    assert 0 < k < grid.size - 1
    for base in (e_s, e_c):
        diff = e_cl[:, k] - base
        assert diff.mean() + 4 * diff.std(ddof=1) / np.sqrt(r) < 0
