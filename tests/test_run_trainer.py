"""One Trainer fits every task of a run, each fit as a fresh Trainer's would run."""

from __future__ import annotations

import math
import time

import pytest
import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import (
    EarlyStopping,
    GradientAccumulationScheduler,
    ModelCheckpoint,
)

import continual.fitting
from continual import ContinualModule, run
from continual.data import split_classes
from continual.data.batching import EpochShuffle
from continual.nets import MLP


class Counts(Callback):
    """Per fit: the module's task clock at its end, the epochs it ran, the epochs' numbers."""

    def __init__(self, stop_task: int | None = None) -> None:
        self.stop_task, self.fits, self.epochs = stop_task, [], []

    def on_train_start(self, trainer, pl_module) -> None:
        self.fits.append({"epochs": 0})

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.fits[-1]["epochs"] += 1
        self.epochs.append((pl_module.task_index, pl_module.task_epoch))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if pl_module.task_index == self.stop_task:
            trainer.should_stop = True  # as EarlyStopping does

    def on_train_end(self, trainer, pl_module) -> None:
        self.fits[-1].update(steps=pl_module.task_step, budget=pl_module.task_epochs)


@pytest.fixture(scope="module")
def stream(digits_data):
    return split_classes(digits_data, n_tasks=3)


def batches(task, batch_size: int = 64) -> int:
    return math.ceil(len(task.train) / batch_size)


def test_every_task_trains_its_own_epochs_numbered_from_zero(stream, monkeypatch):
    built = []

    class Counted(Trainer):
        def __init__(self, *args, **kwargs):
            built.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(continual.fitting, "Trainer", Counted)
    counts = Counts()
    result = run(stream, ContinualModule(MLP(64, (32,), 10)), batch_size=64, echo=None,
                 trainer={"max_epochs": 2, "callbacks": [counts]})
    assert len(built) == 1  # the run's one Trainer fitted all three tasks
    assert [f["epochs"] for f in counts.fits] == [2, 2, 2]
    assert counts.epochs == [(t, e) for t in range(3) for e in range(2)]
    assert [f["budget"] for f in counts.fits] == [2, 2, 2]
    assert [c.train_steps for c in result.cost] == [2 * batches(t) for t in stream]
    assert built[0].current_epoch == 2  # Lightning's count restarts every task


def test_a_stop_ends_its_own_task_only(stream):
    counts = Counts(stop_task=1)
    run(stream, ContinualModule(MLP(64, (32,), 10)), batch_size=64, echo=None,
        trainer={"max_epochs": 3, "callbacks": [counts]})
    assert [f["epochs"] for f in counts.fits] == [3, 1, 3]


def test_a_step_budget_counts_from_each_tasks_start(stream):
    counts = Counts()
    steps = batches(stream[0]) + 3  # each task stops inside its second epoch
    result = run(stream, ContinualModule(MLP(64, (32,), 10)), batch_size=64, echo=None,
                 trainer={"max_epochs": None, "max_steps": steps, "callbacks": [counts]})
    assert [c.train_steps for c in result.cost] == [steps] * 3
    assert [f["budget"] for f in counts.fits] == [None] * 3
    assert counts.epochs == [(t, e) for t in range(3) for e in range(2)]


def test_each_tasks_data_order_depends_on_its_own_epochs_only(stream):
    """Task 3, trained after six epochs of other tasks, draws epoch 0's and epoch 1's orders,
    as it would trained first (or resumed in a new process)."""
    seen = []

    class Labels(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if pl_module.task_index == 2:
                seen.append(batch[1].clone())

    run(stream, ContinualModule(MLP(64, (32,), 10)), batch_size=64, echo=None, seed=3,
        trainer={"max_epochs": 2, "callbacks": [Labels()]})
    order = EpochShuffle(len(stream[2].train), 3 * 100_003 + 2)  # the runner's (seed, task)
    expected = []
    for epoch in range(2):
        order.set_epoch(epoch)
        expected += list(stream[2].train.y[order.order()].split(64))
    assert len(seen) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(seen, expected))


def test_early_stopping_starts_afresh_every_task(stream):
    # It asks for an improvement of 1.0 in accuracy: the first check always improves on
    # nothing, the second never does, so a task on its own stops after its second epoch.
    # Carried over from the task before (one Trainer fits them all), its count of epochs
    # without improvement would stop every later task after its first.
    counts = Counts()
    stop = EarlyStopping(monitor="val/acc", mode="max", patience=1, min_delta=1.0)
    run(stream, ContinualModule(MLP(64, (32,), 10)), batch_size=64, echo=None,
        trainer={"max_epochs": 4, "callbacks": [counts, stop]})
    assert [f["epochs"] for f in counts.fits] == [2, 2, 2]


class Scheduled(ContinualModule):
    """Sizes a one-cycle schedule per task from ``trainer.estimated_stepping_batches``, as
    Lightning's documentation shows; records each task's estimate."""

    estimates: list[int] = []

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.01)
        total = self.trainer.estimated_stepping_batches
        Scheduled.estimates.append(total)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=total)
        return [optimizer], [{"scheduler": schedule, "interval": "step"}]


@pytest.mark.parametrize("budget", [{"max_epochs": 2}, {"max_epochs": 5, "max_steps": 7}])
def test_estimated_stepping_batches_counts_the_tasks_own_fit(stream, budget):
    Scheduled.estimates = []
    result = run(stream, Scheduled(MLP(64, (32,), 10)), batch_size=64, echo=None,
                 trainer=budget)
    assert Scheduled.estimates == [c.train_steps for c in result.cost]  # each its own task's


class Epochs(Callback):
    """Per task: the epochs (within the task) that ended in a validation, each epoch's
    learning rate and gradient accumulation."""

    def __init__(self) -> None:
        self.tasks: list[dict] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.tasks.append({"validated": [], "lr": [], "accumulate": []})

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.tasks[-1]["accumulate"].append(trainer.accumulate_grad_batches)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.tasks[-1]["lr"].append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.tasks[-1]["validated"].append(pl_module.task_epoch)


class Stepped(ContinualModule):
    """A StepLR stepped every second epoch, from an overridden ``configure_optimizers``."""

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return [optimizer], [{"scheduler": schedule, "interval": "epoch", "frequency": 2}]


def test_epoch_schedules_run_alike_in_every_task(stream):
    # What Lightning schedules by its epoch count runs as with a fresh Trainer a task:
    # validation every second epoch, a scheduler's frequency, an accumulation schedule.
    epochs = Epochs()
    run(stream, Stepped(MLP(64, (32,), 10)), batch_size=64, echo=None,
        trainer={"max_epochs": 3, "check_val_every_n_epoch": 2,
                 "callbacks": [GradientAccumulationScheduler({0: 1, 2: 2}), epochs]})
    for task in epochs.tasks:
        assert task == {"validated": [1], "lr": [0.1, 0.05, 0.05], "accumulate": [1, 1, 2]}


def test_max_time_bounds_each_task(stream):
    class Slow(Callback):
        def on_train_batch_end(self, *args) -> None:
            time.sleep(0.1)

    result = run(stream, ContinualModule(MLP(64, (32,), 10)), batch_size=64, echo=None,
                 trainer={"max_epochs": 3, "max_time": {"seconds": 0.5}, "callbacks": [Slow()]})
    steps = [c.train_steps for c in result.cost]
    assert all(0 < s < 3 * batches(t) for s, t in zip(steps, stream))  # each task, cut short


def test_a_checkpoint_callback_saves_in_every_task(stream, tmp_path):
    # Tasks 2 and 3 end on the same step of their own counts: a record of the last save kept
    # from task 2 would skip task 3's.
    assert batches(stream[1]) == batches(stream[2])
    class Saved(Callback):
        tasks: list[int] = []

        def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
            self.tasks.append(pl_module.task_index)

    saves = ModelCheckpoint(dirpath=tmp_path, every_n_epochs=2, save_top_k=-1)
    run(stream, ContinualModule(MLP(64, (32,), 10)), batch_size=64, echo=None,
        trainer={"max_epochs": 2, "enable_checkpointing": True, "callbacks": [saves, Saved()]})
    assert Saved.tasks == [0, 1, 2]


def test_an_accumulation_schedule_trains_the_plain_module(stream):
    # Lightning's schedule refuses manual optimisation: the module hands the step to its
    # automatic loop, as it does for accumulate_grad_batches > 1.
    epochs = Epochs()
    result = run(stream, ContinualModule(MLP(64, (32,), 10)), batch_size=64, echo=None,
                 trainer={"max_epochs": 3, "callbacks": [
                     GradientAccumulationScheduler({0: 1, 2: 2}), epochs]})
    assert [t["accumulate"] for t in epochs.tasks] == [[1, 1, 2]] * 3
    assert [c.train_steps for c in result.cost] == [
        2 * batches(t) + math.ceil(batches(t) / 2) for t in stream]
