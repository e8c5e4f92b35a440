"""Network pieces shared by the segmentation's aligner and the trainer: device choice and layers.

It sits below both `segment/` and `train/`, so the aligner never imports the trainer."""

from __future__ import annotations

import torch
from torch import nn

from iamchars.errors import UserError


def pick_device(name: str) -> torch.device:
    """ "auto" takes the GPU when torch sees one, else the CPU; an explicit CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: torch sees no CUDA GPU (is a CUDA build of torch installed? see README)")
    return torch.device(name)


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    """3x3 convolution, batch norm, GELU: the block every model here is made of."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU())
