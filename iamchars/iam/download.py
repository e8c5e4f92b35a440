"""Fetching IAM from its site (login form, session cookie, resumable Range downloads) or importing local
archives, then extracting them safely into the layout `iamchars.iam.corpus` reads.

Credentials come from IAM_EMAIL / IAM_PASSWORD or a netrc entry for the site's host; they are sent in the
login POST only and never printed, logged or written.
"""

from __future__ import annotations

import hashlib
import http.client
import http.cookiejar
import json
import netrc
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iamchars.errors import UserError
from iamchars.fileio import FULL_ERRNOS, disk_full, write_json
from iamchars.iam.archives import extract_archive, link_or_copy
from iamchars.progress import progress_bar

DEFAULT_BASE_URL = "https://fki.tic.heia-fr.ch"
LOGIN_PATH = "/login"
STATE_FILE = ".iamchars-download.json"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Resource:
    name: str
    url_path: str
    subdir: str
    size: int | None = None
    sha256: str | None = None


IAM_RESOURCES = (
    Resource("ascii.tgz", "/DBs/iamDB/data/ascii.tgz", "ascii"),
    Resource("lines.tgz", "/DBs/iamDB/data/lines.tgz", "lines"),
    Resource("words.tgz", "/DBs/iamDB/data/words.tgz", "words"),
    Resource("xml.tgz", "/DBs/iamDB/data/xml.tgz", "xml"),
    Resource(
        "largeWriterIndependentTextLineRecognitionTask.zip",
        "/static/zip/largeWriterIndependentTextLineRecognitionTask.zip",
        "split",
    ),
)


class DownloadError(UserError, RuntimeError):
    """A download that cannot go on; the message says what to do."""


class LoginError(DownloadError):
    pass


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str = field(repr=False)

    def __repr__(self) -> str:  # never show the password, even in tracebacks
        return f"Credentials(email={self.email!r}, password=***)"


def resolve_credentials(env: Mapping[str, str], base_url: str, netrc_path: Path | None = None) -> Credentials | None:
    """IAM_EMAIL/IAM_PASSWORD first, then the netrc entry for the base URL's host."""
    email, password = env.get("IAM_EMAIL"), env.get("IAM_PASSWORD")
    if email and password:
        return Credentials(email, password)
    path = netrc_path or Path(env.get("NETRC", Path.home() / ".netrc"))
    if not Path(path).is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(urllib.parse.urlparse(base_url).hostname or "")
    except (netrc.NetrcParseError, OSError) as exc:
        raise DownloadError(f"{path}: cannot read netrc file ({type(exc).__name__})") from None
    if entry is None or not entry[0] or not entry[2]:
        return None
    return Credentials(entry[0], entry[2])


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class IAMClient:
    """A cookie-keeping HTTP client for the IAM site."""

    def __init__(
        self, base_url: str = DEFAULT_BASE_URL, timeout: float = 60.0, retries: int = 5, backoff: float = 1.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def url(self, path: str) -> str:
        return self.base_url + path

    def login(self, creds: Credentials) -> None:
        body = urllib.parse.urlencode({"email": creds.email, "password": creds.password}).encode()
        request = urllib.request.Request(self.url(LOGIN_PATH), data=body, method="POST")
        try:
            with self.opener.open(request, timeout=self.timeout) as resp:
                final_path = urllib.parse.urlparse(resp.geturl()).path
                page = resp.read(200_000).decode("utf-8", errors="replace").lower()
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise LoginError("IAM login refused: wrong email or password") from None
            raise DownloadError(f"IAM login failed: HTTP {exc.code} from {self.url(LOGIN_PATH)}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DownloadError(f"cannot reach {self.base_url}: {_reason(exc)}") from None
        if final_path.rstrip("/") == LOGIN_PATH or 'type="password"' in page:
            raise LoginError("IAM login refused: wrong email or password (the site showed its login form again)")
        if not any(True for _ in self.cookies):
            raise LoginError("IAM login gave no session cookie; is the account registered and confirmed?")

    def fetch(self, resource: Resource, dest: Path, progress: bool = True) -> int:
        """Download into `dest` through `dest.part`, resuming after drops; returns the bytes transferred."""
        url = self.url(resource.url_path)
        part = dest.with_name(dest.name + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        failures = 0
        transferred = 0
        while True:
            try:
                total, got = self._stream(url, part, resource, progress)
                transferred += got
                break
            except _Dropped as drop:
                transferred += drop.got
                failures += 1
                if failures > self.retries:
                    kept = part.stat().st_size if part.exists() else 0
                    raise DownloadError(
                        f"{resource.name}: connection dropped {failures} times ({drop.reason}); "
                        f"{kept:,} bytes kept in {part}; re-run to resume"
                    ) from None
                time.sleep(self.backoff * failures)
        size = part.stat().st_size
        if total is not None and size != total:
            raise DownloadError(f"{resource.name}: got {size:,} bytes, expected {total:,}")
        _verify(part, resource)
        os.replace(part, dest)
        return transferred

    def _stream(self, url: str, part: Path, resource: Resource, progress: bool) -> tuple[int | None, int]:
        """One GET (with Range when part of the file is there); raises _Dropped when the connection fails."""
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            resp = self.opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:
                return have, 0  # the server has nothing past our bytes: already complete
            raise _http_error(resource, url, exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise _Dropped(0, _reason(exc)) from None
        got = 0
        with resp:
            if "text/html" in (resp.headers.get("Content-Type") or ""):
                raise DownloadError(
                    f"{resource.name}: the site sent a web page instead of the archive; "
                    "the login session is missing or expired (check your credentials)"
                )
            total = _total_size(resp, have)
            if resp.status == 200 and have:
                have = 0  # the server ignored Range: start again
            bar = progress_bar(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=resource.name,
                disable=not progress,
            )
            try:
                with open(part, "ab" if have else "wb") as out:
                    while True:
                        try:
                            block = resp.read(CHUNK)
                        except (http.client.IncompleteRead, OSError) as exc:
                            raise _Dropped(got, _reason(exc)) from None
                        if not block:
                            break
                        out.write(block)
                        got += len(block)
                        bar.update(len(block))
            except OSError as exc:
                if exc.errno in FULL_ERRNOS:
                    raise disk_full(exc, part, replaced_nothing=False) from None
                raise
            finally:
                bar.close()
            if total is not None and have + got < total:
                raise _Dropped(got, "connection closed early")
        return total, got


class _Dropped(Exception):
    def __init__(self, got: int, reason: str) -> None:
        super().__init__(reason)
        self.got, self.reason = got, reason


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc.__class__.__name__)


def _total_size(resp: http.client.HTTPResponse, have: int) -> int | None:
    content_range = resp.headers.get("Content-Range")
    if resp.status == 206 and content_range and "/" in content_range:
        start = int(content_range.split()[1].split("-")[0])
        if start != have:
            raise DownloadError(f"server resumed at byte {start}, expected {have}")
        tail = content_range.rsplit("/", 1)[1]
        return int(tail) if tail.isdigit() else None
    length = resp.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _http_error(resource: Resource, url: str, code: int) -> DownloadError:
    if code in (401, 403):
        return DownloadError(
            f"{resource.name}: access denied (HTTP {code}) at {url}; the account may lack "
            "access to IAM (register at the IAM site and confirm the e-mail) or the login failed"
        )
    if code == 404:
        return DownloadError(f"{resource.name}: not found (HTTP 404) at {url}; check --base-url")
    return DownloadError(f"{resource.name}: HTTP {code} at {url}")


def _verify(path: Path, resource: Resource) -> None:
    size = path.stat().st_size
    if resource.size is not None and size != resource.size:
        raise DownloadError(f"{resource.name}: {size:,} bytes, expected {resource.size:,}; delete {path}")
    if resource.sha256 is not None and file_sha256(path) != resource.sha256:
        path.unlink()
        raise DownloadError(f"{resource.name}: checksum mismatch; the partial file was removed, re-run")


@dataclass
class DownloadReport:
    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    extracted: list[str] = field(default_factory=list)
    bytes_transferred: int = 0


def _load_state(out: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((out / STATE_FILE).read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def _save_state(out: Path, state: dict[str, Any]) -> None:
    write_json(out / STATE_FILE, state)


def _complete(out: Path, resource: Resource, state: dict[str, Any]) -> bool:
    entry = state.get(resource.name)
    archive = out / "archives" / resource.name
    return bool(entry and entry.get("extracted") and archive.is_file() and archive.stat().st_size == entry["size"])


def _extract_and_record(out: Path, resource: Resource, state: dict[str, Any], report: DownloadReport) -> None:
    archive = out / "archives" / resource.name
    extract_archive(archive, out / resource.subdir)
    state[resource.name] = {"size": archive.stat().st_size, "sha256": file_sha256(archive), "extracted": True}
    _save_state(out, state)
    report.extracted.append(resource.name)


def download(
    out: Path,
    client: IAMClient,
    creds: Credentials | None,
    resources: tuple[Resource, ...] = IAM_RESOURCES,
    progress: bool = True,
) -> DownloadReport:
    """Download what is missing, resume what is partial, extract, and skip what is already complete."""
    out.mkdir(parents=True, exist_ok=True)
    state = _load_state(out)
    report = DownloadReport()
    todo = [r for r in resources if not _complete(out, r, state)]
    report.skipped = [r.name for r in resources if r not in todo]
    if not todo:
        return report
    needs_network = [r for r in todo if not (out / "archives" / r.name).is_file()]
    if needs_network:
        if creds is None:
            raise LoginError(
                "no IAM credentials: set IAM_EMAIL and IAM_PASSWORD, or add a netrc entry for "
                f"{urllib.parse.urlparse(client.base_url).hostname}"
            )
        client.login(creds)
    for resource in todo:
        archive = out / "archives" / resource.name
        if not archive.is_file():
            report.bytes_transferred += client.fetch(resource, archive, progress)
            report.downloaded.append(resource.name)
        _extract_and_record(out, resource, state, report)
    return report


def import_local(source: Path, out: Path, resources: tuple[Resource, ...] = IAM_RESOURCES) -> DownloadReport:
    """Import archives (a folder of them, or one archive) or an already extracted IAM tree."""
    out.mkdir(parents=True, exist_ok=True)
    state = _load_state(out)
    report = DownloadReport()
    by_name = {r.name: r for r in resources}
    if source.is_file():
        if source.name not in by_name:
            raise DownloadError(f"{source}: unknown archive; expected one of {', '.join(by_name)}")
        candidates = [source]
    elif source.is_dir():
        candidates = [source / r.name for r in resources if (source / r.name).is_file()]
        candidates += [source / "archives" / r.name for r in resources if (source / "archives" / r.name).is_file()]
    else:
        raise DownloadError(f"{source}: no such file or folder")
    if not candidates:
        if not (source / "ascii").is_dir() and not (source / "xml").is_dir():
            raise DownloadError(
                f"{source}: holds neither IAM archives ({', '.join(by_name)}) "
                "nor an extracted IAM tree (ascii/, lines/, words/)"
            )
        count = 0
        for path in sorted(source.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                target = out / path.relative_to(source)
                if not (target.is_file() and target.stat().st_size == path.stat().st_size):
                    link_or_copy(path, target)
                    count += 1
        report.extracted.append(f"{count} files from {source}")
        return report
    for path in candidates:
        resource = by_name[path.name]
        if _complete(out, resource, state):
            report.skipped.append(resource.name)
            continue
        archive = out / "archives" / resource.name
        link_or_copy(path, archive)
        _verify(archive, resource)
        _extract_and_record(out, resource, state, report)
    return report
