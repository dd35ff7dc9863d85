"""A hand-written Darknet-53 after the tutorial's structure: the trusted reference for the builder.

Every conv has a bias (as in the tutorial), BatchNorm2d, LeakyReLU(0.1); residual blocks add
x + F(x). Modules are registered in forward order, so weights copy in order to the YAML build.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_leaky(cin: int, cout: int, size: int, stride: int = 1, bias: bool = True) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, size, stride, size // 2, bias=bias),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.1),
    )


class Residual(nn.Module):
    def __init__(self, channels: int, bias: bool = True) -> None:
        super().__init__()
        self.conv1 = conv_bn_leaky(channels, channels // 2, 1, bias=bias)
        self.conv2 = conv_bn_leaky(channels // 2, channels, 3, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class Darknet53(nn.Module):
    def __init__(self, classes: int = 10, bias: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_leaky(3, 32, 3, bias=bias)]
        channels = 32
        for filters, blocks in ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4)):
            layers.append(conv_bn_leaky(channels, filters, 3, 2, bias=bias))
            layers += [Residual(filters, bias) for _ in range(blocks)]
            channels = filters
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1024, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))
