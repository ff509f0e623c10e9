"""Fit time of every multi-task method on the same problem sizes, side by side.

For each benchmark of ``cljax compare`` (default sizes), every applicable
method is jitted, fitted once to compile, then timed over ``--repeats`` fits of
one seed's data.  Prints ONE JSON line: per benchmark, per method, the median
fit seconds and the ratio to the fastest method on that benchmark.

    python benchmarks/bench_compare.py [--repeats 3] [--benchmarks ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax

try:
    from _machine import machine_info
except ImportError:  # run as a module
    from benchmarks._machine import machine_info

from cljax.experiments.compare import problems as bp
from cljax.methods import _interface as mi
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--benchmarks", nargs="+", default=list(bp.BENCHMARKS))
    args = parser.parse_args(argv)
    out = {"benchmark": "compare_fit_time", "repeats": args.repeats, "results": {}}
    for name in args.benchmarks:
        generator, kind = bp.BENCHMARKS[name]
        prob = generator(jax.random.PRNGKey(0))
        x, y = prob.train.x, prob.train.y
        res = {}
        for method in mi.METHODS:
            if not mi.applies(method, kind):
                continue
            fit = jax.jit(mi.get_estimator(method, kind).fit_fn)
            start = time.perf_counter()
            jax.block_until_ready(fit(jax.random.PRNGKey(1), x, y))
            compile_s = time.perf_counter() - start
            times = []
            for r in range(args.repeats):
                start = time.perf_counter()
                jax.block_until_ready(fit(jax.random.PRNGKey(2 + r), x, y))
                times.append(time.perf_counter() - start)
            res[method] = {"fit_s": statistics.median(times), "first_call_s": compile_s}
        fastest = min(r["fit_s"] for r in res.values())
        for r in res.values():
            r["ratio_to_fastest"] = r["fit_s"] / fastest
        out["results"][name] = {"shape_x": list(x.shape), "methods": res}
    out["machine"] = machine_info()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
