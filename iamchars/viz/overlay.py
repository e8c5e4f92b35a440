"""Boxes drawn over line images, and simple panel/contact-sheet assembly (pure: arrays in, arrays out)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

PALETTE = np.array(
    [
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (128, 128, 0),
    ],
    dtype=np.uint8,
)


def draw_boxes(
    gray: np.ndarray,
    boxes: np.ndarray,
    labels: Sequence[str] | None = None,
    colors: np.ndarray | None = None,
    thickness: int = 1,
) -> np.ndarray:
    """Draw (x, y, w, h) boxes (line coordinates) in alternating colours; returns a BGR image."""
    image = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    for i, (x, y, w, h) in enumerate(np.asarray(boxes, dtype=int)):
        color = tuple(int(c) for c in (colors[i] if colors is not None else PALETTE[i % len(PALETTE)]))
        cv2.rectangle(image, (x, y), (x + max(w, 1) - 1, y + max(h, 1) - 1), color, thickness)
        if labels is not None:
            cv2.putText(image, labels[i], (x, max(10, y - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
    return image


def stack_rows(images: Sequence[np.ndarray], gap: int = 8, width: int | None = None) -> np.ndarray:
    """Stack BGR images vertically on a white canvas, left-aligned."""
    if not images:
        return np.full((10, 10, 3), 255, np.uint8)
    width = width or max(im.shape[1] for im in images)
    height = sum(im.shape[0] for im in images) + gap * (len(images) - 1)
    canvas = np.full((height, width, 3), 255, np.uint8)
    y = 0
    for im in images:
        w = min(width, im.shape[1])
        canvas[y : y + im.shape[0], :w] = im[:, :w]
        y += im.shape[0] + gap
    return canvas


def contact_sheet(tiles: Sequence[np.ndarray], columns: int = 16, pad: int = 2, background: int = 128) -> np.ndarray:
    """Equal-sized greyscale tiles in a grid (uint8)."""
    if not tiles:
        return np.full((8, 8), background, np.uint8)
    th, tw = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    cols = min(columns, len(tiles))
    sheet = np.full((rows * (th + pad) + pad, cols * (tw + pad) + pad), background, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        sheet[y : y + th, x : x + tw] = tile
    return sheet


def caption(image: np.ndarray, text: str, height: int = 22) -> np.ndarray:
    """A white title strip above a BGR image (the image is padded when the text is wider)."""
    (text_w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    width = max(image.shape[1], text_w + 8)
    canvas = np.full((height + image.shape[0], width, 3), 255, np.uint8)
    cv2.putText(canvas, text, (4, height - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    canvas[height:, : image.shape[1]] = image
    return canvas
