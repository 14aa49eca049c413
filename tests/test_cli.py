"""The command line: a user's own network by class path, and one-line errors for mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from continual.cli import main

USER_NET = '''
import torch
from torch import nn

class TinyNet(nn.Module):
    """A user's own network, unknown to the toolkit."""
    def __init__(self, width: int = 32, n_out: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.Tanh(),
                                  nn.Linear(width, n_out))
    def forward(self, x):
        return self.body(x)
'''


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    (tmp_path / "usernets.py").write_text(USER_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_user_network_from_yaml_trains_through_the_cli(user_package, capsys):
    config = write_config(user_package / "exp.yaml", """
        seed: 1
        model:
          net:
            class_path: usernets.TinyNet
            init_args: {width: 48}
        strategy:
          class_path: continual.strategies.FullRetrain
          init_args: {from_scratch: false}
        trainer: {max_epochs: 3}
        output: out
        name: mine
    """)
    assert main(["run", "--config", str(config), "--data.init_args.n_tasks", "2"]) == 0
    out = capsys.readouterr().out
    assert "after task" in out and "FullRetrain(from_scratch=False)" in out
    [run_dir] = (user_package / "out").iterdir()
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["complete"] and len(saved["matrix"]) == 2
    assert saved["config"]["model"]["net"]["class_path"] == "usernets.TinyNet"
    assert saved["config"]["model"]["net"]["init_args"]["width"] == 48
    assert saved["summary"]["average_accuracy"] > 0.6  # it learned: chance is about 0.1
    assert (run_dir / "config.yaml").is_file() and (run_dir / "logs" / "metrics.csv").is_file()


def test_compare_prints_one_table_over_strategies_and_seeds(tmp_path, capsys):
    argv = ["compare", "--strategies", "FineTune,FullRetrain", "--seeds", "0,1",
            "--trainer.max_epochs", "2", "--output", str(tmp_path), "--quiet", "true"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    table = out[out.index("strategy"):]
    assert "FineTune" in table and "FullRetrain" in table and "±" in table
    header = table.splitlines()[0]
    for column in ("task-IL acc %", "  time s  ", "train+strategy+eval s"):
        assert column in header
    [root] = tmp_path.iterdir()
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [
        "FineTune-seed0", "FineTune-seed1", "FullRetrain-seed0", "FullRetrain-seed1"]
    summary = json.loads((root / "compare.json").read_text())
    assert len(summary["FullRetrain"]) == 2
    assert summary["FullRetrain"][0]["train_samples"] > summary["FineTune"][0]["train_samples"]
    for run in summary["FineTune"]:  # the whole time is its parts, each kept
        assert run["total_seconds"] == pytest.approx(
            run["train_seconds"] + run["strategy_seconds"] + run["eval_seconds"])
        assert run["eval_seconds"] > 0 and run["task_il_average_accuracy"] > 0


def test_compare_takes_shipped_strategy_configs_by_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(Path(__file__).parents[1])
    argv = ["compare", "--strategies", "full_retrain_warm", "--trainer.max_epochs", "1",
            "--data.init_args.n_tasks", "2", "--output", str(tmp_path), "--quiet", "true"]
    assert main(argv) == 0
    [root] = tmp_path.iterdir()
    run = json.loads((root / "full_retrain_warm-seed0" / "results.json").read_text())
    assert run["strategy"] == "FullRetrain(from_scratch=False)"


BAD_INPUT = [
    (["--strategy", "Bogus"], "strategy:", "allowed: a Strategy class name"),
    (["--model.net", "nowhere.Net"], "model.net:", "No module named 'nowhere'"),
    (["--strategy.from_scratchh", "1", "--strategy", "FullRetrain"], "strategy", "from_scratchh"),
    (["--trainer.max_epochs", "many"], "trainer.max_epochs: 'many' is not valid", "int"),
    (["--seed", "x"], "seed:", "Got value: x"),
    (["--data.init_args.n_tasks", "11"], "data: n_tasks=11 is invalid", "allowed: 1..10"),
    (["--data.init_args.classes_per_task", "[5, 0, 5]"], "data: classes_per_task", "positive"),
    (["--data.init_args.class_order", "[0, 1, 1]"], "data: class_order", "repeats classes [1]"),
    (["--model.net.init_args.n_classes", "4"], "model.net outputs shape (1, 4)",
     "allowed: a net with [B, >= 10] logits"),
    (["--config", "missing.yaml"], "config:", "missing.yaml"),
    (["--trainr.max_epochs", "3"], "unrecognized arguments", "trainr"),
    (["--logger", "[papyrus]"], "logger", "papyrus"),
    (["--logger", "[{class_path: torch.nn.Linear}]"], "logger", "not a Lightning Logger"),
    (["--logger", "[csv, {class_path: CSVLogger, init_args: {flush_logs_every_n_steps: x}}]"],
     "logger: CSVLogger: init_args.flush_logs_every_n_steps", "Got value: x"),
    (["--logger", "[{class_path: WandbLogger, init_args: {projekt: p}}]"], "logger",
     "option 'projekt' is not accepted"),
    (["--trainer.accelerator", "mps"], "trainer:", "MPS"),
]


@pytest.mark.parametrize("args, field, detail", BAD_INPUT)
def test_bad_input_gives_one_line_and_exit_2(args, field, detail, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--output", "out", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("continual: error: ")
    assert field in err and detail in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_misspelled_key_in_a_config_file(tmp_path, capsys):
    config = write_config(tmp_path / "bad.yaml", """
        strategy: {class_path: continual.strategies.FineTune}
        trainer: {max_epoch: 3}
    """)
    assert main(["run", "--config", str(config), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "max_epoch" in err


def test_wrong_type_in_a_config_file(tmp_path, capsys):
    config = write_config(tmp_path / "bad.yaml", "batch_size: lots\n")
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "batch_size" in err and "lots" in err


def test_console_script_exits_nonzero_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "continual.cli", "run", "--strategy", "NoSuchStrategy"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "NoSuchStrategy" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_command(capsys):
    assert main(["fly"]) == 2
    assert "allowed: run, compare, simulate, retrain, report" in capsys.readouterr().err


def block_imports(monkeypatch, *packages: str) -> None:
    """Make ``packages`` (and their loaded submodules) unimportable, as if not installed."""
    for name in [*packages, *(m for m in sys.modules if m.startswith(tuple(
            f"{p}." for p in packages)))]:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("args, extra", [
    (["--logger", "[csv, tensorboard]"], "tensorboard"),
    (["--logger", "[{class_path: lightning.pytorch.loggers.TensorBoardLogger}]"], "tensorboard"),
    (["--config", str(Path(__file__).parents[1] / "configs/data/avalanche_split_mnist.yaml")],
     "avalanche"),
])
def test_a_missing_extra_is_one_line_naming_it(args, extra, tmp_path, capsys, monkeypatch):
    block_imports(monkeypatch, "tensorboard", "tensorboardX", "avalanche")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--output", "out", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f'needs {extra}, which is not installed; allowed: pip install "continual[{extra}]"' \
        in err
    assert not (tmp_path / "out").exists()  # no run folder left behind
