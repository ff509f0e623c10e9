"""The multi-domain trainer: its four modes against independent references,
and orbax checkpoints (a run stopped mid-way and resumed ends where an
uninterrupted run ends)."""

import functools
from dataclasses import replace

import jax
import numpy as np
import pytest

from cljax.experiments.vision.digits import stack_domains
from cljax.experiments.vision.training import (VisionConfig, make_classifier, program_for,
                                               train)

SIZE = 8


def synthetic_domains(num_domains=2, per_class=4, num_classes=3, seed=0, identical=False):
    """Class-coded noisy 8x8 images; domains differ by a brightness offset."""
    rng = np.random.default_rng(seed)
    pairs = []
    for t in range(num_domains):
        y = np.repeat(np.arange(num_classes), per_class)
        x = rng.integers(0, 60, (len(y), SIZE, SIZE, 3))
        for c in range(num_classes):
            x[y == c, :, c * 2:c * 2 + 3] += 150
        x = x + (0 if identical else 30 * t)
        pairs.append((np.clip(x, 0, 255).astype(np.uint8), y))
    if identical:
        pairs = [pairs[0]] * num_domains
    names = tuple(f"d{t}" for t in range(num_domains))
    return stack_domains(pairs, pairs, names, tuple(str(c) for c in range(num_classes)))


# full batches (12 images per domain): one step per epoch, few distinct compilations
BASE = VisionConfig(epochs=2, batch_size=12, width=2, hidden=8, eval_chunk=6)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_separate_networks_are_independent():
    data = synthetic_domains()
    other = synthetic_domains(seed=9)
    mixed = replace(data, x_train=np.stack([data.x_train[0], other.x_train[1]]))
    cfg = replace(BASE, mode="separate")
    a, b = train(data, cfg), train(mixed, cfg)
    # domain 0's network saw the same data and batches: identical; domain 1's did not
    np.testing.assert_array_equal(a.loss_history[:, 0], b.loss_history[:, 0])
    assert not np.array_equal(a.loss_history[:, 1], b.loss_history[:, 1])
    assert a.test_accuracy[0] == b.test_accuracy[0]


def test_consensus_on_identical_domains_equals_separate_full_batch():
    """With T identical domains and full batches, the pooled loss (1/T) Σ_t ℓ_t
    equals every ℓ_t: the consensus network is each separate network."""
    data = synthetic_domains(identical=True)
    cfg = BASE
    sep = train(data, replace(cfg, mode="separate"))
    con = train(data, replace(cfg, mode="consensus"))
    np.testing.assert_allclose(con.loss_history, sep.loss_history, rtol=1e-5)
    np.testing.assert_array_equal(con.test_accuracy, sep.test_accuracy)
    np.testing.assert_array_equal(con.parameter_distance, [0.0, 0.0])


@pytest.mark.parametrize("eps", [0.0, 0.05])
def test_parametric_iterates_are_feasible(eps):
    res = train(synthetic_domains(), replace(BASE, mode="parametric", eps=eps))
    assert np.all(res.parameter_distance <= eps + 1e-5)
    assert np.all(res.constraint_history <= eps + 1e-5)
    if eps == 0.0:  # ε = 0: one network
        np.testing.assert_array_equal(res.test_accuracy, res.global_test_accuracy)


def test_parametric_with_inactive_constraint_is_separate():
    data = synthetic_domains()
    sep = train(data, replace(BASE, mode="separate"))
    par = train(data, replace(BASE, mode="parametric", eps=1e6))
    np.testing.assert_allclose(par.loss_history, sep.loss_history, rtol=1e-5)
    np.testing.assert_allclose(par.parameter_distance, sep.parameter_distance, rtol=1e-4)


def initial_state(data, cfg):
    """The state an epoch-0 run starts from (the trainer's init, PRNGKey(seed) split)."""
    init_key, _ = jax.random.split(jax.random.PRNGKey(cfg.seed))
    return program_for(cfg, data).init(init_key, np.float32(cfg.eps))


def softmax_np(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def normalised_train_images(data, t):
    """Domain t's training images as the trainer feeds them: (x/255 − 0.5)/0.5, float32."""
    x = data.x_train[t, :data.n_train[t]].astype(np.float32) / 255.0
    return (x - 0.5) / 0.5, data.y_train[t, :data.n_train[t]]


@functools.lru_cache(maxsize=4)
def jitted_logits(model, width, hidden, num_classes):
    """The networks' logits f(θ, x), jitted once per model for the whole module."""
    cfg = VisionConfig(model=model, width=width, hidden=hidden)
    return jax.jit(make_classifier(cfg, num_classes).__call__)


def task_slice(tree, t):
    """Task t's network, sliced in NumPy (no per-leaf compilation)."""
    return jax.tree_util.tree_map(lambda leaf: np.asarray(leaf)[t], tree)


def softmax_l1_constraint(state, data, cfg):
    """(T,) ĝ_t = mean over domain t's training images of Σ_k |softmax(f_t) − softmax(f_g)|,
    in NumPy from the networks' logits."""
    logits = jitted_logits(cfg.model, cfg.width, cfg.hidden, data.num_classes)
    out = []
    for t in range(data.num_domains):
        x, _ = normalised_train_images(data, t)
        theta_t = task_slice(state.task_params, t)
        p_t = softmax_np(logits(theta_t, x))
        p_g = softmax_np(logits(state.global_params, x))
        out.append(np.mean(np.sum(np.abs(p_t - p_g), axis=-1)))
    return np.array(out)


@pytest.mark.parametrize("eps", [0.0, 0.005])
def test_functional_dual_ascent_per_epoch(eps):
    """λ after each epoch against Algorithm 2 replayed on constraints recomputed from the
    networks the epoch started from (full batch: one step per epoch, ĝ_e is evaluated at
    the parameters before the step): λ_e = [λ_{e−1} + η_D (ĝ_e − ε)]₊."""
    data = synthetic_domains()
    cfg = replace(BASE, mode="functional", eps=eps, dual_step_size=10.0)
    res = train(data, cfg)
    after_one = train(data, cfg, stop_after_epochs=1)
    starts = [initial_state(data, cfg), after_one.state]
    duals = np.zeros(data.num_domains)
    for e, start in enumerate(starts):
        g = softmax_l1_constraint(start, data, cfg)
        duals = np.maximum(duals + 10.0 * (g - eps), 0.0)
        np.testing.assert_allclose(res.dual_history[e], duals, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(res.constraint_history[e], g, rtol=1e-4, atol=1e-6)
    assert np.all(res.dual_history[-1] > 0)  # the constraints bind: λ moved


def test_parametric_epoch_is_an_adam_step_then_the_projection():
    """At an active ε, one full-batch epoch of parametric mode is one Adam step on every
    θ_t (from a fresh Adam state: Δ = −η m̂/(√v̂ + 1e−8) = −η g/(|g| + 1e−8)) followed by
    the projection of (θ_1..θ_T, θ_g) onto {‖θ_t − θ_g‖ ≤ ε} (w_g = 1), recomputed here."""
    import jax.numpy as jnp

    from cljax import project_cross_learning

    data = synthetic_domains()
    eps = 0.02
    cfg = replace(BASE, mode="parametric", eps=eps)
    res = train(data, cfg, stop_after_epochs=1)
    start = initial_state(data, cfg)
    classifier = make_classifier(cfg, data.num_classes)

    def loss(params, x, y):
        logits = classifier(params, x)
        logp = logits - jax.scipy.special.logsumexp(logits, axis=-1, keepdims=True)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))

    @jax.jit  # one compile for the whole reference step, both domains
    def adam_first_step(theta, x, y):
        grad = jax.grad(loss)(theta, x, y)
        return jax.tree_util.tree_map(
            lambda p, g: p - cfg.learning_rate * g / (jnp.abs(g) + 1e-8), theta, grad)

    moved = []
    for t in range(data.num_domains):
        x, y = normalised_train_images(data, t)
        moved.append(adam_first_step(task_slice(start.task_params, t), x, y))
    moved = jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *moved)
    distance = lambda a, b: np.sqrt(sum(  # noqa: E731
        np.sum((np.asarray(x) - np.asarray(y)[None]) ** 2, axis=tuple(range(1, x.ndim)))
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))))
    assert np.all(distance(moved, start.global_params) > 2 * eps)  # the step leaves the set
    expected = project_cross_learning(moved, start.global_params, eps, global_weight=1.0)
    for got, want in zip(leaves((res.state.task_params, res.state.global_params)),
                         leaves((expected.task_params, expected.global_params))):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-6)
    np.testing.assert_allclose(distance(res.state.task_params, res.state.global_params),
                               eps, rtol=1e-4)


def test_functional_with_inactive_constraint_trains_like_separate():
    """ε above the largest softmax-L1 distance (2): λ stays 0 and the task
    networks follow (1/T)·∇ℓ_t, which Adam (invariant to the gradient's scale up
    to its ε = 1e-8) turns into the separate steps."""
    data = synthetic_domains()
    fun = train(data, replace(BASE, mode="functional", eps=2.5))
    sep = train(data, replace(BASE, mode="separate"))
    np.testing.assert_array_equal(fun.dual_history, 0.0)
    np.testing.assert_allclose(fun.loss_history, sep.loss_history, rtol=1e-4)
    np.testing.assert_array_equal(fun.test_accuracy, sep.test_accuracy)


def epochs_run(log):
    return lambda epoch, epochs, info: log.append(epoch)


def test_checkpoint_resume_matches_uninterrupted(tmp_path):
    data = synthetic_domains()
    cfg = replace(BASE, mode="functional", eps=0.01)
    full = train(data, cfg)
    stopped = train(data, cfg, checkpoint_dir=tmp_path / "ck", stop_after_epochs=1)
    assert not stopped.finished and stopped.epochs_done == 1
    assert np.all(np.isnan(stopped.test_accuracy))
    ran = []
    resumed = train(data, cfg, checkpoint_dir=tmp_path / "ck", resume=True,
                    progress=epochs_run(ran))
    assert ran == [2]  # epoch 1 came from the checkpoint, not from training again
    assert resumed.finished and resumed.resumed_from_epoch == 1
    for name in ("test_accuracy", "global_test_accuracy", "test_constraint", "loss_history",
                 "constraint_history", "dual_history", "parameter_distance"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(full, name), err_msg=name)
    for a, b in zip(leaves(resumed.state), leaves(full.state)):
        np.testing.assert_array_equal(a, b)
    # a checkpoint holding other networks (and λ) gives another end: the state is read
    from cljax.experiments.vision.checkpoint import CheckpointStore

    perturbed = stopped.state._replace(
        task_params=jax.tree_util.tree_map(lambda p: 1.5 * p, stopped.state.task_params),
        duals=stopped.state.duals + 1.0)
    store = CheckpointStore(tmp_path / "ck2", cfg)
    store.save(1, perturbed)
    store.close()
    other = train(data, cfg, checkpoint_dir=tmp_path / "ck2", resume=True)
    assert other.resumed_from_epoch == 1
    np.testing.assert_array_equal(other.loss_history[0], full.loss_history[0])  # restored
    assert not np.allclose(other.loss_history[1], full.loss_history[1])
    assert not np.allclose(other.dual_history[1], full.dual_history[1])


def test_resume_with_more_epochs_continues_training(tmp_path):
    """A finished 1-epoch run resumed with epochs=2 trains epoch 2 only and ends where an
    uninterrupted 2-epoch run ends; fewer epochs or another field is refused."""
    data = synthetic_domains()
    cfg = replace(BASE, mode="separate")
    full = train(data, cfg)
    train(data, replace(cfg, epochs=1), checkpoint_dir=tmp_path / "ck")
    ran = []
    more = train(data, cfg, checkpoint_dir=tmp_path / "ck", resume=True, progress=epochs_run(ran))
    assert ran == [2] and more.resumed_from_epoch == 1
    for name in ("test_accuracy", "loss_history", "parameter_distance"):
        np.testing.assert_array_equal(getattr(more, name), getattr(full, name), err_msg=name)
    for a, b in zip(leaves(more.state), leaves(full.state)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"epochs: 2 -> 1"):
        train(data, replace(cfg, epochs=1), checkpoint_dir=tmp_path / "ck", resume=True)
    with pytest.raises(ValueError, match=r"width: 2 -> 3"):
        train(data, replace(cfg, width=3), checkpoint_dir=tmp_path / "ck", resume=True)


def test_checkpoint_misuse_is_refused(tmp_path):
    data = synthetic_domains()
    cfg = replace(BASE, mode="separate")
    train(data, cfg, checkpoint_dir=tmp_path / "ck")
    with pytest.raises(FileExistsError, match="resume=True"):
        train(data, cfg, checkpoint_dir=tmp_path / "ck")
    with pytest.raises(ValueError, match="another configuration"):
        train(data, replace(cfg, learning_rate=0.1), checkpoint_dir=tmp_path / "ck", resume=True)
    with pytest.raises(ValueError, match="needs checkpoint_dir"):
        train(data, cfg, resume=True)


@pytest.mark.parametrize("field,value,match", [
    ("mode", "joint", "mode must be one of"), ("eps", -1.0, "eps must be >= 0"),
    ("eps", float("nan"), "eps must be >= 0"), ("epochs", 0, "epochs must be a positive"),
    ("optimizer", "lbfgs", "optimizer"), ("learning_rate", 0.0, "learning_rate"),
])
def test_bad_configuration_is_named(field, value, match):
    with pytest.raises(ValueError, match=match):
        replace(BASE, **{field: value}).validate()
