"""continual: train your own network on a stream of tasks and see what it learned and forgot."""

__version__ = "0.1.0"

from continual.errors import ConfigError  # noqa: E402
from continual.module import ContinualModule  # noqa: E402
from continual.result import Result, TaskCost  # noqa: E402
from continual.runner import run  # noqa: E402

__all__ = ["ConfigError", "ContinualModule", "Result", "TaskCost", "__version__", "run"]
