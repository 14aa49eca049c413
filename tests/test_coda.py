"""CODA-Prompt: the attention-weighted prompt against an explicit sum, earlier tasks'
components and the backbone unchanged by later training, and a bit-identical resume."""

from __future__ import annotations

import pytest
import torch
from lightning.fabric.utilities.seed import seed_everything
from tests_helpers import assert_resume_matches_whole

from continual import ConfigError, ContinualModule, run
from continual.data import split_classes
from continual.strategies import CodaPrompt
from continual.strategies.coda import CodaPool, coda_prompt, orthogonality
from continual.strategies.l2p import L2PPool
from continual.vit import PromptedViT, vit_backbone

pytest.importorskip("timm")
TINY = {"img_size": 8, "patch_size": 2, "in_chans": 1, "depth": 2, "num_heads": 2,
        "embed_dim": 32}
TRAINER = {"accelerator": "cpu", "max_epochs": 2}


def tiny_net(n_tasks: int = 5, seed: int = 0) -> PromptedViT:
    torch.manual_seed(seed)
    vit = vit_backbone("vit_tiny_patch16_224", pretrained=False, **TINY)
    return PromptedViT(CodaPool(32, n_tasks=n_tasks, per_task=3, length=2), 10, vit)


def test_prompt_is_the_explicit_attention_weighted_sum():
    g = torch.Generator().manual_seed(0)
    q, k, a = (torch.randn(n, 6, generator=g, dtype=torch.float64) for n in (4, 5, 5))
    comps = torch.randn(5, 3, 6, generator=g, dtype=torch.float64)
    out = coda_prompt(q, k, a, comps)
    for b in range(4):
        expected = torch.zeros(3, 6, dtype=torch.float64)
        for m in range(5):
            qa = q[b] * a[m]
            expected += float(qa @ k[m] / (qa.norm() * k[m].norm())) * comps[m]
        torch.testing.assert_close(out[b], expected)


def test_orthogonality_is_zero_for_orthonormal_rows_only():
    q = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))[0]
    assert float(orthogonality(q[:4])) < 1e-20
    x = torch.randn(3, 2, 4, dtype=torch.float64)
    flat = x.flatten(1)
    expected = sum((float(flat[i] @ flat[j]) - (i == j)) ** 2 for i in range(3) for j in range(3))
    assert float(orthogonality(x)) == pytest.approx(expected)


def test_earlier_components_and_the_backbone_never_change(digits_data):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=3, scenario="class")
    net = tiny_net(n_tasks=3)
    backbone = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    module = ContinualModule(net, CodaPrompt())
    snapshots = []

    def echo(line: str) -> None:
        if line.startswith("task "):
            snapshots.append({k: v.clone() for k, v in net.pool.state_dict().items()})

    run(stream, module, echo=echo, batch_size=32, trainer=TRAINER)
    final = net.pool.state_dict()
    for k, v in net.backbone.state_dict().items():
        assert torch.equal(v, backbone[k]), k
    for part in ("keys", "attention", "components"):
        assert torch.equal(final[f"{part}.0"], snapshots[1][f"{part}.0"])  # frozen after 0
        assert not torch.equal(final[f"{part}.2"], snapshots[1][f"{part}.2"])  # trained in 2
    assert int(net.pool.task) == 2


def test_resumed_run_matches_the_uninterrupted_one(digits_data, tmp_path):
    stream = split_classes(digits_data, n_tasks=3)
    kwargs = {"trainer": TRAINER, "batch_size": 32, "seed": 5}

    def fresh(seed):
        seed_everything(seed, verbose=False)
        return ContinualModule(tiny_net(3, seed=0), CodaPrompt())

    assert_resume_matches_whole(stream, fresh, tmp_path, **kwargs)


def test_too_few_tasks_and_a_wrong_pool_are_refused(digits_data):
    stream = split_classes(digits_data, n_tasks=5)
    with pytest.raises(ConfigError, match="n_tasks"):
        CodaPrompt().on_task_start(ContinualModule(tiny_net(n_tasks=2)), stream, 2)
    net = tiny_net()
    net.pool = L2PPool(32)
    with pytest.raises(ConfigError, match="CodaPool"):
        CodaPrompt().on_task_start(ContinualModule(net), stream, 0)
