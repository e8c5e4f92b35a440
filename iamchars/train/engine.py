"""`iamchars train`'s loop, in the parts of torchvision's reference script: `setup` (model, optimiser,
schedule, resume), `train_one_epoch`, evaluation on validation (`evaluation.evaluate_split`) and the epoch's
checkpoint (`checkpoints.save_epoch`), driven by `train`.

Seeded and resumable: every epoch writes a checkpoint (model, optimiser, scheduler, EMA, generator state,
history, config) atomically; `--resume` continues from it as if nothing had happened.
"""

from __future__ import annotations

import copy
import csv
import itertools
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from iamchars.config import TrainConfig
from iamchars.errors import UserError
from iamchars.fileio import atomic_path, write_json
from iamchars.parallel import ThreadChoice, default_threads, usable_cpus
from iamchars.progress import progress_bar
from iamchars.train.checkpoints import (
    CheckpointError,
    cpu_copy,
    ensure_best,
    load_checkpoint,
    model_from_checkpoint,
    prepare_run_dir,
    save_epoch,
    weights_of,
)
from iamchars.train.distributed import Context, context
from iamchars.train.evaluation import evaluate_split
from iamchars.train.models import build_model
from iamchars.train.tensors import Dataset, Split, augment, balanced_weights, batches, jitter_geometry, to_float
from iamchars.train.transfer import freeze, is_head, load_pretrained

CHECK_EVERY = 25
"""Steps between checks of the loss for NaN/inf (each check synchronises with the GPU)."""

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

Log = Callable[[str], None]


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


@dataclass
class Run:
    """Everything one training run carries from epoch to epoch."""

    cfg: TrainConfig
    ctx: Context
    device: torch.device
    shard: Split
    """This rank's part of the training split."""
    model: nn.Module
    step_fn: Callable[..., torch.Tensor]
    """The model as the optimiser steps call it (wrapped for DDP, compiled when asked)."""
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ema: EMA | None
    generator: torch.Generator
    steps_per_epoch: int
    threads: ThreadChoice
    sample_weights: torch.Tensor | None
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"val_top1": -1.0, "epoch": -1})
    best_weights: dict[str, Any] | None = None
    """The best epoch's weights (on the CPU), which last.pt carries so that best.pt can always be re-made."""
    start_epoch: int = 0

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.model if self.ema is not None else self.model


def setup(data: Dataset, out: Path, cfg: TrainConfig, resume: bool, force: bool, log: Log) -> Run:
    """The run folder checked, the model built (from `cfg.init` when fine-tuning), optimiser, schedule, EMA
    and generator made, and, with `resume`, all of them restored from last.pt."""
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
    run = Run(
        cfg=cfg,
        ctx=ctx,
        device=device,
        shard=shard,
        model=model,
        step_fn=model,
        optimizer=optimizer,
        scheduler=scheduler,
        ema=EMA(model, cfg.ema) if cfg.ema > 0 else None,
        generator=torch.Generator(device=device if device.type == "cuda" else "cpu").manual_seed(cfg.seed + ctx.rank),
        steps_per_epoch=steps_per_epoch,
        threads=threads,
        sample_weights=None,
    )
    if resume:
        restore(run, out / "checkpoints" / "last.pt", log)
    run.sample_weights = balanced_weights(shard.labels) if cfg.balance else None
    wrapped = model if ctx.world == 1 else nn.parallel.DistributedDataParallel(model)
    run.step_fn = torch.compile(wrapped) if cfg.compile else wrapped
    return run


def restore(run: Run, last: Path, log: Log) -> None:
    """Put the run where last.pt left it: weights, optimiser, schedule, EMA, history, best and generator."""
    cfg, ctx = run.cfg, run.ctx
    ckpt = load_checkpoint(last)
    if ckpt["config"] != asdict(cfg) | {"epochs": ckpt["config"]["epochs"]}:
        log("note: resuming with a changed configuration")
    try:
        run.model.load_state_dict(ckpt["model"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("steps_per_epoch") == run.steps_per_epoch and ckpt["config"]["epochs"] == cfg.epochs:
            run.scheduler.load_state_dict(ckpt["scheduler"])
        else:  # more epochs, or another world size: the new schedule, at the point reached
            _fast_forward(run.scheduler, (ckpt["epoch"] + 1) * run.steps_per_epoch)
        if run.ema is not None and ckpt.get("ema"):
            run.ema.model.load_state_dict(ckpt["ema"])
        run.history, run.best, run.start_epoch = ckpt["history"], ckpt["best"], ckpt["epoch"] + 1
        if "best_weights" in ckpt:  # None: the epoch it was saved at was the best
            run.best_weights = ckpt["best_weights"] or weights_of(ckpt)
        if ctx.world == 1 and ckpt.get("world_size", 1) == 1:
            run.generator.set_state(ckpt["generator"])  # bit for bit, as if never stopped
        else:  # another world size: a fresh stream per rank and epoch
            run.generator.manual_seed(cfg.seed + 1000 * run.start_epoch + ctx.rank)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(
            f"{last}: cannot resume from it with this model and dataset ({str(exc).splitlines()[0][:120]}); "
            "use --force to start over"
        ) from None
    log(f"resumed from {last} at epoch {run.start_epoch}")


def train_one_epoch(run: Run, epoch: int, progress: bool) -> dict[str, float]:
    """One pass of `steps_per_epoch` batches (augmented on the device), summed over every rank: the epoch's
    training loss, accuracy, images and seconds."""

    cfg, shard, device = run.cfg, run.shard, run.device
    amp = cfg.amp and device.type == "cuda"
    run.model.train()
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    seen = 0
    bar = progress_bar(
        total=run.steps_per_epoch * cfg.batch_size,
        unit="img",
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        disable=not progress,
        leave=False,
    )
    order = batches(len(shard), cfg.batch_size, run.generator, device, drop_last=True, weights=run.sample_weights)
    for step, idx in enumerate(itertools.islice(order, run.steps_per_epoch)):
        x = to_float(shard.images[idx])
        y = shard.labels[idx]
        if cfg.augment:
            x = augment(x, run.generator)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        inputs: tuple[torch.Tensor, ...] = (x,)
        if cfg.geometry and shard.geometry is not None:
            g = shard.geometry[idx]
            inputs = (x, jitter_geometry(g, run.generator) if cfg.augment else g)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            logits = run.step_fn(*inputs)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.scheduler.step()
        if run.ema is not None:
            run.ema.update(run.model)
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
    loss_sum, correct = run.ctx.sum(loss_sum), run.ctx.sum(correct)
    seen = int(run.ctx.sum(torch.tensor(seen, device=device)).item())
    return {"loss": float(loss_sum.item()), "correct": float(correct.item()), "seen": seen, "seconds": elapsed}


def epoch_state(run: Run, data: Dataset, epoch: int, improved: bool, current: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint of an epoch: everything `restore` needs, and the best weights when they are not these."""
    return {
        **current,
        "best_weights": None if improved else run.best_weights,
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "generator": run.generator.get_state(),
        "epoch": epoch,
        "history": run.history,
        "best": run.best,
        "config": asdict(run.cfg),
        "classes": data.classes,
        "image_size": data.size,
        "world_size": run.ctx.world,
        "steps_per_epoch": run.steps_per_epoch,
    }


def train(
    data: Dataset,
    out: Path,
    cfg: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    log: Log = print,
    force: bool = False,
) -> dict[str, Any]:
    """Train, checkpoint every epoch, keep the best model on validation, evaluate it on test.

    An existing run in `out` is continued (`resume`) or replaced (`force`), never overwritten silently."""
    if cfg.geometry and data.train.geometry is None:
        log(
            "note: this dataset has no box geometry (built before iamchars stored it): training on the crops "
            "alone; rebuild it with `iamchars build-dataset` to use it"
        )
        cfg = replace(cfg, geometry=False)
    run = setup(data, out, cfg, resume, force, log)
    stale = 0
    for epoch in range(run.start_epoch, cfg.epochs):
        stats = train_one_epoch(run, epoch, progress)
        val, _ = evaluate_split(run.eval_model, data.val, data.class_chars)
        seen = max(int(stats["seen"]), 1)
        row = {
            "epoch": epoch + 1,
            "lr": run.optimizer.param_groups[0]["lr"],
            "train_loss": stats["loss"] / seen,
            "train_acc": stats["correct"] / seen,
            "val_loss": val["loss"],
            "val_top1": val["top1"],
            "val_top5": val["top5"],
            "epoch_s": stats["seconds"],
            "images_per_s": stats["seen"] / max(stats["seconds"], 1e-9),
        }
        run.history.append(row)
        improved = row["val_top1"] > run.best["val_top1"]
        current: dict[str, Any] = {
            "model": run.model.state_dict(),
            "ema": run.ema.model.state_dict() if run.ema is not None else None,
        }
        if improved:
            run.best = {"val_top1": row["val_top1"], "epoch": epoch + 1}
            run.best_weights = cpu_copy(current)
            stale = 0
        else:
            stale += 1
        if run.ctx.is_main:
            save_epoch(out / "checkpoints", epoch_state(run, data, epoch, improved, current), improved)
            _write_history(out / "history.csv", run.history)
        log(
            f"epoch {epoch + 1:>3}/{cfg.epochs}  loss {row['train_loss']:.4f}  train acc {row['train_acc']:.4f}  "
            f"val acc {row['val_top1']:.4f}  top5 {row['val_top5']:.4f}  {row['images_per_s']:,.0f} img/s"
        )
        if cfg.patience and stale >= cfg.patience:
            log(f"early stop: no better validation accuracy for {cfg.patience} epochs")
            break
    return finish(run, data, out)


def finish(run: Run, data: Dataset, out: Path) -> dict[str, Any]:
    """best.pt made consistent, evaluated on test, metrics.json written (by the main rank)."""
    if run.ctx.is_main:
        ensure_best(out / "checkpoints")
    run.ctx.barrier()  # best.pt is written
    best_model, _ = model_from_checkpoint(out / "checkpoints" / "best.pt", run.device)
    test, logits = evaluate_split(best_model, data.test, data.class_chars)
    history = run.history
    metrics = {
        "best_epoch": run.best["epoch"],
        "val_top1": run.best["val_top1"],
        "test": test,
        "train_images_per_s": sum(h["images_per_s"] for h in history) / max(len(history), 1),
        "device": str(run.device),
        "threads": torch.get_num_threads(),
        "threads_why": run.threads.why,
        "world_size": run.ctx.world,
        "config": asdict(run.cfg),
    }
    if run.ctx.is_main:
        write_json(out / "metrics.json", metrics)
    return {"metrics": metrics, "model": best_model, "test_logits": logits, "history": history}


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
