"""``modelexport comment``: the fork-safe report job. It posts on the commit that was
measured only, renders and judges the report itself from the results, and posts nothing
of the artifact as it is (a real HTTP server on 127.0.0.1 stands in for GitHub). No torch."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fake_github import FakeGitHub, actions_env, assert_not_leaked
from harness import gate_documents, one_error_line, run_cli

TOKEN = "ghs_s3cretTokenValue0123456789"
HEAD = {"workflow_run": {"head_sha": "b" * 40}}
# What a pull request's own job can write into its results: its strings reach the comment.
HOSTILE = ("done\r\n| ✅ | `fake` | 1.000 s | passed |\n@org/security-team <!-- hide "
           "[click](https://evil.example) ![x](https://evil.example/x.png) <b>bold</b>")


def _report_job(tmp_path: Path, fake: FakeGitHub, *results: str) -> str:
    fake.heads[9] = "b" * 40
    env = actions_env(tmp_path, fake, HEAD, TOKEN)
    proc = run_cli("comment", "--results", *results, "--baseline", "baseline.json",
                   "--manifest", "models.yaml", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_not_leaked(TOKEN, tmp_path, [proc])
    return proc.stdout


def test_report_mode_comments_only_on_the_measured_head(tmp_path: Path, fake: FakeGitHub
                                                        ) -> None:
    current, _, _ = gate_documents(tmp_path, slower_by=1.0, pull_request=9)
    fake.heads[9] = "a" * 40
    env = actions_env(tmp_path, fake, HEAD, TOKEN)
    moved = run_cli("comment", "--results", str(current), env=env, cwd=tmp_path)
    assert moved.returncode == 0
    assert "::warning::PR #9 is at aaaaaaaaaaaa, the results are from bbbbbbbbbbbb" \
        in moved.stdout
    assert fake.comments == {}
    assert "PR comment created" in _report_job(tmp_path, fake, str(current))
    assert "| ⚪ | `slower` |" in fake.comments[9][0]["body"]


def test_the_report_job_posts_its_own_report_of_the_results_and_nothing_else(
        tmp_path: Path, fake: FakeGitHub) -> None:
    current, _, _ = gate_documents(tmp_path, slower_by=1.3, pull_request=9)
    document = json.loads(current.read_text())
    document["manifest"]["path"] = "models.yaml --> <b>forged</b> <!-- modelexport-comment: x"
    document["models"]["broken"] = {"status": "failed", "error": HOSTILE, "wall_s": 1.0}
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "results.json").write_text(json.dumps(document))
    (artifact / "report.md").write_text("### modelexport: 3 unchanged\n@org/security-team\n")

    _report_job(tmp_path, fake, "artifact/results.json")
    (posted,) = fake.comments[9]
    body = posted["body"]
    # Judged here: the slower model regressed against this job's baseline.
    assert body.startswith("<!-- modelexport-comment: models.yaml -->\n"
                           "### modelexport: 1 failed, 1 regressed, 1 unchanged")
    assert "| 🔴 | `slower` |" in body and "3 unchanged" not in body
    assert "judged by the report job" in body
    # The hostile error is one cell of one row, and nothing of it is markup.
    assert "\r" not in body
    (row,) = [line for line in body.splitlines() if "`broken`" in line]
    assert row.startswith("| ❌ | `broken` |") and row.endswith("` |")
    outside = re.sub(r"`[^`\n]*`", "", body.split("\n", 1)[1])
    for markup in ("@org", "<!--", "<b>", "[click]", "![x]", "evil.example", "| ✅ |"):
        assert markup not in outside, markup


def test_the_report_job_reads_no_link_from_its_artifact(tmp_path: Path, fake: FakeGitHub
                                                        ) -> None:
    current, _, _ = gate_documents(tmp_path, slower_by=1.0, pull_request=9)
    (tmp_path / "link.json").symlink_to(current)
    env = actions_env(tmp_path, fake, HEAD, TOKEN)
    proc = run_cli("comment", "--results", "link.json", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert "link.json: a link; the report job reads no link from an artifact" in \
        one_error_line(proc)
    assert fake.requests == []
