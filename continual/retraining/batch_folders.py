"""Batches that arrive as folders: an image folder or a litdata folder, hashed and read whole.

``continual retrain --batch`` takes the files a team already has. A labelled image-folder
batch holds one sub-folder per class, named by the class's **index** (``0/``, ``3/`` …): a
batch rarely holds every class, and names sorted batch by batch would give the same class
different indices. A litdata folder is one ``continual data optimize`` wrote (labels in its
side file). Pixels become floats in [0, 1], as the network of a deployment takes them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import Tensor

from continual.data.image_folder import IMAGE_EXTENSIONS, read_image
from continual.data.litdata_format import LABELS, read_litdata
from continual.errors import ConfigError


def folder_hash(folder: Path) -> str:
    """SHA-256 over the folder's files: each relative path and its bytes, in sorted order (the
    folder's name and the files' times do not count)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_folder(folder: Path, labelled: bool = True) -> tuple[Tensor, Tensor | None]:
    """Inputs (float) and labels of a batch folder; labels ``None`` when not ``labelled``."""
    if (folder / LABELS).is_file():  # written by write_litdata (continual data optimize)
        data = read_litdata(folder).materialize().decoded()
        return data.x.float(), data.y if labelled else None
    images = sorted(p for p in folder.rglob("*")
                    if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    allowed = ("allowed: a litdata folder (continual data optimize) or images in class "
               "sub-folders named by class index (0/, 1/, …)")
    if not images:
        raise ConfigError(f"batch={str(folder)!r} holds no images; {allowed}")
    labels = []
    for path in images:
        name = path.parent.name if path.parent != folder else ""
        if labelled and not name.isdigit():
            raise ConfigError(f"batch={str(folder)!r}: {path.relative_to(folder)} is not in a "
                              f"class folder named by an index; {allowed}")
        labels.append(int(name) if name.isdigit() else -1)
    from PIL import Image

    with Image.open(images[0]) as first:  # grey images stay one channel, as MNIST's are
        grey = first.mode in ("1", "L", "I", "I;16", "F")
    x = [read_image(p, None, grayscale=grey) for p in images]
    if len({tuple(i.shape) for i in x}) > 1:
        raise ConfigError(f"batch={str(folder)!r} holds images of different sizes; allowed: "
                          "images of one size, as the deployment's network takes them")
    x = torch.stack(x).float() / 255.0
    return x, torch.tensor(labels, dtype=torch.long) if labelled else None
