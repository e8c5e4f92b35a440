"""Evaluation: logits of a model on a split in batches, the split's metrics, and the per-image predictions
table that `iamchars evaluate --out` writes beside its metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from iamchars.train.metrics import report
from iamchars.train.models import GeometryNet
from iamchars.train.tensors import Split, batches, to_float


@torch.no_grad()
def predict_logits(
    model: nn.Module, images: torch.Tensor, geometry: torch.Tensor | None = None, batch_size: int = 1024
) -> torch.Tensor:
    """Logits for uint8 N x S x S images (and their boxes' geometry, for a model that takes it), in eval
    mode, in batches."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    takes_geometry = isinstance(model, GeometryNet) and geometry is not None
    out = []
    for idx in batches(len(images), batch_size, None, images.device):
        x = to_float(images[idx]).to(device)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        inputs = (x, geometry[idx].to(device)) if takes_geometry and geometry is not None else (x,)
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out.append(model(*inputs).float())
        else:
            out.append(model(*inputs))
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 1)


def evaluate_split(model: nn.Module, split: Split, class_chars: list[str]) -> tuple[dict[str, Any], torch.Tensor]:
    """The split's metrics (`metrics.report` and the loss) and its logits; NaN metrics for an empty split."""
    if len(split) == 0:  # e.g. a corpus built with no test writers
        empty = {
            "samples": 0,
            "top1": float("nan"),
            "top5": float("nan"),
            "macro_recall": float("nan"),
            "case_pair_errors": 0,
            "per_class": {},
            "confusion": [],
            "loss": float("nan"),
        }
        return empty, torch.zeros(0, len(class_chars))
    logits = predict_logits(model, split.images, split.geometry)
    metrics = report(logits, split.labels, class_chars)
    metrics["loss"] = float(F.cross_entropy(logits, split.labels).item()) if len(split) else float("nan")
    return metrics, logits


def predictions_table(split: Split, logits: torch.Tensor, class_chars: list[str]) -> pd.DataFrame:
    """One row per image: its char_id, true class, predicted class and that prediction's probability."""
    probs = torch.softmax(logits.float(), 1)
    best, pred = probs.max(1)
    return pd.DataFrame(
        {
            "char_id": split.char_ids,
            "true": [class_chars[int(i)] for i in split.labels.cpu()],
            "predicted": [class_chars[int(i)] for i in pred.cpu()],
            "probability": best.cpu().numpy().round(4),
        }
    )


def predictions_path(metrics: Path) -> Path:
    """Where `evaluate --out M.json` writes its per-image predictions: beside it, as M_predictions.csv."""
    return metrics.with_name(metrics.stem + "_predictions.csv")
