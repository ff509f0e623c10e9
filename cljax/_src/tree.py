"""Pytree arithmetic for per-task parameters.

A *task tree* has a leading task axis of length T on every leaf; a *global tree*
has the same structure without that axis.  Norms are Euclidean over the whole
pytree.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any


def safe_sqrt(q):
    """sqrt(max(q, 0)) whose gradient is 0, not inf or NaN, at q <= 0."""
    positive = q > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, q, 1.0)), 0.0)


def sq_norm(tree: PyTree):
    """‖tree‖², summed over every leaf."""
    return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(tree))


def norm(tree: PyTree):
    """‖tree‖, safe (finite gradient) at 0."""
    return safe_sqrt(sq_norm(tree))


def per_task_sq_norm(task_tree: PyTree):
    """(T,) vector of ‖tree_t‖² for a task tree."""
    return sum(
        jnp.sum(jnp.square(leaf).reshape(leaf.shape[0], -1), axis=1)
        for leaf in jax.tree_util.tree_leaves(task_tree)
    )


def per_task_distance(task_tree: PyTree, global_tree: PyTree):
    """(T,) vector of ‖θ_t − θ_g‖, safe at 0."""
    return safe_sqrt(per_task_sq_norm(subtract_global(task_tree, global_tree)))


def subtract_global(task_tree: PyTree, global_tree: PyTree) -> PyTree:
    """θ_t − θ_g for every task (broadcast over the task axis)."""
    return jax.tree_util.tree_map(lambda t, g: t - g[None], task_tree, global_tree)


def broadcast_global(global_tree: PyTree, num_tasks: int) -> PyTree:
    """A task tree whose every task equals ``global_tree``."""
    return jax.tree_util.tree_map(
        lambda g: jnp.broadcast_to(g, (num_tasks,) + jnp.shape(g)), global_tree)


def add(a: PyTree, b: PyTree) -> PyTree:
    return jax.tree_util.tree_map(jnp.add, a, b)


def sub(a: PyTree, b: PyTree) -> PyTree:
    return jax.tree_util.tree_map(jnp.subtract, a, b)


def scale(s, tree: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda x: s * x, tree)


def where(cond, a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``jnp.where`` with a scalar condition."""
    return jax.tree_util.tree_map(lambda x, y: jnp.where(cond, x, y), a, b)


def dtype_of(tree: PyTree):
    """The common floating dtype of a tree's leaves."""
    return jnp.result_type(*jax.tree_util.tree_leaves(tree))
