"""One process of the two-process check (run by test_multiprocess.py, not by pytest).

    python _worker.py PROCESS_ID PORT OUT_JSON CHECKPOINT_DIR

Every check compares a run on the global mesh (2 processes, one CPU device
each) with the single-process answer computed on one process's own device,
and records the largest absolute difference.  The single-process references
are shared out between the two processes (``OWNER``), which saves half of
their compile time; each process writes its record to ``OUT_JSON.<id>``.  At
the end process 1 dies abruptly and process 0 records how its next collective
fails.
"""

import json
import os
import sys
import time
from dataclasses import replace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import cljax.distributed as cd  # noqa: E402

pid, port, out_path, ckpt = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cd.initialize(f"localhost:{port}", 2, pid, timeout_s=30)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import cljax  # noqa: E402
from cljax.experiments import distributed as ed  # noqa: E402

# which process computes the single-process reference of each check
OWNER = {"ADMM": 0, "ProjectedGradient": 0, "vision": 0, "PrimalDual": 1, "gaussian": 1,
         "covid": 1}


def mine(check):
    return OWNER[check] == pid


record = {"process_count": jax.process_count(), "devices": jax.device_count(), "timings": {},
          "cpu_seconds": {}}


def diff(a, b):
    a, b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(a) == len(b)
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               if np.size(x) else 0.0 for x, y in zip(a, b))


def spans(tree):
    """(devices spanned, local shard rows, global rows) of the first leaf."""
    leaf = jax.tree_util.tree_leaves(tree)[0]
    return [len(leaf.sharding.device_set), list(leaf.addressable_shards[0].data.shape),
            list(leaf.shape)]


# --- the three solvers, both layouts -------------------------------------------------------
start = time.perf_counter()
rng = np.random.default_rng(0)
T, S, N = 4, 6, 8
X = rng.standard_normal((T, N, S))
w_true = rng.standard_normal((T, S)) + 2.0
y = np.einsum("tns,ts->tn", X, w_true) + 0.1 * rng.standard_normal((T, N))
theta0 = {"w": np.zeros((T, S))}
data = (X, y)


def quad_loss(p, d):
    return 0.5 * jnp.mean((d[0] @ p["w"] - d[1]) ** 2)


# ADMM (primal-method projection) in both layouts; ProjectedGradient (dual-method
# projection) with parameters split; PrimalDual with tasks split: one layout each
# for the last two keeps the compile time of this check small (the vision check
# below runs the dual projection with tasks split).
solvers = {
    "ADMM": (cljax.ADMM(cljax.QuadraticProx(quad_loss), projection_method="primal"), 0.3,
             cd.LAYOUTS),
    "ProjectedGradient": (cljax.ProjectedGradient(quad_loss, optax.sgd(0.1)), 0.3,
                          ("parameters",)),
    "PrimalDual": (cljax.PrimalDual(lambda p, x: x @ p["w"], lambda o, t: (o - t) ** 2,
                                    optax.sgd(0.05), dual_step_size=1.0), 0.2, ("tasks",)),
}
record["solvers"] = {}
for name, (solver, eps, layouts) in solvers.items():
    reference = (jax.jit(lambda t, d, e, s=solver: s.run(t, d, e, 5))(theta0, data, eps)
                 if mine(name) else None)
    for layout in layouts:
        state, info = cd.run(solver, theta0, data, eps, 5, mesh=cd.global_mesh(), layout=layout)
        # gathering is a collective: both processes gather, whoever holds the reference
        got = cd.to_host((state.task_params, state.global_params, info.loss))
        if reference is None:
            continue
        record["solvers"][f"{name}/{layout}"] = {
            "task_params": diff(got[0], reference[0].task_params),
            "global_params": diff(got[1], reference[0].global_params),
            "loss": diff(got[2], reference[1].loss),
            "scale": float(np.max(np.abs(np.asarray(reference[0].task_params["w"])))),
            "placement": spans(state.task_params)}
record["timings"]["solvers"] = time.perf_counter() - start
record["cpu_seconds"]["solvers"] = time.process_time()

# --- a task array from each process's own tasks (the data never leave the process) --------
local = np.full((1, 3), float(pid))
record["from_process_local"] = cd.to_host(cd.from_process_local(local, cd.global_mesh())).tolist()

# --- the projection alone, parameters layout: its values and its collectives (Gram only) ----
mesh = cd.global_mesh()
points = rng.standard_normal((T, 1000)) + np.arange(T)[:, None]
res = cd.project(points, points.mean(0), 0.5, mesh=mesh, layout="parameters")
got = cd.to_host((res.task_params, res.global_params))
if mine("ADMM"):
    ref = jax.jit(cljax.project_cross_learning)(points, points.mean(0), 0.5)
    record["project"] = {"values": diff(got, (ref.task_params, ref.global_params)),
                         "placement": spans(res.task_params)}
# the collectives of the program cd.project just ran: the same jitted function lowered with
# the same placed arguments is a hit in jit's cache (no second compilation)
from cljax.distributed._solvers import _jitted_projection  # noqa: E402

sharded, glob, _ = cd.place(points, points.mean(0), None, mesh, "parameters")
compiled = _jitted_projection(()).lower(sharded, glob, 0.5).compile()
record["parameters_collectives"] = [
    [op.kind, list(op.shapes), op.bytes, op.loop_depth] for op in cd.collectives(compiled.as_text())]

# --- Gaussian study over realisations --------------------------------------------------------
start = time.perf_counter()
from cljax.experiments.gaussian import studies  # noqa: E402

design = studies.example2_design(1.0)
grid = np.array([0.0, 0.5, 1.5, np.inf])
key = jax.random.PRNGKey(3)
dist = ed.gaussian_monte_carlo(key, design, grid, 6, batch_size=4)
if mine("gaussian"):
    one = jax.device_get(studies.monte_carlo(key, design, grid, 6, batch_size=4))
    record["gaussian"] = {k: diff(dist[k], one[k]) for k in one}
    record["gaussian_shape"] = list(dist["E_CL"].shape)
record["timings"]["gaussian"] = time.perf_counter() - start
record["cpu_seconds"]["gaussian"] = time.process_time()

# --- COVID ε sweep over ε ----------------------------------------------------------------------
start = time.perf_counter()
from cljax.experiments.covid import experiment as ce  # noqa: E402
from cljax.experiments.covid.cases import build_windows  # noqa: E402

windows = build_windows()
problem = ce.make_problem(windows=[w for w in windows if w.iso_code == "ARG"] + list(
    [w for w in windows if w.iso_code != "ARG"][:2]), target="ARG", n_train=10)
fit = ce.SIRFit(fit_steps=5, admm_iterations=3, prox_steps=1)
eps_grid = [0.0, 0.05, 0.2]  # 3 values on 2 processes: one padded
d = ed.covid_eps_sweep(problem, eps_grid, fit)
if mine("covid"):
    o = ce.eps_sweep(problem, eps_grid, fit)
    record["covid"] = {k: diff(np.asarray(d[k], float), np.asarray(o[k], float))
                       for k in ("task_params", "global_params", "peak_error_percent",
                                 "lag_days")}
    record["covid_eps"] = d["eps"]
record["timings"]["covid"] = time.perf_counter() - start
record["cpu_seconds"]["covid"] = time.process_time()

# --- vision trainer over the task networks, with an orbax checkpoint and a resume ---------------
start = time.perf_counter()
sys.path.insert(0, ROOT)
from tests.experiments.vision.test_vision_training import BASE, synthetic_domains  # noqa: E402
from cljax.experiments.vision.training import train  # noqa: E402

vdata = synthetic_domains(num_domains=2)
cfg = replace(BASE, mode="parametric", eps=0.01, epochs=2)
first = ed.vision_train(vdata, cfg, checkpoint_dir=ckpt, stop_after_epochs=1)
resumed = ed.vision_train(vdata, cfg, checkpoint_dir=ckpt, resume=True)
if mine("vision"):
    whole = train(vdata, cfg)
    record["vision"] = {k: diff(getattr(resumed, k), getattr(whole, k))
                        for k in ("loss_history", "constraint_history", "test_accuracy",
                                  "global_test_accuracy", "parameter_distance")}
record["vision_run"] = {"first_epochs": first.epochs_done, "first_finished": first.finished,
                        "resumed_from": resumed.resumed_from_epoch,
                        "placement": spans(resumed.state.task_params)}
record["timings"]["vision"] = time.perf_counter() - start
record["cpu_seconds"]["vision"] = time.process_time()

# --- only process 0 writes; then process 1 dies and process 0's next collective fails --------
total = jax.jit(lambda x: jnp.sum(x))
x = cd.shard_tasks(np.arange(2.0), mesh, "x")
record["before_kill"] = float(total(x))  # both processes are here
record["written"] = ed.write_on_main(out_path + ".main", {"process": pid})
if pid == 1:
    with open(f"{out_path}.1", "w") as f:
        json.dump(record, f)
    os._exit(0)
time.sleep(1.0)
start = time.perf_counter()
try:
    float(total(x + 1.0))
    record["lost_peer"] = {"error": None}
except Exception as err:  # noqa: BLE001 - the runtime's error type is what is recorded
    record["lost_peer"] = {"error": f"{type(err).__name__}: {err}"[:500],
                           "seconds": time.perf_counter() - start}
with open(f"{out_path}.0", "w") as f:
    json.dump(record, f)
os._exit(0)  # skip the shutdown barrier, which would wait for the dead peer
