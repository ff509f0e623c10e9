"""Projected (stochastic) gradient for P_CL (EUSIPCO Algorithm 1).

Each step takes a gradient step per task with any optax transformation and then
projects the joint variable (θ_1..θ_T, θ_g) onto C = {‖θ_t − θ_g‖ ≤ ε}:

    θ_t ← θ_t + update_t(∇L_t(θ_t)),      (θ, θ_g) ← P_C(θ, θ_g).

``global_weight`` is w_g in P_C: 1 projects the joint variable (θ_g has no
loss, so it moves only through the projection); 0 lets θ_g be re-chosen freely
at every step (projection onto the set of task parameters that admit a centre).
For SGD, call ``step`` with a fresh minibatch; ``run`` iterates on fixed data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from cljax._src import checks as checks
from cljax.projection._operator import project_cross_learning
from cljax.solvers._validate import check_num_steps

PyTree = Any


class ProjectedGradientState(NamedTuple):
    """Iterate: the feasible (θ_1..θ_T, θ_g), the optimiser state and the step count."""

    task_params: PyTree
    global_params: PyTree
    opt_state: Any
    iteration: jax.Array


class ProjectedGradientInfo(NamedTuple):
    """What one step reports: the (T,) per-task losses at the iterate before the step."""

    loss: jax.Array


@dataclass(frozen=True)
class ProjectedGradient:
    """EUSIPCO Algorithm 1 with ``loss_fn(params, data) -> scalar`` per task."""

    loss_fn: Callable[[PyTree, Any], jax.Array]
    optimizer: optax.GradientTransformation
    global_weight: float = 1.0
    projection_method: str = "dual"
    projection_max_iter: int = 50

    def init(self, task_params: PyTree, eps, global_params: PyTree | None = None):
        """Project the starting point, so every iterate is feasible."""
        _, global_params = checks.task_and_global(task_params, global_params)
        proj = self._project(task_params, global_params, checks.check_eps(eps))
        return ProjectedGradientState(proj.task_params, proj.global_params,
                                      self.optimizer.init(proj.task_params),
                                      jnp.asarray(0, jnp.int32))

    def _project(self, task_params, global_params, eps):
        return project_cross_learning(task_params, global_params, eps,
                                      global_weight=self.global_weight,
                                      method=self.projection_method,
                                      max_iter=self.projection_max_iter)

    def step(self, state: ProjectedGradientState, data: Any, eps
             ) -> tuple[ProjectedGradientState, ProjectedGradientInfo]:
        """One step; returns (state, info) with the per-task losses before the step."""
        losses, grads = jax.vmap(jax.value_and_grad(self.loss_fn))(state.task_params, data)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.task_params)
        moved = optax.apply_updates(state.task_params, updates)
        proj = self._project(moved, state.global_params, eps)
        new = ProjectedGradientState(proj.task_params, proj.global_params, opt_state,
                                     state.iteration + 1)
        return new, ProjectedGradientInfo(losses)

    def run(self, task_params: PyTree, data: Any, eps, num_steps: int,
            global_params: PyTree | None = None):
        """``num_steps`` full-data steps in a ``lax.scan``; returns (state, info history)."""
        num_steps = check_num_steps(num_steps)
        state = self.init(task_params, eps, global_params)
        return lax.scan(lambda s, _: self.step(s, data, eps), state, None, length=num_steps)
