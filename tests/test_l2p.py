"""L2P on a tiny random timm ViT: key selection and the prompted forward against explicit
versions, a backbone that never changes, and prompts that help a backbone pretrained here."""

from __future__ import annotations

import sys
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.seed import seed_everything
from tests_helpers import assert_resume_matches_whole

from continual import ConfigError, ContinualModule, run
from continual.data import split_classes
from continual.data.stream import Stream, Task
from continual.data.tensors import TensorData
from continual.strategies import L2P
from continual.strategies.l2p import L2PPool, top_n_keys
from continual.vit import PromptedViT, prompted_tokens, vit_backbone

timm = pytest.importorskip("timm")
TINY = {"img_size": 8, "patch_size": 2, "in_chans": 1, "depth": 2, "num_heads": 2,
        "embed_dim": 32}
TRAINER = {"accelerator": "cpu", "max_epochs": 2}


def tiny_vit(seed: int = 0):
    torch.manual_seed(seed)
    return vit_backbone("vit_tiny_patch16_224", pretrained=False, **TINY)


def test_top_n_equals_an_explicit_loop_over_keys():
    g = torch.Generator().manual_seed(0)
    query, keys = torch.randn(6, 5, generator=g), torch.randn(9, 5, generator=g)
    idx, sims = top_n_keys(query, keys, 3)
    for b in range(6):
        cos = [float(query[b] @ keys[m] / (query[b].norm() * keys[m].norm())) for m in range(9)]
        order = sorted(range(9), key=lambda m: -cos[m])[:3]
        assert idx[b].tolist() == order
        np.testing.assert_allclose(sims[b].numpy(), [cos[m] for m in order], rtol=1e-5)


def test_prompted_forward_equals_prepending_tokens_by_hand():
    vit, x = tiny_vit(), torch.randn(3, 1, 8, 8)
    prompts = torch.randn(3, 4, 32)
    cls = vit.cls_token.expand(3, -1, -1)
    tokens = torch.cat([cls, vit.patch_embed(x)], 1) + vit.pos_embed
    tokens = torch.cat([tokens[:, :1], prompts, tokens[:, 1:]], 1)
    for block in vit.blocks:
        tokens = block(tokens)
    torch.testing.assert_close(prompted_tokens(vit, x, prompts), vit.norm(tokens))
    torch.testing.assert_close(prompted_tokens(vit, x), vit.forward_features(x))


def test_pool_prompt_is_the_concatenation_of_the_selected_prompts():
    pool, query = L2PPool(32, size=7, length=2, top_n=3), torch.randn(4, 32)
    prompts, aux = pool(query)
    idx, sims = top_n_keys(query, pool.keys, 3)
    for b in range(4):
        expected = torch.cat([pool.prompts[int(m)] for m in idx[b]])
        torch.testing.assert_close(prompts[b], expected)
    torch.testing.assert_close(aux, (1 - sims).sum(1).mean())


def test_backbone_is_bit_identical_and_unseen_classes_never_predicted(digits_data):
    seed_everything(0, verbose=False)
    stream = split_classes(digits_data, n_tasks=5, scenario="class")
    net = PromptedViT(L2PPool(32), 10, tiny_vit())
    frozen = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    pool_before = net.pool.keys.detach().clone()
    module = ContinualModule(net, L2P())
    result = run(stream, module, echo=None, batch_size=32, trainer=TRAINER)
    for k, v in net.backbone.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    assert not torch.equal(net.pool.keys, pool_before)  # keys do train
    assert result.matrix.shape == (5, 5)
    # after task 0 only its classes exist for the prediction rule
    module.strategy._seen = torch.zeros(10, dtype=torch.bool)
    module.strategy._seen[stream[0].classes] = True
    module.eval()
    pred = module(stream[4].test.x).argmax(1)
    assert set(pred.tolist()) <= set(stream[0].classes)


def test_l2p_on_a_backbone_pretrained_on_other_classes_beats_untrained_prompts(digits_data):
    stream = split_classes(digits_data, n_tasks=5, scenario="class")
    seed_everything(0, verbose=False)
    vit, head = tiny_vit(), torch.nn.Linear(32, 10)
    vit.requires_grad_(True).train()
    opt = torch.optim.Adam([*vit.parameters(), *head.parameters()], lr=3e-3)
    old = [stream[i].train for i in range(3)]  # classes 0-5
    x, y = torch.cat([d.x for d in old]), torch.cat([d.y for d in old])
    for _ in range(15):
        for b in torch.randperm(len(x)).split(32):
            opt.zero_grad()
            F.cross_entropy(head(vit.forward_features(x[b])[:, 0]), y[b]).backward()
            opt.step()
    parts = [TensorData(d.x, d.y, torch.zeros_like(d.y)) for d in (
        TensorData.concat([getattr(stream[i], s) for i in (3, 4)]) for s in ("train", "val",
                                                                             "test"))]
    new = Stream([Task(0, "6-9", *parts, [6, 7, 8, 9])], "class", 10, stream.input_shape)
    accuracy = {}
    for train_prompts in (True, False):
        seed_everything(1, verbose=False)
        net = PromptedViT(L2PPool(32, size=10, length=2, top_n=2), 10, vit)
        net.pool.requires_grad_(train_prompts)
        adam = partial(torch.optim.Adam, lr=1e-2)
        result = run(new, ContinualModule(net, L2P(), adam), echo=None, batch_size=32,
                     trainer={"accelerator": "cpu", "max_epochs": 6})
        accuracy[train_prompts] = result.summary["average_accuracy"]
    assert accuracy[True] > accuracy[False] + 0.02, accuracy


def test_resumed_run_matches_the_uninterrupted_one(digits_data, tmp_path):
    stream = split_classes(digits_data, n_tasks=3)
    kwargs = {"trainer": TRAINER, "batch_size": 32, "seed": 5}

    def fresh(seed):
        seed_everything(seed, verbose=False)
        return ContinualModule(PromptedViT(L2PPool(32, size=6, length=2, top_n=2), 10,
                                           tiny_vit(0)), L2P())

    assert_resume_matches_whole(stream, fresh, tmp_path, **kwargs)


def test_weights_come_from_the_users_file_and_nothing_is_downloaded(tmp_path):
    source = tiny_vit(3)
    path = tmp_path / "vit.pth"
    torch.save(source.state_dict(), path)
    loaded = vit_backbone("vit_tiny_patch16_224", checkpoint_path=str(path), **TINY)
    for k, v in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert not any(p.requires_grad for p in loaded.parameters())
    with pytest.raises(ConfigError, match="checkpoint_path"):
        vit_backbone("vit_tiny_patch16_224", **TINY)  # not cached, not downloaded
    with pytest.raises(ConfigError, match="not a file"):
        vit_backbone("vit_tiny_patch16_224", checkpoint_path=str(tmp_path / "no.pth"), **TINY)


def test_missing_timm_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(ConfigError, match=r'timm, which is not installed.*continual\[prompt\]'):
        vit_backbone("vit_tiny_patch16_224", pretrained=False)


def test_a_net_that_is_not_a_prompted_vit_is_refused(digits_data):
    stream = split_classes(digits_data, n_tasks=5)
    with pytest.raises(ConfigError, match="PromptedViT"):
        L2P().on_task_start(ContinualModule(torch.nn.Linear(64, 10)), stream, 0)
