"""Permuted, rotated and drift streams, and Avalanche benchmarks, over lazy data: built from
labels and indices, read batch by batch, and trained exactly as their in-memory twins."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything
from tests_helpers import CountingRows, colour_images
from torch import nn
from torchvision.transforms import v2

from continual import ConfigError, ContinualModule, run
from continual.data import from_dataset, from_task_tensors, image_folder, permuted, split_classes
from continual.data.drift import concept_drift
from continual.data.lazy import LazyData
from continual.data.lazy_sources import lazy_dataset, lazy_image_folder
from continual.data.rotated import rotated
from continual.data.transforms import augment, decoded
from continual.strategies import ExperienceReplay, FineTune, FullRetrain


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> Path:
    """6 classes × 20 PNG images, 3×8×8."""
    return colour_images(tmp_path_factory.mktemp("images"), 6, 20, seed=1)


def matrix(stream, strategy=FineTune) -> np.ndarray:
    seed_everything(0, verbose=False)
    net = nn.Sequential(nn.Flatten(), nn.Linear(192, 32), nn.ReLU(), nn.Linear(32, 6))
    module = ContinualModule(net, strategy(), partial(torch.optim.Adam, lr=0.02))
    return run(stream, module, trainer={"max_epochs": 2}, batch_size=8, seed=3, echo=None).matrix


def permute(data):
    return permuted(data, n_tasks=3, seed=5)


def rotate(data):
    return rotated(data, [0.0, 30.0, 90.0])


@pytest.mark.parametrize("build, strategy, workers", [
    (permute, FineTune, 0), (rotate, FineTune, 2),
    (rotate, partial(ExperienceReplay, 20, seed=1), 0),  # the memory holds mapped inputs
    (permute, FullRetrain, 2),  # tasks of different maps joined into one training set
], ids=["permuted", "rotated", "rotated-ER", "permuted-joint"])
def test_permuted_and_rotated_lazy_streams_give_the_in_memory_matrix(build, strategy, workers,
                                                                     image_root):
    lazy = build(lazy_image_folder(image_root, seed=2, num_workers=workers))
    eager = build(image_folder(image_root, seed=2))
    for a, b in zip(lazy, eager):
        assert isinstance(a.train, LazyData) and torch.equal(a.test.y, b.test.y)
        assert torch.equal(a.test.materialize().x, b.test.x)  # bit for bit, as read
    np.testing.assert_array_equal(matrix(lazy, strategy), matrix(eager, strategy))


def test_building_permuted_rotated_and_drift_streams_reads_no_inputs():
    x = torch.randint(0, 256, (200, 1, 6, 6), dtype=torch.uint8)
    source = CountingRows(x, torch.arange(200) % 4)
    data = lazy_dataset(source, pixels=True, seed=0)
    before = source.reads  # the input shape, probed while splitting
    permuted(data, n_tasks=4)
    rotated(data, [0.0, 45.0])
    concept_drift(data, "gradual", n_steps=6, chunk_size=30, drift_at=2, concept="rotation")
    assert source.reads == before


@pytest.mark.parametrize("kind, concept", [("sudden", "labels"), ("gradual", "rotation"),
                                           ("incremental", "rotation")])
def test_drift_chunks_over_lazy_data_are_the_in_memory_chunks(kind, concept, image_root):
    def drift(data):
        return concept_drift(data, kind, n_steps=5, chunk_size=24, drift_at=2, width=2,
                             concept=concept, seed=4)

    lazy, eager = drift(lazy_image_folder(image_root, seed=2)), drift(image_folder(image_root,
                                                                                   seed=2))
    assert lazy.share == eager.share and lazy.info == eager.info
    for a, b in zip(lazy.chunks + lazy.tests, eager.chunks + eager.tests):
        assert isinstance(a, LazyData) and torch.equal(a.y, b.y) and torch.equal(a.t, b.t)
        assert torch.equal(a.materialize().x, b.x)


def test_a_label_drift_stream_trains_as_in_memory(image_root):
    def stream(data):
        return concept_drift(data, "sudden", n_steps=4, chunk_size=30, drift_at=2,
                             seed=1).as_stream()

    np.testing.assert_array_equal(
        matrix(stream(lazy_image_folder(image_root, seed=2, num_workers=2))),
        matrix(stream(image_folder(image_root, seed=2))))


def test_a_lazy_avalanche_benchmark_gives_the_in_memory_matrix(image_root):
    scenarios = pytest.importorskip("avalanche.benchmarks.scenarios.dataset_scenario")
    utils = pytest.importorskip("avalanche.benchmarks.utils")
    from continual.data import from_avalanche

    data = decoded(image_folder(image_root, seed=2))
    tasks = [(t.train.x, t.train.y, t.test.x, t.test.y) for t in split_classes(data, n_tasks=3)]

    sources = [CountingRows(x, y) for task in tasks for x, y in (task[:2], task[2:])]
    benchmark = scenarios.benchmark_from_datasets(
        train=[utils.as_classification_dataset(d) for d in sources[::2]],
        test=[utils.as_classification_dataset(d) for d in sources[1::2]])
    before = sum(d.reads for d in sources)
    lazy = from_avalanche(benchmark, scenario="class", lazy=True, num_workers=2)
    assert all(isinstance(task.train, LazyData) for task in lazy)
    assert sum(d.reads for d in sources) <= before + 1  # the input shape: labels are targets
    er = partial(ExperienceReplay, 20, seed=1)
    np.testing.assert_array_equal(matrix(lazy, er),
                                  matrix(from_avalanche(benchmark, scenario="class"), er))
    np.testing.assert_array_equal(matrix(lazy, er), matrix(from_task_tensors(tasks), er))


@pytest.mark.parametrize("transform", [
    [v2.Resize(4, antialias=True)],
    [v2.Normalize([0.5, 0.4, 0.3], [0.2, 0.25, 0.3])],
    [v2.Normalize([0.5, 0.4, 0.3], [0.2, 0.25, 0.3]), v2.CenterCrop(6)],
], ids=["resize", "normalize", "normalize-crop"])
def test_preprocessing_lazy_data_gives_the_in_memory_inputs(transform, image_root):
    lazy = lazy_image_folder(image_root, seed=2, transform=transform)
    eager = image_folder(image_root, seed=2, transform=transform)
    assert lazy.input_shape == eager.input_shape
    for a, b in zip((lazy.train, lazy.val, lazy.test), (eager.train, eager.val, eager.test)):
        assert isinstance(a, LazyData)
        assert torch.equal(a.materialize().decoded().x, b.decoded().x)


def test_a_training_augmentation_of_lazy_data_trains_as_in_memory(image_root):
    def stream(data):
        return augment(split_classes(data, n_tasks=3), [v2.RandomHorizontalFlip()])

    np.testing.assert_array_equal(matrix(stream(lazy_image_folder(image_root, seed=2))),
                                  matrix(stream(image_folder(image_root, seed=2))))


def test_a_transform_that_does_not_fit_lazy_inputs_fails_in_one_line(image_root):
    with pytest.raises(ConfigError, match=r"transform .* failed on inputs of shape \(3, 8, 8\)"):
        lazy_image_folder(image_root, transform=[v2.Normalize([0.5] * 5, [0.2] * 5)])


def test_normalized_lazy_data_matches_the_in_memory_floats(image_root, digits_data):
    lazy = lazy_image_folder(image_root, seed=2, normalize=True)
    eager = image_folder(image_root, seed=2, normalize=True)
    floats = CountingRows(digits_data.train.x, digits_data.train.y)
    lazy_floats = lazy_dataset(floats, seed=1, normalize=True)
    eager_floats = from_dataset(floats, seed=1, normalize=True)
    for lazy_data, eager_data in ((lazy, eager), (lazy_floats, eager_floats)):
        for a, b in zip((lazy_data.train, lazy_data.test), (eager_data.train, eager_data.test)):
            x = a.materialize().decoded().x
            assert isinstance(a, LazyData) and abs(x.mean()) < 0.5  # standardised
            torch.testing.assert_close(x, b.decoded().x, rtol=0, atol=1e-5)  # float32 rounding


@pytest.mark.parametrize("concept", ["labels", "rotation"])
def test_simulate_replays_lazy_drift_chunks_as_in_memory_ones(concept, image_root):
    """Retraining policies over a drift stream read from disk: the prequential accuracies,
    retrains and gate decisions of the in-memory chunks, bit for bit."""
    from continual.retraining import EveryK, Incremental, Policy, simulate
    from continual.retraining.gate import DeployGate
    from continual.retraining.quality import QualityGate

    def replay(data):
        drift = concept_drift(data, "sudden", n_steps=6, chunk_size=20, drift_at=3,
                              concept=concept, seed=1)
        policy = Policy("every-2", trigger=EveryK(2), update=Incremental(),
                        deploy_gate=DeployGate(holdout_chunks=2),
                        quality_gate=QualityGate(max_copies=3))
        seed_everything(0, verbose=False)
        net = nn.Sequential(nn.Flatten(), nn.Linear(192, 32), nn.ReLU(), nn.Linear(32, 6))
        run = simulate(drift.chunks, policy, net, n_classes=6, trainer={"max_epochs": 2},
                       batch_size=8, initial_chunks=2, seed=3)
        return [(s.accuracy, s.retrained, s.deployed) for s in run.steps], \
            [d.as_dict() for d in run.decisions]

    lazy = replay(lazy_image_folder(image_root, seed=2))
    # as text: NaN (the warm-up's accuracy, the first model's champion) equals NaN there
    assert json.dumps(lazy) == json.dumps(replay(image_folder(image_root, seed=2)))
    assert any(retrained for _, retrained, _ in lazy[0][2:])  # retrains past the first model
