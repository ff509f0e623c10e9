"""One trainer for multi-domain image classification, four modes (DESIGN §1, §4).

T domains, T+1 networks held as one stacked pytree (task axis T) plus the
global network θ_g.  Every step is jitted and vmapped over the networks; an
epoch is one jitted ``lax.scan`` over minibatches.  Modes:

* ``separate``  — P_S: every θ_t trained on its own domain.
* ``consensus`` — P_C: one network on the pooled data, loss (1/T) Σ_t ℓ̄_t(θ).
* ``parametric`` — P_CL by projected SGD: an optimiser step on every θ_t, then
  the dual-domain (Gram) projection ``cljax.project_cross_learning(...,
  method="dual")`` of (θ_1..θ_T, θ_g) onto {‖θ_t − θ_g‖ ≤ ε} (``cljax.ProjectedGradient``).
* ``functional`` — P_CLF by Algorithm 2 (``cljax.PrimalDual``): primal steps on
  the Lagrangian, dual ascent λ_t ← [λ_t + η_D(ĝ_t − ε)]₊ once per epoch, with
  d = L1 distance between the softmax outputs (in [0, 2]).

Loss: cross-entropy.  Any optax optimiser whose update is elementwise (sgd,
momentum, adam, …): it sees the stacked tree, so a coupling transformation such
as global-norm clipping would couple the networks.

Determinism: the initial networks come from ``PRNGKey(seed)`` (all T+1 from the
same draw), and epoch e shuffles with ``fold_in(key, e)``, so a run resumed from
a checkpoint ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from cljax.experiments.vision.digits import MultiDomainData
from cljax.solvers._distances import softmax_l1_distance
from cljax.solvers._primal_dual import PrimalDual, PrimalDualState
from cljax.solvers._projected_gradient import ProjectedGradient, ProjectedGradientState
from cljax._src.tree import broadcast_global, dtype_of, per_task_distance
from cljax.experiments.vision.models import Classifier, alexnet_224, alexnet_small, init_stacked

MODES = ("separate", "consensus", "parametric", "functional")
OPTIMIZERS = ("adam", "sgd", "momentum")


@dataclass(frozen=True)
class VisionConfig:
    """A training run.

    Attributes:
      mode: one of ``MODES``.
      eps: ε (parameter distance for ``parametric``, mean softmax-L1 distance
        in [0, 2] for ``functional``; ignored otherwise).
      epochs: passes over each domain's training set.
      batch_size: images per domain per step.
      optimizer, learning_rate: the primal optimiser and η_P (paper: 0.003).
      dual_step_size: η_D (paper: 10).
      model: ``"small"`` (:func:`alexnet_small`) or ``"alexnet224"``.
      width, hidden: size of the small model.
      projection_max_iter: Newton cap of the projection.
      eval_chunk: test images per forward pass in evaluation.
      seed: PRNG seed (initial networks and shuffling).
    """

    mode: str = "functional"
    eps: float = 0.1
    epochs: int = 30
    batch_size: int = 20
    optimizer: str = "adam"
    learning_rate: float = 0.003
    dual_step_size: float = 10.0
    model: str = "small"
    width: int = 16
    hidden: int = 64
    projection_max_iter: int = 50
    eval_chunk: int = 200
    seed: int = 0

    def validate(self) -> "VisionConfig":
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.model not in ("small", "alexnet224"):
            raise ValueError(f"model must be 'small' or 'alexnet224', got {self.model!r}")
        for name in ("epochs", "batch_size", "width", "hidden", "eval_chunk"):
            value = getattr(self, name)
            if not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("learning_rate", "dual_step_size"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {value!r}")
        if np.isnan(self.eps) or self.eps < 0:
            raise ValueError(f"eps must be >= 0 (inf allowed), got {self.eps!r}")
        return self


class VisionState(NamedTuple):
    """Everything a run carries between epochs (and checkpoints).

    ``global_params`` is θ_g (the consensus network in ``consensus`` mode);
    ``*_history`` rows are per epoch, per domain: mean training loss, mean
    constraint value (‖θ_t − θ_g‖ after the projection for ``parametric``,
    ĝ_t for ``functional``) and λ_t after the epoch's dual update.
    """

    task_params: Any
    global_params: Any
    opt_state: Any
    duals: jax.Array
    constraint_sum: jax.Array
    num_accumulated: jax.Array
    step: jax.Array
    epoch: jax.Array
    loss_history: jax.Array
    constraint_history: jax.Array
    dual_history: jax.Array


def make_optimizer(name: str, learning_rate: float) -> optax.GradientTransformation:
    if name == "adam":
        return optax.adam(learning_rate)
    if name == "momentum":
        return optax.sgd(learning_rate, momentum=0.9)
    return optax.sgd(learning_rate)


def make_classifier(config: VisionConfig, num_classes: int) -> Classifier:
    if config.model == "alexnet224":
        return Classifier(alexnet_224(num_classes))
    return Classifier(alexnet_small(num_classes, width=config.width, hidden=config.hidden))


def cross_entropy(logits, labels):
    """(B,) per-example cross-entropy."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def normalise(images_uint8, mean, std):
    """uint8 → float32, (x/255 − mean)/std per channel."""
    x = images_uint8.astype(jnp.float32) / 255.0
    return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def epoch_order(key, n_valid, size):
    """(T, size) per-domain shuffles: the n_t real slots first, in random order."""
    def one(k, n):
        scores = jax.random.uniform(k, (size,))
        scores = jnp.where(jnp.arange(size) < n, scores, 2.0)
        return jnp.argsort(scores)

    return jax.vmap(one)(jax.random.split(key, n_valid.shape[0]), n_valid)


# ---------------------------------------------------------------------------
# Mode steps: (state, batch, eps) -> (state, losses (T,), constraints (T,))


def make_evaluate(classifier, eval_chunk: int, mean, std):
    """``evaluate(task_params, global_params, x_test, y_test, n_test)`` → per-domain
    (accuracy of θ_t, accuracy of θ_g, mean softmax-L1 distance θ_t vs θ_g) on
    the padded test sets, ``eval_chunk`` images per forward pass."""

    def evaluate(task_params, global_params, x_test, y_test, n_test):
        """Per-domain test accuracy of θ_t and of θ_g, and test ĝ_t."""
        size = x_test.shape[1]
        chunk = min(eval_chunk, size)
        num_chunks = -(-size // chunk)
        pad = num_chunks * chunk - size
        xs = jnp.pad(x_test, ((0, 0), (0, pad)) + ((0, 0),) * (x_test.ndim - 2))
        ys = jnp.pad(y_test, ((0, 0), (0, pad)))
        valid = jnp.arange(num_chunks * chunk)[None, :] < n_test[:, None]

        def per_domain(params_t, x_t, y_t, valid_t):
            def one_chunk(c):
                xc = lax.dynamic_slice_in_dim(x_t, c * chunk, chunk)
                yc = lax.dynamic_slice_in_dim(y_t, c * chunk, chunk)
                vc = lax.dynamic_slice_in_dim(valid_t, c * chunk, chunk)
                xc = normalise(xc, mean, std)
                out_t = classifier(params_t, xc)
                out_g = classifier(global_params, xc)
                return (jnp.sum(vc * (jnp.argmax(out_t, -1) == yc)),
                        jnp.sum(vc * (jnp.argmax(out_g, -1) == yc)),
                        jnp.sum(vc * softmax_l1_distance(out_t, out_g)))

            hits_t, hits_g, dist = lax.map(one_chunk, jnp.arange(num_chunks))
            n = jnp.maximum(jnp.sum(valid_t), 1)
            return jnp.sum(hits_t) / n, jnp.sum(hits_g) / n, jnp.sum(dist) / n

        return jax.vmap(per_domain)(task_params, xs, ys, valid)

    return evaluate


class _Program(NamedTuple):
    init: Callable
    epoch: Callable
    evaluate: Callable


def _build(config: VisionConfig, num_tasks: int, image_shape, num_classes: int,
           steps_per_epoch: int, mean, std) -> _Program:
    classifier = make_classifier(config, num_classes)
    optimizer = make_optimizer(config.optimizer, config.learning_rate)
    mode = config.mode
    T = num_tasks
    B = config.batch_size

    def task_loss(params, batch):
        x, y = batch
        return jnp.mean(cross_entropy(classifier(params, x), y))

    projected = ProjectedGradient(task_loss, optimizer, global_weight=1.0,
                                  projection_method="dual",
                                  projection_max_iter=config.projection_max_iter)
    primal_dual = PrimalDual(classifier, cross_entropy, optimizer,
                             dual_step_size=config.dual_step_size,
                             distance=softmax_l1_distance)

    def init(key, eps):
        stacked = init_stacked(classifier, key, image_shape, T + 1)
        task = jax.tree_util.tree_map(lambda leaf: leaf[1:], stacked)
        glob = jax.tree_util.tree_map(lambda leaf: leaf[0], stacked)
        dtype = dtype_of(task)
        zeros = jnp.zeros((T,), dtype)
        if mode == "separate":
            opt_state = optimizer.init(task)
        elif mode == "consensus":
            opt_state = optimizer.init(glob)
        elif mode == "parametric":
            pg = projected.init(task, eps, glob)
            task, glob, opt_state = pg.task_params, pg.global_params, pg.opt_state
        else:
            pd = primal_dual.init(task, eps, glob)
            opt_state = pd.opt_state
        history = jnp.zeros((config.epochs, T), dtype)
        return VisionState(task, glob, opt_state, zeros, zeros, jnp.asarray(0, jnp.int32),
                           jnp.asarray(0, jnp.int32), jnp.asarray(0, jnp.int32),
                           history, history, history)

    def step(s: VisionState, batch, eps):
        if mode == "separate":
            losses, grads = jax.vmap(jax.value_and_grad(task_loss))(s.task_params, batch)
            updates, opt_state = optimizer.update(grads, s.opt_state, s.task_params)
            task = optax.apply_updates(s.task_params, updates)
            return s._replace(task_params=task, opt_state=opt_state), losses, jnp.zeros_like(losses)
        if mode == "consensus":
            def pooled(params):
                losses = jax.vmap(task_loss, in_axes=(None, 0))(params, batch)
                return jnp.mean(losses), losses

            (_, losses), grads = jax.value_and_grad(pooled, has_aux=True)(s.global_params)
            updates, opt_state = optimizer.update(grads, s.opt_state, s.global_params)
            glob = optax.apply_updates(s.global_params, updates)
            return s._replace(global_params=glob, opt_state=opt_state), losses, jnp.zeros_like(losses)
        if mode == "parametric":
            pg = ProjectedGradientState(s.task_params, s.global_params, s.opt_state, s.step)
            pg, info = projected.step(pg, batch, eps)
            losses = info.loss
            distance = per_task_distance(pg.task_params, pg.global_params)
            return (s._replace(task_params=pg.task_params, global_params=pg.global_params,
                               opt_state=pg.opt_state), losses, distance)
        pd = PrimalDualState(s.task_params, s.global_params, s.opt_state, s.duals,
                             s.constraint_sum, s.num_accumulated, s.step)
        pd, info = primal_dual.step(pd, batch, eps)
        return (s._replace(task_params=pd.task_params, global_params=pd.global_params,
                           opt_state=pd.opt_state, constraint_sum=pd.constraint_sum,
                           num_accumulated=pd.num_accumulated), info.loss, info.constraints)

    def epoch(s: VisionState, x_train, y_train, n_train, key, eps):
        size = x_train.shape[1]
        order = epoch_order(jax.random.fold_in(key, s.epoch), n_train, size)

        def body(state, i):
            pos = (i * B + jnp.arange(B))[None, :] % n_train[:, None]  # (T, B)
            idx = jnp.take_along_axis(order, pos, axis=1)
            x = jax.vmap(lambda xt, it: xt[it])(x_train, idx)
            y = jax.vmap(lambda yt, it: yt[it])(y_train, idx)
            state, losses, constraints = step(state, (normalise(x, mean, std), y), eps)
            return state._replace(step=state.step + 1), (losses, constraints)

        s, (losses, constraints) = lax.scan(body, s, jnp.arange(steps_per_epoch))
        if mode == "functional":
            pd = PrimalDualState(s.task_params, s.global_params, s.opt_state, s.duals,
                                 s.constraint_sum, s.num_accumulated, s.step)
            pd = primal_dual.dual_update(pd, eps)
            s = s._replace(duals=pd.duals, constraint_sum=pd.constraint_sum,
                           num_accumulated=pd.num_accumulated)
        if mode == "consensus":
            s = s._replace(task_params=broadcast_global(s.global_params, T))
        e = s.epoch
        return s._replace(
            epoch=e + 1,
            loss_history=s.loss_history.at[e].set(jnp.mean(losses, axis=0)),
            constraint_history=s.constraint_history.at[e].set(jnp.mean(constraints, axis=0)),
            dual_history=s.dual_history.at[e].set(s.duals))

    evaluate = make_evaluate(classifier, config.eval_chunk, mean, std)
    return _Program(init, epoch, evaluate)


@functools.lru_cache(maxsize=32)
def _compiled(static_config: tuple, num_tasks: int, image_shape: tuple, num_classes: int,
              steps_per_epoch: int, mean: tuple, std: tuple):
    config = VisionConfig(**dict(static_config))
    program = _build(config, num_tasks, image_shape, num_classes, steps_per_epoch, mean, std)
    return _Program(jax.jit(program.init), jax.jit(program.epoch),
                    _compiled_evaluate(config.model, config.width, config.hidden,
                                       config.eval_chunk, num_classes, mean, std))


@functools.lru_cache(maxsize=32)
def _compiled_evaluate(model, width, hidden, eval_chunk, num_classes, mean, std):
    """One jitted evaluation per model (shared by the four modes)."""
    config = VisionConfig(model=model, width=width, hidden=hidden)
    return jax.jit(make_evaluate(make_classifier(config, num_classes), eval_chunk, mean, std))


def _static_key(config: VisionConfig) -> tuple:
    fields = asdict(config)
    fields.pop("seed")
    fields.pop("eps")
    return tuple(sorted(fields.items()))


def program_for(config: VisionConfig, data: MultiDomainData) -> _Program:
    """The jitted (init, epoch, evaluate) of a configuration, cached across seeds
    and ε (both are traced arguments)."""
    steps = -(-int(np.max(data.n_train)) // config.batch_size)
    return _compiled(_static_key(config), data.num_domains, data.image_shape,
                     data.num_classes, steps, tuple(data.mean), tuple(data.std))


@dataclass
class TrainResult:
    """Final metrics of a run (numpy / Python values, JSON-friendly via ``to_dict``)."""

    config: VisionConfig
    domains: tuple
    epochs_done: int
    finished: bool
    test_accuracy: np.ndarray  # (T,) θ_t on domain t
    global_test_accuracy: np.ndarray  # (T,) θ_g on domain t
    test_constraint: np.ndarray  # (T,) mean softmax-L1 distance θ_t vs θ_g on test
    parameter_distance: np.ndarray  # (T,) ‖θ_t − θ_g‖
    loss_history: np.ndarray  # (epochs, T)
    constraint_history: np.ndarray
    dual_history: np.ndarray
    seconds: float
    resumed_from_epoch: int = 0
    state: Any = None  # the final VisionState (trained networks), not serialised

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.test_accuracy))

    def to_dict(self) -> dict:
        def arr(a):
            return np.asarray(a, np.float64).tolist()

        return {
            "config": asdict(self.config), "domains": list(self.domains),
            "epochs_done": self.epochs_done, "finished": self.finished,
            "mean_accuracy": self.mean_accuracy,
            "test_accuracy": arr(self.test_accuracy),
            "global_test_accuracy": arr(self.global_test_accuracy),
            "test_constraint": arr(self.test_constraint),
            "parameter_distance": arr(self.parameter_distance),
            "loss_history": arr(self.loss_history),
            "constraint_history": arr(self.constraint_history),
            "dual_history": arr(self.dual_history),
            "seconds": self.seconds, "resumed_from_epoch": self.resumed_from_epoch,
        }


def place(tree, mesh, task_mask):
    """Put leaves with a task axis (``task_mask``) on ``mesh`` sharded along
    their first axis ("tasks"); replicate the others."""
    from jax.sharding import NamedSharding, PartitionSpec as P

    def put(leaf, is_task):
        spec = P("tasks") if is_task else P()
        return jax.device_put(leaf, NamedSharding(mesh, spec))

    return jax.tree_util.tree_map(put, tree, task_mask)


def task_axis_mask(shapes_t, shapes_t_plus_1):
    """Which leaves of a state carry the task axis first: those whose leading
    dimension changes with T (shapes from ``jax.eval_shape`` at T and T+1,
    nothing allocated).  Histories (epochs, T) stay replicated."""
    return jax.tree_util.tree_map(lambda x, y: x.shape[:1] != y.shape[:1],
                                  shapes_t, shapes_t_plus_1)


def make_task_mesh(num_tasks: int, devices=None):
    """A 1-D mesh named "tasks" on the largest number of devices dividing T."""
    from jax.sharding import Mesh

    devices = list(jax.devices() if devices is None else devices)
    n = max(d for d in range(1, len(devices) + 1) if num_tasks % d == 0)
    return Mesh(np.array(devices[:n]), ("tasks",))


def train(data: MultiDomainData, config: VisionConfig, *, checkpoint_dir=None,
          resume: bool = False, stop_after_epochs: int | None = None, mesh=None,
          progress: Callable[[int, int, dict], None] | None = None,
          checkpoint_every: int = 1) -> TrainResult:
    """Train one configuration on ``data``; returns its :class:`TrainResult`.

    Args:
      checkpoint_dir: orbax checkpoints of the whole state, every
        ``checkpoint_every`` epochs (and at the last).
      resume: continue from the latest checkpoint in ``checkpoint_dir``.
      stop_after_epochs: stop (as if killed) once this many epochs are done;
        the result then has ``finished=False`` and no test metrics.
      mesh: a ``jax.sharding.Mesh`` with axis "tasks" (:func:`make_task_mesh`):
        the task axis of the state and of the data is sharded over it.
      progress: called as ``progress(epoch, epochs, info)`` after every epoch.
    """
    config = config.validate()
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    program = program_for(config, data)
    key = jax.random.PRNGKey(config.seed)
    init_key, shuffle_key = jax.random.split(key)
    eps = jnp.asarray(config.eps, jnp.float32)  # the networks are float32
    start = time.perf_counter()
    arrays = [jnp.asarray(a) for a in (data.x_train, data.y_train, data.n_train,
                                       data.x_test, data.y_test, data.n_test)]
    if mesh is not None:
        t = data.num_domains
        shapes_t = jax.eval_shape(program.init, init_key, eps)
        shapes_t1 = jax.eval_shape(
            _build(config, t + 1, data.image_shape, data.num_classes, 1,
                   tuple(data.mean), tuple(data.std)).init, init_key, eps)
        mask = task_axis_mask(shapes_t, shapes_t1)
        arrays = place(arrays, mesh, [True] * 6)
    state = program.init(init_key, eps)
    if mesh is not None:
        state = place(state, mesh, mask)

    manager = None
    resumed_from = 0
    if checkpoint_dir is not None:
        from cljax.experiments.vision.checkpoint import CheckpointStore

        manager = CheckpointStore(checkpoint_dir, config)
        if resume:
            restored = manager.restore_latest(state)
            if restored is not None:
                state = restored
                resumed_from = int(state.epoch)
        elif manager.latest_epoch() is not None:
            raise FileExistsError(f"checkpoint_dir {checkpoint_dir} already holds checkpoints; "
                                  "pass resume=True to continue or use an empty folder")

    x_tr, y_tr, n_tr, x_te, y_te, n_te = arrays
    done = int(state.epoch)
    while done < config.epochs:
        if stop_after_epochs is not None and done >= stop_after_epochs:
            break
        state = program.epoch(state, x_tr, y_tr, n_tr, shuffle_key, eps)
        done += 1
        if manager is not None and (done % checkpoint_every == 0 or done == config.epochs):
            manager.save(done, state)
        if progress is not None:
            progress(done, config.epochs, {
                "loss": float(jnp.mean(state.loss_history[done - 1])),
                "constraint": np.asarray(state.constraint_history[done - 1]).tolist(),
                "duals": np.asarray(state.dual_history[done - 1]).tolist()})
    if manager is not None:
        manager.close()
    finished = done >= config.epochs
    t = data.num_domains
    if finished:
        acc_t, acc_g, dist = (np.asarray(a) for a in program.evaluate(state.task_params, state.global_params, x_te, y_te, n_te))
    else:
        acc_t = acc_g = dist = np.full((t,), np.nan)
    return TrainResult(
        config=config, domains=data.domains, epochs_done=done, finished=finished,
        test_accuracy=acc_t, global_test_accuracy=acc_g, test_constraint=dist,
        parameter_distance=np.asarray(per_task_distance(state.task_params, state.global_params)),
        loss_history=np.asarray(state.loss_history), constraint_history=np.asarray(
            state.constraint_history), dual_history=np.asarray(state.dual_history),
        seconds=time.perf_counter() - start, resumed_from_epoch=resumed_from, state=state)
