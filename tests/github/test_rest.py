"""The REST client against a real HTTP server on 127.0.0.1 (tests/fake_github.py): the token
goes to the API's origin only, listing ends, one deadline. No torch."""

from __future__ import annotations

import re
import time

import pytest

from modelexport.github import comment, rest

from fake_github import FakeGitHub

TOKEN = "ghs_s3cretTokenValue0123456789"


def served(fake: FakeGitHub, prefix: str = "", deadline_s: float = rest.DEADLINE_S
           ) -> rest.Client:
    """A client of the fake API, which serves plain http on 127.0.0.1."""
    return rest.Client(fake.url + prefix, TOKEN, deadline_s, loopback_http=True)


COMMENTS = "/repos/octo/models/issues/7/comments"


def test_the_token_goes_to_the_api_origin_only(fake: FakeGitHub, evil: FakeGitHub) -> None:
    fake.hook = lambda method, path: (307, {"Location": evil.url + path}, {}) \
        if path.startswith(COMMENTS) else None
    client = served(fake)
    with pytest.raises(rest.GitHubError, match=re.escape(f"redirected to {evil.url}; the")):
        comment.upsert_comment(client, fake.repository, 7, "k", "body")
    fake.hook = lambda method, path: (200, {"Link": f'<{evil.url}{COMMENTS}?page=2>; '
                                                   'rel="next"'}, []) \
        if path.startswith(COMMENTS) else None
    with pytest.raises(rest.GitHubError, match=re.escape(f"not {fake.url}; the token")):
        comment.upsert_comment(served(fake), fake.repository, 7, "k", "b")
    # The scheme is part of the origin: the same host by another scheme is another origin.
    other_scheme = fake.url.replace("http://", "https://")
    fake.hook = lambda method, path: (200, {"Link": f'<{other_scheme}{COMMENTS}?page=2>; '
                                                   'rel="next"'}, []) \
        if path.startswith(COMMENTS) else None
    with pytest.raises(rest.GitHubError, match=re.escape(f"not {fake.url}; the token")):
        comment.upsert_comment(served(fake), fake.repository, 7, "k", "b")
    assert evil.requests == []


def test_a_page_linking_to_itself_ends(fake: FakeGitHub) -> None:
    fake.hook = lambda method, path: (200, {"Link": f'<{fake.url}{path}>; rel="next"'}, []) \
        if path.startswith(COMMENTS) else None
    with pytest.raises(rest.GitHubError, match="a page linking back"):
        comment.upsert_comment(served(fake), fake.repository, 7, "k", "b")
    assert len([r for r in fake.requests if r.path.startswith(COMMENTS)]) == 1


def test_one_deadline_for_a_reply_that_trickles_in(fake: FakeGitHub) -> None:
    fake.drip_s = 0.5
    started = time.monotonic()
    with pytest.raises(rest.GitHubError, match=r"did not arrive within 2 s|no time left"):
        comment.upsert_comment(served(fake, deadline_s=2), fake.repository, 7,
                              "k", "b")
    assert time.monotonic() - started < 20
