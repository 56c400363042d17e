"""GitHub: the Actions runner's files and workflow commands, and the sticky PR comment.

Standard library only: four REST endpoints do not justify a client dependency, and the
pre-commit hook installs this package without extras. Every REST call goes through
``Client.request``; listing goes through ``Client.pages`` (the one place that follows the
``Link`` header).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from modelexport import __version__
from modelexport.errors import ModelExportError
from modelexport.gate.results import PullRequest

API_VERSION = "2022-11-28"
DEADLINE_S = 60.0  # for all the calls of one comment: a gate waits no longer for GitHub
PAGES_LIMIT = 50  # of comments, 100 a page
REPLY_LIMIT = 10 * 2**20  # bytes
SUMMARY_LIMIT = 1024 * 1024  # bytes; GitHub refuses a larger step summary
COMMENT_LIMIT = 65_536  # characters in an issue comment body
ANNOTATIONS_PER_KIND = 10  # GitHub shows at most 10 errors and 10 warnings per step
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


class Annotation(NamedTuple):
    kind: str  # error | warning | notice
    message: str
    file: str | None = None
    line: int | None = None
    title: str | None = None


def in_actions(env: Mapping[str, str]) -> bool:
    return env.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_commands(annotations: list[Annotation]) -> list[str]:
    """``::error file=..,line=..::message`` lines, at most 10 per kind, then one line
    saying how many more there were."""
    lines = []
    shown: Counter[str] = Counter()
    for note in annotations:
        shown[note.kind] += 1
        if shown[note.kind] > ANNOTATIONS_PER_KIND:
            continue
        fields = ",".join(f"{key}={escape_property(str(value))}"
                          for key, value in (("file", note.file), ("line", note.line),
                                             ("title", note.title)) if value is not None)
        head = f"::{note.kind} {fields}" if fields else f"::{note.kind}"
        lines.append(f"{head}::{escape_data(note.message)}")
    for kind, count in shown.items():
        if count > ANNOTATIONS_PER_KIND:
            lines.append(f"::{kind}::{count - ANNOTATIONS_PER_KIND} more {kind}s; "
                         "see the log and the step summary")
    return lines


def write_outputs(path: Path, outputs: Mapping[str, str]) -> None:
    """Append step outputs to ``$GITHUB_OUTPUT``; the heredoc form with a random
    delimiter keeps a value with newlines (or a forged delimiter) from escaping."""
    with path.open("a", encoding="utf-8") as out:
        for name, value in outputs.items():
            delimiter = f"modelexport_{secrets.token_hex(8)}"
            out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(path: Path, markdown: str) -> None:
    """Append to ``$GITHUB_STEP_SUMMARY``, cut to what GitHub accepts (1 MiB per step)."""
    used = path.stat().st_size if path.exists() else 0
    with path.open("a", encoding="utf-8") as out:
        out.write(cap(markdown, SUMMARY_LIMIT - used, encoded=True))


def publish(env: Mapping[str, str], markdown: str, outputs: Mapping[str, str]) -> None:
    """The report into the step summary and the outputs into ``$GITHUB_OUTPUT``."""
    if env.get("GITHUB_STEP_SUMMARY"):
        append_summary(Path(env["GITHUB_STEP_SUMMARY"]), markdown)
    if env.get("GITHUB_OUTPUT"):
        write_outputs(Path(env["GITHUB_OUTPUT"]), outputs)


def cap(text: str, limit: int, encoded: bool = False) -> str:
    """``text`` cut to ``limit`` characters (bytes if ``encoded``), with a note saying so."""
    size = len(text.encode()) if encoded else len(text)
    if size <= limit:
        return text
    note = "\n\n_(truncated: the full report is in the job's log and artifacts)_\n"
    keep = max(limit - len(note.encode()), 0)
    head = text.encode()[:keep].decode(errors="ignore") if encoded else text[:keep]
    return head + note


def marker(key: str) -> str:
    """The hidden line that finds this gate's comment again (one per manifest/shard)."""
    return f"<!-- modelexport-comment: {key} -->"


def event(env: Mapping[str, str]) -> dict[str, Any]:
    """The payload of the event that started the workflow ({} outside Actions, or where
    it is not a JSON object)."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).is_file():
        return {}
    try:
        payload = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


def pull_request(env: Mapping[str, str]) -> PullRequest | None:
    """The pull request this run is for, if any."""
    pull = event(env).get("pull_request")
    number = pull.get("number") if isinstance(pull, dict) else None
    repository = env.get("GITHUB_REPOSITORY")
    if not isinstance(number, int) or not repository:
        return None
    return PullRequest(repository, number)


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
    token sent to the API's origin only, and one deadline for everything it does (a reply
    trickling in a byte at a time would defeat a per-read timeout)."""

    def __init__(self, api_url: str, token: str, deadline_s: float = DEADLINE_S) -> None:
        self.api_url = api_url.rstrip("/")
        self.origin = _origin(self.api_url)
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
        except ValueError:
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


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Comment(NamedTuple):
    action: str  # created | updated
    url: str


def upsert_comment(client: Client, repository: str, number: int, key: str, body: str
                   ) -> Comment:
    """Create this gate's comment on PR ``number``, or update it if it is there already.

    Ours is a comment that starts with the marker (content further down cannot forge it)
    and that was written by the token's own identity (another user quoting our marker is
    not us)."""
    tag = marker(key)
    text = cap(f"{tag}\n{body}", COMMENT_LIMIT)
    me = _identity(client)
    comments = client.pages(f"/repos/{repository}/issues/{number}/comments?per_page=100")
    mine = next((c for c in comments if str(c.get("body") or "").startswith(tag + "\n")
                 and _written_by(c, me)), None)
    if mine is None:
        answer = client.request("POST", f"/repos/{repository}/issues/{number}/comments",
                                {"body": text})
        return Comment("created", _text(answer.body, "html_url"))
    answer = client.request("PATCH", f"/repos/{repository}/issues/comments/{mine.get('id')}",
                            {"body": text})
    return Comment("updated", _text(answer.body, "html_url"))


def _identity(client: Client) -> str | None:
    """The token's login, or None for an app's installation token (the workflow's
    GITHUB_TOKEN), which may not read /user and writes as a bot."""
    try:
        return _text(client.request("GET", "/user").body, "login")
    except GitHubError as exc:
        if exc.status in (401, 403, 404):
            return None
        raise


def _written_by(comment: dict[str, Any], me: str | None) -> bool:
    user = comment.get("user")
    if not isinstance(user, dict):
        return False
    login = str(user.get("login", ""))
    return login == me if me is not None else user.get("type") == "Bot"


def _text(body: Any, *keys: str) -> str:
    """``body[keys[0]][keys[1]]...`` as text; GitHubError where the reply lacks it."""
    value = body
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str):
        raise GitHubError(f"the reply has no {'.'.join(keys)}", 0)
    return value


def comment(env: Mapping[str, str], body: str, key: str,
            target: PullRequest | None) -> Annotation:
    """Create or update the sticky comment on ``target``; says what happened.

    GitHub trouble is a warning, never an exception: the verdict decides the build, not
    the comment. Under ``workflow_run`` (the fork-safe report job) the PR number comes from
    an artifact the PR's own job wrote, so the PR's head must be the commit that job ran on.
    """
    token = env.get("GITHUB_TOKEN", "")
    repository = env.get("GITHUB_REPOSITORY", "")
    if target is None:
        return Annotation("notice", "not a pull request: no comment posted")
    if not token:
        return Annotation("warning", "no GITHUB_TOKEN: no comment posted")
    if target.repository != repository:
        return Annotation("warning", f"results are for {target.repository}, this run is "
                                     f"{repository}: no comment posted")
    client = Client(env.get("GITHUB_API_URL") or "https://api.github.com", token)
    number = target.number
    try:
        run = event(env).get("workflow_run")
        head = run.get("head_sha") if isinstance(run, dict) else None
        if head:
            pull = client.request("GET", f"/repos/{repository}/pulls/{number}").body
            sha = _text(pull, "head", "sha")
            if sha != head:
                return Annotation("warning", f"PR #{number} is at {sha[:12]}, the results "
                                             f"are from {head[:12]}: no comment")
        done = upsert_comment(client, repository, number, key, body)
    except GitHubError as exc:
        return Annotation("warning", f"no comment posted: {exc}{_hint(exc)}")
    return Annotation("notice", f"PR comment {done.action}: {done.url}")


def _hint(exc: GitHubError) -> str:
    if exc.rate_limited:
        return " (the API's rate limit: the comment waits for the next run)"
    if exc.status in (401, 403, 404):
        return (" (a pull request from a fork gets a read-only token: use the collect and "
                "report modes, see the README)")
    return ""


def _message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("message", ""))[:200]
    except (ValueError, AttributeError):
        return ""


def _without_query(url: str) -> str:
    """What an error message needs of a URL."""
    return url.split("?", 1)[0]
