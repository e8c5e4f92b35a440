"""How far the confidence can be trusted: predicted against observed, and what a threshold keeps.

Pure functions of each character's confidence and whether its box is right (against true boxes where the
corpus has them, against the self-check's exact boxes of separable words otherwise); the card and
`tools/fit_confidence.py` read them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from iamchars.segment.evaluate import box_iou

BINS = 10
THRESHOLDS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)


def auroc(confidence: np.ndarray, right: np.ndarray) -> float:
    """The chance that a right box is more confident than a wrong one (ties count half); NaN without both."""
    right = right.astype(bool)
    n_right, n_wrong = int(right.sum()), int((~right).sum())
    if not n_right or not n_wrong:
        return float("nan")
    ranks = pd.Series(confidence).rank().to_numpy()
    return float((ranks[right].sum() - n_right * (n_right + 1) / 2) / (n_right * n_wrong))


def calibration_bins(confidence: np.ndarray, right: np.ndarray, bins: int = BINS) -> pd.DataFrame:
    """Equal-width bins of confidence: characters, mean confidence and share right in each (empty bins left
    out)."""
    which = np.minimum((np.clip(confidence, 0, 1) * bins).astype(np.int64), bins - 1)
    table = pd.DataFrame({"bin": which, "confidence": confidence, "right": right.astype(np.float64)})
    out = table.groupby("bin").agg(
        characters=("right", "size"), mean_confidence=("confidence", "mean"), share_right=("right", "mean")
    )
    return out.reset_index().assign(low=lambda t: t["bin"] / bins, high=lambda t: (t["bin"] + 1) / bins)


def expected_calibration_error(confidence: np.ndarray, right: np.ndarray, bins: int = BINS) -> float:
    """The characters' average gap between the confidence of their bin and its share right."""
    table = calibration_bins(confidence, right, bins)
    gaps = (table["mean_confidence"] - table["share_right"]).abs()
    return float((gaps * table["characters"]).sum() / max(int(table["characters"].sum()), 1))


def share_right_of_most_confident(confidence: np.ndarray, right: np.ndarray, keep: float = 0.8) -> float:
    """The share right among the `keep` most confident characters."""
    order = np.argsort(-confidence, kind="stable")[: max(round(keep * len(confidence)), 1)]
    return float(right[order].mean()) if len(confidence) else float("nan")


def threshold_rows(confidence: np.ndarray, right: np.ndarray | None) -> list[dict[str, float]]:
    """For each threshold t: the share of characters with confidence >= t, their expected share right (their
    mean confidence) and, where `right` is known for all of them, the share observed right."""
    rows = []
    for t in THRESHOLDS:
        kept = confidence >= t
        row = {"threshold": t, "kept": float(kept.mean()) if len(kept) else 0.0}
        row["expected_right"] = float(confidence[kept].mean()) if kept.any() else float("nan")
        if right is not None:
            row["observed_right"] = float(right[kept].mean()) if kept.any() else float("nan")
        rows.append(row)
    return rows


def boxes_right(boxes: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Whether each box (word_id, char_index, x, y, w, h) has IoU >= 0.5 with its true box (False where the
    truth lacks it)."""
    key = ["word_id", "char_index"]
    joined = boxes[[*key, "x", "y", "w", "h"]].merge(
        truth[[*key, "x", "y", "w", "h"]].astype({"word_id": str}).drop_duplicates(key),
        on=key,
        how="left",
        suffixes=("", "_true"),
    )
    est = joined[["x", "y", "w", "h"]].to_numpy(np.float64)
    true = joined[["x_true", "y_true", "w_true", "h_true"]].to_numpy(np.float64)
    found = np.isfinite(true).all(axis=1)
    return found & (box_iou(est, np.nan_to_num(true)) >= 0.5)


def reliability(confidence: np.ndarray, right: np.ndarray, against: str) -> dict[str, Any]:
    """What the card reports of characters whose rightness is known (`against`: "true boxes" or "self-check")."""
    return {
        "against": against,
        "characters": len(confidence),
        "share_right": float(right.mean()) if len(right) else float("nan"),
        "auroc": auroc(confidence, right),
        "ece": expected_calibration_error(confidence, right),
        "right_among_80pc_most_confident": share_right_of_most_confident(confidence, right),
        "bins": calibration_bins(confidence, right).to_dict("records"),
    }
