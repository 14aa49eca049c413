"""``continual retrain``: the production step, from the same policy YAML as ``simulate``.

    continual retrain --config policy.yaml --deployment DEPLOY --batch new.npz [--inputs x.npz]

``--batch`` (labelled: ``x`` and ``y``) and ``--inputs`` (unlabelled: ``x``) may be repeated;
batches are processed in the order given, each one step. The config's ``stream`` is not used
(the batches are the stream); ``policies`` may hold several, and ``--policy NAME`` picks one.
``--logger`` (default ``[csv]``) gets each step's rows once they are committed
(:mod:`continual.retraining.step_logs`).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from jsonargparse import ArgumentParser, Namespace
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch import Trainer

from continual.config import instantiate
from continual.errors import ConfigError
from continual.retraining.config import simulate_parser
from continual.retraining.monitor import Monitor, write_report
from continual.retraining.pipeline import RetrainStep, Settings
from continual.retraining.step_logs import StepLogs
from continual.runner import quiet_lightning

FILE_FLAGS = ("--batch", "--inputs")
# Fields that may differ from call to call of one deployment (the rest must match).
PER_CALL = ("deployment", "quiet", "logger", "output", "name", "config")


def retrain_parser() -> ArgumentParser:
    """``simulate``'s fields plus the deployment folder, registry and monitor."""
    p = simulate_parser()
    p.prog = "continual retrain"
    p.description = "One production retraining step per new batch (idempotent, crash-safe)."
    p.add_argument("--deployment", type=str, default="deployment",
                   help="folder holding the deployment's state, models and embedded registry")
    p.add_argument("--policy", type=str | None, default=None,
                   help="the policy to run, by name (needed when the config lists several)")
    p.add_argument("--n_classes", type=int | None, default=None,
                   help="number of classes (default: the network's output width)")
    p.add_argument("--registry.tracking_uri", type=str | None, default=None,
                   help="MLflow tracking/registry URI (default: sqlite:///DEPLOY/mlflow.db)")
    p.add_argument("--registry.model_name", type=str | None, default=None,
                   help="registered model name (default: continual-<policy>)")
    p.add_argument("--monitor", type=Monitor | None,
                   default={"class_path": "continual.retraining.monitor.Monitor"},
                   help="label-free monitoring of new inputs; null disables it")
    return p


def pop_files(argv: list[str]) -> tuple[dict[str, list[Path]], list[str]]:
    """Take every ``--batch FILE`` and ``--inputs FILE`` out of the arguments, in order."""
    files: dict[str, list[Path]] = {flag: [] for flag in FILE_FLAGS}
    rest, i = [], 0
    while i < len(argv):
        flag, _, value = argv[i].partition("=")
        if flag in FILE_FLAGS:
            if not value:
                if i + 1 >= len(argv):
                    raise ConfigError(f"{flag} needs a file; allowed: {flag} FILE")
                value, i = argv[i + 1], i + 1
            files[flag].append(Path(value))
        else:
            rest.append(argv[i])
        i += 1
    return files, rest


def retrain_command(argv: list[str]) -> RetrainStep:
    """Parse ``argv`` and run the step(s) it names; the step object (for tests)."""
    files, rest = pop_files(argv)
    parser = retrain_parser()
    cfg = parser.parse_args(rest)
    if not files["--batch"] and not files["--inputs"]:
        raise ConfigError("no --batch or --inputs given; allowed: --batch FILE (labelled x, y) "
                          "and/or --inputs FILE (unlabelled x), each repeatable")
    if cfg.label_delay != 0:
        raise ConfigError(f"label_delay={cfg.label_delay} is invalid for retrain; allowed: 0 "
                          "(a batch arrives labelled; unlabelled inputs go to --inputs)")
    chosen = settings(parser, cfg)
    logs = StepLogs(cfg.logger, Path(cfg.deployment).resolve(), name=chosen.policy.name,
                    config=yaml.safe_load(chosen.config_text), quiet=cfg.quiet)
    step = RetrainStep(cfg.deployment, chosen, say=None if cfg.quiet else print, logs=logs)
    try:
        for path in files["--inputs"]:
            step.inputs(path)
        for path in files["--batch"]:
            step.batch(path)
    finally:  # what was committed is sent even when a later batch fails
        logs.close(step.dep.load_state())
    state = step.dep.load_state()
    report = write_report(state, step.dep.root / "report.html",
                          f"continual retrain · {step.s.policy.name}")
    if not cfg.quiet:
        print(f"champion: version {step.registry.alias('champion') or '—'} · "
              f"{len(state['steps'])} batches · report {report}")
    return step


def settings(parser: ArgumentParser, cfg: Namespace) -> Settings:
    """The policy, network and training settings of ``cfg`` (seeded as ``simulate`` seeds)."""
    kept = {k: v for k, v in yaml.safe_load(parser.dump(cfg, skip_none=False)).items()
            if k not in PER_CALL}
    config_text = yaml.safe_dump(kept, sort_keys=True)
    seed_everything(cfg.seed, verbose=False)
    init = instantiate(parser, cfg)
    names = [p.name for p in init.policies]
    if cfg.policy is None and len(names) != 1:
        raise ConfigError(f"policy=None is ambiguous among {names}; allowed: --policy NAME, "
                          "one of them")
    chosen = [p for p in init.policies if cfg.policy in (None, p.name)]
    if not chosen:
        raise ConfigError(f"policy={cfg.policy!r} is unknown; allowed: one of {names}")
    trainer = dict(vars(init.trainer))
    with quiet_lightning():
        Trainer(**trainer)  # reject bad trainer settings before anything is written
    policy = chosen[0]
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in policy.name)
    return Settings(policy=policy, net=init.model.net, optimizer=init.model.optimizer,
                    n_classes=cfg.n_classes, trainer=trainer, batch_size=cfg.batch_size,
                    eval_batch_size=cfg.eval_batch_size, seed=cfg.seed,
                    holdout_fraction=cfg.holdout_fraction, initial_chunks=cfg.initial_chunks,
                    config_text=config_text, monitor=init.monitor,
                    model_name=cfg.registry.model_name or f"continual-{slug}",
                    tracking_uri=cfg.registry.tracking_uri)
