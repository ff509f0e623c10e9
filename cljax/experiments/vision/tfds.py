"""TensorFlow Datasets image classification sets as domains (``tfds:NAME[/CONFIG][:VERSION][@SPLIT]``).

Each domain is one prepared TFDS data set (or one config, or one split of it).  The
data are read with ``tensorflow_datasets`` through its random-access
``as_data_source`` API (``array_record`` files, decoded with Pillow), so neither
TensorFlow nor the network is needed to read them.

Offline by construction:

* whether a domain is prepared is decided from the files alone
  (``<data_dir>/<name>[/<config>]/<version>/dataset_info.json`` and the split's
  shard files), *before* ``tensorflow_datasets`` is imported; a missing domain is
  an error (:class:`TfdsNotPreparedError`) naming the data set, the data_dir and
  the command that prepares it, in milliseconds;
* nothing is downloaded unless ``download=True``.

Sampling is the same as for the shipped digit domains
(:func:`cljax.experiments.vision.digits.scarce_split`): per domain, examples are
visited in a seeded random order until every class has ``k + test_per_class``
images; then k per class are drawn for training and the rest is the test set.
Images are brought to one size and three channels with
:func:`cljax.experiments.vision.digits.to_rgb` (bilinear).  Classes are aligned
by their names (``ClassLabel.names``) across domains: every domain must have the
same class names, or ``classes`` chooses the shared ones; ``class_map`` renames a
domain's classes first.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cljax.experiments.vision.digits import MultiDomainData, scarce_split, stack_domains, to_rgb

PREFIX = "tfds:"
_SPEC = re.compile(r"^(?P<name>[a-z0-9_]+)(?:/(?P<config>[A-Za-z0-9_.\-]+))?"
                   r"(?::(?P<version>\d+\.\d+\.\d+))?(?:@(?P<split>.+))?$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
READABLE_FORMATS = ("array_record", "parquet")


class TfdsNotPreparedError(FileNotFoundError):
    """A TFDS domain is not prepared in the data_dir (the message says how to prepare it)."""


@dataclass(frozen=True)
class TfdsDomain:
    """One domain: a TFDS data set, config, version and split."""

    name: str
    config: str | None = None
    version: str | None = None
    split: str = "train"

    @property
    def builder_name(self) -> str:
        """``name[/config]``, as ``tfds build`` takes it."""
        return self.name if self.config is None else f"{self.name}/{self.config}"

    @property
    def label(self) -> str:
        """The domain's display name: ``name[/config][@split]`` (the split if not train)."""
        return self.builder_name + ("" if self.split == "train" else f"@{self.split}")


def is_tfds_spec(text: str) -> bool:
    return text.startswith(PREFIX)


def parse_domain(text: str) -> TfdsDomain:
    """``tfds:NAME[/CONFIG][:VERSION][@SPLIT]`` → :class:`TfdsDomain` (ValueError if malformed)."""
    body = text[len(PREFIX):] if is_tfds_spec(text) else text
    m = _SPEC.match(body)
    if m is None:
        raise ValueError(f"{text!r} is not a TFDS domain: expected "
                         "tfds:NAME[/CONFIG][:VERSION][@SPLIT], e.g. tfds:mnist, "
                         "tfds:emnist/digits, tfds:mnist@test")
    return TfdsDomain(m["name"], m["config"], m["version"], m["split"] or "train")


def default_data_dir() -> str:
    """TFDS's default: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.join("~", "tensorflow_datasets")


def prepare_command(domain: TfdsDomain, data_dir) -> str:
    """The command that prepares ``domain`` in ``data_dir`` (on a machine with network)."""
    return (f"tfds build {domain.builder_name} --data_dir {data_dir} "
            "--file_format array_record")


def _split_names(split: str) -> list[str]:
    """Base split names of a TFDS split expression (``train[:50%]+test`` → train, test)."""
    return [re.sub(r"\[.*\]$", "", part.strip()) for part in split.split("+")]


def find_prepared(domain: TfdsDomain, data_dir) -> tuple[TfdsDomain, Path]:
    """The prepared ``domain`` (its config filled in) and its folder in ``data_dir``,
    from the files alone.

    Checks ``<data_dir>/<name>[/<config>]/<version>/dataset_info.json`` (the largest
    version, unless one is named), that the split exists there and that the file
    format can be read without TensorFlow.  Imports nothing, opens no connection.

    Raises:
      TfdsNotPreparedError: not prepared (the message gives the command that prepares it).
      ValueError: prepared, but not readable as asked (ambiguous config, unknown split,
        TFRecord files).
    """
    root = Path(os.path.expanduser(str(data_dir)))
    how = (f"prepare it on a machine with network (pip install tensorflow tensorflow-datasets; "
           f"{prepare_command(domain, data_dir)}) and copy the folder here, or pass --download")
    base = root / domain.name
    if domain.config is not None:
        base = base / domain.config
    elif base.is_dir() and not _versions(base):
        configs = sorted(p.name for p in base.iterdir() if p.is_dir() and _versions(p))
        if len(configs) == 1:
            base = base / configs[0]
            domain = TfdsDomain(domain.name, configs[0], domain.version, domain.split)
        elif configs:
            raise ValueError(f"TFDS data set {domain.name} in data_dir {root} has the configs "
                             f"{configs}; name one, e.g. tfds:{domain.name}/{configs[0]}")
    versions = _versions(base) if base.is_dir() else []
    if domain.version is not None:
        versions = [v for v in versions if v == domain.version]
    if not versions:
        what = domain.builder_name + (f":{domain.version}" if domain.version else "")
        raise TfdsNotPreparedError(f"TFDS data set {what} is not prepared in data_dir {root} "
                                   f"(no {base}/<version>/dataset_info.json); {how}")
    folder = base / max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))
    try:
        info = json.loads((folder / "dataset_info.json").read_text())
    except ValueError as err:
        raise ValueError(f"{folder / 'dataset_info.json'} is not valid JSON ({err})") from None
    splits = {s.get("name"): s for s in info.get("splits", [])}
    for name in _split_names(domain.split):
        if name not in splits:
            raise ValueError(f"TFDS data set {domain.builder_name} in {folder} has no split "
                             f"{name!r} (splits: {sorted(splits)})")
    file_format = info.get("fileFormat", "tfrecord")
    if file_format not in READABLE_FORMATS:
        raise ValueError(f"TFDS data set {domain.builder_name} in {folder} is stored as "
                         f"{file_format}, which needs TensorFlow to read; prepare it with "
                         f"--file_format array_record ({prepare_command(domain, data_dir)})")
    for name in _split_names(domain.split):
        if not any(folder.glob(f"*-{name}.{file_format}*")):
            raise TfdsNotPreparedError(f"TFDS data set {domain.builder_name}: the {name} files "
                                       f"are missing in {folder}; {how}")
    return domain, folder


def _versions(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir()
            if p.is_dir() and _VERSION.match(p.name) and (p / "dataset_info.json").is_file()]


def download_and_prepare(domain: TfdsDomain, data_dir) -> None:
    """Download and prepare ``domain`` into ``data_dir`` as array_record (needs network,
    and for most image data sets TensorFlow, to encode the images)."""
    import tensorflow_datasets as tfds

    name = domain.builder_name + (f":{domain.version}" if domain.version else "")
    try:
        builder = tfds.builder(name, data_dir=os.path.expanduser(str(data_dir)),
                               file_format="array_record")
        builder.download_and_prepare()
    except ImportError as err:
        raise RuntimeError(f"preparing TFDS data set {name} needs {err.name or err} "
                           "(pip install tensorflow)") from err


def open_split(domain: TfdsDomain, folder: Path, data_dir):
    """(random-access data source, features) of ``domain``'s split, prepared in ``folder``."""
    import tensorflow_datasets as tfds

    data_dir = os.path.expanduser(str(data_dir))
    builder = None
    if domain.name in tfds.list_builders(with_community_datasets=False):
        try:
            builder = tfds.builder(f"{domain.builder_name}:{folder.name}", data_dir=str(data_dir))
        except Exception:  # the installed code lacks this version/config: read the files
            builder = None
    if builder is None:
        builder = tfds.builder_from_directory(str(folder))
    return builder.as_data_source(split=domain.split), builder.info.features


def _image_and_label_keys(features, label: str):
    import tensorflow_datasets as tfds

    images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
    labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    image_key = "image" if "image" in images else (images[0] if len(images) == 1 else None)
    label_key = "label" if "label" in labels else (labels[0] if len(labels) == 1 else None)
    if image_key is None or label_key is None:
        raise ValueError(f"TFDS domain {label}: needs one Image and one ClassLabel feature, "
                         f"found images {images} and class labels {labels}")
    return image_key, label_key


def _sample_domain(source, image_key, label_key, label_to_class, num_classes, per_class, rng):
    """Visit the examples in a seeded order until every class has ``per_class`` of them."""
    counts = np.zeros(num_classes, np.int64)
    images, labels = [], []
    for i in rng.permutation(len(source)):
        example = source[int(i)]
        c = label_to_class[int(example[label_key])]
        if c < 0 or counts[c] >= per_class:
            continue
        counts[c] += 1
        images.append(np.asarray(example[image_key]))
        labels.append(c)
        if np.all(counts >= per_class):
            break
    return images, np.asarray(labels, np.int64), counts


def _to_common_size(images, size, label):
    shapes = {im.shape for im in images}
    if len(shapes) == 1:
        return to_rgb(np.stack(images), size, name=label)
    from PIL import Image

    out = []
    for im in images:  # sizes differ: resize one by one
        im = im[..., 0] if im.ndim == 3 and im.shape[-1] == 1 else im
        pil = Image.fromarray(np.asarray(im, np.uint8)).convert("RGB")
        out.append(np.asarray(pil.resize((size, size), Image.BILINEAR), np.uint8))
    return np.stack(out)


def load_tfds_domains(specs: Sequence[str], data_dir=None, k: int = 20, image_size: int = 32,
                      seed: int = 0, test_per_class: int = 100,
                      classes: Sequence[str] | None = None,
                      class_map: Mapping[str, Mapping[str, str]] | None = None,
                      download: bool = False) -> MultiDomainData:
    """Prepared TFDS data sets as a :class:`MultiDomainData` (scarce setting).

    Args:
      specs: one ``tfds:NAME[/CONFIG][:VERSION][@SPLIT]`` per domain (split default
        ``train``; a split expression such as ``train[:50%]`` is allowed).
      data_dir: the TFDS data folder (default :func:`default_data_dir`).
      k: training images per class per domain.
      image_size: side of the common square size (3 channels).
      seed: chooses the images (numpy Generator, shared by the domains in order).
      test_per_class: test images per class per domain (from the same split, disjoint
        from the training images).
      classes: the class names used, in label order (default: the first domain's);
        every domain must have them all.
      class_map: ``{domain label: {its class name: new name}}``, applied first.
      download: prepare missing domains (network; otherwise a missing domain is an error).
    """
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k must be a positive int, got {k!r}")
    if not (isinstance(test_per_class, (int, np.integer)) and test_per_class >= 1):
        raise ValueError(f"test_per_class must be a positive int, got {test_per_class!r}")
    if not (isinstance(image_size, (int, np.integer)) and image_size >= 4):
        raise ValueError(f"image_size must be an int >= 4, got {image_size!r}")
    domains = [parse_domain(s) for s in specs]
    labels = [d.label for d in domains]
    if not domains or len(set(labels)) != len(labels):
        raise ValueError(f"domains must be distinct and at least one, got {list(specs)}")
    class_map = dict(class_map or {})
    unknown = sorted(set(class_map) - set(labels))
    if unknown:
        raise ValueError(f"class map names unknown domain(s) {unknown} (domains: {labels})")
    data_dir = default_data_dir() if data_dir is None else str(data_dir)
    prepared = []
    for d in domains:  # every domain is checked before anything is read or downloaded
        try:
            prepared.append(find_prepared(d, data_dir))
        except TfdsNotPreparedError:
            if not download:
                raise
            prepared.append(None)
    for i, d in enumerate(domains):
        if prepared[i] is None:
            download_and_prepare(d, data_dir)
            prepared[i] = find_prepared(d, data_dir)
    opened = []
    for (d, folder), label in zip(prepared, labels):
        source, features = open_split(d, folder, data_dir)
        image_key, label_key = _image_and_label_keys(features, label)
        mapping = class_map.get(label, {})
        names = [mapping.get(n, n) for n in features[label_key].names]
        bad = sorted(set(mapping) - set(features[label_key].names))
        if bad:
            raise ValueError(f"class map for {label}: no class(es) {bad} in it "
                             f"(classes: {features[label_key].names})")
        opened.append((d, label, source, image_key, label_key, names))
    chosen = list(classes) if classes else opened[0][5]
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"class names must be distinct, got {chosen}")
    for d, label, _, _, _, names in opened:
        missing = [c for c in chosen if c not in names]
        extra = [c for c in names if c not in chosen]
        if missing or (extra and not classes):
            raise ValueError(
                f"TFDS domain {label}: classes do not match the other domains' (missing "
                f"{missing[:10]}, extra {extra[:10]}); choose the shared ones with --classes "
                "or rename with --class-map")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for d, label, source, image_key, label_key, names in opened:
        lookup = np.array([chosen.index(n) if n in chosen else -1 for n in names])
        images, y, counts = _sample_domain(source, image_key, label_key, lookup, len(chosen),
                                           k + test_per_class, rng)
        short = [chosen[c] for c in range(len(chosen)) if counts[c] <= k]
        if short:
            raise ValueError(f"TFDS domain {label}: class(es) {short[:10]} have at most "
                             f"k={k} images in split {d.split!r}; k for training and at least "
                             "one for test are needed")
        x = _to_common_size(images, image_size, label)
        tr, te = scarce_split(y, k, rng, len(chosen), name=label)
        train.append((x[tr], y[tr]))
        test.append((x[te], y[te]))
    return stack_domains(train, test, labels, tuple(chosen))
