"""The sticky PR comment against a real HTTP server on 127.0.0.1 (tests/fake_github.py):
created once, then updated; ours only; capped; GitHub trouble a warning. No torch."""

from __future__ import annotations

import time

import pytest

from modelexport.github import comment, rest
from modelexport.github.actions import PullRequest

from fake_github import BOT, HUMAN, FakeGitHub

TOKEN = "ghs_s3cretTokenValue0123456789"


def served(fake: FakeGitHub, prefix: str = "", deadline_s: float = rest.DEADLINE_S
           ) -> rest.Client:
    """A client of the fake API, which serves plain http on 127.0.0.1."""
    return rest.Client(fake.url + prefix, TOKEN, deadline_s, loopback_http=True)


def step_env(fake: FakeGitHub) -> dict[str, str]:
    return {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": fake.repository,
            "GITHUB_API_URL": fake.url, comment.LOOPBACK_HTTP: "1"}


def test_comment_is_created_once_then_updated_across_pages(fake: FakeGitHub) -> None:
    for i in range(150):
        fake.add_comment(7, f"someone else's comment {i}")
    client = served(fake)
    first = comment.upsert_comment(client, fake.repository, 7, "models.yaml", "first body")
    second = comment.upsert_comment(client, fake.repository, 7, "models.yaml", "second body")
    other = comment.upsert_comment(client, fake.repository, 7, "models.yaml shard 2/2", "shard")

    assert (first.action, second.action, other.action) == ("created", "updated", "created")
    ours = [c for c in fake.comments[7] if "<!-- modelexport-comment:" in c["body"]]
    assert [c["body"] for c in ours] == [
        "<!-- modelexport-comment: models.yaml -->\nsecond body",
        "<!-- modelexport-comment: models.yaml shard 2/2 -->\nshard"]
    assert second.url == first.url
    methods = [(r.method, r.path) for r in fake.requests]
    assert methods[:4] == [
        ("GET", "/user"),  # who the token writes as: 403 for GITHUB_TOKEN, a bot
        ("GET", "/repos/octo/models/issues/7/comments?per_page=100"),
        ("GET", "/repos/octo/models/issues/7/comments?per_page=100&page=2"),
        ("POST", "/repos/octo/models/issues/7/comments")]
    assert ("PATCH", f"/repos/octo/models/issues/comments/{ours[0]['id']}") in methods
    assert len(fake.comments[7]) == 152
    for seen in fake.requests:
        assert seen.headers["authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["x-github-api-version"] == "2022-11-28"
        assert seen.headers["accept"] == "application/vnd.github+json"
        assert seen.headers["user-agent"].startswith("modelexport/")


def test_comment_body_is_capped_with_a_note(fake: FakeGitHub) -> None:
    client = served(fake, "/api/v3")  # GitHub Enterprise Server form
    comment.upsert_comment(client, fake.repository, 3, "k", "| row |\n" * 20_000)
    body = fake.comments[3][0]["body"]
    assert len(body) <= comment.COMMENT_LIMIT
    assert body.startswith("<!-- modelexport-comment: k -->\n| row |")
    assert "truncated" in body[-100:]
    assert fake.requests[0].path == "/api/v3/user"
    assert fake.requests[1].path.startswith("/api/v3/repos/octo/models/")


def test_retry_after_is_honoured_and_a_rate_limit_is_named_as_one(fake: FakeGitHub) -> None:
    answers = iter([(429, {"Retry-After": "1"}, {"message": "slow down"})])
    fake.hook = lambda method, path: next(answers, None) if method == "POST" else None
    started = time.monotonic()
    done = comment.upsert_comment(served(fake), fake.repository, 7, "k", "b")
    assert done.action == "created"
    assert time.monotonic() - started >= 1.0  # it waited as asked, then posted again
    assert [r.method for r in fake.requests].count("POST") == 2
    fake.hook = lambda method, path: (403, {"X-RateLimit-Remaining": "0"},
                                      {"message": "API rate limit exceeded"}) \
        if method == "POST" else None
    note = comment.post(
        step_env(fake), "b", "other", PullRequest(fake.repository, 7))
    assert note.kind == "warning" and "rate limit" in note.message and "fork" not in note.message


@pytest.mark.parametrize("reply", [b"{not json", {"no": "html_url"}, [1, 2], b"[" * 100_000])
def test_an_unexpected_reply_is_a_warning_not_a_crash(fake: FakeGitHub, reply: object) -> None:
    fake.hook = lambda method, path: (201, {}, reply) if method == "POST" else None
    note = comment.post(
        step_env(fake), "b", "k", PullRequest(fake.repository, 7))
    assert note.kind == "warning" and note.message.startswith("no comment posted: ")


def test_only_our_own_comment_that_starts_with_our_marker_is_ours(fake: FakeGitHub) -> None:
    fake.add_comment(7, f"{comment.marker('k')}\nquoted by a person", HUMAN)
    fake.add_comment(7, f"an error text quoting {comment.marker('k')}\n", BOT)
    done = comment.upsert_comment(served(fake), fake.repository, 7, "k", "b")
    assert done.action == "created"
    assert [c["body"] for c in fake.comments[7][:2]] == [
        f"{comment.marker('k')}\nquoted by a person", f"an error text quoting "
                                                     f"{comment.marker('k')}\n"]
    again = comment.upsert_comment(served(fake), fake.repository, 7, "k", "c")
    assert (again.action, fake.comments[7][2]["body"]) == ("updated", f"{comment.marker('k')}\nc")


def test_the_token_goes_over_https_only(fake: FakeGitHub) -> None:
    for url in ("http://api.example.com", "ftp://127.0.0.1", "http://10.0.0.1:8080"):
        with pytest.raises(rest.GitHubError, match="not https; the token is sent over https"):
            rest.Client(url, TOKEN, loopback_http=True)
    # A loopback address takes plain http only where a test asks for it.
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": fake.repository,
           "GITHUB_API_URL": fake.url}
    note = comment.post(env, "b", "k", PullRequest(fake.repository, 7))
    assert note.kind == "warning" and "not https" in note.message
    assert fake.requests == []
    assert rest.Client("https://ghe.example/api/v3", TOKEN).origin == "https://ghe.example"
