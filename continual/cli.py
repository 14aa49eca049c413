"""``continual run | compare | simulate | retrain | report``: the command line.

User mistakes (bad config, unknown class, wrong type, impossible stream) end with one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from argparse import ArgumentError
from pathlib import Path

import yaml

from continual.errors import ConfigError, NonFiniteLossError, OutputError

USAGE = """usage: continual COMMAND [--config FILE] [--field.subfield VALUE ...]

commands:
  run       train one strategy on a stream, print the accuracy matrix
  compare   several strategies (and seeds) on the same stream, one table
  simulate  replay a drifting stream through retraining policies, one table and a plot
  retrain   one production step per new batch: score, trigger, retrain, gate, promote (MLflow)
  report    Markdown + HTML report of run folders: continual report RUN_DIR [RUN_DIR ...]
  data      continual data optimize SOURCE OUTPUT: write data in litdata's chunks, to stream

`continual --version` prints the version.
With no --config, the embedded default runs: Split-Digits, class-incremental, 5 tasks.
`continual run --resume RUN_DIR` continues a stopped run after its last finished task.
`continual COMMAND --help` lists every field; `--print_config` shows the resolved config."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv[0] in ("-V", "--version"):
        from continual import __version__

        print(f"continual {__version__}")
        return 0
    if argv[0] in ("run", "compare") and argv[1:] in (["-h"], ["--help"]):
        from continual.cli_help import live_help, stored_help

        print(stored_help(argv[0]) or live_help(argv[0]), end="")  # stored: no Lightning import
        return 0
    command, rest = argv[0], argv[1:]
    if command in ("run", "compare") and ("-h" in rest or "--help" in rest):
        from continual.cli_help import live_help

        print(live_help(command), end="")
        return 0
    try:
        _check_config_files(rest)
        _dispatch(command, rest)
    except Exception as e:  # a user mistake or an I/O failure: one line; a bug: raised again
        return _failure(command, e)
    except KeyboardInterrupt as e:
        if command == "simulate":
            return _fail("interrupted; the policies that finished are saved in simulation.json",
                         code=130)
        return _fail(f"{e or 'interrupted'}; finished tasks are saved in the run folder "
                     "(continue with `continual run --resume RUN_DIR`)", code=130)
    return 0


def _dispatch(command: str, rest: list[str]) -> None:
    """Run ``command`` (imported only then: help and version answer without Lightning)."""
    if command == "run":
        from continual.config import run_parser
        from continual.experiment import run_experiment

        parser = run_parser()
        resume_dir, rest = _pop_resume(_known_strategy_names(rest))
        if resume_dir is None:
            run_experiment(parser, parser.parse_args(rest))
        else:
            cfg = parser.parse_args(["--config", str(resume_dir / "config.yaml"), *rest])
            run_experiment(parser, cfg, run_dir=resume_dir, resume=True)
    elif command == "compare":
        from continual.config import compare_parser
        from continual.experiment import compare_experiments

        parser = compare_parser()
        compare_experiments(parser, parser.parse_args(rest), rest)
    elif command == "simulate":
        from continual.retraining.config import simulate_parser
        from continual.retraining.experiment import simulate_experiment

        parser = simulate_parser()
        simulate_experiment(parser, parser.parse_args(rest))
    elif command == "retrain":
        from continual.retraining.production import retrain_command

        retrain_command(rest)
    elif command == "data":
        from continual.data.optimize_cli import data_command

        data_command(rest)
    elif command == "report":
        from continual.config import report_parser
        from continual.tracking.report import write_report

        cfg = report_parser().parse_args(rest)
        md, page = write_report(cfg.runs, cfg.output)
        print(f"report: {md} and {page}")
    else:
        raise ConfigError(f"command {command!r} is unknown; allowed: run, compare, "
                          "simulate, retrain, report, data")


def _failure(command: str, e: Exception) -> int:
    """The exit code of a command that raised ``e``, its one line printed; anything that is
    not a user's mistake or an I/O failure is raised again (a bug shows its traceback)."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from continual.cli_errors import one_line
    from continual.config import ALLOWED

    if isinstance(e, ArgumentError):
        return _fail(one_line(str(e), ALLOWED))
    if isinstance(e, ConfigError):
        return _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    if isinstance(e, MisconfigurationException):  # Lightning's word on the trainer settings
        return _fail(f"trainer: {str(e).splitlines()[0]}")
    if isinstance(e, OutputError):
        return _fail(str(e), code=1)
    if isinstance(e, FileNotFoundError):
        if command == "report":
            return _fail(f"runs: {e}; allowed: run folders holding results.json")
        return _fail(f"{e.strerror or e} ({e.filename}); allowed: an existing file")
    if isinstance(e, OSError):  # a file that cannot be written (disk full, no permission)
        where = f" ({e.filename})" if e.filename else ""
        return _fail(f"{e.strerror or e}{where}", code=1)
    if isinstance(e, NonFiniteLossError):
        if command == "simulate":
            return _fail(f"{e}; the policies that finished are saved in simulation.json "
                         "(allowed: clean data, or a policy quality_gate that drops NaN/inf "
                         "inputs)", code=1)
        return _fail(f"{e}; the tasks before it are saved in the run folder "
                     "(continue with `continual run --resume RUN_DIR`)", code=1)
    raise e


def _known_strategy_names(args: list[str]) -> list[str]:
    """``--strategy ER`` (a name from Avalanche, mammoth or a paper) as its class path."""
    from continual.strategies.names import resolve

    out = list(args)
    for i, arg in enumerate(out):
        if arg.startswith("--strategy="):
            name = arg.split("=", 1)[1]
            out[i] = f"--strategy={resolve(name) or name}"
        elif arg == "--strategy" and i + 1 < len(out):
            out[i + 1] = resolve(out[i + 1]) or out[i + 1]
    return out


def _pop_resume(args: list[str]) -> tuple[Path | None, list[str]]:
    """Take ``--resume RUN_DIR`` out of the arguments; the run's own config.yaml comes first."""
    for i, arg in enumerate(args):
        if arg == "--resume" or arg.startswith("--resume="):
            value = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args)
                                                               else "")
            rest = args[:i] + args[i + (1 if "=" in arg else 2):]
            run_dir = Path(value)
            if not (run_dir / "config.yaml").is_file():
                raise ConfigError(f"resume={value!r} has no config.yaml; allowed: a run folder "
                                  "written by continual run")
            _check_config_files(["--config", str(run_dir / "config.yaml")])
            return run_dir, rest
    return None, args


def _check_config_files(args: list[str]) -> None:
    """Each ``--config FILE`` must be UTF-8 text: the parser would end in a traceback."""
    files = [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    files += [b for a, b in zip(args, args[1:]) if a == "--config"]
    for name in files:
        try:
            text = Path(name).read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"config={name!r} is not UTF-8 text (byte 0x{e.object[e.start]:02x} "
                              f"at offset {e.start}); allowed: a YAML file") from None
        except OSError:
            continue  # missing, a folder: the parser names it
        try:
            content = yaml.safe_load(text)
        except yaml.YAMLError:
            continue  # the parser says where
        if not isinstance(content, dict):
            what = "nothing" if content is None else f"a {type(content).__name__}"
            raise ConfigError(f"config={name!r} holds {what}, not a mapping of fields; allowed: "
                              "a YAML mapping, e.g. `trainer: {max_epochs: 5}`")


def _fail(message: str, code: int = 2) -> int:
    print(f"continual: error: {message}", file=sys.stderr)
    return code


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
