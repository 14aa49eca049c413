"""FeCAM: the Mahalanobis scores against an explicit per-class loop; a frozen backbone forgets
nothing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.seed import seed_everything
from torch import Tensor, nn

from continual import ConfigError, ContinualModule, run
from continual.data import split_classes
from continual.data.stream import Stream, Task
from continual.data.tensors import TensorData
from continual.nets import MLP
from continual.strategies import FeCAM

TRAINER = {"accelerator": "cpu", "max_epochs": 2}


def explicit_distances(z: Tensor, feats: Tensor, y: Tensor, n_classes: int, beta: float,
                       g1: float, g2: float) -> Tensor:
    out = torch.empty(len(z), n_classes, dtype=torch.float64)
    for c in range(n_classes):
        zc = feats[y == c].pow(beta)
        mean, cov = zc.mean(0), torch.cov(zc.T)
        d = len(mean)
        v1 = sum(cov[i, i] for i in range(d)) / d
        v2 = sum(cov[i, j] for i in range(d) for j in range(d) if i != j) / (d * d - d)
        shrunk = torch.empty_like(cov)
        for i in range(d):
            for j in range(d):
                shrunk[i, j] = (cov[i, j] + (g1 * v1 if i == j else g2 * v2)) / (
                    (cov[i, i] + g1 * v1) * (cov[j, j] + g1 * v1)).sqrt()
        inv = torch.linalg.inv(shrunk)
        for b in range(len(z)):
            diff = F.normalize(z[b].pow(beta), dim=0) - F.normalize(mean, dim=0)
            out[b, c] = diff @ inv @ diff
    return out


@pytest.mark.parametrize(("beta", "g1", "g2"), [(0.5, 1.0, 1.0), (1.0, 0.3, 0.0)])
def test_scores_are_minus_the_mahalanobis_distance_of_an_explicit_loop(beta, g1, g2):
    g = torch.Generator().manual_seed(0)
    d, n_classes = 5, 3
    feats = torch.rand(60, d, generator=g, dtype=torch.float64) * torch.arange(1, d + 1)
    y = torch.arange(60) % n_classes
    queries = torch.rand(7, d, generator=g, dtype=torch.float64)
    # a head over the features as they come: the penultimate features are the inputs
    module = ContinualModule(nn.Sequential(nn.Identity(), nn.Linear(d, 4)).double())
    data = TensorData(feats, y)
    stream = Stream([Task(0, "all", data, data, data, [0, 1, 2])], "class", 4, (d,))
    strategy = FeCAM(beta=beta, diag_shrink=g1, off_shrink=g2)
    strategy.on_task_end(module, stream, 0)
    scores = strategy.predict(module, queries, None, torch.zeros(7, 4, dtype=torch.float64))
    expected = explicit_distances(queries, feats, y, n_classes, beta, g1, g2)
    torch.testing.assert_close(-scores[:, :3].double(), expected, rtol=1e-4, atol=1e-4)
    assert (scores[:, 3] < scores[:, :3].min()).all()  # class 3 never seen: never picked


def test_task_incremental_accuracy_never_changes_after_a_task(digits_data):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=5, scenario="task")
    result = run(stream, ContinualModule(MLP(), FeCAM()), echo=None, batch_size=32,
                 trainer=TRAINER)
    for j in range(5):
        assert (result.matrix[j:, j] == result.matrix[j, j]).all(), result.matrix
    assert result.summary["average_accuracy"] >= 0.9, result.matrix


def test_class_incremental_old_classes_scores_never_change(digits_data):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=5, scenario="class")
    module = ContinualModule(MLP(), FeCAM())
    result = run(stream, module, echo=None, batch_size=32, trainer=TRAINER)
    assert [c.train_samples for c in result.cost][1:] == [0] * 4  # frozen after task 0
    x = stream[0].test.x
    logits = module.net(x)
    module.eval()
    final = module.strategy.predict(module, x, None, logits)
    early = FeCAM()  # the same frozen backbone, statistics of the first two tasks only
    for i in range(2):
        early.on_task_end(module, stream, i)
    assert torch.equal(early.predict(module, x, None, logits)[:, :4], final[:, :4])
    assert result.summary["average_accuracy"] >= 0.7, result.matrix


def test_invalid_settings_name_the_field():
    with pytest.raises(ConfigError, match="beta=-1"):
        FeCAM(beta=-1)
    with pytest.raises(ConfigError, match="off_shrink=2.0"):
        FeCAM(off_shrink=2.0)
