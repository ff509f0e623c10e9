"""ADMM (Algorithm 1) time per iteration against the number of tasks T.

Multi-task linear regression, d features and n samples per task, closed-form
x-step (QuadraticProx) and the dual-domain z-step.  One JSON line per T.

    python benchmarks/bench_admm.py [--tasks 2 8 32 128 512] [--dim 10] [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

try:
    from _machine import machine_info
except ImportError:  # run as a module
    from benchmarks._machine import machine_info

import cljax


def loss(w, data):
    x, y = data
    return jnp.mean((x @ w - y) ** 2)


def problem(key, t, n, d):
    kx, kw, kn = jax.random.split(key, 3)
    x = jax.random.normal(kx, (t, n, d))
    w = 1.0 + 0.3 * jax.random.normal(kw, (t, d))
    y = jnp.einsum("tnd,td->tn", x, w) + 0.1 * jax.random.normal(kn, (t, n))
    return x, y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 8, 32, 128, 512])
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--eps", type=float, default=0.5)
    args = parser.parse_args(argv)
    admm = cljax.ADMM(cljax.QuadraticProx(loss), schedule=cljax.authors_schedule())
    for t in args.tasks:
        data = problem(jax.random.PRNGKey(t), t, args.samples, args.dim)
        solve = jax.jit(lambda d: admm.run(jnp.zeros((t, args.dim)), d, args.eps, args.steps))
        start = time.perf_counter()
        state, history = jax.block_until_ready(solve(data))
        compile_s = time.perf_counter() - start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            jax.block_until_ready(solve(data))
            times.append(time.perf_counter() - start)
        per_iter = statistics.median(times) / args.steps
        print(json.dumps({
            "benchmark": "bench_admm", "tasks": t, "dim": args.dim, "samples": args.samples,
            "steps": args.steps, "seconds_per_iteration": per_iter,
            "microseconds_per_iteration_per_task": per_iter / t * 1e6,
            "compile_and_first_run_seconds": compile_s,
            "final_primal_residual": float(history.primal_residual[-1]),
            "final_dual_residual": float(history.dual_residual[-1]),
            "machine": machine_info(),
        }))


if __name__ == "__main__":
    main()
