"""Euclidean projection onto a ball of pytrees."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cljax._src import tree as tu
from cljax._src.checks import check_eps, check_float_leaves


def ball_scale(distance, radius):
    """min(1, radius / distance), branch-free and safe.

    Equal to 1 inside the ball (also for radius = inf) and 0 for radius = 0 (the
    ball is its centre, so the projection is constant there, also at
    distance = 0), with finite values and gradients everywhere.
    """
    outside = distance > radius
    safe_d = jnp.where(outside, distance, 1.0)
    safe_r = jnp.where(outside, radius, 0.0)
    return jnp.where(outside, safe_r / safe_d, jnp.where(radius > 0, 1.0, 0.0))


def project_l2_ball(tree, center, radius):
    """Project ``tree`` onto the ball {x : ‖x − center‖ ≤ radius}.

    P(x) = center + (x − center) · min(1, radius / ‖x − center‖), where the norm
    runs over every leaf of the pytree.  Branch-free, so it works under ``jit``,
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
    s = ball_scale(tu.norm(diff), radius)
    return jax.tree_util.tree_map(lambda c, d: (c + s * d).astype(d.dtype), center, diff)

