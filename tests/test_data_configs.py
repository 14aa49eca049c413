"""Every shipped ``configs/data`` YAML parses, builds its stream and fits its network."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml

from continual.config import instantiate, run_parser
from continual.errors import ConfigError
from continual.module import ContinualModule
from continual.runner import prepare

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs" / "data").glob("*.yaml"))


def roots(node) -> list[str]:
    """Every ``root``/``dataset_root`` value in a config, at any depth."""
    if isinstance(node, dict):
        own = [str(v) for k, v in node.items() if k in ("root", "dataset_root")]
        return own + [r for v in node.values() for r in roots(v)]
    if isinstance(node, list):
        return [r for v in node for r in roots(v)]
    return []


@functools.cache
def run_parser_once():
    return run_parser()


def load(path: Path):
    parser = run_parser_once()
    return instantiate(parser, parser.parse_args(["--config", str(path)]))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_data_config_loads_and_builds(path, monkeypatch):
    monkeypatch.chdir(REPO)  # roots in the configs are relative to the repository
    init = load(path)  # the schema accepts it, every class it names exists
    raw = yaml.safe_load(path.read_text())
    missing = [r for r in roots(raw) if not Path(r).exists()]
    if missing:
        pytest.skip(f"needs files under {missing[0]}")
    if raw["data"]["class_path"].endswith("Avalanche"):
        pytest.skip("building an Avalanche benchmark downloads its dataset")
    try:
        stream = init.data.build()
    except ConfigError as e:
        if "download: true" in str(e):  # a root without the dataset's files
            pytest.skip(str(e))
        raise
    assert len(stream) >= 1 and all(len(task.train) and len(task.test) for task in stream)
    prepare(stream, ContinualModule(init.model.net, init.strategy, init.model.optimizer))


@pytest.mark.parametrize("kind, drift_points", [
    ("sudden", [5]), ("gradual", [3, 4, 5, 6]), ("incremental", [2]), ("recurring", [2, 4, 6, 8]),
])
def test_drift_configs_drift_where_their_comments_say(kind, drift_points):
    stream = load(REPO / "configs" / "data" / f"{kind}_drift_digits.yaml").data.build()
    assert stream.info["kind"] == kind and len(stream) == 10 and stream.scenario == "domain"
    assert stream.info["drift_points"] == drift_points
    assert [len(task.train) for task in stream] == [100] * 10
