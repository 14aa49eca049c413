"""The IDX reader on files the test writes itself, and on the offline MNIST test set if present."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from tests_helpers import fake_mnist, write_idx

from continual.data import idx_folder, read_idx, split_classes
from continual.errors import ConfigError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def test_read_idx_roundtrip_gzip_and_raw(tmp_path):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    write_idx(tmp_path / "a.idx.gz", a)
    write_idx(tmp_path / "a.idx", a, compress=False)
    assert np.array_equal(read_idx(tmp_path / "a.idx.gz"), a)
    assert np.array_equal(read_idx(tmp_path / "a.idx"), a)


def test_folder_with_only_the_test_half_is_split_stratified(tmp_path):
    images, labels = fake_mnist(tmp_path)
    data = idx_folder(tmp_path, val_fraction=0.0, test_fraction=0.2, normalize=False)
    assert (len(data.train), len(data.test)) == (160, 40)
    assert data.input_shape == (1, 28, 28)
    assert sorted(data.test.y.bincount().tolist()) == [4] * 10
    # every image survives intact, held as uint8 and decoded to [0, 1]
    assert data.train.x.dtype == torch.uint8
    all_x = np.concatenate([data.train.decoded().x.numpy(), data.test.decoded().x.numpy()])[:, 0]
    restored = np.sort((all_x * 255).round().astype(np.uint8).reshape(200, -1), axis=0)
    assert np.array_equal(restored, np.sort(images.reshape(200, -1), axis=0))
    stream = split_classes(idx_folder(tmp_path), n_tasks=5)
    assert [t.classes for t in stream][0] == [0, 1]


def test_train_files_are_used_when_present(tmp_path):
    fake_mnist(tmp_path, n=50)
    rng = np.random.default_rng(1)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz",
              rng.integers(0, 256, (300, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(300, dtype=np.uint8) % 10)
    data = idx_folder(tmp_path, val_fraction=0.1)
    assert (len(data.train), len(data.val), len(data.test)) == (270, 30, 50)


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        idx_folder(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="has no t10k-images"):
        idx_folder(tmp_path)
    (tmp_path / "junk.idx").write_bytes(b"PK\x03\x04not idx")
    with pytest.raises(ConfigError, match="bad magic number"):
        read_idx(tmp_path / "junk.idx")
    fake_mnist(tmp_path / "cut")
    full = gzip.decompress((tmp_path / "cut" / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "cut" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(full[:5000]))
    with pytest.raises(ConfigError, match="truncated or corrupt"):
        idx_folder(tmp_path / "cut")


@pytest.mark.skipif(not SHARED.is_dir(), reason="offline MNIST test set not beside the checkout")
def test_offline_mnist_test_set():
    raw = gzip.decompress((SHARED / "t10k-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    images = read_idx(SHARED / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    labels = read_idx(SHARED / "t10k-labels-idx1-ubyte.gz")
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    data = idx_folder(SHARED, val_fraction=0.0, test_fraction=0.2)
    assert (len(data.train), len(data.test)) == (8000, 2000)
