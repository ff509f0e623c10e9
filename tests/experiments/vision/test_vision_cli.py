"""``cljax vision``: a tiny study end to end (CSV, PNG, JSON), resume (reuses the
stored runs without training; refuses a changed configuration), and every bad
input refused before any work with one line on stderr."""

import csv
import json
import os
import shutil

import pytest

from cljax.cli import main

TINY = ["vision", "--k", "2", "--image-size", "8", "--width", "2", "--hidden", "8",
        "--epochs", "1", "--batch-size", "20"]
STUDY = TINY + ["--seeds", "0", "--parametric-grid", "none", "--functional-grid", "0.5,2.5",
                "--json"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One tiny study (4 runs), written once for the tests of this module."""
    out = tmp_path_factory.mktemp("vision") / "study"
    capture = pytest.MonkeyPatch()
    import io
    import sys

    stdout, stderr = io.StringIO(), io.StringIO()
    capture.setattr(sys, "stdout", stdout)
    capture.setattr(sys, "stderr", stderr)
    try:
        code = main(STUDY + ["--out", str(out)])
    finally:
        capture.undo()
    assert code == 0
    return out, json.loads(stdout.getvalue()), stderr.getvalue()


def snapshot(folder):
    """{relative path: bytes} of every file under ``folder``."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_of(study, tmp_path):
    out = tmp_path / "study"
    shutil.copytree(study[0], out)
    return out


def refused(capsys, argv, *needles):
    """Run ``argv``; assert status 2 and one line on stderr holding every needle."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("cljax vision: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_study_writes_csv_png_json(study):
    out, result, err = study
    assert "[1/4] separate_seed0" in err  # progress on stderr, JSON alone on stdout
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
    study_file = json.loads((out / "study.json").read_text())
    assert study_file["data"]["k"] == 2 and study_file["base"]["width"] == 2


def test_resume_reads_the_stored_runs_and_trains_nothing(study, tmp_path, capsys, monkeypatch):
    out = copy_of(study, tmp_path)
    before = snapshot(out / "runs")

    def no_training(*args, **kwargs):
        raise AssertionError("resume trained a finished run")

    monkeypatch.setattr("cljax.experiments.vision.study.train", no_training)
    assert main(STUDY + ["--out", str(out), "--resume"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["summary"]["rows"] == study[1]["summary"]["rows"]
    assert snapshot(out / "runs") == before
    # the stored run is what comes back: perturb it, and the summary follows
    path = out / "runs" / "functional_eps0.5_seed0.json"
    record = json.loads(path.read_text())
    record["test_accuracy"] = [0.125, 0.25, 0.375]
    record["mean_accuracy"] = 0.25
    path.write_text(json.dumps(record))
    assert main(STUDY + ["--out", str(out), "--resume"]) == 0
    rows = {(r["mode"], r["eps"]): r for r in json.loads(capsys.readouterr().out)["summary"]["rows"]}
    assert rows[("functional", 0.5)]["mean_accuracy"] == 0.25
    assert rows[("functional", 0.5)]["per_domain_accuracy"] == [0.125, 0.25, 0.375]


@pytest.mark.parametrize("change,fields", [
    (["--epochs", "5", "--k", "3", "--width", "3"], ["k: 2 -> 3", "width: 2 -> 3"]),
    (["--lr", "0.01"], ["learning_rate: 0.003 -> 0.01"]),
    (["--image-size", "12"], ["image_size: 8 -> 12"]),
])
def test_resume_refuses_another_configuration(study, tmp_path, capsys, change, fields):
    out = copy_of(study, tmp_path)
    before = snapshot(out)
    err = refused(capsys, STUDY + change + ["--out", str(out), "--resume"],
                  "--resume", "another configuration", *fields)
    assert "epochs" not in err  # more epochs alone would be allowed
    assert snapshot(out) == before


def test_resume_refuses_a_run_made_with_another_configuration(study, tmp_path, capsys):
    out = copy_of(study, tmp_path)
    path = out / "runs" / "separate_seed0.json"
    record = json.loads(path.read_text())
    record["config"]["hidden"] = 16
    path.write_text(json.dumps(record))
    before = snapshot(out)
    refused(capsys, STUDY + ["--out", str(out), "--resume"],
            "separate_seed0.json", "hidden: 16 -> 8")
    assert snapshot(out) == before


def test_a_study_folder_is_not_overwritten_without_resume(study, tmp_path, capsys):
    out = copy_of(study, tmp_path)
    before = snapshot(out)
    refused(capsys, STUDY + ["--out", str(out)], f"--out {out} already holds a study",
            "--resume")
    assert snapshot(out) == before


def test_more_epochs_is_a_compatible_resume(study):
    from dataclasses import replace

    from cljax.experiments.vision.study import check_study_out, study_plan
    from cljax.experiments.vision.training import VisionConfig

    out, result, _ = study
    base = VisionConfig(**{k: v for k, v in result["config"].items()})
    plan = study_plan([0], [], [0.5, 2.5])
    data = json.loads((out / "study.json").read_text())["data"]
    names = {"separate_seed0", "consensus_seed0", "functional_eps0.5_seed0",
             "functional_eps2.5_seed0"}
    assert check_study_out(out, base, plan, data, resume=True) == names
    # more epochs: compatible, and no stored run is reused as it is (each continues)
    assert check_study_out(out, replace(base, epochs=3), plan, data, resume=True) == set()


@pytest.mark.parametrize("argv,needle", [
    (["--mode", "functional", "--eps", "-1"], "argument --eps: must be a number >= 0"),
    (["--mode", "functional", "--eps", "nan"], "argument --eps: must be a number >= 0"),
    (["--mode", "parametric", "--eps-grid", "1,-2"], "argument --eps-grid: expected numbers >= 0"),
    (["--seeds", ""], "argument --seeds: expected at least one seed"),
    (["--seeds", "0,0"], "argument --seeds: seeds must be distinct"),
    (["--seed", "99999999999999999999"], "argument --seed: a seed must be in [0, 2^32)"),
    (["--seed", "-1"], "argument --seed: a seed must be in [0, 2^32)"),
    (["--k", "0"], "argument --k: must be an integer >= 1"),
    (["--k", "100"], "--k 100: the shipped digits have 100 images per class"),
    (["--lr", "inf"], "argument --lr: must be a number > 0"),
    (["--image-size", "3"], "argument --image-size: must be an integer >= 4"),
    (["--image-size", "7"], "--image-size 7 is too small for --model small"),
    (["--model", "alexnet224", "--image-size", "32"], "too small for --model alexnet224"),
    (["--mode", "separate", "--eps", "0.5"], "--eps / --eps-grid do not apply to --mode separate"),
    (["--resume"], "--resume needs --out"),
    (["--dataset", "office-home"], "--dataset office-home needs --root"),
    (["--domains", "uci", "svhn"], "unknown digit domain(s) ['svhn']"),
    (["--domains", "tfds:mnist", "uci"], "cannot be mixed"),
    (["--download"], "--download applies to TFDS domains"),
])
def test_bad_option_is_one_line_before_any_work(capsys, monkeypatch, argv, needle):
    def no_work(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr("cljax.experiments.vision.study.train", no_work)
    try:
        code = main(["vision"] + argv)
    except SystemExit as exit_:  # argparse refuses in the parser
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("cljax vision: error: "), err
    assert needle in err and "Traceback" not in err


def test_bad_out_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("cljax.experiments.vision.study.train",
                        lambda *a, **k: pytest.fail("work started"))
    monkeypatch.setattr("cljax.experiments.vision.digits.load_digits",
                        lambda *a, **k: pytest.fail("data loaded"))
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    refused(capsys, TINY + ["--out", str(a_file)], f"--out {a_file}: exists and is not a "
                                                   "directory")
    refused(capsys, TINY + ["--out", str(a_file / "sub")], f"--out {a_file / 'sub'}: cannot "
                                                           "create the folder")
    assert a_file.read_text() == "keep me"
    runs_file = tmp_path / "out"
    runs_file.mkdir()
    (runs_file / "runs").write_text("keep me too")
    refused(capsys, TINY + ["--out", str(runs_file)], "runs exists there and is not a directory")
    assert (runs_file / "runs").read_text() == "keep me too"
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(locked)
                        else real_access(p, mode))
    refused(capsys, TINY + ["--out", str(locked)], f"--out {locked}: the folder is not writable")


def test_bad_office_home_roots_are_one_line(tmp_path, capsys):
    from PIL import Image

    empty = tmp_path / "empty"
    empty.mkdir()
    imageless = tmp_path / "imageless"
    (imageless / "Art" / "Mug").mkdir(parents=True)
    (imageless / "Art" / "Mug" / "notes.txt").write_text("no image here")
    broken = tmp_path / "broken"
    (broken / "Art" / "Mug").mkdir(parents=True)
    Image.new("RGB", (9, 9), (10, 20, 30)).save(broken / "Art" / "Mug" / "good.jpg")
    (broken / "Art" / "Mug" / "bad.jpg").write_bytes(b"not a jpeg")
    office = ["vision", "--dataset", "office-home", "--model", "small", "--image-size", "8",
              "--mode", "separate", "--root"]
    refused(capsys, office + [str(tmp_path / "nowhere")], f"{tmp_path / 'nowhere'} does not exist")
    refused(capsys, office + [str(empty)], f"image root folder {empty} has no domain folders")
    refused(capsys, office + [str(imageless)], f"class folder {imageless / 'Art' / 'Mug'} has "
                                               "no images")
    refused(capsys, office + [str(broken)], f"class folder {broken / 'Art' / 'Mug'} has 1 "
                                            "readable image(s)")


def test_single_mode_human_report(capsys):
    assert main(TINY + ["--mode", "separate", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    assert "[1/1] separate_seed1" in captured.err  # a single mode trains that mode only
    text = captured.out
    assert "mode separate" in text and "consensus" not in text and "accuracy" in text


def paper_office_home_command():
    """The Office-Home command of docs/vision.md ("the paper's run"), as argv."""
    import shlex
    from pathlib import Path

    text = (Path(__file__).parents[3] / "docs" / "vision.md").read_text()
    start = text.index("cljax vision --dataset office-home --root ~/OfficeHomeDataset_10072016")
    block = text[start:text.index("```", start)].replace("\\\n", " ")
    return shlex.split(block)[1:]


def test_the_documented_paper_office_home_command_parses_and_starts(tmp_path, capsys):
    from PIL import Image

    from cljax.cli import build_parser
    from cljax.experiments.vision.cli import _check_options

    argv = paper_office_home_command()
    args = build_parser().parse_args(argv)
    # the paper's regime (DESIGN §4): 224x224 AlexNet, SGD η_P = 0.003, η_D = 10
    assert (args.model, args.image_size, args.optimizer, args.lr, args.dual_step) == \
        ("alexnet224", 224, "sgd", 0.003, 10.0)
    assert (args.epochs, args.batch_size, args.seeds) == (100, 32, [0, 1, 2])
    assert _check_options(args) == ("office-home", 224, "alexnet224")
    root = tmp_path / "OfficeHome"
    for d in ("Art", "Clipart", "Product"):
        for c, colour in (("Bike", 40), ("Mug", 120), ("Pen", 200)):
            (root / d / c).mkdir(parents=True)
            for i in range(5):
                Image.new("RGB", (12, 9), (colour, 10 * i, 30)).save(root / d / c / f"{i}.jpg")
    argv = [str(root) if a == "~/OfficeHomeDataset_10072016" else
            str(tmp_path / "out") if a == "results/office_home" else a for a in argv]
    # the same command, turned down to one tiny epoch of one mode
    small = ["--model", "small", "--image-size", "8", "--width", "2", "--hidden", "8",
             "--epochs", "1", "--mode", "separate", "--seed", "0", "--json"]
    assert main(argv + small) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "office-home" and out["domains"] == ["Art", "Clipart", "Product"]
    assert out["config"]["dual_step_size"] == 10.0 and out["config"]["optimizer"] == "sgd"
    assert out["num_train"] == [12, 12, 12] and out["num_test"] == [3, 3, 3]
    assert (tmp_path / "out" / "runs" / "separate_seed0.json").exists()
