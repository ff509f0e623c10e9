"""Input validation shared by every solver.

Every check raises ``ValueError`` or ``TypeError`` with a message that names the
argument (and, for pytrees, the leaf path).  Shape, structure and dtype checks are
static, so they run once at trace time.  Value checks (a negative or NaN ``eps``,
non-positive weights) run eagerly when the value is concrete; under ``jax.jit``
they become ``equinox.error_if`` runtime checks, which also work under ``vmap``.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


def is_concrete(x) -> bool:
    """True unless ``x`` is a tracer (its value is known now)."""
    return not isinstance(x, jax.core.Tracer)


def leaf_name(path) -> str:
    """Readable name of a pytree leaf path, e.g. ``['layer']['w']``."""
    name = jax.tree_util.keystr(path)
    return name if name else "<root>"


def check_float_leaves(tree: PyTree, name: str) -> None:
    """Every leaf must be a floating-point array."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"{name}{leaf_name(path)} has dtype {dtype}; cross-learning needs "
                "floating-point parameters (cast with .astype(jnp.float32))"
            )


def task_count(task_tree: PyTree, name: str = "task_params") -> int:
    """Length T of the leading task axis, checked to agree across leaves.

    Raises if the tree is empty, a leaf is a scalar, the task axes disagree,
    or T = 0.
    """
    leaves = jax.tree_util.tree_flatten_with_path(task_tree)[0]
    if not leaves:
        raise ValueError(f"{name} has no array leaves")
    counts = {}
    for path, leaf in leaves:
        shape = jnp.shape(leaf)
        if len(shape) == 0:
            raise ValueError(
                f"{name}{leaf_name(path)} is a scalar; every per-task leaf needs a "
                "leading task axis of length T"
            )
        counts.setdefault(shape[0], []).append(leaf_name(path))
    if len(counts) > 1:
        detail = "; ".join(f"T={t} at {', '.join(p)}" for t, p in counts.items())
        raise ValueError(f"{name}: leaves disagree on the task axis length ({detail})")
    (t,) = counts
    if t == 0:
        raise ValueError(f"{name} has T = 0 tasks; at least one task is needed")
    return int(t)


def check_global_matches(task_tree: PyTree, global_tree: PyTree,
                         task_name: str = "task_params",
                         global_name: str = "global_params") -> None:
    """``global_tree`` must have the structure of ``task_tree`` less the task axis."""
    t_def = jax.tree_util.tree_structure(task_tree)
    g_def = jax.tree_util.tree_structure(global_tree)
    if t_def != g_def:
        raise ValueError(
            f"{global_name} does not match the structure of {task_name}: "
            f"{g_def} versus {t_def}"
        )
    t_leaves = jax.tree_util.tree_flatten_with_path(task_tree)[0]
    g_leaves = jax.tree_util.tree_leaves(global_tree)
    for (path, t_leaf), g_leaf in zip(t_leaves, g_leaves):
        want = tuple(jnp.shape(t_leaf)[1:])
        got = tuple(jnp.shape(g_leaf))
        if want != got:
            raise ValueError(
                f"{global_name}{leaf_name(path)} has shape {got}, expected {want} "
                f"(the shape of {task_name}{leaf_name(path)} without its task axis)"
            )


def check_eps(eps, name: str = "eps"):
    """``eps`` must be a real scalar, >= 0 and not NaN (``inf`` is allowed).

    Returns ``eps`` as a floating array (with a runtime check when traced).
    """
    try:
        if eps is None or isinstance(eps, (str, bytes)):
            raise TypeError
        dtype = jnp.result_type(eps)
    except TypeError:
        raise TypeError(f"{name} must be a real number, got {eps!r}") from None
    if jnp.ndim(eps) != 0:
        raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(eps)}; "
                         "vmap over a grid of eps instead")
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        raise TypeError(f"{name} must be a real number, got dtype {dtype}")
    if is_concrete(eps):
        value = float(np.asarray(eps))
        if np.isnan(value):
            raise ValueError(f"{name} is NaN; it must be a number >= 0 (inf allowed)")
        if value < 0:
            raise ValueError(f"{name} = {value} is negative; it must be >= 0")
        return eps
    return eqx.error_if(eps, jnp.isnan(eps) | (eps < 0),
                        f"{name} must be >= 0 and not NaN")


def check_weights(weights, t: int, name: str = "task_weights", allow_zero: bool = False):
    """Task weights: shape (T,), finite and > 0 (>= 0 if ``allow_zero``)."""
    if weights is None or isinstance(weights, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers, got {weights!r}")
    weights = jnp.asarray(weights) if not isinstance(weights, jax.Array) else weights
    if not (jnp.issubdtype(weights.dtype, jnp.floating) or jnp.issubdtype(weights.dtype, jnp.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {weights.dtype}")
    if jnp.shape(weights) != (t,):
        raise ValueError(f"{name} must have shape ({t},), got {jnp.shape(weights)}")
    rule = ">= 0" if allow_zero else "> 0"

    def bad(x, xp):  # numpy on a concrete value: inside jit, jnp ops would trace it
        return ~xp.isfinite(x) | ((x < 0) if allow_zero else (x <= 0))

    if is_concrete(weights):
        value = np.asarray(weights)
        if bool(np.any(bad(value, np))):
            raise ValueError(f"{name} must be finite and {rule}, got {value}")
        return weights
    return eqx.error_if(weights, jnp.any(bad(weights, jnp)), f"{name} must be finite and {rule}")


def check_scalar_weight(weight, name: str = "global_weight"):
    """A scalar weight >= 0, finite."""
    _real_scalar(weight, name)
    if jnp.ndim(weight) != 0:
        raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(weight)}")
    if is_concrete(weight):
        value = float(np.asarray(weight))
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value}")
        return weight
    return eqx.error_if(weight, ~jnp.isfinite(weight) | (weight < 0),
                        f"{name} must be finite and >= 0")


def check_positive(value, name: str):
    """A positive, finite Python or array scalar (a step size, a tolerance)."""
    _real_scalar(value, name)
    if jnp.ndim(value) != 0:
        raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(value)}")
    if is_concrete(value):
        v = float(np.asarray(value))
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be finite and > 0, got {v}")
    return value


def task_and_global(task_params: PyTree, global_params: PyTree | None) -> tuple[int, PyTree]:
    """Validate a task tree and its global tree; θ_g defaults to the task mean.

    Returns (T, global_params).
    """
    t = task_count(task_params, "task_params")
    check_float_leaves(task_params, "task_params")
    if global_params is None:
        global_params = jax.tree_util.tree_map(lambda x: jnp.mean(x, axis=0), task_params)
    check_global_matches(task_params, global_params)
    return t, global_params


def check_nonempty_leaves(tree: PyTree, name: str, lead: int = 0) -> None:
    """Every leaf must hold at least one number per task (beyond ``lead`` axes)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        shape = jnp.shape(leaf)
        if int(np.prod(shape[lead:])) == 0:
            raise ValueError(f"{name}{leaf_name(path)} has shape {shape}: no parameters "
                             "(every leaf needs at least one number per task)")


def check_eps_grid(eps_grid, name: str = "eps_grid"):
    """A non-empty 1-D grid of radii, each >= 0 and not NaN (``inf`` allowed)."""
    if eps_grid is None or isinstance(eps_grid, (str, bytes)):
        raise TypeError(f"{name} must be a 1-D array of numbers, got {eps_grid!r}")
    grid = jnp.asarray(eps_grid)
    if grid.ndim != 1 or grid.shape[0] < 1:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {grid.shape}")
    if not (jnp.issubdtype(grid.dtype, jnp.floating) or jnp.issubdtype(grid.dtype, jnp.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {grid.dtype}")
    if is_concrete(grid):
        value = np.asarray(grid, float)
        for k, v in enumerate(value):
            if np.isnan(v) or v < 0:
                why = "is NaN" if np.isnan(v) else "is negative"
                raise ValueError(f"{name}[{k}] = {v} {why}: radii must be >= 0 (inf allowed)")
        return grid
    return eqx.error_if(grid, jnp.any(jnp.isnan(grid) | (grid < 0)),
                        f"{name} must hold numbers >= 0 and no NaN")


def _real_scalar(value, name: str):
    """``value`` as a real (not bool, not string) number, or a TypeError naming it."""
    bad = value is None or isinstance(value, (str, bytes, bool))
    if not bad:
        try:
            dtype = jnp.result_type(value)
        except TypeError:
            bad = True
        else:
            bad = not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer))
    if bad:
        raise TypeError(f"{name} must be a real number, got {value!r}")
