"""Shared fixtures: small real data (scikit-learn digits) and a quiet, fast trainer."""

from __future__ import annotations

import os

import pytest

# Test models are tiny: one intra-op thread is faster than two, and far faster when the cores
# are shared (OpenMP threads spin against each other). Subprocesses inherit the setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def digits_data():
    from continual.data import digits

    return digits()

