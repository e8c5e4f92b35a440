"""Segmentation quality against true boxes: IoU per character, joined on (word_id, char_index).

A character the estimate lacks counts as IoU 0, so dropping hard words can never raise the score."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

KEY = ["word_id", "char_index"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (x, y, w, h) rows."""
    ax1, ay1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def span_iou(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray) -> np.ndarray:
    """IoU of 1-D intervals [a0, a1) and [b0, b1)."""
    inter = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None)
    union = (a1 - a0) + (b1 - b0) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def match(gt: pd.DataFrame, est: pd.DataFrame) -> pd.DataFrame:
    """One row per true character with its estimate (if any), IoU and horizontal-only IoU."""
    cols = [*KEY, "x", "y", "w", "h"] + (["score"] if "score" in est.columns else [])
    joined = gt.merge(est[cols], on=KEY, how="left", suffixes=("", "_est"))
    found = joined["x_est"].notna().to_numpy()
    g = joined[["x", "y", "w", "h"]].to_numpy(np.float64)
    e = joined[["x_est", "y_est", "w_est", "h_est"]].fillna(0).to_numpy(np.float64)
    joined["iou"] = np.where(found, box_iou(g, e), 0.0)
    joined["iou_x"] = np.where(found, span_iou(g[:, 0], g[:, 0] + g[:, 2], e[:, 0], e[:, 0] + e[:, 2]), 0.0)
    joined["found"] = found
    return joined


def summarize(matched: pd.DataFrame) -> dict[str, Any]:
    iou = matched["iou"].to_numpy()
    out: dict[str, Any] = {
        "characters": len(matched),
        "missing": int((~matched["found"]).sum()),
        "mean_iou": float(iou.mean()) if len(iou) else 0.0,
        "share_iou_ge_0.5": float((iou >= 0.5).mean()) if len(iou) else 0.0,
        "share_iou_ge_0.7": float((iou >= 0.7).mean()) if len(iou) else 0.0,
        "mean_iou_x": float(matched["iou_x"].mean()) if len(iou) else 0.0,
    }
    found = matched[matched["found"]] if "score" in matched.columns else matched.iloc[:0]
    if len(found) >= 5:
        out["score_iou_spearman"] = float(found["score"].rank().corr(found["iou"].rank()))
        deciles = pd.qcut(found["score"].rank(method="first"), 5, labels=False)
        out["mean_iou_by_score_quintile"] = [float(v) for v in found.groupby(deciles)["iou"].mean()]
    return out


def per_character(matched: pd.DataFrame) -> pd.DataFrame:
    table = matched.groupby("char").agg(
        count=("iou", "size"),
        mean_iou=("iou", "mean"),
        share_ge_05=("iou", lambda s: float((s >= 0.5).mean())),
        mean_iou_x=("iou_x", "mean"),
    )
    return table.sort_values("count", ascending=False).reset_index()


def evaluate(gt: pd.DataFrame, est: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """Headline metrics over every true character (missing = IoU 0) and over the words the estimate covers,
    with the per-character match they were computed from."""
    matched = match(gt, est)
    covered = matched[matched["word_id"].isin(set(est["word_id"]))]
    return {"all_true_characters": summarize(matched), "words_in_manifest": summarize(covered)}, matched


def self_check_report(check: pd.DataFrame, est: pd.DataFrame, truth: pd.DataFrame | None) -> dict[str, Any]:
    """The estimate against the self-check boxes of the separable words (`selfcheck`); with true boxes at
    hand, also how well that tracks the truth: the estimate's true IoU on the same characters and on all, and
    the self-check boxes' own IoU with the truth."""
    joined = check.merge(est[[*KEY, "x", "y", "w", "h"]], on=KEY, suffixes=("", "_est"))
    c = joined[["x", "y", "w", "h"]].to_numpy(np.float64)
    e = joined[["x_est", "y_est", "w_est", "h_est"]].to_numpy(np.float64)
    iou = box_iou(c, e)
    out: dict[str, Any] = {
        "words_checked": int(joined["word_id"].nunique()),
        "words_total": int(est["word_id"].nunique()),
        "characters_checked": len(joined),
        "mean_iou": float(iou.mean()) if len(iou) else float("nan"),
        "share_iou_ge_0.5": float((iou >= 0.5).mean()) if len(iou) else float("nan"),
    }
    if truth is not None and len(joined):
        on_checked = match(truth[truth.set_index(KEY).index.isin(joined.set_index(KEY).index)], est)
        exact = match(truth, check)
        exact = exact[exact["found"]]
        out["true_mean_iou_same_characters"] = float(on_checked["iou"].mean())
        out["true_mean_iou_all_characters"] = float(match(truth, est)["iou"].mean())
        out["check_boxes_iou_with_truth"] = float(exact["iou"].mean()) if len(exact) else float("nan")
    return out
