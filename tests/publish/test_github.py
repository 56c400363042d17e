"""GitHub integration: workflow commands, runner files, and the sticky PR comment against a
real HTTP server on 127.0.0.1 (tests/fake_github.py). No torch, no exports."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from modelexport.gate.results import PullRequest
from modelexport.publish import github

from fake_github import BOT, HUMAN, FakeGitHub, parse_outputs

TOKEN = "ghs_s3cretTokenValue0123456789"


def test_escaping_follows_the_workflow_command_rules() -> None:
    assert github.escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert github.escape_property("models.yaml:3, x%") == "models.yaml%3A3%2C x%25"


def test_at_most_ten_annotations_per_kind_then_one_line_for_the_rest() -> None:
    notes = [github.Annotation("error", f"model {i} regressed\nsee log", "models.yaml", i)
             for i in range(13)] + [github.Annotation("warning", "expired")] * 2
    lines = github.workflow_commands(notes)
    errors = [line for line in lines if line.startswith("::error file=")]
    assert len(errors) == 10
    assert errors[0] == "::error file=models.yaml,line=0::model 0 regressed%0Asee log"
    assert lines.count("::warning::expired") == 2
    assert lines[-1] == "::error::3 more errors; see the log and the step summary"


def test_outputs_survive_newlines_and_a_forged_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_text("earlier<<X\nkept\nX\n")
    github.write_outputs(path, {"verdict": "fail", "why": "line one\nEOF\nmodelexport_00"})
    assert parse_outputs(path.read_text()) == {
        "earlier": "kept", "verdict": "fail", "why": "line one\nEOF\nmodelexport_00"}


def test_step_summary_stays_under_one_mebibyte(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text("x" * 1000)
    github.append_summary(path, "é" * 700_000)  # 1.4 MB encoded
    size = path.stat().st_size
    assert github.SUMMARY_LIMIT - 200 < size <= github.SUMMARY_LIMIT
    assert path.read_text("utf-8").endswith("_(truncated: the full report is in the job's "
                                            "log and artifacts)_\n")


def test_comment_is_created_once_then_updated_across_pages(fake: FakeGitHub) -> None:
    for i in range(150):
        fake.add_comment(7, f"someone else's comment {i}")
    client = github.Client(fake.url, TOKEN)
    first = github.upsert_comment(client, fake.repository, 7, "models.yaml", "first body")
    second = github.upsert_comment(client, fake.repository, 7, "models.yaml", "second body")
    other = github.upsert_comment(client, fake.repository, 7, "models.yaml shard 2/2", "shard")

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
    client = github.Client(fake.url + "/api/v3", TOKEN)  # GitHub Enterprise Server form
    github.upsert_comment(client, fake.repository, 3, "k", "| row |\n" * 20_000)
    body = fake.comments[3][0]["body"]
    assert len(body) <= github.COMMENT_LIMIT
    assert body.startswith("<!-- modelexport-comment: k -->\n| row |")
    assert "truncated" in body[-100:]
    assert fake.requests[0].path == "/api/v3/user"
    assert fake.requests[1].path.startswith("/api/v3/repos/octo/models/")


COMMENTS = "/repos/octo/models/issues/7/comments"


def test_the_token_goes_to_the_api_origin_only(fake: FakeGitHub, evil: FakeGitHub) -> None:
    fake.hook = lambda method, path: (307, {"Location": evil.url + path}, {}) \
        if path.startswith(COMMENTS) else None
    client = github.Client(fake.url, TOKEN)
    with pytest.raises(github.GitHubError, match=re.escape(f"redirected to {evil.url}; the")):
        github.upsert_comment(client, fake.repository, 7, "k", "body")
    fake.hook = lambda method, path: (200, {"Link": f'<{evil.url}{COMMENTS}?page=2>; '
                                                   'rel="next"'}, []) \
        if path.startswith(COMMENTS) else None
    with pytest.raises(github.GitHubError, match=re.escape(f"not {fake.url}; the token")):
        github.upsert_comment(github.Client(fake.url, TOKEN), fake.repository, 7, "k", "b")
    assert evil.requests == []


def test_a_page_linking_to_itself_ends(fake: FakeGitHub) -> None:
    fake.hook = lambda method, path: (200, {"Link": f'<{fake.url}{path}>; rel="next"'}, []) \
        if path.startswith(COMMENTS) else None
    with pytest.raises(github.GitHubError, match="a page linking back"):
        github.upsert_comment(github.Client(fake.url, TOKEN), fake.repository, 7, "k", "b")
    assert len([r for r in fake.requests if r.path.startswith(COMMENTS)]) == 1


def test_one_deadline_for_a_reply_that_trickles_in(fake: FakeGitHub) -> None:
    fake.drip_s = 0.5
    started = time.monotonic()
    with pytest.raises(github.GitHubError, match=r"did not arrive within 2 s|no time left"):
        github.upsert_comment(github.Client(fake.url, TOKEN, deadline_s=2), fake.repository, 7,
                              "k", "b")
    assert time.monotonic() - started < 20


def test_retry_after_is_honoured_and_a_rate_limit_is_named_as_one(fake: FakeGitHub) -> None:
    answers = iter([(429, {"Retry-After": "1"}, {"message": "slow down"})])
    fake.hook = lambda method, path: next(answers, None) if method == "POST" else None
    done = github.upsert_comment(github.Client(fake.url, TOKEN), fake.repository, 7, "k", "b")
    assert done.action == "created"
    fake.hook = lambda method, path: (403, {"X-RateLimit-Remaining": "0"},
                                      {"message": "API rate limit exceeded"}) \
        if method == "POST" else None
    note = github.comment(
        {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": fake.repository,
         "GITHUB_API_URL": fake.url}, "b", "other", PullRequest(fake.repository, 7))
    assert note.kind == "warning" and "rate limit" in note.message and "fork" not in note.message


@pytest.mark.parametrize("reply", [b"{not json", {"no": "html_url"}, [1, 2]])
def test_an_unexpected_reply_is_a_warning_not_a_crash(fake: FakeGitHub, reply: object) -> None:
    fake.hook = lambda method, path: (201, {}, reply) if method == "POST" else None
    note = github.comment(
        {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": fake.repository,
         "GITHUB_API_URL": fake.url}, "b", "k", PullRequest(fake.repository, 7))
    assert note.kind == "warning" and note.message.startswith("no comment posted: ")


def test_only_our_own_comment_that_starts_with_our_marker_is_ours(fake: FakeGitHub) -> None:
    fake.add_comment(7, f"{github.marker('k')}\nquoted by a person", HUMAN)
    fake.add_comment(7, f"an error text quoting {github.marker('k')}\n", BOT)
    done = github.upsert_comment(github.Client(fake.url, TOKEN), fake.repository, 7, "k", "b")
    assert done.action == "created"
    assert [c["body"] for c in fake.comments[7][:2]] == [
        f"{github.marker('k')}\nquoted by a person", f"an error text quoting "
                                                     f"{github.marker('k')}\n"]
    again = github.upsert_comment(github.Client(fake.url, TOKEN), fake.repository, 7, "k", "c")
    assert (again.action, fake.comments[7][2]["body"]) == ("updated", f"{github.marker('k')}\nc")
