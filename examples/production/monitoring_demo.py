"""Sixteen batches of digits that start rotating at batch 8, through ``continual retrain``.

    python examples/production/monitoring_demo.py [--out /tmp/monitoring-demo]

Each batch is written as an ``.npz`` file (``x``, ``y``) and handed to one ``continual retrain``
call with the shipped ``production_digits.yaml`` (policy ``threshold-er``, the label-free
monitor allowed to trigger retraining), as a scheduler would. The deployment's monitoring
report (``report.html`` and ``report.png``) is what the README shows.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from continual.cli import main
from continual.experiment import SHIPPED_CONFIGS
from continual.retraining import DriftingChunks

DRIFT_AT = 8


def write_batches(folder: Path, seed: int = 0) -> list[Path]:
    """The stream's chunks as batch files, in time order."""
    stream = DriftingChunks(kind="incremental", concept="rotation", n_steps=16, chunk_size=100,
                            drift_at=DRIFT_AT, degrees_per_step=15, seed=seed).build()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, chunk in enumerate(stream.chunks):
        path = folder / f"batch-{i:02d}.npz"
        np.savez(path, x=chunk.x.numpy(), y=chunk.y.numpy())
        paths.append(path)
    return paths


def run(out: Path) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    config = SHIPPED_CONFIGS / "retraining" / "production_digits.yaml"
    for batch in write_batches(out / "incoming"):
        code = main(["retrain", "--config", str(config), "--policy", "threshold-er",
                     "--deployment", str(out / "deploy"), "--batch", str(batch),
                     "--monitor.trigger", "true", "--quiet", "true", "--logger", "[]"])
        if code:
            raise SystemExit(code)
    return out / "deploy" / "report.png"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/monitoring-demo"))
    parser.add_argument("--copy-to", type=Path, default=None,
                        help="also copy the report's picture here (docs/images/monitoring.png)")
    args = parser.parse_args()
    picture = run(args.out)
    if args.copy_to:
        shutil.copyfile(picture, args.copy_to)
    print(f"report: {picture.with_suffix('.html')}")
