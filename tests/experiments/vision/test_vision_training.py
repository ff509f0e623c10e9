"""The multi-domain trainer: its four modes against independent references,
and orbax checkpoints (a run stopped mid-way and resumed ends where an
uninterrupted run ends)."""

from dataclasses import replace

import jax
import numpy as np
import pytest

from cljax.experiments.vision.digits import stack_domains
from cljax.experiments.vision.training import VisionConfig, train

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


@pytest.mark.parametrize("eps", [0.0, 0.005])
def test_functional_dual_ascent_per_epoch(eps):
    cfg = replace(BASE, mode="functional", eps=eps, dual_step_size=10.0)
    res = train(synthetic_domains(), cfg)
    # λ_e = [λ_{e-1} + η_D (ĝ_e − ε)]₊ with ĝ_e the epoch's mean constraint (Algorithm 2)
    previous = np.zeros(2)
    for e in range(cfg.epochs):
        expected = np.maximum(previous + 10.0 * (res.constraint_history[e] - eps), 0.0)
        np.testing.assert_allclose(res.dual_history[e], expected, rtol=1e-5, atol=1e-7)
        previous = res.dual_history[e]
    assert np.all(res.constraint_history >= 0) and np.any(res.dual_history > 0)


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


def test_checkpoint_resume_matches_uninterrupted(tmp_path):
    data = synthetic_domains()
    cfg = replace(BASE, mode="functional", eps=0.01)
    full = train(data, cfg)
    stopped = train(data, cfg, checkpoint_dir=tmp_path / "ck", stop_after_epochs=1)
    assert not stopped.finished and stopped.epochs_done == 1
    assert np.all(np.isnan(stopped.test_accuracy))
    resumed = train(data, cfg, checkpoint_dir=tmp_path / "ck", resume=True)
    assert resumed.finished and resumed.resumed_from_epoch == 1
    for name in ("test_accuracy", "global_test_accuracy", "test_constraint", "loss_history",
                 "constraint_history", "dual_history", "parameter_distance"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(full, name), err_msg=name)
    for a, b in zip(leaves(resumed.state), leaves(full.state)):
        np.testing.assert_array_equal(a, b)


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
