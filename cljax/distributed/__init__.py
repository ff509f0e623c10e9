"""Cross-learning across processes and hosts on JAX's multi-controller runtime.

* :func:`initialize` (or :func:`add_distributed_arguments` +
  :func:`initialize_from_args` in a CLI) joins the job; one process is the
  default and then nothing happens.
* :func:`global_mesh` spans every process's devices; :func:`place` puts a
  problem on it in the ``"tasks"`` layout (tasks split across processes, data
  local) or the ``"parameters"`` layout (each parameter vector split).
* :func:`project` and :func:`run` are the projection and any solver on that
  mesh; :func:`to_host` gathers a result on every process.
* :func:`collectives` reads the collectives (and their bytes) of a compiled
  program, to measure what a layout communicates.

See docs/distributed.md for SLURM, multi-GPU and TPU-pod commands.
"""

from cljax.distributed._hlo import Collective as Collective
from cljax.distributed._hlo import bytes_per_run as bytes_per_run
from cljax.distributed._hlo import collectives as collectives
from cljax.distributed._layout import LAYOUTS as LAYOUTS
from cljax.distributed._layout import from_process_local as from_process_local
from cljax.distributed._layout import global_mesh as global_mesh
from cljax.distributed._layout import place as place
from cljax.distributed._layout import replicate as replicate
from cljax.distributed._layout import shard_parameters as shard_parameters
from cljax.distributed._layout import shard_tasks as shard_tasks
from cljax.distributed._layout import to_host as to_host
from cljax.distributed._runtime import DistributedSpec as DistributedSpec
from cljax.distributed._runtime import add_distributed_arguments as add_distributed_arguments
from cljax.distributed._runtime import cluster_detected as cluster_detected
from cljax.distributed._runtime import initialize as initialize
from cljax.distributed._runtime import initialize_from_args as initialize_from_args
from cljax.distributed._runtime import is_main_process as is_main_process
from cljax.distributed._runtime import process_count as process_count
from cljax.distributed._runtime import resolve as resolve
from cljax.distributed._solvers import project as project
from cljax.distributed._solvers import run as run

__all__ = [
    "initialize", "add_distributed_arguments", "initialize_from_args", "resolve",
    "cluster_detected", "DistributedSpec", "is_main_process", "process_count",
    "global_mesh", "LAYOUTS", "place", "shard_tasks", "shard_parameters", "replicate",
    "from_process_local", "to_host", "project", "run", "collectives", "Collective",
    "bytes_per_run",
]
