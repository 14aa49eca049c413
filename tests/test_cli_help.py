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
