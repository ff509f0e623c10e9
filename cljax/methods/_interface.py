"""One interface for multi-task estimators, and adapters for every method.

An estimator is a pair of pure functions on per-task arrays (leading task axis T):

    state = fit(key, x, y)        x: (T, N, p), y: (T, N) or (T, N, d)
    y_hat = predict(state, x)     x: (T, N', p) → (T, N') or (T, N', d)

so a whole study can be ``jax.vmap``-ed over seeds.  ``get_estimator(method,
kind)`` returns the adapter of a method for a problem kind (``"means"``,
``"linear"``, ``"nonlinear"``) and raises for a method that does not apply.

Hyper-parameters chosen by K-fold cross-validation (:func:`cross_validate`,
vmapped over the grid and the folds): ε of cross-learning (parametric and
functional) and the coupling η of the learned-graph method.  Folds split each
task's N samples by index (i mod K); a fit sees its fold through per-sample
weights, so every fit has the same shapes.  K is capped at N
(:func:`num_cv_folds`), so these methods need N ≥ 2 (see :func:`min_samples`).

Regularisation of every method (stated here so that no baseline hides one):
linear separate / consensus / learned graph use a ridge of 1e-3 (``_RIDGE``);
linear cross-learning starts ADMM from the ridge solution and then has no ridge;
every network (dual encoder, single-task, pooled, functional-CL MLP) is trained
with AdamW, learning rate 1e-2 and decoupled weight decay 3.0
(:class:`cljax.dual_encoder.DualEncoderConfig`, tuned on 3 seeds of the simulated
design); the linear functional-CL model uses Adam (no weight decay).

James–Stein is :func:`cljax.estimators.james_stein` with the pooled noise estimate.

The penalty family (``penalty``: FedProx / Ditto / pFedMe / MR-MTL's
min Σ_t L_t(θ_t) + (μ/2) Σ_t ‖θ_t − θ_g‖², solved exactly by
:func:`cljax.estimators.penalty_means` / :func:`cljax.estimators.penalty_least_squares`)
chooses μ by the same K-fold CV over μ = 2ā·{0, 10^-2 .. 10^2 (17 points, log), ∞},
ā the mean curvature of the task losses (1 for means, tr A_t / p for least squares), so
the grid spans separate (μ = 0) to consensus (μ = ∞); linear: ridge 1e-3 as separate.

Resilient cross-learning (``cl_resilient``, Hounie et al. 2023) relaxes ‖θ_t − θ_g‖² ≤ ε²
to ≤ ε² + u_t at cost α u_t²/2 and learns u_t with the primal-dual solver
(:func:`cljax.estimators.resilient_means` / :func:`cljax.estimators.resilient_least_squares`).
No search: base ε = 0 and the fixed rule α = 2ā/(S τ̂²) (:func:`cljax.estimators.resilient_alpha`),
τ̂² the estimated noise variance of a coordinate of a task's separate estimate (means: the
pooled within-task variance / N; linear: σ̂² tr(X_tᵀX_t)⁻¹/p averaged over tasks, σ̂² the
pooled residual variance of the separate fits with N − p degrees of freedom, at least 1);
linear: ridge 1e-3 as separate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax

from cljax.methods import _learned_graph as lg
from cljax.solvers._admm import ADMM, authors_schedule
from cljax._src.checks import task_count
from cljax.solvers._distances import l1_distance
from cljax.methods._dual_encoder import DualEncoderConfig
from cljax.methods import _dual_encoder as de
from cljax.estimators._means import consensus as consensus_means
from cljax.estimators._means import cross_learning as cross_learning_means
from cljax.estimators._means import sample_means
from cljax.estimators._means import james_stein
from cljax.estimators._penalty import (least_squares_terms, penalty_least_squares, penalty_means,
                                       resilient_alpha, resilient_least_squares, resilient_means)
from cljax.solvers._primal_dual import PrimalDual
from cljax.solvers._prox import QuadraticProx
from cljax._src.tree import per_task_distance


class MultiTaskEstimator(Protocol):
    name: str
    kind: str

    def fit(self, key, x, y) -> Any: ...

    def predict(self, state, x) -> jax.Array: ...


class Fitted(NamedTuple):
    params: Any
    num_tasks: int


@dataclass(frozen=True)
class Adapter:
    """A method's ``fit``/``predict`` for one problem kind, with input checks."""

    name: str
    kind: str
    fit_fn: Callable
    predict_fn: Callable

    def fit(self, key, x, y):
        t = check_task_data(x, y)
        return Fitted(self.fit_fn(key, jnp.asarray(x), jnp.asarray(y)), t)

    def predict(self, state: Fitted, x):
        x = jnp.asarray(x)
        if x.ndim != 3 or x.shape[0] != state.num_tasks:
            raise ValueError(f"{self.name}.predict: x must have shape (T, N, p) with the "
                             f"T = {state.num_tasks} tasks it was fitted on, got {x.shape}")
        return self.predict_fn(state.params, x)


# ---------------------------------------------------------------------------
# Cross-validation.

def check_task_data(x, y, name: str = "data") -> int:
    """Validate per-task arrays; returns T.  Mismatched task counts are named."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 3:
        raise ValueError(f"{name}.x must have shape (T, N, p), got {x.shape}")
    if y.ndim not in (2, 3):
        raise ValueError(f"{name}.y must have shape (T, N) or (T, N, d), got {y.shape}")
    t = task_count({"x": x, "y": y}, name)  # T agrees across x and y, T >= 1
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{name}: x has N = {x.shape[1]} samples per task but y has "
                         f"N = {y.shape[1]}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} needs at least one sample per task, got x {x.shape}")
    return t


def num_cv_folds(num_folds: int, num_samples: int) -> int:
    """min(K, N) folds; raises unless N ≥ 2 (one sample cannot be held out and fitted on)."""
    if num_samples < 2:
        raise ValueError(f"cross-validation needs at least 2 samples per task, got N = "
                         f"{num_samples}")
    return min(num_folds, num_samples)


def kfold_weights(num_tasks: int, num_samples: int, num_folds: int):
    """(K, T, N) training weights: sample i is held out in fold i mod K."""
    if num_folds < 2:
        raise ValueError(f"cross-validation needs num_folds >= 2, got {num_folds} "
                         "(a single fold leaves nothing to fit on)")
    if num_samples < num_folds:
        raise ValueError(f"cross-validation with {num_folds} folds needs at least "
                         f"{num_folds} samples per task, got N = {num_samples}")
    fold = jnp.arange(num_samples) % num_folds
    w = (fold[None, :] != jnp.arange(num_folds)[:, None]).astype(jnp.float32)
    return jnp.broadcast_to(w[:, None, :], (num_folds, num_tasks, num_samples))


def cross_validate(fit_predict, grid, x, y, num_folds: int = 5):
    """Pick the grid value with the least K-fold validation error.

    ``fit_predict(h, x, y, w) -> ŷ`` fits with per-sample weights w (T, N)
    and predicts at x.  Returns (best value, (G,) mean validation errors).
    A grid value whose error is NaN (a diverged fit) is never chosen.
    """
    weights = kfold_weights(x.shape[0], x.shape[1], num_folds).astype(x.dtype)

    def score(h, w):
        err = (fit_predict(h, x, y, w) - y) ** 2
        if err.ndim == 3:
            err = jnp.sum(err, axis=-1)
        held = 1.0 - w
        return jnp.sum(held * err) / jnp.sum(held)

    errors = jax.vmap(lambda h: jnp.mean(jax.vmap(lambda w: score(h, w))(weights)))(grid)
    return grid[jnp.argmin(jnp.where(jnp.isnan(errors), jnp.inf, errors))], errors


# ---------------------------------------------------------------------------
# Gaussian means (y: (T, N, d)); predictions broadcast the estimate over x.

def _broadcast(theta, x):
    return jnp.broadcast_to(theta[:, None, :], (x.shape[0], x.shape[1], theta.shape[-1]))


def _pooled_mean_variance(y):
    """s² = pooled within-task variance / N (variance of a sample-mean coordinate)."""
    t, n, d = y.shape
    resid = y - jnp.mean(y, axis=1, keepdims=True)
    return jnp.sum(resid**2) / (t * max(n - 1, 1) * d) / n


def _means_js_fit(key, x, y):
    if y.shape[1] < 2:
        raise ValueError("james_stein needs N >= 2 samples per task to estimate the noise")
    return james_stein(jnp.mean(y, axis=1), _pooled_mean_variance(y))


def _spread(theta):
    """max_t ‖θ_t − mean_t θ_t‖: the radius of a ball around the mean holding every task."""
    return jnp.max(per_task_distance(theta, jnp.mean(theta, axis=0)))


def _means_cl_fit(key, x, y, num_folds=5):
    means = jnp.mean(y, axis=1)
    grid = _spread(means) * jnp.array([0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0])

    def fit_predict(eps, x, y, w):
        return _broadcast(cross_learning_means(sample_means(y, w), eps), x)

    eps, _ = cross_validate(fit_predict, grid, x, y, num_cv_folds(num_folds, y.shape[1]))
    return cross_learning_means(means, eps)


def _penalty_grid(curvature, dtype):
    """μ = 2ā·{0, 10^-2 .. 10^2 (17, log), ∞}: separate .. consensus."""
    inner = jnp.logspace(-2.0, 2.0, 17, dtype=dtype)
    return 2.0 * curvature * jnp.concatenate([jnp.zeros((1,), dtype), inner,
                                              jnp.full((1,), jnp.inf, dtype)])


def _means_penalty_fit(key, x, y, num_folds=5):
    def fit_predict(mu, x, y, w):
        return _broadcast(penalty_means(sample_means(y, w), mu)[0], x)

    mu, _ = cross_validate(fit_predict, _penalty_grid(1.0, y.dtype), x, y,
                           num_cv_folds(num_folds, y.shape[1]))
    return penalty_means(jnp.mean(y, axis=1), mu)[0]


def _means_resilient_fit(key, x, y):
    if y.shape[1] < 2:
        raise ValueError("cl_resilient needs N >= 2 samples per task to estimate the noise")
    tau2 = jnp.maximum(_pooled_mean_variance(y), jnp.finfo(y.dtype).tiny)
    return resilient_means(jnp.mean(y, axis=1), resilient_alpha(tau2, y.shape[2]))[0]


# ---------------------------------------------------------------------------
# Linear regression (y: (T, N)).

_RIDGE = 1e-3


def weighted_least_squares(x, y, w, ridge=_RIDGE):
    """argmin_θ Σ_i w_i (x_iᵀθ − y_i)² / Σ w + ridge ‖θ‖² for one task."""
    sw = jnp.sum(w)
    a = (x * w[:, None]).T @ x / sw + ridge * jnp.eye(x.shape[1], dtype=x.dtype)
    return jnp.linalg.solve(a, (x * w[:, None]).T @ y / sw)


def _linear_separate(x, y, w):
    return jax.vmap(weighted_least_squares)(x, y, w)


def _linear_consensus(x, y, w):
    t, n, p = x.shape
    theta = weighted_least_squares(x.reshape(t * n, p), y.reshape(-1), w.reshape(-1))
    return jnp.broadcast_to(theta, (t, p))


def _linear_predict(theta, x):
    return jnp.einsum("tnp,tp->tn", x, theta)


def _weighted_loss(theta, data):
    x, y, w = data
    return jnp.sum(w * (x @ theta - y) ** 2) / jnp.sum(w)


_ADMM = ADMM(QuadraticProx(_weighted_loss), schedule=authors_schedule(), projection_max_iter=30)
_ADMM_STEPS = 100


def _linear_cl_parametric(x, y, w, eps):
    start = _linear_separate(x, y, w)
    state, _ = _ADMM.run(start, (x, y, w), eps, _ADMM_STEPS)
    return state.task_params


def _linear_cl_parametric_fit(key, x, y, num_folds=5):
    ones = jnp.ones(x.shape[:2], x.dtype)
    grid = _spread(_linear_separate(x, y, ones)) * jnp.array([0.0, 0.1, 0.25, 0.5, 0.75, 1.0])
    eps, _ = cross_validate(lambda e, x, y, w: _linear_predict(_linear_cl_parametric(x, y, w, e), x),
                            grid, x, y, num_cv_folds(num_folds, x.shape[1]))
    return _linear_cl_parametric(x, y, ones, eps)


def _linear_penalty_fit(key, x, y, num_folds=5):
    a, _ = least_squares_terms(x, y, ridge=_RIDGE)
    curvature = jnp.mean(jnp.trace(a, axis1=1, axis2=2)) / x.shape[2]

    def fit_predict(mu, x, y, w):
        return _linear_predict(penalty_least_squares(x, y, mu, w, _RIDGE)[0], x)

    mu, _ = cross_validate(fit_predict, _penalty_grid(curvature, x.dtype), x, y,
                           num_cv_folds(num_folds, x.shape[1]))
    return penalty_least_squares(x, y, mu, None, _RIDGE)[0]


def _linear_resilient_fit(key, x, y):
    t, n, p = x.shape
    a, _ = least_squares_terms(x, y, ridge=_RIDGE)
    theta = _linear_separate(x, y, jnp.ones((t, n), x.dtype))
    rss = jnp.sum(jnp.square(_linear_predict(theta, x) - y))
    sigma2 = rss / (t * max(n - p, 1))
    tau2 = sigma2 / n * jnp.mean(jnp.trace(jnp.linalg.inv(a), axis1=1, axis2=2)) / p
    tau2 = jnp.maximum(tau2, jnp.finfo(x.dtype).tiny)
    curvature = jnp.mean(jnp.trace(a, axis1=1, axis2=2)) / p
    return resilient_least_squares(x, y, resilient_alpha(tau2, p, curvature), ridge=_RIDGE)[0]


def _learned_graph_weighted(x, y, w, eta, num_steps=300):
    """fit_learned_graph_regression on weighted samples (weights scale rows)."""
    scale = jnp.sqrt(w * w.shape[1] / jnp.sum(w, axis=1, keepdims=True))
    return lg.fit_learned_graph_regression(x * scale[..., None], y * scale, eta,
                                           num_steps=num_steps)[0]


def _linear_learned_graph_fit(key, x, y, num_folds=5):
    grid = jnp.array([0.0, 0.01, 0.03, 0.1, 0.3, 1.0])
    eta, _ = cross_validate(lambda e, x, y, w: _linear_predict(_learned_graph_weighted(x, y, w, e), x),
                            grid, x, y, num_cv_folds(num_folds, x.shape[1]))
    return _learned_graph_weighted(x, y, jnp.ones(x.shape[:2], x.dtype), eta)


# ---------------------------------------------------------------------------
# Functional cross-learning (Algorithm 2) for a model apply_fn(params, x).

@dataclass(frozen=True)
class FunctionalCL:
    """P_CLF by :class:`cljax.primal_dual.PrimalDual`, ε by K-fold CV.

    The loss is the weighted squared error (weights select the fold); the
    constraint is the mean L1 distance between task and global outputs on all
    of the task's inputs (labels of held-out samples are never used).
    """

    init_fn: Callable  # key -> params of one model
    apply_fn: Callable  # (params, x (N, p)) -> (N,)
    learning_rate: float = 1e-2
    weight_decay: float = 0.0
    dual_step_size: float = 1.0
    num_steps: int = 500
    grid: tuple = (0.0, 0.1, 0.25, 0.5, 1.0)
    num_folds: int = 3

    def _solver(self):
        def loss(out, yw):
            return yw[:, 1] * (out - yw[:, 0]) ** 2 * yw.shape[0] / jnp.sum(yw[:, 1])

        opt = optax.adamw(self.learning_rate, weight_decay=self.weight_decay)
        return PrimalDual(self.apply_fn, loss, opt, self.dual_step_size, l1_distance, 1)

    def fit_weighted(self, key, x, y, w, eps):
        t = x.shape[0]
        kt, kg = jax.random.split(key)
        task = jax.vmap(self.init_fn)(jax.random.split(kt, t))
        glob = self.init_fn(kg)
        state, _ = self._solver().run(task, (x, jnp.stack([y, w], axis=-1)), eps,
                                      self.num_steps, glob)
        return state.task_params

    def predict(self, params, x):
        return jax.vmap(self.apply_fn)(params, x)

    def fit(self, key, x, y):
        ones = jnp.ones(x.shape[:2], x.dtype)
        scale = jnp.mean(jnp.abs(y - jnp.mean(y)))  # output scale for the ε grid
        grid = scale * jnp.asarray(self.grid, x.dtype)
        eps, _ = cross_validate(
            lambda e, x, y, w: self.predict(self.fit_weighted(key, x, y, w, e), x),
            grid, x, y, num_cv_folds(self.num_folds, x.shape[1]))
        return self.fit_weighted(key, x, y, ones, eps)


def _mlp(hidden=16):
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.tanh(nn.Dense(hidden)(x)))[:, 0]

    return MLP()


def _functional_cl_linear(num_features):
    return FunctionalCL(init_fn=lambda k: jnp.zeros((num_features,)),
                        apply_fn=lambda th, x: x @ th, learning_rate=0.05, num_steps=500)


def _functional_cl_mlp(num_features, config: DualEncoderConfig):
    mlp = _mlp(config.hidden[0])
    return FunctionalCL(init_fn=lambda k: mlp.init(k, jnp.zeros((1, num_features))),
                        apply_fn=mlp.apply, learning_rate=config.learning_rate,
                        weight_decay=config.weight_decay, num_steps=config.num_steps)


# ---------------------------------------------------------------------------
# Neural baselines share the dual encoder's training loop and sizes.

DUAL_ENCODER = DualEncoderConfig()
SINGLE_TASK = replace(DUAL_ENCODER, use_shared=False, lam_alpha=0.0)
POOLED = replace(DUAL_ENCODER, use_task=False, tie_heads=True)


def _neural(config):
    return (lambda key, x, y: de.fit(key, x, y, config)[0],
            lambda params, x: de.predict(params, x, config))


def _means(fit):
    return (fit, _broadcast)


def _linear(fit_weighted):
    return (lambda key, x, y: fit_weighted(x, y, jnp.ones(x.shape[:2], x.dtype)), _linear_predict)


def _functional(factory):
    def fit(key, x, y):
        return factory(x.shape[2]).fit(key, x, y)

    def predict(params, x):
        return factory(x.shape[2]).predict(params, x)

    return (fit, predict)


METHODS: dict[str, dict[str, tuple[Callable, Callable]]] = {
    "separate": {
        "means": _means(lambda k, x, y: jnp.mean(y, axis=1)),
        "linear": _linear(_linear_separate),
        "nonlinear": _neural(SINGLE_TASK),
    },
    "consensus": {
        "means": _means(lambda k, x, y: consensus_means(jnp.mean(y, axis=1))),
        "linear": _linear(_linear_consensus),
        "nonlinear": _neural(POOLED),
    },
    "james_stein": {"means": _means(_means_js_fit)},
    "cl_parametric": {
        "means": _means(_means_cl_fit),
        "linear": (_linear_cl_parametric_fit, _linear_predict),
    },
    "cl_functional": {
        "linear": _functional(_functional_cl_linear),
        "nonlinear": _functional(lambda p: _functional_cl_mlp(p, DUAL_ENCODER)),
    },
    "penalty": {
        "means": _means(_means_penalty_fit),
        "linear": (_linear_penalty_fit, _linear_predict),
    },
    "cl_resilient": {
        "means": _means(_means_resilient_fit),
        "linear": (_linear_resilient_fit, _linear_predict),
    },
    "learned_graph": {"linear": (_linear_learned_graph_fit, _linear_predict)},
    "dual_encoder": {
        "linear": _neural(DUAL_ENCODER),
        "nonlinear": _neural(DUAL_ENCODER),
    },
}
"""method → {problem kind → (fit(key, x, y), predict(params, x))}."""


def get_estimator(method: str, kind: str) -> Adapter:
    """The adapter of ``method`` for problems of ``kind``; clear errors otherwise."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    kinds = METHODS[method]
    if kind not in kinds:
        raise ValueError(f"method {method!r} does not apply to {kind!r} problems "
                         f"(it applies to: {', '.join(kinds)})")
    fit, predict = kinds[kind]
    return Adapter(method, kind, fit, predict)


def applies(method: str, kind: str) -> bool:
    """Whether ``method`` has an estimator for problems of ``kind`` ("means", "linear", ...)."""
    return kind in METHODS.get(method, {})


CROSS_VALIDATED = {("cl_parametric", "means"), ("cl_parametric", "linear"),
                   ("cl_functional", "linear"), ("cl_functional", "nonlinear"),
                   ("learned_graph", "linear"), ("penalty", "means"), ("penalty", "linear")}
"""(method, kind) pairs whose fit chooses a hyper-parameter by cross-validation."""


def min_samples(method: str, kind: str) -> int:
    """Fewest samples per task the adapter can fit: 2 for cross-validation and for a noise
    estimate (James–Stein, resilient cross-learning)."""
    noise = method in ("james_stein", "cl_resilient")
    return 2 if (method, kind) in CROSS_VALIDATED or noise else 1
