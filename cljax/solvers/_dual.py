"""Multiplier updates for :class:`cljax.solvers.PrimalDual` (DESIGN §4).

A dual update is an optax transformation acting on the multipliers λ (shape (T,)),
followed by the projection onto λ ≥ 0, plus the penalty ρ of the Lagrangian the
primal step descends (ρ = 0: the plain Lagrangian of the paper; ρ > 0: the
augmented Lagrangian).  optax minimises, so the transformation receives the
gradient of −L in λ, −(ĝ_t − ε), and the multiplier update is

    λ ← [λ + u]₊,   (u, state) = optimizer.update(−(ĝ − ε), state, λ).

With ``optax.sgd(η)`` this is projected ascent λ ← [λ + η (ĝ − ε)]₊.

Presets, side by side in ``benchmarks/bench_primal_dual.py``:

* :func:`method_of_multipliers` (the default of PrimalDual): the augmented
  Lagrangian with penalty ρ and the multiplier update λ ← [λ + ρ (g − ε)]₊.
* :func:`paper_dual_ascent`: the paper's Algorithm 2, plain projected ascent
  with η_D = 10, on the plain Lagrangian (ρ = 0).
* :func:`momentum_ascent`: projected ascent with Polyak (heavy-ball) momentum.
* :func:`nupi_ascent`: the νPI controller (Sohrabi et al. 2024; ``cooper.optim.nuPI``).
* :func:`optimistic_ascent`: optimistic gradient ascent (Popov 1980), the
  one-evaluation form of extragradient: νPI with K_P = K_I = 1, ν = 0.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from cljax._src import checks as checks


class DualUpdate(NamedTuple):
    """A multiplier update: an optax ``optimizer`` on λ and the penalty ρ ≥ 0.

    Attributes:
      optimizer: optax transformation fed with −(ĝ − ε); its update is projected
        onto λ ≥ 0.
      penalty: ρ of the augmented Lagrangian the primal step uses (0: plain).
      name: a label for logs and benchmarks.
    """

    optimizer: optax.GradientTransformation
    penalty: float = 0.0
    name: str = "custom"


def method_of_multipliers(penalty: float = 1.0) -> DualUpdate:
    """Augmented Lagrangian, λ_t ← [λ_t + ρ (g_t − ε)]₊ (DESIGN §4).

    The primal step descends L_ρ = (1/T) Σ ℓ̄_t + Σ_t (ρ/2)([g_t − ε + λ_t/ρ]₊² − (λ_t/ρ)²),
    whose gradient in θ is that of the plain Lagrangian at the look-ahead
    multiplier [λ_t + ρ (g_t − ε)]₊.  The penalty makes the primal problem
    strongly convex in the directions that move g_t, which damps the
    oscillation of plain descent-ascent.
    """
    checks.check_positive(penalty, "penalty")
    return DualUpdate(optax.sgd(penalty), float(penalty), "method_of_multipliers")


def paper_dual_ascent(step_size: float = 10.0) -> DualUpdate:
    """The paper's Algorithm 2: λ_t ← [λ_t + η_D (ĝ_t − ε)]₊, η_D = 10, plain Lagrangian.

    The paper applies it once per epoch (``dual_every=None`` and
    :meth:`PrimalDual.dual_update` after each epoch).  On convex problems it
    stalls far from the saddle point (issue 17); kept for reproduction.
    """
    checks.check_positive(step_size, "step_size")
    return DualUpdate(optax.sgd(step_size), 0.0, "paper_dual_ascent")


def momentum_ascent(step_size: float, momentum: float = 0.9, penalty: float = 0.0) -> DualUpdate:
    """Projected ascent with heavy-ball momentum β: v ← β v + (ĝ − ε), λ ← [λ + η v]₊."""
    checks.check_positive(step_size, "step_size")
    _check_unit_interval(momentum, "momentum")
    _check_penalty(penalty)
    return DualUpdate(optax.sgd(step_size, momentum=momentum), float(penalty), "momentum_ascent")


def nupi(learning_rate: float, kp: float = 1.0, ki: float = 1.0,
         ema_nu: float = 0.0) -> optax.GradientTransformation:
    """The νPI controller as an optax transformation (Sohrabi et al. 2024, Algorithm 1).

    With error e_k (the gradient it receives) and an exponential average ξ:

        ξ_k = ν ξ_{k−1} + (1 − ν) e_k,     u_k = −η (K_I e_k + K_P (ξ_k − ξ_{k−1})),

    started with ξ_{−1} = e_0, so the first update is SGD's, −η K_I e_0.  K_P = 0
    is SGD; K_P = K_I = 1 with ν = 0 is the optimistic gradient method.
    """
    checks.check_positive(learning_rate, "learning_rate")
    _check_unit_interval(ema_nu, "ema_nu")
    for value, name in ((kp, "kp"), (ki, "ki")):
        if not (jnp.ndim(value) == 0 and float(value) >= 0 and jnp.isfinite(value)):
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")

    class NuPIState(NamedTuple):
        xi: jax.Array
        count: jax.Array

    def init(params):
        return NuPIState(jax.tree_util.tree_map(jnp.zeros_like, params),
                         jnp.zeros([], jnp.int32))

    def update(errors, state, params=None):
        del params
        first = state.count == 0
        previous = jax.tree_util.tree_map(lambda x, e: jnp.where(first, e, x), state.xi, errors)
        xi = jax.tree_util.tree_map(lambda p, e: ema_nu * p + (1 - ema_nu) * e, previous, errors)
        updates = jax.tree_util.tree_map(
            lambda e, x, p: -learning_rate * (ki * e + kp * (x - p)), errors, xi, previous)
        return updates, NuPIState(xi, state.count + 1)

    return optax.GradientTransformation(init, update)


def nupi_ascent(step_size: float, kp: float = 1.0, ki: float = 1.0, ema_nu: float = 0.0,
                penalty: float = 0.0) -> DualUpdate:
    """Projected νPI ascent on λ (cooper's ``nuPI`` used as the dual optimiser)."""
    _check_penalty(penalty)
    return DualUpdate(nupi(step_size, kp, ki, ema_nu), float(penalty), "nupi_ascent")


def optimistic_ascent(step_size: float, penalty: float = 0.0) -> DualUpdate:
    """Optimistic projected ascent, λ ← [λ + η (2 e_k − e_{k−1})]₊ with e = ĝ − ε (first: η e_0)."""
    checks.check_positive(step_size, "step_size")
    _check_penalty(penalty)
    return DualUpdate(optax.optimistic_gradient_descent(step_size), float(penalty),
                      "optimistic_ascent")


def _check_unit_interval(value, name):
    if not (jnp.ndim(value) == 0 and 0 <= float(value) < 1):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def _check_penalty(penalty):
    if not (jnp.ndim(penalty) == 0 and float(penalty) >= 0 and jnp.isfinite(penalty)):
        raise ValueError(f"penalty must be finite and >= 0, got {penalty!r}")
