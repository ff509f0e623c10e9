"""The task axis sharded over 4 CPU devices gives the results of one device.

Functional mode: θ_g's gradient and the test metrics reduce across the sharded
task axis (the projection of parametric mode goes through the same placement;
it is left out to keep the compile time of this subprocess small).

XLA_FLAGS must be set before jax initialises, so the comparison runs in a
subprocess; it prints one JSON line that this test checks.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, sys
from dataclasses import replace
import jax, numpy as np
sys.path.insert(0, sys.argv[1])
from tests.experiments.vision.test_vision_training import BASE, synthetic_domains
from cljax.experiments.vision.training import make_task_mesh, train

data = synthetic_domains(num_domains=4)
mesh = make_task_mesh(4)
out = {"devices": jax.device_count(), "mesh": int(mesh.devices.size)}
for mode, eps in (("functional", 0.01),):
    cfg = replace(BASE, mode=mode, eps=eps, epochs=2)
    one = train(data, cfg)
    sharded = train(data, cfg, mesh=mesh)
    leaf = jax.tree_util.tree_leaves(sharded.state.task_params)[0]
    out[mode + "_placement"] = [len(leaf.sharding.device_set),
                                leaf.addressable_shards[0].data.shape[0], leaf.shape[0]]
    out[mode] = {name: float(np.max(np.abs(getattr(one, name) - getattr(sharded, name))))
                 for name in ("loss_history", "constraint_history", "dual_history",
                              "test_accuracy", "parameter_distance")}
    out[mode]["accuracy"] = one.test_accuracy.tolist()
print(json.dumps(out))
"""


def test_sharded_task_axis_matches_one_device():
    root = Path(__file__).resolve().parents[3]
    flags = os.environ.get("XLA_FLAGS", "")  # keep the suite's flags (conftest.py)
    env = dict(os.environ, XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count=4".strip(),
               JAX_PLATFORMS="cpu", PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4 and out["mesh"] == 4
    for mode in ("functional",):
        assert out[mode + "_placement"] == [4, 1, 4]  # one network per device
        diffs = out[mode]
        assert diffs["test_accuracy"] == 0.0, diffs
        for name in ("loss_history", "constraint_history", "dual_history", "parameter_distance"):
            assert diffs[name] < 1e-4, (mode, name, diffs)
