"""Two local CPU processes over localhost give the single-process answers.

One launch of two processes (``_worker.py``, one CPU device each, gloo
collectives) runs every check: the three solvers, the projection's collectives
in the parameters layout, the Gaussian study, the COVID ε sweep and the vision
trainer (with an orbax checkpoint and a resume), then kills process 1 and
records how process 0's next collective fails.  The single-process references
are shared out between the two processes (each compiles half of them); each
process writes its part of the record, and each test below reads one part.

Tolerance: the distributed programs are the single-process programs with the
reductions over tasks or parameters split across processes, so they differ only
in the order of floating-point additions: 1e-12 relative in float64 (the
solvers, Gaussian, COVID) and 1e-5 relative in float32 (the vision networks).
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TOL64, TOL32 = 1e-12, 1e-5


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    out = tmp / "record.json"
    port = str(free_port())
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, str(HERE / "_worker.py"), str(i), port, str(out),
                               str(tmp / "ckpt")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=900))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, logs):
        assert p.returncode == 0, err[-3000:]
    rec = json.loads(Path(f"{out}.0").read_text())
    other = json.loads(Path(f"{out}.1").read_text())
    rec["process1_written"] = other.pop("written")
    for key, value in other.items():
        if isinstance(value, dict):
            rec.setdefault(key, {}).update(value)
        else:
            rec.setdefault(key, value)
    rec["main_written"] = (tmp / "record.json.main").exists()
    print("two-process check, cumulative CPU seconds of process 0:", rec["cpu_seconds"])
    return rec


def test_two_processes_one_device_each(record):
    assert record["process_count"] == 2 and record["devices"] == 2


@pytest.mark.parametrize("run", ["ADMM/tasks", "ADMM/parameters", "ProjectedGradient/parameters",
                                 "PrimalDual/tasks"])
def test_solvers_match_one_process(record, run):
    r = record["solvers"][run]
    layout = run.split("/")[1]
    # the iterate really is split: half the tasks, or half of each parameter vector
    assert r["placement"] == ([2, [2, 6], [4, 6]] if layout == "tasks" else [2, [4, 3], [4, 6]])
    for name in ("task_params", "global_params", "loss"):
        assert r[name] <= TOL64 * max(1.0, r["scale"]) * 10, (run, name, r)


def test_projection_with_parameters_split_matches_one_process(record):
    assert record["project"]["placement"] == [2, [4, 500], [4, 1000]]
    assert record["project"]["values"] <= TOL64 * 10


def test_parameter_layout_projection_exchanges_only_the_gram_matrix(record):
    ops = record["parameters_collectives"]
    assert ops, "the split projection must communicate"
    assert all(depth == 0 for *_, depth in ops)  # nothing inside the Newton loop
    shapes = [s for _, shapes, _, _ in ops for s in shapes]
    assert "f64[5,5]" in shapes  # the (T+1)×(T+1) Gram matrix, one all-reduce
    assert sum(b for _, _, b, _ in ops) < 1000 * 8  # independent of S = 1000


def test_gaussian_study_matches_one_process(record):
    assert record["gaussian_shape"] == [6, 4]
    for name, d in record["gaussian"].items():
        assert d <= TOL64, (name, d)


def test_covid_sweep_matches_one_process(record):
    assert record["covid_eps"] == [0.0, 0.05, 0.2]
    for name, d in record["covid"].items():
        assert d <= (TOL64 * 100 if name == "peak_error_percent" else TOL64), (name, d)


def test_vision_trainer_with_checkpoint_resume_matches_one_process(record):
    run = record["vision_run"]
    assert run["first_epochs"] == 1 and not run["first_finished"] and run["resumed_from"] == 1
    assert run["placement"] == [2, [1, 2], [2, 2]]  # one task network per process
    for name, d in record["vision"].items():
        assert d <= TOL32, (name, d)


def test_task_arrays_from_each_process_own_tasks(record):
    assert record["from_process_local"] == [[0.0] * 3, [1.0] * 3]


def test_only_process_zero_writes(record):
    assert record["written"] is True and record["process1_written"] is False
    assert record["main_written"]


def test_killed_peer_fails_fast_with_a_clear_error(record):
    lost = record["lost_peer"]
    assert lost["error"] is not None
    assert "Connection closed by peer" in lost["error"] or "heartbeat" in lost["error"]
    assert lost["seconds"] < 30


def test_missing_peers_end_the_coordinator_within_the_timeout():
    """Process 0 of 2 alone: JAX ends it after ``timeout_s`` with DEADLINE_EXCEEDED."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import cljax.distributed as cd; "
            f"cd.initialize('localhost:{free_port()}', 2, 0, timeout_s=3)")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode != 0
    assert "DEADLINE_EXCEEDED" in proc.stderr or "could not start" in proc.stderr
    assert time.monotonic() - start < 90
