"""``cljax covid``: the paper's N = 10 targets, the figure files, progress and bad input."""

import csv
import gzip
import json
import subprocess
import sys

import jax
import pytest

from cljax.cli import main


def _reject(constant):
    raise ValueError(f"not strict JSON: {constant}")


@pytest.fixture
def no_fit(monkeypatch):
    """Any fit raises: a refusal must come before the work starts."""
    from cljax.experiments.covid import experiment as ce

    def fail(*args, **kwargs):
        raise AssertionError("the fit started")

    monkeypatch.setattr(ce, "run_estimators", fail)


def _one_line_error(options, capsys=None):
    """Run ``cljax covid OPTIONS`` in-process; assert rc 2 and one line on stderr; return the
    message after the 'cljax covid: error: ' prefix."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
        rc = main(["covid"] + options)
    lines = err.getvalue().strip().splitlines()
    assert rc == 2 and len(lines) == 1 and out.getvalue() == "", (rc, lines)
    assert lines[0].startswith("cljax covid: error: ") and "Traceback" not in lines[0]
    return lines[0][len("cljax covid: error: "):]


def test_default_run_meets_the_n10_targets_and_writes_figures(capsys, tmp_path):
    out_dir = tmp_path / "figs"
    # the default pipeline is float32: run it without the session-wide x64 of conftest
    with jax.enable_x64(False):
        assert main(["covid", "--json", "--out", str(out_dir), "--eps-sweep", "3",
                     "--n-sweep", "--n-min", "9", "--n-max", "10"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out, parse_constant=_reject)  # one strict JSON object on stdout
    est = out["estimators"]
    assert out["dtype"] == "float32"
    # no --target: the shipped windows table's role = target row
    assert out["target"] == "ARG" and out["n_train"] == 10 and out["eps"] == 0.1
    assert out["truth"] == {"peak": 1_558_670.0, "peak_day": 21, "days": 30}
    # the targets at N = 10 (float32, the default pipeline)
    assert est["cross_learning"]["peak_error_percent"] <= 2.0
    assert est["cross_learning"]["lag_days"] <= 1
    # the paper's (count-weighted) consensus, the headline: 76% in the paper, 73% in its CSVs
    assert 60.0 <= est["consensus"]["peak_error_percent"] <= 90.0
    assert est["consensus"]["lag_days"] <= 20
    # the eps = 0 limit of the normalised objective: a different minimiser, γ on its bound
    assert est["consensus_normalised"]["peak_error_percent"] >= 500.0
    assert out["consensus_params"] == [est["consensus"]["beta"], est["consensus"]["gamma"]]
    assert list(est) == ["separate", "consensus", "consensus_normalised", "cross_learning"]
    assert set(out["estimator_notes"]) == set(est)
    assert out["protocol"] == "cljax" and out["train_days"] == 10
    assert est["separate"]["peak_error_percent"] >= 500.0
    assert est["separate"]["gamma"] == 0.0
    assert out["eps_sweep"]["eps"] == [0.0, 0.5, 1.0]
    # Fig 7 and Fig 8 carry both consensus baselines, equal to the single run's
    base = out["eps_sweep"]["baselines"]
    for name in ("separate", "consensus", "consensus_normalised"):
        assert base[name]["beta"] == pytest.approx(est[name]["beta"], rel=1e-3), name
    assert out["n_sweep"]["n"] == [9, 10]
    assert list(out["n_sweep"]["estimators"]) == list(est)
    assert out["n_sweep"]["estimators"]["consensus"]["beta"][1] == pytest.approx(
        est["consensus"]["beta"], rel=2e-3)
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
    assert float(rows[0]["consensus_peak_error_percent"]) == pytest.approx(
        base["consensus"]["peak_error_percent"])
    assert "consensus_normalised_lag_days" in rows[0]
    with open(out_dir / "fig8_n_sweep.csv") as f:
        assert "consensus_normalised_peak_error_percent" in next(csv.reader(f))
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
    assert _one_line_error(["--windows", str(path), "--n-train", "99"]) == (
        "n_train = 99 must be between 2 and the target COL's window length, 35 days")
    assert "n_train = 99 must be between 2 and the target ARG's" in _one_line_error(
        ["--windows", str(path), "--n-train", "99", "--target", "ARG"])
    path.write_text("iso_code,start_date,window_days\nARG,2021-12-31,100\n")
    assert _one_line_error(["--windows", str(path)]).startswith(
        "the windows table has no row with role = target")


@pytest.mark.parametrize("option,message", [
    (["--target", "ARH"], "target 'ARH' is not one of"),
    (["--n-train", "40"], "n_train = 40 must be between 2"),
    (["--cases", "/nonexistent/owid.csv"], "does not exist"),
])
def test_bad_input_exits_with_a_clear_message(option, message):
    proc = subprocess.run([sys.executable, "-m", "cljax.cli", "covid"] + option,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.startswith("cljax covid: error: ")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def shipped_lines():
    """The shipped case table as CSV lines, and the column index of new_cases."""
    from cljax.experiments.covid.cases import shipped_file

    lines = gzip.decompress(shipped_file("covid_cases_jhu.csv.gz").read_bytes()).decode()
    lines = lines.splitlines(keepends=True)
    return lines, lines[0].strip().split(",").index("new_cases")


def _edited(tmp_path, shipped_lines, edit, name="cases.csv"):
    """A copy of the shipped table with ``edit(iso, date, fields)`` applied to each row;
    returns (path, its bytes)."""
    lines, col = shipped_lines
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.rstrip("\n").split(",")
        edit(fields[0], fields[2], fields, col)
        out.append(",".join(fields) + "\n")
    path = tmp_path / name
    path.write_text("".join(out))
    return path, path.read_bytes()


def _line_of(shipped_lines, iso, date):
    lines, _ = shipped_lines
    return next(k for k, line in enumerate(lines, start=1) if line.startswith(f"{iso},")
                and f",{date}," in line)


@pytest.mark.parametrize("value,message", [
    ("inf", "new_cases = inf is not finite"),
    ("1e300", "new_cases = 1e+300 exceeds the population"),
    ("-5", "new_cases = -5 is negative"),
])
def test_bad_new_cases_in_a_window_are_refused_naming_file_line_and_column(
        tmp_path, shipped_lines, no_fit, value, message):
    def edit(iso, date, fields, col):
        if iso == "ARG" and date == "2022-01-05":
            fields[col] = value

    path, before = _edited(tmp_path, shipped_lines, edit)
    line = _line_of(shipped_lines, "ARG", "2022-01-05")
    error = _one_line_error(["--cases", str(path), "--out", str(tmp_path / "figs")])
    assert error.startswith(f"'{path}' line {line}, column new_cases: {message}")
    assert path.read_bytes() == before and not (tmp_path / "figs").exists()
    if value == "-5":  # allowed on request: the loader passes, the next check (N) refuses
        assert "--allow-negative-cases" in error
        assert "n_train = 99 must be between 2" in _one_line_error(
            ["--cases", str(path), "--allow-negative-cases", "--n-train", "99"])


def test_a_country_with_no_cases_is_refused_in_one_line(tmp_path, shipped_lines, no_fit):
    def edit(iso, date, fields, col):
        if iso == "PRY":
            fields[col] = "0"

    path, before = _edited(tmp_path, shipped_lines, edit)
    error = _one_line_error(["--cases", str(path)])
    assert error.startswith("PRY: the infected series is zero on its 100-day window from "
                            "2022-01-16")
    assert path.read_bytes() == before


def test_unusable_out_folders_are_refused_before_the_fit(tmp_path, no_fit):
    existing = tmp_path / "results.txt"
    existing.write_text("keep me")
    assert _one_line_error(["--out", str(existing)]) == (
        f"--out {existing}: exists and is not a directory")
    assert _one_line_error(["--out", str(existing / "sub")]).startswith(
        f"--out {existing / 'sub'}: cannot create the folder")
    assert existing.read_text() == "keep me"
    assert _one_line_error(["--out", "/sys/cljax-covid-out"]).startswith(
        "--out /sys/cljax-covid-out: cannot create the folder")
    folder = tmp_path / "figs"
    (folder / "fig5_prediction.png").mkdir(parents=True)
    assert _one_line_error(["--out", str(folder)]) == (
        f"--out {folder}: fig5_prediction.png exists there and is a directory")


def test_small_parameters_print_in_e_notation(capsys):
    from cljax.experiments.covid.cli import print_covid

    est = {"beta": 0.13295, "gamma": 1.16e-4, "peak_error_percent": 10791.18, "lag_days": 93}
    print_covid({"target": "COL", "n_train": 10, "eps": 0.1, "seconds": 1.0,
                 "truth": {"peak": 1.0, "peak_day": 26},
                 "estimators": {"separate": est, "consensus": dict(est, gamma=0.0)}})
    out = capsys.readouterr().out
    assert "0.1330 1.16e-04    10791.18%   93 d" in out and "0.1330   0.0000" in out


def test_an_infinite_eps_is_echoed_as_strict_json(monkeypatch, capsys):
    """--eps inf (every country alone) is valid input; the JSON echoes it as null + "inf"."""
    from cljax.experiments.covid import experiment as ce

    def fake(problem, eps, fit):  # the fit itself is tested elsewhere
        return {"eps": float(eps), "estimators": {}}

    monkeypatch.setattr(ce, "run_estimators", fake)
    assert main(["covid", "--eps", "inf", "--json"]) == 0
    out = json.loads(capsys.readouterr().out, parse_constant=_reject)
    assert out["eps"] is None and out["eps_text"] == "inf"
