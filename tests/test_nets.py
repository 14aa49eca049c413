"""The reference networks: output shapes, sizes, one training step, and their model configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from continual.config import instantiate, run_parser
from continual.nets import MLP, ConvNet, ResNet18, SmallCNN

REPO = Path(__file__).resolve().parents[1]

NETS = {  # a net and the input it is for
    "mlp": (lambda: MLP(64, (16,), 10), (64,)),
    "small-cnn": (lambda: SmallCNN(3, 10, width=8), (3, 16, 16)),
    "convnet-mnist": (lambda: ConvNet(), (1, 28, 28)),
    "convnet-cifar": (lambda: ConvNet(3, 100, input_size=32, width=8, hidden=16), (3, 32, 32)),
    "resnet18": (lambda: ResNet18(3, 10, nf=4), (3, 32, 32)),
    "resnet18-grey": (lambda: ResNet18(1, 5, nf=4), (1, 28, 28)),
}


@pytest.mark.parametrize("name", NETS)
def test_nets_map_a_batch_to_logits_and_learn_in_a_step(name):
    make, shape = NETS[name]
    torch.manual_seed(0)
    net = make()
    x = torch.randn(8, *shape)
    y = torch.randint(0, 5, (8,))
    assert net(x).shape == (8, net(x[:1]).shape[-1])
    before = [p.detach().clone() for p in net.parameters()]
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    losses = []
    for _ in range(2):  # the same batch twice: the step lowered its loss
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[1] < losses[0]
    assert all(not torch.equal(b, p) for b, p in zip(before, net.parameters()))


def test_reference_sizes():
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(ResNet18()) == 1_094_750  # GEM / DER / mammoth's reduced ResNet-18
    assert count(ConvNet()) == 225_034  # 1600 → 128 → 10 after the conv layers
    assert ConvNet().head[0].in_features == 1600
    with pytest.raises(ValueError, match="input_size=8 is invalid"):
        ConvNet(input_size=8)


@pytest.mark.parametrize("config, cls, shape", [
    ("convnet_mnist.yaml", ConvNet, (1, 28, 28)),
    ("resnet18_cifar.yaml", ResNet18, (3, 32, 32)),
])
def test_model_configs_build_their_net_by_class_path(config, cls, shape):
    parser = run_parser()
    init = instantiate(parser, parser.parse_args(["--config", str(REPO / "configs/model" /
                                                                  config)]))
    assert type(init.model.net) is cls
    assert init.model.net(torch.zeros(2, *shape)).shape == (2, 10)
