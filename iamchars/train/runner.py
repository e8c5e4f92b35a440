"""`iamchars train` and `iamchars evaluate` at the file level: a dataset folder in, a run folder (checkpoints,
metrics, history, plots) or a metrics file out; the loop itself is `engine.train`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from iamchars.config import TrainConfig
from iamchars.errors import UserError
from iamchars.nn import pick_device
from iamchars.train.checkpoints import model_from_checkpoint
from iamchars.train.distributed import context, device_name
from iamchars.train.engine import train
from iamchars.train.evaluation import evaluate_split, predictions_table
from iamchars.train.models import build_model, summary
from iamchars.train.plots import write_all
from iamchars.train.tensors import load_dataset

Say = Callable[[str], None]


def run_training(
    data: Path,
    out: Path,
    cfg: TrainConfig,
    resume: bool,
    force: bool,
    plots: bool,
    progress: bool,
    say: Say,
    warn: Say,
) -> dict[str, Any] | None:
    """Load the dataset onto the device, check it can be trained on, train, and (on the main rank) write the
    plots; returns the metrics, or None on the other ranks of a torchrun."""
    ctx = context(cfg.device)  # under torchrun: this rank's place; rank 0 alone prints and writes
    say_main = say if ctx.is_main else (lambda _message: None)
    dev = pick_device(device_name(cfg.device, ctx))
    dataset = load_dataset(data, dev)
    if len(dataset.train) < cfg.batch_size or len(dataset.val) == 0:
        raise UserError(
            f"{data}: {len(dataset.train)} training / {len(dataset.val)} validation images; need at least "
            f"one batch ({cfg.batch_size}, see --batch-size) to train and some to validate"
        )
    present = int(dataset.train.labels.unique().numel())
    if present < 2 and ctx.is_main:
        warn(f"{data}: the training split holds {present} class; the model can only learn to answer it")
    say_main(
        f"device: {dev}"
        + (f" (rank {ctx.rank} of {ctx.world})" if ctx.world > 1 else "")
        + f"; train {len(dataset.train):,} / val {len(dataset.val):,} / "
        f"test {len(dataset.test):,} images of {dataset.size}x{dataset.size}, {dataset.num_classes} classes"
    )
    say_main(summary(build_model(cfg.model, dataset.num_classes, dataset.size, cfg.geometry), dataset.size))
    result = train(dataset, out, cfg, resume=resume, progress=progress and ctx.is_main, log=say_main, force=force)
    if not ctx.is_main:
        return None
    metrics: dict[str, Any] = result["metrics"]
    if plots:
        write_all(
            out,
            result["model"],
            result["history"],
            dataset.test.images.cpu().numpy(),
            dataset.test.labels.cpu().numpy(),
            result["test_logits"],
            np.array(metrics["test"]["confusion"]),
            dataset.class_chars,
            dataset.test.geometry.cpu().numpy() if dataset.test.geometry is not None else None,
        )
    return metrics


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    predictions: pd.DataFrame
    """One row per image (`evaluation.predictions_table`)."""


def evaluate_checkpoint(checkpoint: Path, data: Path, split: str, device: str) -> Evaluation:
    """A checkpoint's metrics and per-image predictions on one split of a dataset with its class set."""
    dev = pick_device(device)
    model, ckpt = model_from_checkpoint(checkpoint, dev)
    dataset = load_dataset(data, dev)
    if dataset.class_chars != [c["char"] for c in ckpt["classes"]["classes"]]:
        raise UserError(
            f"{data}: class set {dataset.classes['class_set']} differs from the checkpoint's "
            f"{ckpt['classes']['class_set']}"
        )
    part = getattr(dataset, split)
    if len(part) == 0:
        raise UserError(f"{data}: the {split} split holds no image; evaluate another --split")
    metrics, logits = evaluate_split(model, part, dataset.class_chars)
    return Evaluation(metrics, predictions_table(part, logits, dataset.class_chars))
