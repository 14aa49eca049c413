"""SimpleCIL and RanPAC: prototypes and the ridge classifier against explicit solves; a frozen
backbone forgets nothing."""

from __future__ import annotations

import torch
from lightning.fabric.utilities.seed import seed_everything

from continual import ContinualModule, run
from continual.data import split_classes
from continual.data.stream import Stream, Task
from continual.data.tensors import TensorData
from continual.nets import MLP
from continual.strategies import RanPAC, SimpleCIL
from continual.strategies.ranpac import ridge_classifier
from continual.strategies.simplecil import cosine_scores

TRAINER = {"accelerator": "cpu", "max_epochs": 1}


def test_ridge_classifier_equals_a_least_squares_solve():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(50, 8, generator=g, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.arange(50) % 3, 3).double()
    ridge = 0.7
    stacked = torch.cat([h, ridge ** 0.5 * torch.eye(8, dtype=torch.float64)])
    lstsq = torch.linalg.lstsq(stacked, torch.cat([y, torch.zeros(8, 3, dtype=torch.float64)]))
    torch.testing.assert_close(ridge_classifier(h.T @ h, h.T @ y, ridge), lstsq.solution)


def test_prototypes_are_the_class_means_of_the_features():
    g = torch.Generator().manual_seed(1)
    feats, y = torch.randn(20, 4, generator=g), torch.arange(20) % 3
    sums = torch.zeros(4, 4).index_add_(0, y, feats)
    counts = torch.bincount(y, minlength=4)
    scores = cosine_scores(feats, sums, counts)
    for c in range(3):
        mean = feats[y == c].mean(0)
        expected = torch.nn.functional.cosine_similarity(feats, mean[None], dim=1)
        torch.testing.assert_close(scores[:, c], expected)
    assert (scores[:, 3] == torch.finfo(scores.dtype).min).all()  # no samples of class 3


def test_simplecil_never_trains_and_forgets_nothing(digits_data):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=5, scenario="task")
    module = ContinualModule(MLP(), SimpleCIL())
    result = run(stream, module, echo=None, batch_size=32, trainer=TRAINER)
    for k, v in module.net.state_dict().items():
        assert torch.equal(v, module.initial_state[k])
    for j in range(5):  # each task's accuracy is the same in every later row
        assert (result.matrix[j:, j] == result.matrix[j, j]).all()
    assert result.summary["average_accuracy"] >= 0.9


def test_ranpac_after_every_task_equals_the_ridge_fit_on_all_data_seen(digits_data):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=5, scenario="class")
    module = ContinualModule(MLP(), RanPAC(projection_dim=300))
    result = run(stream, module, echo=None, batch_size=32, trainer=TRAINER)
    assert result.summary["average_accuracy"] >= 0.9
    train = TensorData.concat([t.train for t in stream])
    joint = Stream([Task(0, "all", train, stream[0].val, stream[0].test, list(range(10)))],
                   "class", 10, stream.input_shape)
    once = RanPAC(projection_dim=300)
    once.on_task_end(module, joint, 0)
    torch.testing.assert_close(module.strategy._weights, once._weights, rtol=1e-4, atol=1e-4)
    for k, v in module.net.state_dict().items():
        assert torch.equal(v, module.initial_state[k])
