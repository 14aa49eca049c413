"""Strategy names users bring (Avalanche, mammoth, the papers) and the shipped strategy configs
resolve from any folder."""

from __future__ import annotations

import json

import pytest

from continual.cli import main
from continual.strategies.names import ALIASES, resolve

QUICK = ["--trainer.max_epochs", "1", "--data.init_args.n_tasks", "2", "--quiet", "true"]


@pytest.mark.parametrize(("name", "target"), [
    ("Naive", "FineTune"), ("sgd", "FineTune"), ("Cumulative", "FullRetrain"),
    ("Replay", "ExperienceReplay"), ("ER", "ExperienceReplay"), ("der++", "DERpp"),
    ("EWC", "EWC"), ("unknown", None)])
def test_known_names_resolve_to_the_packages_classes(name, target):
    import continual.strategies as strategies

    got = resolve(name)
    assert got == (None if target is None else f"continual.strategies.{target}")
    assert all(hasattr(strategies, cls) for cls in ALIASES.values())


def test_run_and_compare_take_known_names_outside_the_checkout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    assert main(["run", "--strategy", "ER", "--name", "er", *QUICK]) == 0
    results = json.loads((tmp_path / "runs" / "er" / "results.json").read_text())
    assert results["strategy"].startswith("ExperienceReplay(")
    assert main(["compare", "--strategies", "naive,er,EWC", "--name", "cmp", *QUICK]) == 0
    out = capsys.readouterr().out
    for label in ("FineTune", "er", "EWC"):  # a class by its name, a shipped file by its own
        assert any(line.startswith(label) for line in out.splitlines()), out
