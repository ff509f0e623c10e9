"""The cross-learning projection P_C (DESIGN §2; EUSIPCO eqs. 12–13).

Given points a_1..a_T (a task tree), a_g (a global tree), task weights w_t > 0
and a global weight w_g ≥ 0, solve

    min Σ_t w_t ‖θ_t − a_t‖² + w_g ‖θ_g − a_g‖²   s.t. ‖θ_t − θ_g‖ ≤ ε  ∀t.

w_g = 1 is the ADMM z-step (Algorithm 1); w_g = 0 is the cross-learning
estimator P̄_CL of the Gaussian model.

With θ_g = c fixed, each θ_t is the ball projection of a_t onto B(c, ε), so
c minimises the convex, C¹ function

    F(c) = Σ_j w_j (‖c − a_j‖ − ε_j)₊²,   j = g, 1..T,   ε_g = 0, ε_t = ε,

and θ_t = a_t + ρ_t (c − a_t) with ρ_t = (1 − ε/‖a_t − c‖)₊.  Both methods run
semismooth Newton on F with an Armijo line search (the plain fixed point of
EUSIPCO eq. 13 can stall far from the optimum, DESIGN §2):

* ``"dual"`` (dual-domain): c = m + Σ_j κ_j x_j with x_j = a_j − m centred at the
  weighted mean m.  Every quantity comes from the (T+1)×(T+1) Gram matrix
  G = X Xᵀ, formed once; an iteration costs O(T³) (the Newton solve) and nothing
  per parameter.  One more pass rebuilds θ.
* ``"primal"``: the same Newton iteration held in parameter space, recomputing
  the inner products of v_j = c − a_j at every iteration, O(T² S) per iteration.

Gradients: the loop runs on stopped gradients, then one full Newton step is taken
differentiably from the solution.  At a solution the Newton map has zero
Jacobian in its starting point, so this gives exactly the implicit-function
derivative, for forward and reverse mode, at the cost of one extra O(T³) solve.

Degeneracies: ε = 0 gives the weighted mean (consensus); ε = ∞ (or any ε beyond
the points' spread) gives θ_t = a_t; a_t = c gives finite values and gradients.
With w_g = 0, c is not unique when all a_t fit in one ball of radius ε: the
result is then the point Newton reaches from the weighted mean of the a_t (the
weighted mean itself when it already fits); the θ_t are unique either way.

Non-finite inputs: a NaN or inf in any a_j propagates to every output (the
tasks are coupled through c); ``residual`` is then NaN and ``converged`` False.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cljax._src import checks as checks
from cljax._src.tree import per_task_sq_norm, safe_sqrt, sq_norm, sub

PyTree = Any
Method = Literal["dual", "primal"]

_ARMIJO = 1e-4
_NUM_STEP_SIZES = 20  # step sizes 1, 1/2, ..., 2^-19, tried at once (branch-free)


class ProjectionResult(NamedTuple):
    """Output of :func:`project_cross_learning`.

    Attributes:
      task_params: θ_1..θ_T, a task tree.
      global_params: θ_g = c, a global tree.
      iterations: Newton iterations taken.
      residual: length of the Newton step at the last iterate of the loop, an
        estimate of the distance of θ_g to the solution, in parameter units
        (one more Newton step follows it).
      converged: residual ≤ tol · (spread of the points).
    """

    task_params: PyTree
    global_params: PyTree
    iterations: jax.Array
    residual: jax.Array
    converged: jax.Array


# ---------------------------------------------------------------------------
# Newton on F, written on the inner products P_jk = ⟨c − a_j, c − a_k⟩.
# ---------------------------------------------------------------------------


def _distance_terms(q, eps_vec, w):
    """Per-point quantities from squared distances q_j = ‖c − a_j‖².

    Returns r_j, ρ_j = (1 − ε_j / r_j)₊ (1 when ε_j = 0), the excess
    (r_j − ε_j)₊ and the curvature weights d_j = 2 w_j ε_j / r_j³ [r_j > ε_j].
    """
    r = safe_sqrt(q)
    excess = jnp.maximum(r - eps_vec, 0.0)
    den = jnp.maximum(r, eps_vec)
    rho = jnp.where(den > 0, excess / jnp.where(den > 0, den, 1.0), 1.0)
    outside = r > eps_vec
    r_safe = jnp.where(outside, r, 1.0)
    curv = jnp.where(outside, 2.0 * w * eps_vec / r_safe**3, 0.0)
    return r, rho, excess, curv


def _objective(q, eps_vec, w):
    _, _, excess, _ = _distance_terms(q, eps_vec, w)
    return jnp.sum(w * excess**2)


def _newton_direction(P, eps_vec, w, total_weight):
    """Newton direction Δc = Σ_j β_j v_j of F at c, from P_jk = ⟨v_j, v_k⟩.

    ∇F = Σ_j g_j v_j with g = 2 w ρ; the generalised Hessian is
    αI + Σ_j d_j v_j v_jᵀ with α = 2 Σ_j w_j ρ_j.  Woodbury with E = diag(√d):
    β = −(g − E (αI + E P E)⁻¹ E P g) / α.

    Returns β, the gradient coefficients g and α.
    """
    q = jnp.diagonal(P)
    _, rho, _, curv = _distance_terms(q, eps_vec, w)
    g = 2.0 * w * rho
    tiny = jnp.finfo(P.dtype).eps * 2.0 * total_weight
    alpha = jnp.sum(g) + tiny
    e = safe_sqrt(curv)  # curv is exactly 0 for inactive points: sqrt would give NaN gradients
    inner = e[:, None] * P * e[None, :]
    inner = 0.5 * (inner + inner.T) + alpha * jnp.eye(P.shape[0], dtype=P.dtype)
    y = jax.scipy.linalg.solve(inner, e * (P @ g), assume_a="pos")
    beta = -(g - e * y) / alpha
    return beta, g


class _Search(NamedTuple):
    """F along the Newton ray c + τΔc: ‖c + τΔc − a_j‖² = q_j + 2τ p_j + τ² h."""

    q: jax.Array  # q_j = ‖c − a_j‖²
    p: jax.Array  # p_j = ⟨c − a_j, Δc⟩
    h: jax.Array  # ‖Δc‖²
    slope: jax.Array  # F'(0) = ⟨∇F, Δc⟩


def _line_search(search, eps_vec, w):
    """Armijo backtracking, all step sizes at once: F(τ) costs O(T) per trial.

    Returns the first step size 1, 1/2, 1/4, ... that passes (0 if none does).
    """
    q, p, h, slope = search
    taus = 0.5 ** jnp.arange(_NUM_STEP_SIZES, dtype=q.dtype)
    q_tau = jnp.maximum(q[None] + 2 * taus[:, None] * p[None] + taus[:, None] ** 2 * h, 0.0)
    f_tau = jax.vmap(_objective, in_axes=(0, None, None))(q_tau, eps_vec, w)
    f0 = _objective(q, eps_vec, w)
    ok = (f_tau <= f0 + _ARMIJO * taus * slope) & (slope < 0)
    first = jnp.argmax(ok)
    return jnp.where(jnp.any(ok), taus[first], 0.0)


def _gram_newton(P, eps_vec, w, total_weight):
    """Newton step coefficients β and the line-search terms, from P.

    The residual is ‖Δc‖ = √(βᵀPβ), the Newton step length: near the solution it
    estimates the distance of c to it, also where F is flat (a gradient norm
    would understate it there, e.g. with w_g = 0).
    """
    beta, g = _newton_direction(P, eps_vec, w, total_weight)
    p = P @ beta
    h = jnp.maximum(beta @ p, 0.0)
    return beta, _Search(jnp.diagonal(P), p, h, g @ p), safe_sqrt(h)


def _parameter_space_newton(c, points, eps_vec, w, total_weight):
    """Newton step Δc = −H⁻¹∇F held in parameter space, for S ≤ T + 1 numbers.

    v_j = c − a_j, ∇F = Σ_j g_j v_j, H = αI + Σ_j d_j v_j v_jᵀ (S × S), the same
    step as the Woodbury form of :func:`_newton_direction` at O(T S² + S³).
    """
    v = c[None] - points
    q = jnp.sum(v * v, axis=1)
    _, rho, _, curv = _distance_terms(q, eps_vec, w)
    g = 2.0 * w * rho
    grad = g @ v
    alpha = jnp.sum(g) + jnp.finfo(c.dtype).eps * 2.0 * total_weight
    hess = (v.T * curv) @ v + alpha * jnp.eye(c.shape[0], dtype=c.dtype)
    step = -jax.scipy.linalg.solve(hess, grad, assume_a="pos")
    p = v @ step
    h = step @ step
    return step, _Search(q, p, h, grad @ step), safe_sqrt(h)


def _with_flat_derivatives(out_rows, rows, flat):
    """Where F is flat at the solution, keep the values, fix the derivatives.

    With w_g = 0 and every a_t within ε of c (F(c) ≈ 0), the θ_t are the a_t
    (the separate answer) but c is not unique: F's Hessian is singular and the
    implicit derivative through the last Newton step is not defined.  There
    θ_t = a_t holds on a neighbourhood, so the Jacobian is I; c, being any
    point of a set, gets a zero derivative.
    """
    def fix(out, row):
        task = row[1:] + lax.stop_gradient(out[1:] - row[1:])
        fixed = jnp.concatenate([lax.stop_gradient(out[:1]), task], axis=0)
        return jnp.where(flat, fixed, out)

    return [fix(o, r) for o, r in zip(out_rows, rows)]


class _LoopState(NamedTuple):
    point: Any  # κ (dual), c (primal)
    step: jax.Array  # Newton step at point: β (Gram forms) or Δc (parameter space)
    search: _Search
    residual: jax.Array
    iteration: jax.Array
    stalled: jax.Array


def _newton_loop(point0, measure, move, eps_vec, w, stop_at, max_iter):
    """Semismooth Newton with line search, as a ``lax.while_loop``.

    ``measure(point)`` gives (step, search terms, residual) and
    ``move(point, step, tau)`` takes the step.
    """

    def cond(s):
        return (s.iteration < max_iter) & ~(s.residual <= stop_at) & ~s.stalled

    def body(s):
        tau = _line_search(s.search, eps_vec, w)
        point = move(s.point, s.step, tau)
        return _LoopState(point, *measure(point), s.iteration + 1, tau == 0)

    init = _LoopState(point0, *measure(point0), jnp.asarray(0, jnp.int32), jnp.asarray(False))
    return lax.while_loop(cond, body, init)


# ---------------------------------------------------------------------------
# Public function
# ---------------------------------------------------------------------------


def _flat_rows(task_leaf, global_leaf):
    """(T+1, m) rows [a_g; a_1..a_T] of one leaf."""
    t = task_leaf.shape[0]
    return jnp.concatenate(
        [global_leaf.reshape(1, -1), task_leaf.reshape(t, -1)], axis=0)


def _unit(rows, anchors):
    """A power of two near max_j ‖a_j − m‖_∞ (1 when every point equals m)."""
    big = functools.reduce(
        jnp.maximum, [jnp.max(jnp.abs(r - m[None])) for r, m in zip(rows, anchors)])
    finite = jnp.isfinite(big) & (big > 0)
    return jnp.where(finite, jnp.exp2(jnp.round(jnp.log2(jnp.where(finite, big, 1.0)))), 1.0)


def _prepare(task_params, global_params, eps, task_weights, global_weight):
    t = checks.task_count(task_params, "task_params")
    checks.check_float_leaves(task_params, "task_params")
    if global_params is None:
        # a_g does not enter the problem when w_g = 0; any placeholder will do.
        if checks.is_concrete(global_weight):
            if float(np.asarray(global_weight)) != 0:
                raise ValueError(f"global_params=None needs global_weight=0, got {global_weight}")
        else:
            global_weight = eqx.error_if(global_weight, global_weight != 0,
                                         "global_params=None needs global_weight=0")
        global_params = jax.tree_util.tree_map(lambda x: jnp.mean(x, axis=0), task_params)
    checks.check_float_leaves(global_params, "global_params")
    checks.check_global_matches(task_params, global_params)
    eps = checks.check_eps(eps)
    # Half-precision points are projected in float32 and the result cast back.
    dtype = jnp.promote_types(jnp.result_type(*jax.tree_util.tree_leaves(task_params),
                                              *jax.tree_util.tree_leaves(global_params)),
                              jnp.float32)
    if task_weights is None:
        task_weights = jnp.ones((t,), dtype)
    task_weights = checks.check_weights(jnp.asarray(task_weights), t)
    global_weight = checks.check_scalar_weight(jnp.asarray(global_weight))
    w = jnp.concatenate([jnp.reshape(global_weight, (1,)), task_weights]).astype(dtype)
    return t, global_params, jnp.asarray(eps, dtype), w, dtype


def project_cross_learning(
    task_params: PyTree,
    global_params: PyTree | None,
    eps,
    *,
    task_weights=None,
    global_weight=1.0,
    method: Method = "dual",
    tol: float | None = None,
    max_iter: int = 100,
) -> ProjectionResult:
    """Project onto the cross-learning set {‖θ_t − θ_g‖ ≤ ε} (DESIGN §2).

    Solves min Σ_t w_t ‖θ_t − a_t‖² + w_g ‖θ_g − a_g‖² s.t. ‖θ_t − θ_g‖ ≤ ε,
    whose stationarity conditions are EUSIPCO eqs. 12–13:
    c = (w_g a_g + Σ w_t ρ_t a_t)/(w_g + Σ w_t ρ_t), θ_t = (1 − ρ_t) a_t + ρ_t c.

    Args:
      task_params: a_1..a_T, a pytree whose leaves have a leading task axis T.
      global_params: a_g, the same pytree without the task axis.  May be None
        when ``global_weight=0``.
      eps: the radius ε ≥ 0, a scalar (``inf`` allowed).
      task_weights: w_t > 0, shape (T,); default all ones.
      global_weight: w_g ≥ 0 (1 for the ADMM z-step, 0 for the estimator).
      method: ``"dual"`` (Gram matrix, cost per iteration independent of the
        parameter count) or ``"primal"`` (Newton in parameter space).
      tol: stop when the residual ≤ tol × (spread of the points); default
        √(machine epsilon) of the dtype.  One more Newton step always follows.
      max_iter: cap on Newton iterations.

    Returns:
      A :class:`ProjectionResult`.
    """
    if method not in ("dual", "primal"):
        raise ValueError(f"method must be 'dual' or 'primal', got {method!r}")
    if not (isinstance(max_iter, int) and max_iter >= 0):
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    t, global_params, eps, w, dtype = _prepare(
        task_params, global_params, eps, task_weights, global_weight)
    if tol is None:
        tol = float(np.sqrt(jnp.finfo(dtype).eps))
    checks.check_positive(tol, "tol")
    total_weight = jnp.sum(w)

    task_leaves, treedef = jax.tree_util.tree_flatten(task_params)
    global_leaves = jax.tree_util.tree_leaves(global_params)
    rows = [_flat_rows(tl.astype(dtype), gl.astype(dtype))
            for tl, gl in zip(task_leaves, global_leaves)]
    anchors = [(w @ r) / total_weight for r in rows]
    # Work in centred coordinates divided by a power of two near max|a_j − m|:
    # the answer is equivariant under this change of units, and the Gram matrix
    # then neither overflows nor underflows, whatever the scale of the points.
    scale = lax.stop_gradient(_unit(rows, anchors))
    xs = [(r - m[None]) / scale for r, m in zip(rows, anchors)]
    gram = sum(x @ x.T for x in xs)

    # Beyond the points' spread every ε gives the same answer; clipping there
    # keeps inf out of the arithmetic (and its gradient is then exactly 0).
    # When all points coincide, any ε > 0 leaves every constraint inactive.
    spread = safe_sqrt(jnp.max(jnp.diagonal(gram)))
    eps_eff = jnp.minimum(eps / scale, jnp.where(spread > 0, 2.0 * spread, 1.0))
    eps_vec = jnp.concatenate([jnp.zeros((1,), dtype), jnp.full((t,), 1.0, dtype) * eps_eff])
    stop_at = tol * spread
    n = t + 1
    eye = jnp.eye(n, dtype=dtype)
    frozen = [lax.stop_gradient(v) for v in (eps_vec, w, total_weight)]
    loop_args = (frozen[0], frozen[1], lax.stop_gradient(stop_at), max_iter)
    num_params = sum(x.shape[1] for x in xs)

    if method == "dual":
        def inner_products(kappa, G):
            gk = G @ kappa
            return G - gk[:, None] - gk[None, :] + kappa @ gk

        def move(kappa, beta, tau):
            # c + τ Σ β_j (c − a_j), with c − a_j = Xᵀ(κ − e_j)
            return kappa + tau * ((kappa[:, None] - eye) @ beta)

        G_const = lax.stop_gradient(gram)
        loop = _newton_loop(
            jnp.zeros((n,), dtype),
            lambda k: _gram_newton(inner_products(k, G_const), *frozen), move, *loop_args)
        kappa = lax.stop_gradient(loop.point)
        beta, _, _ = _gram_newton(inner_products(kappa, gram), eps_vec, w, total_weight)
        kappa = move(kappa, beta, 1.0)
        _, rho, _, _ = _distance_terms(jnp.diagonal(inner_products(kappa, gram)), eps_vec, w)
        # θ_j = m + Σ_k K_jk x_k with K_j = e_j + ρ_j (κ − e_j); ρ_g = 1 so θ_g = c.
        K = (eye + rho[:, None] * (kappa[None, :] - eye)) * scale
        out_rows = [m[None] + K @ x for m, x in zip(anchors, xs)]
    elif num_params <= n:
        # Few parameters: Newton on the S × S Hessian, on the stacked rows.
        points = jnp.concatenate(xs, axis=1)

        def move(c, step, tau):
            return c + tau * step

        frozen_points = lax.stop_gradient(points)
        loop = _newton_loop(
            jnp.zeros((num_params,), dtype),
            lambda c: _parameter_space_newton(c, frozen_points, *frozen), move, *loop_args)
        c = lax.stop_gradient(loop.point)
        step, _, _ = _parameter_space_newton(c, points, eps_vec, w, total_weight)
        c = c + step
        v = c[None] - points
        _, rho, _, _ = _distance_terms(jnp.sum(v * v, axis=1), eps_vec, w)
        out = points + rho[:, None] * v
        bounds = np.cumsum([0] + [x.shape[1] for x in xs])
        out_rows = [m[None] + scale * out[:, lo:hi]
                    for m, lo, hi in zip(anchors, bounds[:-1], bounds[1:])]
    else:
        def primal_ops(points):
            def inner_products(c):
                return sum(v @ v.T for v in (cl[None] - r for cl, r in zip(c, points)))

            def move(c, beta, tau):
                return [cl + tau * (beta @ (cl[None] - r)) for cl, r in zip(c, points)]

            return inner_products, move

        frozen_products, frozen_move = primal_ops([lax.stop_gradient(x) for x in xs])
        loop = _newton_loop(
            [jnp.zeros_like(m) for m in anchors],
            lambda c: _gram_newton(frozen_products(c), *frozen), frozen_move, *loop_args)
        inner_products, move = primal_ops(xs)
        c = [lax.stop_gradient(cl) for cl in loop.point]
        beta, _, _ = _gram_newton(inner_products(c), eps_vec, w, total_weight)
        c = move(c, beta, 1.0)
        _, rho, _, _ = _distance_terms(jnp.diagonal(inner_products(c)), eps_vec, w)
        out_rows = [m[None] + scale * (x + rho[:, None] * (cl[None] - x))
                    for m, cl, x in zip(anchors, c, xs)]

    # w_g = 0 and F(c) ≈ 0 to the tolerance: every task fits in one ball of radius ε.
    flat = lax.stop_gradient(
        (w[0] == 0) & (_objective(loop.search.q, eps_vec, w) <= 4.0 * total_weight * stop_at**2))
    out_rows = _with_flat_derivatives(out_rows, rows, flat)
    global_out = [o[0].reshape(gl.shape).astype(gl.dtype)
                  for o, gl in zip(out_rows, global_leaves)]
    task_out = [o[1:].reshape(tl.shape).astype(tl.dtype) for o, tl in zip(out_rows, task_leaves)]
    return ProjectionResult(
        task_params=jax.tree_util.tree_unflatten(treedef, task_out),
        global_params=jax.tree_util.tree_unflatten(treedef, global_out),
        iterations=loop.iteration,
        residual=loop.residual * scale,
        converged=loop.residual <= stop_at,
    )


def cross_learning_objective(task_params, global_params, points_task, points_global,
                             task_weights=None, global_weight=1.0):
    """Σ_t w_t ‖θ_t − a_t‖² + w_g ‖θ_g − a_g‖², the objective P_C minimises."""
    t = checks.task_count(task_params)
    if task_weights is None:
        task_weights = jnp.ones((t,))
    return (jnp.sum(task_weights * per_task_sq_norm(sub(task_params, points_task)))
            + global_weight * sq_norm(sub(global_params, points_global)))
