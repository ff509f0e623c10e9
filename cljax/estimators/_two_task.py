"""Two scalar tasks (EUSIPCO 2021, Section II): the cross-learning MSE in closed form, eq. 8.

Two tasks with sample means X̄ ~ N(μ_x, σ_M²) and Ȳ ~ N(μ_y, σ_M²), independent,
whose true means differ by ε0 = μ_x − μ_y ≥ 0.  In EUSIPCO's parametrisation ε
bounds the difference of the two estimates, |μ̂_x − μ̂_y| ≤ ε; in cljax's
centroid form (‖θ_t − θ_g‖ ≤ radius) that is radius = ε/2.  With
Z = (X̄ + Ȳ)/2 and W = (X̄ − Ȳ)/2 ~ N(ε0/2, σ_M²/2), independent of Z, the
cross-learning estimate is μ̂_x = Z + clip(W, −ε/2, ε/2), so

    mse(ε) = E(μ̂_x − μ_x)² = σ_M²/2 + E[(clip(W, −a, a) − m)²],   a = ε/2, m = ε0/2.

With s = σ_M/√2, β = (a − m)/s, α = (−a − m)/s, Φ(x) = (1 + erf(x/√2))/2 and φ
the standard normal density, splitting E[·] over W < −a, |W| ≤ a and W > a and
using ∫ z² φ(z) dz = Φ(z) − z φ(z):

    mse(ε) = σ_M²/2 + s² [Φ(β) − Φ(α) − β φ(β) + α φ(α)]
             + (a − m)² (1 − Φ(β)) + (a + m)² Φ(α)                    (eq. 8)

and, the integrand being continuous at ±a,

    d mse/dε = (a − m)(1 − Φ(β)) + (a + m) Φ(α).

mse(0) = σ_M²/2 + m² (consensus), mse(∞) = σ_M² (separate).  Claim 1:
σ_M²/2 < mse(ε0) < ¾σ_M² for ε0 > 0.  Claim 2: d mse/dε < 0 at ε = 0.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import erf


def _phi(x):
    return jnp.exp(-0.5 * x * x) / jnp.sqrt(2.0 * jnp.pi)


def _cdf(x):
    return 0.5 * (1.0 + erf(x / jnp.sqrt(2.0)))


def _parts(eps, eps0, sigma_m):
    eps, eps0, sigma_m = (jnp.asarray(x, dtype=jnp.result_type(float)) for x in (eps, eps0, sigma_m))
    a, m = eps / 2.0, eps0 / 2.0
    s = sigma_m / jnp.sqrt(2.0)
    return a, m, s, (a - m) / s, (-a - m) / s


def two_task_mse(eps, eps0, sigma_m):
    """EUSIPCO eq. 8: E(μ̂_x − μ_x)² of the cross-learning estimate with pair bound ε ≥ 0."""
    a, m, s, beta, alpha = _parts(eps, eps0, sigma_m)
    inside = s**2 * (_cdf(beta) - _cdf(alpha) - beta * _phi(beta) + alpha * _phi(alpha))
    tails = (a - m) ** 2 * (1.0 - _cdf(beta)) + (a + m) ** 2 * _cdf(alpha)
    return sigma_m**2 / 2.0 + inside + tails


def two_task_mse_slope(eps, eps0, sigma_m):
    """d mse/dε = (a − m)(1 − Φ(β)) + (a + m) Φ(α) (the derivative of eq. 8)."""
    a, m, _, beta, alpha = _parts(eps, eps0, sigma_m)
    return (a - m) * (1.0 - _cdf(beta)) + (a + m) * _cdf(alpha)


def two_task_draws(key, eps0, sigma_m, draws):
    """``draws`` pairs (X̄, Ȳ) with μ_x = ε0/2, μ_y = −ε0/2: shape (draws, 2)."""
    import jax

    noise = jax.random.normal(key, (draws, 2))
    return jnp.array([eps0 / 2.0, -eps0 / 2.0]) + sigma_m * noise
