"""TFDS domains: a tiny data set prepared into a temporary data_dir (array_record,
no TensorFlow, no network), read back, sampled k per class and trained end to end;
a missing data set fails at once with one line naming it, the data_dir and the
command that prepares it."""

import io
import json
import time

import numpy as np
import pytest

import tensorflow_datasets as tfds  # noqa: E402  (in the test extra)
from PIL import Image  # noqa: E402

from cljax.cli import main  # noqa: E402
from cljax.experiments.vision.tfds import (TfdsDomain, TfdsNotPreparedError,  # noqa: E402
                                           find_prepared, load_tfds_domains, parse_domain)

SIDE = 10
COUNTS = {"train": 5, "test": 3}  # images per class per split
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# config c stores the class named str((l + 1) % 10) under label l
NAMES = {"a": WORDS, "b": WORDS, "c": [str((label + 1) % 10) for label in range(10)]}
TO_WORDS = {"cljax_tiny_digits/c": {str(i): w for i, w in enumerate(WORDS)}}


def coded_image(label, index, config):
    """A grey square whose value codes (config, label, index): the test decodes it back."""
    value = 20 + 20 * label + 3 * index + {"a": 0, "b": 1, "c": 2}[config]
    buf = io.BytesIO()
    Image.fromarray(np.full((SIDE, SIDE), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


class CljaxTinyDigits(tfds.core.GeneratorBasedBuilder):
    """Three configs of a 10-class, 10x10 grey data set; config c names its classes 1..9, 0."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=n) for n in NAMES]

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(SIDE, SIDE, 1)),
            "label": tfds.features.ClassLabel(names=NAMES[self.builder_config.name])}))

    def _split_generators(self, dl_manager):
        return {s: self._generate_examples(s) for s in COUNTS}

    def _generate_examples(self, split):
        config = self.builder_config.name
        for label in range(10):
            for i in range(COUNTS[split]):
                yield f"{label}_{i}", {"image": coded_image(label, i, config), "label": label}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds")
    for config in ("a", "b", "c"):
        CljaxTinyDigits(config=config, data_dir=str(root),
                        file_format="array_record").download_and_prepare()
    return root


def decode(value, config):
    """(stored label, index) of a coded image value."""
    rest = value - 20 - {"a": 0, "b": 1, "c": 2}[config]
    return rest // 20, (rest % 20) // 3


def test_parse_domain():
    assert parse_domain("tfds:mnist") == TfdsDomain("mnist")
    assert parse_domain("tfds:emnist/digits:3.1.0@test[:50%]") == \
        TfdsDomain("emnist", "digits", "3.1.0", "test[:50%]")
    assert parse_domain("tfds:emnist/digits@test").label == "emnist/digits@test"
    with pytest.raises(ValueError, match="not a TFDS domain"):
        parse_domain("tfds:Bad Name")


def test_k_per_class_from_the_prepared_files(data_dir):
    data = load_tfds_domains(["tfds:cljax_tiny_digits/a", "tfds:cljax_tiny_digits/b@test"],
                             data_dir, k=2, image_size=8, seed=0, test_per_class=3)
    assert data.domains == ("cljax_tiny_digits/a", "cljax_tiny_digits/b@test")
    assert data.classes == tuple(WORDS) and data.image_shape == (8, 8, 3)
    np.testing.assert_array_equal(data.n_train, [20, 20])
    np.testing.assert_array_equal(data.n_test, [30, 10])  # b@test has 3 per class: 2 + 1
    for t, config in enumerate("ab"):
        np.testing.assert_array_equal(np.bincount(data.y_train[t, :20]), np.full(10, 2))
        seen = set()
        for x, y in ((data.x_train[t, :20], data.y_train[t, :20]),
                     (data.x_test[t, :data.n_test[t]], data.y_test[t, :data.n_test[t]])):
            for image, label in zip(x, y):
                assert np.ptp(image) == 0  # constant image, grey repeated over 3 channels
                decoded = decode(int(image[0, 0, 0]), config)
                assert decoded[0] == label  # the label travelled with its image
                seen.add(decoded)
        assert len(seen) == 20 + data.n_test[t]  # train and test images are distinct
    again = load_tfds_domains(["tfds:cljax_tiny_digits/a"], data_dir, k=2, image_size=8,
                              seed=0, test_per_class=3)
    other = load_tfds_domains(["tfds:cljax_tiny_digits/a"], data_dir, k=2, image_size=8,
                              seed=1, test_per_class=3)
    np.testing.assert_array_equal(again.x_train[0], data.x_train[0])
    assert not np.array_equal(other.x_train[0], data.x_train[0])


def test_classes_are_aligned_by_name_or_map(data_dir):
    with pytest.raises(ValueError, match=r"cljax_tiny_digits/c: classes do not match.*--class-map"):
        load_tfds_domains(["tfds:cljax_tiny_digits/a", "tfds:cljax_tiny_digits/c"], data_dir,
                          k=1, image_size=8, test_per_class=1)
    data = load_tfds_domains(["tfds:cljax_tiny_digits/a", "tfds:cljax_tiny_digits/c"],
                             data_dir, k=1, image_size=8, test_per_class=1, class_map=TO_WORDS)
    # c's stored label l is named str((l + 1) % 10) -> that word -> aligned label (l + 1) % 10
    for image, label in zip(data.x_train[1, :10], data.y_train[1, :10]):
        assert (decode(int(image[0, 0, 0]), "c")[0] + 1) % 10 == label
    subset = load_tfds_domains(["tfds:cljax_tiny_digits/a"], data_dir, k=1, image_size=8,
                               test_per_class=1, classes=["two", "zero"])
    assert subset.classes == ("two", "zero")
    for image, label in zip(subset.x_train[0, :2], subset.y_train[0, :2]):
        assert decode(int(image[0, 0, 0]), "a")[0] == (2, 0)[label]


def test_missing_data_set_is_refused_at_once(tmp_path, data_dir):
    with pytest.raises(TfdsNotPreparedError, match="tfds build mnist --data_dir"):
        find_prepared(TfdsDomain("mnist"), tmp_path)
    with pytest.raises(ValueError, match="has no split 'validation'"):
        find_prepared(parse_domain("tfds:cljax_tiny_digits/a@validation"), data_dir)
    with pytest.raises(ValueError, match=r"configs \['a', 'b', 'c'\]; name one"):
        find_prepared(parse_domain("tfds:cljax_tiny_digits"), data_dir)


def test_cli_empty_data_dir_fails_in_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    start = time.perf_counter()
    code = main(["vision", "--domains", "tfds:mnist", "tfds:svhn_cropped", "--data-dir",
                 str(empty)])
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2 and seconds < 5
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"TFDS data set mnist is not prepared in data_dir {empty}" in err
    assert f"tfds build mnist --data_dir {empty} --file_format array_record" in err
    assert list(empty.iterdir()) == []  # nothing written, nothing downloaded


def test_cli_trains_on_tfds_domains_end_to_end(data_dir, capsys):
    """Three TFDS domains (one with renamed classes) through the CLI and the trainer; the
    shapes (3 domains, 10 classes, 20 training images of 8x8, batch 20) are those of the
    digits CLI tests, so the separate-mode program is compiled once for both."""
    argv = ["vision", "--domains", "tfds:cljax_tiny_digits/a", "tfds:cljax_tiny_digits/b",
            "tfds:cljax_tiny_digits/c", "--class-map",
            "cljax_tiny_digits/c:" + ",".join(f"{i}={w}" for i, w in enumerate(WORDS)),
            "--data-dir", str(data_dir), "--k", "2", "--test-per-class", "1",
            "--image-size", "8", "--width", "2", "--hidden", "8", "--epochs", "1",
            "--batch-size", "20", "--mode", "separate", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "tfds" and out["num_train"] == [20, 20, 20]
    assert out["num_test"] == [10, 10, 10]
    assert out["domains"] == ["cljax_tiny_digits/a", "cljax_tiny_digits/b",
                              "cljax_tiny_digits/c"]
    (row,) = out["summary"]["rows"]
    assert row["mode"] == "separate" and len(row["per_domain_accuracy"]) == 3
    accuracy = np.array(row["per_domain_accuracy"])  # hits out of 10 test images per domain
    np.testing.assert_allclose(accuracy * 10, np.round(accuracy * 10), atol=1e-5)
    assert np.all((accuracy >= 0) & (accuracy <= 1))


def test_mock_data_source_is_accepted(tmp_path):
    """``tfds.testing.mock_data``: the registered builder's examples come from the mock
    (random images and labels), through the same sampler."""
    folder = tmp_path / "cljax_tiny_digits" / "a" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "dataset_info.json").write_text(json.dumps(
        {"fileFormat": "array_record", "splits": [{"name": "train"}]}))
    (folder / "cljax_tiny_digits-train.array_record-00000-of-00001").write_bytes(b"")
    with tfds.testing.mock_data(num_examples=200):
        data = load_tfds_domains(["tfds:cljax_tiny_digits/a"], tmp_path, k=2, image_size=8,
                                 test_per_class=1)
    np.testing.assert_array_equal(data.n_train, [20])
    np.testing.assert_array_equal(np.bincount(data.y_train[0]), np.full(10, 2))
    np.testing.assert_array_equal(np.bincount(data.y_test[0]), np.full(10, 1))


def test_download_prepares_a_missing_domain(tmp_path):
    """``download=True`` prepares a missing domain (here a builder that generates its data
    locally, so no network) as array_record, then reads it like any prepared domain."""
    with pytest.raises(TfdsNotPreparedError):
        load_tfds_domains(["tfds:cljax_tiny_digits/b"], tmp_path, k=1, image_size=8,
                          test_per_class=1)
    data = load_tfds_domains(["tfds:cljax_tiny_digits/b"], tmp_path, k=1, image_size=8,
                             test_per_class=1, download=True)
    _, folder = find_prepared(parse_domain("tfds:cljax_tiny_digits/b"), tmp_path)
    assert folder == tmp_path / "cljax_tiny_digits" / "b" / "1.0.0"
    assert any(folder.glob("*-train.array_record-*"))
    np.testing.assert_array_equal(np.bincount(data.y_train[0]), np.full(10, 1))
