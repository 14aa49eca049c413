"""A folder of images, one sub-folder per class (torchvision's ``ImageFolder`` layout).

Every image is decoded once, converted to RGB (or grayscale), resized to one size and held
as a uint8 tensor ``[N, C, H, W]``, scaled to [0, 1] batch by batch as it trains
(:func:`~continual.data.transforms.with_pixels`); label ``i`` is the ``i``-th sub-folder name
in sorted order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from continual.data.splits import DataSplits, stratified_splits, with_official_test
from continual.data.tensors import Transform
from continual.data.transforms import apply_transform, with_pixels
from continual.errors import ConfigError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff",
                    ".webp")


def image_folder(
    root: str | Path,
    test_root: str | Path | None = None,
    *,
    size: int | Sequence[int] | None = None,
    grayscale: bool = False,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    normalize: bool = False,
    transform: Transform | Sequence[Transform] | None = None,
) -> DataSplits:
    """Images under ``root/<class>/`` as splits; the test set from ``test_root`` or stratified.

    Args:
        root: one sub-folder per class, holding that class's images.
        test_root: the same layout for a separate test set (its classes must exist in ``root``);
            validation is then carved from ``root`` only.
        size: resize every image to ``size`` (int: square) or ``(height, width)``; None keeps
            the files' size, which must then be the same for all.
        grayscale: one channel instead of three.
        transform: applied once to every split's inputs (see :mod:`continual.data.transforms`).
    """
    root = Path(root)
    classes = class_folders(root, "root")
    hw = None if size is None else ((size, size) if isinstance(size, int) else tuple(size))
    if hw is not None and (len(hw) != 2 or min(hw) < 1):
        raise ConfigError(f"size={size!r} is invalid; allowed: a positive int or [height, width]")
    x, y = read_images(root, classes, classes, hw, grayscale)
    if test_root is None:
        data = stratified_splits(x, y, name=root.name, n_classes=len(classes),
                                 val_fraction=val_fraction, test_fraction=test_fraction,
                                 seed=seed)
    else:
        test_root = Path(test_root)
        test_classes = class_folders(test_root, "test_root")
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise ConfigError(f"test_root={str(test_root)!r} has classes {unknown} that root "
                              f"lacks; allowed: a subset of {classes}")
        test = read_images(test_root, test_classes, classes, hw, grayscale)
        if test[0].shape[1:] != x.shape[1:]:
            raise ConfigError(f"test_root images are {tuple(test[0].shape[1:])} but root images "
                              f"{tuple(x.shape[1:])}; allowed: one size (set size)")
        data = with_official_test((x, y), test, name=root.name, n_classes=len(classes),
                                  val_fraction=val_fraction, seed=seed)
    return apply_transform(with_pixels(data, standardize=normalize), transform)


def class_folders(root: Path, field: str) -> list[str]:
    """Sorted names of the class sub-folders of ``root``."""
    if not root.is_dir():
        raise ConfigError(f"{field}={str(root)!r} is not a folder; allowed: a folder with one "
                          "sub-folder of images per class")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ConfigError(f"{field}={str(root)!r} has no class sub-folders; allowed: "
                          f"{root}/<class>/<image> files")
    return classes


def read_images(root: Path, folders: list[str], classes: list[str],
                size: tuple[int, int] | None, grayscale: bool) -> tuple[Tensor, Tensor]:
    """Images ``[N, C, H, W]`` uint8 and labels (index in ``classes``) of ``folders``."""
    images, first = [], None
    paths, labels = image_files(root, folders, classes)
    for path in paths:
        image = read_image(path, size, grayscale)
        if first is None:
            first = path, image.shape
        elif image.shape != first[1]:
            raise ConfigError(f"{path} is {image.shape[2]}×{image.shape[1]} but {first[0]} "
                              f"is {first[1][2]}×{first[1][1]}; allowed: images of one "
                              "size, or set size to resize them")
        images.append(image)
    return torch.stack(images), labels


def image_files(root: Path, folders: list[str], classes: list[str]) -> tuple[list[Path], Tensor]:
    """The image files of ``folders`` in reading order, and their labels (index in
    ``classes``): listed, not opened."""
    paths, labels = [], []
    for folder in folders:
        files = sorted(f for f in (root / folder).iterdir()
                       if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise ConfigError(f"{root / folder} holds no images; allowed: at least one "
                              f"{'/'.join(IMAGE_EXTENSIONS)} file per class folder")
        paths += files
        labels += [classes.index(folder)] * len(files)
    return paths, torch.tensor(labels, dtype=torch.long)


def read_image(path: Path, size: tuple[int, int] | None, grayscale: bool) -> Tensor:
    """One image as uint8 ``[C, H, W]``, converted and (bilinearly) resized."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("L" if grayscale else "RGB")
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.array(image)
    except Image.DecompressionBombError as e:  # a header declaring billions of pixels
        raise ConfigError(f"{path} is refused as a decompression bomb ({e}); allowed: images "
                          f"of at most {Image.MAX_IMAGE_PIXELS:,} pixels") from None
    except (OSError, ValueError, MemoryError) as e:  # UnidentifiedImageError is an OSError
        reason = (str(e).splitlines() or [type(e).__name__])[0].replace(f" '{path}'", "")
        raise ConfigError(f"{path} is not a readable image ({reason})") from None
    tensor = torch.from_numpy(array)
    return tensor[None] if grayscale else tensor.permute(2, 0, 1).contiguous()
