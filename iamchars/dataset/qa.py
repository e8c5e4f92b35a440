"""QA pictures of a built dataset: boxes over lines (coloured by confidence), a contact sheet per class,
and the lowest-confidence samples. Pure: tables and arrays in, images out."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from iamchars.dataset.classes import ClassSet
from iamchars.viz.overlay import caption, color_ramp_legend, contact_sheet, draw_boxes, stack_rows, titled


def confidence_colors(scores: np.ndarray) -> np.ndarray:
    """BGR from red (confidence 0) through yellow to green (confidence 1)."""
    s = np.clip(scores, 0, 1)
    red = np.where(s < 0.5, 255, (1 - s) * 2 * 255)
    green = np.where(s < 0.5, s * 2 * 255, 200)
    return np.stack([np.zeros_like(s), green, red], axis=1).astype(np.uint8)


FOUND_WORD_COLOR = (255, 90, 0)
"""BGR blue: the box of a word found in its line's ink (the input boxed only the line)."""


def line_overlay(gray: np.ndarray, origin: tuple[int, int], chars: pd.DataFrame, title: str) -> np.ndarray:
    """The line with its characters' boxes coloured by confidence and, around them, the boxes of the words that
    were found in the line's ink (blue, two pixels outside the word)."""
    boxes = chars[["x", "y", "w", "h"]].to_numpy() - [origin[0], origin[1], 0, 0]
    image = draw_boxes(gray, boxes, colors=confidence_colors(chars["confidence"].to_numpy()))
    found = chars[chars["word_box"] == "found"].drop_duplicates("word_id")
    for x, y, w, h in found[["word_x", "word_y", "word_w", "word_h"]].to_numpy() - [origin[0], origin[1], 0, 0]:
        cv2.rectangle(image, (int(x) - 2, int(y) - 2), (int(x + w) + 1, int(y + h) + 1), FOUND_WORD_COLOR, 2)
    return caption(image, title)


def overlays(
    images: dict[str, np.ndarray], lines: pd.DataFrame, manifest: pd.DataFrame, width: int = 1800
) -> np.ndarray:
    panels = []
    for row in lines.itertuples(index=False):
        gray = images.get(str(row.line_id))
        if gray is None:
            continue
        chars = manifest[manifest["line_id"] == row.line_id]
        mean = chars["confidence"].mean() if len(chars) else float("nan")
        panel = line_overlay(
            gray,
            (int(row.x), int(row.y)),
            chars,
            f"{row.line_id} ({row.split}, mean confidence {mean:.2f}): {row.text}",
        )
        if panel.shape[1] > width:
            factor = width / panel.shape[1]
            panel = cv2.resize(panel, (width, max(1, int(panel.shape[0] * factor))), interpolation=cv2.INTER_AREA)
        panels.append(panel)
    legend = color_ramp_legend(
        confidence_colors(np.linspace(0, 1, 11)), "box colour = confidence (probability the box is right)", ("0", "1")
    )
    title = "Character boxes over the first line of sampled forms"
    if (manifest["word_box"] == "found").any():
        title += "; blue: word boxes found in the line's ink"
    return titled(stack_rows(panels), title, legend)


def class_sheets(manifest: pd.DataFrame, crops: np.ndarray, classes: ClassSet, per_class: int) -> dict[str, np.ndarray]:
    """One contact sheet per class: samples spread evenly over the class (not just its first writer)."""
    sheets = {}
    for label in range(len(classes.classes)):
        idx = np.flatnonzero(manifest["label"].to_numpy() == label)
        if len(idx) == 0:
            continue
        pick = idx[np.linspace(0, len(idx) - 1, min(per_class, len(idx))).round().astype(int)]
        title = (
            f"class {'/'.join(classes.classes[label])!r} (label {label}): {len(pick)} of {len(idx):,} crops, "
            "spread evenly over the class in manifest order"
        )
        sheets[classes.folder(label)] = titled(contact_sheet([crops[i] for i in pick], columns=16), title)
    return sheets


def overview(manifest: pd.DataFrame, crops: np.ndarray, classes: ClassSet, per_row: int = 20) -> np.ndarray:
    """A row of samples per class, headed by the class's character, in label order."""
    rows = []
    size = crops.shape[1] if len(crops) else 32
    for label in range(len(classes.classes)):
        idx = np.flatnonzero(manifest["label"].to_numpy() == label)
        tiles = (
            [crops[i] for i in idx[np.linspace(0, len(idx) - 1, min(per_row, len(idx))).round().astype(int)]]
            if len(idx)
            else []
        )
        head = np.zeros((size, size), np.uint8)
        cv2.putText(
            head,
            classes.classes[label][0],
            (size // 4, 3 * size // 4),
            cv2.FONT_HERSHEY_SIMPLEX,
            size / 40,
            255,
            1,
            cv2.LINE_AA,
        )
        tiles = [head, *tiles] + [np.full((size, size), 40, np.uint8)] * (per_row - len(tiles))
        rows.append(contact_sheet(tiles, columns=per_row + 1))
    return np.vstack(rows) if rows else np.zeros((8, 8), np.uint8)


def lowest_confidence(manifest: pd.DataFrame, crops: np.ndarray, n: int = 96) -> np.ndarray:
    """The n least confident samples, each enlarged 2x with its character and confidence beneath: where a
    reviewer starts."""
    order = np.argsort(manifest["confidence"].to_numpy(), kind="stable")[:n]
    tiles = []
    for i in order:
        tile = cv2.resize(crops[i], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        label = np.zeros((14, tile.shape[1]), np.uint8)
        text = f"{manifest['char'].iat[i]} {manifest['confidence'].iat[i]:.2f}"
        cv2.putText(label, text, (1, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, 255, 1, cv2.LINE_AA)
        tiles.append(np.vstack([tile, label]))
    title = f"The {len(tiles)} least confident characters (2x), each with its character and confidence"
    return titled(contact_sheet(tiles, columns=12), title)


def reliability_picture(bins: pd.DataFrame, subtitle: str, size: int = 360, margin: int = 44) -> np.ndarray:
    """A reliability diagram: for each confidence bin (`reliability.calibration_bins`), a bar up to the share
    of its characters that are right, its mean confidence marked on it, and the diagonal where the two agree;
    each bar's count beneath it. Bars below the diagonal are over-confident."""
    side = size + 2 * margin
    image = np.full((side, side, 3), 255, np.uint8)

    def at(px: float, py: float) -> tuple[int, int]:
        return round(margin + px * size), round(margin + (1 - py) * size)

    for k in range(11):
        v = k / 10
        cv2.line(image, at(v, 0), at(v, 1), (235, 235, 235), 1)
        cv2.line(image, at(0, v), at(1, v), (235, 235, 235), 1)
        if k % 2 == 0:
            cv2.putText(image, f"{v:.1f}", (at(v, 0)[0] - 9, at(0, 0)[1] + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.35, 0, 1)
            cv2.putText(image, f"{v:.1f}", (4, at(0, v)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, 0, 1)
    for row in bins.itertuples(index=False):
        color = tuple(int(c) for c in confidence_colors(np.array([row.mean_confidence]))[0])
        cv2.rectangle(image, at(row.low + 0.01, 0), at(row.high - 0.01, row.share_right), color, -1)
        cv2.rectangle(image, at(row.low + 0.01, 0), at(row.high - 0.01, row.share_right), (90, 90, 90), 1)
        x0, x1 = at(row.low + 0.01, 0)[0], at(row.high - 0.01, 0)[0]
        y = at(0, row.mean_confidence)[1]
        cv2.line(image, (x0, y), (x1, y), (0, 0, 0), 2)
        count = f"{row.characters:,}" if row.characters < 10_000 else f"{row.characters // 1000}k"
        cv2.putText(image, count, (x0, at(0, 0)[1] + 28), cv2.FONT_HERSHEY_SIMPLEX, 0.28, (80, 80, 80), 1)
    cv2.line(image, at(0, 0), at(1, 1), (120, 120, 120), 1, cv2.LINE_AA)
    cv2.rectangle(image, at(0, 0), at(1, 1), (0, 0, 0), 1)
    cv2.putText(image, "confidence", (side // 2 - 30, side - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1, cv2.LINE_AA)
    cv2.putText(image, "share right", (4, margin - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1, cv2.LINE_AA)
    title = "Predicted against observed: bars = share right per bin, black marks = mean confidence"
    return titled(stack_rows([caption(image, subtitle)]), title)
