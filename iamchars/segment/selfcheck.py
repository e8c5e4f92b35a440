"""A self-check that needs no ground truth: words whose letters are each one piece of ink.

When a word's ink falls into exactly as many pieces as it has characters (after stacking dots, accents and
the strokes of two-stroke letters onto the piece below or above them), and the pieces, read left to right,
have plausible widths for their letters, each piece *is* its character: its tight box is the exact box,
on any scan. Comparing a method's boxes with those on the words that qualify tells a user how good the
boxes are on their own data.
"""

from __future__ import annotations

import cv2
import numpy as np

NOISE_PIXELS = 6
"""Pieces smaller than this are specks of noise, not letters (an IAM full stop has dozens of pixels)."""
STACK_OVERLAP = 0.6
"""Two pieces whose horizontal extents overlap by this share of the narrower one belong to one letter."""
WIDTH_RATIO = 3.0
"""A piece may be at most this many times wider or narrower than its letter's expected width."""
APART = 0.3
"""Letters written apart: every blank between two consecutive pieces is at least this share of their mean
width. Their pieces are then the letters' boxes (`written_apart`)."""


def _pieces(mask: np.ndarray) -> list[list[int]]:
    """Connected pieces of the ink as [x0, y0, x1, y1, area], specks dropped, stacked pieces merged."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    pieces = [[int(x), int(y), int(x + w), int(y + h), int(a)] for x, y, w, h, a in stats[1:count] if a >= NOISE_PIXELS]
    pieces.sort(key=lambda p: (p[0] + p[2]) / 2)
    merged = True
    while merged and len(pieces) > 1:
        merged = False
        for i in range(len(pieces) - 1):
            a, b = pieces[i], pieces[i + 1]
            overlap = min(a[2], b[2]) - max(a[0], b[0])
            if overlap >= STACK_OVERLAP * min(a[2] - a[0], b[2] - b[0]):
                pieces[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]), a[4] + b[4]]
                del pieces[i + 1]
                merged = True
                break
    return pieces


def separable_boxes(mask: np.ndarray, expected_widths: np.ndarray) -> np.ndarray | None:
    """Exact (x, y, w, h) boxes in mask coordinates when every character is one piece of ink, else None.

    `expected_widths` are the characters' relative widths (any scale, e.g. from the alignment font)."""
    n = len(expected_widths)
    if n == 0 or not mask.any():
        return None
    pieces = _pieces(mask)
    if len(pieces) != n:
        return None
    widths = np.array([p[2] - p[0] for p in pieces], float)
    expected = np.asarray(expected_widths, float)
    expected = expected * widths.sum() / max(expected.sum(), 1e-9)
    ratio = widths / np.maximum(expected, 1e-9)
    if (ratio > WIDTH_RATIO).any() or (ratio < 1 / WIDTH_RATIO).any():
        return None
    return np.array([[p[0], p[1], p[2] - p[0], p[3] - p[1]] for p in pieces], float)


def written_apart(boxes: np.ndarray, apart: float = APART) -> bool:
    """Whether a separable word's pieces (`separable_boxes`, left to right) stand apart, as in print written
    letter by letter: then which piece is which letter is beyond doubt and the pieces are the exact boxes.
    Touching or overlapping pieces (joined writing that happens to break) are left to the aligner, whose
    boxes are better there: a piece may hold a connecting stroke or a neighbour's tail."""
    if len(boxes) < 2:
        return True
    gaps = boxes[1:, 0] - (boxes[:-1, 0] + boxes[:-1, 2])
    return bool(gaps.min() >= apart * boxes[:, 2].mean())


def word_check_boxes(
    mask: np.ndarray, box: tuple[int, int, int, int], expected_widths: np.ndarray
) -> np.ndarray | None:
    """`separable_boxes` of one word, given the line's ink mask and the word's (x, y, w, h) in line
    coordinates; boxes come back in line coordinates."""
    x, y, w, h = box
    found = separable_boxes(mask[y : y + h, x : x + w], expected_widths)
    if found is None:
        return None
    found[:, 0] += x
    found[:, 1] += y
    return found


def summarize_check(check_iou: np.ndarray, word_ids: np.ndarray, total_words: int) -> dict[str, float]:
    """The self-check in numbers: how many words qualified, and the boxes' IoU with their exact pieces."""
    checked = ~np.isnan(check_iou)
    iou = check_iou[checked]
    return {
        "words_checked": len(set(word_ids[checked].tolist())),
        "words_total": int(total_words),
        "characters_checked": int(checked.sum()),
        "mean_iou": float(iou.mean()) if len(iou) else float("nan"),
        "share_iou_ge_0.5": float((iou >= 0.5).mean()) if len(iou) else float("nan"),
    }
