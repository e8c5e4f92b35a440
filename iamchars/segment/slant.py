"""Slant estimation and removal: upright strokes make character cuts vertical lines again."""

from __future__ import annotations

import numpy as np


def shear_x(xs: np.ndarray, ys: np.ndarray, slant: float, y_ref: float) -> np.ndarray:
    """Deslanted x of ink pixels: a stroke leaning right by `slant` (radians) becomes vertical."""
    return xs + np.tan(slant) * (ys - y_ref)


def estimate_slant(ys: np.ndarray, xs: np.ndarray, max_deg: float, steps: int, max_pixels: int = 4000) -> float:
    """The shear (radians) that makes the column projection of the ink sharpest.

    Upright strokes pile their pixels into few columns, so the sum of squared column counts peaks at the
    writer's slant; a coarse grid is refined once around its best angle. Long lines are subsampled with a
    fixed stride (deterministic) since a few thousand pixels fix the angle as well as all of them."""
    if len(xs) < 20:
        return 0.0
    if len(xs) > max_pixels:
        stride = -(-len(xs) // max_pixels)
        ys, xs = ys[::stride], xs[::stride]
    y_ref = float(ys.mean())

    def sharpness(angle_deg: float) -> float:
        cols = np.rint(shear_x(xs, ys, np.radians(angle_deg), y_ref)).astype(np.int64)
        counts = np.bincount(cols - cols.min())
        return float(np.dot(counts, counts))

    grid = np.linspace(-max_deg, max_deg, steps)
    best = grid[int(np.argmax([sharpness(a) for a in grid]))]
    step = grid[1] - grid[0] if steps > 1 else 1.0
    fine = np.linspace(best - step, best + step, 9)
    return float(np.radians(fine[int(np.argmax([sharpness(a) for a in fine]))]))
