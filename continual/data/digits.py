"""scikit-learn's bundled handwritten digits: real data that needs no download."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from continual.data.splits import DataSplits, standardize, stratified_splits


def digits(
    val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0, normalize: bool = True
) -> DataSplits:
    """1,797 8×8 grey-level digits (10 classes), split with ``seed``, stratified by class.

    Inputs have shape ``[1, 8, 8]`` so image networks and flattening MLPs both apply; grey
    levels are scaled to [0, 1], then, with ``normalize``, standardized per pixel on the
    training split (see :func:`~continual.data.splits.standardize`).
    """
    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [N, 1, 8, 8]
    y = torch.tensor(bunch.target, dtype=torch.long)
    data = stratified_splits(
        x, y, name="digits", n_classes=10,
        val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
    )
    return standardize(data) if normalize else data
