"""Small data files written by the tests themselves, and killed CLI runs."""

from __future__ import annotations

import gzip
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from lightning.pytorch import Callback
from torch.utils.data import Dataset


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype.type], array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    body = array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if compress else open)(path, "wb").write(header + body)


def fake_mnist(root: Path, n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    root.mkdir(parents=True, exist_ok=True)
    write_idx(root / "t10k-images-idx3-ubyte.gz", images)
    write_idx(root / "t10k-labels-idx1-ubyte.gz", labels)
    return images, labels


def colour_images(root: Path, n_classes: int, per_class: int, seed: int = 0,
                  noise: float = 25.0) -> Path:
    """``root/c<k>/<i>.png``: 3×8×8 images, each class its own colour plus noise (an image
    folder a small net learns in one epoch)."""
    from PIL import Image

    g = np.random.default_rng(seed)
    for c in range(n_classes):
        (root / f"c{c}").mkdir(parents=True)
        colour = g.integers(0, 256, 3)
        for i in range(per_class):
            pixels = np.clip(colour + g.normal(0, noise, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"c{c}" / f"{i:03d}.png")
    return root


class CountingRows(Dataset):
    """A map-style dataset of inputs ``x[i]`` with labels (``targets``) that counts its reads:
    lazy data must read only what it needs."""

    def __init__(self, x, y) -> None:
        self.x, self.targets, self.reads = x, y, 0

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        self.reads += 1
        return self.x[i], self.targets[i]


# ---- runs of the CLI killed with SIGKILL at a chosen point (test_sigkill, test_mid_task) ----

STRATEGY_MEMBERS = {
    "finetune": "{class_path: continual.strategies.FineTune}",
    "ewc": "{class_path: continual.strategies.EWC, init_args: {lam: 30.0, n_samples: 64}}",
    "er": "{class_path: continual.strategies.ExperienceReplay, init_args: {buffer_size: 50}}",
    "derpp": "{class_path: continual.strategies.DERpp, init_args: {buffer_size: 50}}",
}


def kill_point_config(member: str, pause: str, quiet: bool = True) -> str:
    """A 4-task Split-Digits run of ``member`` composed with ``pause``, a strategy (YAML flow
    mapping) that stops the run where the test will kill it."""
    return textwrap.dedent(f"""
        strategy:
          class_path: continual.strategies.Compose
          init_args:
            strategies:
              - {member}
              - {pause}
        trainer: {{max_epochs: 2}}
        data: {{class_path: continual.data.SplitClasses, init_args: {{n_tasks: 4}}}}
        quiet: {str(quiet).lower()}
        logger: []
        output: out
    """)


def cli_run(*args: str, cwd: Path, **env: str) -> subprocess.Popen:
    """``continual run ARGS`` in a subprocess that imports modules written to ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(cwd), **env}
    return subprocess.Popen([sys.executable, "-m", "continual.cli", "run", *args], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_when(marker: Path, victim: subprocess.Popen, what: str, seconds: float = 240) -> None:
    """SIGKILL ``victim`` once it has written ``marker`` (it then waits to be killed)."""
    deadline = time.monotonic() + seconds
    while not marker.exists():
        assert victim.poll() is None, victim.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"the run never reached {what}"
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)


class Crash(Exception):
    pass


def crash_at_task(n: int):
    """An ``echo`` for ``run`` that raises :class:`Crash` as task ``n`` (counted from 1)
    starts: a run stopped between tasks, with the tasks before it saved."""
    def echo(line: str) -> None:
        if line.startswith(f"task {n}/"):
            raise Crash(line)
    return echo


def assert_resume_matches_whole(stream, fresh, run_dir: Path, **kwargs) -> None:
    """A run stopped as task 2 starts, then resumed, ends as the uninterrupted run: the same
    matrix and the same network weights. ``fresh(seed)`` builds a module; the resumed one gets
    another seed, so nothing it ends with may come from its own initialisation."""
    import pytest
    import torch

    from continual import run

    whole_module = fresh(0)
    whole = run(stream, whole_module, run_dir=run_dir / "whole", echo=None, **kwargs)
    with pytest.raises(Crash):
        run(stream, fresh(0), run_dir=run_dir / "broken", echo=crash_at_task(2), **kwargs)
    resumed_module = fresh(123)
    resumed = run(stream, resumed_module, run_dir=run_dir / "broken", resume=True, echo=None,
                  **kwargs)
    np.testing.assert_array_equal(resumed.matrix, whole.matrix)
    for k, v in whole_module.net.state_dict().items():
        assert torch.equal(resumed_module.net.state_dict()[k], v), k


class CrashAt(Callback):
    """Fails in the middle of epoch 1 of task 1, after epoch 0's checkpoint was written."""

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if module.task_index == 1 and module.task_epoch == 1 and batch_idx == 1:
            raise Crash
