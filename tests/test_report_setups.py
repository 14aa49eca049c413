"""A report over runs of different set-ups shows them apart and says so; runs of one set-up
carry no warning."""

from __future__ import annotations

from continual.cli import main


def _run(tmp_path, name, *extra):
    assert main(["run", "--output", str(tmp_path / "runs"), "--name", name, "--quiet", "true",
                 "--trainer.max_epochs", "1", "--data.init_args.n_tasks", "2", *extra]) == 0


def _report(tmp_path, *names) -> str:
    out = tmp_path / f"report-{'-'.join(names)}"
    assert main(["report", *[str(tmp_path / "runs" / n) for n in names],
                 "--output", str(out)]) == 0
    return (out / "report.md").read_text()


def test_a_report_over_two_setups_shows_them_apart(tmp_path, capsys):
    _run(tmp_path, "class")
    _run(tmp_path, "task", "--data.init_args.scenario", "task", "--trainer.max_epochs", "2")
    _run(tmp_path, "seed1", "--seed", "1")
    text = _report(tmp_path, "class", "task")
    assert "differ in scenario, epochs" in text
    header = next(line for line in text.splitlines() if line.startswith("| run |"))
    assert "| dataset | scenario | net | epochs | seed |" in header
    rows = [line for line in text.splitlines() if line.startswith("| class |")
            or line.startswith("| task |")]
    assert rows[0].startswith("| class | split-digits | class | MLP | 1 | 0 |")
    assert rows[1].startswith("| task | split-digits | task | MLP | 2 | 0 |")
    assert "Warning" not in _report(tmp_path, "class", "seed1")  # seeds alone: comparable
    capsys.readouterr()


def test_a_compare_folders_report_holds_its_cost_plot(tmp_path, capsys):
    assert main(["compare", "--strategies", "FineTune,Joint", "--output", str(tmp_path),
                 "--name", "cmp", "--quiet", "true", "--trainer.max_epochs", "1",
                 "--data.init_args.n_tasks", "2"]) == 0
    assert main(["report", str(tmp_path / "cmp"), "--output", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "![cost_accuracy](" in text and 'alt="cost_accuracy"' in page
    capsys.readouterr()
