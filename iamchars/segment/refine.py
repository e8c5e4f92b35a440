"""Ink-aware refinement of one word: deslant, stretch the font's cuts over the word's ink extent, snap each
cut to a nearby minimum of the column ink profile, then give every ink pixel to the character between its
cuts. A character's box is the tight box of its own pixels, so vertical bounds follow each letter."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iamchars.segment.paths import (
    DotRule,
    attach_dots,
    cut_paths,
    ink_image,
    owners_by_paths,
    reclaim_fragments,
)
from iamchars.segment.slant import shear_x

PATH_ROW_STEP = 2
"""Cut paths are found on bands of this many rows (a coarser grid, solved faster)."""


@dataclass(frozen=True)
class WordInk:
    """Ink pixels of one word in line coordinates, with their deslanted x."""

    ys: np.ndarray
    xs: np.ndarray
    xd: np.ndarray

    @classmethod
    def from_pixels(cls, ys: np.ndarray, xs: np.ndarray, slant: float, y_ref: float) -> WordInk:
        return cls(ys, xs, shear_x(xs.astype(np.float64), ys.astype(np.float64), slant, y_ref))


def column_profile(xd: np.ndarray, origin: float, length: int) -> np.ndarray:
    """Ink count per deslanted column, lightly smoothed so that single-pixel gaps do not attract cuts."""
    cols = np.minimum((xd - origin).astype(np.int64), length - 1)
    counts = np.bincount(cols, minlength=length).astype(np.float64)
    if length >= 3:
        counts = np.convolve(counts, [0.25, 0.5, 0.25], mode="same")
    return counts


def ink_gaps(profile: np.ndarray) -> np.ndarray:
    """(start, end) column ranges with no ink strictly inside the word (end exclusive)."""
    empty = np.concatenate([[False], profile <= 0, [False]])
    edges = np.flatnonzero(np.diff(empty.astype(np.int8)))
    return edges.reshape(-1, 2)


def anchor_at_gaps(cuts: np.ndarray, profile: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Pull cuts into nearby gaps of the ink and re-stretch the cuts between anchors.

    A gap in the ink almost always separates two characters, and one linear stretch over the whole word
    cannot absorb a wide one: each gap takes the nearest predicted cut within `reach` columns, and the cuts
    between two anchors keep their relative (font) positions inside that stretch. Returns the new cuts and
    which of them are anchored."""
    n = len(cuts) - 1
    anchored = np.zeros(n + 1, bool)
    anchored[[0, n]] = True
    out = cuts.astype(np.float64).copy()
    pairs: list[tuple[int, float]] = []
    for start, end in ink_gaps(profile):
        centre = (start + end - 1) / 2.0
        i = int(np.argmin(np.abs(cuts[1:-1] - centre))) + 1 if n > 1 else 0
        if i and abs(cuts[i] - centre) <= reach + (end - start) / 2.0:
            pairs.append((i, centre))
    best: dict[int, float] = {}
    for i, centre in pairs:  # one gap per cut: the nearest
        if i not in best or abs(cuts[i] - centre) < abs(cuts[i] - best[i]):
            best[i] = centre
    last_pos = out[0]
    for i in sorted(best):
        if best[i] > last_pos:  # keep anchors in reading order
            out[i] = best[i]
            anchored[i] = True
            last_pos = best[i]
    idx = np.flatnonzero(anchored)
    for a, b in itertools.pairwise(idx):
        if b - a > 1 and cuts[b] > cuts[a]:
            t = (cuts[a + 1 : b] - cuts[a]) / (cuts[b] - cuts[a])
            out[a + 1 : b] = out[a] + t * (out[b] - out[a])
    return out, anchored


def snap_cuts(cuts: np.ndarray, profile: np.ndarray, window: float) -> np.ndarray:
    """Move each inner cut (profile coordinates) to the cheapest column within +-window: low ink, close to
    the prediction. Cuts stay strictly increasing."""
    out = cuts.astype(np.float64).copy()
    if len(cuts) <= 2 or window < 1:
        return out
    peak = max(float(profile.max()), 1e-6)
    length = len(profile)
    lower = 1
    for i in range(1, len(cuts) - 1):
        lo = int(max(lower, np.floor(cuts[i] - window)))
        hi = int(min(length - 1, np.ceil(cuts[i] + window)))
        if hi < lo:
            out[i] = float(min(max(cuts[i], lower), length - 1))
        else:
            cand = np.arange(lo, hi + 1)
            cost = profile[cand] / peak + 0.35 * np.abs(cand - cuts[i]) / window
            out[i] = float(cand[int(np.argmin(cost))])
        lower = int(out[i]) + 1
    return out


@dataclass(frozen=True)
class WordStrip:
    """A word's ink inside the line's guide rows, with its deslanted columns counted from the leftmost ink."""

    ys: np.ndarray
    xs: np.ndarray
    xd: np.ndarray
    cols: np.ndarray
    origin: float
    length: int
    profile: np.ndarray

    @classmethod
    def from_ink(cls, ink: WordInk, guide: tuple[float, float], min_ink: int) -> WordStrip | None:
        """None when the word has too little ink to place cuts in."""
        ys, xs, xd = ink.ys, ink.xs, ink.xd
        if len(ys) and (ys.min() < guide[0] or ys.max() > guide[1]):
            keep = (ys >= guide[0]) & (ys <= guide[1])
            ys, xs, xd = ys[keep], xs[keep], xd[keep]
        if len(xd) < max(min_ink, 1):
            return None
        return cls._of_pixels(ys, xs, xd)

    @classmethod
    def _of_pixels(cls, ys: np.ndarray, xs: np.ndarray, xd: np.ndarray) -> WordStrip:
        origin = float(np.floor(xd.min()))
        length = int(np.floor(xd.max() - origin)) + 1  # ink columns [0, length)
        cols = np.minimum((xd - origin).astype(np.int64), length - 1)
        return cls(ys, xs, xd, cols, origin, length, column_profile(xd, origin, length))

    def within(self, lo: float, hi: float) -> WordStrip:
        """The strip of the ink with deslanted x in [lo, hi) (`word_body`); itself when that is all of it."""
        keep = (self.xd >= lo) & (self.xd < hi)
        if keep.all() or not keep.any():
            return self
        return self._of_pixels(self.ys[keep], self.xs[keep], self.xd[keep])


STRAY_REST_WIDTH = 0.5
"""`word_body` drops nothing that would leave the rest of the word narrower than this share of the line's
width per character for its characters: "of" with its o far from the f keeps the o."""


def word_body(xd: np.ndarray, n_chars: int, gap: float, share: float, char_width: float) -> tuple[float, float]:
    """The deslanted x range [lo, hi) of a word's own ink. Word boxes (IAM's too) often hold ink that the
    transcription leaves out beyond a blank gap: a digit, a quote, a full stop, a stroke of the next word. A
    group of ink at either end of the word, split from the rest by a blank of at least `gap` line character
    widths (`char_width`, pixels) and holding at most `share` of the rest's ink per character, is dropped,
    again and again while the rest stays wide enough for its characters (`STRAY_REST_WIDTH`)."""
    origin, starts, ends, pixels = _ink_runs(xd)
    n = max(n_chars, 1)

    def apart(rest: slice, blank: int) -> bool:
        """The blank is wide enough, and the rest still wide enough for its characters."""
        wide_enough = ends[rest.stop - 1] - starts[rest.start] >= STRAY_REST_WIDTH * char_width * n
        return blank >= gap * char_width and wide_enough

    lo, hi = 0, len(starts)  # runs kept: [lo, hi)
    changed = True
    while changed and hi - lo > 1:
        changed = False
        for k in range(lo + 1, hi):  # runs [lo, k) against [k, hi); a longer group only holds more ink
            if pixels[lo:k].sum() > share * pixels[k:hi].sum() / n:
                break
            if apart(slice(k, hi), starts[k] - ends[k - 1]):
                lo, changed = k, True
                break
        for k in range(hi - 1, lo, -1):  # runs [k, hi) against [lo, k)
            if pixels[k:hi].sum() > share * pixels[lo:k].sum() / n:
                break
            if apart(slice(lo, k), starts[k] - ends[k - 1]):
                hi, changed = k, True
                break
    return float(origin + starts[lo]), float(origin + ends[hi - 1])


def _ink_runs(xd: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The runs of inked deslanted columns: the first column's x, each run's [start, end) counted from it,
    and each run's pixels."""
    origin = np.floor(xd.min())
    counts = np.bincount((xd - origin).astype(np.int64))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (counts > 0).astype(np.int8), [0]])))
    starts, ends = edges[0::2], edges[1::2]
    return float(origin), starts, ends, np.add.reduceat(counts, starts)


STOP_GAP = 0.1
"""`word_end`: the least blank (in line character widths) between a word's last letter and a full stop."""


def word_end(xd: np.ndarray, ys: np.ndarray, n_chars: int, share: float, char_width: float, line_mean: float) -> float:
    """Where a word's own ink ends (deslanted x) when a full stop or comma follows its last letter closer than
    `word_body` looks: the last run of ink past a blank (`STOP_GAP`), holding at most `share` of the rest's
    ink per character and lying below the line's ink mean (a quote or an i-dot lies above it)."""
    origin, starts, ends, pixels = _ink_runs(xd)
    if len(starts) > 1 and starts[-1] - ends[-2] >= STOP_GAP * char_width:
        mark = xd >= origin + starts[-1]
        if pixels[-1] <= share * pixels[:-1].sum() / max(n_chars, 1) and ys[mark].mean() > line_mean:
            return origin + float(ends[-2])
    return origin + float(ends[-1])


def refined_cuts(
    strip: WordStrip, cuts_rel: np.ndarray, snap_window: float, snap: bool, gap_reach: float = 0.75
) -> np.ndarray:
    """The font's n+1 cuts (fractions of the ink extent) stretched over the word's deslanted ink, anchored in
    its gaps and snapped to nearby minima of its column profile (strip columns)."""
    cuts = cuts_rel * strip.length
    char_width = strip.length / (len(cuts_rel) - 1)
    if snap:
        cuts, _ = anchor_at_gaps(cuts, strip.profile, gap_reach * char_width)
        cuts = snap_cuts(cuts, strip.profile, snap_window * char_width)
    return cuts


def strip_cut_paths(
    strips: Sequence[WordStrip], cuts: Sequence[np.ndarray], path_reach: float, path_bend: float
) -> list[np.ndarray]:
    """Each word's cut paths (rows from its top ink row): every path may bend `path_reach` of the word's mean
    character width from its cut. All words are solved in one pass, several times faster than one by one."""
    inks, reaches = [], []
    for strip, word_cuts in zip(strips, cuts, strict=True):
        rows = strip.ys - strip.ys.min()
        inks.append(ink_image(rows, strip.cols, int(rows.max()) + 1, strip.length))
        width = strip.length / (len(word_cuts) - 1)  # first, then the reach: rounded as it always was
        reaches.append(max(1, round(path_reach * width)))
    return cut_paths(inks, [c[1:-1] for c in cuts], reaches, path_bend, PATH_ROW_STEP)


def boxes_from_cuts(
    strip: WordStrip,
    cuts: np.ndarray,
    expected_share: np.ndarray,
    band: tuple[int, int],
    min_ink: int,
    path_reach: float = 0.0,
    path_bend: float = 0.02,
    fragment_share: float = 0.0,
    dots: DotRule | None = None,
    paths: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (n, 4) in line coordinates and per-character scores: every ink pixel goes to the character
    between its cuts (or cut paths), slivers cut off a neighbour's stroke go back to it (`reclaim_fragments`,
    below `fragment_share` of a character's pixels), dots go to their i or j (`attach_dots`, when given), and
    a character's box is the tight box of its own pixels.
    Ink left of the first cut or right of the last belongs to no character (a neighbour's stroke inside the
    word box). `paths` are the word's cut paths when already found (`strip_cut_paths`, a line at a time)."""
    n = len(cuts) - 1
    ys, xs, cols, length, profile = strip.ys, strip.xs, strip.cols, strip.length, strip.profile
    boxes = np.zeros((n, 4), np.float64)
    char_width = length / n
    rel = strip.xd - strip.origin
    if path_reach > 0 and n > 1:
        if paths is None:
            paths = strip_cut_paths([strip], [cuts], path_reach, path_bend)[0]
        owner = owners_by_paths(ys - ys.min(), cols, paths, n)
    else:
        owner = np.searchsorted(cuts[1:-1], rel, side="right")
    kept = (rel >= cuts[0]) & (rel < cuts[-1])
    if not kept.all():
        ys, xs, rel, owner = ys[kept], xs[kept], rel[kept], owner[kept]
    owner = reclaim_fragments(ys, xs, owner, n, fragment_share)
    if dots is not None:
        owner = attach_dots(ys, xs, rel, owner, dots, char_width)
    counts = np.bincount(owner, minlength=n)
    typical = max(float(profile.mean()), 1e-6)
    cut_clean = np.ones(n + 1)
    inner = np.clip(np.rint(cuts[1:-1]).astype(np.int64), 0, length - 1)
    cut_clean[1:-1] = 1.0 - np.minimum(1.0, profile[inner] / (2.0 * typical))
    share = counts / max(len(ys), 1)
    coverage = np.exp(-np.abs(np.log((share + 0.02) / (expected_share + 0.02))))
    order = np.argsort(owner, kind="stable")
    nonempty = counts > 0
    first = (np.cumsum(counts) - counts)[nonempty]  # each character's pixels are contiguous once sorted
    xo, yo = xs[order], ys[order]
    if len(first):
        x0, y0 = np.minimum.reduceat(xo, first), np.minimum.reduceat(yo, first)
        x1, y1 = np.maximum.reduceat(xo, first) + 1, np.maximum.reduceat(yo, first) + 1
        boxes[nonempty] = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    scores = coverage * (0.5 + 0.25 * (cut_clean[:-1] + cut_clean[1:]))
    lone = counts < min_ink
    if lone.any():  # no ink of its own: its deslanted span (exact at the line's mean row), the line band
        boxes[lone, 0] = strip.origin + cuts[:-1][lone]
        boxes[lone, 2] = np.maximum(strip.origin + cuts[1:][lone] - boxes[lone, 0], 1.0)
        boxes[lone, 1] = band[0]
        boxes[lone, 3] = band[1] - band[0]
        scores[lone] *= 0.25
    return boxes, scores
