"""SURE(ε) against an independent closed form (issue 18, item 7).

``test_eps_selection.py::test_sure_curve_equals_the_pointwise_formula`` is a *wiring* test:
it rebuilds SURE from the library's own projection, divergence and formula.  This file
checks the number itself against a closed form derived by hand, with nothing from cljax.

Two tasks in d dimensions with equal weights, y_1, y_2, D = ‖y_1 − y_2‖, r = D/2.  If
D > 2ε the centre is the midpoint m and θ_t = m + ε u_t, u_t = (y_t − m)/r, so
‖θ_t − y_t‖ = r − ε and

    ∂θ_1/∂y_1 = I/2 + ε (I − u uᵀ)/(2r)   ⇒   div_t = d/2 + ε (d − 1)/(2r);

if D ≤ 2ε, θ = y and div_t = d.  Then
SURE(ε) = (1/2) Σ_t [‖θ_t − y_t‖² − d τ_t² + 2 τ_t² div_t]  (Stein 1981).
"""

import jax.numpy as jnp
import numpy as np
import pytest

from cljax.estimators._eps_selection import sure_curve


def sure_two_tasks(y, eps, tau2):
    d = y.shape[1]
    r = np.linalg.norm(y[0] - y[1]) / 2
    if r > eps:
        fit, div = (r - eps) ** 2, d / 2 + eps * (d - 1) / (2 * r)
    else:
        fit, div = 0.0, float(d)
    return float(np.mean([fit - d * t + 2 * t * div for t in tau2]))


@pytest.mark.parametrize("dim", [1, 3])
def test_sure_matches_the_two_task_closed_form(dim):
    rng = np.random.default_rng(dim)
    y = rng.normal(size=(2, dim)) * 2.0
    r = np.linalg.norm(y[0] - y[1]) / 2
    tau2 = np.array([0.4, 1.3])
    grid = np.array([0.0, 0.2 * r, 0.5 * r, 0.9 * r, r, 1.5 * r, np.inf])
    got = np.asarray(sure_curve(jnp.asarray(y), jnp.asarray(grid), jnp.asarray(tau2)))
    want = [sure_two_tasks(y, e, tau2) for e in grid]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # the ε-dependence is real: the curve is not flat between consensus and separate
    assert np.ptp(want[:4]) > 0.1
