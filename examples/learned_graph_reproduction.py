"""Reproduce the three claims of arXiv 2510.10570 on its synthetic design.

K agents on a random graph (Erdős–Rényi plus a ring), task parameters from the
graph's GMRF, W_o ~ N(0, L† ⊗ I_M), streaming element-wise linear regression
d = u ⊙ w_o + v with u ~ N(0, I), v ~ N(0, σ_v² I) (cljax.methods._learned_graph).

1. Laplacian error ‖L̂ − L‖_F/‖L‖_F against μ (log-log slope, fitted), for a
   plain GMRF draw and for an exactly whitened one (W_o W_oᵀ/M = L†).
2. Covariance error ‖QΣ̂Q − L†‖_F/‖L†‖_F against M at two step sizes: decay,
   then a floor set by μ (predicted floor ≈ P √(K−1)/‖L†‖_F, P the steady-state
   SGD variance).
3. MSD learning curves: non-cooperative, consensus, multitask with the true L,
   multitask with the learned L̂ (estimated from the non-cooperative iterate
   half-way through, then switched on).

Prints one JSON object; ``--plot FILE`` also saves a figure (needs matplotlib).

    python examples/learned_graph_reproduction.py [--quick] [--plot fig.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from cljax.experiments.compare import problems
from cljax.methods import learned_graph as lg
def laplacian_vs_step(key, k, m, sigma_v, mus, steps, exact):
    kl, kw, ks = jax.random.split(key, 3)
    lap = problems.random_graph_laplacian(kl, k, 0.3)
    w_true = problems.sample_gmrf(kw, lap, m, exact=exact)
    grad = lg.vmapped_gradient(lg.elementwise_regression_grad(1.0, sigma_v), w_true)

    def error(mu):
        n = int(np.ceil(steps / mu))  # the transient decays like (1 − 2μ)^i
        w, _ = jax.jit(lambda: lg.run_sgd(grad, jnp.zeros((k, m)), ks, mu, n))()
        return lg.laplacian_error(lg.estimate_laplacian(w), lap)

    errs = np.array([float(error(mu)) for mu in mus])
    slope = float(np.polyfit(np.log(mus), np.log(errs), 1)[0])
    return {"mu": [float(x) for x in mus], "laplacian_error": errs.tolist(), "slope": slope,
            "sampling_error_of_W_o": float(lg.laplacian_error(lg.estimate_laplacian(w_true), lap))}


def covariance_vs_m(key, k, ms, sigma_v, mus, steps):
    kl, kw, ks = jax.random.split(key, 3)
    lap = problems.random_graph_laplacian(kl, k, 0.3)
    target_norm = float(jnp.linalg.norm(lg.laplacian_pinv(lap)))
    out = {"M": list(ms), "mu": list(mus), "covariance_error": {}, "predicted_floor": {}}
    for mu in mus:
        errs = []
        for m in ms:
            w_true = problems.sample_gmrf(jax.random.fold_in(kw, m), lap, m)
            grad = lg.vmapped_gradient(lg.elementwise_regression_grad(1.0, sigma_v), w_true)
            n = int(np.ceil(steps / mu))
            w, _ = jax.jit(lambda g=grad, m=m: lg.run_sgd(g, jnp.zeros((k, m)), ks, mu, n))()
            errs.append(float(lg.covariance_error(lg.feature_covariance(w), lap)))
        p = float(lg.steady_state_variance(mu, 1.0, sigma_v))
        out["covariance_error"][str(mu)] = errs
        out["predicted_floor"][str(mu)] = p * np.sqrt(k - 1) / target_norm
    return out


def msd_curves(key, k, m, sigma_v, mu, steps, couplings):
    kl, kw, ks = jax.random.split(key, 3)
    lap = problems.random_graph_laplacian(kl, k, 0.3)
    w_true = problems.sample_gmrf(kw, lap, m)
    grad = lg.vmapped_gradient(lg.elementwise_regression_grad(1.0, sigma_v), w_true)
    w0 = jnp.zeros((k, m))
    half = steps // 2
    run = jax.jit(lambda l, eta, cons: lg.run_sgd(grad, w0, ks, mu, steps, l, eta, cons,
                                                  truth=w_true)[1].msd,
                  static_argnums=2)
    zero = jnp.zeros((k, k))
    curves = {"non_cooperative": run(zero, 0.0, False), "consensus": run(zero, 0.0, True)}
    # learned: the non-cooperative run up to step `half`, L̂ from that iterate, then multitask
    w_half, hist1 = jax.jit(lambda: lg.run_sgd(grad, w0, ks, mu, half, truth=w_true))()
    lap_hat = lg.estimate_laplacian(w_half)
    tail = max(steps // 5, 1)
    best = {}
    for name, l in (("multitask_true_L", lap), ("multitask_learned_L", lap_hat)):
        options = {}
        for eta in couplings:
            if name == "multitask_true_L":
                c = run(l, eta, False)
            else:
                _, h2 = jax.jit(lambda l=l, eta=eta: lg.run_sgd(
                    grad, w_half, jax.random.fold_in(ks, 1), mu, steps - half, l, eta,
                    truth=w_true))()
                c = jnp.concatenate([hist1.msd, h2.msd])
            options[eta] = c
        eta_best = min(options, key=lambda e: float(jnp.mean(options[e][-tail:])))
        curves[name] = options[eta_best]
        best[name] = eta_best
    steady = {n: float(jnp.mean(c[-tail:])) for n, c in curves.items()}
    return {"mu": mu, "steps": steps, "coupling_grid": list(couplings), "best_coupling": best,
            "steady_state_msd": steady,
            "steady_state_msd_db": {n: 10 * np.log10(v) for n, v in steady.items()},
            "laplacian_error_learned": float(lg.laplacian_error(lap_hat, lap)),
            "curves": {n: np.asarray(c)[:: max(steps // 200, 1)].tolist()
                       for n, c in curves.items()}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (for a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default=None)
    parser.add_argument("--msd-noise", type=float, nargs="+", default=[6.0, 10.0],
                        help="σ_v of the MSD experiment (one run each)")
    parser.add_argument("--only-msd", action="store_true")
    args = parser.parse_args(argv)
    key = jax.random.PRNGKey(args.seed)
    k = 10
    if args.quick:
        m_slope, ms, m_msd, steps_msd = 2000, [20, 200, 2000], 200, 2000
    else:
        m_slope, ms, m_msd, steps_msd = 10000, [10, 30, 100, 300, 1000, 3000, 10000], 500, 6000
    steps_slope = steps_cov = 8.0  # SGD steps = steps / μ: about 8 time constants
    start = time.perf_counter()
    out = {"K": k}
    mus = np.geomspace(0.001, 0.01, 4)
    if args.only_msd:
        out["msd"] = {str(sv): msd_curves(jax.random.fold_in(key, 3), k, m_msd, sv, 0.01,
                                          steps_msd, [0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0])
                      for sv in args.msd_noise}
        print(json.dumps(out))
        return
    print("1/3 Laplacian error vs mu", file=sys.stderr)
    out["laplacian_vs_mu"] = {
        "gmrf_draw": laplacian_vs_step(jax.random.fold_in(key, 1), k, m_slope, 3.0, mus,
                                       steps_slope, exact=False),
        "whitened_draw": laplacian_vs_step(jax.random.fold_in(key, 1), k, m_slope, 3.0, mus,
                                           steps_slope, exact=True),
        "M": m_slope, "sigma_v": 3.0}
    print("2/3 covariance error vs M", file=sys.stderr)
    out["covariance_vs_M"] = covariance_vs_m(jax.random.fold_in(key, 2), k, ms, 3.0,
                                             [0.002, 0.02], steps_cov)
    print("3/3 MSD learning curves", file=sys.stderr)
    out["msd"] = {str(sv): msd_curves(jax.random.fold_in(key, 3), k, m_msd, sv, 0.01,
                                      steps_msd, [0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0])
                  for sv in args.msd_noise}
    out["seconds"] = time.perf_counter() - start
    if args.plot:
        plot(out, args.plot)
    print(json.dumps(out))


def plot(out, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    for name, r in out["laplacian_vs_mu"].items():
        if isinstance(r, dict):
            ax[0].loglog(r["mu"], r["laplacian_error"], "o-", label=f"{name} (slope {r['slope']:.2f})")
    ax[0].set(xlabel="step size μ", ylabel="‖L̂ − L‖_F / ‖L‖_F")
    ax[0].legend()
    c = out["covariance_vs_M"]
    for mu, errs in c["covariance_error"].items():
        line, = ax[1].loglog(c["M"], errs, "o-", label=f"μ = {mu}")
        ax[1].axhline(c["predicted_floor"][mu], color=line.get_color(), ls=":")
    ax[1].set(xlabel="M", ylabel="‖QΣ̂Q − L†‖_F / ‖L†‖_F")
    ax[1].legend()
    sv = sorted(out["msd"])[0]
    for name, curve in out["msd"][sv]["curves"].items():
        ax[2].plot(10 * np.log10(np.asarray(curve)), label=name)
    ax[2].set_title(f"σ_v = {sv}")
    ax[2].set(xlabel="iteration (subsampled)", ylabel="MSD (dB)")
    ax[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
