"""Every fault-injection trial of `tests/faults.py`, in-process through typer's CliRunner (the process
trials start real processes, as they must)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from iamchars.cli import app
from tests.faults import TRIALS, Outcome, Trial, Workspace, file_size_limit, prepare

pytestmark = pytest.mark.slow  # every trial runs the CLI end to end, after a dataset build and a training

runner = CliRunner()


def runner_cli(*args: object, fsize: int | None = None) -> Outcome:
    with file_size_limit(fsize):
        result = runner.invoke(app, [str(a) for a in args])
    return Outcome(result.exit_code, result.output)


@pytest.fixture(scope="module")
def workspace(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return prepare(tmp_path_factory.mktemp("faults"), runner_cli, synth_corpus)


@pytest.mark.parametrize("trial", TRIALS, ids=[t.name for t in TRIALS])
def test_fault(trial: Trial, workspace: Workspace) -> None:
    passed, got = trial.run(workspace)
    assert passed, f"{trial.name}: expected {trial.expected}; got {got}"
