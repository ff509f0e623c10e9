"""The cljax console script: the demo's numbers against Example 2's closed forms."""

import json
import subprocess
import sys

import numpy as np
import pytest

from cljax.cli import main


def test_demo_json_matches_closed_forms(capsys):
    assert main(["demo", "--realisations", "4000", "--num-eps", "41", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for sigma, r in out["sigmas"].items():
        s = float(sigma)
        assert abs(r["E_S"] - 2 * s**2) < 4 * r["E_S_se"]
        assert abs(r["E_C"] - (4.0 + s**2 / 2)) < 4 * r["E_C_se"]
        assert r["E_CL"][0] == pytest.approx(r["E_C"], rel=1e-5)  # ε = 0 is consensus
        assert r["E_CL"][-1] == pytest.approx(r["E_S"], rel=1e-5)  # ε = 10 is separate here
        assert r["E_CL_best"] < min(r["E_S"], r["E_C"])
    assert np.isclose(out["eps_grid"][-1], 10.0)


@pytest.mark.parametrize("command, option", [
    ("demo", "--realisations=0"), ("demo", "--mu=-1"), ("demo", "--num-eps=0"),
    ("covid", "--n-train=0"), ("covid", "--eps=-1"), ("covid", "--eps-sweep=0x"),
])
def test_subcommands_reject_bad_options_naming_them(command, option):
    """argparse exits with status 2 and names the option (no traceback, no work done)."""
    proc = subprocess.run([sys.executable, "-m", "cljax.cli", command, option],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert option.split("=")[0] in proc.stderr
