"""`iamchars zoo`: every registered model trained on the same dataset with the same budget, in one table
(parameters, training speed, test top-1 / top-5 / error), like the classic MNIST error table."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from iamchars.config import TrainConfig
from iamchars.train.engine import train
from iamchars.train.tensors import Dataset


def run_zoo(data: Dataset, out: Path, cfg: TrainConfig, models: list[str], log: Any = print) -> list[dict[str, Any]]:
    """Train each model into out/<model> (replacing an earlier zoo run there); one row of results each."""
    rows = []
    for name in models:
        log(f"zoo: training {name}")
        result = train(
            data, out / name, dataclasses.replace(cfg, model=name), progress=False, log=lambda _m: None, force=True
        )
        metrics = result["metrics"]
        rows.append(
            {
                "model": name,
                "parameters": sum(p.numel() for p in result["model"].parameters()),
                "train_images_per_s": metrics["train_images_per_s"],
                "epochs": len(result["history"]),
                "best_epoch": metrics["best_epoch"],
                "val_top1": metrics["val_top1"],
                "test_top1": metrics["test"]["top1"],
                "test_top5": metrics["test"]["top5"],
                "history": result["history"],
            }
        )
    return rows


def zoo_table(rows: list[dict[str, Any]], cfg: TrainConfig, data: Dataset, device: str) -> str:
    lines = [
        "# Model table",
        "",
        f"Same data ({len(data.train):,} training / {len(data.test):,} test images, {data.num_classes} classes, "
        f"{data.size} x {data.size}), same budget ({cfg.epochs} epochs, batch {cfg.batch_size}, {cfg.optimizer}, "
        f"lr {cfg.lr}, {cfg.schedule}, augmentation {'on' if cfg.augment else 'off'}, seed {cfg.seed}) on {device}.",
        "",
        "| model | parameters | train img/s | epochs (best) | val top-1 | test top-1 | test top-5 | test error |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sorted(rows, key=lambda r: -r["test_top1"]):
        lines.append(
            f"| {r['model']} | {r['parameters']:,} | {r['train_images_per_s']:,.0f} | "
            f"{r['epochs']} ({r['best_epoch']}) | {r['val_top1']:.4f} | {r['test_top1']:.4f} | "
            f"{r['test_top5']:.4f} | {100 * (1 - r['test_top1']):.2f}% |"
        )
    lines += ["", "Curves: `zoo.png`; each model's run (checkpoints, metrics, history) under its own folder.", ""]
    return "\n".join(lines)


def zoo_curves(rows: list[dict[str, Any]]) -> Figure:
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for r in rows:
        epochs = [h["epoch"] for h in r["history"]]
        ax_loss.plot(epochs, [h["val_loss"] for h in r["history"]], label=r["model"])
        ax_acc.plot(epochs, [h["val_top1"] for h in r["history"]], label=r["model"])
    ax_loss.set(xlabel="epoch", ylabel="validation cross-entropy", title="validation loss")
    ax_acc.set(xlabel="epoch", ylabel="validation top-1", title="validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    return fig


def write_zoo(data_dir: Path, out: Path, cfg: TrainConfig, models: list[str], log: Any = print) -> str:
    """`iamchars zoo`: the dataset loaded onto `cfg.device`, every model trained, and zoo.md, zoo.json and
    zoo.png written to `out`; returns the table."""
    from iamchars.fileio import write_json, write_text
    from iamchars.nn import pick_device
    from iamchars.train.plots import save_figure
    from iamchars.train.tensors import load_dataset

    device = pick_device(cfg.device)
    dataset = load_dataset(data_dir, device)
    rows = run_zoo(dataset, out, cfg, models, log=log)
    table = zoo_table(rows, cfg, dataset, str(device))
    write_text(out / "zoo.md", table)
    write_json(out / "zoo.json", [{k: v for k, v in r.items() if k != "history"} for r in rows])
    save_figure(zoo_curves(rows), out / "zoo.png")
    return table
