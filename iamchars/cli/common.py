"""What every command shares: the typer app, the `command` decorator that turns every user-fixable error into
one line, config options whose range and default come from the dataclasses, and the output checks made at the
door (an output folder that can be written and is none of the command's inputs)."""

from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from iamchars import __version__
from iamchars.config import (
    DEVICE_HELP,
    DEVICE_PATTERN,
    PipelineConfig,
    TrainConfig,
    default_of,
    field_limits,
    load_config,
)
from iamchars.errors import UserError
from iamchars.fileio import refuse_overlap

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
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


RERUN = "run the same command again to go on from what was finished"


def command(name: str | None = None, resume_hint: str = RERUN) -> Callable[[F], F]:
    """`app.command`, with every user-fixable error (and any OS error: a full disk, a read-only folder)
    turned into one line and a non-zero exit instead of a traceback. SIGTERM is handled like Ctrl-C (exit 143
    instead of 130): one line saying how to go on (`resume_hint`)."""

    def register(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            from iamchars.parallel import Terminated, raise_on_sigterm

            try:
                with raise_on_sigterm():
                    return fn(*args, **kwargs)
            except UserError as exc:
                raise fail(str(exc), exc.exit_code) from None
            except OSError as exc:
                where = f"{exc.filename}: " if exc.filename else ""
                raise fail(f"{where}{exc.strerror or exc}") from None
            except KeyboardInterrupt as exc:
                code = 143 if isinstance(exc, Terminated) else 130
                raise fail(f"interrupted; {resume_hint}", code) from None

        app.command(name)(run)
        return fn

    return register


def cfg_option(section: type, key: str, help: str, *flags: str, choices: Iterable[str] = ()) -> Any:
    """A typer option for a config field: its range or choices (checked before any work) and its default
    from the dataclass, both shown in --help. A field whose choices are a registry's names lists those given
    as `choices` (the registry, read by the command file). Its CLI default is None so the config file keeps
    priority."""
    limits = field_limits(section, key)
    default = default_of(section, key)
    listed = tuple(limits.get("choices", ())) or tuple(choices)
    if listed:
        help = f"{help} ({', '.join(listed)})"
    shown = str(default).lower() if isinstance(default, bool) else str(default)
    return typer.Option(*flags, help=help, min=limits.get("min"), max=limits.get("max"), show_default=shown)


EpochsOpt = Annotated[int | None, cfg_option(TrainConfig, "epochs", "passes over the training set")]
BatchOpt = Annotated[int | None, cfg_option(TrainConfig, "batch_size", "images per step")]


def _device(value: str | None) -> str | None:
    """A device name checked at the door (exit 2), as the config checks its own."""
    if value is not None and not re.fullmatch(DEVICE_PATTERN, value):
        raise typer.BadParameter(f"{value!r}: must be {DEVICE_HELP}")
    return value


DeviceOpt = Annotated[str | None, typer.Option(help=DEVICE_HELP, show_default="auto", callback=_device)]
ThreadsOpt = Annotated[
    int | None,
    cfg_option(
        TrainConfig,
        "threads",
        "CPU threads (0: OMP_NUM_THREADS when set, else the usable CPUs that other work leaves free)",
    ),
]


def load_cfg(path: Path | None, overrides: list[str] | None, extra: dict[str, object]) -> PipelineConfig:
    """Config file, then --set, then the explicit flags of a command (which win, as typed values)."""
    try:
        return load_config(path, overrides or [], extra)
    except UserError as exc:
        raise fail(str(exc), 2) from None


Inputs = dict[str, "Path | None"]


def _refuse_overlap(outputs: dict[str, Path], inputs: Inputs | None, replaced: bool) -> None:
    given = {flag: p for flag, p in (inputs or {}).items() if p is not None}
    refuse_overlap(outputs, given, list(outputs) if replaced else [])


def output_dir(path: Path, flag: str = "--out", inputs: Inputs | None = None, replaced: bool = False) -> Path:
    """Check at the door, before any work, that an output folder can be made and written, and that it is
    none of the command's `inputs` (flag -> path) nor lies inside one (nor, when the command `replaced` what
    it holds, holds one); nothing is left behind by the check (a folder that does not exist is not made)."""
    _refuse_overlap({flag: path}, inputs, replaced)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: is a file, not a folder; give a folder path")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {path}: {existing} is a file, not a folder")
    try:
        tempfile.TemporaryDirectory(dir=existing, prefix=".iamchars-probe-").cleanup()
    except OSError as exc:
        raise UserError(
            f"{flag} {path}: cannot write in {existing} ({exc.strerror or exc}); choose a folder you can write to"
        ) from None
    return path


def output_file(path: Path, flag: str = "--out", inputs: Inputs | None = None) -> Path:
    """`output_dir`'s checks for an output file: not a folder, not an input, in a folder that can be written."""
    _refuse_overlap({flag: path}, inputs, False)
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder; give a file name")
    output_dir(path.parent if str(path.parent) else Path("."), f"{flag} {path}: its folder")
    return path


def _version(value: bool) -> None:
    if value:
        typer.echo(f"iamchars {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """iamchars: IAM words -> character boxes -> character dataset -> CNN."""
