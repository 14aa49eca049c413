"""``run()``: train a module task after task and fill the accuracy matrix."""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
from lightning.pytorch import Callback
from lightning.pytorch.loggers import Logger
from torch import Tensor
from torch.utils.data import BatchSampler

from continual.checkpoint import (
    MidTask,
    MidTaskCheckpoint,
    describe_setup,
    fingerprint,
    load_checkpoint,
    mid_task,
    remove_mid_task,
    save_checkpoint,
)
from continual.data.batching import EpochShuffle, TensorBatches, TensorLoader
from continual.data.lazy import LazyData, first_inputs, held_for_evaluation
from continual.data.lazy_loading import LazyLoader
from continual.data.stream import Stream
from continual.data.tensors import TensorData
from continual.distributed import RankBatches, is_rank_zero, launch, sum_over_ranks, world_size
from continual.errors import ConfigError
from continual.evaluation import evaluate_rows
from continual.fitting import TRAINER_DEFAULTS, RunTrainer, quiet_lightning, trainer_arguments
from continual.module import ContinualModule
from continual.result import Result, TaskCost
from continual.tracking.live import StepLogger
from continual.tracking.loggers import log_final, log_task, resume_csv_logs
from continual.tracking.plots import plot_run
from continual.tracking.progress import TaskProgressBar

__all__ = ["TRAINER_DEFAULTS", "check_settings", "prepare", "quiet_lightning", "run",
           "trainer_arguments"]


@dataclass(frozen=True)
class _Plan:
    """A run's fixed settings, as every task's training reads them."""

    batch_size: int
    seed: int
    device: torch.device


def run(
    stream: Stream,
    module: ContinualModule,
    *,
    trainer: dict[str, Any] | None = None,
    batch_size: int = 32,
    eval_batch_size: int = 1024,
    seed: int = 0,
    run_dir: str | Path | None = None,
    loggers: Sequence[Logger] = (),
    config: dict[str, Any] | None = None,
    echo: Callable[[str], None] | None = print,
    resume: bool = False,
    progress: bool = False,
    data_on_device: bool = False,
    checkpoint_every_n_epochs: int = 1,
    evaluate_untrained: bool = True,
) -> Result:
    """Train ``module`` on each task of ``stream`` in turn and evaluate it on every task.

    For each task: ``strategy.on_task_start`` → ``Trainer.fit`` on ``strategy.train_data`` →
    ``strategy.on_task_end`` → accuracy on every task's test set (one row of the matrix), then
    the row is logged and, with ``run_dir``, saved: a crash never loses finished tasks. Under
    DDP every rank runs this for the whole stream (see :mod:`continual.distributed`).

    Args:
        stream, module: the tasks in order; the network and strategy to train.
        trainer: keyword arguments for the :class:`~lightning.pytorch.Trainer` that fits every
            task (``max_epochs``, ``max_steps``: each task's own).
        batch_size: training batch size, all processes together (unlike Lightning's).
        eval_batch_size: batch size for the accuracy matrix (inference only, so large).
        seed: each task's data order and torch's RNG at its start depend on (seed, task) only.
        run_dir: where results, checkpoints (after every task, and within a task every
            ``checkpoint_every_n_epochs`` epochs; 0: none within) and plots are written.
        loggers: Lightning loggers: each row against the task index, and the training
            curves every ``trainer["log_every_n_steps"]`` steps against the global step.
        config: the resolved configuration, stored with the results.
        echo: where progress lines go; ``None`` for silence.
        resume: continue from ``run_dir``'s checkpoints (after a task, or within one).
        progress: show a progress bar per task (``task 3/5 · epoch 2/5 · loss …``).
        data_on_device: move every task's tensors to the training device once.
        evaluate_untrained: score the untrained network on every task first (forward
            transfer's reference: one more evaluation pass); ``False`` leaves it ``nan``.
    """
    check_settings(batch_size, eval_batch_size, seed, checkpoint_every_n_epochs, trainer or {})
    run_dir = None if run_dir is None else Path(run_dir)
    fits, live, saver = _start_ranks(trainer, len(stream), progress, loggers, run_dir,
                                     checkpoint_every_n_epochs)  # before any collective
    lead = is_rank_zero()  # only rank 0 writes files, logs and prints
    say = echo if echo is not None and lead else _silent
    plan = _Plan(batch_size, seed, fits.trainer.strategy.root_device)
    prepare(stream, module)
    result = _new_result(stream, module, seed, config, trainer, batch_size)
    if saver is not None:  # a mid-task checkpoint resumes only this configuration
        saver.fingerprint = fingerprint(result)
    first, mid = _resume(run_dir, module, result, say) if resume and run_dir else (0, None)
    if live is not None:  # the curves continue on the steps of the tasks already trained
        live.global_step = sum(c.train_steps for c in result.cost)
    if resume and run_dir is not None and lead:
        _keep_finished(run_dir, result, loggers, first, mid)
    if data_on_device:
        stream = stream.to(plan.device)
    module.to(plan.device)
    tests = [held_for_evaluation(task.test) for task in stream]  # small lazy ones read once
    # Class-incremental: the task-incremental row too, from the same logits.
    task_il = stream.class_mask() if result.task_il_matrix is not None else None
    untrained_seconds = _score_untrained(result, module, tests, eval_batch_size) \
        if first == 0 and evaluate_untrained else 0.0
    with quiet_lightning():
        for i in range(first, len(stream)):
            cost = train_task(stream, module, i, plan, fits, mid if i == first else None)
            row = _add_rows(result, module, tests, eval_batch_size, task_il, cost)
            cost.eval_seconds += untrained_seconds if i == 0 else 0.0  # counted with task 0's
            if lead:
                _record(result, module, loggers, run_dir)
            say(_task_line(stream, i, cost, row))
    if lead:
        log_final(loggers, result, plot_run(result, run_dir) if run_dir is not None else {})
    return result


def _score_untrained(result: Result, module: ContinualModule, tests: list[TensorData],
                     batch_size: int) -> float:
    """The untrained network's accuracy on every task (forward transfer's reference); its
    seconds."""
    start = time.perf_counter()
    result.baseline = np.asarray(evaluate_rows(module, tests, batch_size)[0])
    return time.perf_counter() - start


def _add_rows(result: Result, module: ContinualModule, tests: list[TensorData],
              batch_size: int, task_il: Tensor | None, cost: TaskCost) -> list[float]:
    """Evaluate every task now: the row (and the task-IL row) and the cost appended to
    ``result``, the evaluation's seconds to ``cost``; the class-IL row returned."""
    start = time.perf_counter()
    row, task_il_row = evaluate_rows(module, tests, batch_size, task_il)
    cost.eval_seconds = time.perf_counter() - start
    result.matrix = np.vstack([result.matrix, row])
    if task_il_row is not None:
        result.task_il_matrix = np.vstack([result.task_il_matrix, task_il_row])
    result.cost.append(cost)
    return row


def train_task(stream: Stream, module: ContinualModule, index: int, plan: _Plan,
               fits: RunTrainer, resume_from: MidTask | None = None) -> TaskCost:
    """Task ``index``: the strategy's start, a fit on its training data (``resume_from``: the
    task's mid-task checkpoint), the strategy's end."""
    strategy, cost = module.strategy, TaskCost()
    # Each task's randomness depends on (seed, task) only: a resumed run repeats exactly.
    torch.manual_seed(_task_seed(plan.seed, index))
    start = time.perf_counter()
    strategy.on_task_start(module, stream, index)
    cost.strategy_seconds = time.perf_counter() - start
    data = strategy.train_data(stream, index)
    if data is not None and len(data):
        first = resume_from.start if resume_from is not None else fits.start_task()
        module.task_index, seen = index, module.samples_seen
        with _lent(data, strategy.val_data(stream, index)) as (train, val):
            start = time.perf_counter()
            # Rows name items of the task's own training data (Step.rows); another set
            # (all tasks so far, a memory) gives its batches without them.
            rows = data is stream[index].train
            loaders = (_loader(train, plan.batch_size, plan.seed, index, first[0], plan.device,
                               rows), _val_loader(val))
            try:
                fits.fit(module, *loaders, resume_from.path if resume_from else None, index,
                         first)
            finally:  # a lazy loader's workers go now, not whenever the Trainer is collected
                for loader in loaders:
                    if isinstance(loader, LazyLoader):
                        loader.close()
            cost.train_seconds = time.perf_counter() - start
        cost.train_steps = fits.position()[1] - first[1]
        seen = torch.tensor(module.samples_seen - seen)
        cost.train_samples = int(sum_over_ranks(seen))  # every rank's samples
    data = None  # not alive while the strategy works, nor while the next task's data is built
    module.to(plan.device)  # a fit's teardown may have moved it
    start = time.perf_counter()
    strategy.on_task_end(module, stream, index)
    cost.strategy_seconds += time.perf_counter() - start
    cost.memory_bytes = strategy.memory_bytes()
    return cost


def prepare(stream: Stream, module: ContinualModule) -> None:
    """Check the network's outputs cover the stream's labels; set the task-incremental mask,
    and the inputs' normalisation and training augmentation the stream's data declares."""
    train = stream[0].train
    module.prepare_for(stream.n_classes, first_inputs(train), stream.head_mask(),
                       normalization=train.normalization, augmentation=train.transform)


def check_settings(batch_size: int, eval_batch_size: int, seed: int,
                   checkpoint_every_n_epochs: int, trainer: dict[str, Any]) -> None:
    """One line for each setting no run could go through with (before anything is written)."""
    for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
        if value < 1:
            raise ConfigError(f"{name}={value} is invalid; allowed: 1 or more")
    if not 0 <= seed < 2**32:
        raise ConfigError(f"seed={seed} is invalid; allowed: 0 <= seed < 2**32")
    if checkpoint_every_n_epochs < 0:
        raise ConfigError(f"checkpoint_every_n_epochs={checkpoint_every_n_epochs} is invalid; "
                          "allowed: 0 (none within a task) or more")
    epochs, steps = trainer.get("max_epochs"), trainer.get("max_steps")
    if epochs is not None and epochs < 1 and not (steps is not None and steps > 0):
        raise ConfigError(f"trainer.max_epochs={epochs} is invalid (a task would never end); "
                          "allowed: 1 or more, or trainer.max_steps > 0")


def _task_line(stream: Stream, i: int, cost: TaskCost, row: list[float]) -> str:
    return (f"task {i + 1}/{len(stream)} [{stream[i].name}] · {cost.train_samples:,} samples · "
            f"{cost.total_seconds:.1f} s ({cost.train_seconds:.1f} training) · accuracy on tasks "
            f"so far {100 * np.mean(row[: i + 1]):.1f}%")


def _start_ranks(trainer: dict[str, Any] | None, n_tasks: int, progress: bool,
                 loggers: Sequence[Logger], run_dir: Path | None, checkpoint_every: int
                 ) -> tuple[RunTrainer, StepLogger | None, MidTaskCheckpoint | None]:
    """The run's Trainer with the runner's callbacks, and the DDP ranks (if any) started with
    it for the whole stream; the training curves' and the mid-task saver's callbacks."""
    live = StepLogger(loggers) if loggers else None
    saver = MidTaskCheckpoint(run_dir, checkpoint_every) \
        if run_dir is not None and checkpoint_every else None
    callbacks: list[Callback] = [TaskProgressBar(n_tasks)] if progress else []
    callbacks += [c for c in (live, saver) if c is not None]
    # Under DDP the runner shares its batches out itself (RankBatches); in one process
    # Lightning would add no sampler anyway.
    kwargs = {**trainer_arguments(trainer, *callbacks), "use_distributed_sampler": False}
    if progress:  # shown on rank 0 only (Lightning's bars disable themselves elsewhere)
        kwargs["enable_progress_bar"] = True
    with quiet_lightning():
        fits = RunTrainer(kwargs)
        launch(fits.trainer)
    if live is not None and not is_rank_zero():  # only rank 0 logs
        live.loggers = []
    return fits, live, saver


def _new_result(stream: Stream, module: ContinualModule, seed: int,
                config: dict[str, Any] | None, trainer: dict[str, Any] | None,
                batch_size: int) -> Result:
    """An empty result for this run, with what decides its numbers (``setup``)."""
    n = len(stream)
    return Result(matrix=np.zeros((0, n)), baseline=np.full(n, np.nan), cost=[],
                  stream=stream.describe(), strategy=repr(module.strategy), seed=seed,
                  config=config, versions=_versions(),
                  task_il_matrix=np.zeros((0, n)) if stream.scenario == "class" else None,
                  setup=describe_setup(module, {**TRAINER_DEFAULTS, **(trainer or {})},
                                       batch_size))


def _resume(run_dir: Path, module: ContinualModule, result: Result,
            say: Callable[[str], None]) -> tuple[int, MidTask | None]:
    """The first task to train and what of it a mid-task checkpoint holds, after restoring
    ``module`` and ``result`` from ``run_dir``'s checkpoints."""
    n = result.matrix.shape[1]
    first = len(result.matrix) if load_checkpoint(run_dir, module, result) else 0
    if first:
        say(f"resuming {run_dir} after task {first}/{n}")
    mid = mid_task(run_dir, first, result, module) if first < n else None
    if mid is not None:
        say(f"resuming task {first + 1}/{n} after epoch {mid.epochs} (mid-task checkpoint)")
    return first, mid


def _keep_finished(run_dir: Path, result: Result, loggers: Sequence[Logger], first: int,
                   mid: MidTask | None) -> None:
    """On resume, what the finished work left on disk stays: the CSV rows of the finished
    tasks (and of the curve up to the steps kept), and a ``results.json`` that is missing,
    unreadable or behind the checkpoint is written again from it."""
    steps = sum(c.train_steps for c in result.cost)
    resume_csv_logs(loggers, result, steps + (mid.steps if mid is not None else 0))
    if not first:
        return
    try:
        saved = Result.load(run_dir)
        behind = len(saved.matrix) != first
    except (ConfigError, OSError):
        behind = True
    if behind:
        result.save(run_dir)


def _record(result: Result, module: ContinualModule, loggers: Sequence[Logger],
            run_dir: Path | None) -> None:
    """The newest row to the loggers and, with a run folder, results and checkpoint to disk."""
    log_task(loggers, result, len(result.matrix) - 1)
    if run_dir is not None:
        save_checkpoint(run_dir, module, result)
        result.save(run_dir)
        remove_mid_task(run_dir)  # superseded by checkpoint.pt


def _task_seed(seed: int, index: int) -> int:
    return seed * 100_003 + index


def _loader(data: TensorData | LazyData, batch_size: int, seed: int, index: int,
            first_epoch: int = 0, device: torch.device | None = None, rows: bool = False
            ) -> TensorLoader | LazyLoader:
    # The data order of task i, epoch e depends on (seed, i, e) only: not on what earlier
    # tasks consumed from the global RNG, nor on how many epochs ran in this process
    # (first_epoch: Lightning's epoch where the task started).
    order = EpochShuffle(len(data), _task_seed(seed, index), first_epoch)
    if world_size() > 1:  # each rank its share of the very batches one process would draw
        batches = RankBatches(BatchSampler(order, batch_size, drop_last=False))
    else:
        batches = TensorBatches(order, batch_size)
    if isinstance(data, LazyData):  # read by worker processes, the same batches in order
        return LazyLoader(data, batches, pin_memory=device is not None and device.type == "cuda",
                          rows=rows)
    return TensorLoader(data, batches)


def _val_loader(data: TensorData | LazyData | None, batch_size: int = 1024
                ) -> TensorLoader | LazyLoader | None:
    if data is None or len(data) == 0:
        return None
    batches = torch.arange(len(data)).split(batch_size)  # in order
    return LazyLoader(data, batches) if isinstance(data, LazyData) else TensorLoader(data, batches)


@contextlib.contextmanager
def _lent(*parts: TensorData | None) -> Iterator[list[TensorData | None]]:
    """Handles sharing ``parts``' tensors, for one fit's loaders to hold; emptied after it.

    A Trainer keeps its loaders in reference cycles that only a full garbage collection frees
    (~0.2 s with Lightning loaded); emptying the handles instead means full retraining never
    holds two copies of everything seen.
    """
    handles = [p if p is None or isinstance(p, LazyData)  # lazy: its loader is closed instead
               else TensorData(p.x, p.y, p.t, p.transform) for p in parts]
    try:
        yield handles
    finally:
        for h in handles:
            if isinstance(h, TensorData):  # fresh empty tensors: a slice would keep the storage
                h.x, h.y, h.t = (v.new_empty((0, *v.shape[1:])) for v in (h.x, h.y, h.t))


def _silent(_: str) -> None:
    pass


def _versions() -> dict[str, str]:
    import continual

    return {"continual": continual.__version__, "python": platform.python_version(),
            "torch": torch.__version__, "lightning": lightning.__version__}
