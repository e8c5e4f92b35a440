"""Rendering handwriting lines glyph by glyph, so that the ink of every character is known.

A line is drawn into a strip with a label map (which character owns each inked pixel); per-writer slant and
a smooth elastic field then warp ink and labels together, so the true box of a character is the tight box
of its own pixels after every distortion.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from iamchars.fonts import FontMetrics

INK_LABEL_THRESHOLD = 96
"""Coverage above which a pixel counts as a character's ink (for labels and true boxes)."""


@dataclass(frozen=True)
class WriterStyle:
    font: str
    size: int
    stroke: int
    slant_deg: float
    ink: int
    letter_spacing: float
    word_gap: float
    jitter_scale: float
    jitter_rotation_deg: float
    jitter_baseline: float
    elastic_px: float
    pressure: float


def writer_style(font: str, rng: np.random.Generator) -> WriterStyle:
    """A writer: one font with its own size, slant, stroke, ink and spacing habits."""
    size = int(rng.integers(58, 82))
    return WriterStyle(
        font=font,
        size=size,
        stroke=int(rng.random() < 0.35),
        slant_deg=float(rng.uniform(-8, 22)),
        ink=int(rng.integers(10, 90)),
        letter_spacing=float(rng.uniform(-1.5, 3.0)),
        word_gap=float(rng.uniform(0.28, 0.55) * size),
        jitter_scale=float(rng.uniform(0.03, 0.08)),
        jitter_rotation_deg=float(rng.uniform(1.0, 4.0)),
        jitter_baseline=float(rng.uniform(0.5, 2.5)),
        elastic_px=float(rng.uniform(1.0, 3.0)),
        pressure=float(rng.uniform(0.0, 0.3)),
    )


@dataclass
class RenderedLine:
    alpha: np.ndarray
    """uint8 ink coverage of the strip."""
    labels: np.ndarray
    """int32: 0 background, k > 0 the k-th character of the line (1-based, in reading order)."""
    owners: list[tuple[int, int]]
    """(token index, char index) of each label k-1."""
    baseline: int


def _place(
    canvas: np.ndarray, best: np.ndarray, labels: np.ndarray, glyph: np.ndarray, x: int, y: int, label: int
) -> None:
    h, w = glyph.shape
    ys, xs = slice(y, y + h), slice(x, x + w)
    region = canvas[ys, xs]
    owned = (glyph > INK_LABEL_THRESHOLD) & (glyph > best[ys, xs])
    labels[ys, xs][owned] = label
    best[ys, xs][owned] = glyph[owned]
    np.maximum(region, glyph, out=region)


def _jitter_glyph(alpha: np.ndarray, scale: float, angle: float, weight: float) -> tuple[np.ndarray, int, int]:
    """Scale and rotate a glyph bitmap about its centre; returns it with the shift of its top-left corner."""
    h, w = alpha.shape
    pad = int(np.ceil(max(h, w) * (abs(scale - 1) + abs(np.sin(np.radians(angle)))) / 2)) + 1
    src = cv2.copyMakeBorder(alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    centre = (src.shape[1] / 2, src.shape[0] / 2)
    m = cv2.getRotationMatrix2D(centre, angle, scale)
    out = cv2.warpAffine(src, m, (src.shape[1], src.shape[0]), flags=cv2.INTER_LINEAR)
    if weight != 1.0:
        out = (out.astype(np.float32) * weight).astype(np.uint8)
    return out, -pad, -pad


def render_line(tokens: list[str], style: WriterStyle, font: FontMetrics, rng: np.random.Generator) -> RenderedLine:
    text_len = sum(font.advance(ch) + style.letter_spacing + 2 for t in tokens for ch in t)
    margin = int(style.size * 0.8)
    width = int(text_len * 1.1 + style.word_gap * len(tokens) + 2 * margin)
    height = int((font.ascent + font.descent) * 1.35) + 2 * margin // 2
    baseline = margin // 2 + int(font.ascent * 1.1)
    canvas = np.zeros((height, width), np.uint8)
    best = np.zeros_like(canvas)
    labels = np.zeros((height, width), np.int32)
    owners: list[tuple[int, int]] = []
    pen = float(margin)
    drift = 0.0
    for t_index, token in enumerate(tokens):
        for c_index, ch in enumerate(token):
            if c_index:
                pen += font.kerning(token[c_index - 1], ch) + style.letter_spacing + rng.normal(0, 0.8)
            glyph = font.glyph(ch)
            scale = 1.0 + rng.normal(0, style.jitter_scale)
            angle = rng.normal(0, style.jitter_rotation_deg)
            weight = 1.0 - style.pressure * rng.random()
            bitmap, dx, dy = _jitter_glyph(glyph.alpha, scale, angle, weight)
            drift = 0.7 * drift + rng.normal(0, style.jitter_baseline)
            x = round(pen + glyph.left * scale) + dx
            y = round(baseline + drift + glyph.top * scale) + dy
            x, y = max(0, x), max(0, y)
            bitmap = bitmap[: height - y, : width - x]
            owners.append((t_index, c_index))
            _place(canvas, best, labels, bitmap, x, y, len(owners))
            pen += glyph.advance * scale
        pen += style.word_gap * rng.uniform(0.8, 1.25)
    return RenderedLine(canvas, labels, owners, baseline)


def warp_line(line: RenderedLine, style: WriterStyle, rng: np.random.Generator) -> RenderedLine:
    """Writer slant (a shear about the baseline) and a smooth elastic field, on ink and labels alike."""
    h, w = line.alpha.shape
    shear = np.tan(np.radians(style.slant_deg))
    pad = int(abs(shear) * h) + 2
    alpha = cv2.copyMakeBorder(line.alpha, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=0)
    labels = cv2.copyMakeBorder(line.labels, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=0)
    h, w = alpha.shape
    cell = 24
    coarse = rng.normal(0, 1, size=(2, h // cell + 2, w // cell + 2)).astype(np.float32)
    dx = cv2.resize(coarse[0], (w, h), interpolation=cv2.INTER_CUBIC) * style.elastic_px
    dy = cv2.resize(coarse[1], (w, h), interpolation=cv2.INTER_CUBIC) * style.elastic_px
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = (xs + np.float32(shear) * (ys - line.baseline) + dx).astype(np.float32)
    map_y = (ys + dy).astype(np.float32)
    warped = cv2.remap(alpha, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
    warped_labels = cv2.remap(labels.astype(np.float32), map_x, map_y, cv2.INTER_NEAREST, borderValue=0)
    out_labels = warped_labels.astype(np.int32)
    out_labels[warped <= INK_LABEL_THRESHOLD // 2] = 0
    return RenderedLine(warped, out_labels, line.owners, line.baseline)


def char_boxes(line: RenderedLine) -> np.ndarray:
    """Tight (x, y, w, h) of each label's pixels, in strip coordinates; -1 rows where a label vanished."""
    boxes = np.full((len(line.owners), 4), -1, np.int64)
    for k, sl in enumerate(ndimage.find_objects(line.labels, max_label=len(line.owners))):
        if sl is not None:
            ys, xs = sl
            boxes[k] = (xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start)
    return boxes
