"""Three digit domains (UCI 8×8, MNIST, MNIST-M) as a multi-domain data set.

The shipped subset (``cljax/data/digits``, 100 images per class per domain) is
brought to one size (bilinear resize) and three channels (grey repeated), and
split for the scarce-data setting: k training images per class per domain, the
rest of the shipped images held out for test, chosen with a seed.

Images stay uint8 in :class:`MultiDomainData`; the trainer normalises batches
with the stored per-channel ``mean``/``std``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Sequence

import numpy as np

DOMAINS = ("uci", "mnist", "mnist_m")
NUM_CLASSES = 10


@dataclass(frozen=True)
class MultiDomainData:
    """T domains stacked on a leading axis, padded to the largest domain.

    Attributes:
      x_train, x_test: uint8 images (T, N, H, W, C).
      y_train, y_test: int32 labels (T, N); padded slots hold label 0.
      n_train, n_test: int32 (T,) real counts per domain (padding comes last).
      domains, classes: names.
      mean, std: per-channel normalisation (in [0, 1] pixel units).
      skipped: (path, reason) pairs the loader left out, reported, never silent.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    n_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_test: np.ndarray
    domains: tuple
    classes: tuple
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.5, 0.5, 0.5)
    skipped: tuple = ()

    @property
    def num_domains(self) -> int:
        return len(self.domains)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple:
        return tuple(self.x_train.shape[2:])


def load_digit_domain(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The shipped images (N, H, W[, C]) uint8 and labels (N,) of one domain."""
    if name not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {name!r}")
    ref = resources.files("cljax.experiments.vision") / "data" / f"{name}.npz"
    with resources.as_file(ref) as path, np.load(path) as data:
        return data["x"], data["y"].astype(np.int64)


def to_rgb(images: np.ndarray, size: int, name: str = "images") -> np.ndarray:
    """(N, h, w) or (N, h, w, 1|3) uint8 → (N, size, size, 3) uint8, bilinear."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"{name}: expected (N, H, W), (N, H, W, 1) or (N, H, W, 3) images, "
                         f"got shape {images.shape}")
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    if images.shape[1:3] != (size, size):
        import jax
        import jax.numpy as jnp
        resized = jax.image.resize(jnp.asarray(images, jnp.float32),
                                   (images.shape[0], size, size, 3), method="bilinear")
        images = np.clip(np.rint(np.asarray(resized)), 0, 255)
    return images.astype(np.uint8)


def scarce_split(labels: np.ndarray, k: int, rng: np.random.Generator,
                 num_classes: int, name: str = "domain"):
    """Indices of k training images per class (seeded) and of the rest (test)."""
    train, test = [], []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) <= k:
            raise ValueError(f"{name}: class {c} has {len(members)} images, needs more than "
                             f"k={k} (k for training, the rest for test)")
        chosen = rng.permutation(members)
        train.append(chosen[:k])
        test.append(chosen[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def stack_domains(train: Sequence[tuple], test: Sequence[tuple], domains, classes,
                  mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), skipped=()) -> MultiDomainData:
    """Stack per-domain (images, labels) pairs, padding to the largest domain.

    All images must share one shape (H, W, C); the error names the domain.
    """
    shape = None
    for (x, _), d in zip(list(train) + list(test), list(domains) * 2):
        if shape is None:
            shape = x.shape[1:]
        elif x.shape[1:] != shape:
            raise ValueError(f"inconsistent image sizes: domain {d!r} has {x.shape[1:]}, "
                             f"expected {shape} (resize first)")

    def pad(pairs):
        n = np.array([len(y) for _, y in pairs], np.int32)
        size = int(n.max())
        xs = np.zeros((len(pairs), size) + shape, np.uint8)
        ys = np.zeros((len(pairs), size), np.int32)
        for t, (x, y) in enumerate(pairs):
            xs[t, :len(y)] = x
            ys[t, :len(y)] = y
        return xs, ys, n

    x_tr, y_tr, n_tr = pad(train)
    x_te, y_te, n_te = pad(test)
    return MultiDomainData(x_tr, y_tr, n_tr, x_te, y_te, n_te, tuple(domains), tuple(classes),
                           tuple(mean), tuple(std), tuple(skipped))


def load_digits(k: int = 20, image_size: int = 32, seed: int = 0,
                domains: Sequence[str] = DOMAINS) -> MultiDomainData:
    """The digit domains, k training images per class per domain (scarce setting).

    Args:
      k: training images per class per domain (1 ≤ k < 100); the other shipped
        images of each class are the test set.
      image_size: side of the common square size.
      seed: chooses the training images (numpy Generator).
      domains: which of ``DOMAINS``, in order.
    """
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k must be a positive int, got {k!r}")
    if not (isinstance(image_size, (int, np.integer)) and image_size >= 4):
        raise ValueError(f"image_size must be an int >= 4, got {image_size!r}")
    if len(domains) == 0 or len(set(domains)) != len(domains):
        raise ValueError(f"domains must be distinct names from {DOMAINS}, got {domains!r}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for d in domains:
        x, y = load_digit_domain(d)
        x = to_rgb(x, image_size, name=d)
        tr, te = scarce_split(y, k, rng, NUM_CLASSES, name=d)
        train.append((x[tr], y[tr]))
        test.append((x[te], y[te]))
    return stack_domains(train, test, domains, tuple(str(c) for c in range(NUM_CLASSES)))
