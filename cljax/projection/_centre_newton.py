"""The estimator projection P̄_CL (w_g = 0) for many small problems, by Newton on the centre.

For points a_1..a_T ∈ R^d (the sample means) and weights w_t > 0, P̄_CL solves

    min Σ_t w_t ‖θ_t − a_t‖²   s.t. ‖θ_t − c‖ ≤ ε,

i.e. c minimises F(c) = Σ_t w_t (‖a_t − c‖ − ε)₊² = Σ_t w_t dist(c, B(a_t, ε))²
and θ_t is a_t projected onto B(c, ε) (DESIGN §2; EUSIPCO eqs. 12–13).

:func:`cljax.projection.project_cross_learning` solves the general problem (any
pytree, w_g ≥ 0) in the (T+1)-dimensional coefficient space with a while loop.
Monte Carlo studies need tens of millions of tiny instances (Example 2: T = 4,
d = 2), so this module runs semismooth Newton directly on c ∈ R^d:

    ∇F/2 = Σ_t w_t ρ_t v_t,   H/2 = α I + Σ_t d_t v_t v_tᵀ,   v_t = c − a_t,
    ρ_t = (1 − ε/‖v_t‖)₊,  α = Σ_t w_t ρ_t,  d_t = w_t ε/‖v_t‖³ [‖v_t‖ > ε],

a d×d solve (closed form for d ≤ 2), a fixed number of iterations (no while
loop: every instance of a vmapped batch does the same work) and a safeguard:
each step keeps the best, by F, of the Newton steps with lengths 1, 1/2, 1/4 and
the majorise–minimise step c ← Σ_t w_t P_{B(a_t, ε)}(c) / Σ_t w_t (a gradient
step of length 1/(2Σw), which never increases F).  So F decreases monotonically
and, near the solution, full Newton steps converge quadratically.  Start: the
weighted mean, which is the exact answer at ε = 0 and whenever every a_t lies
within ε of it (then θ_t = a_t exactly: the separate estimator).

The tests check the result against the general projection and CVXPY; the number
of iterations needed is measured there (``DEFAULT_ITERATIONS`` leaves margin).
Along a whole ε grid, :mod:`cljax.projection._centre_path` is much faster (warm starts) and
uses this solver only where its certificate fails.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from cljax._src.tree import safe_sqrt

DEFAULT_ITERATIONS = 10
_BISECTIONS = 8


class CentreProjection(NamedTuple):
    """θ_1..θ_T (T, d) and the centre c (d,) of P̄_CL."""

    task_params: jax.Array
    centre: jax.Array


def _terms(points, weights, centre, eps):
    """v_t = c − a_t, r_t = ‖v_t‖, ρ_t = (1 − ε/max(r_t, ε)) (1 at ε = r = 0), outside."""
    v = centre[None, :] - points
    r = safe_sqrt(jnp.sum(v * v, axis=1))
    den = jnp.maximum(r, eps)
    rho = jnp.where(den > 0, (den - eps) / jnp.where(den > 0, den, 1.0), 1.0)
    return v, r, rho, r > eps


def _objective(points, weights, centre, eps):
    v = centre[None, :] - points
    r = safe_sqrt(jnp.sum(v * v, axis=1))
    return jnp.sum(weights * jnp.maximum(r - eps, 0.0) ** 2)


def solve_small_spd(h, g):
    """x = h⁻¹ g for symmetric positive-definite h (d, d, B), g (d, B), batch last;
    closed form for d ≤ 2."""
    d = g.shape[0]
    if d == 1:
        return g / h[0, 0]
    if d == 2:
        det = h[0, 0] * h[1, 1] - h[0, 1] * h[0, 1]
        return jnp.stack([h[1, 1] * g[0] - h[0, 1] * g[1], h[0, 0] * g[1] - h[0, 1] * g[0]]) / det
    x = jnp.linalg.solve(jnp.moveaxis(h, -1, 0), jnp.moveaxis(g, -1, 0)[..., None])
    return jnp.moveaxis(x[..., 0], 0, -1)


def _solve_spd(a, b):
    """Solve a x = b for one small symmetric positive-definite a (d×d)."""
    return solve_small_spd(a[..., None], b[:, None])[:, 0]


def _newton_direction(points, weights, centre, eps):
    v, r, rho, outside = _terms(points, weights, centre, eps)
    wr = weights * rho
    grad = wr @ v  # ∇F / 2
    alpha = jnp.sum(wr)
    r_safe = jnp.where(outside, r, 1.0)
    curv = jnp.where(outside, weights * eps / r_safe**3, 0.0)
    d = points.shape[1]
    tiny = jnp.finfo(points.dtype).eps * jnp.sum(weights)  # keeps det > 0 when α = 0
    hess = (alpha + tiny) * jnp.eye(d, dtype=points.dtype) + (v * curv[:, None]).T @ v
    return -_solve_spd(hess, grad), grad


def _line_slope(q, p, h, weights, eps, tau):
    """φ'(τ)/2 along c + τΔ, where ‖c + τΔ − a_t‖² = q_t + 2τ p_t + τ² h."""
    r = safe_sqrt(q + 2.0 * tau * p + tau * tau * h)
    den = jnp.maximum(r, eps)
    rho = jnp.where(den > 0, (den - eps) / jnp.where(den > 0, den, 1.0), 1.0)
    return jnp.sum(weights * rho * (p + tau * h))


def _step(points, weights, eps, centre):
    """One Newton step with an exact line search on [0, 1] (bisection on φ', convex φ)."""
    direction, _ = _newton_direction(points, weights, centre, eps)
    v = centre[None, :] - points
    q = jnp.sum(v * v, axis=1)
    p = v @ direction
    h = direction @ direction
    slope = functools.partial(_line_slope, q, p, h, weights, eps)

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        up = slope(mid) > 0
        return jnp.where(up, lo, mid), jnp.where(up, mid, hi)

    zero, one = jnp.zeros((), points.dtype), jnp.ones((), points.dtype)
    lo, hi = lax.fori_loop(0, _BISECTIONS, bisect, (zero, one))
    tau = jnp.where(slope(one) <= 0, one, 0.5 * (lo + hi))
    return centre + tau * direction


def _pair_polish(points, weights, eps, centre):
    """Replace c by the two-active-task solution when that is at least as good.

    When only tasks i, j are active at the optimum, c lies on their segment with
    w_i (r_i − ε) = w_j (r_j − ε), r_i + r_j = D = ‖a_i − a_j‖:
    r_i = (w_j D + (w_i − w_j) ε) / (w_i + w_j).  There F is flat across the
    segment (curvature Σ w ρ → 0 as the excess vanishes) and Newton converges
    only linearly, so this closed form, for the two tasks farthest from the
    current c, is tried and kept if F does not increase.
    """
    v = centre[None, :] - points
    r2 = jnp.sum(v * v, axis=1)
    _, (i, j) = lax.top_k(r2, 2)
    ai, aj, wi, wj = points[i], points[j], weights[i], weights[j]
    dist = safe_sqrt(jnp.sum((aj - ai) ** 2))
    ri = (wj * dist + (wi - wj) * eps) / (wi + wj)
    pair = ai + jnp.where(dist > 0, ri / jnp.where(dist > 0, dist, 1.0), 0.0) * (aj - ai)
    better = _objective(points, weights, pair, eps) <= _objective(points, weights, centre, eps)
    return jnp.where(better, pair, centre)


def check_points_and_weights(points, weights, shape: str):
    """Float ``points`` of the given shape (``"(T, d)"`` or ``"(B, T, d)"``) with every
    axis ≥ 1, and task ``weights`` of shape (T,) (default ones), in the points' dtype."""
    points = jnp.asarray(points)
    if points.ndim != shape.count(",") + 1:
        raise ValueError(f"points must have shape {shape}, got {points.shape}")
    if not jnp.issubdtype(points.dtype, jnp.floating):
        raise TypeError(f"points must be floating point, got {points.dtype}")
    if min(points.shape[:-1]) < 1:
        raise ValueError(f"points must have at least one task (and instance), got shape "
                         f"{points.shape}")
    t = points.shape[-2]
    weights = (jnp.ones((t,), points.dtype) if weights is None
               else jnp.asarray(weights, points.dtype))
    if weights.shape != (t,):
        raise ValueError(f"weights must have shape ({t},), got {weights.shape}")
    return points, weights


def project_centre_newton(points, eps, weights=None, *,
                          iterations: int = DEFAULT_ITERATIONS) -> CentreProjection:
    """P̄_CL of ``points`` (T, d) at radius ``eps`` ≥ 0 with task ``weights`` (T,).

    Semismooth Newton on the centre with a fixed number of ``iterations`` (see the
    module docstring).  ``eps`` may be ``inf``.  Branch-free: use it under
    jit/vmap.  Gradients flow through the unrolled iterations; for exact
    implicit derivatives use :func:`projection_divergence` or
    :func:`cljax.projection.project_cross_learning`.
    """
    points, weights = check_points_and_weights(points, weights, "(T, d)")
    t = points.shape[0]
    if not (isinstance(iterations, int) and iterations >= 0):
        raise ValueError(f"iterations must be an int >= 0, got {iterations!r}")
    dtype = points.dtype
    eps = jnp.asarray(eps, dtype)
    mean = (weights @ points) / jnp.sum(weights)
    spread = jnp.max(safe_sqrt(jnp.sum((points - mean) ** 2, axis=1)))
    eps_eff = jnp.minimum(eps, 2.0 * spread)  # keeps inf out of the arithmetic
    centre = lax.fori_loop(0, iterations,
                           lambda _, c: _step(points, weights, eps_eff, c), mean)
    if t >= 2:
        centre = _pair_polish(points, weights, eps_eff, centre)
    # Implicit derivatives: the value stays c*, the derivative is that of one
    # Newton step from c*, which is −H⁻¹ ∂∇F/∂a (the implicit function theorem).
    centre = lax.stop_gradient(centre)
    step, _ = _newton_direction(points, weights, centre, eps_eff)
    centre = centre + (step - lax.stop_gradient(step))
    return CentreProjection(ball_onto(points, centre, eps_eff), centre)


def ball_onto(points, centre, eps):
    """θ_t = a_t projected onto B(c, ε): c + (ε/r_t)(a_t − c) if r_t > ε, else a_t exactly."""
    diff = points - centre[None, :]
    r = safe_sqrt(jnp.sum(diff * diff, axis=1))
    outside = r > eps
    scale = jnp.where(outside, eps / jnp.where(outside, r, 1.0), 1.0)
    return jnp.where(outside[:, None], centre[None, :] + scale[:, None] * diff, points)


def projection_divergence(points, centre, eps, weights=None):
    """Per-task divergences div_t = tr ∂θ_t/∂a_t of P̄_CL, exactly (implicit function theorem).

    With M_t = w_t (ρ_t I + (ε/r_t) u_t u_tᵀ) (u_t = (a_t − c)/r_t) for the tasks
    outside the ball and H = Σ_t M_t, the centre moves as ∂c/∂a_t = H⁻¹ M_t, so

        div_t = d                                            (inside: θ_t = a_t)
        div_t = tr C_t + (ε/r_t) (d − 1 − tr((I − u_t u_tᵀ) C_t)),   C_t = H⁻¹ M_t (outside).

    ``centre`` is the solution c (e.g. ``project_centre_newton(...).centre``).
    The projection is Lipschitz, so this is its weak divergence, as SURE needs.
    """
    points = jnp.asarray(points)
    t, d = points.shape
    dtype = points.dtype
    weights = jnp.ones((t,), dtype) if weights is None else jnp.asarray(weights, dtype)
    eps = jnp.asarray(eps, dtype)
    v, r, rho, outside = _terms(points, weights, centre, eps)
    r_safe = jnp.where(outside & (r > 0), r, 1.0)
    u = -v / r_safe[:, None]  # (a_t − c)/r_t
    ratio = jnp.where(outside, eps / r_safe, 0.0)
    eye = jnp.eye(d, dtype=dtype)
    m = weights[:, None, None] * (rho[:, None, None] * eye
                                  + ratio[:, None, None] * u[:, :, None] * u[:, None, :])
    m = jnp.where(outside[:, None, None], m, 0.0)
    h = jnp.sum(m, axis=0)
    any_outside = jnp.any(outside)
    h = jnp.where(any_outside, h, eye)
    c_t = jax.vmap(lambda mt: _solve_matrix(h, mt))(m)  # (T, d, d)
    tr_c = jnp.trace(c_t, axis1=1, axis2=2)
    tr_uuc = jnp.einsum("ti,tij,tj->t", u, c_t, u)
    div_out = tr_c + ratio * (d - 1 - (tr_c - tr_uuc))
    return jnp.where(outside, div_out, jnp.asarray(d, dtype))


def _solve_matrix(a, b):
    """a⁻¹ b for small SPD a (d×d) and b (d×d), column by column."""
    return jax.vmap(lambda col: _solve_spd(a, col), in_axes=1, out_axes=1)(b)
