"""Primal-dual learning for functional cross-learning, P_CLF (paper Algorithm 2).

Lagrangian (DESIGN §4), with per-task data batches (x_t, y_t):

    L(θ, λ) = (1/T) Σ_t ℓ̄_t(θ_t) + Σ_t λ_t (ḡ_t(θ_t, θ_g) − ε),
    ℓ̄_t = mean_i ℓ(f(x_ti, θ_t), y_ti),   ḡ_t = mean_i d(f(x_ti, θ_t), f(x_ti, θ_g)).

* Primal: one gradient step of L on every θ_t and on θ_g, through any optax
  transformation (θ_g gets gradient only through the constraint terms).
* Dual: projected ascent λ_t ← [λ_t + η_D (ĝ_t − ε)]₊, where ĝ_t is the average
  of ḡ_t over the steps since the last dual update (an epoch, or every k
  steps with ``dual_every=k``).

Reading λ: λ_t = 0 means the constraint of task t is inactive; λ_t growing
without bound means it cannot be met.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from cljax._src import checks as checks
from cljax.solvers._distances import l1_distance

PyTree = Any


class PrimalDualState(NamedTuple):
    """Iterate of Algorithm 2.  ``constraint_sum``/``num_accumulated`` average ḡ_t."""

    task_params: PyTree
    global_params: PyTree
    opt_state: Any
    duals: jax.Array  # (T,) λ_t ≥ 0
    constraint_sum: jax.Array  # (T,)
    num_accumulated: jax.Array
    iteration: jax.Array


class PrimalDualInfo(NamedTuple):
    """What one step logs: per-task losses, constraint values ḡ_t, slack ḡ_t − ε, λ_t."""

    loss: jax.Array
    constraints: jax.Array
    slack: jax.Array
    duals: jax.Array


@dataclass(frozen=True)
class PrimalDual:
    """Algorithm 2.

    Args:
      apply_fn: ``apply_fn(params, x) -> outputs`` for one network.
      loss_fn: ``loss_fn(outputs, y) -> (B,)`` per-example losses.
      optimizer: optax transformation for the primal step on (θ_1..θ_T, θ_g);
        the paper uses SGD with η_P = 0.003.
      dual_step_size: η_D (the paper uses 10).
      distance: ``distance(out_t, out_g) -> (B,)``; default L1 between outputs.
      dual_every: update λ every k steps inside ``step``; ``None`` leaves it
        to the caller (:meth:`dual_update` at the end of each epoch).
    """

    apply_fn: Callable[[PyTree, Any], Any]
    loss_fn: Callable[[Any, Any], jax.Array]
    optimizer: optax.GradientTransformation
    dual_step_size: float = 10.0
    distance: Callable[[Any, Any], jax.Array] = l1_distance
    dual_every: int | None = None

    def init(self, task_params: PyTree, eps, global_params: PyTree | None = None,
             duals=None) -> PrimalDualState:
        """λ = 0 (or ``duals``); θ_g defaults to the mean of the task parameters.

        ``eps`` is checked here (ε ≥ 0); the iterate does not depend on it.
        """
        t, global_params = checks.task_and_global(task_params, global_params)
        checks.check_eps(eps)
        if self.dual_every is not None and not (isinstance(self.dual_every, int)
                                                and self.dual_every >= 1):
            raise ValueError(f"dual_every must be a positive int or None, got {self.dual_every!r}")
        checks.check_positive(self.dual_step_size, "dual_step_size")
        dtype = jnp.result_type(*jax.tree_util.tree_leaves(task_params))
        if duals is None:
            duals = jnp.zeros((t,), dtype)
        duals = checks.check_weights(jnp.asarray(duals, dtype), t, "duals", allow_zero=True)
        params = (task_params, global_params)
        return PrimalDualState(task_params, global_params, self.optimizer.init(params),
                               duals, jnp.zeros((t,), dtype), jnp.asarray(0, jnp.int32),
                               jnp.asarray(0, jnp.int32))

    def task_terms(self, task_params, global_params, batch):
        """(T,) mean losses ℓ̄_t and constraint values ḡ_t on a per-task batch."""
        x, y = batch

        def one(params_t, x_t, y_t):
            out_t = self.apply_fn(params_t, x_t)
            out_g = self.apply_fn(global_params, x_t)
            return jnp.mean(self.loss_fn(out_t, y_t)), jnp.mean(self.distance(out_t, out_g))

        return jax.vmap(one)(task_params, x, y)

    def lagrangian(self, task_params, global_params, duals, batch, eps):
        """L(θ, λ) and its per-task terms (losses, constraint values)."""
        losses, constraints = self.task_terms(task_params, global_params, batch)
        value = jnp.mean(losses) + jnp.sum(duals * (constraints - eps))
        return value, (losses, constraints)

    def dual_update(self, state: PrimalDualState, eps) -> PrimalDualState:
        """λ_t ← [λ_t + η_D (ĝ_t − ε)]₊ with ĝ_t the average since the last update."""
        count = jnp.maximum(state.num_accumulated, 1).astype(state.duals.dtype)
        average = state.constraint_sum / count
        raised = jnp.maximum(state.duals + self.dual_step_size * (average - eps), 0.0)
        duals = jnp.where(state.num_accumulated > 0, raised, state.duals)
        return state._replace(duals=duals, constraint_sum=jnp.zeros_like(state.constraint_sum),
                              num_accumulated=jnp.zeros_like(state.num_accumulated))

    def step(self, state: PrimalDualState, batch, eps) -> tuple[PrimalDualState, PrimalDualInfo]:
        """A primal step on a per-task batch ``(x, y)``, each with leading axis T."""
        eps = checks.check_eps(eps)

        def objective(params):
            return self.lagrangian(params[0], params[1], state.duals, batch, eps)

        params = (state.task_params, state.global_params)
        (_, (losses, constraints)), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, params)
        task_params, global_params = optax.apply_updates(params, updates)
        new = state._replace(task_params=task_params, global_params=global_params,
                             opt_state=opt_state,
                             constraint_sum=state.constraint_sum + constraints,
                             num_accumulated=state.num_accumulated + 1,
                             iteration=state.iteration + 1)
        if self.dual_every is not None:
            due = new.iteration % self.dual_every == 0
            updated = self.dual_update(new, eps)
            new = jax.tree_util.tree_map(lambda a, b: jnp.where(due, a, b), updated, new)
        info = PrimalDualInfo(losses, constraints, constraints - eps, new.duals)
        return new, info

    def run(self, task_params: PyTree, data, eps, num_steps: int,
            global_params: PyTree | None = None):
        """``num_steps`` full-batch steps in a ``lax.scan`` (dual per ``dual_every``,
        default every step); returns (state, info history)."""
        solver = self if self.dual_every is not None else replace(self, dual_every=1)
        state = solver.init(task_params, eps, global_params)
        return lax.scan(lambda s, _: solver.step(s, data, eps), state, None, length=num_steps)

