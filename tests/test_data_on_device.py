"""``data_on_device``: the stream is moved once, and the results do not change."""

from __future__ import annotations

import torch
from lightning.fabric.utilities.seed import seed_everything
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from continual import ContinualModule, run
from continual.config import run_parser
from continual.data import Stream, augment, pass_batch, permuted
from continual.nets import MLP
from continual.strategies import FullRetrain


def run_tiny(stream, **kwargs):
    seed_everything(0, verbose=False)
    module = ContinualModule(MLP(hidden=[32]), FullRetrain(from_scratch=False))
    return run(stream, module, trainer={"accelerator": "cpu", "max_epochs": 1}, batch_size=32,
               echo=None, **kwargs)


def test_same_matrix_with_the_stream_moved_once(digits_data, monkeypatch):
    stream = augment(permuted(digits_data, n_tasks=2), v2.RandomHorizontalFlip())
    moves, to = [], Stream.to

    def recording_to(self, device):
        moves.append(device)
        return to(self, device)

    monkeypatch.setattr(Stream, "to", recording_to)
    plain = run_tiny(stream)
    assert moves == []
    moved = run_tiny(stream, data_on_device=True)
    assert moves == [torch.device("cpu")]  # once for the run, to the trainer's root device
    assert (moved.matrix == plain.matrix).all() and moved.cost[1].train_samples == \
        plain.cost[1].train_samples


def test_moved_stream_keeps_tasks_and_batches_by_slicing(digits_data):
    stream = augment(permuted(digits_data, n_tasks=2), v2.RandomHorizontalFlip(p=1.0))
    moved = stream.to("cpu")
    assert moved is not stream and torch.equal(moved[1].permutation, stream[1].permutation)
    assert moved[0].train.transform is stream[0].train.transform
    x, y, t = next(iter(DataLoader(moved[1].train, batch_size=8, collate_fn=pass_batch)))
    # gathered as stored: the training step augments (ContinualModule.training_inputs)
    assert torch.equal(x, stream[1].train.x[:8]) and torch.equal(t, torch.ones(8))


def test_cli_option_reaches_run(monkeypatch, tmp_path):
    from continual import experiment

    seen = {}

    def fake_run(stream, module, **kwargs):
        seen.update(kwargs)
        return "result"

    monkeypatch.setattr(experiment, "run", fake_run)
    parser = run_parser()
    cfg = parser.parse_args(["--data_on_device", "true", "--output", str(tmp_path),
                             "--data.init_args.n_tasks", "2", "--quiet", "true"])
    assert experiment.run_experiment(parser, cfg, show_table=False) == "result"
    assert seen["data_on_device"] is True
    assert parser.parse_args([]).data_on_device is False
