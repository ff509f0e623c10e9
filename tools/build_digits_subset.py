"""Build the digit-domain subset shipped in cljax/data/digits/ (run once, offline).

Takes ``--per-class`` images of each class from each of the three domain files in
../shared/data/digits (a seeded choice, without replacement), keeps their native
resolution and uint8 storage, and writes one compressed npz per domain with
``x`` (images), ``y`` (labels) and ``source_index`` (row in the source file).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SOURCES = {
    "uci": "uci_digits_8x8.npz",
    "mnist": "mnist5k_28x28.npz",
    "mnist_m": "mnist_m_5k_subset_32x32.npz",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=Path("../shared/data/digits"))
    parser.add_argument("--dest", type=Path, default=Path("cljax/data/digits"))
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for name, fname in SOURCES.items():
        data = np.load(args.source / fname)
        x, y = data["x"], data["y"].astype(np.int64)
        rows = []
        for c in range(10):
            members = np.flatnonzero(y == c)
            rows.append(np.sort(rng.choice(members, size=args.per_class, replace=False)))
        rows = np.concatenate(rows)
        images = x[rows]
        if name == "uci":  # 0..16 grey levels -> 0..255
            images = np.round(images.astype(np.float64) * (255.0 / 16.0)).astype(np.uint8)
        np.savez_compressed(args.dest / f"{name}.npz", x=images.astype(np.uint8),
                            y=y[rows].astype(np.uint8), source_index=rows.astype(np.int32))
        print(name, images.shape, (args.dest / f"{name}.npz").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
