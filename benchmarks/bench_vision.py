"""Training-step throughput of T+1 stacked AlexNet-style networks.

Case ``cpu`` (default): the small model (32×32×3, 10 classes), T+1 = 4 networks.
  * one jitted step vmapped over the networks against a Python loop calling a
    jitted single-network step once per network (ratio loop/vmap);
  * the im2col convolution against ``lax.conv`` under vmap (ratio);
  * images/s of the vmapped step.
Case ``gpu``: the paper's network (224×224×3, 65 classes, 4,911,745 parameters),
  T+1 = 5 networks, vmapped step: images/s and model FLOP utilisation
  MFU = 3 × forward FLOPs per image × images/s / peak FLOP/s (``--peak-tflops``;
  H100 SXM: 67 dense FP32, 495 dense TF32, which XLA uses for float32 matmuls
  by default on that GPU).

Each case prints one JSON line with ``machine_info()``.

    python benchmarks/bench_vision.py                 # CPU case
    python benchmarks/bench_vision.py --case gpu      # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import optax

try:
    from _machine import machine_info
except ImportError:  # run as a module
    from benchmarks._machine import machine_info

from cljax.experiments.vision.models import (Classifier, alexnet_224, alexnet_small, count_parameters,
                                 flops_per_image, init_stacked)


def make_steps(classifier, optimizer):
    def loss(params, x, y):
        logits = classifier(params, x)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

    def one_step(params, opt_state, x, y):
        value, grads = jax.value_and_grad(loss)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    vmapped = jax.jit(jax.vmap(one_step))
    single = jax.jit(one_step)
    return vmapped, single


def timed(fn, repeats):
    jax.block_until_ready(fn())  # compile + warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(model, image_shape, networks, batch, repeats, compare_loop, compare_impl):
    optimizer = optax.adam(3e-3)
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (networks, batch) + image_shape)
    y = jax.random.randint(key, (networks, batch), 0, model.num_classes)
    out = {"networks": networks, "batch_per_network": batch, "image_shape": list(image_shape),
           "parameters_per_network": None, "forward_flops_per_image":
           flops_per_image(model, image_shape)}
    impls = ("im2col", "xla") if compare_impl else (model.conv_impl,)
    for impl in impls:
        clf = Classifier(model.clone(conv_impl=impl))
        params = init_stacked(clf, key, image_shape, networks, same_init=False)
        out["parameters_per_network"] = count_parameters(params) // networks
        opt_state = jax.vmap(optimizer.init)(params)
        vmapped, single = make_steps(clf, optimizer)
        t_vmap = timed(lambda: vmapped(params, opt_state, x, y), repeats)
        out[f"{impl}_vmapped_step_s"] = t_vmap
        out[f"{impl}_images_per_s"] = networks * batch / t_vmap
        if compare_loop:
            nets = [jax.tree_util.tree_map(lambda l, i=i: l[i], params) for i in range(networks)]
            states = [optimizer.init(p) for p in nets]

            def loop():
                return [single(p, s, x[i], y[i]) for i, (p, s) in enumerate(zip(nets, states))]

            t_loop = timed(loop, repeats)
            out[f"{impl}_python_loop_step_s"] = t_loop
            out[f"{impl}_loop_over_vmap_ratio"] = t_loop / t_vmap
    if compare_impl:
        out["xla_conv_over_im2col_ratio"] = out["xla_vmapped_step_s"] / out["im2col_vmapped_step_s"]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--width", type=int, default=8, help="small model width (cpu case)")
    parser.add_argument("--peak-tflops", type=float, nargs="+", default=[67.0, 495.0])
    args = parser.parse_args(argv)
    if args.case == "cpu":
        out = bench(alexnet_small(10, width=args.width, hidden=64), (32, 32, 3), 4,
                    args.batch or 20,
                    args.repeats, compare_loop=True, compare_impl=True)
        out["width"] = args.width
    else:
        out = bench(alexnet_224(65, conv_impl="xla"), (224, 224, 3), 5, args.batch or 64,
                    args.repeats, compare_loop=True, compare_impl=True)
        best = max(out["xla_images_per_s"], out["im2col_images_per_s"])
        achieved = 3 * out["forward_flops_per_image"] * best
        out["achieved_tflops"] = achieved / 1e12
        out["mfu"] = {f"peak_{p:g}_tflops": achieved / (p * 1e12) for p in args.peak_tflops}
    out["case"] = args.case
    out["machine"] = machine_info()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
