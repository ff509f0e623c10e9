"""Bad input is rejected with the right error type and a message that names the
argument (and, for pytrees, the leaf).

Static checks (shapes, structure, dtypes) raise at call or trace time; value
checks on traced numbers (a negative ε under jit) raise at run time through
``equinox.error_if``, whose exception type depends on the JAX version, so those
tests catch ``Exception`` and match the message.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax._src import checks as checks
from cljax.projection._ball import project_l2_ball
from cljax.projection._operator import project_cross_learning

T, S = 3, 2


@pytest.fixture
def points():
    rng = np.random.default_rng(0)
    return rng.normal(size=(T, S)), rng.normal(size=S)


def tree_points():
    task = {"a": np.ones((T, 2)), "b": np.ones((T,))}
    glob = {"a": np.ones(2), "b": np.ones(())}
    return task, glob


# ---------------------------------------------------------------------------
# eps
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("eps, error, message", [
    (-1.0, ValueError, r"eps = -1\.0 is negative"),
    (-1e-300, ValueError, r"eps .* is negative"),
    (-np.inf, ValueError, r"eps .* is negative"),
    (float("nan"), ValueError, r"eps is NaN"),
    (np.ones(2), ValueError, r"eps must be a scalar, got shape \(2,\)"),
    (np.ones((1,)), ValueError, r"eps must be a scalar"),
    (1j, TypeError, r"eps must be a real number"),
    (True, TypeError, r"eps must be a real number"),
    ("0.5", TypeError, r"eps must be a real number, got '0.5'"),
    (None, TypeError, r"eps must be a real number, got None"),
], ids=["negative", "tiny-negative", "minus-inf", "nan", "vector", "length-1-array",
        "complex", "bool", "string", "none"])
def test_bad_eps_is_rejected(points, eps, error, message):
    a, a_g = points
    with pytest.raises(error, match=message):
        project_cross_learning(a, a_g, eps)


@pytest.mark.parametrize("eps", [0.0, 0, 1, 2.5, np.inf, np.float32(0.5), jnp.asarray(0.5)])
def test_valid_eps_is_accepted(eps):
    # Only the checks: the projection itself is tested elsewhere.
    out = checks.check_eps(eps)
    assert float(np.asarray(out)) == float(np.asarray(eps))


@pytest.mark.parametrize("bad", [-1.0, float("nan")], ids=["negative", "nan"])
def test_traced_bad_eps_raises_at_run_time(points, bad):
    a, a_g = points
    fn = jax.jit(lambda eps: project_cross_learning(a, a_g, eps).task_params)
    np.testing.assert_allclose(fn(jnp.inf), a)  # a good value runs
    with pytest.raises(Exception, match=r"eps must be >= 0 and not NaN"):
        jax.block_until_ready(fn(bad))


def test_traced_bad_eps_raises_under_vmap(points):
    a, a_g = points
    fn = jax.vmap(lambda eps: project_cross_learning(a, a_g, eps).task_params)
    assert fn(jnp.array([0.5, 1.0])).shape == (2, T, S)
    with pytest.raises(Exception, match=r"eps must be >= 0 and not NaN"):
        jax.block_until_ready(fn(jnp.array([0.5, -1.0])))


# ---------------------------------------------------------------------------
# Task and global pytrees
# ---------------------------------------------------------------------------


def test_task_axes_that_disagree_are_rejected():
    task = {"a": np.ones((3, 2)), "b": np.ones((4,))}
    glob = {"a": np.ones(2), "b": np.ones(())}
    with pytest.raises(ValueError, match=r"task_params: leaves disagree on the task axis "
                                         r"length \(T=3 at \['a'\]; T=4 at \['b'\]\)"):
        project_cross_learning(task, glob, 1.0)


def test_global_structure_mismatch_is_rejected():
    task, _ = tree_points()
    with pytest.raises(ValueError, match=r"global_params does not match the structure of "
                                         r"task_params"):
        project_cross_learning(task, {"a": np.ones(2), "c": np.ones(())}, 1.0)
    with pytest.raises(ValueError, match=r"global_params does not match the structure"):
        project_cross_learning(task, np.ones(2), 1.0)


def test_global_shape_mismatch_names_the_leaf():
    task, glob = tree_points()
    glob["a"] = np.ones(3)
    with pytest.raises(ValueError, match=r"global_params\['a'\] has shape \(3,\), expected "
                                         r"\(2,\)"):
        project_cross_learning(task, glob, 1.0)


def test_global_with_a_task_axis_is_rejected(points):
    a, _ = points
    with pytest.raises(ValueError, match=r"global_params.* has shape \(3, 2\), expected \(2,\)"):
        project_cross_learning(a, a, 1.0)


def test_zero_tasks_are_rejected():
    with pytest.raises(ValueError, match=r"task_params has T = 0 tasks"):
        project_cross_learning(np.ones((0, S)), np.ones(S), 1.0)


def test_scalar_task_leaf_is_rejected():
    with pytest.raises(ValueError, match=r"task_params\['b'\] is a scalar"):
        project_cross_learning({"a": np.ones((T, 2)), "b": np.float64(1.0)},
                               {"a": np.ones(2), "b": np.float64(1.0)}, 1.0)


def test_empty_tree_is_rejected():
    with pytest.raises(ValueError, match=r"task_params has no array leaves"):
        project_cross_learning({}, {}, 1.0)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
def test_non_float_task_leaf_is_rejected(dtype):
    task, glob = tree_points()
    task["b"] = task["b"].astype(dtype)
    with pytest.raises(TypeError, match=rf"task_params\['b'\] has dtype {np.dtype(dtype).name}"):
        project_cross_learning(task, glob, 1.0)


def test_integer_global_leaf_is_rejected():
    task, glob = tree_points()
    glob["a"] = glob["a"].astype(np.int32)
    with pytest.raises(TypeError, match=r"global_params\['a'\] has dtype int32"):
        project_cross_learning(task, glob, 1.0)


def test_integer_array_is_rejected(points):
    a, a_g = points
    with pytest.raises(TypeError, match=r"task_params.* has dtype int"):
        project_cross_learning(a.astype(np.int32), a_g, 1.0)


def test_missing_global_needs_zero_global_weight(points):
    a, _ = points
    with pytest.raises(ValueError, match=r"global_params=None needs global_weight=0"):
        project_cross_learning(a, None, 1.0)


def test_missing_global_accepts_a_zero_weight_array_and_checks_traced_ones(points):
    a, _ = points
    out = project_cross_learning(a, None, 0.0, global_weight=jnp.asarray(0.0))
    np.testing.assert_allclose(out.task_params, np.tile(a.mean(0), (T, 1)), atol=1e-12)
    f = jax.jit(lambda gw: project_cross_learning(a, None, 0.0, global_weight=gw).task_params)
    np.testing.assert_allclose(f(0.0), np.tile(a.mean(0), (T, 1)), atol=1e-12)
    with pytest.raises(Exception, match=r"global_params=None needs global_weight=0"):
        jax.block_until_ready(f(1.0))


# ---------------------------------------------------------------------------
# Weights, method, solver options
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("weights, message", [
    (np.ones(T - 1), r"task_weights must have shape \(3,\), got \(2,\)"),
    (np.ones((T, 1)), r"task_weights must have shape \(3,\), got \(3, 1\)"),
    (np.float64(1.0), r"task_weights must have shape \(3,\), got \(\)"),
    (np.array([1.0, 0.0, 1.0]), r"task_weights must be finite and > 0"),
    (np.array([1.0, -2.0, 1.0]), r"task_weights must be finite and > 0"),
    (np.array([1.0, np.nan, 1.0]), r"task_weights must be finite and > 0"),
    (np.array([1.0, np.inf, 1.0]), r"task_weights must be finite and > 0"),
], ids=["too-short", "column", "scalar", "zero", "negative", "nan", "inf"])
def test_bad_task_weights_are_rejected(points, weights, message):
    a, a_g = points
    with pytest.raises(ValueError, match=message):
        project_cross_learning(a, a_g, 1.0, task_weights=weights)


@pytest.mark.parametrize("weight, message", [
    (-1.0, r"global_weight must be finite and >= 0, got -1\.0"),
    (np.inf, r"global_weight must be finite and >= 0"),
    (np.nan, r"global_weight must be finite and >= 0"),
    (np.ones(2), r"global_weight must be a scalar, got shape \(2,\)"),
], ids=["negative", "inf", "nan", "vector"])
def test_bad_global_weight_is_rejected(points, weight, message):
    a, a_g = points
    with pytest.raises(ValueError, match=message):
        project_cross_learning(a, a_g, 1.0, global_weight=weight)


def test_traced_bad_weights_raise_at_run_time(points):
    a, a_g = points

    def fn(w, wg):
        return project_cross_learning(a, a_g, 0.5, task_weights=w, global_weight=wg).task_params

    fn = jax.jit(fn)
    assert fn(jnp.ones(T), 1.0).shape == (T, S)
    with pytest.raises(Exception, match=r"task_weights must be finite and > 0"):
        jax.block_until_ready(fn(jnp.array([1.0, -1.0, 1.0]), 1.0))
    with pytest.raises(Exception, match=r"global_weight must be finite and >= 0"):
        jax.block_until_ready(fn(jnp.ones(T), -1.0))


@pytest.mark.parametrize("method", ["newton", "Dual", ""])
@pytest.mark.parametrize("keyword", ["solver", "method"])
def test_unknown_solver_is_rejected(points, method, keyword):
    a, a_g = points
    with pytest.raises(ValueError, match=r"solver must be one of \('auto', 'dual'"):
        project_cross_learning(a, a_g, 1.0, **{keyword: method})


@pytest.mark.parametrize("max_iter", [-1, 2.5, "10"])
def test_bad_max_iter_is_rejected(points, max_iter):
    a, a_g = points
    with pytest.raises(ValueError, match=r"max_iter must be a non-negative int"):
        project_cross_learning(a, a_g, 1.0, max_iter=max_iter)


@pytest.mark.parametrize("tol", [0.0, -1e-8, np.inf, np.nan])
def test_bad_tol_is_rejected(points, tol):
    a, a_g = points
    with pytest.raises(ValueError, match=r"tol must be finite and > 0"):
        project_cross_learning(a, a_g, 1.0, tol=tol)


# ---------------------------------------------------------------------------
# Ball projection
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("radius, error, message", [
    (-0.5, ValueError, r"radius = -0\.5 is negative"),
    (float("nan"), ValueError, r"radius is NaN"),
    (np.ones(2), ValueError, r"radius must be a scalar"),
    (1j, TypeError, r"radius must be a real number"),
], ids=["negative", "nan", "vector", "complex"])
def test_bad_radius_is_rejected(radius, error, message):
    x = np.ones(3)
    with pytest.raises(error, match=message):
        project_l2_ball(x, np.zeros(3), radius)


def test_traced_negative_radius_raises_at_run_time():
    fn = jax.jit(lambda r: project_l2_ball(jnp.ones(3), jnp.zeros(3), r))
    with pytest.raises(Exception, match=r"radius must be >= 0 and not NaN"):
        jax.block_until_ready(fn(-1.0))


def test_ball_center_structure_mismatch_is_rejected():
    with pytest.raises(ValueError, match=r"center does not match the structure of tree"):
        project_l2_ball({"a": np.ones(2)}, {"b": np.ones(2)}, 1.0)


def test_ball_center_shape_mismatch_names_the_leaf():
    with pytest.raises(ValueError, match=r"center\['w'\] has shape \(3,\), expected \(2,\)"):
        project_l2_ball({"w": np.ones(2)}, {"w": np.ones(3)}, 1.0)


def test_ball_integer_tree_is_rejected():
    with pytest.raises(TypeError, match=r"tree\['w'\] has dtype int32"):
        project_l2_ball({"w": np.ones(2, np.int32)}, {"w": np.ones(2)}, 1.0)


# ---------------------------------------------------------------------------
# The check helpers on their own
# ---------------------------------------------------------------------------


def test_task_count_reads_the_leading_axis():
    assert checks.task_count({"a": np.ones((4, 2)), "b": np.ones((4,))}) == 4
    with pytest.raises(ValueError, match=r"my_tree has no array leaves"):
        checks.task_count([], "my_tree")


def test_check_weights_allow_zero():
    np.testing.assert_array_equal(checks.check_weights(np.array([0.0, 1.0]), 2, allow_zero=True),
                                  [0.0, 1.0])
    with pytest.raises(ValueError, match=r"w must be finite and >= 0"):
        checks.check_weights(np.array([-1.0, 1.0]), 2, name="w", allow_zero=True)


def test_check_positive_names_the_argument():
    assert checks.check_positive(0.1, "step") == 0.1
    with pytest.raises(ValueError, match=r"step must be finite and > 0, got 0\.0"):
        checks.check_positive(0.0, "step")
    with pytest.raises(ValueError, match=r"step must be a scalar"):
        checks.check_positive(np.ones(2), "step")


def test_check_global_matches_custom_names():
    with pytest.raises(ValueError, match=r"centre\['a'\] has shape \(1,\), expected \(2,\) "
                                         r"\(the shape of params\['a'\] without its task axis\)"):
        checks.check_global_matches({"a": np.ones((3, 2))}, {"a": np.ones(1)},
                                    task_name="params", global_name="centre")


def test_leaf_name_of_the_root_and_nested_leaves():
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path({"x": [np.ones(1)]})[0]]
    assert checks.leaf_name(paths[0]) == "['x'][0]"
    assert checks.leaf_name(()) == "<root>"


def test_concrete_weights_captured_under_jit_are_checked_eagerly(points):
    """Weights that are concrete arrays closed over by a jitted function are checked
    with NumPy at trace time (jnp comparisons would trace them) and give the same
    answer as the eager call; bad ones still raise, naming the argument."""
    a, _ = points
    w = jnp.array([1.0, 2.0, 3.0])
    eager = project_cross_learning(a, None, 0.5, task_weights=w, global_weight=0.0).task_params
    jitted = jax.jit(lambda a: project_cross_learning(a, None, 0.5, task_weights=w,
                                                      global_weight=0.0).task_params)(a)
    np.testing.assert_allclose(jitted, eager, rtol=1e-12)
    bad = -w
    with pytest.raises(ValueError, match=r"task_weights must be finite and > 0"):
        jax.jit(lambda a: project_cross_learning(a, None, 0.5, task_weights=bad,
                                                 global_weight=0.0).task_params)(a)
