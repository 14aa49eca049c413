"""The CLI picks intra-op threads for the network unless the user says."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from continual.cli import main
from continual.threads import SMALL_NET, choose_threads


@pytest.fixture(autouse=True)
def keep_threads(monkeypatch):
    before = torch.get_num_threads()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    yield
    torch.set_num_threads(before)


def test_small_nets_get_one_thread_large_ones_every_core(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert choose_threads(nn.Linear(10, 2)) == 1 and torch.get_num_threads() == 1
    big = nn.Linear(SMALL_NET, 1)
    assert choose_threads(big) == 4
    assert choose_threads(big, threads=2) == 2 and torch.get_num_threads() == 2


def test_the_environment_wins_over_the_choice(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    torch.set_num_threads(3)
    assert choose_threads(nn.Linear(10, 2)) == 3


def test_threads_flag_is_checked(tmp_path, capsys):
    assert main(["run", "--threads", "0", "--output", str(tmp_path), "--quiet", "true"]) == 2
    assert "threads=0 is invalid" in capsys.readouterr().err
