"""Each character's confidence: the probability that its box is right (IoU >= 0.5 with its ink's box).

What the pipeline already knows of a box becomes a few features (`FEATURES`): the box's ink score, the
aligner's posterior spread of its cuts and how well its ink fits its letter (`alignment.WordPosterior`), the
same for its whole word (a word whose transcription is not what its ink says), the self-check where the
word's ink is in as many pieces as it has letters, and the box's width against its word's mean (a narrow
letter's box is right only if its cuts are within a fraction of its own width). A logistic calibrator maps
them to a probability. Its coefficients (`CALIBRATORS`) are fitted by `tools/fit_confidence.py` on corpora
whose truth is not judged; a character the aligner did not re-align (another method, a letter outside its
alphabet, a one-letter word) has no posterior and gets the calibrator of the box features alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from iamchars.segment.align.alignment import EVIDENCE

FEATURES = (
    "score",
    "log_spread",
    "log_word_spread",
    "fit",
    "word_fit",
    "check_iou",
    "has_check",
    "log_width",
    "narrow",
)
"""The aligner's calibrator reads all of them; the boxes' calibrator those that need no aligner."""
BOX_FEATURES = ("score", "check_iou", "has_check", "log_width", "narrow")
SPREAD_FLOOR = 0.02
"""Added to a spread (character widths) before its logarithm: below it, no spread is surer than another."""


@dataclass(frozen=True)
class Calibrator:
    """A logistic model: probability = sigmoid(bias + sum of weight * feature)."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, table: pd.DataFrame) -> np.ndarray:
        x = table[list(self.features)].to_numpy(np.float64)
        return 1.0 / (1.0 + np.exp(-(x @ np.asarray(self.weights) + self.bias)))


CALIBRATORS = {
    "aligned": Calibrator(
        FEATURES, (5.0464, -0.6908, -0.5759, 0.3454, 0.0323, 0.1672, 0.1318, 0.6773, 1.3278), -1.1207
    ),
    "boxes": Calibrator(BOX_FEATURES, (7.7108, 0.6201, 0.1783, -0.2829, 1.2039), -2.4988),
}
"""Fitted by `tools/fit_confidence.py` on the demo's synthetic corpus (`make demo`'s `iamchars synth`), aligner
seeds 0 to 2, its output pasted here; docs/experiments says how well they hold on real handwriting."""


def character_evidence(boxes: pd.DataFrame, evidence: Mapping[str, np.ndarray] | None) -> np.ndarray:
    """Each box's row of its word's evidence (`alignment.EVIDENCE`), NaN where the word has none."""
    known = np.full((len(boxes), len(EVIDENCE)), np.nan)
    if evidence is None:
        return known
    word_ids = boxes["word_id"].to_numpy(str)
    for row, (word, k) in enumerate(zip(word_ids, boxes["char_index"].to_numpy(np.int64), strict=True)):
        found = evidence.get(word)
        if found is not None and k < len(found):
            known[row] = found[k]
    return known


def confidence_features(boxes: pd.DataFrame, evidence: Mapping[str, np.ndarray] | None) -> pd.DataFrame:
    """The features of every box (rows of `runner.BOX_COLUMNS`), with `aligned` saying whether the aligner's
    posterior is known for it. `evidence`: the corpus pass's (spread, fit) of each character, by word id."""
    known = character_evidence(boxes, evidence)
    spread, fit = known[:, 0], known[:, 1]
    table = pd.DataFrame(
        {
            "word_id": boxes["word_id"].to_numpy(str),
            "score": boxes["score"].to_numpy(np.float64),
            "log_spread": np.log(spread + SPREAD_FLOOR),
            "fit": fit,
        }
    )
    by_word = table.groupby("word_id", sort=False)
    table["log_word_spread"] = by_word["log_spread"].transform("max")
    table["word_fit"] = by_word["fit"].transform("mean")
    width = np.maximum(boxes["w"].to_numpy(np.float64), 1.0)
    table["log_width"] = np.log(
        width / pd.Series(width).groupby(table["word_id"].to_numpy()).transform("mean").to_numpy()
    )
    table["narrow"] = np.minimum(table["log_width"], 0.0)
    check = boxes["check_iou"].to_numpy(np.float64)
    table["has_check"] = np.isfinite(check).astype(np.float64)
    table["check_iou"] = np.where(np.isfinite(check), check, -1.0)
    table["aligned"] = np.isfinite(table[list(FEATURES)].to_numpy(np.float64)).all(axis=1)
    return table.drop(columns="word_id")


HIGHEST = 0.9999
"""No estimated box is certain: 1 is kept for true boxes (and `--min-confidence 1` keeps only those)."""


def character_confidence(features: pd.DataFrame, calibrators: Mapping[str, Calibrator] = CALIBRATORS) -> np.ndarray:
    """Each character's calibrated probability that its box is right, rounded to 4 decimals: the aligner's
    calibrator where its posterior is known, the boxes' elsewhere."""
    out = calibrators["boxes"].probability(features)
    aligned = features["aligned"].to_numpy(bool)
    if aligned.any():
        out[aligned] = calibrators["aligned"].probability(features[aligned])
    return np.minimum(np.round(out, 4), HIGHEST)
