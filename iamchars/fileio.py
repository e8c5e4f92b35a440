"""The file-system edge of every stage: atomic writes that stay inside their output folder, readers that open
only regular files, the check that no output replaces an input, and disk-full errors that say what happened."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
import pandas as pd

from iamchars.errors import UserError


class UnsafePathError(UserError, ValueError):
    """A path built from data (an id, a member name) that would land outside its folder."""


class FileError(UserError, OSError):
    """An OSError made with (errno, message) whose text is the message alone, as the command line prints it."""

    def __str__(self) -> str:
        return str(self.strerror) if self.strerror else super().__str__()


class NotARegularFileError(FileError):
    """A path that is a folder, a FIFO, a device, a dangling or looping link: never opened for reading."""


class DiskFullError(FileError):
    """The disk (or a quota or file-size limit) filled up while writing; the message names the file."""


class OverlapError(UserError, ValueError):
    """An output path that is, or lies inside, an input of the same command (or holds one that it replaces)."""

    exit_code = 2


FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
LOCK_FILE = ".iamchars.lock"


class FolderBusyError(UserError, OSError):
    """An output folder that another iamchars process is writing."""

    exit_code = 2

    def __str__(self) -> str:
        return str(self.args[0])


@contextlib.contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold `folder` for this process while the block runs (an advisory lock on `folder/.iamchars.lock`,
    released by the system however the process ends): a second process that asks meanwhile gets one line
    naming the first, instead of two runs mixing their files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666 & ~_umask())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            by = f" (process {holder})" if holder.isdigit() else ""
            raise FolderBusyError(
                f"{folder}: another {what} is writing this folder{by}; wait for it to finish, or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def inside(root: Path, *parts: str | Path) -> Path:
    """`root / parts...`, refused unless it resolves inside `root`: every path the project writes (or reads by
    an id from a corpus) is made here, so an id such as `../../x` or `/etc/x` can never escape its folder."""
    base = os.path.realpath(root)
    path = Path(root).joinpath(*parts)
    resolved = os.path.realpath(path)
    if resolved != base and not resolved.startswith(base.rstrip(os.sep) + os.sep):
        shown = "/".join(str(p) for p in parts)
        raise UnsafePathError(f"{shown!r}: would be written outside {root}; refused")
    return path


def _contains(folder: Path, path: Path) -> bool:
    return path == folder or folder in path.parents


def refuse_overlap(outputs: dict[str, Path], inputs: dict[str, Path], replaced: Sequence[str] = ()) -> None:
    """Refuse, before any work, an output (flag -> path) that is an input or lies inside one, and an input
    that lies inside an output folder the command replaces (`replaced` names those flags). One line, naming
    both flags and the path."""
    resolved_in = {flag: Path(p).resolve() for flag, p in inputs.items()}
    for out_flag, out_path in outputs.items():
        target = Path(out_path).resolve()
        for in_flag, source in resolved_in.items():
            if _contains(source, target):
                where = "is" if target == source else "lies inside"
                raise OverlapError(
                    f"{out_flag} {out_path} {where} the input {in_flag} {inputs[in_flag]}: it would be overwritten; "
                    "choose another output path"
                )
            if out_flag in replaced and _contains(target, source):
                raise OverlapError(
                    f"{in_flag} {inputs[in_flag]} lies inside {out_flag} {out_path}, which this command replaces; "
                    "choose an output folder that holds none of the inputs"
                )


def disk_full(exc: OSError, path: Path | str, replaced_nothing: bool = True) -> DiskFullError:
    """A DiskFullError for `exc` (an ENOSPC, EDQUOT or EFBIG), naming the file and the space left."""
    try:
        free = shutil.disk_usage(Path(path).parent if not Path(path).is_dir() else path).free
        left = f"{free / 2**20:,.1f} MiB free"
    except OSError:
        left = "free space unknown"
    tail = "; nothing was replaced" if replaced_nothing else ""
    why = {errno.EFBIG: "file-size limit reached"}.get(exc.errno or 0, "disk full")
    return DiskFullError(exc.errno or errno.ENOSPC, f"{path}: {why} while writing ({left}){tail}")


def _umask() -> int:
    """The process umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` and rename it into place only if the block succeeds.

    The file gets the mode that `open()` would give it (0666 less the umask), not mkstemp's private 0600,
    so other users of a shared machine can read the outputs. A full disk becomes a DiskFullError naming
    `path`; the old file, if any, is untouched."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            raise disk_full(exc, path) from None
        raise
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            raise disk_full(exc, path) from None
        raise
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


def _regular_fd(path: Path) -> int:
    """An open descriptor of `path` if it is a regular file; NotARegularFileError otherwise. Opened without
    blocking (a FIFO would wait forever for a writer) and checked on the descriptor itself, so nothing can
    swap the file between the check and the read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise NotARegularFileError(errno.EISDIR, f"{path}: is a folder, not a file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotARegularFileError(errno.ELOOP, f"{path}: symbolic link loop") from None
        raise NotARegularFileError(exc.errno or errno.EIO, f"{path}: cannot be read ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise NotARegularFileError(errno.EINVAL, f"{path}: is {kind}; only regular files are read")
    os.set_blocking(fd, True)
    return fd


def read_bytes(path: Path) -> bytes:
    """The bytes of a regular file; a folder, FIFO, device or looping link is a NotARegularFileError (one
    line naming the file) instead of a hang or a traceback. Every file read from a corpus goes through here."""
    with os.fdopen(_regular_fd(Path(path)), "rb") as handle:
        return handle.read()


def is_regular_file(path: Path) -> bool:
    """True for a regular file (through links); False for anything else, including a looping link."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def read_gray(path: Path) -> np.ndarray:
    """Read an 8-bit greyscale image; raise ValueError naming the file when it is missing, not a regular
    file, or undecodable."""
    try:
        data = np.frombuffer(read_bytes(path), dtype=np.uint8)
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: image file missing") from exc
    except OSError as exc:
        raise ValueError(str(exc) if isinstance(exc, FileError) else f"{path}: {exc.strerror or exc}") from exc
    if data.size == 0:
        raise ValueError(f"{path}: image file is empty")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    except cv2.error as exc:  # past OpenCV's pixel limit, or a header it refuses
        text = str(exc)
        why = "more pixels than OpenCV decodes, CV_IO_MAX_IMAGE_PIXELS" if "MAX_IMAGE_PIXELS" in text else text
        raise ValueError(f"{path}: image cannot be decoded ({why.strip().splitlines()[-1][-120:]})") from None
    if image is None:
        raise ValueError(f"{path}: image cannot be decoded (truncated or not an image)")
    return image


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def png_size(path: Path) -> tuple[int, int] | str:
    """(width, height) of a complete PNG, from its header and end chunk without decoding the pixels; else
    the reason it cannot be used. A truncated file (a broken download, a full disk) has no end chunk."""
    try:
        with os.fdopen(_regular_fd(Path(path)), "rb") as handle:
            head = handle.read(24)
            if len(head) < 24 or head[:8] != PNG_SIGNATURE:
                return "image is not a PNG" if head else "image file is empty"
            handle.seek(-len(PNG_END), os.SEEK_END)
            tail = handle.read()
    except FileNotFoundError:
        return "image missing"
    except NotARegularFileError as exc:
        return str(exc).split(": ", 1)[-1]
    except OSError as exc:
        return f"image cannot be read ({exc.strerror or exc})"
    if tail != PNG_END:
        return "image is truncated (no PNG end chunk)"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
