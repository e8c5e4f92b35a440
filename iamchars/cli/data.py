"""Corpus commands: `download` (IAM's archives, or ones you have), `info` (a corpus summarised and checked)
and `synth` (a synthetic corpus in IAM's format with every character's true box)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from iamchars.cli.common import ConfigOpt, SetOpt, cfg_option, command, load_cfg, output_dir, output_file
from iamchars.config import SynthConfig
from iamchars.errors import UserError


@command()
def download(
    out: Annotated[Path, typer.Option(help="target folder")] = Path("data/raw/iam"),
    base_url: Annotated[str | None, typer.Option(help="IAM site or a mirror")] = None,
    from_path: Annotated[
        Path | None,
        typer.Option("--from", help="import archives or an extracted tree you already have"),
    ] = None,
    netrc_file: Annotated[Path | None, typer.Option("--netrc", help="netrc file (default ~/.netrc)")] = None,
    retries: Annotated[int, typer.Option(help="reconnects per file after a dropped connection", min=0, max=100)] = 5,
    timeout: Annotated[float, typer.Option(help="socket timeout in seconds", min=1.0, max=3600.0)] = 60.0,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Fetch IAM's ascii, lines, words, xml and split archives (resumable, verified, safely extracted)."""
    from iamchars.iam.download import DEFAULT_BASE_URL, IAMClient, import_local, resolve_credentials
    from iamchars.iam.download import download as run_download

    output_dir(out, inputs={"--from": from_path, "--netrc": netrc_file})
    if from_path is not None:
        report = import_local(from_path, out)
    else:
        url = base_url or DEFAULT_BASE_URL
        creds = resolve_credentials(os.environ, url, netrc_file)
        client = IAMClient(url, timeout=timeout, retries=retries)
        report = run_download(out, client, creds, progress=progress)
    for name in report.downloaded:
        typer.echo(f"downloaded  {name}")
    for name in report.extracted:
        typer.echo(f"extracted   {name}")
    for name in report.skipped:
        typer.echo(f"complete    {name} (skipped)")
    typer.echo(f"{report.bytes_transferred:,} bytes transferred; IAM root: {out}")


@command()
def info(
    iam_root: Annotated[Path, typer.Option(help="IAM root (ascii/, lines/, words/ ...)")] = Path("data/raw/iam"),
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    strict: Annotated[bool, typer.Option(help="fail on the first malformed row")] = False,
    check_images: Annotated[
        bool, typer.Option(help="check every image: present, a complete PNG, sized as its box")
    ] = True,
    rejects: Annotated[Path | None, typer.Option(help="write the rejects report (CSV) here")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Summarise an IAM root: forms, writers, lines, words, ok/err, characters, splits, rejects, warnings."""
    from iamchars.fileio import write_table
    from iamchars.iam.corpus import load_corpus
    from iamchars.iam.info import format_summary, summarize

    cfg = load_cfg(config, set_, {"parse.strict": strict, "parse.check_images": check_images})
    if rejects is not None:
        output_file(rejects, "--rejects", inputs={"--iam-root": iam_root, "--config": config})
    corpus = load_corpus(iam_root, cfg.parse, cfg.split)
    if rejects is not None:
        write_table(corpus.rejects, rejects)
    summary = summarize(corpus)
    if as_json:
        json.dump(summary, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        typer.echo(format_summary(summary))
    for warning in corpus.warnings:
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)


@command()
def synth(
    out: Annotated[Path, typer.Option(help="target folder (IAM layout)")] = Path("data/synth/iam"),
    forms: Annotated[int | None, cfg_option(SynthConfig, "forms", "number of forms")] = None,
    lines_per_form: Annotated[int | None, cfg_option(SynthConfig, "lines_per_form", "lines per form")] = None,
    seed: Annotated[int | None, cfg_option(SynthConfig, "seed", "random seed (same seed, same bytes)")] = None,
    fonts: Annotated[
        str | None, typer.Option(help="comma-separated writer fonts (fontpkg names)", show_default="all 12")
    ] = None,
    workers: Annotated[
        int | None, cfg_option(SynthConfig, "workers", "processes (0: one per CPU this process may use)")
    ] = None,
    preview: Annotated[bool, typer.Option(help="save preview.png with true boxes over a few lines")] = False,
    force: Annotated[bool, typer.Option(help="replace a corpus already in OUT (its files are removed first)")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write a synthetic handwriting corpus in IAM's format, with the true box of every character."""
    from iamchars.synth.corpus import clear_corpus, write_corpus, write_preview

    font_list = [f.strip() for f in fonts.split(",") if f.strip()] if fonts else None
    cfg = load_cfg(
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
    output_dir(out, inputs={"--config": config}, replaced=True)
    clear_corpus(out, force)
    try:
        counts = write_corpus(out, cfg.synth, cfg.split, progress=progress)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    typer.echo(", ".join(f"{v:,} {k}" for k, v in counts.items()) + f" written to {out}")
    if preview:
        typer.echo(f"preview: {write_preview(out, cfg)}")
