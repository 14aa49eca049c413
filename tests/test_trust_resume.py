"""Nothing finished is ever lost: a resumed run keeps the CSV rows of its finished tasks (and of
the training curve it does not train again), repairs a results.json that is missing or corrupt,
and run folders are claimed atomically, so two runs of one name never share one."""

from __future__ import annotations

import csv
import json
import textwrap
import threading
from pathlib import Path

import pytest

from continual.cli import main
from continual.experiment import claim_run_dir

STOPPERS = '''
from pathlib import Path
from continual.strategies import FineTune


class StopOnce(FineTune):
    """Presses Ctrl-C once: at the start of ``task`` (epoch < 0) or inside its ``epoch``."""
    def __init__(self, task: int = 1, epoch: int = -1, marker: str = "stopped.marker"):
        self.task, self.epoch, self.marker = task, epoch, marker

    def _stop(self):
        if not Path(self.marker).exists():
            Path(self.marker).write_text("stopped")
            raise KeyboardInterrupt

    def on_task_start(self, module, stream, index):
        super().on_task_start(module, stream, index)
        if self.epoch < 0 and index == self.task:
            self._stop()

    def loss(self, module, step, loss):
        if self.epoch >= 0 and step.task == self.task and \\
                module.task_epoch == self.epoch:
            self._stop()
        return loss
'''

ARGS = ["--trainer.max_epochs", "2", "--data.init_args.n_tasks", "3", "--quiet", "true",
        "--trainer.log_every_n_steps", "5"]


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    (tmp_path / "stoppers.py").write_text(textwrap.dedent(STOPPERS))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "logs" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def task_rows(rows):
    return [r["task"] for r in rows if r.get("task")]


def curve_steps(rows, key="train/loss"):
    return [int(r["step"]) for r in rows if r.get(key)]


@pytest.mark.parametrize("stop", [["--strategy.task", "1"],
                                  ["--strategy.task", "2", "--strategy.epoch", "1"]],
                         ids=["between-tasks", "mid-task"])
def test_resume_keeps_one_csv_row_per_finished_task_and_the_curve_once(stop, user_dir, capsys):
    args = ["--strategy", "stoppers.StopOnce", *stop, *ARGS]
    assert main(["run", "--output", "out", "--name", "r", *args]) == 130
    capsys.readouterr()
    run_dir = user_dir / "out" / "r"
    before = csv_rows(run_dir)
    finished = len(json.loads((run_dir / "results.json").read_text())["matrix"])
    assert task_rows(before) == [f"{i}.0" for i in range(finished)]

    assert main(["run", "--resume", str(run_dir)]) == 0, capsys.readouterr().err
    after = csv_rows(run_dir)
    assert task_rows(after) == ["0.0", "1.0", "2.0"]  # one each, the finished ones kept
    for old in (r for r in before if r.get("task")):  # kept as they were written
        assert any(all(new.get(k) == v for k, v in old.items() if v) for new in after), old
    steps = curve_steps(after)
    assert len(steps) == len(set(steps)), "a curve point written twice"
    ends = json.loads((run_dir / "results.json").read_text())["summary"]["train_steps"]
    assert set(range(5, ends + 1, 5)) <= set(steps)  # the whole curve, none lost
    val = curve_steps(after, "val/acc") if any(r.get("val/acc") for r in after) else []
    assert len(val) == len(set(val))
    assert not (run_dir / "logs" / ".metrics.csv.resumed").exists()


def _finished(user_dir, capsys) -> Path:
    assert main(["run", "--output", "out", "--name", "done", *ARGS]) == 0
    capsys.readouterr()
    return user_dir / "out" / "done"


def test_resuming_a_finished_run_keeps_its_metrics_csv(user_dir, capsys):
    run_dir = _finished(user_dir, capsys)
    before = csv_rows(run_dir)
    assert main(["run", "--resume", str(run_dir)]) == 0
    after = csv_rows(run_dir)
    assert task_rows(after) == ["0.0", "1.0", "2.0"]
    strip = [{k: v for k, v in r.items() if v} for r in before]
    assert [{k: v for k, v in r.items() if v} for r in after] == strip


@pytest.mark.parametrize("damage", [
    lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2]),
    lambda p: p.unlink(),
    lambda p: p.write_text("[]"),
], ids=["truncated", "missing", "not-an-object"])
def test_resuming_a_finished_run_repairs_its_results_json(damage, user_dir, capsys):
    run_dir = _finished(user_dir, capsys)
    whole = json.loads((run_dir / "results.json").read_text())
    damage(run_dir / "results.json")
    assert main(["run", "--resume", str(run_dir)]) == 0, capsys.readouterr().err
    repaired = json.loads((run_dir / "results.json").read_text())
    assert repaired["matrix"] == whole["matrix"] and repaired["complete"]
    assert repaired["cost"] == whole["cost"]


def test_a_crash_while_results_json_is_written_loses_nothing(user_dir, capsys, monkeypatch):
    """ENOSPC after task 2's checkpoint: one line with the way on; resume repairs the rest."""
    import errno

    import continual.result as result_module

    real, calls = result_module.atomic_write, []

    def full_disk(path, content):
        calls.append(path.name)
        if path.name == "results.json" and calls.count("results.json") == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, content)

    monkeypatch.setattr(result_module, "atomic_write", full_disk)
    assert main(["run", "--output", "out", "--name", "full", *ARGS]) == 1
    err = capsys.readouterr().err
    run_dir = user_dir / "out" / "full"
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "No space left on device" in err and "--resume out/full" in err, err
    monkeypatch.setattr(result_module, "atomic_write", real)
    assert main(["run", "--resume", str(run_dir)]) == 0, capsys.readouterr().err
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["complete"] and task_rows(csv_rows(run_dir)) == ["0.0", "1.0", "2.0"]


def test_run_folders_are_claimed_atomically(tmp_path):
    claimed, barrier = [], threading.Barrier(8)

    def claim():
        barrier.wait()
        claimed.append(claim_run_dir(tmp_path / "same"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in claimed) == sorted(
        ["same", *[f"same-{n}" for n in range(2, 9)]])


def test_a_folder_taken_after_the_check_is_not_shared(tmp_path, capsys, monkeypatch):
    """Another run takes the name between this run's look and its claim: this one goes on in
    ``-2`` and leaves the other's folder alone."""
    import continual.experiment as experiment

    real = experiment.claim_run_dir

    def racing(path):
        path.mkdir(parents=True)
        (path / "theirs.txt").write_text("another run")
        return real(path)

    monkeypatch.setattr(experiment, "claim_run_dir", racing)
    assert main(["run", "--output", str(tmp_path), "--name", "x", *ARGS]) == 0
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["theirs.txt"]
    assert (tmp_path / "x-2" / "results.json").is_file()


def test_a_failure_after_the_claim_leaves_no_empty_folder(tmp_path, capsys, monkeypatch):
    import continual.experiment as experiment
    from continual.errors import ConfigError

    def broken(*args, **kwargs):
        raise ConfigError("logger: wandb cannot start: refused; allowed: a reachable server")

    monkeypatch.setattr(experiment, "make_loggers", broken)
    assert main(["run", "--output", str(tmp_path / "runs"), "--name", "x", *ARGS]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "runs" / "x").exists()


def test_a_task_row_cut_short_by_a_kill_is_written_again_from_the_checkpoint(user_dir, capsys):
    run_dir = _finished(user_dir, capsys)
    path = run_dir / "logs" / "metrics.csv"
    whole = [r for r in csv_rows(run_dir) if r.get("task")]
    lines = path.read_text().splitlines(keepends=True)
    last = max(i for i, line in enumerate(lines) if line.count(",") and i and
               csv_rows(run_dir)[i - 1].get("task") == "2.0")
    lines[last] = lines[last][: len(lines[last]) // 2]  # a write cut in the middle of the row
    path.write_text("".join(lines[: last + 1]))
    assert main(["run", "--resume", str(run_dir)]) == 0
    again = [r for r in csv_rows(run_dir) if r.get("task")]
    assert [r["task"] for r in again] == ["0.0", "1.0", "2.0"]
    assert {k: float(v) for k, v in again[2].items() if v and k != "cost/total_seconds"} == \
        pytest.approx({k: float(v) for k, v in whole[2].items()
                       if v and k != "cost/total_seconds"})


def test_a_kill_while_the_rows_are_written_again_loses_none(user_dir, capsys):
    """Killed after the old file was set aside and the new one half written: the next resume
    reads the set-aside copy."""
    run_dir = _finished(user_dir, capsys)
    logs = run_dir / "logs"
    whole = [r for r in csv_rows(run_dir) if r.get("task")]
    (logs / "metrics.csv").rename(logs / ".metrics.csv.resumed")
    (logs / "metrics.csv").write_text("step,task\n0,0.0\n1,")
    assert main(["run", "--resume", str(run_dir)]) == 0
    assert [r for r in csv_rows(run_dir) if r.get("task")] == whole
    assert not (logs / ".metrics.csv.resumed").exists()
