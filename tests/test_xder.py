"""X-DER: the future-past logit update against an explicit loop, and on a class-IL run."""

from __future__ import annotations

import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything

from continual import ConfigError, ContinualModule, run
from continual.data import split_classes
from continual.nets import MLP
from continual.strategies import XDER
from continual.strategies.xder import future_past_logits


def explicit_update(stored, current, y, new, gamma):
    out = stored.clone()
    for i in range(len(stored)):
        top = max(current[i, c].item() for c in new)
        for c in new:
            value = current[i, c].item()
            out[i, c] = value * gamma * stored[i, y[i]].item() / top \
                if top > stored[i, y[i]].item() else value
    return out


@pytest.mark.parametrize("gamma", [0.85, 1.0])
def test_future_past_update_equals_an_explicit_loop(gamma):
    g = torch.Generator().manual_seed(0)
    stored, current = torch.randn(30, 6, generator=g), 2 * torch.randn(30, 6, generator=g)
    y, new = torch.randint(0, 3, (30,), generator=g), [3, 5]
    got = future_past_logits(stored, current, y, torch.tensor(new), gamma)
    torch.testing.assert_close(got, explicit_update(stored, current, y, new, gamma))
    rescaled = current[:, new].max(1).values > stored[torch.arange(30), y]
    assert 0 < rescaled.sum() < 30  # both branches are exercised


def test_memory_logits_of_earlier_classes_follow_the_model_at_the_task_end(digits_data):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=2, scenario="class")
    module = ContinualModule(MLP(), XDER(buffer_size=100))
    result = run(stream, module, echo=None, batch_size=32,
                 trainer={"accelerator": "cpu", "max_epochs": 2})
    x, y, _, logits = module.strategy.buffer.sample(100)
    new = torch.tensor(stream[1].classes)
    old = ~torch.isin(y, new)
    assert 0 < old.sum() < len(y)
    module.eval()
    with torch.no_grad():
        current = module.net(x[old])
    expected = explicit_update(logits[old], current, y[old], new.tolist(), 0.85)
    torch.testing.assert_close(logits[old], expected)
    assert result.summary["average_accuracy"] >= 0.6, result.matrix


def test_invalid_gamma_is_refused():
    with pytest.raises(ConfigError, match="gamma=0"):
        XDER(gamma=0)
