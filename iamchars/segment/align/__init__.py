"""The learned aligner's primitives (the `aligned` method): word strips and cut decoding (`alignment`), the
network (`network`), self-training on a corpus's own word labels (`selftrain`), and the shipped starting
weights beside them. The passes that read a corpus sit a floor up: `segment.aligned` (the corpus-wide pass
build-dataset runs) and `segment.pretrain` (the weights' recipe). Configured by `config.AlignConfig`
(`[segment.align]`)."""

from pathlib import Path

WEIGHTS = Path(__file__).with_name("weights.pt")
"""The shipped starting weights, pretrained on a synthetic corpus (`make aligner-weights` re-makes them)."""
