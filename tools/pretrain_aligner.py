"""`make aligner-weights`: re-make the aligner's shipped starting weights (`iamchars/segment/align/weights.pt`)
from a synthetic corpus in the tuning fonts, on the CPU (about 8 minutes on 2 cores)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from iamchars.nn import save_state
from iamchars.parallel import usable_cpus
from iamchars.segment.align import WEIGHTS
from iamchars.segment.pretrain import shipped_weights


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.pretrain_aligner", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS, help=f"weights file to write (default: {WEIGHTS})")
    args = parser.parse_args(argv)
    torch.set_num_threads(usable_cpus())
    with tempfile.TemporaryDirectory(prefix="iamchars-pretrain-") as tmp:
        state = shipped_weights(Path(tmp))
    save_state(args.out, state)
    print(f"weights: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
