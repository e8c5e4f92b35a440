"""The file-system edge: paths kept inside their folder, outputs kept off inputs, only regular files read,
a full disk named."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from iamchars.fileio import (
    DiskFullError,
    NotARegularFileError,
    OverlapError,
    UnsafePathError,
    atomic_path,
    inside,
    png_size,
    read_bytes,
    read_gray,
    refuse_overlap,
    write_png,
)


def test_inside_keeps_every_path_in_its_folder(tmp_path: Path) -> None:
    assert inside(tmp_path, "images", "train", "a.png") == tmp_path / "images" / "train" / "a.png"
    for escape in (("..", "x.png"), ("images/../../x.png",), ("/etc/passwd",), ("a", "/abs")):
        with pytest.raises(UnsafePathError, match="outside"):
            inside(tmp_path, *escape)
    (tmp_path / "link").symlink_to(tmp_path.parent)  # a link inside that leads out is caught too
    with pytest.raises(UnsafePathError):
        inside(tmp_path, "link", "x.png")


def test_an_output_may_not_be_or_lie_inside_an_input(tmp_path: Path) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    refuse_overlap({"--out": run}, {"--data": data})
    with pytest.raises(OverlapError, match=r"--out .* is the input --data"):
        refuse_overlap({"--out": data}, {"--data": data})
    with pytest.raises(OverlapError, match="lies inside the input --data"):
        refuse_overlap({"--out": data / "x" / "m.json"}, {"--data": data})
    refuse_overlap({"--out": tmp_path}, {"--data": data})  # holds the input but replaces nothing: allowed
    with pytest.raises(OverlapError, match="lies inside --out"):
        refuse_overlap({"--out": tmp_path}, {"--data": data}, replaced=["--out"])
    (tmp_path / "alias").symlink_to(data, target_is_directory=True)
    with pytest.raises(OverlapError):  # the same folder by another name
        refuse_overlap({"--out": tmp_path / "alias"}, {"--data": data})


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo, folder, loop = tmp_path / "f.png", tmp_path / "d.png", tmp_path / "l.png"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    folder.mkdir()
    loop.symlink_to(loop.name)
    for path, why in ((fifo, "FIFO"), (folder, "folder"), (loop, "loop")):
        with pytest.raises(NotARegularFileError, match=why):
            read_bytes(path)
        with pytest.raises(ValueError, match=why):
            read_gray(path)
        assert why in str(png_size(path))
    good = tmp_path / "g.png"
    write_png(good, np.full((3, 5), 7, np.uint8))
    assert read_gray(good).shape == (3, 5) and png_size(good) == (5, 3)


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "arrays.npz"
    target.write_bytes(b"old")
    full = pytest.raises(DiskFullError, match=r"arrays\.npz: disk full while writing .*nothing was replaced")
    with full, atomic_path(target):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["arrays.npz"]


def test_a_folder_is_held_by_one_writer_at_a_time(tmp_path: Path) -> None:
    from iamchars.fileio import FolderBusyError, folder_lock

    out = tmp_path / "ds"
    busy = rf"^{out}: another x is writing this folder \(process {os.getpid()}\)"
    with folder_lock(out, "build-dataset"), pytest.raises(FolderBusyError, match=busy), folder_lock(out, "x"):
        pass
    with folder_lock(out, "build-dataset"):  # released when the first ends
        assert (out / ".iamchars.lock").read_text().strip() == str(os.getpid())


def test_an_image_past_the_decoders_limit_is_a_value_error(tmp_path: Path) -> None:
    from tests.faults import huge_png

    huge_png(tmp_path / "huge.png")
    with pytest.raises(ValueError, match=r"cannot be decoded .*CV_IO_MAX_IMAGE_PIXELS"):
        read_gray(tmp_path / "huge.png")
