"""Horizontal positions from the word's transcription rendered in a cursive font.

The font's cumulative advances (kerning included) say where each character sits inside the written word;
those relative positions are mapped onto the handwritten word.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from iamchars.fonts import FontMetrics


def relative_cells(text: str, font: FontMetrics) -> tuple[np.ndarray, np.ndarray]:
    """Each character's advance cell as fractions of the word's total advance (0..1)."""
    starts, ends = font.spans(text)
    total = max(float(ends[-1]), 1e-6)
    return starts / total, ends / total


def seed_spans(text: str, font: FontMetrics, x0: float, width: float) -> np.ndarray:
    """The reference method: advance cells stretched linearly over the word box; (n, 2) of [x_start, x_end)."""
    starts, ends = relative_cells(text, font)
    return np.stack([x0 + starts * width, x0 + ends * width], axis=1)


def ink_cuts(text: str, font: FontMetrics) -> np.ndarray:
    """Boundaries between characters as fractions of the rendered word's *ink* extent: n+1 values, the first
    0 and the last 1. Cuts sit halfway between one cell's end and the next cell's start."""
    starts, ends = font.spans(text)
    lefts = np.array([s + font.glyph(ch).left for s, ch in zip(starts, text, strict=True)])
    rights = np.array([lft + font.glyph(ch).alpha.shape[1] for lft, ch in zip(lefts, text, strict=True)])
    ink_left, ink_right = float(lefts.min()), float(rights.max())
    inner = (ends[:-1] + starts[1:]) / 2.0
    span = max(ink_right - ink_left, 1e-6)
    cuts = np.concatenate([[ink_left], inner, [ink_right]])
    return np.clip((cuts - ink_left) / span, 0.0, 1.0)


class WordLayout(NamedTuple):
    cuts: np.ndarray
    """`ink_cuts` of the word."""
    ink_share: np.ndarray
    """Each character's share of the rendered word's ink (what a fair split of the handwritten ink looks like)."""


@lru_cache(maxsize=65536)
def word_layout(text: str, font: FontMetrics) -> WordLayout:
    """Cached per (text, font): IAM's frequent words are laid out once per process."""
    ink = np.array([float(font.glyph(ch).alpha.sum()) for ch in text])
    return WordLayout(ink_cuts(text, font), ink / max(float(ink.sum()), 1.0))
