"""``cljax gaussian``: files, JSON summary, progress, and clear errors for bad options."""

import csv
import json
import numpy as np
import pytest

from cljax.cli import main


def test_gaussian_writes_csv_png_markdown_and_json(tmp_path, capsys):
    out = tmp_path / "g"
    r = 1000
    argv = ["gaussian", "--out", str(out), "--realisations", str(r), "--num-eps", "21",
            "--table-realisations", "20", "--table-num-eps", "6",
            "--designs", "example2-sigma2", "--tasks", "3", "--dim", "1", "--samples", "3",
            "--two-task-draws", "4000", "--two-task-eps0", "1", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert "[cljax gaussian]" in captured.err  # progress goes to stderr
    for name in ("fig3.csv", "fig3.png", "two_task.csv", "eusipco_fig1.png", "selection.csv",
                 "selection.md", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    assert set(summary["example2"]) == {"1", "2"}
    assert summary["non_finite"] == {}
    # Example 2 (T = 4, d = 2): per realisation s.d. of E_S is σ², of E_C σ²/2 (see
    # tests/test_cli.py); the standard errors against theory, the means against the closed
    # forms with the theoretical errors (5 and 4 standard deviations).
    for sigma in (1.0, 2.0):
        res = summary["example2"][f"{sigma:g}"]
        sd_s, sd_c = sigma**2, sigma**2 / 2
        assert res["E_S_se"] * np.sqrt(r) / sd_s == pytest.approx(1, abs=5 * 0.5 * np.sqrt(3.5 / r))
        assert res["E_C_se"] * np.sqrt(r) / sd_c == pytest.approx(1, abs=5 * 0.5 * np.sqrt(8 / r))
        assert abs(res["E_S"] - 2 * sigma**2) < 4 * sd_s / np.sqrt(r)
        assert abs(res["E_C"] - (4.0 + sigma**2 / 2)) < 4 * sd_c / np.sqrt(r)
        assert res["theorem1"]["minus_E_C"]["mean"] < 0
    assert summary["two_task"]["max_abs_z_mc_vs_closed_form"] < 4
    with open(out / "fig3.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 21 and float(rows[0]["eps"]) == 0.0
    assert float(rows[0]["E_CL"]) == pytest.approx(float(rows[0]["E_C_mc"]), rel=1e-5)
    with open(out / "selection.csv") as f:
        table = list(csv.DictReader(f))
    assert [t["design"] for t in table] == ["example2-sigma2", "custom-T3-d1-N3"]
    assert table[0]["E_CL_CV"] == "" and table[1]["E_CL_CV"] != ""  # CV needs N_t >= 2
    md = (out / "selection.md").read_text()
    assert "James-Stein+" in md and "custom-T3-d1-N3" in md
    assert json.loads((out / "summary.json").read_text())["selection"] == summary["selection"]


@pytest.mark.parametrize("option,value", [("--sigmas", "-1"), ("--num-eps", "0"),
                                          ("--tasks", "0"), ("--realisations", "0"),
                                          ("--table-realisations", "0"), ("--sigma", "-2"),
                                          ("--folds", "1"), ("--designs", "nope")])
def test_gaussian_rejects_bad_options(option, value, tmp_path, capsys):
    """argparse: status 2, one line naming the option, before any work (in-process: an
    exception would fail the test)."""
    with pytest.raises(SystemExit) as exc:
        main(["gaussian", "--out", str(tmp_path / "never"), option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cljax gaussian: error: argument {option}") and err.count("\n") == 1
    assert not (tmp_path / "never").exists()
