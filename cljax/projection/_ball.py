"""Euclidean projection onto a ball of pytrees."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from cljax._src import tree as tu
from cljax._src.checks import check_eps, check_float_leaves
from cljax.projection._terms import ball_scale as ball_scale  # re-exported (methods use it)


def scaled_norm(tree):
    """‖tree‖ over every leaf, without overflow or underflow.

    The leaves are divided by a power of two near max |entry| before squaring
    (exact), so the norm of [1e20, 0] in float32 is 1e20, not inf, and that of
    [1e-20, 0] is 1e-20, not 0.  Safe (finite gradient) at 0.
    """
    leaves = jax.tree_util.tree_leaves(tree)
    big = functools.reduce(jnp.maximum, [jnp.max(jnp.abs(x)) for x in leaves])
    ok = jnp.isfinite(big) & (big > 0)
    unit = lax.stop_gradient(
        jnp.where(ok, jnp.exp2(jnp.round(jnp.log2(jnp.where(ok, big, 1.0)))), 1.0))
    return unit * tu.norm([x / unit.astype(x.dtype) for x in leaves])


def project_l2_ball(tree, center, radius):
    """Project ``tree`` onto the ball {x : ‖x − center‖ ≤ radius}.

    P(x) = center + (x − center) · min(1, radius / ‖x − center‖), where the norm
    runs over every leaf of the pytree (scaled before squaring: no overflow or
    underflow in any precision).  Branch-free, so it works under ``jit``,
    ``vmap`` and ``grad``; values and gradients are finite at ``tree == center``.
    ``radius = inf`` returns ``tree``; ``radius = 0`` returns ``center``.
    """
    check_float_leaves(tree, "tree")
    leaves = jax.tree_util.tree_leaves(tree)
    if jax.tree_util.tree_structure(tree) != jax.tree_util.tree_structure(center):
        raise ValueError("center does not match the structure of tree")
    for path, (x, c) in zip(
        [p for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]],
        zip(leaves, jax.tree_util.tree_leaves(center)),
    ):
        if jnp.shape(x) != jnp.shape(c):
            raise ValueError(f"center{jax.tree_util.keystr(path)} has shape {jnp.shape(c)}, "
                             f"expected {jnp.shape(x)}")
    radius = check_eps(radius, "radius")
    diff = tu.sub(tree, center)
    dist = scaled_norm(diff)
    s = ball_scale(dist, jnp.asarray(radius, dist.dtype))
    return jax.tree_util.tree_map(lambda c, d: (c + s * d).astype(d.dtype), center, diff)
