"""The `iamchars` command line: each command parses its options, calls a stage runner, reports."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from iamchars import __version__
from iamchars.config import ConfigError, PipelineConfig, load_config

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn the IAM Handwriting Database into a character dataset and train a recogniser on it.",
)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="pipelines/*.toml file")]  # noqa: UP045
SetOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
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
    base_url: Annotated[Optional[str], typer.Option(help="IAM site or a mirror")] = None,  # noqa: UP045
    from_path: Annotated[
        Optional[Path],  # noqa: UP045
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
    iam_root: Annotated[Path, typer.Option(help="IAM root (ascii/, lines/, words/ ...)")] = Path(
        "data/raw/iam"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    strict: Annotated[bool, typer.Option(help="fail on the first malformed row")] = False,
    check_images: Annotated[bool, typer.Option(help="check every image exists and matches its box")] = True,
    rejects: Annotated[Optional[Path], typer.Option(help="write the rejects report (CSV) here")] = None,  # noqa: UP045
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
    forms: Annotated[Optional[int], typer.Option(help="number of forms")] = None,  # noqa: UP045
    lines_per_form: Annotated[Optional[int], typer.Option(help="lines per form")] = None,  # noqa: UP045
    seed: Annotated[Optional[int], typer.Option(help="random seed")] = None,  # noqa: UP045
    fonts: Annotated[Optional[str], typer.Option(help="comma-separated writer fonts (fontpkg names)")] = None,  # noqa: UP045
    workers: Annotated[Optional[int], typer.Option(help="processes (0: one per core)")] = None,  # noqa: UP045
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
