"""The LightningModule that wraps a user's network and a continual-learning strategy."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import GradientAccumulationScheduler
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle
from torchmetrics.classification import MulticlassAccuracy

from continual.data.tensors import PixelNormalization
from continual.data.transforms import batched
from continual.distributed import any_rank
from continual.errors import ConfigError, NonFiniteLossError
from continual.strategies.base import Step, Strategy
from continual.strategies.finetune import FineTune

OptimizerFactory = Callable[[Iterable[Tensor]], torch.optim.Optimizer]


def default_optimizer(params: Iterable[Tensor]) -> torch.optim.Optimizer:
    """Adam with lr 1e-3: a setting that works on every built-in stream without tuning."""
    return torch.optim.Adam(params, lr=1e-3)


class ContinualModule(LightningModule):
    """Any ``nn.Module`` trained task after task under a :class:`Strategy`.

    Batches are ``(x, y, task_id)``. For task-incremental streams the runner installs a class
    mask, and each sample's logits outside its task's classes are suppressed: a single network
    behaves as one head per task.

    Inputs stored as integer pixels (uint8 images) are decoded batch by batch, on the batch's
    device, with the normalisation the dataset declares (:meth:`prepare_for` installs it):
    the module puts a forward pre-hook on ``net`` that decodes any integer input, so every
    path (training, replay, evaluation, importance estimates, a strategy's copy of the net)
    sees the same floats; float inputs pass unchanged. Training batches, new and replayed,
    are then augmented (:meth:`training_inputs`); evaluation never is.

    Args:
        net: the user's network, mapping inputs to class logits ``[B, C]``.
        strategy: what to train on and what to add to the loss (default: :class:`FineTune`).
        optimizer: factory called on the parameters at the start of every task, so each task
            starts with fresh optimizer state.
    """

    def __init__(
        self,
        net: nn.Module,
        strategy: Strategy | None = None,
        optimizer: OptimizerFactory = default_optimizer,
    ) -> None:
        super().__init__()
        self.net = net
        self.strategy = strategy if strategy is not None else FineTune()
        self.optimizer_factory = optimizer
        self.class_mask: Tensor | None = None  # [T, C] bool, set for task-incremental streams
        self.samples_seen = 0
        self.task_index = 0  # the task in training: set by the runner
        # Lightning's (epoch, optimizer step) where this task's fit started (set by
        # RunTrainer.fit): (0, 0), but for a task resumed from a mid-task checkpoint written
        # while Lightning's counts ran over the tasks of a run.
        self.task_start = (0, 0)
        self.initial_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        self.val_accuracy: MulticlassAccuracy | None = None
        self._log_steps = True
        self._step: Step | None = None  # the batch in training, until its after_step
        self._pending_loss: tuple[Tensor, int, int] | None = None  # (loss, epoch, step)
        self._defer_finite_check: bool | None = None  # None: on accelerators only
        self._inputs = _Inputs()  # the stream's normalisation and augmentation: prepare_for

    def forward(self, x: Tensor, task_ids: Tensor | None = None) -> Tensor:
        logits = self.net(x)  # [B, C]; integer inputs decoded by the hook
        if not self.training:  # evaluation: the strategy's prediction rule (iCaRL: nearest mean)
            logits = self.strategy.predict(self, x, task_ids, logits)
        return self.masked(logits, task_ids)

    @property
    def normalization(self) -> PixelNormalization | None:
        """How stored integer inputs become floats (the dataset's declaration), or None."""
        return self._inputs.normalization

    @property
    def augmentation(self) -> Callable[[Tensor], Tensor] | None:
        """The training augmentation of whole batches (the stream's), or None."""
        return self._inputs.augmentation

    def training_inputs(self, x: Tensor, augment: bool = True) -> Tensor:
        """The batch ``x`` ``[B, *input_shape]`` as the network trains on it: stored integer
        pixels decoded to the dataset's normalised floats, then, with ``augment``, the
        stream's training augmentation, a fresh draw per sample, on ``x``'s device.

        The training step uses it for new samples and
        :meth:`Rehearsal.replay <continual.strategies.rehearsal.Rehearsal.replay>` for
        replayed ones; the draws come from torch's global RNG, which checkpoints save.
        """
        x = self._inputs.decode(x)
        augmentation = self._inputs.augmentation
        return augmentation(x) if augment and augmentation is not None else x

    @property
    def task_epoch(self) -> int:
        """The epoch of the current task, counted from 0 (a resumed task continues its count)."""
        return self.current_epoch - self.task_start[0]

    @property
    def task_step(self) -> int:
        """Optimizer steps taken in the current task (a resumed task continues its count)."""
        return self.global_step - self.task_start[1]

    @property
    def task_epochs(self) -> int | None:
        """The epochs each task trains for (``trainer.max_epochs`` of the run); ``None`` when
        only steps limit a task."""
        limit = self.trainer.max_epochs
        return None if limit is None or limit < 0 else limit - self.task_start[0]

    def masked(self, logits: Tensor, task_ids: Tensor | None) -> Tensor:
        """Suppress logits outside each sample's task (task-incremental streams only)."""
        if self.class_mask is None or task_ids is None:
            return logits
        mask = self.class_mask.to(logits.device)[task_ids, : logits.shape[-1]]
        return logits.masked_fill(~mask, torch.finfo(logits.dtype).min)

    @property
    def automatic_optimization(self) -> bool:
        """Whether Lightning's closure runs the step: only when the trainer clips gradients,
        accumulates batches (or schedules accumulation), or a subclass configures its own
        optimizers (schedulers).

        Otherwise :meth:`training_step` does the update itself through Lightning's manual
        optimisation (its backward, optimizer step, mixed-precision scaling and every
        callback's step hooks included): the same arithmetic and hooks, without the closure
        machinery around every step.
        """
        if type(self).configure_optimizers is not ContinualModule.configure_optimizers:
            return True
        try:
            trainer = self.trainer
        except RuntimeError:  # not attached to a Trainer
            return False
        return bool(trainer.gradient_clip_val) or trainer.accumulate_grad_batches > 1 or any(
            isinstance(c, GradientAccumulationScheduler) for c in trainer.callbacks)

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        raise AttributeError("ContinualModule chooses its optimisation mode itself")

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._training_loss(batch, batch_idx)
        if self.automatic_optimization:
            return loss
        optimizer, trainer = self.optimizers(), self.trainer
        for callback in trainer.callbacks:  # the one step hook manual mode leaves out
            callback.on_before_zero_grad(trainer, self, optimizer)
        self.on_before_zero_grad(optimizer)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        return loss  # Lightning detaches it for on_train_batch_end

    def _training_loss(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y, t, *rows = batch  # lazy data's batches carry their rows too
        inputs = self.training_inputs(x)
        raw = self.net(inputs)
        logits = self.masked(raw, t)
        step = self._step = Step(x, y, t, raw, logits, self.task_index, inputs,
                                 rows[0] if rows else None)
        loss = self.strategy.loss(self, step, F.cross_entropy(logits, y))
        self._check_finite(loss.detach(), batch_idx)
        self.samples_seen += y.shape[0]
        if self._log_steps:
            self.log("train/loss", loss, prog_bar=True, batch_size=len(y))
        return loss

    def _check_finite(self, loss: Tensor, batch_idx: int) -> None:
        """Stop the run when the loss is NaN or infinite, naming task, epoch and step.

        On the CPU the check is immediate, before the step's update. Reading a flag back from
        an accelerator would stall its queue at every step, so there a step's loss is checked
        at the next step, at the epoch's end, or before any checkpoint is written: after its
        update, which only the task being trained sees (a stopped task is retrained whole on
        resume).
        """
        defer = self._defer_finite_check
        if not (loss.device.type != "cpu" if defer is None else defer):
            self._stop_if_not_finite(loss, None, batch_idx)  # None: this epoch
            return
        pending, self._pending_loss = self._pending_loss, (loss, self.task_epoch, batch_idx)
        if pending is not None:
            self._stop_if_not_finite(*pending)

    def _flush_finite_check(self) -> None:
        pending, self._pending_loss = self._pending_loss, None
        if pending is not None:
            self._stop_if_not_finite(*pending)

    def _stop_if_not_finite(self, loss: Tensor, epoch: int | None, step: int) -> None:
        bad = not math.isfinite(loss.item())  # one scalar: torch.isfinite costs 10× more
        # Under DDP every rank stops together (a rank that went on would wait forever for the
        # others' gradients).
        if any_rank(bad, loss.device):
            what = f"loss is {loss.item()}" if bad else "loss is not finite on another rank"
            epoch = self.task_epoch if epoch is None else epoch
            raise NonFiniteLossError(  # counted from 1, as the progress lines count
                f"{what} at task {self.task_index + 1}, epoch {epoch + 1}, step {step + 1}")

    def on_train_start(self) -> None:
        # Lightning's per-step logging costs more than a small model's step: log the loss only
        # when something reads it (a logger, the progress bar, a callback that monitors).
        trainer = self.trainer
        self._log_steps = bool(trainer.loggers) or trainer.progress_bar_callback is not None or \
            any(getattr(callback, "monitor", None) for callback in trainer.callbacks)
        self._pending_loss = None

    def on_train_epoch_end(self) -> None:
        self._flush_finite_check()

    def on_train_end(self) -> None:  # also when a fit stops inside an epoch (max_steps)
        self._flush_finite_check()
        self._step = None  # the last batch and its graph

    def __getstate__(self) -> dict[str, Any]:
        # Not state: the fit's trainer (Lightning drops it), the batch in training and its
        # graph (left behind by a fit that raised).
        state = super().__getstate__()
        state["_step"] = None
        return state

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int
                                 ) -> Any:
        # The runner's batches are tuples of tensors, usually already where they train (CPU
        # training, `data_on_device`): hand them on without Lightning's walk over the collection.
        if type(batch) is tuple and all(
                isinstance(v, Tensor) and v.device == device for v in batch):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        x, y, t = batch
        self.val_accuracy(self(x, t), y)
        self.log("val/acc", self.val_accuracy, prog_bar=True, batch_size=len(y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.strategy.on_before_optimizer_step(self)

    def on_train_batch_end(self, outputs, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        step, self._step = self._step, None
        if step is not None:
            self.strategy.after_step(self, step)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add to Lightning's mid-task checkpoint what it does not keep, in tensors and plain data
        (loadable with ``weights_only=True``): the strategy's state as of this epoch, the
        sample count, the task, and the global RNG, so the task continues as if never stopped.
        """
        self._flush_finite_check()  # never save weights a non-finite loss has updated
        checkpoint.setdefault("continual", {}).update({
            "task": self.task_index, "task_start": list(self.task_start),
            "samples_seen": self.samples_seen,
            "strategy": self.strategy.state_dict(), "rng": _rng_state(self.device)})

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore what :meth:`on_save_checkpoint` added (Lightning restores the rest)."""
        state = checkpoint["continual"]
        self.strategy.load_state_dict(state["strategy"])
        self.samples_seen = int(state["samples_seen"])
        self.task_start = tuple(state.get("task_start", (0, 0)))
        _set_rng_state(state["rng"], self.device)

    def reset_net(self) -> None:
        """Put the network back to its initial weights (training from scratch)."""
        self.net.load_state_dict(self.initial_state)

    def prepare_for(self, n_classes: int, example: Tensor, class_mask: Tensor | None, *,
                    normalization: PixelNormalization | None = None,
                    augmentation: Callable[[Tensor], Tensor] | None = None) -> None:
        """Check the network fits the stream; install the task-incremental mask, the inputs'
        declared normalisation and the training augmentation (made batched where it can be,
        see :func:`~continual.data.transforms.batched`)."""
        self._inputs.install(self.net, normalization, batched(augmentation))
        try:
            with torch.no_grad():
                out = self(example[:1].to(self.device))
        except (RuntimeError, TypeError, ValueError, IndexError) as e:
            raise ConfigError(
                f"model.net cannot take the stream's inputs of shape {tuple(example.shape[1:])} "
                f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); allowed: a net "
                "whose first layer takes that shape") from None
        if out.ndim != 2 or out.shape[-1] < n_classes:
            raise ConfigError(
                f"model.net outputs shape {tuple(out.shape)} per batch of 1, but the stream's "
                f"labels run 0..{n_classes - 1}; allowed: a net with [B, >= {n_classes}] logits"
            )
        self.class_mask = class_mask
        self.val_accuracy = MulticlassAccuracy(out.shape[-1], average="micro",
                                               validate_args=False).to(self.device)


# Lightning reads training_step's signature at every step (does it take batch_idx?); a signature
# stored on the function is returned by `inspect` as it is, instead of being parsed anew each time.
ContinualModule.training_step.__signature__ = inspect.signature(ContinualModule.training_step)


class _Inputs:
    """A stream's input preparation, and the forward pre-hook that decodes ``net``'s integer
    inputs (a plain object: the augmentation is no submodule, so no state-dict entry)."""

    def __init__(self) -> None:
        self.normalization: PixelNormalization | None = None
        self.augmentation: Callable[[Tensor], Tensor] | None = None
        self._hook: RemovableHandle | None = None

    def install(self, net: nn.Module, normalization: PixelNormalization | None,
                augmentation: Callable[[Tensor], Tensor] | None) -> None:
        """Use these; hook ``net`` only while there is something to decode (a hook takes
        ``nn.Module``'s slower call path, ~5 µs a forward)."""
        self.normalization, self.augmentation = normalization, augmentation
        if normalization is None and self._hook is not None:
            self._hook.remove()
            self._hook = None
        elif normalization is not None and self._hook is None:
            self._hook = net.register_forward_pre_hook(self)

    def decode(self, x: Tensor) -> Tensor:
        if self.normalization is None or x.is_floating_point():
            return x
        return self.normalization(x)

    def __call__(self, net: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not args or not isinstance(args[0], Tensor) or self.normalization is None or \
                args[0].is_floating_point():
            return None
        return (self.normalization(args[0]), *args[1:])


def _rng_state(device: torch.device) -> dict[str, Tensor]:
    """The global RNG streams training draws from (dropout, augmentation): CPU and ``device``'s."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
