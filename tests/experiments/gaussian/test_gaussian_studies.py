"""Monte Carlo studies: Example 2 against its closed forms, Theorem 1, designs, James–Stein."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.estimators._means import james_stein
from cljax.experiments.gaussian.studies import (default_eps_grid, example2_design, make_design, monte_carlo,
                                    random_design, selection_summary, standard_designs, theorem1)


EXAMPLE2_R = 3000
EXAMPLE2_GRID = np.concatenate([np.linspace(0.0, 10.0, 41), [1e3]])


@pytest.fixture(scope="module")
def example2_errors():
    """Per-realisation errors of Example 2 (μ = 2) at σ = 1 and 2, R = 3000: one Monte Carlo
    run per σ, shared by the closed-form test and the Theorem 1 test."""
    return {sigma: {k: np.asarray(v, float) for k, v in monte_carlo(
        jax.random.PRNGKey(int(sigma)), example2_design(sigma, 2.0), EXAMPLE2_GRID,
        EXAMPLE2_R).items()} for sigma in (1.0, 2.0)}


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_example2_matches_closed_forms_and_limits(sigma, example2_errors):
    r, mu = EXAMPLE2_R, 2.0
    err = example2_errors[sigma]
    for name, exact in (("E_S", 2 * sigma**2), ("E_C", mu**2 + sigma**2 / 2)):
        se = err[name].std(ddof=1) / np.sqrt(r)
        assert abs(err[name].mean() - exact) < 4 * se
    # realisation by realisation: ε = 0 is consensus, a large ε is separate
    np.testing.assert_allclose(err["E_CL"][:, 0], err["E_C"], rtol=1e-12)
    np.testing.assert_allclose(err["E_CL"][:, -1], err["E_S"], rtol=1e-12)
    # min over ε of the Monte Carlo E_CL is below both, beyond 4 standard errors
    curve = err["E_CL"].mean(0)
    k = int(np.argmin(curve))
    for base in ("E_S", "E_C"):
        diff = err["E_CL"][:, k] - err[base]
        assert diff.mean() + 4 * diff.std(ddof=1) / np.sqrt(r) < 0


def test_theorem1_differences_are_negative_on_several_designs(example2_errors):
    """Theorem 1 on four designs, with the 95% interval computed here from the per-realisation
    errors (mean ± 1.96·sd/√R of inf_ε E_CL − E_C and − E_S, inf over the grid, ε = 0 and ∞);
    the library's ``theorem1`` must give the same numbers.  Example 2 at σ = 1, 2: the runs
    of the closed-form test (R = 3000); the two random designs: R = 300 here."""
    runs = [(f"example2-sigma{s:g}", example2_errors[s]) for s in (1.0, 2.0)]
    for i, design in enumerate([random_design("a", 10, 2, 4, 2.0),
                                random_design("b", 4, 1, 1, 1.0, seed=3)]):
        grid = default_eps_grid(design, 21)
        runs.append((design.name, {k: np.asarray(v, float) for k, v in monte_carlo(
            jax.random.PRNGKey(12 + i), design, grid, 300).items()}))
    for name, err in runs:
        r = err["E_S"].shape[0]
        best = np.minimum(err["E_CL"].min(axis=1), np.minimum(err["E_S"], err["E_C"]))
        t1 = theorem1(err)
        assert t1["E_inf_CL"] == pytest.approx(best.mean(), rel=1e-12)
        for key, base in (("minus_E_C", err["E_C"]), ("minus_E_S", err["E_S"])):
            diff = best - base
            mean, half = diff.mean(), 1.959964 * diff.std(ddof=1) / np.sqrt(r)
            assert mean + half < 0, (name, key, mean, half)
            assert t1[key]["mean"] == pytest.approx(mean, rel=1e-12)
            np.testing.assert_allclose(t1[key]["ci95"], [mean - half, mean + half], rtol=1e-6)


def test_theorem1_is_computed_per_realisation():
    err = {"E_S": np.array([1.0, 3.0]), "E_C": np.array([2.0, 1.0]),
           "E_CL": np.array([[2.0, 0.5, 1.0], [1.0, 2.0, 3.0]])}
    t1 = theorem1(err)
    assert t1["E_inf_CL"] == pytest.approx(0.75)
    assert t1["minus_E_C"]["mean"] == pytest.approx(((0.5 - 2.0) + (1.0 - 1.0)) / 2)
    assert t1["minus_E_S"]["mean"] == pytest.approx(((0.5 - 1.0) + (1.0 - 3.0)) / 2)


def test_standard_designs_cover_the_issue():
    designs = standard_designs()
    assert {d.tasks for d in designs} >= {4, 10, 50}
    assert {d.dim for d in designs} >= {1, 2, 10}
    assert any(len(set(d.samples.tolist())) > 1 for d in designs)  # unequal N_t
    outlier = next(d for d in designs if "outlier" in d.name)
    dist = np.linalg.norm(outlier.centres - np.median(outlier.centres, 0), axis=1)
    assert dist[0] > 2 * np.max(dist[1:])
    names = [d.name for d in designs]
    assert len(names) == len(set(names))


def test_determinism_and_selection_with_cv():
    design = random_design("unequal", 5, 2, np.array([2, 3, 4, 6, 2]), 1.5)
    grid = default_eps_grid(design, 7)
    a = monte_carlo(jax.random.PRNGKey(0), design, grid, 20, selection=True, folds=3,
                    batch_size=7)
    b = monte_carlo(jax.random.PRNGKey(0), design, grid, 20, selection=True, folds=3)
    again = monte_carlo(jax.random.PRNGKey(0), design, grid, 20, selection=True, folds=3)
    for k in ("E_S", "E_C", "E_JS", "E_CL", "SURE", "CV"):
        np.testing.assert_array_equal(b[k], again[k])  # same key, same numbers
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12)  # chunking: rounding only
    assert a["CV"].shape == a["SURE"].shape == a["E_CL"].shape == (20, grid.size)
    rows = selection_summary(a, grid)
    e_cl = np.asarray(a["E_CL"])
    pick = np.argmin(np.asarray(a["SURE"]), axis=1)
    assert rows["E_CL_SURE"]["mean"] == pytest.approx(e_cl[np.arange(20), pick].mean())
    assert rows["E_CL_oracle"]["mean"] == pytest.approx(e_cl.mean(0).min())
    assert rows["E_CL_oracle"]["mean"] <= rows["E_CL_SURE"]["mean"] + 1e-12
    with pytest.raises(ValueError, match="N_t >= 2"):
        monte_carlo(jax.random.PRNGKey(0), example2_design(1.0), grid, 4, folds=3)


def test_bad_designs_and_options():
    with pytest.raises(ValueError, match="sigma"):
        make_design("x", np.zeros((3, 2)), 1, -1.0)
    with pytest.raises(ValueError, match="samples"):
        make_design("x", np.zeros((3, 2)), 0, 1.0)
    with pytest.raises(ValueError, match="tasks"):
        random_design("x", 0, 2, 1, 1.0)
    with pytest.raises(ValueError, match="realisations"):
        monte_carlo(jax.random.PRNGKey(0), example2_design(1.0), [0.0, 1.0], 0)
    with pytest.raises(ValueError, match="eps_grid"):
        monte_carlo(jax.random.PRNGKey(0), example2_design(1.0), [], 3)
    with pytest.raises(ValueError, match="eps_grid"):
        monte_carlo(jax.random.PRNGKey(0), example2_design(1.0), [-1.0], 3)


def test_james_stein_against_the_formula_and_its_limits():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(6, 2))
    tau2 = 0.8
    m = y.mean(0)
    s = np.sum((y - m) ** 2) / tau2
    expected = m + max(1 - ((6 - 1) * 2 - 2) / s, 0) * (y - m)
    np.testing.assert_allclose(james_stein(jnp.asarray(y), tau2), expected, rtol=1e-12)
    # unequal variances: precision-weighted centre
    tau = np.array([0.5, 1.0, 2.0, 1.0, 0.3, 0.9])
    w = 1 / tau
    mw = (w[:, None] * y).sum(0) / w.sum()
    sw = np.sum(np.sum((y - mw) ** 2, 1) * w)
    np.testing.assert_allclose(james_stein(jnp.asarray(y), tau),
                               mw + max(1 - 8 / sw, 0) * (y - mw), rtol=1e-12)
    # (T − 1) S <= 2: nothing to shrink
    y2 = jnp.asarray(rng.normal(size=(3, 1)))
    np.testing.assert_allclose(james_stein(y2, 1.0), y2, rtol=1e-12)
    # points all equal: stays there
    np.testing.assert_allclose(james_stein(jnp.ones((4, 2)), 1.0), np.ones((4, 2)))
    with pytest.raises(ValueError, match="noise_variances"):
        james_stein(jnp.asarray(y), -1.0)


def test_james_stein_beats_separate_by_monte_carlo():
    design = random_design("js", 10, 2, 1, 1.0)
    err = monte_carlo(jax.random.PRNGKey(5), design, [0.0], 2000)
    diff = np.asarray(err["E_JS"]) - np.asarray(err["E_S"])
    assert diff.mean() + 4 * diff.std(ddof=1) / np.sqrt(diff.size) < 0
