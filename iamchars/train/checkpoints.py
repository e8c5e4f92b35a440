"""Checkpoints and run folders: what a checkpoint holds, reading one back with a one-line error, and keeping
`best.pt` consistent with `last.pt` whatever moment a run was stopped at."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from iamchars.errors import UserError
from iamchars.nn import save_state
from iamchars.train.models import build_model

CHECKPOINT_KEYS = ("model", "config", "classes", "image_size")
RUN_FILES = ("checkpoints", "metrics.json", "history.csv", "plots")
"""What a training run owns inside its folder (and `--force` replaces)."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing, truncated or not one of ours."""


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by `train`; anything else (missing, empty, truncated, another file type) is a
    CheckpointError naming the file."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; give a checkpoint file such as RUN/checkpoints/best.pt")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint is empty (0 bytes); was its run killed while writing it?")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file: pickle, zip, EOF, RuntimeError
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated, or another kind of file): {reason}"
        ) from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not an iamchars checkpoint (it lacks {', '.join(missing)})")
    return dict(ckpt)


def prepare_run_dir(out: Path, resume: bool, force: bool) -> None:
    """Never replace a finished or running run by accident: an existing run needs --resume or --force."""
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if resume:
        if not (out / "checkpoints" / "last.pt").is_file():
            raise CheckpointError(f"{out / 'checkpoints' / 'last.pt'}: nothing to resume (drop --resume to start)")
        return
    if existing and not force:
        raise UserError(
            f"{out}: already holds a training run ({', '.join(existing)}); --resume continues it, --force "
            "replaces it, or choose another --out"
        )
    for name in existing:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()


def model_from_checkpoint(path: Path, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The model of a checkpoint (its EMA weights when it kept them), ready for inference."""
    ckpt = load_checkpoint(path)
    try:
        config = ckpt["config"]
        model = build_model(
            config["model"], ckpt["classes"]["num_classes"], ckpt["image_size"], config.get("geometry", False)
        )
        model.load_state_dict(ckpt["ema"] if ckpt.get("ema") else ckpt["model"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its weights do not fit its model ({str(exc).splitlines()[0][:120]})") from None
    return model.to(device).eval(), ckpt


def weights_of(state: dict[str, Any]) -> dict[str, Any]:
    return {"model": state["model"], "ema": state.get("ema")}


def cpu_copy(weights: dict[str, Any]) -> dict[str, Any]:
    return {
        name: None if tensors is None else {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}
        for name, tensors in weights.items()
    }


def save_epoch(folder: Path, state: dict[str, Any], improved: bool) -> None:
    """last.pt first: it holds what best.pt needs (`best_weights`), so a stop between the two loses nothing."""
    save_state(folder / "last.pt", state)
    if improved:
        save_state(folder / "best.pt", state)


def best_from_last(last: dict[str, Any]) -> dict[str, Any] | None:
    """The best.pt that a last.pt implies: itself when its epoch was the best, else its state with the best
    epoch's weights; None for a last.pt written before it carried them."""
    best_epoch = int(last["best"]["epoch"])
    if best_epoch == int(last["epoch"]) + 1:
        return last
    if not last.get("best_weights"):
        return None
    return {**last, **last["best_weights"], "epoch": best_epoch - 1, "best_weights": None}


def ensure_best(folder: Path) -> None:
    """Make best.pt agree with last.pt, whatever moment a stop came at: a best.pt that is missing, unreadable
    or of another epoch than the one last.pt names as best is re-made from last.pt."""
    last = load_checkpoint(folder / "last.pt")
    best_path = folder / "best.pt"
    try:
        current = load_checkpoint(best_path) if best_path.is_file() else None
    except CheckpointError:
        current = None
    if current is not None and int(current["epoch"]) + 1 == int(last["best"]["epoch"]):
        return
    derived = best_from_last(last)
    if derived is None:
        raise CheckpointError(
            f"{best_path}: missing or of another epoch than {folder / 'last.pt'} names as best, and last.pt (from an "
            "older iamchars) cannot re-make it; use --force to start over"
        )
    save_state(best_path, derived)
