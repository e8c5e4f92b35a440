"""Vertical bounds from the ink statistics of the whole line.

The ink-weighted mean row is the centre of the writing's core; its standard deviation scales with the
x-height and the ascenders/descenders, so `mean +- k * std` is a writer-independent band.
"""

from __future__ import annotations

import cv2
import numpy as np


def ink_threshold(gray: np.ndarray, graylevel: int = 0) -> int:
    """The grey level under which a pixel is ink: IAM's own per-line value when given, else Otsu's."""
    if graylevel > 0:
        return int(graylevel)
    value, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return int(value)


def ink_weights(gray: np.ndarray, threshold: int) -> np.ndarray:
    """Darkness of ink pixels (0 elsewhere), float32: darker strokes weigh more than faint ones."""
    darkness = 255.0 - gray.astype(np.float32)
    darkness[gray >= threshold] = 0.0
    return darkness


def line_ink_stats(gray: np.ndarray, threshold: int) -> tuple[float, float]:
    """Ink-weighted mean and standard deviation of the row index over the whole line."""
    rows = ink_weights(gray, threshold).sum(axis=1, dtype=np.float64)
    total = rows.sum()
    if total <= 0:
        h = gray.shape[0]
        return (h - 1) / 2.0, h / 4.0
    y = np.arange(len(rows), dtype=np.float64)
    mean = float((rows * y).sum() / total)
    std = float(np.sqrt((rows * (y - mean) ** 2).sum() / total))
    return mean, std


def vertical_band(mean: float, std: float, k: float, height: int) -> tuple[int, int]:
    """[top, bottom) rows of the band mean +- k * std, clipped to the image."""
    top = int(np.floor(max(0.0, mean - k * std)))
    bottom = min(height, int(np.floor(mean + k * std)) + 1)
    return top, max(bottom, top + 1)
