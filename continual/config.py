"""The configuration schema: jsonargparse reads it from the signatures of the classes it names.

A user's own network is ``model.net: {class_path: mypackage.MyNet, init_args: {...}}``; any
field can be overridden with a dotted flag (``--strategy.init_args.from_scratch false``).
Unknown keys and wrong types are rejected with the field's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace
from lightning.pytorch import Trainer
from torch import nn

from continual.data.sources import StreamSource
from continual.errors import ConfigError
from continual.runner import TRAINER_DEFAULTS
from continual.strategies.base import Strategy
from continual.tracking.loggers import ALLOWED as ALLOWED_LOGGERS
from continual.tracking.loggers import LoggerSpec

OptimizerCallable = Callable[[Iterable], torch.optim.Optimizer]

DEFAULTS = {
    "data": {"class_path": "continual.data.SplitClasses",
             "init_args": {"n_tasks": 5, "scenario": "class"}},
    "model.net": {"class_path": "continual.nets.MLP",
                  "init_args": {"in_features": 64, "hidden": [100, 100], "n_classes": 10}},
    "model.optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.001}},
    "strategy": {"class_path": "continual.strategies.FineTune"},
}

# What each class-valued field accepts, for error messages.
ALLOWED = {
    "strategy": "a Strategy class name (FineTune, FullRetrain, Joint, …) or import path",
    "data": "a StreamSource class name (SplitClasses, Permuted) or import path",
    "model.net": "an import path of a torch.nn.Module subclass",
    "model.optimizer": "an import path of a torch.optim.Optimizer class",
    "config": "a path to an existing YAML file",
    "logger": f"a list of {ALLOWED_LOGGERS}",
}

# Aliases (csv, tensorboard, wandb) or any Lightning Logger by class path: checked by
# continual.tracking.loggers.check_loggers before the run folder is written.
Loggers = list[LoggerSpec]


def run_parser(prog: str = "continual run") -> ArgumentParser:
    """The parser for one run over one stream."""
    p = ArgumentParser(prog=prog, exit_on_error=False, env_prefix="CONTINUAL",
                       description="Train a network on a stream of tasks.")
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the fields")
    p.add_argument("--seed", type=int, default=0, help="seeds network init and data order")
    p.add_argument("--data", type=StreamSource, default=DEFAULTS["data"])
    p.add_argument("--model.net", type=nn.Module, default=DEFAULTS["model.net"])
    p.add_argument("--model.optimizer", type=OptimizerCallable, default=DEFAULTS["model.optimizer"])
    p.add_argument("--strategy", type=Strategy, default=DEFAULTS["strategy"])
    add_trainer_arguments(p)
    p.set_defaults({"trainer.max_epochs": 20})  # the demo's budget: each digits task converges
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--eval_batch_size", type=int, default=1024)
    p.add_argument("--data_on_device", type=bool, default=False,
                   help="hold the stream's tensors on the accelerator (no per-batch copies)")
    p.add_argument("--checkpoint_every_n_epochs", type=int, default=1,
                   help="save the task in training every this many epochs (0: only after tasks)")
    add_output_arguments(p, "where task rows are logged")
    return p


def add_trainer_arguments(p: ArgumentParser) -> None:
    """Every ``Trainer`` argument under ``trainer.`` (but the logger), with the stream defaults."""
    p.add_class_arguments(Trainer, "trainer", instantiate=False, skip={"logger"})
    p.set_defaults({f"trainer.{k}": v for k, v in TRAINER_DEFAULTS.items() if k != "logger"})


def add_output_arguments(p: ArgumentParser, logged: str) -> None:
    """Where results go and how much is printed: ``logger``, ``output``, ``name``, ``quiet``."""
    p.add_argument("--logger", type=Loggers, default=["csv"],
                   help=f"{logged}: {ALLOWED_LOGGERS}")
    p.add_argument("--output", type=str, default="runs", help="parent folder of run folders")
    p.add_argument("--name", type=str | None, default=None, help="run folder name")
    p.add_argument("--quiet", type=bool, default=False, help="print only the final table")
    p.add_argument("--threads", type=int | None, default=None,
                   help="CPU intra-op threads (default: 1 for nets under 2M parameters, else "
                        "every core; OMP_NUM_THREADS is honoured)")


def compare_parser() -> ArgumentParser:
    """``run``'s fields plus the strategies and seeds to compare."""
    p = run_parser("continual compare")
    p.description = "Run several strategies (and seeds) on the same stream; print one table."
    p.add_argument("--strategies", type=list[str] | str, default="FineTune,FullRetrain,Joint",
                   help="class names, import paths or YAML files, comma-separated")
    p.add_argument("--seeds", type=list[int] | str, default="0", help="e.g. 0,1,2")
    return p


def instantiate(parser: ArgumentParser, cfg: Namespace) -> Namespace:
    """Build the objects a config names (after seeding: network init depends on it).

    A class rejecting its arguments with a :class:`ConfigError` inside a union-typed field
    (``trigger: Trigger | None``) reaches jsonargparse's ``ValueError`` as its cause; the
    user's mistake is raised again as itself, for the CLI's one line.
    """
    try:
        return parser.instantiate(cfg)
    except ValueError as e:
        cause, seen = e, set()
        while cause is not None and id(cause) not in seen and not isinstance(cause, ConfigError):
            seen.add(id(cause))
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, ConfigError):
            raise ConfigError(str(cause)) from None
        raise
    except (RuntimeError, MemoryError) as e:  # a class that cannot be built as configured
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"the configured classes cannot be built ({first[:200]}); allowed: "
                          "sizes that fit in memory") from None


def check_optimizer(factory: Callable[[Iterable], torch.optim.Optimizer]) -> None:
    """Build the configured optimizer once on a probe parameter: its own checks (a negative
    learning rate, a bad beta) end in one line before anything is written."""
    try:
        factory([torch.zeros(1, requires_grad=True)])
    except (ValueError, TypeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"model.optimizer: {first}; allowed: the optimizer's valid "
                          "settings") from None


def report_parser() -> ArgumentParser:
    """``continual report RUN_DIR [RUN_DIR ...] [--output DIR]``."""
    p = ArgumentParser(prog="continual report", exit_on_error=False,
                       description="Markdown and HTML report comparing run folders.")
    p.add_argument("runs", nargs="+", help="run folders, or compare folders holding runs")
    p.add_argument("--output", type=str, default="report", help="folder for the report")
    return p
