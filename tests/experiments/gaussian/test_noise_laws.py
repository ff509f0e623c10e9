"""Noise laws of the Gaussian-mean Monte Carlo engine (issue 16, open question 3).

References: SciPy's distributions (CDF for a Kolmogorov–Smirnov test, moments, excess
kurtosis) and quadrature for the contaminated mixture; the engine's draws against the test's
own draws; the CLI's intervals against mean ± 1.96 sd/√R of the per-realisation differences.
"""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from cljax.cli import main
from cljax.experiments.gaussian import studies
from cljax.experiments.gaussian.noise import (Contaminated, Gaussian, Laplace, StudentT,
                                              parse_noise, parse_noise_list)

N = 100_000


def _mixture_cdf(p, k=10.0):
    """CDF of the contaminated law c g (1 or k), c = 1/√(1 − p + p k²)."""
    c = 1.0 / math.sqrt(1 - p + p * k**2)
    return lambda x: (1 - p) * stats.norm.cdf(x, scale=c) + p * stats.norm.cdf(x, scale=c * k)


def _even_moment(law, j):
    """E z^j (j even) in closed form; inf where it diverges (Student-t: j ≥ ν)."""
    k = j // 2
    double_factorial = math.prod(range(1, j, 2))  # E g^j = (j − 1)!! for g ~ N(0, 1)
    if isinstance(law, Gaussian):
        return float(double_factorial)
    if isinstance(law, Laplace):  # (2k)! b^(2k), b = 1/√2
        return math.factorial(j) * 0.5**k
    if isinstance(law, StudentT):  # ν^k Γ(k + ½) Γ(ν/2 − k) / (√π Γ(ν/2)), times s^(2k)
        nu = law.df
        if j >= nu:
            return math.inf
        raw = nu**k * math.gamma(k + 0.5) * math.gamma(nu / 2 - k) / (math.sqrt(math.pi)
                                                                      * math.gamma(nu / 2))
        return raw * ((nu - 2) / nu) ** k
    p, scale = law.p, 10.0  # mixture of two centred normals
    c2 = 1.0 / (1 - p + p * scale**2)
    return c2**k * double_factorial * ((1 - p) + p * scale**j)


def _reference(law):
    """(cdf, even moments {2, 4, 8}, excess kurtosis by SciPy or the mixture's moments)."""
    m = {j: _even_moment(law, j) for j in (2, 4, 8)}
    if isinstance(law, Contaminated):
        return _mixture_cdf(law.p), m, m[4] - 3.0
    dist = {Gaussian: lambda: stats.norm(),
            StudentT: lambda: stats.t(law.df, scale=math.sqrt((law.df - 2) / law.df)),
            Laplace: lambda: stats.laplace(scale=1 / math.sqrt(2))}[type(law)]()
    assert float(dist.var()) == pytest.approx(1.0, rel=1e-12)  # SciPy: the scaling is right
    return dist.cdf, m, float(dist.stats(moments="k"))


LAWS = [Gaussian(), StudentT(3.0), StudentT(5.0), StudentT(10.0), Laplace(), Contaminated(0.1),
        Contaminated(0.3)]
_SAMPLE = jax.jit(lambda key, law: law.sample(key, (N,)))  # one compile per kind of law


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.spec)
def test_draws_have_the_law_mean_zero_variance_one_and_kurtosis(law):
    cdf, m, kurt = _reference(law)
    assert m[2] == pytest.approx(1.0, rel=1e-8)  # the scaling: variance σ² = 1 by SciPy
    assert law.excess_kurtosis == pytest.approx(kurt, rel=1e-7) or (
        math.isinf(kurt) and math.isinf(law.excess_kurtosis))
    x = np.asarray(_SAMPLE(jax.random.PRNGKey(7), law))
    assert x.dtype == np.float64
    # the whole distribution (deterministic key: not flaky)
    assert stats.kstest(x[:50_000], cdf).pvalue > 1e-3
    assert abs(x.mean()) < 4.0 / math.sqrt(N)  # sd of x is 1
    if math.isfinite(m[4]):  # Var x² = m4 − 1
        assert abs(np.mean(x**2) - 1.0) < 4.0 * math.sqrt(m[4] - 1.0) / math.sqrt(N)
    if math.isfinite(m[8]):  # Var x⁴ = m8 − m4²
        assert abs(np.mean(x**4) - (3.0 + kurt)) < 4.0 * math.sqrt(m[8] - m[4] ** 2) / math.sqrt(N)


def test_draws_are_deterministic_given_a_key_and_keep_float32():
    law = Contaminated(0.2)
    a = _SAMPLE(jax.random.PRNGKey(3), law)
    assert np.array_equal(a, _SAMPLE(jax.random.PRNGKey(3), law))
    assert not np.array_equal(a, _SAMPLE(jax.random.PRNGKey(4), law))
    for law in LAWS:  # traced only (no compile)
        draw = jax.eval_shape(lambda k: law.sample(k, (3,), jnp.float32), jax.random.PRNGKey(0))
        assert draw.dtype == jnp.float32 and draw.shape == (3,)


@pytest.mark.parametrize("law", [Gaussian(), Laplace()], ids=lambda law: law.spec)
def test_engine_averages_the_laws_samples_and_gaussian_is_unchanged(law):
    """The engine's sample means are the average of N_t draws σ z of the law; for the
    Gaussian law exactly the draws of ``jax.random.normal`` the engine made before."""
    design = studies.make_design("small", np.arange(6.0).reshape(3, 2), [1, 2, 4], 1.5)
    key = jax.random.PRNGKey(11)
    kwargs = {} if isinstance(law, Gaussian) else {"noise": law}
    out = studies.realisation_errors(key, design, [0.0], cross_learning=False, **kwargs)
    z = (jax.random.normal(key, (3, 4, 2)) if isinstance(law, Gaussian)
         else jax.random.laplace(key, (3, 4, 2)) / math.sqrt(2))
    ys = design.centres[:, None, :] + 1.5 * np.asarray(z)
    means = np.stack([ys[t, :n].mean(0) for t, n in enumerate(design.samples)])
    np.testing.assert_allclose(out["means"], means, rtol=1e-13)
    e_s = np.mean(np.sum((means - design.centres) ** 2, -1))
    np.testing.assert_allclose(out["E_S"], e_s, rtol=1e-12)
    if isinstance(law, Gaussian):  # bit for bit, with and without the argument
        again = studies.realisation_errors(key, design, [0.0], cross_learning=False,
                                           noise=Gaussian())
        assert all(np.array_equal(out[k], again[k]) for k in out)


def test_cli_noise_reports_theorem1_intervals_and_verdicts(tmp_path, capsys, monkeypatch):
    seen = []
    engine = studies.monte_carlo

    def spy(*args, **kwargs):
        out = engine(*args, **kwargs)
        seen.append((kwargs["noise"], {k: np.asarray(v, float) for k, v in out.items()}))
        return out

    monkeypatch.setattr(studies, "monte_carlo", spy)
    r = 30
    argv = ["gaussian", "--noise", "laplace", "--designs", "T4-d2", "--table-realisations",
            str(r), "--table-num-eps", "3", "--out", str(tmp_path / "n"), "--json", "--quiet",
            "--no-plots"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["noise"] == ["laplace"] and "Gaussian" in summary["sure"]
    assert "example2" not in summary and "selection" not in summary
    assert summary["files"] == ["noise_laws.csv", "noise_laws.md", "summary.json"]
    (law, err), = seen
    assert law == Laplace()
    row = summary["noise_laws"]["laplace"]["designs"]["T4-d2"]
    best = np.minimum(err["E_CL"].min(1), np.minimum(err["E_S"], err["E_C"]))
    for key, base in (("minus_E_C", err["E_C"]), ("minus_E_S", err["E_S"])):
        diff = best - base
        m, half = diff.mean(), stats.norm.ppf(0.975) * diff.std(ddof=1) / math.sqrt(r)
        t1 = row["theorem1"][key]
        assert t1["mean"] == pytest.approx(m, rel=1e-12)
        np.testing.assert_allclose(t1["ci95"], [m - half, m + half], rtol=1e-10)
        expected = "holds" if m + half < 0 else ("breaks" if m - half > 0 else "inconclusive")
        assert row["verdict"][key] == expected
    assert row["E_S"]["mean"] == pytest.approx(err["E_S"].mean(), rel=1e-12)
    md = (tmp_path / "n" / "noise_laws.md").read_text()
    assert "| laplace | T4-d2 |" in md and "SURE is not reported" in md


@pytest.mark.parametrize("spec", ["student-t:2", "student-t:abc", "cauchy", "contaminated:1.5",
                                  "student-t", "laplace:2", "gaussian,gaussian", ","])
def test_bad_noise_specs_are_one_line_usage_errors(spec, tmp_path, capsys):
    with pytest.raises(ValueError, match=spec.split(",")[0].split(":")[0] or "no noise"):
        parse_noise_list(spec)
    with pytest.raises(SystemExit) as exc:
        main(["gaussian", "--out", str(tmp_path / "never"), "--noise", spec])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cljax gaussian: error: argument --noise") and err.count("\n") == 1
    assert not (tmp_path / "never").exists()


def test_specs_round_trip():
    laws = parse_noise_list(" Gaussian, student-t:3,student-t:5.5 ,laplace,contaminated")
    assert laws == [Gaussian(), StudentT(3.0), StudentT(5.5), Laplace(), Contaminated(0.1)]
    assert [parse_noise(law.spec) for law in laws] == laws
    assert parse_noise("contaminated:0.25") == Contaminated(0.25)


def test_verdict_reads_the_interval():
    assert studies.verdict([-0.3, -0.1]) == "holds"
    assert studies.verdict([0.1, 0.3]) == "breaks"
    assert studies.verdict([-0.1, 0.1]) == "inconclusive"
    assert studies.verdict([float("nan")] * 2) == "inconclusive"  # R = 1: no s.e.
