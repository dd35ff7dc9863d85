"""Batch norm with the formula a spec's BatchNorm names: torch's (x − mean)/sqrt(var + eps), which
the AlexeyAB Darknet also computes, or pjreddie's original Darknet (x − mean)/(sqrt(var) + eps)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from darkforge.spec.layers.numerics import BatchNorm


class PjreddieBatchNorm(_BatchNorm):
    """normalize_cpu of pjreddie/darknet: divides by sqrt(var) + eps. In training it normalises with
    the batch's unbiased variance (Darknet's variance_cpu) and updates the running statistics with
    `momentum` as torch does; any number of spatial dims."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: Tensor) -> Tensor:
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        if self.training:
            mean, var = x.mean(dims), x.var(dims, unbiased=True)
            assert self.running_mean is not None and self.running_var is not None
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum or 0.1)
                self.running_var.lerp_(var, self.momentum or 0.1)
        else:
            assert self.running_mean is not None and self.running_var is not None
            mean, var = self.running_mean, self.running_var
        y = (x - mean.view(shape)) / (var.view(shape).sqrt() + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)


def batch_norm(norm: BatchNorm, features: int, dims: int = 2) -> nn.Module:
    """The batch-norm module for `norm` over `features` channels of a `dims`-D map (1: vectors)."""
    if norm.formula == "pjreddie":
        return PjreddieBatchNorm(features, eps=norm.eps, momentum=norm.momentum)
    cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return cls(features, eps=norm.eps, momentum=norm.momentum)
