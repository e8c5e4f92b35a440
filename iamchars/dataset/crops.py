"""Character crops normalised the EMNIST way: white ink on black, aspect kept, centred in S x S, uint8."""

from __future__ import annotations

import cv2
import numpy as np


def paper_and_ink_levels(gray: np.ndarray) -> tuple[float, float]:
    """Paper (80th percentile) and darkest ink (1st percentile) grey levels of a line, from its histogram.

    Normalising each line by its own levels removes the differences of pen, paper and scanner between forms."""
    hist = np.bincount(gray.ravel(), minlength=256)
    cdf = np.cumsum(hist) / max(gray.size, 1)
    paper = float(np.searchsorted(cdf, 0.80))
    ink = float(np.searchsorted(cdf, 0.01))
    return paper, min(ink, paper - 1.0)


def crop_box(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """The part of the image inside (x, y, w, h); None when the box has no overlap with the image."""
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(gray.shape[1], x + w), min(gray.shape[0], y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return gray[y0:y1, x0:x1]


def normalize_crop(crop: np.ndarray, paper: float, ink: float, size: int, margin: int = 2) -> np.ndarray:
    """Ink intensity (0 paper .. 255 darkest ink), longest side scaled to size - 2*margin, centred."""
    scale_levels = 255.0 / max(paper - ink, 1.0)
    # saturating uint8 arithmetic: paper - grey, clipped at 0, stretched so the darkest ink reaches 255
    intensity = cv2.convertScaleAbs(cv2.subtract(np.full_like(crop, round(paper)), crop), alpha=scale_levels)
    h, w = intensity.shape
    inner = size - 2 * margin
    factor = inner / max(h, w)
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(intensity, (nw, nh), interpolation=interp)
    out = np.zeros((size, size), np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = resized
    return out
