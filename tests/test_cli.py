"""The cljax console script: the demo's numbers against Example 2's closed forms."""

import json

import numpy as np
import pytest

from cljax.cli import main


def sd_of_sample_sd(excess_kurtosis, r):
    """Relative standard deviation of a sample standard deviation of r draws: about
    ½·√((κ + 2)/r), κ the excess kurtosis of the draws."""
    return 0.5 * np.sqrt((excess_kurtosis + 2) / r)


def test_demo_json_matches_closed_forms(capsys):
    """Example 2 (T = 4, d = 2, θ̄ = 0): per realisation E_S = (σ²/4)·χ²₈, so its s.d. is σ²
    (excess kurtosis 1.5); E_C = μ² + ‖ȳ‖² with ‖ȳ‖² = (σ²/4)·χ²₂, s.d. σ²/2 (kurtosis 6).
    The standard errors are checked against σ²/√R and σ²/(2√R), and the means against the
    closed forms with those theoretical errors (not the code's own)."""
    r, mu = 4000, 2.0
    assert main(["demo", "--realisations", str(r), "--num-eps", "41", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["sigmas"]) == {"1.0", "2.0"}  # the loop below runs over both σ
    assert out["non_finite"] == {}
    for sigma, res in out["sigmas"].items():
        s = float(sigma)
        sd_s, sd_c = s**2, s**2 / 2
        assert res["E_S_se"] * np.sqrt(r) / sd_s == pytest.approx(1, abs=5 * sd_of_sample_sd(1.5, r))
        assert res["E_C_se"] * np.sqrt(r) / sd_c == pytest.approx(1, abs=5 * sd_of_sample_sd(6, r))
        assert abs(res["E_S"] - 2 * s**2) < 4 * sd_s / np.sqrt(r)
        assert abs(res["E_C"] - (mu**2 + s**2 / 2)) < 4 * sd_c / np.sqrt(r)
        assert res["E_CL"][0] == pytest.approx(res["E_C"], rel=1e-5)  # ε = 0 is consensus
        assert res["E_CL"][-1] == pytest.approx(res["E_S"], rel=1e-5)  # ε = 10 is separate here
        assert res["E_CL_best"] < min(res["E_S"], res["E_C"])
        assert res["E_CL_best"] == pytest.approx(min(res["E_CL"]))
    assert np.isclose(out["eps_grid"][-1], 10.0)


@pytest.mark.parametrize("command, option", [
    ("demo", "--realisations=0"), ("demo", "--mu=-1"), ("demo", "--num-eps=0"),
    ("covid", "--n-train=0"), ("covid", "--eps=-1"), ("covid", "--eps-sweep=0x"),
])
def test_subcommands_reject_bad_options_naming_them(command, option, capsys):
    """argparse exits with status 2 and one line naming the option (in-process: a traceback
    would fail the test; tests/test_cli_errors.py runs the console script itself)."""
    with pytest.raises(SystemExit) as exc:
        main([command, option])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cljax {command}: error: argument {option.split('=')[0]}")
    assert err.count("\n") == 1
