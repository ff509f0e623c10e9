"""The penalty family: soft coupling of the tasks to a global model (issue 16, part 4).

FedProx, Ditto, pFedMe and mean-regularised multi-task learning (MR-MTL) share the problem

    min_{θ_1..θ_T, θ_g}  Σ_t L_t(θ_t) + Σ_t (μ_t/2) ‖θ_t − θ_g‖²,          (P_μ)

with one weight μ (or one per task, μ_t ≥ 0; ∞ allowed, which ties θ_t = θ_g).
Cross-learning instead constrains ‖θ_t − θ_g‖ ≤ ε.  Written as ‖θ_t − θ_g‖² ≤ ε²,
the Lagrangian of the constrained problem is P_μ with μ_t = 2 λ_t*(ε), so the two
solutions coincide for those per-task weights; a single μ reproduces the
constrained solution only when the optimal multipliers λ_t* are equal
(tests/estimators/test_penalty.py checks both).

Eliminating θ_g: stationarity in θ_g gives Σ_t μ_t (θ_g − θ_t) = 0, i.e. θ_g is the
μ-weighted mean of the θ_t.  For squared losses everything is then closed form
or one small linear solve:

* Gaussian means, L_t(θ) = w_t ‖θ − y_t‖²:
  θ_t = θ_g + 2w_t/(2w_t + μ_t) (y_t − θ_g),  θ_g = Σ s_t y_t / Σ s_t,
  s_t = w_t μ_t / (2w_t + μ_t)  (:func:`penalty_means`).
* Least squares, L_t(θ) = Σ_i v_ti (x_tiᵀθ − y_ti)² / Σ_i v_ti + r ‖θ‖² = θᵀA_tθ − 2b_tᵀθ + c:
  θ_t = θ_g + 2 M_t (b_t − A_t θ_g),  M_t = (2A_t + μ_t I)⁻¹,
  [Σ_t μ_t M_t A_t] θ_g = Σ_t μ_t M_t b_t  (:func:`penalty_least_squares`).

Any differentiable loss: :func:`penalty_descent` (gradient steps on θ_1..θ_T with θ_g
eliminated, in a ``lax.scan``).  :func:`projection_multipliers` gives λ_t*(ε) of the
Gaussian cross-learning estimator (the KKT conditions of P̄_CL).

When every μ_t = 0 the tasks are uncoupled and θ_g is not determined; it is then set
to the (w-weighted) mean of the θ_t.
"""

from __future__ import annotations

from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from cljax._src import checks as checks
from cljax._src.tree import per_task_distance, per_task_sq_norm, subtract_global

PyTree = Any


def _mu_vector(mu, t: int, dtype):
    """μ as a (T,) array: a scalar or (T,), every entry ≥ 0 (∞ allowed), not NaN."""
    mu = jnp.asarray(mu, dtype)
    if mu.ndim == 0:
        mu = jnp.broadcast_to(mu, (t,))
    if mu.shape != (t,):
        raise ValueError(f"mu must be a scalar or have shape ({t},) (one per task), "
                         f"got {mu.shape}")
    if checks.is_concrete(mu):
        value = np.asarray(mu)
        if np.any(np.isnan(value) | (value < 0)):
            raise ValueError(f"mu must be >= 0 and not NaN (inf allowed), got {value}")
        return mu
    return eqx.error_if(mu, jnp.any(jnp.isnan(mu) | (mu < 0)), "mu must be >= 0 and not NaN")


def _shrinkage(mu, w):
    """2w/(2w + μ) and s = wμ/(2w + μ) (w > 0), exact at μ = ∞ (0 and w)."""
    inf = jnp.isinf(mu)
    inv = jnp.where(inf, 0.0, 1.0 / (2 * w + jnp.where(inf, 0.0, mu)))
    return 2 * w * inv, jnp.where(inf, w, w * jnp.where(inf, 0.0, mu) * inv)


def penalty_means(task_means: PyTree, mu, task_weights=None) -> tuple[PyTree, PyTree]:
    """Exact solution of P_μ for Gaussian means, L_t(θ) = w_t ‖θ − y_t‖².

    θ_t = θ_g + 2w_t/(2w_t + μ_t) (y_t − θ_g),  θ_g = Σ s_t y_t / Σ s_t,
    s_t = w_t μ_t/(2w_t + μ_t).  μ = 0: separate (θ_t = y_t); μ = ∞: consensus.

    Args:
      task_means: the sample means y_t, a task tree (leading axis T).
      mu: μ ≥ 0, a scalar or (T,) (per-task weights; ∞ allowed).
      task_weights: w_t > 0, (T,); default all ones (the loss of :func:`cross_learning`).

    Returns:
      (θ_1..θ_T as a task tree, θ_g as a global tree).
    """
    t = checks.task_count(task_means, "task_means")
    checks.check_float_leaves(task_means, "task_means")
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(task_means))
    mu = _mu_vector(mu, t, dtype)
    w = jnp.ones((t,), dtype) if task_weights is None else checks.check_weights(
        jnp.asarray(task_weights, dtype), t)
    keep, pull = _shrinkage(mu, w)
    coupled = jnp.sum(pull) > 0
    s = jnp.where(coupled, pull, w)  # all μ = 0: θ_g = w-weighted mean (not determined)

    def solve(leaf):
        shape = (t,) + (1,) * (leaf.ndim - 1)
        centre = jnp.sum(s.reshape(shape) * leaf, axis=0) / jnp.sum(s)
        return centre[None] + keep.reshape(shape) * (leaf - centre[None]), centre

    pairs = jax.tree_util.tree_map(solve, task_means)
    outer = jax.tree_util.tree_structure(task_means)
    task, centre = jax.tree_util.tree_transpose(
        outer, jax.tree_util.tree_structure((0, 0)), pairs)
    return task, centre


def least_squares_terms(x, y, sample_weights=None, ridge=0.0):
    """(A_t, b_t) with L_t(θ) = θᵀA_tθ − 2b_tᵀθ + c, per task (x: (T, N, p), y: (T, N)).

    L_t(θ) = Σ_i v_ti (x_tiᵀθ − y_ti)² / Σ_i v_ti + ridge ‖θ‖²; v = ``sample_weights``
    (T, N), default ones.
    """
    if sample_weights is None:
        sample_weights = jnp.ones(x.shape[:2], x.dtype)
    sw = jnp.sum(sample_weights, axis=1)[:, None, None]
    xw = x * sample_weights[..., None]
    a = jnp.einsum("tnp,tnq->tpq", xw, x) / sw + ridge * jnp.eye(x.shape[2], dtype=x.dtype)
    b = jnp.einsum("tnp,tn->tp", xw, y) / sw[..., 0]
    return a, b


def penalty_least_squares(x, y, mu, sample_weights=None, ridge=0.0):
    """Exact solution of P_μ for (weighted, optionally ridged) least squares per task.

    With (A_t, b_t) from :func:`least_squares_terms` and M_t = (2A_t + μ_t I)⁻¹:
    θ_t = θ_g + 2M_t (b_t − A_t θ_g) and [Σ_t μ_t M_t A_t] θ_g = Σ_t μ_t M_t b_t,
    computed in the eigenbasis of each A_t so μ_t = 0 and μ_t = ∞ are exact.

    Args:
      x: (T, N, p) inputs; y: (T, N) targets.
      mu: μ ≥ 0, a scalar or (T,) (∞ allowed).
      sample_weights: (T, N) weights v_ti ≥ 0 (e.g. a cross-validation fold); default ones.
      ridge: r ≥ 0 added to every task's loss.

    Returns:
      (θ_t (T, p), θ_g (p,)).
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 3 or y.shape != x.shape[:2]:
        raise ValueError(f"x must have shape (T, N, p) and y (T, N), got {x.shape} and {y.shape}")
    t, _, p = x.shape
    mu = _mu_vector(mu, t, x.dtype)
    a, b = least_squares_terms(x, y, sample_weights, ridge)
    eig, vec = jnp.linalg.eigh(a)  # (T, p), (T, p, p)
    inf = jnp.isinf(mu)[:, None]
    mu_f = jnp.where(jnp.isinf(mu), 0.0, mu)[:, None]
    denom = 2 * eig + mu_f
    safe = jnp.where(denom > 0, denom, 1.0)
    step = jnp.where(inf | (denom <= 0), 0.0, 2.0 / safe)  # eigenvalues of 2 M_t
    pull = jnp.where(inf, 1.0, mu_f / safe)  # eigenvalues of μ_t M_t
    bv = jnp.einsum("tpk,tp->tk", vec, b)  # b in each task's eigenbasis

    def in_basis(scale, coords):
        return jnp.einsum("tpk,tk->tp", vec, scale * coords)

    gram = jnp.einsum("tpk,tk,tqk->pq", vec, pull * eig, vec)
    rhs = jnp.sum(in_basis(pull, bv), axis=0)
    separate = in_basis(step, bv)  # θ_t at θ_g = 0 (the separate solution when μ = 0)
    uncoupled = jnp.sum(jnp.where(jnp.isinf(mu), 1.0, mu)) == 0
    gram = gram + jnp.where(uncoupled, 1.0, 0.0) * jnp.eye(p, dtype=x.dtype)
    rhs = rhs + jnp.where(uncoupled, 1.0, 0.0) * jnp.mean(separate, axis=0)
    centre = jnp.linalg.solve(gram, rhs)
    # b_t − A_t θ_g in each eigenbasis: Vᵀb_t − diag(eig_t) Vᵀθ_g
    resid = bv - eig * jnp.einsum("tpk,p->tk", vec, centre)
    return centre[None] + in_basis(step, resid), centre


def penalty_objective(losses, task_params: PyTree, global_params: PyTree, mu):
    """Σ_t L_t + Σ_t (μ_t/2) ‖θ_t − θ_g‖² given the (T,) losses L_t (μ_t = ∞ not allowed)."""
    sq = per_task_sq_norm(subtract_global(task_params, global_params))
    return jnp.sum(losses) + 0.5 * jnp.sum(mu * sq)


def penalty_descent(loss_fn: Callable, task_params: PyTree, data, mu, num_steps: int,
                    optimizer: optax.GradientTransformation | None = None):
    """P_μ for any differentiable per-task loss, by gradient steps in a ``lax.scan``.

    θ_g is eliminated (θ_g = Σ μ_t θ_t / Σ μ_t, its exact minimiser given θ_1..θ_T), so
    the iteration descends F(θ) = Σ_t L_t(θ_t) + Σ_t (μ_t/2) ‖θ_t − θ_g(θ)‖².

    Args:
      loss_fn: ``loss_fn(params_t, data_t) -> scalar`` for one task (vmapped over T).
      task_params: the starting θ_1..θ_T, a task tree.
      data: per-task data, a pytree with leading axis T.
      mu: μ ≥ 0 (finite), a scalar or (T,).
      num_steps: iterations.
      optimizer: an optax transformation; default ``optax.adam(1e-2)``.

    Returns:
      (θ_t task tree, θ_g global tree, (num_steps,) objective values F along the way).
    """
    t = checks.task_count(task_params, "task_params")
    checks.check_float_leaves(task_params, "task_params")
    mu = _mu_vector(mu, t, jnp.result_type(*jax.tree_util.tree_leaves(task_params)))
    if not (isinstance(num_steps, int) and num_steps >= 1):
        raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
    optimizer = optax.adam(1e-2) if optimizer is None else optimizer

    def centre(params):
        s = jnp.where(jnp.sum(mu) > 0, mu, jnp.ones_like(mu))

        def mean(leaf):
            return jnp.tensordot(s, leaf, axes=1) / jnp.sum(s)
        return jax.tree_util.tree_map(mean, params)

    def objective(params):
        losses = jax.vmap(loss_fn)(params, data)
        return penalty_objective(losses, params, centre(params), mu)

    def step(carry, _):
        params, opt_state = carry
        value, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), value

    (params, _), history = lax.scan(step, (task_params, optimizer.init(task_params)), None,
                                    length=num_steps)
    return params, centre(params), history


def projection_multipliers(task_means: PyTree, centre: PyTree, eps, task_weights=None):
    """λ_t*(ε) of P̄_CL written with squared constraints ‖θ_t − θ_g‖² ≤ ε².

    At the solution θ_t = (w_t y_t + λ_t θ_g)/(w_t + λ_t) (stationarity of
    Σ w_t ‖θ_t − y_t‖² + Σ λ_t (‖θ_t − θ_g‖² − ε²)), hence
    λ_t = w_t (‖y_t − θ_g‖/ε − 1)₊ (the EUSIPCO multipliers ρ_t/(1 − ρ_t), times w_t).
    So :func:`penalty_means` with μ_t = 2λ_t returns the cross-learning estimate.

    Args:
      task_means: y_t, a task tree; centre: θ_g of the projection (``.global_params``).
      eps: ε > 0.
      task_weights: w_t, (T,); default ones.
    """
    t = checks.task_count(task_means, "task_means")
    dist = per_task_distance(task_means, centre)
    w = jnp.ones((t,), dist.dtype) if task_weights is None else jnp.asarray(task_weights,
                                                                              dist.dtype)
    return w * jnp.maximum(dist / eps - 1.0, 0.0)




# ---------------------------------------------------------------------------
# Resilient cross-learning (Hounie, Ribeiro, Chamon et al., NeurIPS 2023).

def resilient_alpha(noise_variance, num_params: int, curvature=1.0):
    """The fixed rule for the resilience cost α of :func:`resilient_means` /
    :func:`resilient_least_squares`: α = 2 ā / (S τ²).

    τ² is the noise variance of one coordinate of a task's separate estimate and S the
    parameters per task; ā the mean curvature of L_t (1 for ‖θ − y_t‖², tr A_t / p for
    least squares).  It is calibrated once, on no data: when the task spread equals the
    noise (θ*_t − θ̄* ~ N(0, τ² I), where separate and consensus tie), the resilient
    fixed point shrinks each task half-way toward θ_g, the Bayes linear shrinkage there.
    """
    return 2.0 * curvature / (num_params * noise_variance)


def _data_scale(points):
    """RMS per-coordinate spread of the (T, S) rows around their mean (1 if 0)."""
    spread = jnp.sqrt(jnp.mean(jnp.square(points - jnp.mean(points, axis=0))))
    return jnp.where(spread > 0, spread, 1.0)


def _resilient_solve(loss_fn, apply_fn, start, data, alpha, eps, num_steps, curvature, reach):
    """Σ_t L_t + Σ_t α u_t²/2 s.t. ‖θ_t − θ_g‖² ≤ ε² + u_t by :class:`PrimalDual` with
    ``resilience=α``: the method of multipliers with ρ = 1/S and full-batch gradient steps
    η = 1/(2ā + 2α R² + 4ρ R²) on θ_t, η/T on θ_g (ā: the loss curvature, R²: ``reach``,
    a bound on ‖θ_t − θ_g‖², so η bounds the Lagrangian's curvature in θ_t)."""
    from cljax.solvers._dual import method_of_multipliers
    from cljax.solvers._primal_dual import PrimalDual

    def distance(out_t, out_g):  # the parametric constraint ‖θ_t − θ_g‖², once per example
        return jnp.broadcast_to(jnp.sum(jnp.square(out_t[1] - out_g[1])), out_t[0].shape[:1])

    t = start.shape[0]
    rho = 1.0 / start.shape[1]
    step = 1.0 / (2 * curvature + 2 * alpha * reach + 4 * rho * reach)
    optimizer = optax.multi_transform({"task": optax.sgd(step), "global": optax.sgd(step / t)},
                                      ("task", "global"))
    solver = PrimalDual(apply_fn, loss_fn, optimizer, distance=distance, dual_every=1,
                        dual=method_of_multipliers(rho), resilience=alpha)
    state, info = solver.run(start, data, jnp.square(eps), num_steps)
    return state, info, solver


def resilient_means(task_means, alpha, eps=0.0, *, num_steps: int = 3000):
    """Resilient cross-learning of Gaussian means, learned by the primal-dual solver.

    Solves, with per-task relaxations u_t learned jointly (Hounie et al. 2023),

        min Σ_t ‖θ_t − y_t‖² + Σ_t α u_t²/2   s.t.  ‖θ_t − θ_g‖² ≤ ε² + u_t,

    whose saddle point has α u_t = λ_t (h'(u_t) = λ_t), i.e. task t's radius is
    relaxed to ε_t² = ε² + λ_t/α.  Eliminating u, this is
    min Σ ‖θ_t − y_t‖² + (α/2) Σ_t (‖θ_t − θ_g‖² − ε²)₊²: with ε = 0 a quartic coupling,
    equivalent to P_μ with μ_t = 2α ‖θ_t − θ_g‖².

    Runs :class:`cljax.solvers.PrimalDual` (``resilience``; gradient steps of size 0.05
    on data rescaled to unit spread, the method of multipliers with ρ = 1).

    Args:
      task_means: y_t, (T, S).
      alpha: α > 0 (see :func:`resilient_alpha` for the rule cljax uses).
      eps: the base radius ε ≥ 0 (default 0).
      num_steps: primal-dual steps.

    Returns:
      (θ_t (T, S), θ_g (S,), u_t (T,) the learned relaxations, λ_t (T,)).
    """
    y = jnp.asarray(task_means)
    if y.ndim != 2:
        raise ValueError(f"task_means must have shape (T, S), got {y.shape}")
    checks.check_positive(alpha, "alpha")
    eps = checks.check_eps(eps)
    t = y.shape[0]
    c = _data_scale(y)
    z = y / c

    def apply_fn(theta, x):
        return jnp.broadcast_to(theta, (x.shape[0],) + theta.shape), theta

    def loss_fn(out, target):  # T × ‖θ − y_t‖²: the solver averages over tasks
        return t * jnp.sum(jnp.square(out[0] - target), axis=-1)

    # in units of c: α → α c², ε → ε/c (the objective is divided by c²)
    reach = jnp.max(jnp.sum(jnp.square(z - jnp.mean(z, axis=0)), axis=1))
    data = (jnp.zeros((t, 1, 1), y.dtype), z[:, None, :])
    state, _, solver = _resilient_solve(loss_fn, apply_fn, z, data, alpha * c**2, eps / c,
                                        num_steps, 1.0, reach)
    # λ is unit-free under the rescaling; u = c² v with v = λ/(α c²) in units of c
    u = solver.relaxation(state.duals) * c**2
    return state.task_params * c, state.global_params * c, u, state.duals


def resilient_least_squares(x, y, alpha, eps=0.0, sample_weights=None, ridge=0.0, *,
                            num_steps: int = 3000):
    """Resilient cross-learning of per-task (weighted, ridged) least squares.

    min Σ_t L_t(θ_t) + Σ_t α u_t²/2 s.t. ‖θ_t − θ_g‖² ≤ ε² + u_t, with L_t of
    :func:`least_squares_terms`, by :class:`cljax.solvers.PrimalDual` with ``resilience``
    (as :func:`resilient_means`; started from the separate solutions, data rescaled to unit
    spread of those).

    Returns:
      (θ_t (T, p), θ_g (p,), u_t (T,), λ_t (T,)).
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 3 or y.shape != x.shape[:2]:
        raise ValueError(f"x must have shape (T, N, p) and y (T, N), got {x.shape} and {y.shape}")
    checks.check_positive(alpha, "alpha")
    eps = checks.check_eps(eps)
    t, n, _ = x.shape
    if sample_weights is None:
        sample_weights = jnp.ones((t, n), x.dtype)
    a, b = least_squares_terms(x, y, sample_weights, ridge)
    start = jnp.linalg.solve(a, b[..., None])[..., 0]
    c = _data_scale(start)
    z = start / c
    reach = jnp.max(jnp.sum(jnp.square(z - jnp.mean(z, axis=0)), axis=1))
    top = jnp.max(jnp.linalg.eigvalsh(a))

    def apply_fn(theta, xt):
        return xt @ theta, theta

    def loss_fn(out, target):  # T × (weighted mean squared error + ridge ‖θ‖²), per example
        yt, w = target[:, 0], target[:, 1]
        return t * (w * jnp.square(out[0] - yt) * w.shape[0] / jnp.sum(w)
                    + ridge * jnp.sum(jnp.square(out[1])))

    data = (x, jnp.stack([y / c, sample_weights], axis=-1))
    state, _, solver = _resilient_solve(loss_fn, apply_fn, z, data, alpha * c**2, eps / c,
                                        num_steps, top, reach)
    u = solver.relaxation(state.duals) * c**2
    return state.task_params * c, state.global_params * c, u, state.duals


__all__ = ["penalty_means", "penalty_least_squares", "least_squares_terms", "penalty_descent",
           "penalty_objective", "projection_multipliers", "resilient_alpha", "resilient_means",
           "resilient_least_squares"]
