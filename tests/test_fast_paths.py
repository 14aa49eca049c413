"""The fast paths give what the slow ones give: importances by the layer hooks, the
single-group replay memory, the NaN guard checked one step late, the loss logged on demand."""

from __future__ import annotations

import math

import pytest
import torch
from lightning.pytorch import Callback
from torch import nn

from continual import ContinualModule, run
from continual.buffers import ReplayBuffer, Reservoir
from continual.data import TensorData, split_classes
from continual.errors import NonFiniteLossError
from continual.nets import MLP
from continual.strategies import FineTune, importance
from continual.strategies.importance import (
    fisher_diagonal,
    output_norm_importance,
    per_sample_sums,
)


def data(n=23, features=6, classes=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 2, (n,), generator=g)
    y = torch.randint(0, 2, (n,), generator=g) + 2 * t  # labels inside each sample's task
    return TensorData(torch.randn(n, features, generator=g), y, t)


def by_torch_func(monkeypatch, compute, *args, **kwargs):
    """The same importance through per-sample gradients (the shortcut switched off)."""
    with monkeypatch.context() as m:
        m.setattr(importance, "per_sample_sums", lambda *a, **k: None)
        return compute(*args, **kwargs)


MEASURES = {
    "true-fisher": lambda net, d, mask: fisher_diagonal(net, d, mask, "true", batch_size=8),
    "empirical-fisher": lambda net, d, mask: fisher_diagonal(net, d, mask, "empirical", 8),
    "sampled-fisher": lambda net, d, mask: fisher_diagonal(net, d, mask, "sampled", 8, seed=5),
    "mas": lambda net, d, mask: output_norm_importance(net, d, mask, batch_size=8),
}


@pytest.mark.parametrize("compute", MEASURES.values(), ids=MEASURES.keys())
@pytest.mark.parametrize("task_masked", [False, True])
def test_linear_shortcut_equals_per_sample_gradients(monkeypatch, compute, task_masked):
    torch.manual_seed(0)
    net = MLP(6, (7, 5), 4)
    net.layers[1].bias.requires_grad_(False)  # a frozen parameter is left out of both
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool) if task_masked else None
    fast = compute(net, data(), mask)
    slow = by_torch_func(monkeypatch, compute, net, data(), mask)
    assert fast.keys() == slow.keys() and "layers.1.bias" not in fast
    for name in fast:
        torch.testing.assert_close(fast[name], slow[name], rtol=1e-4, atol=1e-7, msg=name)


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 6), nn.Linear(6, 4)

    def forward(self, x):
        return self.b(torch.tanh(self.a(torch.tanh(self.a(x)))))  # one layer used twice


class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 5), nn.Linear(5, 4)

    def forward(self, x):
        return self.b(torch.relu_(self.a(x)))  # the linear output changed in place


class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 4)

    def forward(self, x):
        return self.a(x.view(-1, 2, 3)).sum(1)  # a linear layer over two tokens per sample


class Normed(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.norm, self.b = nn.Linear(6, 5), nn.LayerNorm(5), nn.Linear(5, 4)

    def forward(self, x):
        return self.b(self.norm(self.a(x)))  # a parameter in a norm layer


@pytest.mark.parametrize("make", [Twice, InPlace, Tokens, Normed])
def test_hooks_cover_reuse_in_place_outputs_tokens_and_norms(monkeypatch, make):
    torch.manual_seed(0)
    net, d = make().eval(), data()
    assert per_sample_sums(net, d.x, None, importance._output_norms, "abs") is not None
    for compute in MEASURES.values():
        fast = compute(net, d, None)
        slow = by_torch_func(monkeypatch, compute, net, d, None)
        for name in slow:
            torch.testing.assert_close(fast[name], slow[name], rtol=1e-4, atol=1e-7, msg=name)


class FreeParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.scale = nn.Linear(6, 4), nn.Parameter(torch.tensor(1.5))

    def forward(self, x):
        return self.a(x) * self.scale  # a parameter outside any layer with a rule


class BatchStatistics(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm, self.a = nn.BatchNorm1d(2, track_running_stats=False), nn.Linear(6, 4)

    def forward(self, x):
        return self.a(self.norm(x.view(-1, 2, 3)).flatten(1))  # statistics of the batch


class Merged(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 4)

    def forward(self, x):
        return self.a(x.reshape(-1, 3)).view(len(x), 2, 4).sum(1)  # tokens in the batch axis


class Subclassed(nn.Linear):
    def forward(self, x):
        return super().forward(x) ** 2  # a subclass computing something else


@pytest.mark.parametrize("make", [FreeParameter, BatchStatistics, Merged,
                                  lambda: Subclassed(6, 4)])
def test_nets_outside_the_hooks_fall_back_to_per_sample_gradients(make):
    torch.manual_seed(0)
    net, d = make().eval(), data()
    assert per_sample_sums(net, d.x, None, importance._output_norms, "abs") is None
    assert fisher_diagonal(net, d, batch_size=8).keys() == dict(net.named_parameters()).keys()


class GroupsOverridden(Reservoir):
    """A reservoir through the general, grouped bottom-k path."""

    def groups(self, y, t):
        return torch.zeros_like(y)


def test_reservoir_fast_path_keeps_what_the_grouped_path_keeps():
    fast, general = ReplayBuffer(50, Reservoir(), seed=3), ReplayBuffer(50, GroupsOverridden(), 3)
    g = torch.Generator().manual_seed(0)
    for step in range(40):
        x = torch.randn(16, 2, generator=g)
        y = torch.randint(0, 10, (16,), generator=g)
        t = torch.full((16,), step // 10)
        assert fast.add(x, y, t) == general.add(x, y, t)
        assert len(fast) == len(general) == min(50, 16 * (step + 1))
        for name in ("x", "y", "t", "key", "valid"):
            assert torch.equal(fast._store[name], general._store[name]), name
    state = fast.state_dict()
    restored = ReplayBuffer(50, seed=3)
    restored.load_state_dict(state)
    assert len(restored) == 50


class NaNAtStep(FineTune):
    def __init__(self, task: int, step: int):
        self.task, self.step = task, step

    def loss(self, module, step, loss):
        hit = step.task == self.task and module.task_step == self.step
        return loss * math.nan if hit else loss


@pytest.mark.parametrize("deferred", [False, True])
@pytest.mark.parametrize("where", ["first", "last"])  # step of the first epoch
def test_nan_guard_names_the_step_also_when_checked_a_step_late(digits_data, deferred, where):
    stream = split_classes(digits_data, n_tasks=2)
    step = 0 if where == "first" else math.ceil(len(stream[1].train) / 128) - 1
    module = ContinualModule(MLP(), NaNAtStep(task=1, step=step))
    module._defer_finite_check = deferred  # what accelerators do
    message = f"loss is nan at task 2, epoch 1, step {step + 1}$"  # counted from 1
    with pytest.raises(NonFiniteLossError, match=message):
        run(stream, module, trainer={"max_epochs": 2}, batch_size=128, echo=None)


class Monitor(Callback):
    monitor = "train/loss"

    def on_train_end(self, trainer, pl_module):
        self.seen = dict(trainer.callback_metrics)


class Quiet(Callback):
    def on_train_end(self, trainer, pl_module):
        self.seen = dict(trainer.callback_metrics)


@pytest.mark.parametrize("callback, logged", [(Monitor(), True), (Quiet(), False)])
def test_loss_is_logged_only_when_something_reads_it(digits_data, callback, logged):
    stream = split_classes(digits_data, n_tasks=2)
    run(stream, ContinualModule(MLP()), trainer={"max_epochs": 1, "callbacks": [callback]},
        echo=None)
    assert ("train/loss" in callback.seen) == logged


class SeesCallbacks(Callback):
    def __init__(self) -> None:
        self.seen: list[list[Callback]] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.seen.append(list(trainer.callbacks))


def test_the_runs_trainer_gets_a_callback_list_of_its_own(digits_data):
    sees = SeesCallbacks()
    callbacks = [sees]
    run(split_classes(digits_data, n_tasks=3), ContinualModule(MLP()), echo=None,
        trainer={"max_epochs": 1, "callbacks": callbacks}, progress=True)
    # Lightning appends its own callbacks to the list it is given: nothing added per fit.
    assert len(sees.seen) == 3 and len({len(seen) for seen in sees.seen}) == 1
    bars = [cb for seen in sees.seen for cb in seen if type(cb).__name__ == "TaskProgressBar"]
    assert len(bars) == 3 and len({id(bar) for bar in bars}) == 1  # the run's one Trainer
    assert callbacks == [sees]  # the caller's list is left as it was


def test_batches_already_on_the_device_are_handed_on_and_others_moved():
    module = ContinualModule(MLP(4, (3,), 2))
    batch = (torch.randn(5, 4), torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=torch.long))
    same = module.transfer_batch_to_device(batch, torch.device("cpu"), 0)
    assert same is batch
    moved = module.transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert all(v.device.type == "meta" for v in moved)
    as_list = module.transfer_batch_to_device(list(batch), torch.device("meta"), 0)
    assert isinstance(as_list, list) and all(v.device.type == "meta" for v in as_list)


@pytest.mark.parametrize(("given", "expected"), [
    ({}, "NullProfiler"), ({"profiler": "simple"}, "SimpleProfiler"),
    ({"barebones": True}, None),
], ids=["default", "configured", "barebones"])
def test_the_null_profiler_stands_in_only_where_none_is_configured(given, expected):
    from lightning.pytorch import Trainer

    from continual.fitting import trainer_arguments

    fit = Trainer(**trainer_arguments({"accelerator": "cpu", **given}))
    if expected is None:  # barebones: Lightning's own pass-through, no profiler argument
        assert type(fit.profiler).__name__ == "PassThroughProfiler"
        return
    assert type(fit.profiler).__name__ == expected
    with fit.profiler.profile("outer"), fit.profiler.profile("inner"):  # nests, re-enters
        pass
