"""continual: train your own network on a stream of tasks and see what it learned and forgot."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Loaded on first use, so `continual --help` and `--version` answer without importing Lightning.
_LAZY = {"ConfigError": "continual.errors", "ContinualModule": "continual.module",
         "Result": "continual.result", "TaskCost": "continual.result", "run": "continual.runner"}

if TYPE_CHECKING:
    from continual.errors import ConfigError
    from continual.module import ContinualModule
    from continual.result import Result, TaskCost
    from continual.runner import run


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'continual' has no attribute {name!r}")


__all__ = ["ConfigError", "ContinualModule", "Result", "TaskCost", "__version__", "run"]
