"""The CelebA loader on a small generated directory in the published layout."""

from __future__ import annotations

import os

import numpy as np
import pytest

NAMES = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Male", "Smiling", "Young"]


def _make(root, n=10, csv=False, nested=False):
    from PIL import Image

    img_dir = os.path.join(root, "img_align_celeba", "img_align_celeba" if nested else "")
    os.makedirs(img_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    files, attrs = [], []
    for k in range(n):
        name = f"{k + 1:06d}.jpg"
        a = np.zeros((218, 178, 3), dtype=np.uint8)  # H x W, the aligned images' size
        a[:] = (20, 20, 20)
        # a bright centre square that the 140-pixel centre crop keeps and the border loses
        a[39:179, 19:159] = (200, 10 * k, 100)
        Image.fromarray(a).save(os.path.join(img_dir, name), quality=95)
        files.append(name)
        attrs.append(rng.choice([-1, 1], len(NAMES)))
    if csv:
        with open(os.path.join(root, "list_attr_celeba.csv"), "w") as fh:
            fh.write("image_id," + ",".join(NAMES) + "\n")
            for f, a in zip(files, attrs):
                fh.write(f + "," + ",".join(str(v) for v in a) + "\n")
        with open(os.path.join(root, "list_eval_partition.csv"), "w") as fh:
            fh.write("image_id,partition\n")
            for k, f in enumerate(files):
                fh.write(f"{f},{[0, 0, 0, 1, 2][k % 5]}\n")
    else:
        with open(os.path.join(root, "list_attr_celeba.txt"), "w") as fh:
            fh.write(f"{n}\n" + " ".join(NAMES) + "\n")
            for f, a in zip(files, attrs):
                fh.write(f + "  " + " ".join(f"{v:2d}" for v in a) + "\n")
        with open(os.path.join(root, "list_eval_partition.txt"), "w") as fh:
            for k, f in enumerate(files):
                fh.write(f"{f} {[0, 0, 0, 1, 2][k % 5]}\n")
    return files, np.asarray(attrs)


@pytest.mark.parametrize("csv,nested", [(False, False), (True, True)])
def test_celeba_layout_crop_labels_and_cache(tmp_path, monkeypatch, csv, nested):
    from qbm.data import load_dataset
    from qbm.data.celeba import load_celeba

    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "cache"))
    root = str(tmp_path / "celeba")
    files, attrs = _make(root, csv=csv, nested=nested)
    d = load_celeba(root, size=16)
    split = np.array([[0, 0, 0, 1, 2][k % 5] for k in range(len(files))])
    assert d.x_train.shape == (8, 3, 16, 16) and d.x_test.shape == (2, 3, 16, 16)  # validation joins train
    assert d.x_train.dtype == np.float32 and 0 <= d.x_train.min() and d.x_train.max() <= 1
    smiling = (attrs[:, NAMES.index("Smiling")] > 0).astype(np.int64)
    np.testing.assert_array_equal(d.y_train, smiling[split != 2])
    np.testing.assert_array_equal(d.y_test, smiling[split == 2])
    np.testing.assert_array_equal(d.attributes_test, (attrs[split == 2] > 0).astype(np.int8))
    assert d.attribute_names == tuple(NAMES) and d.num_classes == 2
    # the centre crop holds only the bright square: every pixel is near its colour
    red = d.x_train[:, 0]
    assert red.min() > 0.7, red.min()
    # a second load reads the uint8 cache (memory-mapped) and gives the same arrays
    cached = os.listdir(os.path.join(str(tmp_path / "cache"), "data"))
    assert any(f.endswith("-train.npy") for f in cached)
    again = load_celeba(root, size=16)
    np.testing.assert_array_equal(again.x_train, d.x_train)
    np.testing.assert_array_equal(load_celeba(root, size=16, cache=False).x_test, d.x_test)
    male = load_celeba(root, size=16, attribute="Male")
    np.testing.assert_array_equal(male.y_train, (attrs[split != 2, NAMES.index("Male")] > 0).astype(np.int64))
    assert load_dataset("celeba", root).shape == (3, 32, 32)


def test_celeba_errors_name_what_is_missing(tmp_path, monkeypatch):
    from qbm.data import check_dataset
    from qbm.data.celeba import load_celeba

    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "cache"))
    root = str(tmp_path / "celeba")
    _make(root, n=5)
    with pytest.raises(ValueError, match="attribute.*Smilling"):
        load_celeba(root, attribute="Smilling")
    with pytest.raises(ValueError, match="size"):
        load_celeba(root, size=30)
    os.remove(os.path.join(root, "list_eval_partition.txt"))
    with pytest.raises(FileNotFoundError, match="partition file"):
        check_dataset("celeba", root)
    with pytest.raises(ValueError, match="--data-dir"):
        check_dataset("celeba", None)


def test_bm_vae_trains_a_conv_net_on_celeba_shaped_images(tmp_path, monkeypatch):
    """32 x 32 RGB images get the convolutional encoder / decoder; one epoch runs."""
    import torch

    from qbm.data.celeba import load_celeba
    from qbm.models.vae import BMVAE
    from qbm.training.vae import VAETrainer

    monkeypatch.setenv("QBM_CACHE_DIR", str(tmp_path / "cache"))
    root = str(tmp_path / "celeba")
    _make(root, n=10)
    d = load_celeba(root)
    m = BMVAE(d.shape, 16, seed=0)
    assert any(isinstance(x, torch.nn.Conv2d) for x in m.encoder.modules())
    tr = VAETrainer(m, d, seed=0, num_chains=8, sweeps=2, batch_size=4, iw_samples=4)
    tr.train(1, progress=False)
    assert np.isfinite(tr.history[-1]["test_elbo"])
