"""A ``--help`` a person reads: jsonargparse's full help, condensed to what a user looks for.

The full text lists every known subclass of ``torch.nn.Module`` for ``--model.net`` (hundreds of
lines) and every ``Trainer`` argument with its docstring. Here a class list keeps its first few
names and says how to see one class's fields; the ``trainer.*`` fields become one line; the
usage line is one line; and the flags the CLI adds itself (``--resume``) are named.
"""

from __future__ import annotations

import re

_LIST = re.compile(r"known subclasses: ([^)]*)\)")
_SHOWN = 6


def short_help(text: str, command: str) -> str:
    """``text`` (a parser's ``format_help()``) condensed for ``continual COMMAND --help``."""
    usage, _, rest = text.partition("\n\n")
    blocks = _option_blocks(rest)
    trainer = [b for b in blocks if b[0].lstrip().startswith("--trainer.")
               and not b[0].lstrip().startswith("--trainer.help")]
    fields = sorted({b[0].split()[0].removeprefix("--trainer.").removesuffix(".help")
                     for b in trainer})
    out = [f"usage: continual {command} [--config FILE] [--FIELD VALUE ...]"
           + (" [--resume RUN_DIR]" if command == "run" else ""), ""]
    for block in blocks:
        if block in trainer:
            if block is trainer[0]:
                out += ["  --trainer.FIELD VALUE", _wrap(
                    "any lightning.pytorch.Trainer argument (defaults: max_epochs 20, no "
                    "checkpointing or progress bar, no sanity steps): " + ", ".join(fields))]
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
    head, body = block[0], ""
    for line in block[1:]:  # argparse broke words at hyphens: join those back
        body += line.strip() if body.endswith("-") else f" {line.strip()}"
    body = body.strip()
    if head.strip().endswith(".help [CLASS_PATH_OR_NAME]"):
        return []  # said once at the end
    if len(head) > 24 and not block[1:]:  # an option with its text on the same line
        return [head]

    def shorten(match: re.Match) -> str:
        names = [n.strip() for n in match.group(1).split(",") if n.strip()]
        more = len(names) - _SHOWN
        shown = ", ".join(names[:_SHOWN])
        return f"known subclasses: {shown}" + (f", … {more} more)" if more > 0 else ")")

    body = _LIST.sub(shorten, body)
    return [head] + ([_wrap(body)] if body else [])


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
