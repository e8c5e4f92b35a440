"""The `iamchars` command line, one module per command family: `data` (download, info, synth), `dataset`
(build-dataset, evaluate-segmentation) and `model` (train, zoo, evaluate, predict, explain, export-model).
Each command parses its options, calls one function of its stage and prints.

Every command fails the same way: one line on stderr naming the file or option and the fix, and a non-zero
exit (1 for a failed run, 2 for a bad option); Ctrl-C exits 130 and leaves what is finished for a resume."""

from iamchars.cli import data, dataset, model  # noqa: F401  (each registers its commands on `app`)
from iamchars.cli.common import app

__all__ = ["app"]
