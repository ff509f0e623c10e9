"""Every algorithm of the one projection operator on every shared problem (tests/projection/problems.py).

References are independent of cljax: closed forms, a NumPy KKT check, and a seeded
fuzz of 2,048 instances per algorithm (one jitted vmapped call each).  Also: jit /
vmap / grad equivalence between the algorithms, the path function, the issue-15
edge cases (non-finite inputs, convergence reporting, clear errors) and the
ball projection's overflow / underflow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from problems import ALGORITHMS, PROBLEMS, closed_form, kkt_violation, spread

from cljax.projection import (ProjectionResult, project_cross_learning,
                              project_cross_learning_path, project_l2_ball)

SOLVE = jax.jit(project_cross_learning, static_argnames=("solver", "tol", "max_iter"))


def solve(p, solver):
    return SOLVE(p.a, p.a_g, jnp.asarray(p.eps), task_weights=p.w,
                 global_weight=jnp.asarray(p.wg), solver=solver)


@pytest.mark.parametrize("solver", ALGORITHMS)
def test_every_problem_meets_kkt_and_closed_forms(solver):
    """All shared problems (degenerate ones included) for one algorithm: KKT to 1e-8
    of the spread, converged, closed forms where they exist, and the same θ (unique)
    and objective as the dual algorithm."""
    for p in PROBLEMS:
        out = solve(p, solver)
        theta, c = np.asarray(out.task_params), np.asarray(out.global_params)
        assert bool(out.converged), (p.name, float(out.residual))
        assert np.isfinite(float(out.residual)), p.name
        assert kkt_violation(theta, c, p.a, p.a_g, p.eps, p.w, p.wg) <= 1e-8, p.name
        ref = closed_form(p)
        scale = max(spread(p.a, p.a_g), 1e-300)
        if ref is not None:
            np.testing.assert_allclose(theta, ref[0], rtol=0, atol=1e-12 * max(scale, 1.0),
                                       err_msg=p.name)
            if ref[1] is not None:
                np.testing.assert_allclose(c, ref[1], rtol=0, atol=1e-12 * max(scale, 1.0),
                                           err_msg=p.name)
        if solver != "dual":
            dual = solve(p, "dual")
            np.testing.assert_allclose(theta, np.asarray(dual.task_params), rtol=0,
                                       atol=1e-9 * scale, err_msg=p.name)


def fuzz_instances(n, t, s, seed):
    """Seeded random instances with degenerate ones mixed in (NumPy)."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-4, 4, (n, 1, 1))
    a = rng.normal(size=(n, t, s)) * scale
    a_g = rng.normal(size=(n, s)) * scale[:, 0]
    kind = rng.integers(0, 8, n)
    a[kind == 1] = a[kind == 1, :1]                          # all tasks equal
    a[kind == 2] = a_g[kind == 2, None]                      # all points coincide
    a[kind == 3, 0] = a_g[kind == 3]                         # a task at a_g
    a[kind == 4] = a[kind == 4] * 1e-3 + a_g[kind == 4, None]  # tasks in one small ball
    pts = np.concatenate([a, a_g[:, None]], axis=1)
    sp = np.max(np.linalg.norm(pts - pts.mean(1, keepdims=True), axis=2), axis=1)
    frac = rng.choice([0.0, 1e-9, 0.05, 0.3, 0.7, 1.0, 1.5, 3.0, np.inf], n)
    eps = np.where(frac == np.inf, np.inf, np.where(frac == np.inf, 0.0, frac) * sp)
    eps = np.where(kind == 2, rng.choice([0.0, 1.0], n), eps)
    w = rng.uniform(0.1, 10.0, (n, t))
    wg = rng.choice([0.0, 1.0, 0.01, 5.0], n)
    return a, a_g, eps, w, wg


@pytest.mark.parametrize("solver", ALGORITHMS)
def test_fuzz_against_an_independent_kkt_check(solver):
    """2,048 seeded instances (scales 1e-4..1e4, degenerate mixes, ε from 0 to ∞,
    w_g ∈ {0, 0.01, 1, 5}), one vmapped call: every answer meets KKT to 1e-8 of
    the spread, is finite and reports convergence."""
    a, a_g, eps, w, wg = fuzz_instances(2048, 5, 3, seed=15)
    f = jax.jit(jax.vmap(lambda a, g, e, w, wg: project_cross_learning(
        a, g, e, task_weights=w, global_weight=wg, solver=solver)))
    out = f(a, a_g, eps, w, wg)
    theta, c = np.asarray(out.task_params), np.asarray(out.global_params)
    assert np.all(np.isfinite(theta)) and np.all(np.isfinite(c))
    bad = [i for i in range(len(a))
           if kkt_violation(theta[i], c[i], a[i], a_g[i], eps[i], w[i], wg[i]) > 1e-8]
    assert not bad, (solver, bad[:5])
    assert np.all(np.asarray(out.converged)), np.nonzero(~np.asarray(out.converged))[0][:5]


def test_auto_picks_the_small_newton_for_tiny_problems_and_dual_otherwise():
    from cljax.projection._operator import _auto, _prepare
    assert _auto(_prepare(np.ones((15, 2)), np.ones(2), 1.0, None, 1.0)) == "primal"
    assert _auto(_prepare(np.ones((5, 50)), np.ones(50), 1.0, None, 1.0)) == "dual"
    p = PROBLEMS[4]
    auto = project_cross_learning(p.a, p.a_g, p.eps, task_weights=p.w, global_weight=p.wg)
    small = solve(p, "primal")
    np.testing.assert_allclose(np.asarray(auto.task_params), np.asarray(small.task_params),
                               atol=1e-14)


def test_method_is_an_alias_of_solver():
    p = PROBLEMS[4]
    a = project_cross_learning(p.a, p.a_g, p.eps, method="primal")
    b = project_cross_learning(p.a, p.a_g, p.eps, solver="primal")
    np.testing.assert_array_equal(np.asarray(a.task_params), np.asarray(b.task_params))
    with pytest.raises(ValueError, match="disagree"):
        project_cross_learning(p.a, p.a_g, p.eps, method="primal", solver="dual")
    with pytest.raises(ValueError, match="solver must be one of"):
        project_cross_learning(p.a, p.a_g, p.eps, solver="newton")


def test_gradients_agree_between_algorithms_and_finite_differences():
    """Implicit derivatives: the same for every algorithm, and equal to central
    finite differences of the dual solution."""
    rng = np.random.default_rng(3)
    a, a_g = rng.normal(size=(4, 2)), rng.normal(size=2)
    probe_t, probe_g = rng.normal(size=(4, 2)), rng.normal(size=2)

    def loss(a, a_g, solver):
        out = project_cross_learning(a, a_g, 0.6, global_weight=1.0, solver=solver)
        return jnp.sum(out.task_params * probe_t) + out.global_params @ probe_g

    grads = {s: jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(a, a_g, s)
             for s in ALGORITHMS}
    h = 1e-6
    steps = h * np.eye(a.size).reshape((a.size,) + a.shape)
    dual_loss = jax.jit(jax.vmap(lambda x: loss(x, a_g, "dual")))
    fd = ((dual_loss(a + steps) - dual_loss(a - steps)) / (2 * h)).reshape(a.shape)
    for s in ALGORITHMS:
        np.testing.assert_allclose(grads[s][0], fd, atol=1e-6, err_msg=s)
        np.testing.assert_allclose(grads[s][1], grads["dual"][1], atol=1e-9, err_msg=s)


def test_flat_case_derivative_convention():
    """w_g = 0 and all tasks in one ball: θ_t = a_t (Jacobian I) and, on purpose,
    a zero derivative for θ_g, for every algorithm."""
    a = np.array([[0.1, 0.0], [0.0, 0.1], [-0.1, 0.0]])
    for s in ALGORITHMS:
        jt, jg = jax.jit(jax.jacobian(lambda x: tuple(project_cross_learning(
            x, None, 1.0, global_weight=0.0, solver=s)[:2])))(a)
        np.testing.assert_allclose(np.asarray(jt).reshape(6, 6), np.eye(6), atol=1e-12)
        np.testing.assert_array_equal(np.asarray(jg), 0.0)


def test_vmap_and_jit_agree():
    p = PROBLEMS[5]
    for s in ALGORITHMS:
        single = solve(p, s)
        batched = jax.vmap(lambda e: SOLVE(p.a, p.a_g, e, task_weights=p.w,
                                           global_weight=jnp.asarray(p.wg), solver=s))(
            jnp.asarray([p.eps, 0.5 * p.eps]))
        np.testing.assert_allclose(np.asarray(batched.task_params[0]),
                                   np.asarray(single.task_params), atol=1e-13)


@pytest.mark.parametrize("solver", ["primal", "fixed"])
def test_vmap_in_cache_sized_chunks_equals_single_solves(solver):
    """On CPU a vmapped batch of small problems runs in chunks (``lax.map``): 150
    instances of (T, S) = (15, 2) are 2 chunks of 64 and a remainder of 22.  Every
    instance (degenerate ones included) equals its own unbatched solve to rounding, with
    batched and shared (unbatched) arguments, nested in a vmap over ε, and so do
    the derivatives (the plain core's, through the custom_jvp rule)."""
    from cljax.projection._operator import _chunk_size

    assert _chunk_size(16 * 2 * 8) == 64
    a, a_g, eps, w, wg = fuzz_instances(150, 15, 2, seed=7)
    wg = np.where(wg == 0, 0.5, wg)  # θ_g unique, so it can be compared too

    def one(a, g, e, w, wg):
        out = project_cross_learning(a, g, e, task_weights=w, global_weight=wg, solver=solver)
        return out.task_params, out.global_params, out.iterations, out.converged

    batched = jax.jit(jax.vmap(one))
    assert "scan" in str(jax.make_jaxpr(jax.vmap(one))(a, a_g, eps, w, wg))  # chunked
    got = batched(a, a_g, eps, w, wg)
    single = jax.jit(one)
    want = [single(*args) for args in zip(a, a_g, eps, w, wg)]
    atol = 1e-12 * (1 + np.abs(a).max(axis=(1, 2)))  # rounding, per instance
    for i, ref in enumerate(want):
        np.testing.assert_allclose(got[0][i], ref[0], rtol=0, atol=atol[i])
        np.testing.assert_allclose(got[1][i], ref[1], rtol=0, atol=atol[i])
        # a batched and an unbatched program round differently (the plain vmap too):
        # the stopping test may pass one Newton step apart
        assert abs(int(got[2][i]) - int(ref[2])) <= 1 and bool(got[3][i]) == bool(ref[3]), i
    # shared a_g and ε (unbatched arguments), nested in a vmap over two radii
    shared = jax.jit(jax.vmap(jax.vmap(one, in_axes=(0, None, None, 0, None)),
                              in_axes=(None, None, 0, None, None)))
    radii = np.array([0.3, 1.5])
    got = shared(a, a_g[0], radii, w, 1.0)
    for k, e in enumerate(radii):
        for i in (0, 63, 64, 149):
            ref = single(a[i], a_g[0], e, w[i], 1.0)
            np.testing.assert_allclose(got[0][k, i], ref[0], rtol=0, atol=atol[i])
    # derivatives: grad of the batched sum against the per-instance gradient
    probe = np.random.default_rng(1).normal(size=a.shape)

    def loss(a, g, e, w, wg, p):
        return jnp.sum(one(a, g, e, w, wg)[0] * p)

    grads = jax.jit(jax.grad(lambda a: jnp.sum(jax.vmap(loss)(a, a_g, eps, w, wg, probe))))(a)
    single_grad = jax.jit(jax.grad(loss))
    for i in (0, 1, 64, 100, 149):
        np.testing.assert_allclose(grads[i], single_grad(a[i], a_g[i], eps[i], w[i], wg[i],
                                                         probe[i]), rtol=1e-9, atol=1e-9)


def test_path_has_a_leading_eps_axis_and_matches_single_calls():
    p = PROBLEMS[4]
    grid = np.array([0.0, 0.1, 0.5, np.inf])
    path = project_cross_learning_path(p.a, p.a_g, grid, task_weights=p.w, global_weight=p.wg)
    assert isinstance(path, ProjectionResult)
    assert path.task_params.shape == (4,) + p.a.shape and path.converged.shape == (4,)
    for k, e in enumerate(grid):
        one = SOLVE(p.a, p.a_g, jnp.asarray(e), task_weights=p.w, global_weight=jnp.asarray(p.wg),
                    solver="auto")
        np.testing.assert_allclose(np.asarray(path.task_params[k]),
                                   np.asarray(one.task_params), atol=1e-12)
    with pytest.raises(ValueError, match="eps_grid"):
        project_cross_learning_path(p.a, p.a_g, np.array([0.1, -1.0]))


# ---------------------------------------------------------------------------
# Issue 15: nothing silent
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["task", "global"])
def test_non_finite_input_reports_nan_and_not_converged(bad, where):
    rng = np.random.default_rng(0)
    a, a_g = rng.normal(size=(4, 3)), rng.normal(size=3)
    if where == "task":
        a[1, 2] = bad
    else:
        a_g[0] = bad
    for s in ALGORITHMS:
        outs = [SOLVE(a, a_g, jnp.asarray(0.5), solver=s)]
        if bad != -np.inf:  # eager too (each eager call compiles: two cases suffice)
            outs.append(project_cross_learning(a, a_g, 0.5, solver=s))
        for out in outs:
            assert np.isnan(float(out.residual)), s
            assert not bool(out.converged), s


def test_convergence_is_reported_truly():
    """Issue 15: primal with T = 1, S = 200, w_g = 1 (100 iterations, converged False
    before) and all tasks equal with ε = 0 or ε > spread: converged at correct answers."""
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.normal(size=(1, 200)) * 10.0 ** rng.uniform(-3, 3)
        g = rng.normal(size=200) * 10.0 ** rng.uniform(-3, 3)
        d = np.linalg.norm(x[0] - g)
        for frac in (0.3, 0.5, 0.99):
            for s in ("dual", "primal"):
                out = SOLVE(x, g, jnp.asarray(frac * d), solver=s)
                assert bool(out.converged) and int(out.iterations) <= 10, (s, frac)
                # closed form for T = 1: θ_g and θ_1 on the segment, excess split evenly
                excess = (d - frac * d) / 2
                u = (x[0] - g) / d
                np.testing.assert_allclose(np.asarray(out.global_params), g + excess * u,
                                           atol=1e-9 * d)
    e = np.tile(rng.normal(size=(1, 3)), (4, 1))
    a_g = rng.normal(size=3)
    for eps in (0.0, 10.0):
        for s in ALGORITHMS:
            out = SOLVE(e, a_g, jnp.asarray(eps), solver=s)
            assert bool(out.converged), (s, eps)


def test_converged_is_false_when_stopped_early():
    rng = np.random.default_rng(2)
    a, a_g = rng.normal(size=(6, 3)) * 5, rng.normal(size=3)
    for s in ALGORITHMS:
        out = project_cross_learning(a, a_g, 0.5, solver=s, max_iter=0)
        assert not bool(out.converged), s
        assert float(out.residual) > 1e-3


@pytest.mark.parametrize("call, message", [
    (lambda: project_cross_learning(np.ones((3, 0)), np.ones(0), 1.0), r"task_params.*no param"),
    (lambda: project_cross_learning({"a": np.ones((3, 2)), "b": np.ones((3, 0))},
                                    {"a": np.ones(2), "b": np.ones(0)}, 1.0),
     r"task_params\['b'\].*no param"),
    (lambda: project_cross_learning(np.ones((3, 2)), np.ones(2), 1.0, global_weight="1"),
     "global_weight must be a real number"),
    (lambda: project_cross_learning(np.ones((3, 2)), np.ones(2), 1.0, global_weight=None),
     "global_weight must be a real number"),
    (lambda: project_cross_learning(np.ones((3, 2)), np.ones(2), 1.0, tol="x"),
     "tol must be a real number"),
    (lambda: project_cross_learning(np.ones((3, 2)), np.ones(2), 1.0, task_weights="abc"),
     "task_weights"),
])
def test_bad_arguments_get_one_clear_error(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


@pytest.mark.parametrize("x, radius, expected", [
    (np.array([1e20, 0], np.float32), 1.0, [1.0, 0.0]),
    (np.array([1e200, 0], np.float64), 1.0, [1.0, 0.0]),
    (np.array([300, 300], np.float16), 1.0, [np.sqrt(0.5), np.sqrt(0.5)]),
    (np.array([-1e-20, 0], np.float32), 1e-21, [-1e-21, 0.0]),
    (np.array([1e-30, 1e-30], np.float32), 1.0, [1e-30, 1e-30]),
])
def test_ball_projection_neither_overflows_nor_underflows(x, radius, expected):
    out = np.asarray(project_l2_ball(jnp.asarray(x), jnp.zeros_like(jnp.asarray(x)), radius))
    assert out.dtype == x.dtype
    np.testing.assert_allclose(out.astype(np.float64), expected,
                               rtol=2e-3 if x.dtype == np.float16 else 1e-6)
    assert np.linalg.norm(out.astype(np.float64)) <= radius * (1 + 1e-3)
