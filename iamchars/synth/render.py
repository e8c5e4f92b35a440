"""Rendering handwriting lines glyph by glyph, so that the ink of every character is known.

A line is drawn into a strip with a label map (which character owns each inked pixel); per-writer slant and
a smooth elastic field then warp ink and labels together, so the true box of a character is the tight box
of its own pixels after every distortion.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

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
    pen: float = 0.0
    """Pen diameter (pixels) when the writer's glyphs are redrawn as one even pen line along their
    skeleton, as ballpoint handwriting is; 0 keeps the font's own strokes."""
    joins: float = 0.0
    """Chance that two neighbouring letters of a word are joined by a connecting stroke (cursive writers)."""


PEN_DIAMETER = (2.5, 7.0)
"""Range of a monoline writer's pen (pixels, for type of 58 to 82 px): pen-dev draws a 2.5 to 4.5 px pen for
x-heights of 24 to 38 px; the range reaches thicker pens as well."""


JOIN_CHANCE = (0.5, 1.0)
"""How often a joining writer connects two neighbouring letters."""


def writer_style(font: str, rng: np.random.Generator, monoline: float = 0.0, joins: float = 0.0) -> WriterStyle:
    """A writer: one font with its own size, slant, stroke, ink and spacing habits; with probability
    `monoline` a pen that redraws the font's glyphs as even lines, with probability `joins` the habit of
    joining letters (both drawn last, so that corpora without them do not change)."""
    size = int(rng.integers(58, 82))
    style = WriterStyle(
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
    if monoline > 0 and rng.random() < monoline:
        style = replace(style, stroke=0, pen=float(rng.uniform(*PEN_DIAMETER)))
    if joins > 0 and rng.random() < joins:
        style = replace(style, joins=float(rng.uniform(*JOIN_CHANCE)))
    return style


@lru_cache(maxsize=4096)
def monoline_alpha(alpha: bytes, shape: tuple[int, int], pen: float) -> tuple[np.ndarray, int]:
    """A glyph's coverage redrawn as an even, anti-aliased pen line of diameter `pen` along its skeleton,
    with the padding added on each side (the line may reach past the glyph's own bitmap)."""
    glyph = np.frombuffer(alpha, np.uint8).reshape(shape)
    pad = int(np.ceil(pen / 2)) + 1
    inked = cv2.copyMakeBorder(glyph, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0) > 127
    skeleton = skeletonize(inked)
    if not skeleton.any():
        return np.pad(glyph, pad), pad
    distance = cv2.distanceTransform((~skeleton).astype(np.uint8), cv2.DIST_L2, 5)
    coverage = np.clip(pen / 2 + 0.5 - distance, 0.0, 1.0)
    return np.rint(coverage * 255).astype(np.uint8), pad


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
            alpha, pad = glyph.alpha, 0
            if style.pen > 0:
                alpha, pad = monoline_alpha(alpha.tobytes(), alpha.shape, style.pen)
            scale = 1.0 + rng.normal(0, style.jitter_scale)
            angle = rng.normal(0, style.jitter_rotation_deg)
            weight = 1.0 - style.pressure * rng.random()
            bitmap, dx, dy = _jitter_glyph(alpha, scale, angle, weight)
            dx, dy = dx - pad, dy - pad
            drift = 0.7 * drift + rng.normal(0, style.jitter_baseline)
            x = round(pen + glyph.left * scale) + dx
            y = round(baseline + drift + glyph.top * scale) + dy
            x, y = max(0, x), max(0, y)
            bitmap = bitmap[: height - y, : width - x]
            owners.append((t_index, c_index))
            _place(canvas, best, labels, bitmap, x, y, len(owners))
            pen += glyph.advance * scale
        if style.joins > 0:
            first = len(owners) - len(token) + 1
            for k in range(first, len(owners)):
                if rng.random() < style.joins:
                    _join(canvas, labels, k, baseline, style, rng)
        pen += style.word_gap * rng.uniform(0.8, 1.25)
    return RenderedLine(canvas, labels, owners, baseline)


def _stroke_width(labels: np.ndarray, label: int) -> float:
    """A glyph's stroke width: its ink area over the length of its skeleton."""
    ys, xs = np.nonzero(labels == label)
    mask = labels[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] == label
    return float(mask.sum()) / max(int(skeletonize(mask).sum()), 1)


def _join(
    canvas: np.ndarray, labels: np.ndarray, left: int, baseline: int, style: WriterStyle, rng: np.random.Generator
) -> None:
    """A connecting stroke from letter `left`'s lowest right-hand ink to letter `left + 1`'s left-hand ink,
    both in the lower part of the x-height, sagging a little, as a cursive hand joins letters. Each half goes
    to the letter it leaves or reaches, so the true cut between them falls in the join's middle."""
    low, high = baseline - int(0.3 * style.size), baseline + int(0.05 * style.size)  # no descenders
    ys_a, xs_a = np.nonzero(labels[low:high] == left)
    ys_b, xs_b = np.nonzero(labels[low:high] == left + 1)
    if len(xs_a) == 0 or len(xs_b) == 0:
        return
    a = int(np.argmax(xs_a * 4 + ys_a))  # rightmost, then lowest
    b = int(np.argmin(xs_b * 4 - ys_b))  # leftmost, then lowest
    start = np.array([xs_a[a], ys_a[a] + low], float)
    end = np.array([xs_b[b], ys_b[b] + low], float)
    gap = end[0] - start[0]
    if gap < 2 or gap > 0.6 * style.size:
        return
    sag = np.array([0.0, gap * rng.uniform(0.1, 0.4)])
    t = np.linspace(0, 1, 24)[:, None]
    curve = (1 - t) ** 2 * start + 2 * t * (1 - t) * ((start + end) / 2 + sag) + t**2 * end
    width = max(1, round(style.pen or _stroke_width(labels, left)))
    stroke = np.zeros_like(canvas)
    points = np.rint(curve * 4).astype(np.int32)  # 2 fractional bits for cv2's subpixel drawing
    cv2.polylines(stroke, [points], False, 255, width, cv2.LINE_AA, shift=2)
    new = (stroke > INK_LABEL_THRESHOLD) & (labels == 0)
    second_half = np.arange(canvas.shape[1])[None, :] >= (start[0] + end[0]) / 2
    labels[new & ~second_half] = left
    labels[new & second_half] = left + 1
    np.maximum(canvas, stroke, out=canvas)


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
