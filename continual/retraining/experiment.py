"""``continual simulate`` from a parsed config: every policy over the same stream."""

from __future__ import annotations

import math

import yaml
from jsonargparse import ArgumentParser, Namespace
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import Logger, WandbLogger

from continual.config import instantiate
from continual.errors import ConfigError
from continual.experiment import claim_run_dir, new_run_dir
from continual.result import atomic_write
from continual.retraining.plot import plot_policies
from continual.retraining.quality import check_chunks
from continual.retraining.results import policy_table, save_simulation, summarize
from continual.retraining.simulate import PolicyRun, simulate
from continual.runner import quiet_lightning
from continual.threads import choose_threads
from continual.tracking.loggers import check_loggers, make_loggers


def simulate_experiment(parser: ArgumentParser, cfg: Namespace) -> dict[str, PolicyRun]:
    """Build the stream, network and policies of ``cfg``; simulate each; table, plot, logs."""
    root = new_run_dir(cfg.output, cfg.name) if cfg.name else \
        new_run_dir(cfg.output, "simulate", stamp=True)
    check_loggers(cfg.logger)  # an unknown logger or a missing extra: one line, before any work
    resolved = yaml.safe_load(parser.dump(cfg, skip_none=False))
    seed_everything(cfg.seed, verbose=False)
    init = instantiate(parser, cfg)
    choose_threads(init.model.net, cfg.threads)
    names = [p.name for p in init.policies]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated or not names:
        raise ConfigError(f"policies: names {duplicated or names} are invalid; allowed: one "
                          "policy or more, each with its own name")
    unknown = [n for n in cfg.plot or [] if n not in names]
    if unknown:
        raise ConfigError(f"plot: {unknown} are not policies; allowed: names from {names}")
    try:
        stream = init.stream.build()
    except ConfigError as e:
        raise ConfigError(f"stream: {e}") from None
    trainer = dict(vars(init.trainer))
    devices = trainer.get("devices", 1)
    if devices not in (1, "1") and not (isinstance(devices, list) and len(devices) == 1):
        raise ConfigError(f"trainer.devices={devices!r} is invalid for simulate; allowed: 1 "
                          "(policies retrain small models one after another, in one process)")
    with quiet_lightning():
        Trainer(**trainer)  # reject bad trainer settings before anything is written
    for policy in init.policies:  # unclean chunks a policy would take as they are
        if policy.quality_gate is None:
            check_chunks(stream.chunks, stream.n_classes, policy.name)
    root = claim_run_dir(root)  # atomically: a simulation started alongside takes another
    atomic_write(root / "config.yaml", parser.dump(cfg))
    say = None if cfg.quiet else print
    if say:
        say(f"{stream.name}: {len(stream.chunks)} chunks, drift at {stream.drift_points} · "
            f"{len(names)} policies → {root}")
    runs, summaries = {}, {}
    meta = {"stream": stream.name, "n_chunks": len(stream.chunks),
            "drift_points": stream.drift_points, "alpha": cfg.alpha, "config": resolved,
            "info": stream.info}
    for policy in init.policies:
        run = simulate(
            stream.chunks, policy, init.model.net, n_classes=stream.n_classes,
            optimizer=init.model.optimizer, trainer=trainer, batch_size=cfg.batch_size,
            eval_batch_size=cfg.eval_batch_size, seed=cfg.seed,
            holdout_fraction=cfg.holdout_fraction, label_delay=cfg.label_delay,
            initial_chunks=cfg.initial_chunks, drift_points=stream.drift_points,
            echo=say if cfg.steps else None)
        runs[policy.name] = run
        summaries[policy.name] = summarize(run, cfg.alpha)
        _log(make_loggers(cfg.logger, root / _slug(policy.name), name=policy.name,
                          group=root.name, tags=["simulate", _slug(policy.name)],
                          config=resolved, quiet=cfg.quiet), run, summaries[policy.name])
        # Saved after every policy: an interrupted comparison keeps the policies it finished.
        save_simulation(root, runs, summaries, meta)
        if say:
            row = summaries[policy.name]
            say(f"[{policy.name}] mean accuracy {100 * row['mean_accuracy']:.1f}% · "
                f"{row['retrains']} retrains")
    plot_policies(runs, root / "accuracy_over_time.png", title=stream.name, only=cfg.plot)
    print(f"\n{policy_table(summaries)}\n\nresults in {root}")
    return runs


def _log(loggers: list[Logger], run: PolicyRun, summary: dict) -> None:
    """Each step's accuracy and actions against ``step``; the summary and decisions at the end."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.define_metric("step")
            logger.experiment.define_metric("prequential/*", step_metric="step")
        for s in run.steps:
            metrics = {"prequential/retrained": float(s.retrained),
                       "prequential/deployed": float(s.deployed), "step": float(s.step)}
            if not math.isnan(s.accuracy):
                metrics["prequential/accuracy"] = s.accuracy
            logger.log_metrics(metrics, step=s.step)
        finite = {k: float(v) for k, v in summary.items() if math.isfinite(float(v))}
        if isinstance(logger, WandbLogger):
            import wandb

            rows = [list(d.as_dict().values()) for d in run.decisions]
            columns = list(run.decisions[0].as_dict()) if run.decisions else ["step"]
            logger.experiment.log({"decisions": wandb.Table(columns=columns, data=rows)})
            logger.experiment.summary.update(finite)
            logger.finalize("success")
            logger.experiment.finish()
        else:
            logger.log_hyperparams({f"final/{k}": v for k, v in finite.items()})
            logger.finalize("success")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "policy"


