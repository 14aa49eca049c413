"""LUCIR: the cosine classifier and the margin ranking loss against explicit loops; digits."""

from __future__ import annotations

import math

import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything

from continual import ConfigError, ContinualModule, run
from continual.data import split_classes
from continual.nets import MLP
from continual.strategies import LUCIR, FineTune
from continual.strategies.lucir import cosine_logits, features_and_logits, margin_ranking


def cos(a: list[float], b: list[float]) -> float:
    dot = sum(u * v for u, v in zip(a, b))
    return dot / math.sqrt(sum(u * u for u in a) * sum(v * v for v in b))


def test_cosine_classifier_equals_an_explicit_loop_and_ignores_the_norms():
    g = torch.Generator().manual_seed(0)
    f, w = torch.randn(5, 7, generator=g), torch.randn(4, 7, generator=g)
    got = cosine_logits(f, w, scale=16.0)
    for i in range(5):
        for c in range(4):
            assert math.isclose(got[i, c].item(), 16 * cos(f[i].tolist(), w[c].tolist()),
                                rel_tol=1e-5)
    torch.testing.assert_close(cosine_logits(3 * f, w * torch.rand(4, 1) + 0, 16.0), got)


@pytest.mark.parametrize("seed", range(3))
def test_margin_ranking_equals_an_explicit_loop_over_old_samples_and_hard_new_classes(seed):
    g = torch.Generator().manual_seed(seed)
    cosines = torch.rand(8, 6, generator=g) * 2 - 1
    y = torch.randint(0, 6, (8,), generator=g)
    old_classes, new = [0, 1, 2], [3, 4, 5]
    old = torch.tensor([c in old_classes for c in y.tolist()])
    got = margin_ranking(cosines, y, old, torch.tensor(new), margin=0.5, k=2)
    terms = []
    for i in range(8):
        if y[i].item() not in old_classes:
            continue
        hardest = sorted((cosines[i, j].item() for j in new), reverse=True)[:2]
        terms += [max(0.0, 0.5 - cosines[i, y[i]].item() + h) for h in hardest]
    expected = sum(terms) / len(terms) if terms else 0.0
    assert math.isclose(got.item(), expected, rel_tol=1e-5, abs_tol=1e-7)


def test_features_come_with_the_logits_and_carry_gradients():
    torch.manual_seed(0)
    net = MLP(in_features=4, hidden=(6,), n_classes=3)
    x = torch.randn(2, 4)
    feats, logits = features_and_logits(net, x)
    torch.testing.assert_close(logits, net(x))
    head = net.layers[-1]
    torch.testing.assert_close(logits, feats @ head.weight.T + head.bias)
    assert feats.requires_grad


def test_a_non_positive_scale_is_refused():
    with pytest.raises(ConfigError, match="scale=0"):
        LUCIR(scale=0)


def test_lucir_remembers_where_finetune_forgets_class_incremental(digits_data):
    accuracy = {}
    for name, make in [("lucir", LUCIR), ("finetune", FineTune)]:
        seed_everything(0, verbose=False)
        stream = split_classes(digits_data, n_tasks=5, scenario="class")
        result = run(stream, ContinualModule(MLP(), make()), echo=None, batch_size=32,
                     trainer={"accelerator": "cpu", "max_epochs": 10})
        accuracy[name] = result.summary["average_accuracy"]
    assert accuracy["lucir"] >= 0.8 and accuracy["lucir"] >= accuracy["finetune"] + 0.3, accuracy
