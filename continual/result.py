"""What a run produces: the accuracy matrix, its scores and the training cost."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from continual.errors import ConfigError
from continual.metrics import summarize


@dataclass
class TaskCost:
    """Compute spent on one task.

    ``train_seconds`` is the Lightning fit; ``strategy_seconds`` the strategy's own work
    around it (a Fisher, a memory update); ``eval_seconds`` the accuracy-matrix row (task 0's
    also the untrained network's row); ``total_seconds`` all three. ``train_samples`` counts
    every sample of every epoch; ``train_steps`` the optimizer steps (the fit's global step).
    ``memory_bytes``: what the strategy keeps for later tasks after this one
    (:meth:`~continual.strategies.Strategy.memory_bytes`: a replay memory, penalties).
    """

    train_seconds: float = 0.0
    train_samples: int = 0
    eval_seconds: float = 0.0
    strategy_seconds: float = 0.0
    train_steps: int = 0
    memory_bytes: int = 0

    @property
    def total_seconds(self) -> float:
        return self.train_seconds + self.strategy_seconds + self.eval_seconds


@dataclass
class Result:
    """The outcome of a run over a stream.

    ``matrix[i, j]`` is the test accuracy on task ``j`` after training task ``i``; rows for
    tasks not yet trained are absent. ``baseline[j]`` is the untrained network's accuracy.
    On a class-incremental stream ``task_il_matrix`` holds the same accuracies with each
    sample's prediction restricted to its task's classes (task-incremental reading of the
    same logits; ``nan`` rows for tasks a checkpoint from before it was kept did not record);
    elsewhere it is ``None`` (the stream's own matrix is already that reading).
    """

    matrix: np.ndarray
    baseline: np.ndarray
    cost: list[TaskCost]
    stream: dict[str, Any]
    strategy: str
    seed: int
    config: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=dict)
    task_il_matrix: np.ndarray | None = None
    setup: dict[str, Any] = field(default_factory=dict)  # what decides the numbers

    @property
    def complete(self) -> bool:
        return self.matrix.shape[0] == self.matrix.shape[1]

    @property
    def summary(self) -> dict[str, float]:
        """Scores after the last trained task (``task_il_*``: of :attr:`task_il_matrix`), and
        the cost over all tasks: ``total_seconds`` is training + the strategy's own work +
        evaluation, each part under its own key."""
        scores = summarize(self.matrix, self.baseline) if len(self.matrix) else {}
        if self.task_il_matrix is not None and len(self.task_il_matrix):
            scores.update({f"task_il_{k}": v for k, v in summarize(self.task_il_matrix).items()})
        for part in ("train_seconds", "strategy_seconds", "eval_seconds", "total_seconds"):
            scores[part] = float(sum(getattr(c, part) for c in self.cost))
        scores["train_samples"] = int(sum(c.train_samples for c in self.cost))
        scores["train_steps"] = int(sum(c.train_steps for c in self.cost))
        return scores

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "seed": self.seed,
            "complete": self.complete,
            "matrix": self.matrix.tolist(),
            "task_il_matrix": None if self.task_il_matrix is None else self.task_il_matrix.tolist(),
            "baseline": self.baseline.tolist(),
            "summary": self.summary,
            "cost": [asdict(c) for c in self.cost],
            "stream": self.stream,
            "config": self.config,
            "setup": self.setup,
            "versions": self.versions,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        n = len(d["baseline"])
        task_il = d.get("task_il_matrix")
        return cls(
            matrix=np.asarray(d["matrix"], dtype=np.float64).reshape(-1, n),
            baseline=np.asarray(d["baseline"], dtype=np.float64),
            cost=[TaskCost(**c) for c in d["cost"]],
            stream=d["stream"], strategy=d["strategy"], seed=d["seed"],
            config=d.get("config"), versions=d.get("versions", {}), setup=d.get("setup", {}),
            task_il_matrix=None if task_il is None else
            np.asarray(task_il, dtype=np.float64).reshape(-1, n),
        )

    @classmethod
    def load(cls, run_dir: str | Path) -> Result:
        """Read ``run_dir/results.json``.

        Raises:
            FileNotFoundError: there is none.
            ConfigError: it is truncated, not JSON, or lacks or misshapes a field (one line
                naming the file).
        """
        path = Path(run_dir) / "results.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            result = cls.from_dict(data)
            if result.matrix.shape[0] > result.matrix.shape[1]:
                raise ValueError("more matrix rows than tasks")
            return result
        except FileNotFoundError:
            raise
        except KeyError as e:
            problem = f"no {e.args[0]!r} field"
        except OSError as e:  # a folder, no permission to read
            problem = e.strerror or type(e).__name__
        except UnicodeDecodeError:
            problem = "not UTF-8 text"
        except json.JSONDecodeError as e:
            problem = f"not JSON: {e.msg} at line {e.lineno}"
        except (ValueError, TypeError, AttributeError) as e:
            problem = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{path} is unreadable ({problem}); allowed: a results.json written "
                          "by continual run (`continual run --resume RUN_DIR` writes it again "
                          "from the run's checkpoint)")

    def save(self, run_dir: str | Path) -> None:
        """Write ``results.json`` and ``accuracy_matrix.csv`` (and, on a class-incremental
        stream, ``accuracy_matrix_task_il.csv``), each replaced atomically."""
        run_dir = Path(run_dir)
        atomic_write(run_dir / "results.json", json.dumps(self.to_dict(), indent=2) + "\n")
        atomic_write(run_dir / "accuracy_matrix.csv", self.matrix_csv())
        if self.task_il_matrix is not None:
            atomic_write(run_dir / "accuracy_matrix_task_il.csv",
                         self.matrix_csv(self.task_il_matrix))

    def matrix_csv(self, matrix: np.ndarray | None = None) -> str:
        """``matrix`` (default: :attr:`matrix`) as CSV, one row per trained task."""
        matrix = self.matrix if matrix is None else matrix
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["after_task", *[f"task_{j}" for j in range(matrix.shape[1])]])
        for i, row in enumerate(matrix):
            writer.writerow([i, *[f"{v:.6f}" for v in row]])
        return out.getvalue()


def atomic_write(path: Path, content: str | bytes) -> None:
    """Write ``content`` to ``path`` so a crash leaves the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, _file_mode())  # as open() would create it (mkstemp's is 0600)
        with os.fdopen(fd, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_mode() -> int:
    """The mode a new file gets under the process's umask (read without changing it for good)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask
