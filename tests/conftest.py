"""Shared fixtures: small real data (scikit-learn digits) and a quiet, fast trainer.

Tests marked ``slow`` start processes of their own (DDP ranks, CLI runs killed with SIGKILL,
the console's W&B fallback): ``python -m pytest`` leaves them out (``addopts`` in
pyproject.toml), ``python -m pytest -m slow`` runs them, ``.ci/run`` runs both sets.
"""

from __future__ import annotations

import os

import pytest

# Test models are tiny: one intra-op thread is faster than two, and far faster when the cores
# are shared (OpenMP threads spin against each other). Subprocesses inherit the setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

# Marked here rather than in the files, one list for the whole slow set (a test may also carry
# @pytest.mark.slow itself). Each has a quick in-process counterpart in the default set:
# test_resume / test_faults / test_mid_task resume in one process, and DDP's refusal of
# per-fit strategies stays quick.
SLOW_MODULES = {
    "test_ddp.py",  # two ranks under Lightning's launcher, and forked process groups
    "test_sigkill.py",  # CLI runs killed with SIGKILL, then resumed
}
NOT_SLOW = {"test_ddp.py::test_strategies_that_spawn_per_fit_are_refused"}  # in-process
SLOW_TESTS = {"test_mid_task.py::test_sigkill_in_a_task_resumes_at_its_last_epoch"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        test = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
        if test in SLOW_TESTS or (item.path.name in SLOW_MODULES and test not in NOT_SLOW):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def digits_data():
    from continual.data import digits

    return digits()
