"""A progress bar that says where in the stream training is: ``task 3/5 · epoch 2/5``."""

from __future__ import annotations

from lightning.pytorch.callbacks import TQDMProgressBar


class TaskProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, labelled with the task and the epoch out of their totals (the
    module's: ``task_index``, ``task_epoch``, ``task_epochs``)."""

    def __init__(self, n_tasks: int) -> None:
        super().__init__(leave=False)
        self.n_tasks = n_tasks

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        epochs = pl_module.task_epochs
        self.train_progress_bar.set_description(
            f"task {pl_module.task_index + 1}/{self.n_tasks} · epoch {pl_module.task_epoch + 1}"
            + (f"/{epochs}" if epochs is not None else ""))
