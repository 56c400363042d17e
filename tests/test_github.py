"""GitHub integration: workflow commands, runner files, and the sticky PR comment against a
real HTTP server on 127.0.0.1 (tests/fake_github.py). No torch, no exports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from modelexport import github, manifest, results

from fake_github import FakeGitHub, assert_not_leaked, parse_outputs
from test_compare import record

TOKEN = "ghs_s3cretTokenValue0123456789"
MANIFEST = """\
version: 1
models:
  - name: steady
    source: {config: {model_type: bert}}
  - name: slower
    source: {config: {model_type: bert}}
"""


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
    assert methods[:3] == [
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
    assert fake.requests[0].path.startswith("/api/v3/repos/octo/models/")


def write_documents(tmp_path: Path, slower_by: float, pull_request: int | None = None
                    ) -> tuple[Path, Path, Path]:
    manifest_path = tmp_path / "models.yaml"
    manifest_path.write_text(MANIFEST)
    loaded = manifest.load(manifest_path)
    steady = [1.00, 1.02, 0.99, 1.01, 1.03]
    current = results.new(loaded)
    current["models"] = {"steady": record(steady),
                         "slower": record([s * slower_by for s in steady])}
    if pull_request:
        current["pull_request"] = {"repository": "octo/models", "number": pull_request}
    baseline = results.updated_baseline({**current, "models": {
        "steady": record(steady), "slower": record(steady)}}, None)
    results.write(tmp_path / "results.json", current)
    results.write(tmp_path / "baseline.json", baseline)
    return tmp_path / "results.json", tmp_path / "baseline.json", manifest_path


def actions_env(tmp_path: Path, fake: FakeGitHub, event: dict) -> dict[str, str]:
    (tmp_path / "event.json").write_text(json.dumps(event))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return env | {
        "GITHUB_ACTIONS": "true", "GITHUB_API_URL": fake.url, "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": fake.repository, "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelexport.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_compare_in_actions_writes_summary_outputs_annotations_and_comment(
        tmp_path: Path, fake: FakeGitHub) -> None:
    current, baseline, manifest_path = write_documents(tmp_path, slower_by=1.3)
    env = actions_env(tmp_path, fake, {"pull_request": {"number": 12}})
    proc = cli("compare", str(current), str(baseline), "--manifest", str(manifest_path),
               "--report-md", "report.md", "--comment", env=env, cwd=tmp_path)

    assert proc.returncode == 1, proc.stderr
    slower_line = MANIFEST.splitlines().index("  - name: slower") + 1
    assert (f"::error file={manifest_path},line={slower_line},title=modelexport%3A slower "
            "regressed::time +30.0 %25 (1.010 s -> 1.313 s)") in proc.stdout
    assert "::notice::PR comment created: https://github.example/octo/models/pull/12" \
        in proc.stdout
    summary = (tmp_path / "summary.md").read_text()
    assert summary == (tmp_path / "report.md").read_text()
    assert "| 🔴 | `slower` |" in summary
    assert parse_outputs((tmp_path / "output").read_text()) == {
        "verdict": "fail", "regressions": "1", "results-path": str(current),
        "report-path": "report.md"}
    (comment,) = fake.comments[12]
    assert comment["body"] == f"<!-- modelexport-comment: {manifest_path} -->\n{summary}"

    again = cli("compare", str(current), str(baseline), "--manifest", str(manifest_path),
                "--comment", env=env, cwd=tmp_path)
    assert "PR comment updated" in again.stdout
    assert len(fake.comments[12]) == 1
    assert_not_leaked(TOKEN, tmp_path, [proc, again])


def test_read_only_token_warns_and_the_verdict_decides(tmp_path: Path, fake: FakeGitHub
                                                       ) -> None:
    fake.read_only = True  # what a pull request from a fork gets
    current, baseline, _ = write_documents(tmp_path, slower_by=1.0)
    env = actions_env(tmp_path, fake, {"pull_request": {"number": 5}})
    proc = cli("compare", str(current), str(baseline), "--comment", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (f"::warning::no comment posted: POST {fake.url}/repos/octo/models/issues/5/comments: "
            "HTTP 403 Resource not accessible by integration (a pull request from a fork gets "
            "a read-only token") in proc.stdout
    assert fake.comments == {}
    assert_not_leaked(TOKEN, tmp_path, [proc])


def test_report_mode_comments_only_on_the_measured_head(tmp_path: Path, fake: FakeGitHub
                                                        ) -> None:
    current, _, _ = write_documents(tmp_path, slower_by=1.0, pull_request=9)
    (tmp_path / "report.md").write_text("### modelexport: 2 unchanged\n")
    fake.heads[9] = "a" * 40
    env = actions_env(tmp_path, fake, {"workflow_run": {"head_sha": "b" * 40}})
    moved = cli("comment", "report.md", "--results", str(current), env=env, cwd=tmp_path)
    assert moved.returncode == 0
    assert "::warning::PR #9 is at aaaaaaaaaaaa, the results are from bbbbbbbbbbbb" \
        in moved.stdout
    assert fake.comments == {}

    fake.heads[9] = "b" * 40
    posted = cli("comment", "report.md", "--results", str(current), env=env, cwd=tmp_path)
    assert "PR comment created" in posted.stdout
    assert fake.comments[9][0]["body"].endswith("### modelexport: 2 unchanged\n")
    assert_not_leaked(TOKEN, tmp_path, [moved, posted])


def test_no_pull_request_no_comment(tmp_path: Path, fake: FakeGitHub) -> None:
    current, baseline, _ = write_documents(tmp_path, slower_by=1.0)
    env = actions_env(tmp_path, fake, {"push": {}})
    proc = cli("compare", str(current), str(baseline), "--comment", env=env, cwd=tmp_path)
    assert proc.returncode == 0
    assert "::notice::not a pull request: no comment posted" in proc.stdout
    assert fake.requests == []


def test_manifest_errors_become_annotations_on_their_lines(tmp_path: Path,
                                                           fake: FakeGitHub) -> None:
    (tmp_path / "models.yaml").write_text(textwrap.dedent("""\
        models:
          - name: a
            source: {config: {model_type: bert}}
            repeat: 3
        """))
    env = actions_env(tmp_path, fake, {})
    proc = cli("check", "models.yaml", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert ("::error file=models.yaml,line=4,title=modelexport%3A manifest::models[0].repeat: "
            "unknown key (did you mean 'repeats'?)") in proc.stdout


def test_merge_job_first_run_without_a_baseline_calls_every_model_new(tmp_path: Path) -> None:
    current, _, manifest_path = write_documents(tmp_path, slower_by=1.0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    proc = cli("compare", str(current), "none-yet.json", "--manifest", str(manifest_path),
               env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no baseline at none-yet.json: every model is new" in proc.stdout
    assert "modelexport: 2 new" in proc.stdout
