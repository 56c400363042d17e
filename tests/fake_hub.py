"""The Hugging Face hub endpoints a download calls, served for real on 127.0.0.1
(``HF_ENDPOINT``): a model's revision, its file tree, and its files. The hub cannot be
reached from a test, so this stands in for it at the HTTP boundary; every request is kept,
with the token it carried."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHA = "5" * 40  # the one commit the fake hub has


@dataclass
class FakeHub:
    files: dict[str, bytes]  # of its one model
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, auth
    repo: str | None = None  # its one model's id; None: it answers for any id

    @contextmanager
    def serve(self) -> Iterator[str]:
        """The hub running; its URL."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()

    def _refusal(self, path: str) -> str | None:
        """The hub's error code for a model or revision it does not have (the real hub
        answers 404 with it in ``X-Error-Code``), else None."""
        parts = path.split("?")[0].split("/")
        repo = "/".join(parts[3:5]) if path.startswith("/api/models/") else "/".join(parts[1:3])
        if self.repo is not None and repo != self.repo:
            return "RepoNotFound"
        for marker in ("revision", "tree", "resolve"):
            if marker in parts and parts.index(marker) + 1 < len(parts) \
                    and parts[parts.index(marker) + 1] not in (SHA, "main"):
                return "RevisionNotFound"
        return None

    def _answer(self, path: str) -> tuple[bytes, dict[str, str]] | None:
        if path.startswith("/api/models/") and "/tree/" in path:
            return json.dumps([{"type": "file", "path": name, "size": len(data),
                                "oid": hashlib.sha1(data).hexdigest()}
                               for name, data in self.files.items()]).encode(), {}
        if path.startswith("/api/models/"):
            return json.dumps({"id": path.split("/")[3], "sha": SHA, "siblings": [
                {"rfilename": name} for name in self.files]}).encode(), {}
        name = path.rsplit("/", 1)[1]
        if "/resolve/" in path and name in self.files:
            data = self.files[name]
            return data, {"X-Repo-Commit": SHA,
                          "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, head: bool) -> None:
                hub.seen.append((self.command, self.path, self.headers.get("Authorization")))
                refusal = hub._refusal(self.path)
                if refusal is not None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", refusal)
                    self.end_headers()
                    return
                found = hub._answer(self.path)
                if found is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                body, headers = found
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._reply(head=False)

            def do_HEAD(self) -> None:
                self._reply(head=True)

        return Handler
