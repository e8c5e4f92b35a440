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
from iamchars.segment.alignment import STRIP_ROWS

SAMPLES = 6
"""Points read inside a segment. On pen-dev (2 rounds) 6 points give 0.735 mean IoU, the means of its three
thirds 0.728."""


class SegmentNet(nn.Module):
    def __init__(self, num_chars: int, width: int = 48) -> None:
        super().__init__()
        self.num_chars = num_chars
        self.columns = nn.Sequential(
            conv_bn(1, 16),
            nn.MaxPool2d((2, 1)),
            conv_bn(16, 32),
            nn.MaxPool2d((2, 1)),
            conv_bn(32, width),
            nn.MaxPool2d((2, 1)),
            conv_bn(width, width),
            nn.MaxPool2d((STRIP_ROWS // 8, 1)),
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
        columns = features.transpose(1, 2).contiguous()  # (B, T, C): each gather below reads whole rows
        fraction = (torch.arange(SAMPLES, device=features.device, dtype=features.dtype) + 0.5) / SAMPLES
        points = a.to(features.dtype)[:, None] + (b - a).to(features.dtype)[:, None] * fraction[None, :]
        left = points.floor().long().clamp(0, width - 1)
        right = (left + 1).clamp(max=width - 1)
        weight = (points - left.to(features.dtype)).clamp(0, 1)[..., None]
        rows = word[:, None]
        inside = columns[rows, left] * (1 - weight) + columns[rows, right] * weight  # (S, SAMPLES, C)

        def at(i: torch.Tensor) -> torch.Tensor:
            return columns[word, i.clamp(0, width - 1)]

        size = ((b - a).to(features.dtype) / STRIP_ROWS).unsqueeze(1)
        parts = [inside.flatten(1), at(a - 1), at(a), at(b - 1), at(b)]
        return self.head(torch.cat([*parts, size], 1))


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
