"""The one exception type for user mistakes.

The CLI turns a :class:`ConfigError` into a one-line message and a non-zero exit, without a
traceback; anything else is a bug and keeps its traceback.
"""


class ConfigError(ValueError):
    """Bad user input: the message names the field, the bad value and what is allowed."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names task, epoch and step."""


class OutputError(RuntimeError):
    """A run's files could not be written (disk full, file too large, no permission); the
    message says which file, why, and how to continue the run."""


def missing_extra(what: str, package: str, extra: str) -> str:
    """The one line for an optional package that is not installed (``what`` needs it)."""
    return (f"{what} needs {package}, which is not installed; allowed: "
            f'pip install "continual[{extra}]"')
