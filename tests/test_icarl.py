"""iCaRL: nearest-mean-of-exemplars and its loss against explicit loops; NME on class-IL digits."""

from __future__ import annotations

import math

import torch
from lightning.fabric.utilities.seed import seed_everything

from continual import ContinualModule, run
from continual.data import split_classes
from continual.evaluation import evaluate
from continual.nets import MLP
from continual.strategies import ICaRL
from continual.strategies.base import Step
from continual.strategies.icarl import class_means, nearest_mean_scores


def unit(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(a * a for a in v))
    return [a / norm for a in v]


def test_nearest_mean_of_exemplars_equals_an_explicit_distance_loop():
    g = torch.Generator().manual_seed(0)
    exemplars, labels = torch.randn(30, 6, generator=g), torch.arange(30) % 4  # classes 0..3
    queries = torch.randn(9, 6, generator=g)
    means, known = class_means(exemplars, labels, n_classes=5)  # class 4: no exemplars
    predicted = nearest_mean_scores(queries, means, known).argmax(1).tolist()
    expected = []
    for q in queries.tolist():
        mus = []
        for c in range(4):
            members = [unit(e) for e, label in zip(exemplars.tolist(), labels.tolist())
                       if label == c]
            mus.append(unit([sum(col) / len(members) for col in zip(*members)]))
        distances = [math.dist(unit(q), mu) for mu in mus]
        expected.append(distances.index(min(distances)))
    assert predicted == expected
    assert not known[4]


def test_loss_is_bce_with_one_hot_new_and_the_old_nets_sigmoids_for_old_classes():
    torch.manual_seed(0)
    net = MLP(in_features=4, hidden=(8,), n_classes=6)
    module = ContinualModule(net, ICaRL())
    strategy = module.strategy
    strategy._old_classes, strategy._new_classes = [0, 1], [2, 3]
    old_net = MLP(in_features=4, hidden=(8,), n_classes=6)
    strategy._teacher.take(old_net)
    x, y = torch.randn(5, 4), torch.tensor([2, 3, 0, 2, 1])
    raw = net(x)
    step = Step(x, y, torch.zeros_like(y), raw, raw, 1)
    loss = strategy.loss(module, step, torch.tensor(0.0))
    q = torch.sigmoid(old_net(x)).tolist()
    total = 0.0
    for i in range(5):
        for c in range(4):  # the classes seen; 4 and 5 are not
            target = q[i][c] if c < 2 else float(y[i] == c)
            p = 1 / (1 + math.exp(-raw[i, c].item()))
            total -= target * math.log(p) + (1 - target) * math.log(1 - p)
    assert math.isclose(loss.item(), total / 5, rel_tol=1e-5)


def test_nearest_mean_beats_its_own_softmax_head_on_class_incremental_digits(digits_data):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=5, scenario="class")
    strategy = ICaRL(buffer_size=200)
    module = ContinualModule(MLP(), strategy)
    result = run(stream, module, echo=None, batch_size=32,
                 trainer={"accelerator": "cpu", "max_epochs": 10})
    tests = [task.test for task in stream]
    nme = evaluate(module, tests)
    assert list(result.matrix[-1]) == nme  # the run evaluates by nearest mean
    strategy._means = None  # the network's own head
    head = evaluate(module, tests)
    assert sum(nme) / 5 >= 0.85
    assert sum(nme) / 5 >= sum(head) / 5 + 0.08, (nme, head)
