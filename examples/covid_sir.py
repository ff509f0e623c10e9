"""Predict Argentina's Omicron peak from its first 10 days by cross-learning SIR models.

Research-code walk-through of the paper's Section VI-A (Figs 5 and 7):

1. load the shipped JHU CSSE data and the 15-country windows;
2. fit separate, consensus (the paper's count-weighted one and the normalised ε = 0
   limit) and cross-learning (ADMM) SIR models;
3. vmap the whole ADMM solve over a grid of ε (one jitted program);
4. plot the predictions and the peak error against ε.

    python examples/covid_sir.py [--num-eps 101] [--out covid_sir.png]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import cljax
from cljax.experiments.covid import cases as covid_data
from cljax.experiments.covid import sir
from cljax.experiments.covid import experiment as ce
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-eps", type=int, default=101)
    parser.add_argument("--n-train", type=int, default=10)
    parser.add_argument("--out", default="covid_sir.png")
    args = parser.parse_args(argv)

    # 1. Data: every country's window, cut after its peak; ARG is the target.
    windows = covid_data.build_windows()
    problem = ce.make_problem(windows, target="ARG", n_train=args.n_train)
    tasks = ce.task_arrays(problem)  # (T, ...) arrays: initial (s0, i0), observed i, weights
    print("countries:", " ".join(problem.iso_codes))

    # 2. The per-country loss as a residual, and the four estimators.
    fit = ce.SIRFit()  # daily RK4 (diffrax), LM prox with β, γ ≥ 0, authors' λ schedule
    separate = jax.jit(ce.fit_separate)(tasks)  # (T, 2), vmapped bounded LM
    # the paper's consensus: raw count residuals, no per-country normalisation
    consensus = jax.jit(ce.fit_consensus)(ce.count_task_arrays(problem))  # (2,)
    consensus_eps0 = jax.jit(ce.fit_consensus)(tasks)  # the normalised objective at ε = 0

    # Cross-learning is the core ADMM with the least-squares prox of that residual.
    admm = cljax.ADMM(fit.prox(problem.num_days, fit.prox_steps), schedule=fit.schedule)

    def solve(eps):
        state, _ = admm.run(separate, tasks, eps, fit.admm_iterations)
        return state.task_params  # (T, 2), feasible: ‖θ_t − θ_g‖ ≤ ε

    # 3. The whole ADMM solve, vmapped over ε, as one jitted program.
    grid = jnp.linspace(0.0, 1.0, args.num_eps)
    start = time.perf_counter()
    thetas = jax.block_until_ready(jax.jit(jax.vmap(solve))(grid))  # (E, T, 2)
    print(f"{args.num_eps} eps values x {fit.admm_iterations} ADMM iterations x "
          f"{len(problem.windows)} countries: {time.perf_counter() - start:.1f} s "
          "(compile included)")

    truth = ce.truth_fraction(problem)
    metrics = jax.vmap(lambda th: ce.peak_metrics(th, tasks, truth, problem.horizon))
    cl = metrics(thetas[:, 0])
    base = {name: ce.peak_metrics(th, tasks, truth, problem.horizon)
            for name, th in (("separate", separate[0]), ("consensus (paper)", consensus),
                             ("consensus (eps = 0)", consensus_eps0))}
    k = int(jnp.argmin(jnp.abs(grid - 0.1)))
    print(f"ARG at eps = {float(grid[k]):.2f}: beta, gamma = {np.round(thetas[k, 0], 4)}, "
          f"peak error {100 * float(cl.peak_error[k]):.2f}%, lag {int(cl.lag[k])} days")
    for name, m in base.items():
        print(f"{name}: peak error {100 * float(m.peak_error):.1f}%, lag {int(m.lag)} days")

    # 4. Plot: predictions at ε = 0.1, and the peak error against ε.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = problem.target
    days = 90
    curve = lambda th: np.asarray(sir.infected(th, tasks.initial[0], days)) * target.population  # noqa: E731
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    n = problem.n_train
    ax1.plot(range(n), target.infected[:n], "ko", label="train")
    ax1.plot(range(n, target.days), target.infected[n:], "o", mfc="none", c="gray",
             label="test")
    ax1.plot(curve(separate[0]), "C3--", label="separate")
    ax1.plot(curve(consensus), "C0-.", label="consensus (paper)")
    ax1.plot(curve(consensus_eps0), "C1:", label="consensus (eps = 0)")
    ax1.plot(curve(thetas[k, 0]), "C2-", label=f"cross-learning eps={float(grid[k]):.2f}")
    ax1.set_ylim(0, 1.5 * target.infected.max())
    ax1.set_xlabel("days from 2021-12-31")
    ax1.legend()
    ax2.semilogy(grid, 100 * np.maximum(cl.peak_error, 1e-6), "C2.-", label="cross-learning")
    for (name, m), style in zip(base.items(), ("C3--", "C0-.", "C1:")):
        ax2.axhline(100 * float(m.peak_error), color=style[:2], ls=style[2:], label=name)
    ax2.set_xlabel("eps")
    ax2.set_ylabel("ARG peak error (%)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
