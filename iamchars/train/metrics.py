"""Classification metrics from logits and labels (pure numpy/torch)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    k_max = min(max(ks), logits.shape[1])
    top = logits.topk(k_max, dim=1).indices
    hits = top == labels.view(-1, 1)
    return {k: int(hits[:, : min(k, k_max)].any(dim=1).sum()) for k in ks}


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def per_class(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and support per class (NaN where undefined)."""
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
    return precision, recall, support


def case_pair_errors(confusion: np.ndarray, class_chars: list[str]) -> int:
    """Images read as the other case of their own letter (c as C, C as c): the errors that only a letter's
    size and height against the line can settle."""
    index = {ch: i for i, ch in enumerate(class_chars)}
    other = {i: index.get(ch.swapcase(), i) for ch, i in index.items()}  # itself where no other case exists
    return int(sum(confusion[i, j] for i, j in other.items() if j != i))


def report(logits: torch.Tensor, labels: torch.Tensor, class_chars: list[str]) -> dict[str, Any]:
    n = int(labels.shape[0])
    correct = topk_correct(logits, labels)
    preds = logits.argmax(1).cpu().numpy()
    truth = labels.cpu().numpy()
    confusion = confusion_matrix(truth, preds, len(class_chars))
    precision, recall, support = per_class(confusion)
    return {
        "samples": n,
        "top1": correct[1] / max(n, 1),
        "top5": correct[5] / max(n, 1),
        "macro_recall": float(np.nanmean(recall)) if n else 0.0,
        "case_pair_errors": case_pair_errors(confusion, class_chars),
        "per_class": {
            ch: {
                "precision": None if np.isnan(p) else float(p),
                "recall": None if np.isnan(r) else float(r),
                "support": int(s),
            }
            for ch, p, r, s in zip(class_chars, precision, recall, support, strict=True)
        },
        "confusion": confusion.tolist(),
    }
