"""The strategy contract as documented: the package docstring's example method works as
written, and the hooks receive what the contract promises."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything

import continual.strategies
from continual import ContinualModule, run
from continual.data import split_classes
from continual.nets import MLP
from continual.strategies import FineTune, Strategy


def documented_example() -> type[Strategy]:
    doc = continual.strategies.__doc__
    block = doc.split("in the toolkit's terms::\n", 1)[1].split("\n(:class:", 1)[0]
    namespace: dict = {}
    exec(textwrap.dedent(block), namespace)  # noqa: S102 - our own docstring
    return namespace["TinyReplay"]


def train(strategy, digits_data, run_dir=None, echo=None, resume=False, seed=0):
    seed_everything(seed, verbose=False)
    stream = split_classes(digits_data, n_tasks=5, scenario="class")
    return run(stream, ContinualModule(MLP(hidden=(32,)), strategy), batch_size=32,
               trainer={"max_epochs": 20}, echo=echo, run_dir=run_dir, resume=resume)


def test_the_documented_example_method_remembers_and_resumes(digits_data, tmp_path):
    tiny_replay = documented_example()
    replayed = train(tiny_replay(buffer_size=100), digits_data, tmp_path / "whole")
    finetuned = train(FineTune(), digits_data)
    earlier = slice(0, 4)  # the tasks before the last, after the last
    assert replayed.matrix[-1, earlier].mean() > finetuned.matrix[-1, earlier].mean() + 0.2

    class Crash(Exception):
        pass

    def crash_after_two(line: str) -> None:
        if line.startswith("task 3/"):
            raise Crash

    with pytest.raises(Crash):
        train(tiny_replay(buffer_size=100), digits_data, tmp_path / "broken", crash_after_two)
    resumed = train(tiny_replay(buffer_size=100), digits_data, tmp_path / "broken", resume=True,
                    seed=7)
    np.testing.assert_array_equal(resumed.matrix, replayed.matrix)


class Records(Strategy):
    """Writes down what each hook received."""

    def __init__(self) -> None:
        self.losses: list[tuple] = []
        self.after: list[tuple] = []

    def loss(self, module, step, loss):
        self.losses.append((step.task, step.raw_logits.requires_grad, step.logits.shape,
                            torch.equal(step.logits, module(step.x, step.t).detach()) or None))
        return loss

    def after_step(self, module, step):
        self.after.append((step.task, len(step.y)))


def test_hooks_receive_the_batch_task_and_both_logits(digits_data):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=2, scenario="task")
    strategy = Records()
    run(stream, ContinualModule(MLP(hidden=(16,)), strategy), batch_size=64,
        trainer={"max_epochs": 1}, echo=None)
    steps = [len(task.train) // 64 + bool(len(task.train) % 64) for task in stream]
    assert [a[0] for a in strategy.after] == [0] * steps[0] + [1] * steps[1]
    assert sum(n for _, n in strategy.after) == sum(len(task.train) for task in stream)
    assert all(grad and shape[-1] == 10 for _, grad, shape, _ in strategy.losses)
    # task-incremental: the loss's logits are the raw ones with other tasks' classes hidden
    assert all(same for *_, same in strategy.losses)


class SeesInputs(Strategy):
    def __init__(self) -> None:
        self.shift: list[float] = []

    def loss(self, module, step, loss):
        self.shift.append(float((step.inputs - step.x).mean()))
        return loss


def test_steps_carry_the_inputs_the_network_took_beside_the_stored_batch(digits_data):
    from continual.data.transforms import augment

    stream = augment(split_classes(digits_data, n_tasks=2), lambda x: x + 100.0)
    strategy = SeesInputs()
    run(stream, ContinualModule(MLP(hidden=(16,)), strategy), batch_size=64,
        trainer={"max_epochs": 1}, echo=None)
    assert strategy.shift and all(abs(s - 100.0) < 1e-3 for s in strategy.shift)
