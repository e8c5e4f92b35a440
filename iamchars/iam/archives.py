"""Safe extraction of tar and zip archives: nothing may land outside the target folder.

Refused: absolute names, `..` components, links whose target leaves the folder, device files and FIFOs.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from iamchars.errors import UserError


class UnsafeArchiveError(UserError, ValueError):
    """An archive member would write outside the target folder (or is a device file)."""


class CorruptArchiveError(UserError, ValueError):
    """The archive cannot be read to its end."""


class DiskFullError(UserError, OSError):
    """The disk filled up while writing; the message names the file."""


def _inside(target: Path, relative: str) -> bool:
    resolved = (target / relative).resolve()
    return resolved == target or target in resolved.parents


def check_member_name(name: str, archive: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refused")
    if ".." in path.parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} climbs out of the target folder; refused")


def _check_tar_member(member: tarfile.TarInfo, archive: Path, target: Path) -> None:
    check_member_name(member.name, archive)
    if member.isdev() or member.isfifo():
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device file or FIFO; refused")
    if member.issym():
        link = str(PurePosixPath(member.name).parent / member.linkname)
        if member.linkname.startswith("/") or not _inside(target, link):
            raise UnsafeArchiveError(f"{archive}: symlink {member.name!r} points outside the target; refused")
    if member.islnk() and (member.linkname.startswith("/") or not _inside(target, member.linkname)):
        raise UnsafeArchiveError(f"{archive}: hard link {member.name!r} points outside the target; refused")


def _disk_full(exc: OSError, where: Path) -> None:
    if exc.errno == errno.ENOSPC:
        raise DiskFullError(errno.ENOSPC, f"disk full while writing under {where}") from exc


def extract_archive(archive: Path, target: Path) -> int:
    """Extract `archive` (tar, tgz or zip) into `target`; returns the number of regular files written.

    Every member is checked before anything is written, so an unsafe archive leaves no partial output."""
    target = Path(target).resolve()
    target.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, target)
        return _extract_tar(archive, target)
    except (tarfile.ReadError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.CompressionError) as exc:
        raise CorruptArchiveError(f"{archive}: corrupt or truncated archive ({exc}); delete it and re-run") from exc
    except OSError as exc:
        _disk_full(exc, target)
        raise


def _extract_tar(archive: Path, target: Path) -> int:
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            _check_tar_member(member, archive, target)
        for member in members:
            if hasattr(tarfile, "data_filter"):
                tar.extract(member, target, filter="data")
            else:  # pragma: no cover - Python < 3.10.12
                tar.extract(member, target)
    return sum(m.isfile() for m in members)


def _extract_zip(archive: Path, target: Path) -> int:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            check_member_name(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a link or device; refused")
        bad = zf.testzip()
        if bad is not None:
            raise CorruptArchiveError(f"{archive}: member {bad!r} fails its CRC check")
        for info in infos:
            zf.extract(info, target)
    return sum(not i.is_dir() for i in infos)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link when source and target share a file system, else copy (atomically)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        os.link(src, tmp)
    except OSError:
        try:
            shutil.copyfile(src, tmp)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            _disk_full(exc, dst.parent)
            raise
    os.replace(tmp, dst)
