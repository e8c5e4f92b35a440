"""Character crops: white ink on black, uint8 S x S.

Two framings. `char` (EMNIST's): the box scaled to fill the tile, which loses the size and height of a
character, all that tells c from C or . from o. `line`: a fixed window of the line's own scale (the line's
ink mean +- k standard deviations, as wide as it is tall) centred on the character, so a character keeps its
size and its place relative to the baseline; the ink outside its box is blanked."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd


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


def line_window(
    gray: np.ndarray, box: tuple[int, int, int, int], mean: float, std: float, k: float, paper: float
) -> np.ndarray | None:
    """The square window of side 2 k std around the character (vertically on the line's mean row,
    horizontally on the box centre), paper outside the box and outside the image; None for an empty box."""
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return None
    half = max(1, round(k * std))
    cx = x + w // 2
    top, left = round(mean) - half, cx - half
    side = 2 * half
    window = np.full((side, side), round(paper), np.uint8)
    # the character's box, clipped to the image and to the window
    x0, y0 = max(x, 0, left), max(y, 0, top)
    x1, y1 = min(x + w, gray.shape[1], left + side), min(y + h, gray.shape[0], top + side)
    if x1 <= x0 or y1 <= y0:
        return None
    window[y0 - top : y1 - top, x0 - left : x1 - left] = gray[y0:y1, x0:x1]
    return window


GEOMETRY_COLUMNS = ("top", "bottom", "width")
"""What `box_geometry` gives per box, in the line's ink standard deviations: top and bottom from the line's
ink mean row (negative above it), and width."""


def box_geometry(boxes: pd.DataFrame) -> np.ndarray:
    """(N, 3) float32: each box's place and size on its line (`GEOMETRY_COLUMNS`) from a manifest's y, h, w,
    line_mean_y and line_std. An EMNIST-style crop fills its tile whatever the letter's size; these three
    numbers are what still tells o from O or c from C, and a classifier can take them beside the crop."""
    std = np.maximum(boxes["line_std"].to_numpy(np.float64), 1e-6)
    mean = boxes["line_mean_y"].to_numpy(np.float64)
    top = boxes["y"].to_numpy(np.float64)
    out = np.stack([top - mean, top + boxes["h"].to_numpy(np.float64) - mean, boxes["w"].to_numpy(np.float64)], 1)
    return (out / std[:, None]).astype(np.float32)
