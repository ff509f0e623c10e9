"""Primal-dual learning for functional cross-learning, P_CLF (paper Algorithm 2; DESIGN §4).

With per-task data batches (x_t, y_t), losses ℓ̄_t and constraint values ḡ_t,

    ℓ̄_t = mean_i ℓ(f(x_ti, θ_t), y_ti),   ḡ_t = mean_i d(f(x_ti, θ_t), f(x_ti, θ_g)),

the primal step descends, through any optax transformation, the Lagrangian

    L_ρ(θ, λ) = (1/T) Σ_t ℓ̄_t + Σ_t ψ_ρ(ḡ_t − ε, λ_t),
    ψ_0(s, λ) = λ s,     ψ_ρ(s, λ) = (ρ/2)([s + λ/ρ]₊² − (λ/ρ)²)   (ρ > 0),

on every θ_t and on θ_g (θ_g gets gradient only through the constraints).  ρ = 0 is
the paper's Lagrangian; ρ > 0 the augmented Lagrangian.  The dual step is an optax
transformation on λ projected onto λ ≥ 0 (:mod:`cljax.solvers._dual`), fed with
ĝ_t − ε, where ĝ_t averages ḡ_t over the steps since the last dual update (an epoch,
or every k steps with ``dual_every=k``).

The default (no ``dual_step_size``, no ``dual``), :func:`method_of_multipliers` with
ρ = 1, converges on convex problems
where the paper's plain ascent (:func:`paper_dual_ascent`, η_D = 10) stalls: the
penalty makes L_ρ strongly convex along the constraint gradients, so one primal
gradient step and λ ← [λ + ρ (g − ε)]₊ contract to the saddle point (a linearised
method of multipliers), while plain simultaneous descent-ascent keeps rotating
around it.  See docs/solvers.md for the measured steps to 1e-4.

Reading λ: λ_t = 0 means the constraint of task t is inactive; λ_t growing
without bound means it cannot be met.

**Resilient constraints** (Hounie, Ribeiro, Chamon et al., "Resilient Constrained
Learning", NeurIPS 2023), with ``resilience=α``: each constraint is relaxed to
ḡ_t ≤ ε + u_t at a cost h(u_t) = α u_t²/2, and the relaxation is learned with θ and λ,

    min_{θ, u} max_{λ ≥ 0}  (1/T) Σ_t ℓ̄_t + Σ_t h(u_t) + Σ_t λ_t (ḡ_t − ε − u_t).

u is minimised exactly inside the (augmented) Lagrangian, so the primal step descends
ψ^α_ρ(s, λ) = min_u h(u) + ψ_ρ(s − u, λ):

    ψ^α_0(s, λ) = λ s − λ²/(2α),   ψ^α_ρ(s, λ) = (αρ/(2(α + ρ))) [s + λ/ρ]₊² − λ²/(2ρ),

and the dual step is fed with the relaxed error ĝ_t − ε − u_t, with u_t the minimiser
(λ_t/α for ρ = 0; ρ [ĝ_t − ε + λ_t/ρ]₊/(α + ρ) for ρ > 0).  With the method of
multipliers this is λ_t ← (α/(α + ρ)) [λ_t + ρ (ĝ_t − ε)]₊.  At the saddle point
h'(u_t) = α u_t = λ_t: the learned relaxation is u_t = λ_t/α (:meth:`PrimalDual.relaxation`),
and the residuals (violation, complementarity) are those of ḡ_t ≤ ε + λ_t/α.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from cljax._src import checks as checks
from cljax._src import tree as tu
from cljax.solvers._distances import l1_distance
from cljax.solvers._dual import DualUpdate, method_of_multipliers, paper_dual_ascent
from cljax.solvers._validate import check_num_steps, check_tol

PyTree = Any

#: ρ of the default :func:`method_of_multipliers` update.
DEFAULT_PENALTY = 1.0


class PrimalDualState(NamedTuple):
    """Iterate of Algorithm 2.  ``constraint_sum``/``num_accumulated`` average ḡ_t.

    ``dual_opt_state`` is the state of the dual optax transformation; a state built
    without it (``None``) starts the transformation afresh at the next dual update.
    ``stationarity``, ``violation``, ``complementarity`` are the residuals of the
    iterate (measured by the last :meth:`PrimalDual.step`, see :class:`PrimalDualInfo`);
    ``converged`` is set once all three are ≤ ``tol``.
    """

    task_params: PyTree
    global_params: PyTree
    opt_state: Any
    duals: jax.Array  # (T,) λ_t ≥ 0
    constraint_sum: jax.Array  # (T,)
    num_accumulated: jax.Array
    iteration: jax.Array
    dual_opt_state: Any = None
    stationarity: Any = float("inf")
    violation: Any = float("inf")
    complementarity: Any = float("inf")
    converged: Any = False


class PrimalDualInfo(NamedTuple):
    """What one step logs, at the iterate (θ_k, λ_k) the step starts from.

    ``loss`` (T,) ℓ̄_t; ``constraints`` (T,) ḡ_t; ``slack`` ḡ_t − ε; ``duals`` λ after
    the step; and the residuals ``stationarity`` ‖∇_θ L_ρ(θ_k, λ_k)‖ (all of θ_1..θ_T,
    θ_g), ``violation`` max_t [ḡ_t − ε]₊ and ``complementarity`` max_t λ_t |ḡ_t − ε|
    (with ``resilience``, ε + λ_t/α in place of ε in both).
    """

    loss: jax.Array
    constraints: jax.Array
    slack: jax.Array
    duals: jax.Array
    stationarity: jax.Array
    violation: jax.Array
    complementarity: jax.Array


@dataclass(frozen=True)
class PrimalDual:
    """Algorithm 2 with a choice of multiplier update and a stopping rule.

    Args:
      apply_fn: ``apply_fn(params, x) -> outputs`` for one network.
      loss_fn: ``loss_fn(outputs, y) -> (B,)`` per-example losses.
      optimizer: optax transformation for the primal step on (θ_1..θ_T, θ_g);
        the paper uses SGD with η_P = 0.003.
      dual_step_size: η_D of plain projected ascent on the plain Lagrangian,
        λ ← [λ + η_D (ĝ − ε)]₊, the paper's rule (shorthand for
        ``dual=paper_dual_ascent(η_D)``; the paper uses 10); give it or ``dual``,
        not both.  With neither, the default :func:`method_of_multipliers` with
        ρ = ``DEFAULT_PENALTY`` = 1.
      distance: ``distance(out_t, out_g) -> (B,)``; default L1 between outputs.
      dual_every: update λ every k steps inside ``step``; ``None`` leaves it
        to the caller (:meth:`dual_update` at the end of each epoch).  ``run``
        uses k = 1 when it is ``None``.
      dual: a :class:`DualUpdate` from :mod:`cljax.solvers._dual`, e.g.
        ``paper_dual_ascent()`` for the paper (η_D = 10 per epoch, ρ = 0).
      tol: freeze the iterate once stationarity, violation and complementarity
        are all ≤ ``tol`` (full-batch use; ``None``: never).
      resilience: α > 0 of the resilient relaxation ḡ_t ≤ ε + u_t at cost α u_t²/2
        (module docstring); ``None`` (default): the constraints are not relaxed.
    """

    apply_fn: Callable[[PyTree, Any], Any]
    loss_fn: Callable[[Any, Any], jax.Array]
    optimizer: optax.GradientTransformation
    dual_step_size: float | None = None
    distance: Callable[[Any, Any], jax.Array] = l1_distance
    dual_every: int | None = None
    dual: DualUpdate | None = None
    tol: float | None = None
    resilience: float | None = None

    def __post_init__(self):
        every = self.dual_every
        if every is not None and (isinstance(every, bool)
                                  or not isinstance(every, (int, np.integer)) or every < 1):
            raise ValueError(f"dual_every must be a positive int or None, got {every!r}")
        if self.dual is not None and self.dual_step_size is not None:
            raise ValueError("give dual_step_size (plain ascent with that step) or dual, "
                             "not both")
        if self.dual_step_size is not None:
            checks.check_positive(self.dual_step_size, "dual_step_size")
        if self.dual is not None and not isinstance(self.dual, DualUpdate):
            raise TypeError(f"dual must be a DualUpdate (see cljax.solvers.paper_dual_ascent), "
                            f"got {type(self.dual).__name__}")
        check_tol(self.tol)
        if self.resilience is not None:
            checks.check_positive(self.resilience, "resilience")

    @property
    def dual_rule(self) -> DualUpdate:
        """The :class:`DualUpdate` in use."""
        if self.dual is not None:
            return self.dual
        if self.dual_step_size is not None:
            return paper_dual_ascent(self.dual_step_size)
        return method_of_multipliers(DEFAULT_PENALTY)

    def init(self, task_params: PyTree, eps, global_params: PyTree | None = None,
             duals=None) -> PrimalDualState:
        """λ = 0 (or ``duals``); θ_g defaults to the mean of the task parameters.

        ``eps`` is checked here (ε ≥ 0); the iterate does not depend on it.
        """
        t, global_params = checks.task_and_global(task_params, global_params)
        checks.check_eps(eps)
        dtype = tu.dtype_of(task_params)
        if duals is None:
            duals = jnp.zeros((t,), dtype)
        duals = checks.check_weights(jnp.asarray(duals, dtype), t, "duals", allow_zero=True)
        params = (task_params, global_params)
        inf = jnp.asarray(jnp.inf, dtype)
        return PrimalDualState(task_params, global_params, self.optimizer.init(params),
                               duals, jnp.zeros((t,), dtype), jnp.asarray(0, jnp.int32),
                               jnp.asarray(0, jnp.int32), self.dual_rule.optimizer.init(duals),
                               inf, inf, inf, jnp.asarray(False))

    def task_terms(self, task_params, global_params, batch):
        """(T,) mean losses ℓ̄_t and constraint values ḡ_t on a per-task batch."""
        x, y = batch

        def one(params_t, x_t, y_t):
            out_t = self.apply_fn(params_t, x_t)
            out_g = self.apply_fn(global_params, x_t)
            return jnp.mean(self.loss_fn(out_t, y_t)), jnp.mean(self.distance(out_t, out_g))

        return jax.vmap(one)(task_params, x, y)

    def lagrangian(self, task_params, global_params, duals, batch, eps):
        """L_ρ(θ, λ) (ρ of :attr:`dual_rule`; ρ = 0: the plain Lagrangian) and its
        per-task terms (losses, constraint values)."""
        losses, constraints = self.task_terms(task_params, global_params, batch)
        rho = self.dual_rule.penalty
        alpha = self.resilience
        slack = constraints - eps
        if rho == 0:
            penalty = duals * slack
            if alpha is not None:  # min_u αu²/2 − λu = −λ²/(2α)
                penalty = penalty - jnp.square(duals) / (2 * alpha)
        elif alpha is None:  # ((λ + ρ s)₊² − λ²) / (2ρ) = ψ_ρ(s, λ); gradient in s: [λ + ρ s]₊
            penalty = (jnp.square(jnp.maximum(duals + rho * slack, 0.0)) - jnp.square(duals)) / (2 * rho)
        else:  # ψ^α_ρ; gradient in s: (α/(α + ρ)) [λ + ρ s]₊
            penalty = (alpha / (alpha + rho) * jnp.square(jnp.maximum(duals + rho * slack, 0.0))
                       - jnp.square(duals)) / (2 * rho)
        return jnp.mean(losses) + jnp.sum(penalty), (losses, constraints)

    def relaxation(self, duals, slack=None):
        """The relaxation u_t of the resilient constraints ḡ_t ≤ ε + u_t (zeros without
        ``resilience``).

        Without ``slack``: u_t = λ_t/α, the saddle-point relation h'(u_t) = λ_t.  With
        ``slack`` s_t = ĝ_t − ε: the minimiser of h(u) + ψ_ρ(s − u, λ) that the dual step
        uses, ρ [s_t + λ_t/ρ]₊/(α + ρ) (λ_t/α when ρ = 0).
        """
        alpha = self.resilience
        if alpha is None:
            return jnp.zeros_like(duals)
        rho = self.dual_rule.penalty
        if slack is None or rho == 0:
            return duals / alpha
        return rho * jnp.maximum(slack + duals / rho, 0.0) / (alpha + rho)

    def dual_update(self, state: PrimalDualState, eps) -> PrimalDualState:
        """λ ← [λ + u]₊ with (u, ·) = dual optimiser(−(ĝ − ε)), ĝ the average since the
        last update (with the default, λ_t ← [λ_t + ρ (ĝ_t − ε)]₊).  With ``resilience``
        the error is ĝ − ε − u, u from :meth:`relaxation`."""
        eps = checks.check_eps(eps)
        rule = self.dual_rule
        dual_opt_state = state.dual_opt_state
        if dual_opt_state is None:
            dual_opt_state = rule.optimizer.init(state.duals)
        count = jnp.maximum(state.num_accumulated, 1).astype(state.duals.dtype)
        error = state.constraint_sum / count - eps
        error = error - self.relaxation(state.duals, error)
        updates, new_opt_state = rule.optimizer.update(-error, dual_opt_state, state.duals)
        raised = jnp.maximum(state.duals + updates, 0.0)
        due = state.num_accumulated > 0
        duals = jnp.where(due, raised, state.duals)
        new_opt_state = jax.tree_util.tree_map(lambda a, b: jnp.where(due, a, b),
                                               new_opt_state, dual_opt_state)
        return state._replace(duals=duals, dual_opt_state=new_opt_state,
                              constraint_sum=jnp.zeros_like(state.constraint_sum),
                              num_accumulated=jnp.zeros_like(state.num_accumulated))

    def step(self, state: PrimalDualState, data, eps) -> tuple[PrimalDualState, PrimalDualInfo]:
        """A primal step on per-task data ``(x, y)`` (a batch), each with leading axis T
        (and a dual step when ``dual_every`` says so).

        With ``tol`` set, a state whose residuals are all ≤ ``tol`` is returned as is,
        with ``converged=True``.
        """
        eps = checks.check_eps(eps)
        if state.dual_opt_state is None:
            state = state._replace(dual_opt_state=self.dual_rule.optimizer.init(state.duals))

        def objective(params):
            return self.lagrangian(params[0], params[1], state.duals, data, eps)

        params = (state.task_params, state.global_params)
        (_, (losses, constraints)), grads = jax.value_and_grad(objective, has_aux=True)(params)
        slack = constraints - eps
        relaxed = slack - self.relaxation(state.duals)  # ḡ − ε − λ/α (resilient), else ḡ − ε
        stationarity = tu.norm(grads)
        violation = jnp.max(jnp.maximum(relaxed, 0.0))
        complementarity = jnp.max(jnp.abs(jnp.where(state.duals > 0, state.duals * relaxed, 0.0)))
        updates, opt_state = self.optimizer.update(grads, state.opt_state, params)
        task_params, global_params = optax.apply_updates(params, updates)
        new = state._replace(task_params=task_params, global_params=global_params,
                             opt_state=opt_state,
                             constraint_sum=state.constraint_sum + constraints,
                             num_accumulated=state.num_accumulated + 1,
                             iteration=state.iteration + 1)
        if self.dual_every is not None:
            due = new.iteration % self.dual_every == 0
            new = tu.where(due, self.dual_update(new, eps), new)
        dtype = state.duals.dtype
        new = new._replace(stationarity=stationarity.astype(dtype),
                           violation=violation.astype(dtype),
                           complementarity=complementarity.astype(dtype),
                           converged=jnp.asarray(False))
        if self.tol is not None:
            done = (stationarity <= self.tol) & (violation <= self.tol) & (complementarity <= self.tol)
            done = done | jnp.asarray(state.converged)
            frozen = state._replace(stationarity=new.stationarity, violation=new.violation,
                                    complementarity=new.complementarity,
                                    converged=jnp.asarray(True))
            new = tu.where(done, _as_arrays(frozen), _as_arrays(new))
        info = PrimalDualInfo(losses, constraints, slack, new.duals, stationarity, violation,
                              complementarity)
        return new, info

    def run(self, task_params: PyTree, data, eps, num_steps: int,
            global_params: PyTree | None = None):
        """``num_steps`` full-batch steps in a ``lax.scan`` (dual per ``dual_every``,
        default every step); returns (state, info history).

        With ``tol`` the iterate freezes at the first step whose residuals are all ≤ tol
        (``state.converged``); ``info`` keeps the residuals of every step.
        """
        num_steps = check_num_steps(num_steps)
        solver = self if self.dual_every is not None else replace(self, dual_every=1)
        state = solver.init(task_params, eps, global_params)
        return lax.scan(lambda s, _: solver.step(s, data, eps), state, None, length=num_steps)


def _as_arrays(state: PrimalDualState) -> PrimalDualState:
    return state._replace(converged=jnp.asarray(state.converged))


__all__ = ["PrimalDual", "PrimalDualState", "PrimalDualInfo", "DEFAULT_PENALTY"]
