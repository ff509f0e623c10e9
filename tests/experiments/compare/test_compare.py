"""Multi-task estimator interface, benchmark problems and ``cljax compare``."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.experiments.compare import problems as bp
from cljax.methods import _interface as mi
from cljax.cli import main
from cljax.estimators._means import cross_learning


def test_kfold_weights_hold_out_each_sample_once():
    w = np.asarray(mi.kfold_weights(3, 7, 3))
    assert w.shape == (3, 3, 7)
    np.testing.assert_array_equal((1 - w).sum(axis=0), 1.0)
    with pytest.raises(ValueError, match="at least 5 samples"):
        mi.kfold_weights(2, 4, 5)
    with pytest.raises(ValueError, match="num_folds >= 2"):
        mi.kfold_weights(2, 4, 1)
    assert mi.num_cv_folds(5, 3) == 3 and mi.num_cv_folds(5, 20) == 5
    with pytest.raises(ValueError, match="at least 2 samples per task, got N = 1"):
        mi.num_cv_folds(5, 1)


def test_cross_validate_never_picks_a_diverged_grid_point():
    """A NaN validation error (diverged fit) must not win the argmin."""
    x, y = jnp.zeros((2, 6, 1)), jnp.ones((2, 6))
    grid = jnp.array([0.0, 2.0, 1.0])

    def fit_predict(h, x, y, w):
        return jnp.where(h == 0.0, jnp.nan, h) * jnp.ones_like(y)

    best, errors = mi.cross_validate(fit_predict, grid, x, y, 3)
    assert np.isnan(errors[0]) and float(best) == 1.0


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


def test_cl_parametric_means_eps_is_the_cv_choice_recomputed_with_numpy_folds():
    """Independent recomputation: numpy folds (i mod 5), sample means, the core's
    cross_learning per ε, held-out squared error, argmin, refit on all samples."""
    prob = bp.gaussian_means(jax.random.PRNGKey(3), num_samples=5)
    y = np.asarray(prob.train.y)  # (T, N, d)
    t, n, d = y.shape
    est = mi.get_estimator("cl_parametric", "means")
    got = np.asarray(jax.jit(est.fit_fn)(jax.random.PRNGKey(0), prob.train.x, y))
    cl = jax.jit(cross_learning)
    means = y.mean(axis=1)
    spread = np.linalg.norm(means - means.mean(0), axis=1).max()
    grid = spread * np.array([0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0])
    folds = np.arange(n) % 5
    cv = []
    for eps in grid:
        errs = []
        for k in range(5):
            train, held = folds != k, folds == k
            theta = np.asarray(cl(jnp.asarray(y[:, train].mean(axis=1)), eps))
            errs.append(np.mean(np.sum((y[:, held] - theta[:, None]) ** 2, axis=-1)))
        cv.append(np.mean(errs))
    eps = grid[int(np.argmin(cv))]
    np.testing.assert_allclose(got, np.asarray(cl(jnp.asarray(means), eps)), atol=1e-9)
    # the choice matters here: the separate and consensus fits differ from it
    assert 0 < eps < spread


def test_linear_cl_parametric_limits_and_fold_weights():
    """ADMM cross-learning: ε = 0 gives pooled least squares, ε ≥ spread gives separate
    least squares (no ridge, numpy lstsq); a zero-weight sample's y does not matter."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 12, 3))
    y = np.einsum("tnp,tp->tn", x, rng.normal(size=(3, 3))) + 0.1 * rng.normal(size=(3, 12))
    ones = np.ones((3, 12))
    fit = jax.jit(mi._linear_cl_parametric)
    pooled = np.linalg.lstsq(x.reshape(-1, 3), y.reshape(-1), rcond=None)[0]
    np.testing.assert_allclose(fit(x, y, ones, 0.0), np.broadcast_to(pooled, (3, 3)), atol=1e-8)
    separate = np.stack([np.linalg.lstsq(x[t], y[t], rcond=None)[0] for t in range(3)])
    np.testing.assert_allclose(fit(x, y, ones, 100.0), separate, atol=1e-7)
    w = np.asarray(mi.kfold_weights(3, 12, 4)[1])
    y2 = np.where(w == 0, y + 5.0, y)
    np.testing.assert_allclose(fit(x, y2, w, 0.3), fit(x, y, w, 0.3), atol=1e-12)


def test_learned_graph_weighted_equals_the_fit_on_the_kept_samples():
    """Fold weights (i mod K) keep the same samples in every task: the weighted fit is
    fit_learned_graph_regression on those samples, and held-out y never matter."""
    from cljax.methods import _learned_graph as lg
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 12, 3)), rng.normal(size=(4, 12))
    w = np.asarray(mi.kfold_weights(4, 12, 3)[2])
    keep = w[0] == 1
    weighted = jax.jit(mi._learned_graph_weighted)
    got = weighted(x, y, w, 0.3)
    want = lg.fit_learned_graph_regression(jnp.asarray(x[:, keep]), jnp.asarray(y[:, keep]), 0.3,
                                           num_steps=300)[0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)  # rounding, through L̂ = (·)†
    np.testing.assert_allclose(weighted(x, np.where(w == 0, y - 7.0, y), w, 0.3), got,
                               atol=1e-12)
    # the CV'd adapter runs with fewer samples than folds (K capped at N = 3)
    est = mi.get_estimator("learned_graph", "linear")
    theta = est.fit(jax.random.PRNGKey(0), x[:, :3], y[:, :3]).params
    assert theta.shape == (4, 3) and np.all(np.isfinite(np.asarray(theta)))


def test_functional_cl_loss_ignores_held_out_labels():
    """FunctionalCL's ``yw`` loss: changing a zero-weight sample's y leaves the fit unchanged,
    changing a weighted one does not."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(3, 8, 2)), rng.normal(size=(3, 8))
    model = mi._functional_cl_linear(2)
    model = type(model)(**{**model.__dict__, "num_steps": 60})
    w = np.asarray(mi.kfold_weights(3, 8, 4)[0])
    fit = jax.jit(model.fit_weighted)
    key = jax.random.PRNGKey(0)
    base = np.asarray(fit(key, x, y, w, 0.2))
    np.testing.assert_allclose(fit(key, x, np.where(w == 0, y + 3.0, y), w, 0.2), base,
                               atol=1e-12)
    assert np.max(np.abs(np.asarray(fit(key, x, np.where(w == 1, y + 3.0, y), w, 0.2)) - base)) > 1e-3


def test_dual_encoder_adapter_on_a_linear_problem_is_deterministic_and_fits():
    prob = bp.graph_linear(jax.random.PRNGKey(1), num_tasks=3, num_samples=10, num_features=3)
    est = mi.get_estimator("dual_encoder", "linear")
    fit = jax.jit(est.fit_fn)
    params = fit(jax.random.PRNGKey(0), prob.train.x, prob.train.y)
    again = fit(jax.random.PRNGKey(0), prob.train.x, prob.train.y)
    pred = jax.jit(est.predict_fn)
    y_hat = np.asarray(pred(params, prob.train.x))
    np.testing.assert_array_equal(y_hat, np.asarray(pred(again, prob.train.x)))
    assert pred(params, prob.x_test).shape == prob.f_test.shape
    y = np.asarray(prob.train.y)  # training error well below predicting each task's mean
    assert np.mean((y_hat - y) ** 2) < 0.5 * np.mean((y - y.mean(axis=1, keepdims=True)) ** 2)


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_graph_linear_generator_shapes_determinism_and_noise(noise):
    """y − x w_t has standard deviation ``noise``; w_t recovered exactly from the noiseless test set."""
    draw = jax.jit(lambda k: bp.graph_linear(k, num_tasks=5, num_samples=300, num_features=4,
                                             noise=noise, num_test=20))
    prob = draw(jax.random.PRNGKey(0))
    assert prob.train.x.shape == (5, 300, 4) and prob.train.y.shape == (5, 300)
    assert prob.x_test.shape == (5, 20, 4) and prob.f_test.shape == (5, 20)
    np.testing.assert_array_equal(np.asarray(draw(jax.random.PRNGKey(0)).train.y),
                                  np.asarray(prob.train.y))
    assert not np.array_equal(np.asarray(draw(jax.random.PRNGKey(1)).train.y),
                              np.asarray(prob.train.y))
    xt, ft = np.asarray(prob.x_test), np.asarray(prob.f_test)
    w = np.stack([np.linalg.lstsq(xt[t], ft[t], rcond=None)[0] for t in range(5)])
    resid = np.asarray(prob.train.y) - np.einsum("tnp,tp->tn", np.asarray(prob.train.x), w)
    assert np.std(resid) == pytest.approx(noise, rel=0.05, abs=1e-9)


def test_heterogeneous_nonlinear_generator_shares_tasks_between_train_and_test():
    t, n, p = 3, 20000, 4
    draw = jax.jit(lambda k: bp.heterogeneous_nonlinear(k, num_tasks=t, num_samples=n,
                                                        num_features=p, num_test=n))
    prob = draw(jax.random.PRNGKey(0))
    assert prob.train.x.shape == (t, n, p) and prob.train.y.shape == (t, n)
    assert prob.x_test.shape == (t, n, p) and prob.f_test.shape == (t, n)
    np.testing.assert_array_equal(np.asarray(draw(jax.random.PRNGKey(0)).train.y),
                                  np.asarray(prob.train.y))
    # same covariate-shift centres m_r (‖m_r‖ = 1) in train and test.  A sample mean of N
    # draws of N(m_r, I_p) is off by ‖e‖ ≈ √(p/N) (0.014 here); allow 4 of that.
    m_train = np.asarray(prob.train.x).mean(axis=1)
    m_test = np.asarray(prob.x_test).mean(axis=1)
    assert np.all(np.linalg.norm(m_train - m_test, axis=1) < 4 * np.sqrt(2 * p / n))
    np.testing.assert_allclose(np.linalg.norm(m_test, axis=1), 1.0, atol=4 * np.sqrt(p / n))
    # and different tasks have different centres (a shared m would pass the lines above)
    assert np.min(np.linalg.norm(m_test[:, None] - m_test[None], axis=2)[np.triu_indices(t, 1)]) \
        > 8 * np.sqrt(p / n)


def test_interface_errors():
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        mi.get_estimator("nope", "linear")
    with pytest.raises(ValueError, match="does not apply to 'means'"):
        mi.get_estimator("dual_encoder", "means")
    est = mi.get_estimator("separate", "linear")
    with pytest.raises(ValueError, match=r"T=3 at \['x'\]; T=4 at \['y'\]"):
        est.fit(jax.random.PRNGKey(0), jnp.zeros((3, 5, 2)), jnp.zeros((4, 5)))
    fitted = est.fit(jax.random.PRNGKey(0), jnp.ones((3, 5, 2)), jnp.ones((3, 5)))
    with pytest.raises(ValueError, match="T = 3 tasks it was fitted on"):
        est.predict(fitted, jnp.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="unknown benchmark"):
        from cljax.experiments.compare.cli import run_comparison
        run_comparison(["mnist"], ["separate"])


@pytest.mark.parametrize("argv, message", [
    (["--benchmarks", "nope"], "unknown benchmark 'nope'"),
    (["--methods", "separate,magic"], "unknown method 'magic'"),
])
def test_cli_rejects_unknown_names(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(["compare"] + argv)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "1"], "argument --seeds: must be an integer >= 2"),
    (["--seeds", ""], "argument --seeds: must be an integer >= 2"),
    (["--seeds", "two"], "argument --seeds: must be an integer >= 2"),
    (["--seed", "99999999999999999999"], "argument --seed: must be an integer in [0, 2**32)"),
    (["--benchmarks", ""], "unknown benchmark (empty)"),
])
def test_cli_bad_numbers_are_one_line_usage_errors(argv, message, capsys):
    """argparse: status 2, one line on stderr naming the option, no traceback."""
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--out", ""] + argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("argv, message", [
    (["--samples", "1", "--benchmarks", "graph_linear"],
     "--samples: method 'cl_parametric' on 'graph_linear' needs at least 2"),
    (["--samples", "1", "--benchmarks", "gaussian_means", "--methods", "james_stein"],
     "--samples: method 'james_stein'"),
    (["--samples", "10000000000"], "--seeds x --tasks x --samples: needs about"),
])
def test_cli_size_errors_are_usage_errors(argv, message, capsys, tmp_path):
    """No traceback: one line naming the option, exit status 2, before any work (the --out
    folder is not even created)."""
    out = tmp_path / "never"
    assert main(["compare", "--out", str(out)] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cljax compare: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("make", ["file", "file/sub", "md_is_dir"])
def test_cli_refuses_a_bad_out_before_any_work(make, tmp_path, capsys, monkeypatch):
    from cljax.experiments.compare import cli as compare_cli

    def no_work(*a, **k):
        raise AssertionError("work started")

    monkeypatch.setattr(compare_cli, "run_comparison", no_work)
    f = tmp_path / "file"
    f.write_text("keep me")
    (tmp_path / "d" / "compare.md").mkdir(parents=True)
    out = {"file": f, "file/sub": f / "sub", "md_is_dir": tmp_path / "d"}[make]
    assert main(["compare", "--seeds", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cljax compare: error: --out {out}") and err.count("\n") == 1
    assert f.read_text() == "keep me" and (tmp_path / "d" / "compare.md").is_dir()


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
    from cljax.experiments.compare.cli import run_comparison
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
    assert main(["compare", "--benchmarks", "gaussian_means", "--methods", "separate",
                 "--seeds", "2", "--json", "--out", ""]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][0]["method"] == "separate" and "markdown" in out
    assert out["non_finite"] == {}
