"""Dual-encoder multi-task learning (Sui, Xu, Bai and Qu, arXiv 2505.24281; DESIGN §7).

Task r (r = 1..T) predicts

    f_r(x) = α_rᵀ S_r(x) + β_rᵀ C(x) + b_r,

with a task-specific encoder S_r, a shared encoder C (both flax Linen MLPs) and
linear heads α_r, β_r.  The objective is

    (1/T) Σ_r (1/N_r) Σ_i (y_ri − f_r(x_ri))²
      + λ_α Σ_r ‖α_r − ᾱ‖₂ + λ_β Σ_r ‖β_r − β̄‖₂          (heads pulled to centres)
      + γ (1/T) Σ_r ‖S̄_rᵀ C̄_r‖_F² / N_r²                  (orthogonality penalty)

where S̄_r, C̄_r are the column-centred encodings of task r's inputs.  Training
alternates, inside one ``lax.scan``:

1. an optax AdamW step on the encoders (loss + orthogonality penalty; the
   default weight decay is strong, see :class:`DualEncoderConfig`);
2. a proximal gradient step on the heads: a gradient step of size τ on the
   loss, then group soft-thresholding toward the centre,
   prox(v) = c + (v − c)·(1 − τλ/‖v − c‖)₊;
3. one Weiszfeld step for each centre (toward the geometric median of the
   heads, the exact minimiser of Σ_r ‖α_r − c‖ over c).

Ablations: ``use_task=False`` (shared encoder only), ``use_shared=False`` (task
encoders only).  Baselines: single-task (task encoders, λ = 0) and pooled (one
shared network, heads tied: ``tie_heads=True``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from cljax.projection._ball import ball_scale
from cljax._src.tree import per_task_distance


# ---------------------------------------------------------------------------
# The two penalties.

def group_soft_threshold(v, centre, threshold):
    """prox of threshold·‖· − c‖₂ at v (rows of v are groups): c + (v − c)(1 − t/‖v − c‖)₊.

    By Moreau's decomposition this is v minus the projection of v − c onto the
    ball of radius t: v − (v − c)·min(1, t/‖v − c‖) (:func:`cljax.ball.ball_scale`).
    ``v`` has shape (T, q), ``centre`` (q,); safe (finite gradient) at v = c.
    """
    scale = ball_scale(per_task_distance(v, centre), threshold)
    return v - scale[:, None] * (v - centre)


def weiszfeld_step(points, centre, floor=1e-8):
    """One Weiszfeld step toward the geometric median of the rows of ``points``."""
    dist = jnp.maximum(per_task_distance(points, centre), floor)
    w = 1.0 / dist
    return jnp.sum(w[:, None] * points, axis=0) / jnp.sum(w)


def orthogonality_penalty(task_codes, shared_codes):
    """‖S̄ᵀ C̄‖_F² / N² for one task's encodings S (N × q1), C (N × q2), column-centred."""
    s = task_codes - jnp.mean(task_codes, axis=0)
    c = shared_codes - jnp.mean(shared_codes, axis=0)
    n = task_codes.shape[0]
    return jnp.sum((s.T @ c) ** 2) / n**2


# ---------------------------------------------------------------------------
# Model.

def _encoder(hidden: tuple[int, ...], width: int):
    import flax.linen as nn

    class Encoder(nn.Module):
        """MLP x ↦ latent factors (tanh hidden layers, tanh output)."""

        @nn.compact
        def __call__(self, x):
            for h in hidden:
                x = nn.tanh(nn.Dense(h)(x))
            return nn.tanh(nn.Dense(width)(x))

    return Encoder()


@dataclass(frozen=True)
class DualEncoderConfig:
    """Hyper-parameters (hashable, so a config can be a static jit argument).

    The defaults (hidden width 16, task width 2, shared width 8, λ = 0.01, γ = 1,
    AdamW with learning rate 1e-2 and weight decay 3.0, 1000 steps) were tuned by
    hand on 3 seeds of the simulated design (:func:`heterogeneous_regression`,
    T = 6, N = 30, p = 5); they are not from the paper.  The weight decay is
    strong: optax's decoupled decay multiplies every encoder weight by
    (1 − lr·wd) = 0.97 per step; with less, every network overfits 30 samples.
    It applies to the encoders only (the heads get the group penalty).  The
    single-task, pooled and functional-CL MLP baselines of ``cljax compare``
    inherit these values, so all networks share one regularisation.
    """

    hidden: tuple[int, ...] = (16,)
    task_width: int = 2
    shared_width: int = 8
    use_task: bool = True
    use_shared: bool = True
    tie_heads: bool = False
    lam_alpha: float = 0.01
    lam_beta: float = 0.01
    orthogonality: float = 1.0
    learning_rate: float = 1e-2
    weight_decay: float = 3.0
    head_step: float = 0.1
    num_steps: int = 1000

    def __post_init__(self):
        if not (self.use_task or self.use_shared):
            raise ValueError("DualEncoderConfig: at least one of use_task, use_shared must be True")
        for name in ("lam_alpha", "lam_beta", "orthogonality", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"DualEncoderConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("learning_rate", "head_step"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DualEncoderConfig.{name} must be > 0, got {getattr(self, name)}")


class DualEncoderParams(NamedTuple):
    task_encoders: dict  # leaves with a leading task axis
    shared_encoder: dict
    alpha: jax.Array  # (T, q1)
    beta: jax.Array  # (T, q2)
    bias: jax.Array  # (T,)
    alpha_centre: jax.Array  # (q1,)
    beta_centre: jax.Array  # (q2,)


def init_params(key, num_tasks: int, num_features: int, config: DualEncoderConfig,
                dtype=jnp.float32) -> DualEncoderParams:
    kt, ks, ka, kb = jax.random.split(key, 4)
    x0 = jnp.zeros((1, num_features), dtype)
    task_enc = _encoder(config.hidden, config.task_width)
    shared_enc = _encoder(config.hidden, config.shared_width)
    task_params = jax.vmap(task_enc.init, in_axes=(0, None))(jax.random.split(kt, num_tasks), x0)
    shared_params = shared_enc.init(ks, x0)
    alpha = 0.1 * jax.random.normal(ka, (num_tasks, config.task_width), dtype)
    beta = 0.1 * jax.random.normal(kb, (num_tasks, config.shared_width), dtype)
    return DualEncoderParams(task_params, shared_params, alpha, beta,
                             jnp.zeros((num_tasks,), dtype),
                             jnp.mean(alpha, axis=0), jnp.mean(beta, axis=0))


def encodings(params: DualEncoderParams, x, config: DualEncoderConfig):
    """(S_r(x_r), C(x_r)) for x of shape (T, N, p): shapes (T, N, q1), (T, N, q2)."""
    task_enc = _encoder(config.hidden, config.task_width)
    shared_enc = _encoder(config.hidden, config.shared_width)
    s = jax.vmap(task_enc.apply)(params.task_encoders, x)
    c = jax.vmap(shared_enc.apply, in_axes=(None, 0))(params.shared_encoder, x)
    return s, c


def predict(params: DualEncoderParams, x, config: DualEncoderConfig):
    """f_r(x_r) for x of shape (T, N, p) → (T, N)."""
    s, c = encodings(params, x, config)
    return predict_from_encodings(params, s, c, config)


def predict_from_encodings(params: DualEncoderParams, s, c, config: DualEncoderConfig):
    """α_rᵀ s + β_rᵀ c + b_r for encodings s (T, N, q1), c (T, N, q2) → (T, N)."""
    out = params.bias[:, None]
    if config.use_task:
        out = out + jnp.einsum("tnq,tq->tn", s, params.alpha)
    if config.use_shared:
        out = out + jnp.einsum("tnq,tq->tn", c, params.beta)
    return out


def data_loss(params, x, y, config):
    """(1/T) Σ_r mean_i (y_ri − f_r(x_ri))²."""
    return jnp.mean((predict(params, x, config) - y) ** 2)


def encoder_objective(params, x, y, config):
    """Data loss + γ · mean_r ‖S̄_rᵀ C̄_r‖_F²/N² (the part the optax step sees)."""
    value = data_loss(params, x, y, config)
    if config.use_task and config.use_shared and config.orthogonality > 0:
        s, c = encodings(params, x, config)
        value = value + config.orthogonality * jnp.mean(jax.vmap(orthogonality_penalty)(s, c))
    return value


def objective(params, x, y, config):
    """The full penalised objective (for monitoring and tests)."""
    value = encoder_objective(params, x, y, config)
    value = value + config.lam_alpha * jnp.sum(per_task_distance(params.alpha, params.alpha_centre))
    return value + config.lam_beta * jnp.sum(per_task_distance(params.beta, params.beta_centre))


# ---------------------------------------------------------------------------
# Training: alternating optax / proximal updates, in one lax.scan.

def head_gradients(params: DualEncoderParams, s, c, y, config: DualEncoderConfig):
    """∇ of the data loss w.r.t. (α, β, b) at fixed encodings s, c (encoders not differentiated)."""

    def loss(heads):
        alpha, beta, bias = heads
        out = predict_from_encodings(params._replace(alpha=alpha, beta=beta, bias=bias),
                                     s, c, config)
        return jnp.mean((out - y) ** 2)

    return jax.grad(loss)((params.alpha, params.beta, params.bias))


def head_update(params: DualEncoderParams, grads, config: DualEncoderConfig):
    """Step 2–3: heads ← prox(heads − τ·grads) (or tied means), centres ← Weiszfeld step.

    ``grads`` = (∇α, ∇β, ∇b) from :func:`head_gradients`.
    """
    tau = config.head_step
    alpha = params.alpha - tau * grads[0]
    beta = params.beta - tau * grads[1]
    bias = params.bias - tau * grads[2]
    if config.tie_heads:
        alpha = jnp.broadcast_to(jnp.mean(alpha, axis=0), alpha.shape)
        beta = jnp.broadcast_to(jnp.mean(beta, axis=0), beta.shape)
        bias = jnp.broadcast_to(jnp.mean(bias), bias.shape)
        return params._replace(alpha=alpha, beta=beta, bias=bias,
                               alpha_centre=alpha[0], beta_centre=beta[0])
    alpha = group_soft_threshold(alpha, params.alpha_centre, tau * config.lam_alpha)
    beta = group_soft_threshold(beta, params.beta_centre, tau * config.lam_beta)
    return params._replace(alpha=alpha, beta=beta, bias=bias,
                           alpha_centre=weiszfeld_step(alpha, params.alpha_centre),
                           beta_centre=weiszfeld_step(beta, params.beta_centre))


def fit(key, x, y, config: DualEncoderConfig = DualEncoderConfig()):
    """Train on per-task data x (T, N, p), y (T, N); returns (params, loss history)."""
    if x.ndim != 3 or y.shape != x.shape[:2]:
        raise ValueError(f"dual encoder needs x of shape (T, N, p) and y of shape (T, N); "
                         f"got x {x.shape}, y {y.shape}")
    t, _, p = x.shape
    params = init_params(key, t, p, config, x.dtype)
    optimizer = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    encoders = (params.task_encoders, params.shared_encoder)
    opt_state = optimizer.init(encoders)

    def body(carry, _):
        params, opt_state = carry

        def enc_obj(enc):
            return encoder_objective(params._replace(task_encoders=enc[0], shared_encoder=enc[1]),
                                     x, y, config)

        enc = (params.task_encoders, params.shared_encoder)
        value, g_enc = jax.value_and_grad(enc_obj)(enc)
        updates, opt_state = optimizer.update(g_enc, opt_state, enc)
        enc = optax.apply_updates(enc, updates)
        params = params._replace(task_encoders=enc[0], shared_encoder=enc[1])
        s, c = encodings(params, x, config)
        params = head_update(params, head_gradients(params, s, c, y, config), config)
        return (params, opt_state), value

    (params, _), history = lax.scan(body, (params, opt_state), None, length=config.num_steps)
    return params, history


