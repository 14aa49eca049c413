"""PackNet: the prune against an explicit sort, zero forgetting in task-IL, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch import Callback
from tests_helpers import Crash

from continual import ConfigError, ContinualModule, run
from continual.data import split_classes
from continual.nets import MLP
from continual.strategies import PackNet
from continual.strategies.packnet import prune_mask


@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.8])
def test_prune_keeps_the_largest_free_weights_as_an_explicit_sort(ratio):
    g = torch.Generator().manual_seed(0)
    weight, free = torch.randn(6, 5, generator=g), torch.rand(6, 5, generator=g) > 0.3
    keep = prune_mask(weight, free, ratio)
    candidates = [(abs(w), i) for i, (w, f) in enumerate(zip(weight.flatten().tolist(),
                                                           free.flatten().tolist())) if f]
    n_keep = round((1 - ratio) * len(candidates))
    expected = {i for _, i in sorted(candidates, key=lambda c: -c[0])[:n_keep]}
    assert set(keep.flatten().nonzero().flatten().tolist()) == expected


class CrashIn(Callback):
    """Fails in task 1, at the second batch of ``epoch`` (PackNet prunes at epoch 2 of 4)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if module.task_index == 1 and module.task_epoch == self.epoch and batch_idx == 1:
            raise Crash


def task_il_run(digits_data, callbacks=(), **kwargs):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=5, scenario="task")
    return run(stream, ContinualModule(MLP(), PackNet()), echo=None, batch_size=32,
               trainer={"accelerator": "cpu", "max_epochs": 4, "callbacks": list(callbacks)},
               **kwargs)


def test_zero_forgetting_in_task_incremental(digits_data):
    matrix = task_il_run(digits_data).matrix
    for j in range(5):  # every later row gives task j the accuracy it had when learnt
        assert all(matrix[i, j] == matrix[j, j] for i in range(j, 5)), matrix
    assert np.mean(np.diag(matrix)) >= 0.85, matrix


def test_class_incremental_streams_are_refused(digits_data):
    stream = split_classes(digits_data, n_tasks=2, scenario="class")
    with pytest.raises(ConfigError, match="scenario='class'"):
        run(stream, ContinualModule(MLP(), PackNet()), echo=None,
            trainer={"accelerator": "cpu", "max_epochs": 1})


@pytest.mark.parametrize("epoch", [1, 3])  # before and after the prune
def test_resumed_run_matches_the_uninterrupted_one(digits_data, tmp_path, epoch):
    whole = task_il_run(digits_data, run_dir=tmp_path / "whole", seed=5)
    with pytest.raises(Crash):
        task_il_run(digits_data, [CrashIn(epoch)], run_dir=tmp_path / "broken", seed=5)
    resumed = task_il_run(digits_data, run_dir=tmp_path / "broken", seed=5, resume=True)
    np.testing.assert_array_equal(resumed.matrix, whole.matrix)
