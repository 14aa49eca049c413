"""Any torch Dataset and an image folder as sources, read through the real loading code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from jsonargparse import ArgumentParser
from PIL import Image
from torch.utils.data import Dataset

from continual.data import StreamSource, from_dataset, image_folder
from continual.errors import ConfigError


class Indexed(Dataset):
    """Sample ``i`` is a numpy array filled with ``i`` and label ``i % 3``; counts reads."""

    def __init__(self, n: int = 60, targets: bool = True, offset: int = 0):
        self.n, self.offset, self.reads = n, offset, 0
        if targets:
            self.targets = [(i + offset) % 3 for i in range(n)]

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.reads += 1
        return np.full((2, 3), i + self.offset, dtype=np.float32), (i + self.offset) % 3


def test_any_dataset_is_materialised_sample_for_sample():
    data = from_dataset(Indexed(60), val_fraction=0.1, test_fraction=0.2)
    assert data.input_shape == (2, 3) and data.n_classes == 3 and data.name == "Indexed"
    index = torch.cat([p.x[:, 0, 0] for p in (data.train, data.val, data.test)]).long()
    labels = torch.cat([p.y for p in (data.train, data.val, data.test)])
    assert sorted(index.tolist()) == list(range(60))  # every sample once
    assert torch.equal(labels, index % 3)  # each input kept its own label
    assert torch.bincount(data.test.y).tolist() == [4, 4, 4]  # stratified


def test_own_test_set_is_kept_whole_and_in_order():
    data = from_dataset(Indexed(60), Indexed(9, targets=False, offset=100), val_fraction=0.1)
    assert data.test.x[:, 0, 0].tolist() == list(range(100, 109))
    assert data.test.y.tolist() == [(100 + i) % 3 for i in range(9)]
    assert (len(data.train), len(data.val)) == (54, 6)


def test_pil_images_without_targets_are_read_as_torchvision_does():
    from torchvision.datasets import FakeData
    from torchvision.transforms.v2 import functional as F

    fake = FakeData(size=30, image_size=(1, 4, 5), num_classes=2, random_offset=7)
    data = from_dataset(fake, val_fraction=0.0, test_fraction=0.0, n_classes=2)
    assert data.input_shape == (1, 4, 5) and data.train.x.dtype == torch.uint8  # as stored
    image, label = fake[0]
    expected = F.pil_to_tensor(image).float() / 255
    match = [torch.equal(x, expected) for x in data.train.decoded().x]  # what the net sees
    assert any(match) and data.train.y[match.index(True)] == label


def test_bad_targets_are_refused_before_any_sample_is_read():
    ds = Indexed(12)
    ds.targets = [0.5] * 12
    with pytest.raises(ConfigError, match="targets have dtype torch.float"):
        from_dataset(ds)
    assert ds.reads == 0


class Broken(Dataset):
    def __init__(self, sample):
        self.sample = sample

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return self.sample(i)


@pytest.mark.parametrize("sample, message", [
    (lambda i: (np.zeros(3), 0.5), "the label of sample 0 is 0.5; allowed: integer class labels"),
    (lambda i: (np.zeros(3), -1), "the label of sample 0 is -1"),
    (lambda i: ("text", 1), "the input of sample 0 is a str, which cannot be made a tensor"),
    (lambda i: (np.zeros(3 + i), 1), "sample 1 has input shape (4,) but sample 0 has (3,)"),
    (lambda i: np.zeros(3), "sample 0 is a ndarray; allowed: (input, label) pairs"),
])
def test_bad_samples_give_one_line_errors(sample, message):
    with pytest.raises(ConfigError) as err:
        from_dataset(Broken(sample))
    assert message in str(err.value) and "\n" not in str(err.value)


def write_png(path, size, color, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


@pytest.fixture
def folder(tmp_path):
    """3 classes × 4 images, 10×12, each class one solid colour; one image in palette mode."""
    colors = {"cat": (255, 0, 0), "dog": (0, 255, 0), "eel": (0, 0, 255)}
    for name, color in colors.items():
        for i in range(4):
            write_png(tmp_path / "train" / name / f"{i}.png", (12, 10), color)
    Image.new("RGB", (12, 10), colors["eel"]).convert("P").save(tmp_path / "train/eel/3.png")
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    return tmp_path


def test_image_folder_classes_sizes_and_pixels(folder):
    data = image_folder(folder / "train", size=8, val_fraction=0.0, test_fraction=0.25)
    assert data.input_shape == (3, 8, 8) and data.n_classes == 3
    assert (len(data.train), len(data.test)) == (9, 3)
    assert sorted(data.test.y.tolist()) == [0, 1, 2]  # stratified
    assert data.train.x.dtype == torch.uint8
    for x, y in zip(data.train.decoded().x, data.train.y):  # cat=0 red, dog=1 green, eel=2 blue
        assert torch.equal(x.mean((1, 2)), torch.eye(3)[y])
    gray = image_folder(folder / "train", size=[6, 4], grayscale=True, test_fraction=0.25,
                        val_fraction=0.0)
    assert gray.input_shape == (1, 6, 4)
    red = gray.train.decoded().x[gray.train.y == 0]
    assert torch.allclose(red, torch.full_like(red, 76 / 255))  # PIL's luma of pure red


def test_image_folder_with_its_own_test_root(folder):
    write_png(folder / "test" / "dog" / "a.png", (12, 10), (0, 255, 0))
    data = image_folder(folder / "train", folder / "test", val_fraction=0.0)
    assert data.input_shape == (3, 10, 12) and len(data.train) == 12
    assert data.test.y.tolist() == [1]  # "dog" keeps the label it has in root
    write_png(folder / "test" / "fox" / "a.png", (12, 10), (9, 9, 9))
    with pytest.raises(ConfigError, match=r"has classes \['fox'\] that root lacks"):
        image_folder(folder / "train", folder / "test")


@pytest.mark.parametrize("damage, root, message", [
    (lambda r: None, "missing", "root='{r}/missing' is not a folder"),
    (lambda r: (r / "empty").mkdir(), "empty", "has no class sub-folders"),
    (lambda r: (r / "train" / "ant").mkdir(), "train", "train/ant holds no images"),
    (lambda r: (r / "train/dog/2.png").write_bytes(b"junk"), "train",
     "dog/2.png is not a readable image"),
    (lambda r: write_png(r / "train/dog/9.png", (5, 5), (0, 0, 0)), "train",
     "dog/9.png is 5×5 but"),
])
def test_image_folder_errors_are_one_line(folder, damage, root, message):
    damage(folder)
    root = folder / root
    with pytest.raises(ConfigError) as err:
        image_folder(root)
    assert message.format(r=folder) in str(err.value) and "\n" not in str(err.value)


def split(dataset: dict, n_tasks: int):
    """The stream a ``data:`` config of SplitClasses over ``dataset`` builds."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--data", type=StreamSource)
    data = {"class_path": "continual.data.SplitClasses",
            "init_args": {"n_tasks": n_tasks, "dataset": dataset}}
    return parser.instantiate(parser.parse_object({"data": data})).data.build()


def test_config_sources_for_datasets_and_image_folders(folder):
    stream = split({"class_path": "continual.data.ImageFolder",
                    "init_args": {"root": str(folder / "train"), "size": 4, "test_fraction": 0.25,
                                  "val_fraction": 0.0}}, n_tasks=3)
    assert len(stream) == 3 and stream.input_shape == (3, 4, 4)
    fake = {"class_path": "torchvision.datasets.FakeData",
            "init_args": {"size": 40, "image_size": [1, 6, 6], "num_classes": 2}}
    test = {**fake, "init_args": {**fake["init_args"], "size": 10}}
    stream = split({"class_path": "continual.data.TorchDataset",
                    "init_args": {"train": fake, "test": test, "val_fraction": 0.0}}, n_tasks=2)
    assert stream.input_shape == (1, 6, 6) and sum(len(t.test) for t in stream) == 10
