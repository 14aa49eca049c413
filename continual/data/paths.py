"""Where a data folder named in a config lives, wherever the command runs from.

Shipped configs name data by a relative path (``root: mnist-t10k``). Read from the working
directory alone, such a path works only from one folder; here a relative path is looked up in
the working directory, then under each root of ``CONTINUAL_DATA`` (``os.pathsep``-separated),
then in the checkout's offline data folder (``../shared/data`` beside the repository).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "CONTINUAL_DATA"


def data_roots() -> list[Path]:
    """The folders a relative data path is looked up in, after the working directory."""
    roots = [Path(p).expanduser() for p in os.environ.get(DATA_ENV, "").split(os.pathsep) if p]
    checkout = Path(__file__).resolve().parents[2]
    return [*roots, checkout.parent / "shared" / "data"]


def find_data(path: str | Path) -> Path:
    """``path`` where it exists: as given (absolute, or from the working directory), else
    under the first data root that holds it; as given when none does (a download then
    creates it there, or the reader says it is missing)."""
    given = Path(path).expanduser()
    if given.is_absolute() or given.exists():
        return given
    for root in data_roots():
        if (root / given).exists():
            return root / given
    return given


WHERE = f"relative paths are looked up in the working directory, then under ${DATA_ENV}"
