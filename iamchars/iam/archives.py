"""Safe extraction of tar and zip archives: nothing may land outside the target folder.

Refused: absolute names, `..` components, links whose target leaves the folder, device files and FIFOs.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from iamchars.errors import UserError
from iamchars.fileio import FULL_ERRNOS, disk_full


class UnsafeArchiveError(UserError, ValueError):
    """An archive member would write outside the target folder (or is a device file)."""


class CorruptArchiveError(UserError, ValueError):
    """The archive cannot be read to its end."""


def _inside(target: Path, relative: str) -> bool:
    resolved = (target / relative).resolve()
    return resolved == target or target in resolved.parents


def check_member_name(name: str, archive: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refused")
    if ".." in path.parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} climbs out of the target folder; refused")


def _walk_through_links(path: PurePosixPath, links: set[str]) -> str | None:
    """Follow `path` part by part as the file system would: the first prefix that is a link member of the
    archive (or the climb out of the target, returned as "..") stops it; None when it meets neither."""
    stack: list[str] = []
    for part in path.parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return ".."
            stack.pop()
            continue
        stack.append(part)
        if "/".join(stack) in links:
            return "/".join(stack)
    return None


def check_links(members: list[tarfile.TarInfo], archive: Path) -> None:
    """Refuse, before anything is written, what only a chain of links can do: a member written through a
    link member (`a -> x`, then `a/b`), and a link whose target passes through another link (`up -> .`,
    then `out -> up/..`: each alone stays inside, the chain does not)."""
    links = {str(PurePosixPath(m.name)) for m in members if m.issym() or m.islnk()}
    for member in members:
        name = PurePosixPath(member.name)
        through = _walk_through_links(name.parent, links)
        if through is not None:
            raise UnsafeArchiveError(
                f"{archive}: member {member.name!r} is written through the link {through!r}; refused"
            )
        if member.issym() or member.islnk():
            target = name.parent / member.linkname if member.issym() else PurePosixPath(member.linkname)
            through = _walk_through_links(target, links - {str(name)})
            if through == "..":
                raise UnsafeArchiveError(f"{archive}: link {member.name!r} points outside the target; refused")
            if through is not None:
                raise UnsafeArchiveError(
                    f"{archive}: link {member.name!r} points through the link {through!r} (a chain of links); refused"
                )


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


def extract_archive(archive: Path, target: Path) -> int:
    """Extract `archive` (tar, tgz or zip) into `target`; returns the number of regular files written.

    Every member is checked before anything is written, and the archive is extracted into a staging folder
    inside `target` and moved in only when whole: an unsafe, corrupt or truncated archive, or a full disk,
    leaves nothing of it in `target`."""
    target = Path(target).resolve()
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=target))
    try:
        extract = _extract_zip if zipfile.is_zipfile(archive) else _extract_tar
        count = extract(archive, staging)
        _move_into(staging, target)
        return count
    except (tarfile.ReadError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.CompressionError) as exc:
        raise CorruptArchiveError(f"{archive}: corrupt or truncated archive ({exc}); delete it and re-run") from exc
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            raise disk_full(exc, target) from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into(staging: Path, target: Path) -> None:
    """Move a finished extraction into place, merging folders that already exist (a second archive adds to
    `ascii/`); each file arrives by one rename."""
    for entry in sorted(staging.iterdir()):
        dest = target / entry.name
        if entry.is_dir() and not entry.is_symlink() and dest.is_dir() and not dest.is_symlink():
            _move_into(entry, dest)
        else:
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(entry, dest)


def _extract_tar(archive: Path, target: Path) -> int:
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            _check_tar_member(member, archive, target)
        check_links(members, archive)
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
            if exc.errno in FULL_ERRNOS:
                raise disk_full(exc, dst) from None
            raise
    os.replace(tmp, dst)
