"""Fault injection: bad input, kills and shared-machine trouble, tried end to end on the command line.

`make faults` (python -m tests.faults) runs every trial against the installed `iamchars` in real processes
and prints a table of trial, expected and got; `tests/test_faults.py` runs the same trials in-process with
typer's CliRunner. Each trial builds what it breaks inside the workspace, so trials are independent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd


@dataclass
class Outcome:
    code: int
    output: str

    @property
    def one_line_error(self) -> bool:
        """Failed with exactly one `error:` line and no traceback."""
        errors = [ln for ln in self.output.splitlines() if ln.startswith("error:")]
        return self.code != 0 and len(errors) == 1 and "Traceback" not in self.output


Cli = Callable[..., Outcome]


@dataclass
class Workspace:
    tmp: Path
    corpus: Path
    """A small synthetic IAM root (never modified: trials copy it)."""
    dataset: Path
    """A dataset built from `corpus` (never modified)."""
    run: Path
    """A finished one-epoch training run on `dataset` (never modified)."""
    cli: Cli

    def copy_corpus(self, name: str) -> Path:
        target = self.tmp / name
        shutil.copytree(self.corpus, target)
        return target

    def new(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.tmp))


@dataclass
class Trial:
    name: str
    expected: str
    run: Callable[[Workspace], tuple[bool, str]]
    """Returns (passed, what happened)."""


TRIALS: list[Trial] = []


def trial(name: str, expected: str) -> Callable[[Callable[[Workspace], tuple[bool, str]]], Callable]:
    def register(fn: Callable[[Workspace], tuple[bool, str]]) -> Callable:
        TRIALS.append(Trial(name, expected, fn))
        return fn

    return register


def _first_error(outcome: Outcome) -> str:
    lines = [ln for ln in outcome.output.splitlines() if ln.startswith(("error:", "warning:"))]
    return f"exit {outcome.code}: " + (lines[0][:110] if lines else outcome.output.strip()[-110:])


def _fails_with(outcome: Outcome, *phrases: str) -> tuple[bool, str]:
    ok = outcome.one_line_error and all(p in outcome.output for p in phrases)
    return ok, _first_error(outcome)


def _build(ws: Workspace, root: Path, out: Path, *extra: object, fsize: int | None = None) -> Outcome:
    return ws.cli(
        "build-dataset",
        "--iam-root",
        root,
        "--out",
        out,
        "--workers",
        "1",
        "--method",
        "refined",
        "--no-progress",
        *extra,
        fsize=fsize,
    )


# -- runs that produce nothing must not succeed ---------------------------------------------------------------


@trial("no ascii/forms.txt", "exit 1, one line naming forms.txt and the fix")
def no_forms(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("noforms")
    (root / "ascii" / "forms.txt").unlink()
    return _fails_with(_build(ws, root, ws.new("ds")), "forms.txt", "xml")


@trial("no ascii/words.txt", "exit 0: each line's words found in its ink, the card says so")
def no_words(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("nowords")
    (root / "ascii" / "words.txt").unlink()
    out = ws.new("ds")
    outcome = _build(ws, root, out)
    if outcome.code != 0:
        return False, _first_error(outcome)
    said = "**found** in their lines' ink" in (out / "card.md").read_text()
    return said, "card says the words were found" if said else "card does not say the words were found"


@trial("empty ascii/words.txt", "exit 1: nothing to export")
def empty_words(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("emptywords")
    (root / "ascii" / "words.txt").write_text("")
    return _fails_with(_build(ws, root, ws.new("ds")), "nothing to export")


@trial("tab-separated words.txt", "read like the space-separated file: same characters")
def tabbed_words(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("tabs")
    path = root / "ascii" / "words.txt"
    rows = [r if r.startswith("#") else r.replace(" ", "\t", 8) for r in path.read_text().splitlines()]
    path.write_text("\n".join(rows) + "\n")
    out = ws.new("ds")
    outcome = _build(ws, root, out)
    if outcome.code != 0:
        return False, _first_error(outcome)
    same = len(pd.read_parquet(out / "manifest.parquet")) == len(pd.read_parquet(ws.dataset / "manifest.parquet"))
    return same, f"exit 0, {'same' if same else 'different'} character count"


@trial("--min-confidence 2", "exit 2 before any work: out of range 0..1")
def min_confidence_out_of_range(ws: Workspace) -> tuple[bool, str]:
    outcome = _build(ws, ws.corpus, ws.new("ds"), "--min-confidence", "2")
    out = " ".join(outcome.output.replace("\u2502", " ").split())  # the message, unwrapped from its box
    # the range in typer's own words, or in click's ("0<=x<=1") with an older typer
    refused = "Invalid value for '--min-confidence'" in out and ("less than or equal to 1" in out or "<=1" in out)
    return outcome.code == 2 and "Traceback" not in outcome.output and refused, (
        f"exit {outcome.code}: range refused" if outcome.code == 2 else _first_error(outcome)
    )


@trial("--min-score 0.5 (the flag's old name)", "exit 2 before any work, one line naming --min-confidence")
def min_score_is_renamed(ws: Workspace) -> tuple[bool, str]:
    outcome = _build(ws, ws.corpus, ws.new("ds"), "--min-score", "0.5")
    named = "--min-confidence" in _first_error(outcome)
    return outcome.code == 2 and named and "Traceback" not in outcome.output, _first_error(outcome)


@trial("--min-confidence 1 (every character below it)", "exit 1: 0 characters exported, below --min-confidence")
def min_confidence_drops_everything(ws: Workspace) -> tuple[bool, str]:
    outcome = _build(ws, ws.corpus, ws.new("ds"), "--min-confidence", "1")
    return _fails_with(outcome, "0 characters exported", "min-confidence")


@trial("60% of word rows malformed", "exit 1: more than --max-reject-share rejected")
def too_many_rejects(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("garbled")
    path = root / "ascii" / "words.txt"
    rows = path.read_text().splitlines()
    data = [i for i, r in enumerate(rows) if not r.startswith("#")]
    for i in data[: int(len(data) * 0.6)]:
        rows[i] = rows[i].split(" ")[0] + " ok garbage"
    path.write_text("\n".join(rows) + "\n")
    return _fails_with(_build(ws, root, ws.new("ds")), "max-reject-share")


@trial("info on a truncated line PNG", "listed in rejects as truncated, as build-dataset would")
def info_truncated_png(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("trunc")
    png = sorted((root / "lines").rglob("*.png"))[0]
    png.write_bytes(png.read_bytes()[:-100])
    report = ws.new("info") / "rejects.csv"
    outcome = ws.cli("info", "--iam-root", root, "--rejects", report)
    if outcome.code != 0:
        return False, _first_error(outcome)
    rejects = pd.read_csv(report, keep_default_na=False)
    hit = rejects[rejects["item_id"] == png.stem]
    return len(hit) == 1 and "truncated" in hit["reason"].iloc[0], f"reject: {hit['reason'].tolist()}"


@trial("info without words.txt", "a warning that the words will be found in the lines' ink")
def info_no_words(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("infonowords")
    (root / "ascii" / "words.txt").unlink()
    outcome = ws.cli("info", "--iam-root", root)
    warned = "warning: ascii/words.txt is missing: each line's words are found in its ink" in outcome.output
    return outcome.code == 0 and warned, "warned" if warned else _first_error(outcome)


@trial("non-UTF-8 bytes in words.txt", "that row rejected with file, line and byte offset; no U+FFFD anywhere")
def non_utf8(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("latin1")
    path = root / "ascii" / "words.txt"
    data = path.read_bytes().splitlines(keepends=True)
    victim = next(i for i, r in enumerate(data) if not r.startswith(b"#"))
    data[victim] = data[victim].rstrip(b"\n") + b"\xe9\n"
    path.write_bytes(b"".join(data))
    out = ws.new("ds")
    outcome = _build(ws, root, out, "--include-err")
    if outcome.code != 0:
        return False, _first_error(outcome)
    rejects = pd.read_csv(out / "rejects.csv", keep_default_na=False)
    hit = rejects[rejects["reason"].str.contains("not UTF-8")]
    manifest = pd.read_parquet(out / "manifest.parquet")
    clean = not manifest["char"].str.contains("\ufffd").any()
    ok = len(hit) == 1 and int(hit["line"].iloc[0]) == victim + 1 and "byte" in hit["reason"].iloc[0] and clean
    return ok, f"{len(hit)} reject: {hit['file'].tolist()}:{hit['line'].tolist()} {hit['reason'].tolist()}"


@trial("UTF-8 byte-order mark", "no reject: the header comment stays a comment")
def bom(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("bom")
    for name in ("forms.txt", "lines.txt", "words.txt"):
        path = root / "ascii" / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    report = ws.new("info") / "rejects.csv"
    outcome = ws.cli("info", "--iam-root", root, "--rejects", report)
    count = len(pd.read_csv(report)) if report.is_file() else -1
    return outcome.code == 0 and count == 0, f"exit {outcome.code}, {count} rejects"


# -- never destroy earlier results ---------------------------------------------------------------------------


def _record_again(dataset: Path) -> None:
    """Write a dataset's completion record anew for files a trial changed on purpose."""
    from iamchars.dataset.format import RECORD, make_record
    from iamchars.fileio import write_json

    old = json.loads((dataset / RECORD).read_text())
    write_json(dataset / RECORD, make_record(dataset, old["config_digest"], old["inputs_digest"], {}))


def _copy_run(ws: Workspace) -> Path:
    run = ws.new("run") / "run"
    shutil.copytree(ws.run, run)
    return run


def _train(ws: Workspace, out: Path, *extra: object, data: Path | None = None) -> Outcome:
    return ws.cli(
        "train",
        "--data",
        data or ws.dataset,
        "--out",
        out,
        "--model",
        "lenet5",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--no-progress",
        "--no-plots",
        "--threads",
        "1",
        *extra,
    )


@trial("train into a folder holding a run", "exit 1 naming --resume and --force; the run untouched")
def train_over_a_run(ws: Workspace) -> tuple[bool, str]:
    run = _copy_run(ws)
    before = (run / "checkpoints" / "best.pt").read_bytes()
    ok, got = _fails_with(_train(ws, run), "--resume", "--force")
    return ok and (run / "checkpoints" / "best.pt").read_bytes() == before, got


@trial("train --force into a folder holding a run", "exit 0, the run replaced")
def train_force(ws: Workspace) -> tuple[bool, str]:
    run = _copy_run(ws)
    outcome = _train(ws, run, "--force")
    return outcome.code == 0 and (run / "metrics.json").is_file(), f"exit {outcome.code}"


@trial("rebuild with another class set", "no stale qa/classes sheet, no .work/ left")
def rebuild_cleans(ws: Workspace) -> tuple[bool, str]:
    out = ws.new("ds")
    first = _build(ws, ws.corpus, out, "--classes", "byclass")
    second = _build(ws, ws.corpus, out, "--classes", "digits")
    sheets = len(list((out / "qa" / "classes").glob("*.png")))
    labels = pd.read_parquet(out / "manifest.parquet")["label"].nunique()
    ok = first.code == second.code == 0 and sheets == labels and not (out / ".work").exists()
    return ok, f"{sheets} sheets for {labels} classes, .work {'left' if (out / '.work').exists() else 'gone'}"


# -- files others can read -----------------------------------------------------------------------------------


@trial("umask 022", "outputs are 0644 (manifest, arrays, card, checkpoints, metrics), not 0600")
def file_modes(ws: Workspace) -> tuple[bool, str]:
    old = os.umask(0o022)
    try:
        out = ws.new("ds")
        _build(ws, ws.corpus, out)
        run = ws.new("run") / "run"
        _train(ws, run)
    finally:
        os.umask(old)
    files = [
        out / "manifest.csv",
        out / "arrays" / "train.npz",
        out / "card.md",
        run / "checkpoints" / "last.pt",
        run / "metrics.json",
    ]
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files if p.exists()}
    ok = len(modes) == len(files) and set(modes.values()) == {"0o644"}
    return ok, ", ".join(f"{k} {v}" for k, v in modes.items())


# -- one line, not a traceback -------------------------------------------------------------------------------


def _read_only_dir(ws: Workspace) -> Path:
    """A folder this process cannot write in: mode 0555, or where permissions do not bind (root) a path
    inside sysfs, which refuses new entries to everyone."""
    if os.geteuid() != 0:
        folder = ws.new("ro")
        folder.chmod(0o555)
        return folder / "out"
    return Path("/sys/iamchars-read-only-test/out")


def _three_outputs(ws: Workspace, target: Path, phrase: str) -> tuple[bool, str]:
    """build-dataset, synth and train all pointed at one unusable --out: one line each."""
    results = [
        _build(ws, ws.corpus, target),
        ws.cli("synth", "--out", target, "--forms", "1", "--no-progress"),
        _train(ws, target),
    ]
    ok = all(_fails_with(r, phrase)[0] for r in results)
    return ok, " | ".join(f"exit {r.code}" for r in results) + f": {_first_error(results[0])[8:70]}"


@trial("--out is a file (build-dataset, synth, train)", "one line each: is a file, not a folder")
def out_is_a_file(ws: Workspace) -> tuple[bool, str]:
    target = ws.new("file") / "taken"
    target.write_text("x")
    return _three_outputs(ws, target, "is a file")


@trial("--out in a read-only folder (build-dataset, synth, train)", "one line each: cannot write")
def out_read_only(ws: Workspace) -> tuple[bool, str]:
    return _three_outputs(ws, _read_only_dir(ws), "cannot write")


@trial("predict on a folder", "every image in it predicted")
def predict_folder(ws: Workspace) -> tuple[bool, str]:
    folder = ws.new("imgs")
    with np.load(ws.dataset / "arrays" / "test.npz") as data:
        for i, tile in enumerate(data["images"][:3]):
            cv2.imwrite(str(folder / f"c{i}.png"), tile)
    outcome = ws.cli("predict", "--checkpoint", ws.run / "checkpoints" / "best.pt", folder)
    answered = sum(line.startswith(str(folder)) for line in outcome.output.splitlines())
    return outcome.code == 0 and answered == 3, f"exit {outcome.code}, {answered} answers"


def _bad_checkpoints(ws: Workspace) -> dict[str, Path]:
    folder = ws.new("ckpt")
    best = (ws.run / "checkpoints" / "best.pt").read_bytes()
    (folder / "truncated.pt").write_bytes(best[: len(best) // 2])
    (folder / "empty.pt").write_bytes(b"")
    png = next((ws.dataset / "images").rglob("*.png"))
    shutil.copy(png, folder / "picture.png")
    return {p.stem: p for p in sorted(folder.iterdir())}


@trial("truncated / empty / PNG checkpoint (predict, evaluate)", "one line each naming the file")
def bad_checkpoints(ws: Workspace) -> tuple[bool, str]:
    image = next((ws.dataset / "images").rglob("*.png"))
    results = []
    for path in _bad_checkpoints(ws).values():
        results.append(ws.cli("predict", "--checkpoint", path, image))
        results.append(ws.cli("evaluate", "--checkpoint", path, "--data", ws.dataset))
    ok = all(_fails_with(r, "checkpoint")[0] for r in results)
    return ok, f"{sum(r.one_line_error for r in results)}/{len(results)} one-line errors: {_first_error(results[0])}"


@trial("train --resume from a truncated last.pt", "one line naming last.pt")
def resume_truncated(ws: Workspace) -> tuple[bool, str]:
    run = _copy_run(ws)
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    return _fails_with(_train(ws, run, "--resume"), "last.pt")


@trial("evaluate-segmentation with a wrong --iam-root", "one line; no summary.json written")
def segeval_wrong_root(ws: Workspace) -> tuple[bool, str]:
    out = ws.new("segeval")
    outcome = ws.cli(
        "evaluate-segmentation",
        "--gt",
        ws.corpus / "chars_gt.csv",
        "--manifest",
        ws.dataset / "manifest.parquet",
        "--iam-root",
        ws.tmp / "not-an-iam-root",
        "--out",
        out,
    )
    ok, got = _fails_with(outcome, "not an IAM root")
    return ok and not (out / "summary.json").exists(), got


@trial("evaluate-segmentation, truth of another corpus", "refused: no shared word id")
def segeval_disjoint(ws: Workspace) -> tuple[bool, str]:
    gt = pd.read_csv(ws.corpus / "chars_gt.csv", keep_default_na=False)
    other = ws.new("other") / "chars_gt.csv"
    gt.assign(word_id="q" + gt["word_id"].str[1:]).to_csv(other, index=False)
    outcome = ws.cli("evaluate-segmentation", "--gt", other, "--manifest", ws.dataset / "manifest.parquet")
    return _fails_with(outcome, "share no word id")


@trial("predict, one bad file among good ones", "the good ones predicted, the bad one listed, exit 1")
def predict_partial(ws: Workspace) -> tuple[bool, str]:
    folder = ws.new("mixed")
    good = next((ws.dataset / "images").rglob("*.png"))
    shutil.copy(good, folder / "good.png")
    (folder / "bad.png").write_bytes(b"not an image")
    outcome = ws.cli(
        "predict", "--checkpoint", ws.run / "checkpoints" / "best.pt", folder / "good.png", folder / "bad.png"
    )
    answered = any(line.startswith(str(folder / "good.png")) for line in outcome.output.splitlines())
    listed = "bad.png" in outcome.output
    return (
        outcome.code == 1 and answered and listed,
        f"exit {outcome.code}, good answered {answered}, bad listed {listed}",
    )


# -- arguments are checked at the door -----------------------------------------------------------------------


@trial("--size 0, --size 3, --k-std -1, --workers -1, synth --forms -3 / --lines-per-form 0", "exit 2, the range")
def ranges(ws: Workspace) -> tuple[bool, str]:
    out = ws.new("ranges")
    results = [
        _build(ws, ws.corpus, out / "a", "--size", "0"),
        _build(ws, ws.corpus, out / "b", "--size", "3"),
        _build(ws, ws.corpus, out / "c", "--k-std", "-1"),
        ws.cli("build-dataset", "--iam-root", ws.corpus, "--out", out / "d", "--method", "refined", "--workers", "-1"),
        ws.cli("synth", "--out", out / "e", "--forms", "-3"),
        ws.cli("synth", "--out", out / "f", "--lines-per-form", "0"),
    ]
    refused = [r.code == 2 and "Invalid value for '--" in r.output and "Traceback" not in r.output for r in results]
    nothing_written = not any(out.iterdir())
    return all(refused) and nothing_written, f"{sum(refused)}/{len(results)} refused with their range"


@trial("--help of train and synth", "every numeric option shows its default and range")
def help_texts(ws: Workspace) -> tuple[bool, str]:
    train_help = ws.cli("train", "--help").output
    synth_help = ws.cli("synth", "--help").output
    wanted = ["--epochs", "--batch-size", "--lr", "--seed", "--threads", "default: (12)", "1<=x<=10000"]
    missing = [w for w in wanted if w not in train_help] + [
        w for w in ("--forms", "--lines-per-form", "default: (24)", "1<=x<=40") if w not in synth_help
    ]
    return not missing, "all shown" if not missing else f"missing {missing}"


@trial("training data with one class", "a warning that only one class can be learned")
def one_class(ws: Workspace) -> tuple[bool, str]:
    out = ws.new("oneclass") / "ds"
    shutil.copytree(ws.dataset, out)
    for split in ("train", "val", "test"):
        path = out / "arrays" / f"{split}.npz"
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        arrays["labels"] = np.zeros_like(arrays["labels"])
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
    _record_again(out)  # a dataset that was built this way, not one edited behind its record's back
    outcome = _train(ws, out.parent / "run", data=out)
    warned = "warning:" in outcome.output and "1 class" in outcome.output
    return warned, "warned" if warned else _first_error(outcome)


# -- processes -------------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _interruptible() -> None:
    """Ctrl-C back to its default in the child: a shell without job control starts a background `make test`
    with SIGINT ignored, and Python then keeps ignoring it, so the Ctrl-C trial would see a run that never
    stops."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "iamchars.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_interruptible,
        text=True,
    )


def _wait_for_workers(proc: subprocess.Popen, count: int, timeout: float = 60.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _children(proc.pid)
        if len(kids) >= count:
            return kids
        time.sleep(0.05)
    return []


def _kill_and_watch(ws: Workspace, args: list[str], sig: int) -> tuple[bool, str]:
    proc = _spawn(args, ws.tmp)
    workers = _wait_for_workers(proc, 2)
    if not workers:
        proc.kill()
        return False, "no worker processes appeared"
    time.sleep(0.3)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    return not left, f"parent exit {proc.returncode}, {len(workers) - len(left)}/{len(workers)} workers gone"


def _big_corpus(ws: Workspace) -> Path:
    root = ws.tmp / "big"
    if not (root / "ascii" / "words.txt").is_file():
        from iamchars.config import SplitConfig, SynthConfig
        from iamchars.synth.corpus import write_corpus

        write_corpus(root, SynthConfig(forms=12, lines_per_form=6, seed=3, workers=2), SplitConfig(), progress=False)
    return root


def _two_worker_build(root: Path, out: Path) -> list[str]:
    """The refined method: the forms start at once (no corpus-wide self-training first)."""
    args = ["build-dataset", "--iam-root", str(root), "--out", str(out), "--workers", "2", "--method", "refined"]
    return [*args, "--no-progress"]


@trial("kill -9 of build-dataset with 2 workers", "both workers end with their parent")
def kill9_build(ws: Workspace) -> tuple[bool, str]:
    out = ws.new("ds9")
    return _kill_and_watch(ws, _two_worker_build(_big_corpus(ws), out), signal.SIGKILL)


@trial("SIGTERM of synth with 2 workers", "both workers end with their parent")
def term_synth(ws: Workspace) -> tuple[bool, str]:
    out = ws.new("synthterm")
    return _kill_and_watch(
        ws, ["synth", "--out", str(out), "--forms", "400", "--workers", "2", "--no-progress"], signal.SIGTERM
    )


@trial("kill -9 of synth with 2 workers", "both workers end with their parent")
def kill9_synth(ws: Workspace) -> tuple[bool, str]:
    out = ws.new("synth9")
    return _kill_and_watch(
        ws, ["synth", "--out", str(out), "--forms", "400", "--workers", "2", "--no-progress"], signal.SIGKILL
    )


@trial("Ctrl-C of build-dataset with 2 workers", "stops at once (exit 130), finished forms kept and resumed")
def ctrl_c_build(ws: Workspace) -> tuple[bool, str]:
    out = ws.new("dsint")
    root = _big_corpus(ws)
    args = _two_worker_build(root, out)
    proc = _spawn(args, ws.tmp)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and len(list(out.glob(".work/forms/*.npz"))) < 2:
        time.sleep(0.05)
    workers = _children(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the whole foreground group
    start = time.monotonic()
    proc.wait(timeout=30)
    stopped_in = time.monotonic() - start
    kept = len(list(out.glob(".work/forms/*.npz")))
    time.sleep(0.5)
    left = [w for w in workers if _alive(w)]
    again = subprocess.run([sys.executable, "-m", "iamchars.cli", *args], cwd=ws.tmp, capture_output=True, text=True)
    card = (out / "card.md").read_text() if (out / "card.md").is_file() else ""
    resumed = f"Forms resumed from a stopped run (their time is not counted above): {kept:,}." in card
    ok = proc.returncode == 130 and stopped_in < 5 and kept > 0 and not left and again.returncode == 0 and resumed
    return ok, f"exit {proc.returncode} in {stopped_in:.1f} s, {kept} forms kept, resumed {resumed}"


@trial("training threads", "--threads honoured; OMP_NUM_THREADS respected when set; metrics.json says why")
def threads(ws: Workspace) -> tuple[bool, str]:
    run = ws.new("threads") / "run"
    outcome = _train(ws, run, "--threads", "1")
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
    env_run = ws.new("threads-env") / "run"
    args = ["train", "--data", ws.dataset, "--out", env_run, "--model", "lenet5", "--epochs", "1", "--no-plots"]
    proc = subprocess.run(
        [sys.executable, "-m", "iamchars.cli", *map(str, args), "--batch-size", "32", "--no-progress"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    from_env = json.loads((env_run / "metrics.json").read_text()) if proc.returncode == 0 else {}
    ok = outcome.code == 0 and metrics.get("threads") == 1 and metrics.get("threads_why") == "--threads 1"
    ok = ok and from_env.get("threads") == 1 and from_env.get("threads_why") == "OMP_NUM_THREADS=1"
    return (
        ok,
        f"--threads 1 -> {metrics.get('threads')}; "
        f"OMP_NUM_THREADS=1 -> {from_env.get('threads')} ({from_env.get('threads_why')})",
    )


# -- round two: ids, outputs over inputs, half-made datasets, checkpoints, strange files, silent wrong data ---


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if not p.is_dir()}


def _digests(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


@trial(
    "ids that are paths (../../x, /abs, no dashes, odd characters) in forms, lines, words",
    "each a reject with file and line; nothing written outside --out; exit 0",
)
def ids_are_not_paths(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("hostile-ids")
    bad_words = ["../../x-000-00-00", "/tmp/iamchars-x-000-00-00", "nodash", "s00-000-00-0%", "s00-000-00-00/..", "."]
    with open(root / "ascii" / "words.txt", "a") as handle:
        handle.writelines(f"{i} ok 170 100 100 50 40 NN word\n" for i in bad_words)
    with open(root / "ascii" / "lines.txt", "a") as handle:
        handle.write("../../x-000-00 ok 170 2 100 100 300 60 a|b\n")
    with open(root / "ascii" / "forms.txt", "a") as handle:
        handle.write("../../x-000 001 1 all 1 1 1 1\n")
    base = ws.new("ids")
    out = base / "a" / "b" / "out"
    outcome = _build(ws, root, out, "--include-err")
    escaped = [p for p in _files_under(base) if out not in p.parents] + list(Path("/tmp").glob("iamchars-x*"))
    rejects = pd.read_csv(out / "rejects.csv", keep_default_na=False) if (out / "rejects.csv").is_file() else None
    listed = 0 if rejects is None else int(rejects["reason"].str.contains("is not an IAM id").sum())
    numbered = rejects is not None and (rejects.loc[rejects["reason"].str.contains("IAM id"), "line"] != "").all()
    ok = outcome.code == 0 and not escaped and listed == len(bad_words) + 2 and numbered
    return ok, f"exit {outcome.code}, {listed} ids rejected with their line, {len(escaped)} files outside --out"


def _inputs_intact(before: dict[str, str]) -> bool:
    return _digests([Path(p) for p in before]) == before


@trial(
    "an output onto an input (info --rejects, evaluate / export-model --out the checkpoint, explain --out its "
    "image, build-dataset into --iam-root, train --out the dataset, evaluate --out inside the dataset)",
    "exit 2 before any work, one line naming both; every input byte for byte as before",
)
def outputs_never_replace_inputs(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("overlap")
    run = _copy_run(ws)
    best = run / "checkpoints" / "best.pt"
    image = next((ws.dataset / "images").rglob("*.png"))
    picture = ws.new("pic") / image.name
    shutil.copy(image, picture)
    watched = [root / "ascii" / "words.txt", best, picture, *(ws.dataset / "arrays").glob("*.npz")]
    before = _digests(watched)
    results = [
        ws.cli("info", "--iam-root", root, "--rejects", root / "ascii" / "words.txt"),
        ws.cli("evaluate", "--checkpoint", best, "--data", ws.dataset, "--out", best),
        ws.cli("evaluate", "--checkpoint", best, "--data", ws.dataset, "--out", ws.dataset / "metrics.json"),
        ws.cli("export-model", "--checkpoint", best, "--out", best),
        ws.cli("explain", "--checkpoint", best, picture, "--out", picture),
        _build(ws, root, root / "dataset"),
        _train(ws, ws.dataset, data=ws.dataset),
    ]
    refused = [
        r.code == 2 and r.one_line_error and ("is the input" in r.output or "inside" in r.output) for r in results
    ]
    ok = all(refused) and _inputs_intact(before) and not (root / "dataset").exists()
    return ok, f"{sum(refused)}/{len(results)} refused, inputs {'intact' if _inputs_intact(before) else 'CHANGED'}"


@trial("synth --out a folder holding a corpus", "refused without --force; with it, no file of the old corpus left")
def synth_over_a_corpus(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("resynth")
    stale = root / "lines" / "z99" / "z99-000" / "z99-000-00.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    before = _digests([root / "ascii" / "words.txt"])
    refused = ws.cli("synth", "--out", root, "--forms", "1", "--lines-per-form", "2", "--no-progress")
    untouched = _inputs_intact(before) and stale.exists()
    forced = ws.cli("synth", "--out", root, "--forms", "1", "--lines-per-form", "2", "--no-progress", "--force")
    forms = len(pd.read_csv(root / "chars_gt.csv", keep_default_na=False)["word_id"].str[:7].unique())
    ok = refused.one_line_error and "--force" in refused.output and untouched and forced.code == 0
    ok = ok and not stale.exists() and forms == 1 and len(list((root / "lines").rglob("*.png"))) == 2
    return (
        ok,
        f"refused {refused.code}, forced {forced.code}, stale file {'left' if stale.exists() else 'gone'}, "
        f"{forms} form",
    )


def _dataset_copy(ws: Workspace, name: str) -> Path:
    out = ws.new(name) / "ds"
    shutil.copytree(ws.dataset, out)
    return out


def _verifies(dataset: Path) -> bool:
    from iamchars.dataset.format import verify
    from iamchars.errors import UserError

    try:
        verify(dataset)
    except UserError:
        return False
    return True


@trial(
    "disk full while rebuilding a dataset with other options",
    "exit 1, one line naming the file and saying nothing was replaced; the old dataset whole",
)
def disk_full_rebuild(ws: Workspace) -> tuple[bool, str]:
    out = _dataset_copy(ws, "full")
    from iamchars.dataset.format import DATA_FILES

    before = _digests([out / f for f in (*DATA_FILES, "dataset.json")])
    limit = (out / "arrays" / "train.npz").stat().st_size * 11 // 10  # a form's shard fits, 48 x 48 arrays do not
    outcome = _build(ws, ws.corpus, out, "--size", "48", fsize=limit)
    ok = outcome.one_line_error and "nothing was replaced" in outcome.output and "arrays" in outcome.output
    intact = _inputs_intact(before) and _verifies(out) and not (out / ".work" / "stage").exists()
    return ok and intact, f"{_first_error(outcome)[:90]}; old dataset {'whole' if intact else 'DAMAGED'}"


@trial(
    "a dataset left mixed (stopped while its files were swapped)",
    "train, evaluate and iamchars.data refuse it in one line; the same build completes it",
)
def mixed_dataset(ws: Workspace) -> tuple[bool, str]:
    from iamchars.data import load_split
    from iamchars.errors import UserError

    out = _dataset_copy(ws, "mixed")
    (out / "dataset.json").unlink()
    (out / "manifest.csv").write_text("char_id\n")  # a new file beside the old ones
    run = ws.new("mixedrun") / "run"
    results = [
        _train(ws, run, data=out),
        ws.cli("evaluate", "--checkpoint", ws.run / "checkpoints" / "best.pt", "--data", out),
    ]
    try:
        load_split(out, "train")
        library = "read it"
    except UserError as exc:
        library = "refused" if "incomplete" in str(exc) else str(exc)
    refused = all(_fails_with(r, "incomplete dataset")[0] for r in results) and library == "refused"
    again = _build(ws, ws.corpus, out)
    ok = refused and again.code == 0 and _verifies(out)
    return (
        ok,
        f"train/evaluate {'refused' if refused else _first_error(results[0])}, library {library}, rebuilt {again.code}",
    )


@trial(
    "truncated arrays/train.npz, classes.json not JSON or at odds with the labels",
    "one line each from train and evaluate (exit 1), never a traceback",
)
def broken_dataset_files(ws: Workspace) -> tuple[bool, str]:
    truncated = _dataset_copy(ws, "trunc")
    path = truncated / "arrays" / "train.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    not_json = _dataset_copy(ws, "notjson")
    (not_json / "classes.json").write_text("{ not json")
    _record_again(not_json)
    at_odds = _dataset_copy(ws, "atodds")
    classes = json.loads((at_odds / "classes.json").read_text())
    classes["classes"], classes["num_classes"] = classes["classes"][:3], 3
    (at_odds / "classes.json").write_text(json.dumps(classes))
    _record_again(at_odds)
    results = []
    for data, phrase in ((truncated, "train.npz"), (not_json, "classes.json"), (at_odds, "outside the 3 classes")):
        run = ws.new("brokenrun") / "run"
        results.append((_train(ws, run, data=data), phrase))
        best = ws.run / "checkpoints" / "best.pt"
        results.append((ws.cli("evaluate", "--checkpoint", best, "--data", data), phrase))
    passed = [r.code == 1 and _fails_with(r, phrase)[0] for r, phrase in results]
    return all(passed), f"{sum(passed)}/{len(passed)} one-line errors: {_first_error(results[0][0])[:80]}"


@trial("evaluate on an empty split", "exit 1, one line (no nan result)")
def evaluate_empty_split(ws: Workspace) -> tuple[bool, str]:
    out = _dataset_copy(ws, "empty")
    path = out / "arrays" / "test.npz"
    with np.load(path) as data:
        arrays = {k: data[k][:0] for k in data.files}
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    _record_again(out)
    outcome = ws.cli("evaluate", "--checkpoint", ws.run / "checkpoints" / "best.pt", "--data", out)
    return _fails_with(outcome, "holds no image")


@trial(
    "a run stopped between writing last.pt and best.pt", "--resume finishes with metrics; best.pt re-made from last.pt"
)
def stopped_between_checkpoints(ws: Workspace) -> tuple[bool, str]:
    import torch

    results = []
    for damage in ("missing", "truncated"):
        run = _copy_run(ws)
        best = run / "checkpoints" / "best.pt"
        (run / "metrics.json").unlink()
        if damage == "missing":
            best.unlink()
        else:
            best.write_bytes(best.read_bytes()[:500])
        outcome = _train(ws, run, "--resume")
        last = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
        remade = torch.load(best, weights_only=False)["epoch"] + 1 == last["best"]["epoch"] if best.is_file() else False
        results.append(outcome.code == 0 and (run / "metrics.json").is_file() and remade)
    return all(results), f"{sum(results)}/2 finished with best.pt re-made"


@trial("SIGTERM of train", "exit 143, one 'interrupted; resume with --resume' line; --resume then finishes")
def sigterm_train(ws: Workspace) -> tuple[bool, str]:
    run = ws.new("term") / "run"
    args = ["train", "--data", str(ws.dataset), "--out", str(run), "--model", "lenet5", "--epochs", "200"]
    proc = _spawn([*args, "--batch-size", "32", "--no-progress", "--no-plots", "--threads", "1"], ws.tmp)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not (run / "checkpoints" / "last.pt").is_file():
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    said = [ln for ln in output.splitlines() if ln.startswith("error:")] == ["error: interrupted; resume with --resume"]
    again = _train(ws, run, "--resume", "--epochs", "1")
    ok = proc.returncode == 143 and said and "Traceback" not in output and again.code == 0
    return ok, f"exit {proc.returncode}, {'one line' if said else output[-80:]}; resumed: exit {again.code}"


def _strange(path: Path, kind: str) -> None:
    """Replace a file by a FIFO, a folder or a looping symbolic link of the same name."""
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(path.name)


STRANGE = ("fifo", "folder", "loop")


@trial(
    "a FIFO, a folder and a looping link named like line images (info, build-dataset)",
    "no hang: each listed as a reject, the run goes on (exit 0)",
)
def strange_line_images(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("strange")
    victims = [sorted(d.glob("*.png"))[0] for d in sorted((root / "lines").glob("*/*"))[:3]]
    for path, kind in zip(victims, STRANGE, strict=True):
        _strange(path, kind)
    report = ws.new("info") / "rejects.csv"
    info = ws.cli("info", "--iam-root", root, "--rejects", report)
    listed = pd.read_csv(report, keep_default_na=False)["item_id"].tolist() if report.is_file() else []
    out = ws.new("ds")
    build = _build(ws, root, out)
    built = pd.read_csv(out / "rejects.csv", keep_default_na=False)["item_id"].tolist() if build.code == 0 else []
    stems = [p.stem for p in victims]
    ok = info.code == 0 and build.code == 0 and all(s in listed and s in built for s in stems)
    return ok, f"info exit {info.code}, build exit {build.code}, listed {sum(s in built for s in stems)}/3"


@trial(
    "a FIFO, a looping link and a folder named like images among good ones (predict, explain)",
    "no hang: the good ones answered, the others listed",
)
def strange_images_to_predict(ws: Workspace) -> tuple[bool, str]:
    folder = ws.new("strangeimgs")
    for i, good in enumerate(sorted((ws.dataset / "images" / "test").rglob("*.png"))[:2]):
        shutil.copy(good, folder / f"good{i}.png")
    for kind in STRANGE:
        (folder / f"{kind}.png").write_bytes(b"")
        _strange(folder / f"{kind}.png", kind)
    best = ws.run / "checkpoints" / "best.pt"
    predict = ws.cli("predict", "--checkpoint", best, *sorted(folder.iterdir()))
    explain = ws.cli("explain", "--checkpoint", best, folder, "--out", ws.new("x") / "explain.png")
    answered = sum(line.startswith(str(folder / "good")) for line in predict.output.splitlines())
    listed = sum(f"{kind}.png" in predict.output for kind in STRANGE)
    ok = predict.code == 1 and answered == 2 and listed == 3 and explain.code == 0 and "explained 2" in explain.output
    return ok, f"predict exit {predict.code}: {answered} answered, {listed} listed; explain exit {explain.code}"


@trial(
    "coordinates past 2^32 or far outside any page; a word box far too narrow for its text",
    "rejects with file and line, never boxes; the card counts the narrow one",
)
def silent_wrong_numbers(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("numbers")
    path = root / "ascii" / "words.txt"
    rows = path.read_text().splitlines()
    data = [i for i, r in enumerate(rows) if not r.startswith("#")]
    wrapped, far, narrow = data[:3]
    fields = rows[wrapped].split(" ")
    fields[3] = str(2**32 + int(fields[3]))
    rows[wrapped] = " ".join(fields)
    fields = rows[far].split(" ")
    fields[4] = "2000000000"
    rows[far] = " ".join(fields)
    fields = rows[narrow].split(" ")
    rows[narrow] = " ".join([*fields[:5], "133", *fields[6:8], "w" * 200])
    path.write_text("\n".join(rows) + "\n")
    out = ws.new("ds")
    outcome = _build(ws, root, out, "--include-err")
    rejects = pd.read_csv(out / "rejects.csv", keep_default_na=False) if outcome.code == 0 else pd.DataFrame()
    by_line = {int(r.line): r.reason for r in rejects.itertuples() if str(r.line)} if len(rejects) else {}
    ranged = all("out of range" in by_line.get(i + 1, "") for i in (wrapped, far))
    manifest = pd.read_parquet(out / "manifest.parquet") if outcome.code == 0 else pd.DataFrame({"word_id": []})
    word_ids = [rows[i].split(" ")[0] for i in (wrapped, far, narrow)]
    card = (out / "card.md").read_text() if outcome.code == 0 else ""
    ok = ranged and not manifest["word_id"].isin(word_ids).any() and "too narrow" in card
    return (
        ok,
        f"exit {outcome.code}; out-of-range rows {'rejected' if ranged else 'KEPT'}; "
        f"narrow counted {'too narrow' in card}",
    )


@trial("an image changed since a killed build", "the resumed build reuses no shard made from the old image")
def changed_image_invalidates_shards(ws: Workspace) -> tuple[bool, str]:
    root = ws.tmp / "changing"
    if not root.exists():
        shutil.copytree(_big_corpus(ws), root)
    out = ws.new("dschange")
    args = _two_worker_build(root, out)
    proc = _spawn(args, ws.tmp)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and len(list(out.glob(".work/forms/*.npz"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)
    kept = len(list(out.glob(".work/forms/*.npz")))
    image = sorted((root / "lines").rglob("*.png"))[0]
    gray = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(image), 255 - gray)  # same size, other ink
    again = ws.cli(*args)
    card = (out / "card.md").read_text() if (out / "card.md").is_file() else ""
    resumed_none = "Forms resumed from a stopped run (their time is not counted above): 0." in card
    ok = kept > 0 and again.code == 0 and resumed_none
    return ok, f"{kept} forms kept by the killed run; rebuilt {again.code}, resumed {'none' if ok else 'some'}"


@trial(
    "NaN or inf in a float, a section given a value (--set, TOML), --device gpu / tpu, an unknown font, a missing "
    "font file, a folder as --config",
    "exit 2 before any work, naming the key or option and what is allowed",
)
def bad_values(ws: Workspace) -> tuple[bool, str]:
    folder = ws.new("badvalues")
    toml = folder / "section.toml"
    toml.write_text("train = 5\n")
    out = folder / "out"
    results = [
        (_train(ws, out, "--set", "train.lr=nan"), "train.lr"),
        (_train(ws, out, "--set", "train.lr=inf"), "train.lr"),
        (_build(ws, ws.corpus, out, "--set", "split.ratios=[nan, 1, 1]"), "split.ratios"),
        (_build(ws, ws.corpus, out, "--set", "segment.k_std=inf"), "segment.k_std"),
        (_build(ws, ws.corpus, out, "--set", "export.max_reject_share=nan"), "export.max_reject_share"),
        (_train(ws, out, "--set", "train=1"), "train is a section"),
        (_train(ws, out, "--config", toml), "train is a section"),
        (_train(ws, out, "--device", "gpu"), "--device"),
        (ws.cli("predict", "--checkpoint", ws.run / "checkpoints" / "best.pt", "--device", "tpu", toml), "--device"),
        (_build(ws, ws.corpus, out, "--font", "no-such-font"), "no-such-font"),
        (_build(ws, ws.corpus, out, "--font", folder / "missing.ttf"), "missing.ttf"),
        (_build(ws, ws.corpus, out, "--config", folder), "is a folder"),
    ]
    passed = [r.code == 2 and phrase in r.output and "Traceback" not in r.output for r, phrase in results]
    nothing = not out.exists()
    return all(passed) and nothing, f"{sum(passed)}/{len(passed)} refused with exit 2, nothing written {nothing}"


def _tar(path: Path, members: list[tuple[str, str, bytes]]) -> None:
    """A tgz of (name, link target or '', data) members: a symlink when the target is given."""
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, target, data in members:
            info = tarfile.TarInfo(name)
            if target:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@trial(
    "a tar with a chain of links (up -> ., out -> up/.., out/x); a truncated tar",
    "refused before anything is written; nothing of it left in the target",
)
def archives_chain_and_truncated(ws: Workspace) -> tuple[bool, str]:
    src = ws.new("tars")
    base = ws.new("target")
    target = base / "iam"
    chained = src / "chain" / "lines.tgz"
    chained.parent.mkdir()
    _tar(chained, [("up", ".", b""), ("out", "up/..", b""), ("out/escaped.txt", "", b"x"), ("a.png", "", b"y")])
    first = ws.cli("download", "--from", chained, "--out", target)
    truncated = src / "trunc" / "words.tgz"
    truncated.parent.mkdir()
    _tar(truncated, [(f"w{i}.png", "", os.urandom(20_000)) for i in range(8)])
    truncated.write_bytes(truncated.read_bytes()[:60_000])
    second = ws.cli("download", "--from", truncated, "--out", target)
    left = [p for p in _files_under(base) if "archives" not in p.parts and p.name != "download_state.json"]
    ok = first.one_line_error and "link" in first.output and second.one_line_error and not left
    return ok, f"chain exit {first.code}, truncated exit {second.code}; {len(left)} extracted files left behind"


# -- round three: other people's files (PAGE, ALTO, lines without word boxes) ---------------------------------


def _pages(ws: Workspace, name: str, fmt: str = "page", forms: int = 4) -> Path:
    """The first `forms` forms of the workspace corpus as PAGE or ALTO pages without word boxes (a line's
    text only, or unboxed Strings), with writers.csv."""
    from tools.iam_to_layout import iam_to_layout

    chosen = sorted(p.name for p in (ws.corpus / "lines").glob("*/*"))[:forms]
    folder = ws.tmp / name
    iam_to_layout(ws.corpus, folder, fmt, chosen, word_boxes=False)
    return folder


def _build_pages(ws: Workspace, folder: Path, out: Path, *extra: object) -> Outcome:
    args = ["build-dataset", "--corpus", folder, "--out", out, "--workers", "1", "--method", "refined"]
    return ws.cli(*args, "--no-progress", "--include-err", *extra)


def _manifest(out: Path, outcome: Outcome) -> pd.DataFrame:
    """The manifest a build wrote, or an empty one (every column) where it failed."""
    from iamchars.dataset.format import MANIFEST_COLUMNS

    return pd.read_parquet(out / "manifest.parquet") if outcome.code == 0 else pd.DataFrame(columns=MANIFEST_COLUMNS)


def _rejects(out: Path, name: str = "rejects.csv") -> pd.DataFrame:
    path = out / name
    return pd.read_csv(path, keep_default_na=False) if path.is_file() else pd.DataFrame(columns=["file", "reason"])


def _replace_text(xml: Path, old: str, new: str, count: int = 1) -> None:
    text = xml.read_text()
    assert old in text, f"{old!r} not in {xml}"
    xml.write_text(text.replace(old, new, count))


def _first_line_text(xml: Path) -> str:
    import re

    return re.findall(r"<Unicode>([^<]*)</Unicode>", xml.read_text())[0]


@trial(
    "a line transcribed as one 5,000-letter word, and a line with a 300-letter word, PAGE without word boxes",
    "both rejected with their XML file and line (line too narrow / word box too narrow), no glyph; exit 0",
)
def found_words_checked(ws: Workspace) -> tuple[bool, str]:
    folder = _pages(ws, "narrow-pages")
    xmls = sorted(folder.glob("*.xml"))
    _replace_text(xmls[0], _first_line_text(xmls[0]), "x" * 5000)
    first = _first_line_text(xmls[1]).split()[0]
    width = int((ws.corpus / "ascii" / "lines.txt").read_text().split(f"\n{xmls[1].stem}-00 ", 1)[1].split()[5])
    long_word = "y" * (width // 2 - len(first) - 2)  # the line can hold it; the word's own box cannot
    _replace_text(xmls[1], _first_line_text(xmls[1]), f"{first} {long_word}")
    out = ws.new("narrow") / "ds"
    outcome = _build_pages(ws, folder, out, "--write", "page")
    rejects = _rejects(out)
    manifest = _manifest(out, outcome)
    line_row = rejects[rejects["reason"].str.startswith("line narrower")]
    word_row = rejects[rejects["reason"].str.startswith("word box narrower")]
    written = (out / "page" / xmls[0].name).read_text() if outcome.code == 0 else ""
    ok = outcome.code == 0 and len(line_row) == 1 and len(word_row) == 1
    ok = ok and line_row["file"].iloc[0] == xmls[0].name and str(line_row["line"].iloc[0]).isdigit()
    ok = ok and word_row["file"].iloc[0] == xmls[1].name and not (manifest["word_text"] == long_word).any()
    ok = ok and written.count("<Glyph") < 5000
    where = list(zip(rejects["file"], rejects["line"], strict=True))
    glyphs = written.count("<Glyph")
    return ok, f"exit {outcome.code}; rejects at {where}; {len(manifest)} chars, {glyphs} glyphs in the first file"


def _edit_xml(xml: Path, edit: Callable[[Any], None]) -> None:
    from lxml import etree

    tree = etree.parse(str(xml))
    edit(tree.getroot())
    tree.write(str(xml), xml_declaration=True, encoding="UTF-8")


def huge_png(path: Path) -> None:
    """A PNG whose header claims 40,000 x 40,000 pixels: past OpenCV's decoding limit."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 99)))


@trial(
    "ALTO HPOS=NaN, WIDTH=INF, PAGE imageWidth=1e999, points 2.8e2, 20-digit points, an image past OpenCV's limit",
    "no traceback: bad lines and the huge image are rejects with their file; the rest is built; exit 0",
)
def numbers_and_huge_images(ws: Workspace) -> tuple[bool, str]:
    def alto_numbers(root: Any) -> None:
        lines = root.findall(".//{*}TextLine")
        lines[0].set("HPOS", "NaN")
        lines[1].set("WIDTH", "INF")

    def page_numbers(root: Any) -> None:
        root.find(".//{*}Page").set("imageWidth", "1e999")
        coords = [line.find("{*}Coords") for line in root.findall(".//{*}TextLine")]
        coords[0].set("points", "12345678901234567890,1 " + coords[0].get("points"))
        x, rest = coords[1].get("points").split(",", 1)
        coords[1].set("points", f"{float(x) / 100:g}e2,{rest}")  # the same number, in scientific notation

    alto = _pages(ws, "numbers-alto", "alto", forms=2)
    _edit_xml(sorted(alto.glob("*.xml"))[0], alto_numbers)
    page = _pages(ws, "numbers-page", "page", forms=3)
    xmls = sorted(page.glob("*.xml"))
    _edit_xml(xmls[0], page_numbers)
    huge_png(xmls[2].with_suffix(".png"))
    outs = [ws.new("nan") / "ds", ws.new("inf") / "ds"]
    results = [
        _build_pages(ws, alto, outs[0], "--max-reject-share", "1"),
        _build_pages(ws, page, outs[1], "--max-reject-share", "1"),
    ]
    rejects = pd.concat([_rejects(o) for o in outs], ignore_index=True)
    reasons = " ".join(rejects["reason"].astype(str))
    clean = all(r.code == 0 and "Traceback" not in r.output and "Warning" not in r.output for r in results)
    ok = clean and reasons.count("without a readable box or polygon") == 2 and "CV_IO_MAX_IMAGE_PIXELS" in reasons
    ok = ok and reasons.count("without readable Coords points") == 1
    kept = _manifest(outs[1], results[1])["line_id"]
    ok = ok and kept.str.endswith("-01").any()  # the line written in scientific notation is read
    return ok, f"exits {[r.code for r in results]}; {len(rejects)} rejects"


@trial(
    "--write into files with a prolog, DOCTYPE entity, comments, custom attributes, hand-made Glyphs, a Word "
    "without Coords, unboxed ALTO Strings with HYP, WC, STYLEREFS, SP@WIDTH and a ',' String",
    "every input node written back unchanged (node by node); only Glyphs added, and Words in lines that had "
    "none; the hand-made Glyphs kept and counted",
)
def write_keeps_files_whole(ws: Workspace) -> tuple[bool, str]:
    from lxml import etree

    from tests.layout.nodes import added_nodes

    page = _pages(ws, "whole-page", "page", forms=2)
    first, second = sorted(page.glob("*.xml"))
    text = first.read_text().replace(
        "?>\n", '?>\n<?xml-stylesheet href="v.xsl"?>\n<!-- mine -->\n<!DOCTYPE PcGts [ <!ENTITY me "m"> ]>\n', 1
    )
    text = text.replace('<TextLine id="l0">', '<TextLine id="l0" custom="structure {type:x;}">', 1)
    first.write_text(text + "<!-- end -->\n")
    words = " ".join(
        f'<Word id="u{k}" custom="k"><TextEquiv><Unicode>{w}</Unicode></TextEquiv><TextStyle bold="true"/></Word>'
        for k, w in enumerate(_first_line_text(second).split())
    )
    _replace_text(second, "<TextEquiv>", words + "<TextEquiv>")  # Words without Coords: found, kept as they are
    _replace_text(
        second,
        '<Word id="u0" custom="k">',
        '<Word id="u0" custom="k"><Glyph id="hand"><Coords points="1,1 2,1 2,2"/></Glyph>',
    )
    alto = _pages(ws, "whole-alto", "alto", forms=1)
    xml = next(alto.glob("*.xml"))
    _replace_text(xml, "<SP/>", '<SP WIDTH="9"/>', 3)
    _replace_text(xml, 'CONTENT="', 'WC="0.91" STYLEREFS="s1" CONTENT="', 4)
    _replace_text(xml, "</TextLine>", '<SP/><String ID="comma" CONTENT=","/><HYP CONTENT="-"/></TextLine>')
    sources = {("page", p.name): p.read_bytes() for p in [first, second]} | {("alto", xml.name): xml.read_bytes()}
    outs = [ws.new("whole") / "ds", ws.new("whole") / "ds"]
    results = [_build_pages(ws, page, outs[0], "--write", "page"), _build_pages(ws, alto, outs[1], "--write", "alto")]
    if any(r.code for r in results):
        return False, "; ".join(_first_error(r) for r in results)
    kinds: set[str] = set()
    for (fmt, name), data in sources.items():
        written = outs[fmt == "alto"] / fmt / name
        kinds |= {etree.QName(e).localname for e in added_nodes(data, written.read_bytes())}
    kept = (outs[0] / "page" / second.name).read_text().count('id="hand"') == 1
    said = "already held Glyphs" in results[0].output
    ok = kinds == {"Glyph", "Word"} and kept and said
    return ok, f"added {sorted(kinds)}; hand-made Glyph {'kept' if kept else 'LOST'}; warned: {said}"


@trial(
    "PAGE transcriptions with a comment inside, a DTD entity, two TextEquivs by @index, a decomposed é",
    "read whole (neighborhood), the @index 1 text, é as one character (outside the class set); exit 0",
)
def transcriptions_read_whole(ws: Workspace) -> tuple[bool, str]:
    from lxml import etree

    def commented(root: Any) -> None:  # neigh<!-- x -->bor&hood;
        unicode = root.find(".//{*}TextLine/{*}TextEquiv/{*}Unicode")
        unicode.text = "neigh"
        unicode.append(etree.Comment(" x "))
        unicode[-1].tail = "bor"
        unicode.append(etree.Entity("hood"))

    def two_equivs(root: Any) -> None:  # the first in the file is the second by @index
        equiv = root.find(".//{*}TextLine/{*}TextEquiv")
        line = equiv[0].text
        equiv.set("index", "2")
        equiv[0].text = "zzz"
        main = etree.SubElement(equiv.getparent(), equiv.tag, index="1")
        etree.SubElement(main, equiv[0].tag).text = f"{line} cafe\u0301"

    page = _pages(ws, "texts", forms=2)
    first, second = sorted(page.glob("*.xml"))
    _edit_xml(first, commented)
    _replace_text(first, "?>\n", '?>\n<!DOCTYPE PcGts [ <!ENTITY hood "hood"> ]>\n')
    _edit_xml(second, two_equivs)
    out = ws.new("texts") / "ds"
    outcome = _build_pages(ws, page, out, "--max-reject-share", "1")
    if outcome.code:
        return False, _first_error(outcome)
    manifest = pd.read_parquet(out / "manifest.parquet")
    texts = set(manifest["word_text"])
    accented = manifest[manifest["word_text"].str.startswith("caf")]
    ok = "neighborhood" in texts and "zzz" not in texts and set(accented["word_text"]) == {"caf\u00e9"}
    ok = ok and "e" not in set(accented["char"])  # é is one character (outside the class set), never an "e"
    wanted = ("neighborhood", "zzz", "caf\u00e9")
    return ok, f"texts read: {sorted(t for t in texts if t in wanted)}"


@trial(
    "PAGE folder: 3 of 4 page images missing; two XML files naming one image",
    "the first fails by --max-reject-share (exit 1, one line); the second is read once, with a warning",
)
def import_guards(ws: Workspace) -> tuple[bool, str]:
    missing = _pages(ws, "missing-images")
    for png in sorted(missing.glob("*.png"))[1:]:
        png.unlink()
    failed = _build_pages(ws, missing, ws.new("missing") / "ds")
    twice = _pages(ws, "twice", forms=2)
    shutil.copy(sorted(twice.glob("*.xml"))[0], twice / "copy.xml")
    out = ws.new("twice") / "ds"
    built = _build_pages(ws, twice, out)
    manifest = _manifest(out, built)
    forms = sorted(set(manifest["form_id"]))
    ok = failed.one_line_error and "--max-reject-share" in failed.output
    ok = ok and built.code == 0 and "also the image of" in built.output and len(forms) == 2
    return ok, f"missing: {_first_error(failed)}; twice: exit {built.code}, forms {sorted(forms)}"


@trial(
    "an import stopped half-deleted; a page image with another suffix (.dat) changed before a rerun; links "
    "(dangling, looping, an XML file outside the folder) in the corpus folder",
    "the rerun re-imports and uses the new image; links are rejects or ignored, never a stop; exit 0",
)
def import_resume_and_links(ws: Workspace) -> tuple[bool, str]:
    folder = _pages(ws, "resume", forms=2)
    xmls = sorted(folder.glob("*.xml"))
    for xml in xmls:  # the page images under a suffix that is no image suffix
        _replace_text(xml, f'imageFilename="{xml.stem}.png"', f'imageFilename="{xml.stem}.dat"')
        xml.with_suffix(".png").rename(xml.with_suffix(".dat"))
    image = xmls[0].with_suffix(".dat")
    real = image.read_bytes()
    shape = cv2.imdecode(np.frombuffer(real, np.uint8), cv2.IMREAD_GRAYSCALE).shape
    image.write_bytes(cv2.imencode(".png", np.full(shape, 255, np.uint8))[1].tobytes())  # blank for now
    out = ws.new("resume") / "ds"
    first = _build_pages(ws, folder, out, "--max-reject-share", "0.3")  # a blank page: fails, the import stays
    (out / ".import" / "layout_pages.csv").unlink(missing_ok=True)  # as a stop during its deletion would
    image.write_bytes(real)
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    (folder / "loop.xml").symlink_to(folder / "loop.xml")
    outside = ws.new("outside") / "o.xml"
    outside.write_bytes(xmls[1].read_bytes())
    (folder / "out.xml").symlink_to(outside)
    second = _build_pages(ws, folder, out, "--max-reject-share", "0.6")  # the two links are lost pages
    rejects = _rejects(out)
    linked = set(rejects.loc[rejects["reason"].str.contains("link"), "file"])
    manifest = _manifest(out, second)
    ok = first.code == 1 and second.code == 0 and linked == {"loop.xml", "out.xml"}
    ok = ok and manifest["form_id"].nunique() == 2 and "written outside" not in second.output
    return (
        ok,
        f"first exit {first.code}, rerun exit {second.code} ({_first_error(second)}), link rejects {sorted(linked)}",
    )


@trial(
    "two build-dataset runs into one --out at once",
    "the second exits 2 at once with one line naming the first; the first's dataset verifies whole",
)
def one_build_per_out(ws: Workspace) -> tuple[bool, str]:
    out = ws.new("locked") / "ds"
    proc = _spawn(_two_worker_build(_big_corpus(ws), out), ws.tmp)
    lock = out / ".iamchars.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not (lock.is_file() and lock.read_text().strip()):
        time.sleep(0.05)
    second = _build(ws, ws.corpus, out)
    proc.wait(timeout=600)
    ok = second.code == 2 and second.one_line_error and "another build-dataset" in second.output
    ok = ok and proc.returncode == 0 and _verifies(out)
    return ok, f"second: {_first_error(second)}; first exit {proc.returncode}, verifies {_verifies(out)}"


@trial(
    "rejects of imported lines; *.XML names; a 250-letter XML name; --ignore-word-boxes on a full root; "
    "synth --fonts ,",
    "rejects name the XML file and line; both names read; no stray warning; exit 2 for the empty font list",
)
def messages_point_somewhere(ws: Workspace) -> tuple[bool, str]:
    folder = _pages(ws, "names", forms=3)
    xmls = sorted(folder.glob("*.xml"))
    xmls[0].rename(folder / f"{xmls[0].stem}.XML")
    long_name = folder / f"{'n' * 250}.xml"
    xmls[1].rename(long_name)
    _replace_text(xmls[2], _first_line_text(xmls[2]), "x" * 5000)
    out = ws.new("names") / "ds"
    built = _build_pages(ws, folder, out, "--max-reject-share", "1")
    rejects = _rejects(out)
    files = set(rejects["file"]) if len(rejects) else set()
    internal = [f for f in files if ".import" in str(f) or str(f).startswith("ascii/")]
    manifest = _manifest(out, built)
    ignored = _build(ws, ws.corpus, ws.new("ignored") / "ds", "--ignore-word-boxes")
    fonts = ws.cli("synth", "--out", ws.new("nofonts"), "--fonts", ",", "--no-progress")
    ok = built.code == 0 and not internal and xmls[2].name in files and manifest["form_id"].nunique() == 3
    ok = ok and ignored.code == 0 and "no usable word row" not in ignored.output
    ok = ok and fonts.code == 2 and fonts.one_line_error
    return (
        ok,
        f"build exit {built.code}, internal names {internal}, forms {manifest['form_id'].nunique()}, "
        f"fonts exit {fonts.code}",
    )


# -- running ---------------------------------------------------------------------------------------------------


def file_size_limit(limit: int | None) -> contextlib.AbstractContextManager[None]:
    """Writes past `limit` bytes fail with EFBIG, as on a full disk (SIGXFSZ ignored); None: no limit."""

    @contextlib.contextmanager
    def limited() -> Iterator[None]:
        if limit is None:
            yield
            return
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, previous)

    return limited()


def subprocess_cli(cwd: Path) -> Cli:
    def run(*args: object, fsize: int | None = None) -> Outcome:
        def limit() -> None:  # in the child, for good (a context manager would undo it when collected)
            if fsize is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

        proc = subprocess.run(
            [sys.executable, "-m", "iamchars.cli", *map(str, args)],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=600,  # a hang is a failed trial, not a stuck table
            preexec_fn=limit,
        )
        return Outcome(proc.returncode, proc.stdout + proc.stderr)

    return run


def prepare(tmp: Path, cli: Cli, corpus: Path | None = None) -> Workspace:
    """The shared inputs: a small corpus (or the given one), its dataset and a one-epoch run."""
    if corpus is None:
        from iamchars.config import SplitConfig, SynthConfig
        from iamchars.synth.corpus import write_corpus

        corpus = tmp / "corpus"
        cfg = SynthConfig(forms=8, lines_per_form=4, seed=7, workers=2, err_rate=0.15)
        write_corpus(corpus, cfg, SplitConfig(ratios=[0.5, 0.25, 0.25]), progress=False)
    ws = Workspace(tmp, corpus, tmp / "dataset", tmp / "run", cli)
    for outcome in (_build(ws, corpus, ws.dataset), _train(ws, ws.run)):
        if outcome.code != 0:
            raise RuntimeError(f"preparing the fault workspace failed: {outcome.output[-2000:]}")
    return ws


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="iamchars-faults-") as name:
        tmp = Path(name)
        ws = prepare(tmp, subprocess_cli(tmp))
        rows = []
        for t in TRIALS:
            try:
                passed, got = t.run(ws)
            except Exception as exc:  # a trial that crashes is a failed trial, and the table goes on
                passed, got = False, f"trial crashed: {type(exc).__name__}: {exc}"
            rows.append((t.name, t.expected, got, passed))
            print(f"{'PASS' if passed else 'FAIL'}  {t.name}", file=sys.stderr)
    print("| trial | expected | got | |\n| --- | --- | --- | --- |")
    for name, expected, got, passed in rows:
        cells = [c.replace("|", "/") for c in (name, expected, got)]
        print(f"| {cells[0]} | {cells[1]} | {cells[2]} | {'pass' if passed else '**FAIL**'} |")
    failed = sum(not r[3] for r in rows)
    print(f"\n{len(rows) - failed} of {len(rows)} trials pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
