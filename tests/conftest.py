"""Shared test configuration.

Precision: the whole suite runs with ``jax_enable_x64``.  The accuracy tests need
float64 to compare against the CVXPY oracle at 1e-6, and a module-level
``jax.config.update`` in one test module would leak into every module collected
after it anyway, so it is set once, here, for the session.  Tests of float32
behaviour pass float32 arrays explicitly, or run under ``jax.enable_x64(False)``.

Speed: an eager call of ``project_cross_learning`` re-traces and re-compiles its
Newton loop every time (about 0.4 s on CPU), and every new (T, S) shape costs a
compilation.  Tests that run many instances therefore go through one jitted
projection, ``PROJECT_JIT``, with the numbers (eps, weights) passed as arrays so
that they do not trigger recompiles, and reuse a small set of shapes.

Compilation: most of the suite's time is XLA compiling small programs, so the
suite asks XLA's CPU backend, before jax starts it, for LLVM optimisation level 0
(``--xla_backend_optimization_level=0``), for its classic elemental fusion emitters
rather than the MLIR fusion emitters (``--xla_cpu_use_fusion_emitters=false``) and
for one code-generation thread (``--xla_cpu_parallel_codegen_split_count=1``: with
two test workers on two cores, the extra threads only add CPU time).  Together they
cut the CPU time of compiling a projection program and its gradient about 4×
(``benchmarks/bench_compile.py``).  They change how fast the compiled code runs
and, at most, its rounding (the HLO-level passes still run, fast-math stays off).
Comparisons between two *different* float32 programs (a vmapped sweep against a
single run) therefore allow for rounding.  Subprocesses started by tests (the CLI
and the two-process runs) inherit the flags through the environment.
"""

from __future__ import annotations

import os

_FAST_COMPILE = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false",
                 "--xla_cpu_parallel_codegen_split_count=1")
for _flag in _FAST_COMPILE:
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_flag}".strip()

import jax  # noqa: E402
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from cljax.projection import project_cross_learning  # noqa: E402

# The projection's default tolerances, √(machine epsilon), spelled out for the
# tests that pass tol explicitly (a static argument of PROJECT_JIT).
TOL64 = float(np.sqrt(np.finfo(np.float64).eps))
TOL32 = float(np.sqrt(np.finfo(np.float32).eps))

METHODS = ("dual", "primal")

PROJECT_JIT = jax.jit(project_cross_learning, static_argnames=("method", "tol", "max_iter"))


@pytest.fixture(params=METHODS)
def method(request):
    """Both solvers of the projection: "dual" (Gram matrix) and "primal"."""
    return request.param
