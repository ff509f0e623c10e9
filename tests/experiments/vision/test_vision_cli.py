"""``cljax vision``: a tiny study end to end (CSV, PNG, JSON, resume)."""

import csv
import json

import pytest

from cljax.cli import main

TINY = ["vision", "--k", "2", "--image-size", "8", "--width", "2", "--hidden", "8",
        "--epochs", "1", "--batch-size", "20"]


def test_study_writes_csv_png_and_resumes(tmp_path, capsys):
    out = tmp_path / "study"
    argv = TINY + ["--seeds", "0", "--parametric-grid", "none", "--functional-grid", "0.5,2.5",
                   "--out", str(out), "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "[1/4] separate_seed0" in captured.err  # progress on stderr, JSON alone on stdout
    rows = {(r["mode"], r["eps"]): r for r in result["summary"]["rows"]}
    assert set(rows) == {("separate", 0.0), ("consensus", 0.0), ("functional", 0.5),
                         ("functional", 2.5)}
    assert result["num_train"] == [20, 20, 20]
    # digits: η_D = 0.3 per 10-step epoch, not the paper's 10 (docs/vision.md)
    assert result["config"]["dual_step_size"] == 0.3
    with open(out / "runs.csv") as f:
        assert len(list(csv.DictReader(f))) == 4 * 3  # runs x domains
    with open(out / "history.csv") as f:
        assert len(list(csv.DictReader(f))) == 4 * 1 * 3  # runs x epochs x domains
    assert (out / "figure.png").stat().st_size > 10_000
    assert (out / "summary.csv").exists()
    # resume: every run is already done, so the same summary comes back without training
    assert main(argv + ["--resume"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["summary"]["rows"] == result["summary"]["rows"]


def test_single_mode_human_report(capsys):
    assert main(TINY + ["--mode", "separate", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "mode separate" in text and "consensus" not in text and "accuracy" in text


def test_office_home_needs_root():
    with pytest.raises(SystemExit, match="needs --root"):
        main(["vision", "--dataset", "office-home"])


def test_bad_grid_is_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["vision", "--parametric-grid", "1,-2"])
    assert "numbers >= 0" in capsys.readouterr().err
