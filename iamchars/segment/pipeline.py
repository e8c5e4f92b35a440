"""One line at a time: the line's ink statistics and slant, then every word's character boxes.

The per-line functions of the segmentation methods (`seed_line`, `cut_line`) are pure (arrays in, arrays
out); `segment.methods` names them, and the stage runner reads images and tables around them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from iamchars.config import SegmentConfig
from iamchars.fonts import FontMetrics
from iamchars.segment.align.alignment import AlignmentWord, strip_image
from iamchars.segment.horizontal import WordLayout, seed_spans, word_layout
from iamchars.segment.paths import DotRule
from iamchars.segment.refine import (
    WordInk,
    WordStrip,
    boxes_from_cuts,
    refined_cuts,
    strip_cut_paths,
    word_body,
    word_end,
)
from iamchars.segment.slant import estimate_slant
from iamchars.segment.vertical import ink_threshold, line_ink_stats, vertical_band

Cuts = Mapping[str, np.ndarray]
"""A corpus pass's cuts (deslanted ink columns) of each word, by word id."""


@dataclass(frozen=True)
class WordBox:
    word_id: str
    text: str
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class LineInput:
    """One line as every per-line function takes it."""

    line_id: str
    gray: np.ndarray
    origin: tuple[int, int]
    """The line's top-left corner in the form page: word boxes come, and boxes go back, in page pixels."""
    graylevel: int
    """The grey level the input gives the line (IAM's lines.txt; 0 where unknown)."""
    words: Sequence[WordBox]


@dataclass(frozen=True)
class LineGeometry:
    """What the whole line's ink says, shared by all its words."""

    threshold: int
    mean: float
    std: float
    band: tuple[int, int]


@dataclass(frozen=True)
class LineBoxes:
    """A line's segmentation: each word's character boxes and the geometry they were cut with."""

    words: list[np.ndarray]
    """One float array (n_chars, 5) per word: x, y, w, h (page pixels), score."""
    geometry: LineGeometry


def line_threshold(gray: np.ndarray, graylevel: int, cfg: SegmentConfig) -> int:
    """The line's ink threshold: `segment.ink_threshold` where it is set, else the grey level the input gives
    the line (IAM's lines.txt; 0 where unknown, and Otsu's threshold then)."""
    return ink_threshold(gray, cfg.ink_threshold or graylevel)


def line_geometry(gray: np.ndarray, graylevel: int, cfg: SegmentConfig) -> LineGeometry:
    threshold = line_threshold(gray, graylevel, cfg)
    mean, std = line_ink_stats(gray, threshold)
    return LineGeometry(threshold, mean, std, vertical_band(mean, std, cfg.k_std, gray.shape[0]))


def clip_to_image(box: tuple[int, int, int, int], gray_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(gray_shape[1], x + w), min(gray_shape[0], y + h)
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


@dataclass(frozen=True)
class PreparedWord:
    """One word of a line, ready for cuts: its clipped box (line coordinates), font layout and ink strip."""

    word: WordBox
    box: tuple[int, int, int, int]
    layout: WordLayout
    strip: WordStrip | None
    """None when the word has too little ink inside the line's guide rows."""


def prepare_line(
    line: LineInput, cfg: SegmentConfig, font: FontMetrics
) -> tuple[LineGeometry, np.ndarray, list[PreparedWord]]:
    """The line's geometry and ink mask, and each word's deslanted ink (slant estimated on the whole line)."""
    gray, words = line.gray, line.words
    geo = line_geometry(gray, line.graylevel, cfg)
    ox, oy = line.origin
    mask = gray < geo.threshold
    clipped = [clip_to_image((w.x - ox, w.y - oy, w.w, w.h), gray.shape) for w in words]
    pixels = [np.nonzero(mask[y : y + h, x : x + w]) for x, y, w, h in clipped]
    ys = np.concatenate([p[0] + b[1] for p, b in zip(pixels, clipped, strict=True)] or [np.zeros(0, np.intp)])
    xs = np.concatenate([p[1] + b[0] for p, b in zip(pixels, clipped, strict=True)] or [np.zeros(0, np.intp)])
    slant = (
        estimate_slant(ys.astype(np.float64), xs.astype(np.float64), cfg.slant_max_deg, cfg.slant_steps)
        if cfg.deslant
        else 0.0
    )
    guide = (geo.mean - cfg.guide_k * geo.std, geo.mean + cfg.guide_k * geo.std)
    prepared = []
    for word, box, (wy, wx) in zip(words, clipped, pixels, strict=True):
        ink = WordInk.from_pixels(wy + box[1], wx + box[0], slant, geo.mean)
        prepared.append(
            PreparedWord(word, box, word_layout(word.text, font), WordStrip.from_ink(ink, guide, cfg.min_ink_pixels))
        )
    return geo, mask, without_stray_ink(prepared, cfg, geo.mean)


def without_stray_ink(prepared: list[PreparedWord], cfg: SegmentConfig, line_mean: float) -> list[PreparedWord]:
    """Each word's strip cut down to its own ink (`word_body`), then a full stop or comma after its last
    letter left out (`word_end`, when the transcription ends in a letter or digit), both measured against the
    whole line's width per character. Words of punctuation alone (a quote's two strokes) are left as they are."""
    char_width = line_char_width(prepared)
    if char_width is None:
        return prepared
    out = []
    for p in prepared:
        if p.strip is not None and any(ch.isalnum() for ch in p.word.text):
            n = len(p.word.text)
            strip = p.strip
            if cfg.stray_gap > 0:
                strip = strip.within(*word_body(strip.xd, n, cfg.stray_gap, cfg.stray_share, char_width))
            if cfg.stop_share > 0 and p.word.text[-1].isalnum():
                hi = word_end(strip.xd, strip.ys, n, cfg.stop_share, char_width, line_mean)
                strip = strip.within(strip.origin, hi)
            p = replace(p, strip=strip)
        out.append(p)
    return out


def word_cuts(prepared: PreparedWord, cfg: SegmentConfig) -> np.ndarray:
    """The refined method's cuts of a word with ink (deslanted ink columns)."""
    assert prepared.strip is not None
    return refined_cuts(prepared.strip, prepared.layout.cuts, cfg.snap_window, cfg.snap, cfg.gap_reach)


def line_char_width(prepared: Sequence[PreparedWord]) -> float | None:
    """The line's mean deslanted ink width per character: how wide this writer writes, for the strips."""
    sizes = [(len(p.word.text), p.strip.length) for p in prepared if p.strip is not None]
    chars = sum(n for n, _ in sizes)
    return sum(length for _, length in sizes) / chars if chars else None


def line_alignment_words(line: LineInput, writer_id: str, cfg: SegmentConfig, font: FontMetrics) -> list[AlignmentWord]:
    """What the aligner learns from and re-aligns: every word of the line that has ink."""
    geo, _, prepared = prepare_line(line, cfg, font)
    char_width = line_char_width(prepared)
    out = []
    for p in prepared:
        if p.strip is None:
            continue
        strip, scale = strip_image(p.strip, geo.mean, geo.std, char_width)
        cuts = word_cuts(p, cfg)
        out.append(AlignmentWord(p.word.word_id, writer_id, p.word.text, strip, scale, cuts, p.strip.length))
    return out


def seed_line(line: LineInput, cfg: SegmentConfig, font: FontMetrics, cuts: Cuts | None = None) -> LineBoxes:
    """The reference method: each word's font cells stretched over its box, the line's band vertically.
    `cuts` is not used."""
    gray, origin, words = line.gray, line.origin, line.words
    geo = line_geometry(gray, line.graylevel, cfg)
    mask = gray < geo.threshold
    clipped = [clip_to_image((w.x - origin[0], w.y - origin[1], w.w, w.h), gray.shape) for w in words]
    return LineBoxes([_seed_word(w.text, b, mask, geo, font, origin) for w, b in zip(words, clipped, strict=True)], geo)


def cut_line(line: LineInput, cfg: SegmentConfig, font: FontMetrics, cuts: Cuts | None = None) -> LineBoxes:
    """Character boxes of every word of one line image, between cuts in each word's deslanted ink: those of
    `cuts` (a corpus pass's, by word id) where given, else the refined method's own."""
    origin = line.origin
    geo, mask, prepared = prepare_line(line, cfg, font)
    path_reach = cfg.path_reach if cfg.cut_paths else 0.0
    strips = {k: p.strip for k, p in enumerate(prepared) if p.strip is not None}
    chosen: dict[int, np.ndarray] = {}
    for k in strips:
        found = cuts.get(prepared[k].word.word_id) if cuts is not None else None
        chosen[k] = word_cuts(prepared[k], cfg) if found is None else found
    paths: dict[int, np.ndarray] = {}
    if path_reach > 0:  # the whole line's cut paths at once
        solved = strip_cut_paths(list(strips.values()), list(chosen.values()), path_reach, cfg.path_bend)
        paths.update(zip(strips, solved, strict=True))
    results: list[np.ndarray] = []
    widths: list[float] = []
    for k, p in enumerate(prepared):
        if p.strip is None:  # no ink inside the box: the reference method is all there is to go on
            results.append(_seed_word(p.word.text, p.box, mask, geo, font, origin))
            widths.append(0.0)
            continue
        boxes, scores = boxes_from_cuts(
            p.strip,
            chosen[k],
            p.layout.ink_share,
            geo.band,
            cfg.min_ink_pixels,
            path_reach,
            cfg.path_bend,
            cfg.fragment_share,
            dot_rule(p.word.text, geo, cfg.dot_reach),
            paths.get(k),
        )
        out = np.empty((len(p.word.text), 5))
        out[:, :4] = boxes
        out[:, 4] = scores
        out[:, 0] += origin[0]
        out[:, 1] += origin[1]
        results.append(out)
        widths.append(p.strip.length / len(p.word.text))
    _apply_width_consistency(results, widths)
    return LineBoxes(results, geo)


def dot_rule(text: str, geo: LineGeometry, reach: float) -> DotRule | None:
    """Where the word's i- and j-dots may go: above the line's ink mean minus one standard deviation (the
    x-height's top, roughly), within `reach` character widths of their letter; None when off."""
    return DotRule(np.array([ch in "ij" for ch in text]), geo.mean - geo.std, reach) if reach > 0 else None


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
