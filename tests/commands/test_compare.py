"""``modelexport compare``: stored results against a baseline, and in GitHub Actions the
summary, outputs, annotations and PR comment (a real HTTP server on 127.0.0.1). No torch."""

from __future__ import annotations

import json
import os
from pathlib import Path

from modelexport import schemas
from modelexport.publish.formats import FORMATS

from fake_github import FakeGitHub, actions_env, assert_not_leaked, parse_outputs
from harness import TWO_MODELS, gate_documents, one_error_line, outside_actions, run_cli

TOKEN = "ghs_s3cretTokenValue0123456789"


def test_compare_in_actions_writes_summary_outputs_annotations_and_comment(
        tmp_path: Path, fake: FakeGitHub) -> None:
    current, baseline, manifest_path = gate_documents(tmp_path, slower_by=1.3)
    env = actions_env(tmp_path, fake, {"pull_request": {"number": 12}}, TOKEN)
    proc = run_cli("compare", str(current), str(baseline), "--manifest", str(manifest_path),
               "--report-md", "report.md", "--comment", env=env, cwd=tmp_path)

    assert proc.returncode == 1, proc.stderr
    slower_line = TWO_MODELS.splitlines().index("  - name: slower") + 1
    assert (f"::error file={manifest_path},line={slower_line},title=modelexport%3A slower "
            "regressed::export time +30.0 %25 (1.010 s -> 1.313 s)") in proc.stdout
    assert "::notice::PR comment created: https://github.example/octo/models/pull/12" \
        in proc.stdout
    summary = (tmp_path / "summary.md").read_text()
    assert summary == (tmp_path / "report.md").read_text()
    assert "| 🔴 | `slower` |" in summary
    assert parse_outputs((tmp_path / "output").read_text()) == {
        "verdict": "fail", "regressions": "1", "compared": "2", "results-path": str(current),
        "report-path": "report.md", "report-json-path": "", "bmf-path": "",
        "benchmark-action-path": "", "svg-path": ""}
    (comment,) = fake.comments[12]
    assert comment["body"] == f"<!-- modelexport-comment: {manifest_path} -->\n{summary}"

    again = run_cli("compare", str(current), str(baseline), "--manifest", str(manifest_path),
                "--comment", env=env, cwd=tmp_path)
    assert "PR comment updated" in again.stdout
    assert len(fake.comments[12]) == 1
    assert_not_leaked(TOKEN, tmp_path, [proc, again])


def test_read_only_token_warns_and_the_verdict_decides(tmp_path: Path, fake: FakeGitHub
                                                       ) -> None:
    fake.read_only = True  # what a pull request from a fork gets
    current, baseline, _ = gate_documents(tmp_path, slower_by=1.0)
    env = actions_env(tmp_path, fake, {"pull_request": {"number": 5}}, TOKEN)
    proc = run_cli("compare", str(current), str(baseline), "--comment", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (f"::warning::no comment posted: POST {fake.url}/repos/octo/models/issues/5/comments: "
            "HTTP 403 Resource not accessible by integration (a pull request from a fork gets "
            "a read-only token") in proc.stdout
    assert fake.comments == {}
    assert_not_leaked(TOKEN, tmp_path, [proc])


def test_no_pull_request_no_comment(tmp_path: Path, fake: FakeGitHub) -> None:
    current, baseline, _ = gate_documents(tmp_path, slower_by=1.0)
    env = actions_env(tmp_path, fake, {"push": {}}, TOKEN)
    proc = run_cli("compare", str(current), str(baseline), "--comment", env=env, cwd=tmp_path)
    assert proc.returncode == 0
    assert "::notice::not a pull request: no comment posted" in proc.stdout
    assert fake.requests == []


def test_merge_job_first_run_without_a_baseline_calls_every_model_new(tmp_path: Path) -> None:
    current, _, manifest_path = gate_documents(tmp_path, slower_by=1.0)
    env = outside_actions(os.environ)
    proc = run_cli("compare", str(current), "none-yet.json", "--manifest", str(manifest_path),
                   "--allow-no-baseline", env=env, cwd=tmp_path)  # the run that makes it
    assert proc.returncode == 0, proc.stderr
    assert "no baseline at none-yet.json: every model is new" in proc.stdout
    assert "modelexport: 2 new" in proc.stdout


def test_every_report_format_goes_to_its_option_or_to_the_report_folder(tmp_path: Path
                                                                        ) -> None:
    current, baseline, manifest_path = gate_documents(tmp_path, slower_by=1.3)
    proc = run_cli("compare", str(current), str(baseline), "--manifest", str(manifest_path),
                   "--report-dir", "out", "--report-json", "mine.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(shown.file for shown in FORMATS.values() if shown.name != "json")
    document = json.loads((tmp_path / "mine.json").read_text())
    assert schemas.schema_errors(document, schemas.REPORT) == []
    assert [(m["name"], m["verdict"]) for m in document["models"]] == [
        ("steady", "unchanged"), ("slower", "regressed")]
    assert "| 🔴 | `slower` |" in (tmp_path / "out" / "report.md").read_text()
    # The schema holds the report to its shape: a verdict it does not know is refused.
    document["models"][0]["verdict"] = "fine"
    assert schemas.schema_errors(document, schemas.REPORT)


def test_a_run_that_compared_nothing_fails_unless_it_is_a_first_run(tmp_path: Path) -> None:
    """A missing baseline passed with exit 0: a changed model then passed too."""
    current, _, _ = gate_documents(tmp_path, slower_by=1.3)
    proc = run_cli("compare", str(current), "no-such-baseline.json", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1].startswith("modelexport: 2 new; NOTHING WAS COMPARED")
    assert "nothing was compared with a baseline: make one with --update-baseline" in \
        one_error_line(proc)
    allowed = run_cli("compare", str(current), "no-such-baseline.json", "--allow-no-baseline",
                      cwd=tmp_path)
    assert allowed.returncode == 0 and "modelexport: error" not in allowed.stderr
