"""The ``continual simulate`` schema: a chunk stream, a network, and the policies to compare."""

from __future__ import annotations

from jsonargparse import ActionConfigFile, ArgumentParser
from torch import nn

from continual.config import (
    DEFAULTS,
    OptimizerCallable,
    add_output_arguments,
    add_trainer_arguments,
)
from continual.retraining.policy import Policy
from continual.retraining.sources import ChunkSource

SIMULATE_DEFAULTS = {
    "stream": {"class_path": "continual.retraining.DriftingChunks"},
    "policies": [
        {"name": "never"},
        {"name": "every chunk", "trigger": {"class_path": "continual.retraining.EveryK"}},
        {"name": "threshold", "trigger": {"class_path": "continual.retraining.AccuracyThreshold",
                                          "init_args": {"min_accuracy": 0.7, "max_drop": 0.1}}},
    ],
}


def simulate_parser() -> ArgumentParser:
    """``continual simulate``: every policy replayed over the same stream, one table."""
    p = ArgumentParser(prog="continual simulate", exit_on_error=False, env_prefix="CONTINUAL",
                       description="Replay a drifting stream through retraining policies.")
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the fields")
    p.add_argument("--seed", type=int, default=0, help="seeds network init, splits, data order")
    p.add_argument("--stream", type=ChunkSource, default=SIMULATE_DEFAULTS["stream"])
    p.add_argument("--model.net", type=nn.Module, default=DEFAULTS["model.net"])
    p.add_argument("--model.optimizer", type=OptimizerCallable, default=DEFAULTS["model.optimizer"])
    p.add_argument("--policies", type=list[Policy], default=SIMULATE_DEFAULTS["policies"])
    add_trainer_arguments(p)
    p.set_defaults({"trainer.devices": 1})  # retrains are small and sequential: one process
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--eval_batch_size", type=int, default=1024)
    p.add_argument("--holdout_fraction", type=float, default=0.2,
                   help="share of each chunk never trained on (the deploy gate's data)")
    p.add_argument("--label_delay", type=int, default=0, help="steps until a chunk's labels arrive")
    p.add_argument("--initial_chunks", type=int, default=3,
                   help="chunks that train the first deployed model (not scored)")
    p.add_argument("--alpha", type=float, default=0.5,
                   help="cost of one retrain in chunks of errors (total cost column)")
    p.add_argument("--steps", type=bool, default=False,
                   help="also print every retrain and gate decision as it happens")
    p.add_argument("--plot", type=list[str] | None, default=None,
                   help="the policies drawn in accuracy_over_time.png (default: all, one small "
                        "panel each when more than 4)")
    add_output_arguments(p, "where steps are logged")
    return p
