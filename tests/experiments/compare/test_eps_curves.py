"""``cljax compare --eps-curves``: test MSE against ε for the parametric and functional forms.

One CLI run on a tiny graph_linear (one ADMM compilation, the cost of this file) is checked
against independent references: NumPy least squares for the ε = 0 and ε = ∞ limits of both
forms, CVXPY for the parametric problem at an interior ε, NumPy for ε_max.
"""

import json

import jax
import numpy as np
import pytest

from cljax.cli import main
from cljax.experiments.compare import eps_curves as ec
from cljax.experiments.compare import problems as bp
from cljax.experiments.compare.cli import markdown_table

T, N, FRACTIONS = 3, 30, (0.0, 0.5, 1.0)


def _ridge(x, y, ridge=1e-3):
    return np.linalg.solve(x.T @ x / len(y) + ridge * np.eye(x.shape[1]), x.T @ y / len(y))


def _mse(theta, xt, ft):
    return np.mean((np.einsum("tnp,tp->tn", xt, theta) - ft) ** 2)


def test_cli_eps_curves_limits_and_units_match_numpy(tmp_path, capsys):
    out = tmp_path / "eps"
    argv = ["compare", "--eps-curves", "--benchmarks", "graph_linear", "--seeds", "2",
            "--tasks", str(T), "--samples", str(N), "--eps-fractions",
            ",".join(map(str, FRACTIONS)), "--json", "--out", str(out)]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["study"] == "eps_curves" and result["forms"] == ["parametric", "functional"]
    assert result["fractions"] == list(FRACTIONS)
    # the separate limit's fraction and eps are inf: strict JSON null, listed
    assert result["non_finite"]["/rows/3/fraction"] == "inf"
    rows = {(r["form"], r["fraction"]): r for r in result["rows"]}
    assert len(result["rows"]) == 2 * (len(FRACTIONS) + 1)
    assert all(r["seeds"] == 2 and r["benchmark"] == "graph_linear" for r in result["rows"])
    # recompute the seeded problems (the keys of run_comparison) and the references
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(0), 1), 2)
    pooled, separate, spread_p, spread_f, problems = [], [], [], [], []
    for k in keys:
        prob = bp.graph_linear(k, num_tasks=T, num_samples=N)
        x, y = np.asarray(prob.train.x), np.asarray(prob.train.y)
        xt, ft = np.asarray(prob.x_test), np.asarray(prob.f_test)
        problems.append((x, y, xt, ft))
        p = x.shape[-1]
        con = np.linalg.lstsq(x.reshape(-1, p), y.reshape(-1), rcond=None)[0]
        sep = np.stack([np.linalg.lstsq(x[t], y[t], rcond=None)[0] for t in range(T)])
        pooled.append(_mse(np.broadcast_to(con, (T, p)), xt, ft))
        separate.append(_mse(sep, xt, ft))
        ridge = np.stack([_ridge(x[t], y[t]) for t in range(T)])
        centre = ridge.mean(axis=0)
        spread_p.append(np.max(np.linalg.norm(ridge - centre, axis=1)))
        spread_f.append(np.max(np.mean(np.abs(np.einsum("tnp,tp->tn", x, ridge - centre)),
                                       axis=1)))
    inf = None  # strict JSON
    for form in ("parametric", "functional"):
        assert rows[form, inf]["mean"] == pytest.approx(np.mean(separate), rel=1e-6)
    assert rows["parametric", 0.0]["mean"] == pytest.approx(np.mean(pooled), rel=1e-6)
    # the L1 functional constraint is met only slowly near ε = 0 (3000 primal-dual steps)
    assert rows["functional", 0.0]["mean"] == pytest.approx(np.mean(pooled), rel=0.03)
    assert rows["parametric", 0.5]["eps"] == pytest.approx(0.5 * np.mean(spread_p), rel=1e-9)
    assert rows["functional", 1.0]["eps"] == pytest.approx(np.mean(spread_f), rel=1e-9)
    se = np.std(separate, ddof=1) / np.sqrt(2)
    assert rows["parametric", inf]["se"] == pytest.approx(se, rel=1e-4)
    # the interior parametric point against CVXPY's solution of P_CL at that ε
    cp = pytest.importorskip("cvxpy")
    cvx = []
    for (x, y, xt, ft), eps in zip(problems, spread_p):
        th, g = cp.Variable((T, x.shape[-1])), cp.Variable(x.shape[-1])
        loss = sum(cp.sum_squares(x[t] @ th[t] - y[t]) / N for t in range(T))
        cons = [cp.norm(th[t] - g) <= 0.5 * eps for t in range(T)]
        cp.Problem(cp.Minimize(loss), cons).solve(solver=cp.CLARABEL)
        cvx.append(_mse(th.value, xt, ft))
    assert rows["parametric", 0.5]["mean"] == pytest.approx(np.mean(cvx), rel=1e-3)
    # the verdict rows are consistent with the curve rows
    for v in result["verdicts"]:
        best = rows[v["form"], v["best_fraction"]]
        assert v["best"]["mean"] == best["mean"]
        assert v["minus_consensus"]["mean"] == pytest.approx(
            best["mean"] - rows[v["form"], 0.0]["mean"], abs=1e-12)
        assert v["minus_separate"]["mean"] == pytest.approx(
            best["mean"] - rows[v["form"], inf]["mean"], abs=1e-12)
    # the per-seed errors behind the rows, and the paired functional − parametric difference
    from scipy.stats import t as student_t

    per = {form: np.asarray(result["errors"]["graph_linear"][form]) for form in ec.FORMS}
    points = list(FRACTIONS) + [inf]
    for form, arr in per.items():
        assert arr.shape == (2, len(points))
        np.testing.assert_allclose(arr.mean(axis=0), [rows[form, f]["mean"] for f in points])
    v = {v["form"]: v for v in result["verdicts"]}
    d = (per["functional"][:, points.index(v["functional"]["best_fraction"])]
         - per["parametric"][:, points.index(v["parametric"]["best_fraction"])])
    half = student_t.ppf(0.975, 1) * np.std(d, ddof=1) / np.sqrt(2)
    np.testing.assert_allclose(v["functional"]["minus_parametric"]["ci95"],
                               [d.mean() - half, d.mean() + half], rtol=1e-9)
    # files: the same table and the rows as CSV
    assert (out / "eps_curves.md").read_text().strip() == result["markdown"]
    lines = (out / "eps_curves.csv").read_text().splitlines()
    assert lines[0] == "benchmark,form,fraction,eps,mean,se,seeds" and len(lines) == 9
    assert lines[4].startswith("graph_linear,parametric,inf,inf,")


def test_summarise_paired_intervals_by_hand():
    """Verdicts from a made-up study: paired mean, s.e. (ddof 1) and 95% t interval."""
    from scipy.stats import t as student_t

    rng = np.random.default_rng(0)
    errors = np.stack([3 + 0.1 * rng.normal(size=5), 2 + 0.1 * rng.normal(size=5),
                       2.5 + 0.1 * rng.normal(size=5), 4 + 0.1 * rng.normal(size=5)], axis=1)
    study = {"fractions": [0.0, 0.3, 1.0], "errors": {("b", "functional"): errors},
             "eps_max": {("b", "functional"): np.ones(5)}, "seconds": {("b", "functional"): 1.0}}
    rows, (v,) = ec.summarise(study)
    assert [r["fraction"] for r in rows] == [0.0, 0.3, 1.0, float("inf")]
    assert v["best_fraction"] == 0.3
    d = errors[:, 1] - errors[:, 3]
    se = np.std(d, ddof=1) / np.sqrt(5)
    q = student_t.ppf(0.975, 4)
    assert v["minus_separate"]["se"] == pytest.approx(se, rel=1e-12)
    np.testing.assert_allclose(v["minus_separate"]["ci95"], [d.mean() - q * se, d.mean() + q * se])
    assert v["verdict"] == "interior minimum below both limits"
    # interior points no better than ε = 0: below separate, not resolved from consensus
    errors[:, 1:3] = errors[:, :1] + 0.5 + 0.1 * rng.normal(size=(5, 2))
    v = ec.summarise(study)[1][0]
    assert v["minus_consensus"]["ci95"][0] > 0 and v["minus_separate"]["ci95"][1] < 0
    assert v["verdict"] == "below separate only (not below consensus)"


def test_output_spread_is_the_functional_radius_of_a_linear_model():
    rng = np.random.default_rng(1)
    x, theta = rng.normal(size=(3, 7, 2)), rng.normal(size=(3, 2))
    got = ec.output_spread(lambda th, xt: xt @ th, theta, x)
    want = np.max(np.mean(np.abs(np.einsum("tnp,tp->tn", x, theta - theta.mean(0))), axis=1))
    assert float(got) == pytest.approx(want, rel=1e-12)
    assert float(ec.param_spread(theta)) == pytest.approx(
        np.max(np.linalg.norm(theta - theta.mean(0), axis=1)), rel=1e-12)


def test_compare_table_shows_fit_time_for_any_method_list():
    rows = [{"benchmark": "b1", "method": "penalty", "mean": 1.5, "se": 0.25, "seeds": 3,
             "seconds": 2.5},
            {"benchmark": "b1", "method": "cl_resilient", "mean": 1.25, "se": 0.5, "seeds": 3,
             "seconds": 12.0}]
    table = markdown_table(rows, ["b1", "b2"], ["penalty", "cl_resilient"]).splitlines()
    assert table[2] == "| penalty | 1.5 ± 0.25 (2.5 s) | n/a |"
    assert table[3] == "| cl_resilient | **1.25 ± 0.5** (12 s) | n/a |"


@pytest.mark.parametrize("argv, message", [
    (["--eps-curves", "--methods", "separate"], "--methods: not used with --eps-curves"),
    (["--eps-fractions", "0,1"], "--eps-fractions: only with --eps-curves"),
    (["--eps-curves", "--benchmarks", "gaussian_means"],
     "--benchmarks: --eps-curves runs on graph_linear, heterogeneous_nonlinear only"),
])
def test_bad_flag_combinations_are_one_line_usage_errors(argv, message, capsys, tmp_path):
    out = tmp_path / "never"
    assert main(["compare", "--out", str(out)] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cljax compare: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_bad_fractions_are_argparse_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--eps-curves", "--eps-fractions", "0.1,1", "--out", ""])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --eps-fractions: fractions must be finite, start at 0" in err
    assert err.count("\n") == 1
