"""Open question 1: test MSE against ε for the parametric and the functional constraint.

For one benchmark of ``cljax compare`` and each constraint form, every seed's problem is
fitted at ε = f·ε_max for a grid of fractions f (and at ε = ∞, the separate fit), and
scored by the excess test risk that ``cljax compare`` uses:

* ``parametric``: P_CL, ‖θ_t − θ_g‖ ≤ ε (paper eq. 3).  Linear model: ADMM (Algorithm 1,
  :func:`cljax.methods._interface._linear_cl_parametric`, 100 iterations from the ridge
  fit).  MLP: projected AdamW (:class:`cljax.solvers.ProjectedGradient`, w_g = 1), every
  network started from one shared initialisation, so weight-space distances compare
  networks in the same basin.
* ``functional``: P_CLF, mean_i |f(x_ti, θ_t) − f(x_ti, θ_g)| ≤ ε (paper eq. 5), by the
  primal-dual solver (Algorithm 2, :class:`cljax.solvers.PrimalDual`) on the models of
  ``cl_functional`` (:func:`functional_solver`: the method of multipliers, which
  converges where ``cl_functional``'s plain ascent stalls).  Linear model: Adam,
  cosine-decayed, ``FUNCTIONAL_LINEAR_STEPS``; MLP: the same AdamW and steps as the
  parametric form, from the same shared start.

Comparable units.  ε_max is the radius at which a separate fit θ^S is feasible with θ_g
at the tasks' centre (θ^S: ridge-1e-3 least squares, the ``separate`` method, for the
linear model; the form's own ε = ∞ fit for the MLP):

    parametric:  ε_max = max_t ‖θ_t^S − mean_s θ_s^S‖,
    functional:  ε_max = max_t mean_i |f(x_ti, θ_t^S) − mean_s f(x_ti, θ_s^S)|,

so f = 0 is consensus and f = 1 the separate fit for both forms (for the MLP the mean of
the T networks' outputs is not itself a network, so f = 1 is separate only approximately).

Everything is pure and ``jax.jit``-ed, ``jax.vmap``-ed over seeds and over the ε grid.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

FORMS = ("parametric", "functional")
"""The two constraint forms."""

DEFAULT_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
"""ε / ε_max of the default grid (the separate limit ε = ∞ is always added)."""

KINDS = ("linear", "nonlinear")
"""Problem kinds the study applies to (the regression benchmarks)."""


FUNCTIONAL_LINEAR_STEPS = 20000
"""Primal-dual steps of the linear functional form, Adam with the learning rate of
``cl_functional`` (0.05) cosine-decayed to 5e-5.  The L1 constraint is nonsmooth and met
only slowly: on three graph_linear draws (T = 10, N = 20, p = 10) these settings gave test
MSEs within 2.1% of CVXPY's exact P_CLF solutions at ε = 0, 0.2 and 0.5 ε_max (θ within
0.09); a constant rate with plain ascent (``cl_functional``'s rule) was up to 60% above."""


class Form(NamedTuple):
    """One constraint form on one model.

    ``fit(key, x, y, eps) -> params`` (T tasks), ``predict(params, x) -> (T, N)``,
    ``separate(key, x, y) -> params`` the separate fit that sets the unit, and
    ``eps_max(params, x)`` the radius at which those ``params`` are feasible.
    """

    fit: Callable
    predict: Callable
    separate: Callable
    eps_max: Callable


def output_spread(apply_fn, params, x):
    """max_t mean_i |f(x_ti, θ_t) − (1/T) Σ_s f(x_ti, θ_s)|: the functional ε_max.

    Args:
      apply_fn: ``apply_fn(params_of_one_model, x (N, p)) -> (N,)``.
      params: T models (leading task axis).
      x: (T, N, p) inputs.
    Returns:
      A scalar.
    """
    # outs[s, t, i] = f(x_ti, θ_s)
    outs = jax.vmap(lambda p: jax.vmap(lambda xt: apply_fn(p, xt))(x))(params)
    own = jnp.diagonal(outs, axis1=0, axis2=1).T  # (T, N): f(x_ti, θ_t)
    return jnp.max(jnp.mean(jnp.abs(own - jnp.mean(outs, axis=0)), axis=1))


def param_spread(params):
    """max_t ‖θ_t − (1/T) Σ_s θ_s‖ over a pytree of T models: the parametric ε_max."""
    from cljax._src.tree import per_task_distance

    return jnp.max(per_task_distance(params, jax.tree_util.tree_map(
        lambda a: jnp.mean(a, axis=0), params)))


def functional_solver(apply_fn, optimizer):
    """:class:`cljax.solvers.PrimalDual` for P_CLF with the squared-error loss, the L1
    output distance and the default method of multipliers (ρ = 1, a dual step every step).

    ``cl_functional``'s rule (plain ascent η_D = 1, constant-rate Adam) does not solve
    P_CLF: run for 3000 steps on graph_linear, its interior solutions were 0.4–0.9 away from
    CVXPY's in θ and their test MSE up to 60% above the exact solution's, which would make
    the functional form look worse than it is.
    """
    from cljax.solvers import PrimalDual

    return PrimalDual(apply_fn, lambda out, y: (out - y) ** 2, optimizer)


def _linear_forms(num_features: int) -> dict[str, Form]:
    from cljax.methods import _interface as mi

    def parametric(key, x, y, eps):
        return mi._linear_cl_parametric(x, y, jnp.ones(x.shape[:2], x.dtype), eps)

    import optax

    model = mi._functional_cl_linear(num_features)
    schedule = optax.cosine_decay_schedule(model.learning_rate, FUNCTIONAL_LINEAR_STEPS, 1e-3)
    solver = functional_solver(model.apply_fn, optax.adam(schedule))

    def functional(key, x, y, eps):
        zero = jnp.zeros((num_features,), x.dtype)
        state, _ = solver.run(jnp.zeros((x.shape[0], num_features), x.dtype), (x, y), eps,
                              FUNCTIONAL_LINEAR_STEPS, zero)
        return state.task_params

    def separate(key, x, y):
        return mi._linear_separate(x, y, jnp.ones(x.shape[:2], x.dtype))

    return {
        "parametric": Form(parametric, mi._linear_predict, separate,
                           lambda p, x: param_spread(p)),
        "functional": Form(functional, model.predict, separate,
                           lambda p, x: output_spread(model.apply_fn, p, x)),
    }


def _cast(params, dtype):
    """flax initialises in float32; the study runs in the data's dtype."""
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)


def _mlp_forms(num_features: int) -> dict[str, Form]:
    import optax

    from cljax._src.tree import broadcast_global
    from cljax.methods import _interface as mi
    from cljax.solvers import ProjectedGradient

    config = mi.DUAL_ENCODER
    model = mi._functional_cl_mlp(num_features, config)

    def loss(params, data):
        x, y = data
        return jnp.mean((model.apply_fn(params, x) - y) ** 2)

    adamw = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    solver = ProjectedGradient(loss, adamw, global_weight=1.0)
    primal_dual = functional_solver(model.apply_fn, adamw)

    def parametric(key, x, y, eps):
        start = _cast(model.init_fn(key), x.dtype)  # one start for every task and θ_g
        tasks = broadcast_global(start, x.shape[0])
        state, _ = solver.run(tasks, (x, y), eps, config.num_steps, start)
        return state.task_params

    def functional(key, x, y, eps):
        start = _cast(model.init_fn(key), x.dtype)  # the same shared start as parametric
        state, _ = primal_dual.run(broadcast_global(start, x.shape[0]), (x, y), eps,
                                   config.num_steps, start)
        return state.task_params

    return {
        "parametric": Form(parametric, model.predict,
                           lambda key, x, y: parametric(key, x, y, jnp.inf),
                           lambda p, x: param_spread(p)),
        "functional": Form(functional, model.predict,
                           lambda key, x, y: functional(key, x, y, jnp.inf),
                           lambda p, x: output_spread(model.apply_fn, p, x)),
    }


def forms(kind: str, num_features: int) -> dict[str, Form]:
    """The two forms for a problem ``kind``: the linear model for ``"linear"``, the
    ``cl_functional`` MLP (16 tanh units, AdamW lr 1e-2, weight decay 3, 1000 steps) for
    ``"nonlinear"``."""
    if kind == "linear":
        return _linear_forms(num_features)
    if kind == "nonlinear":
        return _mlp_forms(num_features)
    raise ValueError(f"eps curves apply to {' and '.join(KINDS)} problems, got {kind!r}")


def curve(form: Form, key, problem, fractions):
    """One seed: excess test risk at ε = f·ε_max for every fraction f, then at ε = ∞.

    Returns (errors (F + 1,), ε_max).
    """
    from cljax.experiments.compare.problems import excess_risk

    x, y = problem.train
    eps_max = form.eps_max(form.separate(key, x, y), x)
    grid = jnp.append(fractions * eps_max, jnp.inf)
    params = jax.vmap(lambda e: form.fit(key, x, y, e))(grid)
    errors = jax.vmap(lambda p: excess_risk(form.predict(p, problem.x_test), problem.f_test))(params)
    return errors, eps_max


def check_fractions(fractions) -> np.ndarray:
    """A non-empty, strictly increasing grid of finite fractions ≥ 0 starting at 0."""
    f = np.asarray(fractions, float)
    if f.ndim != 1 or f.size < 2:
        raise ValueError(f"fractions must be a 1-D grid of at least 2 values, got {fractions!r}")
    if not np.all(np.isfinite(f)) or f[0] != 0.0 or np.any(np.diff(f) <= 0):
        raise ValueError(f"fractions must be finite, start at 0 and increase strictly "
                         f"(ε = ∞ is always added), got {[float(v) for v in f]}")
    return f


def run_eps_curves(benchmarks, seeds=5, seed=0, num_tasks=None, num_samples=None,
                   fractions=DEFAULT_FRACTIONS, form_names=FORMS, progress=None) -> dict:
    """Test MSE against ε / ε_max for both forms on the regression benchmarks.

    Seeds and problems are those of a default ``cljax compare`` run (all benchmarks) with
    the same ``--seed`` and ``--seeds``.

    Returns {"fractions": (F,) list, "errors": {(benchmark, form): (seeds, F + 1) array,
    last column ε = ∞}, "eps_max": {(benchmark, form): (seeds,) array},
    "seconds": {(benchmark, form): wall time of the jitted, vmapped study incl. compilation}}.
    """
    import time

    from cljax.experiments.compare import problems as bp

    f = check_fractions(fractions)
    if seeds < 2:
        raise ValueError(f"seeds must be >= 2 for a standard error, got {seeds}")
    for b in benchmarks:
        if b not in bp.BENCHMARKS or bp.BENCHMARKS[b][1] not in KINDS:
            raise ValueError(f"eps curves run on the regression benchmarks "
                             f"({', '.join(regression_benchmarks())}), got {b!r}")
    bad = [n for n in form_names if n not in FORMS]
    if bad or not form_names:
        raise ValueError(f"unknown form(s) {bad}; choose from {', '.join(FORMS)}")
    sizes = {k: v for k, v in (("num_tasks", num_tasks), ("num_samples", num_samples))
             if v is not None}
    out = {"fractions": [float(v) for v in f], "errors": {}, "eps_max": {}, "seconds": {}}
    for name in benchmarks:
        generator, kind = bp.BENCHMARKS[name]
        bi = list(bp.BENCHMARKS).index(name)  # the problems of a default `cljax compare`
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), bi), seeds)
        problems = jax.vmap(lambda k: generator(k, **sizes))(keys)
        fit_keys = jax.random.split(jax.random.fold_in(keys[0], 7), seeds)
        grid = jnp.asarray(f, problems.train.x.dtype)
        available = forms(kind, problems.train.x.shape[-1])
        for form_name in form_names:
            if progress:
                progress(f"{name}: {form_name} ({seeds} seeds x {len(f) + 1} eps)")
            form = available[form_name]
            study = jax.jit(jax.vmap(lambda k, p, form=form: curve(form, k, p, grid)))
            start = time.perf_counter()
            errors, eps_max = jax.block_until_ready(study(fit_keys, problems))
            out["seconds"][name, form_name] = time.perf_counter() - start
            out["errors"][name, form_name] = np.asarray(errors, float)
            out["eps_max"][name, form_name] = np.asarray(eps_max, float)
    return out


def regression_benchmarks() -> list[str]:
    """Benchmarks of ``cljax compare`` whose kind the study applies to."""
    from cljax.experiments.compare import problems as bp

    return [b for b, (_, kind) in bp.BENCHMARKS.items() if kind in KINDS]


def summarise(study: dict) -> tuple[list[dict], list[dict]]:
    """Rows per (benchmark, form, ε point) and one verdict per (benchmark, form).

    Row: {benchmark, form, fraction (inf for the separate limit), eps (mean over seeds),
    mean, se, seeds}; se is s/√n with ddof 1.

    Verdict: the interior fraction f* (0 < f < ∞) with the least mean MSE, and the paired
    differences MSE(f*) − MSE(0) and MSE(f*) − MSE(∞) over seeds with 95% t intervals
    (n − 1 degrees of freedom).  "interior minimum below both limits" when both intervals
    lie below 0.  The functional verdict also has ``minus_parametric``: MSE_functional(f*)
    − MSE_parametric(f*), each at its own f*, paired.  f* is chosen on the same seeds, so the differences are optimistic by
    the selection (a winner's curse, small when the curve is smooth).
    """
    from scipy.stats import t as student_t

    from cljax.experiments._common import mean_se

    fractions = list(study["fractions"]) + [float("inf")]
    rows, verdicts = [], []
    for (bench, form), errors in study["errors"].items():
        n = errors.shape[0]
        eps_max = study["eps_max"][bench, form]
        mean, se = mean_se(errors)
        for j, frac in enumerate(fractions):
            rows.append({"benchmark": bench, "form": form, "fraction": frac,
                         "eps": float(np.mean(frac * eps_max)) if np.isfinite(frac) else frac,
                         "mean": float(mean[j]), "se": float(se[j]), "seeds": n})
        interior = np.arange(1, len(fractions) - 1)
        best = int(interior[np.argmin(mean[interior])])
        q = float(student_t.ppf(0.975, n - 1))
        diffs = {}
        for label, col in (("consensus", 0), ("separate", len(fractions) - 1)):
            d_mean, d_se = mean_se(errors[:, best] - errors[:, col])
            diffs[label] = {"mean": float(d_mean), "se": float(d_se),
                            "ci95": [float(d_mean - q * d_se), float(d_mean + q * d_se)]}
        below = {k: v["ci95"][1] < 0 for k, v in diffs.items()}
        if all(below.values()):
            verdict = "interior minimum below both limits"
        elif below["consensus"]:
            verdict = "below consensus only (not below separate)"
        elif below["separate"]:
            verdict = "below separate only (not below consensus)"
        else:
            verdict = "no interior minimum resolved below either limit"
        verdicts.append({"benchmark": bench, "form": form, "best_fraction": fractions[best],
                         "best": {"mean": float(mean[best]), "se": float(se[best])},
                         "consensus": {"mean": float(mean[0]), "se": float(se[0])},
                         "separate": {"mean": float(mean[-1]), "se": float(se[-1])},
                         "minus_consensus": diffs["consensus"],
                         "minus_separate": diffs["separate"],
                         "eps_max": {"mean": float(np.mean(eps_max)),
                                     "se": float(mean_se(eps_max)[1])},
                         "seconds": float(study["seconds"][bench, form]),
                         "seeds": n, "verdict": verdict})
    # the two forms against each other, each at its own f*, paired over seeds
    best = {(v["benchmark"], v["form"]): fractions.index(v["best_fraction"]) for v in verdicts}
    for v in verdicts:
        b = v["benchmark"]
        if v["form"] == "functional" and (b, "parametric") in best:
            d = (study["errors"][b, "functional"][:, best[b, "functional"]]
                 - study["errors"][b, "parametric"][:, best[b, "parametric"]])
            d_mean, d_se = mean_se(d)
            q = float(student_t.ppf(0.975, d.shape[0] - 1))
            v["minus_parametric"] = {"mean": float(d_mean), "se": float(d_se),
                                     "ci95": [float(d_mean - q * d_se),
                                              float(d_mean + q * d_se)]}
    return rows, verdicts


def _fmt(m, se):
    return f"{m:.4g} ± {se:.2g}"


def markdown(rows, verdicts) -> str:
    """Two tables: MSE (mean ± se) per ε / ε_max, then the verdict per benchmark and form."""
    fractions = []
    for r in rows:
        if r["fraction"] not in fractions:
            fractions.append(r["fraction"])
    head = ["benchmark", "form"] + ["∞ (separate)" if not np.isfinite(f) else
                                    ("0 (consensus)" if f == 0 else f"{f:g}") for f in fractions]
    lines = ["Excess test risk (mean ± s.e. over seeds) at ε = f · ε_max", "",
             "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    cell = {(r["benchmark"], r["form"], r["fraction"]): r for r in rows}
    for v in verdicts:
        b, form = v["benchmark"], v["form"]
        cells = []
        for f in fractions:
            text = _fmt(cell[b, form, f]["mean"], cell[b, form, f]["se"])
            cells.append(f"**{text}**" if f == v["best_fraction"] else text)
        lines.append(f"| {b} | {form} | " + " | ".join(cells) + " |")
    lines += ["", "Interior minimum f* against the two limits (paired over seeds, 95% t interval)",
              "", "| benchmark | form | f* | MSE(f*) | MSE(f*) − consensus | MSE(f*) − separate "
              "| ε_max | time (s) | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        dc, ds = v["minus_consensus"], v["minus_separate"]
        lines.append(
            f"| {v['benchmark']} | {v['form']} | {v['best_fraction']:g} | "
            f"{_fmt(v['best']['mean'], v['best']['se'])} | "
            f"{dc['mean']:.3g} [{dc['ci95'][0]:.3g}, {dc['ci95'][1]:.3g}] | "
            f"{ds['mean']:.3g} [{ds['ci95'][0]:.3g}, {ds['ci95'][1]:.3g}] | "
            f"{_fmt(v['eps_max']['mean'], v['eps_max']['se'])} | {v['seconds']:.1f} | "
            f"{v['verdict']} |")
    paired = [v for v in verdicts if "minus_parametric" in v]
    if paired:
        lines += ["", "Functional against parametric, each at its own f* (paired, 95% t interval)",
                  "", "| benchmark | MSE_functional(f*) − MSE_parametric(f*) |", "|---|---|"]
        for v in paired:
            d = v["minus_parametric"]
            lines.append(f"| {v['benchmark']} | {d['mean']:.3g} ± {d['se']:.2g} "
                         f"[{d['ci95'][0]:.3g}, {d['ci95'][1]:.3g}] |")
    return "\n".join(lines)


def csv_text(rows) -> str:
    """The rows as CSV (the separate limit has fraction and eps ``inf``)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["benchmark", "form", "fraction", "eps", "mean",
                                             "se", "seeds"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def plot(rows, path) -> None:
    """MSE ± se against ε / ε_max, one panel per benchmark, one line per form; the
    separate limit (ε = ∞) drawn as a dashed level."""
    from cljax.experiments._common import pyplot

    plt = pyplot()
    benches = list(dict.fromkeys(r["benchmark"] for r in rows))
    fig, axes = plt.subplots(1, len(benches), figsize=(5 * len(benches), 3.8), squeeze=False)
    for ax, b in zip(axes[0], benches):
        for k, form in enumerate(dict.fromkeys(r["form"] for r in rows if r["benchmark"] == b)):
            sel = [r for r in rows if r["benchmark"] == b and r["form"] == form]
            pts = [r for r in sel if np.isfinite(r["fraction"])]
            x = [r["fraction"] for r in pts]
            m = np.array([r["mean"] for r in pts])
            s = np.array([r["se"] for r in pts])
            line, = ax.plot(x, m, "o-", label=form, color=f"C{k}")
            ax.fill_between(x, m - s, m + s, alpha=0.2, color=line.get_color())
            sep = [r for r in sel if not np.isfinite(r["fraction"])][0]
            ax.axhline(sep["mean"], ls="--", lw=1, color=line.get_color(),
                       label=f"{form}, ε = ∞")
        ax.set_title(b)
        ax.set_xlabel("ε / ε_max  (0: consensus, 1: separate fit feasible)")
        ax.set_ylabel("excess test risk")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
