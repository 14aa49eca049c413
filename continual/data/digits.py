"""scikit-learn's bundled handwritten digits: real data that needs no download."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from continual.data.splits import DataSplits, stratified_splits


def digits(val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0) -> DataSplits:
    """1,797 8×8 grey-level digits (10 classes), scaled to [0, 1] and split with ``seed``.

    Inputs have shape ``[1, 8, 8]`` so image networks and flattening MLPs both apply.
    """
    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [N, 1, 8, 8]
    y = torch.tensor(bunch.target, dtype=torch.long)
    return stratified_splits(
        x, y, name="digits", n_classes=10,
        val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
    )
