"""`iamchars train`: the training loop, in the spirit of torchvision's reference script.

Seeded and resumable: every epoch writes a checkpoint (model, optimiser, scheduler, EMA, generator state,
history, config) atomically; `--resume` continues from it as if nothing had happened.
"""

from __future__ import annotations

import copy
import csv
import itertools
import math
import shutil
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from iamchars.config import TrainConfig
from iamchars.errors import UserError
from iamchars.fileio import atomic_path, write_json
from iamchars.nn import save_state
from iamchars.parallel import ThreadChoice, default_threads, usable_cpus
from iamchars.train.data import (
    Dataset,
    Split,
    augment,
    balanced_weights,
    batches,
    jitter_geometry,
    to_float,
)
from iamchars.train.distributed import context
from iamchars.train.metrics import report
from iamchars.train.models import GeometryNet, build_model
from iamchars.train.transfer import freeze, is_head, load_pretrained

CHECK_EVERY = 25
"""Steps between checks of the loss for NaN/inf (each check synchronises with the GPU)."""


class TrainingDiverged(UserError, RuntimeError):
    """The loss became NaN or infinite."""


def make_optimizer(model: nn.Module, cfg: TrainConfig, backbone_lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """AdamW or SGD; norms and biases not decayed; the backbone (all but the head) at `backbone_lr_scale`
    times the learning rate (below 1 when fine-tuning pretrained weights). Frozen weights are left out."""
    groups = []
    for head in (False, True):
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad and is_head(n) == head]
        lr = cfg.lr * (1.0 if head else backbone_lr_scale)
        for decayed in (True, False):  # BN and biases are not decayed
            chosen = [p for _, p in params if (p.ndim > 1) == decayed]
            if chosen:
                groups.append({"params": chosen, "weight_decay": cfg.weight_decay if decayed else 0.0, "lr": lr})
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    raise ValueError(f"train.optimizer must be 'adamw' or 'sgd', got {cfg.optimizer!r}")


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    if cfg.schedule == "onecycle":
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=max(steps, 1), pct_start=0.25)
    if cfg.schedule == "cosine":
        warmup = max(1, steps // 20)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
        )
    raise ValueError(f"train.schedule must be 'onecycle' or 'cosine', got {cfg.schedule!r}")


class EMA:
    """Exponential moving average of the weights (buffers copied), evaluated instead of the raw model."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for e, p in zip(self.model.parameters(), model.parameters(), strict=True):
            e.lerp_(p.detach(), 1 - self.decay)
        for mine, theirs in zip(self.model.buffers(), model.buffers(), strict=True):
            mine.copy_(theirs)


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


class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing, truncated or not one of ours."""


CHECKPOINT_KEYS = ("model", "config", "classes", "image_size")
RUN_FILES = ("checkpoints", "metrics.json", "history.csv", "plots")
"""What a training run owns inside its folder (and `--force` replaces)."""


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


HISTORY_FIELDS = [
    "epoch",
    "lr",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_top1",
    "val_top5",
    "epoch_s",
    "images_per_s",
]


def train(
    data: Dataset,
    out: Path,
    cfg: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    log: Any = print,
    force: bool = False,
) -> dict[str, Any]:
    """Train, checkpoint every epoch, keep the best model on validation, evaluate it on test.

    An existing run in `out` is continued (`resume`) or replaced (`force`), never overwritten silently."""
    from tqdm import tqdm

    if cfg.geometry and data.train.geometry is None:
        log(
            "note: this dataset has no box geometry (built before iamchars stored it): training on the crops "
            "alone; rebuild it with `iamchars build-dataset` to use it"
        )
        cfg = replace(cfg, geometry=False)
    ctx = context(cfg.device)
    if ctx.is_main:
        prepare_run_dir(out, resume, force)
    ctx.barrier()
    device = data.train.images.device
    geometry = data.train.geometry if cfg.geometry else None
    shard = (
        data.train
        if ctx.world == 1
        else Split(
            data.train.images[ctx.rank :: ctx.world],
            data.train.labels[ctx.rank :: ctx.world],
            data.train.char_ids,
            None if geometry is None else geometry[ctx.rank :: ctx.world],
        )
    )
    torch.manual_seed(cfg.seed)
    threads = default_threads(cfg.threads) if device.type == "cpu" else ThreadChoice(usable_cpus(), "a GPU run")
    torch.set_num_threads(threads.threads)
    if device.type == "cpu":
        log(f"threads: {threads.threads} ({threads.why})")
    model = build_model(cfg.model, data.num_classes, data.size, cfg.geometry).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    backbone_lr_scale = 1.0
    if cfg.init and not resume:
        loaded, fresh = load_pretrained(model, load_checkpoint(Path(cfg.init)))
        log(f"initialised {len(loaded)} tensors from {cfg.init}; new: {', '.join(fresh) or 'none'}")
        backbone_lr_scale = cfg.backbone_lr_scale
    if cfg.freeze:
        available = freeze(model, cfg.freeze)
        log(f"froze the first {min(cfg.freeze, available)} of {available} stages")
    steps_per_epoch = max(1, (len(data.train) // ctx.world) // cfg.batch_size)  # the same on every rank
    optimizer = make_optimizer(model, cfg, backbone_lr_scale)
    scheduler = make_scheduler(optimizer, cfg, cfg.epochs * steps_per_epoch)
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    generator = torch.Generator(device=device if device.type == "cuda" else "cpu").manual_seed(cfg.seed + ctx.rank)
    history: list[dict[str, float]] = []
    best = {"val_top1": -1.0, "epoch": -1}
    best_weights: dict[str, Any] | None = None
    """The best epoch's weights (on the CPU), which last.pt carries so that best.pt can always be re-made."""
    start_epoch = 0
    last = out / "checkpoints" / "last.pt"
    if resume:
        ckpt = load_checkpoint(last)
        if ckpt["config"] != asdict(cfg) | {"epochs": ckpt["config"]["epochs"]}:
            log("note: resuming with a changed configuration")
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            if ckpt.get("steps_per_epoch") == steps_per_epoch and ckpt["config"]["epochs"] == cfg.epochs:
                scheduler.load_state_dict(ckpt["scheduler"])
            else:  # more epochs, or another world size: the new schedule, at the point reached
                _fast_forward(scheduler, (ckpt["epoch"] + 1) * steps_per_epoch)
            if ema is not None and ckpt.get("ema"):
                ema.model.load_state_dict(ckpt["ema"])
            history, best, start_epoch = ckpt["history"], ckpt["best"], ckpt["epoch"] + 1
            if "best_weights" in ckpt:  # None: the epoch it was saved at was the best
                best_weights = ckpt["best_weights"] or _weights_of(ckpt)
            if ctx.world == 1 and ckpt.get("world_size", 1) == 1:
                generator.set_state(ckpt["generator"])  # bit for bit, as if never stopped
            else:  # another world size: a fresh stream per rank and epoch
                generator.manual_seed(cfg.seed + 1000 * start_epoch + ctx.rank)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(
                f"{last}: cannot resume from it with this model and dataset ({str(exc).splitlines()[0][:120]}); "
                "use --force to start over"
            ) from None
        log(f"resumed from {last} at epoch {start_epoch}")
    weights = balanced_weights(shard.labels) if cfg.balance else None
    wrapped = model if ctx.world == 1 else nn.parallel.DistributedDataParallel(model)
    step_fn = torch.compile(wrapped) if cfg.compile else wrapped
    amp = cfg.amp and device.type == "cuda"
    stale = 0
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        bar = tqdm(
            total=steps_per_epoch * cfg.batch_size,
            unit="img",
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not progress,
            leave=False,
        )
        order = batches(len(shard), cfg.batch_size, generator, device, drop_last=True, weights=weights)
        for step, idx in enumerate(itertools.islice(order, steps_per_epoch)):
            x = to_float(shard.images[idx])
            y = shard.labels[idx]
            if cfg.augment:
                x = augment(x, generator)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            inputs: tuple[torch.Tensor, ...] = (x,)
            if cfg.geometry and shard.geometry is not None:
                g = shard.geometry[idx]
                inputs = (x, jitter_geometry(g, generator) if cfg.augment else g)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                logits = step_fn(*inputs)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update(model)
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            if step % CHECK_EVERY == 0 and not torch.isfinite(loss_sum):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}: lower --lr "
                    f"(now {cfg.lr}) or use --optimizer adamw; checkpoints up to epoch {epoch} are kept"
                )
            bar.update(len(y))
        bar.close()
        if not torch.isfinite(loss_sum):
            raise TrainingDiverged(f"loss became non-finite during epoch {epoch + 1}: lower --lr (now {cfg.lr})")
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        loss_sum, correct = ctx.sum(loss_sum), ctx.sum(correct)
        seen = int(ctx.sum(torch.tensor(seen, device=device)).item())
        eval_model = ema.model if ema is not None else model
        val, _ = evaluate_split(eval_model, data.val, data.class_chars)
        row = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": float(loss_sum.item()) / max(seen, 1),
            "train_acc": float(correct.item()) / max(seen, 1),
            "val_loss": val["loss"],
            "val_top1": val["top1"],
            "val_top5": val["top5"],
            "epoch_s": elapsed,
            "images_per_s": seen / max(elapsed, 1e-9),
        }
        history.append(row)
        improved = row["val_top1"] > best["val_top1"]
        current: dict[str, Any] = {
            "model": model.state_dict(),
            "ema": ema.model.state_dict() if ema is not None else None,
        }
        if improved:
            best = {"val_top1": row["val_top1"], "epoch": epoch + 1}
            best_weights = _cpu_copy(current)
            stale = 0
        else:
            stale += 1
        state = {
            **current,
            "best_weights": None if improved else best_weights,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "epoch": epoch,
            "history": history,
            "best": best,
            "config": asdict(cfg),
            "classes": data.classes,
            "image_size": data.size,
            "world_size": ctx.world,
            "steps_per_epoch": steps_per_epoch,
        }
        if ctx.is_main:  # last.pt first: it holds what best.pt needs, so a stop between the two loses nothing
            save_state(last, state)
            if improved:
                save_state(out / "checkpoints" / "best.pt", state)
            _write_history(out / "history.csv", history)
        log(
            f"epoch {epoch + 1:>3}/{cfg.epochs}  loss {row['train_loss']:.4f}  train acc {row['train_acc']:.4f}  "
            f"val acc {row['val_top1']:.4f}  top5 {row['val_top5']:.4f}  {row['images_per_s']:,.0f} img/s"
        )
        if cfg.patience and stale >= cfg.patience:
            log(f"early stop: no better validation accuracy for {cfg.patience} epochs")
            break
    if ctx.is_main:
        ensure_best(out / "checkpoints")
    ctx.barrier()  # best.pt is written
    best_model, _ = model_from_checkpoint(out / "checkpoints" / "best.pt", device)
    test, logits = evaluate_split(best_model, data.test, data.class_chars)
    metrics = {
        "best_epoch": best["epoch"],
        "val_top1": best["val_top1"],
        "test": test,
        "train_images_per_s": sum(h["images_per_s"] for h in history) / max(len(history), 1),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "threads_why": threads.why,
        "world_size": ctx.world,
        "config": asdict(cfg),
    }
    if ctx.is_main:
        write_json(out / "metrics.json", metrics)
    return {"metrics": metrics, "model": best_model, "test_logits": logits, "history": history}


def _weights_of(state: dict[str, Any]) -> dict[str, Any]:
    return {"model": state["model"], "ema": state.get("ema")}


def _cpu_copy(weights: dict[str, Any]) -> dict[str, Any]:
    return {
        name: None if tensors is None else {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}
        for name, tensors in weights.items()
    }


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


def _fast_forward(scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int) -> None:
    """Put a fresh schedule at step `steps` (its learning rates follow from the step count alone)."""
    scheduler.last_epoch = steps - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "step() before optimizer.step()": intended here
        scheduler.step()


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(history)
