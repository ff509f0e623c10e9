"""The shared list of projection problems, and independent NumPy references.

Every algorithm of :func:`cljax.projection.project_cross_learning` runs on every
problem here (optimistix ``tests/helpers.py`` style).  The references do not use
cljax: closed forms where they exist, an independent KKT check everywhere.

KKT of min Σ_t w_t ‖θ_t − a_t‖² + w_g ‖c − a_g‖² s.t. ‖θ_t − c‖ ≤ ε (a convex
problem, so these conditions are sufficient):
  (1) ‖θ_t − c‖ ≤ ε;
  (2) a_t − θ_t = μ_t (θ_t − c) with μ_t ≥ 0 (λ_t = w_t μ_t), and μ_t = 0
      unless ‖θ_t − c‖ = ε;
  (3) w_g (c − a_g) = Σ_t w_t (a_t − θ_t)   (stationarity in c).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

ALGORITHMS = ("dual", "primal", "fixed")


class Problem(NamedTuple):
    name: str
    a: np.ndarray  # (T, S)
    a_g: np.ndarray  # (S,)
    eps: float
    w: np.ndarray  # (T,)
    wg: float


def weighted_mean(a, a_g, w, wg):
    return (w @ a + wg * a_g) / (w.sum() + wg)


def spread(a, a_g):
    pts = np.concatenate([a, a_g[None]])
    return float(np.max(np.linalg.norm(pts - pts.mean(0), axis=1)))


def kkt_violation(theta, c, a, a_g, eps, w, wg):
    """Largest violation of (1)–(3), relative to the scale of the points (NumPy only)."""
    theta, c, a, a_g = (np.asarray(x, np.float64) for x in (theta, c, a, a_g))
    scale = max(spread(a, a_g), np.max(np.abs(np.concatenate([a, a_g[None]]))) * 1e-12, 1e-300)
    d = theta - c[None]
    dist = np.linalg.norm(d, axis=1)
    feas = max(float(np.max(dist - eps)), 0.0) / scale if np.isfinite(eps) else 0.0
    diff = a - theta
    align = 0.0
    if 0 < eps < np.inf:
        mu = np.sum(diff * d, axis=1) / eps**2
        # θ_t − c is known to rounding of the points: its direction to ~ulp(|a|)/ε,
        # which allows ‖a_t − θ_t‖·4e-16·|a|/ε of misalignment (counted as 1e-9 here).
        allow = 4e-7 * np.max(np.abs(a)) / eps * np.linalg.norm(diff, axis=1)
        align = float(np.max(np.linalg.norm(diff - mu[:, None] * d, axis=1) / (scale + allow)))
        align = max(align, float(np.max(-mu)) * eps / scale)
        # μ_t > 0 only on the sphere: an inside θ_t must equal a_t
        inside = dist < eps * (1 - 1e-6) - 1e-13 * np.max(np.abs(a))
        if np.any(inside):
            align = max(align, float(np.max(np.linalg.norm(diff[inside], axis=1))) / scale)
    elif eps == np.inf:
        align = float(np.max(np.linalg.norm(diff, axis=1))) / scale
    total = w.sum() + wg
    stat = float(np.linalg.norm(wg * (c - a_g) - w @ diff)) / (scale * total)
    return max(feas, align, stat)


def closed_form(p: Problem):
    """(θ, c or None) where a closed form exists, else None."""
    if p.eps == 0:
        m = weighted_mean(p.a, p.a_g, p.w, p.wg)
        return np.broadcast_to(m, p.a.shape), m
    if p.eps == np.inf or (p.wg > 0 and np.max(np.linalg.norm(p.a - p.a_g, axis=1)) <= p.eps):
        return p.a, (p.a_g if p.wg > 0 else None)
    return None


def _problems():
    rng = np.random.default_rng(20261201)
    out = []

    def add(name, a, a_g, eps, w=None, wg=1.0):
        a = np.asarray(a, float)
        w = np.ones(a.shape[0]) if w is None else np.asarray(w, float)
        out.append(Problem(name, a, np.asarray(a_g, float), float(eps), w, float(wg)))

    for t, s in ((1, 2), (4, 2), (4, 3)):
        a, a_g = rng.normal(size=(t, s)), rng.normal(size=s)
        w = rng.uniform(0.5, 2.0, t)
        sp = spread(a, a_g)
        for wg in (0.0, 1.0, 2.5):
            for eps in (0.0, 0.3 * sp, np.inf):
                add(f"random-T{t}-S{s}-wg{wg}-eps{eps:.3g}", a, a_g, eps, w, wg)
        # degenerate ones
        add(f"coincident-T{t}-S{s}", np.tile(a_g, (t, 1)), a_g, 0.5)
        add(f"coincident-eps0-T{t}-S{s}", np.tile(a_g, (t, 1)), a_g, 0.0, wg=0.0)
        add(f"tasks-equal-T{t}-S{s}", np.tile(a[:1], (t, 1)), a_g, 0.2)
        add(f"tasks-equal-eps0-T{t}-S{s}", np.tile(a[:1], (t, 1)), a_g, 0.0)
        add(f"tasks-equal-eps-beyond-spread-T{t}-S{s}", np.tile(a[:1], (t, 1)), a_g, 10.0 * sp)
        add(f"one-ball-wg0-T{t}-S{s}", 0.1 * a, a_g, 1.0, w, wg=0.0)
        add(f"tiny-eps-T{t}-S{s}", a, a_g, 1e-9, w, wg=1.0)
        add(f"scaled-1e6-T{t}-S{s}", 1e6 * a, 1e6 * a_g, 0.3e6 * sp, w, 1.0)
        add(f"scaled-1e-6-T{t}-S{s}", 1e-6 * a, 1e-6 * a_g, 0.3e-6 * sp, w, 0.0)
    # a task exactly at the centre: symmetric configuration, c = 0 = a_1
    add("task-at-centre", [[0.0, 0.0], [2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]],
        [0.0, 0.0], 1.0)
    add("task-at-centre-wg0", [[0.0, 0.0], [2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]],
        [0.0, 0.0], 1.0, wg=0.0)
    add("two-scalar-tasks", [[-1.0], [3.0]], [0.0], 0.5, wg=0.0)
    # two tasks 1e-104 from the centre, two at distance 1: once scaled, r³ of the
    # near ones underflows to 0 (a hypothesis find that gave NaN through the
    # curvature 0/0 of "primal" at ε = 0, and ε/r³ = inf just below r)
    near = [[1.0, 0.0], [-1.0, 0.0], [0.0, 1e-104], [0.0, -1e-104]]
    add("near-centre-1e-104-eps0", near, [0.0, 0.0], 0.0)
    add("near-centre-1e-104-eps1e-110", near, [0.0, 0.0], 1e-110)
    return out


PROBLEMS = _problems()
