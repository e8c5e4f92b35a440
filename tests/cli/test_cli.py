"""The command line as a whole (`iamchars/cli/`): every command registered with its help, one-line errors
with their exit codes, config values reaching the stages typed, and `python -m iamchars.cli`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from iamchars import __version__
from iamchars.cli import app
from iamchars.cli.common import load_cfg, output_dir, output_file
from iamchars.errors import UserError

runner = CliRunner()
COMMANDS = {
    "download": "data",
    "info": "data",
    "synth": "data",
    "build-dataset": "dataset",
    "evaluate-segmentation": "dataset",
    "train": "model",
    "zoo": "model",
    "evaluate": "model",
    "predict": "model",
    "explain": "model",
    "export-model": "model",
}


def test_every_command_is_registered_from_its_family_module() -> None:
    group = typer.main.get_command(app)
    registered = {name: c.callback.__module__ for name, c in group.commands.items()}  # type: ignore[attr-defined]
    assert registered == {name: f"iamchars.cli.{family}" for name, family in COMMANDS.items()}
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"iamchars {__version__}"
    for name in COMMANDS:
        shown = runner.invoke(app, [name, "--help"], terminal_width=200)
        assert shown.exit_code == 0, (name, shown.output)
        assert "Usage:" in shown.output and "--help" in shown.output


def test_flags_and_set_overrides_reach_the_config_typed() -> None:
    cfg = load_cfg(None, ["segment.align.runs=2", "train.lr=0.5"], {"train.lr": 0.25, "export.size": None})
    assert cfg.segment.align.runs == 2 and cfg.train.lr == 0.25 and cfg.export.size == 32
    assert isinstance(cfg.train.lr, float) and isinstance(cfg.segment.align.runs, int)


def test_bad_values_are_one_line_and_exit_2_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = runner.invoke(app, ["synth", "--out", str(out), "--set", "segment.align.runs=0", "--no-progress"])
    assert result.exit_code == 2 and "segment.align.runs = 0: must be >= 1" in result.output
    assert result.output.count("\n") == 1 and not out.exists()
    result = runner.invoke(app, ["evaluate", "--checkpoint", "c.pt", "--data", "d", "--split", "dev"])
    assert result.exit_code == 2 and "--split must be train, val or test" in result.output


def test_renamed_flags_and_keys_name_what_they_are_now(tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = runner.invoke(app, ["build-dataset", "--iam-root", str(tmp_path), "--out", str(out), "--min-score", "0.5"])
    assert result.exit_code == 2 and "--min-score is now --min-confidence" in result.output
    assert result.output.count("\n") == 1 and not out.exists()
    old = tmp_path / "old.toml"
    old.write_text("[export]\nmin_score = 0.5\n")
    result = runner.invoke(app, ["build-dataset", "--iam-root", str(tmp_path), "--out", str(out), "--config", str(old)])
    assert result.exit_code == 2 and "'export.min_score' is now 'export.min_confidence'" in result.output
    assert load_cfg(None, [], {"export.min_confidence": 0.9}).export.min_confidence == 0.9


def test_output_checks_refuse_inputs_files_and_unwritable_folders(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    with pytest.raises(UserError) as caught:
        output_dir(source / "sub", inputs={"--iam-root": source})
    assert caught.value.exit_code == 2 and "--iam-root" in str(caught.value)
    taken = tmp_path / "file"
    taken.write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        output_dir(taken)
    with pytest.raises(UserError, match="is a folder; give a file name"):
        output_file(source)
    assert output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b" and not (tmp_path / "a").exists()


def test_python_dash_m_runs_the_same_app() -> None:
    done = subprocess.run([sys.executable, "-m", "iamchars.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"iamchars {__version__}"
