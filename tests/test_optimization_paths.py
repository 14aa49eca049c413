"""The module's own optimizer step (Lightning's manual optimisation, the fast default) trains
exactly as Lightning's automatic closure does, and the features only the closure offers
(gradient clipping, accumulation, user-configured optimizers) still work."""

from __future__ import annotations

import math

import pytest
import torch
from lightning.pytorch import Callback

from continual import ContinualModule, run
from continual.data import split_classes
from continual.nets import MLP
from continual.strategies import AGEM, EWC, SI, ExperienceReplay, FineTune, LwF


class Mode(Callback):
    """Records which optimisation path each task's fit took."""

    def __init__(self) -> None:
        self.automatic: list[bool] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.automatic.append(pl_module.automatic_optimization)


def train(digits_data, make, **trainer):
    torch.manual_seed(0)
    stream = split_classes(digits_data, n_tasks=3)
    mode = Mode()
    module = ContinualModule(MLP(), make())
    result = run(stream, module, trainer={"max_epochs": 2, "callbacks": [mode], **trainer},
                 batch_size=64, echo=None)
    return result, module, mode.automatic


@pytest.mark.parametrize("make", [
    FineTune, lambda: EWC(lam=10.0), lambda: SI(lam=1.0), lambda: AGEM(buffer_size=40),
    lambda: ExperienceReplay(buffer_size=40), lambda: LwF(alpha=1.0),
], ids=["finetune", "ewc", "si", "agem", "er", "lwf"])
def test_own_step_equals_lightnings_closure(digits_data, make):
    fast, fast_module, fast_modes = train(digits_data, make)
    # A clipping threshold no gradient reaches changes no number but needs the closure.
    closure, closure_module, closure_modes = train(digits_data, make, gradient_clip_val=1e9)
    assert fast_modes == [False] * 3 and closure_modes == [True] * 3
    assert (fast.matrix == closure.matrix).all()
    for a, b in zip(fast_module.parameters(), closure_module.parameters()):
        assert torch.equal(a, b)


def test_gradient_clipping_and_accumulation_take_effect(digits_data):
    plain, _, _ = train(digits_data, FineTune)
    clipped, _, _ = train(digits_data, FineTune, gradient_clip_val=1e-4)
    accumulated, module, modes = train(digits_data, FineTune, accumulate_grad_batches=4)
    assert modes == [True] * 3
    assert (clipped.matrix != plain.matrix).any()
    assert (accumulated.matrix != plain.matrix).any()
    # Four batches per optimizer step (the epoch's last step may take fewer), two epochs.
    batches = math.ceil(len(split_classes(digits_data, n_tasks=3)[2].train) / 64)
    assert module.task_step == 2 * math.ceil(batches / 4)


class Scheduled(ContinualModule):
    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": optimizer,
                "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)}


def test_a_module_configuring_its_own_optimizers_keeps_lightnings_scheduling(digits_data):
    stream = split_classes(digits_data, n_tasks=2)
    module = Scheduled(MLP())
    run(stream, module, trainer={"max_epochs": 3}, echo=None)
    assert module.automatic_optimization
    assert module.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


class StepHooks(Callback):
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def on_before_zero_grad(self, *args) -> None:
        self._count("zero_grad")

    def on_before_backward(self, *args) -> None:
        self._count("backward")

    def on_after_backward(self, *args) -> None:
        self._count("after_backward")

    def on_before_optimizer_step(self, *args) -> None:
        self._count("optimizer_step")

    def on_train_batch_end(self, trainer, pl_module, outputs, *args) -> None:
        self._count("batch_end")
        assert set(outputs) == {"loss"} and not outputs["loss"].requires_grad


class ZeroGradCounting(ContinualModule):
    zero_grads = 0

    def on_before_zero_grad(self, optimizer) -> None:
        self.zero_grads += 1


@pytest.mark.parametrize("clip", [None, 1e9], ids=["own-step", "closure"])
def test_callbacks_see_every_step_hook_once_per_step(digits_data, clip):
    hooks = StepHooks()
    stream = split_classes(digits_data, n_tasks=2)
    module = ZeroGradCounting(MLP())
    run(stream, module, batch_size=64, echo=None,
        trainer={"max_epochs": 2, "callbacks": [hooks], "gradient_clip_val": clip})
    steps = sum(2 * math.ceil(len(task.train) / 64) for task in stream)
    assert hooks.calls == dict.fromkeys(
        ["zero_grad", "backward", "after_backward", "optimizer_step", "batch_end"], steps)
    assert module.zero_grads == steps  # the module's own hook too


class Steps(Callback):
    def __init__(self) -> None:
        self.global_steps: list[int] = []

    def on_train_end(self, trainer, pl_module) -> None:
        self.global_steps.append(pl_module.task_step)  # the run's Trainer counts over tasks


@pytest.mark.parametrize("clip", [None, 1e9], ids=["manual", "closure"])
def test_lightning_counts_every_step_on_either_path(digits_data, clip):
    torch.manual_seed(0)
    stream = split_classes(digits_data, n_tasks=3)
    steps = Steps()
    run(stream, ContinualModule(MLP(), EWC(lam=10.0)), batch_size=64, echo=None,
        trainer={"max_epochs": 2, "callbacks": [steps], "gradient_clip_val": clip})
    assert steps.global_steps == [2 * math.ceil(len(task.train) / 64) for task in stream]


class SkipsTrainHooks(ContinualModule):
    """Overrides the module's fit-level hooks without calling super(): nothing reset per fit."""

    def on_train_start(self) -> None:
        pass

    def on_train_end(self) -> None:
        pass


def test_each_fit_steps_its_own_optimizer_even_without_the_modules_fit_hooks(digits_data):
    def fit(cls):
        torch.manual_seed(0)
        stream = split_classes(digits_data, n_tasks=3)
        steps = Steps()
        result = run(stream, cls(MLP()), batch_size=64, echo=None,
                     trainer={"max_epochs": 1, "callbacks": [steps]})
        assert steps.global_steps == [math.ceil(len(task.train) / 64) for task in stream]
        return result.matrix

    assert (fit(SkipsTrainHooks) == fit(ContinualModule)).all()


class LogsBeforeStep(ContinualModule):
    """Logs, in its optimizer-step hook, a key the training step logs too."""

    def on_before_optimizer_step(self, optimizer) -> None:
        super().on_before_optimizer_step(optimizer)
        self.log("train/loss", 1.0, on_step=False, on_epoch=True)


def test_what_the_optimizer_step_hook_logs_is_filed_under_that_hook(digits_data, tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    module, steps = LogsBeforeStep(MLP()), Steps()
    run(split_classes(digits_data, n_tasks=1), module, batch_size=64, echo=None,
        trainer={"max_epochs": 1, "callbacks": [steps], "logger": CSVLogger(tmp_path)})
    assert module.trainer.logged_metrics["train/loss"] == 1.0  # not a clash with the step's


class NaNAtThirdStep(FineTune):
    def __init__(self) -> None:
        self.calls = 0

    def loss(self, module, step, loss):
        self.calls += 1
        return loss * float("nan") if self.calls == 3 else loss


def test_a_module_whose_fit_failed_still_pickles_and_copies_without_its_trainer(digits_data):
    import copy
    import io

    from continual.errors import NonFiniteLossError

    module = ContinualModule(MLP(), NaNAtThirdStep())
    with pytest.raises(NonFiniteLossError):
        run(split_classes(digits_data, n_tasks=1), module, batch_size=64, echo=None,
            trainer={"max_epochs": 1})
    torch.save(module, io.BytesIO())  # the fit's optimizer wrapper is not in the state
    twin = copy.deepcopy(module)
    for a, b in zip(twin.parameters(), module.parameters()):
        assert torch.equal(a, b)


def test_a_trainers_second_fit_steps_its_new_optimizer(digits_data):
    from lightning.pytorch import Trainer

    from continual.data.batching import EpochShuffle, TensorBatches, TensorLoader
    from continual.fitting import trainer_arguments

    data = split_classes(digits_data, n_tasks=1)[0].train
    batches = TensorLoader(data, TensorBatches(EpochShuffle(len(data), 0), 64))
    module = SkipsTrainHooks(MLP())
    trainer = Trainer(**trainer_arguments({"max_epochs": 1, "accelerator": "cpu"}))
    trainer.fit(module, batches)
    first = trainer.optimizers[0]
    trainer.fit_loop.max_epochs = 2
    trainer.fit(module, batches)
    second = trainer.optimizers[0]
    assert second is not first and trainer.global_step == 2 * len(batches)
    assert all(second.state[p]["step"] == len(batches) for p in module.parameters())
