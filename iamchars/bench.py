"""`make bench`: throughput figures for each stage, printed (tests never time anything).

Run as `python -m iamchars.bench [stage ...]`; stages: synth, segment, export, train.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from iamchars.config import PipelineConfig, SplitConfig, SynthConfig


def bench_synth(work: Path, cfg: PipelineConfig) -> Path:
    from iamchars.synth.corpus import write_corpus

    synth = SynthConfig(forms=125, lines_per_form=8, seed=1, workers=os.cpu_count() or 1)
    start = time.perf_counter()
    counts = write_corpus(work / "iam", synth, SplitConfig(), progress=False)
    elapsed = time.perf_counter() - start
    print(
        f"synth:   {counts['lines']:,} lines ({counts['characters']:,} chars) in {elapsed:.1f} s on "
        f"{synth.workers} cores = {counts['lines'] / elapsed:.1f} lines/s "
        f"(target: 1,000 lines in < 120 s on 2 cores)"
    )
    return work / "iam"


STAGES: dict[str, Callable[[Path, PipelineConfig], object]] = {"synth": bench_synth}


def main(argv: list[str]) -> None:
    wanted = argv or list(STAGES)
    cfg = PipelineConfig()
    print(f"iamchars bench on {os.cpu_count()} CPU cores (python {sys.version.split()[0]})")
    with tempfile.TemporaryDirectory(prefix="iamchars-bench-") as tmp:
        for name in wanted:
            STAGES[name](Path(tmp), cfg)


if __name__ == "__main__":
    main(sys.argv[1:])
