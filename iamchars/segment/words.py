"""Word boxes of a line whose transcription is known but whose words were never boxed.

The line's ink is deslanted and projected onto its columns; the blank runs of that projection are the
places a word may end. A dynamic programme picks, for the n words of the transcription, the n - 1 blanks
(and where the first word starts and the last ends) that best agree with two things: wide blanks part words,
and each word's width follows its rendering in the alignment font at one scale for the whole line. Where the
ink has fewer blanks than the transcription has word breaks (a comma written against its word), the lightest
columns of the ink stand in for blanks at a price. Ink at either end of the line that no word explains (a
fragment of a word cut off by the line's crop) may be left out, at a price per column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from iamchars.fonts import FontMetrics
from iamchars.segment.slant import estimate_slant, shear_x
from iamchars.segment.vertical import line_ink_stats

PROFILE_STDS = 2.5
"""Rows within this many line-ink standard deviations of the ink mean make the column profile (strokes of
the lines above and below stay out of it)."""
BOX_STDS = 4.0
"""A found word's box reaches at most this many standard deviations above and below the ink mean."""
WIDTH_SIGMA = 0.35
"""Spread (natural log) of a word's ink width around its font width at the line's scale."""
WIDTH_SLACK = 0.5
"""Added to both widths, in x-heights, before their ratio is taken: short words (a comma, "a") vary most."""
GAP_WEIGHT = 4.0
"""Reward per chosen blank: GAP_WEIGHT * log(1 + blank width / x-height), against the width term's
(log ratio / WIDTH_SIGMA)^2 / 2 per word."""
CUT_PRICE = 3.0
"""Price of a break at an inked column (a word touching the next), on top of its ink's share of the tallest
column."""
CUTS_PER_XHEIGHT = 1
"""Inked columns offered as breaks: the lightest one in every x-height of ink."""
SKIP_PRICE = 1.5
"""Price per x-height of ink width left out at either end of the line."""
SCALES = np.exp(np.linspace(-0.7, 0.7, 15))
"""Scales (pixels per font pixel) tried, relative to the line's ink width over the words' font widths."""


def find_word_boxes(
    gray: np.ndarray,
    threshold: int,
    texts: Sequence[str],
    font: FontMetrics,
    slant_max_deg: float,
    slant_steps: int,
) -> np.ndarray | None:
    """Boxes (n, 4: x, y, w, h in line-image pixels) of the line's n words in transcription order, or None
    when the line holds no ink or too little of it for its words."""
    mask = gray < threshold
    ys, xs = np.nonzero(mask)
    if len(xs) == 0 or not texts:
        return None
    mean, std = line_ink_stats(gray, threshold)
    slant = estimate_slant(ys.astype(np.float64), xs.astype(np.float64), slant_max_deg, slant_steps)
    xd = shear_x(xs.astype(np.float64), ys.astype(np.float64), slant, mean)
    origin = float(np.floor(xd.min()))
    cols = (xd - origin).astype(np.int64)
    near = np.abs(ys - mean) <= PROFILE_STDS * std
    if not near.any():
        return None
    profile = np.bincount(cols[near], minlength=int(cols.max()) + 1).astype(np.float64)
    xheight = max(2.0 * std, 4.0)
    breaks = _breaks(profile, xheight)
    spans = _word_spans(profile, breaks, [_font_width(t, font) for t in texts], xheight)
    if spans is None:
        return None
    starts, ends = spans
    keep = np.abs(ys - mean) <= BOX_STDS * std
    boxes = np.zeros((len(texts), 4), np.int64)
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        mine = keep & (cols >= a) & (cols < b)
        if not mine.any():
            return None
        x0, x1 = int(xs[mine].min()), int(xs[mine].max()) + 1
        y0, y1 = int(ys[mine].min()), int(ys[mine].max()) + 1
        boxes[k] = (x0, y0, x1 - x0, y1 - y0)
    return boxes


def _font_width(text: str, font: FontMetrics) -> float:
    """The word's advance width in the font (font pixels)."""
    _, ends = font.spans(text)
    return max(float(ends[-1]), 1.0) if len(text) else 1.0


def _breaks(profile: np.ndarray, xheight: float) -> np.ndarray:
    """Candidate breaks (m, 3): first blank column, first inked column after it, and the price of breaking
    there (0 for a blank run; for an inked column, CUT_PRICE plus its ink's share of the tallest column). The
    line's start and end are the first and last rows."""
    empty = np.concatenate([[False], profile <= 0, [False]])
    edges = np.flatnonzero(np.diff(empty.astype(np.int8))).reshape(-1, 2)
    rows = [(float(a), float(b), 0.0) for a, b in edges]
    top = float(profile.max())
    step = max(round(xheight / CUTS_PER_XHEIGHT), 2)
    for a in range(0, len(profile), step):  # the lightest inked column of each x-height's width
        window = profile[a : a + step]
        inked = np.flatnonzero(window > 0)
        if len(inked):
            i = a + int(inked[np.argmin(window[inked])])
            rows.append((float(i), float(i), CUT_PRICE + float(profile[i]) / top))
    rows += [(0.0, 0.0, 0.0), (float(len(profile)), float(len(profile)), 0.0)]
    out = np.array(sorted(set(rows)))
    return out


def _word_spans(
    profile: np.ndarray, breaks: np.ndarray, font_widths: list[float], xheight: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The best (start, end) deslanted columns of each word: a dynamic programme over the candidate breaks,
    tried at each scale of SCALES. Word k runs from the end of one break to the start of a later one."""
    n = len(font_widths)
    left, right, price = breaks[:, 0], breaks[:, 1], breaks[:, 2]
    m = len(breaks)
    inked = np.concatenate([[0.0], np.cumsum(profile > 0)])
    width = left[None, :] - right[:, None]  # [i, j]: ink extent of a word from break i to break j
    allowed = width > 0
    gap = np.where(price == 0, GAP_WEIGHT * np.log1p((right - left) / xheight), -price)
    skip_start = SKIP_PRICE * inked[right.astype(np.int64)] / xheight
    skip_end = SKIP_PRICE * (inked[-1] - inked[left.astype(np.int64)]) / xheight
    font = np.asarray(font_widths)
    total = float(inked[-1])
    base = total / font.sum()
    slack = WIDTH_SLACK * xheight
    log_width = np.log(np.where(allowed, width, 1.0) + slack)
    best_cost, best_path = np.inf, None
    for scale in SCALES * base:
        cost = skip_start.copy()
        back = np.zeros((n, m), np.int64)
        for k in range(n):
            ratio = log_width - np.log(scale * font[k] + slack)
            step = np.where(allowed, cost[:, None] + 0.5 * (ratio / WIDTH_SIGMA) ** 2, np.inf)
            back[k] = np.argmin(step, axis=0)
            cost = step[back[k], np.arange(m)] - (gap if k < n - 1 else 0.0)
        cost = cost + skip_end
        j = int(np.argmin(cost))
        if cost[j] < best_cost:
            best_cost, path = float(cost[j]), [j]
            for k in range(n - 1, -1, -1):
                path.append(int(back[k, path[-1]]))
            best_path = path[::-1]
    if best_path is None or not np.isfinite(best_cost):
        return None
    return right[best_path[:-1]], left[best_path[1:]]
