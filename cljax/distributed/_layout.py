"""A global mesh over every process's devices and the two layouts of cross-learning.

* ``"tasks"`` (the federated layout): every leaf with a task axis is split
  along it, so each process holds its own block of tasks (θ_t, data_t); global
  leaves (θ_g) are replicated.  The x-steps / primal steps are per task and need
  no communication; the projection exchanges the centroid.
* ``"parameters"`` (the layout for very large S): every parameter leaf is split
  along its first parameter axis that the mesh size divides; data are
  replicated.  The dual-domain projection then sums the shards' pieces of the
  (T+1)×(T+1) Gram matrix with one all-reduce, independent of S, and rebuilds θ
  locally.

The solvers are pure functions, so placing their inputs is all it takes: the
sharded ``jit`` (GSPMD) inserts the collectives.  Leaves that the mesh size does
not divide stay replicated (parameters) or are refused (tasks: name the leaf).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

PyTree = Any
LAYOUTS = ("tasks", "parameters")
AXIS = "shards"


def global_mesh(axis_name: str = AXIS, devices=None) -> Mesh:
    """A 1-D mesh over every device of every process (``jax.devices()``)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (axis_name,))


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return layout


def _axis(mesh: Mesh) -> str:
    if len(mesh.axis_names) != 1:
        raise ValueError(f"mesh must be 1-D, got axes {mesh.axis_names}")
    return mesh.axis_names[0]


def _put(leaf, sharding):
    if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
        return leaf
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        return jax.jit(lambda x: x, out_shardings=sharding)(leaf)
    # The same host value on every process: each keeps the slices it owns.
    return jax.device_put(np.asarray(leaf), sharding)


def task_spec(shape, mesh: Mesh, name: str = "leaf") -> P:
    """P(axis) along the task axis (the first); T must be a multiple of the mesh size."""
    n = mesh.devices.size
    if len(shape) == 0 or shape[0] % n:
        raise ValueError(f"{name}: the task axis ({shape[0] if shape else 'none'}) must be a "
                         f"multiple of the mesh size {n} in the 'tasks' layout")
    return P(_axis(mesh))


def parameter_spec(shape, mesh: Mesh, first: int = 0) -> P:
    """P along the first axis ≥ ``first`` that the mesh size divides; replicated if none."""
    n = mesh.devices.size
    for axis in range(first, len(shape)):
        if shape[axis] % n == 0 and shape[axis] >= n:
            return P(*([None] * axis + [_axis(mesh)]))
    return P()


def _named(tree, name):
    paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [(name + jax.tree_util.keystr(p), leaf) for p, leaf in paths]


def shard_tasks(tree: PyTree, mesh: Mesh, name: str = "task_params") -> PyTree:
    """Split every leaf of a task tree along its task axis (leading) over ``mesh``."""
    names = iter(n for n, _ in _named(tree, name))
    return jax.tree_util.tree_map(
        lambda x: _put(x, NamedSharding(mesh, task_spec(np.shape(x), mesh, next(names)))), tree)


def shard_parameters(tree: PyTree, mesh: Mesh, *, task_axis: bool) -> PyTree:
    """Split every leaf along its first parameter axis (after the task axis when
    ``task_axis``) that the mesh size divides; other leaves are replicated."""
    first = 1 if task_axis else 0
    return jax.tree_util.tree_map(
        lambda x: _put(x, NamedSharding(mesh, parameter_spec(np.shape(x), mesh, first))), tree)


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Every leaf on every device of ``mesh``."""
    return jax.tree_util.tree_map(lambda x: _put(x, NamedSharding(mesh, P())), tree)


def place(task_tree: PyTree, global_tree: PyTree, data: PyTree, mesh: Mesh, layout: str):
    """(task_tree, global_tree, data) placed for ``layout`` (see the module docstring).

    ``global_tree`` may be None.  In the tasks layout the data are split with
    their tasks; in the parameters layout they are replicated.
    """
    check_layout(layout)
    if layout == "tasks":
        task_tree = shard_tasks(task_tree, mesh)
        global_tree = None if global_tree is None else replicate(global_tree, mesh)
        data = None if data is None else shard_tasks(data, mesh, "data")
    else:
        task_tree = shard_parameters(task_tree, mesh, task_axis=True)
        global_tree = (None if global_tree is None
                       else shard_parameters(global_tree, mesh, task_axis=False))
        data = None if data is None else replicate(data, mesh)
    return task_tree, global_tree, data


def from_process_local(local_tree: PyTree, mesh: Mesh) -> PyTree:
    """A global task tree from each process's own block of tasks (data stay local).

    Every process passes the leaves of its tasks (leading axis T / P, in process
    order); the result is split along the task axis over ``mesh``.
    """
    sharding = NamedSharding(mesh, P(_axis(mesh)))
    return jax.tree_util.tree_map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_tree)


def to_host(tree: PyTree) -> PyTree:
    """NumPy copies of every leaf, whole, on every process (an all-gather where needed)."""
    from jax.experimental import multihost_utils

    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree_util.tree_map(get, tree)
