"""P̄_CL (w_g = 0) of many small problems along a whole ε grid: warm-started Newton with a certificate.

Same problem as :mod:`cljax.projection._centre_newton`: for points a_1..a_T ∈ R^d and weights
w_t > 0 the centre c minimises F(c) = Σ_t w_t (‖a_t − c‖ − ε)₊² and θ_t is a_t
projected onto B(c, ε).  Monte Carlo studies need P̄_CL for every realisation
at every ε of a grid; the solution c(ε) is continuous in ε, so instead of a cold
solve at every ε this module

1. sorts the grid and runs a ``lax.scan`` over it, starting each ε from the
   previous ε's centre moved by the secant predictor (c_k − c_{k−1}) Δε_{k+1}/Δε_k
   (the first from the weighted mean, exact at ε = 0);
2. takes ``iterations`` safeguarded Newton steps: a trial point is accepted if
   F does not increase, otherwise the next trial is the majorise–minimise point
   c − (∇F/2)/Σw of the last accepted point (which never increases F);
3. certifies the result: the last trial was accepted and its Newton step is at
   rounding level, or shorter than ``tol`` and at most a quarter of the previous
   accepted step (quadratic contraction observed; where F is flat Newton is only
   linear, ratio ≈ 2/3, and fails this); the answer is that trial plus its
   Newton step.  When F = 0 the step is exactly 0 (certified exactly);
4. re-solves every (realisation, ε) that failed the certificate with the robust
   cold solver :func:`cljax.projection.project_centre_newton` (Newton with an
   exact line search and the two-task closed form), in bounded batches inside a
   ``lax.while_loop`` (40 iterations), so the answer is exact also where the
   certificate fails.

Layout: the realisation axis is last inside the scan (struct of arrays), so every
step is a few fused, vectorised elementwise loops over the batch; the sum over
tasks is over a short leading axis.  d ≤ 2 use closed-form 2×2 solves.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from cljax.projection import _terms as terms
from cljax.projection._centre_newton import check_points_and_weights, project_centre_newton

DEFAULT_PATH_STEPS = 3
DEFAULT_FALLBACK_ITERATIONS = 40  # the cold solver where the certificate fails (rare)


class CentrePath(NamedTuple):
    """Centres (B, E, d) at every ε of the grid, the radii used (B, E) and the certificate (B, E).

    ``eps_used`` is min(ε, 2 · spread) (``_terms.clip_radius``, the same clip as the cold solver; it
    keeps ∞ out of the arithmetic and does not change θ).  ``certified`` is False
    where the cold solver supplied the answer.
    """

    centre: jax.Array
    eps_used: jax.Array
    certified: jax.Array


def _evaluate(points, weights, total, eps, centre):
    """F(c), the Newton step −H⁻¹∇F and the MM point at c; points (T, d, B), c (d, B), ε (B,)."""
    step, _, grad, f = terms.newton_parameter(centre[None] - points, eps[None], weights, total)
    return f, step, centre - grad / (2.0 * total)


def _ball_soa(points, centre, eps, weights):
    """θ_t = a_t + ρ_t (c − a_t), the ball step, batch last."""
    diff = centre[None] - points
    _, rho, _, _ = terms.distance_terms(jnp.sum(diff * diff, axis=1), eps[None], weights)
    return points + rho[:, None] * diff


def _path_scan(points, weights, eps_sorted, steps, tol, emit, predict=True):
    """The warm-started scan; points (T, d, B), eps_sorted (E,): centres (E, d, B), ε used, certified."""
    dtype = points.dtype
    total = jnp.sum(weights)
    w = weights[:, None]
    mean = jnp.sum(w[:, None] * points, axis=0) / total            # (d, B)
    spread = jnp.max(jnp.sqrt(jnp.sum((points - mean[None]) ** 2, axis=1)), axis=0)  # (B,)
    scale = 1.0 + spread
    tol_loose = tol * scale                      # with quadratic contraction observed
    tol_tight = 8 * jnp.finfo(dtype).eps * scale  # rounding level
    slack = 8 * jnp.finfo(dtype).eps * scale * scale  # rounding in F near the minimum

    def at(carry, eps):
        centre, rate, eps_prev = carry
        eps_b = terms.clip_radius(eps, spread)
        best_f = jnp.full(spread.shape, jnp.inf, dtype)
        mm_best = centre
        trial = centre + rate * (eps_b - eps_prev) if predict else centre
        prev = jnp.zeros(spread.shape, dtype)  # no contraction seen yet
        for _ in range(steps):
            f, step, mm = _evaluate(points, w, total, eps_b, trial)
            accept = f <= best_f + slack
            best_f = jnp.where(accept, f, best_f)
            mm_best = jnp.where(accept, mm, mm_best)
            length = jnp.sqrt(jnp.sum(step * step, axis=0))
            certified = accept & ((length <= tol_tight)
                                  | ((length <= tol_loose) & (length <= 0.25 * prev)))
            prev = jnp.where(accept, length, 0.0)
            trial = jnp.where(accept, trial + step, mm_best)
        moved = eps_b - eps_prev
        rate = jnp.where(moved > 0, (trial - centre) / jnp.where(moved > 0, moved, 1.0), 0.0)
        theta = _ball_soa(points, trial, eps_b, w)
        return (trial, rate, eps_b), (emit(points, theta, trial, eps_b), certified)

    zero = jnp.zeros_like(spread)
    _, out = lax.scan(at, (mean, jnp.zeros_like(mean), zero), eps_sorted)
    return out


DEFAULT_CHUNK = 400  # realisations per scan: larger vectors fall off a CPU cliff (benchmarks/)


def _check(points, eps_grid, weights, steps):
    points, weights = check_points_and_weights(points, weights, "(B, T, d)")
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    eps_grid = jnp.asarray(eps_grid, points.dtype)
    if eps_grid.ndim != 1 or eps_grid.shape[0] < 1:
        raise ValueError(f"eps_grid must be a non-empty 1-D array, got shape {eps_grid.shape}")
    return points, eps_grid, weights


def map_cross_learning_path(points, eps_grid, fn, weights=None, *,
                            steps: int = DEFAULT_PATH_STEPS, tol=None,
                            chunk: int = DEFAULT_CHUNK, fallback_batch: int = 256,
                            fallback_iterations: int = DEFAULT_FALLBACK_ITERATIONS):
    """``(fn(a, θ, c, ε), certified)`` at P̄_CL of every problem ``points`` (B, T, d) and every ε of ``eps_grid`` (E,).

    ``fn`` takes one problem's points a (T, d), its solution θ (T, d) and centre
    c (d,) and the radius ε actually used (``_terms.clip_radius``: min(ε, 2 · spread), as in the cold
    solver; θ is the same) and returns a pytree of arrays; the results have leading
    axes (B, E); ``certified`` (B, E) is False where the cold solver answered.  Only fn's outputs are stored, never θ for the whole grid.
    ``eps_grid`` may be in any order and contain ∞; ``weights`` (T,) are shared.
    ``tol`` is the certified Newton-step length relative to 1 + spread, with
    quadratic contraction observed (default 3e-5 in float32, 1e-7 in float64);
    steps at rounding level are certified too.  Entries that fail are re-solved
    by :func:`cljax.projection.project_centre_newton`.  Realisations run
    ``chunk`` at a time (``lax.map``).  Jit-compatible.
    """
    points, eps_grid, weights = _check(points, eps_grid, weights, steps)
    b = points.shape[0]
    dtype = points.dtype
    if tol is None:
        tol = 3e-5 if dtype == jnp.float32 else 1e-7
    chunk = int(max(1, min(chunk, b)))
    pad = (-b) % chunk
    padded = jnp.concatenate([points, jnp.broadcast_to(points[:1], (pad,) + points.shape[1:])])
    order = jnp.argsort(eps_grid)
    inverse = jnp.argsort(order)
    eps_sorted = eps_grid[order]
    emit = jax.vmap(fn, (2, 2, 1, 0), -1)  # batch last

    def one_chunk(pts):
        soa = jnp.transpose(pts, (1, 2, 0))                         # (T, d, B)
        out, ok = _path_scan(soa, weights, eps_sorted, steps, tol, emit)
        out = jax.tree.map(lambda x: jnp.moveaxis(x, -1, 0)[:, inverse], out)  # (B, E, ...)
        ok = ok.T[:, inverse]
        out = _repair(pts, weights, eps_grid, fn, out, ok, fallback_batch, fallback_iterations)
        return out, ok

    out = lax.map(one_chunk, padded.reshape((-1, chunk) + points.shape[1:]))
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:])[:b], out)


def centre_path(points, eps_grid, weights=None, **options) -> CentrePath:
    """Centres (B, E, d) of P̄_CL of ``points`` (B, T, d) at every ε of ``eps_grid``, with the
    radii used and the certificates (options: :func:`map_cross_learning_path`)."""
    (centre, eps_used), ok = map_cross_learning_path(
        points, eps_grid, lambda a, theta, c, e: (c, e), weights, **options)
    return CentrePath(centre, eps_used, ok)


def _repair(points, weights, eps_grid, fn, out, ok, batch, iterations):
    """Replace fn's outputs at the uncertified (b, e) entries by fn at the cold solution."""
    b, e = ok.shape
    batch = int(min(batch, b * e))
    flat = jax.tree.map(lambda x: x.reshape((b * e,) + x.shape[2:]), out)
    todo = ~ok.reshape(-1)

    def cold(i):
        a, eps = points[i // e], eps_grid[i % e]
        sol = project_centre_newton(a, eps, weights, iterations=iterations)
        mean = (weights @ a) / jnp.sum(weights)
        spread = jnp.max(jnp.sqrt(jnp.sum((a - mean) ** 2, axis=1)))
        return fn(a, sol.task_params, sol.centre, terms.clip_radius(eps, spread))

    def body(state):
        flat, todo = state
        (idx,) = jnp.nonzero(todo, size=batch, fill_value=b * e)
        fixed = jax.vmap(cold)(jnp.where(idx < b * e, idx, 0))
        flat = jax.tree.map(lambda x, y: x.at[idx].set(y, mode="drop"), flat, fixed)
        return flat, todo.at[idx].set(False, mode="drop")

    flat, _ = lax.while_loop(lambda s: jnp.any(s[1]), body, (flat, todo))
    return jax.tree.map(lambda x: x.reshape((b, e) + x.shape[1:]), flat)
