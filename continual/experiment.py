"""Run experiments from a parsed configuration: what the CLI calls, and tests can call too."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from pathlib import Path

import yaml
from jsonargparse import ArgumentParser, Namespace
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch import Trainer

from continual.config import check_optimizer, instantiate
from continual.console import compare_table, matrix_table
from continual.data.stream import Stream
from continual.distributed import broadcast, is_rank_zero, launch
from continual.errors import ConfigError, OutputError
from continual.module import ContinualModule
from continual.result import Result, atomic_write
from continual.runner import check_settings, prepare, quiet_lightning, run
from continual.strategies.names import resolve
from continual.threads import choose_threads
from continual.tracking.loggers import check_loggers, make_loggers
from continual.tracking.plots import plot_cost_accuracy

# The configs that ship with the package (in a checkout or an editable install: beside it).
# Shipped configs: inside the package (a link to the repository's configs/ in a checkout; the
# files themselves in a wheel), so names resolve from any folder however it was installed.
SHIPPED_CONFIGS = Path(__file__).parent / "configs"


def run_experiment(parser: ArgumentParser, cfg: Namespace, run_dir: Path | None = None,
                   show_table: bool = True, group: str | None = None,
                   resume: bool = False) -> Result:
    """Seed, build the stream, network and strategy that ``cfg`` names, and run them.

    ``quiet`` in ``cfg`` hides the per-task lines; ``show_table`` the final matrix.
    """
    check_settings(cfg.batch_size, cfg.eval_batch_size, cfg.seed, cfg.checkpoint_every_n_epochs,
                   vars(cfg.trainer))  # before the run folder is claimed
    claim = run_dir is None  # a new folder: claimed once the checks below have passed
    if run_dir is None:
        run_dir = new_run_dir(cfg.output, cfg.name) if cfg.name else \
            new_run_dir(cfg.output, _label(cfg), stamp=True)
    check_loggers(cfg.logger)  # an unknown logger or a missing extra: one line, before any work
    resolved = yaml.safe_load(parser.dump(cfg, skip_none=False))
    seed_everything(cfg.seed, verbose=False)
    init = instantiate(parser, cfg)
    choose_threads(init.model.net, cfg.threads)
    check_optimizer(init.model.optimizer)
    try:
        stream = init.data.build()
    except ConfigError as e:
        raise ConfigError(f"data: {e}") from None
    module = ContinualModule(init.model.net, init.strategy, init.model.optimizer)
    prepare(stream, module)  # fail on a mismatched net before anything is written
    trainer = {k: v for k, v in vars(init.trainer).items()}
    with quiet_lightning():
        # Bad settings are rejected now (no default logger: the run's loggers are its own).
        check = Trainer(**{**trainer, "default_root_dir": None, "logger": False})
        launch(check)  # under DDP: every rank, so that they agree on the folder
    lead = is_rank_zero()  # only rank 0 writes files, logs and prints
    if claim and lead:  # taken now, atomically: a run started at the same time takes another
        run_dir = claim_run_dir(run_dir)
    run_dir = broadcast(run_dir)  # rank 0's; ranks launched apart would stamp different ones
    trainer["default_root_dir"] = str(run_dir)
    try:
        return _run_in(parser, cfg, init, stream, module, trainer, run_dir, resolved, lead,
                       show_table, group, resume)
    except BaseException as e:
        if claim and lead:  # nothing written yet (a logger that cannot start): none left behind
            _remove_if_empty(run_dir)
        if isinstance(e, OSError) and not isinstance(e, FileNotFoundError):
            raise OutputError(_write_failure(e, run_dir)) from None
        raise


def _run_in(parser: ArgumentParser, cfg: Namespace, init: Namespace, stream: Stream,
            module: ContinualModule, trainer: dict, run_dir: Path, resolved: dict, lead: bool,
            show_table: bool, group: str | None, resume: bool) -> Result:
    """The run itself, in its folder (claimed, or resumed)."""
    # Built before anything is written: a logger that cannot be built leaves no folder behind.
    loggers = make_loggers(cfg.logger, run_dir, name=run_dir.name, group=group,
                           tags=[_label(cfg), f"seed{cfg.seed}"], config=resolved,
                           quiet=cfg.quiet) if lead else []
    if lead and not resume:  # a resumed run keeps its own: its tasks were trained by it
        atomic_write(run_dir / "config.yaml", parser.dump(cfg))
    echo = None if cfg.quiet or not lead else print
    if echo:
        echo(f"{stream.name} ({stream.scenario}-incremental, {len(stream)} tasks) · "
             f"{type(init.strategy).__name__} · seed {cfg.seed} → {run_dir}")
    result = run(
        stream, module, trainer=trainer, batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size, seed=cfg.seed, run_dir=run_dir,
        loggers=loggers,
        config=resolved, echo=echo, progress=echo is not None and sys.stderr.isatty(),
        resume=resume, data_on_device=cfg.data_on_device,
        checkpoint_every_n_epochs=cfg.checkpoint_every_n_epochs,
    )
    if show_table and lead:
        print(matrix_table(result))
        print(f"results in {run_dir}")  # also when quiet: where the run went (a name reused
        # by another run becomes NAME-2)
    return result


def compare_experiments(parser: ArgumentParser, cfg: Namespace, argv: list[str]
                        ) -> dict[str, list[Result]]:
    """Every strategy × seed on the same stream, each in its own run folder; one table."""
    root = new_run_dir(cfg.output, cfg.name) if cfg.name else \
        new_run_dir(cfg.output, "compare", stamp=True)
    # Claimed atomically by the process the user started (ranks started by a launcher, which
    # set LOCAL_RANK, take rank 0's folder from each run instead of claiming their own).
    claimed = "LOCAL_RANK" not in os.environ
    if claimed:
        root = claim_run_dir(root)
    try:
        return _compare_in(parser, cfg, argv, root)
    except BaseException:
        if claimed:
            _remove_if_empty(root)
        raise


def _compare_in(parser: ArgumentParser, cfg: Namespace, argv: list[str], root: Path
                ) -> dict[str, list[Result]]:
    results: dict[str, list[Result]] = {}
    seeds = _seeds(cfg.seeds)
    for spec in _split(cfg.strategies):
        source = _strategy_source(spec)
        for seed in seeds:
            from_file = source.endswith((".yaml", ".yml"))
            pick = ["--config" if from_file else "--strategy", source, "--seed", str(seed)]
            one = parser.parse_args([*argv, *pick])
            label = Path(source).stem if from_file else _label(one)
            run_dir = root / f"{label}-seed{seed}"
            results.setdefault(label, []).append(
                run_experiment(parser, one, run_dir, show_table=not cfg.quiet, group=root.name))
    table = compare_table(results)
    if not is_rank_zero():
        return results
    summary = {k: [r.summary for r in v] for k, v in results.items()}
    atomic_write(root / "compare.json", json.dumps(summary, indent=2) + "\n")
    atomic_write(root / "compare.txt", table + "\n")
    plot_cost_accuracy(results, root / "cost_accuracy.png")
    print(f"\n{table}\n\nresults in {root}")
    return results


def new_run_dir(output: str | Path, label: str, stamp: bool = False) -> Path:
    """A new path ``output/[<timestamp>-]<label>`` (never an existing one: ``-2``, ``-3`` …)."""
    prefix = dt.datetime.now().strftime("%Y-%m-%d_%H%M%S-") if stamp else ""
    base = Path(output) / f"{prefix}{label}"
    path, n = base, 1
    while _exists(path):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long: claim_run_dir says so in one line
        return False


def claim_run_dir(path: Path) -> Path:
    """Create ``path`` (or, if it exists, ``path-2``, ``path-3`` …) and return it.

    ``mkdir`` without ``exist_ok`` is atomic: of two runs started with the same name at the
    same moment, each gets a folder of its own.

    Raises:
        ConfigError: the folder cannot be created (``output`` is a file, read-only, or the
            name too long), in one line naming it.
    """
    base, n = Path(path), 1
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"output={str(base.parent)!r} cannot hold run folders "
                          f"({_os_problem(e)}); allowed: a writable folder") from None
    while True:
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
        except OSError as e:
            raise ConfigError(f"run folder {str(path)!r} cannot be created ({_os_problem(e)}); "
                              "allowed: a writable output folder and a name of at most "
                              "255 bytes") from None


def _write_failure(e: OSError, run_dir: Path) -> str:
    """One line for a file the run could not write, and how to go on from there."""
    line = f"{_os_problem(e)}: {e.filename}" if e.filename else _os_problem(e)
    if (run_dir / "checkpoint.pt").is_file():
        return (f"{line}; the finished tasks are saved in {run_dir} (once the cause is fixed, "
                f"continue with `continual run --resume {run_dir}`)")
    return f"{line}; no task had finished, nothing to resume"


def _os_problem(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()  # only an empty folder goes


def _split(specs: list[str] | str) -> list[str]:
    specs = [specs] if isinstance(specs, str) else specs
    return [s.strip() for spec in specs for s in spec.split(",") if s.strip()]


def _seeds(seeds: list[int] | str) -> list[int]:
    try:
        return [int(s) for s in _split(seeds)] if isinstance(seeds, str) else list(seeds)
    except ValueError:
        raise ConfigError(f"seeds={seeds!r} is invalid; allowed: integers, e.g. 0,1,2") from None


def _strategy_source(spec: str) -> str:
    """A config file (a path, or a shipped ``configs/strategy/<spec>.yaml``), a name users know
    (``naive``, ``replay``, ``derpp``: :mod:`continual.strategies.names`) or a class name/path.

    Strategy files hold a top-level ``strategy:`` key, so they are read as extra ``--config``.
    Shipped files are found beside the package, not in the working directory.
    """
    if Path(spec).is_file():
        return spec
    for root in (Path("configs"), SHIPPED_CONFIGS):
        if (root / "strategy" / f"{spec}.yaml").is_file():
            return str(root / "strategy" / f"{spec}.yaml")
    return resolve(spec) or spec


def _label(cfg: Namespace) -> str:
    return str(cfg.strategy.class_path).rsplit(".", 1)[-1]
