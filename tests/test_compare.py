"""Multi-task estimator interface, benchmark problems and ``cljax compare``."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax import benchmark_problems as bp
from cljax import multitask_interface as mi
from cljax.cli import main


def test_james_stein_matches_the_formula_and_its_limits():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(5, 3))
    grand = means.mean(0)
    spread = np.sum((means - grand) ** 2)
    s2 = 0.2
    factor = max(0.0, 1 - (3 * 4 - 2) * s2 / spread)
    np.testing.assert_allclose(mi.james_stein(jnp.asarray(means), s2),
                               grand + factor * (means - grand), rtol=1e-12)
    np.testing.assert_allclose(mi.james_stein(jnp.asarray(means), 1e6),  # all noise: grand mean
                               np.broadcast_to(grand, means.shape), atol=1e-12)
    two = rng.normal(size=(2, 2))  # d(T−1) − 2 = 0: no shrinkage
    np.testing.assert_allclose(mi.james_stein(jnp.asarray(two), 1.0), two)


def test_kfold_weights_hold_out_each_sample_once():
    w = np.asarray(mi.kfold_weights(3, 7, 3))
    assert w.shape == (3, 3, 7)
    np.testing.assert_array_equal((1 - w).sum(axis=0), 1.0)
    with pytest.raises(ValueError, match="at least 5 samples"):
        mi.kfold_weights(2, 4, 5)


def test_cross_validate_picks_the_true_shrinkage():
    """Validation error of ŷ = h·ȳ_train is minimised near the h that fits the data."""
    x = jnp.zeros((2, 40, 1))
    y = 3.0 + 0.01 * jax.random.normal(jax.random.PRNGKey(0), (2, 40))
    grid = jnp.array([0.0, 0.5, 1.0, 1.5])

    def fit_predict(h, x, y, w):
        mean = jnp.sum(w * y, axis=1, keepdims=True) / jnp.sum(w, axis=1, keepdims=True)
        return jnp.broadcast_to(h * mean, y.shape)

    best, errors = mi.cross_validate(fit_predict, grid, x, y, 4)
    assert float(best) == 1.0
    assert float(errors[0]) == pytest.approx(9.0, rel=0.01)


def test_linear_separate_and_consensus_are_least_squares():
    prob = bp.graph_linear(jax.random.PRNGKey(0), num_tasks=3, num_samples=15, num_features=4)
    x, y = np.asarray(prob.train.x), np.asarray(prob.train.y)
    sep = mi.get_estimator("separate", "linear")
    theta = np.asarray(sep.fit(jax.random.PRNGKey(0), x, y).params)
    for t in range(3):
        want = np.linalg.solve(x[t].T @ x[t] / 15 + 1e-3 * np.eye(4), x[t].T @ y[t] / 15)
        np.testing.assert_allclose(theta[t], want, rtol=1e-8)
    con = mi.get_estimator("consensus", "linear")
    theta = np.asarray(con.fit(jax.random.PRNGKey(0), x, y).params)
    xa, ya = x.reshape(45, 4), y.reshape(45)
    want = np.linalg.solve(xa.T @ xa / 45 + 1e-3 * np.eye(4), xa.T @ ya / 45)
    np.testing.assert_allclose(theta, np.broadcast_to(want, (3, 4)), rtol=1e-8)


def test_cl_parametric_means_lies_between_separate_and_consensus():
    prob = bp.gaussian_means(jax.random.PRNGKey(3), num_samples=5)
    est = mi.get_estimator("cl_parametric", "means")
    theta = np.asarray(est.fit(jax.random.PRNGKey(0), prob.train.x, prob.train.y).params)
    means = np.asarray(prob.train.y).mean(axis=1)
    centre_spread = np.linalg.norm(means - means.mean(0), axis=1).max()
    spread = np.linalg.norm(theta - theta.mean(0), axis=1).max()
    assert -1e-9 <= spread <= centre_spread + 1e-9


def test_interface_errors():
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        mi.get_estimator("nope", "linear")
    with pytest.raises(ValueError, match="does not apply to 'means'"):
        mi.get_estimator("dual_encoder", "means")
    est = mi.get_estimator("separate", "linear")
    with pytest.raises(ValueError, match="x has T = 3 tasks but y has T = 4"):
        est.fit(jax.random.PRNGKey(0), jnp.zeros((3, 5, 2)), jnp.zeros((4, 5)))
    fitted = est.fit(jax.random.PRNGKey(0), jnp.ones((3, 5, 2)), jnp.ones((3, 5)))
    with pytest.raises(ValueError, match="T = 3 tasks it was fitted on"):
        est.predict(fitted, jnp.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="unknown benchmark"):
        from cljax.compare_cli import run_comparison
        run_comparison(["mnist"], ["separate"])


@pytest.mark.parametrize("argv, message", [
    (["--benchmarks", "nope"], "unknown benchmark 'nope'"),
    (["--methods", "separate,magic"], "unknown method 'magic'"),
])
def test_cli_rejects_unknown_names(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(["compare"] + argv)
    assert message in capsys.readouterr().err


def test_cli_compare_table_matches_direct_computation(tmp_path):
    argv = ["compare", "--benchmarks", "gaussian_means", "--methods",
            "separate,consensus,james_stein,dual_encoder", "--seeds", "3", "--json",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    md = (tmp_path / "compare.md").read_text()
    csv = (tmp_path / "compare.csv").read_text().splitlines()
    assert csv[0] == "benchmark,method,mean,se,seeds,seconds" and len(csv) == 4
    assert "| dual_encoder | n/a |" in md
    # the separate row, recomputed from the seeded problems with numpy
    from cljax.compare_cli import run_comparison
    rows = run_comparison(["gaussian_means"], ["separate", "consensus"], seeds=3)
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(0), 0), 3)
    errs = []
    for k in keys:
        prob = bp.gaussian_means(k)
        est = np.asarray(prob.train.y).mean(axis=1)
        errs.append(np.mean(np.sum((est - np.asarray(prob.f_test)[:, 0]) ** 2, axis=1)))
    assert rows[0]["mean"] == pytest.approx(np.mean(errs), rel=1e-9)
    assert rows[0]["se"] == pytest.approx(np.std(errs, ddof=1) / np.sqrt(3), rel=1e-9)
    # consensus error: mean ‖θ̄ − θ_t‖² = μ² + (noise of the pooled mean), μ = 2
    assert rows[1]["mean"] > rows[0]["mean"] > 0


def test_cli_json_is_one_object(capsys, tmp_path):
    main(["compare", "--benchmarks", "gaussian_means", "--methods", "separate",
          "--seeds", "2", "--json", "--out", ""])
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][0]["method"] == "separate" and "markdown" in out
