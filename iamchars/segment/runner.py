"""Segmenting the words of one form: the file-reading edge around a method's per-line function."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from iamchars.config import SegmentConfig
from iamchars.fileio import read_gray
from iamchars.fonts import FontMetrics, load_font
from iamchars.iam.corpus import MIN_PX_PER_CHAR, NARROW_LINE, image_path
from iamchars.iam.rejects import Reject, reject_row
from iamchars.segment.align.alignment import AlignmentWord
from iamchars.segment.evaluate import box_iou
from iamchars.segment.pipeline import (
    Cuts,
    LineBoxes,
    LineGeometry,
    LineInput,
    WordBox,
    clip_to_image,
    line_alignment_words,
    line_geometry,
    line_threshold,
)
from iamchars.segment.selfcheck import word_check_boxes, written_apart
from iamchars.segment.words import find_word_boxes

BOX_COLUMNS = ["word_id", "char_index", "char", "x", "y", "w", "h", "score", "check_iou", "from_pieces"]
FOUND_COLUMNS = ["word_id", "line_id", "x", "y", "w", "h", "text"]
NO_WORDS = "no word boundaries found: the line holds no ink, or too little for its words"


@dataclass
class LineImages:
    images: dict[str, np.ndarray] = field(default_factory=dict)
    """Line images by line id."""
    rejects: list[Reject] = field(default_factory=list)
    composed: set[str] = field(default_factory=set)
    """Lines whose image was missing or broken and was composed from their words' own images."""


LineMethod = Callable[[LineInput, SegmentConfig, FontMetrics, Cuts | None], LineBoxes]
"""A segmentation method's per-line function (`segment.methods.Method.line`)."""


@dataclass
class FormSegmentation:
    boxes: pd.DataFrame
    lines: LineImages
    """The line images, kept for cropping so that each image is decoded once."""
    geometry: dict[str, LineGeometry] = field(default_factory=dict)
    """Each segmented line's geometry (ink threshold, mean row, spread, band), computed once, by line id."""


def compose_line(size: tuple[int, int], pieces: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """A line image (height, width) made of word images pasted at their (x, y) offsets on blank paper of their
    typical grey: what the segmentation needs when only IAM's words.tgz is at hand. The vertical statistics
    then come from the ink of the line's other words."""
    paper = int(np.median(np.concatenate([img.ravel() for _, _, img in pieces]))) if pieces else 255
    canvas = np.full(size, paper, np.uint8)
    for x, y, img in pieces:
        h, w = min(img.shape[0], size[0] - y), min(img.shape[1], size[1] - x)
        if h > 0 and w > 0:
            np.minimum(canvas[y : y + h, x : x + w], img[:h, :w], out=canvas[y : y + h, x : x + w])
    return canvas


def _reject(path: Path, item: str, reason: str, stage: str = "images") -> Reject:
    return reject_row(stage, str(path), None, item, reason)


def _read_sized(path: Path, w: int, h: int, what: str) -> np.ndarray:
    gray = read_gray(path)
    if gray.shape != (h, w):
        raise ValueError(f"{path}: {what} image is {gray.shape[1]}x{gray.shape[0]}, box says {w}x{h}")
    return gray


def load_line_images(root: Path, lines: pd.DataFrame, words: pd.DataFrame) -> LineImages:
    """Decode the line images of the given words. A missing or broken one is composed from its words' own
    images where they are readable (the line is then listed in `composed`), and rejected otherwise."""
    out = LineImages()
    wanted = set(words["line_id"])
    by_line = dict(tuple(words.groupby("line_id"))) if len(words) else {}
    columns = [lines[c].tolist() for c in ("line_id", "x", "y", "w", "h")]
    for line_id, lx, ly, lw, lh in zip(*columns, strict=True):
        if line_id not in wanted:
            continue
        path = image_path(root, "lines", line_id)
        try:
            out.images[line_id] = _read_sized(path, lw, lh, "line")
            continue
        except ValueError as exc:
            problem = str(exc).split(": ", 1)[-1]
        pieces = []
        for wid, x, y, w, h in zip(
            *(by_line[line_id][c].tolist() for c in ("word_id", "x", "y", "w", "h")), strict=True
        ):
            try:
                pieces.append((x - lx, y - ly, _read_sized(image_path(root, "words", wid), w, h, "word")))
            except ValueError:
                continue
        if pieces:
            out.images[line_id] = compose_line((lh, lw), pieces)
            out.composed.add(line_id)
            if path.exists():  # a broken line image is still worth reporting; a missing lines/ folder is not
                out.rejects.append(_reject(path, line_id, f"{problem}; its words' own images were used", "replaced"))
        else:
            out.rejects.append(_reject(path, line_id, problem))
    return out


def readable_lines(
    lines: pd.DataFrame, images: Mapping[str, np.ndarray], by_line: Mapping[str, list[WordBox]]
) -> Iterator[LineInput]:
    """The lines (in table order) that have an image and words: what every per-line pass walks over."""
    for line_id, lx, ly, graylevel in zip(
        *(lines[c].tolist() for c in ("line_id", "x", "y", "graylevel")), strict=True
    ):
        gray = images.get(line_id)
        if gray is not None and line_id in by_line:
            yield LineInput(line_id, gray, (int(lx), int(ly)), int(graylevel), by_line[line_id])


def words_by_line(words: pd.DataFrame) -> dict[str, list[WordBox]]:
    by_line: dict[str, list[WordBox]] = {}
    columns = [words[c].tolist() for c in ("line_id", "word_id", "text", "x", "y", "w", "h")]
    for lid, wid, text, x, y, w, h in zip(*columns, strict=True):
        by_line.setdefault(lid, []).append(WordBox(wid, text, int(x), int(y), int(w), int(h)))
    return by_line


def form_alignment_words(
    root: Path, lines: pd.DataFrame, words: pd.DataFrame, cfg: SegmentConfig
) -> list[AlignmentWord]:
    """The `aligned` method's first pass over one form: each word's strip and refined cuts."""
    font = load_font(cfg.font, cfg.font_size)
    by_line = words_by_line(words)
    writers = dict(zip(words["word_id"].tolist(), words["writer_id"].astype(str).tolist(), strict=True))
    images = load_line_images(root, lines, words).images
    out: list[AlignmentWord] = []
    for line in readable_lines(lines, images, by_line):
        writer = writers[line.words[0].word_id]
        out += line_alignment_words(line, writer, cfg, font)
    return out


def segment_form(
    root: Path,
    lines: pd.DataFrame,
    words: pd.DataFrame,
    cfg: SegmentConfig,
    line_method: LineMethod,
    cuts: Cuts | None = None,
    pieces: bool = False,
) -> FormSegmentation:
    """Boxes for every word of the given lines by `line_method`, each character with its self-check IoU (NaN
    unless its word is separable, see `selfcheck`); a line whose image cannot be read is rejected, not fatal.
    `cuts`: a corpus pass's cuts by word id, for the methods that have one. With `pieces`, a separable word
    whose letters are written apart (`selfcheck.written_apart`) takes its pieces as its boxes (self-check IoU
    1, `from_pieces` true)."""
    font = load_font(cfg.font, cfg.font_size)
    by_line = words_by_line(words)
    loaded = load_line_images(root, lines, words)
    rows: list[tuple] = []
    geometry: dict[str, LineGeometry] = {}
    for line in readable_lines(lines, loaded.images, by_line):
        result = line_method(line, cfg, font, cuts)
        geometry[line.line_id] = result.geometry
        checks = line_check_boxes(line, result.geometry.threshold, font)
        for word, out, check in zip(line.words, result.words, checks, strict=True):
            exact = False
            if pieces and check is not None and written_apart(check):
                out, exact = np.column_stack([check, out[:, 4]]), True
            iou = box_iou(out[:, :4], check) if check is not None else np.full(len(out), np.nan)
            values = out.tolist()
            rows.extend((word.word_id, i, ch, *values[i], iou[i], exact) for i, ch in enumerate(word.text))
    return FormSegmentation(boxes_table(rows), loaded, geometry)


def form_geometry(images: Mapping[str, np.ndarray], lines: pd.DataFrame, cfg: SegmentConfig) -> dict[str, LineGeometry]:
    """The geometry of each loaded line image, for boxes that were not segmented here (true boxes)."""
    graylevels = dict(zip(lines["line_id"].tolist(), lines["graylevel"].tolist(), strict=True))
    return {line_id: line_geometry(gray, int(graylevels[line_id]), cfg) for line_id, gray in images.items()}


def line_check_boxes(line: LineInput, threshold: int, font: FontMetrics) -> list[np.ndarray | None]:
    """Self-check boxes (page coordinates) of the separable words of one line, at the line's ink threshold;
    None for the others."""
    gray, origin = line.gray, line.origin
    mask = gray < threshold
    out: list[np.ndarray | None] = []
    for word in line.words:
        starts, ends = font.spans(word.text)
        found = word_check_boxes(
            mask, clip_to_image((word.x - origin[0], word.y - origin[1], word.w, word.h), gray.shape), ends - starts
        )
        if found is not None:
            found[:, 0] += origin[0]
            found[:, 1] += origin[1]
        out.append(found)
    return out


def check_boxes_table(root: Path, lines: pd.DataFrame, words: pd.DataFrame, cfg: SegmentConfig) -> pd.DataFrame:
    """Self-check boxes of every separable word of the given lines: word_id, char_index, x, y, w, h."""
    font = load_font(cfg.font, cfg.font_size)
    by_line = words_by_line(words)
    images = load_line_images(root, lines, words).images
    rows: list[tuple] = []
    for line in readable_lines(lines, images, by_line):
        checks = line_check_boxes(line, line_threshold(line.gray, line.graylevel, cfg), font)
        for word, check in zip(line.words, checks, strict=True):
            if check is not None:
                rows.extend((word.word_id, i, *map(int, check[i])) for i in range(len(check)))
    return pd.DataFrame(rows, columns=["word_id", "char_index", "x", "y", "w", "h"])


def boxes_table(rows: list[tuple]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=BOX_COLUMNS)
    for col in ("x", "y", "w", "h"):
        table[col] = np.rint(table[col].astype(np.float64)).astype(np.int32)
    table["score"] = table["score"].astype(np.float64).clip(0, 1).round(4)
    table["check_iou"] = table["check_iou"].astype(np.float64).round(4)
    table["from_pieces"] = table["from_pieces"].astype(bool)
    return table


@dataclass
class FoundWords:
    words: pd.DataFrame
    """FOUND_COLUMNS: one row per token of each line's transcription, boxes in page pixels."""
    rejects: list[Reject] = field(default_factory=list)


def find_form_words(root: Path, lines: pd.DataFrame, cfg: SegmentConfig) -> FoundWords:
    """Word boxes of lines that have a transcription but no word rows, found in each line's ink
    (`segment.words`). A word gets IAM's id: its line's id and its index in the transcription, two digits.
    A line whose image cannot be read, that is too narrow for its transcription, or whose ink holds no place
    for its words, is rejected."""
    font = load_font(cfg.font, cfg.font_size)
    rows: list[tuple] = []
    out = FoundWords(pd.DataFrame(columns=FOUND_COLUMNS))
    columns = [lines[c].tolist() for c in ("line_id", "x", "y", "w", "h", "graylevel", "transcription")]
    for line_id, lx, ly, lw, lh, graylevel, transcription in zip(*columns, strict=True):
        path = image_path(root, "lines", line_id)
        texts = [t for t in str(transcription).split("|") if t]
        if MIN_PX_PER_CHAR * sum(map(len, texts)) > lw:  # checked first: the finder's work grows with the text
            out.rejects.append(_reject(path, line_id, NARROW_LINE, "words"))
            continue
        try:
            gray = _read_sized(path, lw, lh, "line")
        except ValueError as exc:
            out.rejects.append(_reject(path, line_id, str(exc).split(": ", 1)[-1]))
            continue
        threshold = line_threshold(gray, int(graylevel), cfg)
        boxes = find_word_boxes(gray, threshold, texts, font, cfg.slant_max_deg, cfg.slant_steps)
        if boxes is None:
            out.rejects.append(_reject(path, line_id, NO_WORDS, "words"))
            continue
        for k, (text, (x, y, w, h)) in enumerate(zip(texts, boxes.tolist(), strict=True)):
            rows.append((f"{line_id}-{k:02d}", line_id, lx + x, ly + y, w, h, text))
    out.words = pd.DataFrame(rows, columns=FOUND_COLUMNS)
    return out
