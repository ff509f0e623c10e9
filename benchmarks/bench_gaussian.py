"""Example 2 Monte Carlo: 100,000 realisations x 201 ε in one jitted call, against NumPy and Python.

The estimator is P̄_CL (w_g = 0, equal weights), E_CL(ε) averaged over the realisations.
Two exact solvers of it are timed:

* ``jax`` (the library's): ``cljax.centre_path.map_cross_learning_path``: a ``lax.scan``
  over the ε grid per chunk of realisations (struct of arrays), Newton warm-started
  from the previous ε with a secant predictor, certified (accepted step, quadratic
  contraction, step < tol), and the cold solver below wherever the certificate fails.
  ``jax.jit`` of the whole study (draws included), float32, compile timed separately.
* ``jax_cold`` (the previous method): ``cljax.centre_newton.project_centre_newton``
  solved independently at every ε (Newton with an exact line search, 10 iterations,
  then the two-task closed form), ``vmap`` over ε, ``lax.map`` over chunks; timed on
  ``--cold-realisations`` realisations and scaled linearly.
* ``numpy``: the cold iteration vectorised over (realisations x ε) arrays, float32,
  in chunks; timed on ``--numpy-realisations`` realisations and scaled linearly to
  the full count (``scaled: true`` in the JSON).
* ``python``: the cold iteration as a plain Python loop over instances (``math``),
  timed on ``--python-realisations`` realisations and scaled the same way.

The answers on the common subsets are compared (max |ΔE_CL| per realisation and ε),
and ``jax`` against a float64 cold solve (40 iterations) on ``--check-realisations``.
Target: jax ≤ 3 s wall on the 2-core CPU after compilation.

    python benchmarks/bench_gaussian.py            # full size
    python benchmarks/bench_gaussian.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

try:
    from _machine import machine_info
except ImportError:  # python -m benchmarks.bench_gaussian
    from benchmarks._machine import machine_info

from cljax.projection._centre_newton import DEFAULT_ITERATIONS, project_centre_newton
from cljax.projection._operator import BISECTIONS as _BISECTIONS
from cljax.projection._centre_path import DEFAULT_CHUNK, DEFAULT_PATH_STEPS, map_cross_learning_path
from cljax.experiments.gaussian.studies import example2_centres

BENCHMARK = "bench_gaussian"


def draws(key, realisations, sigma, mu):
    theta = example2_centres(mu).astype(jnp.float32)
    return theta[None] + sigma * jax.random.normal(key, (realisations, 4, 2), jnp.float32)


def jax_study(realisations, grid, sigma, mu, chunk):
    """The library's path solver; returns the mean curve, E_CL per realisation, the draws."""
    theta = example2_centres(mu).astype(jnp.float32)

    def study(key):
        means = draws(key, realisations, sigma, mu)
        e_cl, certified = map_cross_learning_path(
            means, grid, lambda a, th, c, e: jnp.mean(jnp.sum((th - theta) ** 2, -1)), chunk=chunk)
        return jnp.mean(e_cl, 0), e_cl, means, jnp.mean(certified)

    return study


def jax_cold_study(realisations, count, grid, sigma, mu, batch_size):
    """The previous method: a cold solve at every ε (same draws as jax_study for the same key)."""
    theta = example2_centres(mu).astype(jnp.float32)

    def study(key):
        means = draws(key, realisations, sigma, mu)[:count]

        def one(y):
            est = jax.vmap(lambda e: project_centre_newton(y, e).task_params)(grid)
            return jnp.mean(jnp.sum((est - theta) ** 2, -1), -1)

        return jax.lax.map(one, means, batch_size=min(batch_size, count))

    return study


# ----------------------------------------------------------------------------- NumPy


def _np_objective(points, c, eps):
    r = np.sqrt(np.sum((c[..., None, :] - points) ** 2, -1))
    return np.sum(np.maximum(r - eps[..., None], 0) ** 2, -1)


def numpy_project(points, eps, iterations=DEFAULT_ITERATIONS, bisections=_BISECTIONS):
    """points (B, T, 2), eps (B,): θ (B, T, 2).  Vectorised over B."""
    dt = points.dtype
    mean = points.mean(1)
    spread = np.sqrt(np.sum((points - mean[:, None]) ** 2, -1)).max(1)
    eps = np.minimum(eps, 2 * spread).astype(dt)
    c = mean.copy()
    tiny = np.finfo(dt).eps * points.shape[1]
    for _ in range(iterations):
        v = c[:, None, :] - points
        q = np.sum(v * v, -1)
        r = np.sqrt(q)
        den = np.maximum(r, eps[:, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.where(den > 0, (den - eps[:, None]) / np.where(den > 0, den, 1), 1)
            out = r > eps[:, None]
            curv = np.where(out, eps[:, None] / np.where(out, r, 1) ** 3, 0)
        g = np.sum(rho[..., None] * v, 1)
        alpha = rho.sum(1) + tiny
        h00 = alpha + np.sum(curv * v[..., 0] ** 2, 1)
        h11 = alpha + np.sum(curv * v[..., 1] ** 2, 1)
        h01 = np.sum(curv * v[..., 0] * v[..., 1], 1)
        det = h00 * h11 - h01 * h01
        d = -np.stack([h11 * g[:, 0] - h01 * g[:, 1], h00 * g[:, 1] - h01 * g[:, 0]], -1) / det[:, None]
        p = np.sum(v * d[:, None, :], -1)
        hh = np.sum(d * d, -1)

        def slope(tau):
            rr = np.sqrt(np.maximum(q + 2 * tau[:, None] * p + (tau**2)[:, None] * hh[:, None], 0))
            dn = np.maximum(rr, eps[:, None])
            with np.errstate(invalid="ignore", divide="ignore"):
                rh = np.where(dn > 0, (dn - eps[:, None]) / np.where(dn > 0, dn, 1), 1)
            return np.sum(rh * (p + tau[:, None] * hh[:, None]), 1)

        lo, hi = np.zeros(len(c), dt), np.ones(len(c), dt)
        for _ in range(bisections):
            mid = (lo + hi) / 2
            up = slope(mid) > 0
            lo, hi = np.where(up, lo, mid), np.where(up, mid, hi)
        tau = np.where(slope(np.ones(len(c), dt)) <= 0, 1, (lo + hi) / 2).astype(dt)
        c = c + tau[:, None] * d
    # two-task polish
    v = c[:, None, :] - points
    idx = np.argsort(-np.sum(v * v, -1), 1)[:, :2]
    b = np.arange(len(c))
    ai, aj = points[b, idx[:, 0]], points[b, idx[:, 1]]
    dist = np.sqrt(np.sum((aj - ai) ** 2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        pair = ai + np.where(dist > 0, (dist / 2) / np.where(dist > 0, dist, 1), 0)[:, None] * (aj - ai)
    c = np.where((_np_objective(points, pair, eps) <= _np_objective(points, c, eps))[:, None], pair, c)
    diff = points - c[:, None, :]
    r = np.sqrt(np.sum(diff * diff, -1))
    out = r > eps[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(out, eps[:, None] / np.where(out, r, 1), 1)
    return np.where(out[..., None], c[:, None, :] + scale[..., None] * diff, points)


def numpy_study(means, grid, theta, chunk=500):
    out = []
    e = len(grid)
    for s in range(0, len(means), chunk):
        y = means[s:s + chunk]
        pts = np.repeat(y, e, axis=0)
        eps = np.tile(grid, len(y)).astype(y.dtype)
        est = numpy_project(pts, eps)
        out.append(np.mean(np.sum((est - theta) ** 2, -1), -1).reshape(len(y), e))
    return np.concatenate(out)


# ----------------------------------------------------------------------------- Python


def python_project(points, eps, iterations=DEFAULT_ITERATIONS, bisections=_BISECTIONS):
    t = len(points)
    mx = sum(p[0] for p in points) / t
    my = sum(p[1] for p in points) / t
    spread = max(math.hypot(p[0] - mx, p[1] - my) for p in points)
    eps = min(eps, 2 * spread)
    cx, cy = mx, my

    def obj(x, y):
        return sum(max(math.hypot(x - p[0], y - p[1]) - eps, 0.0) ** 2 for p in points)

    for _ in range(iterations):
        gx = gy = alpha = h00 = h11 = h01 = 0.0
        vs = []
        for p in points:
            vx, vy = cx - p[0], cy - p[1]
            r = math.hypot(vx, vy)
            den = max(r, eps)
            rho = (den - eps) / den if den > 0 else 1.0
            curv = eps / r**3 if r > eps else 0.0
            gx += rho * vx
            gy += rho * vy
            alpha += rho
            h00 += curv * vx * vx
            h11 += curv * vy * vy
            h01 += curv * vx * vy
            vs.append((vx, vy, vx * vx + vy * vy))
        alpha += 2.220446049250313e-16 * t
        h00 += alpha
        h11 += alpha
        det = h00 * h11 - h01 * h01
        dx = -(h11 * gx - h01 * gy) / det
        dy = -(h00 * gy - h01 * gx) / det
        hh = dx * dx + dy * dy

        def slope(tau):
            s = 0.0
            for vx, vy, q in vs:
                p_ = vx * dx + vy * dy
                rr = math.sqrt(max(q + 2 * tau * p_ + tau * tau * hh, 0.0))
                dn = max(rr, eps)
                s += ((dn - eps) / dn if dn > 0 else 1.0) * (p_ + tau * hh)
            return s

        lo, hi = 0.0, 1.0
        for _ in range(bisections):
            mid = (lo + hi) / 2
            if slope(mid) > 0:
                hi = mid
            else:
                lo = mid
        tau = 1.0 if slope(1.0) <= 0 else (lo + hi) / 2
        cx, cy = cx + tau * dx, cy + tau * dy
    order = sorted(range(t), key=lambda i: -((cx - points[i][0]) ** 2 + (cy - points[i][1]) ** 2))
    ai, aj = points[order[0]], points[order[1]]
    px, py = (ai[0] + aj[0]) / 2, (ai[1] + aj[1]) / 2
    if obj(px, py) <= obj(cx, cy):
        cx, cy = px, py
    out = []
    for p in points:
        r = math.hypot(p[0] - cx, p[1] - cy)
        if r > eps:
            out.append((cx + eps / r * (p[0] - cx), cy + eps / r * (p[1] - cy)))
        else:
            out.append(tuple(p))
    return out


def python_study(means, grid, theta):
    rows = []
    for y in means.tolist():
        row = []
        for e in grid.tolist():
            est = python_project(y, e)
            row.append(sum((a - b) ** 2 + (c - d) ** 2
                           for (a, c), (b, d) in zip(est, theta.tolist())) / len(est))
        rows.append(row)
    return np.asarray(rows)


def timed(fn, key, repeats):
    """Compile time, then the median and min of ``repeats`` calls after a warm-up call."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(key).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(key))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(key))
        times.append(time.perf_counter() - start)
    return compile_s, statistics.median(times), min(times), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--realisations", type=int, default=100_000)
    parser.add_argument("--num-eps", type=int, default=201)
    parser.add_argument("--sigma", type=float, default=2.0)
    parser.add_argument("--mu", type=float, default=2.0)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    parser.add_argument("--batch-size", type=int, default=2000, help="jax_cold's lax.map chunk")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold-realisations", type=int, default=10_000)
    parser.add_argument("--numpy-realisations", type=int, default=2000)
    parser.add_argument("--python-realisations", type=int, default=20)
    parser.add_argument("--check-realisations", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.realisations, args.repeats, args.cold_realisations = 5000, 2, 1000
        args.numpy_realisations, args.python_realisations, args.check_realisations = 200, 4, 200
    load_at_start = list(os.getloadavg())
    grid = jnp.linspace(0.0, 10.0, args.num_eps, dtype=jnp.float32)
    key = jax.random.PRNGKey(0)
    r = args.realisations
    compile_s, jax_s, jax_min, (curve, e_cl, means, certified) = timed(
        jax_study(r, grid, args.sigma, args.mu, args.chunk), key, args.repeats)

    k = min(args.cold_realisations, r)
    cold_compile_s, cold_subset_s, _, e_cold = timed(
        jax_cold_study(r, k, grid, args.sigma, args.mu, args.batch_size), key, 1)
    cold_s = cold_subset_s * r / k

    means_np = np.asarray(means)
    grid_np = np.asarray(grid)
    theta = np.asarray(example2_centres(args.mu), np.float32)
    e_cl = np.asarray(e_cl)

    n = min(args.numpy_realisations, r)
    start = time.perf_counter()
    e_np = numpy_study(means_np[:n], grid_np, theta)
    numpy_subset_s = time.perf_counter() - start
    numpy_s = numpy_subset_s * r / n

    m = min(args.python_realisations, r)
    start = time.perf_counter()
    e_py = python_study(means_np[:m].astype(np.float64), grid_np.astype(np.float64), theta)
    python_subset_s = time.perf_counter() - start
    python_s = python_subset_s * r / m

    # accuracy: float64 cold solve with 40 iterations on a subset
    q = min(args.check_realisations, r)
    with jax.enable_x64(True):
        theta64 = jnp.asarray(theta, jnp.float64)
        ref = jax.jit(jax.vmap(lambda y: jax.vmap(lambda e: jnp.mean(jnp.sum(
            (project_centre_newton(y, e, iterations=40).task_params - theta64) ** 2, -1)))(
                jnp.asarray(grid_np, jnp.float64))))(jnp.asarray(means_np[:q], jnp.float64))
        ref = np.asarray(ref)

    record = {
        "benchmark": BENCHMARK, "problem": "Example 2, T=4, d=2, one sample per task",
        "realisations": r, "num_eps": args.num_eps,
        "projections": r * args.num_eps, "sigma": args.sigma, "mu": args.mu,
        "dtype": "float32",
        "jax": {"method": "centre_path (warm-started certified Newton along the grid)",
                "compile_s": compile_s, "median_s": jax_s, "min_s": jax_min,
                "repeats": args.repeats, "chunk": args.chunk, "steps": DEFAULT_PATH_STEPS,
                "certified_fraction": float(certified),
                "per_projection_ns": jax_s / (r * args.num_eps) * 1e9},
        "jax_cold": {"method": "project_centre_newton at every ε (previous)",
                     "iterations": DEFAULT_ITERATIONS, "bisections": _BISECTIONS,
                     "compile_s": cold_compile_s, "realisations_timed": k,
                     "subset_s": cold_subset_s, "full_s_scaled": cold_s, "scaled": k < r},
        "numpy": {"method": "cold iteration, vectorised", "realisations_timed": n,
                  "subset_s": numpy_subset_s, "full_s_scaled": numpy_s, "scaled": n < r},
        "python": {"method": "cold iteration, plain loop", "realisations_timed": m,
                   "subset_s": python_subset_s, "full_s_scaled": python_s, "scaled": m < r,
                   "precision": "float64 (Python floats), inputs the float32 draws"},
        "speedup_jax_vs_jax_cold": cold_s / jax_s,
        "speedup_jax_vs_numpy": numpy_s / jax_s,
        "speedup_jax_vs_python": python_s / jax_s,
        "target_s": 3.0, "target_met": jax_s <= 3.0,
        "max_abs_diff_E_CL_jax_vs_float64": float(np.max(np.abs(e_cl[:q] - ref))),
        "max_abs_diff_E_CL_jax_cold_vs_float64": float(np.max(np.abs(np.asarray(e_cold)[:q] - ref[:k]))),
        "max_abs_diff_E_CL_numpy_vs_jax": float(np.max(np.abs(e_np - e_cl[:n]))),
        "max_abs_diff_E_CL_python_vs_jax": float(np.max(np.abs(e_py - e_cl[:m]))),
        "E_CL_min": float(np.min(curve)), "eps_at_min": float(grid_np[int(np.argmin(curve))]),
        "load_average_at_start": load_at_start, "machine": machine_info(),
    }
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
