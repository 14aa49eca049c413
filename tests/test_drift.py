"""Rotated and concept-drift streams: drift where and how much it was configured, seeded."""

from __future__ import annotations

import pytest
import torch

from continual.data import TensorData
from continual.data.drift import concept_drift, concept_share
from continual.data.rotated import rotated
from continual.data.splits import DataSplits
from continual.errors import ConfigError


def indexed_data(n=400) -> DataSplits:
    """Inputs that encode their own index, so the original label can be read back: y = i % 10."""
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    part = TensorData(x, torch.arange(n) % 10)
    return DataSplits(part, part.subset(slice(0, 0)), part, 10, (1, 4, 4), "indexed")


def relabelled(chunk: TensorData) -> int:
    original = chunk.x[:, 0, 0, 0].long() % 10
    return int((chunk.y != original).sum())


def test_sudden_label_drift_switches_at_the_configured_step():
    stream = concept_drift(indexed_data(), "sudden", n_steps=8, chunk_size=50, drift_at=5)
    assert stream.share == [0, 0, 0, 0, 0, 1, 1, 1]
    assert stream.drift_points == [5]
    assert [relabelled(c) for c in stream.chunks] == [0] * 5 + [50] * 3  # a derangement
    assert relabelled(stream.tests[6]) == 400


def test_gradual_drift_ramps_with_exact_proportions():
    stream = concept_drift(indexed_data(), "gradual", n_steps=10, chunk_size=40, drift_at=3,
                           width=4)
    assert stream.share == [0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1, 1]
    assert [relabelled(c) for c in stream.chunks] == [0, 0, 0, 10, 20, 30, 40, 40, 40, 40]


def test_recurring_concepts_are_identical_when_they_return():
    stream = concept_drift(indexed_data(), "recurring", n_steps=9, chunk_size=30, drift_at=2,
                           period=2)
    assert stream.share == [0, 0, 1, 1, 0, 0, 1, 1, 0]
    label_map = torch.tensor(stream.info["label_map"])
    for chunk, share in zip(stream.chunks, stream.share):
        original = chunk.x[:, 0, 0, 0].long() % 10
        expected = label_map[original] if share else original
        assert torch.equal(chunk.y, expected)


def test_incremental_rotation_grows_every_step():
    data = indexed_data()
    image = torch.zeros(1, 1, 4, 4)
    image[0, 0, 0, :] = 1.0  # a bar along the top edge
    data = DataSplits(TensorData(image.repeat(20, 1, 1, 1), torch.zeros(20)), data.val,
                      TensorData(image, torch.zeros(1)), 10, (1, 4, 4), "bar")
    stream = concept_drift(data, "incremental", n_steps=4, chunk_size=5, drift_at=1,
                           degrees_per_step=90.0)
    assert torch.equal(stream.chunks[0].x[0], image[0])
    assert torch.equal(stream.chunks[1].x[0], torch.rot90(image[0], 1, dims=(1, 2)))
    assert torch.equal(stream.chunks[2].x[0], torch.rot90(image[0], 2, dims=(1, 2)))


def test_rotated_stream_applies_each_angle_to_train_and_test(digits_data):
    stream = rotated(digits_data, [0, 90, 180])
    assert stream.scenario == "domain" and len(stream) == 3
    assert torch.equal(stream[0].train.x, digits_data.train.x)
    turned = torch.rot90(digits_data.test.x, 1, dims=(2, 3))
    assert torch.allclose(stream[1].test.x, turned, atol=1e-5)
    assert torch.allclose(stream[2].train.x, torch.rot90(digits_data.train.x, 2, dims=(2, 3)),
                          atol=1e-5)


def test_seeds_reproduce_streams_exactly():
    a = concept_drift(indexed_data(), "gradual", seed=3, n_steps=6, chunk_size=20, drift_at=2)
    b = concept_drift(indexed_data(), "gradual", seed=3, n_steps=6, chunk_size=20, drift_at=2)
    c = concept_drift(indexed_data(), "gradual", seed=4, n_steps=6, chunk_size=20, drift_at=2)
    assert all(torch.equal(x.y, y.y) and torch.equal(x.x, y.x) for x, y in zip(a.chunks, b.chunks))
    assert not all(torch.equal(x.x, y.x) for x, y in zip(a.chunks, c.chunks))


@pytest.mark.parametrize("drift_at", [-1, 8, 100])
def test_drift_step_outside_the_stream_is_rejected(drift_at):
    with pytest.raises(ConfigError, match=rf"drift_at={drift_at} is outside the stream of 8"):
        concept_drift(indexed_data(), n_steps=8, drift_at=drift_at)


def test_drift_stream_as_a_task_stream():
    stream = concept_drift(indexed_data(), "sudden", n_steps=4, chunk_size=25, drift_at=2)
    tasks = stream.as_stream()
    assert len(tasks) == 4 and tasks.scenario == "domain"
    assert [len(t.train) for t in tasks] == [25] * 4
    assert (tasks[3].train.t == 3).all()
    assert concept_share("sudden", 4, 2) == [0, 0, 1, 1]
