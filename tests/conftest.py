"""Shared fixtures: small real data (scikit-learn digits) and a quiet, fast trainer."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def digits_data():
    from continual.data import digits

    return digits()

