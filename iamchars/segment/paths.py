"""Curved cuts: each cut between two characters becomes a path from the top of the word to its bottom that
goes round the ink where it can and crosses it where it is thinnest.

A vertical cut gives the previous letter whatever of its neighbour leans over it (a t-bar, the tail of a g,
an overhanging f); a path can step around such strokes (docs/experiments/2026-11-26-box-rule-ceiling.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


def ink_image(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean image of the ink pixels given by (row, column) indices."""
    image = np.zeros((height, width), bool)
    image[rows, cols] = True
    return image


def cut_paths(
    inks: Sequence[np.ndarray],
    cuts: Sequence[np.ndarray],
    reaches: Sequence[int],
    bend_cost: float = 0.02,
    row_step: int = 1,
) -> list[np.ndarray]:
    """The cheapest top-to-bottom path near each inner cut of each word: per word, (n_cuts, rows) of columns.

    A path moves at most one column per row and stays within its word's `reach` columns of its cut; its cost
    is the ink it crosses plus `bend_cost` per column of distance from the cut at each row (so it stays
    straight where nothing is in the way). `row_step` > 1 solves on bands of that many rows (their ink
    added), which is that many times faster. Every path is its own problem: solving a line's words side by
    side pays numpy's per-row overhead once, not once per word, and gives exactly the paths found one word
    at a time."""
    if row_step > 1:
        solved = cut_paths([_bands(ink, row_step) for ink in inks], cuts, reaches, bend_cost * row_step)
        return [np.repeat(p, row_step, axis=1)[:, : ink.shape[0]] for p, ink in zip(solved, inks, strict=True)]
    sizes = [len(c) if ink.shape[0] else 0 for ink, c in zip(inks, cuts, strict=True)]
    total = sum(sizes)
    if total == 0:
        return [np.zeros((len(c), ink.shape[0]), np.int64) for ink, c in zip(inks, cuts, strict=True)]
    solving = [k for k, size in enumerate(sizes) if size]
    widest = max(reaches[k] for k in solving)
    offsets = np.arange(-widest, widest + 1)
    height = max(inks[k].shape[0] for k in solving)
    cost = np.zeros((height, total, len(offsets)))  # rows past a word's last are never read
    columns = np.zeros((total, len(offsets)), np.int64)
    last_row = np.zeros(total, np.int64)
    first = np.concatenate([[0], np.cumsum(sizes)])
    for k in solving:
        ink, mine = inks[k], slice(first[k], first[k + 1])
        rows, width = ink.shape
        columns[mine] = np.rint(cuts[k]).astype(np.int64)[:, None] + offsets[None, :]
        allowed = (columns[mine] >= 0) & (columns[mine] < width) & (np.abs(offsets) <= reaches[k])[None, :]
        word_cost = ink[:, np.clip(columns[mine], 0, width - 1)] + bend_cost * np.abs(offsets)[None, None, :]
        word_cost[:, ~allowed] = np.inf  # outside the word or the reach: impassable
        cost[:rows, mine] = word_cost
        last_row[mine] = rows - 1
    back = np.zeros((height, total, len(offsets)), np.int8)
    final = np.empty((total, len(offsets)))
    padded = np.full((total, len(offsets) + 2), np.inf)
    padded[:, 1:-1] = cost[0]
    ends = set(last_row.tolist())
    for r in range(height):
        if r:
            left, middle, right = padded[:, :-2], padded[:, 1:-1], padded[:, 2:]
            best = np.minimum(left, middle)
            step = back[r]
            step[left < middle] = -1  # predecessor at offset j-1 (left), j (0) or j+1 (right)
            from_right = right < best
            step[from_right] = 1
            np.copyto(best, right, where=from_right)
            padded[:, 1:-1] = best + cost[r]
        if r in ends:
            ending = last_row == r
            final[ending] = padded[ending, 1:-1]
    path = np.empty((total, height), np.int64)
    j = np.argmin(final, axis=1)
    index = np.arange(total)
    for r in range(height - 1, -1, -1):
        path[:, r] = j
        if r:
            j = np.where(last_row >= r, j + back[r, index, j], j)
    return [
        np.take_along_axis(columns[first[k] : first[k + 1]], path[first[k] : first[k + 1], : ink.shape[0]], axis=1)
        if sizes[k]
        else np.zeros((len(c), ink.shape[0]), np.int64)
        for k, (ink, c) in enumerate(zip(inks, cuts, strict=True))
    ]


def _bands(ink: np.ndarray, step: int) -> np.ndarray:
    """Ink per band of `step` rows (the last band may be shorter)."""
    bands = ink[::step].astype(np.float32)
    for k in range(1, step):
        below = ink[k::step]
        bands[: len(below)] += below
    return bands


def owners_by_paths(rows: np.ndarray, cols: np.ndarray, paths: np.ndarray, n_chars: int) -> np.ndarray:
    """Character index of each ink pixel: how many cut paths pass left of (or through) its column."""
    if len(paths) == 0:
        return np.zeros(len(rows), np.int64)
    return np.clip((cols[None, :] >= paths[:, rows]).sum(axis=0), 0, n_chars - 1)


def reclaim_fragments(ys: np.ndarray, xs: np.ndarray, owner: np.ndarray, n_chars: int, max_share: float) -> np.ndarray:
    """Owners after handing back slivers: a piece of a character's ink cut off from its main body (under
    `max_share` of its pixels, 8-connected) that touches a neighbour's ink goes to that neighbour. A cut that
    clips the start of the next letter's stroke leaves such a sliver, and the tight box of the letter's pixels
    would stretch to hold it; a piece that touches no neighbour (an i-dot, a second stroke) stays."""
    out = owner.copy()
    if n_chars < 2 or len(ys) == 0 or max_share <= 0:
        return out
    rows, cols = ys - ys.min() + 1, xs - xs.min() + 1  # a blank border, so every ring stays inside
    piece, sizes = _pieces_by_owner(rows, cols, owner, n_chars)
    counts = np.bincount(owner, minlength=n_chars)
    if len(sizes) - 1 == np.count_nonzero(counts):
        return out  # every character is one piece: nothing to hand back
    whose = np.zeros(len(sizes), np.int64)
    whose[piece] = owner  # pieces are labelled 1..K, each within one character
    largest = np.zeros(n_chars, np.int64)
    np.maximum.at(largest, whose[1:], sizes[1:])
    pieces = np.arange(1, len(sizes))
    slivers = pieces[(sizes[1:] < largest[whose[1:]]) & (sizes[1:] < max_share * counts[whose[1:]])]
    if not len(slivers):
        return out
    label = np.full((int(rows.max()) + 2, int(cols.max()) + 2), -1, np.int64)
    label[rows, cols] = owner
    for k in slivers:
        members = np.flatnonzero(piece == k)
        i = int(owner[members[0]])
        r, c = rows[members], cols[members]
        top, left = int(r.min()) - 1, int(c.min()) - 1
        mask = np.zeros((int(r.max()) - top + 2, int(c.max()) - left + 2), np.uint8)
        mask[r - top, c - left] = 1
        ring = cv2.dilate(mask, np.ones((3, 3), np.uint8)).astype(bool) & (mask == 0)
        around = label[top : top + mask.shape[0], left : left + mask.shape[1]][ring]
        before = np.count_nonzero(around == i - 1) if i > 0 else 0  # -1 is blank, not a character
        after = np.count_nonzero(around == i + 1)
        if before or after:
            out[members] = i - 1 if before >= after else i + 1
    return out


def _pieces_by_owner(
    rows: np.ndarray, cols: np.ndarray, owner: np.ndarray, n_chars: int
) -> tuple[np.ndarray, np.ndarray]:
    """8-connected pieces of each character's own ink (pixel rows and columns from 1), all in one labelling:
    each character's pixels are moved to a column range of their own (two blank columns apart), so no piece
    spans two characters. Returns each pixel's piece and the size of every piece."""
    left = np.full(n_chars, np.iinfo(np.int64).max)
    right = np.full(n_chars, -1)
    np.minimum.at(left, owner, cols)
    np.maximum.at(right, owner, cols)
    widths = np.where(right >= 0, right - left + 1, 0)
    start = np.concatenate([[1], 1 + np.cumsum(widths + 2)[:-1]])
    piece = _components(rows, start[owner] + cols - left[owner])
    return piece, np.bincount(piece)


def _components(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The 8-connected component (1..K) of each pixel; rows and columns count from 1, so that the image keeps
    a blank border."""
    image = np.zeros((int(rows.max()) + 2, int(cols.max()) + 2), np.uint8)
    image[rows, cols] = 1
    _, labels = cv2.connectedComponents(image, connectivity=8)
    return labels[rows, cols].astype(np.int64)


@dataclass(frozen=True)
class DotRule:
    """Where an i's or j's dot may be: writers put it late and often over the next letter, where a cut gives
    it to that letter (whose box then climbs to hold it) and leaves the i without it."""

    dotted: np.ndarray
    """Which characters of the word carry a dot (bool per character)."""
    above: float
    """A dot's lowest row lies above this row (the line's ink mean minus one standard deviation)."""
    reach: float
    """How far (in the word's mean character widths) a dot may lie from the stem of the letter it goes to."""
    max_share: float = 0.5
    """A dot holds fewer pixels than this share of the word's mean pixels per character."""


def attach_dots(
    ys: np.ndarray, xs: np.ndarray, xd: np.ndarray, owner: np.ndarray, rule: DotRule, char_width: float
) -> np.ndarray:
    """Owners after giving each small mark above the line's middle that touches no other ink (8-connected) to
    the nearest dotted letter within reach, measured from the median deslanted column of its ink."""
    out = owner.copy()
    dotted = np.flatnonzero(rule.dotted)
    if len(dotted) == 0 or len(rule.dotted) < 2 or len(ys) == 0:
        return out
    stems = np.array([np.median(xd[owner == i]) if np.any(owner == i) else np.nan for i in dotted])
    mark = _components(ys - ys.min() + 1, xs - xs.min() + 1)
    sizes = np.bincount(mark)
    lowest = np.full(len(sizes), -np.inf)
    np.maximum.at(lowest, mark, ys.astype(np.float64))
    small = sizes < rule.max_share * len(ys) / len(rule.dotted)
    marks = np.flatnonzero(small & (lowest < rule.above))
    for k in marks[marks > 0]:  # no pixel is labelled 0
        members = mark == k
        distance = np.abs(stems - xd[members].mean())  # nan for a dotted letter with no ink: never nearest
        if np.nanmin(distance, initial=np.inf) <= rule.reach * char_width:
            out[members] = dotted[int(np.nanargmin(distance))]
    return out
