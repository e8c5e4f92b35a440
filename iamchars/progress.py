"""Progress bars for long work (stage, rate, ETA): tqdm's bar on a terminal; in a log file or a pipe (CI,
`make demo > demo.log`), the same text as one line every LOG_SECONDS, instead of a carriage return per step."""

from __future__ import annotations

import sys
from typing import IO, Any

from tqdm import tqdm

LOG_SECONDS = 10.0
"""How often a bar that is not on a terminal prints its line."""


class _Lines:
    """A stream that turns tqdm's carriage-return redraws into whole lines."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip("\n")
        if line.strip():
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(*, disable: bool = False, stream: IO[str] | None = None, **options: Any) -> tqdm:
    """A tqdm bar on `stream` (stderr by default), drawn in place on a terminal and written as a line every
    LOG_SECONDS elsewhere; `options` are tqdm's (total, desc, unit, ...)."""
    stream = stream if stream is not None else sys.stderr
    if disable or stream.isatty():
        return tqdm(disable=disable, file=stream, **options)
    options.setdefault("mininterval", LOG_SECONDS)
    options.setdefault("maxinterval", max(LOG_SECONDS, options["mininterval"]))
    return tqdm(file=_Lines(stream), ascii=True, dynamic_ncols=False, ncols=100, **options)
