"""The data-quality gate: what is dropped from a chunk before anything trains on it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from continual.data.lazy import LazyData
from continual.data.tensors import TensorData
from continual.errors import ConfigError


@dataclass
class QualityReport:
    """How many samples of one chunk were dropped, and why."""

    step: int
    received: int
    nonfinite: int = 0
    bad_label: int = 0
    duplicates: int = 0

    @property
    def kept(self) -> int:
        return self.received - self.nonfinite - self.bad_label - self.duplicates

    @property
    def dropped(self) -> int:
        return self.received - self.kept

    def as_dict(self) -> dict:
        return {**asdict(self), "kept": self.kept}

    def describe(self) -> str:
        parts = [f"{n} {what}" for n, what in ((self.nonfinite, "NaN/inf inputs"),
                                                (self.bad_label, "labels outside the classes"),
                                                (self.duplicates, "duplicate copies")) if n]
        return f"chunk {self.step}: dropped {self.dropped}/{self.received} ({', '.join(parts)})"


class QualityGate:
    """Drop samples that would poison training: checks run in order, each on what is left.

    Args:
        n_classes: labels must lie in ``0..n_classes-1`` (the simulator sets the stream's).
        max_copies: an exact (input, label) pair is kept at most this many times per chunk,
            so a flood of one repeated record cannot swamp a retrain; ``None`` keeps all.
    """

    def __init__(self, max_copies: int | None = 3, n_classes: int | None = None) -> None:
        self.max_copies, self.n_classes = max_copies, n_classes

    def __call__(self, chunk: TensorData, step: int) -> tuple[TensorData, QualityReport]:
        keep, report = self.check(chunk, step)
        return chunk.subset(keep), report

    def check(self, chunk: TensorData, step: int) -> tuple[torch.Tensor, QualityReport]:
        """The mask of samples kept, and the report."""
        report = QualityReport(step, len(chunk))
        chunk = in_memory(chunk)  # a lazy chunk is read (once) to be checked
        x = chunk.x.flatten(1)  # also for an empty chunk, where reshape(0, -1) fails
        keep = torch.isfinite(x.float()).all(dim=1) if x.is_floating_point() else \
            torch.ones(len(chunk), dtype=torch.bool)
        report.nonfinite = int((~keep).sum())
        if self.n_classes is not None:
            bad = keep & ((chunk.y < 0) | (chunk.y >= self.n_classes))
            report.bad_label = int(bad.sum())
            keep &= ~bad
        if self.max_copies is not None:
            extra = keep & _beyond_copies(x, chunk.y, keep, self.max_copies)
            report.duplicates = int(extra.sum())
            keep &= ~extra
        return keep, report

    def __repr__(self) -> str:
        return f"QualityGate(max_copies={self.max_copies})"


def in_memory(chunk: TensorData | LazyData) -> TensorData:
    """``chunk`` with its inputs in memory (a lazy chunk read whole: chunks are small)."""
    return chunk.materialize() if isinstance(chunk, LazyData) and len(chunk) else chunk


def check_chunks(chunks: list[TensorData], n_classes: int, policy: str) -> None:
    """Refuse, in one line, chunks a policy without a quality gate could not use: a non-finite
    input or a label outside ``0..n_classes-1`` (the first such chunk is named, from 1)."""
    for step, chunk in enumerate(chunks):
        x = in_memory(chunk).x.flatten(1)  # lazy chunks: read one at a time
        nonfinite = int((~torch.isfinite(x.float())).any(dim=1).sum()) \
            if x.is_floating_point() and len(chunk) else 0
        bad = int(((chunk.y < 0) | (chunk.y >= n_classes)).sum())
        if nonfinite or bad:
            parts = [f"{n} {what}" for n, what in ((nonfinite, "samples with NaN/inf inputs"),
                                                    (bad, f"labels outside 0..{n_classes - 1}"))
                     if n]
            raise ConfigError(f"stream: chunk {step + 1}/{len(chunks)} holds {' and '.join(parts)}"
                              f", which policy {policy!r} (no quality_gate) cannot train on; "
                              "allowed: finite inputs and labels in range, or a quality_gate "
                              "(e.g. quality_gate: {max_copies: 3}) that drops such samples")


def _beyond_copies(x: torch.Tensor, y: torch.Tensor, keep: torch.Tensor, max_copies: int
                   ) -> torch.Tensor:
    """True for each kept sample that is the (max_copies+1)-th or later copy of its row."""
    rows = torch.cat([x.float(), y.float()[:, None]], dim=1)
    index = keep.nonzero().squeeze(1)
    _, inverse = torch.unique(rows[index], dim=0, return_inverse=True)
    # Occurrence number of each row among earlier equal rows (stable: first copies are kept).
    order = torch.argsort(inverse, stable=True)
    sorted_ids = inverse[order]
    starts = torch.ones_like(sorted_ids, dtype=torch.bool)
    starts[1:] = sorted_ids[1:] != sorted_ids[:-1]
    position = torch.arange(len(order))
    group_start = torch.cummax(torch.where(starts, position, 0), dim=0).values
    rank = torch.empty_like(position)
    rank[order] = position - group_start
    beyond = torch.zeros_like(keep)
    beyond[index] = rank >= max_copies
    return beyond
