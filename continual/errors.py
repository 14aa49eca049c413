"""The one exception type for user mistakes.

The CLI turns a :class:`ConfigError` into a one-line message and a non-zero exit, without a
traceback; anything else is a bug and keeps its traceback.
"""


class ConfigError(ValueError):
    """Bad user input: the message names the field, the bad value and what is allowed."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names task, epoch and step."""
