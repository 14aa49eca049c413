"""Mid-task checkpoints: a task stopped after some epochs resumes there, bit for bit."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything
from tests_helpers import (
    STRATEGY_MEMBERS,
    Crash,
    CrashAt,
    cli_run,
    kill_point_config,
    kill_when,
)
from torch import nn

from continual import ConfigError, ContinualModule, run
from continual.checkpoint import MID_TASK
from continual.cli import main
from continual.data import split_classes
from continual.data.batching import EpochShuffle, TensorBatches
from continual.fitting import RunTrainer
from continual.strategies import MIR, SI, FineTune, GDumb, RWalk

STRATEGIES = {"FineTune": FineTune, "SI": lambda: SI(lam=1.0), "GDumb": lambda: GDumb(60),
              "RWalk": lambda: RWalk(lam=1.0, delta_t=7), "MIR": lambda: MIR(buffer_size=50)}
KWARGS = {"batch_size": 32, "seed": 5, "echo": None}
EPOCHS = {"max_epochs": 3}


def fresh_module(make, seed: int) -> ContinualModule:
    # Dropout draws from the global RNG: a resume that lost its state would show.
    seed_everything(seed, verbose=False)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3),
                        nn.Linear(32, 10))
    return ContinualModule(net, make())


def crash(stream, make, run_dir: Path, every: int = 1) -> None:
    with pytest.raises(Crash):
        run(stream, fresh_module(make, 0), trainer={**EPOCHS, "callbacks": [CrashAt()]},
            run_dir=run_dir, checkpoint_every_n_epochs=every, **KWARGS)


@pytest.fixture(scope="module")
def stream(digits_data):
    return split_classes(digits_data, n_tasks=3)


@pytest.fixture(scope="module")
def unbroken(stream, tmp_path_factory):
    """Each strategy's uninterrupted run: its result and final weights, computed once."""
    cache = {}

    def get(name):
        if name not in cache:
            module = fresh_module(STRATEGIES[name], 0)
            result = run(stream, module, trainer=EPOCHS, run_dir=tmp_path_factory.mktemp(name),
                         **KWARGS)
            cache[name] = result, module.net.state_dict()
        return cache[name]
    return get


def assert_same_run(result, module, expected) -> None:
    whole, weights = expected
    np.testing.assert_array_equal(result.matrix, whole.matrix)
    assert [c.train_samples for c in result.cost] == [c.train_samples for c in whole.cost]
    assert all(torch.equal(a, b) for a, b in zip(module.net.state_dict().values(),
                                                 weights.values()))


def warnings_from_continual(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("continual")]


def test_epoch_order_depends_on_seed_and_epoch_only():
    ran = EpochShuffle(50, seed=7)
    orders = []
    for epoch in range(3):
        ran.set_epoch(epoch)
        orders.append(list(ran))
    jumped = EpochShuffle(50, seed=7)
    jumped.set_epoch(2)  # as Lightning does when it resumes at epoch 2
    assert list(jumped) == orders[2] and orders[1] != orders[2]
    assert sorted(orders[0]) == list(range(50))


def test_tensor_batches_are_the_epochs_order_drawn_when_the_epoch_starts():
    order = EpochShuffle(50, seed=7)
    batches = TensorBatches(order, 16)
    pending = iter(batches)  # Lightning creates the iterator, then sets the epoch on resume
    order.set_epoch(2)
    got = [b.tolist() for b in pending]
    assert len(batches) == len(got) == 4 and [len(b) for b in got] == [16, 16, 16, 2]
    assert sum(got, []) == list(order)  # epoch 2's order, cut in batches


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_task_resumes_from_its_last_epoch(name, stream, unbroken, tmp_path, caplog):
    crash(stream, STRATEGIES[name], tmp_path)
    saved = torch.load(tmp_path / MID_TASK, weights_only=True)
    # Each task's fit counts from 0, as a fresh Trainer's would.
    assert saved["continual"]["task"] == 1 and saved["continual"]["task_start"] == [0, 0]
    assert saved["epoch"] == 0  # the task's first epoch, done

    lines = []
    module = fresh_module(STRATEGIES[name], 123)  # a new process builds everything again
    with caplog.at_level(logging.WARNING):
        result = run(stream, module, trainer=EPOCHS, run_dir=tmp_path, resume=True,
                     **{**KWARGS, "echo": lines.append})
    assert "resuming task 2/3 after epoch 1 (mid-task checkpoint)" in lines
    assert not warnings_from_continual(caplog)
    assert_same_run(result, module, unbroken(name))
    assert not (tmp_path / MID_TASK).exists()  # superseded by checkpoint.pt


def test_a_checkpoint_counting_over_the_run_resumes_alike(stream, unbroken, tmp_path,
                                                         monkeypatch):
    # Written before each task's fit restarted Lightning's counts (they ran over the tasks):
    # the checkpoint says where its task began in them, and the task resumes all the same.
    monkeypatch.setattr(RunTrainer, "start_task", RunTrainer.position)
    crash(stream, FineTune, tmp_path)
    monkeypatch.undo()
    saved = torch.load(tmp_path / MID_TASK, weights_only=True)
    assert saved["continual"]["task_start"][0] == EPOCHS["max_epochs"]
    module = fresh_module(FineTune, 123)
    result = run(stream, module, trainer=EPOCHS, run_dir=tmp_path, resume=True, **KWARGS)
    assert_same_run(result, module, unbroken("FineTune"))


@pytest.mark.parametrize("damage", ["truncated", "flipped", "foreign"])
def test_unusable_mid_task_checkpoint_is_ignored_with_a_warning(damage, stream, unbroken,
                                                                tmp_path, caplog):
    crash(stream, FineTune, tmp_path)
    path = tmp_path / MID_TASK
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:3000])
    elif damage == "flipped":  # loads silently with torch.load: the CRC check catches it
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        state = torch.load(path, weights_only=True)
        state["continual"]["fingerprint"] = "another run"
        torch.save(state, path)
    lines = []
    module = fresh_module(FineTune, 123)
    with caplog.at_level(logging.WARNING):
        result = run(stream, module, trainer=EPOCHS, run_dir=tmp_path, resume=True,
                     **{**KWARGS, "echo": lines.append})
    problem = "another configuration" if damage == "foreign" else "is unreadable"
    [message] = warnings_from_continual(caplog)
    assert problem in message and "task 2 restarts from its beginning" in message
    assert "\n" not in message and not any("mid-task" in line for line in lines)
    assert_same_run(result, module, unbroken("FineTune"))  # the task trained again from 0


def test_mid_task_checkpoints_can_be_turned_off(stream, tmp_path):
    crash(stream, FineTune, tmp_path, every=0)
    assert (tmp_path / "checkpoint.pt").exists() and not (tmp_path / MID_TASK).exists()
    with pytest.raises(ConfigError, match="checkpoint_every_n_epochs=-1 is invalid"):
        run(stream, fresh_module(FineTune, 0), run_dir=tmp_path, checkpoint_every_n_epochs=-1)


KILL_POINT = '''
import os
import time
from pathlib import Path
from continual.strategies import Strategy


class PauseIn(Strategy):
    """Signals, then waits, in epoch 1 of a task (epoch 0 is checkpointed): time to SIGKILL.

    Only where MIDKILL_MARKER is set: the unbroken and the resumed runs never pause.
    """
    def __init__(self, task: int = 2):
        self.task = task

    def loss(self, module, step, loss):
        marker = os.environ.get("MIDKILL_MARKER")
        if marker and step.task == self.task and module.task_epoch == 1:
            Path(marker).write_text("paused")
            time.sleep(600)
        return loss
'''

def test_sigkill_in_a_task_resumes_at_its_last_epoch(tmp_path, monkeypatch):
    """FineTune and ER side by side (each process's start-up dominates on small machines)."""
    (tmp_path / "midkill.py").write_text(textwrap.dedent(KILL_POINT))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("MIDKILL_MARKER", raising=False)
    victims, names = {}, ("finetune", "er")
    for name in names:
        (tmp_path / f"{name}.yaml").write_text(kill_point_config(
            STRATEGY_MEMBERS[name], "{class_path: midkill.PauseIn, init_args: {task: 2}}",
            quiet=False))
        victims[name] = cli_run("--config", f"{name}.yaml", "--name", f"killed-{name}",
                                cwd=tmp_path, MIDKILL_MARKER=f"{name}.marker")
    for name in names:  # the unbroken runs, here, while the victims start
        assert main(["run", "--config", f"{name}.yaml", "--name", f"whole-{name}",
                     "--quiet", "true"]) == 0
    for name, victim in victims.items():
        kill_when(tmp_path / f"{name}.marker", victim, "epoch 1 of task 2")
        assert (tmp_path / "out" / f"killed-{name}" / MID_TASK).exists()

    resumes = {name: cli_run("--resume", f"out/killed-{name}", cwd=tmp_path) for name in names}
    for name, resume in resumes.items():
        out, err = resume.communicate(timeout=300)
        assert resume.returncode == 0, err[-2000:]
        assert "resuming task 3/4 after epoch 1 (mid-task checkpoint)" in out
        killed = tmp_path / "out" / f"killed-{name}"
        resumed = json.loads((killed / "results.json").read_text())
        whole = json.loads((tmp_path / "out" / f"whole-{name}" / "results.json").read_text())
        assert resumed["complete"] and resumed["matrix"] == whole["matrix"]
        assert not (killed / MID_TASK).exists()
