"""``cljax gaussian``: files, JSON summary, progress, and clear errors for bad options."""

import csv
import json
import subprocess
import sys

import pytest

from cljax.cli import main


def test_gaussian_writes_csv_png_markdown_and_json(tmp_path, capsys):
    out = tmp_path / "g"
    argv = ["gaussian", "--out", str(out), "--realisations", "200", "--num-eps", "21",
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
    r = summary["example2"]["2"]
    assert abs(r["E_S"] - 8.0) < 4 * r["E_S_se"] and abs(r["E_C"] - 6.0) < 4 * r["E_C_se"]
    assert r["theorem1"]["minus_E_C"]["mean"] < 0
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
def test_gaussian_rejects_bad_options(option, value, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cljax.cli", "gaussian", "--out",
                           str(tmp_path), option, value], capture_output=True, text=True)
    assert proc.returncode == 2
    assert option in proc.stderr
