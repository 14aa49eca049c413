"""Read back a W&B offline run's record log (``run-*.wandb``), for the tests only.

wandb 0.31 offers no public reader of an offline run: ``wandb.Api`` needs a server, the run
folder's ``files/`` holds only the logged media (tables as ``*.table.json``, images) and
``requirements.txt`` (``wandb-summary.json`` and ``config.yaml`` are written only when a run
is synced), and ``wandb sync`` and ``wandb leet`` read the log in the Go core. The tests
read the plain media files where they can and this parser for the rest: history, summary,
config, group, tags and step metrics. It follows wandb's private format and may need updating
with wandb: a 7-byte header, then 32 KiB blocks of records framed as
``crc32 (4) · length (2) · type (1)``, each a ``wandb_internal_pb2.Record`` protobuf, split
across blocks when long (types FULL=1, FIRST=2, MIDDLE=3, LAST=4).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BLOCK, _HEADER, _FRAME = 32768, 7, 7


@dataclass
class OfflineRun:
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    group: str = ""
    tags: list[str] = field(default_factory=list)
    name: str = ""
    step_metrics: dict[str, str] = field(default_factory=dict)


def _records(path: Path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    pos, pending = _HEADER, b""
    while pos + _FRAME <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _FRAME:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + _FRAME])
        if length == 0 and kind == 0:  # block padding
            pos += left
            continue
        pending += data[pos + _FRAME:pos + _FRAME + length]
        pos += _FRAME + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def read_offline_run(run_dir: str | Path) -> OfflineRun:
    """Parse ``run_dir`` (an ``offline-run-*`` folder or its ``.wandb`` file)."""
    run_dir = Path(run_dir)
    path = run_dir if run_dir.suffix == ".wandb" else next(run_dir.glob("run-*.wandb"))
    run = OfflineRun()
    for record in _records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            run.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            run.summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
        elif kind == "config":
            run.config.update({_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "run":
            run.group, run.tags = record.run.run_group, list(record.run.tags)
            run.name = record.run.display_name
            run.config.update({_key(i): json.loads(i.value_json)
                               for i in record.run.config.update})
        elif kind == "metric":
            metric = record.metric
            run.step_metrics[metric.name or metric.glob_name] = metric.step_metric
    return run
