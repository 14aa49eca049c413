"""Bad settings end in one line naming the field and what is allowed, exit 2, no traceback, and
no run folder left behind; errors count tasks from 1, as the progress lines do."""

from __future__ import annotations

import re

import pytest

from continual.cli import main

WRONG_INPUT_NET = ["--model.net", "continual.nets.MLP", "--model.net.in_features", "50"]


@pytest.mark.parametrize(("args", "names"), [
    (["--batch_size", "0"], "batch_size=0"),
    (["--batch_size", "-4"], "batch_size=-4"),
    (["--eval_batch_size", "0"], "eval_batch_size=0"),
    (["--seed", "-1"], "seed=-1"),
    (["--seed", str(2**40)], f"seed={2**40}"),
    (["--trainer.max_epochs", "-1"], "trainer.max_epochs=-1"),
    (WRONG_INPUT_NET, "model.net cannot take the stream's inputs of shape (1, 8, 8)"),
    (["--model.optimizer.init_args.lr", "-0.1"], "model.optimizer: Invalid learning rate"),
    (["--model.net.init_args.hidden", "[100000000000]"], "cannot be built"),
], ids=["batch-0", "batch-negative", "eval-batch-0", "seed-negative", "seed-huge",
        "epochs-forever", "net-input-shape", "negative-lr", "unallocatable-net"])
def test_impossible_settings_end_in_one_line_and_write_nothing(args, names, tmp_path, capsys):
    code = main(["run", "--output", str(tmp_path / "runs"), "--quiet", "true", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert names in err and "allowed" in err, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_max_epochs_may_be_open_when_max_steps_ends_the_task(tmp_path, capsys):
    code = main(["run", "--output", str(tmp_path), "--quiet", "true", "--trainer.max_epochs",
                 "-1", "--trainer.max_steps", "2", "--data.init_args.n_tasks", "2"])
    assert code == 0, capsys.readouterr().err


def _finished_run(tmp_path, capsys) -> str:
    assert main(["run", "--output", str(tmp_path), "--name", "done", "--quiet", "true",
                 "--trainer.max_epochs", "1", "--data.init_args.n_tasks", "2"]) == 0
    capsys.readouterr()
    return str(tmp_path / "done")


@pytest.mark.parametrize(("override", "named"), [
    (["--model.optimizer.init_args.lr", "0.01"], "optimizer"),
    (["--trainer.max_epochs", "2"], "trainer"),
    (["--model.net.init_args.hidden", "[50]"], "net_architecture"),
    (["--batch_size", "8"], "batch_size"),
    (["--seed", "3"], "seed"),
], ids=["lr", "epochs", "net", "batch", "seed"])
def test_resume_refuses_settings_that_change_the_numbers_and_keeps_the_config(
        override, named, tmp_path, capsys):
    run_dir = _finished_run(tmp_path, capsys)
    config = (tmp_path / "done" / "config.yaml").read_text()
    results = (tmp_path / "done" / "results.json").read_text()
    code = main(["run", "--resume", run_dir, "--quiet", "true", *override])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and named in err and "allowed" in err, err
    assert (tmp_path / "done" / "config.yaml").read_text() == config
    assert (tmp_path / "done" / "results.json").read_text() == results


def test_run_files_are_readable_as_the_umask_allows(tmp_path, capsys):
    import os
    import stat

    old = os.umask(0o022)
    try:
        run_dir = _finished_run(tmp_path, capsys)
    finally:
        os.umask(old)
    for name in ("results.json", "config.yaml", "checkpoint.pt", "accuracy_matrix.csv"):
        mode = stat.S_IMODE(os.stat(os.path.join(run_dir, name)).st_mode)
        assert mode == 0o644, (name, oct(mode))


def test_a_resumed_run_logs_to_the_same_wandb_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = ["run", "--output", str(tmp_path), "--name", "wb", "--quiet", "true",
            "--logger", "[wandb]", "--trainer.max_epochs", "1", "--data.init_args.n_tasks", "2"]
    assert main(args) == 0
    assert main(["run", "--resume", str(tmp_path / "wb"), "--quiet", "true"]) == 0
    runs = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    # offline-run-<date>_<time>-<id>, with "-1" added when both starts fall in one second
    ids = {re.match(r"offline-run-\d{8}_\d{6}-([0-9a-z]+)", path.name).group(1) for path in runs}
    assert len(runs) == 2 and len(ids) == 1  # two starts, one W&B run id
    assert ids == {(tmp_path / "wb" / ".wandb_id").read_text().strip()}
    capsys.readouterr()
