"""Initialisation choices (flags, environment, cluster detection) and the HLO reader."""

import argparse

import pytest

import cljax.distributed as cd
from cljax.experiments._common import UsageError


def test_single_process_is_the_default_and_changes_nothing():
    assert cd.resolve(environ={}) is None
    assert cd.resolve(num_processes=1, environ={}) is None
    assert cd.initialize(num_processes=1) is False  # nothing started, no error


def test_flags_then_environment():
    spec = cd.resolve("h:1", 4, 2, environ={"CLJAX_NUM_PROCESSES": "8"})
    assert spec == cd.DistributedSpec("h:1", 4, 2)
    env = {"CLJAX_COORDINATOR": "node0:1234", "CLJAX_NUM_PROCESSES": "2",
           "CLJAX_PROCESS_ID": "1"}
    assert cd.resolve(environ=env) == cd.DistributedSpec("node0:1234", 2, 1)
    env = {"JAX_COORDINATOR_ADDRESS": "n:9", "CLJAX_NUM_PROCESSES": "3", "CLJAX_PROCESS_ID": "0"}
    assert cd.resolve(environ=env) == cd.DistributedSpec("n:9", 3, 0)


@pytest.mark.parametrize("env, auto", [
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}, True),
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}, False),
    ({"OMPI_COMM_WORLD_SIZE": "2"}, True),
    ({"TPU_WORKER_HOSTNAMES": "t0,t1"}, True),
    ({"TPU_WORKER_HOSTNAMES": "t0"}, False),
    ({"CLJAX_DISTRIBUTED": "auto"}, True),
])
def test_cluster_detection_hands_over_to_jax(env, auto):
    assert cd.cluster_detected(env) is auto
    assert cd.resolve(environ=env) == (cd.DistributedSpec(None, None, None, auto=True)
                                       if auto else None)


@pytest.mark.parametrize("args, message", [
    (("h:1", 2, None), "--process-id"),
    ((None, 2, 0), "--coordinator"),
    (("nohostport", 2, 0), "HOST:PORT"),
    (("h:1", 2, 2), "0..1"),
    (("h:1", 0, 0), ">= 1"),
])
def test_incomplete_descriptions_name_the_flag(args, message):
    with pytest.raises(ValueError, match=message):
        cd.resolve(*args, environ={})


def test_cli_flags_and_a_missing_coordinator_give_one_usage_error():
    parser = cd.add_distributed_arguments(argparse.ArgumentParser())
    args = parser.parse_args([])
    assert (args.coordinator, args.num_processes, args.process_id) == (None, None, None)
    assert cd.initialize_from_args(args) is False
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    args = parser.parse_args(["--coordinator", f"localhost:{port}", "--num-processes", "2",
                              "--process-id", "1", "--distributed-timeout", "1"])
    with pytest.raises(UsageError, match=f"no coordinator at localhost:{port} after 1 s"):
        cd.initialize_from_args(args)
    args = parser.parse_args(["--num-processes", "2"])
    with pytest.raises(UsageError, match="--coordinator, --process-id"):
        cd.initialize_from_args(args)


HLO = """HloModule m

%add (x: f32[], y: f32[]) -> f32[] {
  ROOT %s = f32[] add(%x, %y)
}

%body (p: (f32[100], s32[])) -> (f32[100], s32[]) {
  %a = f32[100]{0} all-reduce(%v), channel_id=1, to_apply=%add
  %g = f32[8,3]{1,0} all-gather(%w), channel_id=2, dimensions={0}
  ROOT %t = (f32[100], s32[]) tuple(%a, %i)
}

%cond (p: (f32[100], s32[])) -> pred[] {
  ROOT %c = pred[] compare(%i, %n), direction=LT
}

ENTRY %main (x: f32[100]) -> f32[100] {
  %r = (f32[5,5]{1,0}, f64[]) all-reduce(%u, %z), channel_id=3, to_apply=%add
  %w = (f32[100], s32[]) while(%init), condition=%cond, body=%body
  ROOT %o = f32[100]{0} get-tuple-element(%w), index=0
}
"""


def test_collectives_reader_counts_bytes_and_loop_depth():
    ops = cd.collectives(HLO)
    got = sorted((op.kind, op.shapes, op.bytes, op.loop_depth) for op in ops)
    assert got == [("all-gather", ("f32[8,3]",), 96, 1),
                   ("all-reduce", ("f32[100]",), 400, 1),
                   ("all-reduce", ("f32[5,5]", "f64[]"), 108, 0)]
    assert cd.bytes_per_run(ops, 3) == {"outside_loop": 108, "per_iteration": 496,
                                        "nested_loops": 0, "iterations": 3,
                                        "total": 108 + 3 * 496}
