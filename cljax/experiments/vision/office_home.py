"""Office-Home (or any ``<root>/<Domain>/<Class>/*.jpg`` tree) as multi-domain data.

Every domain must hold the same class folders.  Images are read with Pillow,
converted to RGB, resized to ``image_size`` × ``image_size`` (bilinear) and kept
as uint8; batches are normalised with the ImageNet channel statistics.  Each
class of each domain is split 4/5 train, 1/5 test with a seed.

Bad input is never dropped silently:

* a missing root, a root without domain folders, a domain without a class
  another domain has, a class folder without images → ``FileNotFoundError`` /
  ``ValueError`` naming the folder;
* an unreadable image → skipped and reported in ``MultiDomainData.skipped``
  (``on_unreadable="skip"``, the default) or an error (``"error"``);
* a file without an image extension → reported in ``skipped``;
* with ``image_size=None`` (no resizing), images of different sizes → an
  error naming the file.

No network access: this only reads local files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from cljax.experiments.vision.digits import MultiDomainData, stack_domains

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _subfolders(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_image(path: Path, image_size: int | None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        if image_size is not None and img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def scan_folder_tree(root, domains: Sequence[str] | None = None):
    """Domains, classes and per-(domain, class) file lists; checks the layout.

    Returns (domains, classes, files, skipped) where ``files[d][c]`` lists image
    paths and ``skipped`` lists (path, reason) for non-image files.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image root folder {root} does not exist (expected "
                                "<root>/<Domain>/<Class>/*.jpg)")
    found = _subfolders(root)
    if domains is None:
        domains = found
    if not domains:
        raise ValueError(f"image root folder {root} has no domain folders")
    for d in domains:
        if d not in found:
            raise FileNotFoundError(f"domain folder {root / d} does not exist "
                                    f"(found domains: {found})")
    classes_per_domain = {d: _subfolders(root / d) for d in domains}
    all_classes = sorted(set().union(*classes_per_domain.values()))
    if not all_classes:
        raise ValueError(f"no class folders under the domains of {root}")
    for d, classes in classes_per_domain.items():
        missing = sorted(set(all_classes) - set(classes))
        if missing:
            raise ValueError(f"domain {d!r} ({root / d}) lacks class folder(s) {missing} "
                             "that other domains have; every domain needs the same classes")
    files, skipped = {}, []
    for d in domains:
        files[d] = {}
        for c in all_classes:
            entries = sorted(p for p in (root / d / c).iterdir() if p.is_file())
            images = [p for p in entries if p.suffix.lower() in IMAGE_EXTENSIONS]
            skipped += [(str(p), "not an image file extension") for p in entries
                        if p.suffix.lower() not in IMAGE_EXTENSIONS]
            if not images:
                raise ValueError(f"class folder {root / d / c} has no images "
                                 f"({', '.join(IMAGE_EXTENSIONS)})")
            files[d][c] = images
    return tuple(domains), tuple(all_classes), files, skipped


def load_office_home(root, image_size: int | None = 224, seed: int = 0,
                     train_fraction: float = 0.8, domains: Sequence[str] | None = None,
                     on_unreadable: str = "skip") -> MultiDomainData:
    """Load ``<root>/<Domain>/<Class>/*.jpg`` as a :class:`MultiDomainData`.

    Args:
      root: the data set folder (e.g. ``OfficeHomeDataset_10072016``).
      image_size: side to resize to (224 for the paper's AlexNet); ``None`` keeps
        the files' size, which must then be the same for all.
      seed: chooses the train/test split of every (domain, class).
      train_fraction: share of each class used for training (paper: 4/5).
      domains: subset/order of domain folders (default: all, sorted).
      on_unreadable: ``"skip"`` (reported in ``skipped``) or ``"error"``.
    """
    if on_unreadable not in ("skip", "error"):
        raise ValueError(f"on_unreadable must be 'skip' or 'error', got {on_unreadable!r}")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    if image_size is not None and not (isinstance(image_size, int) and image_size >= 1):
        raise ValueError(f"image_size must be a positive int or None, got {image_size!r}")
    domains, classes, files, skipped = scan_folder_tree(root, domains)
    rng = np.random.default_rng(seed)
    shape = None
    train, test = [], []
    for d in domains:
        xs_tr, ys_tr, xs_te, ys_te = [], [], [], []
        for label, c in enumerate(classes):
            images = []
            for path in files[d][c]:
                try:
                    img = _read_image(path, image_size)
                except Exception as err:  # PIL raises several types for bad files
                    if on_unreadable == "error":
                        raise ValueError(f"cannot read image {path}: {err}") from err
                    skipped.append((str(path), f"unreadable: {type(err).__name__}: {err}"))
                    continue
                if shape is None:
                    shape = img.shape
                elif img.shape != shape:
                    raise ValueError(f"inconsistent image sizes: {path} is {img.shape[1]}x"
                                     f"{img.shape[0]}, earlier images are {shape[1]}x{shape[0]}"
                                     " (pass image_size to resize)")
                images.append(img)
            if len(images) < 2:
                raise ValueError(f"class folder {Path(root) / d / c} has {len(images)} readable "
                                 "image(s); the train/test split needs at least 2")
            order = rng.permutation(len(images))
            n_train = min(max(1, int(round(train_fraction * len(images)))), len(images) - 1)
            stacked = np.stack(images)
            xs_tr.append(stacked[order[:n_train]])
            xs_te.append(stacked[order[n_train:]])
            ys_tr.append(np.full(n_train, label))
            ys_te.append(np.full(len(images) - n_train, label))
        train.append((np.concatenate(xs_tr), np.concatenate(ys_tr)))
        test.append((np.concatenate(xs_te), np.concatenate(ys_te)))
    return stack_domains(train, test, domains, classes, IMAGENET_MEAN, IMAGENET_STD,
                         tuple(skipped))
