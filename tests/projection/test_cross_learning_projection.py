"""Tests of the cross-learning projection P_C (DESIGN §2).

    min Σ_t w_t ‖θ_t − a_t‖² + w_g ‖θ_g − a_g‖²   s.t. ‖θ_t − θ_g‖ ≤ ε.

References, independent of the library:
* CVXPY with Clarabel at tightened tolerances (the SOCP itself), its variables
  polished by BFGS on the reduced objective F(c) of DESIGN §2;
* closed forms: ε = 0 (weighted mean), ε = ∞ (the points), T = 1, two scalar
  tasks, all tasks equal, symmetric configurations;
* the stationarity (KKT) conditions of EUSIPCO eqs. 12–13;
* convex-projection properties (idempotence, non-expansiveness);
* central finite differences for derivatives.

The suite runs in float64 (tests/conftest.py).  Instances are grouped by a small
set of (T, S) shapes and solved through one jitted function, so each shape
compiles once per method.
"""

from __future__ import annotations

import functools
import warnings

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cljax.projection._operator import ProjectionResult, cross_learning_objective, project_cross_learning
from conftest import METHODS, PROJECT_JIT, TOL32, TOL64

# ---------------------------------------------------------------------------
# Helpers: instances, references, checks
# ---------------------------------------------------------------------------


def weighted_mean(points_task, point_global, task_weights, global_weight):
    """Σ_j w_j a_j / Σ_j w_j over the T task points and the global point."""
    num = task_weights @ points_task + global_weight * point_global
    return num / (task_weights.sum() + global_weight)


def problem_scale(points_task, point_global, task_weights, global_weight):
    """(spread, objective scale): the largest distance of a point from the weighted
    mean of all T+1 points (weighted with w_g = 1, so never degenerate), and
    spread² (Σ w_t + w_g), which bounds every objective value of interest."""
    m = weighted_mean(points_task, point_global, task_weights, 1.0)
    spread = max(np.linalg.norm(points_task - m, axis=1).max(),
                 np.linalg.norm(point_global - m))
    return spread, spread**2 * (task_weights.sum() + global_weight)


def numpy_objective(theta, theta_g, points_task, point_global, task_weights, global_weight):
    return float(task_weights @ np.sum((theta - points_task) ** 2, axis=1)
                 + global_weight * np.sum((theta_g - point_global) ** 2))


def cvxpy_projection(points_task, point_global, eps, task_weights, global_weight):
    """The projection as a CVXPY SOCP solved by Clarabel at tight tolerances.

    The problem is translation- and scale-equivariant, so it is solved on points
    centred at their mean and scaled to unit spread (Clarabel's tolerances are
    absolute), and mapped back.  The variables are then polished (see
    ``polish_centre``).  Returns (CVXPY's objective value, θ (T, S), θ_g (S,)).
    """
    t, s = points_task.shape
    shift = np.mean(np.vstack([points_task, point_global]), axis=0)
    unit = max(np.linalg.norm(points_task - shift, axis=1).max(),
               np.linalg.norm(point_global - shift))
    unit = unit if unit > 0 else 1.0
    a, a_g, e = (points_task - shift) / unit, (point_global - shift) / unit, eps / unit
    theta = cp.Variable((t, s))
    theta_g = cp.Variable(s)
    objective = cp.sum(cp.multiply(task_weights, cp.sum(cp.square(theta - a), axis=1)))
    if global_weight:
        objective = objective + global_weight * cp.sum_squares(theta_g - a_g)
    constraints = []
    if np.isfinite(e):
        constraints = [cp.norm(theta - np.ones((t, 1)) @ cp.reshape(theta_g, (1, s), order="C"),
                               axis=1) <= e]
    problem = cp.Problem(cp.Minimize(objective), constraints)
    # At 1e-12 Clarabel sometimes stops at "optimal_inaccurate" (its own floor),
    # or fails outright; then retry at looser, still tight, tolerances.
    for tol in (1e-12, 1e-10, 1e-9):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                problem.solve(solver=cp.CLARABEL, tol_gap_abs=tol, tol_gap_rel=tol,
                              tol_feas=tol, tol_ktratio=100 * tol, max_iter=500)
        except cp.error.SolverError:
            continue
        if problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            break
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), problem.status
    th, g = np.asarray(theta.value), theta_g.value
    if g is None:  # ε = ∞ and w_g = 0: θ_g appears nowhere and CVXPY leaves it unset.
        g = np.full(s, np.nan)
    elif np.isfinite(e):
        th, g = polish_centre(np.asarray(g), a, a_g, e, task_weights, global_weight)
        # Clarabel's objective is accurate to ~1e-9..1e-7 relative but its variables
        # only to ~1e-5 (DESIGN §2), worse with many variables: the honest check of
        # the polish is that it never worsens the objective (1e-8 of the unit-spread
        # scale), lowers it at most by Clarabel's own accuracy (1e-6 relative), and
        # moves the variables within Clarabel's accuracy (1e-3 of the spread, against
        # O(1) for a wrong polish).
        f_scale = task_weights.sum() + global_weight
        polished = numpy_objective(th, g, a, a_g, task_weights, global_weight)
        assert polished <= problem.value + 1e-8 * f_scale, (
            f"polishing worsened the oracle's objective: {polished!r} vs {problem.value!r}")
        assert polished >= problem.value * (1 - 1e-6) - 1e-12 * f_scale, (
            f"polishing found a much better point: {polished!r} vs {problem.value!r}")
        assert np.abs(th - theta.value).max() <= 1e-3, "polishing moved the oracle's answer"
    return float(problem.value) * unit**2, th * unit + shift, g * unit + shift


def polish_centre(c0, a, a_g, eps, w, wg):
    """Refine the oracle's centre c = θ_g by BFGS on the reduced objective
    F(c) = Σ_t w_t (‖c − a_t‖ − ε)₊² + w_g ‖c − a_g‖² (DESIGN §2), and rebuild
    θ_t as the projections of a_t onto B(c, ε).

    Clarabel's objective is accurate to ~1e-9 but its variables only to ~1e-5;
    polishing gives the variables an independent reference at the accuracy the
    tests ask of them.
    """

    def f_and_grad(c):
        diff = c - a
        r = np.linalg.norm(diff, axis=1)
        excess = np.maximum(r - eps, 0.0)
        coef = 2 * w * excess / np.where(r > 0, r, 1.0)
        value = w @ excess**2 + wg * np.sum((c - a_g) ** 2)
        return value, coef @ diff + 2 * wg * (c - a_g)

    result = scipy.optimize.minimize(f_and_grad, c0, jac=True, method="BFGS",
                                     options={"gtol": 1e-13, "maxiter": 2000})
    c = result.x if result.fun <= f_and_grad(c0)[0] else c0
    r = np.linalg.norm(a - c, axis=1, keepdims=True)
    theta = c + (a - c) * np.minimum(1.0, eps / np.where(r > 0, r, 1.0))
    return theta, c


def random_instance(rng, t, s):
    """Points a_1..a_T, a_g around a common base, with heterogeneous spreads (so
    that some tasks sit inside the ball and some outside), a random overall
    scale, and random task weights."""
    scale = 10.0 ** rng.uniform(-1, 1)
    base = scale * rng.normal(size=s)
    task_spread = 10.0 ** rng.uniform(-1, 0.5, size=t)
    points_task = base + scale * task_spread[:, None] * rng.normal(size=(t, s))
    point_global = base + scale * rng.uniform(0, 1.5) * rng.normal(size=s)
    task_weights = 10.0 ** rng.uniform(-1, 1, size=t)
    return points_task, point_global, task_weights


def draw_eps(kind, rng, points_task, point_global, task_weights):
    if kind == "zero":
        return 0.0
    if kind == "tiny":
        return 1e-8
    if kind == "huge":
        return 1e6
    if kind == "inf":
        return np.inf
    assert kind == "typical"
    m = weighted_mean(points_task, point_global, task_weights, 1.0)
    dist = np.linalg.norm(points_task - m, axis=1)
    return float(rng.uniform(0.05, 1.5) * np.median(dist))


def project(task_params, global_params, eps, *, w=None, wg=1.0, method="dual"):
    """Call the jitted projection, every number passed as an array (no recompiles).

    Returns (θ, θ_g, result) with θ, θ_g as NumPy arrays (pytrees of them).
    """
    leaves = jax.tree_util.tree_leaves(task_params)
    if w is None:
        w = np.ones(np.shape(leaves[0])[0])
    out = PROJECT_JIT(task_params, global_params, jnp.asarray(eps),
                      task_weights=jnp.asarray(w), global_weight=jnp.asarray(wg),
                      method=method, tol=TOL64)
    as_numpy = lambda tree: jax.tree_util.tree_map(np.asarray, tree)  # noqa: E731
    return as_numpy(out.task_params), as_numpy(out.global_params), out


def max_distance(theta, theta_g):
    return float(np.linalg.norm(theta - theta_g[None], axis=1).max())


def assert_feasible(theta, theta_g, eps, scale=1.0):
    dist = max_distance(theta, theta_g)
    bound = eps * (1 + 1e-9) + 1e-12 * max(scale, 1.0)
    assert dist <= bound, f"max_t ||θ_t − θ_g|| = {dist!r} > ε = {eps!r}"


# ---------------------------------------------------------------------------
# 1. Accuracy against CVXPY (and the closed form at ε = 0)
# ---------------------------------------------------------------------------

ORACLE_SHAPES = [(1, 1), (1, 10), (2, 1), (2, 3), (5, 3), (5, 100),
                 (15, 10), (15, 100), (50, 3), (50, 100)]
EPS_KINDS = ("zero", "tiny", "typical", "huge", "inf")
# The limits (ε = 0, 1e-8, 1e6, ∞) have closed forms that other tests check at every
# shape; the oracle's work is the typical, partly active ε.
SEEDS_PER_KIND = {"zero": 1, "tiny": 1, "typical": 4, "huge": 1, "inf": 1}


@pytest.mark.parametrize("shape", ORACLE_SHAPES, ids=lambda sh: f"T{sh[0]}-S{sh[1]}")
def test_matches_cvxpy_oracle(shape):
    """Both methods agree with the SOCP oracle: objective to 1e-6 relative,
    feasibility to 1e-9 relative, variables (against the polished oracle) to
    1e-7 of the points' spread.

    Per shape: ε ∈ {0, 1e-8, typical, 1e6, ∞} × (1, 1, 4, 1, 1) seeds × w_g ∈ {0, 1},
    16 instances; over the 10 shapes 160 instances per method.  (One test per
    shape, so that each shape compiles once per method.)
    """
    t, s = shape
    rng = np.random.default_rng([t, s])
    for eps_kind in EPS_KINDS:
        for seed in range(SEEDS_PER_KIND[eps_kind]):
            for global_weight in (0.0, 1.0):
                check_against_reference(rng, t, s, eps_kind, seed, global_weight)


def check_against_reference(rng, t, s, eps_kind, seed, global_weight):
    a, a_g, w = random_instance(rng, t, s)
    eps = draw_eps(eps_kind, rng, a, a_g, w)
    spread, f_scale = problem_scale(a, a_g, w, global_weight)
    if eps == 0.0:
        # Interior-point solvers fail on the empty-interior cone: closed form.
        m = weighted_mean(a, a_g, w, global_weight)
        ref_theta, ref_g = np.broadcast_to(m, a.shape), m
        ref_value = numpy_objective(ref_theta, ref_g, a, a_g, w, global_weight)
        var_atol = 1e-10 * spread
    else:
        ref_value, ref_theta, ref_g = cvxpy_projection(a, a_g, eps, w, global_weight)
        var_atol = 1e-7 * spread  # the polished oracle agrees to ~3e-9 on these seeds
    for method in METHODS:
        where = f"{method=}, {eps_kind=}, {seed=}, {global_weight=}, {eps=}"
        theta, theta_g, out = project(a, a_g, eps, w=w, wg=global_weight, method=method)
        assert bool(out.converged), where
        value = float(cross_learning_objective(theta, theta_g, a, a_g, w, global_weight))
        assert abs(value - ref_value) <= 1e-6 * abs(ref_value) + 1e-12 * f_scale, (
            f"{where}: objective {value!r} vs oracle {ref_value!r}")
        assert_feasible(theta, theta_g, eps, spread)
        np.testing.assert_allclose(theta, ref_theta, rtol=0, atol=var_atol, err_msg=where)
        if global_weight > 0 or eps == 0.0:  # θ_g is unique
            np.testing.assert_allclose(theta_g, ref_g, rtol=0, atol=var_atol, err_msg=where)


def test_objective_matches_definition():
    rng = np.random.default_rng(0)
    a, a_g, w = random_instance(rng, 4, 3)
    theta, theta_g = rng.normal(size=(4, 3)), rng.normal(size=3)
    for global_weight in (0.0, 0.7):
        got = cross_learning_objective(theta, theta_g, a, a_g, w, global_weight)
        want = numpy_objective(theta, theta_g, a, a_g, w, global_weight)
        np.testing.assert_allclose(float(got), want, rtol=1e-13)
    got = cross_learning_objective(theta, theta_g, a, a_g)  # default weights 1, 1
    want = numpy_objective(theta, theta_g, a, a_g, np.ones(4), 1.0)
    np.testing.assert_allclose(float(got), want, rtol=1e-13)


# ---------------------------------------------------------------------------
# 2. Properties (hypothesis), at one fixed shape to compile once
# ---------------------------------------------------------------------------

PT, PS = 4, 3
coordinates = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
task_points = hnp.arrays(np.float64, (PT, PS), elements=coordinates)
global_points = hnp.arrays(np.float64, (PS,), elements=coordinates)
radii = st.one_of(st.just(0.0), st.floats(1e-6, 30.0), st.just(np.inf))
positive_radii = st.floats(1e-3, 30.0)
weight_vectors = hnp.arrays(np.float64, (PT,), elements=st.floats(0.1, 10.0))
global_weights = st.sampled_from([0.0, 1.0, 2.5])
methods = st.sampled_from(METHODS)
property_settings = settings(max_examples=40, deadline=None)


@property_settings
@given(a=task_points, a_g=global_points, eps=radii, w=weight_vectors, wg=global_weights,
       method=methods)
def test_output_is_feasible(a, a_g, eps, w, wg, method):
    theta, theta_g, _ = project(a, a_g, eps, w=w, wg=wg, method=method)
    assert np.all(np.isfinite(theta)) and np.all(np.isfinite(theta_g))
    spread, _ = problem_scale(a, a_g, w, wg)
    assert_feasible(theta, theta_g, eps, spread)


@property_settings
@given(theta_g=global_points, directions=task_points,
       lengths=hnp.arrays(np.float64, (PT,), elements=st.one_of(
           st.just(1.0), st.floats(0.0, 1.0))),
       eps=positive_radii, w=weight_vectors, method=methods)
def test_feasible_point_is_fixed(theta_g, directions, lengths, eps, w, method):
    """A feasible (θ, θ_g) projects to itself (w_g = 1); with w_g = 0 the θ_t
    are unchanged (to the solver's accuracy in the objective)."""
    # Rescale before normalising: ‖d‖ of tiny directions would underflow.
    largest = np.abs(directions).max(axis=1, keepdims=True)
    directions = directions / np.where(largest > 0, largest, 1.0)
    norms = np.linalg.norm(directions, axis=1, keepdims=True)
    unit = np.where(norms > 0, directions / np.where(norms > 0, norms, 1.0), 0.0)
    theta = theta_g + eps * lengths[:, None] * unit
    atol = 1e-9 * (1 + np.abs(theta).max())
    out_theta, out_g, _ = project(theta, theta_g, eps, w=w, wg=1.0, method=method)
    np.testing.assert_allclose(out_theta, theta, rtol=0, atol=atol)
    np.testing.assert_allclose(out_g, theta_g, rtol=0, atol=atol)
    # With w_g = 0 the check is on the objective (0 at the answer).  F then has no
    # strongly convex term, and where the centres that fit form a single point
    # (two tasks exactly 2ε apart) Newton converges sublinearly: the objective
    # still comes out at ~1e-11 relative, but the θ_t only to ~1e-5 (reported).
    out_theta, _, _ = project(theta, theta_g, eps, w=w, wg=0.0, method=method)
    size = 1 + np.abs(theta).max()
    assert w @ np.sum((out_theta - theta) ** 2, axis=1) <= 1e-9 * w.sum() * size**2


@property_settings
@given(a=task_points, a_g=global_points, eps=radii, method=methods)
def test_projection_is_idempotent(a, a_g, eps, method):
    theta, theta_g, _ = project(a, a_g, eps, method=method)
    again, again_g, _ = project(theta, theta_g, eps, method=method)
    atol = 1e-9 * (1 + np.abs(a).max() + np.abs(a_g).max())
    np.testing.assert_allclose(again, theta, rtol=0, atol=atol)
    np.testing.assert_allclose(again_g, theta_g, rtol=0, atol=atol)


@property_settings
@given(x=task_points, x_g=global_points, y=task_points, y_g=global_points, eps=radii,
       method=methods)
def test_projection_is_non_expansive(x, x_g, y, y_g, eps, method):
    """With w_t = w_g = 1 the map is the Euclidean projection onto a convex set
    of (T+1)-block points, hence 1-Lipschitz over all blocks together."""
    px, px_g, _ = project(x, x_g, eps, method=method)
    py, py_g, _ = project(y, y_g, eps, method=method)
    out_sq = np.sum((px - py) ** 2) + np.sum((px_g - py_g) ** 2)
    in_sq = np.sum((x - y) ** 2) + np.sum((x_g - y_g) ** 2)
    size = 1 + max(np.abs(x).max(), np.abs(y).max(), np.abs(x_g).max(), np.abs(y_g).max())
    assert out_sq <= in_sq * (1 + 1e-9) + (1e-12 * size) ** 2


@property_settings
@given(a=task_points, a_g=global_points, eps=positive_radii, w=weight_vectors,
       wg=global_weights, method=methods)
def test_satisfies_stationarity_conditions(a, a_g, eps, w, wg, method):
    """EUSIPCO eqs. 12–13 with c = θ_g and ρ_t = (1 − ε/‖a_t − c‖)₊:
    θ_t = (1 − ρ_t) a_t + ρ_t c and c = (w_g a_g + Σ w_t ρ_t a_t)/(w_g + Σ w_t ρ_t)."""
    theta, c, _ = project(a, a_g, eps, w=w, wg=wg, method=method)
    spread, _ = problem_scale(a, a_g, w, wg)
    atol = 1e-8 * (1 + spread)
    r = np.linalg.norm(a - c, axis=1)
    rho = np.where(r > eps, 1 - eps / np.where(r > 0, r, 1.0), 0.0)
    np.testing.assert_allclose(theta, (1 - rho[:, None]) * a + rho[:, None] * c,
                               rtol=0, atol=atol)
    # ∇F(c)/2 = w_g (c − a_g) + Σ w_t ρ_t (c − a_t) = 0: the multiplied-out form,
    # which also holds when the denominator vanishes.
    total = wg + np.sum(w)
    np.testing.assert_allclose(wg * (c - a_g) + (w * rho) @ (c - a), 0.0,
                               atol=atol * total)
    denominator = wg + np.sum(w * rho)
    if denominator > 1e-3 * total:
        fixed_point = (wg * a_g + (w * rho) @ a) / denominator
        np.testing.assert_allclose(c, fixed_point, rtol=0, atol=atol * total / denominator)


# ---------------------------------------------------------------------------
# 3. Limits, degenerate configurations and closed forms
# ---------------------------------------------------------------------------


@pytest.fixture
def instance():
    """A (T, S) = (5, 3) instance with random weights."""
    return random_instance(np.random.default_rng(7), 5, 3)


@pytest.mark.parametrize("global_weight", [0.0, 1.0, 3.0])
def test_eps_zero_gives_weighted_mean(instance, method, global_weight):
    """ε = 0 is consensus: every θ_t and θ_g equal Σ_j w_j a_j / Σ_j w_j, where a_g
    counts with weight w_g."""
    a, a_g, w = instance
    theta, theta_g, _ = project(a, a_g, 0.0, w=w, wg=global_weight, method=method)
    m = weighted_mean(a, a_g, w, global_weight)
    np.testing.assert_allclose(theta, np.broadcast_to(m, a.shape), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(theta_g, m, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("eps", [np.inf, 1e6], ids=["inf", "huge"])
@pytest.mark.parametrize("global_weight", [0.0, 1.0])
def test_large_eps_returns_the_points(instance, method, eps, global_weight):
    """ε = ∞ (or beyond the points' spread) is separate learning: θ_t = a_t, and
    with w_g > 0 also θ_g = a_g."""
    a, a_g, w = instance
    theta, theta_g, _ = project(a, a_g, eps, w=w, wg=global_weight, method=method)
    np.testing.assert_allclose(theta, a, rtol=1e-13, atol=1e-13)
    if global_weight > 0:
        np.testing.assert_allclose(theta_g, a_g, rtol=1e-13, atol=1e-13)
    assert np.all(np.isfinite(theta_g))
    assert_feasible(theta, theta_g, eps)


def two_block_closed_form(a, b, w_a, w_b, eps):
    """min w_a‖x − a‖² + w_b‖y − b‖² s.t. ‖x − y‖ ≤ ε: both move along the segment,
    sharing the excess d − ε in inverse proportion to their weights."""
    d = np.linalg.norm(a - b)
    if d <= eps:
        return a, b
    u = (a - b) / d
    excess = d - eps
    if w_b == 0:
        return a, a - eps * u  # y is free (not unique): x stays
    return a - excess * w_b / (w_a + w_b) * u, b + excess * w_a / (w_a + w_b) * u


@pytest.mark.parametrize("s", [1, 4])
@pytest.mark.parametrize("global_weight", [0.0, 1.0, 2.0])
def test_single_task_closed_form(method, s, global_weight):
    rng = np.random.default_rng(s)
    a, a_g, w = rng.normal(size=(1, s)) * 2, rng.normal(size=s), np.array([1.7])
    for eps in (0.0, 0.3, 0.8 * np.linalg.norm(a[0] - a_g), 5.0):
        theta, theta_g, _ = project(a, a_g, eps, w=w, wg=global_weight, method=method)
        want_theta, want_g = two_block_closed_form(a[0], a_g, w[0], global_weight, eps)
        np.testing.assert_allclose(theta[0], want_theta, atol=1e-12, err_msg=f"{eps=}")
        if global_weight > 0 or eps == 0:
            np.testing.assert_allclose(theta_g, want_g, atol=1e-12, err_msg=f"{eps=}")
        assert_feasible(theta, theta_g, eps)


def test_single_scalar_task(method):
    """T = 1, S = 1: a = 3, a_g = 0, ε = 1, w = w_g = 1 gives θ = 2, θ_g = 1."""
    theta, theta_g, _ = project(np.array([[3.0]]), np.array([0.0]), 1.0, method=method)
    np.testing.assert_allclose(theta, [[2.0]], atol=1e-13)
    np.testing.assert_allclose(theta_g, [1.0], atol=1e-13)


def test_two_scalar_tasks_clip_closed_form(method):
    """EUSIPCO two-task estimator (w_g = 0, equal weights): with Z = (x+y)/2 and
    W = (x−y)/2, θ_x = Z + clip(W, −ε, ε), θ_y = Z − clip(W, −ε, ε)."""
    x, y = 1.3, -0.7
    for eps in (0.0, 0.1, 0.5, 0.9, 1.5):
        theta, _, _ = project(np.array([[x], [y]]), np.array([0.0]), eps, wg=0.0,
                              method=method)
        z, half = (x + y) / 2, (x - y) / 2
        clipped = np.clip(half, -eps, eps)
        np.testing.assert_allclose(theta.ravel(), [z + clipped, z - clipped], atol=1e-12,
                                   err_msg=f"{eps=}")


@pytest.mark.parametrize("global_weight", [0.0, 1.0])
def test_all_tasks_equal(method, global_weight):
    """All a_t = p: the tasks act as one block of weight Σ w_t against a_g."""
    rng = np.random.default_rng(3)
    p, a_g = rng.normal(size=3), rng.normal(size=3) * 3
    w = np.array([0.5, 1.0, 2.0, 4.0])
    a = np.tile(p, (4, 1))
    for eps in (0.0, 0.5, 100.0, np.inf):
        theta, theta_g, _ = project(a, a_g, eps, w=w, wg=global_weight, method=method)
        want_theta, want_g = two_block_closed_form(p, a_g, w.sum(), global_weight, eps)
        np.testing.assert_allclose(theta, np.tile(want_theta, (4, 1)), atol=1e-12,
                                   err_msg=f"{eps=}")
        if global_weight > 0 or eps == 0:
            np.testing.assert_allclose(theta_g, want_g, atol=1e-12, err_msg=f"{eps=}")
        assert_feasible(theta, theta_g, eps)


@pytest.mark.parametrize("global_weight", [0.0, 1.0])
def test_all_points_equal(method, global_weight):
    """Every a_t and a_g equal: the answer is that point, with no NaN."""
    p = np.array([0.3, -1.2, 2.0])
    a = np.tile(p, (4, 1))
    for eps in (0.0, 0.5, np.inf):
        theta, theta_g, out = project(a, p, eps, wg=global_weight, method=method)
        np.testing.assert_allclose(theta, a, atol=1e-14, err_msg=f"{eps=}")
        np.testing.assert_allclose(theta_g, p, atol=1e-14, err_msg=f"{eps=}")
        assert np.isfinite(float(out.residual)) and bool(out.converged)


@pytest.mark.parametrize("global_weight", [0.0, 1.0])
def test_all_points_equal_jacobian_is_identity_for_positive_eps(method, global_weight):
    """Every a_t and a_g equal and ε > 0: every constraint is strictly inactive, so
    P_C is the identity near the data and ∂θ_t/∂a_s = δ_ts I (the constant ε = 0
    answer, the weighted mean, would give w_s/Σw instead)."""
    p = np.array([0.3, -1.2])
    a = np.tile(p, (3, 1))
    jac = jax.jacobian(lambda a: PROJECT_JIT(a, p, jnp.asarray(0.5),
                                             global_weight=jnp.asarray(global_weight),
                                             method=method, tol=TOL64).task_params)(a)
    np.testing.assert_allclose(np.reshape(jac, (6, 6)), np.eye(6), atol=1e-12)


def test_tasks_in_one_ball_without_global_weight_have_identity_jacobian(method):
    """w_g = 0, ε = 0.55 and tasks (0, 0), (0, ±0.1), (1, 0): the weighted mean is
    not within ε of (1, 0), but c = (0.5, 0) has every task within ε, so θ_t = a_t
    on a neighbourhood (c is not unique there) and ∂θ/∂a = I in both modes: the
    divergence SURE needs is T·d = 8, checked against central finite differences."""
    a = np.array([[0.0, 0.0], [0.0, 0.1], [0.0, -0.1], [1.0, 0.0]])

    def theta(a):
        return PROJECT_JIT(a, a[0], jnp.asarray(0.55), global_weight=jnp.asarray(0.0),
                           method=method, tol=TOL64).task_params

    np.testing.assert_allclose(theta(a), a, atol=1e-12)
    for jac in (jax.jacfwd(theta)(a), jax.jacrev(theta)(a)):
        np.testing.assert_allclose(np.reshape(jac, (8, 8)), np.eye(8), atol=1e-12)
    h = 1e-6
    fd = [(np.asarray(theta(a + h * e.reshape(4, 2))) - np.asarray(theta(a - h * e.reshape(4, 2))))
          .ravel()[i] / (2 * h) for i, e in enumerate(np.eye(8))]
    np.testing.assert_allclose(np.sum(fd), 8.0, rtol=1e-6)


@pytest.mark.parametrize("scale", [1e-200, 1e-30, 1e30, 1e200])
def test_extreme_scales_are_equivariant(instance, method, scale):
    """P_C(s·a; s·ε) = s·P_C(a; ε): no overflow or underflow in the Gram matrix,
    even where ‖a‖² is outside the float64 range."""
    a, a_g, w = instance
    theta, theta_g, _ = project(a, a_g, 0.4, w=w, method=method)
    theta_s, theta_g_s, out = project(a * scale, a_g * scale, 0.4 * scale, w=w, method=method)
    np.testing.assert_allclose(theta_s / scale, theta, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(theta_g_s / scale, theta_g, rtol=1e-10, atol=1e-12)
    assert bool(out.converged)


def test_flat_objective_reports_an_honest_residual(method):
    """w_g = 0, a_1,2 = (∓1, 0), a_3 = (0, ½), ε = 1: c = 0 is the only point within ε
    of a_1 and a_2, but F grows like y⁴ along the y axis, so Newton converges only
    linearly and a small gradient does not mean a small error.  At the default
    tolerance the answer must be accurate to the tolerance, not just converged."""
    a = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.5]])
    _, theta_g, out = project(a, np.zeros(2), 1.0, wg=0.0, method=method)
    assert bool(out.converged)
    assert np.linalg.norm(theta_g) <= 10 * TOL64
    assert np.linalg.norm(theta_g) <= 5 * float(out.residual)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_is_projected_in_float32(instance, method, dtype):
    """Half-precision points: the result has their dtype and equals the float32
    projection of the same (rounded) points, rounded."""
    a, a_g, _ = instance
    a_h, a_g_h = jnp.asarray(a, dtype), jnp.asarray(a_g, dtype)
    out = project_cross_learning(a_h, a_g_h, 0.5, method=method)
    ref = project_cross_learning(a_h.astype(jnp.float32), a_g_h.astype(jnp.float32), 0.5,
                                 method=method)
    assert out.task_params.dtype == dtype and out.global_params.dtype == dtype
    np.testing.assert_array_equal(out.task_params, ref.task_params.astype(dtype))
    np.testing.assert_array_equal(out.global_params, ref.global_params.astype(dtype))


def symmetric_configuration():
    """a_1 = a_g = 0 = the centroid, a_2 = −a_3 = (2, 0), a_4 = −a_5 = (0, 3)."""
    a = np.array([[0.0, 0.0], [2.0, 0.0], [-2.0, 0.0], [0.0, 3.0], [0.0, -3.0]])
    return a, np.zeros(2)


def test_task_at_the_centroid(method):
    """By symmetry θ_g = 0 exactly, which coincides with a_1 (‖a_1 − c‖ = 0)."""
    a, a_g = symmetric_configuration()
    radius = np.linalg.norm(a, axis=1, keepdims=True)
    for eps in (0.0, 1.0, 2.5, np.inf):
        theta, theta_g, _ = project(a, a_g, eps, method=method)
        want = a * np.minimum(1.0, eps / np.where(radius > 0, radius, 1.0))
        np.testing.assert_allclose(theta, want, atol=1e-12, err_msg=f"{eps=}")
        np.testing.assert_allclose(theta_g, [0.0, 0.0], atol=1e-12, err_msg=f"{eps=}")


@pytest.mark.parametrize("global_weight", [0.0, 1.0])
def test_pytree_matches_flat_array(method, global_weight):
    """A dict of leaves of different shapes gives the same answer as the
    flattened, concatenated (T, S) array: the norm runs over the whole tree."""
    rng = np.random.default_rng(11)
    t = 4
    task_tree = {"w": rng.normal(size=(t, 2, 3)), "b": rng.normal(size=(t,)),
                 "head": {"v": rng.normal(size=(t, 4))}}
    global_tree = {"w": rng.normal(size=(2, 3)), "b": rng.normal(size=()),
                   "head": {"v": rng.normal(size=(4,))}}
    weights = rng.uniform(0.5, 2.0, size=t)

    def flatten(tree, lead):
        leaves = jax.tree_util.tree_leaves(tree)
        return np.concatenate([np.reshape(x, lead + (-1,)) for x in leaves], axis=-1)

    for eps in (0.0, 0.4, 3.0, np.inf):
        tree_theta, tree_g, _ = project(task_tree, global_tree, eps, w=weights,
                                        wg=global_weight, method=method)
        flat_theta, flat_g, _ = project(flatten(task_tree, (t,)), flatten(global_tree, ()),
                                        eps, w=weights, wg=global_weight, method=method)
        for got, given_tree in ((tree_theta, task_tree), (tree_g, global_tree)):
            assert (jax.tree_util.tree_structure(got)
                    == jax.tree_util.tree_structure(given_tree))
            for leaf, want in zip(jax.tree_util.tree_leaves(got),
                                  jax.tree_util.tree_leaves(given_tree)):
                assert np.shape(leaf) == np.shape(want)
        np.testing.assert_allclose(flatten(tree_theta, (t,)), flat_theta, atol=1e-12)
        if global_weight > 0 or eps == 0:
            np.testing.assert_allclose(flatten(tree_g, ()), flat_g, atol=1e-12)


def test_global_point_is_ignored_without_global_weight(instance, method):
    """With w_g = 0 the θ_t do not depend on a_g, and global_params=None works."""
    a, a_g, w = instance
    eps = 0.3
    ref, _, _ = project(a, a_g, eps, w=w, wg=0.0, method=method)
    moved, _, _ = project(a, a_g + 100.0, eps, w=w, wg=0.0, method=method)
    np.testing.assert_allclose(moved, ref, atol=1e-10)
    none = project_cross_learning(a, None, eps, task_weights=w, global_weight=0,
                                  method=method)
    np.testing.assert_allclose(none.task_params, ref, atol=1e-10)
    assert_feasible(np.asarray(none.task_params), np.asarray(none.global_params), eps)


def test_translation_and_scale_equivariance(instance, method):
    """P(s·a + b; s·ε) = s·P(a; ε) + b for every block, over 16 orders of magnitude."""
    a, a_g, w = instance
    shift, eps = np.array([10.0, -3.0, 0.5]), 0.3
    theta, theta_g, _ = project(a, a_g, eps, w=w, method=method)
    for s in (1e-8, 4.0, 1e8):
        moved, moved_g, _ = project(s * a + s * shift, s * a_g + s * shift, s * eps, w=w,
                                    method=method)
        np.testing.assert_allclose(moved / s, theta + shift, atol=1e-10, err_msg=f"{s=}")
        np.testing.assert_allclose(moved_g / s, theta_g + shift, atol=1e-10, err_msg=f"{s=}")


def test_result_fields(instance, method):
    a, a_g, w = instance
    _, _, out = project(a, a_g, 0.3, w=w, method=method)
    assert isinstance(out, ProjectionResult)
    assert jnp.issubdtype(out.iterations.dtype, jnp.integer)
    assert 0 < int(out.iterations) <= 100
    assert out.converged.dtype == jnp.bool_ and bool(out.converged)
    assert 0 <= float(out.residual) <= TOL64 * problem_scale(a, a_g, w, 1.0)[0]
    # With no iterations the final Newton step from the weighted mean is taken:
    # still feasible, and the iteration count says 0.
    capped = PROJECT_JIT(a, a_g, jnp.asarray(0.3), task_weights=w, method=method, tol=TOL64,
                         max_iter=0)
    assert int(capped.iterations) == 0
    assert_feasible(np.asarray(capped.task_params), np.asarray(capped.global_params), 0.3)


# ---------------------------------------------------------------------------
# 4. Derivatives
# ---------------------------------------------------------------------------


def gradient_problem(seed=0):
    """A (5, 2) instance (the shape of the degenerate configurations below, so both
    tests share one compiled f, grad and jvp), ε with some constraints active and
    some not, and probe vectors for the scalar ⟨probe, θ⟩ + ⟨probe_g, θ_g⟩."""
    rng = np.random.default_rng(seed)
    a, a_g, w = random_instance(rng, 5, 2)
    m = weighted_mean(a, a_g, w, 1.0)
    eps = float(np.median(np.linalg.norm(a - m, axis=1)))
    probe, probe_g = rng.normal(size=a.shape), rng.normal(size=a_g.shape)
    return a, a_g, eps, w, probe, probe_g


@functools.lru_cache(maxsize=None)
def _compiled_scalar(method, global_weight):
    def f(a, a_g, eps, w, probe, probe_g):
        out = project_cross_learning(a, a_g, eps, task_weights=w, global_weight=global_weight,
                                     method=method, tol=TOL64)
        value = jnp.sum(probe * out.task_params)
        if global_weight > 0:
            value = value + jnp.sum(probe_g * out.global_params)
        return value

    grad = jax.jit(jax.grad(f, argnums=(0, 1, 2)))
    jvp = jax.jit(lambda primals, tangents, *rest: jax.jvp(
        lambda *p: f(*p, *rest), primals, tangents)[1])
    return jax.jit(f), grad, jvp


def scalar_of_projection(method, w, global_weight, probe, probe_g):
    """f(a, a_g, ε) = ⟨probe, θ⟩ + ⟨probe_g, θ_g⟩ (⟨probe, θ⟩ alone when w_g = 0,
    where θ_g is not unique), with its gradient and its JVP, all jitted (compiled
    once per method and w_g; w and the probes are arguments)."""
    f, grad, jvp = _compiled_scalar(method, float(global_weight))
    rest = (np.asarray(w, np.float64), np.asarray(probe), np.asarray(probe_g))
    return (lambda a, a_g, eps: f(a, a_g, eps, *rest),
            lambda a, a_g, eps: grad(a, a_g, eps, *rest),
            lambda primals, tangents: jvp(primals, tangents, *rest))


@pytest.mark.parametrize("global_weight", [0.0, 1.0])
def test_gradients_match_finite_differences(method, global_weight):
    """Reverse mode (grad) and forward mode (jvp) w.r.t. a_t, a_g and ε, each
    against central differences, at a point with active and inactive
    constraints; one-sided differences at ε = 0; zero ε-derivative beyond the
    points' spread."""
    a, a_g, eps, w, probe, probe_g = gradient_problem(seed=1)
    theta, theta_g, _ = project(a, a_g, eps, w=w, wg=global_weight, method=method)
    dist = np.linalg.norm(theta - theta_g, axis=1)
    assert np.any(dist < eps * (1 - 1e-3)) and np.any(dist > eps * (1 - 1e-9)), \
        "the instance should have active and inactive constraints"
    f, grad, jvp = scalar_of_projection(method, w, global_weight, probe, probe_g)
    rng = np.random.default_rng(1)
    da, dg = rng.normal(size=a.shape), rng.normal(size=a_g.shape)
    zero_a, zero_g = np.zeros_like(a), np.zeros_like(a_g)
    g_a, g_g, g_eps = grad(a, a_g, eps)
    h = 1e-6
    for name, (ta, tg, te), derivative in [
            ("a_t", (da, zero_g, 0.0), np.sum(g_a * da)),
            ("a_g", (zero_a, dg, 0.0), np.sum(g_g * dg)),
            ("eps", (zero_a, zero_g, 1.0), g_eps)]:
        fd = (f(a + h * ta, a_g + h * tg, eps + h * te)
              - f(a - h * ta, a_g - h * tg, eps - h * te)) / (2 * h)
        forward = jvp((a, a_g, eps), (ta, tg, te))
        np.testing.assert_allclose(derivative, fd, rtol=1e-6, atol=1e-8, err_msg=name)
        np.testing.assert_allclose(forward, fd, rtol=1e-6, atol=1e-8, err_msg=name)
    if global_weight == 0:
        np.testing.assert_array_equal(g_g, 0.0)  # a_g has no influence
    # ε = 0: the derivative from the right, by a second-order one-sided difference.
    h = 1e-7
    one_sided = (-3 * f(a, a_g, 0.0) + 4 * f(a, a_g, h) - f(a, a_g, 2 * h)) / (2 * h)
    np.testing.assert_allclose(grad(a, a_g, 0.0)[2], one_sided, rtol=1e-5)
    for big in (1e3, np.inf):
        assert float(grad(a, a_g, big)[2]) == 0.0


def degenerate_configurations():
    """Name → (a (5, 2), a_g (2,), ε): configurations where a norm is exactly 0
    or ε is at a limit."""
    p = np.array([0.3, -1.2])
    symmetric, _ = symmetric_configuration()
    symmetric = np.vstack([symmetric[:3], symmetric[4:], [[1.0, 1.0]]])
    return {
        "task at the centroid": (symmetric_configuration()[0], np.zeros(2), 1.0),
        "all tasks equal": (np.tile(p, (5, 1)), np.array([2.0, 1.0]), 0.5),
        "all points equal": (np.tile(p, (5, 1)), p, 0.5),
        "task at the global point": (symmetric, np.array([1.0, 1.0]), 0.7),
        "eps zero": (symmetric + 0.1, np.array([0.3, 0.2]), 0.0),
        "eps inf": (symmetric + 0.1, np.array([0.3, 0.2]), np.inf),
    }


@pytest.mark.parametrize("global_weight", [0.0, 1.0])
def test_gradients_are_finite_at_degenerate_points(method, global_weight):
    """a_t = θ_g exactly, all points equal, ε = 0, ε = ∞: finite gradients and
    JVPs w.r.t. a_t, a_g and ε (all configurations share one shape)."""
    rng = np.random.default_rng(2)
    probe, probe_g = rng.normal(size=(5, 2)), rng.normal(size=2)
    f, grad, jvp = scalar_of_projection(method, np.ones(5), global_weight, probe, probe_g)
    for name, (a, a_g, eps) in degenerate_configurations().items():
        for g in grad(a, a_g, eps):
            assert np.all(np.isfinite(g)), name
        tangent = jvp((a, a_g, eps), (probe, probe_g, 1.0))
        assert np.isfinite(tangent), name
    # With a_1 = θ_g = 0 strictly inside its ball (and no point on a sphere) the map
    # is smooth, so the derivative there must also be the right one.
    a, a_g, eps = degenerate_configurations()["task at the centroid"]
    h = 1e-6
    fd = (f(a + h * probe, a_g + h * probe_g, eps)
          - f(a - h * probe, a_g - h * probe_g, eps)) / (2 * h)
    g_a, g_g, _ = grad(a, a_g, eps)
    np.testing.assert_allclose(np.sum(g_a * probe) + np.sum(g_g * probe_g), fd, rtol=1e-6)
    np.testing.assert_allclose(jvp((a, a_g, eps), (probe, probe_g, 0.0)), fd, rtol=1e-6)


def test_jacobian_at_eps_zero_is_the_weighted_average(method):
    """ε = 0: θ_t = Σ_k w_k a_k / (Σ w + w_g), so ∂θ_t/∂a_k = w_k / (Σ w + w_g) · I."""
    a, a_g, _ = degenerate_configurations()["eps zero"]
    w = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    jac = jax.jacobian(lambda a: PROJECT_JIT(a, a_g, jnp.asarray(0.0), task_weights=w,
                                             method=method, tol=TOL64).task_params)(a)
    want = np.einsum("tk,ij->tikj", np.tile(w / (w.sum() + 1), (5, 1)), np.eye(2))
    np.testing.assert_allclose(jac, want, atol=1e-12)


def test_jacobian_at_eps_inf_is_the_identity(method):
    """ε = ∞ with w_g = 1: θ_t = a_t and θ_g = a_g, so the Jacobians are identities
    and do not mix blocks."""
    a, a_g, _ = degenerate_configurations()["eps inf"]

    def blocks(a, a_g):
        out = PROJECT_JIT(a, a_g, jnp.asarray(np.inf), method=method, tol=TOL64)
        return out.task_params, out.global_params

    (d_theta_d_a, d_theta_d_g), (d_g_d_a, d_g_d_g) = jax.jacobian(blocks, argnums=(0, 1))(a, a_g)
    np.testing.assert_allclose(np.reshape(d_theta_d_a, (a.size, a.size)), np.eye(a.size),
                               atol=1e-12)
    np.testing.assert_allclose(d_g_d_g, np.eye(a_g.size), atol=1e-12)
    np.testing.assert_allclose(d_theta_d_g, 0.0, atol=1e-12)
    np.testing.assert_allclose(d_g_d_a, 0.0, atol=1e-12)


# ---------------------------------------------------------------------------
# 5. Transformations and dtypes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("global_weight", [0.0, 1.0])
def test_jit_matches_eager(instance, method, global_weight):
    a, a_g, w = instance
    eager = project_cross_learning(a, a_g, 0.3, task_weights=w, global_weight=global_weight,
                                   method=method)
    # Default options (tol=None included) under jit, every argument traced.
    jitted = jax.jit(lambda a, a_g, eps, w: project_cross_learning(
        a, a_g, eps, task_weights=w, global_weight=global_weight, method=method))(
            a, a_g, 0.3, w)
    np.testing.assert_allclose(jitted.task_params, eager.task_params, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jitted.global_params, eager.global_params, rtol=1e-12,
                               atol=1e-12)
    assert int(jitted.iterations) == int(eager.iterations)


def test_vmap_over_eps_grid(instance, method):
    a, a_g, w = instance
    grid = np.array([0.0, 1e-8, 0.05, 0.3, 1.0, 10.0, np.inf])
    batched = jax.jit(jax.vmap(lambda eps: project_cross_learning(
        a, a_g, eps, task_weights=w, method=method, tol=TOL64)))(jnp.asarray(grid))
    for i, eps in enumerate(grid):
        theta, theta_g, _ = project(a, a_g, eps, w=w, method=method)
        np.testing.assert_allclose(batched.task_params[i], theta, atol=1e-12)
        np.testing.assert_allclose(batched.global_params[i], theta_g, atol=1e-12)


def test_vmap_over_instances(method):
    """A batch of instances (points, ε and weights all batched) under jit(vmap)."""
    rng = np.random.default_rng(5)
    batch = [random_instance(rng, 5, 3) for _ in range(6)]
    a = np.stack([b[0] for b in batch])
    a_g = np.stack([b[1] for b in batch])
    w = np.stack([b[2] for b in batch])
    eps = np.array([0.0, 0.1, 0.5, 2.0, 1e6, np.inf])
    batched = jax.jit(jax.vmap(
        lambda a, a_g, eps, w, wg: PROJECT_JIT(a, a_g, eps, task_weights=w, global_weight=wg,
                                               method=method, tol=TOL64),
        in_axes=(0, 0, 0, 0, None)))
    for global_weight in (0.0, 1.0):
        out = batched(a, a_g, eps, w, global_weight)
        for i in range(len(batch)):
            theta, theta_g, _ = project(a[i], a_g[i], eps[i], w=w[i], wg=global_weight,
                                        method=method)
            np.testing.assert_allclose(out.task_params[i], theta, atol=1e-10)
            if global_weight > 0:
                np.testing.assert_allclose(out.global_params[i], theta_g, atol=1e-10)


@pytest.mark.parametrize("x64", [True, False], ids=["x64-on", "x64-off"])
def test_float32_inputs_give_float32_close_to_float64(instance, method, x64):
    a, a_g, w = instance
    scale = 1 + np.abs(a).max()
    for eps in (0.0, 0.3, np.inf):
        theta, theta_g, _ = project(a, a_g, eps, w=w, method=method)
        with jax.enable_x64(x64):
            out = PROJECT_JIT(jnp.asarray(a, jnp.float32), jnp.asarray(a_g, jnp.float32),
                              jnp.asarray(eps, jnp.float32),
                              task_weights=jnp.asarray(w, jnp.float32), method=method,
                              tol=TOL32)
        assert out.task_params.dtype == jnp.float32
        assert out.global_params.dtype == jnp.float32
        np.testing.assert_allclose(out.task_params, theta, rtol=0, atol=1e-4 * scale)
        np.testing.assert_allclose(out.global_params, theta_g, rtol=0, atol=1e-4 * scale)


def test_float32_eager_call_with_python_scalars(instance):
    """Python-float ε and default weights do not promote float32 parameters."""
    a, a_g, _ = instance
    out = project_cross_learning(jnp.asarray(a, jnp.float32), jnp.asarray(a_g, jnp.float32),
                                 0.3)
    assert out.task_params.dtype == jnp.float32 and out.global_params.dtype == jnp.float32
    theta, _, _ = project(a, a_g, 0.3)
    np.testing.assert_allclose(out.task_params, theta, rtol=0,
                               atol=1e-4 * (1 + np.abs(a).max()))
