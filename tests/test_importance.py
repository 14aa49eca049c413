"""Fisher, MAS importance, the quadratic penalty and A-GEM's projection against brute force."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from continual import ContinualModule
from continual.data import TensorData
from continual.errors import ConfigError
from continual.nets import ConvNet, ResNet18
from continual.strategies import EWC, OnlineEWC, importance
from continual.strategies.agem import agem_project
from continual.strategies.importance import (
    fisher_diagonal,
    output_norm_importance,
    quadratic_penalty,
    sample_labels,
    trainable,
)


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4))


def tiny_data(n=13, seed=1):
    g = torch.Generator().manual_seed(seed)
    return TensorData(torch.randn(n, 6, generator=g), torch.randint(0, 4, (n,), generator=g),
                      torch.randint(0, 2, (n,), generator=g))


def masked(logits, mask_row):
    return logits if mask_row is None else logits.masked_fill(~mask_row, float("-inf"))


def loop_importance(net, data, mode, class_mask=None, seed=0):
    """Brute force: one backward pass per sample (and per class for the true Fisher); the
    sampled Fisher draws each sample's label from the same uniform as fisher_diagonal."""
    params = [p for p in net.parameters() if p.requires_grad]
    total = [torch.zeros_like(p) for p in params]
    uniforms = torch.rand(len(data), generator=torch.Generator().manual_seed(seed))
    net.eval()
    for i in range(len(data)):
        row = None if class_mask is None else class_mask[data.t[i]]
        logits = masked(net(data.x[i : i + 1])[0], row)
        if mode == "mas":
            out = torch.where(torch.isfinite(logits), logits, 0.0)
            for acc, g in zip(total, torch.autograd.grad((out**2).sum(), params)):
                acc += g.abs()
            continue
        logp = F.log_softmax(logits, -1)
        if mode == "empirical":
            weighted = [(1.0, data.y[i])]
        elif mode == "sampled":
            weighted = [(1.0, sample_labels(logp.exp()[None].detach(), uniforms[i : i + 1])[0])]
        else:
            weighted = [(p.item(), c) for c, p in enumerate(logp.exp().detach()) if p > 0]
        for w, c in weighted:
            grads = torch.autograd.grad(logp[c], params, retain_graph=True)
            for acc, g in zip(total, grads):
                acc += w * g**2
    return [acc / len(data) for acc in total]


def fast_importance(net, data, mode, class_mask=None, batch_size=4):
    if mode == "mas":
        return output_norm_importance(net, data, class_mask, batch_size=batch_size)
    return fisher_diagonal(net, data, class_mask, mode=mode, batch_size=batch_size, seed=0)


def assert_equal_to_the_loop(net, data, mode, class_mask=None, batch_size=4):
    fast = fast_importance(net, data, mode, class_mask, batch_size)
    slow = loop_importance(net, data, mode, class_mask)
    assert len(fast) == len(slow)
    for (name, f), s in zip(fast.items(), slow):
        scale = s.abs().max().clamp_min(1e-12)  # float32 sums of products of many terms
        torch.testing.assert_close(f / scale, s / scale, rtol=1e-4, atol=2e-6, msg=name)


MODES = ["true", "empirical", "sampled", "mas"]


def task_split(data, n_classes):
    """A two-task mask over ``n_classes`` and labels inside each sample's task."""
    half = n_classes // 2
    mask = torch.zeros(2, n_classes, dtype=torch.bool)
    mask[0, :half], mask[1, half:] = True, True
    return mask, TensorData(data.x, data.y % half + half * data.t, data.t)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("task_masked", [False, True])
def test_importance_of_a_linear_net_equals_a_per_sample_loop(mode, task_masked):
    net, data = tiny_net(), tiny_data()
    mask, data = task_split(data, 4) if task_masked else (None, data)
    assert_equal_to_the_loop(net, data, mode, mask, batch_size=5)


def image_data(n=6, channels=3, side=8, classes=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return TensorData(torch.randn(n, channels, side, side, generator=g),
                      torch.randint(0, classes, (n,), generator=g),
                      torch.randint(0, 2, (n,), generator=g))


def with_running_statistics(net, seed=0):
    """Batch norms with statistics and affine parameters away from their initial values."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.rand(c, generator=g) - 0.5)
    return net.eval()


class Sequence(nn.Module):
    """Embedding, Conv1d (reflect 'same' padding, dilation, groups, a stride), GroupNorm,
    LayerNorm over tokens and a linear layer run twice, an in-place ReLU."""

    def __init__(self, classes=4):
        super().__init__()
        self.embed = nn.Embedding(7, 8, padding_idx=0)
        self.conv = nn.Conv1d(8, 16, 3, padding="same", padding_mode="reflect", dilation=2)
        self.group = nn.GroupNorm(4, 16)
        self.grouped = nn.Conv1d(16, 16, 3, padding=1, groups=2)
        self.strided = nn.Conv1d(16, 6, 2, stride=2)
        self.norm, self.mix, self.head = nn.LayerNorm(6), nn.Linear(6, 6), nn.Linear(6, classes)

    def forward(self, x):
        h = self.embed(x.long()).transpose(1, 2)  # [B, 8, T]
        h = torch.relu_(self.group(self.conv(h)))
        h = self.strided(self.grouped(h)).transpose(1, 2)  # [B, T/2, 6]
        h = self.mix(torch.tanh(self.mix(self.norm(h))))
        return self.head(h.mean(1))


def sequence_data(n=6, length=8, classes=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return TensorData(torch.randint(0, 7, (n, length), generator=g),
                      torch.randint(0, classes, (n,), generator=g),
                      torch.randint(0, 2, (n,), generator=g))


NETS = {  # BN-free, batch-normed (eval mode), and normed by group and layer norms
    "convnet": (lambda: ConvNet(1, 4, input_size=12, width=8, hidden=8),
                lambda: image_data(channels=1, side=12)),
    "resnet18": (lambda: with_running_statistics(ResNet18(3, 4, nf=4)), partial(image_data, 4)),
    "sequence": (Sequence, sequence_data),
}


@pytest.mark.parametrize("net_name", NETS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("task_masked", [False, True])
def test_importance_of_conv_and_normed_nets_equals_a_per_sample_loop(net_name, mode,
                                                                      task_masked):
    torch.manual_seed(0)
    make_net, make_data = NETS[net_name]
    net, data = make_net(), make_data()
    mask, data = task_split(data, 4) if task_masked else (None, data)
    assert importance.per_sample_sums(net, data.x, None, importance._output_norms,
                                      "abs") is not None  # the hooks, no fallback
    assert_equal_to_the_loop(net, data, mode, mask)


@pytest.mark.parametrize("shifted_from", [0, 10**6], ids=["shifted", "unfolded"])
@pytest.mark.parametrize("block", [1, 10**9], ids=["sample-by-sample", "whole-batch"])
def test_both_conv_rules_and_any_cache_block_give_the_loop(monkeypatch, shifted_from, block):
    monkeypatch.setattr(importance, "SHIFTED_MIN_CHANNELS", shifted_from)
    monkeypatch.setattr(importance, "CACHE_BLOCK", block)
    torch.manual_seed(0)
    for make_net, make_data in NETS.values():
        assert_equal_to_the_loop(make_net(), make_data(), "empirical")


class ScaledConv(nn.Module):
    """A conv net with a parameter outside any layer the hooks know: the torch.func path."""

    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 4, 3), nn.Linear(4 * 36, 4)
        self.scale = nn.Parameter(torch.tensor(0.7))

    def forward(self, x):
        return self.head(torch.tanh(self.conv(x) * self.scale).flatten(1))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("task_masked", [False, True])
def test_the_torch_func_fallback_equals_a_per_sample_loop(mode, task_masked):
    torch.manual_seed(0)
    net, data = ScaledConv(), image_data()
    mask, data = task_split(data, 4) if task_masked else (None, data)
    assert importance.per_sample_sums(net, data.x, None, importance._output_norms,
                                      "abs") is None
    assert_equal_to_the_loop(net, data, mode, mask)


def test_sampled_labels_are_drawn_by_each_samples_own_uniform_never_from_masked_classes():
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.5], [0.2, 0.0, 0.8, 0.0], [0.0, 0.0, 0.0, 1.0]])
    edges = torch.tensor([0.0, 0.5 - 1e-7, 0.5, 1 - 1e-7])
    for u in edges:
        labels = sample_labels(probs, u.expand(3))
        assert (probs.gather(1, labels[:, None]) > 0).all()
    assert sample_labels(probs, torch.tensor([0.4, 0.1, 0.9])).tolist() == [1, 0, 3]
    net, data = tiny_net(), tiny_data(n=40)
    by_4, by_64 = (fisher_diagonal(net, data, mode="sampled", batch_size=b, seed=2)
                   for b in (4, 64))
    for name in by_4:  # the draws do not depend on how the samples are batched
        torch.testing.assert_close(by_4[name], by_64[name])


def test_the_sampled_fisher_is_an_unbiased_estimate_of_the_true_fisher():
    net, data = tiny_net(), tiny_data(n=8)
    true = fisher_diagonal(net, data, mode="true")
    many = TensorData(data.x.repeat(500, 1), data.y.repeat(500), data.t.repeat(500))
    sampled = fisher_diagonal(net, many, mode="sampled", batch_size=1000, seed=3)
    one_draw = fisher_diagonal(net, data, mode="sampled", seed=3)
    for name in true:  # 500 draws per sample: a few per cent; one draw: far off
        error = (sampled[name] - true[name]).abs().sum() / true[name].abs().sum()
        assert error < 0.08, name
    assert any((one_draw[n] - true[n]).abs().sum() > 0.1 * true[n].abs().sum() for n in true)


def test_true_and_empirical_fisher_differ():
    net, data = tiny_net(), tiny_data()
    true, emp = fisher_diagonal(net, data, mode="true"), fisher_diagonal(net, data,
                                                                        mode="empirical")
    assert not torch.allclose(true["3.weight"], emp["3.weight"])


def injected_gradient(module) -> list[torch.Tensor]:
    """The gradient EWC adds before the optimizer step, starting from zero gradients."""
    for p in module.net.parameters():
        p.grad = torch.zeros_like(p)
    module.strategy.on_before_optimizer_step(module)
    return [p.grad.clone() for p in module.net.parameters()]


def test_ewc_penalty_is_zero_at_the_anchor_and_its_gradient_is_2_lambda_F_delta():
    net, data = tiny_net(), tiny_data()
    module = ContinualModule(net, EWC(lam=7.0))
    importance = fisher_diagonal(net, data)
    anchor = trainable(net)
    module.strategy.consolidate(anchor, importance)
    assert module.strategy.penalty(module).item() == 0.0
    assert all((g == 0).all() for g in injected_gradient(module))

    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    value = module.strategy.penalty(module)
    by_hand = sum((importance[n] * (p - anchor[n]) ** 2).sum() for n, p in net.named_parameters())
    torch.testing.assert_close(value, by_hand)
    autograd = torch.autograd.grad(7.0 * value, list(net.parameters()))
    for (name, p), g, a in zip(net.named_parameters(), injected_gradient(module), autograd):
        expected = 2 * 7.0 * importance[name] * (p.detach() - anchor[name])
        torch.testing.assert_close(g, expected)
        torch.testing.assert_close(a, expected)


def test_quadratic_penalty_matches_its_definition():
    a = {"w": torch.tensor([1.0, 2.0])}
    theta = {"w": torch.tensor([2.0, 0.0])}
    omega = {"w": torch.tensor([3.0, 0.5])}
    assert quadratic_penalty(theta, a, omega).item() == pytest.approx(3.0 * 1 + 0.5 * 4)


def test_agem_projection_never_conflicts_with_the_reference():
    g = torch.Generator().manual_seed(0)
    conflicts = 0
    for _ in range(500):
        grad, ref = torch.randn(50, generator=g), torch.randn(50, generator=g)
        projected = agem_project(grad, ref)
        assert torch.dot(projected, ref) >= -1e-5
        if torch.dot(grad, ref) >= 0:
            assert torch.equal(projected, grad)  # agreeing gradients are left alone
        else:
            conflicts += 1
            assert torch.dot(projected, ref).abs() < 1e-4  # projected onto the boundary
            # the smallest change: only the component along the reference is removed
            residual = projected - grad
            cos = torch.dot(residual, ref) / (residual.norm() * ref.norm())
            assert cos.abs() > 0.999
    assert conflicts > 100


def test_many_ewc_penalties_equal_their_explicit_sum():
    net = tiny_net()
    module = ContinualModule(net, EWC(lam=3.0))
    g = torch.Generator().manual_seed(4)
    anchors, fishers = [], []
    for _ in range(3):
        anchor = {n: p.detach() + torch.randn(p.shape, generator=g) for n, p in
                  net.named_parameters()}
        fisher = {n: torch.rand(p.shape, generator=g) for n, p in net.named_parameters()}
        fisher["1.bias"][0] = 0.0  # an entry no task cares about
        module.strategy.consolidate(anchor, fisher)
        anchors.append(anchor)
        fishers.append(fisher)
    named = dict(net.named_parameters())
    explicit = sum(quadratic_penalty(named, a, f) for a, f in zip(anchors, fishers))
    torch.testing.assert_close(module.strategy.penalty(module), explicit, rtol=1e-5, atol=1e-4)
    expected = torch.autograd.grad(3.0 * explicit, list(net.parameters()))
    for a, b in zip(injected_gradient(module), expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_importances_work_on_a_net_with_dropout_and_leave_its_mode_alone():
    import torch
    from torch import nn

    from continual.data.tensors import TensorData
    from continual.strategies.importance import fisher_diagonal, output_norm_importance

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    data = TensorData(torch.randn(10, 4), torch.randint(0, 3, (10,)))
    for compute in (output_norm_importance, fisher_diagonal):
        net.train()
        first, again = compute(net, data), compute(net, data)
        assert net.training  # restored
        for name in first:  # evaluated without dropout: deterministic
            assert torch.equal(first[name], again[name])


@pytest.mark.parametrize("strategy", [EWC, OnlineEWC])
def test_ewc_estimates_the_true_fisher_by_sampled_labels_by_default(strategy):
    assert strategy().fisher == "sampled"
    for mode in ("true", "empirical", "sampled"):
        assert strategy(fisher=mode).fisher == mode
    with pytest.raises(ConfigError, match="fisher='exact' is invalid; allowed: 'true', "):
        strategy(fisher="exact")


def test_the_pass_size_follows_the_layer_outputs_and_leaves_the_importance_unchanged():
    wide = tiny_net()
    assert importance.chunk_size(wide, torch.randn(1, 6)) == 1024  # a few floats a sample
    small = importance.chunk_size(ConvNet(1, 4, input_size=28), torch.randn(1, 1, 28, 28))
    big = importance.chunk_size(ConvNet(1, 4, input_size=56), torch.randn(1, 1, 56, 56))
    assert 32 <= big < small < 1024
    data = tiny_data(n=40)
    chosen, by_3 = (fisher_diagonal(wide, data, mode="sampled", batch_size=b, seed=2)
                    for b in (None, 3))
    for name in chosen:
        torch.testing.assert_close(chosen[name], by_3[name])


def test_a_resumed_penalty_stays_in_the_merged_gradient():
    """Resumed after one task, the next task's end merges both penalties, as an unbroken run
    does (the running sums are rebuilt from every penalty, not started from the new one)."""
    g = torch.Generator().manual_seed(5)

    def penalty_pair(net):
        return ({n: p.detach() + torch.randn(p.shape, generator=g) for n, p in
                 net.named_parameters()},
                {n: torch.rand(p.shape, generator=g) for n, p in net.named_parameters()})

    net = tiny_net()
    first, second = penalty_pair(net), penalty_pair(net)
    whole, resumed = ContinualModule(net, EWC(lam=2.0)), ContinualModule(net, EWC(lam=2.0))
    whole.strategy.consolidate(*first)
    resumed.strategy.load_state_dict(whole.strategy.state_dict())
    injected_gradient(resumed)  # a step of the resumed task, before its end
    for module in (whole, resumed):
        module.strategy.consolidate(*second)
    for a, b in zip(injected_gradient(whole), injected_gradient(resumed)):
        torch.testing.assert_close(a, b)
