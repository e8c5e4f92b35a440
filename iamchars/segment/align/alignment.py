"""Forced alignment of a word's transcription to its ink: the pure-numpy half of the `aligned` method.

A word becomes a *strip*: its deslanted ink drawn at the line's own scale (the rows mean +- 3 std of the line
ink mapped to `STRIP_ROWS` rows, columns scaled so that the line's mean character spans `CHAR_COLUMNS`), so
that every word of every writer reaches the network at one size. Each inner cut may move among a few
candidates around its refined position; a cut sequence scores the network's log-probability of each
character over its segment plus a Gaussian prior on the move (the font and the ink still speak through the
refined cuts). `word_posteriors` puts each inner cut at its mean over all sequences, weighted by their
probability (`viterbi_cuts`, the single best sequence, is its fallback)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from iamchars.segment.refine import WordStrip

ALPHABET = tuple(chr(c) for c in range(33, 127))
"""The characters the aligner knows (printable ASCII): fixed, so that weights carry from corpus to corpus. A
word with any other character keeps its refined cuts."""
STRIP_ROWS = 32
STRIP_STDS = 3.0
"""The strip spans the line's ink mean +- 3 std: ascenders and descenders of nearly every writer."""
CHAR_COLUMNS = 12.0
"""Strip columns per character on average over a line."""
MIN_SEGMENT = 1.0
"""Narrowest character (ink columns) a cut sequence may hold; narrower candidate segments are never scored."""


@dataclass(frozen=True)
class AlignmentWord:
    """What the aligner needs of one word, small enough to keep for all of IAM (uint8 strip)."""

    word_id: str
    writer_id: str
    text: str
    strip: np.ndarray
    """(STRIP_ROWS, columns) uint8 ink density."""
    scale: float
    """Strip columns per deslanted ink column."""
    cuts: np.ndarray
    """The refined cuts (n + 1) in deslanted ink columns."""
    length: int
    """The word's deslanted ink width in columns."""


def strip_image(
    strip: WordStrip, mean: float, std: float, char_width: float | None = None, rows: int = STRIP_ROWS
) -> tuple[np.ndarray, float]:
    """The word's deslanted ink at the line's scale: (rows, columns) uint8 density and the column scale used.
    Rows span the line's ink mean +- 3 std; columns are scaled so that the line's mean ink width per character
    (`char_width`, ink columns) spans `CHAR_COLUMNS`, or like the rows when it is None."""
    row_scale = rows / (2 * STRIP_STDS * max(std, 1e-3))
    scale = CHAR_COLUMNS / char_width if char_width else row_scale
    top = mean - STRIP_STDS * std
    width = int(np.ceil(strip.length * scale)) + 1
    r = np.floor((strip.ys - top) * row_scale).astype(np.int64)
    c = np.floor(strip.cols * scale).astype(np.int64)
    inside = (r >= 0) & (r < rows)
    density = np.bincount(r[inside] * width + c[inside], minlength=rows * width).astype(np.float64)
    density = np.minimum(density.reshape(rows, width) * row_scale * scale, 1.0)
    return np.rint(density * 255).astype(np.uint8), float(scale)


def to_strip_columns(cuts: np.ndarray, scale: float, width: int) -> np.ndarray:
    return np.clip(np.rint(np.asarray(cuts, np.float64) * scale).astype(np.int64), 0, width)


def candidate_cuts(
    cuts: np.ndarray, length: int, reach: float, count: int, ends: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Candidates for every cut and their offsets in character widths, one array per cut.

    Inner cuts move up to `reach` either way. The outer two stay at the ink's ends unless `ends` offers
    other places for them (`end_candidates`)."""
    n = len(cuts) - 1
    offsets = np.linspace(-reach, reach, count) if count > 1 else np.zeros(1)
    width = length / n
    first, last = ends if ends is not None else (np.array([0.0]), np.array([float(length)]))
    out = [first, *[np.clip(cuts[i] + offsets * width, 1.0, length - 1.0) for i in range(1, n)], last]
    return out, [first / width, *([offsets] * (n - 1)), (length - last) / width]


def end_candidates(word: AlignmentWord, reach: float, blank: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Where the first and last cut may go (ink columns): the ink's ends, and the edges of the blank gaps
    within `reach` character widths of them. A word box often holds a stroke that is none of its characters
    (the full stop after it, its neighbour's tail), nearly always apart from its own ink; a cut in such a
    gap leaves it to no character, and a cut elsewhere would only trim a letter."""
    inked = np.flatnonzero(word.strip.max(axis=0) > blank)
    if len(inked) < 2:
        return np.array([0.0]), np.array([float(word.length)])
    apart = np.flatnonzero(np.diff(inked) > 1)  # a blank gap between inked[k] and inked[k + 1]
    gap_opens, gap_closes = inked[apart] + 1, inked[apart + 1]
    near = reach * word.length / max(len(word.text), 1) * word.scale
    length = float(word.length)
    stops = gap_closes[gap_closes - inked[0] <= near]
    starts = gap_opens[inked[-1] + 1 - gap_opens <= near]
    first = np.concatenate([[0.0], np.clip(stops / word.scale, 1.0, length - 1.0)])
    last = np.concatenate([[length], np.clip(starts / word.scale, 1.0, length - 1.0)])
    return np.unique(first), np.unique(last)[::-1]


def segment_pairs(candidates: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every (start, end) pair of consecutive candidate sets, character by character, row-major."""
    starts, ends = [], []
    for left, right in itertools.pairwise(candidates):
        a, b = np.meshgrid(left, right, indexing="ij")
        starts.append(a.ravel())
        ends.append(b.ravel())
    return np.concatenate(starts), np.concatenate(ends)


def pair_scores(
    candidates: list[np.ndarray], char_logp: np.ndarray, min_width: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each character's (left cut, right cut) scores out of `char_logp` (laid out as `segment_pairs`), and
    which of those pairs leave it at least `min_width`."""
    out, pos = [], 0
    for left, right in itertools.pairwise(candidates):
        k = len(left) * len(right)
        out.append(
            (char_logp[pos : pos + k].reshape(len(left), len(right)), right[None, :] - left[:, None] >= min_width)
        )
        pos += k
    return out


def viterbi_cuts(
    candidates: list[np.ndarray], char_logp: np.ndarray, move_logp: list[np.ndarray], min_width: float = MIN_SEGMENT
) -> np.ndarray:
    """The best cut sequence. `char_logp` holds each character's log-probability over every pair of
    `segment_pairs` (same order); `move_logp` the prior of each cut's candidates (one array per cut)."""
    n = len(candidates) - 1
    best = np.asarray(move_logp[0], np.float64)
    back: list[np.ndarray] = []
    for i, (score, feasible) in enumerate(pair_scores(candidates, char_logp, min_width)):
        score = np.where(feasible, score, -1e9)
        total = best[:, None] + score + move_logp[i + 1][None, :]
        back.append(np.argmax(total, axis=0))
        best = np.max(total, axis=0)
    j = int(np.argmax(best))
    path = [candidates[n][j]]
    for i in range(n - 1, -1, -1):
        j = int(back[i][j])
        path.append(candidates[i][j])
    return np.array(path[::-1])


EVIDENCE = ("spread", "fit")
"""What a re-alignment says of each character (`WordPosterior.evidence`), in this order."""


@dataclass(frozen=True)
class WordPosterior:
    """What the aligner knows of one word after weighing every cut sequence."""

    cuts: np.ndarray
    """Each cut at its posterior mean (n + 1, ink columns)."""
    spread: np.ndarray
    """Each cut's posterior standard deviation (n + 1, ink columns): how sure the network is of the place."""
    fit: np.ndarray
    """Each character's expected log-probability under the posterior (n): how much its ink looks like it. A
    transcription that is not what the ink says fits badly wherever its cuts go."""

    def evidence(self, length: int) -> np.ndarray:
        """Each character's (spread, fit), `EVIDENCE`: the larger posterior spread of its two cuts in the word's
        mean character widths (`length`: its ink width), and its fit."""
        spread = self.spread / max(length / len(self.fit), 1e-9)
        return np.stack([np.maximum(spread[:-1], spread[1:]), self.fit], axis=1)


@dataclass(frozen=True)
class Lattice:
    """One word's alignment problem: each cut's candidates (ink columns), each character's log-probability
    over every (left, right) pair of `segment_pairs` (same order), and each cut's move prior."""

    candidates: list[np.ndarray]
    char_logp: np.ndarray
    move_logp: list[np.ndarray]


def word_posteriors(lattices: Sequence[Lattice], min_width: float = MIN_SEGMENT) -> list[WordPosterior]:
    """Each word's cuts, spreads and fits, all words at once.

    The two outer cuts go to their likeliest candidate, then each inner cut to its mean over the posterior of
    the cut sequences between those ends (scored as in `viterbi_cuts`; pairs narrower than `min_width` ruled
    out). Where the network hesitates between neighbouring places, the mean lands between them in proportion
    and a wrong guess costs less than an all-or-nothing choice; the ends choose between the ink's end and a
    gap's edge, since a place between those could cut through a stray stroke. The words are padded to one
    lattice (cuts past a word's last lead on at weight 1) so that forward-backward runs once per character
    position for the whole batch, not once per word. A word where no sequence keeps any weight gets its
    Viterbi cuts with NaN spread and fit."""
    if not lattices:
        return []
    pos, valid, score, feasible, prior = _padded(lattices, min_width)
    b = score.shape[0]
    top = np.where(feasible, score, -np.inf).max(axis=(2, 3), keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)  # a character's best pair at weight 1: no underflow
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        weights = np.where(feasible, np.exp(score - top), 0.0)
        alpha, beta = _messages(weights, prior)
        marginals = alpha * beta
        marginals /= marginals.sum(axis=2, keepdims=True)
        ends = np.array([len(lat.candidates) - 1 for lat in lattices])
        rows = np.arange(b)
        for cut in (np.zeros(b, np.int64), ends):
            best = np.argmax(np.nan_to_num(marginals[rows, cut], nan=-1.0), axis=1)
            prior[rows, cut] = 0.0
            prior[rows, cut, best] = 1.0
        alpha, beta = _messages(weights, prior)
        marginals = alpha * beta
        marginals /= marginals.sum(axis=2, keepdims=True)
        cuts = (marginals * pos).sum(axis=2)
        spread = np.sqrt(np.maximum((marginals * (pos - cuts[:, :, None]) ** 2).sum(axis=2), 0.0))
        joint = alpha[:, :-1, :, None] * weights * (prior[:, 1:] * beta[:, 1:])[:, :, None, :]
        joint /= joint.sum(axis=(2, 3), keepdims=True)
        fit = np.where(feasible & (joint > 0), joint * score, 0.0).sum(axis=(2, 3))
    out = []
    for k, lat in enumerate(lattices):
        m = len(lat.candidates) - 1
        if np.isfinite(marginals[k, : m + 1][valid[k, : m + 1]]).all() and np.isfinite(fit[k, :m]).all():
            out.append(WordPosterior(cuts[k, : m + 1], spread[k, : m + 1], fit[k, :m]))
        else:
            unknown = np.full(m + 1, np.nan)
            best_path = viterbi_cuts(lat.candidates, lat.char_logp, lat.move_logp, min_width)
            out.append(WordPosterior(best_path, unknown, unknown[:m]))
    return out


def _padded(
    lattices: Sequence[Lattice], min_width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The words' lattices as arrays of one shape: candidates (B, N + 1, K), which are real, scores and
    feasible pairs (B, N, K, K), and each candidate's prior weight (B, N + 1, K). Past a word's last cut, each
    padded cut has one candidate that every candidate before it reaches at weight 1."""
    b = len(lattices)
    n = max(len(lat.candidates) for lat in lattices) - 1
    k = max(len(c) for lat in lattices for c in lat.candidates)
    pos = np.zeros((b, n + 1, k))
    valid = np.zeros((b, n + 1, k), bool)
    score = np.zeros((b, n, k, k))
    feasible = np.zeros((b, n, k, k), bool)
    prior = np.zeros((b, n + 1, k))
    for w, lat in enumerate(lattices):
        m = len(lat.candidates) - 1
        start = 0
        for i, (cands, move) in enumerate(zip(lat.candidates, lat.move_logp, strict=True)):
            pos[w, i, : len(cands)] = cands
            valid[w, i, : len(cands)] = True
            move = np.asarray(move, np.float64)
            prior[w, i, : len(cands)] = np.exp(move - move.max())
            if i < m:
                right = len(lat.candidates[i + 1])
                block = lat.char_logp[start : start + len(cands) * right].reshape(len(cands), right)
                score[w, i, : len(cands), :right] = block
                start += len(cands) * right
        pos[w, m + 1 :, 0] = pos[w, m, 0]
        valid[w, m + 1 :, 0] = True
        prior[w, m + 1 :, 0] = 1.0
        feasible[w, m:, :, 0] = True
    wide = pos[:, 1:, None, :] - pos[:, :-1, :, None] >= min_width
    real = valid[:, :-1, :, None] & valid[:, 1:, None, :]
    chars = np.arange(n)[None, :] < np.array([len(lat.candidates) - 1 for lat in lattices])[:, None]
    feasible = np.where(chars[:, :, None, None], real & wide, feasible & valid[:, :-1, :, None])
    return pos, valid, score, feasible, prior


def _messages(weights: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward messages (B, N + 1, K) over every ordered cut sequence, each step renormalised:
    `weights` (B, N, K, K) holds exp(score) of each character's (left, right) pairs, `prior` each cut's."""
    n = weights.shape[1]
    alpha = np.empty_like(prior)
    beta = np.empty_like(prior)
    alpha[:, 0] = prior[:, 0]
    for i in range(n):
        a = np.einsum("bk,bkl->bl", alpha[:, i], weights[:, i]) * prior[:, i + 1]
        alpha[:, i + 1] = a / a.sum(axis=1, keepdims=True)
    beta[:, n] = 1.0
    for i in range(n - 1, -1, -1):
        v = np.einsum("bkl,bl->bk", weights[:, i], prior[:, i + 1] * beta[:, i + 1])
        beta[:, i] = v / v.sum(axis=1, keepdims=True)
    return alpha, beta


def stretch_word(word: AlignmentWord, factors: np.ndarray) -> AlignmentWord:
    """The word redrawn with character i (between its cuts) `factors[i]` times as wide: the strip resampled
    piecewise-linearly, cuts and length moved with it. Writers' letter widths differ from any font's and from
    each other's; stretched copies teach the network that a letter's width is not what identifies it."""
    old = np.asarray(word.cuts, np.float64) * word.scale
    new = np.concatenate([[old[0]], old[0] + np.cumsum(np.diff(old) * factors)])
    width = word.strip.shape[1]
    tail = width - old[-1]
    out_width = max(int(np.ceil(new[-1] + tail)), 2)
    head = [0.0] if old[0] > 0 else []  # ink before the first cut (no character's) keeps its width
    source = np.interp(np.arange(out_width) + 0.5, [*head, *new, new[-1] + tail], [*head, *old, old[-1] + tail]) - 0.5
    left = np.clip(np.floor(source).astype(np.int64), 0, width - 1)
    right = np.clip(left + 1, 0, width - 1)
    weight = np.clip(source - left, 0.0, 1.0)
    strip = word.strip[:, left] * (1 - weight) + word.strip[:, right] * weight
    return replace(
        word,
        strip=np.rint(strip).astype(np.uint8),
        cuts=new / word.scale,
        length=max(int(np.ceil((new[-1] - old[-1]) / word.scale + word.length)), 1),
    )


def neighbour_stroke(rng: np.random.Generator, donor: np.ndarray) -> np.ndarray:
    """A stroke that is no character of the word it lands in, as a (STRIP_ROWS, columns) uint8 strip: a full
    stop, comma, hyphen or quote at its usual height, or the first columns of another word's strip."""
    kind = int(rng.integers(0, 5))
    if kind == 4 and donor.shape[1] > 2:
        return donor[:, : int(rng.integers(2, min(donor.shape[1], 11)))].copy()
    mark = np.zeros((STRIP_ROWS, 10), np.uint8)
    thick = int(rng.integers(1, 3))
    if kind == 0:  # full stop
        cv2.circle(mark, (4, int(rng.integers(19, 25))), thick, 255, -1)
    elif kind == 1:  # comma
        row = int(rng.integers(19, 24))
        cv2.circle(mark, (5, row), thick, 255, -1)
        cv2.line(mark, (5, row), (3, row + int(rng.integers(3, 6))), 255, thick)
    elif kind == 2:  # hyphen
        row = int(rng.integers(13, 19))
        cv2.line(mark, (1, row), (int(rng.integers(4, 9)), row + int(rng.integers(-1, 2))), 255, thick)
    else:  # quote or apostrophe
        for x in range(2, 2 + 3 * int(rng.integers(1, 3)), 3):
            cv2.line(mark, (x + 1, int(rng.integers(3, 7))), (x, int(rng.integers(8, 12))), 255, thick)
    columns = np.flatnonzero(mark.any(axis=0))
    return mark[:, columns[0] : columns[-1] + 1]


def with_neighbour_stroke(word: AlignmentWord, stroke: np.ndarray, gap: int, after: bool) -> AlignmentWord:
    """The word with `stroke` drawn `gap` strip columns past its last (or before its first) ink column; the
    cuts keep to the word's own ink, so the stroke lies outside them, as a neighbour's does in a word box."""
    strip = word.strip[:, : max(int(np.ceil(word.length * word.scale)), 1)]
    blank = np.zeros((STRIP_ROWS, gap), np.uint8)
    parts = [strip, blank, stroke] if after else [stroke, blank, strip]
    grown = np.concatenate([*parts, np.zeros((STRIP_ROWS, 1), np.uint8)], axis=1)
    added = (gap + stroke.shape[1]) / word.scale
    cuts = word.cuts if after else word.cuts + added
    return replace(word, strip=grown, cuts=cuts, length=int(np.ceil(word.length + added)))


def training_segments(
    cuts: np.ndarray, length: int, negatives: int, rng: np.random.Generator, shift: tuple[float, float] = (0.25, 0.7)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments to learn from (ink columns): each character between its current cuts, and `negatives` wrong
    segments per character (a cut, or both, moved by 0.25 to 0.7 character widths), which the network learns
    to call "no character". Returns starts, ends and the character index (-1 for the wrong ones)."""
    n = len(cuts) - 1
    a, b = cuts[:-1], cuts[1:]
    starts, ends, owner = [a], [b], [np.arange(n)]
    width = length / n
    for _ in range(negatives):
        move = rng.uniform(*shift, n) * width * rng.choice([-1.0, 1.0], n)
        which = rng.integers(0, 3, n)  # 0: start moves, 1: end moves, 2: both move apart or together
        na = a + np.where(which != 1, move, 0.0)
        nb = b + np.where(which == 1, move, np.where(which == 2, -move, 0.0))
        starts.append(np.minimum(na, nb - 1))
        ends.append(np.maximum(na + 1, nb))
        owner.append(np.full(n, -1))
    return np.concatenate(starts), np.concatenate(ends), np.concatenate(owner)
