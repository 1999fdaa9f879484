"""A local stand-in for the Hugging Face Hub on 127.0.0.1: the endpoints kvplan uses, nothing else.

- HEAD / GET /{org}/{name}/resolve/{revision}/{path}: the file, with the headers huggingface_hub reads
  (X-Repo-Commit, ETag, Content-Length), byte ranges (206 + Content-Range), and the Hub's error codes:
  401 X-Error-Code: GatedRepo, 404 RepoNotFound / RevisionNotFound / EntryNotFound.
- GET /api/models/{org}/{name}/tree/{revision}: the file list.
Every request is recorded, so tests can check that weights were never downloaded whole.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Repo:
    files: dict[str, bytes]
    branches: dict[str, str] = field(default_factory=lambda: {"main": "a" * 40})
    gated: bool = False
    token: str = "hf_valid"


class Hub:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, range)
        self.delay = 0.0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Hub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _error(self, status: int, code: str, message: str) -> None:
                body = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _repo(self, repo_id: str) -> Repo | None:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    self._error(404, "RepoNotFound", "Repository not found")
                    return None
                if repo.gated and self.headers.get("Authorization") != f"Bearer {repo.token}":
                    self._error(401, "GatedRepo", "Access to model is restricted. You must be authenticated.")
                    return None
                return repo

            def _serve(self) -> None:
                hub.requests.append((self.command, self.path, self.headers.get("Range")))
                if hub.delay:
                    time.sleep(hub.delay)
                tree = re.match(r"^/api/models/([^/]+/[^/]+)/tree/([^/?]+)", self.path)
                if tree:
                    repo = self._repo(tree.group(1))
                    if repo is None:
                        return
                    if tree.group(2) not in repo.branches and tree.group(2) not in repo.branches.values():
                        self._error(404, "RevisionNotFound", "Invalid rev id")
                        return
                    listing = [{"type": "file", "path": p, "size": len(b)} for p, b in sorted(repo.files.items())]
                    self._send(200, json.dumps(listing).encode(), {"Content-Type": "application/json"})
                    return
                m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", self.path.split("?")[0])
                if not m:
                    self._error(404, "EntryNotFound", "unknown endpoint")
                    return
                repo = self._repo(m.group(1))
                if repo is None:
                    return
                revision = m.group(2)
                commit = repo.branches.get(revision, revision if revision in repo.branches.values() else None)
                if commit is None:
                    self._error(404, "RevisionNotFound", "Invalid rev id")
                    return
                data = repo.files.get(m.group(3))
                if data is None:
                    self._error(404, "EntryNotFound", "Entry not found")
                    return
                headers = {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                           "Accept-Ranges": "bytes"}
                wanted = self.headers.get("Range")
                if wanted:
                    start, _, end = wanted.removeprefix("bytes=").partition("-")
                    lo, hi = int(start), min(int(end) if end else len(data) - 1, len(data) - 1)
                    headers["Content-Range"] = f"bytes {lo}-{hi}/{len(data)}"
                    self._send(206, data[lo:hi + 1], headers)
                else:
                    self._send(200, data, headers)

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = _serve
            do_HEAD = _serve

        return Handler
