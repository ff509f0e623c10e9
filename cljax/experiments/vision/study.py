"""The Figs 10–11 study: accuracy against ε for both cross-learning variants.

For every seed: separate, consensus, parametric cross-learning over an ε grid
and functional cross-learning over an ε grid, on the same data split and the
same initial networks.  Writes (into ``out_dir``):

* ``runs.csv`` — one row per (mode, ε, seed, domain): test accuracy of θ_t,
  of θ_g, test constraint value, ‖θ_t − θ_g‖;
* ``history.csv`` — one row per (mode, ε, seed, epoch, domain): training loss,
  constraint value, λ_t;
* ``summary.csv`` — mean accuracy over domains, then mean and standard
  deviation over seeds, per (mode, ε);
* ``figure.png`` — accuracy against ε (both variants, consensus and separate
  as levels with their spread), λ_t per epoch per domain, per-domain accuracy;
* ``runs/<name>.json`` and ``checkpoints/<name>/`` — for ``resume``;
* ``study.json`` — the data description and the base configuration, so that
  ``resume`` can refuse a folder written by another configuration.

Resuming (:func:`check_study_out`, before any work): every field of the data
description and of the configuration must be equal to the stored one, except
``epochs``, which may grow (the finished runs then continue training from their
last checkpoint).  Anything else is refused with the differing fields named.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from cljax.experiments._common import UsageError, mean_sd, pyplot
from cljax.experiments.vision.checkpoint import config_differences, describe_differences
from cljax.experiments.vision.training import TrainResult, VisionConfig, train


def run_name(mode: str, eps: float, seed: int) -> str:
    return f"{mode}_eps{eps:g}_seed{seed}" if mode in ("parametric", "functional") \
        else f"{mode}_seed{seed}"


def study_plan(seeds: Sequence[int], parametric_grid: Sequence[float],
               functional_grid: Sequence[float],
               baselines: Sequence[str] = ("separate", "consensus")
               ) -> list[tuple[str, float, int]]:
    """(mode, ε, seed) of every run: per seed, the baselines, then both ε grids."""
    plan = []
    for seed in seeds:
        plan += [(mode, 0.0, seed) for mode in baselines]
        plan += [("parametric", float(e), seed) for e in parametric_grid]
        plan += [("functional", float(e), seed) for e in functional_grid]
    return plan


STUDY_FILE = "study.json"
OUTPUT_FILES = ("runs.csv", "history.csv", "summary.csv", "summary.json", "figure.png",
                STUDY_FILE)


def _json(value):
    return json.loads(json.dumps(value))


def check_study_out(out_dir, base: VisionConfig, plan, data_config: dict | None = None,
                    resume: bool = False) -> set:
    """Check ``out_dir`` against the study about to run, before any work; write nothing.

    Without ``resume``, a folder that already holds a study is refused.  With
    ``resume``, the stored data description, base configuration and every stored
    run must be compatible (equal, except more ``epochs``).  Returns the names of
    the finished runs whose stored results are reused as they are.

    Raises:
      UsageError: naming the folder, the file and the differing fields.
    """
    out = Path(out_dir)
    for sub in ("runs", "checkpoints"):
        if (out / sub).exists() and not (out / sub).is_dir():
            raise UsageError(f"--out {out}: {sub} exists there and is not a directory")
    runs = sorted((out / "runs").glob("*.json")) if (out / "runs").is_dir() else []
    ckpts = sorted(p for p in (out / "checkpoints").iterdir()) \
        if (out / "checkpoints").is_dir() else []
    study_file = out / STUDY_FILE
    if not resume:
        if study_file.exists() or runs or ckpts:
            raise UsageError(f"--out {out} already holds a study; pass --resume to continue "
                             "it, or choose an empty folder")
        return set()
    if not study_file.exists():
        if runs or ckpts:
            raise UsageError(f"--resume: --out {out} holds runs but no {STUDY_FILE} (written "
                             "by an older cljax?), so their configuration cannot be checked")
        return set()
    try:
        saved = json.loads(study_file.read_text())
        saved_data, saved_base = saved["data"], saved["base"]
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f"--resume: {study_file} is not a study description ({err})") from None
    diff = config_differences(saved_data, _json(data_config or {}), growable=())
    diff.update(config_differences(saved_base, _base_record(base)))
    if diff:
        raise UsageError(f"--resume: --out {out} holds a study made with another "
                         f"configuration ({describe_differences(diff)}); use the same options "
                         "or another --out")
    reuse = set()
    for mode, eps, seed in plan:
        name = run_name(mode, eps, seed)
        now = _json(asdict(replace(base, mode=mode, eps=eps, seed=seed)))
        for path in (out / "runs" / f"{name}.json", out / "checkpoints" / name / "config.json"):
            if not path.exists():
                continue
            try:
                stored = json.loads(path.read_text())
                stored = stored["config"] if path.parent.name == "runs" else stored
            except (ValueError, KeyError, TypeError) as err:
                raise UsageError(f"--resume: cannot read {path} ({err})") from None
            diff = config_differences(stored, now)
            if diff:
                raise UsageError(f"--resume: {path} was made with another configuration "
                                 f"({describe_differences(diff)})")
            if path.parent.name == "runs" and stored == now:
                reuse.add(name)
    return reuse


def _base_record(base: VisionConfig) -> dict:
    record = _json(asdict(base))
    for name in ("mode", "eps", "seed"):
        record.pop(name)
    return record


def run_study(load_data: Callable[[int], object], base: VisionConfig, seeds: Sequence[int],
              parametric_grid: Sequence[float], functional_grid: Sequence[float],
              out_dir=None, resume: bool = False, mesh=None,
              progress: Callable[[str, int, int, dict], None] | None = None,
              on_run: Callable[[str, int, int], None] | None = None,
              data_config: dict | None = None,
              baselines: Sequence[str] = ("separate", "consensus")) -> dict:
    """Run the plan; ``load_data(seed)`` gives the data split of a seed.

    ``data_config`` describes the data (data set, domains, k, image size, ...); it is
    stored in ``out_dir/study.json`` and checked on ``resume`` (:func:`check_study_out`).
    """
    out = Path(out_dir) if out_dir is not None else None
    plan = study_plan(seeds, parametric_grid, functional_grid, baselines)
    if not plan:
        raise ValueError("the study plan is empty: give at least one seed and one mode")
    reuse = set()
    if out is not None:
        reuse = check_study_out(out, base, plan, data_config, resume)
        (out / "runs").mkdir(parents=True, exist_ok=True)
        (out / STUDY_FILE).write_text(json.dumps(
            {"data": _json(data_config or {}), "base": _base_record(base)}, indent=1))
    results: list[dict] = []
    data_cache: dict = {}
    for i, (mode, eps, seed) in enumerate(plan):
        name = run_name(mode, eps, seed)
        if on_run is not None:
            on_run(name, i, len(plan))
        done_file = out / "runs" / f"{name}.json" if out is not None else None
        if name in reuse:
            results.append(json.loads(done_file.read_text()))
            continue
        if seed not in data_cache:
            data_cache.clear()
            data_cache[seed] = load_data(seed)
        data = data_cache[seed]
        config = replace(base, mode=mode, eps=eps, seed=seed)
        ckpt = out / "checkpoints" / name if out is not None else None
        result: TrainResult = train(
            data, config, checkpoint_dir=ckpt, resume=resume, mesh=mesh,
            progress=None if progress is None else
            (lambda e, n, info, name=name: progress(name, e, n, info)))
        record = result.to_dict()
        record.update(mode=mode, eps=eps, seed=seed, name=name)
        if done_file is not None:
            done_file.write_text(json.dumps(record))
        results.append(record)
    summary = summarise(results)
    if out is not None:
        write_outputs(out, results, summary)
    return summary


def summarise(results: list[dict]) -> dict:
    """Per (mode, ε): mean/sd over seeds of the domain-averaged accuracy; the targets."""
    groups: dict = {}
    for r in results:
        groups.setdefault((r["mode"], r["eps"]), []).append(r)
    rows = []
    for (mode, eps), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        mean, sd = mean_sd([r["mean_accuracy"] for r in rs])
        per_domain = np.mean([r["test_accuracy"] for r in rs], axis=0).tolist()
        rows.append({"mode": mode, "eps": eps, "mean_accuracy": mean, "sd_accuracy": sd,
                     "num_seeds": len(rs), "per_domain_accuracy": per_domain,
                     "mean_final_dual": float(np.mean([r["dual_history"][-1] for r in rs])),
                     "seeds": sorted(r["seed"] for r in rs)})
    targets = check_targets(rows)
    _add_paired_margins(targets, results)
    return {"rows": rows, "domains": results[0]["domains"] if results else [],
            "targets": targets}


def _add_paired_margins(targets: dict, results: list[dict]) -> None:
    """Seed-paired margin of each variant's best ε over the better baseline:
    per seed, accuracy(best ε) − accuracy(better baseline); its mean and sd."""
    if targets["best_baseline"] is None:
        return
    baseline = targets["best_baseline"]
    by_key = {(r["mode"], r["eps"], r["seed"]): r["mean_accuracy"] for r in results}
    for mode in ("functional", "parametric"):
        if mode not in targets:
            continue
        eps = targets[mode]["best_eps"]
        margins = [acc - by_key[(baseline, 0.0, seed)]
                   for (m, e, seed), acc in by_key.items()
                   if m == mode and e == eps and (baseline, 0.0, seed) in by_key]
        if margins:
            mean, sd = mean_sd(margins)
            targets[mode].update(paired_margin_mean=mean, paired_margin_sd=sd,
                                 paired_margin_seeds=len(margins), paired_baseline=baseline)


def check_targets(rows: list[dict]) -> dict:
    """The issue's targets, each with the numbers it was judged on.

    A level or margin that needs a mode that did not run is ``None`` (strict JSON).
    """
    def level(mode):
        r = [x for x in rows if x["mode"] == mode]
        return r[0]["mean_accuracy"] if r else None

    sep, cons = level("separate"), level("consensus")
    both = sep is not None and cons is not None
    levels = {m: v for m, v in (("separate", sep), ("consensus", cons)) if v is not None}
    out = {"separate": sep, "consensus": cons,
           "consensus_beats_separate": bool(cons > sep) if both else None,
           "best_baseline": max(levels, key=levels.get) if levels else None}
    best_level = max(levels.values()) if levels else None
    for mode in ("functional", "parametric"):
        curve = sorted((x for x in rows if x["mode"] == mode), key=lambda x: x["eps"])
        if not curve:
            continue
        accs = [x["mean_accuracy"] for x in curve]
        best = int(np.argmax(accs))
        margin = None if best_level is None else accs[best] - best_level
        out[mode] = {
            "best_eps": curve[best]["eps"], "best_accuracy": accs[best],
            "margin_over_best_baseline": margin,
            "beats_both_by_2_points": bool(margin >= 0.02) if both else None,
            "rises_from_smallest_eps": bool(accs[best] > accs[0]),
            "falls_back_at_largest_eps": bool(accs[-1] < accs[best]),
            "largest_eps_minus_separate": None if sep is None else accs[-1] - sep,
        }
    return out


def write_outputs(out: Path, results: list[dict], summary: dict) -> None:
    with open(out / "runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mode", "eps", "seed", "domain", "test_accuracy", "global_test_accuracy",
                    "test_constraint", "parameter_distance", "seconds"])
        for r in results:
            for d, name in enumerate(r["domains"]):
                w.writerow([r["mode"], r["eps"], r["seed"], name, r["test_accuracy"][d],
                            r["global_test_accuracy"][d], r["test_constraint"][d],
                            r["parameter_distance"][d], r["seconds"]])
    with open(out / "history.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mode", "eps", "seed", "epoch", "domain", "train_loss", "constraint", "dual"])
        for r in results:
            for e, (loss, cons, dual) in enumerate(zip(r["loss_history"], r["constraint_history"],
                                                       r["dual_history"])):
                for d, name in enumerate(r["domains"]):
                    w.writerow([r["mode"], r["eps"], r["seed"], e + 1, name, loss[d], cons[d],
                                dual[d]])
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        domains = summary["domains"]
        w.writerow(["mode", "eps", "mean_accuracy", "sd_accuracy", "num_seeds"]
                   + [f"accuracy_{d}" for d in domains])
        for row in summary["rows"]:
            w.writerow([row["mode"], row["eps"], row["mean_accuracy"], row["sd_accuracy"],
                        row["num_seeds"]] + row["per_domain_accuracy"])
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    plot_study(out / "figure.png", results, summary)


def plot_study(path, results: list[dict], summary: dict) -> None:
    """Figs 10–11 shape: accuracy vs ε (2 panels), λ_t per epoch, per-domain accuracy."""
    plt = pyplot()

    rows = summary["rows"]
    domains = summary["domains"]
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    levels = {m: next((r for r in rows if r["mode"] == m), None)
              for m in ("separate", "consensus")}
    for ax, mode, unit in ((axes[0], "parametric", "ε (parameter distance)"),
                           (axes[1], "functional", "ε (mean softmax L1 distance)")):
        curve = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["eps"])
        if curve:
            eps = np.array([r["eps"] for r in curve])
            acc = np.array([r["mean_accuracy"] for r in curve])
            sd = np.array([r["sd_accuracy"] for r in curve])
            ax.errorbar(eps, acc, yerr=sd, marker="o", capsize=3, label=f"{mode} CL")
            for m, style in (("separate", "--"), ("consensus", ":")):
                lv = levels[m]
                if lv is not None:
                    ax.axhline(lv["mean_accuracy"], ls=style, color="k" if m == "separate"
                               else "tab:red", label=m)
                    ax.axhspan(lv["mean_accuracy"] - lv["sd_accuracy"],
                               lv["mean_accuracy"] + lv["sd_accuracy"], alpha=0.1,
                               color="k" if m == "separate" else "tab:red")
            if eps.min() >= 0 and np.all(eps > 0):
                ax.set_xscale("log")
            elif len(eps) > 1 and eps[1] > 0 and eps[-1] / eps[1] > 20:
                ax.set_xscale("symlog", linthresh=eps[1])
        ax.set_xlabel(unit)
        ax.set_ylabel("test accuracy (mean over domains)")
        ax.set_title(f"{mode} cross-learning")
        if curve:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)
    # duals per epoch per domain, functional at its smallest positive ε (where
    # constraints bind), first seed; line style per seed would crowd the panel
    positive = sorted({r["eps"] for r in results if r["mode"] == "functional" and r["eps"] > 0})
    runs = [r for r in results if r["mode"] == "functional" and positive
            and r["eps"] == positive[0]]
    ax = axes[2]
    if runs:
        duals = np.asarray(runs[0]["dual_history"])
        for d, name in enumerate(domains):
            ax.plot(np.arange(1, len(duals) + 1), duals[:, d], marker=".", label=name)
        ax.set_title(f"λ_t per epoch (functional, ε={positive[0]:g}, seed {runs[0]['seed']})")
        ax.legend(fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("dual variable λ_t")
    # per-domain accuracy bars
    ax = axes[3]
    present = {r["mode"] for r in rows}
    bars = [(m, None) for m in ("separate", "consensus") if m in present]
    for m in ("parametric", "functional"):
        b = summary["targets"].get(m, {}).get("best_eps")
        if b is not None:
            bars.append((m, b))
    width = 0.8 / len(bars)
    for j, (m, e) in enumerate(bars):
        row = next(r for r in rows if r["mode"] == m and (e is None or r["eps"] == e))
        label = m if e is None else f"{m} ε={e:g}"
        ax.bar(np.arange(len(domains)) + j * width, row["per_domain_accuracy"], width,
               label=label)
    ax.set_xticks(np.arange(len(domains)) + 0.4 - width / 2)
    ax.set_xticklabels(domains)
    ax.set_ylabel("test accuracy")
    ax.set_title("per-domain test accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
