"""``cljax compare``: every multi-task method on the same seeded benchmarks.

For each benchmark and seed the problem is drawn once; every method that
applies is fitted on the same training data (``jax.vmap`` over the seeds) and
scored by the excess test risk (1/T) Σ_t mean_i (f̂_t(x) − f_t(x))² against the
noiseless regression function.  The table (mean ± standard error over seeds)
is written as Markdown and CSV under ``--out``; ``--json`` prints it.
The ``seconds`` of a row is the wall time of one jitted, seed-vmapped fit *including
its jit compilation* (which dominates at these sizes; ``benchmarks/bench_compare.py``
times fits without it); the Markdown table shows it beside the error.

``--eps-curves`` runs instead the study of open question 1
(:mod:`cljax.experiments.compare.eps_curves`): test MSE against ε / ε_max for the
parametric and the functional constraint on the regression benchmarks, written as
eps_curves.md/.csv/.png under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import io
import os
import sys
import time

import numpy as np

from cljax.experiments._common import (UsageError, at_least_two, check_memory, positive_int,
                                       prepare_out_dir, seed, working_dtype)

OUTPUT_FILES = ("compare.md", "compare.csv")
EPS_CURVES_FILES = ("eps_curves.md", "eps_curves.csv", "eps_curves.png")


def _names(kind: str, valid):
    def parse(text):
        names = [n.strip() for n in text.split(",") if n.strip()]
        bad = [n for n in names if n not in valid]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(map(repr, bad)) or '(empty)'}; "
                f"choose from {', '.join(valid)}")
        return names
    return parse


def _fractions(text):
    """argparse type: comma-separated ε / ε_max, finite, increasing strictly from 0."""
    from cljax.experiments.compare.eps_curves import check_fractions

    try:
        return [float(v) for v in check_fractions([float(v) for v in text.split(",")])]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run_comparison(benchmarks, methods, seeds=5, seed=0, num_tasks=None, num_samples=None,
                   progress=None):
    """Rows {benchmark, method, mean, se, seeds, seconds} for every applicable pair.

    ``seconds``: wall time of the jitted fit vmapped over all seeds, compilation included.
    Raises ValueError for unknown names, seeds < 2 or a num_samples below what a
    method needs (:func:`cljax.multitask_interface.min_samples`).
    """
    import jax

    from cljax.experiments.compare import problems as bp
    from cljax.methods import _interface as mi
    for b in benchmarks:
        if b not in bp.BENCHMARKS:
            raise ValueError(f"unknown benchmark {b!r}; choose from {', '.join(bp.BENCHMARKS)}")
    for m in methods:
        if m not in mi.METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(mi.METHODS)}")
    if seeds < 2:
        raise ValueError(f"seeds must be >= 2 for a standard error, got {seeds}")
    sizes = {}
    if num_tasks is not None:
        sizes["num_tasks"] = num_tasks
    if num_samples is not None:
        sizes["num_samples"] = num_samples
    check_num_samples(benchmarks, methods, num_samples)
    rows = []
    for bi, name in enumerate(benchmarks):
        generator, kind = bp.BENCHMARKS[name]
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), bi), seeds)
        problems = jax.vmap(lambda k: generator(k, **sizes))(keys)
        for method in methods:
            if not mi.applies(method, kind):
                continue
            est = mi.get_estimator(method, kind)
            if progress:
                progress(f"{name}: {method} ({seeds} seeds)")

            def score(key, prob, est=est):
                params = est.fit_fn(key, prob.train.x, prob.train.y)
                return bp.excess_risk(est.predict_fn(params, prob.x_test), prob.f_test)

            fit_keys = jax.random.split(jax.random.fold_in(keys[0], 7), seeds)
            start = time.perf_counter()
            errors = np.asarray(jax.block_until_ready(jax.jit(jax.vmap(score))(fit_keys, problems)))
            seconds = time.perf_counter() - start
            rows.append({"benchmark": name, "method": method,
                         "mean": float(np.mean(errors)),
                         "se": float(np.std(errors, ddof=1) / np.sqrt(seeds)),
                         "seeds": seeds, "seconds": seconds})
    return rows


def check_num_samples(benchmarks, methods, num_samples=None) -> None:
    """Raise ValueError if N (``num_samples`` or a benchmark's default) is too small for a method."""
    from cljax.experiments.compare import problems as bp
    from cljax.methods import _interface as mi
    for name in benchmarks:
        generator, kind = bp.BENCHMARKS[name]
        n = (inspect.signature(generator).parameters["num_samples"].default
             if num_samples is None else num_samples)
        for m in methods:
            if mi.applies(m, kind) and n < mi.min_samples(m, kind):
                raise ValueError(f"method {m!r} on {name!r} needs at least "
                                 f"{mi.min_samples(m, kind)} samples per task (cross-validation "
                                 f"or a noise estimate), got {n}")


def markdown_table(rows, benchmarks, methods) -> str:
    """Methods × benchmarks, 'mean ± se (t s)', the best mean per benchmark in bold.

    t is the row's ``seconds``: the wall time of the seed-vmapped fit, compilation included.
    """
    cell = {(r["benchmark"], r["method"]): r for r in rows}
    best = {}
    for b in benchmarks:
        scored = [r for r in rows if r["benchmark"] == b]
        if scored:
            best[b] = min(scored, key=lambda r: r["mean"])["method"]
    lines = ["| method | " + " | ".join(benchmarks) + " |",
             "|---|" + "---|" * len(benchmarks)]
    for m in methods:
        cells = []
        for b in benchmarks:
            r = cell.get((b, m))
            if r is None:
                cells.append("n/a")
                continue
            text = f"{r['mean']:.4g} ± {r['se']:.2g}"
            text = f"**{text}**" if best.get(b) == m else text
            cells.append(f"{text} ({r['seconds']:.3g} s)")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def csv_text(rows) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["benchmark", "method", "mean", "se", "seeds",
                                             "seconds"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# Memory per element of the seed-vmapped data (x, y and the test set): the fits hold the
# data once per CV fold and grid point of the cross-validated methods (5 × 8), and more.
_WORK_COPIES = 64


def memory_estimate(benchmarks, seeds, num_tasks=None, num_samples=None, itemsize=4) -> float:
    """Bytes a comparison holds at its peak (estimate): ``seeds`` problems of each benchmark,
    x (T, N, p), y (T, N, d) and the test set (T, N_test, ·), ``_WORK_COPIES`` times."""
    from cljax.experiments.compare import problems as bp

    peak = 0.0
    for name in benchmarks:
        defaults = {k: v.default for k, v in
                    inspect.signature(bp.BENCHMARKS[name][0]).parameters.items()}
        t = defaults["num_tasks"] if num_tasks is None else num_tasks
        n = defaults["num_samples"] if num_samples is None else num_samples
        width = defaults.get("num_features", 1) + defaults.get("dim", 1) + 1
        rows = float(n) + defaults.get("num_test", 1)
        peak = max(peak, float(seeds) * t * rows * width * itemsize * _WORK_COPIES)
    return peak


def resolve_args(args) -> None:
    """Fill the defaults that depend on ``--eps-curves``; refuse options that do not mix.

    ``--benchmarks`` defaults to every benchmark (to the regression benchmarks with
    ``--eps-curves``); ``--methods`` to every method.
    """
    from cljax.experiments.compare import eps_curves as ec
    from cljax.experiments.compare.problems import BENCHMARKS
    from cljax.methods._interface import METHODS

    eps_curves = getattr(args, "eps_curves", False)
    if not eps_curves and getattr(args, "eps_fractions", None) is not None:
        raise UsageError("--eps-fractions: only with --eps-curves")
    if eps_curves:
        if args.methods is not None:
            raise UsageError("--methods: not used with --eps-curves (the study compares the "
                             "parametric and functional constraint forms)")
        regression = ec.regression_benchmarks()
        if args.benchmarks is None:
            args.benchmarks = regression
        bad = [b for b in args.benchmarks if b not in regression]
        if bad:
            raise UsageError(f"--benchmarks: --eps-curves runs on {', '.join(regression)} "
                             f"only, got {', '.join(bad)}")
        if args.eps_fractions is None:
            args.eps_fractions = list(ec.DEFAULT_FRACTIONS)
        args.methods = []
    else:
        args.benchmarks = list(BENCHMARKS) if args.benchmarks is None else args.benchmarks
        args.methods = list(METHODS) if args.methods is None else args.methods


def check_compare_args(args) -> None:
    """Every refusal before any work: sizes a method cannot use, memory, the output folder."""
    resolve_args(args)
    if getattr(args, "eps_curves", False):
        points = args.seeds * (len(args.eps_fractions) + 1)
        check_memory(memory_estimate(args.benchmarks, points, args.tasks, args.samples,
                                     working_dtype().itemsize),
                     "--seeds x --eps-fractions x --tasks x --samples")
        if args.out:
            prepare_out_dir(args.out, "--out", EPS_CURVES_FILES)
        return
    try:
        check_num_samples(args.benchmarks, args.methods, args.samples)
    except ValueError as err:
        raise UsageError(f"--samples: {err}") from None
    check_memory(memory_estimate(args.benchmarks, args.seeds, args.tasks, args.samples,
                                 working_dtype().itemsize), "--seeds x --tasks x --samples")
    if args.out:
        prepare_out_dir(args.out, "--out", OUTPUT_FILES)


def run(args) -> dict:
    check_compare_args(args)
    if args.eps_curves:
        return run_eps_curves(args)
    start = time.perf_counter()
    rows = run_comparison(args.benchmarks, args.methods, args.seeds, args.seed,
                          args.tasks, args.samples,
                          progress=lambda s: print(s, file=sys.stderr, flush=True))
    table = markdown_table(rows, args.benchmarks, args.methods)
    out = {"command": "compare", "metric": "excess test risk (mean ± s.e. over seeds)",
           "benchmarks": args.benchmarks, "methods": args.methods, "rows": rows,
           "markdown": table, "seconds": time.perf_counter() - start}
    if args.out:
        md, csv_path = (os.path.join(args.out, name) for name in OUTPUT_FILES)
        with open(md, "w") as f:
            f.write(f"{TABLE_CAPTION}\n\n{table}\n")
        with open(csv_path, "w") as f:
            f.write(csv_text(rows))
        out["files"] = [md, csv_path]
    return out


TABLE_CAPTION = ("Excess test risk, mean ± standard error over seeds (fit time: the "
                 "seed-vmapped fit's wall time, jit compilation included)")


def run_eps_curves(args) -> dict:
    """``--eps-curves``: the ε study of open question 1 (arguments already checked)."""
    from cljax.experiments.compare import eps_curves as ec

    start = time.perf_counter()
    study = ec.run_eps_curves(args.benchmarks, args.seeds, args.seed, args.tasks, args.samples,
                              args.eps_fractions,
                              progress=lambda s: print(s, file=sys.stderr, flush=True))
    rows, verdicts = ec.summarise(study)
    table = ec.markdown(rows, verdicts)
    out = {"command": "compare", "study": "eps_curves",
           "metric": "excess test risk (mean ± s.e. over seeds) at eps = fraction * eps_max",
           "benchmarks": args.benchmarks, "forms": list(ec.FORMS),
           "fractions": study["fractions"], "seeds": args.seeds, "rows": rows,
           "verdicts": verdicts,
           "errors": {b: {form: study["errors"][b, form].tolist()
                          for (bb, form) in study["errors"] if bb == b}
                      for b in args.benchmarks},
           "markdown": table, "seconds": time.perf_counter() - start}
    if args.out:
        md, csv_path, png = (os.path.join(args.out, name) for name in EPS_CURVES_FILES)
        with open(md, "w") as f:
            f.write(table + "\n")
        with open(csv_path, "w") as f:
            f.write(ec.csv_text(rows))
        out["files"] = [md, csv_path]
        try:
            ec.plot(rows, png)
            out["files"].append(png)
        except ImportError:  # matplotlib is optional (the "plot" extra)
            pass
    return out


def report(out: dict) -> None:
    if out.get("study") == "eps_curves":
        print(f"{out['markdown']}\n")
        for f in out.get("files", []):
            print(f"wrote {f}")
        print(f"({out['seconds']:.1f} s in all, jit compilation included)")
        return
    print(f"{TABLE_CAPTION}\n\n{out['markdown']}\n")
    for f in out.get("files", []):
        print(f"wrote {f}")
    print(f"({out['seconds']:.1f} s in all, jit compilation included)")


def add_parser(subparsers) -> None:
    from cljax.experiments.compare.problems import BENCHMARKS
    from cljax.methods._interface import METHODS

    p = subparsers.add_parser("compare", help="every multi-task method on shared benchmarks")
    p.add_argument("--benchmarks", type=_names("benchmark", list(BENCHMARKS)),
                   default=None, help="comma-separated; default all (with --eps-curves: the "
                   "regression benchmarks)")
    p.add_argument("--methods", type=_names("method", list(METHODS)), default=None,
                   help="comma-separated; default all")
    p.add_argument("--seeds", type=at_least_two, default=5,
                   help="number of seeds (>= 2, for a standard error)")
    p.add_argument("--seed", type=seed, default=0, help="PRNG seed, 0 <= seed < 2**32")
    p.add_argument("--tasks", type=positive_int, default=None,
                   help="override every benchmark's number of tasks T")
    p.add_argument("--samples", type=positive_int, default=None,
                   help="override every benchmark's samples per task N (cross-validated "
                   "methods need N >= 2)")
    p.add_argument("--out", default="cljax_compare", help="directory for compare.md/.csv "
                   "('' to write nothing)")
    p.add_argument("--eps-curves", action="store_true",
                   help="instead of the table: test MSE against eps / eps_max for the "
                   "parametric (ADMM / projected gradient) and functional (primal-dual) "
                   "constraints, written as eps_curves.md/.csv/.png under --out")
    p.add_argument("--eps-fractions", type=_fractions, default=None,
                   help="with --eps-curves: comma-separated eps / eps_max, increasing from 0 "
                   "(eps = inf is added); default 0,0.05,0.1,0.2,0.35,0.5,0.75,1")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run, report=report)
