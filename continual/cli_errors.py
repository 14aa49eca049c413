"""Turn jsonargparse's multi-line validation errors into one line a user can act on."""

from __future__ import annotations

import re

_CLASS = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")
_NOT_FOUND = re.compile(r"import path|No module|does not exist|not a subclass|has no attribute")
_OPTION = re.compile(r"class_path '([\w.]+)': Option '(\w+)' is not accepted")
_LITERAL = re.compile(r"Expected a typing\.Literal\[(.*)\]\. Got value: (.*)")


def one_line(message: str, allowed: dict[str, str] | None = None) -> str:
    """Condense a parser error to ``field: problem; allowed: …`` on a single line.

    Args:
        message: the error text, possibly spanning several indented lines.
        allowed: per field, what values it accepts, added when the error does not say.
    """
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if not lines:
        return "invalid arguments"
    head = re.match(r'Parser key "([^"]+)":\s*(.*)', lines[0])
    if not head:
        return _clean(" ".join(lines))
    key, rest = head.group(1), [head.group(2), *lines[1:]]
    rest = [r for r in rest if r]
    given = next((r.split(":", 1)[1].strip() for r in rest if r.startswith("Given value:")), None)
    subtypes = next((r.split(":", 1)[1].strip() for r in rest if r.startswith("Subtypes:")), None)
    if given is not None and subtypes is not None:
        types = ", ".join(_CLASS.findall(subtypes)).replace("NoneType", "None") or subtypes
        return f"{key}: {given!r} is not valid; allowed: {types}"
    text = _clean(" ".join(r for r in rest if not r.startswith("- ") or len(rest) < 4))
    extra = (allowed or {}).get(key)
    if extra and _NOT_FOUND.search(text) and "allowed" not in text:
        text += f"; allowed: {extra}"
    return f"{key}: {text}"


def _clean(text: str) -> str:
    text = _CLASS.sub(r"\1", text).replace("NoneType", "None")
    text = text.replace("Problem with given class_path", "class_path")
    text = _OPTION.sub(r"option '\2' is not accepted by \1", text)
    text = _LITERAL.sub(r"\2 is not valid; allowed: \1", text)
    return re.sub(r"\s+", " ", text).strip()
