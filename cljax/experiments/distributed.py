"""The three experiments across processes: each process computes its share.

* :func:`gaussian_monte_carlo`: the Gaussian study split over realisations.
  Realisation r uses key ``split(key, R)[r]`` whatever the process count, so
  the errors are those of :func:`cljax.experiments.gaussian.studies.monte_carlo`.
* :func:`covid_eps_sweep`: the COVID ε sweep split over ε; every process runs
  :func:`cljax.experiments.covid.experiment.eps_sweep_program` on its block of
  the grid.
* :func:`vision_train`: the vision trainer with its T task networks split over
  the processes (θ_g replicated), :func:`cljax.experiments.vision.training.train`
  with a global mesh.

Each returns the whole result on every process; only process 0 should write it
(:func:`write_on_main`).  ``mesh=None`` means one 1-D mesh over every device of
every process (:func:`cljax.distributed.global_mesh`); on one process that is
the single-process run.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cljax.distributed import global_mesh, is_main_process, to_host


def _mesh_axis(mesh):
    mesh = global_mesh() if mesh is None else mesh
    if len(mesh.axis_names) != 1:
        raise ValueError(f"mesh must be 1-D, got axes {mesh.axis_names}")
    return mesh, mesh.axis_names[0], int(mesh.devices.size)


def _pad_rows(x, n):
    """x padded along axis 0 to a multiple of n by repeating its last row; (padded, size)."""
    x = np.asarray(x)
    pad = (-x.shape[0]) % n
    if pad:
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
    return x, x.shape[0] - pad


def _split_map(fn, mesh, axis, split, replicated=()):
    """``fn(split_block, *replicated)`` on every device's block of ``split`` (leading
    axis), outputs concatenated along their leading axis; whole on every process."""
    sharded = jax.device_put(split, NamedSharding(mesh, P(axis)))
    reps = [jax.tree_util.tree_map(lambda x: jax.device_put(x, NamedSharding(mesh, P())), r)
            for r in replicated]
    in_specs = (P(axis),) + tuple(jax.tree_util.tree_map(lambda _: P(), r) for r in reps)
    mapped = jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=P(axis),
                                   check_vma=False))
    return to_host(mapped(sharded, *reps))


def gaussian_monte_carlo(key, design, eps_grid, realisations: int, *, mesh=None,
                         selection=False, folds=0, batch_size=2000, iterations=None,
                         dtype=None) -> dict:
    """:func:`~cljax.experiments.gaussian.studies.monte_carlo` split over realisations.

    Every process draws the same R keys ``jax.random.split(key, R)``; device k of
    the mesh computes realisations k·R/n … (k+1)·R/n − 1 (R padded to a multiple
    of n, the padding dropped).  Returns NumPy arrays with leading axis R.
    """
    from cljax.experiments.gaussian import studies
    from cljax.projection._centre_newton import DEFAULT_ITERATIONS
    from cljax.projection._centre_path import map_cross_learning_path

    grid = studies.check_study_inputs(eps_grid, realisations)
    iterations = DEFAULT_ITERATIONS if iterations is None else iterations
    mesh, axis, n = _mesh_axis(mesh)
    keys, r = _pad_rows(jax.random.split(key, realisations), n)
    grid = jnp.asarray(grid, dtype or jnp.result_type(float))

    def block(keys, grid):
        # the body of monte_carlo, on this device's keys
        def one(k):
            return studies.realisation_errors(k, design, grid, selection=selection, folds=folds,
                                              iterations=iterations, dtype=dtype,
                                              cross_learning=False)

        out = jax.lax.map(one, keys, batch_size=min(batch_size, keys.shape[0]))
        means = out.pop("means")
        truth = jnp.asarray(design.centres, means.dtype)
        tau2 = jnp.asarray(design.noise_variances, means.dtype)

        def fn(a, th, c, e):
            return studies._cl_errors(a, th, c, e, truth, tau2, selection)

        (out["E_CL"], risk), _ = map_cross_learning_path(means, grid, fn)
        if selection:
            out["SURE"] = risk
        return out

    out = _split_map(block, mesh, axis, keys, (grid,))
    return {name: value[:r] for name, value in out.items()}


def covid_eps_sweep(problem, eps_grid, fit=None, *, mesh=None) -> dict:
    """:func:`~cljax.experiments.covid.experiment.eps_sweep` split over ε.

    Device k of the mesh solves its block of the grid (padded to a multiple of
    the mesh size by repeating the last ε); the returned dict has the keys of
    ``eps_sweep``.
    """
    from cljax._src.checks import check_eps_grid
    from cljax.experiments.covid import experiment as ce

    fit = ce.SIRFit() if fit is None else fit
    grid = np.asarray(check_eps_grid(eps_grid), float)
    mesh, axis, n = _mesh_axis(mesh)
    tasks = ce.task_arrays(problem)
    counts = ce.count_task_arrays(problem)
    padded, e = _pad_rows(grid.astype(np.dtype(tasks.observed.dtype)), n)
    sweep = ce.eps_sweep_program(problem, fit)
    # the sweep also returns the ε-free baselines; each block keeps only its ε results
    z, zg, m = _split_map(lambda g, t, c: sweep(t, c, g)[:3], mesh, axis, padded,
                          (tasks, counts))
    z, zg = z[:e], zg[:e]
    return {"eps": grid.tolist(),
            "beta": z[:, 0, 0].tolist(), "gamma": z[:, 0, 1].tolist(),
            "peak_error_percent": (100 * m.peak_error[:e]).tolist(),
            "lag_days": m.lag[:e].astype(int).tolist(),
            "task_params": z.tolist(), "global_params": zg.tolist()}


def vision_mesh(num_tasks: int, devices=None):
    """A 1-D mesh "tasks" over the most devices (of every process) that divide T."""
    from cljax.experiments.vision.training import make_task_mesh

    return make_task_mesh(num_tasks, jax.devices() if devices is None else devices)


def vision_train(data, config, *, mesh=None, checkpoint_dir=None, resume: bool = False,
                 stop_after_epochs: int | None = None, checkpoint_every: int = 1):
    """:func:`~cljax.experiments.vision.training.train` with the T task networks split
    over every process's devices (``mesh`` default :func:`vision_mesh`), θ_g replicated.

    The same program, placement and checkpoints as ``train(..., mesh=mesh)``; the
    results are gathered on every process (``train`` reads them with
    ``np.asarray``, which a multi-process array refuses).  Orbax saves and
    restores the sharded state from every process (all of them must see
    ``checkpoint_dir``).  Returns a :class:`~cljax.experiments.vision.training.TrainResult`.
    """
    import time

    from cljax._src.tree import per_task_distance
    from cljax.experiments.vision import training as tr

    config = config.validate()
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    mesh = vision_mesh(data.num_domains) if mesh is None else mesh
    program = tr.program_for(config, data)
    init_key, shuffle_key = jax.random.split(jax.random.PRNGKey(config.seed))
    eps = jnp.asarray(config.eps, jnp.float32)
    start = time.perf_counter()
    shapes_t1 = jax.eval_shape(tr._build(config, data.num_domains + 1, data.image_shape,
                                         data.num_classes, 1, tuple(data.mean),
                                         tuple(data.std)).init, init_key, eps)
    mask = tr.task_axis_mask(jax.eval_shape(program.init, init_key, eps), shapes_t1)
    x_tr, y_tr, n_tr, x_te, y_te, n_te = tr.place(
        [np.asarray(a) for a in (data.x_train, data.y_train, data.n_train, data.x_test,
                                 data.y_test, data.n_test)], mesh, [True] * 6)
    state = tr.place(jax.device_get(program.init(init_key, eps)), mesh, mask)
    store, resumed_from = None, 0
    if checkpoint_dir is not None:
        from cljax.experiments.vision.checkpoint import CheckpointStore

        store = CheckpointStore(checkpoint_dir, config)
        if resume:
            restored = store.restore_latest(state)
            if restored is not None:
                state, resumed_from = restored, int(to_host(restored.epoch))
        elif store.latest_epoch() is not None:
            raise FileExistsError(f"checkpoint_dir {checkpoint_dir} already holds checkpoints; "
                                  "pass resume=True to continue or use an empty folder")
    done = int(to_host(state.epoch))
    while done < config.epochs and (stop_after_epochs is None or done < stop_after_epochs):
        state = program.epoch(state, x_tr, y_tr, n_tr, shuffle_key, eps)
        done += 1
        if store is not None and (done % checkpoint_every == 0 or done == config.epochs):
            store.save(done, state)
    if store is not None:
        store.close()
    finished = done >= config.epochs
    nan = np.full((data.num_domains,), np.nan)
    acc_t, acc_g, dist = (to_host(program.evaluate(state.task_params, state.global_params,
                                                   x_te, y_te, n_te))
                          if finished else (nan, nan, nan))
    host = to_host((state.loss_history, state.constraint_history, state.dual_history))
    return tr.TrainResult(
        config=config, domains=data.domains, epochs_done=done, finished=finished,
        test_accuracy=acc_t, global_test_accuracy=acc_g, test_constraint=dist,
        parameter_distance=to_host(per_task_distance(state.task_params, state.global_params)),
        loss_history=host[0], constraint_history=host[1], dual_history=host[2],
        seconds=time.perf_counter() - start, resumed_from_epoch=resumed_from, state=state)


def write_on_main(path, payload) -> bool:
    """Write ``payload`` as JSON to ``path`` on process 0 only; True where written."""
    if not is_main_process():
        return False
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))
    return True
