"""A ``--help`` a person reads: jsonargparse's full help, condensed to what a user looks for.

The full text lists every known subclass of ``torch.nn.Module`` for ``--model.net`` (hundreds of
lines) and every ``Trainer`` argument with its docstring. Here a class list keeps its first few
names and says how to see one class's fields; the ``trainer.*`` fields become one line; the
usage line is one line; and the flags the CLI adds itself (``--resume``) are named.

Building the parser imports torch and Lightning (seconds), so the condensed text of
``continual run --help`` and ``compare --help`` is also stored in ``continual/help/``: a help
without other arguments prints it at once. A test checks the stored text against the parser's;
``python -m continual.cli_help`` rewrites it after a field changes.
"""

from __future__ import annotations

import os
import re
from importlib import resources

_LIST = re.compile(r"known subclasses: ([^)]*)\)")
_SHOWN = 6
COMMANDS = ("run", "compare")
# Trainer fields named in the help (each that the installed Lightning has); the rest are
# summarised, so the text does not change with Lightning's version.
_TRAINER_SHOWN = ("accelerator", "devices", "num_nodes", "strategy", "precision", "max_epochs",
                  "max_steps", "gradient_clip_val", "accumulate_grad_batches", "callbacks",
                  "deterministic", "log_every_n_steps", "limit_train_batches")


def stored_help(command: str) -> str | None:
    """The condensed help of ``command`` as stored in the package (None if absent)."""
    try:
        return (resources.files("continual") / "help" / f"{command}.txt").read_text()
    except (FileNotFoundError, OSError):
        return None


def live_help(command: str) -> str:
    """The condensed help of ``command`` from its parser (imports torch and Lightning)."""
    from continual.config import compare_parser, run_parser

    parser = run_parser() if command == "run" else compare_parser()
    width = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "1000"  # one line per option: wrapped here, the same everywhere
    try:
        text = parser.format_help()
    finally:
        if width is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = width
    return short_help(text, command)


def short_help(text: str, command: str) -> str:
    """``text`` (a parser's ``format_help()``) condensed for ``continual COMMAND --help``."""
    usage, _, rest = text.partition("\n\n")
    blocks = _option_blocks(rest)
    trainer = [b for b in blocks if b[0].lstrip().startswith("--trainer.")
               and not b[0].lstrip().startswith("--trainer.help")]
    fields = {b[0].split()[0].removeprefix("--trainer.").removesuffix(".help") for b in trainer}
    fields = [f for f in _TRAINER_SHOWN if f in fields]
    out = [f"usage: continual {command} [--config FILE] [--FIELD VALUE ...]"
           + (" [--resume RUN_DIR]" if command == "run" else ""), ""]
    for block in blocks:
        if block in trainer:
            if block is trainer[0]:
                out += ["  --trainer.FIELD VALUE", _wrap(
                    "any lightning.pytorch.Trainer argument (defaults: max_epochs 20, no "
                    "checkpointing or progress bar, no sanity steps), e.g. "
                    + ", ".join(fields) + " (all: lightning.pytorch.Trainer's documentation)")]
            continue
        out += _condensed(block)
    if command == "run":
        out += ["  --resume RUN_DIR", _wrap("continue a stopped run after its last finished task "
                                            "(with the run's own config.yaml)")]
    out += ["", "`--FIELD.help CLASS` shows one class's fields (e.g. --model.net.help "
            "continual.nets.MLP); `--print_config` the resolved config; `continual --version`."]
    return "\n".join(out) + "\n"


def _option_blocks(text: str) -> list[tuple[str, ...]]:
    """Each option (its first line and its indented continuation lines), in order."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("  -") or not blocks or not line.startswith("   "):
            blocks.append([line])
        else:
            blocks[-1].append(line)
    return [tuple(b) for b in blocks]


def _condensed(block: tuple[str, ...]) -> list[str]:
    if not block[0].startswith("  "):  # a heading, the description or a blank line
        return list(block)
    # "  --seed SEED           text…": the option, then (after two spaces or more) its text
    match = re.match(r"^(\s+\S.*?)(?: {2,}(\S.*))?$", block[0])
    option, body = match.group(1), match.group(2) or ""
    for line in block[1:]:  # argparse broke words at hyphens: join those back
        body += line.strip() if body.endswith("-") else f" {line.strip()}"
    body = body.strip()
    if option.strip().endswith(".help [CLASS_PATH_OR_NAME]"):
        return []  # said once at the end

    def shorten(match: re.Match) -> str:
        names = [n.strip() for n in match.group(1).split(",") if n.strip()]
        # this toolkit's classes, then the shortest paths (torch.nn.Linear before its variants)
        names.sort(key=lambda n: (not n.startswith("continual."), n.count(".")))
        shown = ", ".join(names[:_SHOWN])
        return f"known subclasses: {shown}" + (", … more)" if len(names) > _SHOWN else ")")

    body = _LIST.sub(shorten, body)
    if not body:
        return [option]
    if len(option) < 22:  # the text starts on the option's line, as argparse prints it
        return [option.ljust(24) + _wrap(body).lstrip()]
    return [option, _wrap(body)]


def _wrap(text: str, indent: int = 24, width: int = 100) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width - indent:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n".join(" " * indent + x for x in lines)


if __name__ == "__main__":  # rewrite the stored texts from the parsers
    for name in COMMANDS:
        path = resources.files("continual") / "help" / f"{name}.txt"
        with resources.as_file(path) as file:
            file.parent.mkdir(exist_ok=True)
            file.write_text(live_help(name))
        print(f"wrote {file}")
