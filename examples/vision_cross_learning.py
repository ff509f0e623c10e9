"""Cross-learning three digit domains (UCI 8x8, MNIST, MNIST-M) from 20 images per class.

Trains separate, consensus, parametric and functional cross-learning networks
(the small AlexNet-style model, 32x32x3) with the Python API and prints the
per-domain test accuracy and the functional run's dual variables per epoch.
The full study with ε grids, seeds, CSV and figure is ``cljax vision --out DIR``.

    python examples/vision_cross_learning.py [--epochs 30] [--seed 0]
"""

import argparse
from dataclasses import replace

import numpy as np

from cljax.experiments.vision.digits import load_digits
from cljax.experiments.vision.cli import DEFAULT_DUAL_STEP
from cljax.experiments.vision.training import VisionConfig, train


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_digits(k=20, image_size=32, seed=args.seed)
    # η_D per 10-step digits epoch, not the paper's 10 per Office-Home epoch (docs/vision.md)
    base = VisionConfig(epochs=args.epochs, width=8, hidden=64, seed=args.seed,
                        dual_step_size=DEFAULT_DUAL_STEP["digits"])
    print("domains:", ", ".join(data.domains), "| train images per domain:", data.n_train)
    for mode, eps in (("separate", 0.0), ("consensus", 0.0), ("parametric", 3.0),
                      ("functional", 0.5)):
        result = train(data, replace(base, mode=mode, eps=eps))
        per_domain = " ".join(f"{a:.3f}" for a in result.test_accuracy)
        print(f"{mode:<11} eps={eps:<4g} mean accuracy {result.mean_accuracy:.3f} "
              f"(per domain {per_domain}) in {result.seconds:.0f} s")
        if mode == "functional":
            print("  λ_t per epoch:\n", np.round(result.dual_history, 2))


if __name__ == "__main__":
    main()
