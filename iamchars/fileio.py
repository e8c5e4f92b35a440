"""Atomic writes and tolerant image reads: the only helpers that touch the file system for the stages."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
import pandas as pd

from iamchars.errors import UserError


def _umask() -> int:
    """The process umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` and rename it into place only if the block succeeds.

    The file gets the mode that `open()` would give it (0666 less the umask), not mkstemp's private 0600,
    so other users of a shared machine can read the outputs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
        yield handle


def write_text(path: Path, text: str) -> None:
    with atomic_open(path) as handle:
        handle.write(text)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a table as CSV or Parquet (by suffix), atomically and without pandas' index."""
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)


def read_table(path: Path, columns: Sequence[str], what: str) -> pd.DataFrame:
    """A CSV or Parquet table (by suffix) with the columns a stage needs; a missing or unreadable file or a
    missing column is a UserError naming `what` (an option or a role) and the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path}: file not found")
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, keep_default_na=False, dtype={"char": str, "word_id": str})
    except Exception as exc:  # pandas and pyarrow raise many types for a bad file
        raise UserError(f"{what} {path}: cannot be read as a table ({str(exc).splitlines()[0][:120]})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise UserError(f"{what} {path}: lacks the column(s) {', '.join(missing)}")
    return table


def write_png(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    with atomic_open(path, "wb") as handle:
        handle.write(buf.tobytes())


def read_gray(path: Path) -> np.ndarray:
    """Read an 8-bit greyscale image; raise ValueError naming the file when it is missing or undecodable."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: image file missing") from exc
    if data.size == 0:
        raise ValueError(f"{path}: image file is empty")
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"{path}: image cannot be decoded (truncated or not an image)")
    return image


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def png_size(path: Path) -> tuple[int, int] | str:
    """(width, height) of a complete PNG, from its header and end chunk without decoding the pixels; else
    the reason it cannot be used. A truncated file (a broken download, a full disk) has no end chunk."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
            if len(head) < 24 or head[:8] != PNG_SIGNATURE:
                return "image is not a PNG" if head else "image file is empty"
            handle.seek(-len(PNG_END), os.SEEK_END)
            tail = handle.read()
    except FileNotFoundError:
        return "image missing"
    except OSError as exc:
        return f"image cannot be read ({exc.strerror or exc})"
    if tail != PNG_END:
        return "image is truncated (no PNG end chunk)"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
