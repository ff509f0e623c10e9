"""Shared test configuration.

Precision: the whole suite runs with ``jax_enable_x64``.  The accuracy tests need
float64 to compare against the CVXPY oracle at 1e-6, and a module-level
``jax.config.update`` in one test module would leak into every module collected
after it anyway, so it is set once, here, for the session.  Tests of float32
behaviour pass float32 arrays explicitly, or run under ``jax.enable_x64(False)``.

Compilation: each new (T, S) shape costs a compilation, so tests that run many
instances share one jitted projection (``jitted_projection``) with the numbers
(eps, weights) passed as arrays, and reuse a small set of shapes.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from cljax.projection import project_cross_learning  # noqa: E402

# tol is passed explicitly to the jitted projection: the default (tol=None) is
# computed with ``float(jnp.sqrt(...))`` and cannot be traced under jax.jit.
TOL64 = float(np.sqrt(np.finfo(np.float64).eps))
TOL32 = float(np.sqrt(np.finfo(np.float32).eps))

METHODS = ("dual", "primal")

_JITTED = jax.jit(project_cross_learning, static_argnames=("method", "tol", "max_iter"))


@pytest.fixture(scope="session")
def jitted_projection():
    """``project_cross_learning`` under ``jax.jit`` (one compile per shape and method).

    Pass eps, task_weights and global_weight as arrays so that changing them
    does not recompile.
    """
    return _JITTED


@pytest.fixture(params=METHODS)
def method(request):
    return request.param
