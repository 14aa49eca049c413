"""``continual data optimize SOURCE OUTPUT``: prepare data once in litdata's chunked format."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from continual.data.litdata_format import write_litdata
from continual.data.tensors import TensorData
from continual.errors import ConfigError

USAGE = """usage: continual data optimize SOURCE OUTPUT [--size N | --size H,W] [--grayscale]
                               [--chunk-bytes 64MB]

SOURCE: a folder of images (one sub-folder per class), or a .pt file holding tensors
{"x": [N, ...], "y": [N], "t": [N] (optional task ids)}. OUTPUT: the folder to write;
stream it with continual.data.litdata_splits(OUTPUT)."""


def data_command(argv: list[str]) -> Path | None:
    """Run ``continual data ...``; the folder written (None for help)."""
    if not argv or argv[0] in ("-h", "--help") or "-h" in argv or "--help" in argv:
        print(USAGE)
        return None
    if argv[0] != "optimize":
        raise ConfigError(f"data command {argv[0]!r} is unknown; allowed: optimize")
    positional = [a for i, a in enumerate(argv[1:], 1) if not a.startswith("--")
                  and argv[i - 1] not in ("--size", "--chunk-bytes")]
    if len(positional) != 2:
        raise ConfigError(f"data optimize takes SOURCE and OUTPUT, got {positional}; allowed: "
                          "continual data optimize SOURCE OUTPUT [--size N] [--grayscale]")
    parser = argparse.ArgumentParser(prog="continual data optimize", add_help=False,
                                     exit_on_error=False)
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--size", default=None)
    parser.add_argument("--grayscale", action="store_true")
    parser.add_argument("--chunk-bytes", default="64MB")
    args, unknown = parser.parse_known_args(argv[1:])
    if unknown:
        raise ConfigError(f"data optimize does not take {' '.join(unknown)}; allowed: --size N "
                          "or H,W, --grayscale, --chunk-bytes SIZE")
    source = Path(args.source)
    if source.is_dir():
        what: TensorData | Path = source
    elif source.suffix == ".pt" and source.is_file():
        what = _tensors(source)
    else:
        raise ConfigError(f"source={args.source!r} is neither a folder nor a .pt file; allowed: "
                          "a folder of class sub-folders of images, or a .pt file of tensors")
    out = write_litdata(what, args.output, size=_size(args.size), grayscale=args.grayscale,
                        chunk_bytes=args.chunk_bytes)
    print(f"wrote {len(torch.load(out / 'continual_labels.pt')['y']):,} samples to {out}")
    return out


def _size(text: str | None) -> int | tuple[int, int] | None:
    if text is None:
        return None
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise ConfigError(f"size={text!r} is invalid; allowed: N or H,W (positive integers)")
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def _tensors(path: Path) -> TensorData:
    try:
        held = torch.load(path, weights_only=True)
    except Exception as e:  # any unreadable file: one line naming it
        raise ConfigError(f"source={str(path)!r} cannot be read as tensors "
                          f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not isinstance(held, dict) or not {"x", "y"} <= set(held):
        raise ConfigError(f"source={str(path)!r} holds no {{'x': ..., 'y': ...}} mapping; "
                          "allowed: a dict of tensors x [N, ...], y [N], optional t [N]")
    return TensorData(held["x"], torch.as_tensor(held["y"]), held.get("t"))
