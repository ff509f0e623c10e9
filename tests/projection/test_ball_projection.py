"""Tests of the Euclidean ball projection (cljax.projection._ball) and of the pytree
arithmetic it is built on (cljax._src.tree).

P(x) = c + (x − c)·min(1, r/‖x − c‖), the norm running over every leaf.
References: that closed form in NumPy on the flattened tree, projection
properties (idempotence, non-expansiveness), and finite differences.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cljax._src import tree as tu
from cljax.projection._ball import ball_scale, project_l2_ball

S = 5
project_jit = jax.jit(project_l2_ball)


def numpy_ball_projection(x, c, r):
    d = np.linalg.norm(x - c)
    if d <= r:
        return x.copy()
    return c + (x - c) * (r / d)


def random_tree(rng, lead=()):
    return {"w": rng.normal(size=lead + (2, 3)), "b": rng.normal(size=lead),
            "layers": [rng.normal(size=lead + (4,)), rng.normal(size=lead + (1, 1))]}


def flatten(tree, lead=()):
    return np.concatenate([np.reshape(np.asarray(x), lead + (-1,))
                           for x in jax.tree_util.tree_leaves(tree)], axis=-1)


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("radius_factor", [0.0, 0.3, 0.999, 1.0, 1.5, np.inf])
def test_matches_closed_form(radius_factor):
    """Radii as a multiple of ‖x − c‖: outside, just outside, on the sphere,
    inside and infinite."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, c = rng.normal(size=S) * 3, rng.normal(size=S)
        r = radius_factor * np.linalg.norm(x - c)
        got = project_jit(x, c, r)
        np.testing.assert_allclose(got, numpy_ball_projection(x, c, r), rtol=1e-13, atol=1e-13)


def test_pytree_matches_flat_closed_form():
    """The norm runs over the whole tree: the same answer as on the flattened
    concatenation, with the tree's structure and shapes kept."""
    rng = np.random.default_rng(1)
    x, c = random_tree(rng), random_tree(rng)
    dist = np.linalg.norm(flatten(x) - flatten(c))
    for r in (0.0, 0.5 * dist, 2 * dist, np.inf):
        got = project_jit(x, c, r)
        assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(x)
        for leaf, ref in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(x)):
            assert leaf.shape == np.shape(ref)
        np.testing.assert_allclose(flatten(got), numpy_ball_projection(flatten(x), flatten(c), r),
                                   rtol=1e-13, atol=1e-13)


def test_radius_zero_returns_center():
    rng = np.random.default_rng(2)
    x, c = random_tree(rng), random_tree(rng)
    np.testing.assert_array_equal(flatten(project_l2_ball(x, c, 0.0)), flatten(c))


def test_radius_inf_returns_tree():
    rng = np.random.default_rng(3)
    x, c = random_tree(rng), random_tree(rng)
    # center + (tree − center): the tree up to rounding.
    np.testing.assert_allclose(flatten(project_l2_ball(x, c, np.inf)), flatten(x), rtol=0,
                               atol=1e-15 * (np.abs(flatten(x)).max() + np.abs(flatten(c)).max()))


@pytest.mark.parametrize("radius", [0.0, 1.0, np.inf])
def test_tree_at_center_is_returned(radius):
    c = np.arange(S, dtype=float)
    got = project_jit(c.copy(), c, radius)
    np.testing.assert_array_equal(got, c)


def test_point_on_the_sphere_is_unchanged():
    c = np.array([1.0, -2.0, 0.5])
    x = c + np.array([3.0, 0.0, 4.0])  # at distance 5
    np.testing.assert_allclose(project_jit(x, c, 5.0), x, rtol=1e-15)


def test_vector_radius_per_leaf_is_not_applied_leafwise():
    """Two leaves each inside a radius, but the whole tree outside it: the tree
    is scaled as one vector."""
    x = {"a": np.array([0.8, 0.0]), "b": np.array([0.0, 0.8])}
    c = {"a": np.zeros(2), "b": np.zeros(2)}
    got = project_l2_ball(x, c, 1.0)
    factor = 1.0 / np.hypot(0.8, 0.8)
    np.testing.assert_allclose(got["a"], x["a"] * factor, rtol=1e-14)
    np.testing.assert_allclose(got["b"], x["b"] * factor, rtol=1e-14)


# ---------------------------------------------------------------------------
# Properties (hypothesis)
# ---------------------------------------------------------------------------

coordinates = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
points = hnp.arrays(np.float64, (S,), elements=coordinates)
radii = st.one_of(st.just(0.0), st.floats(1e-8, 200.0), st.just(np.inf))
property_settings = settings(max_examples=50, deadline=None)


@property_settings
@given(x=points, c=points, r=radii)
def test_output_is_in_the_ball_and_closest(x, c, r):
    p = np.asarray(project_jit(x, c, r))
    scale = 1 + np.abs(x).max() + np.abs(c).max()
    assert np.linalg.norm(p - c) <= r * (1 + 1e-12) + 1e-14 * scale
    # The projection is the closest point: no point of the segment c → p, nor c,
    # is closer to x.
    assert np.linalg.norm(x - p) <= np.linalg.norm(x - c) + 1e-12 * scale


@property_settings
@given(x=points, c=points, r=radii)
def test_projection_is_idempotent(x, c, r):
    p = project_jit(x, c, r)
    scale = 1 + np.abs(x).max() + np.abs(c).max()
    np.testing.assert_allclose(project_jit(p, c, r), p, rtol=0, atol=1e-13 * scale)


@property_settings
@given(x=points, y=points, c=points, r=radii)
def test_projection_is_non_expansive(x, y, c, r):
    px, py = np.asarray(project_jit(x, c, r)), np.asarray(project_jit(y, c, r))
    scale = 1 + max(np.abs(x).max(), np.abs(y).max(), np.abs(c).max())
    assert np.linalg.norm(px - py) <= np.linalg.norm(x - y) * (1 + 1e-12) + 1e-13 * scale


@property_settings
@given(x=points, c=points, r=radii)
def test_matches_closed_form_property(x, c, r):
    scale = 1 + np.abs(x).max() + np.abs(c).max()
    np.testing.assert_allclose(project_jit(x, c, r), numpy_ball_projection(x, c, r), rtol=0,
                               atol=1e-13 * scale)


# ---------------------------------------------------------------------------
# ball_scale
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("distance, radius, expected", [
    (2.0, 1.0, 0.5),
    (0.5, 1.0, 1.0),
    (1.0, 1.0, 1.0),
    (1.0, 0.0, 0.0),
    (0.0, 0.0, 0.0),  # the zero ball: P is constant, so the scale is 0 too
    (0.0, 1.0, 1.0),
    (3.0, np.inf, 1.0),
    (1e300, 1.0, 1e-300),
])
def test_ball_scale_values(distance, radius, expected):
    assert float(ball_scale(jnp.asarray(distance), jnp.asarray(radius))) == pytest.approx(
        expected, rel=1e-15)


@pytest.mark.parametrize("distance, radius", [(0.0, 0.0), (0.0, 1.0), (2.0, np.inf),
                                              (1.0, 1.0)])
def test_ball_scale_gradients_are_finite(distance, radius):
    grads = jax.grad(ball_scale, argnums=(0, 1))(jnp.asarray(distance), jnp.asarray(radius))
    assert all(np.isfinite(float(g)) for g in grads)


def test_ball_scale_gradients_outside():
    """d/dd (r/d) = −r/d², d/dr (r/d) = 1/d."""
    g_d, g_r = jax.grad(ball_scale, argnums=(0, 1))(jnp.asarray(4.0), jnp.asarray(1.0))
    assert float(g_d) == pytest.approx(-1.0 / 16.0, rel=1e-15)
    assert float(g_r) == pytest.approx(0.25, rel=1e-15)
    g_d, g_r = jax.grad(ball_scale, argnums=(0, 1))(jnp.asarray(0.5), jnp.asarray(1.0))
    assert float(g_d) == 0.0 and float(g_r) == 0.0


# ---------------------------------------------------------------------------
# Derivatives, transformations, dtypes
# ---------------------------------------------------------------------------


def test_gradients_match_finite_differences():
    """Reverse and forward mode w.r.t. tree, center and radius, at a point
    outside the ball, against central differences."""
    rng = np.random.default_rng(4)
    x, c = random_tree(rng), random_tree(rng)
    r = 0.5 * np.linalg.norm(flatten(x) - flatten(c))
    probe = random_tree(rng)
    dx, dc, dr = random_tree(rng), random_tree(rng), 0.3

    def f(x, c, r):
        return sum(jnp.sum(p * q) for p, q in zip(jax.tree_util.tree_leaves(probe),
                                                  jax.tree_util.tree_leaves(
                                                      project_l2_ball(x, c, r))))

    f = jax.jit(f)  # one program each for f, its gradient and its JVP (not op by op)
    h = 1e-6
    plus = f(tu.add(x, tu.scale(h, dx)), tu.add(c, tu.scale(h, dc)), r + h * dr)
    minus = f(tu.sub(x, tu.scale(h, dx)), tu.sub(c, tu.scale(h, dc)), r - h * dr)
    fd = (plus - minus) / (2 * h)
    gx, gc, gr = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(x, c, r)
    reverse = (sum(jnp.sum(a * b) for a, b in zip(jax.tree_util.tree_leaves(gx),
                                                  jax.tree_util.tree_leaves(dx)))
               + sum(jnp.sum(a * b) for a, b in zip(jax.tree_util.tree_leaves(gc),
                                                    jax.tree_util.tree_leaves(dc)))
               + gr * dr)
    forward = jax.jit(lambda p, t: jax.jvp(f, p, t)[1])((x, c, r), (dx, dc, dr))
    np.testing.assert_allclose(reverse, fd, rtol=1e-7)
    np.testing.assert_allclose(forward, fd, rtol=1e-7)


@pytest.mark.parametrize("radius", [0.0, 1.0, np.inf])
def test_gradients_are_finite_at_the_center(radius):
    c = np.array([0.5, -1.0, 2.0])
    probe = np.array([1.0, 2.0, -3.0])

    def f(x, c, r):
        return jnp.sum(probe * project_l2_ball(x, c, r))

    for g in jax.grad(f, argnums=(0, 1, 2))(c.copy(), c, radius):
        assert np.all(np.isfinite(g))
    _, tangent = jax.jvp(f, (c.copy(), c, radius), (probe, probe, 1.0))
    assert np.isfinite(tangent)


def test_jacobian_is_identity_at_the_center_of_a_positive_ball():
    """For r > 0 the projection is the identity near x = c."""
    c = np.array([0.5, -1.0, 2.0])
    jac = jax.jacobian(project_l2_ball)(c.copy(), c, 1.0)
    np.testing.assert_array_equal(jac, np.eye(3))


def test_jacobian_is_zero_for_a_zero_radius_ball():
    """r = 0: the ball is its centre, P(x) = c for every x, so ∂P/∂x = 0 (also at x = c)
    and ∂P/∂c = I; checked against the constant map's finite differences."""
    c = np.array([0.5, -1.0, 2.0])
    for x in (c.copy(), c + np.array([0.3, 0.0, -0.1])):
        d_x, d_c = jax.jacobian(project_l2_ball, argnums=(0, 1))(x, c, 0.0)
        np.testing.assert_array_equal(d_x, np.zeros((3, 3)))
        np.testing.assert_array_equal(d_c, np.eye(3))


def test_integer_center_gives_the_tree_dtype():
    x = jnp.array([3.0, 4.0], jnp.float32)
    got = project_l2_ball(x, jnp.array([0, 0]), 2.5)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, [1.5, 2.0], rtol=1e-6)


def test_vmap_over_radii_and_points():
    rng = np.random.default_rng(5)
    xs, c = rng.normal(size=(6, S)) * 2, rng.normal(size=S)
    radii_ = np.array([0.0, 0.1, 1.0, 3.0, 10.0, np.inf])
    got = jax.vmap(project_l2_ball, in_axes=(0, None, 0))(xs, c, radii_)
    for i in range(6):
        np.testing.assert_allclose(got[i], numpy_ball_projection(xs[i], c, radii_[i]),
                                   rtol=1e-13, atol=1e-13)
    grid = jax.jit(jax.vmap(project_l2_ball, in_axes=(None, None, 0)))(xs[0], c, radii_)
    for i in range(6):
        np.testing.assert_allclose(grid[i], numpy_ball_projection(xs[0], c, radii_[i]),
                                   rtol=1e-13, atol=1e-13)


def test_jit_matches_eager():
    rng = np.random.default_rng(6)
    x, c = random_tree(rng), random_tree(rng)
    eager = project_l2_ball(x, c, 0.7)
    jitted = jax.jit(project_l2_ball)(x, c, 0.7)
    np.testing.assert_allclose(flatten(jitted), flatten(eager), rtol=1e-15)


@pytest.mark.parametrize("x64", [True, False], ids=["x64-on", "x64-off"])
def test_float32_in_float32_out(x64):
    rng = np.random.default_rng(7)
    x, c = rng.normal(size=S) * 3, rng.normal(size=S)
    ref = numpy_ball_projection(x, c, 1.0)
    with jax.enable_x64(x64):
        got = project_l2_ball(jnp.asarray(x, jnp.float32), jnp.asarray(c, jnp.float32), 1.0)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# Pytree arithmetic (cljax._src.tree), which the projections are built on
# ---------------------------------------------------------------------------


def test_tree_norms_match_numpy():
    rng = np.random.default_rng(8)
    x = random_tree(rng)
    flat = flatten(x)
    assert float(tu.sq_norm(x)) == pytest.approx(np.sum(flat**2), rel=1e-14)
    assert float(tu.norm(x)) == pytest.approx(np.linalg.norm(flat), rel=1e-14)


def test_per_task_norms_and_distances_match_numpy():
    rng = np.random.default_rng(9)
    t = 4
    task, glob = random_tree(rng, (t,)), random_tree(rng)
    flat_task, flat_glob = flatten(task, (t,)), flatten(glob)
    np.testing.assert_allclose(tu.per_task_sq_norm(task), np.sum(flat_task**2, axis=1),
                               rtol=1e-14)
    np.testing.assert_allclose(tu.per_task_distance(task, glob),
                               np.linalg.norm(flat_task - flat_glob, axis=1), rtol=1e-14)
    np.testing.assert_allclose(flatten(tu.subtract_global(task, glob), (t,)),
                               flat_task - flat_glob, rtol=1e-15)
    broadcast = tu.broadcast_global(glob, t)
    assert jax.tree_util.tree_structure(broadcast) == jax.tree_util.tree_structure(task)
    np.testing.assert_array_equal(flatten(broadcast, (t,)), np.tile(flat_glob, (t, 1)))
    np.testing.assert_array_equal(tu.per_task_distance(broadcast, glob), np.zeros(t))


def test_tree_arithmetic_matches_numpy():
    rng = np.random.default_rng(10)
    a, b = random_tree(rng), random_tree(rng)
    fa, fb = flatten(a), flatten(b)
    np.testing.assert_allclose(flatten(tu.add(a, b)), fa + fb, rtol=1e-15)
    np.testing.assert_allclose(flatten(tu.sub(a, b)), fa - fb, rtol=1e-15)
    np.testing.assert_allclose(flatten(tu.scale(2.5, a)), 2.5 * fa, rtol=1e-15)
    np.testing.assert_array_equal(flatten(tu.where(True, a, b)), fa)
    np.testing.assert_array_equal(flatten(tu.where(False, a, b)), fb)
    assert tu.dtype_of(a) == jnp.float64
    assert tu.dtype_of({"a": jnp.ones(2, jnp.float32), "b": jnp.ones(1, jnp.float32)}) \
        == jnp.float32


def test_safe_sqrt_values_and_gradient():
    q = jnp.array([4.0, 0.0, -1.0])
    np.testing.assert_array_equal(tu.safe_sqrt(q), [2.0, 0.0, 0.0])
    grad = jax.vmap(jax.grad(tu.safe_sqrt))(q)
    np.testing.assert_array_equal(grad, [0.25, 0.0, 0.0])


def test_tree_norm_gradient_is_finite_at_zero():
    zero = {"a": jnp.zeros(3), "b": jnp.zeros((2, 2))}
    grad = jax.grad(tu.norm)(zero)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grad))
    grad = jax.grad(lambda t: jnp.sum(tu.per_task_distance(t, jnp.zeros(3))))(jnp.zeros((2, 3)))
    assert np.all(np.isfinite(grad))
