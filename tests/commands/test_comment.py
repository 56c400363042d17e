"""``modelexport comment``: the report mode posts only on the commit that was measured."""

from __future__ import annotations

from pathlib import Path

from fake_github import FakeGitHub, actions_env, assert_not_leaked
from harness import gate_documents, run_cli

TOKEN = "ghs_s3cretTokenValue0123456789"


def test_report_mode_comments_only_on_the_measured_head(tmp_path: Path, fake: FakeGitHub
                                                        ) -> None:
    current, _, _ = gate_documents(tmp_path, slower_by=1.0, pull_request=9)
    (tmp_path / "report.md").write_text("### modelexport: 2 unchanged\n")
    fake.heads[9] = "a" * 40
    env = actions_env(tmp_path, fake, {"workflow_run": {"head_sha": "b" * 40}}, TOKEN)
    moved = run_cli("comment", "report.md", "--results", str(current), env=env, cwd=tmp_path)
    assert moved.returncode == 0
    assert "::warning::PR #9 is at aaaaaaaaaaaa, the results are from bbbbbbbbbbbb" \
        in moved.stdout
    assert fake.comments == {}

    fake.heads[9] = "b" * 40
    posted = run_cli("comment", "report.md", "--results", str(current), env=env, cwd=tmp_path)
    assert "PR comment created" in posted.stdout
    assert fake.comments[9][0]["body"].endswith("### modelexport: 2 unchanged\n")
    assert_not_leaked(TOKEN, tmp_path, [moved, posted])
