"""MIR: the retrieved items against an explicit virtual-step loop; replay on class-IL digits."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.seed import seed_everything

from continual import ConfigError, ContinualModule, run
from continual.data import split_classes
from continual.nets import MLP
from continual.strategies import MIR, FineTune
from continual.strategies.base import Step


@pytest.mark.parametrize("seed", range(3))
def test_replay_term_is_on_the_candidates_whose_loss_a_real_sgd_step_raises_most(seed):
    torch.manual_seed(seed)
    net = MLP(in_features=5, hidden=(7,), n_classes=4)
    strategy = MIR(buffer_size=40, subsample=12, replay_batch_size=4, lr=0.5, seed=seed)
    module = ContinualModule(net, strategy)
    strategy.buffer.add(torch.randn(40, 5), torch.randint(0, 4, (40,)), torch.zeros(40).long())
    x, y = torch.randn(6, 5), torch.randint(0, 4, (6,))
    raw = net(x)
    loss = F.cross_entropy(raw, y)
    twin = MIR(buffer_size=40, subsample=12, replay_batch_size=4, seed=seed)
    twin.load_state_dict(copy.deepcopy(strategy.state_dict()))  # the same candidates next
    got = strategy.loss(module, Step(x, y, torch.zeros_like(y), raw, raw, 0), loss)

    cx, cy = twin.replay(12)[:2]
    stepped = copy.deepcopy(net)  # the real SGD step the virtual one mirrors
    sgd = torch.optim.SGD(stepped.parameters(), lr=0.5)
    F.cross_entropy(stepped(x), y).backward()
    sgd.step()
    rise = []
    with torch.no_grad():
        for i in range(12):  # one candidate at a time
            before = F.cross_entropy(net(cx[i:i + 1]), cy[i:i + 1]).item()
            after = F.cross_entropy(stepped(cx[i:i + 1]), cy[i:i + 1]).item()
            rise.append(after - before)
    top = sorted(range(12), key=lambda i: -rise[i])[:4]
    assert min(rise[i] for i in top) > max(rise[i] for i in range(12) if i not in top) - 1e-6
    expected = loss + F.cross_entropy(net(cx[top]), cy[top])
    assert math.isclose(got.item(), expected.item(), rel_tol=1e-5)


def test_more_retrieved_than_candidates_is_refused():
    with pytest.raises(ConfigError, match="replay_batch_size=60"):
        MIR(subsample=50, replay_batch_size=60)


def test_mir_remembers_where_finetune_forgets_class_incremental(digits_data):
    accuracy = {}
    for name, make in [("mir", MIR), ("finetune", FineTune)]:
        seed_everything(0, verbose=False)
        stream = split_classes(digits_data, n_tasks=5, scenario="class")
        result = run(stream, ContinualModule(MLP(), make()), echo=None,
                     batch_size=32, trainer={"accelerator": "cpu", "max_epochs": 10})
        accuracy[name] = result.summary["average_accuracy"]
    assert accuracy["mir"] >= accuracy["finetune"] + 0.3, accuracy
