"""Cross-learning projection P_C: cljax (auto, fixed, dual, primal) against CVXPY/Clarabel and NumPy.

Three cases, one JSON line each (case a: one per global weight, 1 and 0):

  a  T = 15, S = 2, a batch of 10,000 instances: cljax is jax.jit(jax.vmap(projection))
     for every solver ("auto" picks "fixed" here); CVXPY (a parameterised problem
     re-solved per instance) and the NumPy solver (a Python loop over instances) run
     on subsets and are reported per instance.  Target: cljax ("auto") ≥ 1000x faster
     than CVXPY per instance.  Answers are checked against CVXPY and NumPy on the
     subset and between the solvers.
  b  T = 5, S = 5,000,000, float32: the dual method against forming the Gram matrix
     once (jitted A @ A.T on the stacked (T+1) x S matrix).  Target: dual ≤ 1.5x Gram,
     extra peak memory beyond the output ≤ one output-sized array.
     Also the primal method and NumPy, with peak memory.
  c  T = 1,000, S = 1,000: dual, primal, NumPy, and CVXPY once in a subprocess with a
     time limit.  Target: dual faster than the NumPy solver.

Timing: compile first (reported separately), then the median of --repeats runs, each
ended with block_until_ready.  Wall time is the headline; the median CPU time
(process_time, every thread) is recorded beside it (``median_cpu_s``; case a also
``speedup_auto_vs_cvxpy_cpu``), steadier when the machine is shared.

    python benchmarks/bench_projection.py                 # all cases, full sizes
    python benchmarks/bench_projection.py --cases a b     # some cases
    python benchmarks/bench_projection.py --quick         # small smoke run (seconds)
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import multiprocessing
import os
import queue
import resource
import statistics
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)  # every array below carries an explicit dtype

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

try:
    from _cvxpy_projection import TIGHT, CvxpyProjection, solve_once
    from _machine import machine_info
    from _numpy_projection import project_numpy
except ImportError:  # run as a module: python -m benchmarks.bench_projection
    from benchmarks._cvxpy_projection import TIGHT, CvxpyProjection, solve_once
    from benchmarks._machine import machine_info
    from benchmarks._numpy_projection import project_numpy

from cljax import project_cross_learning  # noqa: E402
from cljax.projection import _operator  # noqa: E402  (CHUNK_BYTES: the plain-vmap reference)

BENCHMARK = "bench_projection"


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _rss_status():
    """Current and peak resident set size in bytes (Linux /proc), or (None, None)."""
    values = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    values[line.split(":")[0]] = int(line.split()[1]) * 1024
    except OSError:
        return None, None
    return values.get("VmRSS"), values.get("VmHWM")


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process (Linux ≥ 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_peak_rss(run):
    """Peak RSS growth over the current RSS while ``run()`` executes, in bytes.

    Uses /proc/self/clear_refs to reset VmHWM first, so this is the peak of this
    call alone (host memory: on the CPU backend the XLA buffers live there too).
    """
    gc.collect()
    before, _ = _rss_status()
    if before is None or not _reset_peak_rss():
        run()
        return None
    run()
    _, peak = _rss_status()
    return peak - before


def compile_and_time(fn, args, repeats):
    """jit + compile ``fn`` (timed), then the median of ``repeats`` timed runs."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    first_s = time.perf_counter() - start
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    stats = {"compile_s": compile_s, "first_run_s": first_s,
             "median_s": statistics.median(times), "min_s": min(times), "repeats": repeats,
             "median_cpu_s": statistics.median(cpu)}
    return compiled, out, stats


def xla_memory(compiled):
    """XLA's own buffer accounting for a compiled function (bytes), if available."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if m is None:
        return None
    return {"argument_bytes": int(m.argument_size_in_bytes),
            "output_bytes": int(m.output_size_in_bytes),
            "temp_bytes": int(m.temp_size_in_bytes)}


def device_memory_stats():
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001
        stats = None
    if not stats:
        return None
    return {k: stats[k] for k in ("peak_bytes_in_use", "bytes_in_use", "bytes_limit")
            if k in stats}


def median_time(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times), min(times)


SOLVERS = ("auto", "fixed", "dual", "primal")


def cljax_projector(eps, solver, global_weight=1.0):
    def project(a_tasks, a_global):
        r = project_cross_learning(a_tasks, a_global, eps, solver=solver,
                                   global_weight=global_weight)
        return r.task_params, r.global_params, r.iterations, r.residual, r.converged
    return project


def objective(theta, c, a_tasks, a_global, global_weight=1.0):
    """Σ_t ‖θ_t − a_t‖² + w_g ‖c − a_g‖² (unit task weights), last two axes (T, S) / (S,)."""
    theta, c = np.asarray(theta, float), np.asarray(c, float)
    return (np.sum((theta - a_tasks) ** 2, axis=(-2, -1))
            + global_weight * np.sum((c - a_global) ** 2, axis=-1))


def max_violation(theta, c, eps):
    theta, c = np.asarray(theta, float), np.asarray(c, float)
    return float(max(np.max(np.linalg.norm(theta - c[..., None, :], axis=-1) - eps), 0.0))


def max_abs_diff(x_theta, x_c, y_theta, y_c):
    return float(max(np.max(np.abs(np.asarray(x_theta, float) - np.asarray(y_theta, float))),
                     np.max(np.abs(np.asarray(x_c, float) - np.asarray(y_c, float)))))


def emit(record, args):
    record["load_average_at_start"] = getattr(args, "load_at_start", None)
    record["machine"] = machine_info()  # its load_average is taken at the end
    print(json.dumps(record), flush=True)


def _cvxpy_worker(result_queue, a_tasks, a_global, eps):
    import cvxpy  # noqa: F401 - imported before the clock starts

    result_queue.put("ready")
    try:
        result_queue.put(solve_once(a_tasks, a_global, eps))
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        result_queue.put({"error": f"{type(exc).__name__}: {exc}"})


def cvxpy_with_time_limit(a_tasks, a_global, eps, limit_s, startup_limit_s=120.0):
    """Build + solve once in a spawned subprocess, killed after ``limit_s``.

    The limit starts once the subprocess has imported CVXPY.  Returns the result
    dict (None when over the limit) and the seconds waited for it.
    """
    ctx = multiprocessing.get_context("spawn")
    result_queue = ctx.Queue()
    proc = ctx.Process(target=_cvxpy_worker, args=(result_queue, a_tasks, a_global, eps))
    proc.start()
    result, start = None, None
    try:
        if result_queue.get(timeout=startup_limit_s) == "ready":
            start = time.perf_counter()
            result = result_queue.get(timeout=limit_s)
    except queue.Empty:
        result = None
    elapsed = None if start is None else time.perf_counter() - start
    if result is None:
        proc.terminate()
    proc.join(10)
    if proc.is_alive():
        proc.kill()
        proc.join()
    return result, elapsed


# ---------------------------------------------------------------------------
# Case a: many small instances
# ---------------------------------------------------------------------------


def case_a(args):
    for global_weight in args.a_global_weights:
        _case_a(args, global_weight)


def _case_a(args, global_weight):
    n, t, s = args.instances, 15, 2
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(args.seed)
    a_tasks = rng.standard_normal((n, t, s)).astype(dtype)
    a_global = rng.standard_normal((n, s)).astype(dtype)
    eps = args.eps_a
    at, ag = jnp.asarray(a_tasks), jnp.asarray(a_global)
    unique_c = global_weight > 0  # with w_g = 0, θ_g may be any point of a set

    record = {"benchmark": BENCHMARK, "case": "a", "tasks": t, "size": s, "instances": n,
              "dtype": dtype.name, "eps": eps, "global_weight": global_weight,
              "auto_picks": _auto_choice(at[0], ag[0]),
              "timing": f"jit(vmap(project)) over all {n} instances; median of "
                        f"{args.repeats} runs; per_instance_s = median_s / {n}"}
    results = {}
    for solver in SOLVERS:
        _, out, stats = compile_and_time(
            jax.vmap(cljax_projector(eps, solver, global_weight)), (at, ag), args.repeats)
        theta, c, iters, resid, conv = (np.asarray(x) for x in out)
        stats.update(per_instance_s=stats["median_s"] / n,
                     iterations_max=int(iters.max()), iterations_mean=float(iters.mean()),
                     converged_fraction=float(conv.mean()))
        record[f"cljax_{solver}"] = stats
        results[solver] = (theta, c)
    # "auto" under the plain vmap, without the operator's cache-sized chunks (CPU)
    _operator.CHUNK_BYTES, saved = 0, _operator.CHUNK_BYTES
    try:
        _operator._solve.clear_cache()
        _, out, stats = compile_and_time(
            jax.vmap(cljax_projector(eps, "auto", global_weight)), (at, ag), args.repeats)
    finally:
        _operator.CHUNK_BYTES = saved
        _operator._solve.clear_cache()
    stats.update(per_instance_s=stats["median_s"] / n, iterations_max=int(np.max(out[2])),
                 max_abs_diff_vs_chunked=_diff(out[0], out[1], *results["auto"], unique_c))
    record["cljax_auto_plain_vmap"] = stats
    record["plain_vmap_over_chunked"] = stats["median_s"] / record["cljax_auto"]["median_s"]
    # the same in float32 (JAX's default precision), timing only
    if dtype != np.float32:
        f32 = {}
        at32, ag32 = at.astype(jnp.float32), ag.astype(jnp.float32)
        for solver in SOLVERS:
            _, out, stats = compile_and_time(
                jax.vmap(cljax_projector(eps, solver, global_weight)), (at32, ag32),
                args.repeats)
            f32[solver] = {"compile_s": stats["compile_s"], "median_s": stats["median_s"],
                           "per_instance_s": stats["median_s"] / n,
                           "iterations_max": int(np.max(out[2])),
                           "converged_fraction": float(np.mean(out[4])),
                           "max_abs_diff_vs_float64": _diff(out[0], out[1],
                                                            *results[solver], unique_c)}
        record["cljax_float32"] = f32

    theta_d, c_d = results["auto"]
    dist = np.linalg.norm(a_tasks - c_d[:, None, :], axis=-1)
    record["active_constraint_fraction"] = float(np.mean(dist > eps))

    # NumPy: a Python loop over a subset
    m = min(args.numpy_instances, n)
    def numpy_loop():
        return [project_numpy(a_tasks[i], a_global[i], eps, global_weight=global_weight)
                for i in range(m)]
    sols, med, _ = median_time(numpy_loop, args.numpy_repeats)
    np_theta = np.stack([x[0] for x in sols])
    np_c = np.stack([x[1] for x in sols])
    record["numpy"] = {"instances": m, "repeats": args.numpy_repeats, "median_s": med,
                       "per_instance_s": med / m,
                       "iterations_mean": float(np.mean([x[2] for x in sols]))}

    # CVXPY: parameterised problem (compiled once), re-solved per instance
    k = min(args.cvxpy_instances, n)
    problem = CvxpyProjection(t, s, global_weight=global_weight)
    first = problem.solve(a_tasks[0], a_global[0], eps)
    walls, cpus, solver_times, statuses, cv_theta, cv_c = [], [], [], [], [], []
    for i in range(k):
        start_cpu = time.process_time()
        theta, c, status, wall, solver_s = problem.solve(a_tasks[i], a_global[i], eps)
        cpus.append(time.process_time() - start_cpu)
        walls.append(wall)
        solver_times.append(solver_s)
        statuses.append(status)
        cv_theta.append(theta)
        cv_c.append(c)
    cv_theta, cv_c = np.stack(cv_theta), np.stack(cv_c)
    # the same instances with tight Clarabel tolerances (a separate problem object:
    # CVXPY keeps a solver's settings between solves), for the accuracy check only
    tight = CvxpyProjection(t, s, global_weight=global_weight)
    tight_sols = [tight.solve(a_tasks[i], a_global[i], eps, **TIGHT) for i in range(k)]
    tight_theta = np.stack([x[0] for x in tight_sols])
    tight_c = np.stack([x[1] for x in tight_sols])
    tight_statuses = [x[2] for x in tight_sols]
    cvx_per = statistics.median(walls)
    # CVXPY written the simple way: a new Problem (data as constants) per instance
    kr = min(args.cvxpy_rebuild_instances, n)
    rebuild = [solve_once(a_tasks[i], a_global[i], eps, global_weight=global_weight)["total_s"]
               for i in range(kr)]
    record["cvxpy"] = {
        "solver": "CLARABEL (default settings)", "instances": k,
        "first_solve_s": first[3],
        "per_instance_s": cvx_per, "per_instance_mean_s": statistics.mean(walls),
        "per_instance_cpu_s": statistics.median(cpus),
        "clarabel_solve_time_median_s": statistics.median(solver_times),
        "statuses": {st: statuses.count(st) for st in set(statuses)},
        "tight_statuses": {st: tight_statuses.count(st) for st in set(tight_statuses)},
        "timing": "wall time of Problem.solve per instance (DPP, parameters updated), median",
        "rebuild_instances": kr,
        "rebuild_per_instance_s": statistics.median(rebuild) if rebuild else None,
        "rebuild_timing": "build a new Problem with the data as constants + solve, median",
    }
    auto_per = record["cljax_auto"]["per_instance_s"]
    for solver in SOLVERS:
        record[f"speedup_{solver}_vs_cvxpy"] = cvx_per / record[f"cljax_{solver}"]["per_instance_s"]
    # CPU time (process_time, all threads) of both sides: steadier than wall time on a
    # loaded machine; cljax's CPU time counts both of XLA's threads.
    record["speedup_auto_vs_cvxpy_cpu"] = (record["cvxpy"]["per_instance_cpu_s"] * n
                                           / record["cljax_auto"]["median_cpu_s"])
    record["speedup_auto_vs_clarabel_solve_only"] = (
        record["cvxpy"]["clarabel_solve_time_median_s"] / auto_per)
    record["speedup_auto_vs_numpy"] = record["numpy"]["per_instance_s"] / auto_per
    if rebuild:
        record["speedup_auto_vs_cvxpy_rebuild"] = statistics.median(rebuild) / auto_per
    record["target_speedup_vs_cvxpy"] = 1000.0
    record["meets_target"] = bool(record["speedup_auto_vs_cvxpy"] >= 1000.0)

    sub = slice(0, k)
    obj_tight = objective(tight_theta, tight_c, a_tasks[sub], a_global[sub], global_weight)
    agreement = {"instances_vs_cvxpy": k, "instances_vs_numpy": m,
                 "compared": "θ and θ_g" if unique_c else "θ (θ_g is not unique at w_g = 0)"}
    for solver in SOLVERS:
        th, c = results[solver]
        agreement[f"max_abs_diff_{solver}_vs_cvxpy"] = _diff(th[sub], c[sub], cv_theta, cv_c,
                                                             unique_c)
        agreement[f"max_abs_diff_{solver}_vs_cvxpy_tight"] = _diff(
            th[sub], c[sub], tight_theta, tight_c, unique_c)
        agreement[f"max_rel_objective_diff_{solver}_vs_cvxpy_tight"] = float(np.max(
            np.abs(objective(th[sub], c[sub], a_tasks[sub], a_global[sub], global_weight)
                   - obj_tight) / np.maximum(np.abs(obj_tight), 1e-300)))
        agreement[f"max_abs_diff_{solver}_vs_numpy"] = _diff(th[:m], c[:m], np_theta, np_c,
                                                             unique_c)
        agreement[f"max_constraint_violation_{solver}"] = max_violation(th, c, eps)
    for solver in SOLVERS[1:]:
        agreement[f"max_abs_diff_auto_vs_{solver}"] = _diff(theta_d, c_d, *results[solver],
                                                            unique_c)
    agreement["max_constraint_violation_cvxpy"] = max_violation(cv_theta, cv_c, eps)
    record["agreement"] = agreement
    emit(record, args)


def _diff(x_theta, x_c, y_theta, y_c, with_c=True):
    if with_c:
        return max_abs_diff(x_theta, x_c, y_theta, y_c)
    return float(np.max(np.abs(np.asarray(x_theta, float) - np.asarray(y_theta, float))))


def _auto_choice(a_tasks, a_global):
    from cljax.projection._operator import _auto, _prepare
    return _auto(_prepare(a_tasks, a_global, 1.0, None, 1.0))


# ---------------------------------------------------------------------------
# Case b: few tasks, many parameters
# ---------------------------------------------------------------------------


def case_b(args):
    t, s = 5, args.b_size
    dtype = np.dtype(args.b_dtype)
    rng = np.random.default_rng(args.seed + 1)
    a_tasks = rng.standard_normal((t, s), dtype=np.float32).astype(dtype, copy=False)
    a_global = rng.standard_normal(s, dtype=np.float32).astype(dtype, copy=False)
    eps = 0.5 * math.sqrt(s)
    at, ag = jnp.asarray(a_tasks), jnp.asarray(a_global)
    stacked = jnp.concatenate([ag[None], at])
    jax.block_until_ready(stacked)
    input_bytes = int(at.nbytes + ag.nbytes)

    record = {"benchmark": BENCHMARK, "case": "b", "tasks": t, "size": s,
              "dtype": dtype.name, "eps": eps, "global_weight": 1.0,
              "input_bytes": input_bytes,
              "timing": f"median of {args.repeats} runs after compile"}
    gram_c, _, gram = compile_and_time(lambda a: a @ a.T, (stacked,), args.repeats)
    gram["what"] = "jit(A @ A.T), A the stacked (T+1) x S matrix, given"
    gram["xla_memory"] = xla_memory(gram_c)
    gram["peak_rss_increase_bytes"] = measure_peak_rss(
        lambda: jax.block_until_ready(gram_c(stacked)))
    record["gram"] = gram
    read_c, _, read = compile_and_time(lambda a: jnp.sum(a, axis=1), (stacked,), args.repeats)
    record["one_read_pass"] = {"what": "jit(sum(A, axis=1)): one streaming read of A",
                               "median_s": read["median_s"]}

    record["auto_picks"] = _auto_choice(at, ag)
    outs = {}
    for method in ("dual", "primal"):
        compiled, out, stats = compile_and_time(cljax_projector(eps, method), (at, ag),
                                                args.repeats)
        stats.update(iterations=int(out[2]), residual=float(out[3]),
                     converged=bool(out[4]), ratio_to_gram=stats["median_s"] / gram["median_s"])
        stats["xla_memory"] = xla_memory(compiled)
        outs[method] = (np.asarray(out[0]), np.asarray(out[1]))
        del out
        stats["peak_rss_increase_bytes"] = measure_peak_rss(
            lambda: jax.block_until_ready(compiled(at, ag)))
        record[f"cljax_{method}"] = stats
    record["dual_over_gram"] = record["cljax_dual"]["ratio_to_gram"]
    record["target_dual_over_gram"] = 1.5
    peak = record["cljax_dual"]["peak_rss_increase_bytes"]
    output_bytes = input_bytes  # θ_1..θ_T and θ_g: the shape of the input
    record["output_bytes"] = output_bytes
    record["dual_extra_peak_bytes_beyond_output"] = None if peak is None else peak - output_bytes
    record["target_extra_peak_bytes"] = output_bytes
    record["meets_memory_target"] = None if peak is None else bool(peak - output_bytes
                                                                  <= output_bytes)
    record["meets_target"] = bool(record["dual_over_gram"] <= 1.5)

    holder = {}
    def run_numpy():
        holder["out"] = project_numpy(a_tasks, a_global, eps)
    _, med, best = median_time(run_numpy, args.numpy_repeats)
    np_theta, np_c, np_iters, np_res = holder.pop("out")
    record["numpy"] = {"median_s": med, "min_s": best, "repeats": args.numpy_repeats,
                       "iterations": np_iters, "ratio_to_gram": med / gram["median_s"],
                       "peak_rss_increase_bytes": measure_peak_rss(run_numpy)}
    holder.clear()
    theta_d, c_d = outs["dual"]
    agreement = {
        "max_abs_diff_dual_vs_primal": max_abs_diff(theta_d, c_d, *outs["primal"]),
        "max_abs_diff_dual_vs_numpy": max_abs_diff(theta_d, c_d, np_theta, np_c),
        "max_constraint_violation_dual": max_violation(theta_d, c_d, eps),
    }
    if dtype != np.float64 and not args.no_reference:
        # float64 reference: the NumPy solver on the same data in float64 (not timed)
        ref_theta, ref_c, _, _ = project_numpy(a_tasks.astype(np.float64),
                                               a_global.astype(np.float64), eps)
        a64, g64 = a_tasks.astype(np.float64), a_global.astype(np.float64)
        ref_obj = objective(ref_theta, ref_c, a64, g64)
        agreement["reference"] = "NumPy solver in float64 on the same (float32) data"
        for name, (th, c) in (("dual", outs["dual"]), ("primal", outs["primal"]),
                              ("numpy", (np_theta, np_c))):
            agreement[f"max_abs_diff_{name}_vs_float64"] = max_abs_diff(th, c, ref_theta, ref_c)
            agreement[f"rel_objective_diff_{name}_vs_float64"] = float(
                (objective(th, c, a64, g64) - ref_obj) / ref_obj)
        del ref_theta, ref_c, a64, g64
    record["agreement"] = agreement
    record["memory"] = {
        "peak_rss_increase_bytes": "host RSS peak during one call (VmHWM reset through "
                                   "/proc/self/clear_refs) minus RSS before it; inputs "
                                   "already resident, outputs included",
        "xla_memory": "compiled.memory_analysis(): XLA's argument / output / temp buffers",
        "device_memory_stats": device_memory_stats(),
        "process_max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    emit(record, args)


# ---------------------------------------------------------------------------
# Case c: many tasks, moderate size
# ---------------------------------------------------------------------------


def case_c(args):
    t, s = args.c_tasks, args.c_size
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(args.seed + 2)
    a_tasks = rng.standard_normal((t, s)).astype(dtype)
    a_global = rng.standard_normal(s).astype(dtype)
    eps = 0.5 * math.sqrt(s)
    at, ag = jnp.asarray(a_tasks), jnp.asarray(a_global)
    record = {"benchmark": BENCHMARK, "case": "c", "tasks": t, "size": s,
              "dtype": dtype.name, "eps": eps, "global_weight": 1.0,
              "timing": f"median of {args.repeats} runs after compile"}
    record["auto_picks"] = _auto_choice(at, ag)
    outs = {}
    for method in ("dual", "primal"):
        _, out, stats = compile_and_time(cljax_projector(eps, method), (at, ag), args.repeats)
        stats.update(iterations=int(out[2]), residual=float(out[3]), converged=bool(out[4]))
        outs[method] = (np.asarray(out[0]), np.asarray(out[1]))
        record[f"cljax_{method}"] = stats
    theta_d, c_d = outs["dual"]
    record["active_constraint_fraction"] = float(
        np.mean(np.linalg.norm(a_tasks - c_d[None], axis=-1) > eps))

    holder = {}
    def run_numpy():
        holder["out"] = project_numpy(a_tasks, a_global, eps)
    _, med, best = median_time(run_numpy, args.numpy_repeats)
    np_theta, np_c, np_iters, _ = holder["out"]
    record["numpy"] = {"median_s": med, "min_s": best, "repeats": args.numpy_repeats,
                       "iterations": np_iters}
    agreement = {
        "max_abs_diff_dual_vs_primal": max_abs_diff(theta_d, c_d, *outs["primal"]),
        "max_abs_diff_dual_vs_numpy": max_abs_diff(theta_d, c_d, np_theta, np_c),
        "max_constraint_violation_dual": max_violation(theta_d, c_d, eps),
    }

    if args.cvxpy_limit_s <= 0:
        record["cvxpy"] = {"skipped": "disabled with --cvxpy-limit-s 0"}
    else:
        result, elapsed = cvxpy_with_time_limit(a_tasks.astype(float), a_global.astype(float),
                                                eps, args.cvxpy_limit_s)
        if result is None:
            record["cvxpy"] = {"skipped": f"no answer within {args.cvxpy_limit_s:g} s "
                                          "(build + Clarabel solve in a subprocess, killed)",
                               "waited_s": elapsed}
        elif "error" in result:
            record["cvxpy"] = {"skipped": result["error"], "waited_s": elapsed}
        else:
            record["cvxpy"] = {k: result[k] for k in ("status", "total_s", "cvxpy_compile_s",
                                                      "clarabel_solve_s")}
            record["cvxpy"]["what"] = ("one build + solve, data as constants, CLARABEL "
                                       "default settings, in a subprocess; total_s = wall")
            if result["theta"] is not None:
                agreement["max_abs_diff_dual_vs_cvxpy"] = max_abs_diff(
                    theta_d, c_d, result["theta"], result["c"])
                obj_cvx = objective(result["theta"], result["c"], a_tasks, a_global)
                agreement["rel_objective_diff_dual_vs_cvxpy"] = float(
                    (objective(theta_d, c_d, a_tasks, a_global) - obj_cvx) / obj_cvx)
                record["speedup_dual_vs_cvxpy"] = (
                    result["total_s"] / record["cljax_dual"]["median_s"])
                record["speedup_dual_vs_clarabel_solve_only"] = (
                    result["clarabel_solve_s"] / record["cljax_dual"]["median_s"])
    record["speedup_dual_vs_numpy"] = med / record["cljax_dual"]["median_s"]
    record["meets_target"] = bool(record["speedup_dual_vs_numpy"] > 1.0)
    record["agreement"] = agreement
    emit(record, args)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices="abc", default=list("abc"))
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a smoke run (overrides the size options)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each cljax call")
    parser.add_argument("--numpy-repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"],
                        help="dtype of cases a and c (case b: --b-dtype)")
    parser.add_argument("--instances", type=int, default=10_000, help="case a batch size")
    parser.add_argument("--cvxpy-instances", type=int, default=50, help="case a CVXPY subset")
    parser.add_argument("--cvxpy-rebuild-instances", type=int, default=20,
                        help="case a: instances solved by building a new CVXPY problem each")
    parser.add_argument("--numpy-instances", type=int, default=1000, help="case a NumPy subset")
    parser.add_argument("--eps-a", type=float, default=0.5, help="case a radius")
    parser.add_argument("--a-global-weights", type=float, nargs="+", default=[1.0, 0.0],
                        help="case a: one JSON line per global weight")
    parser.add_argument("--b-size", type=int, default=5_000_000, help="case b: S")
    parser.add_argument("--b-dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--no-reference", action="store_true",
                        help="case b: skip the float64 NumPy reference solution")
    parser.add_argument("--c-tasks", type=int, default=1000, help="case c: T")
    parser.add_argument("--c-size", type=int, default=1000, help="case c: S")
    parser.add_argument("--cvxpy-limit-s", type=float, default=60.0,
                        help="case c: time limit of the CVXPY subprocess (0 skips it)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 3)
        args.numpy_repeats = 1
        args.instances, args.cvxpy_instances, args.numpy_instances = 500, 10, 100
        args.cvxpy_rebuild_instances = 5
        args.b_size = 200_000
        args.c_tasks, args.c_size = 100, 100
        args.cvxpy_limit_s = min(args.cvxpy_limit_s, 30.0)
    # CVXPY warns on 'optimal_inaccurate'; the statuses are in the JSON instead
    warnings.filterwarnings("ignore", message="Solution may be inaccurate")
    for case in args.cases:
        args.load_at_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        {"a": case_a, "b": case_b, "c": case_c}[case](args)


if __name__ == "__main__":
    main()
