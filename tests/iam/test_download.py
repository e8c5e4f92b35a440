from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from iamchars.cli import app
from iamchars.iam.archives import CorruptArchiveError, UnsafeArchiveError, extract_archive
from iamchars.iam.download import (
    IAM_RESOURCES,
    Credentials,
    DownloadError,
    IAMClient,
    import_local,
    resolve_credentials,
)
from tests.conftest import write_tiny_iam
from tests.iam_site import FakeIAMSite

EMAIL, PASSWORD = "reader@example.org", "pa55-w0rd-secret"
runner = CliRunner()


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _iam_archives(tmp_path: Path) -> dict[str, Path]:
    """IAM-shaped archives made from the tiny tree, plus ~3 MiB of incompressible bytes in lines.tgz so a
    connection can be cut in the middle of it."""
    tree = write_tiny_iam(tmp_path / "tree")
    folder = tmp_path / "site"
    folder.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()

    def files(sub: str) -> dict[str, bytes]:
        return {str(p.relative_to(tree / sub)): p.read_bytes() for p in sorted((tree / sub).rglob("*")) if p.is_file()}

    _tar(folder / "ascii.tgz", files("ascii"))
    _tar(folder / "lines.tgz", {**files("lines"), "x01/noise.bin": noise})
    _tar(folder / "words.tgz", files("words"))
    _tar(folder / "xml.tgz", {"README": b"no xml in this mirror\n"})
    with zipfile.ZipFile(folder / "largeWriterIndependentTextLineRecognitionTask.zip", "w") as zf:
        zf.writestr("trainset.txt", "x01-000-00\n")
        zf.writestr("testset.txt", "x01-001-00\n")
    return {r.url_path: folder / r.name for r in IAM_RESOURCES}


@pytest.fixture()
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    with FakeIAMSite(_iam_archives(tmp_path), EMAIL, PASSWORD) as fake:
        yield fake


def test_download_resumes_after_a_drop_and_rerun_fetches_nothing(site: FakeIAMSite, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    site.drop_after["/DBs/iamDB/data/lines.tgz"] = 1 << 20
    env = {"IAM_EMAIL": EMAIL, "IAM_PASSWORD": PASSWORD}
    args = ["download", "--out", str(out), "--base-url", site.url, "--no-progress"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert ("/DBs/iamDB/data/lines.tgz", f"bytes={1 << 20}-") in site.ranges
    assert (out / "ascii" / "lines.txt").is_file()
    assert (out / "lines" / "x01" / "x01-000" / "x01-000-00.png").is_file()
    assert (out / "split" / "trainset.txt").is_file()
    archive = out / "archives" / "lines.tgz"
    assert archive.read_bytes() == site.files["/DBs/iamDB/data/lines.tgz"].read_bytes()
    assert PASSWORD not in "".join(p.read_text(errors="ignore") for p in out.glob(".*.json"))
    gets = site.archive_gets()
    logins = site.requests["POST /login"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert site.archive_gets() == gets and site.requests["POST /login"] == logins
    assert result.output.count("(skipped)") == len(IAM_RESOURCES)
    info = runner.invoke(app, ["info", "--iam-root", str(out), "--json"])
    assert '"test"' in info.output and '"lines": 1' in info.output


def test_wrong_password_is_a_clear_error_and_never_echoed(site: FakeIAMSite, tmp_path: Path) -> None:
    env = {"IAM_EMAIL": EMAIL, "IAM_PASSWORD": "not-the-password"}
    result = runner.invoke(app, ["download", "--out", str(tmp_path / "o"), "--base-url", site.url], env=env)
    assert result.exit_code == 1
    assert "wrong email or password" in result.output
    assert "not-the-password" not in result.output
    assert site.archive_gets() == 0


def test_archives_need_the_session_cookie(site: FakeIAMSite, tmp_path: Path) -> None:
    client = IAMClient(site.url)
    with pytest.raises(DownloadError, match="web page instead of the archive"):
        client.fetch(IAM_RESOURCES[0], tmp_path / "ascii.tgz", progress=False)
    client.login(Credentials(EMAIL, PASSWORD))
    client.fetch(IAM_RESOURCES[0], tmp_path / "ascii.tgz", progress=False)
    assert tarfile.is_tarfile(tmp_path / "ascii.tgz")


def test_missing_archive_is_a_404_error(site: FakeIAMSite, tmp_path: Path) -> None:
    client = IAMClient(site.url)
    client.login(Credentials(EMAIL, PASSWORD))
    with pytest.raises(DownloadError, match="not found \\(HTTP 404\\)"):
        client.fetch(IAM_RESOURCES[0].__class__("x.tgz", "/nope.tgz", "x"), tmp_path / "x.tgz", progress=False)


def test_repeated_drops_keep_the_partial_file_for_a_later_resume(site: FakeIAMSite, tmp_path: Path) -> None:
    client = IAMClient(site.url, retries=0, backoff=0)
    client.login(Credentials(EMAIL, PASSWORD))
    lines = IAM_RESOURCES[1]
    site.drop_after[lines.url_path] = 500_000
    with pytest.raises(DownloadError, match="re-run to resume"):
        client.fetch(lines, tmp_path / "lines.tgz", progress=False)
    assert (tmp_path / "lines.tgz.part").stat().st_size == 500_000
    client.fetch(lines, tmp_path / "lines.tgz", progress=False)
    assert (tmp_path / "lines.tgz").read_bytes() == site.files[lines.url_path].read_bytes()
    assert site.ranges[-1] == (lines.url_path, "bytes=500000-")


def test_no_credentials_is_a_clear_error(site: FakeIAMSite, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["download", "--out", str(tmp_path / "o"), "--base-url", site.url, "--netrc", str(tmp_path / "none")],
        env={"IAM_EMAIL": "", "IAM_PASSWORD": ""},
    )
    assert result.exit_code == 1 and "IAM_EMAIL" in result.output


def test_credentials_from_netrc_are_masked(tmp_path: Path) -> None:
    rc = tmp_path / "netrc"
    rc.write_text(f"machine 127.0.0.1 login {EMAIL} password {PASSWORD}\n")
    rc.chmod(0o600)
    creds = resolve_credentials({}, "http://127.0.0.1:9", rc)
    assert creds == Credentials(EMAIL, PASSWORD)
    assert PASSWORD not in repr(creds)
    assert resolve_credentials({}, "http://other.host", rc) is None
    assert resolve_credentials({"IAM_EMAIL": "e", "IAM_PASSWORD": "p"}, "http://x", rc) == Credentials("e", "p")


def test_tar_member_climbing_out_is_refused(tmp_path: Path) -> None:
    evil = _tar(tmp_path / "evil.tgz", {"ok.txt": b"fine", "../evil": b"pwned"})
    target = tmp_path / "target"
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./evil'"):
        extract_archive(evil, target)
    assert not (tmp_path / "evil").exists()
    assert not (target / "ok.txt").exists()  # checked before anything is written


def test_links_and_devices_are_refused(tmp_path: Path) -> None:
    for kind, name, link in (
        (tarfile.SYMTYPE, "ln", "../../etc/passwd"),
        (tarfile.LNKTYPE, "hl", "/etc/passwd"),
        (tarfile.CHRTYPE, "dev", ""),
    ):
        path = tmp_path / f"{name}.tar"
        with tarfile.open(path, "w") as tar:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            tar.addfile(info)
        with pytest.raises(UnsafeArchiveError):
            extract_archive(path, tmp_path / "t")
    zpath = tmp_path / "abs.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("/etc/evil", "x")
    with pytest.raises(UnsafeArchiveError, match="absolute"):
        extract_archive(zpath, tmp_path / "t")


def test_chains_of_links_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    chains = {
        "a link through a link": [("up", "."), ("out", "up/.."), ("out/x", "")],
        "a member written through a link": [("d", "sub"), ("sub", ""), ("d/x", "")],
        "a link to a link's target": [("a", "b"), ("b", "../.."), ("c", "")],
    }
    for why, members in chains.items():
        path = tmp_path / f"{why}.tar"
        with tarfile.open(path, "w") as tar:
            for name, link in members:
                info = tarfile.TarInfo(name)
                if link:
                    info.type, info.linkname = tarfile.SYMTYPE, link
                    tar.addfile(info)
                else:
                    tar.addfile(info, io.BytesIO(b""))
        target = tmp_path / "t"
        with pytest.raises(UnsafeArchiveError, match="link"):
            extract_archive(path, target)
        assert not any(target.iterdir()), why


def test_corrupt_archive_is_reported_and_leaves_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    good = _tar(tmp_path / "good.tgz", {f"a{i}.bin": rng.bytes(100_000) for i in range(4)})
    bad = tmp_path / "ascii.tgz"
    bad.write_bytes(good.read_bytes()[:250_000])  # the first members whole, then the cut
    with pytest.raises(CorruptArchiveError, match=r"ascii\.tgz"):
        extract_archive(bad, tmp_path / "t")
    assert not any((tmp_path / "t").iterdir())  # extracted in a staging folder, moved in only when whole
    assert (
        extract_archive(good, tmp_path / "t") == 4 and sorted(p.name for p in (tmp_path / "t").iterdir())[0] == "a0.bin"
    )


def test_import_from_local_archives_and_from_a_tree(tmp_path: Path) -> None:
    archives = _iam_archives(tmp_path)
    folder = next(iter(archives.values())).parent
    out = tmp_path / "imported"
    report = import_local(folder, out)
    assert len(report.extracted) == len(IAM_RESOURCES)
    assert (out / "words" / "x01" / "x01-000" / "x01-000-00-00.png").is_file()
    assert import_local(folder, out).skipped == [r.name for r in IAM_RESOURCES]
    tree_out = tmp_path / "from-tree"
    result = runner.invoke(app, ["download", "--from", str(tmp_path / "tree"), "--out", str(tree_out)])
    assert result.exit_code == 0, result.output
    assert (tree_out / "ascii" / "words.txt").read_text() == (tmp_path / "tree" / "ascii" / "words.txt").read_text()
    result = runner.invoke(app, ["download", "--from", str(tmp_path / "nothing"), "--out", str(tree_out)])
    assert result.exit_code == 1 and "no such file" in result.output


def test_a_full_disk_is_a_clear_error(site: FakeIAMSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from iamchars.iam import download as download_module

    class FullDisk(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download_module, "open", lambda *_a, **_k: FullDisk(), raising=False)
    env = {"IAM_EMAIL": EMAIL, "IAM_PASSWORD": PASSWORD}
    result = runner.invoke(
        app, ["download", "--out", str(tmp_path / "o"), "--base-url", site.url, "--no-progress"], env=env
    )
    assert result.exit_code == 1
    assert "disk full while writing" in result.output and "ascii.tgz.part" in result.output
