"""Small reference networks; any ``nn.Module`` mapping inputs to ``[B, C]`` logits works too."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class MLP(nn.Module):
    """Flatten, then fully connected layers with ReLU.

    Args:
        in_features: input size after flattening (64 for digits, 784 for MNIST).
        hidden: width of each hidden layer.
        n_classes: number of output logits.
    """

    def __init__(
        self, in_features: int = 64, hidden: Sequence[int] = (100, 100), n_classes: int = 10
    ) -> None:
        super().__init__()
        widths = [in_features, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x.float())


class SmallCNN(nn.Module):
    """Two conv blocks and a linear head, for image inputs ``[B, channels, H, W]``."""

    def __init__(self, channels: int = 1, n_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x.float()))


class ConvNet(nn.Module):
    """Two unpadded 3x3 conv layers with max-pooling, then two linear layers (the common
    "small CNN" of MNIST tutorials: 1→32→64 channels, 1600→128→10 on 28x28 inputs).

    Args:
        channels: input channels.
        n_classes: number of output logits.
        input_size: height and width of the (square) inputs; sets the first linear layer's
            width, ``64·s²`` with ``s = ((input_size − 2) // 2 − 2) // 2``.
        width: channels of the first conv layer (the second has twice as many).
        hidden: width of the hidden linear layer.
    """

    def __init__(self, channels: int = 1, n_classes: int = 10, input_size: int = 28,
                 width: int = 32, hidden: int = 128) -> None:
        super().__init__()
        side = ((input_size - 2) // 2 - 2) // 2
        if side < 1:
            raise ValueError(f"input_size={input_size} is invalid; allowed: input_size >= 10")
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(2 * width * side * side, hidden), nn.ReLU(),
                                  nn.Linear(hidden, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x.float()))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a shortcut (a 1x1 conv-BN where the shape changes)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(), nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return (self.body(x) + self.shortcut(x)).relu()


class ResNet18(nn.Module):
    """The reduced ResNet-18 of GEM, DER and mammoth for CIFAR-sized images (~1.1 M weights
    at ``nf=20``): a stride-1 3x3 stem, four stages of two basic blocks with ``nf``, 2, 4 and
    8 ``nf`` channels (stride 2 from the second stage), global average pooling, a linear head.

    Any input size works (the pooling is global); 32x32 is what the stem is sized for.

    Args:
        channels: input channels.
        n_classes: number of output logits.
        nf: channels of the stem and the first stage (64 gives the full-width ResNet-18).
    """

    def __init__(self, channels: int = 3, n_classes: int = 10, nf: int = 20) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, nf, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(nf), nn.ReLU()]
        width = nf
        for stage in range(4):
            out = nf * 2**stage
            layers += [BasicBlock(width, out, 1 if stage == 0 else 2), BasicBlock(out, out)]
            width = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x.float()))
