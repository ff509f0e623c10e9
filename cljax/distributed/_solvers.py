"""The projection and the three solvers on a mesh, in either layout.

These wrappers only place the inputs (:func:`cljax.distributed.place`) and jit
the library's own pure functions; the sharded ``jit`` inserts the collectives.
So a run on P processes is the single-process program up to the order of the
floating-point reductions.
"""

from __future__ import annotations

import functools
from typing import Any

import jax

from cljax.distributed._layout import check_layout, place
from cljax.projection._operator import project_cross_learning

PyTree = Any


@functools.lru_cache(maxsize=16)
def _jitted_projection(options: tuple):
    return jax.jit(functools.partial(project_cross_learning, **dict(options)))


def project(task_params: PyTree, global_params: PyTree | None, eps, *, mesh, layout: str,
            **options):
    """:func:`cljax.project_cross_learning` with its points placed for ``layout`` on ``mesh``.

    ``options`` are the projection's keywords (method, tol, max_iter,
    global_weight, task_weights).  Returns the ProjectionResult as global arrays
    (:func:`cljax.distributed.to_host` gathers them).
    """
    check_layout(layout)
    task_params, global_params, _ = place(task_params, global_params, None, mesh, layout)
    weights = options.pop("task_weights", None)
    fn = _jitted_projection(tuple(sorted(options.items())))
    if weights is None:
        return fn(task_params, global_params, eps)
    return fn(task_params, global_params, eps, task_weights=weights)


def run(solver, task_params: PyTree, data: Any, eps, num_steps: int, *, mesh, layout: str,
        global_params: PyTree | None = None):
    """``solver.run(task_params, data, eps, num_steps, global_params)`` on ``mesh``.

    ``solver`` is any :mod:`cljax.solvers` solver (ADMM, ProjectedGradient,
    PrimalDual).  Tasks layout: θ_t and data_t split by task, θ_g replicated.
    Parameters layout: every parameter leaf split along a parameter axis, data
    replicated.  Returns (state, info history) as global arrays.
    """
    check_layout(layout)
    if not (isinstance(num_steps, int) and num_steps >= 0):
        raise ValueError(f"num_steps must be a non-negative int, got {num_steps!r}")
    task_params, global_params, data = place(task_params, global_params, data, mesh, layout)
    fn = jax.jit(lambda t, d, e, g: solver.run(t, d, e, num_steps, g))
    return fn(task_params, data, eps, global_params)
