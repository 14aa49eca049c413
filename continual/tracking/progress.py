"""A progress bar that says where in the stream training is: ``task 3/5 · epoch 2/5``."""

from __future__ import annotations

from lightning.pytorch.callbacks import TQDMProgressBar


class TaskProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, labelled with the task and the epoch out of their totals."""

    def __init__(self, task: int, n_tasks: int) -> None:
        super().__init__(leave=False)
        self.task, self.n_tasks = task, n_tasks

    def on_train_epoch_start(self, trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(
            f"task {self.task + 1}/{self.n_tasks} · epoch {trainer.current_epoch + 1}/"
            f"{trainer.max_epochs}")
