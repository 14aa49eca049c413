"""Writing a recorded result: the JSON, its Markdown report beside it, the report echoed."""

from __future__ import annotations

import json
from pathlib import Path


def save(out: str | Path, data: dict, markdown: str) -> None:
    """``data`` to ``out`` (JSON) and ``markdown`` to the same name ending ``.md``."""
    out = Path(out)
    out.write_text(json.dumps(data, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown)
    print(markdown)
