"""``cljax covid``: the paper's N = 10 targets, the figure files, progress and bad input."""

import csv
import gzip
import json
import subprocess
import sys

import jax
import pytest

from cljax.cli import main


def test_default_run_meets_the_n10_targets_and_writes_figures(capsys, tmp_path):
    out_dir = tmp_path / "figs"
    # the default pipeline is float32: run it without the session-wide x64 of conftest
    with jax.enable_x64(False):
        assert main(["covid", "--json", "--out", str(out_dir), "--eps-sweep", "3",
                     "--n-sweep", "--n-min", "9", "--n-max", "10"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # one JSON object on stdout
    est = out["estimators"]
    assert out["dtype"] == "float32"
    # no --target: the shipped windows table's role = target row
    assert out["target"] == "ARG" and out["n_train"] == 10 and out["eps"] == 0.1
    assert out["truth"] == {"peak": 1_558_670.0, "peak_day": 21, "days": 30}
    # the targets at N = 10 (float32, the default pipeline)
    assert est["cross_learning"]["peak_error_percent"] <= 2.0
    assert est["cross_learning"]["lag_days"] <= 1
    assert est["consensus"]["peak_error_percent"] >= 50.0
    assert est["separate"]["peak_error_percent"] >= 500.0
    assert est["separate"]["gamma"] == 0.0
    assert out["eps_sweep"]["eps"] == [0.0, 0.5, 1.0]
    assert out["n_sweep"]["n"] == [9, 10]
    # the N sweep at N = 10 repeats the single run: same data and masks, but a
    # different (vmapped) float32 program over 200 ADMM iterations, so rounding
    # differs (1.6e-4 relative measured); a masking error moves β by far more
    assert out["n_sweep"]["estimators"]["cross_learning"]["beta"][1] == pytest.approx(
        est["cross_learning"]["beta"], rel=2e-3)
    assert "eps sweep: ADMM iteration 200/200" in captured.err  # progress on stderr
    for stem in ("fig4_data", "fig5_prediction", "fig6_parameters", "fig7_eps_sweep",
                 "fig8_n_sweep"):
        assert (out_dir / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        with open(out_dir / f"{stem}.csv") as f:
            rows = list(csv.reader(f))
        assert len(rows) > 2
    with open(out_dir / "fig7_eps_sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["eps"]) for r in rows] == [0.0, 0.5, 1.0]
    assert b"COVID-19 windows (JHU CSSE)" in (out_dir / "fig4_data.png").read_bytes()


def test_fig4_names_a_users_case_file(tmp_path):
    from cljax.experiments.covid import experiment as ce
    from cljax.experiments.covid import figures as cf
    from cljax.experiments.covid.cases import shipped_file

    user = tmp_path / "my_owid.csv"
    user.write_bytes(gzip.decompress(shipped_file("covid_cases_jhu.csv.gz").read_bytes()))
    problem = ce.default_problem(cases=user)
    assert problem.source == "my_owid.csv"
    png, _ = cf.fig4_data(problem, tmp_path / "figs")
    data = open(png, "rb").read()
    assert b"COVID-19 windows (my_owid.csv)" in data and b"JHU" not in data


def test_the_target_defaults_to_the_windows_files_role(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("iso_code,start_date,window_days,role\nARG,2021-12-31,100,source\n"
                    "COL,2021-12-26,100,target\n")
    # COL, not ARG, is the target: its window length is in the message
    with pytest.raises(SystemExit, match="n_train = 99 must be between 2 and the target "
                                         "COL's window length"):
        main(["covid", "--windows", str(path), "--n-train", "99"])
    with pytest.raises(SystemExit, match="n_train = 99 .* target ARG's"):
        main(["covid", "--windows", str(path), "--n-train", "99", "--target", "ARG"])
    path.write_text("iso_code,start_date,window_days\nARG,2021-12-31,100\n")
    with pytest.raises(SystemExit, match="cljax covid: the windows table has no row with "
                                         "role = target.*--target ISO"):
        main(["covid", "--windows", str(path)])


@pytest.mark.parametrize("option,message", [
    (["--target", "ARH"], "target 'ARH' is not one of"),
    (["--n-train", "40"], "n_train = 40 must be between 2"),
    (["--cases", "/nonexistent/owid.csv"], "does not exist"),
])
def test_bad_input_exits_with_a_clear_message(option, message):
    proc = subprocess.run([sys.executable, "-m", "cljax.cli", "covid"] + option,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
