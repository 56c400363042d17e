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
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from modelexport import __version__
from modelexport.errors import ModelExportError
from modelexport.gate.results import PullRequest

API_VERSION = "2022-11-28"
SUMMARY_LIMIT = 1024 * 1024  # bytes; GitHub refuses a larger step summary
COMMENT_LIMIT = 65_536  # characters in an issue comment body
ANNOTATIONS_PER_KIND = 10  # GitHub shows at most 10 errors and 10 warnings per step
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class GitHubError(ModelExportError):
    """A GitHub REST call failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


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
    """The payload of the event that started the workflow ({} outside Actions)."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text("utf-8"))


def pull_request(env: Mapping[str, str]) -> PullRequest | None:
    """The pull request this run is for, if any."""
    number = event(env).get("pull_request", {}).get("number")
    repository = env.get("GITHUB_REPOSITORY")
    if not isinstance(number, int) or not repository:
        return None
    return PullRequest(repository, number)


class Response(NamedTuple):
    headers: Mapping[str, str]
    body: Any


class Client:
    """A small GitHub REST client: auth, API version and user agent on every request."""

    def __init__(self, api_url: str, token: str, timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:  # the token must not reach a log through a repr
        return f"Client({self.api_url!r})"

    def request(self, method: str, url: str, body: Any = None) -> Response:
        if not url.startswith(("http://", "https://")):
            url = self.api_url + url
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self._token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"modelexport/{__version__}",
            **({"Content-Type": "application/json"} if data is not None else {}),
        })
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                payload = answer.read()
                return Response(dict(answer.headers),
                                json.loads(payload) if payload else None)
        except urllib.error.HTTPError as exc:
            detail = _message(exc.read())
            raise GitHubError(f"{method} {_without_query(url)}: HTTP {exc.code} {detail}".rstrip(),
                              exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GitHubError(f"{method} {_without_query(url)}: no answer ({reason})", 0) from None

    def pages(self, url: str) -> Iterator[Any]:
        """Every item of a list endpoint, following ``Link: <...>; rel="next"``."""
        next_url: str | None = url
        while next_url:
            answer = self.request("GET", next_url)
            yield from answer.body
            found = _NEXT.search(answer.headers.get("Link", ""))
            next_url = found.group(1) if found else None


class Comment(NamedTuple):
    action: str  # created | updated
    url: str


def upsert_comment(client: Client, repository: str, number: int, key: str, body: str
                   ) -> Comment:
    """Create this gate's comment on PR ``number``, or update it if it is there already."""
    tag = marker(key)
    text = cap(f"{tag}\n{body}", COMMENT_LIMIT)
    comments = client.pages(f"/repos/{repository}/issues/{number}/comments?per_page=100")
    mine = next((c for c in comments if tag in (c.get("body") or "")), None)
    if mine is None:
        answer = client.request("POST", f"/repos/{repository}/issues/{number}/comments",
                                {"body": text})
        return Comment("created", answer.body["html_url"])
    answer = client.request("PATCH", f"/repos/{repository}/issues/comments/{mine['id']}",
                            {"body": text})
    return Comment("updated", answer.body["html_url"])


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
        head = event(env).get("workflow_run", {}).get("head_sha")
        if head:
            pull = client.request("GET", f"/repos/{repository}/pulls/{number}").body
            if pull["head"]["sha"] != head:
                return Annotation("warning", f"PR #{number} is at {pull['head']['sha'][:12]}, "
                                             f"the results are from {head[:12]}: no comment")
        done = upsert_comment(client, repository, number, key, body)
    except GitHubError as exc:
        hint = (" (a pull request from a fork gets a read-only token: use the collect and "
                "report modes, see the README)") if exc.status in (401, 403, 404) else ""
        return Annotation("warning", f"no comment posted: {exc}{hint}")
    return Annotation("notice", f"PR comment {done.action}: {done.url}")


def _message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("message", ""))[:200]
    except (ValueError, AttributeError):
        return ""


def _without_query(url: str) -> str:
    """What an error message needs of a URL."""
    return url.split("?", 1)[0]
