"""P̄_CL (w_g = 0) of one small (T, d) array: the ``"fixed"`` algorithm of the operator.

For points a_1..a_T ∈ R^d (the sample means) and weights w_t > 0, P̄_CL solves

    min Σ_t w_t ‖θ_t − a_t‖²   s.t. ‖θ_t − c‖ ≤ ε,

i.e. c minimises F(c) = Σ_t w_t (‖a_t − c‖ − ε)₊² and θ_t is a_t projected onto
B(c, ε) (DESIGN §2; EUSIPCO eqs. 12–13).  Monte Carlo studies need tens of
millions of tiny instances (Example 2: T = 4, d = 2), so
:func:`project_centre_newton` is a documented specialisation of
:func:`cljax.projection.project_cross_learning` with ``global_weight=0`` and
``solver="fixed"`` (a fixed number of safeguarded Newton steps on c, no while
loop, d×d solves in closed form for d ≤ 2; see :mod:`._operator`) that takes and
returns plain arrays.  :func:`projection_divergence` gives the exact divergence
of P̄_CL that SURE needs.  Along a whole ε grid, :mod:`._centre_path` is faster
(warm starts).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cljax.projection import _terms as terms
from cljax.projection._operator import project_cross_learning

DEFAULT_ITERATIONS = 10  # enough for the Gaussian studies' (T, d) problems (tests/projection)


class CentreProjection(NamedTuple):
    """θ_1..θ_T (T, d) and the centre c = θ_g (d,) of P̄_CL.

    ``centre`` is what :class:`cljax.projection.ProjectionResult` calls
    ``global_params``.
    """

    task_params: jax.Array
    centre: jax.Array


def check_points_and_weights(points, weights, shape: str):
    """Float ``points`` of the given shape (``"(T, d)"`` or ``"(B, T, d)"``) with every
    axis ≥ 1, and task ``weights`` of shape (T,) (default ones), in the points' dtype."""
    points = jnp.asarray(points)
    if points.ndim != shape.count(",") + 1:
        raise ValueError(f"points must have shape {shape}, got {points.shape}")
    if not jnp.issubdtype(points.dtype, jnp.floating):
        raise TypeError(f"points must be floating point, got {points.dtype}")
    if min(points.shape) < 1:
        raise ValueError(f"points must have at least one task, instance and coordinate, "
                         f"got shape {points.shape}")
    t = points.shape[-2]
    weights = (jnp.ones((t,), points.dtype) if weights is None
               else jnp.asarray(weights, points.dtype))
    if weights.shape != (t,):
        raise ValueError(f"weights must have shape ({t},), got {weights.shape}")
    return points, weights


def project_centre_newton(points, eps, weights=None, *,
                          iterations: int = DEFAULT_ITERATIONS) -> CentreProjection:
    """P̄_CL of ``points`` (T, d) at radius ``eps`` ≥ 0 with task ``weights`` (T,).

    Equal to ``project_cross_learning(points, None, eps, task_weights=weights,
    global_weight=0.0, solver="fixed", max_iter=iterations)``, returned as
    (θ, centre).  Branch-free: use it under jit/vmap; implicit derivatives.
    """
    points, weights = check_points_and_weights(points, weights, "(T, d)")
    if not (isinstance(iterations, int) and iterations >= 0):
        raise ValueError(f"iterations must be an int >= 0, got {iterations!r}")
    out = project_cross_learning(points, None, eps, task_weights=weights, global_weight=0.0,
                                 solver="fixed", max_iter=iterations)
    return CentreProjection(out.task_params, out.global_params)


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
    v = centre[None, :] - points
    r, rho, _, _ = terms.distance_terms(jnp.sum(v * v, axis=1), eps, weights)
    outside = r > eps
    r_safe = jnp.where(outside & (r > 0), r, 1.0)
    u = -v / r_safe[:, None]  # (a_t − c)/r_t
    ratio = jnp.where(outside, eps / r_safe, 0.0)
    eye = jnp.eye(d, dtype=dtype)
    m = weights[:, None, None] * (rho[:, None, None] * eye
                                  + ratio[:, None, None] * u[:, :, None] * u[:, None, :])
    m = jnp.where(outside[:, None, None], m, 0.0)
    h = jnp.where(jnp.any(outside), jnp.sum(m, axis=0), eye)
    c_t = jax.vmap(lambda mt: jax.vmap(lambda col: terms.solve_spd(h, col),
                                       in_axes=1, out_axes=1)(mt))(m)  # (T, d, d)
    tr_c = jnp.trace(c_t, axis1=1, axis2=2)
    tr_uuc = jnp.einsum("ti,tij,tj->t", u, c_t, u)
    div_out = tr_c + ratio * (d - 1 - (tr_c - tr_uuc))
    return jnp.where(outside, div_out, jnp.asarray(d, dtype))
