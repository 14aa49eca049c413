"""Dataset loaders on files the test writes itself, through the real loading code."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from tests_helpers import fake_mnist

from continual.data import Vision, from_tensors, split_classes, vision_dataset
from continual.errors import ConfigError


def write_cifar(root, name="cifar10", per_file=30, seed=0):
    rng = np.random.default_rng(seed)
    folder, files, key, n = (("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)]
                              + ["test_batch"], b"labels", 10) if name == "cifar10" else
                             ("cifar-100-python", ["train", "test"], b"fine_labels", 100))
    (root / folder).mkdir(parents=True)
    for f in files:
        count = per_file * (10 if name == "cifar100" else 1)
        batch = {b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
                 key: [i % n for i in range(count)]}
        (root / folder / f).write_bytes(pickle.dumps(batch))
    return root


def test_cifar10_python_batches_load(tmp_path):
    data = vision_dataset("cifar10", write_cifar(tmp_path), val_fraction=0.1, normalize=False)
    assert data.input_shape == (3, 32, 32)
    assert (len(data.train), len(data.val), len(data.test)) == (135, 15, 30)
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes())
    first = torch.from_numpy(raw[b"data"][0].reshape(3, 32, 32))
    assert data.test.x.dtype == torch.uint8 and torch.equal(data.test.x[0], first)  # as stored
    assert torch.equal(data.test.decoded().x[0], first.float() / 255)  # what the net sees
    assert len(split_classes(data, n_tasks=5)) == 5


def test_cifar100_fine_labels(tmp_path):
    root = str(write_cifar(tmp_path, "cifar100", per_file=3))
    data = Vision("cifar100", root=root, val_fraction=0.0).load()
    assert data.n_classes == 100 and data.test.y.tolist() == list(range(30))
    with pytest.raises(ConfigError, match="cifar100 cannot be split stratified"):
        Vision("cifar100", root=root, val_fraction=0.1).load()  # 1 image per class


def test_cifar_batches_with_code_inside_are_refused(tmp_path):
    write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ConfigError, match="refusing to load builtins.print"):
        vision_dataset("cifar10", tmp_path)


def test_mnist_in_torchvision_layout_with_only_the_test_half(tmp_path):
    fake_mnist(tmp_path / "MNIST" / "raw")
    data = vision_dataset("mnist", tmp_path)
    assert data.input_shape == (1, 28, 28) and len(data.test) == 40


@pytest.mark.parametrize("name, message", [
    ("mnist", "has no mnist files: expected"),
    ("fashion_mnist", "FashionMNIST/raw/t10k-images-idx3-ubyte"),
    ("cifar10", "lacks cifar-10-batches-py/data_batch_1 (6 cifar10 files missing)"),
])
def test_missing_files_say_which_and_where(tmp_path, name, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        vision_dataset(name, tmp_path / "empty")


def test_from_tensors_and_its_errors():
    x, y = torch.randn(100, 5), torch.arange(100) % 4
    data = from_tensors(x, y, val_fraction=0.1, test_fraction=0.2)
    assert data.n_classes == 4 and len(data.train) + len(data.val) + len(data.test) == 100
    with pytest.raises(ConfigError, match="x has 100 samples but y has 99"):
        from_tensors(x, y[:99])
    with pytest.raises(ConfigError, match="labels go up to 3 but n_classes=3"):
        from_tensors(x, y, n_classes=3)
