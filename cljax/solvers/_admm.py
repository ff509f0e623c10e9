"""ADMM for parametric cross-learning, P_CL (paper Algorithm 1; DESIGN §3).

Variables: x = (θ_1..θ_T, θ_g), a copy z constrained to the cross-learning set
C = {‖z_t − z_g‖ ≤ ε}, and the scaled dual u.  With step size λ_k (penalty
1/λ_k), one iteration is (Boyd et al. 2011, §5 with the indicator of C):

    x_t ← argmin_θ L_t(θ) + ‖θ − z_t + u_t‖² / (2 λ_k)      (vmapped over t)
    x_g ← z_g − u_g                                            (no loss on θ_g)
    z   ← P_C(x + u)        with w_t = w_g = 1                 (exact projection)
    u   ← u + x − z

Residuals: primal ‖x − z‖, dual ‖z − z_prev‖ / λ_k, over all T+1 blocks.  When
the schedule changes λ, the scaled dual is rescaled u ← u λ_{k+1}/λ_k (Boyd
§3.4.1); ``rescale_dual=False`` reproduces the authors' code, which does not.

``run`` is a ``lax.scan``, so a whole solve can be jitted and vmapped, e.g.
over a grid of ε:  ``jax.vmap(lambda e: admm.run(theta0, data, e, 200))(grid)``.
The protocol (``init`` / ``step`` → (state, info) / ``run``) is the one of every
solver in :mod:`cljax.solvers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

import equinox as eqx
import numpy as np

from cljax._src import checks as checks
from cljax._src import tree as tu
from cljax.projection._operator import project_cross_learning
from cljax.solvers._validate import check_num_steps, check_tol

PyTree = Any


def authors_schedule(initial: float = 1.0, factor: float = 0.9, every: int = 10):
    """The authors' step-size schedule: λ_k = λ_0 · 0.9^⌊k/10⌋ (penalty grows)."""
    return optax.exponential_decay(initial, transition_steps=every, decay_rate=factor,
                                   staircase=True)


class ADMMState(NamedTuple):
    """ADMM iterate.  Task trees carry a leading task axis; ``*_global`` do not.

    ``task_params`` / ``global_params`` are the projected copy z = (z_1..z_T, z_g),
    feasible at every iteration: the solver's answer.  ``x`` is the x-step iterate
    and ``u`` the scaled dual.
    """

    task_params: PyTree
    global_params: PyTree
    x: PyTree
    x_global: PyTree
    u: PyTree
    u_global: PyTree
    step_size: jax.Array
    iteration: jax.Array
    primal_residual: jax.Array
    dual_residual: jax.Array
    converged: jax.Array


class ADMMInfo(NamedTuple):
    """What one :meth:`ADMM.step` reports (stacked over iterations by :meth:`ADMM.run`)."""

    loss: jax.Array  # (T,) per-task losses at the feasible iterate z
    primal_residual: jax.Array
    dual_residual: jax.Array
    step_size: jax.Array


@dataclass(frozen=True)
class ADMM:
    """Algorithm 1.  ``prox`` is a solver from :mod:`cljax.solvers._prox` carrying the loss.

    Args:
      prox: per-task proximal solver (``solve`` and ``loss`` methods).
      schedule: k ↦ λ_k, e.g. an optax schedule; a float means constant.  λ_k must
        be finite and > 0: a bad constant raises here, a callable that reaches a
        bad value raises when that step runs (``equinox.error_if`` under jit).
      rescale_dual: rescale u when λ changes (Boyd §3.4.1).
      projection_method: ``"dual"`` or ``"primal"``, see :mod:`cljax.projection._operator`.
      projection_max_iter: Newton cap inside each z-step.
      tol: freeze the iterate once both residuals are ≤ tol (``None``: never).
    """

    prox: Any
    schedule: Callable[[jax.Array], jax.Array] | float = 1.0
    rescale_dual: bool = True
    projection_method: str = "dual"
    projection_max_iter: int = 50
    tol: float | None = None

    def __post_init__(self):
        schedule = self.schedule
        if not callable(schedule):
            if isinstance(schedule, (str, bytes, bool)) or schedule is None:
                raise TypeError(f"schedule must be a number > 0 or a callable k -> λ_k, "
                                f"got {schedule!r}")
            checks.check_positive(schedule, "schedule")
        check_tol(self.tol)

    def _step_size(self, k):
        """λ_k, checked finite and > 0 (eagerly, or at run time under jit)."""
        if not callable(self.schedule):
            return jnp.asarray(self.schedule)
        lam = jnp.asarray(self.schedule(k))
        message = "schedule(k) must be finite and > 0 (the ADMM step size λ_k)"
        if checks.is_concrete(lam) and checks.is_concrete(k):
            if not np.all(np.isfinite(np.asarray(lam)) & (np.asarray(lam) > 0)):
                raise ValueError(f"{message}; schedule({int(k)}) = {np.asarray(lam)}")
            return lam
        return eqx.error_if(lam, ~(jnp.isfinite(lam) & (lam > 0)), message)

    def _project(self, task, glob, eps):
        return project_cross_learning(task, glob, eps, global_weight=1.0,
                                      method=self.projection_method,
                                      max_iter=self.projection_max_iter)

    def init(self, task_params: PyTree, eps, global_params: PyTree | None = None) -> ADMMState:
        """Start from x = task_params, z = P_C(x), u = 0.

        ``global_params`` defaults to the mean of the task parameters.
        """
        _, global_params = checks.task_and_global(task_params, global_params)
        eps = checks.check_eps(eps)
        proj = self._project(task_params, global_params, eps)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, task_params)
        dtype = tu.dtype_of(task_params)
        return ADMMState(
            task_params=proj.task_params, global_params=proj.global_params,
            x=task_params, x_global=global_params,
            u=zeros, u_global=jax.tree_util.tree_map(jnp.zeros_like, global_params),
            step_size=self._step_size(0).astype(dtype),
            iteration=jnp.asarray(0, jnp.int32),
            primal_residual=jnp.asarray(jnp.inf, dtype),
            dual_residual=jnp.asarray(jnp.inf, dtype),
            converged=jnp.asarray(False),
        )

    def step(self, state: ADMMState, data: Any, eps) -> tuple[ADMMState, ADMMInfo]:
        """One ADMM iteration; ``data`` has a leading task axis on every leaf.

        Returns (state, info).  With ``tol`` set, a converged state is returned as is.
        """
        tol = self.tol
        lam = state.step_size
        v = tu.sub(state.task_params, state.u)
        x = jax.vmap(self.prox.solve, in_axes=(0, 0, None, 0))(state.x, v, lam, data)
        x_global = tu.sub(state.global_params, state.u_global)
        proj = self._project(tu.add(x, state.u), tu.add(x_global, state.u_global), eps)
        z, z_global = proj.task_params, proj.global_params
        u = tu.add(state.u, tu.sub(x, z))
        u_global = tu.add(state.u_global, tu.sub(x_global, z_global))
        primal = tu.safe_sqrt(tu.sq_norm(tu.sub(x, z)) + tu.sq_norm(tu.sub(x_global, z_global)))
        dual = tu.safe_sqrt(tu.sq_norm(tu.sub(z, state.task_params))
                            + tu.sq_norm(tu.sub(z_global, state.global_params))) / lam
        k = state.iteration + 1
        lam_next = self._step_size(k).astype(lam.dtype)
        if self.rescale_dual:
            ratio = lam_next / lam
            u, u_global = tu.scale(ratio, u), tu.scale(ratio, u_global)
        converged = jnp.asarray(False) if tol is None else (primal <= tol) & (dual <= tol)
        new = ADMMState(z, z_global, x, x_global, u, u_global, lam_next, k,
                        primal, dual, converged)
        if tol is not None:
            new = jax.tree_util.tree_map(lambda a, b: jnp.where(state.converged, a, b),
                                         state, new)
        info = ADMMInfo(jax.vmap(self.prox.loss)(new.task_params, data),
                        new.primal_residual, new.dual_residual, new.step_size)
        return new, info

    def run(self, task_params: PyTree, data: Any, eps, num_steps: int,
            global_params: PyTree | None = None) -> tuple[ADMMState, ADMMInfo]:
        """``num_steps`` iterations in a ``lax.scan``; returns (state, info history).

        The feasible answer is ``state.task_params`` (and ``state.global_params``);
        ``state.x`` equals it at convergence.
        """
        num_steps = check_num_steps(num_steps)
        state = self.init(task_params, eps, global_params)
        return lax.scan(lambda s, _: self.step(s, data, eps), state, None, length=num_steps)
