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
