"""The network of the `aligned` method: which character, if any, lies between two columns of a word strip.

One convolutional pass per word gives a feature vector per strip column (vertical pooling only, so the
columns keep their positions); a segment [a, b) is then read cheaply from those features: the features at
`SAMPLES` evenly spaced points inside it (linear interpolation, a 1-D RoIAlign), at its two edges and just
outside them, and its width. Scoring the hundreds of candidate segments
of a word costs little more than one pass, which is what makes forced alignment of all of IAM affordable on
a CPU."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from iamchars.nn import conv_bn
from iamchars.segment.align.alignment import STRIP_ROWS

SAMPLES = 6
"""Points read inside a segment (by linear interpolation between columns)."""


class RowMaxPool(nn.Module):
    """`nn.MaxPool2d((rows, 1))`, the same values and gradients, at a fraction of its CPU cost (a third of the
    aligner's time went to it): `max` keeps the first of tied maxima for the gradient as MaxPool2d does; without
    gradients `amax`, which skips the indices, is faster still."""

    def __init__(self, rows: int) -> None:
        super().__init__()
        self.rows = rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grouped = x.unflatten(2, (-1, self.rows))
        return grouped.max(3).values if torch.is_grad_enabled() else grouped.amax(3)


class SegmentNet(nn.Module):
    def __init__(self, num_chars: int, width: int = 48) -> None:
        super().__init__()
        self.num_chars = num_chars
        self.columns = nn.Sequential(
            conv_bn(1, 16),
            RowMaxPool(2),
            conv_bn(16, 32),
            RowMaxPool(2),
            conv_bn(32, width),
            RowMaxPool(2),
            conv_bn(width, width),
            RowMaxPool(STRIP_ROWS // 8),
        )
        self.context = nn.Sequential(
            nn.Conv1d(width, width, 5, padding=2),
            nn.GELU(),
            nn.Conv1d(width, width, 5, padding=4, dilation=2),
            nn.GELU(),
        )
        self.head = nn.Sequential(
            nn.Linear((SAMPLES + 4) * width + 1, 128), nn.GELU(), nn.Dropout(0.2), nn.Linear(128, num_chars + 1)
        )

    def features(self, strips: torch.Tensor) -> torch.Tensor:
        """(B, 1, rows, T) strips -> (B, C, T) column features."""
        f = self.columns(strips).squeeze(2)
        return f + self.context(f)

    def segments(self, features: torch.Tensor, word: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits (S, num_chars + 1; the last is "no character") of segments [a, b) of the given words."""
        width = features.shape[2]
        columns = features.transpose(1, 2).reshape(-1, features.shape[1])  # (B * T, C): one row per column
        first = word * width

        def at(i: torch.Tensor) -> torch.Tensor:
            """Feature rows of columns i (S, ...) of each segment's word; index_select on the flat table is
            a third faster than indexing (B, T, C) by (word, column)."""
            flat = first.view(-1, *[1] * (i.dim() - 1)) + i.clamp(0, width - 1)
            return columns.index_select(0, flat.flatten()).view(*i.shape, -1)

        fraction = (torch.arange(SAMPLES, device=features.device, dtype=features.dtype) + 0.5) / SAMPLES
        points = a.to(features.dtype)[:, None] + (b - a).to(features.dtype)[:, None] * fraction[None, :]
        left = points.floor().long().clamp(0, width - 1)
        right = (left + 1).clamp(max=width - 1)
        weight = (points - left.to(features.dtype)).clamp(0, 1)[..., None]
        edges = at(torch.stack([a - 1, a, b - 1, b], 1))  # (S, 4, C)
        size = ((b - a).to(features.dtype) / STRIP_ROWS).unsqueeze(1)
        if torch.is_grad_enabled():  # learning: the arithmetic the shipped weights were made with, to the bit
            inside = at(left) * (1 - weight) + at(right) * weight  # (S, SAMPLES, C)
            return self.head(torch.cat([inside.flatten(1), edges.flatten(1), size], 1))
        # re-aligning, hundreds of segments per word: the same function with fewer passes over memory (one
        # blend, and the head's first layer applied to the three parts of its input without joining them)
        inside = torch.lerp(at(left), at(right), weight)
        layer = self.head[0]
        assert isinstance(layer, nn.Linear)
        k = SAMPLES * features.shape[1]
        hidden = torch.addmm(layer.bias, inside.flatten(1), layer.weight[:, :k].t())
        hidden = torch.addmm(hidden, edges.flatten(1), layer.weight[:, k:-1].t())
        return self.head[1:](torch.addcmul(hidden, size, layer.weight[:, -1][None, :]))


def stack_strips(strips: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """Strips of one batch, zero-padded on the right to the widest: (B, 1, rows, T) floats in 0..1."""
    width = max(s.shape[1] for s in strips) + 2
    out = np.zeros((len(strips), 1, STRIP_ROWS, width), np.uint8)
    for i, s in enumerate(strips):
        out[i, 0, :, : s.shape[1]] = s
    return torch.from_numpy(out).to(device).float().div_(255.0)


def batches_by_width(widths: Sequence[int], words_per_batch: int) -> list[list[int]]:
    """Index batches of words of similar width (little padding); ties broken by index, so deterministic."""
    order = sorted(range(len(widths)), key=lambda i: (widths[i], i))
    return [order[i : i + words_per_batch] for i in range(0, len(order), words_per_batch)]


def cycle_batches(batches: list[list[int]], generator: np.random.Generator) -> Iterator[list[int]]:
    while True:
        for k in generator.permutation(len(batches)):
            yield batches[int(k)]
