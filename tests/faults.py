"""Fault injection: bad input, kills and shared-machine trouble, tried end to end on the command line.

`make faults` (python -m tests.faults) runs every trial against the installed `iamchars` in real processes
and prints a table of trial, expected and got; `tests/test_faults.py` runs the same trials in-process with
typer's CliRunner. Each trial builds what it breaks inside the workspace, so trials are independent.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


def _build(ws: Workspace, root: Path, out: Path, *extra: str) -> Outcome:
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
    )


# -- runs that produce nothing must not succeed ---------------------------------------------------------------


@trial("no ascii/forms.txt", "exit 1, one line naming forms.txt and the fix")
def no_forms(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("noforms")
    (root / "ascii" / "forms.txt").unlink()
    return _fails_with(_build(ws, root, ws.new("ds")), "forms.txt", "xml")


@trial("no ascii/words.txt", "exit 1: nothing to export, words.txt is missing")
def no_words(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("nowords")
    (root / "ascii" / "words.txt").unlink()
    return _fails_with(_build(ws, root, ws.new("ds")), "nothing to export", "words.txt is missing")


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


@trial("--min-score 2", "exit 2 before any work: out of range 0..1")
def min_score_out_of_range(ws: Workspace) -> tuple[bool, str]:
    outcome = _build(ws, ws.corpus, ws.new("ds"), "--min-score", "2")
    out = outcome.output  # the range in typer's own words, or in click's ("0<=x<=1") with an older typer
    refused = "Invalid value for '--min-score'" in out and ("less than or equal to 1" in out or "<=1" in out)
    return outcome.code == 2 and "Traceback" not in outcome.output and refused, (
        f"exit {outcome.code}: range refused" if outcome.code == 2 else _first_error(outcome)
    )


@trial("--min-score 1 (every character below it)", "exit 1: 0 characters exported, below --min-score")
def min_score_drops_everything(ws: Workspace) -> tuple[bool, str]:
    return _fails_with(_build(ws, ws.corpus, ws.new("ds"), "--min-score", "1"), "0 characters exported", "min-score")


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


@trial("info without words.txt", "a warning that there are no word boxes")
def info_no_words(ws: Workspace) -> tuple[bool, str]:
    root = ws.copy_corpus("infonowords")
    (root / "ascii" / "words.txt").unlink()
    outcome = ws.cli("info", "--iam-root", root)
    warned = "warning: ascii/words.txt is missing" in outcome.output
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


def _train(ws: Workspace, out: Path, *extra: str, data: Path | None = None) -> Outcome:
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
    resumed = f"- forms_resumed: {kept:.2f}" in card
    ok = proc.returncode == 130 and stopped_in < 5 and kept > 0 and not left and again.returncode == 0 and resumed
    return ok, f"exit {proc.returncode} in {stopped_in:.1f} s, {kept} forms kept, resumed {resumed}"


@trial("training threads", "default = CPUs this process may use; --threads is honoured")
def threads(ws: Workspace) -> tuple[bool, str]:
    from iamchars.parallel import usable_cpus

    run = ws.new("threads") / "run"
    outcome = _train(ws, run, "--threads", "1")
    metrics = pd.read_json(run / "metrics.json", typ="series") if (run / "metrics.json").is_file() else {}
    threads_used = metrics.get("threads") if len(metrics) else None
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else usable_cpus()
    ok = outcome.code == 0 and threads_used == 1 and 1 <= usable_cpus() <= affinity
    return ok, f"--threads 1 -> {threads_used}; default here {usable_cpus()} (affinity {affinity})"


# -- running ---------------------------------------------------------------------------------------------------


def subprocess_cli(cwd: Path) -> Cli:
    def run(*args: object) -> Outcome:
        proc = subprocess.run(
            [sys.executable, "-m", "iamchars.cli", *map(str, args)], cwd=cwd, capture_output=True, text=True
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
