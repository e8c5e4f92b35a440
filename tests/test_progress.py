"""Progress in a log: a bar that is not on a terminal writes whole lines, now and then, not a carriage return
per step."""

from __future__ import annotations

import io

from iamchars.progress import progress_bar


def test_a_bar_in_a_log_writes_a_few_whole_lines() -> None:
    log = io.StringIO()
    with progress_bar(total=10_000, desc="build-dataset", unit="char", stream=log) as bar:
        for _ in range(10_000):
            bar.update(1)
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3, lines  # 10,000 steps in well under LOG_SECONDS: the first and the last
    assert lines[-1].startswith("build-dataset: 100%") and "10000/10000" in lines[-1]


def test_a_disabled_bar_writes_nothing() -> None:
    log = io.StringIO()
    with progress_bar(total=5, stream=log, disable=True) as bar:
        bar.update(5)
    assert log.getvalue() == ""
