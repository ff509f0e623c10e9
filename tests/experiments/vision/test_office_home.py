"""The Office-Home folder loader on a tiny generated tree (no network)."""

import numpy as np
import pytest
from PIL import Image

from cljax.experiments.vision.office_home import IMAGENET_MEAN, load_office_home

CLASSES = ("Bike", "Mug", "Pen")


def make_tree(root, domains=("Art", "Clipart"), per_class=5, sizes=((9, 7), (12, 12), (5, 8))):
    """<root>/<Domain>/<Class>/i.jpg, solid colours coding (domain, class, image)."""
    for d_i, d in enumerate(domains):
        for c_i, c in enumerate(CLASSES):
            folder = root / d / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                colour = (40 * c_i + 10, 60 * d_i + 20, 20 * i + 5)
                Image.new("RGB", sizes[i % len(sizes)], colour).save(folder / f"{i}.jpg",
                                                                     quality=100)
    return root


def test_layout_split_and_resize(tmp_path):
    data = load_office_home(make_tree(tmp_path), image_size=6, seed=0)
    assert data.domains == ("Art", "Clipart") and data.classes == CLASSES
    assert data.x_train.shape == (2, 12, 6, 6, 3) and data.x_test.shape == (2, 3, 6, 6, 3)
    np.testing.assert_array_equal(data.n_train, [12, 12])  # 4/5 of 5 per class
    for t in range(2):
        np.testing.assert_array_equal(np.bincount(data.y_train[t]), [4, 4, 4])
        np.testing.assert_array_equal(np.bincount(data.y_test[t]), [1, 1, 1])
        # the red channel codes the class: label and pixels agree after resizing
        red = data.x_train[t, :, 3, 3, 0].astype(int)
        np.testing.assert_allclose(red, 40 * data.y_train[t] + 10, atol=3)
    assert data.mean == IMAGENET_MEAN and data.skipped == ()


def test_split_is_seeded(tmp_path):
    root = make_tree(tmp_path)
    a, b = load_office_home(root, 4, seed=1), load_office_home(root, 4, seed=1)
    c = load_office_home(root, 4, seed=2)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_test, c.x_test)


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_office_home(tmp_path / "nowhere")


def test_domain_missing_a_class(tmp_path):
    root = make_tree(tmp_path)
    for f in (root / "Clipart" / "Mug").iterdir():
        f.unlink()
    (root / "Clipart" / "Mug").rmdir()
    with pytest.raises(ValueError, match=r"domain 'Clipart'.*\['Mug'\]"):
        load_office_home(root, 4)


def test_unknown_domain_and_empty_class(tmp_path):
    root = make_tree(tmp_path)
    with pytest.raises(FileNotFoundError, match="Product"):
        load_office_home(root, 4, domains=["Art", "Product"])
    for f in (root / "Art" / "Pen").iterdir():
        f.unlink()
    with pytest.raises(ValueError, match="Pen has no images"):
        load_office_home(root, 4)


def test_unreadable_image_is_counted_and_reported(tmp_path):
    root = make_tree(tmp_path)
    (root / "Art" / "Pen" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (root / "Art" / "Pen" / "notes.txt").write_text("hello")
    data = load_office_home(root, 4)
    reasons = dict(data.skipped)
    assert len(data.skipped) == 2
    assert reasons[str(root / "Art" / "Pen" / "broken.jpg")].startswith("unreadable")
    assert reasons[str(root / "Art" / "Pen" / "notes.txt")] == "not an image file extension"
    np.testing.assert_array_equal(data.n_train + data.n_test, [15, 15])
    with pytest.raises(ValueError, match="cannot read image .*broken.jpg"):
        load_office_home(root, 4, on_unreadable="error")


def test_inconsistent_sizes_without_resizing(tmp_path):
    root = make_tree(tmp_path)
    with pytest.raises(ValueError, match="inconsistent image sizes: .*1.jpg"):
        load_office_home(root, image_size=None)
    same = make_tree(tmp_path / "same", sizes=((6, 6),))
    assert load_office_home(same, image_size=None).image_shape == (6, 6, 3)


def test_class_with_one_readable_image(tmp_path):
    root = make_tree(tmp_path, per_class=1)
    with pytest.raises(ValueError, match="at least 2"):
        load_office_home(root, 4)
