"""A local stand-in for the IAM site on 127.0.0.1: login form + session cookie, archive endpoints with Range
support, a connection dropped mid-file on demand, and a count of every request."""

from __future__ import annotations

import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOGIN_PAGE = (
    b'<html><form method="post" action="/login"><input name="email">'
    b'<input type="password" name="password"></form></html>'
)


class FakeIAMSite:
    def __init__(self, files: dict[str, Path], email: str, password: str) -> None:
        self.files = files
        self.email, self.password = email, password
        self.token = "s3ss10n-t0k3n"
        self.requests: Counter[str] = Counter()
        self.ranges: list[tuple[str, str]] = []
        self.drop_after: dict[str, int] = {}
        """url path -> bytes to send before cutting the connection (once per entry)."""
        self.posted: list[dict[str, list[str]]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                site.requests["POST " + self.path] += 1
                length = int(self.headers.get("Content-Length", 0))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                site.posted.append(form)
                if self.path != "/login":
                    self._send(404, b"not found", {"Content-Type": "text/html"})
                elif form.get("email") == [site.email] and form.get("password") == [site.password]:
                    self._send(302, b"", {"Location": "/", "Set-Cookie": f"session={site.token}; Path=/"})
                else:
                    self._send(200, LOGIN_PAGE + b"<p>Invalid credentials</p>", {"Content-Type": "text/html"})

            def do_GET(self) -> None:
                site.requests["GET " + self.path] += 1
                if self.path in ("/", "/login"):
                    self._send(
                        200,
                        LOGIN_PAGE if self.path == "/login" else b"<html>home</html>",
                        {"Content-Type": "text/html"},
                    )
                    return
                if self.path not in site.files:
                    self._send(404, b"<html>not found</html>", {"Content-Type": "text/html"})
                    return
                if f"session={site.token}" not in (self.headers.get("Cookie") or ""):
                    self._send(302, b"", {"Location": "/login"})
                    return
                data = site.files[self.path].read_bytes()
                start = 0
                header = self.headers.get("Range")
                if header:
                    site.ranges.append((self.path, header))
                    start = int(header.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                        return
                self.send_response(206 if header else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) - start))
                if header:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                cut = site.drop_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(data[start : start + cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(  # a short poll: shutting down waits for one
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeIAMSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def archive_gets(self) -> int:
        return sum(n for k, n in self.requests.items() if k.startswith("GET ") and k not in ("GET /", "GET /login"))
