"""The sticky pull-request comment: one per manifest and shard, created once, then updated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from modelexport.github.actions import Annotation, PullRequest, cap, event
from modelexport.github.rest import Client, GitHubError

COMMENT_LIMIT = 65_536  # characters in an issue comment body
# Set to 1, the API may be served over plain http on a loopback address: for tests only.
LOOPBACK_HTTP = "MODELEXPORT_LOOPBACK_HTTP"


def marker(key: str) -> str:
    """The hidden line that finds this gate's comment again (one per manifest/shard). The
    key cannot end the HTML comment early: only letters, digits and ``._/ -`` are kept,
    and no two dashes in a row."""
    safe = re.sub(r"[^\w./ -]", "_", key).replace("--", "-_")
    return f"<!-- modelexport-comment: {safe} -->"


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


def post(env: Mapping[str, str], body: str, key: str,
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
    number = target.number
    try:
        client = Client(env.get("GITHUB_API_URL") or "https://api.github.com", token,
                        loopback_http=env.get(LOOPBACK_HTTP) == "1")
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
