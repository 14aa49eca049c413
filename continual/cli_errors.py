"""Turn jsonargparse's multi-line validation errors into one line a user can act on."""

from __future__ import annotations

import re

_CLASS = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")
_NOT_FOUND = re.compile(r"import path|No module|does not exist|not a subclass|has no attribute")
_OPTION = re.compile(r"class_path '([\w.]+)': Option '(\w+)' is not accepted")
_OPTION_LINE = re.compile(r"Option '(\w+)' is not accepted")
_CLASS_PATH = re.compile(r"class_path '([\w.]+)':$")
_NESTED = re.compile(r'Parser key "([^"]+)":')
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
    # Nested classes nest their errors: the first "Given value" is the innermost one's.
    at = next((i for i, r in enumerate(rest) if r.startswith("Given value:")), None)
    subtypes = next((r.split(":", 1)[1].strip() for r in reversed(rest[:at or 0])
                     if r.startswith("Subtypes:")), None)
    if at is not None and subtypes is not None:
        given = rest[at].split(":", 1)[1].strip()
        key = ".".join([key, *(m.group(1) for m in map(_NESTED.match, rest[:at]) if m)])
        for before, line in zip(rest[:at], rest[1:at]):  # the class was right, an option not
            option, owner = _OPTION_LINE.match(line), _CLASS_PATH.search(before)
            if option and owner:
                return f"{key}: option '{option.group(1)}' is not accepted by {owner.group(1)}"
        return f"{key}: {given!r} is not valid; allowed: {_types(subtypes)}"
    text = _clean(" ".join(r for r in rest if not r.startswith("- ") or len(rest) < 4))
    extra = (allowed or {}).get(key)
    if extra and _NOT_FOUND.search(text) and "allowed" not in text:
        text += f"; allowed: {extra}"
    return f"{key}: {text}"


def _types(subtypes: str) -> str:
    """``[collections.abc.Sequence[str], <class 'NoneType'>]`` → ``Sequence[str], None``."""
    items, depth, start, inner = [], 0, 0, subtypes.strip()[1:-1]
    for i, c in enumerate(inner + ","):
        depth += c == "["
        depth -= c == "]"
        if c == "," and depth == 0:
            items.append(inner[start:i].strip())
            start = i + 1
    names = [re.sub(r"\b(?:[a-z_]\w*\.)+", "", _CLASS.sub(r"\1", item)) for item in items if item]
    return ", ".join(names).replace("NoneType", "None") or subtypes


def _clean(text: str) -> str:
    text = _CLASS.sub(r"\1", text).replace("NoneType", "None")
    text = text.replace("Problem with given class_path", "class_path")
    text = _OPTION.sub(r"option '\2' is not accepted by \1", text)
    text = _LITERAL.sub(r"\2 is not valid; allowed: \1", text)
    return re.sub(r"\s+", " ", text).strip()
