"""Issue 15, CLI layer: every bad input gets one clear line before any work, and every
``--json`` output is strict JSON.

Each refusal: status 2, exactly one line on stderr that starts ``cljax <command>: error:`` and
names the option or file, no traceback, and nothing on disk lost.  Most cases call
:func:`cljax.cli.main` in-process (an uncaught exception would fail the test, so "no
traceback" holds by construction); two run the console script to check the real process.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

from cljax import cli
from cljax.experiments import _common
from cljax.experiments._common import dumps_strict, strict_json


def run_cli(argv, capsys):
    """(status, stdout, stderr) of ``cljax argv`` in this process."""
    try:
        rc = cli.main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_refused(argv, capsys, *names):
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2, (argv, rc, err)
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"cljax {argv[0]}: error: "), err
    assert "Traceback" not in err
    for name in names:
        assert name in err, (name, err)
    return err


def _no_work(monkeypatch):
    """Make any Monte Carlo work fail loudly, so a refusal is known to come before it."""
    from cljax.experiments.gaussian import demo, studies

    def boom(*args, **kwargs):
        raise AssertionError("work started before the input was refused")

    monkeypatch.setattr(studies, "monte_carlo", boom)
    monkeypatch.setattr(demo, "example2_study", boom)


# --- strict JSON --------------------------------------------------------------------------

def _strict_loads(text):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def test_strict_json_replaces_every_non_finite_number_and_says_where():
    obj = {"a": float("nan"), "b": [1.0, float("inf"), {"c/d": -np.inf}],
           "e": np.array([0.5, np.nan], np.float32), "f": np.float64(2.5), "g": np.int64(3),
           "h": True, "i": None, "j": "nan", "k": (np.float32(-np.inf),)}
    clean, where = strict_json(obj)
    assert where == {"/a": "nan", "/b/1": "inf", "/b/2/c~1d": "-inf", "/e/1": "nan",
                     "/k/0": "-inf"}
    assert clean == {"a": None, "b": [1.0, None, {"c/d": None}], "e": [0.5, None], "f": 2.5,
                     "g": 3, "h": True, "i": None, "j": "nan", "k": [None]}
    text = dumps_strict(obj)
    assert _strict_loads(text)["non_finite"] == where
    # the plain encoder writes NaN / Infinity, which strict parsers refuse
    with pytest.raises(ValueError, match="not JSON: NaN"):
        _strict_loads(json.dumps({"x": float("nan")}))
    assert _strict_loads(dumps_strict({"x": 1.0}))["non_finite"] == {}


def test_main_json_is_strict_for_any_subcommand(capsys, monkeypatch):
    """A fake subcommand returning NaN / inf: main prints strict JSON and lists them."""
    fake = types.ModuleType("cljax_fake_subcommand")

    def add_parser(sub):
        p = sub.add_parser("fake")
        p.add_argument("--json", action="store_true")
        p.set_defaults(run=lambda args: {"se": float("nan"), "curve": [1.0, float("inf")],
                                         "nested": {"low": -math.inf}},
                       report=lambda out: print(out))

    fake.add_parser = add_parser
    monkeypatch.setitem(sys.modules, "cljax_fake_subcommand", fake)
    monkeypatch.setitem(cli.SUBCOMMAND_MODULES, "fake", "cljax_fake_subcommand")
    rc, out, err = run_cli(["fake", "--json"], capsys)
    assert rc == 0 and err == ""
    got = _strict_loads(out)
    assert got == {"se": None, "curve": [1.0, None], "nested": {"low": None},
                   "non_finite": {"/se": "nan", "/curve/1": "inf", "/nested/low": "-inf"}}


def test_gaussian_json_with_one_realisation_is_strict(tmp_path, capsys):
    """A real NaN: with one realisation the standard errors are undefined (NaN).  stdout and
    summary.json are strict JSON, the s.e. is null and named under non_finite."""
    out_dir = tmp_path / "g"
    argv = ["gaussian", "--out", str(out_dir), "--realisations", "1", "--num-eps", "3",
            "--sigmas", "1", "--designs", "--two-task-draws", "10", "--two-task-eps0", "1",
            "--no-plots", "--quiet", "--json"]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 0, err
    got = _strict_loads(out)
    r = got["example2"]["1"]
    assert r["E_S_se"] is None and r["E_C_se"] is None and math.isfinite(r["E_S"])
    assert got["non_finite"]["/example2/1/E_S_se"] == "nan"
    assert got["non_finite"]["/example2/1/theorem1/minus_E_C/se"] == "nan"
    on_disk = _strict_loads((out_dir / "summary.json").read_text())
    assert on_disk["non_finite"] == got["non_finite"]
    assert on_disk["example2"] == got["example2"]


# --- demo ---------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, names", [
    (["demo", "--seed", "99999999999999999999"], ["--seed", "2**32"]),
    (["demo", "--seed", "-1"], ["--seed"]),
    (["demo", "--seed", "1.5"], ["--seed"]),
    (["demo", "--realisations", "1"], ["--realisations", ">= 2"]),
    (["demo", "--mu", "1e39"], ["--mu", "too large"]),
    (["demo", "--mu", "1e14"], ["--mu", "rounding"]),  # float64: the noise is lost at 4.5e13
    (["demo", "--mu", "nan"], ["--mu"]),
    (["demo", "--eps-max", "inf"], ["--eps-max"]),
    (["demo", "--realisations", "10000000000000"], ["--realisations x --num-eps", "needs about"]),
    (["demo", "--num-eps", "100000000000000"], ["--realisations x --num-eps", "needs about"]),
])
def test_demo_refuses_bad_input(argv, names, capsys, monkeypatch):
    _no_work(monkeypatch)
    assert_refused(argv, capsys, *names)


def test_demo_float32_refuses_what_float32_cannot_hold(capsys, monkeypatch):
    """Without x64 (the console script's default), --eps-max 1e300 was cast to inf: the grid
    printed as 'nan inf inf' and best eps = nan.  Now refused, naming float32's range."""
    _no_work(monkeypatch)
    with jax.enable_x64(False):
        err = assert_refused(["demo", "--eps-max", "1e300"], capsys, "--eps-max", "float32")
        assert "3.4e+38" in err
        assert_refused(["demo", "--mu", "1e5"], capsys, "--mu", "float32", "8.39e+04")
        # float32 gave E_S = 1.1 for 2σ² = 2 here, silently
        assert_refused(["demo", "--mu", "1e10"], capsys, "--mu", "float32", "rounding")
    # float64 holds 1e300 (next test computes it)
    assert_refused(["demo", "--eps-max", "1e309"], capsys, "--eps-max")


def test_demo_computes_huge_eps_max_safely_in_float64(capsys):
    """Where the dtype holds --eps-max, the study is computed, finite, and right: a grid point
    beyond every task's distance is the separate estimator."""
    rc, out, err = run_cli(["demo", "--realisations", "200", "--num-eps", "5",
                            "--eps-max", "1e300", "--json"], capsys)
    assert rc == 0, err
    got = _strict_loads(out)
    assert got["non_finite"] == {}
    np.testing.assert_allclose(got["eps_grid"], np.linspace(0, 1e300, 5))
    for r in got["sigmas"].values():
        assert r["E_CL"][0] == pytest.approx(r["E_C"], rel=1e-9)
        assert r["E_CL"][1:] == pytest.approx([r["E_S"]] * 4, rel=1e-9)
        assert r["best_eps"] in (0.0, 2.5e299)


def test_memory_refusal_names_the_estimate_and_the_limit(capsys, monkeypatch):
    _no_work(monkeypatch)
    monkeypatch.setattr(_common, "available_memory", lambda: 2**30)  # 1 GiB free
    # 10⁶ draws × (3 × 101 ε + 4 × T d) × 8 bytes = 2.5 GiB > 0.5 GiB
    err = assert_refused(["demo", "--realisations", "1000000"], capsys,
                         "--realisations x --num-eps", "needs about 2.5 GiB", "1 GiB available")
    assert "50%" in err


def test_available_memory_reads_the_machine():
    free = _common.available_memory()
    with open("/proc/meminfo") as f:
        total = int(next(line for line in f if line.startswith("MemTotal:")).split()[1]) * 1024
    assert 0 < free <= total


def test_default_subcommand_takes_options(capsys, monkeypatch):
    """``cljax --mu -1`` is ``cljax demo --mu -1``."""
    _no_work(monkeypatch)
    rc, _, err = run_cli(["--mu", "-1"], capsys)
    assert rc == 2 and err.startswith("cljax demo: error: argument --mu") and err.count("\n") == 1


# --- gaussian -----------------------------------------------------------------------------

@pytest.mark.parametrize("argv, names", [
    (["--folds", "5", "--tasks", "3", "--samples", "2"], ["--folds 5", "--samples 2"]),
    (["--folds", "3", "--tasks", "3", "--samples", "1"], ["--folds 3", "--samples 1"]),
    (["--seed", "99999999999999999999"], ["--seed", "2**32"]),
    (["--mu", "1e39"], ["--mu"]),
    (["--sigmas", "1", "1e-200"], ["--sigmas", "too small"]),
    (["--eps-max", "1e309"], ["--eps-max"]),
    (["--two-task-eps0", "1e30"], ["--two-task-eps0"]),
    (["--realisations", "100000000000"], ["--realisations x --num-eps", "needs about"]),
    (["--tasks", "3", "--samples", "10000000000"], ["--samples", "needs about"]),
    (["--table-realisations", "100000000000"], ["--table-realisations", "needs about"]),
    (["--two-task-draws", "100000000000000"], ["--two-task-draws", "needs about"]),
])
def test_gaussian_refuses_bad_input_before_any_work(argv, names, tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch)
    out = tmp_path / "never"
    assert_refused(["gaussian", "--out", str(out)] + argv, capsys, *names)
    assert not out.exists()  # refused before the output folder was made


@pytest.mark.parametrize("case", ["file", "file/sub", "summary_is_dir", "csv_is_dir",
                                  "unwritable"])
def test_gaussian_refuses_a_bad_out_before_any_work(case, tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch)
    f = tmp_path / "file"
    f.write_text("keep me")
    d = tmp_path / "d"
    (d / "summary.json").mkdir(parents=True)
    (d / "summary.json" / "inside").write_text("keep me too")
    e = tmp_path / "e"
    (e / "fig3.csv").mkdir(parents=True)
    out, name = {"file": (f, "not a directory"), "file/sub": (f / "sub", "cannot create"),
                 "summary_is_dir": (d, "summary.json"), "csv_is_dir": (e, "fig3.csv"),
                 # sysfs: no folder can be made there, not even by root
                 "unwritable": ("/sys/cljax_out", "cannot create")}[case]
    assert_refused(["gaussian", "--out", str(out)], capsys, f"--out {out}", name)
    assert f.read_text() == "keep me"
    assert (d / "summary.json" / "inside").read_text() == "keep me too"


def test_gaussian_cv_folds_per_design():
    """--folds (default 5) is capped at a design's largest N_t and is 0 where some N_t < 2;
    what is used is recorded in the table as cv_folds."""
    from types import SimpleNamespace

    from cljax.experiments.gaussian.cli import _cv_folds
    from cljax.experiments.gaussian.studies import random_design

    def folds(option, samples):
        return _cv_folds(SimpleNamespace(folds=option), random_design("x", 3, 1, samples, 1.0))

    assert folds(None, 4) == 4 and folds(None, 8) == 5 and folds(3, 8) == 3
    assert folds(0, 8) == 0 and folds(5, 1) == 0 and folds(None, np.array([1, 5, 5])) == 0
    assert folds(5, np.array([2, 3, 9])) == 5


# --- the real console script --------------------------------------------------------------

@pytest.mark.parametrize("argv, line", [
    (["demo", "--eps-max", "1e300"],
     "cljax demo: error: --eps-max 1e+300: larger than float32 can hold (3.4e+38)"),
    (["demo", "--seed", "99999999999999999999"],
     "cljax demo: error: argument --seed: must be an integer in [0, 2**32), got "
     "99999999999999999999 (see cljax demo -h)"),
])
def test_console_script_prints_one_line_and_status_2(argv, line):
    proc = subprocess.run([sys.executable, "-m", "cljax.cli"] + argv, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == line + "\n"
    assert proc.stdout == ""
