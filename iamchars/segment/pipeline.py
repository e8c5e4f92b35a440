"""One line at a time: the line's ink statistics and slant, then every word's character boxes.

`segment_line` is pure (arrays in, arrays out); the stage runner reads images and tables around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iamchars.config import SegmentConfig
from iamchars.fonts import FontMetrics
from iamchars.segment.horizontal import seed_spans, word_layout
from iamchars.segment.refine import WordInk, refine_word
from iamchars.segment.slant import estimate_slant
from iamchars.segment.vertical import ink_threshold, line_ink_stats, vertical_band

METHODS = ("seed", "refined")


@dataclass(frozen=True)
class WordBox:
    word_id: str
    text: str
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class LineGeometry:
    """What the whole line's ink says, shared by all its words."""

    threshold: int
    mean: float
    std: float
    band: tuple[int, int]


def line_geometry(gray: np.ndarray, graylevel: int, cfg: SegmentConfig) -> LineGeometry:
    threshold = ink_threshold(gray, cfg.ink_threshold or graylevel)
    mean, std = line_ink_stats(gray, threshold)
    return LineGeometry(threshold, mean, std, vertical_band(mean, std, cfg.k_std, gray.shape[0]))


def clip_to_image(box: tuple[int, int, int, int], gray_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(gray_shape[1], x + w), min(gray_shape[0], y + h)
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def segment_line(
    gray: np.ndarray,
    origin: tuple[int, int],
    graylevel: int,
    words: Sequence[WordBox],
    cfg: SegmentConfig,
    font: FontMetrics,
) -> list[np.ndarray]:
    """Character boxes for every word of one line image.

    `origin` is the line's top-left corner in the form page; word boxes come and boxes go back in page
    coordinates. Returns one float array (n_chars, 5) per word: x, y, w, h, score."""
    if cfg.method not in METHODS:
        raise ValueError(f"segment.method must be one of {METHODS}, got {cfg.method!r}")
    geo = line_geometry(gray, graylevel, cfg)
    ox, oy = origin
    mask = gray < geo.threshold
    clipped = [clip_to_image((w.x - ox, w.y - oy, w.w, w.h), gray.shape) for w in words]
    if cfg.method == "seed":
        return [_seed_word(w.text, b, mask, geo, font, origin) for w, b in zip(words, clipped, strict=True)]
    pixels = [np.nonzero(mask[y : y + h, x : x + w]) for x, y, w, h in clipped]
    ys = np.concatenate([p[0] + b[1] for p, b in zip(pixels, clipped, strict=True)] or [np.zeros(0, np.intp)])
    xs = np.concatenate([p[1] + b[0] for p, b in zip(pixels, clipped, strict=True)] or [np.zeros(0, np.intp)])
    slant = (
        estimate_slant(ys.astype(np.float64), xs.astype(np.float64), cfg.slant_max_deg, cfg.slant_steps)
        if cfg.deslant
        else 0.0
    )
    guide = (geo.mean - cfg.guide_k * geo.std, geo.mean + cfg.guide_k * geo.std)
    results: list[np.ndarray] = []
    widths: list[float] = []
    for word, box, (wy, wx) in zip(words, clipped, pixels, strict=True):
        layout = word_layout(word.text, font)
        ink = WordInk.from_pixels(wy + box[1], wx + box[0], slant, geo.mean)
        boxes, scores, char_width = refine_word(
            ink,
            layout.cuts,
            layout.ink_share,
            guide,
            geo.band,
            cfg.snap_window,
            cfg.snap,
            cfg.min_ink_pixels,
            cfg.gap_reach,
            cfg.path_reach if cfg.cut_paths else 0.0,
        )
        if char_width == 0.0:  # no ink inside the box: the reference method is all there is to go on
            results.append(_seed_word(word.text, box, mask, geo, font, origin))
            widths.append(0.0)
            continue
        out = np.empty((len(word.text), 5))
        out[:, :4] = boxes
        out[:, 4] = scores
        out[:, 0] += ox
        out[:, 1] += oy
        results.append(out)
        widths.append(char_width)
    _apply_width_consistency(results, widths)
    return results


def _seed_word(
    text: str,
    box: tuple[int, int, int, int],
    mask: np.ndarray,
    geo: LineGeometry,
    font: FontMetrics,
    origin: tuple[int, int],
) -> np.ndarray:
    """The reference method for one word: font cells stretched over the box, the line band vertically."""
    top, bottom = geo.band
    spans = seed_spans(text, font, box[0], box[2])
    out = np.empty((len(text), 5))
    out[:, 0] = spans[:, 0] + origin[0]
    out[:, 1] = top + origin[1]
    out[:, 2] = spans[:, 1] - spans[:, 0]
    out[:, 3] = bottom - top
    out[:, 4] = _band_ink_score(mask, spans, top, bottom)
    return out


def _band_ink_score(mask: np.ndarray, spans: np.ndarray, top: int, bottom: int) -> np.ndarray:
    """For the reference method: how much of each band cell is ink, saturating at a typical stroke density."""
    scores = np.zeros(len(spans))
    for i, (x0, x1) in enumerate(spans):
        a, b = int(np.floor(x0)), max(int(np.ceil(x1)), int(np.floor(x0)) + 1)
        cell = mask[top:bottom, max(0, a) : max(0, b)]
        scores[i] = min(1.0, float(cell.mean()) / 0.15) if cell.size else 0.0
    return scores


def _apply_width_consistency(results: list[np.ndarray], widths: list[float]) -> None:
    """A word whose ink width per character is far from the line's typical one was probably mis-boxed or
    mis-transcribed: scale its scores down (in place)."""
    known = [w for w in widths if w > 0]
    if not known:
        return
    typical = float(np.median(known))
    for out, width in zip(results, widths, strict=True):
        if width > 0:
            out[:, 4] *= np.sqrt(np.exp(-abs(np.log(width / typical))))
