"""Proximal solvers for the ADMM x-step (Algorithm 1, DESIGN §3).

Each solver carries a per-task loss and solves, for one task,

    prox(v) = argmin_θ  L(θ; data) + ‖θ − v‖² / (2 λ),

warm-started at the previous iterate.  ADMM vmaps ``solve`` over tasks.

* :class:`QuadraticProx`: exact for quadratic L, θ = v − (∇²L + I/λ)⁻¹ ∇L(v).
* :class:`OptaxProx`: K steps of any optax optimiser.
* :class:`LeastSquaresProx`: Levenberg–Marquardt on L = ‖r(θ)‖², the residual
  stacked with (θ − v)/√(2λ), with optional box bounds (projected steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.flatten_util import ravel_pytree

PyTree = Any


def _proximal_term(params, anchor, step_size):
    diff = ravel_pytree(params)[0] - ravel_pytree(anchor)[0]
    return jnp.sum(diff**2) / (2.0 * step_size)


@dataclass(frozen=True)
class QuadraticProx:
    """Closed-form prox for a quadratic loss ``loss_fn(params, data) -> scalar``.

    One Newton step from v is exact when L is quadratic:
    θ = v − (∇²L + I/λ)⁻¹ ∇L(v).  The Hessian is formed with autodiff on the
    flattened parameters, so this suits small parameter counts.
    """

    loss_fn: Callable[[PyTree, Any], jax.Array]

    def loss(self, params, data):
        return self.loss_fn(params, data)

    def solve(self, params, anchor, step_size, data):
        del params
        flat, unravel = ravel_pytree(anchor)

        def flat_loss(x):
            return self.loss_fn(unravel(x), data)

        grad = jax.grad(flat_loss)(flat)
        hess = jax.hessian(flat_loss)(flat)
        system = hess + jnp.eye(flat.size, dtype=flat.dtype) / step_size
        return unravel(flat - jnp.linalg.solve(system, grad))


@dataclass(frozen=True)
class OptaxProx:
    """``num_steps`` steps of an optax optimiser on L(θ) + ‖θ − v‖²/(2λ)."""

    loss_fn: Callable[[PyTree, Any], jax.Array]
    optimizer: optax.GradientTransformation
    num_steps: int = 10

    def loss(self, params, data):
        return self.loss_fn(params, data)

    def solve(self, params, anchor, step_size, data):
        def objective(p):
            return self.loss_fn(p, data) + _proximal_term(p, anchor, step_size)

        def body(carry, _):
            p, opt_state = carry
            grads = jax.grad(objective)(p)
            updates, opt_state = self.optimizer.update(grads, opt_state, p)
            return (optax.apply_updates(p, updates), opt_state), None

        (params, _), _ = lax.scan(body, (params, self.optimizer.init(params)), None,
                                  length=self.num_steps)
        return params


@dataclass(frozen=True)
class LeastSquaresProx:
    """Levenberg–Marquardt prox for L(θ) = ‖r(θ; data)‖² (a sum of squares).

    Minimises ‖r(θ)‖² + ‖θ − v‖²/(2λ) = ‖[r(θ); (θ − v)/√(2λ)]‖² with
    ``num_steps`` LM iterations: (JᵀJ + μ I) Δ = −Jᵀ R, a step accepted only
    if it lowers the objective (μ ← μ/3), otherwise μ ← 10 μ.  Bounds
    ``lower``/``upper`` (pytrees like θ, or scalars) are kept by projecting
    every trial point onto the box.
    """

    residual_fn: Callable[[PyTree, Any], Any]
    num_steps: int = 20
    lower: Any = None
    upper: Any = None
    initial_damping: float = 1e-3

    def loss(self, params, data):
        r = ravel_pytree(self.residual_fn(params, data))[0]
        return jnp.sum(r**2)

    def _clip(self, flat, unravel):
        if self.lower is None and self.upper is None:
            return flat
        lo = -jnp.inf if self.lower is None else _flat_bound(self.lower, unravel, flat)
        hi = jnp.inf if self.upper is None else _flat_bound(self.upper, unravel, flat)
        return jnp.clip(flat, lo, hi)

    def solve(self, params, anchor, step_size, data):
        flat0, unravel = ravel_pytree(params)
        anchor_flat = ravel_pytree(anchor)[0]
        scale = 1.0 / jnp.sqrt(2.0 * step_size)

        def residual(x):
            r = ravel_pytree(self.residual_fn(unravel(x), data))[0]
            return jnp.concatenate([r, scale * (x - anchor_flat)])

        def objective(x):
            return jnp.sum(residual(x) ** 2)

        def residual_twice(x):
            r = residual(x)
            return r, r

        def body(carry, _):
            x, mu = carry
            # One forward-mode pass gives the Jacobian and (as aux) the residual.
            jac, res = jax.jacfwd(residual_twice, has_aux=True)(x)
            jtj = jac.T @ jac
            lhs = jtj + mu * jnp.eye(x.size, dtype=x.dtype)
            trial = self._clip(x - jnp.linalg.solve(lhs, jac.T @ res), unravel)
            better = objective(trial) < jnp.sum(res**2)
            x = jnp.where(better, trial, x)
            mu = jnp.where(better, mu / 3.0, mu * 10.0)
            return (x, mu), None

        x0 = self._clip(flat0, unravel)
        mu0 = jnp.asarray(self.initial_damping, flat0.dtype)
        (x, _), _ = lax.scan(body, (x0, mu0), None, length=self.num_steps)
        return unravel(x)


def _flat_bound(bound, unravel, flat):
    if jnp.ndim(bound) == 0 and not isinstance(bound, (dict, list, tuple)):
        return jnp.full_like(flat, bound)
    return ravel_pytree(bound)[0].astype(flat.dtype)
