"""One process against two on this machine, and the bytes a projection communicates.

Part 1 (``workloads``): each experiment runner of :mod:`cljax.experiments.distributed`
(the Gaussian study over realisations, the COVID ε sweep over ε, the vision
trainer over the task networks) in one process, then in two local processes
over localhost (gloo CPU collectives, one CPU device each).  Each is compiled
and run once, then timed (median of ``--repeats``); the ratio is
time(2 processes) / time(1 process).

Part 2 (``communication``): the projection ``project_cross_learning`` on two
processes for S = 10³ … 10⁷ parameters (T = 4 tasks, float32), in the tasks
layout (tasks split, primal method: Newton in parameter space) and in the
parameters layout (each vector split, dual method: Gram matrix).  The bytes are
read from the compiled program: every collective of its optimised HLO with the
size of the array it moves (:func:`cljax.distributed.collectives`), the ones in
the Newton ``while`` loop multiplied by the iterations the run took.

Prints one JSON line:
``{"workloads": {...}, "communication": {"tasks": [{"S": ..., "bytes_per_projection": ...}, ...],
"parameters": [...]}, "machine": {...}}``.

    python benchmarks/bench_distributed.py [--quick] [--sizes 1000 ... 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(part, processes, out, options, timeout):
    """Run this script's worker ``part`` on ``processes`` local processes; process 0's JSON."""
    port = str(_free_port())
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen(
        [sys.executable, __file__, "--worker", part, "--processes", str(processes),
         "--process-id", str(i), "--port", port, "--out", str(out)] + options,
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for i in range(processes)]
    errors = []
    try:
        for p in procs:
            errors.append(p.communicate(timeout=timeout)[1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, err in zip(procs, errors):
        if p.returncode != 0:
            raise RuntimeError(f"worker {part} on {processes} processes failed:\n{err[-3000:]}")
    return json.loads(Path(out).read_text())


def _timed(fn, repeats):
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"first_call_s": first, "median_s": statistics.median(times), "times_s": times}


def _workloads(args):
    import jax
    import numpy as np

    from cljax.experiments import distributed as ed

    out = {}
    # Gaussian study: Example 2, R realisations, the grid of the study.
    from cljax.experiments.gaussian import studies

    design = studies.example2_design(1.0)
    grid = studies.default_eps_grid(design, args.gaussian_eps)
    key = jax.random.PRNGKey(0)
    out["gaussian"] = _timed(lambda: ed.gaussian_monte_carlo(
        key, design, grid, args.realisations), args.repeats)
    out["gaussian"]["size"] = {"realisations": args.realisations, "eps": len(grid)}

    # COVID ε sweep: the paper's 15 countries, N = 10.
    from cljax.experiments.covid import experiment as ce

    problem = ce.default_problem(n_train=10)
    fit = ce.SIRFit(admm_iterations=args.admm_iterations)
    eps_grid = np.linspace(0.0, 0.5, args.covid_eps)
    out["covid"] = _timed(lambda: ed.covid_eps_sweep(problem, eps_grid, fit), args.repeats)
    out["covid"]["size"] = {"eps": len(eps_grid), "admm_iterations": args.admm_iterations}

    # Vision trainer: synthetic 16×16 domains, parametric mode (projection of the networks).
    from dataclasses import replace

    from cljax.experiments.vision.digits import MultiDomainData
    from cljax.experiments.vision.training import VisionConfig

    rng = np.random.default_rng(0)
    t, n, size = args.domains, args.images, 16
    x = rng.integers(0, 255, (t, n, size, size, 3)).astype(np.uint8)
    y = rng.integers(0, 10, (t, n)).astype(np.int32)
    data = MultiDomainData(x_train=x, y_train=y, n_train=np.full(t, n, np.int32),
                           x_test=x[:, :50], y_test=y[:, :50], n_test=np.full(t, 50, np.int32),
                           domains=tuple(f"d{i}" for i in range(t)),
                           classes=tuple(str(c) for c in range(10)))
    cfg = replace(VisionConfig(), mode="parametric", eps=0.1, epochs=args.epochs,
                  batch_size=32, width=8, hidden=32)
    out["vision"] = _timed(lambda: ed.vision_train(data, cfg), args.repeats)
    out["vision"]["size"] = {"domains": t, "images_per_domain": n, "epochs": args.epochs}
    return out


def _communication(args):
    import jax
    import jax.numpy as jnp
    import numpy as np

    import cljax
    import cljax.distributed as cd

    mesh = cd.global_mesh()
    t = 4
    result = {"tasks": [], "parameters": [], "tasks_dual": []}
    cases = (("tasks", "primal", "tasks"), ("parameters", "dual", "parameters"),
             ("tasks_dual", "dual", "tasks"))
    for s in args.sizes:
        rng = np.random.default_rng(s)
        centre = rng.standard_normal(s).astype(np.float32)
        offsets = rng.standard_normal((t, s)).astype(np.float32) * np.float32(
            [0.5, 1.0, 1.5, 2.0])[:, None]
        points = centre[None] + offsets
        eps = float(0.8 * np.median(np.linalg.norm(offsets, axis=1)))  # most constraints active
        for key, method, layout in cases:
            task, glob, _ = cd.place(points, points.mean(0), None, mesh, layout)
            fn = jax.jit(lambda a, g, e, m=method: cljax.project_cross_learning(a, g, e, method=m))
            compiled = fn.lower(task, glob, jnp.float32(eps)).compile()
            res = compiled(task, glob, jnp.float32(eps))
            iterations = int(cd.to_host(res.iterations))
            ops = cd.collectives(compiled.as_text())
            count = cd.bytes_per_run(ops, iterations)
            result[key].append({
                "S": s, "bytes_per_projection": count["total"], "newton_iterations": iterations,
                "bytes_outside_loop": count["outside_loop"],
                "bytes_per_iteration": count["per_iteration"],
                "per_iteration_bytes_over_S": count["per_iteration"] / s,
                "method": method, "num_collectives": len(ops),
                "largest_collectives": sorted({(op.kind, op.shapes, op.loop_depth) for op in ops},
                                              key=lambda o: -len(str(o[1])))[:4]})
            del task, glob, res
    # the same projection at S = 10^5 with radii that take 1, 2 and 3 Newton iterations:
    # the tasks layout's bytes are outside + iterations × per-iteration
    s = 100_000
    rng = np.random.default_rng(s)
    centre = rng.standard_normal(s).astype(np.float32)
    offsets = rng.standard_normal((t, s)).astype(np.float32) * np.float32(
        [0.5, 1.0, 1.5, 2.0])[:, None]
    points = centre[None] + offsets
    task, glob, _ = cd.place(points, points.mean(0), None, mesh, "tasks")
    fn = jax.jit(lambda a, g, e: cljax.project_cross_learning(a, g, e, method="primal"))
    compiled = fn.lower(task, glob, jnp.float32(1.0)).compile()
    ops = cd.collectives(compiled.as_text())
    result["tasks_by_iterations"] = []
    for factor in (0.3, 0.5, 0.8):
        eps = float(factor * np.median(np.linalg.norm(offsets, axis=1)))
        iterations = int(cd.to_host(compiled(task, glob, jnp.float32(eps)).iterations))
        count = cd.bytes_per_run(ops, iterations)
        result["tasks_by_iterations"].append({
            "S": s, "eps_over_median_distance": factor, "newton_iterations": iterations,
            "bytes_per_projection": count["total"], "bytes_per_iteration": count["per_iteration"]})
    return result


def _worker(args):
    sys.path.insert(0, str(ROOT))
    import cljax.distributed as cd

    if args.processes > 1:
        cd.initialize(f"localhost:{args.port}", args.processes, args.process_id, timeout_s=120)
    import jax  # noqa: F401

    out = _workloads(args) if args.worker == "workloads" else _communication(args)
    from cljax.experiments.distributed import write_on_main

    write_on_main(args.out, out)
    if args.processes > 1:
        os._exit(0)  # every process is done; skip the shutdown barrier's wait


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[1_000, 10_000, 100_000, 1_000_000, 10_000_000])
    parser.add_argument("--realisations", type=int, default=20_000)
    parser.add_argument("--gaussian-eps", type=int, default=51)
    parser.add_argument("--covid-eps", type=int, default=8)
    parser.add_argument("--admm-iterations", type=int, default=50)
    parser.add_argument("--domains", type=int, default=4)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", nargs="+", default=["workloads", "communication"],
                        choices=["workloads", "communication"])
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--worker", choices=["workloads", "communication"], help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [1_000, 10_000, 100_000]
        args.realisations, args.gaussian_eps, args.covid_eps = 2_000, 11, 2
        args.admm_iterations, args.images, args.epochs, args.repeats = 10, 64, 1, 1
    if args.worker:
        return _worker(args)

    forwarded = []
    for name in ("sizes", "realisations", "gaussian_eps", "covid_eps", "admm_iterations",
                 "domains", "images", "epochs", "repeats"):
        value = getattr(args, name)
        forwarded += [f"--{name.replace('_', '-')}"] + [str(v) for v in (
            value if isinstance(value, list) else [value])]
    report = {"benchmark": "distributed", "quick": args.quick}
    with tempfile.TemporaryDirectory() as tmp:
        if "workloads" in args.parts:
            one = _launch("workloads", 1, Path(tmp) / "w1.json", forwarded, args.timeout)
            two = _launch("workloads", 2, Path(tmp) / "w2.json", forwarded, args.timeout)
            report["workloads"] = {
                name: {"one_process": one[name], "two_processes": two[name],
                       "ratio_two_over_one": two[name]["median_s"] / one[name]["median_s"]}
                for name in one}
        if "communication" in args.parts:
            report["communication"] = _communication_launch(tmp, forwarded, args.timeout)
    sys.path.insert(0, str(HERE))
    from _machine import machine_info

    report["machine"] = machine_info()
    print(json.dumps(report))


def _communication_launch(tmp, forwarded, timeout):
    return _launch("communication", 2, Path(tmp) / "c.json", forwarded, timeout)


if __name__ == "__main__":
    main()
