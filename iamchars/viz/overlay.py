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


def titled(image: np.ndarray, title: str, legend: np.ndarray | None = None, height: int = 26) -> np.ndarray:
    """A picture with a title band on top (and a legend, a small BGR image, at the band's right): what a
    reader needs to read it without the source. Greyscale images become BGR."""
    body = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
    (text_w, _), _ = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    legend_w = 0 if legend is None else legend.shape[1] + 12
    band = max(height, 0 if legend is None else legend.shape[0] + 6)
    width = max(body.shape[1], text_w + 8 + legend_w)
    canvas = np.full((band + body.shape[0], width, 3), 255, np.uint8)
    cv2.putText(canvas, title, (4, band // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if legend is not None:
        top = (band - legend.shape[0]) // 2
        canvas[top : top + legend.shape[0], width - legend.shape[1] - 4 : width - 4] = legend
    canvas[band:, : body.shape[1]] = body
    return canvas


def color_ramp_legend(colors: np.ndarray, label: str, ends: tuple[str, str], width: int = 160) -> np.ndarray:
    """A horizontal colour ramp (BGR, one row of `colors` from left to right) with its label and end values."""
    ramp = cv2.resize(colors[None, :, :], (width, 10), interpolation=cv2.INTER_LINEAR)
    (label_w, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    canvas = np.full((24, label_w + width + 40, 3), 255, np.uint8)
    cv2.putText(canvas, label, (0, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    x = label_w + 20
    canvas[2:12, x : x + width] = ramp
    for text, at in ((ends[0], x), (ends[1], x + width - 8)):
        cv2.putText(canvas, text, (at, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
