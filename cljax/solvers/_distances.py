"""Output distances d(f(x, θ_t), f(x, θ_g)) for functional constraints (P_CLF).

Each takes two output batches shaped (B, ...) and returns (B,) per-example
distances; the constraint averages them over the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _flat(out):
    return jnp.reshape(out, (out.shape[0], -1)) if out.ndim > 1 else out[:, None]


def l1_distance(out_task, out_global):
    """Σ_k |f_k(x, θ_t) − f_k(x, θ_g)| per example (the paper's |·|)."""
    return jnp.sum(jnp.abs(_flat(out_task) - _flat(out_global)), axis=1)


def squared_distance(out_task, out_global):
    """Σ_k (f_k(x, θ_t) − f_k(x, θ_g))² per example."""
    return jnp.sum(jnp.square(_flat(out_task) - _flat(out_global)), axis=1)


def softmax_l1_distance(logits_task, logits_global):
    """Σ_k |softmax_k(z_t) − softmax_k(z_g)| per example, in [0, 2] (classifiers)."""
    return l1_distance(jax.nn.softmax(logits_task, axis=-1),
                       jax.nn.softmax(logits_global, axis=-1))
