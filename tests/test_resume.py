"""Every strategy's state survives a checkpoint: a resumed run ends exactly like an unbroken one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything

from continual import ConfigError, ContinualModule, run
from continual.checkpoint import CHECKPOINT
from continual.data import split_classes
from continual.nets import MLP
from continual.strategies import (
    AGEM,
    DER,
    ERACE,
    EWC,
    GEM,
    LUCIR,
    MAS,
    MIR,
    SI,
    XDER,
    BiC,
    Compose,
    DERpp,
    ExperienceReplay,
    FeCAM,
    FineTune,
    FullRetrain,
    GDumb,
    ICaRL,
    LwF,
    OnlineEWC,
    RanPAC,
    RWalk,
    SimpleCIL,
)

STRATEGIES = {
    "FineTune": lambda: FineTune(),
    "FullRetrain": lambda: FullRetrain(from_scratch=True),
    "EWC": lambda: EWC(lam=100.0, n_samples=64),
    "OnlineEWC": lambda: OnlineEWC(lam=100.0, n_samples=64),
    "SI": lambda: SI(lam=1.0),
    "MAS": lambda: MAS(lam=1.0, n_samples=64),
    "RWalk": lambda: RWalk(lam=1.0, delta_t=7),
    "LwF": lambda: LwF(),
    "ER": lambda: ExperienceReplay(buffer_size=50),
    "AGEM": lambda: AGEM(buffer_size=50),
    "DER": lambda: DER(buffer_size=50),
    "DER++": lambda: DERpp(buffer_size=50),
    "X-DER": lambda: XDER(buffer_size=50),
    "ER-ACE": lambda: ERACE(buffer_size=50),
    "GDumb": lambda: GDumb(buffer_size=60),
    "iCaRL": lambda: ICaRL(buffer_size=60),
    "BiC": lambda: BiC(buffer_size=60),
    "LUCIR": lambda: LUCIR(buffer_size=60),
    "GEM": lambda: GEM(buffer_size=50),
    "MIR": lambda: MIR(buffer_size=50),
    "SimpleCIL": lambda: SimpleCIL(adapt_first_task=True),
    "RanPAC": lambda: RanPAC(projection_dim=200, adapt_first_task=True),
    "FeCAM": lambda: FeCAM(),
    "EWC+ER": lambda: Compose([EWC(lam=100.0, n_samples=64), ExperienceReplay(buffer_size=50)]),
}


class Crash(Exception):
    pass


def crash_after(task: int):
    def echo(line: str) -> None:
        if line.startswith(f"task {task}/"):
            raise Crash(line)
    return echo


def fresh_module(make, seed):
    seed_everything(seed, verbose=False)
    return ContinualModule(MLP(hidden=(32,)), make())


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_resumed_run_matches_the_uninterrupted_one(name, digits_data, tmp_path):
    make = STRATEGIES[name]
    stream = split_classes(digits_data, n_tasks=3)
    kwargs = {"trainer": {"accelerator": "cpu", "max_epochs": 2}, "batch_size": 32, "seed": 5}
    whole = run(stream, fresh_module(make, 0), run_dir=tmp_path / "whole", echo=None, **kwargs)

    with pytest.raises(Crash):
        run(stream, fresh_module(make, 0), run_dir=tmp_path / "broken", echo=crash_after(2),
            **kwargs)
    # A new process would build everything again, even with other initial weights.
    resumed = run(stream, fresh_module(make, 123), run_dir=tmp_path / "broken", resume=True,
                  echo=None, **kwargs)
    np.testing.assert_array_equal(resumed.matrix, whole.matrix)
    assert [c.train_samples for c in resumed.cost] == [c.train_samples for c in whole.cost]


def test_truncated_checkpoint_is_reported(digits_data, tmp_path):
    stream = split_classes(digits_data, n_tasks=2)
    kwargs = {"trainer": {"max_epochs": 1}, "run_dir": tmp_path, "echo": None}
    run(stream, fresh_module(FineTune, 0), **kwargs)
    path = tmp_path / CHECKPOINT
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ConfigError, match="is unreadable"):
        run(stream, fresh_module(FineTune, 0), resume=True, **kwargs)


def test_bit_flipped_checkpoint_is_reported_not_loaded(digits_data, tmp_path):
    stream = split_classes(digits_data, n_tasks=2)
    kwargs = {"trainer": {"max_epochs": 1}, "run_dir": tmp_path, "echo": None}
    run(stream, fresh_module(FineTune, 0), **kwargs)
    path = tmp_path / CHECKPOINT
    blob = bytearray(path.read_bytes())
    middle = len(blob) // 2  # inside a tensor's bytes: torch.load alone would not notice
    blob[middle] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ConfigError, match="fails its CRC check"):
        run(stream, fresh_module(FineTune, 0), resume=True, **kwargs)


def test_checkpoint_of_another_configuration_is_refused(digits_data, tmp_path):
    stream = split_classes(digits_data, n_tasks=2)
    kwargs = {"trainer": {"max_epochs": 1}, "run_dir": tmp_path, "echo": None}
    run(stream, fresh_module(FineTune, 0), **kwargs)
    with pytest.raises(ConfigError, match="another configuration"):
        run(stream, fresh_module(lambda: EWC(lam=1.0), 0), resume=True, **kwargs)


def test_checkpoints_load_without_executing_code(digits_data, tmp_path):
    stream = split_classes(digits_data, n_tasks=2)
    run(stream, fresh_module(lambda: DERpp(buffer_size=20), 0), trainer={"max_epochs": 1},
        run_dir=tmp_path, echo=None)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)  # raises on pickled code
    assert state["strategy"]["buffer"]["store"]["x"].shape[0] == 20
