"""XLA compile time of cljax programs on CPU under the test suite's compiler flags.

Most of the test suite's time is XLA compiling small programs (tests/conftest.py).
This benchmark compiles the same set of programs (the projection with each
algorithm and its gradient, an ADMM run, a PrimalDual run) in a fresh process for
each set of ``XLA_FLAGS`` (XLA reads them once, when its CPU backend starts), and
prints one JSON line with every flag set's compile CPU time, compile wall time and
run time of the compiled programs, side by side, as ratios to the default flags.

    python benchmarks/bench_compile.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

try:
    from _machine import machine_info
except ImportError:  # run as a module
    from benchmarks._machine import machine_info

FLAG_SETS = {
    "default": "",
    "llvm_o0": "--xla_backend_optimization_level=0",
    "classic_emitters": "--xla_cpu_use_fusion_emitters=false",
    # what tests/conftest.py sets
    "suite": ("--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false "
              "--xla_cpu_parallel_codegen_split_count=1"),
}


def _programs():
    """(name, jitted function, arguments): the programs the suite compiles most."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import cljax

    rng = np.random.default_rng(0)
    a, g = rng.normal(size=(5, 2)), np.zeros(2)
    out = []
    for solver in ("dual", "primal", "fixed"):
        out.append((f"project_{solver}", jax.jit(
            lambda a, g, e, s=solver: cljax.project_cross_learning(a, g, e, solver=s).task_params),
            (a, g, 0.5)))
    for solver in ("dual", "primal"):
        out.append((f"grad_project_{solver}", jax.jit(jax.grad(
            lambda a, g, e, s=solver: jnp.sum(cljax.project_cross_learning(
                a, g, e, solver=s).task_params ** 2), argnums=(0, 1, 2))), (a, g, 0.5)))
    x = rng.normal(size=(4, 8, 3))
    y = x @ np.ones(3)
    data = (x, y)

    def loss(w, d):
        return 0.5 * jnp.mean((d[0] @ w - d[1]) ** 2)

    admm = cljax.ADMM(cljax.QuadraticProx(loss))
    out.append(("admm_run_20", jax.jit(lambda t, d, e: admm.run(t, d, e, 20)[0].task_params),
                (np.zeros((4, 3)), data, 0.3)))
    pd = cljax.PrimalDual(lambda p, xx: xx @ p, lambda o, t: (o - t) ** 2, optax.sgd(0.05))
    out.append(("primal_dual_run_20", jax.jit(lambda t, d, e: pd.run(t, d, e, 20)[0].task_params),
                (np.zeros((4, 3)), data, 0.3)))
    return out


def _child(repeats):
    """Compile and time every program in this process (its XLA_FLAGS are fixed)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    rows = {}
    for name, fn, args in _programs():
        lowered = fn.lower(*args)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        compiled = lowered.compile()
        cpu1, wall1 = time.process_time(), time.perf_counter()
        jax.block_until_ready(compiled(*args))
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(compiled(*args))
            runs.append(time.perf_counter() - start)
        rows[name] = {"compile_cpu_s": cpu1 - cpu0, "compile_wall_s": wall1 - wall0,
                      "run_median_s": statistics.median(runs)}
    print(json.dumps(rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each program")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.repeats)
        return 0
    record = {"benchmark": "compile", "flag_sets": FLAG_SETS, "results": {}}
    for label, flags in FLAG_SETS.items():
        env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
        proc = subprocess.run([sys.executable, __file__, "--child", "--repeats",
                               str(args.repeats)], env=env, capture_output=True, text=True,
                              check=True)
        rows = json.loads(proc.stdout.strip().splitlines()[-1])
        record["results"][label] = {
            "programs": rows,
            "compile_cpu_s": sum(r["compile_cpu_s"] for r in rows.values()),
            "compile_wall_s": sum(r["compile_wall_s"] for r in rows.values()),
            "run_s": sum(r["run_median_s"] for r in rows.values())}
    base = record["results"]["default"]
    record["ratios_to_default"] = {
        label: {key: r[key] / base[key] for key in ("compile_cpu_s", "compile_wall_s", "run_s")}
        for label, r in record["results"].items()}
    record["machine"] = machine_info()
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
