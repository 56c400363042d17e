"""The handful of GitHub REST endpoints modelexport calls, served for real on 127.0.0.1.

GitHub itself cannot be reached from a test, so this stands in for it at the HTTP
boundary: list issue comments (``per_page``/``page`` with a ``Link`` header, at most 100
a page like GitHub), create and update a comment, read a pull request. Every request is
kept for the tests to inspect. ``read_only`` answers writes the way GitHub answers a
fork's token. An ``/api/v3`` prefix is accepted, as on GitHub Enterprise Server.
Also here: ``$GITHUB_OUTPUT`` read as the runner reads it, and the check that a token
leaked nowhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

_ISSUE_COMMENTS = re.compile(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments")
_COMMENT = re.compile(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)")
_PULL = re.compile(r"/repos/([^/]+/[^/]+)/pulls/(\d+)")


@dataclass
class Seen:
    method: str
    path: str  # with the query
    headers: dict[str, str]  # names in lower case: HTTP does not care, urllib rewrites them
    body: Any


BOT = {"login": "github-actions[bot]", "type": "Bot"}  # who GITHUB_TOKEN writes as
HUMAN = {"login": "octocat", "type": "User"}
Answer = tuple[int, dict[str, str], Any]  # status, headers, JSON payload (bytes: sent raw)


@dataclass
class FakeGitHub:
    repository: str = "octo/models"
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    heads: dict[int, str] = field(default_factory=dict)  # PR number -> head sha
    read_only: bool = False
    login: str | None = None  # /user answers with it; None: 403, as for GITHUB_TOKEN
    # Misbehaving on purpose: consulted first; an Answer replaces the regular one.
    hook: Callable[[str, str], Answer | None] | None = None
    drip_s: float = 0.0  # seconds between the bytes of every reply
    requests: list[Seen] = field(default_factory=list)
    url: str = ""
    _next_id: int = 1000

    def add_comment(self, number: int, body: str, user: dict[str, str] = HUMAN
                    ) -> dict[str, Any]:
        self._next_id += 1
        comment = {"id": self._next_id, "body": body, "user": user,
                   "html_url": f"https://github.example/{self.repository}/pull/{number}"
                               f"#issuecomment-{self._next_id}"}
        self.comments.setdefault(number, []).append(comment)
        return comment

    def answer(self, method: str, raw_path: str, body: Any) -> Answer:
        if self.hook and (forced := self.hook(method, raw_path)) is not None:
            return forced
        url = urlsplit(raw_path)
        path = url.path.removeprefix("/api/v3")
        query = parse_qs(url.query)
        if (found := _ISSUE_COMMENTS.fullmatch(path)) and found[1] == self.repository:
            number = int(found[2])
            if method == "GET":
                return self._page(number, raw_path, query)
            if method == "POST":
                if self.read_only:
                    return 403, {}, {"message": "Resource not accessible by integration"}
                return 201, {}, self.add_comment(number, body["body"], BOT)
        if (found := _COMMENT.fullmatch(path)) and method == "PATCH":
            if self.read_only:
                return 403, {}, {"message": "Resource not accessible by integration"}
            for comment in (c for cs in self.comments.values() for c in cs):
                if comment["id"] == int(found[2]):
                    comment["body"] = body["body"]
                    return 200, {}, comment
        if path == "/user" and method == "GET":
            if self.login is None:
                return 403, {}, {"message": "Resource not accessible by integration"}
            return 200, {}, {"login": self.login, "type": "User"}
        if (found := _PULL.fullmatch(path)) and method == "GET" and int(found[2]) in self.heads:
            return 200, {}, {"number": int(found[2]), "head": {"sha": self.heads[int(found[2])]}}
        return 404, {}, {"message": "Not Found"}

    def _page(self, number: int, raw_path: str, query: dict[str, list[str]]
              ) -> tuple[int, dict[str, str], Any]:
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        items = self.comments.get(number, [])
        headers = {}
        if page * per_page < len(items):
            base = raw_path.split("?", 1)[0]
            headers["Link"] = (f'<{self.url}{base}?per_page={per_page}&page={page + 1}>; '
                               f'rel="next", <{self.url}{base}?per_page={per_page}&page=1>; '
                               'rel="first"')
        return 200, headers, items[(page - 1) * per_page:page * per_page]

    def serve(self) -> ThreadingHTTPServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                headers = {name.lower(): value for name, value in self.headers.items()}
                fake.requests.append(Seen(self.command, self.path, headers, body))
                status, headers, payload = fake.answer(self.command, self.path, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not fake.drip_s:
                    self.wfile.write(data)
                    return
                for byte in data:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(fake.drip_s)

            do_GET = do_POST = do_PATCH = _handle

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def parse_outputs(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT read the way the runner reads it (name<<DELIMITER ... DELIMITER)."""
    outputs, lines = {}, iter(text.splitlines())
    for line in lines:
        name, delimiter = line.split("<<", 1)
        value = []
        for body in lines:
            if body == delimiter:
                break
            value.append(body)
        outputs[name] = "\n".join(value)
    return outputs


def assert_not_leaked(secret: str, root: Path, procs: list[subprocess.CompletedProcess[str]]
                      ) -> None:
    """``secret`` appears in no output of ``procs`` and in no file below ``root``."""
    for proc in procs:
        assert secret not in proc.stdout + proc.stderr
    for path in root.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


def actions_env(directory: Path, fake: FakeGitHub, event: dict[str, Any], token: str
                ) -> dict[str, str]:
    """The environment a GitHub Actions step sees, talking to ``fake``, for ``event``."""
    (directory / "event.json").write_text(json.dumps(event))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return env | {
        "GITHUB_ACTIONS": "true", "GITHUB_API_URL": fake.url, "GITHUB_TOKEN": token,
        "GITHUB_REPOSITORY": fake.repository, "GITHUB_EVENT_PATH": str(directory / "event.json"),
        "GITHUB_OUTPUT": str(directory / "output"),
        "GITHUB_STEP_SUMMARY": str(directory / "summary.md"),
        "MODELEXPORT_LOOPBACK_HTTP": "1",  # the fake serves plain http on 127.0.0.1
    }
