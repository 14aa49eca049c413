"""ExperienceReplay(replay_from_task=k): no replay before task k, the same replay after."""

from __future__ import annotations

import pytest
import torch

from continual import ConfigError, ContinualModule, run
from continual.data import split_classes
from continual.nets import MLP
from continual.strategies import ExperienceReplay, FineTune


class Counting(ExperienceReplay):
    """Counts the replay batches drawn, per task."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.drawn: dict[int, int] = {}

    def replay(self, n, device=None, module=None):
        self.drawn[module.task_index] = self.drawn.get(module.task_index, 0) + 1
        return super().replay(n, device, module)


def train(stream, strategy):
    torch.manual_seed(0)
    module = ContinualModule(MLP(64, (32,), 10), strategy)
    result = run(stream, module, batch_size=64, seed=1, echo=None, trainer={"max_epochs": 1})
    return result, module


def test_replay_starts_with_the_task_asked(digits_data):
    stream = split_classes(digits_data, n_tasks=3)
    steps = [-(-len(task.train) // 64) for task in stream]
    default, from_second = Counting(buffer_size=100), Counting(buffer_size=100,
                                                                replay_from_task=1)
    train(stream, default)
    late, _ = train(stream, from_second)
    assert default.drawn == {0: steps[0] - 1, 1: steps[1], 2: steps[2]}  # once memory holds any
    assert from_second.drawn == {1: steps[1], 2: steps[2]}
    # Before it replays, it fine-tunes: the first task's row is FineTune's.
    finetune, _ = train(stream, FineTune())
    assert late.matrix[0].tolist() == finetune.matrix[0].tolist()
    assert late.matrix[1].tolist() != finetune.matrix[1].tolist()


def test_the_default_keeps_runs_fingerprints_and_a_bad_value_is_refused():
    assert "replay_from_task" not in repr(ExperienceReplay())
    assert "replay_from_task=1" in repr(ExperienceReplay(replay_from_task=1))
    with pytest.raises(ConfigError, match="replay_from_task=-1 is invalid"):
        ExperienceReplay(replay_from_task=-1)
