"""A small GitHub REST client. Standard library only: four endpoints do not justify a
client dependency, and the pre-commit hook installs this package without extras. Every call
goes through ``Client.request``; listing goes through ``Client.pages`` (the one place that
follows the ``Link`` header).
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from modelexport import __version__
from modelexport.errors import ModelExportError

API_VERSION = "2022-11-28"
DEADLINE_S = 60.0  # for all the calls of one comment: a gate waits no longer for GitHub
PAGES_LIMIT = 50  # of comments, 100 a page
REPLY_LIMIT = 10 * 2**20  # bytes
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class GitHubError(ModelExportError):
    """A GitHub REST call failed; ``status`` is the HTTP status (0: no answer or a refused
    one), ``rate_limited`` says the API refused for the rate limit, not for permissions."""

    def __init__(self, message: str, status: int, rate_limited: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.rate_limited = rate_limited
        self.retry_after = retry_after  # seconds the API asked to wait before a retry


class Response(NamedTuple):
    headers: Mapping[str, str]
    body: Any


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the API's origin: urllib keeps the Authorization
    header on a redirect to any host, and the token must reach no other."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        if _origin(newurl) != self.origin:
            raise GitHubError(f"{req.get_method()} {_without_query(req.full_url)}: redirected "
                              f"to {_origin(newurl)}; the token goes to {self.origin} only", 0)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Client:
    """A small GitHub REST client: auth, API version and user agent on every request, the
    token sent to the API's origin only and over https only, and one deadline for
    everything it does (a reply trickling in a byte at a time would defeat a per-read
    timeout). ``loopback_http`` lets a test serve the API on 127.0.0.1 without TLS."""

    def __init__(self, api_url: str, token: str, deadline_s: float = DEADLINE_S,
                 loopback_http: bool = False) -> None:
        self.api_url = api_url.rstrip("/")
        self.origin = _origin(self.api_url)
        parts = urllib.parse.urlsplit(self.api_url)
        if parts.scheme != "https" and not (loopback_http and parts.scheme == "http"
                                            and _loopback(parts.hostname)):
            raise GitHubError(f"{_without_query(self.api_url)}: not https; the token is "
                              "sent over https only", 0)
        self._token = token
        self._deadline_s = deadline_s
        self._deadline = time.monotonic() + deadline_s
        self._opener = urllib.request.build_opener(_SameOrigin(self.origin))

    def __repr__(self) -> str:  # the token must not reach a log through a repr
        return f"Client({self.api_url!r})"

    def request(self, method: str, url: str, body: Any = None) -> Response:
        if not url.startswith(("http://", "https://")):
            url = self.api_url + url
        if _origin(url) != self.origin:
            raise GitHubError(f"{method} {_without_query(url)}: not {self.origin}; the token "
                              "goes there only", 0)
        for attempt in (1, 2):
            try:
                return self._once(method, url, body)
            except GitHubError as exc:
                wait = exc.retry_after
                if attempt == 2 or wait is None or wait > self._left():
                    raise
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _left(self) -> float:
        return self._deadline - time.monotonic()

    def _once(self, method: str, url: str, body: Any) -> Response:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self._token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"modelexport/{__version__}",
            **({"Content-Type": "application/json"} if data is not None else {}),
        })
        where = f"{method} {_without_query(url)}"
        if self._left() <= 0:
            raise GitHubError(f"{where}: no time left ({self._deadline_s:g} s for all calls)",
                              0)
        try:
            with self._opener.open(request, timeout=min(30.0, self._left())) as answer:
                payload = self._read(answer, where)
                headers = dict(answer.headers)
        except urllib.error.HTTPError as exc:
            raise _http_error(where, exc, self._read(exc, where)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GitHubError(f"{where}: no answer ({reason})", 0) from None
        try:
            return Response(headers, json.loads(payload) if payload else None)
        except (ValueError, RecursionError):  # not JSON; JSON nested beyond parsing
            raise GitHubError(f"{where}: the reply is not JSON", 0) from None

    def _read(self, answer: Any, where: str) -> bytes:
        """The reply's bytes, read as they arrive (``read1``), so that the deadline holds."""
        read = getattr(answer, "read1", answer.read)
        chunks, size = [], 0
        while chunk := read(65536):
            size += len(chunk)
            if size > REPLY_LIMIT:
                raise GitHubError(f"{where}: a reply over {REPLY_LIMIT:,} bytes", 0)
            if self._left() <= 0:
                raise GitHubError(f"{where}: the reply did not arrive within "
                                  f"{self._deadline_s:g} s", 0)
            chunks.append(chunk)
        return b"".join(chunks)

    def pages(self, url: str) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, following ``Link: <...>; rel="next"`` within the
        API's origin, each page once, at most PAGES_LIMIT pages."""
        next_url: str | None = url if url.startswith(("http://", "https://")) \
            else self.api_url + url
        seen: set[str] = set()
        while next_url:
            if next_url in seen or len(seen) >= PAGES_LIMIT:
                raise GitHubError(f"GET {_without_query(url)}: more than {len(seen)} pages, or "
                                  "a page linking back", 0)
            seen.add(next_url)
            answer = self.request("GET", next_url)
            if not isinstance(answer.body, list):
                raise GitHubError(f"GET {_without_query(next_url)}: not a list", 0)
            yield from (item for item in answer.body if isinstance(item, dict))
            found = _NEXT.search(answer.headers.get("Link", ""))
            next_url = found.group(1) if found else None


def _http_error(where: str, exc: urllib.error.HTTPError, payload: bytes) -> GitHubError:
    detail = _message(payload)
    remaining = exc.headers.get("X-RateLimit-Remaining")
    limited = exc.code == 429 or (exc.code == 403 and (remaining == "0"
                                                       or "rate limit" in detail.lower()))
    retry = exc.headers.get("Retry-After", "")
    return GitHubError(f"{where}: HTTP {exc.code} {detail}".rstrip(), exc.code, limited,
                       float(retry) if limited and retry.isdigit() else None)


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("message", ""))[:200]
    except (ValueError, AttributeError, RecursionError):
        return ""


def _without_query(url: str) -> str:
    """What an error message needs of a URL."""
    return url.split("?", 1)[0]
