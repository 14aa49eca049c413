"""``run()``: train a module task after task and fill the accuracy matrix."""

from __future__ import annotations

import contextlib
import logging
import platform
import signal
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.loggers import Logger
from torch.utils.data import BatchSampler

from continual.checkpoint import (
    MID_TASK,
    MidTaskCheckpoint,
    fingerprint,
    load_checkpoint,
    mid_task_epochs,
    remove_mid_task,
    save_checkpoint,
)
from continual.data.batching import EpochShuffle, TensorBatches, TensorLoader
from continual.data.stream import Stream
from continual.data.tensors import TensorData
from continual.distributed import RankBatches, is_rank_zero, launch, sum_over_ranks, world_size
from continual.errors import ConfigError
from continual.evaluation import evaluate
from continual.module import ContinualModule
from continual.profiler import NullProfiler
from continual.result import Result, TaskCost
from continual.tracking.loggers import log_final, log_task
from continual.tracking.plots import plot_run
from continual.tracking.progress import TaskProgressBar

# Lightning's defaults are tuned for one long fit; a stream runs many short ones, quietly.
TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": 10,
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
}


def trainer_arguments(trainer: dict[str, Any] | None) -> dict[str, Any]:
    """Keyword arguments for one ``Trainer``: the runner's defaults, then ``trainer``'s.

    The callbacks come in a list of this Trainer's own: Lightning appends to the list it is
    given (plugins' callbacks, a checkpoint, a timer), and one list shared by every task's
    Trainer would collect another copy each task. The callback objects themselves are shared.
    Without a configured profiler, Lightning's do-nothing one is swapped for one that costs
    nothing per hook call (:class:`NullProfiler`); ``barebones`` mode refuses any profiler.
    """
    kwargs = {**TRAINER_DEFAULTS, **(trainer or {})}
    callbacks = kwargs.get("callbacks")
    if callbacks is not None:
        kwargs["callbacks"] = [callbacks] if isinstance(callbacks, Callback) else list(callbacks)
    if kwargs.get("profiler") is None and not kwargs.get("barebones"):
        kwargs["profiler"] = NullProfiler()
    return kwargs


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
) -> Result:
    """Train ``module`` on each task of ``stream`` in turn and evaluate it on every task.

    For each task: ``strategy.on_task_start`` → ``Trainer.fit`` on ``strategy.train_data`` →
    ``strategy.on_task_end`` → accuracy on every task's test set (seen and unseen), which is
    one row of the matrix. After each row the partial result is logged and, with ``run_dir``,
    saved, so a crash never loses finished tasks.

    Under DDP (``trainer={"strategy": "ddp", "devices": N}``) every rank runs this function:
    Lightning's launcher re-executes the script for the other ranks (torchrun and SLURM start
    them). The ranks start before the first task and serve the whole stream; each trains on its
    share of every batch; only rank 0 writes files, logs and prints; every rank returns the
    same result (see :mod:`continual.distributed`).

    Args:
        stream: the tasks, in order.
        module: the network and strategy to train.
        trainer: keyword arguments for each task's :class:`~lightning.pytorch.Trainer`
            (``max_epochs``, ``accelerator``, ``devices``, ``precision`` …).
        batch_size: training batch size, all processes together: under DDP each rank trains
            on its share of every batch a single process would draw, so the run takes the
            same steps on any number of processes (unlike Lightning's per-device batch size).
        eval_batch_size: batch size for the accuracy matrix (inference only, so large).
        seed: seeds each task's data order and torch's global RNG at the task's start, so a
            task's randomness depends on ``(seed, task)`` only (the network's initial weights
            are seeded by whoever builds it).
        run_dir: where to write ``results.json``, ``accuracy_matrix.csv`` and, after every
            task, ``checkpoint.pt``; within a task, ``mid_task.ckpt``; at the end the heatmap
            and forgetting plots (PNG). Under DDP, the same on every rank.
        loggers: Lightning loggers that receive each row of the matrix against the task index.
        config: the resolved configuration, stored with the results.
        echo: where progress lines go; ``None`` for silence.
        resume: continue from ``run_dir/checkpoint.pt`` when there is one, and within the
            next task from ``run_dir/mid_task.ckpt`` when it holds that task's epochs.
        progress: show a progress bar per task (``task 3/5 · epoch 2/5 · loss …``).
        data_on_device: move every task's tensors to the trainer's root device once, so
            batches are sliced there with no per-batch copy (the loaders use no worker
            processes and no pinned memory, as device tensors require).
        checkpoint_every_n_epochs: with ``run_dir``, save Lightning's checkpoint of the task
            in training (weights, optimizer, loops, strategy state, RNG) every this many
            epochs, overwriting the last; ``0``: only the checkpoint after each task.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} is invalid; allowed: 1 or more")
    if checkpoint_every_n_epochs < 0:
        raise ConfigError(f"checkpoint_every_n_epochs={checkpoint_every_n_epochs} is invalid; "
                          "allowed: 0 (none within a task) or more")
    settings = dict(trainer or {})
    strategy = module.strategy
    plugins: dict[tuple, Any] = {}  # one scan of the entry points for all the run's Trainers
    with quiet_lightning(), _plugins_looked_up_once(plugins):  # all ranks, before any collective
        launch(Trainer(**trainer_arguments(settings)))
    if world_size() > 1:  # the runner shares its batches out itself (RankBatches)
        settings["use_distributed_sampler"] = False
    lead = is_rank_zero()  # only rank 0 writes files, logs and prints
    progress = progress and lead
    prepare(stream, module)
    tests = [task.test for task in stream]
    result = Result(
        matrix=np.zeros((0, len(stream))), baseline=np.zeros(len(stream)), cost=[],
        stream=stream.describe(), strategy=repr(strategy), seed=seed, config=config,
        versions=_versions(),
    )
    say = echo if echo is not None and lead else (lambda _: None)
    first = 0
    if resume and run_dir is not None and load_checkpoint(Path(run_dir), module, result):
        first = len(result.matrix)
        say(f"resuming {run_dir} after task {first}/{len(stream)}")
    done = 0  # epochs of task `first` that its mid-task checkpoint holds
    if resume and run_dir is not None and first < len(stream):
        done = mid_task_epochs(Path(run_dir), first, result)
    if done:
        say(f"resuming task {first + 1}/{len(stream)} after epoch {done} (mid-task checkpoint)")
    with quiet_lightning(), _plugins_looked_up_once(plugins):
        for i in range(first, len(stream)):
            task = stream[i]
            # Each task's randomness depends on (seed, task) only: a resumed run repeats exactly.
            torch.manual_seed(seed * 100_003 + i)
            kwargs = _with_progress(trainer_arguments(settings), progress, i, len(stream))
            fit = Trainer(**_with_mid_task(kwargs, run_dir, checkpoint_every_n_epochs, result))
            device = fit.strategy.root_device
            if data_on_device and i == first:
                stream = stream.to(device)
                tests = [task.test for task in stream]
            module.to(device)
            if i == 0:
                result.baseline = np.asarray(evaluate(module, tests, eval_batch_size))
            cost = TaskCost()
            start = time.perf_counter()
            strategy.on_task_start(module, stream, i)
            cost.strategy_seconds = time.perf_counter() - start
            data = strategy.train_data(stream, i)
            if data is not None and len(data):
                seen_before, start = module.samples_seen, time.perf_counter()
                module.task_index = i
                lent = [_handle(data), _handle(strategy.val_data(stream, i))]
                _fit(fit, module, _loader(lent[0], batch_size, seed, i),
                     _val_loader(lent[1], eval_batch_size),
                     Path(run_dir) / MID_TASK if done and i == first else None)
                cost.train_seconds = time.perf_counter() - start
                seen = torch.tensor(module.samples_seen - seen_before)
                cost.train_samples = int(sum_over_ranks(seen))  # every rank's samples
                _empty(lent)
            data = None  # not alive while the next task's data is built
            module.to(device)
            start = time.perf_counter()
            strategy.on_task_end(module, stream, i)
            cost.strategy_seconds += time.perf_counter() - start
            start = time.perf_counter()
            row = evaluate(module, tests, eval_batch_size)
            cost.eval_seconds = time.perf_counter() - start
            result.matrix = np.vstack([result.matrix, row])
            result.cost.append(cost)
            if lead:
                log_task(loggers, result, i)
            if run_dir is not None and lead:
                save_checkpoint(Path(run_dir), module, result)
                result.save(run_dir)
                remove_mid_task(Path(run_dir))  # superseded by checkpoint.pt
            say(f"task {i + 1}/{len(stream)} [{task.name}] · {cost.train_samples:,} samples · "
                f"{cost.train_seconds:.1f} s · accuracy on tasks so far "
                f"{100 * np.mean(row[: i + 1]):.1f}%")
    if lead:
        plots = plot_run(result, run_dir) if run_dir is not None else {}
        log_final(loggers, result, plots)
    return result


def _fit(fit: Trainer, module: ContinualModule, train: TensorLoader, val: TensorLoader | None,
         ckpt_path: Path | None = None) -> None:
    """``Trainer.fit``, with Ctrl-C surfacing as KeyboardInterrupt instead of Lightning's exit.

    With ``ckpt_path`` (a mid-task checkpoint) Lightning restores weights, optimizer and loops
    and continues at the next epoch; the file holds tensors and plain data only.
    """
    try:
        fit.fit(module, train, val, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit:
        if not fit.interrupted:
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning left it ignored
        raise KeyboardInterrupt(f"interrupted during task {module.task_index}") from None


def _with_progress(kwargs: dict[str, Any], progress: bool, i: int, n: int) -> dict[str, Any]:
    if not progress:
        return kwargs
    callbacks = [*(kwargs.get("callbacks") or []), TaskProgressBar(i, n)]
    return {**kwargs, "callbacks": callbacks, "enable_progress_bar": True}


def _with_mid_task(kwargs: dict[str, Any], run_dir: str | Path | None, every: int,
                   result: Result) -> dict[str, Any]:
    """Add the mid-task checkpoint callback, when the run has a folder and asks for it."""
    if run_dir is None or every == 0:
        return kwargs
    saver = MidTaskCheckpoint(Path(run_dir), every, fingerprint(result))
    return {**kwargs, "callbacks": [*(kwargs.get("callbacks") or []), saver]}


def prepare(stream: Stream, module: ContinualModule) -> None:
    """Check the network's outputs cover the stream's labels; set the task-incremental mask."""
    class_mask = stream.class_mask() if stream.scenario == "task" else None
    module.prepare_for(stream.n_classes, stream[0].train.x, class_mask)


def _loader(data: TensorData, batch_size: int, seed: int, index: int) -> TensorLoader:
    # The data order of task i, epoch e depends on (seed, i, e) only: not on what earlier
    # tasks consumed from the global RNG, nor on how many epochs ran in this process.
    task_seed = seed * 100_003 + index
    order = EpochShuffle(len(data), task_seed)
    if world_size() > 1:  # each rank its share of the very batches one process would draw
        batches = RankBatches(BatchSampler(order, batch_size, drop_last=False))
    else:
        batches = TensorBatches(order, batch_size)
    return TensorLoader(data, batches)


def _handle(data: TensorData | None) -> TensorData | None:
    """A ``TensorData`` sharing ``data``'s tensors, for one fit's loaders to hold.

    A Trainer keeps its loaders in reference cycles that only a full garbage collection frees
    (~0.2 s with Lightning loaded); the runner empties the handle after the fit instead, so
    full retraining never holds two copies of everything seen.
    """
    return None if data is None else TensorData(data.x, data.y, data.t, data.transform)


def _empty(handles: list[TensorData | None]) -> None:
    for h in handles:
        if h is not None:  # fresh empty tensors: a slice would keep the storage alive
            h.x, h.y, h.t = (v.new_empty((0, *v.shape[1:])) for v in (h.x, h.y, h.t))


def _val_loader(data: TensorData | None, batch_size: int) -> TensorLoader | None:
    if data is None or len(data) == 0:
        return None
    return TensorLoader(data, torch.arange(len(data)).split(batch_size))  # in order


def _versions() -> dict[str, str]:
    import continual

    return {"continual": continual.__version__, "python": platform.python_version(),
            "torch": torch.__version__, "lightning": lightning.__version__}


@contextlib.contextmanager
def _plugins_looked_up_once(found: dict[tuple, Any]) -> Iterator[None]:
    """Let each task's ``Trainer()`` reuse one lookup of Lightning's callback plugins.

    Every ``Trainer()`` scans the entry points of all installed packages for callback
    factories: most of its construction time (~10 ms with a few hundred packages), paid once
    per task. Packages do not change during a run; the factories are still called for every
    Trainer, so each gets its own callbacks. ``found`` keeps the lookups: pass the same dict
    to every use within a run.
    """
    from lightning.fabric.utilities import registry

    lookup = getattr(registry, "entry_points", None)
    if lookup is None:  # another Lightning layout: leave it alone
        yield
        return

    def once(**kwargs: Any) -> Any:
        key = tuple(sorted(kwargs.items()))
        if key not in found:
            found[key] = lookup(**kwargs)
        return found[key]

    registry.entry_points = once
    try:
        yield
    finally:
        registry.entry_points = lookup


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Hide Lightning's per-fit banners ("GPU available…") and data-loader worker hints.

    A stream calls ``fit`` once per task; the same banner five times buries the results.
    Warnings and errors still show.
    """
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*number of training batches.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
