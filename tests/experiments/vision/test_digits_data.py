"""The shipped digit domains and the scarce-data split."""

from importlib import resources

import numpy as np
import pytest

from cljax.experiments.vision.digits import (DOMAINS, load_digit_domain, load_digits, scarce_split,
                               stack_domains, to_rgb)


def test_shipped_files_are_small_and_balanced():
    folder = resources.files("cljax.experiments.vision") / "data"
    total = sum((folder / f"{d}.npz").stat().st_size for d in DOMAINS)
    assert total < 4_000_000
    for name in ("README.md", "MNIST-M_SOURCE_LICENSE.txt"):
        assert (folder / name).is_file()
    shapes = {"uci": (8, 8), "mnist": (28, 28), "mnist_m": (32, 32, 3)}
    for d in DOMAINS:
        x, y = load_digit_domain(d)
        assert x.dtype == np.uint8 and x.shape == (1000,) + shapes[d]
        np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, 100))
        assert x.max() > 200  # uci's 0..16 levels were rescaled to 0..255


def test_scarce_setting_k_per_class_rest_for_test():
    data = load_digits(k=3, image_size=12, seed=5)
    assert data.x_train.shape == (3, 30, 12, 12, 3) and data.x_test.shape == (3, 970, 12, 12, 3)
    np.testing.assert_array_equal(data.n_train, [30, 30, 30])
    np.testing.assert_array_equal(data.n_test, [970, 970, 970])
    for t in range(3):
        np.testing.assert_array_equal(np.bincount(data.y_train[t], minlength=10), np.full(10, 3))
        np.testing.assert_array_equal(np.bincount(data.y_test[t], minlength=10), np.full(10, 97))
    # grey domains repeated over the three channels, MNIST-M in colour
    assert np.array_equal(data.x_train[0, ..., 0], data.x_train[0, ..., 2])
    assert not np.array_equal(data.x_train[2, ..., 0], data.x_train[2, ..., 2])


def test_split_is_seeded_and_disjoint():
    y = np.repeat(np.arange(4), 6)
    a = scarce_split(y, 2, np.random.default_rng(1), 4)
    b = scarce_split(y, 2, np.random.default_rng(1), 4)
    c = scarce_split(y, 2, np.random.default_rng(2), 4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert set(a[0]).isdisjoint(a[1]) and len(set(a[0]) | set(a[1])) == len(y)
    same = load_digits(k=2, image_size=8, seed=3)
    again = load_digits(k=2, image_size=8, seed=3)
    np.testing.assert_array_equal(same.x_train, again.x_train)


def test_resize_to_rgb_keeps_constant_images():
    grey = np.full((2, 8, 8), 77, np.uint8)
    out = to_rgb(grey, 16)
    assert out.shape == (2, 16, 16, 3) and np.all(out == 77)
    colour = np.random.default_rng(0).integers(0, 256, (1, 5, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb(colour, 5), colour)


@pytest.mark.parametrize("kwargs,match", [
    ({"k": 100}, "class 0 has 100 images"),
    ({"k": 0}, "k must be a positive int"),
    ({"image_size": 2}, "image_size"),
    ({"domains": ("mnist", "svhn")}, "domain must be one of"),
    ({"domains": ("mnist", "mnist")}, "distinct"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits(**kwargs)


def test_bad_image_shapes_are_named():
    with pytest.raises(ValueError, match="bad: expected"):
        to_rgb(np.zeros((2, 4, 4, 2), np.uint8), 4, name="bad")
    a = (np.zeros((2, 4, 4, 3), np.uint8), np.zeros(2, int))
    b = (np.zeros((2, 5, 5, 3), np.uint8), np.zeros(2, int))
    with pytest.raises(ValueError, match="inconsistent image sizes: domain 'B'"):
        stack_domains([a, b], [a, a], ("A", "B"), ("0",))
