"""`make bench`: throughput figures for each stage, printed (tests never time anything).

`python -m tools.bench [STAGE ...]` from the repository root; stages: synth, segment, aligned, export, train,
threads. Each stage after synth uses the 1,000-line corpus that synth writes; train and threads need none."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from iamchars.config import PipelineConfig, SplitConfig, SynthConfig, load_config

CORES = os.cpu_count() or 1
BENCH_CORPUS = SynthConfig(forms=125, lines_per_form=8, seed=1, workers=CORES)
"""1,000 lines, the size the synthesis target is stated for; every later stage runs on it."""


def bench_synth(work: Path) -> None:
    from iamchars.synth.corpus import write_corpus

    start = time.perf_counter()
    counts = write_corpus(work / "iam", BENCH_CORPUS, SplitConfig(), progress=False)
    elapsed = time.perf_counter() - start
    print(
        f"synth:    {counts['lines']:,} lines ({counts['characters']:,} chars) in {elapsed:.1f} s on {CORES} cores "
        f"= {counts['lines'] / elapsed:.1f} lines/s   (target: 1,000 lines < 120 s on 2 cores)"
    )


def bench_segment(work: Path) -> None:
    """One process, image decoding included: words per second per core."""
    from iamchars.config import SegmentConfig
    from iamchars.iam.corpus import load_corpus
    from iamchars.segment.methods import METHODS
    from iamchars.segment.runner import segment_form

    corpus = load_corpus(work / "iam")
    words = corpus.words[corpus.words["valid"]]
    by_form = [(lines, words[words["form_id"] == f]) for f, lines in corpus.lines.groupby("form_id")]
    for method in (m.name for m in METHODS.values() if m.corpus_pass is None):  # aligned has its own line
        cfg = SegmentConfig(method=method)
        segment_form(work / "iam", *by_form[0], cfg, METHODS[method].line)  # warm the font caches
        start = time.perf_counter()
        for lines, form_words in by_form:
            segment_form(work / "iam", lines, form_words, cfg, METHODS[method].line)
        elapsed = time.perf_counter() - start
        rate = len(words) / elapsed
        print(
            f"segment:  {method:<8} {len(words):,} words in {elapsed:.1f} s = {rate:,.0f} words/s per core; "
            f"all of IAM (115,320 words) on 2 cores: {115_320 / rate / 2:.0f} s   (target: >= 1,000 words/s)"
        )


def bench_aligned(work: Path) -> None:
    """The `aligned` method's own cost: strips (per word, all cores), self-training (a fixed number of steps,
    whatever the corpus size) and re-alignment (per word), each extrapolated to all of IAM."""
    from iamchars.config import SegmentConfig
    from iamchars.iam.corpus import load_corpus
    from iamchars.nn import pick_device
    from iamchars.parallel import ordered_map
    from iamchars.segment.align.selftrain import movable_words, self_train
    from iamchars.segment.aligned import StripJob, initial_weights, strips_of_form

    corpus = load_corpus(work / "iam")
    cfg = SegmentConfig(method="aligned")
    words_table = corpus.words[corpus.words["valid"]]
    jobs = [
        StripJob(work / "iam", lines, words_table[words_table["form_id"] == f], cfg)
        for f, lines in corpus.lines.groupby("form_id")
    ]
    start = time.perf_counter()
    words = [w for found in ordered_map(strips_of_form, jobs, CORES) for w in found]
    strips_s = time.perf_counter() - start
    device = pick_device(cfg.align.device)
    plan = cfg.align
    result = self_train(words, plan, device, initial_weights(cfg.align.init)).cost
    per_word = strips_s / len(words)
    realign_rate = result.realigned / result.realign_s
    aligned_s = strips_s + result.fit_s + result.realign_s
    # all of IAM: the samples are capped, so a run's fitting costs the same; its last round re-aligns every word
    iam_runs = plan.runs
    iam_realigned = iam_runs * ((plan.rounds - 1) * plan.folds * plan.sample_words + 115_320)
    iam_s = 115_320 * per_word + iam_runs * result.fit_s / result.runs + iam_realigned / realign_rate
    print(
        f"segment:  aligned  {len(words):,} words on {CORES} cores ({device.type}) in {aligned_s:.0f} s = "
        f"{1000 * aligned_s / len(words):.0f} s per 1,000 words: strips {len(words) / strips_s:,.0f} words/s, "
        f"{result.networks} networks ({result.steps:,} steps) fitted in {result.fit_s:.0f} s, re-alignment "
        f"{realign_rate:,.0f} words/s; all of IAM ({iam_runs} run(s), "
        f"{int(movable_words(words).sum()):,} words to re-align here): about {iam_s / 60:.1f} min "
        f"(target: <= 5 min on 2 cores)"
    )


def bench_export(work: Path) -> None:
    from iamchars.dataset.export import build_dataset

    for workers in sorted({1, CORES}):
        # the `aligned` method's self-training has its own line in the segment stage
        cfg = load_config(None, [f"export.workers={workers}", 'segment.method="refined"'])
        out = work / f"dataset-{workers}"
        start = time.perf_counter()
        summary = build_dataset(work / "iam", out, cfg, progress=False)
        elapsed = time.perf_counter() - start
        rate = summary["characters"] / elapsed
        print(
            f"export:   {summary['characters']:,} chars (refined boxes) end to end in {elapsed:.1f} s with "
            f"{workers} worker(s) = "
            f"{rate:,.0f} chars/s ({rate / workers:,.0f} per core); 500,000 IAM chars on 2 cores: "
            f"{500_000 / (rate / workers * 2) / 60:.1f} min   (target: >= 2,000 chars/s per core)"
        )


def bench_train(work: Path) -> None:
    import torch

    from iamchars.train.engine import make_optimizer
    from iamchars.train.models import build_model
    from iamchars.train.tensors import augment, to_float

    cfg = PipelineConfig().train
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for name in devices:
        device = torch.device(name)
        batch = 256 if name == "cpu" else 2048
        steps = 8 if name == "cpu" else 60
        model = build_model(cfg.model, 62, 32).to(device)
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        forward = torch.compile(model) if name == "cuda" and cfg.compile else model
        optimizer = make_optimizer(model, cfg)
        gen = torch.Generator(device=device).manual_seed(0)
        images = torch.randint(0, 256, (batch * 4, 32, 32), dtype=torch.uint8, device=device)
        labels = torch.randint(0, 62, (batch * 4,), device=device)
        amp = name == "cuda"
        start = 0.0
        for step in range(steps + 2):
            if step == 2:
                if amp:
                    torch.cuda.synchronize()
                start = time.perf_counter()
            idx = torch.randint(0, len(images), (batch,), generator=gen, device=device)
            x = augment(to_float(images[idx]), gen).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                loss = torch.nn.functional.cross_entropy(forward(x).float(), labels[idx], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if amp:
            torch.cuda.synchronize()
        rate = steps * batch / (time.perf_counter() - start)
        target = "(target on an H100: >= 100,000 img/s)" if name == "cuda" else ""
        print(
            f"train:    {cfg.model} on {name} ({torch.get_num_threads()} threads), batch {batch}, augmentation on "
            f"the device: {rate:,.0f} images/s; an epoch of 500,000 chars: {500_000 / rate:.1f} s {target}"
        )


def _cpu_train_rate(threads: int, seconds: float = 6.0) -> float:
    """Images per second of the default model's training steps on the CPU with `threads` threads."""
    import torch

    from iamchars.train.engine import make_optimizer
    from iamchars.train.models import build_model
    from iamchars.train.tensors import augment, to_float

    torch.set_num_threads(threads)
    cfg = PipelineConfig().train
    model = build_model(cfg.model, 62, 32).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (1024, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 62, (1024,))
    done, start = 0, 0.0
    for step in range(10_000):
        if step == 2:
            start = time.perf_counter()
        elif step > 2 and time.perf_counter() - start > seconds:
            break
        idx = torch.randint(0, len(images), (256,), generator=gen)
        x = augment(to_float(images[idx]), gen).contiguous(memory_format=torch.channels_last)
        loss = torch.nn.functional.cross_entropy(model(x), labels[idx], label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done += 256 if step >= 2 else 0
    return done / (time.perf_counter() - start)


def bench_threads(_work: Path) -> None:
    """Training speed on the CPU with the default thread count and with one per usable CPU, on an idle
    machine and beside one other CPU-bound process: what `iamchars.parallel.choose_threads` is for."""
    import subprocess

    from iamchars.parallel import default_threads, usable_cpus

    for scenario in ("idle", "busy"):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if scenario == "busy" else None
        try:
            time.sleep(0.5 if hog else 0.0)
            choice = default_threads()
            rates = {n: _cpu_train_rate(n) for n in sorted({1, choice.threads, usable_cpus()})}
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
        figures = ", ".join(f"{n} thread(s) {rate:,.0f} img/s" for n, rate in rates.items())
        print(
            f"threads:  {scenario} ({'one other CPU-bound process' if hog else 'nothing else running'}): "
            f"default {choice.threads} ({choice.why}); {figures}"
        )


STAGES = {
    "synth": bench_synth,
    "segment": bench_segment,
    "aligned": bench_aligned,
    "export": bench_export,
    "train": bench_train,
    "threads": bench_threads,
}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description="Throughput of each stage on this machine, printed (make bench runs them all).",
    )
    parser.add_argument("stages", nargs="*", metavar="STAGE", help=f"{', '.join(STAGES)} (default: all)")
    wanted = parser.parse_args(argv).stages or list(STAGES)
    unknown = sorted(set(wanted) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    print(f"iamchars bench on {CORES} CPU cores (python {sys.version.split()[0]})")
    with tempfile.TemporaryDirectory(prefix="iamchars-bench-") as tmp:
        work = Path(tmp)
        if "synth" in wanted:
            bench_synth(work)
        elif set(wanted) - {"train", "threads"}:
            _quiet_synth(work)
        for name in wanted:
            if name != "synth":
                STAGES[name](work)


def _quiet_synth(work: Path) -> None:
    from iamchars.synth.corpus import write_corpus

    write_corpus(work / "iam", BENCH_CORPUS, SplitConfig(), progress=False)


if __name__ == "__main__":
    main(sys.argv[1:])
