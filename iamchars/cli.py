"""The `iamchars` command line: each command parses its options, calls a stage runner, reports."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from iamchars import __version__
from iamchars.config import ConfigError, PipelineConfig, load_config

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn the IAM Handwriting Database into a character dataset and train a recogniser on it.",
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="pipelines/*.toml file")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a config value: section.key=value (TOML syntax), repeatable"),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _config(path: Path | None, overrides: list[str] | None, extra: dict[str, object]) -> PipelineConfig:
    """Config file, then --set, then the explicit flags of a command (which win)."""
    flags = [f"{k}={json.dumps(v)}" for k, v in extra.items() if v is not None]
    try:
        return load_config(path, [*(overrides or []), *flags])
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"iamchars {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    """iamchars: IAM words -> character boxes -> character dataset -> CNN."""


@app.command()
def download(
    out: Annotated[Path, typer.Option(help="target folder")] = Path("data/raw/iam"),
    base_url: Annotated[str | None, typer.Option(help="IAM site or a mirror")] = None,
    from_path: Annotated[
        Path | None,
        typer.Option("--from", help="import archives or an extracted tree you already have"),
    ] = None,
    netrc_file: Annotated[Path | None, typer.Option("--netrc", help="netrc file (default ~/.netrc)")] = None,
    retries: Annotated[int, typer.Option(help="reconnects per file after a dropped connection")] = 5,
    timeout: Annotated[float, typer.Option(help="socket timeout in seconds")] = 60.0,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Fetch IAM's ascii, lines, words, xml and split archives (resumable, verified, safely extracted)."""
    from iamchars.iam.archives import CorruptArchiveError, UnsafeArchiveError
    from iamchars.iam.download import (
        DEFAULT_BASE_URL,
        DownloadError,
        IAMClient,
        import_local,
        resolve_credentials,
    )
    from iamchars.iam.download import (
        download as run_download,
    )

    try:
        if from_path is not None:
            report = import_local(from_path, out)
        else:
            url = base_url or DEFAULT_BASE_URL
            creds = resolve_credentials(os.environ, url, netrc_file)
            client = IAMClient(url, timeout=timeout, retries=retries)
            report = run_download(out, client, creds, progress=progress)
    except (DownloadError, UnsafeArchiveError, CorruptArchiveError, OSError) as exc:
        raise _fail(str(exc)) from None
    for name in report.downloaded:
        typer.echo(f"downloaded  {name}")
    for name in report.extracted:
        typer.echo(f"extracted   {name}")
    for name in report.skipped:
        typer.echo(f"complete    {name} (skipped)")
    typer.echo(f"{report.bytes_transferred:,} bytes transferred; IAM root: {out}")


@app.command()
def info(
    iam_root: Annotated[Path, typer.Option(help="IAM root (ascii/, lines/, words/ ...)")] = Path("data/raw/iam"),
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    strict: Annotated[bool, typer.Option(help="fail on the first malformed row")] = False,
    check_images: Annotated[bool, typer.Option(help="check every image exists and matches its box")] = True,
    rejects: Annotated[Path | None, typer.Option(help="write the rejects report (CSV) here")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Summarise an IAM root: forms, writers, lines, words, ok/err, characters, splits, rejects."""
    from iamchars.fileio import write_table
    from iamchars.iam.corpus import IAMLayoutError, load_corpus
    from iamchars.iam.info import format_summary, summarize
    from iamchars.iam.rejects import IAMFormatError

    cfg = _config(config, set_, {"parse.strict": strict, "parse.check_images": check_images})
    try:
        corpus = load_corpus(iam_root, cfg.parse, cfg.split)
    except (IAMLayoutError, IAMFormatError) as exc:
        raise _fail(str(exc)) from None
    if rejects is not None:
        write_table(corpus.rejects, rejects)
    summary = summarize(corpus)
    if as_json:
        json.dump(summary, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        typer.echo(format_summary(summary))


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="target folder (IAM layout)")] = Path("data/synth/iam"),
    forms: Annotated[int | None, typer.Option(help="number of forms")] = None,
    lines_per_form: Annotated[int | None, typer.Option(help="lines per form")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    fonts: Annotated[str | None, typer.Option(help="comma-separated writer fonts (fontpkg names)")] = None,
    workers: Annotated[int | None, typer.Option(help="processes (0: one per core)")] = None,
    preview: Annotated[bool, typer.Option(help="save preview.png with true boxes over a few lines")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write a synthetic handwriting corpus in IAM's format, with the true box of every character."""
    from iamchars.fileio import write_png
    from iamchars.fonts import FontNotFoundError
    from iamchars.iam.corpus import load_corpus
    from iamchars.synth.corpus import preview as draw_preview
    from iamchars.synth.corpus import write_corpus

    font_list = [f.strip() for f in fonts.split(",") if f.strip()] if fonts else None
    cfg = _config(
        config,
        set_,
        {
            "synth.forms": forms,
            "synth.lines_per_form": lines_per_form,
            "synth.seed": seed,
            "synth.fonts": font_list,
            "synth.workers": workers,
        },
    )
    try:
        counts = write_corpus(out, cfg.synth, cfg.split, progress=progress)
    except (ValueError, FontNotFoundError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(", ".join(f"{v:,} {k}" for k, v in counts.items()) + f" written to {out}")
    if preview:
        import pandas as pd

        corpus = load_corpus(out, cfg.parse, cfg.split)
        picture = draw_preview(out, pd.read_csv(out / "chars_gt.csv", keep_default_na=False), corpus.lines)
        write_png(out / "preview.png", picture)
        typer.echo(f"preview: {out / 'preview.png'}")


@app.command("build-dataset")
def build_dataset_cmd(
    iam_root: Annotated[Path, typer.Option(help="IAM root (real or synthetic)")] = Path("data/raw/iam"),
    out: Annotated[Path, typer.Option(help="dataset folder")] = Path("data/processed/iam"),
    method: Annotated[str | None, typer.Option(help="segmentation: refined (default) or seed")] = None,
    classes: Annotated[str | None, typer.Option(help="byclass, bymerge, letters or digits")] = None,
    punctuation: Annotated[bool | None, typer.Option("--punctuation/--no-punctuation")] = None,
    size: Annotated[int | None, typer.Option(help="image side S (28 for EMNIST-like)")] = None,
    include_err: Annotated[bool | None, typer.Option("--include-err/--exclude-err")] = None,
    min_score: Annotated[float | None, typer.Option(help="drop characters below this confidence")] = None,
    boxes: Annotated[str | None, typer.Option(help="estimated, or gt:PATH/chars_gt.csv")] = None,
    workers: Annotated[int | None, typer.Option(help="processes (0: one per core)")] = None,
    font: Annotated[str | None, typer.Option(help="alignment font: fontpkg name or TTF path")] = None,
    k_std: Annotated[float | None, typer.Option(help="vertical band half-height in line-ink stds")] = None,
    strict: Annotated[bool | None, typer.Option("--strict/--lenient", help="fail on malformed rows")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Parse, segment and export a character dataset (manifest, PNGs, packed arrays, QA pictures, card)."""
    from iamchars.dataset.export import DatasetError, build_dataset
    from iamchars.fonts import FontNotFoundError
    from iamchars.iam.corpus import IAMLayoutError
    from iamchars.iam.rejects import IAMFormatError

    cfg = _config(
        config,
        set_,
        {
            "segment.method": method,
            "export.classes": classes,
            "export.punctuation": punctuation,
            "export.size": size,
            "export.include_err": include_err,
            "export.min_score": min_score,
            "export.boxes": boxes,
            "export.workers": workers,
            "segment.font": font,
            "segment.k_std": k_std,
            "parse.strict": strict,
        },
    )
    try:
        summary = build_dataset(iam_root, out, cfg, progress=progress)
    except (DatasetError, IAMLayoutError, IAMFormatError, FontNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    t = summary["timings"]
    rate = summary["characters"] / max(t["segment_crop_s"], 1e-9)
    typer.echo(
        f"{summary['characters']:,} characters exported to {out} "
        f"(train {summary['splits']['train']:,} / val {summary['splits']['val']:,} / "
        f"test {summary['splits']['test']:,}); {rate:,.0f} chars/s; rejects: {summary['rejects']:,}"
    )
    typer.echo(f"card: {out / 'card.md'}   QA pictures: {out / 'qa'}")


@app.command("evaluate-segmentation")
def evaluate_segmentation(
    gt: Annotated[Path, typer.Option(help="chars_gt.csv of a synthetic corpus")],
    manifest: Annotated[Path, typer.Option(help="manifest.parquet (or .csv) of a built dataset")],
    iam_root: Annotated[Path | None, typer.Option(help="IAM root, for the worst-cases picture")] = None,
    out: Annotated[Path | None, typer.Option(help="report folder (default: beside the manifest)")] = None,
    worst: Annotated[int, typer.Option(help="worst cases to draw")] = 16,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """IoU of estimated character boxes against true boxes, per character, with a worst-cases picture."""
    import pandas as pd

    from iamchars.fileio import write_json, write_png, write_table
    from iamchars.segment.evaluate import evaluate, per_character

    try:
        truth = pd.read_csv(gt, keep_default_na=False, dtype={"char": str, "word_id": str})
        est = (
            pd.read_parquet(manifest)
            if manifest.suffix == ".parquet"
            else pd.read_csv(manifest, keep_default_na=False, dtype={"char": str, "word_id": str})
        )
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read input: {exc}") from None
    report = out or manifest.parent / "segeval"
    result, matched = evaluate(truth, est)
    write_json(report / "summary.json", result)
    write_table(per_character(matched), report / "per_character.csv")
    if iam_root is not None:
        from iamchars.config import ParseConfig
        from iamchars.iam.corpus import load_corpus
        from iamchars.segment.runner import load_line_images
        from iamchars.viz.segeval import worst_cases_picture

        corpus = load_corpus(iam_root, ParseConfig(check_images=False))
        worst_rows = matched[matched["found"]].sort_values(["iou", "word_id", "char_index"])
        worst_rows = worst_rows.drop_duplicates("word_id").head(worst)  # one panel per word
        lines = corpus.lines[corpus.lines["line_id"].isin(set(worst_rows["word_id"].str.rsplit("-", n=1).str[0]))]
        images, _ = load_line_images(iam_root, lines, set(lines["line_id"]))
        word_chars = matched[matched["word_id"].isin(set(worst_rows["word_id"]))]
        write_png(
            report / "worst_cases.png",
            worst_cases_picture(worst_rows, word_chars, corpus.words, images, corpus.lines),
        )
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for scope, s in result.items():
        typer.echo(f"{scope}: {s['characters']:,} characters ({s['missing']:,} missing = IoU 0)")
        typer.echo(
            f"  mean IoU {s['mean_iou']:.3f}   IoU>=0.5 {100 * s['share_iou_ge_0.5']:.1f}%   "
            f"IoU>=0.7 {100 * s['share_iou_ge_0.7']:.1f}%   horizontal IoU {s['mean_iou_x']:.3f}"
        )
        if "mean_iou_by_score_quintile" in s:
            q = ", ".join(f"{v:.2f}" for v in s["mean_iou_by_score_quintile"])
            typer.echo(f"  score vs IoU: Spearman {s['score_iou_spearman']:.2f}; mean IoU by score quintile: {q}")
    typer.echo(f"report: {report}")


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="dataset folder from build-dataset")] = Path("data/processed/iam"),
    out: Annotated[Path, typer.Option(help="run folder (checkpoints, metrics, plots)")] = Path("data/runs/default"),
    model: Annotated[str | None, typer.Option(help="lenet5, vgg or resnet")] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    optimizer: Annotated[str | None, typer.Option(help="adamw or sgd (Nesterov)")] = None,
    schedule: Annotated[str | None, typer.Option(help="onecycle or cosine")] = None,
    ema: Annotated[float | None, typer.Option(help="EMA decay of the weights (0: off)")] = None,
    compile_model: Annotated[bool | None, typer.Option("--compile/--no-compile")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    patience: Annotated[int | None, typer.Option(help="early stopping patience in epochs (0: off)")] = None,
    resume: Annotated[bool, typer.Option(help="continue from OUT/checkpoints/last.pt")] = False,
    plots: Annotated[bool, typer.Option(help="save the pictures under OUT/plots")] = True,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Train a CNN on the packed arrays (GPU when there is one), with checkpoints, metrics and plots."""
    from iamchars.train.data import DataError, load_dataset
    from iamchars.train.engine import TrainingDiverged, pick_device
    from iamchars.train.engine import train as run_train
    from iamchars.train.models import build_model, summary
    from iamchars.train.plots import write_all

    cfg = _config(
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
        },
    ).train
    try:
        dev = pick_device(cfg.device)
        dataset = load_dataset(data, dev)
    except (DataError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    if len(dataset.train) < cfg.batch_size or len(dataset.val) == 0:
        raise _fail(
            f"{data}: {len(dataset.train)} training / {len(dataset.val)} validation images; need at least "
            f"one batch ({cfg.batch_size}) to train and some to validate"
        )
    typer.echo(
        f"device: {dev}; train {len(dataset.train):,} / val {len(dataset.val):,} / "
        f"test {len(dataset.test):,} images of {dataset.size}x{dataset.size}, {dataset.num_classes} classes"
    )
    typer.echo(summary(build_model(cfg.model, dataset.num_classes, dataset.size), dataset.size))
    try:
        result = run_train(dataset, out, cfg, resume=resume, progress=progress, log=typer.echo)
    except (TrainingDiverged, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    metrics = result["metrics"]
    test = metrics["test"]
    if plots:
        import numpy as np

        write_all(
            out,
            result["model"],
            result["history"],
            dataset.test.images.cpu().numpy(),
            dataset.test.labels.cpu().numpy(),
            result["test_logits"],
            np.array(test["confusion"]),
            dataset.class_chars,
        )
    typer.echo(
        f"best epoch {metrics['best_epoch']}: val top-1 {metrics['val_top1']:.4f}; test top-1 "
        f"{test['top1']:.4f}, top-5 {test['top5']:.4f} on {test['samples']:,} images"
    )
    typer.echo(
        f"metrics: {out / 'metrics.json'}   history: {out / 'history.csv'}   "
        f"checkpoints: {out / 'checkpoints'}" + (f"   plots: {out / 'plots'}" if plots else "")
    )


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Option(help="a checkpoint from train (best.pt or last.pt)")],
    data: Annotated[Path, typer.Option(help="a dataset folder with the same class set")],
    split: Annotated[str, typer.Option(help="train, val or test")] = "test",
    device: Annotated[str, typer.Option()] = "auto",
    out: Annotated[
        Path | None, typer.Option(help="write metrics JSON here (and per-image predictions beside it)")
    ] = None,
) -> None:
    """Top-1/top-5 and per-class precision/recall of a checkpoint on a dataset split."""
    from iamchars.fileio import write_json, write_table
    from iamchars.train.data import DataError, load_dataset
    from iamchars.train.engine import evaluate_split, model_from_checkpoint, pick_device

    dev = pick_device(device)
    try:
        model, ckpt = model_from_checkpoint(checkpoint, dev)
        dataset = load_dataset(data, dev)
    except (DataError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    if dataset.class_chars != [c["char"] for c in ckpt["classes"]["classes"]]:
        raise _fail(
            f"{data}: class set {dataset.classes['class_set']} differs from the checkpoint's "
            f"{ckpt['classes']['class_set']}"
        )
    if split not in ("train", "val", "test"):
        raise _fail(f"--split must be train, val or test, got {split!r}")
    part = getattr(dataset, split)
    metrics, logits = evaluate_split(model, part, dataset.class_chars)
    if out is not None:
        import pandas as pd
        import torch

        write_json(out, metrics)
        probs = torch.softmax(logits.float(), 1)
        best, pred = probs.max(1)
        chars = dataset.class_chars
        write_table(
            pd.DataFrame(
                {
                    "char_id": part.char_ids,
                    "true": [chars[int(i)] for i in part.labels.cpu()],
                    "predicted": [chars[int(i)] for i in pred.cpu()],
                    "probability": best.cpu().numpy().round(4),
                }
            ),
            out.with_name(out.stem + "_predictions.csv"),
        )
    worst = sorted(((v["recall"], ch) for ch, v in metrics["per_class"].items() if v["recall"] is not None))[:8]
    typer.echo(
        f"{split}: {metrics['samples']:,} images  top-1 {metrics['top1']:.4f}  top-5 {metrics['top5']:.4f}  "
        f"macro recall {metrics['macro_recall']:.4f}"
    )
    typer.echo("lowest recall: " + ", ".join(f"{ch!r} {r:.2f}" for r, ch in worst))


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Option(help="a checkpoint from train")],
    images: Annotated[list[Path], typer.Argument(help="character images (any size, any polarity)")],
    top: Annotated[int, typer.Option("--top", "-k", help="how many classes to show")] = 5,
    device: Annotated[str, typer.Option()] = "auto",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Top-k classes with probabilities for each image."""
    import numpy as np

    from iamchars.fileio import read_gray
    from iamchars.train.engine import model_from_checkpoint, pick_device
    from iamchars.train.inference import prepare_image, top_k

    try:
        model, ckpt = model_from_checkpoint(checkpoint, pick_device(device))
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    size = int(ckpt["image_size"])
    try:
        batch = np.stack([prepare_image(read_gray(p), size) for p in images])
    except ValueError as exc:
        raise _fail(str(exc)) from None
    results = top_k(model, batch, [c["char"] for c in ckpt["classes"]["classes"]], top)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"image": str(p), "top": [{"char": c, "p": v} for c, v in r]}
                    for p, r in zip(images, results, strict=True)
                ],
                indent=2,
            )
        )
        return
    for path, ranked in zip(images, results, strict=True):
        typer.echo(f"{path}: " + "  ".join(f"{c!r} {v:.3f}" for c, v in ranked))


@app.command("export-model")
def export_model_cmd(
    checkpoint: Annotated[Path, typer.Option(help="a checkpoint from train")],
    out: Annotated[Path, typer.Option(help="output file (.pt2 or .onnx)")],
    fmt: Annotated[str, typer.Option("--format", help="pt2 (torch.export) or onnx")] = "pt2",
) -> None:
    """Export a trained model for deployment (input: N x 1 x S x S floats in [0, 1], white ink on black)."""
    from iamchars.train.engine import model_from_checkpoint
    from iamchars.train.inference import export_model

    try:
        model, ckpt = model_from_checkpoint(checkpoint, __import__("torch").device("cpu"))
        export_model(model, int(ckpt["image_size"]), out, fmt)
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"exported {fmt} model to {out}")
