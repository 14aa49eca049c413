"""`continual run --help` is short enough to read and names what the README documents."""

from __future__ import annotations

import pytest

from continual.cli import main


@pytest.mark.parametrize("command", ["run", "compare"])
def test_help_is_short_and_names_the_documented_flags(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert len(text.splitlines()) < 300
    for flag in ("--config", "--strategy", "--model.net", "--trainer.FIELD", "--batch_size",
                 "--logger", "--output", "--name", "--quiet", "--threads", "--print_config"):
        assert flag in text, flag
    assert ("--resume RUN_DIR" in text) == (command == "run")
    assert "more)" in text and "--model.net.help" in text  # long class lists condensed
    assert ("--strategies" in text) == (command == "compare")


@pytest.mark.parametrize("command", ["run", "compare"])
def test_the_stored_help_is_what_the_parser_says(command):
    from continual.cli_help import live_help, stored_help

    assert stored_help(command) == live_help(command), (
        "the stored help is stale: run `python -m continual.cli_help` and commit continual/help/")


def test_run_help_answers_without_loading_lightning():
    import subprocess
    import sys

    probe = ("import sys; from continual.cli import main; main(['run', '--help']); "
             "print('loaded:', sorted(m for m in ('lightning', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert "--resume RUN_DIR" in out and out.strip().endswith("loaded: []")
