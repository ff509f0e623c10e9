"""Start JAX's multi-controller runtime: flags, environment or cluster auto-detection.

One process stays the default: nothing is initialised and nothing changes unless
a process count above one is given (flags or environment) or a cluster launcher
is detected.  Sources, first match wins:

1. explicit arguments / CLI flags ``--coordinator HOST:PORT --num-processes P
   --process-id I``;
2. environment ``CLJAX_COORDINATOR`` (or JAX's own ``JAX_COORDINATOR_ADDRESS``),
   ``CLJAX_NUM_PROCESSES``, ``CLJAX_PROCESS_ID``;
3. a cluster launcher JAX detects by itself (SLURM with more than one task, Open
   MPI, a multi-host Cloud TPU slice), or ``CLJAX_DISTRIBUTED=auto`` to ask JAX
   to detect one: ``jax.distributed.initialize()`` is then called without
   arguments.

On CPU the collectives are JAX's gloo implementation
(``jax_cpu_collectives_implementation="gloo"``).  A peer that never arrives, or
one that dies, ends the job with a clear error after ``timeout_s`` seconds (the
initialisation timeout and the runtime's heartbeat timeout), never a hang.
"""

from __future__ import annotations

import argparse
import os
from typing import NamedTuple

import jax

DEFAULT_TIMEOUT_S = 60


class DistributedSpec(NamedTuple):
    """Where this process sits in the job (``coordinator`` None: detect / single)."""

    coordinator: str | None
    num_processes: int | None
    process_id: int | None
    auto: bool = False  # let jax.distributed.initialize() detect the cluster


def _env_int(name):
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def _int_or_none(text):
    return None if text in (None, "") else int(text)


def cluster_detected(environ=None) -> bool:
    """True where a multi-process launcher that JAX auto-detects is present.

    SLURM with more than one task, Open MPI with more than one rank, a Cloud TPU
    slice with more than one host, or ``CLJAX_DISTRIBUTED=auto``.  Reads the
    environment only (no network: the TPU metadata server is JAX's business).
    """
    env = os.environ if environ is None else environ
    if env.get("CLJAX_DISTRIBUTED", "").lower() == "auto":
        return True
    if "SLURM_JOB_ID" in env and _int_or_none(env.get("SLURM_NTASKS", "1")) not in (None, 1):
        return True
    if _int_or_none(env.get("OMPI_COMM_WORLD_SIZE", "1")) not in (None, 1):
        return True
    hosts = env.get("TPU_WORKER_HOSTNAMES") or env.get("TPU_PROCESS_ADDRESSES") or ""
    return "," in hosts


def resolve(coordinator=None, num_processes=None, process_id=None,
            environ=None) -> DistributedSpec | None:
    """The job description from arguments, then environment, then cluster detection.

    Returns None for a single process (the default).  Raises ValueError, naming
    the flag or variable, for an incomplete or inconsistent description.
    """
    env = os.environ if environ is None else environ
    coordinator = coordinator or env.get("CLJAX_COORDINATOR") or env.get("JAX_COORDINATOR_ADDRESS")
    if num_processes is None:
        num_processes = _env_int("CLJAX_NUM_PROCESSES") if environ is None else _int_or_none(
            env.get("CLJAX_NUM_PROCESSES"))
    if process_id is None:
        process_id = _env_int("CLJAX_PROCESS_ID") if environ is None else _int_or_none(
            env.get("CLJAX_PROCESS_ID"))
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1, got {num_processes}")
    if num_processes in (None, 1) and coordinator is None and process_id in (None, 0):
        if num_processes is None and cluster_detected(env):
            return DistributedSpec(None, None, None, auto=True)
        return None
    if num_processes == 1:
        return None
    missing = [flag for flag, value in (("--coordinator", coordinator),
                                        ("--num-processes", num_processes),
                                        ("--process-id", process_id)) if value is None]
    if missing:
        raise ValueError(f"a multi-process run needs {', '.join(missing)} (or the CLJAX_* "
                         "environment variables, or a cluster launcher JAX detects)")
    if ":" not in str(coordinator):
        raise ValueError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id must be in 0..{num_processes - 1}, got {process_id}")
    return DistributedSpec(str(coordinator), int(num_processes), int(process_id))


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, timeout_s: int = DEFAULT_TIMEOUT_S,
               local_device_ids=None) -> bool:
    """Join the multi-process job, or do nothing for a single process.

    Args:
      coordinator: ``HOST:PORT`` of process 0's coordinator service.
      num_processes: P, the number of processes in the job.
      process_id: this process's index I in 0..P−1.
      timeout_s: seconds to wait for every peer at start-up, and the heartbeat
        timeout after which a dead peer ends the job with an error.
      local_device_ids: devices this process drives (default: JAX's choice).

    Returns:
      True when a multi-process runtime was started, False for a single process.

    Raises:
      ValueError: an incomplete job description (names the flag).
      RuntimeError: the peers did not all arrive within ``timeout_s``.
    """
    spec = resolve(coordinator, num_processes, process_id)
    if spec is None:
        return False
    if jax.distributed.is_initialized():
        return True
    if not spec.auto and spec.process_id != 0:
        _wait_for_coordinator(spec, timeout_s)
    # gloo is the CPU collectives implementation; GPU/TPU ignore this option.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = dict(initialization_timeout=int(timeout_s), heartbeat_timeout_seconds=int(timeout_s),
                  shutdown_timeout_seconds=int(timeout_s), local_device_ids=local_device_ids)
    try:
        if spec.auto:
            jax.distributed.initialize(**kwargs)
        else:
            jax.distributed.initialize(spec.coordinator, spec.num_processes, spec.process_id,
                                       **kwargs)
    except Exception as err:  # the runtime raises XlaRuntimeError with a long status text
        where = ("the detected cluster" if spec.auto else
                 f"coordinator {spec.coordinator} as process {spec.process_id} of "
                 f"{spec.num_processes}")
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RuntimeError(f"could not start the multi-process job ({where}) within "
                           f"{timeout_s} s: {first}") from err
    return True


def _wait_for_coordinator(spec: DistributedSpec, timeout_s: float) -> None:
    """Raise a clear error when nothing listens at the coordinator address in time.

    (JAX's own client aborts the process with a long log instead.)  A TCP
    connection attempt, retried until ``timeout_s``; nothing is sent.
    """
    import socket
    import time

    host, port = spec.coordinator.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return
        except OSError as err:
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"could not start the multi-process job: no coordinator at "
                    f"{spec.coordinator} after {timeout_s} s (process {spec.process_id} of "
                    f"{spec.num_processes}; is process 0 running?): {err}") from None
            time.sleep(0.2)


def add_distributed_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--coordinator HOST:PORT --num-processes P --process-id I`` (and the
    timeout) to ``parser``; defaults come from the environment (:func:`resolve`)."""
    group = parser.add_argument_group("multi-process (JAX distributed runtime)")
    group.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                       help="process 0's coordinator address (env CLJAX_COORDINATOR)")
    group.add_argument("--num-processes", metavar="P", type=int, default=None,
                       help="processes in the job (env CLJAX_NUM_PROCESSES; default 1, "
                            "or detected under SLURM / Open MPI / TPU pods)")
    group.add_argument("--process-id", metavar="I", type=int, default=None,
                       help="this process's index, 0..P-1 (env CLJAX_PROCESS_ID)")
    group.add_argument("--distributed-timeout", metavar="SECONDS", type=int,
                       default=DEFAULT_TIMEOUT_S,
                       help="wait this long for peers; a dead peer ends the job after it")
    return parser


def initialize_from_args(args: argparse.Namespace) -> bool:
    """:func:`initialize` from the flags of :func:`add_distributed_arguments`.

    Raises :class:`cljax._src.errors.UsageError` (one line, rc 2 in the CLI)
    for an incomplete description or unreachable peers.
    """
    from cljax._src.errors import UsageError

    try:
        return initialize(getattr(args, "coordinator", None),
                          getattr(args, "num_processes", None),
                          getattr(args, "process_id", None),
                          timeout_s=getattr(args, "distributed_timeout", DEFAULT_TIMEOUT_S))
    except (ValueError, RuntimeError) as err:
        raise UsageError(str(err)) from None


def is_main_process() -> bool:
    """True on process 0, the one process that writes outputs."""
    return jax.process_index() == 0


def process_count() -> int:
    """The number of processes in the job (1 when not distributed)."""
    return jax.process_count()
