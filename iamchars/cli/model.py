"""Model commands: `train`, `zoo` (every model, one budget), `evaluate`, `predict`, `explain` and
`export-model`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from iamchars.cli.common import (
    BatchOpt,
    ConfigOpt,
    DeviceOpt,
    EpochsOpt,
    Inputs,
    SetOpt,
    ThreadsOpt,
    cfg_option,
    command,
    fail,
    load_cfg,
    output_dir,
    output_file,
)
from iamchars.config import TrainConfig
from iamchars.errors import UserError


def _warn(message: str) -> None:
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


@command(resume_hint="resume with --resume")
def train(
    data: Annotated[Path, typer.Option(help="dataset folder from build-dataset")] = Path("data/processed/iam"),
    out: Annotated[Path, typer.Option(help="run folder (checkpoints, metrics, plots)")] = Path("data/runs/default"),
    model: Annotated[
        str | None,
        cfg_option(TrainConfig, "model", "architecture: a model of train/models.py (`iamchars zoo` trains each)"),
    ] = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    lr: Annotated[float | None, cfg_option(TrainConfig, "lr", "peak learning rate")] = None,
    optimizer: Annotated[str | None, cfg_option(TrainConfig, "optimizer", "optimiser (sgd: Nesterov)")] = None,
    schedule: Annotated[str | None, cfg_option(TrainConfig, "schedule", "learning-rate schedule")] = None,
    ema: Annotated[float | None, cfg_option(TrainConfig, "ema", "EMA decay of the weights (0: off)")] = None,
    compile_model: Annotated[
        bool | None,
        typer.Option("--compile/--no-compile", help="torch.compile the model (GPU speed)", show_default="no"),
    ] = None,
    device: DeviceOpt = None,
    seed: Annotated[int | None, cfg_option(TrainConfig, "seed", "random seed (same seed, same run on a CPU)")] = None,
    patience: Annotated[
        int | None, cfg_option(TrainConfig, "patience", "early stopping patience in epochs (0: off)")
    ] = None,
    threads: ThreadsOpt = None,
    init: Annotated[
        Path | None, typer.Option(help="start from this checkpoint's weights (fine-tuning)", show_default="none")
    ] = None,
    freeze: Annotated[int | None, cfg_option(TrainConfig, "freeze", "freeze the first N feature stages")] = None,
    balance: Annotated[
        bool | None,
        typer.Option("--balance/--no-balance", help="draw rare classes more often", show_default="no"),
    ] = None,
    geometry: Annotated[
        bool | None,
        typer.Option(
            "--geometry/--no-geometry",
            help="also feed each box's height and place on its line to the classifier",
            show_default="no",
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from OUT/checkpoints/last.pt")] = False,
    force: Annotated[bool, typer.Option(help="replace a run already in OUT")] = False,
    plots: Annotated[bool, typer.Option(help="save the pictures under OUT/plots")] = True,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Train a CNN on the packed arrays (GPU when there is one), with checkpoints, metrics and plots."""
    from iamchars.train.runner import run_training

    cfg = load_cfg(
        config,
        set_,
        {
            "train.model": model,
            "train.epochs": epochs,
            "train.batch_size": batch_size,
            "train.lr": lr,
            "train.optimizer": optimizer,
            "train.schedule": schedule,
            "train.ema": ema,
            "train.compile": compile_model,
            "train.device": device,
            "train.seed": seed,
            "train.patience": patience,
            "train.threads": threads,
            "train.balance": balance,
            "train.geometry": geometry,
            "train.init": str(init) if init is not None else None,
            "train.freeze": freeze,
        },
    ).train
    if resume and force:
        raise fail("--resume and --force contradict each other: continue the run, or replace it", 2)
    output_dir(out, inputs={"--data": data, "--config": config, "--init": init}, replaced=force)
    metrics = run_training(data, out, cfg, resume, force, plots, progress, typer.echo, _warn)
    if metrics is None:  # another rank of a torchrun: rank 0 reports
        return
    test = metrics["test"]
    typer.echo(
        f"best epoch {metrics['best_epoch']}: val top-1 {metrics['val_top1']:.4f}; test top-1 "
        f"{test['top1']:.4f}, top-5 {test['top5']:.4f} on {test['samples']:,} images"
    )
    typer.echo(
        f"metrics: {out / 'metrics.json'}   history: {out / 'history.csv'}   "
        f"checkpoints: {out / 'checkpoints'}" + (f"   plots: {out / 'plots'}" if plots else "")
    )


@command()
def zoo(
    data: Annotated[Path, typer.Option(help="dataset folder from build-dataset")] = Path("data/processed/iam"),
    out: Annotated[Path, typer.Option(help="folder for zoo.md, zoo.png and one run per model")] = Path("data/runs/zoo"),
    models: Annotated[
        str | None, typer.Option(help="comma-separated models of train/models.py", show_default="all")
    ] = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Train every model on the same data with the same budget and write the model table (zoo.md)."""
    from iamchars.train.models import MODELS
    from iamchars.train.zoo import write_zoo

    cfg = load_cfg(
        config,
        set_,
        {"train.epochs": epochs, "train.batch_size": batch_size, "train.device": device, "train.threads": threads},
    ).train
    chosen = [m.strip() for m in models.split(",")] if models else list(MODELS)
    unknown = [m for m in chosen if m not in MODELS]
    if unknown:
        raise fail(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}", 2)
    output_dir(out, inputs={"--data": data, "--config": config})
    typer.echo(write_zoo(data, out, cfg, chosen, log=typer.echo))


@command()
def evaluate(
    checkpoint: Annotated[Path, typer.Option(help="a checkpoint from train (best.pt or last.pt)")],
    data: Annotated[Path, typer.Option(help="a dataset folder with the same class set")],
    split: Annotated[str, typer.Option(help="train, val or test")] = "test",
    device: DeviceOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="write metrics JSON here (and per-image predictions beside it)")
    ] = None,
) -> None:
    """Top-1/top-5 and per-class precision/recall of a checkpoint on a dataset split."""
    from iamchars.fileio import write_json, write_table
    from iamchars.train.evaluation import predictions_path
    from iamchars.train.runner import evaluate_checkpoint

    if split not in ("train", "val", "test"):
        raise fail(f"--split must be train, val or test, got {split!r}", 2)
    if out is not None:
        inputs: Inputs = {"--checkpoint": checkpoint, "--data": data}
        output_file(out, inputs=inputs)
        output_file(predictions_path(out), "--out (its predictions file)", inputs=inputs)
    result = evaluate_checkpoint(checkpoint, data, split, device or "auto")
    metrics = result.metrics
    if out is not None:
        write_json(out, metrics)
        write_table(result.predictions, predictions_path(out))
    worst = sorted(((v["recall"], ch) for ch, v in metrics["per_class"].items() if v["recall"] is not None))[:8]
    typer.echo(
        f"{split}: {metrics['samples']:,} images  top-1 {metrics['top1']:.4f}  top-5 {metrics['top5']:.4f}  "
        f"macro recall {metrics['macro_recall']:.4f}  case-pair errors {metrics['case_pair_errors']:,}"
    )
    typer.echo("lowest recall: " + ", ".join(f"{ch!r} {r:.2f}" for r, ch in worst))


@command()
def predict(
    checkpoint: Annotated[Path, typer.Option(help="a checkpoint from train")],
    images: Annotated[list[Path], typer.Argument(help="character images or folders of them (any size, polarity)")],
    top: Annotated[int, typer.Option("--top", "-k", help="how many classes to show", min=1, max=1000)] = 5,
    device: DeviceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Top-k classes with probabilities for each image; unreadable images are listed, the rest predicted."""
    import numpy as np

    from iamchars.nn import pick_device
    from iamchars.train.checkpoints import model_from_checkpoint
    from iamchars.train.inference import read_images, top_k

    model, ckpt = model_from_checkpoint(checkpoint, pick_device(device or "auto"))
    good, prepared, bad = read_images(images, int(ckpt["image_size"]))
    results = top_k(model, np.stack(prepared), [c["char"] for c in ckpt["classes"]["classes"]], top) if good else []
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"image": str(p), "top": [{"char": c, "p": v} for c, v in r]}
                    for p, r in zip(good, results, strict=True)
                ],
                indent=2,
            )
        )
    else:
        for path, ranked in zip(good, results, strict=True):
            typer.echo(f"{path}: " + "  ".join(f"{c!r} {v:.3f}" for c, v in ranked))
    for reason in bad:
        typer.secho(f"skipped: {reason}", fg=typer.colors.YELLOW, err=True)
    if bad:
        raise fail(f"{len(bad)} of {len(bad) + len(good)} images could not be read (listed above)")


@command()
def explain(
    checkpoint: Annotated[Path, typer.Option(help="a checkpoint from train")],
    images: Annotated[list[Path], typer.Argument(help="character images or folders of them")],
    out: Annotated[Path, typer.Option(help="the picture to write (PNG)")] = Path("explain.png"),
    device: DeviceOpt = None,
) -> None:
    """Where the network looks: occlusion sensitivity and gradient saliency of its top class, per image."""
    import numpy as np

    from iamchars.nn import pick_device
    from iamchars.train.checkpoints import model_from_checkpoint
    from iamchars.train.inference import read_images
    from iamchars.train.plots import explanation_sheet, save_figure

    output_file(out, inputs={"--checkpoint": checkpoint, **{f"IMAGE {i + 1}": p for i, p in enumerate(images)}})
    model, ckpt = model_from_checkpoint(checkpoint, pick_device(device or "auto"))
    paths, prepared, bad = read_images(images, int(ckpt["image_size"]))
    for reason in bad:
        typer.secho(f"skipped: {reason}", fg=typer.colors.YELLOW, err=True)
    if not paths:
        raise UserError(f"none of the {len(bad)} images could be read (listed above)")
    chars = [c["char"] for c in ckpt["classes"]["classes"]]
    save_figure(explanation_sheet(model, np.stack(prepared), [p.name for p in paths], chars), out)
    typer.echo(f"explained {len(paths)} image(s): {out}")


@command("export-model")
def export_model_cmd(
    checkpoint: Annotated[Path, typer.Option(help="a checkpoint from train")],
    out: Annotated[Path, typer.Option(help="output file (.pt2 or .onnx)")],
    fmt: Annotated[str, typer.Option("--format", help="pt2 (torch.export) or onnx")] = "pt2",
) -> None:
    """Export a trained model for deployment (input: N x 1 x S x S floats in [0, 1], white ink on black)."""
    import torch

    from iamchars.train.checkpoints import model_from_checkpoint
    from iamchars.train.inference import export_model

    if fmt not in ("pt2", "onnx"):
        raise fail(f"--format must be pt2 or onnx, got {fmt!r}", 2)
    output_file(out, inputs={"--checkpoint": checkpoint})
    if fmt == "onnx":
        output_file(out.with_name(out.name + ".data"), "--out (its weights file)", inputs={"--checkpoint": checkpoint})
    model, ckpt = model_from_checkpoint(checkpoint, torch.device("cpu"))
    try:
        export_model(model, int(ckpt["image_size"]), out, fmt)
    except (RuntimeError, ValueError) as exc:
        raise UserError(str(exc)) from None
    typer.echo(f"exported {fmt} model to {out}")
