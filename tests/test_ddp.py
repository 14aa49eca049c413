"""Two-process DDP on CPU (gloo): the same results as one process, state identical on both
ranks, files written once; and the cross-rank helpers against full-data computations."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from tests_helpers import colour_images

import continual
from continual.cli import main

REPO = Path(continual.__file__).resolve().parents[1]
DDP = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
STRATEGIES = {
    "finetune": "{class_path: continual.strategies.FineTune}",
    "ewc": "{class_path: continual.strategies.EWC, init_args: {lam: 30.0, n_samples: 128}}",
    "er": "{class_path: continual.strategies.ExperienceReplay, init_args: {buffer_size: 100}}",
    # a memory of rows of lazy data: every rank's rows gathered, read back when replayed
    "er_rows": "{class_path: continual.strategies.ExperienceReplay, "
               "init_args: {buffer_size: 60, storage: rows}}",
}
LAZY = {"er_rows"}  # these run on a lazy image folder the fixture writes
STOP_ONCE = "{class_path: ddp_strategies.StopOnce, init_args: {task: 2}}"

# Each rank runs the CLI in-process for every config, then saves its strategy state and
# weights where the test can compare them (the run folders are rank 0's alone).
SCRIPT = '''
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from continual import experiment
from continual.cli import main

modules = []
_run = experiment.run


def spy(stream, module, **kwargs):
    modules.append(module)
    return _run(stream, module, **kwargs)


experiment.run = spy
out, dumps, ddp = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]


def cli(name, *args):
    return main(["run", "--config", f"{name}.yaml", "--output", str(out), "--name", name, *args])


for name in ["finetune", "ewc", "er", "er_rows"]:
    assert cli(name, *ddp) == 0
    state = {"strategy": modules[-1].strategy.state_dict(), "net": modules[-1].net.state_dict()}
    torch.save(state, dumps / f"{name}.{dist.get_rank()}.pt")
# Interrupted before task 2 on both ranks (exit 130), then resumed from rank 0's checkpoint.
assert cli("er_stop", *ddp) == 130
assert main(["run", "--resume", str(out / "er_stop"), *ddp]) == 0
# A NaN loss on rank 1 alone: both ranks stop (exit 1), neither is left waiting for the other.
assert cli("nan", *ddp) == 1
dist.barrier()  # every rank has dumped before rank 0, which the test waits for, exits
'''

STRATEGIES_FOR_THE_TEST = '''
import torch.distributed as dist

from continual.strategies import Strategy


class StopOnce(Strategy):
    """Ctrl-C at the start of a task, once per process: an interrupted run to resume."""
    fired = False

    def __init__(self, task: int = 2):
        self.task = task

    def on_task_start(self, module, stream, index):
        if index == self.task and not StopOnce.fired:
            StopOnce.fired = True
            raise KeyboardInterrupt("stopped for the test")


class NaNOnRankOne(Strategy):
    """A NaN loss on rank 1 only, in task 1."""

    def loss(self, module, step, loss):
        if dist.get_rank() == 1 and step.task == 1:
            return loss * float("nan")
        return loss
'''


def write_configs(root: Path, images: Path) -> None:
    members = {**STRATEGIES, "er_stop": "{class_path: continual.strategies.Compose, "
               f"init_args: {{strategies: [{STRATEGIES['er']}, {STOP_ONCE}]}}}}",
               "nan": "{class_path: ddp_strategies.NaNOnRankOne}"}
    lazy = (f", dataset: {{class_path: continual.data.ImageFolder, init_args: {{root: {images}, "
            "seed: 0, lazy: true}}")
    net = ("model: {net: {class_path: continual.nets.MLP, init_args: {in_features: 192, "
           "hidden: [32], n_classes: 10}}}")
    for name, strategy in members.items():
        (root / f"{name}.yaml").write_text(textwrap.dedent(f"""
            strategy: {strategy}
            data: {{class_path: continual.data.SplitClasses, init_args: {{n_tasks: 5\
{lazy if name in LAZY else ""}}}}}
            {net if name in LAZY else ""}
            trainer: {{max_epochs: 3}}
            logger: [csv]
        """))
    (root / "ddp_strategies.py").write_text(textwrap.dedent(STRATEGIES_FOR_THE_TEST))
    (root / "ddp_run.py").write_text(textwrap.dedent(SCRIPT))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, str, Path]:
    """Two-process runs (Lightning's launcher) and, meanwhile, the same configs in this
    process: (two-process folder, the ranks' output, one-process folder)."""
    two, one = tmp_path_factory.mktemp("ddp"), tmp_path_factory.mktemp("one")
    images = colour_images(tmp_path_factory.mktemp("images"), 10, 30, seed=0)
    for root in (two, one):
        write_configs(root, images)
    (two / "dumps").mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(two)]),
           "PYTHONUNBUFFERED": "1"}
    env.pop("LOCAL_RANK", None)
    # Its own session: on failure the launcher and the rank it started end together.
    ddp = subprocess.Popen([sys.executable, "ddp_run.py", "out", "dumps", *DDP], cwd=two,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    cwd = Path.cwd()
    try:
        os.chdir(one)
        for name in STRATEGIES:
            assert main(["run", "--config", f"{name}.yaml", "--output", "out", "--name", name,
                         "--quiet", "true"]) == 0
        stdout, stderr = ddp.communicate(timeout=400)
    finally:
        os.chdir(cwd)
        if ddp.poll() is None:
            os.killpg(ddp.pid, signal.SIGKILL)
    assert ddp.returncode == 0, stderr[-3000:]
    return two, stdout + stderr, one


@pytest.fixture(scope="module")
def ddp_runs(runs) -> tuple[Path, str]:
    return runs[0], runs[1]


@pytest.fixture(scope="module")
def one_process_runs(runs) -> Path:
    return runs[2]


def results(root: Path, name: str) -> dict:
    return json.loads((root / "out" / name / "results.json").read_text())


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_two_processes_match_one(name, ddp_runs, one_process_runs):
    two, one = results(ddp_runs[0], name), results(one_process_runs, name)
    matrix = np.asarray(two["matrix"])
    assert two["complete"] and matrix.shape == (5, 5) and np.isfinite(matrix).all()
    gap = 100 * abs(two["summary"]["average_accuracy"] - one["summary"]["average_accuracy"])
    print(f"{name}: one process {100 * one['summary']['average_accuracy']:.1f}%, "
          f"two {100 * two['summary']['average_accuracy']:.1f}%")
    assert gap <= 3.0
    assert two["summary"]["train_samples"] == one["summary"]["train_samples"]  # both ranks'


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_both_ranks_hold_identical_state(name, ddp_runs):
    dumps = ddp_runs[0] / "dumps"
    rank0, rank1 = (torch.load(dumps / f"{name}.{r}.pt", weights_only=True) for r in (0, 1))
    leaves0, leaves1 = flat(rank0), flat(rank1)
    assert leaves0.keys() == leaves1.keys()
    for key in leaves0:
        assert torch.equal(leaves0[key], leaves1[key]), key
    if name == "ewc":  # one Fisher per task, not all zero
        assert len(rank0["strategy"]["importances"]) == 5
        assert all(any(f.abs().sum() > 0 for f in imp.values())
                   for imp in rank0["strategy"]["importances"])
    if name == "er":  # a full memory, both ranks' batches in it
        assert rank0["strategy"]["buffer"]["store"]["valid"].sum() == 100
    if name == "er_rows":  # rows, not inputs, and from every task
        store = rank0["strategy"]["buffer"]["store"]
        assert "x" not in store and store["valid"].sum() == 60
        assert set(store["task"][store["valid"]].tolist()) == set(range(5))


def test_files_and_lines_written_once(ddp_runs):
    root, output = ddp_runs
    assert sorted(p.name for p in (root / "out").iterdir()) == ["er", "er_rows", "er_stop",
                                                                 "ewc", "finetune", "nan"]
    assert sorted(p.name for p in (root / "dumps").iterdir()) == sorted(
        f"{n}.{r}.pt" for n in STRATEGIES for r in (0, 1))
    for name in STRATEGIES:
        run = root / "out" / name
        assert len(list(run.rglob("results.json"))) == 1
        rows = list(csv.DictReader((run / "logs" / "metrics.csv").open()))
        tasks = [r["task"] for r in rows if r["task"]]  # the rest: training curves
        assert tasks == ["0.0", "1.0", "2.0", "3.0", "4.0"], rows  # no rank's duplicates
        curve = [(r["step"], r["train/loss"], r["val/acc"]) for r in rows if not r["task"]]
        assert len(set(curve)) == len(curve) > 0  # logged by rank 0 only
        assert output.count(f"→ out/{name}\n") == 1
    for i in range(1, 6):  # each task once per run; the interrupted run's by two calls
        assert output.count(f"task {i}/5 [") == 5 + (i == 1), output


def test_a_nan_on_one_rank_stops_both(ddp_runs):
    root, output = ddp_runs
    assert "loss is nan at task 2" in output  # rank 1
    assert "loss is not finite on another rank at task 2" in output  # rank 0
    assert len(results(root, "nan")["matrix"]) == 1  # task 0 kept


def test_resume_under_ddp_gives_the_unbroken_matrix(ddp_runs):
    root = ddp_runs[0]
    assert results(root, "er_stop")["matrix"] == results(root, "er")["matrix"]


def flat(tree, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in nested dicts and lists, by path."""
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) \
        if isinstance(tree, (list, tuple)) else []
    return {k: v for key, sub in items for k, v in flat(sub, f"{prefix}/{key}").items()}


# -- the helpers, in two gloo processes, against one process on all the data -------------------

def helpers_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from continual import ContinualModule
    from continual.data.tensors import TensorData
    from continual.distributed import any_rank, gather_rows, mean_over_ranks, rank_share
    from continual.evaluation import evaluate
    from continual.strategies import ExperienceReplay
    from continual.strategies.importance import fisher_diagonal, output_norm_importance

    torch.set_num_threads(1)  # the parent's OpenMP pool does not survive a fork
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    data, net = shared_problem()
    part = rank_share(data)  # 18 and 19 samples: unequal shares, weighted
    fisher = mean_over_ranks(fisher_diagonal(net, part), len(part))
    mas = mean_over_ranks(output_norm_importance(net, part), len(part))
    module = ContinualModule(net)
    module.prepare_for(5, data.x, None)
    accuracy = evaluate(module, [data, TensorData(data.x[:3], data.y[:3])], batch_size=4)
    rows = gather_rows(torch.full((rank + 2, 2), float(rank)), torch.arange(rank + 2))
    replay = ExperienceReplay(buffer_size=8)
    batch = data.subset(torch.arange(6 * rank, 6 * rank + 6))  # a different batch per rank
    replay.remember(batch.x, batch.y, batch.t)
    drawn = replay.replay(6)
    torch.save({"fisher": fisher, "mas": mas, "accuracy": accuracy, "rows": rows,
                "buffer": replay.buffer.state_dict()["store"], "drawn": drawn,
                "stop": [any_rank(rank == 1), any_rank(False)]}, Path(out) / f"{rank}.pt")
    dist.destroy_process_group()


def shared_problem():
    from continual.data.tensors import TensorData
    from continual.nets import MLP

    generator = torch.Generator().manual_seed(0)
    data = TensorData(torch.randn(37, 6, generator=generator),
                      torch.randint(0, 5, (37,), generator=generator))
    torch.manual_seed(0)
    return data, MLP(in_features=6, hidden=[8], n_classes=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_helpers_match_the_full_data_computation(tmp_path):
    from continual import ContinualModule
    from continual.evaluation import evaluate
    from continual.strategies import ExperienceReplay
    from continual.strategies.importance import fisher_diagonal, output_norm_importance

    # Forked, not spawned: the children start at once instead of importing torch and Lightning.
    mp.start_processes(helpers_worker, args=(2, free_port(), str(tmp_path)), nprocs=2,
                       start_method="fork")
    ranks = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1)]
    data, net = shared_problem()
    full = {"fisher": fisher_diagonal(net, data), "mas": output_norm_importance(net, data)}
    module = ContinualModule(net)
    module.prepare_for(5, data.x, None)
    single = ExperienceReplay(buffer_size=8)
    single.remember(data.x[:12], data.y[:12], data.t[:12])  # both ranks' batches, rank order
    for got in ranks:
        for kind in ("fisher", "mas"):
            for n, value in full[kind].items():
                torch.testing.assert_close(got[kind][n], value, rtol=1e-5, atol=1e-7)
        assert got["accuracy"] == evaluate(module, [data, data.subset(torch.arange(3))])
        assert got["rows"][0].tolist() == [[0.0, 0.0]] * 2 + [[1.0, 1.0]] * 3
        assert got["rows"][1].tolist() == [0, 1, 0, 1, 2]
        for k, v in single.buffer.state_dict()["store"].items():
            assert torch.equal(got["buffer"][k], v), k
        assert got["stop"] == [True, False]
    for k in ("fisher", "mas"):  # bit-identical on both ranks
        assert all(torch.equal(ranks[0][k][n], ranks[1][k][n]) for n in ranks[0][k])
    # One draw of 6 items shared by the ranks, each training on its own half.
    drawn = [set(map(tuple, r["drawn"][0].tolist())) for r in ranks]
    assert len(drawn[0]) == len(drawn[1]) == 3 and not drawn[0] & drawn[1]


def test_strategies_that_spawn_per_fit_are_refused(tmp_path, capsys):
    code = main(["run", "--trainer.strategy", "ddp_spawn", *DDP[2:], "--output", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "starts new processes in every fit" in err and "allowed: ddp" in err
    assert not any(tmp_path.iterdir())  # refused before anything was written
